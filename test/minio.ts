/**
 * A real MinIO for tests: {@linkcode startMinio} runs the server binary on a free loopback port
 * with a temporary data directory and random credentials; {@linkcode s3EnvOrStart} uses the
 * MinIO that CI started (`S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`) or else starts one.
 *
 * The binary is `$MINIO_BIN`, else `$(go env GOPATH)/bin/minio`, else `minio` on `PATH`. MinIO's
 * community edition ships no binaries, so without one this throws an error saying how to build
 * it (`.ci/run`, or `go install github.com/minio/minio@RELEASE.2025-10-15T17-29-55Z`): tests never
 * skip silently.
 *
 * @example
 * ```ts
 * import { startMinio } from "./minio.ts";
 * const minio = await startMinio();
 * try {
 *   console.log(minio.endpoint); // http://127.0.0.1:PORT
 *   await minio.stop(); // data kept ...
 *   await minio.restart(); // ... same port, same data
 * } finally {
 *   await minio.dispose(); // stops it and removes its temporary data directory
 * }
 * ```
 * @module
 */

/**
 * The MinIO release the project builds (see DESIGN.md, Tests).
 *
 * @example
 * ```ts
 * import { MINIO_VERSION } from "./minio.ts";
 * console.log(`go install github.com/minio/minio@${MINIO_VERSION}`);
 * ```
 */
export const MINIO_VERSION = "RELEASE.2025-10-15T17-29-55Z";

/**
 * Options of {@linkcode startMinio}.
 *
 * @example
 * ```ts
 * import { startMinio } from "./minio.ts";
 * const minio = await startMinio({ port: 19000, dataDir: "/tmp/minio-data" });
 * await minio.dispose(); // a given dataDir is kept
 * ```
 */
export interface StartMinioOptions {
  /** Port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Data directory (default: a new temporary one, removed by `dispose()`). */
  dataDir?: string;
  /** How long to wait for `/minio/health/ready` (default 30 s). */
  readyTimeoutMs?: number;
}

/**
 * A MinIO server started by {@linkcode startMinio}.
 *
 * @example
 * ```ts
 * import { type MinioServer, startMinio } from "./minio.ts";
 * const minio: MinioServer = await startMinio();
 * console.log(minio.env()); // { S3_ENDPOINT: "http://127.0.0.1:PORT", ... }
 * await minio.dispose();
 * ```
 */
export interface MinioServer {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** The port it listens on; kept across restarts. */
  readonly port: number;
  /** Root user (S3 access key). */
  readonly accessKey: string;
  /** Root password (S3 secret key). */
  readonly secretKey: string;
  /** Region to use with it. */
  readonly region: string;
  /** Its data directory; kept across restarts. */
  readonly dataDir: string;
  /** Its `S3_*` variables (`S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_REGION`). */
  env(): Record<string, string>;
  /** Stops the server (SIGTERM, SIGKILL after 5 s); the data directory stays for `restart()`. */
  stop(): Promise<void>;
  /** Starts it again (stopping it first if running) on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops it and removes the data directory when it was a temporary one. */
  dispose(): Promise<void>;
  /** Same as `dispose()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * S3 connection settings for tests, from the environment or from a MinIO started here.
 *
 * @example
 * ```ts
 * import { s3EnvOrStart, type S3TestEnv } from "./minio.ts";
 * const s3: S3TestEnv = await s3EnvOrStart();
 * try {
 *   console.log(s3.endpoint);
 * } finally {
 *   await s3.dispose();
 * }
 * ```
 */
export interface S3TestEnv {
  /** `http://host:port`. */
  readonly endpoint: string;
  /** Access key. */
  readonly accessKey: string;
  /** Secret key. */
  readonly secretKey: string;
  /** Region. */
  readonly region: string;
  /** The MinIO started for this test, or `undefined` when an external one (CI's) is used. */
  readonly server: MinioServer | undefined;
  /** `S3_*` variables. */
  env(): Record<string, string>;
  /** Disposes the MinIO started here; does nothing to an external one. */
  dispose(): Promise<void>;
  /** Same as `dispose()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function goPath(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("go", { args: ["env", "GOPATH"], stdout: "piped" })
      .output();
    const dir = new TextDecoder().decode(out.stdout).trim().split(":")[0];
    return out.success && dir ? dir : undefined;
  } catch {
    return undefined; // go not installed
  }
}

/**
 * Finds the MinIO server binary: `$MINIO_BIN`, `$(go env GOPATH)/bin/minio` (or
 * `$HOME/go/bin/minio`), then `minio` on `PATH`; throws an Error saying how to get one.
 *
 * @example
 * ```ts
 * import { findMinio } from "./minio.ts";
 * console.log(await findMinio()); // e.g. /root/go/bin/minio
 * ```
 */
export async function findMinio(): Promise<string> {
  const tried: string[] = [];
  const fromEnv = Deno.env.get("MINIO_BIN");
  if (fromEnv) {
    if (await isFile(fromEnv)) return fromEnv;
    throw new Error(`MINIO_BIN=${fromEnv} is not a file`);
  }
  const gp = await goPath();
  const home = Deno.env.get("HOME");
  for (const dir of [gp, home ? `${home}/go` : undefined]) {
    if (!dir) continue;
    const p = `${dir}/bin/minio`;
    tried.push(p);
    if (await isFile(p)) return p;
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const p = `${dir}/minio`;
    if (await isFile(p)) return p;
  }
  tried.push("minio on PATH");
  throw new Error(
    `no MinIO server binary (looked at $MINIO_BIN, ${tried.join(", ")}). ` +
      `Run .ci/run, which installs it, or build it: ` +
      `go install github.com/minio/minio@${MINIO_VERSION} (then it is in $(go env GOPATH)/bin), ` +
      `or set MINIO_BIN to its path.`,
  );
}

/**
 * A free TCP port on 127.0.0.1 (free when asked; the OS may hand it out again later).
 *
 * @example
 * ```ts
 * import { freePort } from "./minio.ts";
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function randomToken(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a MinIO server on 127.0.0.1 and waits until `/minio/health/ready` answers.
 *
 * @example
 * ```ts
 * import { startMinio } from "./minio.ts";
 * await using minio = await startMinio();
 * console.log(minio.endpoint, minio.accessKey);
 * ```
 */
export async function startMinio(options: StartMinioOptions = {}): Promise<MinioServer> {
  const bin = await findMinio();
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "cotrain-minio-" });
  let port = options.port ?? freePort();
  const accessKey = `cotrain${randomToken(6)}`;
  const secretKey = randomToken(20);
  let endpoint = `http://127.0.0.1:${port}`;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;

  let child: Deno.ChildProcess | undefined;
  let logTail = "";
  let pumps: Promise<void>[] = [];
  // A MinIO left running when the test process exits would outlive it: kill it on unload.
  const onUnload = () => {
    try {
      child?.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  globalThis.addEventListener("unload", onUnload);

  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      logTail = (logTail + dec.decode(chunk, { stream: true })).slice(-8000);
    }
  };

  const start = async () => {
    logTail = "";
    const proc = new Deno.Command(bin, {
      args: ["server", dataDir, "--address", `127.0.0.1:${port}`, "--quiet"],
      env: {
        MINIO_ROOT_USER: accessKey,
        MINIO_ROOT_PASSWORD: secretKey,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
        MINIO_CI_CD: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    child = proc;
    pumps = [pump(proc.stdout), pump(proc.stderr)];
    let exited: Deno.CommandStatus | undefined;
    proc.status.then((s) => (exited = s));
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (exited) {
        await Promise.allSettled(pumps);
        child = undefined;
        throw new Error(
          `MinIO (${bin}) exited with code ${exited.code} before it was ready on ${endpoint}:\n` +
            logTail,
        );
      }
      try {
        const res = await fetch(`${endpoint}/minio/health/ready`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.body?.cancel();
        if (res.ok) {
          // Ready can answer before the S3 API has finished starting (503 until then); an
          // anonymous ListBuckets gets 403 once it has.
          const s3 = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
          await s3.body?.cancel();
          if (s3.status !== 503) return;
        }
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        await stop();
        throw new Error(
          `MinIO (${bin}) not ready on ${endpoint} after ${readyTimeoutMs} ms:\n${logTail}`,
        );
      }
      await sleep(100);
    }
  };

  const stop = async () => {
    const proc = child;
    if (!proc) return;
    child = undefined;
    try {
      proc.kill("SIGTERM");
    } catch { /* already exited */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = await Promise.race([
      proc.status.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5000))),
    ]);
    clearTimeout(timer);
    if (killed) {
      try {
        proc.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
      await proc.status;
    }
    await Promise.allSettled(pumps);
  };

  const dispose = async () => {
    await stop();
    globalThis.removeEventListener("unload", onUnload);
    if (ownDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  };

  for (let attempt = 1;; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      // A free port picked here may be taken by someone else before MinIO binds it: pick again.
      if (options.port === undefined && attempt < 3 && /exited/.test(String(err))) {
        port = freePort();
        endpoint = `http://127.0.0.1:${port}`;
        continue;
      }
      await dispose();
      throw err;
    }
  }

  return {
    endpoint,
    port,
    accessKey,
    secretKey,
    region: "us-east-1",
    dataDir,
    env: () => ({
      S3_ENDPOINT: endpoint,
      S3_ACCESS_KEY: accessKey,
      S3_SECRET_KEY: secretKey,
      S3_REGION: "us-east-1",
    }),
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * The MinIO given by `S3_ENDPOINT`, `S3_ACCESS_KEY` and `S3_SECRET_KEY` (and `S3_REGION`) when all
 * three are set, as CI does; otherwise one started with {@linkcode startMinio}. Never stop or
 * restart the external one: tests that do need their own `startMinio()`.
 *
 * @example
 * ```ts
 * import { s3EnvOrStart } from "./minio.ts";
 * await using s3 = await s3EnvOrStart();
 * console.log(s3.endpoint, s3.server ? "started here" : "from the environment");
 * ```
 */
export async function s3EnvOrStart(): Promise<S3TestEnv> {
  const endpoint = Deno.env.get("S3_ENDPOINT");
  const accessKey = Deno.env.get("S3_ACCESS_KEY");
  const secretKey = Deno.env.get("S3_SECRET_KEY");
  if (endpoint && accessKey && secretKey) {
    const region = Deno.env.get("S3_REGION") || "us-east-1";
    const noop = () => Promise.resolve();
    return {
      endpoint,
      accessKey,
      secretKey,
      region,
      server: undefined,
      env: () => ({
        S3_ENDPOINT: endpoint,
        S3_ACCESS_KEY: accessKey,
        S3_SECRET_KEY: secretKey,
        S3_REGION: region,
      }),
      dispose: noop,
      [Symbol.asyncDispose]: noop,
    };
  }
  const server = await startMinio();
  return {
    endpoint: server.endpoint,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    region: server.region,
    server,
    env: () => server.env(),
    dispose: () => server.dispose(),
    [Symbol.asyncDispose]: () => server.dispose(),
  };
}
