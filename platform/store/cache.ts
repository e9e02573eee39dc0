/**
 * A byte cache on an object store, for data that is slow to derive and cheap to keep (decoded
 * Tiny ImageNet splits as packed arrays): the shape core/data's loaders take as `cache`.
 *
 * @example
 * ```ts
 * import { FileStore } from "./file_store.ts";
 * import { storeCache } from "./cache.ts";
 * const cache = storeCache(new FileStore(await Deno.makeTempDir()));
 * await cache.put("tin/train.bin", new Uint8Array([1, 2]));
 * console.log(await cache.get("tin/train.bin")); // Uint8Array(2) [ 1, 2 ]
 * ```
 * @module
 */
import type { ObjectStore } from "./types.ts";

/** Get and put by key; `get` answers null for a key never put. */
export interface ByteCache {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/** A {@linkcode ByteCache} under `prefix` (default `cache/`) of `store`. */
export function storeCache(store: ObjectStore, prefix = "cache/"): ByteCache {
  return {
    get: async (key) => (await store.stat(prefix + key)) ? await store.get(prefix + key) : null,
    put: async (key, bytes) => void await store.put(prefix + key, bytes),
  };
}
