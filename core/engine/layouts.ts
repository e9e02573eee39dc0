/**
 * Layouts of conv weights: cotrain's tfjs variables are HWIO [kh, kw, in, out]; onnxruntime wants
 * OIHW, the input gradient the flipped, transposed kernel, and its NCHWc kernels blocked filters.
 * Plain loops over the source order (no library converts into MLAS' blocked layout), each writing
 * into a buffer the caller may reuse.
 *
 * @example
 * ```ts
 * import { hwioToOihw, oihwToHwio } from "./layouts.ts";
 * const w = Float32Array.from({ length: 2 * 2 * 3 * 4 }, (_, i) => i);
 * const back = oihwToHwio(hwioToOihw(w, [2, 2, 3, 4]), [2, 2, 3, 4]);
 * console.log(back.every((v, i) => v === w[i])); // true
 * ```
 * @module
 */

/** HWIO [kh, kw, i, o] -> OIHW. */
export function hwioToOihw(
  w: Float32Array,
  [kh, kw, ci, co]: readonly number[],
  out: Float32Array = new Float32Array(w.length),
): Float32Array {
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = w[src + o];
      }
    }
  }
  return out;
}

/** OIHW -> HWIO [kh, kw, i, o] (the shape given is the HWIO one). */
export function oihwToHwio(w: Float32Array, [kh, kw, ci, co]: readonly number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const dst = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) out[dst + o] = w[((o * ci + i) * kh + y) * kw + x];
      }
    }
  }
  return out;
}

/** HWIO [kh, kw, i, o] -> the input gradient's kernel [i, o, kh, kw], flipped in both axes. */
export function hwioToBack(
  w: Float32Array,
  [kh, kw, ci, co]: readonly number[],
  out: Float32Array = new Float32Array(w.length),
): Float32Array {
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) {
          out[((i * co + o) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] = w[src + o];
        }
      }
    }
  }
  return out;
}

/**
 * HWIO [kh, kw, i, o] -> onnxruntime's NCHWc filter layout for channel block `b` (MLAS'
 * "OIHWBiBo"): channels padded with zeros to multiples of b, stored as
 * [O/b][I/b][kh][kw][b inputs][b outputs]. `out` (zeros where padded) may be reused: padding is
 * never written.
 */
export function hwioToNchwc(
  w: Float32Array,
  [kh, kw, ci, co]: readonly number[],
  b: number,
  out: Float32Array = new Float32Array(Math.ceil(co / b) * Math.ceil(ci / b) * b * b * kh * kw),
): Float32Array {
  const ib = Math.ceil(ci / b);
  const blockStride = ib * kh * kw * b * b; // one block of outputs
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        const bi = (i / b) | 0;
        const row = ((((bi * kh + y) * kw + x) * b) + (i - bi * b)) * b;
        // a block's b outputs are contiguous on both sides
        for (let o0 = 0, dst = row; o0 < co; o0 += b, dst += blockStride) {
          const n = Math.min(b, co - o0);
          for (let k = 0; k < n; k++) out[dst + k] = w[src + o0 + k];
        }
      }
    }
  }
  return out;
}

/**
 * HWIO [kh, kw, i, o] -> the NCHWc filter of the input gradient: the kernel flipped in both axes
 * with inputs and outputs swapped (as {@linkcode hwioToBack}: o inputs, i outputs), blocked as
 * {@linkcode hwioToNchwc}.
 */
export function hwioToNchwcBack(
  w: Float32Array,
  [kh, kw, ci, co]: readonly number[],
  b: number,
  out: Float32Array = new Float32Array(Math.ceil(co / b) * Math.ceil(ci / b) * b * b * kh * kw),
): Float32Array {
  const ob = Math.ceil(co / b); // input blocks of the backward convolution
  const taps = kh * kw;
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const tap = (kh - 1 - y) * kw + (kw - 1 - x);
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        const bi = (i / b) | 0;
        const lane = i - bi * b;
        for (let o0 = 0, blk = bi * ob; o0 < co; o0 += b, blk++) {
          const n = Math.min(b, co - o0);
          const dst = (blk * taps + tap) * b * b + lane;
          for (let k = 0; k < n; k++) out[dst + k * b] = w[src + o0 + k];
        }
      }
    }
  }
  return out;
}
