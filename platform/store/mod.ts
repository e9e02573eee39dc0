/**
 * The object store: open one by URL and use it through {@linkcode ObjectStore}.
 *
 * | URL | store |
 * |---|---|
 * | `file:///abs/dir` | {@linkcode FileStore}: a local directory (the embedded default) |
 * | `s3://bucket/prefix` | {@linkcode S3Store}: MinIO or any S3, settings from `S3_*` variables |
 *
 * @example
 * ```ts
 * import { openStore } from "./mod.ts";
 * const store = openStore(`file://${await Deno.makeTempDir()}`);
 * const info = await store.put("a/b.bin", new Uint8Array([1, 2, 3]));
 * const uri = store.uri("a/b.bin"); // hand this to another service
 * console.log(info.sha256, await store.get(store.keyOf(uri)));
 * await store.close();
 * ```
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CotrainError } from "../errors.ts";
import { FileStore } from "./file_store.ts";
import { S3Store } from "./s3_store.ts";
import type { ObjectStore } from "./types.ts";

export type { ObjectInfo, ObjectStore, PutOptions } from "./types.ts";
export { FileStore } from "./file_store.ts";
export { type RetryOptions, s3OptionsFromEnv, S3Store, type S3StoreOptions } from "./s3_store.ts";
export { checkKey, checkPrefix, encodeKey, RESERVED_PREFIX, sha256Hex } from "./keys.ts";

/**
 * The URL schemes {@linkcode openStore} accepts.
 *
 * @example
 * ```ts
 * import { STORE_SCHEMES } from "./mod.ts";
 * console.log(STORE_SCHEMES.join(", ")); // file://, s3://
 * ```
 */
export const STORE_SCHEMES = ["file://", "s3://"] as const;

/**
 * The embedded default root, `file://<cwd>/runs/store`.
 *
 * @example
 * ```ts
 * import { defaultStoreUrl } from "./mod.ts";
 * console.log(defaultStoreUrl()); // e.g. file:///home/me/cotrain/runs/store
 * ```
 */
export function defaultStoreUrl(cwd: string = Deno.cwd()): string {
  return pathToFileURL(join(cwd, "runs", "store")).href;
}

/**
 * Opens the store at `url`, choosing the backend by scheme; without a `url`, `COTRAIN_STORE`
 * from `env`, else {@linkcode defaultStoreUrl}. S3 settings come from `env` (`S3_ENDPOINT`,
 * `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_REGION`); `env` defaults to the process environment.
 * Any other scheme is `INVALID_ARGUMENT`, listing the accepted ones.
 *
 * @example
 * ```ts
 * import { openStore } from "./mod.ts";
 * const local = openStore("file:///tmp/cotrain-store");
 * const remote = openStore("s3://cotrain/runs", {
 *   S3_ENDPOINT: "http://127.0.0.1:9000",
 *   S3_ACCESS_KEY: "minioadmin",
 *   S3_SECRET_KEY: "minioadmin",
 * });
 * await local.close();
 * await remote.close();
 * ```
 */
export function openStore(url?: string, env?: Record<string, string | undefined>): ObjectStore {
  const vars = () => env ?? Deno.env.toObject();
  const target = (url ?? "").trim() || vars().COTRAIN_STORE?.trim() || defaultStoreUrl();
  const lower = target.toLowerCase();
  if (lower.startsWith("file://")) return new FileStore(target);
  if (lower.startsWith("s3://")) return S3Store.fromEnv(target, vars());
  throw CotrainError.invalidArgument(
    `object store URL ${JSON.stringify(target)}: unsupported scheme; accepted: ` +
      `${STORE_SCHEMES.map((s) => `${s}...`).join(", ")} (file:///abs/dir or s3://bucket/prefix)`,
  );
}
