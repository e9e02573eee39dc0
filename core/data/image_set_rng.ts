/**
 * Seeded randomness for the image set, the Tiny ImageNet split and augmentation: xoshiro128**
 * streams derived from a key by hashing, so that a value depends only on its key (seed, split,
 * class, image index, epoch, ...) and never on how many other values were drawn before it or in
 * which order images were visited.
 *
 * - `Rng.from(...key)` hashes numbers and strings (murmur3 `fmix32` absorption into four 32-bit
 *   lanes) into the generator's state; 32-bit integer math only, so every JS engine agrees.
 * - `fork(...label)` derives an independent child stream from the parent's key and `label`; it
 *   neither consumes nor changes the parent's state.
 *
 * Written by hand (not an npm package) because the bit-level algorithm is part of the "same seed,
 * same bytes" contract of the generated data.
 *
 * @example
 * ```ts
 * import { Rng } from "./image_set_rng.ts";
 *
 * const rng = Rng.from(42, "train");
 * console.log(rng.int(10) === Rng.from(42, "train").int(10)); // true
 * const child = rng.fork(7); // same as Rng.from(42, "train").fork(7), whatever rng drew before
 * console.log(child.uniform(-1, 1) < 1); // true
 * ```
 * @module
 */

const TWO32 = 4294967296;

/** murmur3's 32-bit finaliser: a bijective avalanche of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 32-bit words of one key part: a type tag word, then the value's words. */
function keyWords(part: number | string): number[] {
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
    throw new RangeError(`rng: key part ${part} is not a safe integer or a string`);
  }
  const a = Math.abs(part);
  return [0x4e554d00 ^ (part < 0 ? 1 : 0), a % TWO32 >>> 0, Math.floor(a / TWO32) >>> 0];
}

function absorb(lanes: readonly number[], parts: readonly (number | string)[]): number[] {
  const words = parts.flatMap(keyWords);
  return lanes.map((lane, l) => {
    let h = lane;
    for (const w of words) h = fmix32(((h ^ w) + Math.imul(l + 1, 0x9e3779b9)) >>> 0);
    return fmix32((h ^ words.length) >>> 0);
  });
}

const ROOT = [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344];

/**
 * A xoshiro128** generator (period 2^128 - 1) seeded from a hashed key.
 *
 * @example
 * ```ts
 * import { Rng } from "./image_set_rng.ts";
 * const rng = new Rng(1);
 * console.log(rng.next() >= 0, rng.normal() !== rng.normal()); // true true
 * ```
 */
export class Rng {
  #key: number[];
  #s: Uint32Array;
  #spare = 0;
  #hasSpare = false;

  /** A stream for one seed; the same as `Rng.from(seed)`. */
  constructor(seed: number | string = 0) {
    this.#key = absorb(ROOT, [seed]);
    this.#s = stateOf(this.#key);
  }

  /**
   * A stream for a key of safe integers and strings.
   *
   * @example
   * ```ts
   * import { Rng } from "./image_set_rng.ts";
   * console.log(Rng.from(1, "val", 3).next() === Rng.from(1, "val", 3).next()); // true
   * ```
   */
  static from(...key: (number | string)[]): Rng {
    return new Rng(0).#rekey(absorb(ROOT, key));
  }

  /**
   * An independent child stream for `label`; the parent's state is untouched.
   *
   * @example
   * ```ts
   * import { Rng } from "./image_set_rng.ts";
   * const parent = Rng.from(3);
   * const a = parent.fork("noise").next();
   * parent.next();
   * console.log(parent.fork("noise").next() === a); // true
   * ```
   */
  fork(...label: (number | string)[]): Rng {
    return new Rng(0).#rekey(absorb(this.#key, label));
  }

  #rekey(key: number[]): Rng {
    this.#key = key;
    this.#s = stateOf(key);
    return this;
  }

  /** The next 32-bit word, as an unsigned number. */
  next(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [a, b) (default [0, 1)), with 32 bits of resolution. */
  uniform(a = 0, b = 1): number {
    return a + (b - a) * (this.next() / TWO32);
  }

  /** A whole number uniform in [0, n), 0 < n <= 2^32. */
  int(n: number): number {
    return Math.floor((this.next() / TWO32) * n);
  }

  /** Normal with mean `mean` and standard deviation `std` (Box-Muller, in pairs). */
  normal(mean = 0, std = 1): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return mean + std * this.#spare;
    }
    const u1 = (this.next() + 0.5) / TWO32;
    const u2 = this.next() / TWO32;
    const r = Math.sqrt(-2 * Math.log(u1));
    this.#spare = r * Math.sin(2 * Math.PI * u2);
    this.#hasSpare = true;
    return mean + std * r * Math.cos(2 * Math.PI * u2);
  }

  /** Shuffles `a` in place (Fisher-Yates) and returns it. */
  shuffle<T extends number[] | Int32Array | Uint32Array>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

function stateOf(key: readonly number[]): Uint32Array {
  const s = new Uint32Array(key.map((k, i) => fmix32((k ^ Math.imul(i + 1, 0x7f4a7c15)) >>> 0)));
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 0x9e3779b9;
  return s;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
