/**
 * A small radix-2 complex FFT (1-D and 2-D, in place, float64), used by the built-in image set for
 * 1/f noise and by its oriented-energy probe for power spectra.
 *
 * @example
 * ```ts
 * import { fft2d } from "./image_set_fft.ts";
 *
 * const re = new Float64Array(16).fill(1); // a 4x4 constant image
 * const im = new Float64Array(16);
 * fft2d(re, im, 4);
 * console.log(re[0], Math.abs(re[5]) < 1e-12); // 16 true (all energy at DC)
 * ```
 * @module
 */

/**
 * In-place FFT of `n` complex values (`n` a power of two) at `re[off + k * stride]`.
 * `inverse` computes the unnormalised inverse (divide by `n` yourself).
 *
 * @example
 * ```ts
 * import { fft } from "./image_set_fft.ts";
 * const re = new Float64Array([1, 0, 0, 0]);
 * const im = new Float64Array(4);
 * fft(re, im, 4);
 * console.log([...re]); // [ 1, 1, 1, 1 ]
 * ```
 */
export function fft(
  re: Float64Array,
  im: Float64Array,
  n: number,
  inverse = false,
  off = 0,
  stride = 1,
): void {
  if (n < 1 || (n & (n - 1)) !== 0) throw new RangeError(`fft: n=${n} is not a power of two`);
  // Bit-reversal permutation.
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const a = off + i * stride;
      const b = off + j * stride;
      let t = re[a];
      re[a] = re[b];
      re[b] = t;
      t = im[a];
      im[a] = im[b];
      im[b] = t;
    }
  }
  const sign = inverse ? 1 : -1;
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (sign * 2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    const half = len >> 1;
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < half; k++) {
        const a = off + (i + k) * stride;
        const b = off + (i + k + half) * stride;
        const xr = re[b] * cr - im[b] * ci;
        const xi = re[b] * ci + im[b] * cr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
        const t = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = t;
      }
    }
  }
}

/**
 * In-place 2-D FFT of an `n` x `n` complex array stored row-major (unnormalised inverse).
 *
 * @example
 * ```ts
 * import { fft2d } from "./image_set_fft.ts";
 * const re = new Float64Array(4);
 * re[0] = 1;
 * const im = new Float64Array(4);
 * fft2d(re, im, 2);
 * console.log([...re]); // [ 1, 1, 1, 1 ]
 * ```
 */
export function fft2d(re: Float64Array, im: Float64Array, n: number, inverse = false): void {
  for (let r = 0; r < n; r++) fft(re, im, n, inverse, r * n, 1);
  for (let c = 0; c < n; c++) fft(re, im, n, inverse, c, n);
}
