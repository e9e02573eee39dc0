/**
 * The multi-task network of the paper (SPEC.md section 3): a VGG-19-BN whose trunk up to and
 * including conv3_1 (+ BN + ReLU) is shared by two branches, the rest of the VGG with its
 * fully convolutional head (classification) and a Gaussian readout on conv3_1 (neural
 * prediction, one readout for all the targets' neurons), plus the two learned task weights s_c and
 * s_n of the MTL loss (Kendall et al.), both starting at 0.
 *
 * A Baseline is the same network without a readout (`neurons: 0`), so every trainer works on one
 * type. Parameters are named `conv1_1.weight`, ..., `head.fc3.bias` (the VGG's own names),
 * `readout.mu`, `readout.sigma`, `readout.features`, `readout.bias`, `task.s_c`, `task.s_n`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { initBackend } from "../engine/backend.ts";
 * import { classify, createMtl, predictNeural } from "./mtl.ts";
 * await initBackend("cpu");
 * const net = createMtl({ width: 0.125, inChannels: 1, classes: 4, neurons: 6, seed: 0 });
 * const x = tf.zeros([2, 32, 32, 1]);
 * console.log(classify(net, x).shape, predictNeural(net, x, { training: false }).shape);
 * // [2, 4] [2, 6]
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  type BnBatchStats,
  createVgg,
  disposeModel,
  paramsUpTo,
  vggForward,
  type VggModel,
} from "./vgg.ts";
import {
  createGaussianReadout,
  disposeReadout,
  type GaussianReadout,
  gaussianReadout,
  readoutParams,
} from "./readout.ts";

/** The layer the two branches share up to (reference `features[:17]`). */
export const SHARED_LAYER = "conv3_1";

/** What defines an MTL network. */
export interface MtlConfig {
  /** VGG width multiplier (1 = the paper). */
  width: number;
  /** Input channels (1 for gray). */
  inChannels: number;
  /** Classes of the classification head. */
  classes: number;
  /** Neurons of the readout; 0 = no neural branch (Baseline, Oracle). */
  neurons: number;
  /** Seed of the initialisation. */
  seed: number;
  /** Trunk config (default VGG-19). */
  cfg?: readonly (number | "M")[];
}

/** An MTL network: the VGG, the readout (or null) and the task weights. */
export interface MtlModel {
  config: MtlConfig;
  vgg: VggModel;
  readout: GaussianReadout | null;
  /** Log-variance task weight of classification, s_c (starts at 0). */
  sC: tf.Variable;
  /** Log-variance task weight of neural prediction, s_n (starts at 0). */
  sN: tf.Variable;
}

/** Channels of the shared layer's output (conv3_1: 256 x width). */
export function sharedChannels(vgg: VggModel): number {
  const l = vgg.layers.find((l) => l.name === SHARED_LAYER);
  if (!l || l.kind !== "conv") throw new Error(`VGG has no ${SHARED_LAYER}`);
  return l.outChannels;
}

function scalarVariable(value: number): tf.Variable {
  const t = tf.scalar(value);
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/** Creates the network with the paper's initialisation (readout: mu U(-.3,.3), sigma U(0,.6)). */
export function createMtl(config: MtlConfig): MtlModel {
  const vgg = createVgg({
    width: config.width,
    inChannels: config.inChannels,
    classes: config.classes,
    seed: config.seed,
    cfg: config.cfg,
  });
  const readout = config.neurons > 0
    ? createGaussianReadout({
      neurons: config.neurons,
      channels: sharedChannels(vgg),
      seed: config.seed * 1000 + 777,
    })
    : null;
  return {
    config: { ...config },
    vgg,
    readout,
    sC: scalarVariable(0),
    sN: scalarVariable(0),
  };
}

/**
 * Every variable by its checkpoint name (trainable and BN running statistics). The task weights
 * are included only when the network has a readout.
 */
export function mtlParams(model: MtlModel): Map<string, tf.Variable> {
  const out = new Map(model.vgg.params);
  if (model.readout) {
    for (const [k, v] of readoutParams(model.readout, "readout.")) out.set(k, v);
    out.set("task.s_c", model.sC);
    out.set("task.s_n", model.sN);
  }
  return out;
}

/** The trainable variables, optionally only those whose name passes `filter`. */
export function mtlTrainable(
  model: MtlModel,
  filter: (name: string) => boolean = () => true,
): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [k, v] of mtlParams(model)) if (v.trainable && filter(k)) out.set(k, v);
  return out;
}

/** Names of the shared trunk's variables (conv1_1 ... conv3_1, BN statistics included). */
export function sharedParamNames(model: MtlModel): string[] {
  return paramsUpTo(model.vgg, SHARED_LAYER);
}

/** Options of a training-mode pass. */
export interface TrainPassOptions {
  /** Seed of the dropout masks (classification) or of the readout's grid jitter (neural). */
  seed?: number;
}

/** Classification pass in training mode: logits and the BN batch statistics. */
export function classifyTrain(
  model: MtlModel,
  x: tf.Tensor,
  options: TrainPassOptions = {},
): { logits: tf.Tensor2D; bnStats: Map<string, BnBatchStats> } {
  const r = vggForward(model.vgg, x, { training: true, dropoutSeed: options.seed });
  return { logits: r.output as tf.Tensor2D, bnStats: r.bnStats };
}

/** Neural pass in training mode (shared trunk in train mode, jittered readout). */
export function predictNeuralTrain(
  model: MtlModel,
  x: tf.Tensor,
  options: TrainPassOptions = {},
): { responses: tf.Tensor2D; bnStats: Map<string, BnBatchStats> } {
  if (!model.readout) throw new Error("this network has no neural branch (neurons: 0)");
  const r = vggForward(model.vgg, x, { training: true, upTo: SHARED_LAYER });
  const responses = gaussianReadout(model.readout, r.output, {
    training: true,
    sampleSeed: options.seed,
  });
  return { responses, bnStats: r.bnStats };
}

/** Logits [N, classes] in eval mode. */
export function classify(model: MtlModel, x: tf.Tensor): tf.Tensor2D {
  return vggForward(model.vgg, x, { training: false }).output as tf.Tensor2D;
}

/** Predicted responses [N, neurons] in eval mode (readout at mu), or jittered when training. */
export function predictNeural(
  model: MtlModel,
  x: tf.Tensor,
  options: { training: boolean; seed?: number },
): tf.Tensor2D {
  if (!model.readout) throw new Error("this network has no neural branch (neurons: 0)");
  return tf.tidy(() => {
    const f = vggForward(model.vgg, x, { training: false, upTo: SHARED_LAYER }).output;
    return gaussianReadout(model.readout!, f, {
      training: options.training,
      sampleSeed: options.seed,
    });
  });
}

/** Frees every variable. */
export function disposeMtl(model: MtlModel): void {
  disposeModel(model.vgg);
  if (model.readout) disposeReadout(model.readout);
  model.sC.dispose();
  model.sN.dispose();
}
