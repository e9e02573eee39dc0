/**
 * Ops backed by cotrain's wasm kernels, with a plain-tfjs path on every other backend (the same
 * math, so the cpu backend is the reference in gradient checks):
 *
 * - {@linkcode biasBatchNormRelu}: relu(batchNorm(y + bias)) with batch statistics (training mode),
 *   one fused kernel forward and one backward on wasm instead of ~25 tfjs ops.
 * The fused SGD update kernel is used by core/train/optim.ts's `Sgd`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { biasBatchNormRelu } from "./ops.ts";
 * await tf.setBackend("cpu");
 * const y = tf.randomNormal([2, 4, 4, 3]);
 * const c = tf.zeros([3]), g = tf.ones([3]);
 * const { output, mean, variance } = biasBatchNormRelu(y, c, g, c, 1e-5);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { BN_RELU, wasmKernelsRegistered } from "./register.ts";

/** Whether the fused wasm kernels serve the active backend. */
export function fusedKernelsActive(): boolean {
  return tf.getBackend() === "wasm" && wasmKernelsRegistered();
}

/** Output of {@linkcode biasBatchNormRelu}. */
export interface BnReluResult {
  /** relu(batchNorm(y + bias)), the shape of y. */
  output: tf.Tensor;
  /** Batch mean of y + bias per channel (for the running averages; not differentiable). */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel (as tf.moments; not differentiable). */
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch norm with batch statistics over all axes but the last, preceded by a
 * per-channel bias (the conv bias) and followed by ReLU:
 * `relu((y + bias - mean) / sqrt(variance + eps) * gamma + beta)`, exactly what tf.moments +
 * tf.batchNorm + tf.relu compute. Gradients flow to y, bias, gamma and beta; the returned mean and
 * variance are statistics only (no gradient flows through them).
 */
export function biasBatchNormRelu(
  y: tf.Tensor,
  bias: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): BnReluResult {
  if (fusedKernelsActive()) {
    const [output, mean, variance] = tf.engine().runKernel(
      BN_RELU,
      { x: y, bias, gamma, beta } as unknown as tf.NamedTensorMap,
      { epsilon } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    return { output, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }
  const axes = y.shape.map((_, i) => i).slice(0, -1);
  const z = tf.add(y, bias);
  const m = tf.moments(z, axes);
  const output = tf.relu(tf.batchNorm(z, m.mean, m.variance, beta, gamma, epsilon));
  return { output, mean: m.mean as tf.Tensor1D, variance: m.variance as tf.Tensor1D };
}
