/**
 * Seeded randomness for the corruptions: one independent stream per (seed, image index,
 * corruption, severity), so an image gets the same bytes whatever batch it travels in and on
 * every machine.
 *
 * How a stream is made:
 * 1. The key (seed split into two 32-bit words, image index split likewise, corruption number,
 *    severity) is absorbed word by word into four 32-bit lanes with the murmur3 finaliser
 *    (`fmix32`) after each word, then each lane is finalised once more. Only 32-bit integer math
 *    (`Math.imul`, shifts, xor) is used, so the result is identical in every JS engine.
 * 2. The four lanes seed xoshiro128** (Blackman and Vigna), a small, fast generator with period
 *    2^128 - 1; an all-zero state is replaced by a fixed constant.
 * 3. Uniforms are `next() / 2^32` (32 bits of resolution); normals come from the Box-Muller
 *    transform in pairs; Poisson variates by inversion of the exact CDF (tables cached
 *    per mean, so uint8 inputs, which have at most 256 distinct means, cost one lookup).
 *
 * Written by hand (not an npm package) because the exact bit-level algorithm is part of cotrain's
 * reproducibility contract and must never change with a dependency update.
 *
 * @example
 * ```ts
 * import { streamFor } from "./rng.ts";
 * const a = streamFor(42, 7, 0, 3);
 * const b = streamFor(42, 7, 0, 3);
 * console.log(a.uniform() === b.uniform()); // true
 * ```
 * @module
 */

/** The murmur3 32-bit finaliser: a bijective avalanche of one word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO32 = 4294967296;

/** Splits a non-negative safe integer into [low, high] 32-bit words. */
function words(x: number): [number, number] {
  return [x % TWO32 >>> 0, Math.floor(x / TWO32) >>> 0];
}

/** A xoshiro128** generator with helpers for the distributions the corruptions need. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare = 0;
  #hasSpare = false;

  /** Seeds from four 32-bit words (an all-zero state is replaced by a constant). */
  constructor(s0: number, s1: number, s2: number, s3: number) {
    if ((s0 | s1 | s2 | s3) === 0) s0 = 0x9e3779b9;
    this.#s0 = s0 | 0;
    this.#s1 = s1 | 0;
    this.#s2 = s2 | 0;
    this.#s3 = s3 | 0;
  }

  /** The next 32-bit word, as an unsigned number. */
  next(): number {
    const s1 = this.#s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return r >>> 0;
  }

  /** Uniform in [0, 1) with 32-bit resolution. */
  uniform(): number {
    return this.next() / TWO32;
  }

  /** Uniform in [lo, hi). */
  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** A whole number uniform in [lo, hi) (hi - lo < 2^32): floor of a scaled 32-bit uniform. */
  intIn(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** Standard normal (Box-Muller, pairs). */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const u1 = (this.next() + 0.5) / TWO32; // (0, 1): log is finite
    const u2 = this.next() / TWO32;
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(a);
    this.#hasSpare = true;
    return r * Math.cos(a);
  }

  /** Fills `out` with normals of mean `loc` and standard deviation `scale`. */
  fillNormal(out: Float32Array | Float64Array, loc = 0, scale = 1): void {
    const n = out.length;
    let i = 0;
    if (this.#hasSpare && n > 0) out[i++] = loc + scale * this.normal();
    for (; i + 1 < n; i += 2) {
      const u1 = (this.next() + 0.5) / TWO32;
      const u2 = this.next() / TWO32;
      const r = scale * Math.sqrt(-2 * Math.log(u1));
      const a = 2 * Math.PI * u2;
      out[i] = loc + r * Math.cos(a);
      out[i + 1] = loc + r * Math.sin(a);
    }
    if (i < n) out[i] = loc + scale * this.normal();
  }

  /** A Poisson variate of mean `lambda` (0 <= lambda <= 700), by inversion of the exact CDF. */
  poisson(lambda: number): number {
    if (!(lambda > 0)) return 0;
    const cdf = poissonCdf(lambda);
    const u = this.uniform();
    // Binary search for the smallest k with cdf[k] > u.
    let lo = 0;
    let hi = cdf.length - 1;
    if (u >= cdf[hi]) return hi;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const cdfCache = new Map<number, Float64Array>();

/**
 * The Poisson CDF of mean `lambda` at 0, 1, 2, ... up to where it reaches 1 (within 2^-40), as
 * one fixed computation, cached per mean (the cache is dropped whole past 8192 means).
 */
export function poissonCdf(lambda: number): Float64Array {
  let t = cdfCache.get(lambda);
  if (t) return t;
  const values: number[] = [];
  let p = Math.exp(-lambda);
  let acc = 0;
  const kMax = Math.ceil(lambda + 12 * Math.sqrt(lambda) + 20);
  for (let k = 0; k <= kMax; k++) {
    acc += p;
    values.push(acc);
    if (k > lambda && 1 - acc < 9.1e-13) break;
    p = p * lambda / (k + 1);
  }
  t = Float64Array.from(values);
  if (cdfCache.size >= 8192) cdfCache.clear();
  cdfCache.set(lambda, t);
  return t;
}

/**
 * The random stream of one image under one corruption and severity.
 *
 * @param seed the user's seed, a whole number 0..2^53-1
 * @param index the image's index in the data set (not in the batch), 0..2^53-1
 * @param corruption the corruption's number in {@linkcode CORRUPTIONS} order
 * @param severity 1..5
 *
 * @example
 * ```ts
 * import { streamFor } from "./rng.ts";
 * console.log(streamFor(0, 0, 0, 1).next() !== streamFor(1, 0, 0, 1).next()); // true
 * ```
 */
export function streamFor(seed: number, index: number, corruption: number, severity: number): Rng {
  const [sl, sh] = words(seed);
  const [il, ih] = words(index);
  const key = [sl, sh, il, ih, corruption >>> 0, severity >>> 0];
  const lanes = [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344];
  for (let l = 0; l < 4; l++) {
    let h = lanes[l];
    for (const w of key) h = fmix32((h ^ w) + Math.imul(l + 1, 0x9e3779b9));
    lanes[l] = fmix32(h ^ key.length);
  }
  return new Rng(lanes[0], lanes[1], lanes[2], lanes[3]);
}
