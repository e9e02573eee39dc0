/**
 * The losses of the study (SPEC.md section 4), as tfjs functions of predictions and targets.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { poissonLoss } from "./losses.ts";
 * const l = poissonLoss(tf.tensor2d([[1, 2]]), tf.tensor2d([[0, 3]]));
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Epsilon inside the log of the Poisson loss (neuralpredictors' value). */
export const POISSON_EPS = 1e-12;

/** Poisson loss summed over every element: sum(output - target * log(output + 1e-12)). */
export function poissonLoss(output: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.tidy(() =>
    tf.sum(tf.sub(output, tf.mul(target, tf.log(tf.add(output, POISSON_EPS))))) as tf.Scalar
  );
}

/**
 * Poisson loss as the single-task Monkey Predictor trains on it: summed over batch and neurons,
 * scaled by sqrt(N_train / batch).
 */
export function scaledPoissonLoss(
  output: tf.Tensor,
  target: tf.Tensor,
  trainSize: number,
): tf.Scalar {
  const batch = output.shape[0] ?? 1;
  return tf.tidy(() => tf.mul(poissonLoss(output, target), Math.sqrt(trainSize / batch)));
}

/** Mean cross-entropy of logits [N, classes] against integer labels [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, "int32"), logits.shape[1]);
    return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
  });
}

/** Mean squared error over every element. */
export function mse(output: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(output, target)) as tf.Scalar);
}

/**
 * The MTL loss with learned task weights (Kendall et al. 2018), s_c and s_n trained with the net:
 * L = exp(-s_c) * CE + 0.5 * s_c + 0.5 * exp(-s_n) * MSE + 0.5 * s_n.
 */
export function mtlLoss(
  ce: tf.Scalar,
  neuralMse: tf.Scalar,
  sC: tf.Scalar | tf.Variable,
  sN: tf.Scalar | tf.Variable,
): tf.Scalar {
  return tf.tidy(() =>
    tf.addN([
      tf.mul(tf.exp(tf.neg(sC)), ce),
      tf.mul(sC, 0.5),
      tf.mul(tf.mul(tf.exp(tf.neg(sN)), neuralMse), 0.5),
      tf.mul(sN, 0.5),
    ]) as tf.Scalar
  );
}

/** L1 norm of the readout's feature weights times `weight` (0.5 in the single-task predictor). */
export function readoutL1(features: tf.Tensor, weight = 0.5): tf.Scalar {
  return tf.tidy(() => tf.mul(tf.sum(tf.abs(features)), weight) as tf.Scalar);
}
