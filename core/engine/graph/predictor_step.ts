/**
 * The Monkey Predictor's training step (core/train/predictor.ts' `PredictorTrainer.step`) as one
 * onnxruntime graph: a batch of one recording session through the trunk to conv3_1 (training-mode
 * BatchNorm, or the frozen trunk in eval mode), that session's Gaussian readout with per-image
 * jitter, and the loss
 * L = sqrt(N_train / B) sum(y m - t log(y m + 1e-12)) + l1 sum|features|
 * (core/train/losses.ts' scaledPoissonLoss of the masked responses plus readoutL1). The same run
 * gives every gradient and the BN batch statistics; {@linkcode PredictorStep.train} then updates
 * the BN running averages and applies the trainer's Adam to the tfjs variables.
 *
 * Parameters are graph inputs read from the tfjs variables at each step (names as
 * predictorParams gives them: `conv1_1.weight`, `readout.<session id>.features`, ...), so the
 * variables stay the predictor's only state: checkpoints, schedules and evaluation are unchanged.
 * A step is compiled per (session, batch size): sessions differ in their neuron counts.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createPredictor } from "../../train/predictor.ts";
 * import { Adam } from "../../train/optim.ts";
 * import { PredictorStep } from "./predictor_step.ts";
 * await initBackend("cpu");
 * const p = createPredictor({
 *   width: 0.125,
 *   seed: 0,
 *   inputSize: 32,
 *   sessions: [{ id: 0, neurons: [0, 1, 2] }],
 * });
 * const step = await PredictorStep.create(p, 0, { batch: 2, height: 32, width: 32 });
 * const loss = await step.train(p, new Adam({ lr: 5e-4 }), {
 *   x: new Float32Array(2 * 32 * 32),
 *   targets: new Float32Array(6).fill(1),
 *   mask: new Float32Array(6).fill(1),
 *   trainSize: 100,
 *   seed: 1,
 * });
 * console.log(Number.isFinite(loss)); // true
 * await step.release();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BnBatchStats, trainableParams, updateBnRunningStats } from "../../models/vgg.ts";
import { readoutParams } from "../../models/readout.ts";
import { type Predictor, predictorParams } from "../../train/predictor.ts";
import { POISSON_EPS } from "../../train/losses.ts";
import type { Optimizer } from "../../train/optim.ts";
import { type Feed, loadProgram, nchwcBlock, type Program } from "./program.ts";
import { Tape } from "./tape.ts";
import {
  addVggTrain,
  outputBnStats,
  outputGradients,
  type ParamFeeder,
  ParamInputs,
  type ParamOut,
  readBnStats,
} from "./vgg.ts";
import { addReadout, readoutGradients, readoutSampling } from "./readout.ts";

/** The batch layout a step is compiled for (gray images, NHWC [batch, height, width, 1]). */
export interface PredictorStepShape {
  batch: number;
  height: number;
  width: number;
}

/** One batch of one session. */
export interface PredictorStepBatch {
  /** Images NHWC [B, H, W, 1], flat. */
  x: Float32Array;
  /** Targets and mask [B, neurons of the session] (mask 0: not recorded; its target finite). */
  targets: Float32Array;
  mask: Float32Array;
  /** Training images of the session (the Poisson loss is scaled by sqrt(trainSize / B)). */
  trainSize: number;
  /** Seed of the readout's per-image jitter (the tfjs path's sampleSeed). */
  seed: number;
  /** Weight of the readout L1 penalty (default 0.5). */
  readoutL1?: number;
}

/** What a step computed. */
export interface PredictorStepResult {
  loss: number;
  /** Gradients by parameter name (predictorParams' names), in the variables' shapes. */
  grads: Map<string, tf.Tensor>;
  /** BN batch statistics per trunk layer (empty for a frozen trunk). */
  bnStats: Map<string, BnBatchStats>;
}

/** A compiled step for one session of one predictor layout and one batch size. */
export class PredictorStep {
  readonly shape: PredictorStepShape;
  readonly session: number;
  readonly frozen: boolean;
  readonly #program: Program;
  readonly #params: ParamOut[];
  readonly #bnCounts: Map<string, number>;
  readonly #grid: [number, number];
  readonly #feeder: ParamFeeder;

  private constructor(
    program: Program,
    session: number,
    shape: PredictorStepShape,
    frozen: boolean,
    params: ParamOut[],
    bnCounts: Map<string, number>,
    grid: [number, number],
    feeder: ParamFeeder,
  ) {
    this.#feeder = feeder;
    this.#program = program;
    this.session = session;
    this.shape = shape;
    this.frozen = frozen;
    this.#params = params;
    this.#bnCounts = bnCounts;
    this.#grid = grid;
  }

  /**
   * Builds and loads the graph of `predictor`'s layout for its session number `session` (an
   * index into `config.sessions`); `frozen`: the trunk in eval mode, only the readout trains.
   */
  static async create(
    predictor: Predictor,
    session: number,
    shape: PredictorStepShape,
    options: {
      frozen?: boolean;
      threads?: number;
    } = {},
  ): Promise<PredictorStep> {
    const info = predictor.config.sessions[session];
    if (!info) throw new Error(`the predictor has no session number ${session}`);
    const frozen = options.frozen ?? false;
    const prefix = readoutPrefix(predictor, session);
    const { batch: b, height: h, width: w } = shape;
    const neurons = predictor.readouts[session].config.neurons;
    const t = new Tape({ nchwcBlock: await nchwcBlock() });
    const params = new ParamInputs(
      t,
      { params: predictorParams(predictor) },
      frozen ? (name) => name.startsWith(prefix) : () => true,
    );
    const x = t.input("x", [b, 1, h, w], false);
    const target = t.input("target", [b, neurons], false);
    const mask = t.input("mask", [b, neurons], false);
    const scale = t.input("poisson_scale", [], false);
    const l1 = t.input("l1_weight", [], false);
    const idx = t.indexInput("idx", [b, 4, neurons]);
    const wts = t.input("weights", [b, 4, neurons], true);
    const f = addVggTrain(t, predictor.trunk, params, x, {
      upTo: predictor.config.upTo,
      eval: frozen,
    });
    const bnCounts = outputBnStats(t, f.bnStats, "");
    const y = addReadout(t, params, prefix, f.output, idx, wts);
    const ym = t.mul(y, mask);
    const poisson = t.sumAll(t.sub(ym, t.mul(target, t.log(t.add(ym, t.scalar(POISSON_EPS))))));
    const penalty = t.mul(t.sumAll(t.abs(params.get(`${prefix}features`))), l1);
    const loss = t.add(t.mul(poisson, scale), penalty);
    const wrt = params.trainable();
    const grads = t.gradients(loss, [...wrt, wts]);
    t.output(loss, "loss");
    const out = outputGradients(t, wrt, grads);
    t.output(grads[wrt.length]!, "gweights");
    const program = await loadProgram(t.toModel("cotrain-predictor-step"), options.threads);
    const grid: [number, number] = [f.output.shape[2], f.output.shape[3]];
    return new PredictorStep(program, session, shape, frozen, out, bnCounts, grid, params.feeder());
  }

  /** Loss, gradients and BN statistics of one batch (the variables are not changed). */
  async lossAndGrads(predictor: Predictor, b: PredictorStepBatch): Promise<PredictorStepResult> {
    const { batch: n, height: h, width: w } = this.shape;
    const readout = predictor.readouts[this.session];
    const neurons = readout.config.neurons;
    const want = (what: string, got: number, expected: number) => {
      if (got !== expected) {
        throw new Error(`${what}: ${got} values; this step takes ${expected}`);
      }
    };
    want("x", b.x.length, n * h * w);
    want("targets", b.targets.length, n * neurons);
    want("mask", b.mask.length, n * neurons);
    const [fh, fw] = this.#grid;
    const s = readoutSampling(readout, n, fh, fw, true, b.seed);
    const feeds: Record<string, Feed> = {
      x: { data: b.x, dims: [n, 1, h, w] },
      target: { data: b.targets, dims: [n, neurons] },
      mask: { data: b.mask, dims: [n, neurons] },
      poisson_scale: { data: new Float32Array([Math.sqrt(b.trainSize / n)]), dims: [] },
      l1_weight: { data: new Float32Array([b.readoutL1 ?? 0.5]), dims: [] },
      idx: { data: s.idx, dims: [n, 4, neurons] },
      weights: { data: s.weights, dims: [n, 4, neurons] },
    };
    const all = predictorParams(predictor);
    Object.assign(feeds, this.#feeder.feeds(all)); // parameters, BN running statistics
    const out = await this.#program.run(feeds);
    const grads = this.#feeder.gradients(this.#params, out);
    // mu and sigma reach the loss only through the sampling positions (not graph inputs)
    const g = readoutGradients(readout, [{ sampling: s, gWeights: out.gweights }]);
    const prefix = readoutPrefix(predictor, this.session);
    grads.set(`${prefix}mu`, g.mu);
    grads.set(`${prefix}sigma`, g.sigma);
    const bnStats = readBnStats(out, "", this.#bnCounts);
    return { loss: out.loss[0], grads, bnStats };
  }

  /**
   * One training step: the graph's loss and gradients, the BN running averages, then
   * `optimizer`'s update (in the tfjs path's parameter order: trunk, then the readout). Returns
   * the loss.
   */
  async train(predictor: Predictor, optimizer: Optimizer, b: PredictorStepBatch): Promise<number> {
    const r = await this.lossAndGrads(predictor, b);
    updateBnRunningStats(predictor.trunk, r.bnStats);
    for (const v of r.bnStats.values()) tf.dispose([v.mean, v.variance]);
    const params = this.frozen ? new Map<string, tf.Variable>() : trainableParams(predictor.trunk);
    const prefix = readoutPrefix(predictor, this.session);
    for (const [k, v] of readoutParams(predictor.readouts[this.session], prefix)) params.set(k, v);
    for (const k of [...params.keys()]) if (!r.grads.has(k)) params.delete(k);
    optimizer.step(params, r.grads);
    for (const g of r.grads.values()) g.dispose();
    return r.loss;
  }

  release(): Promise<void> {
    return this.#program.release();
  }
}

/** `readout.<session id>.`: the checkpoint names' prefix of a session's readout. */
function readoutPrefix(p: Predictor, session: number): string {
  return `readout.${p.config.sessions[session].id}.`;
}
