/**
 * The classifier trainer's step (core/train/classifier.ts) as one onnxruntime graph: the fast CPU
 * engine for training. One classification batch through the whole VGG in training mode
 * (cross-entropy, dropout in the head) and, for MTL networks, `neuralPasses` neural batches
 * through the shared trunk to conv3_1 and the Gaussian readout (MSE to the targets), combined with
 * the learned task weights: L = exp(-s_c) CE + s_c / 2 + sum_j (exp(-s_n) MSE_j / 2 + s_n / 2)
 * (the Baseline: L = CE). Gradients of every trainable parameter come out of the same run, and
 * each pass's BN batch statistics for the running averages.
 *
 * The graph takes the parameters as inputs each step, so the tfjs variables stay the model's
 * single source of truth: optimisers, checkpoints, schedules and evaluation are unchanged.
 * Dropout masks come from core/random.ts (keyed by the step seed), the readout's jitter from the
 * same stream as the tfjs path.
 *
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import { createMtl } from "../../models/mtl.ts";
 * import { Sgd } from "../../train/optim.ts";
 * import { ClassifierStep } from "./classifier_step.ts";
 * const model = createMtl({ width: 0.125, inChannels: 1, classes: 10, neurons: 0, seed: 0 });
 * const step = await ClassifierStep.create(model, { batch: 4, height: 32, width: 32 });
 * const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
 * const r = await step.train(model, opt, {
 *   x: new Float32Array(4 * 32 * 32),
 *   labels: [0, 1, 2, 3],
 *   seed: 1,
 * });
 * console.log(Number.isFinite(r.loss)); // true
 * await step.release();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { rngFor } from "../../random.ts";
import {
  type BnBatchStats,
  featureShape,
  updateBnRunningStats,
  type VggModel,
} from "../../models/vgg.ts";
import { type MtlModel, mtlParams, SHARED_LAYER } from "../../models/mtl.ts";
import type { Optimizer } from "../../train/optim.ts";
import { type Feed, loadProgram, nchwcBlock, type Program } from "./program.ts";
import { type Sym, Tape } from "./tape.ts";
import {
  addVggTrain,
  headGrid,
  outputBnStats,
  outputGradients,
  type ParamFeeder,
  ParamInputs,
  type ParamOut,
  readBnStats,
} from "./vgg.ts";
import { addReadout, readoutGradients, type ReadoutSampling, readoutSampling } from "./readout.ts";

/** The batch layout a step is compiled for. */
export interface StepShape {
  /** Classification batch size and image size (NHWC input, the model's channels). */
  batch: number;
  height: number;
  width: number;
  /** Neural batches per step (MTL) and their size. */
  neuralPasses?: number;
  neuralBatch?: number;
  /**
   * Oracle stage 1 with this lambda: the classification batch is `batch` clean images followed by
   * their corrupted copies A (2 batch rows, each label twice), and the loss adds lambda times the
   * MSE between conv3_1 of A and of a second corruption B of the same images (`StepBatch.xb`).
   */
  oracleLambda?: number;
}

/** One step's data. */
export interface StepBatch {
  /** Classification images NHWC, flat. */
  x: Float32Array;
  labels: ArrayLike<number>;
  /** Seed of this step's dropout masks. */
  seed: number;
  /** Neural batches: images NHWC, targets [B, neurons], seed of the readout's jitter. */
  neural?: { x: Float32Array; targets: Float32Array; seed: number }[];
  /** Oracle stage 1: the B corruptions of the batch's images, NHWC. */
  xb?: Float32Array;
  /** Dropout masks [N gh gw, hidden] (tests: to match another engine's draw); default from `seed`. */
  masks?: [Float32Array, Float32Array];
}

/** What a step computed. */
export interface StepResult {
  /** The total loss, the mean CE, each neural pass's MSE and Oracle stage 1's consistency MSE. */
  loss: number;
  ce: number;
  mse: number[];
  consistency?: number;
  /** Gradients by parameter name (the names of mtlParams), in the variables' shapes. */
  grads: Map<string, tf.Tensor>;
  /** BN batch statistics of each pass, classification first. */
  bnStats: Map<string, BnBatchStats>[];
}

/** NHWC [n, h, w, c] -> NCHW (the same array when c = 1). */
export function toNchw(x: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  if (c === 1) return x;
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h * w; y++) {
      for (let k = 0; k < c; k++) out[(i * c + k) * h * w + y] = x[(i * h * w + y) * c + k];
    }
  }
  return out;
}

/**
 * Dropout masks (rate 0.5: each unit 0 or 2) for the head's two hidden layers, [N gh gw, hidden]
 * (NHWC order), from core/random.ts.
 */
export function dropoutMasks(
  model: VggModel,
  n: number,
  h: number,
  w: number,
  seed: number,
): [Float32Array, Float32Array] {
  const [gh, gw] = headGrid(model, h, w);
  const len = n * model.head!.hidden * gh * gw;
  const one = (k: number) => {
    const rng = rngFor(seed, "head-dropout", k);
    const m = new Float32Array(len);
    // every bit of a 32-bit draw keeps or drops one unit (1 in 32 the draws of one per unit)
    for (let i = 0; i < len; i += 32) {
      const bits = rng.next();
      const end = Math.min(len, i + 32);
      for (let j = i; j < end; j++) m[j] = (bits >>> (j - i)) & 1 ? 2 : 0;
    }
    return m;
  };
  return [one(1), one(2)];
}

interface PassOut {
  prefix: string;
  counts: Map<string, number>;
}

/** A compiled step for one network layout and batch shape. */
export class ClassifierStep {
  readonly shape: StepShape;
  readonly #program: Program;
  readonly #params: ParamOut[];
  readonly #passes: PassOut[];
  readonly #feeder: ParamFeeder;

  private constructor(
    program: Program,
    shape: StepShape,
    params: ParamOut[],
    passes: PassOut[],
    feeder: ParamFeeder,
  ) {
    this.#feeder = feeder;
    this.#program = program;
    this.shape = shape;
    this.#params = params;
    this.#passes = passes;
  }

  /**
   * Builds and loads the graph for `model`'s layout (its values are inputs at run time).
   * `trainable` picks the parameters that get gradients (default: all).
   */
  static async create(
    model: MtlModel,
    shape: StepShape,
    options: {
      threads?: number;
      /** Parameters that get gradients (default: all). */
      trainable?: (name: string) => boolean;
      /** Trunk layers up to this one run in eval mode (Oracle stage 2's frozen conv1_1..conv3_1). */
      evalUpTo?: string;
    } = {},
  ): Promise<ClassifierStep> {
    const vgg = model.vgg;
    if (!vgg.head) throw new Error("a classification step needs a model with a head");
    const passes = shape.neuralPasses ?? 0;
    if (passes > 0 && !model.readout) {
      throw new Error("neural passes need a network with a readout (neurons > 0)");
    }
    const { height: h, width: w } = shape;
    const oracle = shape.oracleLambda !== undefined;
    if (oracle && (passes > 0 || model.readout)) {
      throw new Error("Oracle stage 1 trains a network without a neural branch");
    }
    const n = oracle ? 2 * shape.batch : shape.batch; // rows of the classification pass
    const ch = vgg.config.inChannels;
    const t = new Tape({ nchwcBlock: await nchwcBlock() });
    const params = new ParamInputs(
      t,
      { params: mtlParams(model) },
      options.trainable ?? (() => true),
    );
    const x = t.input("x", [n, ch, h, w], false);
    const oneHot = t.input("onehot", [n, vgg.head.classes], false);
    const [gh, gw] = headGrid(vgg, h, w);
    const hid = vgg.head.hidden;
    const masks: [Sym, Sym] = [
      t.input("mask1", [n * gh * gw, hid], false),
      t.input("mask2", [n * gh * gw, hid], false),
    ];
    const outs: PassOut[] = [];
    const f = addVggTrain(t, vgg, params, x, {
      masks,
      evalUpTo: options.evalUpTo,
      taps: oracle ? [SHARED_LAYER] : undefined,
    });
    const ce = t.crossEntropy(f.output, oneHot);
    const statsOut = (prefix: string, stats: typeof f.bnStats) =>
      outs.push({ prefix, counts: outputBnStats(t, stats, prefix) });
    statsOut("c:", f.bnStats);
    t.output(ce, "ce");
    let loss = ce;
    if (oracle) {
      // lambda * mean((conv3_1(A) - conv3_1(B))^2), B through the trunk in a second pass
      const b = shape.batch;
      const xb = t.input("xb", [b, ch, h, w], false);
      const fb = addVggTrain(t, vgg, params, xb, { upTo: SHARED_LAYER });
      statsOut("b:", fb.bnStats);
      const fa = t.sliceRows(f.taps.get(SHARED_LAYER)!, b, 2 * b);
      const fc = t.meanSquaredError(fa, fb.output);
      t.output(fc, "consistency");
      loss = t.add(ce, t.scale(fc, shape.oracleLambda!));
    }
    const mtl = model.readout !== null;
    const weightSyms: Sym[] = [];
    if (mtl) {
      const sC = params.get("task.s_c");
      loss = t.add(t.mul(t.exp(t.scale(sC, -1)), ce), t.scale(sC, 0.5));
      const sN = params.get("task.s_n");
      const bn = shape.neuralBatch ?? n;
      const neurons = model.readout!.config.neurons;
      for (let j = 0; j < passes; j++) {
        const xn = t.input(`xn${j}`, [bn, ch, h, w], false);
        const target = t.input(`target${j}`, [bn, neurons], false);
        const idx = t.indexInput(`idx${j}`, [bn, 4, neurons]);
        const wts = t.input(`weights${j}`, [bn, 4, neurons], true);
        weightSyms.push(wts);
        const fn = addVggTrain(t, vgg, params, xn, { upTo: SHARED_LAYER });
        statsOut(`n${j}:`, fn.bnStats);
        const r = addReadout(t, params, "readout.", fn.output, idx, wts);
        const mse = t.meanSquaredError(r, target);
        t.output(mse, `mse${j}`);
        const term = t.add(t.scale(t.mul(t.exp(t.scale(sN, -1)), mse), 0.5), t.scale(sN, 0.5));
        loss = t.add(loss, term);
      }
    }
    const wrt = params.trainable();
    const grads = t.gradients(loss, [...wrt, ...weightSyms]);
    t.output(loss, "loss");
    const withGrad = outputGradients(t, wrt, grads);
    weightSyms.forEach((_, j) => t.output(grads[wrt.length + j]!, `gweights${j}`));
    const program = await loadProgram(t.toModel("cotrain-classifier-step"), options.threads);
    return new ClassifierStep(program, shape, withGrad, outs, params.feeder());
  }

  /** Loss, gradients and BN statistics of one step's data. */
  async lossAndGrads(model: MtlModel, b: StepBatch): Promise<StepResult> {
    const vgg = model.vgg;
    const { height: h, width: w } = this.shape;
    const oracle = this.shape.oracleLambda !== undefined;
    const n = oracle ? 2 * this.shape.batch : this.shape.batch;
    const c = vgg.config.inChannels;
    const k = vgg.head!.classes;
    const oneHot = new Float32Array(n * k);
    for (let i = 0; i < n; i++) oneHot[i * k + b.labels[i]] = 1;
    const [m1, m2] = b.masks ?? dropoutMasks(vgg, n, h, w, b.seed);
    const [gh, gw] = headGrid(vgg, h, w);
    const hid = vgg.head!.hidden;
    const all = mtlParams(model);
    const feeds: Record<string, Feed> = {
      x: { data: toNchw(b.x, [n, h, w, c]), dims: [n, c, h, w] },
      onehot: { data: oneHot, dims: [n, k] },
      mask1: { data: m1, dims: [n * gh * gw, hid] },
      mask2: { data: m2, dims: [n * gh * gw, hid] },
    };
    Object.assign(feeds, this.#feeder.feeds(all)); // parameters, BN running statistics
    if (oracle) {
      if (!b.xb) throw new Error("an Oracle stage 1 step needs the B corruptions (xb)");
      const m = this.shape.batch;
      feeds.xb = { data: toNchw(b.xb, [m, h, w, c]), dims: [m, c, h, w] };
    }
    const passes = this.shape.neuralPasses ?? 0;
    const neural = b.neural ?? [];
    if (neural.length !== passes) {
      throw new Error(`this step takes ${passes} neural batches; got ${neural.length}`);
    }
    const samplings: ReadoutSampling[] = [];
    if (passes > 0) {
      const bn = this.shape.neuralBatch ?? n;
      const neurons = model.readout!.config.neurons;
      const [fh, fw] = sharedGrid(vgg, h, w);
      neural.forEach((nb, j) => {
        const s = readoutSampling(model.readout!, bn, fh, fw, true, nb.seed);
        samplings.push(s);
        feeds[`xn${j}`] = { data: toNchw(nb.x, [bn, h, w, c]), dims: [bn, c, h, w] };
        feeds[`target${j}`] = { data: nb.targets, dims: [bn, neurons] };
        feeds[`idx${j}`] = { data: s.idx, dims: [bn, 4, neurons] };
        feeds[`weights${j}`] = { data: s.weights, dims: [bn, 4, neurons] };
      });
    }
    const out = await this.#program.run(feeds);
    const grads = this.#feeder.gradients(this.#params, out);
    if (passes > 0) {
      // mu and sigma reach the loss only through the sampling positions (not graph inputs)
      const g = readoutGradients(
        model.readout!,
        samplings.map((sampling, j) => ({ sampling, gWeights: out[`gweights${j}`] })),
      );
      grads.set("readout.mu", g.mu);
      grads.set("readout.sigma", g.sigma);
    }
    const bnStats = this.#passes.map(({ prefix, counts }) => readBnStats(out, prefix, counts));
    return {
      loss: out.loss[0],
      ce: out.ce[0],
      mse: neural.map((_, j) => out[`mse${j}`][0]),
      consistency: oracle ? out.consistency[0] : undefined,
      grads,
      bnStats,
    };
  }

  /**
   * One training step: the graph's gradients, the BN running averages (pass by pass, as the tfjs
   * path updates them), then `optimizer`'s update of the tfjs variables.
   */
  async train(model: MtlModel, optimizer: Optimizer, b: StepBatch): Promise<StepResult> {
    const r = await this.lossAndGrads(model, b);
    for (const s of r.bnStats) {
      updateBnRunningStats(model.vgg, s);
      for (const v of s.values()) tf.dispose([v.mean, v.variance]);
    }
    const all = mtlParams(model);
    const trainable = new Map<string, tf.Variable>();
    for (const name of r.grads.keys()) trainable.set(name, all.get(name)!);
    optimizer.step(trainable, r.grads);
    for (const g of r.grads.values()) g.dispose();
    r.grads.clear();
    return r;
  }

  release(): Promise<void> {
    return this.#program.release();
  }
}

/** The shared layer's (conv3_1's) spatial size for an h x w input. */
export function sharedGrid(model: VggModel, h: number, w: number): [number, number] {
  const [, fh, fw] = featureShape(model, SHARED_LAYER, h, w);
  return [fh, fw];
}
