/**
 * Tiny ImageNet: reads the standard folder layout, decodes every JPEG once to 64x64 gray, and
 * hands back packed arrays for a seeded, stratified train/validation split of `train/` and the
 * official `val/` set as the test set (SPEC section 4 and 8).
 *
 * Layout read:
 * ```
 * wnids.txt                        one wnid per line (the classes)
 * words.txt                        optional: "<wnid>\t<description>" lines (descriptions only)
 * train/<wnid>/images/*.JPEG       training images of each class
 * val/images/*.JPEG                the official validation images (our test set)
 * val/val_annotations.txt          "<file>\t<wnid>\t<x0>\t<y0>\t<x1>\t<y1>" per test image
 * ```
 * Labels are positions in the **sorted** wnid list (as torchvision's `ImageFolder` numbers
 * `train/`). Images are listed in code-point order of their names within each class. Colour
 * images become gray with PIL's `convert("L")` luma, `(299 R + 587 G + 114 B) / 1000` computed as
 * `(19595 R + 38470 G + 7471 B + 2^15) >> 16`; gray JPEGs are taken as they are.
 *
 * Decoding happens once: with a {@linkcode ArrayCache}, the decoded arrays are stored under a key
 * derived from a sha256 of the source listing (wnids.txt, val_annotations.txt, and every image's
 * path, size and modification time), as an `.npz` blob plus a `.json` manifest; the next load
 * with an unchanged folder reads the blob and decodes nothing. The split is applied after the
 * cache, so changing `seed` or `valFraction` reuses it.
 *
 * Errors (`CoreError`): `NOT_FOUND` for a missing folder, `wnids.txt`, class folder,
 * `val_annotations.txt` or annotated image; `INVALID_ARGUMENT` for a corrupt image, an image that
 * is not `size` x `size`, a malformed or duplicate line, or an annotation naming a wnid that
 * `wnids.txt` lacks. Messages name the file (and line).
 *
 * @example
 * ```ts
 * import { loadTinyImageNet, memoryCache } from "./tiny_imagenet.ts";
 * import { writeImageSet } from "./image_set.ts";
 *
 * const root = await Deno.makeTempDir();
 * await writeImageSet(root, { classes: 2, trainPerClass: 10, valPerClass: 2 });
 * const cache = memoryCache();
 * const tin = await loadTinyImageNet(root, { cache, seed: 0 });
 * console.log(tin.train.images.shape, tin.val.images.shape, tin.test.images.shape);
 * // [ 18, 64, 64 ] [ 2, 64, 64 ] [ 4, 64, 64 ]
 * console.log((await loadTinyImageNet(root, { cache })).decoded); // 0
 * await Deno.remove(root, { recursive: true });
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import { decodeImage, type RasterImage } from "../io/image.ts";
import type { NdArray } from "../io/ndarray.ts";
import { readNpz, writeNpz } from "../io/npz.ts";
import { Rng } from "../random.ts";

/**
 * Images with labels: `images` uint8 `[N, H, W]` (gray), `labels` int32 `[N]`.
 *
 * @example
 * ```ts
 * import type { LabelledImages } from "./tiny_imagenet.ts";
 * const set: LabelledImages = {
 *   images: { dtype: "uint8", shape: [1, 2, 2], data: new Uint8Array(4) },
 *   labels: { dtype: "int32", shape: [1], data: new Int32Array([0]) },
 * };
 * console.log(set.images.shape[0]); // 1
 * ```
 */
export interface LabelledImages {
  /** uint8 `[N, H, W]`. */
  images: NdArray<"uint8">;
  /** int32 `[N]`, class positions. */
  labels: NdArray<"int32">;
}

/**
 * Where decoded arrays are kept between loads; the service layer backs it with the object store.
 *
 * @example
 * ```ts
 * import type { ArrayCache } from "./tiny_imagenet.ts";
 * const m = new Map<string, Uint8Array>();
 * const cache: ArrayCache = {
 *   get: (key) => Promise.resolve(m.get(key) ?? null),
 *   put: (key, bytes) => { m.set(key, bytes); return Promise.resolve(); },
 * };
 * await cache.put("a", new Uint8Array([1]));
 * console.log(await cache.get("a")); // Uint8Array(1) [ 1 ]
 * ```
 */
export interface ArrayCache {
  /** The bytes stored under `key`, or `null`. */
  get(key: string): Promise<Uint8Array | null>;
  /** Stores `bytes` under `key` (replacing any). */
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/**
 * An {@linkcode ArrayCache} in a `Map` (tests, one process).
 *
 * @example
 * ```ts
 * import { memoryCache } from "./tiny_imagenet.ts";
 * const cache = memoryCache();
 * await cache.put("k", new Uint8Array(2));
 * console.log(cache.entries.size); // 1
 * ```
 */
export function memoryCache(): ArrayCache & { entries: Map<string, Uint8Array> } {
  const entries = new Map<string, Uint8Array>();
  return {
    entries,
    get: (key) => Promise.resolve(entries.get(key) ?? null),
    put: (key, bytes) => {
      entries.set(key, bytes);
      return Promise.resolve();
    },
  };
}

function checkKey(key: string): void {
  const parts = key.split("/");
  if (
    key === "" || key.startsWith("/") || key.includes("\\") ||
    parts.some((p) => p === "" || p === "." || p === "..")
  ) {
    throw CoreError.invalidArgument(
      `cache: key ${JSON.stringify(key)} is not a relative path without '.', '..' or empty parts`,
    );
  }
}

/**
 * An {@linkcode ArrayCache} in a local folder (keys are relative paths; writes are atomic).
 *
 * @example
 * ```ts
 * import { directoryCache } from "./tiny_imagenet.ts";
 * const dir = await Deno.makeTempDir();
 * const cache = directoryCache(dir);
 * await cache.put("tin/a.bin", new Uint8Array([5]));
 * console.log(await cache.get("tin/a.bin"), await cache.get("tin/b.bin")); // Uint8Array(1) [ 5 ] null
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function directoryCache(dir: string): ArrayCache {
  return {
    async get(key) {
      checkKey(key);
      try {
        return await Deno.readFile(`${dir}/${key}`);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
    },
    async put(key, bytes) {
      checkKey(key);
      const path = `${dir}/${key}`;
      const slash = path.lastIndexOf("/");
      await Deno.mkdir(path.slice(0, slash), { recursive: true });
      const tmp = `${path}.tmp-${crypto.randomUUID()}`;
      await Deno.writeFile(tmp, bytes);
      await Deno.rename(tmp, path);
    },
  };
}

/**
 * Options for {@linkcode loadTinyImageNet}.
 *
 * @example
 * ```ts
 * import type { TinyImageNetOptions } from "./tiny_imagenet.ts";
 * const o: TinyImageNetOptions = { seed: 1, valFraction: 0.1, size: 64 };
 * console.log(o.valFraction); // 0.1
 * ```
 */
export interface TinyImageNetOptions {
  /** Seed of the validation split (default 0). */
  seed?: number;
  /** Share of each class's training images held out for validation, 0 <= f < 1 (default 0.1). */
  valFraction?: number;
  /** Expected image side in pixels (default 64). */
  size?: number;
  /** Where decoded arrays are cached (default: none; every load decodes). */
  cache?: ArrayCache;
  /** Key prefix in the cache (default `"tiny-imagenet/"`). */
  cachePrefix?: string;
  /** Files read at once (default 32). */
  concurrency?: number;
}

/**
 * What the cache stores beside the arrays, and what a load reports.
 *
 * @example
 * ```ts
 * import type { TinyImageNetManifest } from "./tiny_imagenet.ts";
 * const m = { format: "cotrain.tiny-imagenet.v1" } as TinyImageNetManifest;
 * console.log(m.format); // "cotrain.tiny-imagenet.v1"
 * ```
 */
export interface TinyImageNetManifest {
  /** Format tag of the cached blob. */
  format: "cotrain.tiny-imagenet.v1";
  /** sha256 (hex) of the source listing: the cache key. */
  listingSha256: string;
  /** sha256 (hex) of the `.npz` blob. */
  arraysSha256: string;
  /** Image side. */
  size: number;
  /** Sorted wnids (label order). */
  classes: string[];
  /** Descriptions from words.txt (the wnid where missing), label order. */
  words: string[];
  /** Training images' paths relative to the root, in array order. */
  trainFiles: string[];
  /** Test (official val) images' paths relative to the root, in annotation order. */
  testFiles: string[];
}

/**
 * A loaded Tiny ImageNet (or an image set in its layout).
 *
 * @example
 * ```ts
 * import type { TinyImageNet } from "./tiny_imagenet.ts";
 * function numClasses(t: TinyImageNet): number {
 *   return t.classes.length;
 * }
 * console.log(typeof numClasses); // "function"
 * ```
 */
export interface TinyImageNet {
  /** Sorted wnids; label `k` is `classes[k]`. */
  classes: string[];
  /** Descriptions, label order. */
  words: string[];
  /** The training split (1 - valFraction of each class); `source` indexes `manifest.trainFiles`. */
  train: LabelledImages & { source: Int32Array };
  /** The validation split; `source` indexes `manifest.trainFiles`. */
  val: LabelledImages & { source: Int32Array };
  /** The official val set, in `val_annotations.txt` order. */
  test: LabelledImages;
  /** The cache manifest (file lists, hashes). */
  manifest: TinyImageNetManifest;
  /** Images decoded by this call (0 when served from the cache). */
  decoded: number;
  /** Whether the arrays came from the cache. */
  fromCache: boolean;
}

const IMAGE_EXT = /\.(jpe?g|png)$/i;

function notFound(message: string): CoreError {
  return new CoreError("NOT_FOUND", message);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw notFound(`tiny imagenet: ${path} not found; ${what}`);
    }
    throw err;
  }
}

async function listImages(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if ((e.isFile || e.isSymlink) && IMAGE_EXT.test(e.name)) names.push(e.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw notFound(`tiny imagenet: folder ${dir} not found; expected the class's images there`);
    }
    throw err;
  }
  return names.sort();
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A decoded image as gray bytes: PIL's `convert("L")` for RGB(A), unchanged for gray.
 *
 * @example
 * ```ts
 * import { toGray } from "./tiny_imagenet.ts";
 * const g = toGray({ width: 1, height: 1, channels: 3, data: new Uint8Array([255, 0, 0]) });
 * console.log(g[0]); // 76
 * ```
 */
export function toGray(img: RasterImage): Uint8Array {
  const n = img.width * img.height;
  if (img.channels === 1) return img.data.slice(0, n);
  const out = new Uint8Array(n);
  const c = img.channels;
  const d = img.data;
  for (let i = 0; i < n; i++) {
    out[i] = (19595 * d[c * i] + 38470 * d[c * i + 1] + 7471 * d[c * i + 2] + 0x8000) >>> 16;
  }
  return out;
}

/**
 * A seeded, stratified split: for each class, `round(count * fraction)` of its items (chosen by
 * a stream keyed on (seed, class)) go to `val`, the rest to `train`; both lists ascend.
 *
 * @example
 * ```ts
 * import { splitValidation } from "./tiny_imagenet.ts";
 * const labels = new Int32Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
 * const { train, val } = splitValidation(labels, 0.1, 3);
 * console.log(train.length, val.length); // 18 2
 * ```
 */
export function splitValidation(
  labels: Int32Array,
  fraction: number,
  seed: number,
): { train: Int32Array; val: Int32Array } {
  if (!(fraction >= 0 && fraction < 1)) {
    throw CoreError.invalidArgument(
      `tiny imagenet: valFraction is ${fraction}; expected 0 <= f < 1`,
    );
  }
  if (!Number.isSafeInteger(seed)) {
    throw CoreError.invalidArgument(`tiny imagenet: seed is ${seed}; expected a safe integer`);
  }
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => {
    const list = byClass.get(l);
    if (list) list.push(i);
    else byClass.set(l, [i]);
  });
  const isVal = new Uint8Array(labels.length);
  for (const [label, items] of byClass) {
    const nVal = Math.round(items.length * fraction);
    Rng.from(seed, "tiny-imagenet-val-split", label).shuffle(items);
    for (let k = 0; k < nVal; k++) isVal[items[k]] = 1;
  }
  const train: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < labels.length; i++) (isVal[i] ? val : train).push(i);
  return { train: Int32Array.from(train), val: Int32Array.from(val) };
}

/** Gathers rows `rows` of an [N, H, W] uint8 array and their labels. */
function gather(
  images: Uint8Array,
  labels: Int32Array,
  rows: Int32Array,
  size: number,
): LabelledImages & { source: Int32Array } {
  const px = size * size;
  const out = new Uint8Array(rows.length * px);
  const lab = new Int32Array(rows.length);
  rows.forEach((r, k) => {
    out.set(images.subarray(r * px, (r + 1) * px), k * px);
    lab[k] = labels[r];
  });
  return {
    images: { dtype: "uint8", shape: [rows.length, size, size], data: out },
    labels: { dtype: "int32", shape: [rows.length], data: lab },
    source: rows,
  };
}

interface Listing {
  classes: string[];
  words: string[];
  trainFiles: string[];
  trainLabels: Int32Array;
  testFiles: string[];
  testLabels: Int32Array;
  sha256: string;
}

/** Reads the text files and folder listings, validates them, and hashes the listing. */
async function readListing(root: string, size: number, concurrency: number): Promise<Listing> {
  try {
    const st = await Deno.stat(root);
    if (!st.isDirectory) throw notFound(`tiny imagenet: ${root} is not a folder`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw notFound(`tiny imagenet: folder ${root} not found`);
    }
    throw err;
  }
  const wnidsText = await readText(`${root}/wnids.txt`, "expected one wnid per line");
  const wnids: string[] = [];
  const seen = new Set<string>();
  wnidsText.split(/\r?\n/).forEach((line, i) => {
    const w = line.trim();
    if (w === "") return;
    if (/\s/.test(w)) {
      throw CoreError.invalidArgument(
        `tiny imagenet: ${root}/wnids.txt line ${i + 1}: ${JSON.stringify(line)} is not one wnid`,
      );
    }
    if (seen.has(w)) {
      throw CoreError.invalidArgument(
        `tiny imagenet: ${root}/wnids.txt line ${i + 1}: wnid ${w} repeats`,
      );
    }
    seen.add(w);
    wnids.push(w);
  });
  if (wnids.length === 0) {
    throw CoreError.invalidArgument(`tiny imagenet: ${root}/wnids.txt lists no wnids`);
  }
  const classes = [...wnids].sort();
  const labelOf = new Map(classes.map((w, k) => [w, k]));

  let wordsText = "";
  try {
    wordsText = await Deno.readTextFile(`${root}/words.txt`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const wordOf = new Map<string, string>();
  for (const line of wordsText.split(/\r?\n/)) {
    const tab = line.indexOf("\t");
    if (tab > 0) {
      const w = line.slice(0, tab).trim();
      if (labelOf.has(w)) wordOf.set(w, line.slice(tab + 1).trim());
    }
  }
  const words = classes.map((w) => wordOf.get(w) ?? w);

  const trainFiles: string[] = [];
  const trainLabels: number[] = [];
  for (const w of classes) {
    const names = await listImages(`${root}/train/${w}/images`);
    if (names.length === 0) {
      throw CoreError.invalidArgument(`tiny imagenet: ${root}/train/${w}/images holds no images`);
    }
    for (const name of names) {
      trainFiles.push(`train/${w}/images/${name}`);
      trainLabels.push(labelOf.get(w)!);
    }
  }

  const annPath = `${root}/val/val_annotations.txt`;
  const annText = await readText(
    annPath,
    "expected lines '<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>' for the test images",
  );
  const testFiles: string[] = [];
  const testLabels: number[] = [];
  const testSeen = new Set<string>();
  annText.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `tiny imagenet: ${annPath} line ${i + 1}`;
    const f = line.trim().split(/\s+/);
    if (f.length !== 2 && f.length !== 6) {
      throw CoreError.invalidArgument(
        `${where}: ${f.length} fields; expected file, wnid and optionally x0 y0 x1 y1`,
      );
    }
    if (f.length === 6 && !f.slice(2).every((v) => /^-?\d+$/.test(v))) {
      throw CoreError.invalidArgument(
        `${where}: bounding box ${f.slice(2).join(" ")} is not 4 integers`,
      );
    }
    const [file, wnid] = f;
    if (file.includes("/") || file.includes("\\") || !IMAGE_EXT.test(file)) {
      throw CoreError.invalidArgument(
        `${where}: ${JSON.stringify(file)} is not an image file name`,
      );
    }
    const label = labelOf.get(wnid);
    if (label === undefined) {
      throw CoreError.invalidArgument(`${where}: wnid ${wnid} (for ${file}) is not in wnids.txt`);
    }
    if (testSeen.has(file)) throw CoreError.invalidArgument(`${where}: ${file} is annotated twice`);
    testSeen.add(file);
    testFiles.push(`val/images/${file}`);
    testLabels.push(label);
  });

  // The listing hash: text files verbatim, then every image's path, size and mtime.
  const files = [...trainFiles, ...testFiles];
  const stats: string[] = new Array(files.length);
  await pool(files.length, concurrency, async (i) => {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(`${root}/${files[i]}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw notFound(
          `tiny imagenet: ${root}/${files[i]} not found (listed in val_annotations.txt)`,
        );
      }
      throw err;
    }
    stats[i] = `${files[i]}\t${st.size}\t${st.mtime?.getTime() ?? ""}`;
  });
  const enc = new TextEncoder();
  const listingText = [
    "cotrain.tiny-imagenet.v1",
    `size ${size}`,
    wnidsText,
    annText,
    ...stats,
  ].join("\n");
  return {
    classes,
    words,
    trainFiles,
    trainLabels: Int32Array.from(trainLabels),
    testFiles,
    testLabels: Int32Array.from(testLabels),
    sha256: await sha256Hex(enc.encode(listingText)),
  };
}

/** Runs `task(0..n-1)` with at most `width` in flight; the first error wins. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < n) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

/** Decodes `files` into one packed [N, size, size] uint8 array. */
async function decodeAll(
  root: string,
  files: string[],
  size: number,
  concurrency: number,
): Promise<Uint8Array> {
  const px = size * size;
  const out = new Uint8Array(files.length * px);
  await pool(files.length, concurrency, async (i) => {
    const path = `${root}/${files[i]}`;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw notFound(`tiny imagenet: ${path} not found`);
      throw err;
    }
    let img: RasterImage;
    try {
      img = decodeImage(bytes, { maxPixels: 1 << 24 });
    } catch (err) {
      throw CoreError.invalidArgument(
        `tiny imagenet: ${path} cannot be decoded (${(err as Error).message})`,
        { cause: err },
      );
    }
    if (img.width !== size || img.height !== size) {
      throw CoreError.invalidArgument(
        `tiny imagenet: ${path} is ${img.width}x${img.height}; expected ${size}x${size}`,
      );
    }
    out.set(toGray(img), i * px);
  });
  return out;
}

interface Arrays {
  train: Uint8Array;
  test: Uint8Array;
}

/** The cached arrays for `listing`, or null when absent, stale or damaged. */
async function fromCache(
  cache: ArrayCache,
  prefix: string,
  listing: Listing,
  size: number,
): Promise<{ arrays: Arrays; manifest: TinyImageNetManifest } | null> {
  const json = await cache.get(`${prefix}${listing.sha256}.json`);
  if (!json) return null;
  let manifest: TinyImageNetManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return null;
  }
  if (
    manifest.format !== "cotrain.tiny-imagenet.v1" || manifest.listingSha256 !== listing.sha256 ||
    manifest.size !== size
  ) return null;
  const blob = await cache.get(`${prefix}${listing.sha256}.npz`);
  if (!blob || (await sha256Hex(blob)) !== manifest.arraysSha256) return null;
  let arrays: Record<string, NdArray>;
  try {
    arrays = readNpz(blob, { maxTotalBytes: 2 ** 34 });
  } catch {
    return null;
  }
  const { train_images: tr, test_images: te } = arrays;
  const ok = (a: NdArray | undefined, n: number): a is NdArray<"uint8"> =>
    a !== undefined && a.dtype === "uint8" && a.shape.join() === [n, size, size].join();
  if (!ok(tr, listing.trainFiles.length) || !ok(te, listing.testFiles.length)) return null;
  return { arrays: { train: tr.data, test: te.data }, manifest };
}

/**
 * Loads Tiny ImageNet (or any folder in its layout) from `root`: train/validation split of
 * `train/`, the official `val/` as test, all as packed uint8 `[N, size, size]` gray arrays with
 * int32 labels. See the module doc for the cache, the label order and the errors.
 *
 * @example
 * ```ts
 * import { loadTinyImageNet } from "./tiny_imagenet.ts";
 * import { writeImageSet } from "./image_set.ts";
 *
 * const root = await Deno.makeTempDir();
 * await writeImageSet(root, { classes: 3, trainPerClass: 10, valPerClass: 1, seed: 2 });
 * const tin = await loadTinyImageNet(root, { seed: 7 });
 * console.log(tin.classes.length, tin.val.labels.data.length, tin.decoded); // 3 3 33
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function loadTinyImageNet(
  root: string,
  options: TinyImageNetOptions = {},
): Promise<TinyImageNet> {
  const size = options.size ?? 64;
  if (!Number.isSafeInteger(size) || size < 1) {
    throw CoreError.invalidArgument(`tiny imagenet: size is ${size}; expected a positive integer`);
  }
  const seed = options.seed ?? 0;
  const fraction = options.valFraction ?? 0.1;
  splitValidation(new Int32Array(0), fraction, seed); // validates both before any I/O
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 32));
  const prefix = options.cachePrefix ?? "tiny-imagenet/";
  root = root.replace(/\/+$/, "") || "/";

  const listing = await readListing(root, size, concurrency);
  let arrays: Arrays | undefined;
  let manifest: TinyImageNetManifest | undefined;
  let decoded = 0;
  const cache = options.cache;
  if (cache) {
    const hit = await fromCache(cache, prefix, listing, size);
    if (hit) ({ arrays, manifest } = hit);
  }
  const fromCacheHit = arrays !== undefined;
  if (!arrays) {
    arrays = {
      train: await decodeAll(root, listing.trainFiles, size, concurrency),
      test: await decodeAll(root, listing.testFiles, size, concurrency),
    };
    decoded = listing.trainFiles.length + listing.testFiles.length;
    const blob = writeNpz({
      train_images: {
        dtype: "uint8",
        shape: [listing.trainFiles.length, size, size],
        data: arrays.train,
      },
      train_labels: {
        dtype: "int32",
        shape: [listing.trainFiles.length],
        data: listing.trainLabels,
      },
      test_images: {
        dtype: "uint8",
        shape: [listing.testFiles.length, size, size],
        data: arrays.test,
      },
      test_labels: { dtype: "int32", shape: [listing.testFiles.length], data: listing.testLabels },
    });
    manifest = {
      format: "cotrain.tiny-imagenet.v1",
      listingSha256: listing.sha256,
      arraysSha256: await sha256Hex(blob),
      size,
      classes: listing.classes,
      words: listing.words,
      trainFiles: listing.trainFiles,
      testFiles: listing.testFiles,
    };
    if (cache) {
      await cache.put(`${prefix}${listing.sha256}.npz`, blob);
      await cache.put(
        `${prefix}${listing.sha256}.json`,
        new TextEncoder().encode(JSON.stringify(manifest)),
      );
    }
  }

  const { train, val } = splitValidation(listing.trainLabels, fraction, seed);
  const all = Int32Array.from({ length: listing.testFiles.length }, (_, i) => i);
  const test = gather(arrays.test, listing.testLabels, all, size);
  return {
    classes: listing.classes,
    words: listing.words,
    train: gather(arrays.train, listing.trainLabels, train, size),
    val: gather(arrays.train, listing.trainLabels, val, size),
    test: { images: test.images, labels: test.labels },
    manifest: manifest!,
    decoded,
    fromCache: fromCacheHit,
  };
}
