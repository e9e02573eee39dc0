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
 * const y = tf.tensor1d([1, 2], "int32"); // class indices
 * const loss = vggTrainStep(model, opt, x, y, { dropoutSeed: 1 });
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  trainableParams,
  updateBnRunningStats,
  vggForward,
  type VggModel,
} from "../../models/vgg.ts";
import { crossEntropy } from "../../train/losses.ts";
import type { Sgd } from "../../train/optim.ts";

/**
 * Loss and gradients of every trainable parameter for one batch with integer class `labels`
 * (updates BN running stats).
 */
export function vggLossAndGrads(
  model: VggModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  options: { dropoutSeed?: number } = {},
): { loss: tf.Scalar; grads: tf.NamedTensorMap } {
  const params = trainableParams(model);
  const names = [...params.keys()];
  const vars = names.map((n) => params.get(n)!);
  const { value, grads } = tf.tidy(() => {
    const r = tf.variableGrads(() => {
      const f = vggForward(model, x, { training: true, dropoutSeed: options.dropoutSeed });
      updateBnRunningStats(model, f.bnStats);
      return crossEntropy(f.output as tf.Tensor2D, labels);
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
  labels: tf.Tensor1D,
  options: { dropoutSeed?: number } = {},
): number {
  const { loss, grads } = vggLossAndGrads(model, x, labels, options);
  optimizer.step(trainableParams(model), grads);
  for (const g of Object.values(grads)) g.dispose();
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}
