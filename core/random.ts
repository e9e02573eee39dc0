/**
 * cotrain's one source of randomness: xoshiro128** (Blackman and Vigna; period 2^128 - 1) seeded
 * from a key of numbers and strings through the murmur3 finaliser, with the distributions the
 * science needs. Every random choice in core/ takes a key such as (seed, "augment", epoch, image
 * index), so the same key gives the same numbers on every machine and in any batch composition.
 *
 * How a key becomes a stream: each key part becomes 32-bit words (a number: a tag, then its low
 * and high words; a string: a tag with its length, then its UTF-8 bytes four at a time); the words
 * are absorbed into four 32-bit lanes with `fmix32` after each word, and each lane is finalised
 * once more; the lanes are the generator's state (an all-zero state is replaced by a constant).
 * `fork(...label)` absorbs more parts into the parent's key, giving an independent child stream.
 * Only 32-bit integer math (`Math.imul`, shifts, xor) is used, so results are identical in every
 * JS engine.
 *
 * Written by hand, not taken from npm: the exact bit-level algorithm is part of cotrain's
 * reproducibility contract and must never change with a dependency update.
 *
 * @example
 * ```ts
 * import { rngFor } from "./random.ts";
 * const a = rngFor(42, "augment", 3, 17);
 * const b = rngFor(42, "augment", 3, 17);
 * console.log(a.normal() === b.normal()); // true
 * ```
 * @module
 */

const TWO32 = 4294967296;
const ROOT = [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344];

/** The murmur3 32-bit finaliser: a bijective avalanche of one word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One part of a stream's key. */
export type KeyPart = number | string;

function keyWords(part: KeyPart): number[] {
  if (typeof part === "string") {
    const bytes = new TextEncoder().encode(part);
    const out = [(0x53545200 ^ bytes.length) >>> 0];
    for (let i = 0; i < bytes.length; i += 4) {
      out.push(
        (bytes[i] | ((bytes[i + 1] ?? 0) << 8) | ((bytes[i + 2] ?? 0) << 16) |
          ((bytes[i + 3] ?? 0) << 24)) >>> 0,
      );
    }
    return out;
  }
  if (!Number.isSafeInteger(part)) {
    throw new RangeError(`random: key part ${part} is not a safe integer or a string`);
  }
  const a = Math.abs(part);
  return [(0x4e554d00 ^ (part < 0 ? 1 : 0)) >>> 0, a % TWO32 >>> 0, Math.floor(a / TWO32) >>> 0];
}

function absorb(lanes: readonly number[], parts: readonly KeyPart[]): number[] {
  const words = parts.flatMap(keyWords);
  return lanes.map((lane, l) => {
    let h = lane;
    for (const w of words) h = fmix32(((h ^ w) + Math.imul(l + 1, 0x9e3779b9)) >>> 0);
    return fmix32((h ^ words.length) >>> 0);
  });
}

const cdfCache = new Map<number, Float64Array>();

/**
 * The Poisson CDF of mean `lambda` at 0, 1, 2, ... up to where it reaches 1 (within ~1e-12),
 * cached per mean (the cache is dropped whole past 8192 means; uint8 images have at most 256).
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

/** A xoshiro128** stream with the distributions cotrain uses. */
export class Rng {
  #key: number[];
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #spare = 0;
  #hasSpare = false;

  /** Seeds from four 32-bit words (an all-zero state is replaced by a constant). */
  constructor(s0: number, s1: number, s2: number, s3: number) {
    if ((s0 | s1 | s2 | s3) === 0) s0 = 0x9e3779b9;
    this.#key = [s0 >>> 0, s1 >>> 0, s2 >>> 0, s3 >>> 0];
    this.#s0 = s0 | 0;
    this.#s1 = s1 | 0;
    this.#s2 = s2 | 0;
    this.#s3 = s3 | 0;
  }

  /** The stream of a key (same as {@linkcode rngFor}). */
  static from(...key: KeyPart[]): Rng {
    return rngFor(...key);
  }

  /** An independent child stream: the parent's key extended by `label`. */
  fork(...label: KeyPart[]): Rng {
    const [a, b, c, d] = absorb(this.#key, label);
    return new Rng(a, b, c, d);
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

  /** Uniform in [a, b) (default [0, 1)) with 32-bit resolution. */
  uniform(a = 0, b = 1): number {
    return a + (b - a) * (this.next() / TWO32);
  }

  /** A whole number uniform in [0, n) (n < 2^32). */
  int(n: number): number {
    return Math.floor((this.next() / TWO32) * n);
  }

  /** A whole number uniform in [lo, hi). */
  intIn(lo: number, hi: number): number {
    return lo + this.int(hi - lo);
  }

  /** Normal with the given mean and standard deviation (Box-Muller, in pairs). */
  normal(mean = 0, std = 1): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return mean + std * this.#spare;
    }
    const u1 = (this.next() + 0.5) / TWO32; // in (0, 1): the log is finite
    const u2 = this.next() / TWO32;
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(a);
    this.#hasSpare = true;
    return mean + std * r * Math.cos(a);
  }

  /** Fills `out` with normals of mean `loc` and standard deviation `scale`. */
  fillNormal(out: Float32Array | Float64Array, loc = 0, scale = 1): void {
    const n = out.length;
    let i = 0;
    if (this.#hasSpare && n > 0) out[i++] = this.normal(loc, scale);
    for (; i + 1 < n; i += 2) {
      const u1 = (this.next() + 0.5) / TWO32;
      const u2 = this.next() / TWO32;
      const r = scale * Math.sqrt(-2 * Math.log(u1));
      const a = 2 * Math.PI * u2;
      out[i] = loc + r * Math.cos(a);
      out[i + 1] = loc + r * Math.sin(a);
    }
    if (i < n) out[i] = this.normal(loc, scale);
  }

  /** Log-normal with the given median and standard deviation of the log. */
  logNormal(median: number, sdLog: number): number {
    return median * Math.exp(sdLog * this.normal());
  }

  /** A Poisson variate of mean `lambda` (0 <= lambda <= ~700), by inversion of the exact CDF. */
  poisson(lambda: number): number {
    if (!(lambda > 0)) return 0;
    const cdf = poissonCdf(lambda);
    const u = this.uniform();
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

  /** A Gamma(shape, 1) variate (Marsaglia and Tsang 2000). */
  gamma(shape: number): number {
    if (shape < 1) {
      return this.gamma(shape + 1) * Math.pow(this.uniform() || 1 / TWO32, 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number, v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = (this.next() + 0.5) / TWO32;
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Shuffles `xs` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(xs: T): T {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }
}

/** The stream of a key, e.g. `rngFor(seed, "augment", epoch, index)`. */
export function rngFor(...key: KeyPart[]): Rng {
  const [a, b, c, d] = absorb(ROOT, key);
  return new Rng(a, b, c, d);
}
