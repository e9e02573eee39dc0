/**
 * {@linkcode S3Store}: the object store on MinIO or any S3, at `s3://bucket/prefix`, through the
 * `minio` client.
 *
 * - **Keys** follow the same rules as every store ({@linkcode checkKey}); object `key` lives at
 *   `<prefix>/<key>` in the bucket. The bucket is created on first use when missing.
 * - **sha256** is stored with each object as user metadata (`x-amz-meta-sha256`) in the same PUT
 *   (or multipart upload) as its bytes, so one atomic write carries both: concurrent writers
 *   leave one complete object with its own hash. `get` reads bytes and metadata in one response
 *   and throws `DATA_LOSS` on a mismatch.
 * - **Large objects** (above `partSize`, 16 MiB by default) go up as a multipart upload of their
 *   own (never resuming another writer's upload of the same key), parts retried one by one.
 * - **Retries**: connection refused/reset, timeouts, 5xx and SlowDown are retried with
 *   exponential backoff and jitter (4 tries from 100 ms by default, about a second in all);
 *   after the last try the call fails with `UNAVAILABLE` naming the endpoint and the cause.
 *   `NoSuchKey` is `NOT_FOUND`; denied credentials are `PERMISSION_DENIED`.
 *
 * @example
 * ```ts
 * import { S3Store } from "./s3_store.ts";
 * const store = new S3Store("s3://cotrain/runs", {
 *   endpoint: "http://127.0.0.1:9000",
 *   accessKey: "minioadmin",
 *   secretKey: "minioadmin",
 * });
 * await store.put("demo/x.bin", new Uint8Array([1, 2, 3]));
 * console.log(await store.get("demo/x.bin"), store.uri("demo/x.bin"));
 * await store.close();
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import * as http from "node:http";
import * as https from "node:https";
import type { IncomingMessage } from "node:http";
import * as Minio from "minio";
import { CotrainError, type StatusName } from "../errors.ts";
import {
  checkKey,
  checkPrefix,
  checkRange,
  compareKeys,
  decodePath,
  encodeKey,
  keyOfUri,
  sha256Hex,
} from "./keys.ts";
import type { ObjectInfo, ObjectStore, PutOptions } from "./types.ts";

const SHA_META = "x-amz-meta-sha256";
const MiB = 1024 * 1024;

/**
 * How {@linkcode S3Store} retries transient failures.
 *
 * @example
 * ```ts
 * import type { RetryOptions } from "./s3_store.ts";
 * const fastFail: RetryOptions = { attempts: 2, baseDelayMs: 10 }; // for tests
 * ```
 */
export interface RetryOptions {
  /** Tries in all, the first included (default 4). */
  attempts?: number;
  /** Delay before the second try, doubled each time, plus up to as much jitter (default 100). */
  baseDelayMs?: number;
  /** Cap on one delay (default 2000). */
  maxDelayMs?: number;
}

/**
 * Connection settings of an {@linkcode S3Store}.
 *
 * @example
 * ```ts
 * import type { S3StoreOptions } from "./s3_store.ts";
 * const opts: S3StoreOptions = {
 *   endpoint: "http://minio:9000",
 *   accessKey: "cotrain",
 *   secretKey: "change-me",
 *   region: "us-east-1",
 * };
 * ```
 */
export interface S3StoreOptions {
  /** `http://host:port` or `https://host[:port]`; a bare `host[:port]` means https. */
  endpoint: string;
  /** Access key (anonymous requests when it or the secret key is missing). */
  accessKey?: string;
  /** Secret key. */
  secretKey?: string;
  /** Region (default `us-east-1`). */
  region?: string;
  /** Objects larger than this go up as multipart uploads of parts this size (default 16 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 4). */
  partConcurrency?: number;
  /** Retry policy for transient failures. */
  retry?: RetryOptions;
}

/**
 * Reads {@linkcode S3StoreOptions} from `S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY` and
 * `S3_REGION`; `INVALID_ARGUMENT` naming the variable when the endpoint or a key is missing.
 *
 * @example
 * ```ts
 * import { s3OptionsFromEnv } from "./s3_store.ts";
 * const opts = s3OptionsFromEnv({
 *   S3_ENDPOINT: "http://127.0.0.1:9000",
 *   S3_ACCESS_KEY: "minioadmin",
 *   S3_SECRET_KEY: "minioadmin",
 * });
 * ```
 */
export function s3OptionsFromEnv(env: Record<string, string | undefined>): S3StoreOptions {
  const need = (name: string) => {
    const v = env[name]?.trim();
    if (!v) {
      throw CotrainError.invalidArgument(
        `s3:// stores need ${name} (S3_ENDPOINT, e.g. http://minio:9000; S3_ACCESS_KEY; ` +
          `S3_SECRET_KEY; optional S3_REGION)`,
      );
    }
    return v;
  };
  return {
    endpoint: need("S3_ENDPOINT"),
    accessKey: need("S3_ACCESS_KEY"),
    secretKey: need("S3_SECRET_KEY"),
    region: env.S3_REGION?.trim() || undefined,
  };
}

/**
 * An object store in an S3 bucket (`s3://bucket/prefix`); see the module docs.
 *
 * @example
 * ```ts
 * import { S3Store } from "./s3_store.ts";
 * const store = S3Store.fromEnv("s3://cotrain/runs", Deno.env.toObject());
 * const info = await store.put("demo/x.bin", new Uint8Array(8));
 * console.log(info.sha256, store.uri("demo/x.bin")); // s3://cotrain/runs/demo/x.bin
 * await store.close();
 * ```
 */
export class S3Store implements ObjectStore {
  /** The root, `s3://bucket` or `s3://bucket/prefix`, without a trailing slash. */
  readonly url: string;
  /** The bucket. */
  readonly bucket: string;
  /** The prefix of every object name, without slashes at either end; `""` for none. */
  readonly prefix: string;
  /** The endpoint, as given, for messages. */
  readonly endpoint: string;
  #client: Minio.Client;
  #agent: http.Agent;
  #region: string;
  #partSize: number;
  #partConcurrency: number;
  #attempts: number;
  #baseDelayMs: number;
  #maxDelayMs: number;
  #ready: Promise<void> | undefined;
  #closed = false;

  /**
   * Opens the store at `s3://bucket[/prefix]`; nothing is sent until the first call.
   * `INVALID_ARGUMENT` for a malformed URL, bucket name, prefix or endpoint.
   *
   * @example
   * ```ts
   * import { S3Store } from "./s3_store.ts";
   * const store = new S3Store("s3://cotrain", {
   *   endpoint: "http://127.0.0.1:9000",
   *   accessKey: "k",
   *   secretKey: "s",
   *   retry: { attempts: 2, baseDelayMs: 10 },
   * });
   * await store.close();
   * ```
   */
  constructor(url: string, options: S3StoreOptions) {
    const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(String(url));
    if (!m) {
      throw CotrainError.invalidArgument(
        `S3 store URL ${JSON.stringify(url)}: expected s3://bucket or s3://bucket/prefix`,
      );
    }
    const bucket = m[1];
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes("..")) {
      throw CotrainError.invalidArgument(
        `S3 store URL ${JSON.stringify(url)}: '${bucket}' is not a valid bucket name ` +
          `(3-63 of a-z 0-9 . -)`,
      );
    }
    const prefix = decodePath((m[2] ?? "").replace(/^\/+|\/+$/g, ""), url).join("/");
    if (prefix !== "") {
      try {
        checkKey(prefix);
      } catch (err) {
        throw CotrainError.invalidArgument(
          `S3 store URL ${JSON.stringify(url)}: bad prefix: ${(err as Error).message}`,
        );
      }
    }
    this.bucket = bucket;
    this.prefix = prefix;
    this.url = prefix === "" ? `s3://${bucket}` : `s3://${bucket}/${encodeKey(prefix)}`;

    const ep = parseEndpoint(options.endpoint);
    this.endpoint = options.endpoint;
    this.#region = options.region || "us-east-1";
    this.#partSize = options.partSize ?? 16 * MiB;
    if (this.#partSize < 5 * MiB || this.#partSize > 5 * 1024 * MiB) {
      throw CotrainError.invalidArgument(`S3 partSize must be 5 MiB..5 GiB, got ${this.#partSize}`);
    }
    this.#partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.#attempts = Math.max(1, options.retry?.attempts ?? 4);
    this.#baseDelayMs = Math.max(0, options.retry?.baseDelayMs ?? 100);
    this.#maxDelayMs = Math.max(0, options.retry?.maxDelayMs ?? 2000);
    // Our own agent, so close() can end its keep-alive sockets.
    this.#agent = ep.useSSL
      ? new https.Agent({ keepAlive: true, maxSockets: 16 })
      : new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.#client = new Minio.Client({
      endPoint: ep.host,
      port: ep.port,
      useSSL: ep.useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      region: this.#region,
      partSize: this.#partSize,
      transportAgent: this.#agent,
      retryOptions: { disableRetry: true }, // retries are ours, with our own policy
    });
  }

  /**
   * Opens the store at `url` with connection settings from `env` ({@linkcode s3OptionsFromEnv}).
   *
   * @example
   * ```ts
   * import { S3Store } from "./s3_store.ts";
   * const store = S3Store.fromEnv("s3://cotrain/runs", Deno.env.toObject());
   * ```
   */
  static fromEnv(url: string, env: Record<string, string | undefined>): S3Store {
    return new S3Store(url, s3OptionsFromEnv(env));
  }

  /** The URI of `key`: `<url>/<percent-encoded key>`. */
  uri(key: string): string {
    return `${this.url}/${encodeKey(checkKey(key))}`;
  }

  /** The key of an `s3:` URI in this bucket under this prefix; `INVALID_ARGUMENT` otherwise. */
  keyOf(uri: string): string {
    const root = this.prefix === "" ? [] : this.prefix.split("/");
    return keyOfUri(uri, "s3:", [this.bucket], root, this.url);
  }

  /** Writes `data` under `key` with its sha256 as metadata (multipart above `partSize`). */
  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
    checkKey(key);
    await this.#ensureBucket();
    const name = this.#name(key);
    const sha256 = sha256Hex(data);
    const headers: Record<string, string> = { [SHA_META]: sha256 };
    if (options.contentType) headers["Content-Type"] = options.contentType;
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (data.byteLength <= this.#partSize) {
      await this.#call(
        `put ${key}`,
        () => this.#client.putObject(this.bucket, name, buf, buf.length, { ...headers }),
      );
    } else {
      await this.#multipartPut(key, name, buf, headers);
    }
    return { key, size: data.byteLength, sha256 }; // mtime: the server's, known from stat()
  }

  /** Reads the whole object and verifies its sha256 (`DATA_LOSS`; `NOT_FOUND` when missing). */
  async get(key: string): Promise<Uint8Array> {
    checkKey(key);
    await this.#ensureBucket();
    const name = this.#name(key);
    const { data, recorded } = await this.#call(`get ${key}`, async () => {
      const res = await this.#client.getObject(this.bucket, name) as IncomingMessage;
      const recorded = res.headers[SHA_META];
      return { data: await readBody(res), recorded: typeof recorded === "string" ? recorded : "" };
    }, key);
    if (!recorded) {
      throw CotrainError.dataLoss(
        `object ${JSON.stringify(key)} in ${this.url} has no recorded sha256 ` +
          `(${SHA_META} missing: written outside the store?); write it again with put`,
      );
    }
    const actual = sha256Hex(data);
    if (actual !== recorded) {
      throw CotrainError.dataLoss(
        `object ${JSON.stringify(key)} in ${this.url} is corrupt: recorded sha256 ${recorded}, ` +
          `bytes read (${data.byteLength}) hash to ${actual}`,
      );
    }
    return data;
  }

  /**
   * Reads up to `length` bytes from `offset` (fewer at the end of the object; `OUT_OF_RANGE` when
   * `offset` is past the end). Not verified against the whole-object hash.
   */
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    checkKey(key);
    checkRange(key, offset, length);
    await this.#ensureBucket();
    const name = this.#name(key);
    const atEnd = async () => {
      const info = await this.stat(key);
      if (!info) throw CotrainError.notFound(`no object ${JSON.stringify(key)} in ${this.url}`);
      if (offset > info.size) {
        throw new CotrainError(
          "OUT_OF_RANGE",
          `range of ${JSON.stringify(key)}: offset ${offset} is past the end (${info.size} bytes)`,
        );
      }
      return new Uint8Array(0);
    };
    if (length === 0) return await atEnd();
    try {
      return await this.#call(`getRange ${key}`, async () => {
        const res = await this.#client.getPartialObject(this.bucket, name, offset, length);
        return await readBody(res as IncomingMessage);
      }, key);
    } catch (err) {
      if (err instanceof CotrainError && err.code === "OUT_OF_RANGE") return await atEnd();
      throw err;
    }
  }

  /** Info of one object, or `null` when it does not exist. */
  async stat(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    await this.#ensureBucket();
    try {
      return await this.#call(`stat ${key}`, async () => {
        const st = await this.#client.statObject(this.bucket, this.#name(key));
        return {
          key,
          size: st.size,
          sha256: String(st.metaData?.sha256 ?? ""),
          mtime: st.lastModified,
        };
      }, key);
    } catch (err) {
      if (err instanceof CotrainError && err.code === "NOT_FOUND") return null;
      throw err;
    }
  }

  /** Every object whose key starts with `prefix`, sorted by key (one HEAD each for the sha256). */
  async list(prefix = ""): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    await this.#ensureBucket();
    const base = this.prefix === "" ? "" : `${this.prefix}/`;
    const names = await this.#call(`list ${prefix}`, async () => {
      const out: string[] = [];
      const stream = this.#client.listObjectsV2(this.bucket, base + prefix, true);
      for await (const item of stream as AsyncIterable<Minio.BucketItem>) {
        if (item.name !== undefined) out.push(item.name);
      }
      return out;
    });
    const keys = names.map((n) => n.slice(base.length)).filter((k) => {
      try {
        return k.startsWith(prefix) && checkKey(k) === k;
      } catch {
        return false; // a name no key can have (put there by other means): not listed
      }
    }).sort(compareKeys);
    const infos: (ObjectInfo | null)[] = new Array(keys.length);
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const i = next++;
        infos[i] = await this.stat(keys[i]); // null when deleted meanwhile
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, keys.length) }, worker));
    return infos.filter((i): i is ObjectInfo => i !== null);
  }

  /** Removes an object; removing a missing object is not an error. */
  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#ensureBucket();
    try {
      await this.#call(
        `delete ${key}`,
        () => this.#client.removeObject(this.bucket, this.#name(key)),
      );
    } catch (err) {
      if (err instanceof CotrainError && err.code === "NOT_FOUND") return;
      throw err;
    }
  }

  /** Ends the client's connections; later calls fail with `FAILED_PRECONDITION`. */
  close(): Promise<void> {
    this.#closed = true;
    this.#agent.destroy();
    return Promise.resolve();
  }

  // --- internals -------------------------------------------------------------------------------

  #name(key: string): string {
    return this.prefix === "" ? key : `${this.prefix}/${key}`;
  }

  #ensureBucket(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(CotrainError.failedPrecondition(`store ${this.url} is closed`));
    }
    if (!this.#ready) {
      const ready = this.#call(`create bucket ${this.bucket}`, async () => {
        if (await this.#client.bucketExists(this.bucket)) return;
        try {
          await this.#client.makeBucket(this.bucket, this.#region);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw err;
        }
      });
      ready.catch(() => (this.#ready = undefined)); // try again on the next call
      this.#ready = ready;
    }
    return this.#ready;
  }

  async #multipartPut(
    key: string,
    name: string,
    buf: Buffer,
    headers: Record<string, string>,
  ): Promise<void> {
    const uploadId = await this.#call(
      `put ${key} (start multipart)`,
      () => this.#client.initiateNewMultipartUpload(this.bucket, name, { ...headers }),
    );
    try {
      const count = Math.ceil(buf.length / this.#partSize);
      const etags: { part: number; etag: string }[] = new Array(count);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const part = buf.subarray(
            i * this.#partSize,
            Math.min(buf.length, (i + 1) * this.#partSize),
          );
          const res = await this.#call(
            `put ${key} (part ${i + 1}/${count})`,
            () =>
              this.#client.uploadPart({
                bucketName: this.bucket,
                objectName: name,
                uploadID: uploadId,
                partNumber: i + 1,
                headers: {},
              }, part),
          );
          etags[i] = { part: i + 1, etag: res.etag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#partConcurrency, count) }, worker));
      await this.#call(`put ${key} (complete multipart)`, async () => {
        try {
          await this.#client.completeMultipartUpload(this.bucket, name, uploadId, etags);
        } catch (err) {
          // A retried complete whose first attempt succeeded finds no upload: check the result.
          if ((err as { code?: string }).code === "NoSuchUpload") {
            const st = await this.#client.statObject(this.bucket, name);
            if (st.metaData?.sha256 === headers[SHA_META] && st.size === buf.length) return;
          }
          throw err;
        }
      });
    } catch (err) {
      this.#client.abortMultipartUpload(this.bucket, name, uploadId).catch(() => {});
      throw err;
    }
  }

  /** Runs `fn`, retrying transient failures; maps client errors to CotrainErrors. */
  async #call<T>(what: string, fn: () => Promise<T>, key?: string): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof CotrainError) throw err;
        if (!isTransient(err)) throw this.#mapError(err, what, key);
        if (attempt >= this.#attempts) {
          throw CotrainError.unavailable(
            `object store ${this.endpoint} (${this.url}) unavailable: ${what} failed after ` +
              `${attempt} tries: ${describe(err)}`,
            { cause: err },
          );
        }
        const backoff = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, backoff * (1 + Math.random())));
      }
    }
  }

  #mapError(err: unknown, what: string, key?: string): CotrainError {
    const code = String((err as { code?: unknown }).code ?? "");
    const where = `object store ${this.endpoint} (${this.url}): ${what}`;
    const status: StatusName = ({
      NoSuchKey: "NOT_FOUND",
      NotFound: "NOT_FOUND",
      NoSuchBucket: "NOT_FOUND",
      InvalidRange: "OUT_OF_RANGE",
      AccessDenied: "PERMISSION_DENIED",
      InvalidAccessKeyId: "PERMISSION_DENIED",
      SignatureDoesNotMatch: "PERMISSION_DENIED",
      EntityTooLarge: "RESOURCE_EXHAUSTED",
      XMinioStorageFull: "RESOURCE_EXHAUSTED",
    } as Record<string, StatusName>)[code] ?? "INTERNAL";
    const msg = status === "NOT_FOUND" && key !== undefined
      ? `no object ${JSON.stringify(key)} in ${this.url}`
      : `${where}: ${describe(err)}`;
    return new CotrainError(status, msg, { cause: err });
  }
}

/** Error codes (socket and S3) worth another try. */
const TRANSIENT = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
  "SlowDown",
  "SlowDownRead",
  "SlowDownWrite",
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "OperationAborted",
  "XMinioServerNotInitialized",
  "XMinioReadQuorum",
  "XMinioWriteQuorum",
]);

function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && TRANSIENT.has(code)) return true;
  // An S3 error without a code: a 5xx answered without an S3 error body (e.g. by a proxy).
  if (err instanceof Minio.S3Error && !code) return true;
  // With its own retries off, the client turns 408/429/5xx answers into this plain Error.
  if (/Retryable HTTP status: \d+/.test(err.message)) return true;
  if (/socket hang up|connection (refused|reset)|ECONNREFUSED|ECONNRESET/i.test(err.message)) {
    return true;
  }
  if (err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.ConnectionReset) {
    return true;
  }
  return false;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const msg = err.message || err.name;
  return code && !msg.includes(String(code)) ? `${code}: ${msg}` : msg;
}

function parseEndpoint(endpoint: string): { host: string; port?: number; useSSL: boolean } {
  const text = String(endpoint ?? "").trim();
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw CotrainError.invalidArgument(`S3 endpoint ${JSON.stringify(endpoint)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw CotrainError.invalidArgument(
      `S3 endpoint ${JSON.stringify(endpoint)}: expected http://host:port or https://host`,
    );
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    throw CotrainError.invalidArgument(
      `S3 endpoint ${JSON.stringify(endpoint)}: give only scheme, host and port`,
    );
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : undefined,
    useSSL: url.protocol === "https:",
  };
}

async function readBody(res: IncomingMessage): Promise<Uint8Array> {
  const declared = Number(res.headers["content-length"]);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  if (Number.isFinite(declared) && total !== declared) {
    const err = new Error(`response ended after ${total} of ${declared} bytes`);
    (err as { code?: string }).code = "ECONNRESET";
    throw err;
  }
  const only = chunks[0];
  if (chunks.length === 1 && only.byteOffset === 0 && only.buffer.byteLength === total) {
    return new Uint8Array(only.buffer, 0, total); // a plain Uint8Array view, not a Buffer
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
