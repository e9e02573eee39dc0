/**
 * The on-disk array layout of V1 recordings that cotrain reads (real data converted once with
 * numpy, or the simulated population of `simulated_v1.ts`), its loader and writer, and the image
 * preprocessing to the model's input (centre crop, resize, Tiny ImageNet normalisation).
 *
 * Layout: one `.npz` archive, or a folder of `.npy` files named after the arrays:
 *
 * | array       | shape                      | dtype              | meaning                                         |
 * | ----------- | -------------------------- | ------------------ | ----------------------------------------------- |
 * | `images`    | (N, H, W)                  | uint8 or float32   | gray images; uint8 0..255, float32 in [0, 1]    |
 * | `responses` | (repeats, N, neurons)      | float32            | spike counts; NaN where a trial was not recorded |
 * | `session`   | (neurons,)                 | int32              | recording session id per neuron (>= 0)           |
 * | `split`     | (N,)                       | uint8              | 0 train, 1 validation, 2 test                   |
 * | `rates`     | (N, neurons), optional     | float32            | noise-free expected counts (simulations only)   |
 *
 * `responses[r, n, k]` is the r-th presentation of image n to neuron k in that neuron's session;
 * a neuron whose session did not show image n, or showed it fewer than r + 1 times, has NaN there
 * (so unequal repeat counts are NaN-padded, as in Cadena et al. 2019). The loader also accepts
 * float64 images/responses/rates and any integer dtype for `session` and `split`, and converts
 * them; anything else is `INVALID_ARGUMENT` with a message that names the array.
 *
 * @example
 * ```ts
 * import { decodeV1Arrays, encodeV1Arrays, toModelInput } from "./v1_arrays.ts";
 *
 * const bytes = encodeV1Arrays({
 *   images: { dtype: "uint8", shape: [2, 4, 4], data: new Uint8Array(32).fill(128) },
 *   responses: { dtype: "float32", shape: [1, 2, 1], data: new Float32Array([3, NaN]) },
 *   session: { dtype: "int32", shape: [1], data: new Int32Array([0]) },
 *   split: { dtype: "uint8", shape: [2], data: new Uint8Array([0, 2]) },
 * });
 * const v1 = decodeV1Arrays(bytes);
 * const x = toModelInput(v1.images, { size: 2 }); // (2, 2, 2, 1) NHWC, TIN-normalised
 * console.log(x.shape); // [ 2, 2, 2, 1 ]
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import { checkNdArray, type NdArray, readNpy, readNpz, writeNpy, writeNpz } from "../io/mod.ts";

/**
 * The split codes stored in `split`.
 *
 * @example
 * ```ts
 * import { SPLIT } from "./v1_arrays.ts";
 * console.log(SPLIT.test); // 2
 * ```
 */
export const SPLIT = Object.freeze({ train: 0, validation: 1, test: 2 } as const);

/**
 * Tiny ImageNet (grayscale) pixel mean and standard deviation on the [0, 1] scale (SPEC.md).
 *
 * @example
 * ```ts
 * import { TIN_MEAN, TIN_STD } from "./v1_arrays.ts";
 * console.log((1 - TIN_MEAN) / TIN_STD); // a white pixel after normalisation
 * ```
 */
export const TIN_MEAN = 0.4519;
/** See {@linkcode TIN_MEAN}. */
export const TIN_STD = 0.2221;

/**
 * A validated V1 data set in memory (see the module doc for the layout).
 *
 * @example
 * ```ts
 * import type { V1Arrays } from "./v1_arrays.ts";
 * function neurons(v1: V1Arrays): number {
 *   return v1.session.shape[0];
 * }
 * ```
 */
export interface V1Arrays {
  /** (N, H, W) uint8 0..255 or float32 in [0, 1]. */
  images: NdArray<"uint8"> | NdArray<"float32">;
  /** (repeats, N, neurons) float32 spike counts, NaN where not recorded. */
  responses: NdArray<"float32">;
  /** (neurons,) int32 session id per neuron. */
  session: NdArray<"int32">;
  /** (N,) uint8: 0 train, 1 validation, 2 test. */
  split: NdArray<"uint8">;
  /** (N, neurons) float32 noise-free expected counts, when known (simulations). */
  rates?: NdArray<"float32">;
}

/** The names of the arrays in the layout, required ones first. */
export const V1_ARRAY_NAMES = Object.freeze(
  ["images", "responses", "session", "split", "rates"] as const,
);
const REQUIRED = ["images", "responses", "session", "split"] as const;

function bad(name: string, message: string): CoreError {
  return CoreError.invalidArgument(`v1 arrays: ${name}: ${message}`);
}

function shapeStr(shape: readonly number[]): string {
  return `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;
}

function expectRank(a: NdArray, name: string, rank: number, layout: string): void {
  if (a.shape.length !== rank) {
    throw bad(name, `shape ${shapeStr(a.shape)} has rank ${a.shape.length}; expected ${layout}`);
  }
}

function toFloat32(a: NdArray, name: string, what: string): Float32Array {
  if (a.dtype === "float32") return a.data;
  if (a.dtype === "float64") return Float32Array.from(a.data);
  throw bad(name, `dtype ${a.dtype}; expected ${what}`);
}

function toIntegers(a: NdArray, name: string): number[] | Int32Array | Uint8Array {
  switch (a.dtype) {
    case "int8":
    case "int16":
    case "int32":
    case "uint8":
    case "uint16":
    case "uint32":
    case "bool":
      return a.data as Int32Array | Uint8Array;
    case "int64":
    case "uint64":
      return Array.from(a.data as BigInt64Array | BigUint64Array, (v) => {
        if (v > 2147483647n || v < -2147483648n) {
          throw bad(name, `value ${v} does not fit in int32`);
        }
        return Number(v);
      });
    default:
      throw bad(name, `dtype ${a.dtype}; expected an integer dtype`);
  }
}

function index(shape: readonly number[], flat: number): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${idx.join(", ")}]`;
}

/**
 * Validates arrays already in memory (e.g. from `readNpz`) against the layout and converts the
 * accepted alternative dtypes; throws `INVALID_ARGUMENT` naming the array otherwise. Arrays with
 * other names are ignored.
 *
 * @example
 * ```ts
 * import { parseV1Arrays } from "./v1_arrays.ts";
 * const v1 = parseV1Arrays({
 *   images: { dtype: "float64", shape: [1, 2, 2], data: new Float64Array([0, 0.5, 1, 0.25]) },
 *   responses: { dtype: "float64", shape: [2, 1, 1], data: new Float64Array([1, 2]) },
 *   session: { dtype: "int64", shape: [1], data: new BigInt64Array([0n]) },
 *   split: { dtype: "int64", shape: [1], data: new BigInt64Array([2n]) },
 * });
 * console.log(v1.images.dtype, v1.session.data); // float32 Int32Array(1) [ 0 ]
 * ```
 */
export function parseV1Arrays(arrays: Record<string, NdArray>): V1Arrays {
  if (typeof arrays !== "object" || arrays === null) {
    throw CoreError.invalidArgument(`v1 arrays: expected a record of named arrays`);
  }
  for (const name of REQUIRED) {
    if (!Object.hasOwn(arrays, name) || arrays[name] === undefined) {
      const have = Object.keys(arrays);
      throw bad(
        name,
        `missing; the layout needs ${REQUIRED.join(", ")} (have ${
          have.length ? have.join(", ") : "none"
        })`,
      );
    }
  }
  for (const name of V1_ARRAY_NAMES) {
    if (arrays[name] !== undefined) {
      try {
        checkNdArray(arrays[name], `v1 arrays: ${name}`);
      } catch (err) {
        throw err instanceof CoreError ? err : bad(name, String(err));
      }
    }
  }

  // images (N, H, W)
  const im = arrays.images;
  expectRank(im, "images", 3, "(N, H, W); squeeze a channel axis of 1 first");
  const [N, H, W] = im.shape;
  if (N === 0 || H === 0 || W === 0) throw bad("images", `shape ${shapeStr(im.shape)} is empty`);
  let images: V1Arrays["images"];
  if (im.dtype === "uint8") {
    images = { dtype: "uint8", shape: [N, H, W], data: im.data };
  } else {
    const data = toFloat32(im, "images", "uint8 (0..255) or float32 (0..1)");
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!(v >= 0 && v <= 1)) {
        throw bad(
          "images",
          `value ${v} at ${index(im.shape, i)}; float images must lie in [0, 1] ` +
            `(store 0..255 images as uint8)`,
        );
      }
    }
    images = { dtype: "float32", shape: [N, H, W], data };
  }

  // responses (repeats, N, neurons)
  const rs = arrays.responses;
  expectRank(rs, "responses", 3, "(repeats, N, neurons)");
  const [R, Nr, K] = rs.shape;
  if (Nr !== N) {
    throw bad(
      "responses",
      `shape ${
        shapeStr(rs.shape)
      } has ${Nr} images; images has ${N} (layout (repeats, N, neurons))`,
    );
  }
  if (R === 0 || K === 0) throw bad("responses", `shape ${shapeStr(rs.shape)} is empty`);
  const resp = toFloat32(rs, "responses", "float32 (NaN where not recorded)");
  for (let i = 0; i < resp.length; i++) {
    const v = resp[i];
    if (v !== v) continue; // NaN: not recorded
    if (!(v >= 0) || v === Infinity) {
      throw bad(
        "responses",
        `value ${v} at ${index(rs.shape, i)}; expected non-negative counts or NaN`,
      );
    }
  }

  // session (neurons,)
  const se = arrays.session;
  expectRank(se, "session", 1, "(neurons,)");
  if (se.shape[0] !== K) {
    throw bad("session", `shape ${shapeStr(se.shape)}; responses has ${K} neurons`);
  }
  const sessionValues = toIntegers(se, "session");
  const session = new Int32Array(K);
  for (let k = 0; k < K; k++) {
    const v = Number(sessionValues[k]);
    if (!(v >= 0)) throw bad("session", `value ${v} at [${k}]; session ids must be >= 0`);
    session[k] = v;
  }

  // split (N,)
  const sp = arrays.split;
  expectRank(sp, "split", 1, "(N,)");
  if (sp.shape[0] !== N) {
    throw bad("split", `shape ${shapeStr(sp.shape)}; images has ${N}`);
  }
  const splitValues = toIntegers(sp, "split");
  const split = new Uint8Array(N);
  for (let n = 0; n < N; n++) {
    const v = Number(splitValues[n]);
    if (v !== 0 && v !== 1 && v !== 2) {
      throw bad("split", `value ${v} at [${n}]; expected 0 (train), 1 (validation) or 2 (test)`);
    }
    split[n] = v;
  }

  const out: V1Arrays = {
    images,
    responses: { dtype: "float32", shape: [R, N, K], data: resp },
    session: { dtype: "int32", shape: [K], data: session },
    split: { dtype: "uint8", shape: [N], data: split },
  };

  // rates (N, neurons), optional
  const ra = arrays.rates;
  if (ra !== undefined) {
    expectRank(ra, "rates", 2, "(N, neurons)");
    if (ra.shape[0] !== N || ra.shape[1] !== K) {
      throw bad("rates", `shape ${shapeStr(ra.shape)}; expected (${N}, ${K}) = (N, neurons)`);
    }
    const data = toFloat32(ra, "rates", "float32");
    for (let i = 0; i < data.length; i++) {
      if (!(data[i] >= 0) || data[i] === Infinity) {
        throw bad("rates", `value ${data[i]} at ${index(ra.shape, i)}; expected finite and >= 0`);
      }
    }
    out.rates = { dtype: "float32", shape: [N, K], data };
  }
  return out;
}

/**
 * Reads and validates a V1 data set from `.npz` bytes.
 *
 * @example
 * ```ts
 * import { decodeV1Arrays } from "./v1_arrays.ts";
 * try {
 *   decodeV1Arrays(new Uint8Array(4));
 * } catch (err) {
 *   console.log((err as { code?: string }).code); // INVALID_ARGUMENT
 * }
 * ```
 */
export function decodeV1Arrays(npz: Uint8Array): V1Arrays {
  return parseV1Arrays(readNpz(npz));
}

/**
 * Encodes a V1 data set as `.npz` bytes (validated first; `compress` deflates, which shrinks the
 * NaN padding of `responses` a lot).
 *
 * @example
 * ```ts
 * import { encodeV1Arrays } from "./v1_arrays.ts";
 * const bytes = encodeV1Arrays({
 *   images: { dtype: "uint8", shape: [1, 1, 1], data: new Uint8Array(1) },
 *   responses: { dtype: "float32", shape: [1, 1, 1], data: new Float32Array(1) },
 *   session: { dtype: "int32", shape: [1], data: new Int32Array(1) },
 *   split: { dtype: "uint8", shape: [1], data: new Uint8Array(1) },
 * }, { compress: true });
 * console.log(bytes.length > 0); // true
 * ```
 */
export function encodeV1Arrays(v1: V1Arrays, options: { compress?: boolean } = {}): Uint8Array {
  const checked = parseV1Arrays(v1 as unknown as Record<string, NdArray>);
  return writeNpz(layoutRecord(checked), { compress: options.compress ?? false });
}

function layoutRecord(v1: V1Arrays): Record<string, NdArray> {
  const rec: Record<string, NdArray> = {
    images: v1.images,
    responses: v1.responses,
    session: v1.session,
    split: v1.split,
  };
  if (v1.rates) rec.rates = v1.rates;
  return rec;
}

/**
 * Loads a V1 data set from a path (an `.npz` file, or a folder holding `images.npy`,
 * `responses.npy`, `session.npy`, `split.npy` and optionally `rates.npy`), from `.npz` bytes, or
 * from named arrays in memory. A path that does not exist is `NOT_FOUND`; a missing or malformed
 * array is `INVALID_ARGUMENT` naming it.
 *
 * @example
 * ```ts
 * import { loadV1Arrays, writeV1Arrays } from "./v1_arrays.ts";
 * const dir = await Deno.makeTempDir();
 * await writeV1Arrays(`${dir}/v1`, {
 *   images: { dtype: "uint8", shape: [1, 2, 2], data: new Uint8Array(4) },
 *   responses: { dtype: "float32", shape: [1, 1, 1], data: new Float32Array([2]) },
 *   session: { dtype: "int32", shape: [1], data: new Int32Array(1) },
 *   split: { dtype: "uint8", shape: [1], data: new Uint8Array(1) },
 * });
 * console.log((await loadV1Arrays(`${dir}/v1`)).responses.data); // Float32Array(1) [ 2 ]
 * ```
 */
export async function loadV1Arrays(
  source: string | Uint8Array | Record<string, NdArray>,
): Promise<V1Arrays> {
  if (source instanceof Uint8Array) return decodeV1Arrays(source);
  if (typeof source !== "string") return parseV1Arrays(source);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(source);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CoreError("NOT_FOUND", `v1 arrays: ${source} does not exist`, { cause: err });
    }
    throw err;
  }
  if (info.isFile) {
    try {
      return decodeV1Arrays(await Deno.readFile(source));
    } catch (err) {
      if (err instanceof CoreError) {
        throw new CoreError(err.code, `${source}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
  const arrays: Record<string, NdArray> = {};
  for (const name of V1_ARRAY_NAMES) {
    const file = `${source}/${name}.npy`;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        if ((REQUIRED as readonly string[]).includes(name)) {
          throw bad(name, `${file} is missing; the layout needs ${REQUIRED.join(", ")}`);
        }
        continue;
      }
      throw err;
    }
    try {
      arrays[name] = readNpy(bytes);
    } catch (err) {
      if (err instanceof CoreError) throw bad(name, `${file}: ${err.message}`);
      throw err;
    }
  }
  return parseV1Arrays(arrays);
}

/**
 * Writes a V1 data set: to one `.npz` file when `path` ends in `.npz`, otherwise to a folder of
 * `.npy` files (created if needed). Validates first.
 *
 * @example
 * ```ts
 * import { writeV1Arrays } from "./v1_arrays.ts";
 * const dir = await Deno.makeTempDir();
 * await writeV1Arrays(`${dir}/v1.npz`, {
 *   images: { dtype: "uint8", shape: [1, 1, 1], data: new Uint8Array(1) },
 *   responses: { dtype: "float32", shape: [1, 1, 1], data: new Float32Array(1) },
 *   session: { dtype: "int32", shape: [1], data: new Int32Array(1) },
 *   split: { dtype: "uint8", shape: [1], data: new Uint8Array(1) },
 * }, { compress: true });
 * ```
 */
export async function writeV1Arrays(
  path: string,
  v1: V1Arrays,
  options: { compress?: boolean } = {},
): Promise<void> {
  if (path.endsWith(".npz")) {
    await Deno.writeFile(path, encodeV1Arrays(v1, options));
    return;
  }
  const checked = parseV1Arrays(v1 as unknown as Record<string, NdArray>);
  await Deno.mkdir(path, { recursive: true });
  for (const [name, array] of Object.entries(layoutRecord(checked))) {
    await Deno.writeFile(`${path}/${name}.npy`, writeNpy(array));
  }
}

/**
 * Indices of the images in one split.
 *
 * @example
 * ```ts
 * import { splitIndices } from "./v1_arrays.ts";
 * const split = { dtype: "uint8" as const, shape: [4], data: new Uint8Array([0, 2, 1, 2]) };
 * console.log(splitIndices(split, "test")); // [ 1, 3 ]
 * ```
 */
export function splitIndices(
  split: NdArray<"uint8">,
  which: keyof typeof SPLIT,
): number[] {
  const code = SPLIT[which];
  const out: number[] = [];
  for (let n = 0; n < split.data.length; n++) if (split.data[n] === code) out.push(n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Preprocessing to the model input

/** How {@linkcode resizePlane} resamples. */
export type ResizeMethod = "area" | "bilinear";

/**
 * Resamples one (h, w) plane to (outH, outW).
 *
 * - `area`: every output pixel is the mean of the input area it covers, with fractional
 *   overlaps weighted by length on each axis (box filter; PIL's `BOX`, OpenCV's `INTER_AREA`
 *   when shrinking). The right choice when shrinking, e.g. 420 -> 64 px.
 * - `bilinear`: half-pixel centres (`align_corners=False`, no antialiasing), source coordinate
 *   `(o + 0.5) * in / out - 0.5` clamped to the image, as `torch.nn.functional.interpolate`.
 *
 * @example
 * ```ts
 * import { resizePlane } from "./v1_arrays.ts";
 * const out = resizePlane(new Float32Array([0, 1, 2, 3]), 2, 2, 1, 1, "area");
 * console.log(out[0]); // 1.5
 * ```
 */
export function resizePlane(
  src: ArrayLike<number>,
  h: number,
  w: number,
  outH: number,
  outW: number,
  method: ResizeMethod = "area",
): Float32Array {
  if (src.length !== h * w) {
    throw CoreError.invalidArgument(`resize: plane has ${src.length} values, expected ${h}x${w}`);
  }
  const wy = axisWeights(h, outH, method);
  const wx = axisWeights(w, outW, method);
  // Rows first: tmp (h, outW), then columns: out (outH, outW).
  const tmp = new Float64Array(h * outW);
  for (let y = 0; y < h; y++) {
    for (let o = 0; o < outW; o++) {
      const { idx, wt } = wx[o];
      let s = 0;
      for (let j = 0; j < idx.length; j++) s += wt[j] * src[y * w + idx[j]];
      tmp[y * outW + o] = s;
    }
  }
  const out = new Float32Array(outH * outW);
  for (let o = 0; o < outH; o++) {
    const { idx, wt } = wy[o];
    for (let x = 0; x < outW; x++) {
      let s = 0;
      for (let j = 0; j < idx.length; j++) s += wt[j] * tmp[idx[j] * outW + x];
      out[o * outW + x] = s;
    }
  }
  return out;
}

function axisWeights(
  n: number,
  out: number,
  method: ResizeMethod,
): { idx: number[]; wt: number[] }[] {
  const scale = n / out;
  const res: { idx: number[]; wt: number[] }[] = [];
  for (let o = 0; o < out; o++) {
    if (method === "area") {
      const a = o * scale, b = (o + 1) * scale;
      const idx: number[] = [], wt: number[] = [];
      for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i);
        if (overlap > 1e-12) {
          idx.push(i);
          wt.push(overlap / scale);
        }
      }
      res.push({ idx, wt });
    } else if (method === "bilinear") {
      const s = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), n - 1);
      const i0 = Math.floor(s);
      const i1 = Math.min(i0 + 1, n - 1);
      const t = s - i0;
      res.push(i1 === i0 || t === 0 ? { idx: [i0], wt: [1] } : { idx: [i0, i1], wt: [1 - t, t] });
    } else {
      throw CoreError.invalidArgument(
        `resize: method ${JSON.stringify(method)}; expected "area" or "bilinear"`,
      );
    }
  }
  return res;
}

/**
 * Options of {@linkcode toModelInput}.
 *
 * @example
 * ```ts
 * import type { ModelInputOptions } from "./v1_arrays.ts";
 * // the paper: 420 px at 63 px/deg -> 64 px at 14 px/deg is a centre crop of 288 px then 288 -> 64
 * const paper: ModelInputOptions = { crop: 288, size: 64, method: "area" };
 * ```
 */
export interface ModelInputOptions {
  /** Side of the centred square crop in input pixels (default: the shorter image side). */
  crop?: number;
  /** Output side in pixels (default 64, the model input). */
  size?: number;
  /** Resampling (default `area`). */
  method?: ResizeMethod;
  /** Normalisation mean on the [0, 1] scale (default {@linkcode TIN_MEAN}). */
  mean?: number;
  /** Normalisation standard deviation on the [0, 1] scale (default {@linkcode TIN_STD}). */
  std?: number;
}

/**
 * Turns (N, H, W) images (uint8 0..255 or float in [0, 1]) into the model input: a centred square
 * crop (top-left offset `floor((H - crop) / 2)`, likewise for W), resampled to `size` x `size`,
 * scaled to [0, 1], then `(x - mean) / std`, as an (N, size, size, 1) NHWC float32 array.
 *
 * @example
 * ```ts
 * import { toModelInput } from "./v1_arrays.ts";
 * const images = { dtype: "uint8" as const, shape: [1, 4, 4], data: new Uint8Array(16).fill(255) };
 * const x = toModelInput(images, { crop: 2, size: 1 });
 * console.log(x.shape, x.data[0].toFixed(4)); // [ 1, 1, 1, 1 ] 2.4678
 * ```
 */
export function toModelInput(
  images: NdArray,
  options: ModelInputOptions = {},
): NdArray<"float32"> {
  checkNdArray(images, "images");
  if (images.shape.length !== 3) {
    throw CoreError.invalidArgument(
      `images: shape ${shapeStr(images.shape)}; expected (N, H, W)`,
    );
  }
  const [N, H, W] = images.shape;
  const crop = options.crop ?? Math.min(H, W);
  const size = options.size ?? 64;
  const mean = options.mean ?? TIN_MEAN;
  const std = options.std ?? TIN_STD;
  const method = options.method ?? "area";
  if (!Number.isInteger(crop) || crop < 1 || crop > Math.min(H, W)) {
    throw CoreError.invalidArgument(
      `crop: ${crop}; expected a whole number of pixels in 1..${Math.min(H, W)}`,
    );
  }
  if (!Number.isInteger(size) || size < 1) {
    throw CoreError.invalidArgument(`size: ${size}; expected a whole number >= 1`);
  }
  if (!(std > 0) || !Number.isFinite(mean)) {
    throw CoreError.invalidArgument(`mean/std: ${mean}/${std}; expected finite, std > 0`);
  }
  let scale: number;
  let src: ArrayLike<number>;
  if (images.dtype === "uint8") {
    scale = 1 / 255;
    src = images.data;
  } else if (images.dtype === "float32" || images.dtype === "float64") {
    scale = 1;
    src = images.data;
  } else {
    throw CoreError.invalidArgument(
      `images: dtype ${images.dtype}; expected uint8 (0..255) or float32 (0..1)`,
    );
  }
  const top = Math.floor((H - crop) / 2), left = Math.floor((W - crop) / 2);
  const plane = new Float32Array(crop * crop);
  const out = new Float32Array(N * size * size);
  for (let n = 0; n < N; n++) {
    const base = n * H * W;
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        const v = src[base + (top + y) * W + left + x] * scale;
        if (!Number.isFinite(v)) {
          throw CoreError.invalidArgument(`images: value ${v} at [${n}, ${top + y}, ${left + x}]`);
        }
        plane[y * crop + x] = v;
      }
    }
    const r = crop === size ? plane : resizePlane(plane, crop, crop, size, size, method);
    const o = n * size * size;
    for (let i = 0; i < size * size; i++) out[o + i] = (r[i] - mean) / std;
  }
  return { dtype: "float32", shape: [N, size, size, 1], data: out };
}
