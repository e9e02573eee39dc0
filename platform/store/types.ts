/**
 * The object store contract shared by every service: tensors, checkpoints and results live here,
 * addressed by keys relative to the store's root and exchanged between services as URIs.
 *
 * Errors are {@linkcode CotrainError}s: `INVALID_ARGUMENT` for a key or URI outside the store,
 * `NOT_FOUND` for a missing object, `DATA_LOSS` when stored bytes fail their sha256, and
 * `UNAVAILABLE` when the backend cannot be reached (retrying may help).
 *
 * @module
 */

/** What the store knows of one object. */
export interface ObjectInfo {
  /** Key relative to the store root, `/`-separated, e.g. `runs/demo/ckpt.safetensors`. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Lower-case hex sha256 of the whole object, recorded on write. */
  sha256: string;
  /** Last modification time, when the backend knows it. */
  mtime?: Date;
}

/** Options for {@linkcode ObjectStore.put}. */
export interface PutOptions {
  /** Media type recorded with the object (S3 Content-Type). */
  contentType?: string;
}

/** An object store: FileStore (`file://`) or S3Store (`s3://`). */
export interface ObjectStore {
  /** The store's root as a URI: `file:///abs/dir` or `s3://bucket/prefix`. */
  readonly url: string;
  /** Writes `data` atomically under `key`, records its sha256 and returns its info. */
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<ObjectInfo>;
  /** Reads the whole object and verifies its recorded sha256 (`DATA_LOSS` on mismatch). */
  get(key: string): Promise<Uint8Array>;
  /** Reads `length` bytes from `offset` (no checksum: a range cannot be verified alone). */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  /** Info of one object, or `null` when it does not exist. */
  stat(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix?: string): Promise<ObjectInfo[]>;
  /** Removes an object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** The URI of `key` in this store. */
  uri(key: string): string;
  /** The key of a URI in this store; `INVALID_ARGUMENT` when the URI lies outside it. */
  keyOf(uri: string): string;
  /** Releases connections and handles. */
  close(): Promise<void>;
}
