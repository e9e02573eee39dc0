/**
 * Conversions between 32-bit floats and the two 16-bit float formats stored by the codecs:
 * IEEE 754 half precision (`float16`, safetensors `F16`, numpy `<f2`) and bfloat16 (`BF16`).
 * 16-bit values are kept as raw bits in a `Uint16Array`.
 *
 * Narrowing rounds to nearest, ties to even (bit-identical to numpy's `astype(np.float16)`);
 * overflow gives ±Infinity, NaN stays NaN (its payload's high bits kept).
 *
 * @example
 * ```ts
 * import { f16ToF32, f32ToF16 } from "./half.ts";
 *
 * const bits = f32ToF16(new Float32Array([1, 0.1, 65504]));
 * console.log(f16ToF32(bits)); // Float32Array(3) [ 1, 0.0999755859375, 65504 ]
 * ```
 * @module
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * The 32-bit float bits of the half-precision value with bits `h` (exact).
 *
 * @example
 * ```ts
 * import { halfBitsToFloatBits } from "./half.ts";
 * console.log(halfBitsToFloatBits(0x3c00).toString(16)); // "3f800000" (1.0)
 * ```
 */
export function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let sig = h & 0x3ff;
  if (exp === 0) {
    if (sig === 0) return sign >>> 0;
    let e = 113; // a subnormal half is sig * 2^-24: normalise it
    while ((sig & 0x400) === 0) {
      sig <<= 1;
      e--;
    }
    return (sign | (e << 23) | ((sig & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 31) return (sign | 0x7f800000 | (sig << 13)) >>> 0;
  return (sign | ((exp + 112) << 23) | (sig << 13)) >>> 0;
}

/**
 * The half-precision bits nearest to the 32-bit float with bits `f` (ties to even).
 *
 * @example
 * ```ts
 * import { floatBitsToHalfBits } from "./half.ts";
 * console.log(floatBitsToHalfBits(0x3f800000).toString(16)); // "3c00" (1.0)
 * ```
 */
export function floatBitsToHalfBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = f & 0x7f800000;
  let sig = f & 0x007fffff;
  if (exp >= 0x47800000) {
    if (exp === 0x7f800000 && sig !== 0) {
      const nan = 0x7c00 + (sig >>> 13);
      return sign + (nan === 0x7c00 ? 0x7c01 : nan);
    }
    return sign + 0x7c00; // infinity, or overflow to infinity
  }
  if (exp <= 0x38000000) {
    if (exp < 0x33000000) return sign; // underflows to signed zero
    const e = exp >>> 23;
    sig = (0x00800000 + sig) >>> (113 - e);
    if ((sig & 0x3fff) !== 0x1000 || (f & 0x7ff) !== 0) sig += 0x1000;
    return sign + (sig >>> 13);
  }
  const hexp = (exp - 0x38000000) >>> 13;
  if ((sig & 0x3fff) !== 0x1000) sig += 0x1000;
  return sign + ((sig >>> 13) + hexp); // a carry out of the significand bumps the exponent
}

/**
 * The number held by half-precision bits `h`.
 *
 * @example
 * ```ts
 * import { halfToNumber } from "./half.ts";
 * console.log(halfToNumber(0xc000)); // -2
 * ```
 */
export function halfToNumber(h: number): number {
  U32[0] = halfBitsToFloatBits(h & 0xffff);
  return F32[0];
}

/**
 * The half-precision bits nearest to `x` (rounded first to float32, then to half).
 *
 * @example
 * ```ts
 * import { numberToHalf } from "./half.ts";
 * console.log(numberToHalf(-2).toString(16)); // "c000"
 * ```
 */
export function numberToHalf(x: number): number {
  F32[0] = x;
  return floatBitsToHalfBits(U32[0]);
}

/**
 * Widens half-precision bits to float32 (exact).
 *
 * @example
 * ```ts
 * import { f16ToF32 } from "./half.ts";
 * console.log(f16ToF32(new Uint16Array([0x3c00, 0x7c00]))); // Float32Array(2) [ 1, Infinity ]
 * ```
 */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = halfBitsToFloatBits(bits[i]);
  return out;
}

/**
 * Narrows float32 values to half-precision bits (round to nearest, ties to even).
 *
 * @example
 * ```ts
 * import { f32ToF16 } from "./half.ts";
 * console.log(f32ToF16(new Float32Array([1, 1e6]))); // Uint16Array(2) [ 15360, 31744 ]
 * ```
 */
export function f32ToF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatBitsToHalfBits(u[i]);
  return out;
}

/**
 * Widens bfloat16 bits to float32 (exact).
 *
 * @example
 * ```ts
 * import { bf16ToF32 } from "./half.ts";
 * console.log(bf16ToF32(new Uint16Array([0x3f80, 0xc040]))); // Float32Array(2) [ 1, -3 ]
 * ```
 */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = (bits[i] << 16) >>> 0;
  return out;
}

/**
 * Narrows float32 values to bfloat16 bits (round to nearest, ties to even; NaN stays a quiet
 * NaN), as PyTorch's `tensor.to(torch.bfloat16)` does.
 *
 * @example
 * ```ts
 * import { f32ToBf16 } from "./half.ts";
 * console.log(f32ToBf16(new Float32Array([1, -3]))); // Uint16Array(2) [ 16256, 49216 ]
 * ```
 */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const f = u[i];
    if ((f & 0x7f800000) === 0x7f800000 && (f & 0x007fffff) !== 0) {
      out[i] = (f >>> 16) | 0x0040;
    } else {
      out[i] = Math.floor((f + 0x7fff + ((f >>> 16) & 1)) / 65536);
    }
  }
  return out;
}
