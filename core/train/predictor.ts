/**
 * The Monkey Predictor (SPEC.md sections 3-5): the VGG-19-BN trunk up to conv3_1 and one Gaussian
 * readout per recording session, trained on V1 responses with the single-task recipe of the paper:
 *
 * - loss per batch: sum of the Poisson loss over images and neurons, scaled by sqrt(N / B) (N the
 *   session's training images), plus 0.5 x the readout's L1 norm; neurons a batch did not record
 *   are masked out (NaN never enters the loss);
 * - batches hold one session's images each; an epoch visits every session's batches in a seeded
 *   random interleaving (neuralpredictors' cycler);
 * - Adam (lr 5e-4, weight decay 5e-4); readout mu/sigma clamped before each step; per-image readout
 *   sampling with a seed per step; readout biases set from the first batch of each session;
 * - validation mean correlation (to the repeat average) after every epoch drives the plateau
 *   schedule (factor 0.5, patience 5, at most 5 drops, min lr 1e-4, best weights restored on each
 *   drop and at the end); the schedule's stop is the early stop.
 *
 * A step runs as one onnxruntime session (core/engine/graph/predictor_step.ts: the trunk, the readout,
 * the loss and every gradient in one graph, on every core); COTRAIN_TRAIN_ENGINE=tfjs runs it with
 * tfjs' autodiff instead ({@linkcode predictorTrainLoss}).
 *
 * The trainer's whole state (weights, best weights, Adam moments, schedule, epoch) is one
 * safetensors file ({@linkcode PredictorTrainer.checkpoint}), so a killed run resumes from its last
 * epoch with the same shuffles and sampling seeds.
 *
 * @example
 * ```ts ignore
 * import { initBackend } from "../engine/backend.ts";
 * import { pinkNoiseImages, simulateV1 } from "../data/simulated_v1.ts";
 * import { preparePredictorData } from "./predictor_data.ts";
 * import { createPredictor, evaluatePredictor, PredictorTrainer } from "./predictor.ts";
 * await initBackend("wasm");
 * const sim = simulateV1(pinkNoiseImages(300, 64, 0), { neurons: 8, sessions: 2, testImages: 20 });
 * const data = preparePredictorData(sim.arrays, { size: 32 });
 * const model = createPredictor({ width: 0.125, seed: 0, inputSize: 32, sessions: data.sessions });
 * const trainer = new PredictorTrainer(model, data, { maxEpochs: 5, batchSize: 32 });
 * for await (const e of trainer.run()) console.log(e.epoch, e.loss, e.valCorrelation, e.lr);
 * console.log(evaluatePredictor(model, data).feve);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { CoreError } from "../errors.ts";
import {
  type BnBatchStats,
  createVgg,
  disposeModel,
  trainableParams,
  trunkLayers,
  updateBnRunningStats,
  VGG19_CFG,
  vggForward,
  type VggModel,
} from "../models/vgg.ts";
import {
  clampReadout,
  createGaussianReadout,
  disposeReadout,
  type GaussianReadout,
  gaussianReadout,
  readoutParams,
} from "../models/readout.ts";
import { assignParams, loadParams, saveParams } from "../models/checkpoint.ts";
import { type MtlModel, predictNeural } from "../models/mtl.ts";
import {
  exportVggReadoutOnnx,
  type GaussianReadoutArrays,
  readoutArrays,
} from "../engine/onnx/mod.ts";
import { Adam } from "./optim.ts";
import { PlateauSchedule, type PlateauState } from "./schedule.ts";
import { readoutL1, scaledPoissonLoss } from "./losses.ts";
import { correlationToAverage, fev, nanMean, singleTrialCorrelation } from "../metrics/neural.ts";
import {
  imagesOfSplit,
  type PredictorData,
  type SessionInfo,
  takeResponseImages,
  takeRows,
} from "./predictor_data.ts";
import { SPLIT } from "../data/v1_arrays.ts";
import { rngFor } from "../random.ts";
import { type TrainEngine, trainEngine } from "../engine/graph/program.ts";
import { PredictorStep } from "../engine/graph/predictor_step.ts";
import { yieldTurn } from "../event_loop.ts";

/** What defines a predictor (stored in its checkpoints). */
export interface PredictorConfig {
  /** Width multiplier of the trunk (1 = the paper). */
  width: number;
  /** Seed of the initialisation (and, by default, of training). */
  seed: number;
  /** Trunk layer the readouts read (default `conv3_1`). */
  upTo?: string;
  /** Side of the square input the predictor was trained at (pixels). */
  inputSize: number;
  /** Sessions and their neurons (indices into the full response vector). */
  sessions: SessionInfo[];
}

/** A predictor: trunk, readouts (one per session, same order as `config.sessions`). */
export interface Predictor {
  config: Required<PredictorConfig>;
  trunk: VggModel;
  readouts: GaussianReadout[];
  /** Total neurons (length of a prediction row). */
  neurons: number;
}

/** The checkpoint kind of predictors. */
export const PREDICTOR_KIND = "predictor";

/** Trunk config up to and including `upTo`. */
function trunkCfg(upTo: string): (number | "M")[] {
  const layers = trunkLayers(VGG19_CFG, 1, 1);
  const i = layers.findIndex((l) => l.name === upTo);
  if (i < 0 || layers[i].kind !== "conv") {
    throw CoreError.invalidArgument(`upTo: no conv layer ${JSON.stringify(upTo)} in VGG-19`);
  }
  return VGG19_CFG.slice(0, i + 1) as (number | "M")[];
}

/** Creates a predictor with the paper's initialisation. */
export function createPredictor(config: PredictorConfig): Predictor {
  const full: Required<PredictorConfig> = { upTo: "conv3_1", ...config };
  if (!(full.width > 0)) throw CoreError.invalidArgument(`width: ${full.width}; must be > 0`);
  if (!Number.isInteger(full.inputSize) || full.inputSize < 8) {
    throw CoreError.invalidArgument(`inputSize: ${full.inputSize}; a whole number >= 8`);
  }
  if (full.sessions.length === 0) throw CoreError.invalidArgument("sessions: none");
  const trunk = createVgg({
    width: full.width,
    inChannels: 1,
    classes: 0,
    seed: full.seed,
    cfg: trunkCfg(full.upTo),
  });
  const last = trunk.layers.filter((l) => l.kind === "conv").at(-1)!;
  const channels = last.kind === "conv" ? last.outChannels : 0;
  const readouts = full.sessions.map((s, i) =>
    createGaussianReadout({ neurons: s.neurons.length, channels, seed: full.seed * 1000 + i + 1 })
  );
  let neurons = 0;
  for (const s of full.sessions) for (const k of s.neurons) neurons = Math.max(neurons, k + 1);
  return { config: full, trunk, readouts, neurons };
}

/** Every variable of the predictor by checkpoint name (`conv1_1.weight`, `readout.3.mu`, ...). */
export function predictorParams(p: Predictor): Map<string, tf.Variable> {
  const out = new Map(p.trunk.params);
  p.config.sessions.forEach((s, i) => {
    for (const [k, v] of readoutParams(p.readouts[i], `readout.${s.id}.`)) out.set(k, v);
  });
  return out;
}

/** The trainable variables (trunk weights and every readout). */
export function predictorTrainable(p: Predictor): Map<string, tf.Variable> {
  const out = trainableParams(p.trunk);
  p.config.sessions.forEach((s, i) => {
    for (const [k, v] of readoutParams(p.readouts[i], `readout.${s.id}.`)) out.set(k, v);
  });
  return out;
}

/** Frees the predictor's variables. */
export function disposePredictor(p: Predictor): void {
  disposeModel(p.trunk);
  for (const r of p.readouts) disposeReadout(r);
}

/** The predictor's weights as a safetensors checkpoint (kind `predictor`). */
export function savePredictor(p: Predictor, extra?: Record<string, string>): Uint8Array {
  return saveParams(predictorParams(p), { kind: PREDICTOR_KIND, config: p.config, extra });
}

/** Rebuilds a predictor from a checkpoint written by {@linkcode savePredictor} or a trainer. */
export function loadPredictor(bytes: Uint8Array): Predictor {
  const { tensors, meta } = loadParams(bytes);
  try {
    if (meta.kind !== PREDICTOR_KIND) {
      throw CoreError.invalidArgument(`checkpoint: kind ${meta.kind}; expected ${PREDICTOR_KIND}`);
    }
    const p = createPredictor(meta.config as PredictorConfig);
    try {
      assignParams(predictorParams(p), tensors);
    } catch (err) {
      disposePredictor(p);
      throw err;
    }
    return p;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Checkpoint kinds whose trunk {@linkcode trunkOfCheckpoint} reads (classifiers and predictors). */
const TRUNK_KINDS = ["mtl", PREDICTOR_KIND];

/**
 * The trunk of a classifier checkpoint (classifier-trainer's model safetensors, kind `mtl`: an
 * Oracle, a Baseline, an MTL network) or of a predictor checkpoint: its width and its variables up
 * to `upTo` (default conv3_1), by name (`conv1_1.weight`, `conv1_1.bn.running_mean`, ...). The
 * caller disposes the tensors. INVALID_ARGUMENT naming `field` for anything else.
 */
export function trunkOfCheckpoint(
  bytes: Uint8Array,
  field = "frozen_trunk_uri",
  upTo = "conv3_1",
): { width: number; tensors: Map<string, tf.Tensor> } {
  let loaded;
  try {
    loaded = loadParams(bytes);
  } catch (err) {
    throw CoreError.invalidArgument(`${field}: not a checkpoint: ${(err as Error).message}`);
  }
  const { tensors, meta } = loaded;
  const config = (meta.config ?? {}) as { width?: number; inChannels?: number; cfg?: unknown };
  const fail = (why: string) => {
    for (const t of tensors.values()) t.dispose();
    return CoreError.invalidArgument(`${field}: ${why}`);
  };
  if (!TRUNK_KINDS.includes(String(meta.kind))) {
    throw fail(`a ${meta.kind} checkpoint; expected a classifier (mtl) or predictor checkpoint`);
  }
  if (!(typeof config.width === "number" && config.width > 0)) {
    throw fail("the checkpoint's config has no width");
  }
  if (config.inChannels !== undefined && config.inChannels !== 1) {
    throw fail(`the trunk takes ${config.inChannels} input channels; the predictor takes 1`);
  }
  const names = new Set(
    createVggNames(config.width, upTo),
  );
  const out = new Map<string, tf.Tensor>();
  for (const [k, t] of tensors) {
    if (names.has(k)) out.set(k, t);
    else t.dispose();
  }
  const missing = [...names].filter((k) => !out.has(k));
  if (missing.length) {
    for (const t of out.values()) t.dispose();
    throw CoreError.invalidArgument(`${field}: the checkpoint lacks ${missing.slice(0, 3)}`);
  }
  return { width: config.width, tensors: out };
}

/** Names of the trunk variables up to `upTo` of a 1-channel VGG-19-BN. */
function createVggNames(width: number, upTo: string): string[] {
  const trunk = createVgg({ width, inChannels: 1, classes: 0, seed: 1, cfg: trunkCfg(upTo) });
  const names = [...trunk.params.keys()];
  disposeModel(trunk);
  return names;
}

/**
 * Copies trunk variables (weights and BN statistics, from {@linkcode trunkOfCheckpoint}) into the
 * predictor's trunk; every trunk variable must be there with its shape (INVALID_ARGUMENT naming
 * `field` otherwise).
 */
export function assignTrunk(
  p: Predictor,
  tensors: Map<string, tf.Tensor>,
  field = "frozen_trunk_uri",
): void {
  for (const [k, v] of p.trunk.params) {
    const t = tensors.get(k);
    if (!t || t.shape.join() !== v.shape.join()) {
      throw CoreError.invalidArgument(
        `${field}: ${k} is ${t ? `[${t.shape}]` : "missing"}; the predictor's is [${v.shape}]`,
      );
    }
  }
  for (const [k, v] of p.trunk.params) v.assign(tensors.get(k)!);
}

/** Checks that images [N, H, W, 1] suit the predictor (INVALID_ARGUMENT naming `field`). */
export function checkPredictorInput(
  p: Predictor,
  shape: readonly number[],
  field = "images",
): void {
  const s = p.config.inputSize;
  if (shape.length !== 4 || shape[1] !== s || shape[2] !== s || shape[3] !== 1) {
    throw CoreError.invalidArgument(
      `${field}: shape [${shape.join(",")}]; the predictor takes [N,${s},${s},1] (NHWC, gray, ` +
        `TIN-normalised)`,
    );
  }
}

/** Responses [B, neurons] of a batch in eval mode (all sessions, neuron order of the data). */
function predictBatch(p: Predictor, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const f = vggForward(p.trunk, x, { training: false, upTo: p.config.upTo }).output;
    const parts = p.readouts.map((r) => gaussianReadout(r, f, { training: false }));
    const cat = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
    const order = neuronOrder(p);
    if (order === null) return cat;
    return tf.gather(cat, order, 1) as tf.Tensor2D;
  });
}

/** Column of each neuron in the concatenated readout outputs, or null when it is the identity. */
function neuronOrder(p: Predictor): Int32Array | null {
  const pos = new Int32Array(p.neurons).fill(-1);
  let c = 0, identity = true;
  for (const s of p.config.sessions) {
    for (const k of s.neurons) {
      pos[k] = c;
      if (k !== c) identity = false;
      c++;
    }
  }
  if (pos.includes(-1)) {
    throw CoreError.invalidArgument("sessions: neuron indices must cover 0..neurons-1");
  }
  return identity ? null : pos;
}

/**
 * Predicted responses [N, neurons] for model inputs NHWC [N, size, size, 1] (eval mode: readouts at
 * mu, BN running statistics), in batches.
 */
export function predict(
  p: Predictor,
  images: Float32Array,
  shape: readonly number[],
  batch = 64,
): Float32Array {
  checkPredictorInput(p, shape);
  const [n, h, w] = shape;
  const out = new Float32Array(n * p.neurons);
  const per = h * w;
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const y = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(i * per, (i + b) * per), [b, h, w, 1]);
      return predictBatch(p, x);
    });
    out.set(y.dataSync() as Float32Array, i * p.neurons);
    y.dispose();
  }
  return out;
}

/** Predictions for the images `rows` of the prepared data. */
export function predictImages(p: Predictor, data: PredictorData, rows: number[]): Float32Array {
  const [, h, w] = data.inputs.shape;
  return predict(p, takeRows(data.inputs.data, rows, h * w), [rows.length, h, w, 1]);
}

/** Neural metrics on one split. */
export interface PredictorEvaluation {
  /** Images evaluated. */
  images: number;
  /** Mean over neurons of the single-trial correlation. */
  singleTrialCorrelation: number;
  /** Mean over neurons of the correlation to the repeat average. */
  correlationToAverage: number;
  /** Mean FEV (explainable variance fraction) of the data. */
  fev: number;
  /** Mean FEVe of the predictions. */
  feve: number;
  /** FEVe of the noise-free rates (the ceiling), when the data has them. */
  ceilingFeve?: number;
  /** Per-neuron values. */
  perNeuron: { singleTrialCorrelation: number[]; correlationToAverage: number[]; feve: number[] };
}

/** Correlations and FEVe of the predictor on a split (default test), SPEC.md section 5. */
export function evaluatePredictor(
  p: Predictor,
  data: PredictorData,
  split: keyof typeof SPLIT = "test",
): PredictorEvaluation {
  return evaluateNeuralModel(
    (x, shape) => predict(p, x, shape),
    p.neurons,
    data,
    split,
    "the predictor",
  );
}

/**
 * Eval-mode responses [N, neurons] of some network for model inputs NHWC [N, S, S, 1]
 * (TIN-normalised): a predictor, or the neural branch of an MTL network.
 */
export type NeuralResponseFn = (images: Float32Array, shape: readonly number[]) => Float32Array;

/**
 * Correlations and FEVe (SPEC.md section 5) of any network's eval-mode responses on a split
 * (default test) of prepared data: its inputs are fed as they are (the caller prepared them at the
 * network's input size). INVALID_ARGUMENT when the split is empty or the network predicts another
 * number of neurons than the data holds (`what` names the network in the message).
 */
export function evaluateNeuralModel(
  respond: NeuralResponseFn,
  neurons: number,
  data: PredictorData,
  split: keyof typeof SPLIT = "test",
  what = "the network",
): PredictorEvaluation {
  const rows = imagesOfSplit(data.split, SPLIT[split]);
  if (rows.length === 0) throw CoreError.invalidArgument(`split: no ${split} images`);
  const [R, , K] = data.responses.shape;
  if (K !== neurons) {
    throw CoreError.invalidArgument(`responses: ${K} neurons; ${what} predicts ${neurons}`);
  }
  const [, h, w] = data.inputs.shape;
  const pred = respond(takeRows(data.inputs.data, rows, h * w), [rows.length, h, w, 1]);
  const resp = takeResponseImages(data.responses, rows);
  const rates = data.rates ? takeRows(data.rates.data, rows, K) : undefined;
  return scorePredictions(resp, pred, [R, rows.length, K], rates);
}

/**
 * Eval-mode responses [N, neurons] of an MTL network's neural branch (the shared trunk up to
 * conv3_1 with BN running statistics, the Gaussian readout at mu) for model inputs NHWC
 * [N, S, S, 1], in batches. The network is fully convolutional: S is the side of the images it was
 * co-trained on. INVALID_ARGUMENT when the network has no readout (Baseline, Oracle).
 */
export function predictMtlNeural(
  model: MtlModel,
  images: Float32Array,
  shape: readonly number[],
  batch = 64,
): Float32Array {
  if (!model.readout) {
    throw CoreError.invalidArgument(
      "checkpoint: the network has no neural branch (neurons: 0; a Baseline or an Oracle)",
    );
  }
  if (shape.length !== 4 || shape[3] !== model.config.inChannels) {
    throw CoreError.invalidArgument(
      `images: shape [${shape}]; the network takes [N,H,W,${model.config.inChannels}] (NHWC)`,
    );
  }
  const [n, h, w, c] = shape;
  const k = model.config.neurons;
  const per = h * w * c;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const y = tf.tidy(() =>
      predictNeural(
        model,
        tf.tensor4d(images.subarray(i * per, (i + b) * per), [b, h, w, c]),
        { training: false },
      )
    );
    out.set(y.dataSync() as Float32Array, i * k);
    y.dispose();
  }
  return out;
}

/** FEVe and correlations of an MTL network's neural branch on a split (default test). */
export function evaluateMtlNeural(
  model: MtlModel,
  data: PredictorData,
  split: keyof typeof SPLIT = "test",
): PredictorEvaluation {
  if (!model.readout) {
    throw CoreError.invalidArgument(
      "checkpoint: the network has no neural branch (neurons: 0; a Baseline or an Oracle)",
    );
  }
  return evaluateNeuralModel(
    (x, shape) => predictMtlNeural(model, x, shape),
    model.config.neurons,
    data,
    split,
    "the network's readout",
  );
}

/**
 * Correlations and FEVe of predictions [N, K] against responses [R, N, K] (NaN = not recorded);
 * `rates` [N, K], when given, are scored too as the ceiling.
 */
export function scorePredictions(
  responses: Float32Array,
  predictions: Float32Array,
  dims: [number, number, number],
  rates?: Float32Array,
): PredictorEvaluation {
  const st = singleTrialCorrelation(responses, predictions, dims);
  const ca = correlationToAverage(responses, predictions, dims);
  const f = fev(responses, predictions, dims);
  const out: PredictorEvaluation = {
    images: dims[1],
    singleTrialCorrelation: nanMean(st),
    correlationToAverage: nanMean(ca),
    fev: f.meanFev,
    feve: f.meanFeve,
    perNeuron: {
      singleTrialCorrelation: [...st],
      correlationToAverage: [...ca],
      feve: [...f.feve],
    },
  };
  if (rates) out.ceilingFeve = fev(responses, rates, dims).meanFeve;
  return out;
}

/** Mean correlation to the repeat average on the validation split (the monitored metric). */
export function validationCorrelation(p: Predictor, data: PredictorData): number {
  const rows = imagesOfSplit(data.split, SPLIT.validation);
  if (rows.length < 2) return NaN;
  const [R, , K] = data.responses.shape;
  const pred = predictImages(p, data, rows);
  const resp = takeResponseImages(data.responses, rows);
  return nanMean(correlationToAverage(resp, pred, [R, rows.length, K]));
}

/** The eval-mode readouts as one readout over all neurons, in the data's neuron order. */
export function combinedReadoutArrays(p: Predictor): GaussianReadoutArrays {
  const parts = p.readouts.map(readoutArrays);
  const C = parts[0].channels, K = p.neurons;
  const mu = new Float32Array(K * 2),
    features = new Float32Array(C * K),
    bias = new Float32Array(K);
  p.config.sessions.forEach((s, i) => {
    const r = parts[i], n = s.neurons.length;
    s.neurons.forEach((k, j) => {
      mu[k * 2] = r.mu[j * 2];
      mu[k * 2 + 1] = r.mu[j * 2 + 1];
      bias[k] = r.bias[j];
      for (let c = 0; c < C; c++) features[c * K + k] = r.features[c * n + j];
    });
  });
  return { channels: C, neurons: K, mu, features, bias };
}

/** ONNX export (input `images` NHWC [N, size, size, 1], output `responses` [N, neurons]). */
export function exportPredictorOnnx(p: Predictor): Uint8Array {
  return exportVggReadoutOnnx(p.trunk, combinedReadoutArrays(p), {
    upTo: p.config.upTo,
    height: p.config.inputSize,
    width: p.config.inputSize,
  });
}

// ---------------------------------------------------------------------------------------------
// Training

/** Training settings (defaults: the paper's Monkey Predictor). */
export interface PredictorTrainOptions {
  /** Images per batch (default 128; the last batch of a session may be smaller). */
  batchSize?: number;
  /** Most epochs (default 150). */
  maxEpochs?: number;
  /** Adam learning rate (default 5e-4). */
  lr?: number;
  /** Adam L2 weight decay (default 5e-4). */
  weightDecay?: number;
  /** Weight of the readout L1 penalty (default 0.5). */
  readoutL1?: number;
  /** Plateau schedule: factor (0.5), patience (5), max drops (5), min lr (1e-4). */
  factor?: number;
  patience?: number;
  maxDrops?: number;
  minLr?: number;
  /** Seed of shuffling and readout sampling (default: the predictor's seed). */
  seed?: number;
  /**
   * Keep the trunk frozen (default false): it runs in eval mode (BN running statistics) and only
   * the readouts train. MTL-Oracle's targets come from a readout fitted this way on the Oracle's
   * conv3_1 ({@linkcode assignTrunk} copies it in).
   */
  freezeTrunk?: boolean;
}

/** Progress after one epoch. */
export interface EpochReport {
  /** Epochs finished (1-based). */
  epoch: number;
  /** Mean loss per batch of the epoch. */
  loss: number;
  /** Validation mean correlation to the repeat average. */
  valCorrelation: number;
  /** Learning rate for the next epoch. */
  lr: number;
  /** Best validation correlation so far. */
  best: number;
  /** The epoch improved on the best (its weights are kept as the best). */
  improved: boolean;
  /** Patience ran out: best weights restored, lr lowered. */
  decayed: boolean;
  /** Training images seen this epoch. */
  images: number;
  /** Seconds the epoch took. */
  seconds: number;
}

/** How training ended. */
export interface TrainSummary {
  epochs: number;
  bestEpoch: number;
  bestValCorrelation: number;
  /** `plateau` (the schedule's early stop) or `max_epochs`. */
  stopped: "plateau" | "max_epochs";
  lr: number;
}

interface Batch {
  session: number;
  /** Positions in the session's train split. */
  rows: number[];
}

/**
 * The tfjs engine's training loss of one batch of session number `session` (call it inside a
 * gradient tape): scaledPoissonLoss(y * mask, targets, trainSize) + readoutL1(features, l1) with
 * y the readout's jittered responses (`sampleSeed`) on the trunk's training-mode features, or on
 * `fixed` (a frozen trunk's eval-mode features). `onBnStats` gets the trunk's BN batch statistics.
 */
export function predictorTrainLoss(
  p: Predictor,
  session: number,
  b: { x: tf.Tensor4D; targets: tf.Tensor2D; mask: tf.Tensor2D; trainSize: number },
  sampleSeed: number,
  l1: number,
  fixed: tf.Tensor | null = null,
  onBnStats?: (stats: Map<string, BnBatchStats>) => void,
): tf.Scalar {
  const readout = p.readouts[session];
  let features = fixed;
  if (!features) {
    const f = vggForward(p.trunk, b.x, { training: true, upTo: p.config.upTo });
    onBnStats?.(f.bnStats);
    features = f.output;
  }
  const y = gaussianReadout(readout, features, { training: true, sampleSeed });
  const poisson = scaledPoissonLoss(tf.mul(y, b.mask), b.targets, b.trainSize);
  return tf.add(poisson, readoutL1(readout.features, l1)) as tf.Scalar;
}

/**
 * Trains a predictor; holds the optimiser, schedule, best weights and epoch counter. Resumable:
 * {@linkcode checkpoint} after any epoch, {@linkcode PredictorTrainer.restore} to continue.
 */
export class PredictorTrainer {
  readonly predictor: Predictor;
  readonly data: PredictorData;
  readonly options: Required<PredictorTrainOptions>;
  readonly optimizer: Adam;
  schedule: PlateauSchedule;
  /** Epochs finished. */
  epoch = 0;
  /** Set when training has ended (schedule stop or max epochs). */
  finished: TrainSummary | null = null;
  #best: Map<string, tf.Tensor> | null = null;
  #biasInitialised = false;
  /** The training engine (COTRAIN_TRAIN_ENGINE, read once). */
  readonly engine: TrainEngine = trainEngine();
  /** Compiled onnxruntime steps by `session:batch size`. */
  readonly #steps = new Map<string, PredictorStep>();

  constructor(predictor: Predictor, data: PredictorData, options: PredictorTrainOptions = {}) {
    this.predictor = predictor;
    this.data = data;
    this.options = {
      batchSize: 128,
      maxEpochs: 150,
      lr: 5e-4,
      weightDecay: 5e-4,
      readoutL1: 0.5,
      factor: 0.5,
      patience: 5,
      maxDrops: 5,
      minLr: 1e-4,
      seed: predictor.config.seed,
      freezeTrunk: false,
      ...options,
    };
    const o = this.options;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
      throw CoreError.invalidArgument(`batch_size: ${o.batchSize}; a whole number >= 1`);
    }
    if (!Number.isInteger(o.maxEpochs) || o.maxEpochs < 1) {
      throw CoreError.invalidArgument(`max_epochs: ${o.maxEpochs}; a whole number >= 1`);
    }
    if (data.sessions.length !== predictor.config.sessions.length) {
      throw CoreError.invalidArgument(
        `sessions: the data has ${data.sessions.length}, the predictor ${predictor.config.sessions.length}`,
      );
    }
    const [, h, w] = data.inputs.shape;
    checkPredictorInput(predictor, [1, h, w, 1], "inputs");
    this.optimizer = new Adam({ lr: o.lr, weightDecay: o.weightDecay });
    this.schedule = new PlateauSchedule({
      lr: o.lr,
      factor: o.factor,
      patience: o.patience,
      maxDrops: o.maxDrops,
      minLr: o.minLr,
    });
  }

  /** The batches of an epoch: per session shuffled and chunked, then interleaved at random. */
  epochBatches(epoch: number): Batch[] {
    const rng = rngFor(this.options.seed, "predictor-epoch", epoch);
    const batches: Batch[] = [];
    this.data.bySession.forEach((b, s) => {
      const order = rng.shuffle(Array.from({ length: b.train.images.length }, (_, i) => i));
      for (let i = 0; i < order.length; i += this.options.batchSize) {
        batches.push({ session: s, rows: order.slice(i, i + this.options.batchSize) });
      }
    });
    return rng.shuffle(batches);
  }

  #batchTensors(batch: Batch) {
    const k = this.predictor.config.sessions[batch.session].neurons.length;
    const [, h, w] = this.data.inputs.shape;
    const b = batch.rows.length;
    const a = this.#batchArrays(batch);
    return {
      x: tf.tensor4d(a.x, [b, h, w, 1]),
      t: tf.tensor2d(a.targets, [b, k]),
      m: tf.tensor2d(a.mask, [b, k]),
    };
  }

  /** Readout biases from the mean recorded response of each session's first batch. */
  #initBiases(batches: Batch[]): void {
    const seen = new Set<number>();
    for (const b of batches) {
      if (seen.has(b.session)) continue;
      seen.add(b.session);
      const tr = this.data.bySession[b.session].train;
      const k = this.predictor.config.sessions[b.session].neurons.length;
      const mean = new Float32Array(k);
      for (let j = 0; j < k; j++) {
        let s = 0, c = 0;
        for (const r of b.rows) {
          if (tr.mask[r * k + j]) {
            s += tr.targets[r * k + j];
            c++;
          }
        }
        mean[j] = c ? s / c : 0;
      }
      tf.tidy(() => this.predictor.readouts[b.session].bias.assign(tf.tensor1d(mean)));
    }
    this.#biasInitialised = true;
  }

  /** Images [B, H, W, 1], targets and mask [B, neurons] of a batch, as flat arrays. */
  #batchArrays(batch: Batch) {
    const tr = this.data.bySession[batch.session].train;
    const k = this.predictor.config.sessions[batch.session].neurons.length;
    const [, h, w] = this.data.inputs.shape;
    const images = batch.rows.map((r) => tr.images[r]);
    return {
      x: takeRows(this.data.inputs.data, images, h * w),
      targets: takeRows(tr.targets, batch.rows, k),
      mask: takeRows(tr.mask, batch.rows, k),
    };
  }

  /**
   * One optimiser step on a batch; returns the loss. The engine is COTRAIN_TRAIN_ENGINE's
   * (core/engine/graph/program.ts' trainEngine): onnxruntime (default; one compiled
   * {@linkcode PredictorStep} per session and batch size, released when training ends) or tfjs.
   */
  async step(batch: Batch, sampleSeed: number): Promise<number> {
    const p = this.predictor;
    clampReadout(p.readouts[batch.session]);
    if (this.engine === "tfjs") return this.#stepTfjs(batch, sampleSeed);
    const key = `${batch.session}:${batch.rows.length}`;
    let step = this.#steps.get(key);
    if (!step) {
      const [, h, w] = this.data.inputs.shape;
      step = await PredictorStep.create(
        p,
        batch.session,
        { batch: batch.rows.length, height: h, width: w },
        { frozen: this.options.freezeTrunk },
      );
      this.#steps.set(key, step);
    }
    return await step.train(p, this.optimizer, {
      ...this.#batchArrays(batch),
      trainSize: this.data.bySession[batch.session].train.images.length,
      seed: sampleSeed,
      readoutL1: this.options.readoutL1,
    });
  }

  /** The tfjs engine's step (readout already clamped). */
  #stepTfjs(batch: Batch, sampleSeed: number): number {
    const p = this.predictor;
    const readout = p.readouts[batch.session];
    const prefix = `readout.${p.config.sessions[batch.session].id}.`;
    const n = this.data.bySession[batch.session].train.images.length;
    const frozen = this.options.freezeTrunk;
    const params = frozen ? new Map<string, tf.Variable>() : trainableParams(p.trunk);
    for (const [k, v] of readoutParams(readout, prefix)) params.set(k, v);
    const names = [...params.keys()];
    const vars = names.map((k) => params.get(k)!);
    const { x, t, m } = this.#batchTensors(batch);
    // a frozen trunk runs once, in eval mode, outside the gradient tape
    const fixed = frozen
      ? tf.tidy(() => vggForward(p.trunk, x, { training: false, upTo: p.config.upTo }).output)
      : null;
    const { value, grads } = tf.tidy(() =>
      tf.variableGrads(
        () =>
          predictorTrainLoss(
            p,
            batch.session,
            { x, targets: t, mask: m, trainSize: n },
            sampleSeed,
            this.options.readoutL1,
            fixed,
            (stats) => updateBnRunningStats(p.trunk, stats),
          ),
        vars,
      )
    );
    const named = new Map<string, tf.Tensor>();
    for (const [k, v] of params) if (grads[v.name]) named.set(k, grads[v.name]);
    this.optimizer.step(params, named);
    for (const g of Object.values(grads)) g.dispose();
    fixed?.dispose();
    x.dispose();
    t.dispose();
    m.dispose();
    const loss = value.dataSync()[0];
    value.dispose();
    return loss;
  }

  /** Releases the compiled onnxruntime steps. */
  async #releaseSteps(): Promise<void> {
    const steps = [...this.#steps.values()];
    this.#steps.clear();
    for (const s of steps) await s.release();
  }

  #snapshotBest(): void {
    this.#disposeBest();
    this.#best = new Map();
    for (const [k, v] of predictorParams(this.predictor)) this.#best.set(k, tf.keep(v.clone()));
  }

  #disposeBest(): void {
    if (this.#best) { for (const t of this.#best.values()) t.dispose(); }
    this.#best = null;
  }

  #restoreBest(): void {
    if (this.#best) assignParams(predictorParams(this.predictor), this.#best);
  }

  /**
   * Runs epochs until the schedule stops or `maxEpochs`, yielding a report after each (call
   * {@linkcode checkpoint} there to make the run resumable); returns the summary. Ends with the
   * best weights in the predictor. `signal` aborts between batches.
   */
  async *run(signal?: AbortSignal): AsyncGenerator<EpochReport, TrainSummary> {
    while (!this.finished) {
      const report = await this.runEpoch(signal);
      yield report;
    }
    return this.finished!;
  }

  /** One epoch (training, validation, schedule decision). */
  async runEpoch(signal?: AbortSignal): Promise<EpochReport> {
    if (this.finished) throw new CoreError("FAILED_PRECONDITION", "training has finished");
    const started = performance.now();
    const epoch = this.epoch;
    const batches = this.epochBatches(epoch);
    if (!this.#biasInitialised && epoch === 0) this.#initBiases(batches);
    this.optimizer.lr = this.schedule.lr;
    let total = 0, images = 0;
    for (let i = 0; i < batches.length; i++) {
      signal?.throwIfAborted();
      total += await this.step(batches[i], this.options.seed * 1_000_003 + epoch * 10_007 + i);
      images += batches[i].rows.length;
      await yieldTurn(); // let the event loop run (cancellation, health)
    }
    const val = validationCorrelation(this.predictor, this.data);
    const d = this.schedule.observe(Number.isFinite(val) ? val : -Infinity);
    this.epoch = epoch + 1;
    if (d.improved || this.#best === null) this.#snapshotBest();
    if (d.decayed || d.stop) this.#restoreBest();
    if (d.stop || this.epoch >= this.options.maxEpochs) {
      this.#restoreBest();
      const s = this.schedule.state;
      this.finished = {
        epochs: this.epoch,
        bestEpoch: s.bestEpoch,
        bestValCorrelation: s.best ?? NaN,
        stopped: d.stop ? "plateau" : "max_epochs",
        lr: s.lr,
      };
      await this.#releaseSteps();
    }
    return {
      epoch: this.epoch,
      loss: batches.length ? total / batches.length : NaN,
      valCorrelation: val,
      lr: d.lr,
      best: this.schedule.state.best ?? NaN,
      improved: d.improved,
      decayed: d.decayed,
      images,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** The trainer's whole state as safetensors (weights, best weights, Adam, schedule, epoch). */
  checkpoint(): Uint8Array {
    const tensors = new Map<string, tf.Tensor>(predictorParams(this.predictor));
    if (this.#best) { for (const [k, v] of this.#best) tensors.set(`best.${k}`, v); }
    const adam = this.optimizer.state();
    for (const [k, v] of adam) tensors.set(`adam.${k}`, v);
    const bytes = saveParams(tensors, {
      kind: PREDICTOR_KIND,
      config: this.predictor.config,
      extra: {
        "train.epoch": String(this.epoch),
        "train.schedule": JSON.stringify(this.schedule.state),
        "train.options": JSON.stringify(this.options),
        "train.finished": JSON.stringify(this.finished),
      },
    });
    for (const [k, v] of adam) if (k.endsWith(".step")) v.dispose();
    return bytes;
  }

  /** Continues a run from {@linkcode checkpoint}'s bytes on the same data. */
  static restore(bytes: Uint8Array, data: PredictorData): PredictorTrainer {
    const predictor = loadPredictor(bytes);
    const { tensors, meta } = loadParams(bytes);
    try {
      const extra = meta.extra ?? {};
      const options = JSON.parse(extra["train.options"] ?? "{}") as PredictorTrainOptions;
      const trainer = new PredictorTrainer(predictor, data, options);
      trainer.epoch = Number(extra["train.epoch"] ?? 0);
      trainer.#biasInitialised = trainer.epoch > 0;
      const state = JSON.parse(extra["train.schedule"] ?? "null") as PlateauState | null;
      if (state) trainer.schedule = new PlateauSchedule(trainer.schedule.options, state);
      trainer.finished = JSON.parse(extra["train.finished"] ?? "null");
      const adam = new Map<string, tf.Tensor>();
      const best = new Map<string, tf.Tensor>();
      for (const [k, v] of tensors) {
        if (k.startsWith("adam.")) adam.set(k.slice(5), v);
        else if (k.startsWith("best.")) best.set(k.slice(5), tf.keep(v.clone()));
      }
      trainer.optimizer.loadState(adam);
      if (best.size) trainer.#best = best;
      return trainer;
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }

  /** Frees the optimiser state, best weights and compiled steps (not the predictor). */
  dispose(): void {
    this.optimizer.dispose();
    this.#disposeBest();
    this.#releaseSteps().catch(() => {/* a session that cannot be released is gone already */});
  }
}
