/**
 * Helpers of the kernel tests: run the same computation on the cpu backend (the reference) and
 * on wasm with cotrain's kernels, and compare.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { onBoth, relErr } from "./_test_util.ts";
 * const [ref, got] = await onBoth(() => [tf.ones([2])]);
 * relErr(got[0], ref[0]); // 0
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Deterministic pseudo-random floats in [-1, 1) (LCG), independent of any backend. */
export function randomData(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** A tensor of {@linkcode randomData} on the active backend. */
export function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomData(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/** max |a - b| / max |b| (0 when both are 0). */
export function relErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num === 0 ? 0 : num / den;
}

/** Runs `f` on cpu, then on wasm; returns the outputs' data as [cpu, wasm]. */
export async function onBoth(
  f: () => tf.Tensor[],
): Promise<[Float32Array[], Float32Array[]]> {
  const run = async (name: string) => {
    await tf.setBackend(name);
    let out: Float32Array[] = [];
    tf.tidy(() => {
      out = f().map((t) => t.dataSync() as Float32Array).map((d) => d.slice());
    });
    return out;
  };
  const ref = await run("cpu");
  const got = await run("wasm");
  return [ref, got];
}
