/**
 * Two-dimensional complex FFT of square power-of-two grids, in place on separate real and
 * imaginary float64 arrays, through the fft.js package (radix-4): rows, then columns. Forward is
 * unnormalised, inverse divides by n^2 (numpy's convention), so `inverse(forward(x)) = x`.
 *
 * @example
 * ```ts
 * import { fft2d } from "./fft.ts";
 * const re = new Float64Array(16).fill(1); // a 4x4 constant image
 * const im = new Float64Array(16);
 * fft2d(re, im, 4);
 * console.log(re[0], Math.abs(re[5]) < 1e-12); // 16 true (all energy at DC)
 * ```
 * @module
 */
import FFT from "fft.js";

interface Plan {
  fft: {
    transform(out: Float64Array, data: Float64Array): void;
    inverseTransform(out: Float64Array, data: Float64Array): void;
  };
  a: Float64Array;
  b: Float64Array;
}

const plans = new Map<number, Plan>();

function plan(n: number): Plan {
  let p = plans.get(n);
  if (!p) {
    p = { fft: new FFT(n), a: new Float64Array(2 * n), b: new Float64Array(2 * n) };
    plans.set(n, p);
  }
  return p;
}

/** In-place 2-D FFT of the n x n grid `re + i im` (n a power of two, at least 2). */
export function fft2d(re: Float64Array, im: Float64Array, n: number, inverse = false): void {
  if (n < 2 || (n & (n - 1)) !== 0 || re.length !== n * n || im.length !== n * n) {
    throw new RangeError(`fft2d: n = ${n} must be a power of two >= 2 with n*n values`);
  }
  const { fft, a, b } = plan(n);
  const line = (off: number, stride: number) => {
    for (let k = 0; k < n; k++) {
      a[2 * k] = re[off + k * stride];
      a[2 * k + 1] = im[off + k * stride];
    }
    if (inverse) fft.inverseTransform(b, a);
    else fft.transform(b, a);
    for (let k = 0; k < n; k++) {
      re[off + k * stride] = b[2 * k];
      im[off + k * stride] = b[2 * k + 1];
    }
  };
  for (let r = 0; r < n; r++) line(r * n, 1);
  for (let c = 0; c < n; c++) line(c, n);
}
