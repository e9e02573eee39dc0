/**
 * The public entry point: corrupt a batch of images (N x H x W or N x H x W x C, C = 1 or 3,
 * uint8 in 0..255 or float32 in [0, 1]) with one corruption at one severity, seeded.
 *
 * Randomness: image i of the batch draws from the stream of (seed, indexOffset + i, corruption,
 * severity) (see rng.ts), so any split of a data set into batches gives the same bytes as long as
 * each image keeps its index.
 *
 * Gray images: by default (`grayPath: "rgb"`, the reference's and the paper's way) a gray image
 * is stacked to RGB, corrupted, and turned back to gray with the luma weights 0.299/0.587/0.114, so
 * per-channel noise is averaged as in the paper. `grayPath: "direct"` corrupts the single channel
 * (faster, stronger noise). `toGray: true` turns RGB results into gray the same way (the paper's
 * pipeline on RGB inputs).
 *
 * Output: the input's dtype. uint8 results are truncated like the reference's
 * `np.uint8(x * 255)` (`truncate: false` rounds instead); float32 results are exact unless
 * `truncate: true` asks for the reference's 8-bit values (floor(255 x) / 255).
 *
 * @example
 * ```ts
 * import { corruptBatch } from "./corrupt.ts";
 * const images = { dtype: "uint8" as const, shape: [2, 32, 32, 3], data: new Uint8Array(2 * 32 * 32 * 3).fill(128) };
 * const out = corruptBatch(images, { corruption: "gaussian_noise", severity: 3, seed: 7 });
 * console.log(out.shape, out.dtype); // [ 2, 32, 32, 3 ] uint8
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import { CORRUPTORS, gaussianBlurBytes, noiseBytes, pixelateBytes } from "./corruptions.ts";
import { type Img, LUMA, newImage, SCRATCH_KEEP_MAX } from "./image.ts";
import { jpegRoundTripFast } from "./kernels.ts";
import {
  type CorruptionName,
  CORRUPTIONS,
  PRESET_NAMES,
  type PresetName,
  PRESETS,
} from "./presets.ts";
import { streamFor } from "./rng.ts";

/** A batch of images. */
export interface ImageBatch {
  dtype: "uint8" | "float32";
  /** [N, H, W] (gray) or [N, H, W, C] with C 1 or 3. */
  shape: number[];
  data: Uint8Array | Float32Array;
}

/** What to do to a batch. */
export interface CorruptOptions {
  /** One of {@linkcode CORRUPTIONS}. */
  corruption: string;
  /** 1..5. */
  severity: number;
  /** Whole number 0..2^53-1 (default 0). */
  seed?: number;
  /** `imagecorruptions` (default, the paper's) or `tiny-imagenet-c`. */
  preset?: string;
  /** Data-set index of the batch's first image (default 0). */
  indexOffset?: number;
  /** How gray images are corrupted: through RGB (default) or directly. */
  grayPath?: "rgb" | "direct";
  /** Return RGB results as gray (luma). */
  toGray?: boolean;
  /** Reference 8-bit truncation (default: true for uint8, false for float32). */
  truncate?: boolean;
}

/** Smallest side accepted (the reference's limit). */
export const MIN_SIDE = 32;

/** Checks options; returns them resolved. Throws INVALID_ARGUMENT naming the field. */
export function checkOptions(o: CorruptOptions): {
  corruption: CorruptionName;
  severity: number;
  seed: number;
  preset: PresetName;
  indexOffset: number;
} {
  if (!(CORRUPTIONS as readonly string[]).includes(o.corruption)) {
    throw CoreError.invalidArgument(
      `corruption: unknown ${JSON.stringify(o.corruption)}; allowed: ${CORRUPTIONS.join(", ")}`,
    );
  }
  if (!Number.isInteger(o.severity) || o.severity < 1 || o.severity > 5) {
    throw CoreError.invalidArgument(
      `severity: ${JSON.stringify(o.severity)} is outside 1..5; allowed: 1, 2, 3, 4, 5`,
    );
  }
  const preset = o.preset === undefined || o.preset === "" ? "imagecorruptions" : o.preset;
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) {
    throw CoreError.invalidArgument(
      `preset: unknown ${JSON.stringify(preset)}; allowed: ${PRESET_NAMES.join(", ")}`,
    );
  }
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw CoreError.invalidArgument(`seed: ${JSON.stringify(seed)}; expected a whole number >= 0`);
  }
  const indexOffset = o.indexOffset ?? 0;
  if (!Number.isSafeInteger(indexOffset) || indexOffset < 0) {
    throw CoreError.invalidArgument(
      `index_offset: ${JSON.stringify(indexOffset)}; expected a whole number >= 0`,
    );
  }
  return {
    corruption: o.corruption as CorruptionName,
    severity: o.severity,
    seed,
    preset: preset as PresetName,
    indexOffset,
  };
}

/** Checks a batch's dtype, shape, byte length and values; returns [n, h, w, c]. */
export function checkBatch(b: ImageBatch, field = "images"): [number, number, number, number] {
  if (b.dtype !== "uint8" && b.dtype !== "float32") {
    throw CoreError.invalidArgument(
      `${field}.dtype: ${JSON.stringify(b.dtype)}; allowed: uint8 (0..255), float32 ([0, 1])`,
    );
  }
  const s = b.shape;
  if (
    !Array.isArray(s) || (s.length !== 3 && s.length !== 4) ||
    s.some((d) => !Number.isSafeInteger(d) || d < 0)
  ) {
    throw CoreError.invalidArgument(
      `${field}.shape: [${s}]; expected [N, H, W] or [N, H, W, C] with C 1 or 3`,
    );
  }
  const [n, h, w] = s;
  const c = s.length === 4 ? s[3] : 1;
  if (c !== 1 && c !== 3) {
    throw CoreError.invalidArgument(`${field}.shape: ${c} channels; allowed: 1 (gray), 3 (RGB)`);
  }
  if (h < MIN_SIDE || w < MIN_SIDE) {
    throw CoreError.invalidArgument(
      `${field}.shape: images are ${h}x${w}; the smallest allowed is ${MIN_SIDE}x${MIN_SIDE}`,
    );
  }
  const expected = n * h * w * c;
  const isU8 = b.dtype === "uint8";
  if (isU8 ? !(b.data instanceof Uint8Array) : !(b.data instanceof Float32Array)) {
    throw CoreError.invalidArgument(`${field}.data: does not hold ${b.dtype} values`);
  }
  if (b.data.length !== expected) {
    const size = isU8 ? 1 : 4;
    throw CoreError.invalidArgument(
      `${field}.data: ${b.data.length * size} bytes, expected ${expected * size} (${b.dtype} [${
        s.join(",")
      }])`,
    );
  }
  if (!isU8) {
    const d = b.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (!(v >= 0 && v <= 1)) {
        throw CoreError.invalidArgument(
          `${field}.data: element ${i} is ${v}; float32 images must be finite and in [0, 1]`,
        );
      }
    }
  }
  return [n, h, w, c];
}

/**
 * Corrupts one image in [0, 1] (h x w x c, c 1 or 3) and returns the result in [0, 1], unquantised.
 * `inPlace: true` (corruptBatch's scratch) lets the corruption overwrite `img` and return it,
 * with values possibly outside [0, 1] (the caller clamps).
 *
 * @example
 * ```ts
 * import { corruptImage } from "./corrupt.ts";
 * import { newImage } from "./image.ts";
 * const out = corruptImage(newImage(32, 32, 3), "fog", 2, { seed: 1, index: 0 });
 * console.log(out.c); // 3
 * ```
 */
export function corruptImage(
  img: Img,
  corruption: CorruptionName,
  severity: number,
  opts: { seed?: number; index?: number; preset?: PresetName; inPlace?: boolean } = {},
): Img {
  const preset = opts.preset ?? "imagecorruptions";
  const rng = streamFor(opts.seed ?? 0, opts.index ?? 0, CORRUPTIONS.indexOf(corruption), severity);
  const params = PRESETS[preset][corruption][severity - 1];
  return CORRUPTORS[corruption](img, params, rng, preset, opts.inPlace === true);
}

/** corruptBatch's input image, reused across calls (refilled per image, may be overwritten). */
let scratchIn: Img = newImage(0, 0, 0);

/** Byte value times 1 / 255 (the same doubles as the multiplication), by table. */
const BYTE = Float64Array.from({ length: 256 }, (_, i) => i * (1 / 255));

function quantize(v: number, truncate: boolean): number {
  const x = v * 255;
  // The epsilon absorbs float32 input rounding (u / 255 stored as float32) at integer boundaries.
  const q = truncate ? Math.floor(x + 1e-4) : Math.round(x);
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

// The per-pixel loops of corruptBatch are leaf functions, each monomorphic in its array types:
// they are optimised after a call or two and stay so (a loop inside corruptBatch ran unoptimised
// on most calls, corruptBatch itself being called once per batch).

/** d (h x w x 3 or the input's layout) = bytes of image `base` / 255 (gray stacked if `viaRgb`). */
function bytesIn(s8: Uint8Array, base: number, d: Float64Array, viaRgb: boolean): void {
  if (viaRgb) {
    const n = d.length / 3;
    for (let p = 0, q = 0; p < n; p++, q += 3) d[q] = d[q + 1] = d[q + 2] = BYTE[s8[base + p]];
  } else {
    for (let p = 0; p < d.length; p++) d[p] = BYTE[s8[base + p]];
  }
}

/** The same for float32 inputs. */
function floatsIn(sf: Float32Array, base: number, d: Float64Array, viaRgb: boolean): void {
  if (viaRgb) {
    const n = d.length / 3;
    for (let p = 0, q = 0; p < n; p++, q += 3) d[q] = d[q + 1] = d[q + 2] = sf[base + p];
  } else {
    for (let p = 0; p < d.length; p++) d[p] = sf[base + p];
  }
}

/** quantize(v, true) per value into bytes: floor(255 v + 1e-4) clamped (the store truncates). */
function bytesOutTrunc(r: Float64Array, o8: Uint8Array, ob: number, n: number): void {
  for (let p = 0; p < n; p++) {
    const x = r[p] * 255 + 1e-4;
    o8[ob + p] = Math.min(Math.max(x, 0), 255); // branchless (noisy values clip at random)
  }
}

/** Float32 results, exact or the reference's 8-bit values. */
function floatsOut(r: Float64Array, of: Float32Array, ob: number, n: number, truncate: boolean) {
  for (let p = 0; p < n; p++) of[ob + p] = truncate ? quantize(r[p], true) / 255 : clip(r[p]);
}

/** v clipped to [0, 1] (corruptImage's results in corruptBatch are not clipped yet). */
function clip(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** RGB results to gray (luma), as bytes or floats. */
function grayOut(
  r: Float64Array,
  out: Uint8Array | Float32Array,
  ob: number,
  n: number,
  truncate: boolean,
  isU8: boolean,
): void {
  for (let p = 0; p < n; p++) {
    let v: number;
    if (truncate) {
      // The reference's uint8 RGB, then PIL's convert("L") (rounded luma of 8-bit values).
      const R = quantize(r[3 * p], true), G = quantize(r[3 * p + 1], true);
      const B = quantize(r[3 * p + 2], true);
      const l = Math.floor((R * 299 + G * 587 + B * 114 + 500) / 1000);
      v = isU8 ? l : l / 255;
    } else {
      const l = LUMA[0] * clip(r[3 * p]) + LUMA[1] * clip(r[3 * p + 1]) +
        LUMA[2] * clip(r[3 * p + 2]);
      v = isU8 ? quantize(l, false) : l;
    }
    out[ob + p] = v;
  }
}

/**
 * Corrupts every image of a batch; see the module docs. Throws INVALID_ARGUMENT (a CoreError)
 * naming the field for bad options or a bad batch.
 */
export function corruptBatch(batch: ImageBatch, options: CorruptOptions): ImageBatch {
  const o = checkOptions(options);
  const [n, h, w, c] = checkBatch(batch);
  const isU8 = batch.dtype === "uint8";
  const truncate = options.truncate ?? isU8;
  const viaRgb = c === 1 && (options.grayPath ?? "rgb") === "rgb";
  const gray = c === 1 || options.toGray === true;
  const work = viaRgb ? 3 : c;
  const outC = gray ? 1 : c;
  const per = h * w * c;
  const outPer = h * w * outC;
  const out = isU8 ? new Uint8Array(n * outPer) : new Float32Array(n * outPer);
  const src = batch.data;
  // 8-bit corruptions on 8-bit RGB: no float round trip (the same bytes as the float path).
  if (
    isU8 && c === 3 && !gray &&
    (o.corruption === "pixelate" || o.corruption === "jpeg_compression")
  ) {
    const params = PRESETS[o.preset][o.corruption][o.severity - 1] as number;
    for (let i = 0; i < n; i++) {
      const one = (src as Uint8Array).subarray(i * per, (i + 1) * per);
      if (o.corruption === "pixelate") {
        pixelateBytes(one, h, w, c, params, o.preset, out as Uint8Array, i * per);
      } else jpegRoundTripFast(one, h, w, params, out as Uint8Array, i * per);
    }
    return { dtype: batch.dtype, shape: [...batch.shape], data: out } as ImageBatch;
  }
  // Noise on 8-bit values with the reference's truncation: one fused pass (the same bytes).
  if (
    isU8 && !viaRgb && !gray && truncate &&
    (o.corruption === "gaussian_noise" || o.corruption === "speckle_noise")
  ) {
    const p = PRESETS[o.preset][o.corruption][o.severity - 1] as number;
    const ci = CORRUPTIONS.indexOf(o.corruption);
    for (let i = 0; i < n; i++) {
      const one = (src as Uint8Array).subarray(i * per, (i + 1) * per);
      const rng = streamFor(o.seed, o.indexOffset + i, ci, o.severity);
      noiseBytes(o.corruption, one, p, rng, out as Uint8Array, i * per);
    }
    return { dtype: batch.dtype, shape: [...batch.shape], data: out } as ImageBatch;
  }
  // Gaussian blur of 8-bit values with the reference's truncation: in and out in WebAssembly.
  if (isU8 && !viaRgb && !gray && truncate && o.corruption === "gaussian_blur") {
    const sigma = PRESETS[o.preset].gaussian_blur[o.severity - 1];
    for (let i = 0; i < n; i++) {
      const one = (src as Uint8Array).subarray(i * per, (i + 1) * per);
      gaussianBlurBytes(one, h, w, c, sigma, out as Uint8Array, i * per);
    }
    return { dtype: batch.dtype, shape: [...batch.shape], data: out } as ImageBatch;
  }
  // One input image for all calls (refilled per image; corruptors may work in it, and their
  // result is consumed before the next image).
  let inData = scratchIn.data;
  if (inData.length !== h * w * work) {
    inData = new Float64Array(h * w * work);
    if (inData.length <= SCRATCH_KEEP_MAX) scratchIn = { h, w, c: work, data: inData };
  }
  const img: Img = { h, w, c: work, data: inData };
  const d = img.data;
  for (let i = 0; i < n; i++) {
    if (isU8) bytesIn(src as Uint8Array, i * per, d, viaRgb);
    else floatsIn(src as Float32Array, i * per, d, viaRgb);
    const r = corruptImage(img, o.corruption, o.severity, {
      seed: o.seed,
      index: o.indexOffset + i,
      preset: o.preset,
      inPlace: true,
    }).data;
    const ob = i * outPer;
    if (gray && work === 3) grayOut(r, out, ob, h * w, truncate, isU8);
    else if (isU8 && truncate) bytesOutTrunc(r, out as Uint8Array, ob, outPer);
    else if (isU8) { for (let p = 0; p < outPer; p++) out[ob + p] = quantize(r[p], false); }
    else floatsOut(r, out as Float32Array, ob, outPer, truncate);
  }
  const shape = batch.shape.length === 4 ? [n, h, w, outC] : [n, h, w];
  return { dtype: batch.dtype, shape, data: out } as ImageBatch;
}
