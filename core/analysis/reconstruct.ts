/**
 * Norm-constrained reconstruction (SPEC.md section 7, the paper's Sec. 4): the image x* that a
 * network "sees" in an image x0 through one of its layers when only a pixel-norm budget r is
 * allowed,
 *
 *     x* = argmin_x ||f(x) - f(x0)||^2   subject to   ||x||_2 <= r,
 *
 * with f the layer's activations (default conv3_1 after BN + ReLU) of a stored VGG / MTL /
 * predictor checkpoint in eval mode. The reference starts from random normal noise, blurs the
 * gradient with a Gaussian (sigma 1) before every step, steps with SGD (lr 5, MTL models) or Adam
 * (lr 0.01, Baseline and Oracle), and after every step projects x back onto the ball
 * (`constraint: "project"`, x *= min(1, r / ||x||)); its demo instead rescales to exactly r
 * (`constraint: "rescale"`). The loss is the squared error averaged over the layer's activations
 * of each image (`reduction: "mean"`, as PyTorch's MSELoss on one image: the scale at which the
 * paper's SGD lr 5 takes small steady steps; summed, lr 5 oscillates) or summed (`"sum"`). Several
 * images and budgets run as one batch: row `i * budgets.length + b` is image i at
 * budget b; the rows do not interact (the loss is a sum, Adam's moments are per element).
 *
 * Eval-mode batch norm is folded into the convolutions once (w' = w * gamma / sqrt(var + eps),
 * b' = (b - mean) * gamma / sqrt(var + eps) + beta). Two engines compute the gradient:
 *
 * - `onnx` (default): a hand-written gradient graph (onnx_grad.ts) on onnxruntime-node; the
 *   input gradients of the convolutions are convolutions with flipped, transposed weights.
 * - `tfjs`: autodiff on the active tfjs backend (on wasm, cotrain's Conv2DBackpropInput and
 *   MaxPoolGrad kernels); the reference the onnx engine is tested against, several times slower
 *   (BENCHMARKS.md, "Reconstruction").
 *
 * The blur, the optimiser step and the projection are plain loops over the batch (a 4 x 64 x 64
 * batch is 16k numbers; the network dominates).
 *
 * @example
 * ```ts
 * import { initBackend } from "../engine/backend.ts";
 * import { createVgg } from "../models/vgg.ts";
 * import { reconstruct } from "./reconstruct.ts";
 * await initBackend("cpu");
 * const vgg = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed: 0 });
 * const x0 = { shape: [1, 16, 16, 1] as const, data: new Float32Array(256).fill(0.5) };
 * const r = await reconstruct(vgg, x0, { layer: "conv1_2", budgets: [2, 20], steps: 5 });
 * console.log(r.norms); // two norms, each at most its budget
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { CoreError } from "../errors.ts";
import { rngFor } from "../random.ts";
import { loadParams } from "../models/checkpoint.ts";
import { BN_EPS, featureShape, layerNames, type VggModel } from "../models/vgg.ts";
import { disposeMtl } from "../models/mtl.ts";
import { loadMtlCheckpoint, MODEL_KIND } from "../train/classifier_checkpoint.ts";
import { disposePredictor, loadPredictor, PREDICTOR_KIND } from "../train/predictor.ts";
import { exportFeaturesOnnx, exportReconstructionGradOnnx, openGradSession } from "./onnx_grad.ts";
import { blurInPlace, gaussianKernel1d } from "./blur.ts";
import { yieldTurn } from "../event_loop.ts";

/** The layer the paper reconstructs from. */
export const DEFAULT_LAYER = "conv3_1";
/** The norm budgets of the paper's figures. */
export const DEFAULT_BUDGETS: readonly number[] = [5, 15, 60];
/** Optimisation steps per image, model and budget in the paper. */
export const DEFAULT_STEPS = 8000;
/** The optimisers and their default learning rates (SGD for MTL models, Adam for the others). */
export const DEFAULT_LR = { sgd: 5, adam: 0.01 } as const;

/** A batch of images, NHWC float32 in normalised units. */
export interface ImageBatch {
  shape: readonly [number, number, number, number];
  data: Float32Array;
}

/** Options of a reconstruction. */
export interface ReconstructOptions {
  /** Layer whose activations are matched (default conv3_1). */
  layer?: string;
  /** Norm budgets r (default 5, 15, 60); every one must be > 0. */
  budgets?: readonly number[];
  /** Optimisation steps (default 8000). */
  steps?: number;
  /** `sgd` (default) or `adam`. */
  optimizer?: "sgd" | "adam";
  /** Learning rate (default 5 for SGD, 0.01 for Adam). */
  lr?: number;
  /** After every step: `project` onto the ball (default) or `rescale` to exactly r. */
  constraint?: "project" | "rescale";
  /** Sigma in pixels of the Gaussian blur of the gradient (default 1; 0 = no blur). */
  blurSigma?: number;
  /** Seed of the random normal start. */
  seed?: number;
  /** Record the loss curve every this many steps (default: about 200 points over the run). */
  lossEvery?: number;
  /**
   * `mean` (default): the squared error averaged over the layer's activations of each image
   * (PyTorch's MSELoss on one image, the scale the paper's SGD lr 5 is for); `sum`: summed (what
   * ../shared/bench/torch_reconstruct.py does).
   */
  reduction?: "mean" | "sum";
  /** Aborting stops the optimisation before the next step (the promise rejects with the reason). */
  signal?: AbortSignal;
}

/** Where a running reconstruction is. */
export interface ReconstructProgress {
  /** Steps done. */
  step: number;
  steps: number;
  /** Loss per row (image-major: image i, budget b at `i * budgets + b`) at this step. */
  losses: Float32Array;
  /** Seconds since the start. */
  elapsedS: number;
}

/** The outcome of a reconstruction. */
export interface ReconstructResult {
  layer: string;
  budgets: number[];
  /** Images N, height, width, channels of the input. */
  shape: [number, number, number, number];
  /** Reconstructions, float32 [N, budgets, H, W, C]. */
  reconstructions: Float32Array;
  /** ||x*||_2 per row. */
  norms: Float32Array;
  /** ||x0||_2 per image. */
  targetNorms: Float32Array;
  /** The loss curve: the steps it was recorded at and the loss per row at each, [points, rows]. */
  curve: { steps: number[]; losses: Float32Array };
  /** Loss per row after the last step. */
  finalLosses: Float32Array;
  steps: number;
}

/** Checks the options and fills in the defaults (INVALID_ARGUMENT naming the field). */
export function resolveReconstructOptions(
  model: VggModel,
  options: ReconstructOptions = {},
): Required<Omit<ReconstructOptions, "signal">> {
  const layer = options.layer || DEFAULT_LAYER;
  const names = layerNames(model);
  if (!names.includes(layer)) {
    throw CoreError.invalidArgument(
      `layer: unknown layer ${JSON.stringify(layer)}; valid layers: ${names.join(", ")}`,
    );
  }
  const budgets = [...(options.budgets?.length ? options.budgets : DEFAULT_BUDGETS)];
  budgets.forEach((r, i) => {
    if (!(Number.isFinite(r) && r > 0)) {
      throw CoreError.invalidArgument(`budgets[${i}]: ${r}; a norm budget must be > 0`);
    }
  });
  const steps = options.steps ?? DEFAULT_STEPS;
  if (!Number.isInteger(steps) || steps < 1) {
    throw CoreError.invalidArgument(`steps: ${steps}; a whole number >= 1`);
  }
  const optimizer = options.optimizer ?? "sgd";
  if (optimizer !== "sgd" && optimizer !== "adam") {
    throw CoreError.invalidArgument(`optimizer: ${JSON.stringify(optimizer)}; sgd or adam`);
  }
  const lr = options.lr ?? DEFAULT_LR[optimizer];
  if (!(Number.isFinite(lr) && lr > 0)) throw CoreError.invalidArgument(`lr: ${lr}; must be > 0`);
  const constraint = options.constraint ?? "project";
  if (constraint !== "project" && constraint !== "rescale") {
    throw CoreError.invalidArgument(
      `constraint: ${JSON.stringify(constraint)}; project or rescale`,
    );
  }
  const blurSigma = options.blurSigma ?? 1;
  if (!(Number.isFinite(blurSigma) && blurSigma >= 0 && blurSigma <= 16)) {
    throw CoreError.invalidArgument(`blur_sigma: ${blurSigma}; 0 (none) to 16 pixels`);
  }
  const lossEvery = options.lossEvery ?? Math.max(1, Math.floor(steps / 200));
  if (!Number.isInteger(lossEvery) || lossEvery < 1) {
    throw CoreError.invalidArgument(`loss_every: ${lossEvery}; a whole number >= 1`);
  }
  const reduction = options.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum") {
    throw CoreError.invalidArgument(`reduction: ${JSON.stringify(reduction)}; mean or sum`);
  }
  return {
    layer,
    budgets,
    steps,
    optimizer,
    lr,
    constraint,
    blurSigma,
    seed: options.seed ?? 0,
    lossEvery,
    reduction,
  };
}

/** Activations per image at `layer` for an h x w input. */
export function featureCount(model: VggModel, layer: string, h: number, w: number): number {
  return featureShape(model, layer, h, w).reduce((a, b) => a * b, 1);
}

/** A network whose layers can be reconstructed from, loaded from a checkpoint. */
export interface FeatureModel {
  /** The checkpoint's `cotrain.kind` (`mtl` or `predictor`). */
  kind: string;
  vgg: VggModel;
  /** Frees every variable of the loaded network. */
  dispose(): void;
}

/**
 * Loads the VGG of a stored checkpoint: an MTL / Baseline / Oracle network (kind `mtl`, from the
 * classifier trainer) or a Monkey Predictor (kind `predictor`, its trunk up to conv3_1).
 */
export function loadFeatureModel(bytes: Uint8Array): FeatureModel {
  const { tensors, meta } = loadParams(bytes);
  for (const t of tensors.values()) t.dispose();
  if (meta.kind === MODEL_KIND) {
    const m = loadMtlCheckpoint(bytes);
    return { kind: meta.kind, vgg: m.vgg, dispose: () => disposeMtl(m) };
  }
  if (meta.kind === PREDICTOR_KIND) {
    const p = loadPredictor(bytes);
    return { kind: meta.kind, vgg: p.trunk, dispose: () => disposePredictor(p) };
  }
  throw CoreError.invalidArgument(
    `checkpoint: kind ${JSON.stringify(meta.kind)} has no VGG to reconstruct from; ` +
      `accepted: ${MODEL_KIND} (classifier-trainer models), ${PREDICTOR_KIND} (neural predictors)`,
  );
}

/** One layer of the eval-mode trunk with batch norm folded in. */
type FoldedLayer = { kind: "conv"; w: tf.Tensor4D; b: tf.Tensor1D } | { kind: "pool" };

/** The eval-mode trunk up to `layer` with BN folded into each conv (caller disposes). */
export function foldTrunk(model: VggModel, layer: string): FoldedLayer[] {
  const out: FoldedLayer[] = [];
  for (const l of model.layers) {
    if (l.kind === "pool") out.push({ kind: "pool" });
    else {
      const p = (k: string) => {
        const v = model.params.get(`${l.name}.${k}`);
        if (!v) throw CoreError.invalidArgument(`model: no parameter ${l.name}.${k}`);
        return v;
      };
      const [w, b] = tf.tidy(() => {
        const scale = tf.div(p("bn.weight"), tf.sqrt(tf.add(p("bn.running_var"), BN_EPS)));
        return [
          tf.mul(p("weight"), scale) as tf.Tensor4D,
          tf.add(
            tf.mul(tf.sub(p("bias"), p("bn.running_mean")), scale),
            p("bn.bias"),
          ) as tf.Tensor1D,
        ];
      });
      out.push({ kind: "conv", w, b });
    }
    if (l.name === layer) return out;
  }
  throw CoreError.invalidArgument(`layer: unknown layer ${layer}`);
}

/** The activations of a folded trunk (what `vggForward(..., {training: false, upTo})` gives). */
export function foldedForward(layers: FoldedLayer[], x: tf.Tensor4D): tf.Tensor4D {
  let h = x;
  for (const l of layers) {
    h = l.kind === "pool"
      ? tf.maxPool(h, 2, 2, "valid")
      : tf.relu(tf.add(tf.conv2d(h, l.w, 1, "same"), l.b)) as tf.Tensor4D;
  }
  return h;
}

function disposeFolded(layers: FoldedLayer[]): void {
  for (const l of layers) if (l.kind === "conv") tf.dispose([l.w, l.b]);
}

/** Scales each row of `x` (`rows` equal parts) onto the ball of its radius (or onto the sphere). */
export function constrainRows(
  x: Float32Array,
  rows: number,
  radius: (row: number) => number,
  mode: "project" | "rescale",
): void {
  const m = x.length / rows;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = r * m; i < (r + 1) * m; i++) s += x[i] * x[i];
    const norm = Math.max(Math.sqrt(s), 1e-12);
    let f = radius(r) / norm;
    if (mode === "project") f = Math.min(f, 1);
    // a float32 rounding can leave the norm a hair above r; shrink by one part in 10^7
    if (f < 1) f *= 1 - 1e-7;
    if (f !== 1) { for (let i = r * m; i < (r + 1) * m; i++) x[i] *= f; }
  }
}

/** Computes the loss gradient and per-row losses at x (NHWC rows). */
type GradFn = (x: Float32Array) => Promise<{ grad: Float32Array; loss: Float32Array }>;

/** The engine that differentiates the network. */
export type ReconstructEngine = "onnx" | "tfjs";

function nhwcToNchw(x: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  if (c === 1) return x;
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < c; ch++) out[(i * c + ch) * h * w + p] = x[(i * h * w + p) * c + ch];
    }
  }
  return out;
}

function nchwToNhwc(x: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  if (c === 1) return x;
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < c; ch++) out[(i * h * w + p) * c + ch] = x[(i * c + ch) * h * w + p];
    }
  }
  return out;
}

/**
 * Rows per onnxruntime run: the batch goes through in chunks of this many rows, and an abort is
 * seen between chunks (a w = 1 chunk of 64x64 rows takes about 0.1 s on one thread).
 */
export const ONNX_CHUNK_ROWS = 8;

/** The gradient through onnxruntime (see onnx_grad.ts); `release` frees the session. */
async function onnxGrad(
  model: VggModel,
  layer: string,
  x0: Float32Array,
  shape: [number, number, number, number],
  threads: number | undefined,
  signal: AbortSignal | undefined,
): Promise<{ fn: GradFn; release: () => Promise<void> }> {
  const [rows, h, w, c] = shape;
  const img = h * w * c;
  const [fc, fh, fw] = featureShape(model, layer, h, w);
  const feat = fc * fh * fw;
  const chunks: [number, number][] = [];
  for (let a = 0; a < rows; a += ONNX_CHUNK_ROWS) {
    chunks.push([a, Math.min(rows, a + ONNX_CHUNK_ROWS)]);
  }
  const check = () => {
    if (signal?.aborted) throw abortReason(signal);
  };
  const x0c = nhwcToNchw(x0, shape);
  const target = new Float32Array(rows * feat);
  const feats = await openGradSession(exportFeaturesOnnx(model, layer, [c, h, w]), threads);
  try {
    for (const [a, b] of chunks) {
      check();
      const out = await feats.run({
        x: { data: x0c.subarray(a * img, b * img), dims: [b - a, c, h, w] },
      });
      target.set(out.features, a * feat);
    }
  } finally {
    await feats.release();
  }
  const session = await openGradSession(
    exportReconstructionGradOnnx(model, layer, [c, h, w]),
    threads,
  );
  return {
    fn: async (x) => {
      const xc = nhwcToNchw(x, shape);
      const grad = new Float32Array(x.length);
      const loss = new Float32Array(rows);
      for (const [a, b] of chunks) {
        check();
        const out = await session.run({
          x: { data: xc.subarray(a * img, b * img), dims: [b - a, c, h, w] },
          target: { data: target.subarray(a * feat, b * feat), dims: [b - a, fc, fh, fw] },
        });
        grad.set(out.grad, a * img);
        loss.set(out.loss, a);
      }
      return { grad: nchwToNhwc(grad, shape), loss };
    },
    release: () => session.release(),
  };
}

/** The gradient through tfjs' autodiff on the active backend. */
function tfjsGrad(
  model: VggModel,
  layer: string,
  x0: Float32Array,
  shape: [number, number, number, number],
): { fn: GradFn; release: () => Promise<void> } {
  const layers = foldTrunk(model, layer);
  const target = tf.tidy(() => foldedForward(layers, tf.tensor4d(x0, shape)));
  const fn: GradFn = (x) => {
    let lossT: tf.Tensor | null = null;
    const g = tf.tidy(() =>
      tf.grad((xt: tf.Tensor) => {
        const per = tf.sum(tf.square(tf.sub(foldedForward(layers, xt as tf.Tensor4D), target)), [
          1,
          2,
          3,
        ]);
        lossT = tf.keep(per);
        return tf.sum(per);
      })(tf.tensor4d(x, shape))
    );
    const grad = g.dataSync() as Float32Array;
    g.dispose();
    const loss = Float32Array.from((lossT as unknown as tf.Tensor).dataSync());
    (lossT as unknown as tf.Tensor).dispose();
    return Promise.resolve({ grad: Float32Array.from(grad), loss });
  };
  return {
    fn,
    release: () => {
      target.dispose();
      disposeFolded(layers);
      return Promise.resolve();
    },
  };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("reconstruction aborted", "AbortError");
}

/** Options only the async generator takes. */
export interface EngineOptions {
  /** `onnx` (default, onnxruntime-node) or `tfjs` (autodiff on the active tfjs backend). */
  engine?: ReconstructEngine;
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** Called after every step with the step number (counters, logs). */
  onStep?: (step: number) => void;
}

/**
 * The reconstruction as an async generator: yields progress at every recorded loss point and
 * returns the result. Every step awaits the engine (and the tfjs engine gives the event loop a
 * turn about every 20 ms), so an abort (a cancelled call) is seen before the next step.
 */
export async function* reconstructSteps(
  model: VggModel,
  images: ImageBatch,
  options: ReconstructOptions & EngineOptions = {},
): AsyncGenerator<ReconstructProgress, ReconstructResult> {
  const o = resolveReconstructOptions(model, options);
  const [n, h, w, c] = images.shape;
  if (c !== model.config.inChannels) {
    throw CoreError.invalidArgument(
      `images: ${c} channel(s); the model takes ${model.config.inChannels}`,
    );
  }
  if (images.data.length !== n * h * w * c || n < 1) {
    throw CoreError.invalidArgument(`images: ${images.data.length} values for [${images.shape}]`);
  }
  const pools = model.layers.slice(0, model.layers.findIndex((l) => l.name === o.layer) + 1)
    .filter((l) => l.kind === "pool").length;
  if (h < 2 ** pools || w < 2 ** pools) {
    throw CoreError.invalidArgument(
      `images: ${h}x${w} is too small for ${o.layer} (${pools} pooling step(s)); at least ${
        2 ** pools
      }x${2 ** pools}`,
    );
  }
  const signal = options.signal;
  if (signal?.aborted) throw abortReason(signal);
  const nb = o.budgets.length;
  const rows = n * nb;
  const img = h * w * c;
  const shape: [number, number, number, number] = [rows, h, w, c];
  const started = performance.now();
  // x0 repeated per budget (image-major rows)
  const x0 = new Float32Array(rows * img);
  for (let r = 0; r < rows; r++) {
    const i = Math.floor(r / nb);
    x0.set(images.data.subarray(i * img, (i + 1) * img), r * img);
  }
  const engine = options.engine ?? "onnx";
  const grad = engine === "onnx"
    ? await onnxGrad(model, o.layer, x0, shape, options.threads, signal)
    : tfjsGrad(model, o.layer, x0, shape);
  try {
    const radius = (r: number) => o.budgets[r % nb];
    const x = new Float32Array(rows * img);
    rngFor(o.seed, "reconstruct-start").fillNormal(x);
    constrainRows(x, rows, radius, o.constraint);
    const scale = o.reduction === "mean" ? 1 / featureCount(model, o.layer, h, w) : 1;
    const kernel = o.blurSigma > 0 ? gaussianKernel1d(o.blurSigma) : null;
    const scratch = new Float32Array(x.length);
    const m = o.optimizer === "adam" ? new Float32Array(x.length) : null;
    const v = o.optimizer === "adam" ? new Float32Array(x.length) : null;
    const b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const curveSteps: number[] = [];
    const curve: number[] = [];
    let lastTurn = performance.now();
    for (let step = 1; step <= o.steps; step++) {
      if (signal?.aborted) throw abortReason(signal);
      const { grad: g } = await grad.fn(x);
      if (scale !== 1) { for (let i = 0; i < g.length; i++) g[i] *= scale; }
      if (kernel) blurInPlace(g, shape, kernel, scratch);
      if (m && v) {
        const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
        for (let i = 0; i < x.length; i++) {
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          x[i] -= (o.lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
        }
      } else {
        for (let i = 0; i < x.length; i++) x[i] -= o.lr * g[i];
      }
      constrainRows(x, rows, radius, o.constraint);
      options.onStep?.(step);
      if (step % o.lossEvery === 0 || step === o.steps) {
        const losses = Float32Array.from((await grad.fn(x)).loss, (l) => l * scale);
        curveSteps.push(step);
        for (const l of losses) curve.push(l);
        lastTurn = performance.now();
        yield { step, steps: o.steps, losses, elapsedS: (performance.now() - started) / 1000 };
      } else if (performance.now() - lastTurn > 20) {
        await yieldTurn(); // a turn for the event loop (cancellation)
        lastTurn = performance.now();
      }
    }
    const norms = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let i = r * img; i < (r + 1) * img; i++) s += x[i] * x[i];
      norms[r] = Math.sqrt(s);
    }
    const targetNorms = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = i * img; k < (i + 1) * img; k++) s += images.data[k] ** 2;
      targetNorms[i] = Math.sqrt(s);
    }
    return {
      layer: o.layer,
      budgets: [...o.budgets],
      shape: [n, h, w, c],
      reconstructions: x,
      norms,
      targetNorms,
      curve: { steps: curveSteps, losses: Float32Array.from(curve) },
      finalLosses: Float32Array.from(curve.slice(-rows)),
      steps: o.steps,
    };
  } finally {
    await grad.release();
  }
}

/**
 * Runs a reconstruction to the end; `onProgress` sees every recorded loss point.
 */
export async function reconstruct(
  model: VggModel,
  images: ImageBatch,
  options: ReconstructOptions & EngineOptions & {
    onProgress?: (p: ReconstructProgress) => void;
  } = {},
): Promise<ReconstructResult> {
  const gen = reconstructSteps(model, images, options);
  let step = await gen.next();
  while (!step.done) {
    options.onProgress?.(step.value);
    step = await gen.next();
  }
  return step.value;
}
