/**
 * Saliency and the salient-norm ratio of the paper's Eq. 1 (SPEC.md section 7).
 *
 * The paper took saliency density maps from DeepGaze II, whose weights cannot be obtained here, so
 * cotrain computes a published bottom-up model by default, the spectral residual of
 *
 *   X. Hou and L. Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007:
 *   L = log|F(I)|, P = angle(F(I)), R = L - h3 * L (3x3 mean filter, replicated border),
 *   S = g * |F^-1(exp(R + i P))|^2 with g a Gaussian (sigma 2.5 px at 64 px, as the authors' code),
 *
 * computed at 64x64 (the authors work at 64 px too) and normalised to a density (sum 1). A density
 * map can also be supplied as an array (any size; it is resized to 64x64 and normalised).
 *
 * The salient mask holds the densest pixels up to a cumulative mass of 0.7 (pixels sorted by
 * density, descending; ties by index). With the image resized to 64x64,
 *
 *   rho(I) = ||mask . I||^2 / ||I||^2,   rho_bar = (rho(I_r) - rho(I_o)) / (1 - rho(I_o))
 *
 * for a reconstruction I_r of the original I_o, with the mask of I_o. rho_bar > 0: the
 * reconstruction puts relatively more of its norm on the salient pixels than the original does.
 *
 * @example
 * ```ts
 * import { normRatio, salientMask } from "./saliency.ts";
 * const density = new Float32Array([0.5, 0.3, 0.15, 0.05]);
 * const { mask, mass } = salientMask(density, 0.7);
 * console.log(Array.from(mask), mass); // [1, 1, 0, 0] 0.8 (0.5 < 0.7 <= 0.8)
 * const r = normRatio(new Float32Array([1, 1, 1, 1]), [new Float32Array([2, 0, 0, 0])], mask);
 * console.log(r.rhoOriginal, r.rhoReconstructions[0], r.rhoBar[0]); // 0.5 1 1
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import { fft2d } from "../fft.ts";
import { blurInPlace, gaussianKernel1d } from "./blur.ts";

/** Side of the square grid the ratio is computed at (the paper's 64x64). */
export const SALIENCY_SIZE = 64;
/** Cumulative density mass of the salient mask. */
export const DEFAULT_MASS = 0.7;
/** Sigma (pixels at 64x64) of the spectral residual's final Gaussian smoothing. */
export const SR_SIGMA = 2.5;

/**
 * Resizes a one-channel image [h, w] to [H, W]: area averaging when shrinking (exact for whole
 * factors), bilinear with half-pixel centres otherwise.
 */
export function resizeImage(
  src: ArrayLike<number>,
  h: number,
  w: number,
  H: number,
  W: number,
): Float32Array {
  if (src.length !== h * w) {
    throw CoreError.invalidArgument(`image: ${src.length} pixels, not ${h}x${w}`);
  }
  const out = new Float32Array(H * W);
  if (h === H && w === W) {
    out.set(Array.from(src));
    return out;
  }
  if (H <= h && W <= w) {
    // area: each output pixel averages the input area it covers (fractional edges weighted)
    const sy = h / H, sx = w / W;
    for (let Y = 0; Y < H; Y++) {
      const y0 = Y * sy, y1 = y0 + sy;
      for (let X = 0; X < W; X++) {
        const x0 = X * sx, x1 = x0 + sx;
        let s = 0;
        for (let y = Math.floor(y0); y < Math.min(h, Math.ceil(y1)); y++) {
          const wy = Math.min(y + 1, y1) - Math.max(y, y0);
          for (let x = Math.floor(x0); x < Math.min(w, Math.ceil(x1)); x++) {
            const wx = Math.min(x + 1, x1) - Math.max(x, x0);
            s += wy * wx * src[y * w + x];
          }
        }
        out[Y * W + X] = s / (sy * sx);
      }
    }
    return out;
  }
  for (let Y = 0; Y < H; Y++) {
    const fy = Math.min(Math.max((Y + 0.5) * (h / H) - 0.5, 0), h - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), ty = fy - y0;
    for (let X = 0; X < W; X++) {
      const fx = Math.min(Math.max((X + 0.5) * (w / W) - 0.5, 0), w - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w - 1), tx = fx - x0;
      out[Y * W + X] = (1 - ty) * ((1 - tx) * src[y0 * w + x0] + tx * src[y0 * w + x1]) +
        ty * ((1 - tx) * src[y1 * w + x0] + tx * src[y1 * w + x1]);
    }
  }
  return out;
}

/** Normalises a non-negative map to sum 1 (INVALID_ARGUMENT for negative, NaN or all-zero maps). */
export function toDensity(map: ArrayLike<number>, field = "density"): Float32Array {
  let s = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!(v >= 0) || !Number.isFinite(v)) {
      throw CoreError.invalidArgument(`${field}: value ${v} at ${i}; a density is finite and >= 0`);
    }
    s += v;
  }
  if (!(s > 0)) throw CoreError.invalidArgument(`${field}: all zero; a density needs mass`);
  return Float32Array.from(map, (v) => v / s);
}

/**
 * Spectral-residual saliency (Hou & Zhang 2007) of a one-channel image [h, w] as a density map
 * [64, 64] (sum 1).
 */
export function spectralResidualSaliency(
  image: ArrayLike<number>,
  h: number,
  w: number,
  size = SALIENCY_SIZE,
): Float32Array {
  const n = size;
  const re = Float64Array.from(resizeImage(image, h, w, n, n));
  const im = new Float64Array(n * n);
  fft2d(re, im, n);
  const logAmp = new Float64Array(n * n);
  const phase = new Float64Array(n * n);
  for (let k = 0; k < n * n; k++) {
    logAmp[k] = Math.log(Math.hypot(re[k], im[k]) + 1e-12);
    phase[k] = Math.atan2(im[k], re[k]);
  }
  // spectral residual: log amplitude minus its 3x3 mean (replicated border, as MATLAB's
  // imfilter(..., 'replicate') in the authors' code)
  const clamp = (v: number) => Math.min(Math.max(v, 0), n - 1);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) s += logAmp[clamp(y + dy) * n + clamp(x + dx)];
      }
      const r = logAmp[y * n + x] - s / 9;
      const e = Math.exp(r);
      re[y * n + x] = e * Math.cos(phase[y * n + x]);
      im[y * n + x] = e * Math.sin(phase[y * n + x]);
    }
  }
  fft2d(re, im, n, true);
  const sal = new Float32Array(n * n);
  for (let k = 0; k < n * n; k++) sal[k] = re[k] * re[k] + im[k] * im[k];
  smooth(sal, n, n, SR_SIGMA * (n / SALIENCY_SIZE));
  return toDensity(sal, "saliency");
}

/** Gaussian smoothing of an [h, w] map in place (zero padding, as MATLAB's imfilter default). */
function smooth(map: Float32Array, h: number, w: number, sigma: number): void {
  blurInPlace(map, [1, h, w, 1], gaussianKernel1d(sigma));
}

/** A salient mask and the density mass it holds. */
export interface SalientMask {
  /** 1 for salient pixels, 0 elsewhere. */
  mask: Uint8Array;
  /** Density mass inside the mask (>= the asked mass). */
  mass: number;
  /** Number of salient pixels. */
  count: number;
}

/**
 * The salient mask of a density map: pixels sorted by density (descending, ties by index) are
 * taken until their cumulative sum reaches `mass` of the total (default 0.7).
 */
export function salientMask(density: ArrayLike<number>, mass = DEFAULT_MASS): SalientMask {
  if (!(mass > 0 && mass <= 1)) throw CoreError.invalidArgument(`mass: ${mass}; in (0, 1]`);
  const d = toDensity(density);
  const order = Array.from({ length: d.length }, (_, i) => i).sort((a, b) => d[b] - d[a] || a - b);
  const mask = new Uint8Array(d.length);
  let cum = 0;
  let count = 0;
  // relative tolerance: a mass that sums to exactly 0.7 in exact arithmetic stops there
  const goal = mass * (1 - 1e-6);
  for (const i of order) {
    if (cum >= goal) break;
    mask[i] = 1;
    cum += d[i];
    count++;
  }
  return { mask, mass: cum, count };
}

/** rho(I) = ||mask . I||^2 / ||I||^2 (INVALID_ARGUMENT for an all-zero image). */
export function rho(image: ArrayLike<number>, mask: ArrayLike<number>): number {
  if (image.length !== mask.length) {
    throw CoreError.invalidArgument(`mask: ${mask.length} pixels, the image has ${image.length}`);
  }
  let inside = 0, total = 0;
  for (let i = 0; i < image.length; i++) {
    const e = image[i] * image[i];
    total += e;
    if (mask[i]) inside += e;
  }
  if (!(total > 0)) throw CoreError.invalidArgument("image: all zero; rho needs a norm");
  return inside / total;
}

/** rho_bar = (rho_r - rho_o) / (1 - rho_o) (NaN when rho_o = 1: the mask holds all of I_o). */
export function rhoBar(rhoReconstruction: number, rhoOriginal: number): number {
  return rhoOriginal === 1 ? NaN : (rhoReconstruction - rhoOriginal) / (1 - rhoOriginal);
}

/** Eq. 1 for one original and its reconstructions (e.g. one per budget), all on the mask's grid. */
export interface NormRatio {
  rhoOriginal: number;
  rhoReconstructions: number[];
  rhoBar: number[];
}

/** rho of the original, of each reconstruction, and rho_bar, with the original's salient mask. */
export function normRatio(
  original: ArrayLike<number>,
  reconstructions: ArrayLike<number>[],
  mask: ArrayLike<number>,
): NormRatio {
  const ro = rho(original, mask);
  const rr = reconstructions.map((r) => rho(r, mask));
  return { rhoOriginal: ro, rhoReconstructions: rr, rhoBar: rr.map((r) => rhoBar(r, ro)) };
}
