/**
 * {@linkcode FileStore}: the embedded object store, a directory tree under a `file:///abs/dir`
 * root. An object's bytes are the plain file `<root>/<key>`, so other tools can open them.
 *
 * How it stays correct:
 *
 * - **Confinement.** Keys follow {@linkcode checkKey}; before each access the real path of the
 *   deepest existing ancestor of the target is resolved and must lie inside the real root, so a
 *   symlink inside the tree cannot lead out of it.
 * - **Atomic writes.** Bytes go to a uniquely named temporary file in the target's directory,
 *   are fsynced, then renamed over the target; readers see the old object or the new one.
 * - **sha256 sidecars.** Each put records `{"sha256","size","contentType"}` in
 *   `<root>/.cotrain-meta/<key>.json`, written the same atomic way. `get` verifies the bytes
 *   against it and throws `DATA_LOSS` on a mismatch.
 * - **Data/sidecar consistency.** The two renames of a put (data, then sidecar) and a delete's
 *   two removals run under an exclusive `flock` on `<root>/.cotrain-lock`; readers open the data
 *   file and read the sidecar under a shared lock, then read the bytes from the open handle
 *   (renames never change an open file). So concurrent writers to one key, in this process or
 *   others on this host, leave one complete object whose sidecar matches it. A crash between the
 *   two renames leaves a mismatch that `get` reports as `DATA_LOSS` until the key is written
 *   again.
 *
 * Names starting with `.cotrain-` (sidecar tree, lock, temporary files) are reserved: refused in
 * keys and never listed. Files put in the tree by other means have no sidecar: `stat` and `list`
 * report them with an empty `sha256`, and `get` refuses them with `DATA_LOSS`.
 *
 * @example
 * ```ts
 * import { FileStore } from "./file_store.ts";
 * const store = FileStore.fromPath(await Deno.makeTempDir());
 * const info = await store.put("runs/demo/x.bin", new Uint8Array([1, 2, 3]));
 * console.log(info.sha256, store.uri("runs/demo/x.bin"));
 * console.log(await store.get("runs/demo/x.bin"));
 * ```
 * @module
 */
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CotrainError } from "../errors.ts";
import {
  checkKey,
  checkPrefix,
  checkRange,
  compareKeys,
  encodeKey,
  keyOfUri,
  RESERVED_PREFIX,
  sha256Hex,
} from "./keys.ts";
import type { ObjectInfo, ObjectStore, PutOptions } from "./types.ts";

const META_DIR = `${RESERVED_PREFIX}meta`;
const LOCK_FILE = `${RESERVED_PREFIX}lock`;
const TMP_PREFIX = `${RESERVED_PREFIX}tmp-`;
const META_SUFFIX = ".json";

interface Sidecar {
  sha256: string;
  size: number;
  contentType?: string;
}

/**
 * An object store in a local directory (`file:///abs/dir`); see the module docs.
 *
 * @example
 * ```ts
 * import { FileStore } from "./file_store.ts";
 * const store = new FileStore(`file://${await Deno.makeTempDir()}`);
 * await store.put("a.txt", new TextEncoder().encode("hi"));
 * console.log(await store.list()); // [{ key: "a.txt", size: 2, sha256: "8f43...", mtime }]
 * ```
 */
export class FileStore implements ObjectStore {
  /** The root as a `file:` URI without a trailing slash, e.g. `file:///srv/runs/store`. */
  readonly url: string;
  /** The root as an absolute filesystem path. */
  readonly root: string;
  #rootSegments: string[];
  #realRoot: Promise<string> | undefined;
  #closed = false;

  /**
   * Opens the store rooted at a `file:///abs/dir` URL; the directory is created on first use.
   * Throws `INVALID_ARGUMENT` for another scheme, a remote host, a query or a fragment.
   *
   * @example
   * ```ts
   * import { FileStore } from "./file_store.ts";
   * const store = new FileStore("file:///tmp/cotrain-store");
   * ```
   */
  constructor(url: string | URL) {
    const text = String(url);
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw CotrainError.invalidArgument(`file store URL ${JSON.stringify(text)} is not a URL`);
    }
    if (parsed.protocol !== "file:") {
      throw CotrainError.invalidArgument(
        `file store URL ${JSON.stringify(text)}: expected file:///abs/dir`,
      );
    }
    if (parsed.host !== "" && parsed.host !== "localhost") {
      throw CotrainError.invalidArgument(
        `file store URL ${JSON.stringify(text)}: remote host '${parsed.host}' is not supported`,
      );
    }
    if (parsed.search || parsed.hash || /[?#]/.test(text)) {
      throw CotrainError.invalidArgument(
        `file store URL ${JSON.stringify(text)}: no query string or fragment allowed`,
      );
    }
    parsed.host = "";
    let root = resolve(fileURLToPath(parsed));
    while (root.length > 1 && root.endsWith(sep)) root = root.slice(0, -1);
    this.root = root;
    this.url = pathToFileURL(root).href.replace(/\/$/, "");
    this.#rootSegments = root.split(sep).filter((s) => s !== "");
  }

  /**
   * Opens the store rooted at the directory `dir` (made absolute against the cwd).
   *
   * @example
   * ```ts
   * import { FileStore } from "./file_store.ts";
   * const store = FileStore.fromPath("runs/store");
   * ```
   */
  static fromPath(dir: string): FileStore {
    return new FileStore(pathToFileURL(resolve(dir)));
  }

  /** The URI of `key`: `<url>/<percent-encoded key>`. */
  uri(key: string): string {
    return `${this.url}/${encodeKey(checkKey(key))}`;
  }

  /** The key of a `file:` URI under this root; `INVALID_ARGUMENT` for any other URI. */
  keyOf(uri: string): string {
    return keyOfUri(uri, "file:", ["", "localhost"], this.#rootSegments, this.url);
  }

  /** Writes `data` atomically under `key` with its sha256 sidecar; returns its info. */
  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
    checkKey(key);
    const realRoot = await this.#ready();
    const dataPath = this.#dataPath(key);
    const metaPath = this.#metaPath(key);
    const sidecar: Sidecar = { sha256: sha256Hex(data), size: data.byteLength };
    if (options.contentType) sidecar.contentType = options.contentType;
    const metaBytes = new TextEncoder().encode(JSON.stringify(sidecar) + "\n");

    const tmpData = await this.#writeTemp(key, realRoot, dataPath, data);
    let tmpMeta: string | undefined;
    try {
      tmpMeta = await this.#writeTemp(key, realRoot, metaPath, metaBytes);
      await this.#withLock(true, async () => {
        await this.#confine(key, realRoot, dataPath);
        await rename(key, tmpData, dataPath);
        await rename(key, tmpMeta!, metaPath);
      });
    } catch (err) {
      await removeQuietly(tmpData);
      if (tmpMeta) await removeQuietly(tmpMeta);
      throw err;
    }
    await syncDir(dirname(dataPath));
    await syncDir(dirname(metaPath));
    let mtime: Date | undefined;
    try {
      mtime = (await Deno.stat(dataPath)).mtime ?? undefined;
    } catch { /* deleted meanwhile: the write itself succeeded */ }
    return { key, size: data.byteLength, sha256: sidecar.sha256, mtime };
  }

  /** Reads the whole object and verifies its sha256 (`DATA_LOSS`; `NOT_FOUND` when missing). */
  async get(key: string): Promise<Uint8Array> {
    const { file, sidecar } = await this.#openForRead(key);
    let data: Uint8Array;
    try {
      const { size } = await file.stat();
      data = await readFully(file, size);
    } finally {
      file.close();
    }
    if (!sidecar) {
      throw CotrainError.dataLoss(
        `object ${JSON.stringify(key)} in ${this.url} has no recorded sha256 ` +
          `(written outside the store, or a write crashed); write it again with put`,
      );
    }
    const actual = sha256Hex(data);
    if (actual !== sidecar.sha256) {
      throw CotrainError.dataLoss(
        `object ${JSON.stringify(key)} in ${this.url} is corrupt: recorded sha256 ` +
          `${sidecar.sha256} (${sidecar.size} bytes), bytes read hash to ${actual} ` +
          `(${data.byteLength} bytes)`,
      );
    }
    return data;
  }

  /**
   * Reads up to `length` bytes from `offset` (fewer at the end of the object; `OUT_OF_RANGE` when
   * `offset` is past the end). Not verified: a range cannot be checked against a whole-object hash.
   */
  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    checkRange(key, offset, length);
    const { file } = await this.#openForRead(key);
    try {
      const { size } = await file.stat();
      if (offset > size) {
        throw new CotrainError(
          "OUT_OF_RANGE",
          `range of ${JSON.stringify(key)}: offset ${offset} is past the end (${size} bytes)`,
        );
      }
      const n = Math.min(length, size - offset);
      await file.seek(offset, Deno.SeekMode.Start);
      return await readFully(file, n);
    } finally {
      file.close();
    }
  }

  /** Info of one object, or `null` when it does not exist. */
  async stat(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    const realRoot = await this.#ready();
    const dataPath = this.#dataPath(key);
    await this.#confine(key, realRoot, dataPath);
    return await this.#withLock(false, () => this.#info(key));
  }

  /** Every object whose key starts with `prefix`, sorted by key. */
  async list(prefix = ""): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const realRoot = await this.#ready();
    const cut = prefix.lastIndexOf("/");
    const base = cut < 0 ? "" : prefix.slice(0, cut);
    const start = base === "" ? this.root : this.#dataPath(base);
    if (base !== "") await this.#confine(base, realRoot, start);
    return await this.#withLock(false, async () => {
      const keys: string[] = [];
      await walk(start, base, prefix, keys);
      keys.sort(compareKeys);
      const out: ObjectInfo[] = [];
      for (const key of keys) {
        const info = await this.#info(key);
        if (info) out.push(info);
      }
      return out;
    });
  }

  /** Removes an object and its sidecar; removing a missing object is not an error. */
  async delete(key: string): Promise<void> {
    checkKey(key);
    const realRoot = await this.#ready();
    const dataPath = this.#dataPath(key);
    const metaPath = this.#metaPath(key);
    await this.#confine(key, realRoot, dataPath);
    await this.#withLock(true, async () => {
      try {
        const st = await Deno.lstat(dataPath);
        if (st.isDirectory) return; // a prefix of other keys, not an object
        await Deno.remove(dataPath);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      await removeQuietly(metaPath);
      await pruneEmptyDirs(dirname(dataPath), this.root);
      await pruneEmptyDirs(dirname(metaPath), join(this.root, META_DIR));
    });
  }

  /** Nothing to release; later calls fail with `FAILED_PRECONDITION`. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  // --- internals -------------------------------------------------------------------------------

  #dataPath(key: string): string {
    return join(this.root, ...key.split("/"));
  }

  #metaPath(key: string): string {
    return join(this.root, META_DIR, ...key.split("/")) + META_SUFFIX;
  }

  #ready(): Promise<string> {
    if (this.#closed) {
      return Promise.reject(CotrainError.failedPrecondition(`store ${this.url} is closed`));
    }
    if (!this.#realRoot) {
      const ready = (async () => {
        await Deno.mkdir(this.root, { recursive: true });
        return await Deno.realPath(this.root);
      })();
      ready.catch(() => (this.#realRoot = undefined)); // try again on the next call
      this.#realRoot = ready;
    }
    return this.#realRoot;
  }

  /** Throws `INVALID_ARGUMENT` when `path`'s deepest existing ancestor resolves outside the root. */
  async #confine(key: string, realRoot: string, path: string): Promise<void> {
    let p = path;
    for (;;) {
      try {
        const real = await Deno.realPath(p);
        const rel = relative(realRoot, real);
        if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) return;
        throw CotrainError.invalidArgument(
          `object key ${JSON.stringify(key)} resolves outside the store root ${this.root} ` +
            `(through a symlink: ${p} -> ${real})`,
        );
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      const up = dirname(p);
      if (up === p) return;
      p = up;
    }
  }

  /** Writes `bytes` to a fresh fsynced temp file next to `target`; returns its path. */
  async #writeTemp(
    key: string,
    realRoot: string,
    target: string,
    bytes: Uint8Array,
  ): Promise<string> {
    const dir = dirname(target);
    // A concurrent delete may prune the directory between mkdir and open: try again then.
    for (let attempt = 0;; attempt++) {
      await this.#confine(key, realRoot, dir);
      try {
        await Deno.mkdir(dir, { recursive: true });
      } catch (err) {
        throw conflict(key, err);
      }
      await this.#confine(key, realRoot, dir);
      const tmp = join(dir, `${TMP_PREFIX}${crypto.randomUUID()}`);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound && attempt < 5) continue;
        throw err;
      }
      try {
        for (let off = 0; off < bytes.byteLength;) off += await file.write(bytes.subarray(off));
        await file.sync();
      } catch (err) {
        file.close();
        await removeQuietly(tmp);
        throw err;
      }
      file.close();
      return tmp;
    }
  }

  async #withLock<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    const file = await Deno.open(join(this.root, LOCK_FILE), {
      read: true,
      write: true,
      create: true,
    });
    try {
      await file.lock(exclusive);
      return await fn();
    } finally {
      file.close(); // releases the lock
    }
  }

  async #openForRead(key: string): Promise<{ file: Deno.FsFile; sidecar: Sidecar | null }> {
    checkKey(key);
    const realRoot = await this.#ready();
    const dataPath = this.#dataPath(key);
    await this.#confine(key, realRoot, dataPath);
    return await this.#withLock(false, async () => {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(dataPath, { read: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
          throw CotrainError.notFound(`no object ${JSON.stringify(key)} in ${this.url}`);
        }
        throw err;
      }
      try {
        if (!(await file.stat()).isFile) {
          throw CotrainError.notFound(
            `no object ${JSON.stringify(key)} in ${this.url} (it is a prefix of other keys)`,
          );
        }
        return { file, sidecar: await this.#readSidecar(key) };
      } catch (err) {
        file.close();
        throw err;
      }
    });
  }

  async #readSidecar(key: string): Promise<Sidecar | null> {
    try {
      const s = JSON.parse(await Deno.readTextFile(this.#metaPath(key)));
      if (typeof s?.sha256 === "string" && typeof s?.size === "number") return s as Sidecar;
      return null;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        return null;
      }
      if (err instanceof SyntaxError) return null;
      throw err;
    }
  }

  /** Info of `key`; the caller holds the lock. */
  async #info(key: string): Promise<ObjectInfo | null> {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(this.#dataPath(key));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        return null;
      }
      throw err;
    }
    if (!st.isFile) return null;
    const sidecar = await this.#readSidecar(key);
    return { key, size: st.size, sha256: sidecar?.sha256 ?? "", mtime: st.mtime ?? undefined };
  }
}

async function walk(dir: string, base: string, prefix: string, out: string[]): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return;
    throw err;
  }
  for (const e of entries) {
    if (e.name.startsWith(RESERVED_PREFIX)) continue;
    const key = base === "" ? e.name : `${base}/${e.name}`;
    if (e.isDirectory) {
      // Descend only where keys can still match the prefix.
      const asDir = `${key}/`;
      if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) {
        await walk(join(dir, e.name), key, prefix, out);
      }
    } else if (e.isFile && key.startsWith(prefix)) {
      try {
        checkKey(key);
        out.push(key);
      } catch { /* a name no key can have (put there by other means): not listed */ }
    }
  }
}

async function rename(key: string, from: string, to: string): Promise<void> {
  try {
    await Deno.rename(from, to);
  } catch (err) {
    throw conflict(key, err);
  }
}

function conflict(key: string, err: unknown): unknown {
  if (
    err instanceof Deno.errors.IsADirectory || err instanceof Deno.errors.NotADirectory ||
    err instanceof Deno.errors.AlreadyExists ||
    (err instanceof Error && /ENOTEMPTY|EISDIR|ENOTDIR|EEXIST/.test(err.message))
  ) {
    return CotrainError.failedPrecondition(
      `object key ${JSON.stringify(key)} conflicts with an existing object: one key cannot be ` +
        `both an object and a prefix of other keys (${(err as Error).message})`,
      { cause: err },
    );
  }
  return err;
}

async function readFully(file: Deno.FsFile, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await file.read(buf.subarray(off));
    if (got === null) break; // shrank under us (cannot happen with rename-only writes)
    off += got;
  }
  return off === n ? buf : buf.subarray(0, off);
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch { /* already gone */ }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* not supported on every platform: best effort */ }
}

async function pruneEmptyDirs(dir: string, stop: string): Promise<void> {
  for (let d = dir; d !== stop && d.startsWith(stop + sep); d = dirname(d)) {
    try {
      await Deno.remove(d); // fails unless empty
    } catch {
      return;
    }
  }
}
