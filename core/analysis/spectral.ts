/**
 * The spectral control of the paper's Sec. 4 (SPEC.md section 7): the original (noisy) image's
 * Fourier phase with the reconstruction's Fourier amplitude,
 *
 *     S = F^-1( |F(x_r)| * exp(i * angle(F(x_o))) ),
 *
 * an image that matches the reconstruction in norm (Parseval: ||S|| = ||x_r||) and frequency
 * content but keeps the original's structure. Both spectra are real-image spectra (Hermitian), so
 * S is real up to rounding; the imaginary residue is dropped. Through core/fft.ts (fft.js), so
 * images must be square with a power-of-two side (64 in the paper).
 *
 * @example
 * ```ts
 * import { spectralControl } from "./spectral.ts";
 * const n = 4;
 * const original = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
 * const recon = Float32Array.from({ length: n * n }, (_, i) => (i % 3) - 1);
 * const s = spectralControl(original, recon, n);
 * const norm = (a: ArrayLike<number>) => Math.hypot(...Array.from(a));
 * console.log(Math.abs(norm(s) - norm(recon)) < 1e-4); // true
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import { fft2d } from "../fft.ts";

/** Forward 2-D spectrum of an n x n real image: [re, im]. */
export function spectrum(image: ArrayLike<number>, n: number): [Float64Array, Float64Array] {
  const re = Float64Array.from(image);
  const im = new Float64Array(n * n);
  fft2d(re, im, n);
  return [re, im];
}

function checkSide(n: number, length: number, field: string): void {
  if (n < 2 || (n & (n - 1)) !== 0 || length !== n * n) {
    throw CoreError.invalidArgument(
      `${field}: ${length} pixels for side ${n}; the spectral control needs square images with a ` +
        `power-of-two side (e.g. 64x64)`,
    );
  }
}

/**
 * One image: the phase of `original` with the amplitude of `reconstruction`, both n x n (row-major,
 * one channel). Where the original's coefficient is exactly zero its phase is taken as 0.
 */
export function spectralControl(
  original: ArrayLike<number>,
  reconstruction: ArrayLike<number>,
  n: number,
): Float32Array {
  checkSide(n, original.length, "original");
  checkSide(n, reconstruction.length, "reconstruction");
  const [ore, oim] = spectrum(original, n);
  const [rre, rim] = spectrum(reconstruction, n);
  const re = new Float64Array(n * n);
  const im = new Float64Array(n * n);
  for (let k = 0; k < n * n; k++) {
    const amp = Math.hypot(rre[k], rim[k]);
    const phase = Math.atan2(oim[k], ore[k]);
    re[k] = amp * Math.cos(phase);
    im[k] = amp * Math.sin(phase);
  }
  fft2d(re, im, n, true);
  return Float32Array.from(re);
}

/**
 * A batch: `originals` [N, n, n] and `reconstructions` [N, K, n, n] (K per original, e.g. one per
 * norm budget), row-major; returns [N, K, n, n].
 */
export function spectralControlBatch(
  originals: Float32Array,
  reconstructions: Float32Array,
  count: number,
  perOriginal: number,
  n: number,
): Float32Array {
  const px = n * n;
  if (originals.length !== count * px || reconstructions.length !== count * perOriginal * px) {
    throw CoreError.invalidArgument(
      `reconstructions: ${reconstructions.length} values for ${count} originals x ${perOriginal} ` +
        `x ${n}x${n} (originals: ${originals.length})`,
    );
  }
  const out = new Float32Array(reconstructions.length);
  for (let i = 0; i < count; i++) {
    const o = originals.subarray(i * px, (i + 1) * px);
    for (let k = 0; k < perOriginal; k++) {
      const at = (i * perOriginal + k) * px;
      out.set(spectralControl(o, reconstructions.subarray(at, at + px), n), at);
    }
  }
  return out;
}
