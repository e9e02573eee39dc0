/**
 * A VGG-19-BN training step (forward, backward, SGD momentum update): the network of
 * core/models/vgg.ts in training mode, whose layers use the fused biasBatchNormRelu op and whose
 * update is core/train/optim.ts's Sgd (both one wasm kernel each on the wasm backend).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { createVgg } from "../../models/vgg.ts";
 * import { Sgd } from "../../train/optim.ts";
 * import { vggTrainStep } from "./train_step.ts";
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 0 });
 * const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
 * const x = tf.randomNormal([2, 32, 32, 1]);
 * const y = tf.oneHot([1, 2], 10);
 * const loss = vggTrainStep(model, opt, x, y, { dropoutSeed: 1 });
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  type BnBatchStats,
  trainableParams,
  updateBnRunningStats,
  vggForward,
  type VggModel,
} from "../../models/vgg.ts";
import type { Sgd } from "../../train/optim.ts";

/** Training-mode forward pass (logits, or trunk features without a head) and BN batch stats. */
export function vggForwardTrain(
  model: VggModel,
  x: tf.Tensor4D,
  options: { dropoutSeed?: number } = {},
): { output: tf.Tensor; bnStats: Map<string, BnBatchStats> } {
  const r = vggForward(model, x, { training: true, dropoutSeed: options.dropoutSeed });
  return { output: r.output, bnStats: r.bnStats };
}

/** Mean softmax cross-entropy of `logits` against one-hot `labels`. */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

/** Loss and gradients of every trainable parameter for one batch (updates BN running stats). */
export function vggLossAndGrads(
  model: VggModel,
  x: tf.Tensor,
  labels: tf.Tensor,
  options: { dropoutSeed?: number } = {},
): { loss: tf.Scalar; grads: tf.NamedTensorMap } {
  const params = trainableParams(model);
  const names = [...params.keys()];
  const vars = names.map((n) => params.get(n)!);
  const { value, grads } = tf.tidy(() => {
    const r = tf.variableGrads(() => {
      const f = vggForwardTrain(model, x as tf.Tensor4D, options);
      updateBnRunningStats(model, f.bnStats);
      return crossEntropy(f.output, labels);
    }, vars);
    return r;
  });
  const named: tf.NamedTensorMap = {};
  for (const [name, v] of params) named[name] = grads[v.name];
  return { loss: value, grads: named };
}

/**
 * One SGD step on a batch: forward, backward, BN running stats and the optimizer update.
 * Returns the loss (a number; the step leaves no new tensors behind).
 */
export function vggTrainStep(
  model: VggModel,
  optimizer: Sgd,
  x: tf.Tensor,
  labels: tf.Tensor,
  options: { dropoutSeed?: number } = {},
): number {
  const { loss, grads } = vggLossAndGrads(model, x, labels, options);
  optimizer.step(trainableParams(model), grads);
  for (const g of Object.values(grads)) g.dispose();
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}
