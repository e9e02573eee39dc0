/**
 * Separable Gaussian blur of NHWC batches with zero padding (a "same" convolution), as the
 * reference blurs the reconstruction gradient (sigma 1) and the spectral-residual saliency map
 * (sigma 2.5). Plain loops: the maps are small (64x64).
 *
 * @example
 * ```ts
 * import { blurInPlace, gaussianKernel1d } from "./blur.ts";
 * const k = gaussianKernel1d(1); // 9 taps (truncated at 4 sigma), sum 1
 * const x = new Float32Array(25);
 * x[12] = 1; // a 5x5 impulse
 * blurInPlace(x, [1, 5, 5, 1], k);
 * console.log(x[12] > x[13] && x[13] > x[14]); // true
 * ```
 * @module
 */

/** Separable Gaussian kernel of `sigma`, truncated at 4 sigma (scipy's default), sum 1. */
export function gaussianKernel1d(sigma: number): Float32Array {
  const radius = Math.max(1, Math.ceil(4 * sigma));
  const k = new Float32Array(2 * radius + 1);
  let s = 0;
  for (let i = -radius; i <= radius; i++) {
    s += k[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  }
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Blurs every channel of an NHWC batch `[rows, h, w, c]` in place with the separable kernel `k`
 * (zero padding, as a "same" convolution).
 */
export function blurInPlace(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  k: Float32Array,
  scratch = new Float32Array(x.length),
): void {
  const [rows, h, w, c] = shape;
  const rad = (k.length - 1) / 2;
  const img = h * w * c;
  for (let r = 0; r < rows; r++) {
    const o = r * img;
    // along x into scratch
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let j = -rad; j <= rad; j++) {
            const q = xx + j;
            if (q >= 0 && q < w) s += k[j + rad] * x[o + (y * w + q) * c + ch];
          }
          scratch[o + (y * w + xx) * c + ch] = s;
        }
      }
    }
    // along y back into x
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let j = -rad; j <= rad; j++) {
            const q = y + j;
            if (q >= 0 && q < h) s += k[j + rad] * scratch[o + (q * w + xx) * c + ch];
          }
          x[o + (y * w + xx) * c + ch] = s;
        }
      }
    }
  }
}
