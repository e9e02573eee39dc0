/**
 * Ops backed by cotrain's wasm kernels, with a plain-tfjs path on every other backend (the same
 * math, so the cpu backend is the reference in gradient checks):
 *
 * - {@linkcode biasBatchNormRelu}: relu(batchNorm(y + bias)) with batch statistics (training mode),
 *   one fused kernel forward and one backward on wasm instead of ~25 tfjs ops.
 * - {@linkcode readoutSample}: the Gaussian readout's bilinear sampling and channel weighting, one
 *   wasm kernel each way touching 4 pixels per neuron (instead of a dense product over all pixels).
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
import { BN_RELU, READOUT, wasmKernelsRegistered } from "./register.ts";

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

/**
 * Bilinear weights [..., size] of every pixel index along one axis for normalised coordinates
 * (..., in [-1, 1]): max(0, 1 - |px - j|), px = (g + 1) / 2 * (size - 1) (align_corners = true,
 * zero padding).
 */
export function axisWeights(coords: tf.Tensor, size: number): tf.Tensor {
  const px = tf.expandDims(tf.mul(tf.add(coords, 1), (size - 1) / 2), -1);
  return tf.relu(tf.sub(1, tf.abs(tf.sub(px, tf.range(0, size, 1, "float32")))));
}

/**
 * The linear part of a Gaussian readout (SPEC.md section 3): y [B, N] with
 * y[b,n] = sum_c features[c,n] * bilinear(x[b], grid[b,n])[c], for a feature map x [B, H, W, C],
 * sampling positions grid [B, N, 2] as (x, y) in [-1, 1] (align_corners = true, zero padding) and
 * channel weights features [C, N]. Differentiable in x, grid and features.
 *
 * On wasm: one kernel each way that reads the 4 pixels around each position. Elsewhere: plain tfjs
 * ops, channels-first (z = x @ features, one dense product, then each neuron's bilinear weights
 * over its column of z): the same sum, and the reference of the gradient checks.
 */
export function readoutSample(x: tf.Tensor, grid: tf.Tensor, features: tf.Tensor): tf.Tensor2D {
  if (fusedKernelsActive()) {
    return tf.engine().runKernel(
      READOUT,
      { x, grid, features } as unknown as tf.NamedTensorMap,
      {},
    ) as tf.Tensor2D;
  }
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const n = features.shape[1] as number;
  return tf.tidy(() => {
    const z = tf.reshape(tf.matMul(tf.reshape(x, [b * h * w, c]), features as tf.Tensor2D), [
      b,
      h * w,
      n,
    ]);
    const [gx, gy] = tf.split(grid, 2, 2).map((t) => tf.squeeze(t, [2]));
    const wgt = tf.mul(
      tf.expandDims(axisWeights(gy, h), 3),
      tf.expandDims(axisWeights(gx, w), 2),
    );
    const wt = tf.transpose(tf.reshape(wgt, [b, n, h * w]), [0, 2, 1]); // [B, HW, N]
    return tf.sum(tf.mul(z, wt), 1) as tf.Tensor2D;
  });
}
