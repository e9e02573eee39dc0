/**
 * Seeded randomness for the simulated V1 population: independent streams keyed by a seed and a
 * few whole numbers (e.g. a purpose tag and an image index), so that one image's spike counts do
 * not depend on how many other images are simulated or in what order.
 *
 * The generator is xoshiro128** (Blackman and Vigna 2018), period 2^128 - 1, seeded by absorbing the
 * key words into four 32-bit lanes with the murmur3 finaliser. Only 32-bit integer arithmetic
 * (`Math.imul`, shifts, xor) feeds the state, so the stream is identical on every machine; the
 * derived normals use V8's fdlibm-based `Math.log`/`Math.cos`, which are deterministic too.
 *
 * Written here (not taken from npm) because the exact bit-level algorithm is part of the
 * "same seed, same bytes" contract of the generated data sets.
 *
 * @example
 * ```ts
 * import { rngFor } from "./simulated_v1_rng.ts";
 * const a = rngFor(42, 1, 7);
 * const b = rngFor(42, 1, 7);
 * console.log(a.uniform() === b.uniform()); // true
 * console.log(rngFor(42, 1, 8).poisson(3.5) >= 0); // true
 * ```
 * @module
 */

const TWO32 = 4294967296;

/** The murmur3 32-bit finaliser: a bijective avalanche of one word. */
function fmix32(h: number): number {
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

/**
 * A xoshiro128** generator with the distributions the data generators need.
 *
 * @example
 * ```ts
 * import { Rng } from "./simulated_v1_rng.ts";
 * const rng = new Rng(1, 2, 3, 4);
 * const u = rng.uniform(); // in [0, 1)
 * console.log(u >= 0 && u < 1); // true
 * ```
 */
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

  /** A whole number uniform in [lo, hi) (hi - lo <= 2^32). */
  intIn(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** Standard normal (Box-Muller, in pairs). */
  normal(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const u1 = (this.next() + 0.5) / TWO32; // in (0, 1): the log is finite
    const u2 = this.next() / TWO32;
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(a);
    this.#hasSpare = true;
    return r * Math.cos(a);
  }

  /** exp(N(log(median), sdLog^2)): a log-normal variate given its median and log standard deviation. */
  logNormal(median: number, sdLog: number): number {
    return median * Math.exp(sdLog * this.normal());
  }

  /**
   * A Poisson variate of mean `lambda` (exact): inversion of the CDF by sequential search for
   * means up to 30, and the sum of independent Poisson(30) pieces plus a remainder above that.
   */
  poisson(lambda: number): number {
    if (!(lambda > 0)) return 0;
    let k = 0;
    while (lambda > 30) {
      k += this.#poissonSmall(30);
      lambda -= 30;
    }
    return k + this.#poissonSmall(lambda);
  }

  #poissonSmall(lambda: number): number {
    const u = this.uniform();
    let p = Math.exp(-lambda);
    let cdf = p;
    let k = 0;
    while (u >= cdf && k < 1000) {
      k++;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  }

  /**
   * A gamma variate with shape `shape` > 0 and scale 1 (Marsaglia and Tsang 2000; shapes below 1
   * by the boosting identity G(a) = G(a + 1) * U^(1/a)).
   */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.uniform() || 1 / TWO32, 1 / shape);
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
      const j = this.intIn(0, i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }
}

/**
 * The random stream for a seed and a key of whole numbers (each 0..2^53-1), e.g.
 * `rngFor(seed, PURPOSE, imageIndex)`. Different keys give independent streams.
 *
 * @example
 * ```ts
 * import { rngFor } from "./simulated_v1_rng.ts";
 * console.log(rngFor(0, 3).next() !== rngFor(1, 3).next()); // true
 * ```
 */
export function rngFor(seed: number, ...key: number[]): Rng {
  const words: number[] = [];
  for (const x of [seed, ...key]) {
    if (!Number.isSafeInteger(x) || x < 0) {
      throw new RangeError(`rng: key ${x} is not a whole number in 0..2^53-1`);
    }
    words.push(x % TWO32 >>> 0, Math.floor(x / TWO32) >>> 0);
  }
  const lanes = [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344];
  for (let l = 0; l < 4; l++) {
    let h = lanes[l];
    for (const w of words) h = fmix32((h ^ w) + Math.imul(l + 1, 0x9e3779b9));
    lanes[l] = fmix32(h ^ words.length);
  }
  return new Rng(lanes[0], lanes[1], lanes[2], lanes[3]);
}
