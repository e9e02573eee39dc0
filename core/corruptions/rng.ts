/**
 * Seeded randomness for the corruptions: one independent stream per (seed, image index,
 * corruption, severity), so an image gets the same bytes whatever batch it travels in and on
 * every machine.
 *
 * The stream is core/random.ts's keyed xoshiro128** for the key (seed, "corruption", image
 * index, corruption number, severity): murmur3-finaliser hashing of the key into the generator's
 * state, 32-bit integer math only, so the result is identical in every JS engine. Uniforms are
 * `next() / 2^32`; the noise corruptions draw normals by the ziggurat method (fillNormalZiggurat
 * below), others by Box-Muller in pairs; Poisson variates by
 * inversion of the exact CDF (tables cached per mean, so uint8 inputs, which have at most 256
 * distinct means, cost one lookup).
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

import { type Rng, rngFor } from "../random.ts";

export { fmix32, poissonCdf, Rng } from "../random.ts";

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
  return rngFor(seed, "corruption", index, corruption, severity);
}

// Ziggurat tables (Marsaglia and Tsang 2000, Doornik's ZIGNOR layout: 128 layers).
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_X = new Float64Array(129);
const ZIG_RATIO = new Float64Array(128);
{
  let f = Math.exp(-0.5 * ZIG_R * ZIG_R);
  ZIG_X[0] = ZIG_V / f;
  ZIG_X[1] = ZIG_R;
  ZIG_X[128] = 0;
  for (let i = 2; i < 128; i++) {
    ZIG_X[i] = Math.sqrt(-2 * Math.log(ZIG_V / ZIG_X[i - 1] + f));
    f = Math.exp(-0.5 * ZIG_X[i] * ZIG_X[i]);
  }
  for (let i = 0; i < 128; i++) ZIG_RATIO[i] = ZIG_X[i + 1] / ZIG_X[i];
}
const TWO24 = 16777216;
const TWO32 = 4294967296;

/**
 * Fills `out` with normals of mean `loc` and standard deviation `scale` by the ziggurat method:
 * one 32-bit word per value in ~99% of cases (its low 7 bits pick the layer, the other 25 the
 * signed position), no logarithm or trigonometry on that path. Deterministic for a stream: the
 * values depend only on the stream's words. Used by the noise corruptions (Box-Muller's log, sqrt,
 * cos and sin per pair were most of their time).
 *
 * @example
 * ```ts
 * import { fillNormalZiggurat, streamFor } from "./rng.ts";
 * const a = new Float64Array(4), b = new Float64Array(4);
 * fillNormalZiggurat(streamFor(1, 2, 0, 1), a);
 * fillNormalZiggurat(streamFor(1, 2, 0, 1), b);
 * console.log(a.every((v, i) => v === b[i])); // true
 * ```
 */
export function fillNormalZiggurat(
  rng: Rng,
  out: Float32Array | Float64Array,
  loc = 0,
  scale = 1,
): void {
  const n = out.length;
  for (let k = 0; k < n; k++) {
    let z: number;
    for (;;) {
      const word = rng.next();
      const i = word & 127;
      const u = ((word >>> 7) + 0.5) * (1 / TWO24) - 1; // in (-1, 1) (times 2^-24: exact)
      if (Math.abs(u) < ZIG_RATIO[i]) {
        z = u * ZIG_X[i];
        break;
      }
      if (i === 0) {
        // The tail beyond R (Marsaglia 1964).
        let x: number, y: number;
        do {
          x = Math.log((rng.next() + 0.5) / TWO32) / ZIG_R;
          y = Math.log((rng.next() + 0.5) / TWO32);
        } while (-2 * y < x * x);
        z = u < 0 ? x - ZIG_R : ZIG_R - x;
        break;
      }
      const x = u * ZIG_X[i];
      const f0 = Math.exp(-0.5 * (ZIG_X[i] * ZIG_X[i] - x * x));
      const f1 = Math.exp(-0.5 * (ZIG_X[i + 1] * ZIG_X[i + 1] - x * x));
      if (f1 + (rng.next() / TWO32) * (f0 - f1) < 1) {
        z = x;
        break;
      }
    }
    out[k] = loc + scale * z;
  }
}
