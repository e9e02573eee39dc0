/**
 * One contract suite run against both stores: FileStore in a temp dir and S3Store on a real MinIO
 * (CI's, from S3_*, or one started by test/minio.ts).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as http from "node:http";
import * as https from "node:https";
import { join } from "node:path";
import * as Minio from "minio";
import { CotrainError, type StatusName } from "../errors.ts";
import { s3EnvOrStart, type S3TestEnv, startMinio } from "../../test/minio.ts";
import { FileStore } from "./file_store.ts";
import { checkKey, checkPrefix, sha256Hex } from "./keys.ts";
import { defaultStoreUrl, openStore } from "./mod.ts";
import { S3Store } from "./s3_store.ts";
import type { ObjectStore } from "./types.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Deterministic pseudo-random bytes (xorshift32). */
function seededBytes(n: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, n);
}

async function rejectsWith(
  p: Promise<unknown> | (() => unknown),
  code: StatusName,
  ...mentions: string[]
): Promise<CotrainError> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof CotrainError, `expected CotrainError ${code}, got ${err}`);
  assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
  for (const m of mentions) assert.ok(err.message.includes(m), `"${m}" not in: ${err.message}`);
  return err;
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`);
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), `${what}: bytes differ`);
}

/** A store under test, with a way to damage an object behind its back. */
interface Backend {
  store: ObjectStore;
  /** Replaces the stored bytes of `key` keeping the recorded sha256. */
  corrupt(key: string, bytes: Uint8Array): Promise<void>;
  /** Stores bytes under `key` the way another tool would: no recorded sha256. */
  writeForeign(key: string, bytes: Uint8Array): Promise<void>;
  /** Parts of the stored object when it was a multipart upload (S3), else undefined. */
  multipartParts?(key: string): Promise<number>;
  /** A URI of the same kind that lies outside this store. */
  foreignUris: string[];
  cleanup(): Promise<void>;
}

async function fileBackend(): Promise<Backend> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-store-" });
  const root = join(dir, "root");
  const store = FileStore.fromPath(root);
  return {
    store,
    corrupt: (key, bytes) => Deno.writeFile(join(root, ...key.split("/")), bytes),
    writeForeign: async (key, bytes) => {
      const path = join(root, ...key.split("/"));
      await Deno.mkdir(join(path, ".."), { recursive: true });
      await Deno.writeFile(path, bytes);
    },
    foreignUris: [
      `file://${dir}/other/x`,
      `file://${root}-sibling/x`,
      `file://${root}/../x`,
      `file://${root}/a/../../x`,
      `file://${root}/%2e%2e/x`,
      `file://${root}/a%2f..%2f..%2fx`,
      `file://example.com${root}/x`,
      `file://${root}`,
      `file://${root}/x?y`,
      `s3://bucket${root}/x`,
      `http://localhost${root}/x`,
    ],
    cleanup: async () => {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function s3Backend(s3: S3TestEnv): Backend {
  const bucket = `cotrain-test-${crypto.randomUUID().slice(0, 8)}`;
  const store = new S3Store(`s3://${bucket}/suite`, {
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
    partSize: 5 * MiB, // so that the concurrency test also races multipart uploads
  });
  const url = new URL(s3.endpoint);
  const agent = url.protocol === "https:" ? new https.Agent() : new http.Agent();
  const raw = new Minio.Client({
    transportAgent: agent,
    endPoint: url.hostname,
    port: Number(url.port) || undefined,
    useSSL: url.protocol === "https:",
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
  });
  const rawPut = (key: string, bytes: Uint8Array, meta: Record<string, string>) =>
    raw.putObject(bucket, `suite/${key}`, Buffer.from(bytes), bytes.byteLength, meta).then(
      () => {},
    );
  return {
    store,
    corrupt: async (key, bytes) => {
      const st = await raw.statObject(bucket, `suite/${key}`);
      await rawPut(key, bytes, { "x-amz-meta-sha256": String(st.metaData.sha256) });
    },
    writeForeign: (key, bytes) => rawPut(key, bytes, {}),
    multipartParts: async (key) => {
      const { etag } = await raw.statObject(bucket, `suite/${key}`);
      return Number(/-(\d+)$/.exec(etag)?.[1] ?? 1); // multipart ETags end in -<parts>
    },
    foreignUris: [
      `s3://other-bucket/suite/x`,
      `s3://${bucket}/other/x`,
      `s3://${bucket}/x`,
      `s3://${bucket}/suite/../x`,
      `s3://${bucket}/suite/a/../../x`,
      `s3://${bucket}/suite/%2E%2E/x`,
      `s3://${bucket}/suite`,
      `s3://${bucket}/suite/`,
      `s3://${bucket}/suite/x#frag`,
      `file:///${bucket}/suite/x`,
    ],
    cleanup: async () => {
      for (const o of await store.list()) await store.delete(o.key);
      await raw.removeBucket(bucket);
      await store.close();
      agent.destroy();
    },
  };
}

const BAD_KEYS = [
  "",
  "../x",
  "..",
  ".",
  "/etc/passwd",
  "a/../../b",
  "a/./b",
  "a\\b",
  "..\\x",
  "a//b",
  "a/",
  "%2e%2e/x",
  "a/%2E%2E/b",
  "a%2fb",
  "a\0b",
  "a\nb",
  "C:/x",
  ".cotrain-meta/x",
  "a/.cotrain-tmp-1",
  "x".repeat(256),
];

async function contract(t: Deno.TestContext, make: () => Promise<Backend>): Promise<void> {
  const b = await make();
  const { store } = b;
  try {
    await t.step("round trips of 0 B, 1 KiB and 64 MiB", async () => {
      for (const [size, seed] of [[0, 1], [KiB, 2], [64 * MiB, 3]]) {
        const data = seededBytes(size, seed);
        const key = `rt/obj-${size}.bin`;
        const info = await store.put(key, data, { contentType: "application/octet-stream" });
        assert.equal(info.key, key);
        assert.equal(info.size, size);
        assert.equal(info.sha256, sha256Hex(data));
        assert.match(info.sha256, /^[0-9a-f]{64}$/);
        sameBytes(await store.get(key), data, key);
        if (size === 64 * MiB && b.multipartParts) {
          assert.equal(await b.multipartParts(key), 13, "64 MiB in 5 MiB parts");
        }
        const st = await store.stat(key);
        assert.ok(st);
        assert.equal(st.size, size);
        assert.equal(st.sha256, info.sha256);
        assert.ok(st.mtime instanceof Date);
        if (size > 0) {
          sameBytes(await store.getRange(key, 0, 10), data.subarray(0, 10), `${key} head`);
          sameBytes(
            await store.getRange(key, size - 100, 1000),
            data.subarray(size - 100),
            `${key} tail, clipped`,
          );
          sameBytes(await store.getRange(key, 7, 300), data.subarray(7, 307), `${key} middle`);
        }
        assert.equal((await store.getRange(key, size, 10)).byteLength, 0);
        assert.equal((await store.getRange(key, 0, 0)).byteLength, 0);
        await rejectsWith(store.getRange(key, size + 1, 1), "OUT_OF_RANGE", key);
        await rejectsWith(store.getRange(key, -1, 1), "INVALID_ARGUMENT");
        await store.delete(key);
      }
      // Overwrite replaces bytes and hash.
      await store.put("rt/over", seededBytes(100, 4));
      const second = seededBytes(50, 5);
      const info = await store.put("rt/over", second);
      sameBytes(await store.get("rt/over"), second, "overwritten");
      assert.equal((await store.stat("rt/over"))?.sha256, info.sha256);
      await store.delete("rt/over");
    });

    await t.step("list, stat and delete", async () => {
      const keys = ["ls/b/1", "ls/a/2", "ls/a/1", "ls/ab", "ls/a b/é.bin", "other/x"];
      for (const [i, k] of keys.entries()) await store.put(k, seededBytes(10 + i, i + 10));
      const listed = (p?: string) => store.list(p).then((l) => l.map((o) => o.key));
      assert.deepEqual(await listed("ls/a/"), ["ls/a/1", "ls/a/2"]);
      assert.deepEqual(await listed("ls/a"), ["ls/a b/é.bin", "ls/a/1", "ls/a/2", "ls/ab"]);
      assert.deepEqual(await listed("ls/"), [
        "ls/a b/é.bin",
        "ls/a/1",
        "ls/a/2",
        "ls/ab",
        "ls/b/1",
      ]);
      assert.deepEqual(await listed(), [...keys].sort());
      assert.deepEqual(await listed("nothing/"), []);
      const infos = await store.list("ls/b/");
      assert.equal(infos[0].size, 10);
      assert.equal(infos[0].sha256, sha256Hex(seededBytes(10, 10)));
      assert.equal(await store.stat("ls/missing"), null);
      assert.equal(await store.stat("ls/a"), null, "a prefix is not an object");
      await rejectsWith(store.get("ls/missing"), "NOT_FOUND", "ls/missing");
      await rejectsWith(store.getRange("ls/missing", 0, 1), "NOT_FOUND", "ls/missing");
      for (const k of keys) await store.delete(k);
      await store.delete("ls/a/1"); // again: not an error
      await store.delete("never/was");
      assert.deepEqual(await listed(), []);
      await rejectsWith(store.get("ls/a/1"), "NOT_FOUND");
      // After its children are gone, a former prefix can hold an object.
      await store.put("ls/a", new Uint8Array([1]));
      assert.deepEqual(await listed(), ["ls/a"]);
      await store.delete("ls/a");
    });

    await t.step("keys outside the store are refused", async () => {
      for (const key of BAD_KEYS) {
        const name = JSON.stringify(key).slice(1, -1);
        await rejectsWith(store.put(key, new Uint8Array([1])), "INVALID_ARGUMENT", name);
        await rejectsWith(store.get(key), "INVALID_ARGUMENT");
        await rejectsWith(store.getRange(key, 0, 1), "INVALID_ARGUMENT");
        await rejectsWith(store.stat(key), "INVALID_ARGUMENT");
        await rejectsWith(store.delete(key), "INVALID_ARGUMENT");
        await rejectsWith(() => store.uri(key), "INVALID_ARGUMENT");
      }
      await rejectsWith(store.list("../"), "INVALID_ARGUMENT");
      await rejectsWith(store.list("/etc"), "INVALID_ARGUMENT");
      assert.deepEqual(await store.list(), [], "nothing was written");
    });

    await t.step("uri and keyOf round trip; foreign URIs refused", async () => {
      for (const key of ["a", "runs/demo/ckpt.safetensors", "a b/c#d?e%f/ü.npy", "..x/x.."]) {
        const uri = store.uri(key);
        assert.ok(uri.startsWith(store.url + "/"), uri);
        assert.equal(store.keyOf(uri), key);
      }
      for (const uri of b.foreignUris) {
        await rejectsWith(() => store.keyOf(uri), "INVALID_ARGUMENT");
      }
    });

    await t.step("corrupted object -> DATA_LOSS", async () => {
      const good = seededBytes(4 * KiB, 20);
      const info = await store.put("bad/obj", good);
      const evil = good.slice();
      evil[100] ^= 0xff;
      await b.corrupt("bad/obj", evil);
      const err = await rejectsWith(store.get("bad/obj"), "DATA_LOSS", "bad/obj", info.sha256);
      assert.ok(err.message.includes(sha256Hex(evil)), err.message);
      // Rewriting heals it.
      await store.put("bad/obj", good);
      sameBytes(await store.get("bad/obj"), good, "healed");
      // Bytes without a recorded hash cannot be verified.
      await b.writeForeign("bad/foreign", good);
      await rejectsWith(store.get("bad/foreign"), "DATA_LOSS", "bad/foreign", "no recorded sha256");
      await store.delete("bad/obj");
      await store.delete("bad/foreign");
    });

    await t.step("concurrent writers to one key leave one verified object", async () => {
      // Many rounds of small objects (where a data/sidecar interleaving would show), then
      // larger ones, the last above the S3 part size (racing multipart uploads).
      const sizes = [...Array(40).fill(KiB), 300 * KiB, 300 * KiB, 6 * MiB];
      for (const [round, size] of sizes.entries()) {
        const writers = size === KiB ? 8 : 4;
        const candidates = Array.from(
          { length: writers },
          (_, w) => seededBytes(size + w, 1000 + round * 10 + w),
        );
        const shas = candidates.map(sha256Hex);
        const infos = await Promise.all(candidates.map((c) => store.put("race/key", c)));
        infos.forEach((info, w) => assert.equal(info.sha256, shas[w]));
        const got = await store.get("race/key"); // verified against the recorded sha256
        const winner = shas.indexOf(sha256Hex(got));
        assert.ok(winner >= 0, `round ${round}: read back none of the writers' objects`);
        const st = await store.stat("race/key");
        assert.equal(st?.sha256, shas[winner]);
        assert.equal(st?.size, size + winner);
        assert.deepEqual((await store.list("race/")).map((o) => o.key), ["race/key"]);
      }
      // Readers racing writers only ever see a whole, verified object.
      const a = seededBytes(200 * KiB, 77);
      const c = seededBytes(200 * KiB + 1, 78);
      const ok = new Set([sha256Hex(a), sha256Hex(c)]);
      await store.put("race/key", a);
      await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => store.put("race/key", i % 2 ? a : c)),
        ...Array.from(
          { length: 6 },
          async () => assert.ok(ok.has(sha256Hex(await store.get("race/key")))),
        ),
      ]);
      await store.delete("race/key");
    });
  } finally {
    await b.cleanup();
  }
}

Deno.test("keys: valid keys pass, keys leaving the root are refused", async () => {
  for (const key of ["a", "a/b/c.bin", "..x", "x..", ".hidden", "a b/ü", "100%", "a%zz"]) {
    assert.equal(checkKey(key), key);
  }
  for (const key of BAD_KEYS) await rejectsWith(() => checkKey(key), "INVALID_ARGUMENT");
  for (const p of ["", "a/", "a/b", "a/.", "a/..", "runs/de"]) assert.equal(checkPrefix(p), p);
  for (const p of ["../", "a/../", "/a", "a\\"]) {
    await rejectsWith(() => checkPrefix(p), "INVALID_ARGUMENT");
  }
});

Deno.test("openStore picks the backend by scheme", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = openStore(`file://${dir}/s`);
    assert.ok(file instanceof FileStore);
    assert.equal(file.url, `file://${dir}/s`);
    const s3 = openStore("s3://bucket/pre/fix/", {
      S3_ENDPOINT: "http://127.0.0.1:1",
      S3_ACCESS_KEY: "k",
      S3_SECRET_KEY: "s",
    });
    assert.ok(s3 instanceof S3Store);
    assert.equal(s3.url, "s3://bucket/pre/fix");
    await s3.close();
    await rejectsWith(() => openStore("s3://bucket", {}), "INVALID_ARGUMENT", "S3_ENDPOINT");
    const e = await rejectsWith(() => openStore("gs://bucket/x", {}), "INVALID_ARGUMENT");
    assert.match(e.message, /file:\/\/.*s3:\/\//);
    await rejectsWith(() => openStore("/abs/dir", {}), "INVALID_ARGUMENT", "file://");
    await rejectsWith(() => openStore("s3://Bad_Bucket/x", {}), "INVALID_ARGUMENT");
    await rejectsWith(() => openStore("s3://bucket/../x", {}), "INVALID_ARGUMENT");
    await rejectsWith(() => openStore("file://remote/x", {}), "INVALID_ARGUMENT");
    const byEnv = openStore(undefined, { COTRAIN_STORE: `file://${dir}/e` });
    assert.equal(byEnv.url, `file://${dir}/e`);
    assert.equal(openStore(undefined, {}).url, defaultStoreUrl());
    assert.ok(defaultStoreUrl("/w").endsWith("/w/runs/store"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileStore: symlinks cannot lead out of the root", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = join(dir, "root");
    const outside = join(dir, "outside");
    await Deno.mkdir(root);
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "secret"), "secret");
    await Deno.symlink(outside, join(root, "link"));
    await Deno.symlink(join(outside, "secret"), join(root, "file-link"));
    const store = FileStore.fromPath(root);
    await rejectsWith(store.put("link/x", new Uint8Array([1])), "INVALID_ARGUMENT", "link/x");
    await rejectsWith(store.put("link/deeper/x", new Uint8Array([1])), "INVALID_ARGUMENT");
    await rejectsWith(store.get("link/secret"), "INVALID_ARGUMENT", "link/secret");
    await rejectsWith(store.get("file-link"), "INVALID_ARGUMENT");
    await rejectsWith(store.getRange("file-link", 0, 1), "INVALID_ARGUMENT");
    await rejectsWith(store.stat("link/secret"), "INVALID_ARGUMENT");
    await rejectsWith(store.delete("link/secret"), "INVALID_ARGUMENT");
    await rejectsWith(store.list("link/"), "INVALID_ARGUMENT");
    assert.deepEqual(await store.list(), []);
    assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["secret"]);
    // An object cannot also be a prefix of other keys on a filesystem.
    await store.put("obj", new Uint8Array([1]));
    await rejectsWith(store.put("obj/child", new Uint8Array([1])), "FAILED_PRECONDITION", "obj");
    await store.close();
    await rejectsWith(store.get("obj"), "FAILED_PRECONDITION");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Sanitizers stay on: S3Store.close() (and the raw client's agent.destroy() below) end every
// keep-alive socket of the minio client, and startMinio's dispose() awaits the server's exit.
Deno.test("ObjectStore contract", async (t) => {
  const s3 = await s3EnvOrStart();
  try {
    await t.step("FileStore", (t) => contract(t, fileBackend));
    await t.step("S3Store", (t) => contract(t, () => Promise.resolve(s3Backend(s3))));
  } finally {
    await s3.dispose();
  }
});

Deno.test("S3Store: MinIO down -> UNAVAILABLE quickly; back up -> calls succeed", async () => {
  // A private MinIO: never stop the shared (CI) one.
  const minio = await startMinio();
  const store = new S3Store("s3://outage/p", {
    endpoint: minio.endpoint,
    accessKey: minio.accessKey,
    secretKey: minio.secretKey,
    retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
  });
  try {
    const data = seededBytes(10 * KiB, 9);
    await store.put("k", data);
    await minio.stop();
    for (const call of [() => store.get("k"), () => store.put("k2", data), () => store.list()]) {
      const t0 = performance.now();
      const err = await rejectsWith(call(), "UNAVAILABLE", minio.endpoint);
      assert.ok(performance.now() - t0 < 5000, `took ${performance.now() - t0} ms`);
      assert.match(err.message, /ECONNREFUSED|refused|reset|hang up/i);
    }
    await minio.restart();
    sameBytes(await store.get("k"), data, "after restart");
    await store.put("k2", data);
    assert.deepEqual((await store.list()).map((o) => o.key), ["k", "k2"]);
  } finally {
    await store.close();
    await minio.dispose();
  }
});
