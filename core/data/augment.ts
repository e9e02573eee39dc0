/**
 * Training-time augmentation of gray images, as in the paper's training (SPEC section 4): random
 * crop 64 with padding 4 (zero padding, as torchvision's `RandomCrop(64, padding=4)`), horizontal
 * flip with probability 0.5, and rotation by an angle uniform in [-15, 15] degrees (bilinear,
 * counter-clockwise for positive angles as torchvision's `RandomRotation`, about the image centre,
 * fill 0), applied in that order; then Tiny ImageNet normalisation (mean 0.4519, std 0.2221) to
 * NHWC float32.
 *
 * Every image's parameters come from its own stream keyed by (seed, epoch, image index in the
 * data set), so an image is augmented the same way whatever batch it travels in, on any machine.
 *
 * Inputs are uint8 (0..255) or float32 arrays shaped `[N, H, W]` or `[N, H, W, 1]`; the output of
 * {@linkcode augment} has the input's dtype and shape (uint8 is rounded after the rotation, as a
 * PIL pipeline would). Fill 0 is in input units, so augment before normalising.
 *
 * @example
 * ```ts
 * import { trainingBatch } from "./augment.ts";
 *
 * const images = { dtype: "uint8" as const, shape: [10, 64, 64], data: new Uint8Array(10 * 4096).fill(128) };
 * const batch = trainingBatch(images, [3, 7], { seed: 1, epoch: 0 });
 * console.log(batch.shape); // [ 2, 64, 64, 1 ]
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import type { NdArray } from "../io/ndarray.ts";
import { Rng } from "../random.ts";

/**
 * Tiny ImageNet's gray mean, in [0, 1] units.
 *
 * @example
 * ```ts
 * import { TIN_MEAN, TIN_STD } from "./augment.ts";
 * console.log((128 / 255 - TIN_MEAN) / TIN_STD > 0); // true
 * ```
 */
export const TIN_MEAN = 0.4519;
/**
 * Tiny ImageNet's gray standard deviation, in [0, 1] units.
 *
 * @example
 * ```ts
 * import { TIN_STD } from "./augment.ts";
 * console.log(TIN_STD); // 0.2221
 * ```
 */
export const TIN_STD = 0.2221;

/**
 * Options for {@linkcode augment}.
 *
 * @example
 * ```ts
 * import type { AugmentOptions } from "./augment.ts";
 * const o: AugmentOptions = { seed: 0, epoch: 3, padding: 4, flipProbability: 0.5, maxRotationDeg: 15 };
 * console.log(o.epoch); // 3
 * ```
 */
export interface AugmentOptions {
  /** The run's seed (a safe integer). */
  seed: number;
  /** The epoch (a safe integer): each epoch draws new parameters. */
  epoch: number;
  /** Zero padding of the random crop in pixels (default 4; 0 disables the crop). */
  padding?: number;
  /** Probability of a horizontal flip (default 0.5). */
  flipProbability?: number;
  /** Largest rotation in degrees (default 15; 0 disables it). */
  maxRotationDeg?: number;
}

/**
 * One image's augmentation: crop offsets into the padded image (`0..2*padding`; `padding` each
 * means no shift), flip, and rotation angle in degrees (positive: counter-clockwise).
 *
 * @example
 * ```ts
 * import type { AugmentParams } from "./augment.ts";
 * const identity: AugmentParams = { dx: 4, dy: 4, flip: false, angleDeg: 0 };
 * console.log(identity.flip); // false
 * ```
 */
export interface AugmentParams {
  /** Left edge of the crop in the padded image. */
  dx: number;
  /** Top edge of the crop in the padded image. */
  dy: number;
  /** Mirror left-right. */
  flip: boolean;
  /** Rotation, degrees, counter-clockwise. */
  angleDeg: number;
}

function checkInt(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v)) {
    throw CoreError.invalidArgument(
      `augment: ${name} is ${JSON.stringify(v)}; expected a safe integer`,
    );
  }
  return v as number;
}

function resolved(options: AugmentOptions) {
  const padding = options.padding ?? 4;
  const flipProbability = options.flipProbability ?? 0.5;
  const maxRotationDeg = options.maxRotationDeg ?? 15;
  if (!Number.isSafeInteger(padding) || padding < 0) {
    throw CoreError.invalidArgument(`augment: padding is ${padding}; expected an integer >= 0`);
  }
  if (!(flipProbability >= 0 && flipProbability <= 1)) {
    throw CoreError.invalidArgument(
      `augment: flipProbability is ${flipProbability}; expected 0..1`,
    );
  }
  if (!(maxRotationDeg >= 0 && maxRotationDeg <= 180)) {
    throw CoreError.invalidArgument(
      `augment: maxRotationDeg is ${maxRotationDeg}; expected 0..180`,
    );
  }
  return {
    seed: checkInt("seed", options.seed),
    epoch: checkInt("epoch", options.epoch),
    padding,
    flipProbability,
    maxRotationDeg,
  };
}

/**
 * The augmentation of image `index` (its position in the data set) in `epoch`.
 *
 * @example
 * ```ts
 * import { augmentParams } from "./augment.ts";
 * const p = augmentParams(5, { seed: 1, epoch: 2 });
 * console.log(p.dx >= 0 && p.dx <= 8, Math.abs(p.angleDeg) <= 15); // true true
 * ```
 */
export function augmentParams(index: number, options: AugmentOptions): AugmentParams {
  return paramsFor(checkInt("index", index), resolved(options));
}

function paramsFor(index: number, o: ReturnType<typeof resolved>): AugmentParams {
  const rng = Rng.from(o.seed, "augment", o.epoch, index);
  const dy = rng.int(2 * o.padding + 1);
  const dx = rng.int(2 * o.padding + 1);
  const flip = rng.uniform() < o.flipProbability;
  const angleDeg = rng.uniform(-o.maxRotationDeg, o.maxRotationDeg);
  return { dx, dy, flip, angleDeg };
}

/**
 * Bilinear rotation of one `h` x `w` image by `angleDeg` (counter-clockwise) about its centre
 * `((w-1)/2, (h-1)/2)`; samples outside the image count as 0.
 *
 * @example
 * ```ts
 * import { rotateBilinear } from "./augment.ts";
 * const src = new Float64Array(9);
 * src[5] = 1; // (x=2, y=1): right of centre
 * const out = rotateBilinear(src, 3, 3, 90);
 * console.log(Math.round(out[1])); // 1: now above the centre (x=1, y=0)
 * ```
 */
export function rotateBilinear(
  src: ArrayLike<number>,
  h: number,
  w: number,
  angleDeg: number,
  out: Float64Array = new Float64Array(h * w),
): Float64Array {
  const t = (angleDeg * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const at = (x: number, y: number) => (x >= 0 && x < w && y >= 0 && y < h ? src[y * w + x] : 0);
  for (let y = 0; y < h; y++) {
    const v = y - cy;
    for (let x = 0; x < w; x++) {
      const u = x - cx;
      const sx = cx + u * c - v * s;
      const sy = cy + u * s + v * c;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      out[y * w + x] = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
        fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
    }
  }
  return out;
}

/**
 * Applies `p` to one `h` x `w` image: zero-padded crop, then flip, then rotation.
 *
 * @example
 * ```ts
 * import { applyAugmentParams } from "./augment.ts";
 * const src = Float64Array.from({ length: 4 }, (_, i) => i + 1); // [[1, 2], [3, 4]]
 * const out = applyAugmentParams(src, 2, 2, { dx: 1, dy: 1, flip: true, angleDeg: 0 }, 1);
 * console.log([...out]); // [ 2, 1, 4, 3 ]
 * ```
 */
export function applyAugmentParams(
  src: ArrayLike<number>,
  h: number,
  w: number,
  p: AugmentParams,
  padding: number,
  out: Float64Array = new Float64Array(h * w),
): Float64Array {
  const tmp = p.angleDeg === 0 ? out : new Float64Array(h * w);
  const ox = p.dx - padding;
  const oy = p.dy - padding;
  for (let y = 0; y < h; y++) {
    const sy = y + oy;
    for (let x = 0; x < w; x++) {
      const xx = p.flip ? w - 1 - x : x; // flip after the crop: read the crop mirrored
      const sx = xx + ox;
      tmp[y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx] : 0;
    }
  }
  if (p.angleDeg !== 0) rotateBilinear(tmp, h, w, p.angleDeg, out);
  return out;
}

type GrayArray = NdArray<"uint8"> | NdArray<"float32">;

function checkImages(images: GrayArray, where: string): [number, number, number] {
  const { dtype, shape, data } = images;
  if (dtype !== "uint8" && dtype !== "float32") {
    throw CoreError.invalidArgument(`${where}: dtype ${dtype}; expected uint8 or float32`);
  }
  const ok = (shape.length === 3 || (shape.length === 4 && shape[3] === 1)) &&
    shape.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!ok) {
    throw CoreError.invalidArgument(
      `${where}: shape [${shape.join(", ")}]; expected [N, H, W] or [N, H, W, 1]`,
    );
  }
  const [n, h, w] = shape;
  if (data.length !== n * h * w) {
    throw CoreError.invalidArgument(
      `${where}: ${data.length} values for shape [${shape.join(", ")}]`,
    );
  }
  return [n, h, w];
}

/**
 * Augments a batch. `indices[k]` is the data-set index of row `k` (default: the row number); it
 * picks the image's random stream, so results do not depend on batch composition.
 *
 * @example
 * ```ts
 * import { augment } from "./augment.ts";
 * const batch = { dtype: "float32" as const, shape: [2, 8, 8], data: new Float32Array(128).fill(1) };
 * const out = augment(batch, [40, 41], { seed: 3, epoch: 0 });
 * console.log(out.dtype, out.shape); // float32 [ 2, 8, 8 ]
 * ```
 */
export function augment<T extends GrayArray>(
  images: T,
  indices: ArrayLike<number> | undefined,
  options: AugmentOptions,
): T {
  const [n, h, w] = checkImages(images, "augment");
  const o = resolved(options);
  if (indices && indices.length !== n) {
    throw CoreError.invalidArgument(`augment: ${indices.length} indices for ${n} images`);
  }
  const px = h * w;
  const isU8 = images.dtype === "uint8";
  const outData = isU8 ? new Uint8Array(n * px) : new Float32Array(n * px);
  const buf = new Float64Array(px);
  for (let k = 0; k < n; k++) {
    const p = paramsFor(checkInt("index", indices ? indices[k] : k), o);
    applyAugmentParams(images.data.subarray(k * px, (k + 1) * px), h, w, p, o.padding, buf);
    if (isU8) {
      for (let i = 0; i < px; i++) {
        outData[k * px + i] = Math.min(255, Math.max(0, Math.round(buf[i])));
      }
    } else {
      outData.set(buf, k * px);
    }
  }
  return { dtype: images.dtype, shape: [...images.shape], data: outData } as T;
}

/**
 * Tiny ImageNet normalisation to NHWC float32 `[N, H, W, 1]`: uint8 is divided by 255 first;
 * float32 is taken to be in [0, 1] already. `(x - mean) / std`.
 *
 * @example
 * ```ts
 * import { normalizeTin } from "./augment.ts";
 * const x = normalizeTin({ dtype: "uint8", shape: [1, 1, 1], data: new Uint8Array([255]) });
 * console.log(x.shape, x.data[0].toFixed(4)); // [ 1, 1, 1, 1 ] 2.4678
 * ```
 */
export function normalizeTin(
  images: GrayArray,
  mean: number = TIN_MEAN,
  std: number = TIN_STD,
): NdArray<"float32"> {
  const [n, h, w] = checkImages(images, "normalizeTin");
  if (!(std > 0)) throw CoreError.invalidArgument(`normalizeTin: std is ${std}; expected > 0`);
  const scale = images.dtype === "uint8" ? 1 / 255 : 1;
  const out = new Float32Array(images.data.length);
  const src = images.data;
  for (let i = 0; i < out.length; i++) out[i] = (src[i] * scale - mean) / std;
  return { dtype: "float32", shape: [n, h, w, 1], data: out };
}

function gatherRows<T extends GrayArray>(images: T, rows: ArrayLike<number>, where: string): T {
  const [n, h, w] = checkImages(images, where);
  const px = h * w;
  const out = images.dtype === "uint8"
    ? new Uint8Array(rows.length * px)
    : new Float32Array(rows.length * px);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    if (!Number.isSafeInteger(r) || r < 0 || r >= n) {
      throw CoreError.invalidArgument(`${where}: row ${r} is outside 0..${n - 1}`);
    }
    out.set(images.data.subarray(r * px, (r + 1) * px), k * px);
  }
  return { dtype: images.dtype, shape: [rows.length, h, w], data: out } as T;
}

/**
 * A training batch: rows `rows` of the data set `images`, augmented (each with its own stream,
 * keyed by its row) and normalised to NHWC float32.
 *
 * @example
 * ```ts
 * import { trainingBatch } from "./augment.ts";
 * const set = { dtype: "uint8" as const, shape: [4, 8, 8], data: new Uint8Array(256) };
 * console.log(trainingBatch(set, [2, 0], { seed: 0, epoch: 1 }).shape); // [ 2, 8, 8, 1 ]
 * ```
 */
export function trainingBatch(
  images: GrayArray,
  rows: ArrayLike<number>,
  options: AugmentOptions,
): NdArray<"float32"> {
  const batch = gatherRows(images, rows, "trainingBatch");
  return normalizeTin(augment(batch, rows, options));
}

/**
 * An evaluation batch: rows `rows` of `images`, normalised to NHWC float32 (no augmentation).
 *
 * @example
 * ```ts
 * import { evaluationBatch } from "./augment.ts";
 * const set = { dtype: "uint8" as const, shape: [4, 8, 8], data: new Uint8Array(256) };
 * console.log(evaluationBatch(set, [1]).shape); // [ 1, 8, 8, 1 ]
 * ```
 */
export function evaluationBatch(images: GrayArray, rows: ArrayLike<number>): NdArray<"float32"> {
  return normalizeTin(gatherRows(images, rows, "evaluationBatch"));
}
