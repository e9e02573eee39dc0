/**
 * VGG-19 with batch norm, as in the paper (SPEC.md section 3): the trunk
 * [64,64,M,128,128,M,256x4,M,512x4,M,512x4,M] of 3x3 convs (pad 1) + BN + ReLU and 2x2 max-pools,
 * and a fully convolutional classification head (1x1 convs 512->4096->4096->classes with ReLU and
 * dropout 0.5, then a global max-pool), so any input size works. Every channel count is scaled by a
 * width multiplier (w = 1 is the paper; w = 1/8 runs on a laptop).
 *
 * The model is data, not a class hierarchy: a config, a list of layer specs and a flat map of named
 * tf.Variables (`conv1_1.weight` in HWIO layout, `conv1_1.bn.running_mean`, `head.fc1.weight`, ...),
 * and pure forward functions. Batch-norm statistics of a training pass are returned, not applied, so
 * the trainer updates running averages outside the gradient tape.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { createVgg, vggForward } from "./vgg.ts";
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 0 });
 * const logits = vggForward(model, tf.zeros([2, 64, 64, 1]), { training: false }).output;
 * console.log(logits.shape); // [2, 10]
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { biasBatchNormRelu } from "../engine/kernels/ops.ts";
import { CoreError } from "../errors.ts";

/** The VGG-19 trunk: channel counts and "M" for 2x2 max-pools. */
// deno-fmt-ignore
export const VGG19_CFG: readonly (number | "M")[] = [
  64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
  512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
];

/** Width of the head's hidden 1x1 convs at w = 1. */
export const HEAD_HIDDEN = 4096;
/** BatchNorm epsilon and running-average momentum (PyTorch's defaults). */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** What defines a VGG. */
export interface VggConfig {
  /** Width multiplier for every channel count (1 = the paper). */
  width: number;
  /** Input channels (1 for gray). */
  inChannels: number;
  /** Number of classes of the head (0 = trunk only). */
  classes: number;
  /** Seed of the initialisation. */
  seed: number;
  /** Trunk config (default VGG-19). */
  cfg?: readonly (number | "M")[];
}

/** One layer of the trunk. */
export type LayerSpec =
  | { kind: "conv"; name: string; inChannels: number; outChannels: number }
  | { kind: "pool"; name: string };

/** A VGG: its config, the trunk's layers, the head's sizes and every parameter by name. */
export interface VggModel {
  config: Required<VggConfig>;
  layers: LayerSpec[];
  head: { inChannels: number; hidden: number; classes: number } | null;
  params: Map<string, tf.Variable>;
}

/** Channel count `c` scaled by `width` (at least 1), as the reference does. */
export function scaledChannels(c: number, width: number): number {
  return Math.max(1, Math.round(c * width));
}

/** The trunk's layer specs with the paper's names (conv1_1 ... conv5_4, pool1 ... pool5). */
export function trunkLayers(
  cfg: readonly (number | "M")[],
  width: number,
  inChannels: number,
): LayerSpec[] {
  const layers: LayerSpec[] = [];
  let block = 1;
  let index = 1;
  let c = inChannels;
  for (const v of cfg) {
    if (v === "M") {
      layers.push({ kind: "pool", name: `pool${block}` });
      block++;
      index = 1;
    } else {
      const out = scaledChannels(v, width);
      layers.push({ kind: "conv", name: `conv${block}_${index}`, inChannels: c, outChannels: out });
      c = out;
      index++;
    }
  }
  return layers;
}

/** Names of every layer output a caller may stop at or read (the trunk's layers). */
export function layerNames(model: VggModel): string[] {
  return model.layers.map((l) => l.name);
}

/** Kaiming-normal (fan_out, relu) weights for a kxk conv, HWIO layout, seeded. */
function kaimingConv(k: number, cin: number, cout: number, seed: number): tf.Tensor {
  const std = Math.sqrt(2 / (k * k * cout));
  return tf.randomNormal([k, k, cin, cout], 0, std, "float32", seed);
}

/** Creates a VGG with the paper's initialisation (conv kaiming fan_out, bias 0, BN 1/0). */
export function createVgg(config: VggConfig): VggModel {
  const cfg = config.cfg ?? VGG19_CFG;
  const full: Required<VggConfig> = { ...config, cfg };
  const layers = trunkLayers(cfg, config.width, config.inChannels);
  const params = new Map<string, tf.Variable>();
  const add = (name: string, t: tf.Tensor, trainable = true) => {
    params.set(name, tf.variable(t, trainable));
    t.dispose();
  };
  let seed = config.seed * 1000 + 1;
  let last = config.inChannels;
  for (const l of layers) {
    if (l.kind !== "conv") continue;
    add(`${l.name}.weight`, kaimingConv(3, l.inChannels, l.outChannels, seed++));
    add(`${l.name}.bias`, tf.zeros([l.outChannels]));
    add(`${l.name}.bn.weight`, tf.ones([l.outChannels]));
    add(`${l.name}.bn.bias`, tf.zeros([l.outChannels]));
    add(`${l.name}.bn.running_mean`, tf.zeros([l.outChannels]), false);
    add(`${l.name}.bn.running_var`, tf.ones([l.outChannels]), false);
    last = l.outChannels;
  }
  let head: VggModel["head"] = null;
  if (config.classes > 0) {
    const hidden = scaledChannels(HEAD_HIDDEN, config.width);
    head = { inChannels: last, hidden, classes: config.classes };
    add("head.fc1.weight", kaimingConv(1, last, hidden, seed++));
    add("head.fc1.bias", tf.zeros([hidden]));
    add("head.fc2.weight", kaimingConv(1, hidden, hidden, seed++));
    add("head.fc2.bias", tf.zeros([hidden]));
    add("head.fc3.weight", kaimingConv(1, hidden, config.classes, seed++));
    add("head.fc3.bias", tf.zeros([config.classes]));
  }
  return { config: full, layers, head, params };
}

/** Options of a forward pass. */
export interface ForwardOptions {
  /** Training mode: BN uses batch statistics (and returns them), dropout is active. */
  training: boolean;
  /** Stop after this trunk layer (e.g. `conv3_1`, output after its BN + ReLU). */
  upTo?: string;
  /** Seed of the dropout masks of this pass (training only). */
  dropoutSeed?: number;
  /** Trunk layers whose outputs should also be returned (e.g. `conv3_1`). */
  taps?: string[];
}

/** Batch statistics of one BN layer in a training pass. */
export interface BnBatchStats {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  count: number;
}

/** Output of a forward pass. */
export interface ForwardResult {
  output: tf.Tensor;
  /** Outputs of the requested `taps`. */
  taps: Map<string, tf.Tensor>;
  /** BN batch statistics per conv layer (training only). */
  bnStats: Map<string, BnBatchStats>;
}

function p(model: VggModel, name: string): tf.Variable {
  const v = model.params.get(name);
  if (!v) throw new Error(`VGG has no parameter ${name}`);
  return v;
}

/**
 * conv3x3 + bias + BN + ReLU of one layer. Training uses batch statistics through the fused
 * biasBatchNormRelu op (one wasm kernel forward and one backward; plain tfjs ops elsewhere).
 */
function convBnRelu(
  model: VggModel,
  name: string,
  x: tf.Tensor4D,
  training: boolean,
  stats: Map<string, BnBatchStats>,
): tf.Tensor4D {
  const y = tf.conv2d(x, p(model, `${name}.weight`) as tf.Tensor4D, 1, "same");
  const gamma = p(model, `${name}.bn.weight`);
  const beta = p(model, `${name}.bn.bias`);
  if (training) {
    const r = biasBatchNormRelu(y, p(model, `${name}.bias`), gamma, beta, BN_EPS);
    const count = y.shape[0] * y.shape[1] * y.shape[2];
    stats.set(name, { mean: r.mean, variance: r.variance, count });
    return r.output as tf.Tensor4D;
  }
  const z = tf.add(y, p(model, `${name}.bias`));
  const mean = p(model, `${name}.bn.running_mean`);
  const variance = p(model, `${name}.bn.running_var`);
  return tf.relu(tf.batchNorm(z, mean, variance, beta, gamma, BN_EPS)) as tf.Tensor4D;
}

/** The trunk (up to `upTo`, default all of it) and, when the model has one, the head. */
export function vggForward(model: VggModel, x: tf.Tensor, options: ForwardOptions): ForwardResult {
  const taps = new Map<string, tf.Tensor>();
  const bnStats = new Map<string, BnBatchStats>();
  if (x.rank !== 4 || x.shape[3] !== model.config.inChannels) {
    throw new Error(
      `VGG input must be NHWC with ${model.config.inChannels} channel(s); got [${x.shape}]`,
    );
  }
  if (options.upTo && !model.layers.some((l) => l.name === options.upTo)) {
    throw new Error(`no layer ${options.upTo}; layers: ${layerNames(model).join(", ")}`);
  }
  let h = x as tf.Tensor4D;
  for (const l of model.layers) {
    h = l.kind === "conv"
      ? convBnRelu(model, l.name, h, options.training, bnStats)
      : tf.maxPool(h, 2, 2, "valid");
    if (options.taps?.includes(l.name)) taps.set(l.name, h);
    if (options.upTo === l.name) return { output: h, taps, bnStats };
  }
  if (!model.head) return { output: h, taps, bnStats };
  return { output: vggHead(model, h, options), taps, bnStats };
}

/** The classification head on trunk features: logits [N, classes]. */
export function vggHead(
  model: VggModel,
  features: tf.Tensor4D,
  options: ForwardOptions,
): tf.Tensor2D {
  const seed = options.dropoutSeed ?? 0;
  const fc = (h: tf.Tensor4D, name: string) =>
    tf.add(
      tf.conv2d(h, p(model, `${name}.weight`) as tf.Tensor4D, 1, "valid"),
      p(model, `${name}.bias`),
    ) as tf.Tensor4D;
  const drop = (h: tf.Tensor4D, k: number) =>
    options.training ? tf.dropout(h, 0.5, undefined, seed * 7 + k) as tf.Tensor4D : h;
  let h = drop(tf.relu(fc(features, "head.fc1")), 1);
  h = drop(tf.relu(fc(h, "head.fc2")), 2);
  h = fc(h, "head.fc3");
  return tf.max(h, [1, 2]) as tf.Tensor2D;
}

/**
 * Updates the BN running averages from a training pass's batch statistics (PyTorch's rule:
 * running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance).
 */
export function updateBnRunningStats(model: VggModel, stats: Map<string, BnBatchStats>): void {
  tf.tidy(() => {
    for (const [name, s] of stats) {
      const rm = p(model, `${name}.bn.running_mean`);
      const rv = p(model, `${name}.bn.running_var`);
      const unbiased = s.count > 1 ? tf.mul(s.variance, s.count / (s.count - 1)) : s.variance;
      rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
      rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    }
  });
}

/** The trainable variables (what an optimiser updates), optionally only those matching `filter`. */
export function trainableParams(
  model: VggModel,
  filter: (name: string) => boolean = () => true,
): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [k, v] of model.params) if (v.trainable && filter(k)) out.set(k, v);
  return out;
}

/** Names of the parameters of the trunk up to and including `layer` (e.g. the MTL shared part). */
export function paramsUpTo(model: VggModel, layer: string): string[] {
  const names: string[] = [];
  for (const l of model.layers) {
    if (l.kind === "conv") {
      for (const k of model.params.keys()) if (k.startsWith(`${l.name}.`)) names.push(k);
    }
    if (l.name === layer) return names;
  }
  throw new Error(`no layer ${layer}; layers: ${layerNames(model).join(", ")}`);
}

/** The activations' shape per image at `layer` for an h x w input: [channels, rows, columns]. */
export function featureShape(
  model: VggModel,
  layer: string,
  h: number,
  w: number,
): [number, number, number] {
  let c = model.config.inChannels;
  for (const l of model.layers) {
    if (l.kind === "conv") c = l.outChannels;
    else {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
    if (l.name === layer) return [c, h, w];
  }
  throw CoreError.invalidArgument(`layer: unknown layer ${layer}`);
}

/** Frees every variable of the model. */
export function disposeModel(model: VggModel): void {
  for (const v of model.params.values()) v.dispose();
  model.params.clear();
}
