/**
 * Seeded randomness for the corruptions: one independent stream per (seed, image index,
 * corruption, severity), so an image gets the same bytes whatever batch it travels in and on
 * every machine.
 *
 * The stream is core/random.ts's keyed xoshiro128** for the key (seed, "corruption", image
 * index, corruption number, severity): murmur3-finaliser hashing of the key into the generator's
 * state, 32-bit integer math only, so the result is identical in every JS engine. Uniforms are
 * `next() / 2^32`; normals come from the Box-Muller transform in pairs; Poisson variates by
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
