/**
 * The classifier trainer of the study (SPEC.md sections 2 and 4): Baseline, MTL (MTL-Monkey,
 * MTL-Oracle: the targets say which), MTL-Shuffled and the two Oracle stages (core/train/oracle.ts:
 * stage 1 adds corrupted images and a conv3_1 consistency term, stage 2 freezes the trunk to
 * conv3_1 and retrains the rest), read top to bottom:
 *
 * 1. build the network (core/models/mtl.ts) and the PyTorch-rule SGD (momentum 0.75, weight decay
 *    5e-4 on every trainable variable, the task weights included);
 * 2. each epoch walks the training set in a seeded order; one optimizer step = the gradients of
 *    one (augmented) classification batch plus those of the neural batches the ratio asks for
 *    (core/train/batch_cycler.ts), accumulated; BN sees both in training mode;
 * 3. the loss is CE (Baseline) or exp(-s_c) CE + s_c/2 + sum over neural batches of
 *    (exp(-s_n) MSE + s_n)/2 (MTL);
 * 4. after each epoch, validation accuracy feeds the plateau schedule (factor 0.4 Baseline, 0.3
 *    MTL): the best weights are kept, restored on each drop and at the end;
 * 5. after each epoch a checkpoint (weights, best weights, momentum buffers, schedule, history)
 *    goes to `onCheckpoint`; a run started with `resume` continues after the saved epoch.
 *
 * The trainer is an async generator: it yields progress and returns the result (the trained
 * network, best weights loaded, which the caller disposes).
 *
 * @example
 * ```ts ignore
 * import { trainClassifier } from "./classifier.ts";
 * const run = trainClassifier({ kind: "baseline", width: 0.125, maxEpochs: 2 }, data);
 * let r = await run.next();
 * while (!r.done) r = await run.next();
 * console.log(r.value.testAccuracy);
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { CoreError } from "../errors.ts";
import type { LabelledImages } from "../data/tiny_imagenet.ts";
import { evaluationBatch, trainingBatch } from "../data/augment.ts";
import {
  classify,
  classifyTrain,
  createMtl,
  disposeMtl,
  type MtlModel,
  mtlParams,
  mtlTrainable,
  predictNeuralTrain,
} from "../models/mtl.ts";
import { clampReadout, initReadoutBias } from "../models/readout.ts";
import { updateBnRunningStats, vggForward } from "../models/vgg.ts";
import { SHARED_LAYER } from "../models/mtl.ts";
import { featureConsistency, oracleBatch, oracleStage2, vggTail } from "./oracle.ts";
import { crossEntropy, mse } from "./losses.ts";
import { Sgd } from "./optim.ts";
import { ClassifierStep } from "../engine/graph/classifier_step.ts";
import { type TrainEngine, trainEngine } from "../engine/graph/program.ts";
import { PlateauSchedule } from "./schedule.ts";
import { epochBatches, IndexCycler, neuralBatchesAt, permutation } from "./batch_cycler.ts";
import {
  isMtl,
  resolveTrainConfig,
  type TrainConfig,
  type TrainConfigInput,
} from "./classifier_config.ts";
import {
  loadMtlCheckpoint,
  readTrainerCheckpoint,
  snapshot,
  type TrainerState,
  writeTrainerCheckpoint,
} from "./classifier_checkpoint.ts";
import { yieldTurn } from "../event_loop.ts";

export { isMtl, MODEL_KINDS, type ModelKind, resolveTrainConfig } from "./classifier_config.ts";
export type { TrainConfig, TrainConfigInput } from "./classifier_config.ts";

/** Neural targets: one row of `neurons` responses per training image. */
export interface NeuralTargets {
  neurons: number;
  /** float32 [N_train * neurons], row-major. */
  data: Float32Array;
}

/** What a run trains and validates on. */
export interface ClassifierData {
  train: LabelledImages;
  val: LabelledImages;
  /** The test set (TIN's official val); accuracy of the final model is reported on it. */
  test?: LabelledImages;
  /** Number of classes. */
  classes: number;
  /** Targets for MTL kinds, aligned with `train`'s rows. */
  targets?: NeuralTargets;
}

/** A progress event. */
export interface TrainProgress {
  /** `train` (after some steps) or `validate` (end of an epoch). */
  stage: "train" | "validate";
  /** 1-based epoch. */
  epoch: number;
  /** Steps done in this epoch, and of the epoch. */
  step: number;
  stepsPerEpoch: number;
  /** Mean classification CE and neural MSE over the epoch's steps so far (NaN: none). */
  classificationLoss: number;
  neuralLoss: number;
  /** Oracle stage 1: mean conv3_1 feature-consistency MSE (NaN otherwise). */
  consistencyLoss: number;
  /** Task weights s_c and s_n (0 for the Baseline). */
  sC: number;
  sN: number;
  lr: number;
  /** Validation accuracy (validate events). */
  valAccuracy?: number;
  /** The schedule's decision (validate events): improved, decayed, stopped. */
  decision?: "improved" | "plateau" | "decayed" | "stop";
  /** Seconds since this call started. */
  elapsedS: number;
}

/** One epoch's record. */
export interface EpochRecord {
  epoch: number;
  classificationLoss: number;
  neuralLoss: number;
  consistencyLoss: number;
  valAccuracy: number;
  lr: number;
  sC: number;
  sN: number;
}

/** The result: the trained network (best weights) and its figures. */
export interface TrainResult {
  model: MtlModel;
  config: TrainConfig;
  epochs: number;
  bestEpoch: number;
  bestValAccuracy: number;
  /** Accuracy on the test set, NaN without one. */
  testAccuracy: number;
  lr: number;
  sC: number;
  sN: number;
  history: EpochRecord[];
  /** The epoch the run resumed after (0 = fresh start). */
  resumedFrom: number;
  /** MTL-Shuffled: row i of the targets used is row permutation[i] of the given ones. */
  permutation?: Int32Array;
}

/** Options of {@linkcode trainClassifier}. */
export interface TrainOptions {
  /** A checkpoint written by an earlier run of the same config and data. */
  resume?: Uint8Array;
  /** Called with a checkpoint after every epoch (await-ed). */
  onCheckpoint?: (bytes: Uint8Array, epoch: number) => Promise<void> | void;
  /** Stops the run (throws its reason) between steps. */
  signal?: AbortSignal;
  /** Yield a `train` event every this many steps (default 10; 0: only `validate` events). */
  progressEvery?: number;
  /** Batch size of evaluation passes (default 256). */
  evalBatch?: number;
  /** Oracle stage 2: the stage-1 network (saveMtlCheckpoint bytes) whose trunk is kept frozen. */
  init?: Uint8Array;
  /**
   * The training engine (default COTRAIN_TRAIN_ENGINE, else onnxruntime): `onnxruntime` runs each
   * step as one graph on every core (core/engine/graph), `tfjs` on the tfjs backend with
   * cotrain's kernels.
   */
  engine?: TrainEngine;
}

/** MTL-Shuffled's targets: row i is row `perm[i]` of `targets`, a seeded permutation. */
export function shuffleTargets(
  targets: NeuralTargets,
  seed: number,
): { targets: NeuralTargets; permutation: Int32Array } {
  const n = targets.data.length / targets.neurons;
  const perm = permutation(n, seed * 31 + 17);
  const out = new Float32Array(targets.data.length);
  const k = targets.neurons;
  for (let i = 0; i < n; i++) out.set(targets.data.subarray(perm[i] * k, perm[i] * k + k), i * k);
  return { targets: { neurons: k, data: out }, permutation: perm };
}

/** Checks data against the config (INVALID_ARGUMENT naming the field). */
export function checkData(config: TrainConfig, data: ClassifierData): void {
  const n = data.train.images.shape[0];
  if (n === 0) throw CoreError.invalidArgument("dataset: the training split is empty");
  if (data.val.images.shape[0] === 0) {
    throw CoreError.invalidArgument("dataset: the validation split is empty");
  }
  if (!isMtl(config.kind)) return;
  const t = data.targets;
  if (!t) {
    throw CoreError.invalidArgument(
      `neural_targets: model ${config.kind} needs targets, one row per training image (${n})`,
    );
  }
  if (!(t.neurons > 0) || t.data.length % t.neurons !== 0) {
    throw CoreError.invalidArgument(
      `neural_targets: ${t.data.length} values for ${t.neurons} neurons`,
    );
  }
  const rows = t.data.length / t.neurons;
  if (rows !== n) {
    throw CoreError.invalidArgument(
      `neural_targets: ${rows} rows, but the training split has ${n} images (one row each)`,
    );
  }
  for (let i = 0; i < t.data.length; i++) {
    if (!Number.isFinite(t.data[i])) {
      throw CoreError.invalidArgument(`neural_targets: value ${i} is ${t.data[i]}`);
    }
  }
}

/** Top-1 accuracy of the network (eval mode) on a labelled set. */
export function accuracy(model: MtlModel, set: LabelledImages, batch = 256): number {
  const n = set.images.shape[0];
  if (n === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < n; i += batch) {
    const rows = Int32Array.from({ length: Math.min(batch, n - i) }, (_, k) => i + k);
    const x = evaluationBatch(set.images, rows);
    const pred = tf.tidy(() =>
      tf.argMax(
        classify(model, tf.tensor4d(x.data, x.shape as [number, number, number, number])),
        1,
      )
        .dataSync()
    );
    for (let k = 0; k < rows.length; k++) if (pred[k] === set.labels.data[rows[k]]) correct++;
  }
  return correct / n;
}

function concatRows(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The target rows of `rows`, [rows.length, neurons] flat. */
function targetRows(t: NeuralTargets, rows: Int32Array): Float32Array {
  const k = t.neurons;
  const out = new Float32Array(rows.length * k);
  for (let i = 0; i < rows.length; i++) {
    out.set(t.data.subarray(rows[i] * k, rows[i] * k + k), i * k);
  }
  return out;
}

function gatherTargets(t: NeuralTargets, rows: Int32Array): tf.Tensor2D {
  return tf.tensor2d(targetRows(t, rows), [rows.length, t.neurons]);
}

function toTensor(x: { data: Float32Array; shape: number[] }): tf.Tensor4D {
  return tf.tensor4d(x.data, x.shape as [number, number, number, number]);
}

/** Trains a classifier; yields progress, returns the result (see the module doc). */
export async function* trainClassifier(
  input: TrainConfigInput,
  data: ClassifierData,
  options: TrainOptions = {},
): AsyncGenerator<TrainProgress, TrainResult> {
  const started = performance.now();
  const config = resolveTrainConfig(input);
  checkData(config, data);
  const mtl = isMtl(config.kind);
  let targets = data.targets;
  let perm: Int32Array | undefined;
  if (config.kind === "mtl-shuffled" && targets) {
    const s = shuffleTargets(targets, config.shuffleSeed);
    targets = s.targets;
    perm = s.permutation;
  }
  let model: MtlModel;
  let frozen = new Set<string>();
  if (config.kind === "oracle-stage2") {
    if (!options.init) {
      throw CoreError.invalidArgument(
        "init_model_id: oracle-stage2 needs the stage-1 Oracle network (a Train result of oracle)",
      );
    }
    const s1 = loadMtlCheckpoint(options.init);
    try {
      if (s1.config.classes !== data.classes || s1.config.width !== config.width) {
        throw CoreError.invalidArgument(
          `init_model_id: the stage-1 network has ${s1.config.classes} classes at width ` +
            `${s1.config.width}; this run needs ${data.classes} at ${config.width}`,
        );
      }
      ({ model, frozen } = oracleStage2(s1, config.seed + 1));
    } finally {
      disposeMtl(s1);
    }
  } else {
    model = createMtl({
      width: config.width,
      inChannels: 1,
      classes: data.classes,
      neurons: mtl ? targets!.neurons : 0,
      seed: config.seed,
    });
  }
  const tail = vggTail(model.vgg);
  if (config.headInitScale !== 1 && !options.resume) {
    const w = model.vgg.params.get("head.fc3.weight")!;
    tf.tidy(() => w.assign(tf.mul(w, config.headInitScale)));
  }
  const opt = new Sgd({
    lr: config.lr,
    momentum: config.momentum,
    weightDecay: config.weightDecay,
  });
  const nTrain = data.train.images.shape[0];
  let state: TrainerState = {
    epoch: 0,
    step: 0,
    schedule: undefined,
    cycler: { pass: 0, pos: 0 },
    history: [],
  };
  let best: Map<string, tf.Tensor> | null = null;
  const steps = new Map<string, ClassifierStep>(); // compiled graphs by batch layout
  try {
    if (options.resume) {
      const r = readTrainerCheckpoint(options.resume, model, opt, config, data.classes);
      state = r.state;
      best = r.best;
    }
    const schedule = new PlateauSchedule(
      {
        lr: config.lr,
        factor: config.factor,
        patience: config.patience,
        maxDrops: config.maxDrops,
        minLr: config.minLr,
      },
      state.schedule,
    );
    opt.lr = schedule.lr;
    const resumedFrom = state.epoch;
    const cycler = mtl
      ? new IndexCycler(nTrain, config.neuralBatchSize, config.seed + 1, state.cycler)
      : null;
    if (mtl && model.readout && resumedFrom === 0) {
      // readout bias = mean response of the first training batch (SPEC.md section 3)
      const probe = new IndexCycler(nTrain, config.neuralBatchSize, config.seed + 1).next();
      tf.tidy(() => initReadoutBias(model.readout!, gatherTargets(targets!, probe)));
    }
    const trainable = mtlTrainable(model, (name) => !frozen.has(name));
    const varList = [...trainable.values()];
    const every = options.progressEvery ?? 10;
    let stopped = state.history.length > 0 && state.stopped === true;
    const graph = (options.engine ?? trainEngine()) === "onnxruntime";

    for (let epoch = state.epoch + 1; epoch <= config.maxEpochs && !stopped; epoch++) {
      const batches = epochBatches(nTrain, config.batchSize, config.seed, epoch);
      let ceSum = 0, ceCount = 0, mseSum = 0, mseCount = 0, fcSum = 0, fcCount = 0;
      const losses = () => ({
        classificationLoss: ceCount ? ceSum / ceCount : NaN,
        neuralLoss: mseCount ? mseSum / mseCount : NaN,
        consistencyLoss: fcCount ? fcSum / fcCount : NaN,
      });
      for (let b = 0; b < batches.length; b++) {
        if (options.signal?.aborted) throw options.signal.reason ?? new Error("aborted");
        const rows = batches[b];
        const ob = config.kind === "oracle"
          ? oracleBatch(data.train.images, rows, {
            seed: config.seed,
            epoch,
            augment: config.augment,
          })
          : null;
        const xc = ob
          ? ob.clean
          : config.augment
          ? trainingBatch(data.train.images, rows, { seed: config.seed, epoch })
          : evaluationBatch(data.train.images, rows);
        const nNeural = mtl ? neuralBatchesAt(state.step, config.ratio) : 0;
        const neural = Array.from({ length: nNeural }, () => cycler!.next());
        if (model.readout) clampReadout(model.readout);
        const stepSeed = config.seed * 1_000_003 + state.step;
        if (graph) {
          const [, h, w] = xc.shape;
          const key = `${rows.length}:${neural.length}`;
          let step = steps.get(key);
          if (!step) {
            step = await ClassifierStep.create(model, {
              batch: rows.length,
              height: h,
              width: w,
              neuralPasses: neural.length,
              neuralBatch: config.neuralBatchSize,
              oracleLambda: ob ? config.oracleLambda : undefined,
            }, {
              trainable: (name) => !frozen.has(name),
              evalUpTo: frozen.size > 0 ? SHARED_LAYER : undefined,
            });
            steps.set(key, step);
          }
          const labels = Array.from(rows, (r) => data.train.labels.data[r]);
          const r = await step.train(model, opt, {
            // Oracle stage 1: clean images then their A corruptions, each label twice
            x: ob ? concatRows(ob.clean.data, ob.corruptedA.data) : xc.data,
            labels: ob ? [...labels, ...labels] : labels,
            xb: ob?.corruptedB.data,
            seed: stepSeed,
            neural: neural.map((nrows, j) => ({
              x: evaluationBatch(data.train.images, nrows).data,
              targets: targetRows(targets!, nrows),
              seed: stepSeed * 8 + j + 1,
            })),
          });
          ceSum += r.ce;
          ceCount++;
          if (r.consistency !== undefined) {
            fcSum += r.consistency;
            fcCount++;
          }
          for (const m of r.mse) {
            mseSum += m;
            mseCount++;
          }
        } else {
          const { value, grads } = tf.tidy(() => {
            const x = toTensor(xc);
            const y = tf.tensor1d(Array.from(rows, (r) => data.train.labels.data[r]), "int32");
            return tf.variableGrads(() => {
              if (ob) return oracleLoss(x, y, ob);
              let ce: tf.Scalar;
              if (frozen.size > 0) {
                // stage 2: the frozen trunk in eval mode, the rest in training mode
                const f = vggForward(model.vgg, x, { training: false, upTo: SHARED_LAYER }).output;
                const r = vggForward(tail, f, { training: true, dropoutSeed: stepSeed });
                updateBnRunningStats(model.vgg, r.bnStats);
                ce = crossEntropy(r.output as tf.Tensor2D, y);
              } else {
                const c = classifyTrain(model, x, { seed: stepSeed });
                updateBnRunningStats(model.vgg, c.bnStats);
                ce = crossEntropy(c.logits, y);
              }
              ceSum += ce.dataSync()[0];
              ceCount++;
              let loss: tf.Scalar = mtl
                ? tf.add(tf.mul(tf.exp(tf.neg(model.sC)), ce), tf.mul(model.sC, 0.5))
                : ce;
              for (const [j, nrows] of neural.entries()) {
                const xn = toTensor(evaluationBatch(data.train.images, nrows));
                const tn = gatherTargets(targets!, nrows);
                const p = predictNeuralTrain(model, xn, { seed: stepSeed * 8 + j + 1 });
                updateBnRunningStats(model.vgg, p.bnStats);
                const m = mse(p.responses, tn);
                mseSum += m.dataSync()[0];
                mseCount++;
                loss = tf.add(
                  loss,
                  tf.add(tf.mul(tf.mul(tf.exp(tf.neg(model.sN)), m), 0.5), tf.mul(model.sN, 0.5)),
                );
              }
              return loss;
            }, varList);

            // stage 1: CE on clean + corrupted images, lambda * conv3_1 consistency of two corruptions
            function oracleLoss(
              clean: tf.Tensor4D,
              y: tf.Tensor1D,
              b: typeof ob & object,
            ): tf.Scalar {
              const n = clean.shape[0];
              const xa = tf.concat([clean, toTensor(b.corruptedA)], 0);
              const r = vggForward(model.vgg, xa, {
                training: true,
                taps: [SHARED_LAYER],
                dropoutSeed: stepSeed,
              });
              updateBnRunningStats(model.vgg, r.bnStats);
              const ce = crossEntropy(r.output as tf.Tensor2D, tf.concat([y, y], 0));
              const fa = tf.slice(r.taps.get(SHARED_LAYER)!, [n, 0, 0, 0], [n, -1, -1, -1]);
              const fb = vggForward(model.vgg, toTensor(b.corruptedB), {
                training: true,
                upTo: SHARED_LAYER,
              });
              updateBnRunningStats(model.vgg, fb.bnStats);
              const fc = featureConsistency(fa, fb.output);
              ceSum += ce.dataSync()[0];
              ceCount++;
              fcSum += fc.dataSync()[0];
              fcCount++;
              return tf.add(ce, tf.mul(fc, config.oracleLambda));
            }
          });
          const named = new Map<string, tf.Tensor>();
          for (const [name, v] of trainable) if (grads[v.name]) named.set(name, grads[v.name]);
          opt.step(trainable, named);
          value.dispose();
          for (const g of Object.values(grads)) g.dispose();
        }
        state.step++;
        if (every > 0 && (b + 1) % every === 0 && b + 1 < batches.length) {
          yield {
            stage: "train",
            epoch,
            step: b + 1,
            stepsPerEpoch: batches.length,
            ...losses(),
            ...taskWeights(model, mtl),
            lr: opt.lr,
            elapsedS: (performance.now() - started) / 1000,
          };
        }
        await yieldTurn();
      }
      // validation and the schedule
      const valAccuracy = accuracy(model, data.val, options.evalBatch);
      const weights = taskWeights(model, mtl);
      const record: EpochRecord = { epoch, ...losses(), valAccuracy, lr: opt.lr, ...weights };
      const d = schedule.observe(valAccuracy);
      let decision: TrainProgress["decision"] = "plateau";
      if (d.improved) {
        best?.forEach((t) => t.dispose());
        best = snapshot(model);
        decision = "improved";
      } else if (d.decayed || d.stop) {
        if (best) restore(model, best);
        decision = d.stop ? "stop" : "decayed";
        stopped = d.stop;
      }
      opt.lr = d.lr;
      state = {
        epoch,
        step: state.step,
        schedule: schedule.state,
        cycler: cycler?.state ?? { pass: 0, pos: 0 },
        history: [...state.history, record],
        stopped,
      };
      if (options.onCheckpoint) {
        await options.onCheckpoint(
          writeTrainerCheckpoint(model, opt, best, config, data.classes, state),
          epoch,
        );
      }
      yield {
        stage: "validate",
        epoch,
        step: batches.length,
        stepsPerEpoch: batches.length,
        classificationLoss: record.classificationLoss,
        neuralLoss: record.neuralLoss,
        consistencyLoss: record.consistencyLoss,
        ...weights,
        lr: opt.lr,
        valAccuracy,
        decision,
        elapsedS: (performance.now() - started) / 1000,
      };
    }
    // the best checkpoint is the final model
    if (best) restore(model, best);
    const s = schedule.state;
    const testAccuracy = data.test ? accuracy(model, data.test, options.evalBatch) : NaN;
    return {
      model,
      config,
      epochs: state.epoch,
      bestEpoch: s.bestEpoch,
      bestValAccuracy: s.best ?? NaN,
      testAccuracy,
      lr: opt.lr,
      ...taskWeights(model, mtl),
      history: state.history,
      resumedFrom,
      permutation: perm,
    };
  } catch (err) {
    disposeMtl(model);
    throw err;
  } finally {
    best?.forEach((t) => t.dispose());
    opt.dispose();
    for (const s of steps.values()) await s.release();
  }
}

function taskWeights(model: MtlModel, mtl: boolean): { sC: number; sN: number } {
  if (!mtl) return { sC: 0, sN: 0 };
  return { sC: model.sC.dataSync()[0], sN: model.sN.dataSync()[0] };
}

function restore(model: MtlModel, best: Map<string, tf.Tensor>): void {
  for (const [name, v] of mtlParams(model)) {
    const t = best.get(name);
    if (t) v.assign(t);
  }
}
