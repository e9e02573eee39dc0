/**
 * core/models/vgg.ts's network in training mode, recorded on a {@linkcode Tape}: the same
 * parameters by name in the same layouts (conv weights HWIO, vectors [C]), transposed to what
 * onnxruntime wants inside the graph, so a step reads tfjs variables as they are and hands back
 * gradients in their shapes.
 *
 * Differences from the tfjs forward that do not change the result: the conv bias before a
 * training-mode BatchNorm cancels in (z - mean) and is left out of the tensor (its gradient is
 * exactly 0; it still enters the batch mean for the running average), and dropout masks are
 * graph inputs (the step draws them).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Feed } from "./program.ts";
import { BN_EPS, type BnBatchStats, featureShape, type VggModel } from "../../models/vgg.ts";
import type { BlockedKernels, Sym, Tape } from "./tape.ts";
import { hwioToBack, hwioToNchwc, hwioToNchwcBack, hwioToOihw, oihwToHwio } from "../layouts.ts";

/**
 * How a graph input holds a parameter: as the tfjs variable is (`as-is`), a conv weight HWIO as
 * OIHW (`oihw`), or the flipped, transposed kernel [I, O, kh, kw] of a conv's input gradient
 * (`back`). The layouts are converted in TypeScript when feeding (and back for gradients):
 * onnxruntime's Transpose of small 4-D weights costs milliseconds per call.
 */
export type ParamLayout = "as-is" | "oihw" | "back" | "nchwc" | "nchwc-back";

interface ParamSpec {
  param: string;
  layout: ParamLayout;
  /** The tfjs variable's shape. */
  shape: readonly number[];
  /** False for a gradient-only value (its NCHWc layout is fed instead). */
  fed: boolean;
  /** The NCHWc channel block (layouts `nchwc`, `nchwc-back`). */
  block: number;
}

/** A conv layer's kernels as {@linkcode Tape.conv} takes them. */
export interface ConvInputs {
  w: Sym;
  wBack?: Sym;
  blocked: BlockedKernels;
}

/** Graph inputs for parameters, created once per name (shared when a trunk is applied twice). */
export class ParamInputs {
  readonly byName = new Map<string, Sym>();
  readonly #specs = new Map<string, ParamSpec>();
  readonly #t: Tape;
  readonly #model: { params: Map<string, tf.Variable> };
  readonly #trainable: (name: string) => boolean;

  constructor(
    t: Tape,
    model: { params: Map<string, tf.Variable> },
    trainable: (name: string) => boolean,
  ) {
    this.#t = t;
    this.#model = model;
    this.#trainable = trainable;
  }

  #input(input: string, param: string, layout: ParamLayout, fed = true): Sym {
    let s = this.byName.get(input);
    if (s && this.#specs.get(input)!.fed !== fed) {
      throw new Error(`parameter input ${input} is used both fed and gradient-only`);
    }
    if (!s) {
      const v = this.#model.params.get(param);
      if (!v) throw new Error(`model has no parameter ${param}`);
      const block = this.#t.nchwcBlock;
      const dims = layoutDims(v.shape, layout, block);
      const trainable = (layout === "as-is" || layout === "oihw") && v.trainable &&
        this.#trainable(param);
      s = !fed
        ? (trainable ? this.#t.gradientOnly(input, dims) : { name: input, shape: dims })
        : this.#t.input(input, dims, trainable);
      this.byName.set(input, s);
      this.#specs.set(input, { param, layout, shape: v.shape, fed, block });
    }
    return s;
  }

  /** The graph input of parameter `name` (in its tfjs shape). */
  get(name: string): Sym {
    return this.#input(name, name, "as-is");
  }

  /** A conv weight (HWIO variable) as an OIHW input of the same name. */
  convWeight(name: string): Sym {
    return this.#input(name, name, "oihw");
  }

  /** The flipped, transposed kernel of conv weight `name` (input `<name>:back`, no gradient). */
  convBack(name: string): Sym {
    return this.#input(`${name}:back`, name, "back");
  }

  /**
   * A 3 x 3 conv layer's kernels for {@linkcode Tape.conv} reading `inChannels` channels
   * (`back`: also the input gradient's): on NCHWc kernels where {@linkcode Tape.blocked} says so
   * (then the OIHW weight is gradient-only), else plain OIHW (and the flipped kernel).
   */
  conv(name: string, inChannels: number, outChannels: number, back: boolean): ConvInputs {
    const fwd = this.#t.blocked(inChannels);
    const bwd = back && this.#t.blocked(outChannels);
    return {
      w: fwd ? this.#input(name, name, "oihw", false) : this.convWeight(name),
      wBack: back && !bwd ? this.convBack(name) : undefined,
      blocked: {
        w: fwd ? this.#input(`${name}:nchwc`, name, "nchwc") : undefined,
        back: bwd ? this.#input(`${name}:nchwc-back`, name, "nchwc-back") : undefined,
      },
    };
  }

  /** Trainable parameters that became graph inputs, in insertion order. */
  trainable(): Sym[] {
    return [...this.byName.values()].filter((s) => this.#t.needsGrad(s));
  }

  /** What feeds the inputs and converts gradients back (kept by a compiled step). */
  feeder(): ParamFeeder {
    return new ParamFeeder(new Map(this.#specs));
  }
}

/**
 * The dims of a graph input holding a parameter of tfjs shape `shape` (conv weights HWIO
 * [kh, kw, i, o]) in `layout`; NCHWc layouts pad channels to multiples of `block`.
 */
function layoutDims(shape: readonly number[], layout: ParamLayout, block: number): number[] {
  const [kh, kw, ci, co] = shape;
  const up = (c: number) => Math.ceil(c / block) * block;
  switch (layout) {
    case "as-is":
      return [...shape];
    case "oihw":
      return [co, ci, kh, kw];
    case "back":
      return [ci, co, kh, kw];
    case "nchwc":
      return [up(co), up(ci), kh, kw];
    case "nchwc-back":
      return [up(ci), up(co), kh, kw];
  }
}

/** A parameter in `spec`'s input layout (into `out` if given), and that input's dims. */
function toLayout(data: Float32Array, spec: ParamSpec, out?: Float32Array): Feed {
  const { shape, block } = spec;
  const dims = layoutDims(shape, spec.layout, block);
  switch (spec.layout) {
    case "as-is":
      return { data, dims };
    case "oihw":
      return { data: hwioToOihw(data, shape, out), dims };
    case "back":
      return { data: hwioToBack(data, shape, out), dims };
    case "nchwc":
      return { data: hwioToNchwc(data, shape, block, out), dims };
    case "nchwc-back":
      return { data: hwioToNchwcBack(data, shape, block, out), dims };
  }
}

/** Feeds parameter inputs from tfjs variables and turns gradients back into their layout. */
export class ParamFeeder {
  readonly #specs: ReadonlyMap<string, ParamSpec>;
  /**
   * Each converted input's buffer, reused step after step: a run has finished reading it when the
   * next step converts (steps run one after another).
   */
  readonly #buffers = new Map<string, Float32Array>();

  constructor(specs: ReadonlyMap<string, ParamSpec>) {
    this.#specs = specs;
  }

  /** Every parameter input's feed, read from `params`. */
  feeds(params: Map<string, tf.Variable>): Record<string, Feed> {
    const out: Record<string, Feed> = {};
    const cache = new Map<string, Float32Array>();
    for (const [input, spec] of this.#specs) {
      if (!spec.fed) continue;
      const v = params.get(spec.param)!;
      let data = cache.get(spec.param);
      if (!data) {
        data = v.dataSync() as Float32Array;
        cache.set(spec.param, data);
      }
      const feed = toLayout(data, spec, this.#buffers.get(input));
      if (spec.layout !== "as-is") this.#buffers.set(input, feed.data as Float32Array);
      out[input] = feed;
    }
    return out;
  }

  /** A gradient output of input `input` as a tfjs tensor in the variable's layout. */
  grad(input: string, data: Float32Array): tf.Tensor {
    const spec = this.#specs.get(input)!;
    return tf.tensor(spec.layout === "oihw" ? oihwToHwio(data, spec.shape) : data, [
      ...spec.shape,
    ]);
  }

  /** The gradients of `params` from a run's outputs, as tfjs tensors by parameter name. */
  gradients(
    params: readonly ParamOut[],
    out: Record<string, Float32Array>,
  ): Map<string, tf.Tensor> {
    const grads = new Map<string, tf.Tensor>();
    for (const p of params) {
      grads.set(p.name, p.zero ? tf.zeros([...p.shape]) : this.grad(p.name, out[`grad:${p.name}`]));
    }
    return grads;
  }
}

/** A parameter input whose gradient a step returns. */
export interface ParamOut {
  name: string;
  shape: readonly number[];
  /** A conv bias before a training-mode BN: its gradient is exactly 0 (not a graph output). */
  zero?: boolean;
}

/**
 * Declares `grad:<name>` outputs for the parameters in `wrt` with gradients `grads` (as from
 * {@linkcode Tape.gradients}) and lists what the step returns. Parameters the loss does not reach
 * get none (tfjs' variableGrads leaves them out too, so the optimiser skips them: the readout and
 * s_n in a step without a neural batch); a conv bias before a training-mode BN cancels exactly,
 * so its gradient is 0.
 */
export function outputGradients(t: Tape, wrt: Sym[], grads: (Sym | null)[]): ParamOut[] {
  const out: ParamOut[] = [];
  wrt.forEach((p, i) => {
    const g = grads[i];
    if (g) {
      t.output(g, `grad:${p.name}`);
      out.push(p);
    } else if (/^conv\d+_\d+\.bias$/.test(p.name)) out.push({ ...p, zero: true });
  });
  return out;
}

/** Options of {@linkcode addVggTrain}. */
export interface VggGraphOptions {
  /** Stop after this trunk layer. */
  upTo?: string;
  /** Start after this trunk layer (x is its output); the head follows as usual. */
  from?: string;
  /** Trunk layers whose outputs to return. */
  taps?: string[];
  /** Dropout masks of the head ([N h w, hidden], pixels as rows, NHWC order); none: no dropout. */
  masks?: [Sym, Sym];
  /** BN with running statistics (eval mode) instead of batch statistics. */
  eval?: boolean;
  /** Eval mode up to and including this layer, training mode after it (Oracle stage 2). */
  evalUpTo?: string;
}

/** What {@linkcode addVggTrain} gives. */
export interface VggGraph {
  output: Sym;
  taps: Map<string, Sym>;
  /** Batch mean (including the conv bias) and biased variance [1, C, 1, 1] per BN layer. */
  bnStats: Map<string, { mean: Sym; variance: Sym; count: number }>;
}

/** The trunk (and head) on x NCHW; see the module doc. */
export function addVggTrain(
  t: Tape,
  model: VggModel,
  params: ParamInputs,
  x: Sym,
  options: VggGraphOptions = {},
): VggGraph {
  const taps = new Map<string, Sym>();
  const bnStats = new Map<string, { mean: Sym; variance: Sym; count: number }>();
  let h = x;
  let started = options.from === undefined;
  let evalMode = options.eval === true || options.evalUpTo !== undefined;
  for (const l of model.layers) {
    if (!started) {
      started = l.name === options.from;
      continue;
    }
    if (l.kind === "conv") {
      const c = l.outChannels;
      const k = params.conv(`${l.name}.weight`, h.shape[1], c, t.needsGrad(h));
      const z = t.conv(h, k.w, 1, k.wBack, k.blocked);
      const gamma = t.reshape(params.get(`${l.name}.bn.weight`), [1, c, 1, 1]);
      const beta = t.reshape(params.get(`${l.name}.bn.bias`), [1, c, 1, 1]);
      const bias = t.reshape(params.get(`${l.name}.bias`), [1, c, 1, 1]);
      if (evalMode) {
        const mean = t.raw("Reshape", [
          params.get(`${l.name}.bn.running_mean`),
          t.ints([1, c, 1, 1]),
        ], [1, c, 1, 1]);
        const vr = t.raw(
          "Reshape",
          [params.get(`${l.name}.bn.running_var`), t.ints([1, c, 1, 1])],
          [1, c, 1, 1],
        );
        // relu(gamma (z + bias - mean) / sqrt(var + eps) + beta)
        const inv = t.raw("Reciprocal", [
          t.raw("Sqrt", [t.raw("Add", [vr, t.scalar(BN_EPS)], vr.shape)], vr.shape),
        ], vr.shape);
        const a = t.mul(gamma, inv);
        h = t.relu(t.add(t.mul(t.sub(t.add(z, bias), mean), a), beta));
      } else {
        const r = t.bnRelu(z, gamma, beta, BN_EPS);
        const count = z.shape[0] * z.shape[2] * z.shape[3];
        bnStats.set(l.name, {
          mean: t.raw("Add", [r.mean, bias], r.mean.shape),
          variance: r.variance,
          count,
        });
        h = r.y;
      }
    } else {
      h = t.maxPool2(h);
    }
    if (l.name === options.evalUpTo) evalMode = options.eval === true;
    if (options.taps?.includes(l.name)) taps.set(l.name, h);
    if (options.upTo === l.name) return { output: h, taps, bnStats };
  }
  if (!model.head || options.upTo) return { output: h, taps, bnStats };
  // The head's 1x1 convolutions are matrix products on the pixels as rows ([N gh gw, C]): HWIO
  // weights [1, 1, C, O] are already [C, O], and both gradients are single GEMMs.
  const [n, c, gh, gw] = h.shape;
  const fc = (v: Sym, name: string, cin: number, out: number) =>
    t.add(
      t.matMul(v, t.reshape(params.get(`${name}.weight`), [cin, out])),
      params.get(`${name}.bias`),
    );
  const { hidden, classes } = model.head;
  let v = t.reshape(t.transpose(h, [0, 2, 3, 1]), [n * gh * gw, c]);
  v = t.relu(fc(v, "head.fc1", c, hidden));
  if (options.masks) v = t.mul(v, options.masks[0]);
  v = t.relu(fc(v, "head.fc2", hidden, hidden));
  if (options.masks) v = t.mul(v, options.masks[1]);
  const logits = t.reshape(fc(v, "head.fc3", hidden, classes), [n, gh * gw, classes]);
  return { output: t.maxOver(logits, 1), taps, bnStats };
}

/** The head's spatial size for a trunk input of h x w (the trunk's last layer's map). */
export function headGrid(model: VggModel, h: number, w: number): [number, number] {
  const [, gh, gw] = featureShape(model, model.layers[model.layers.length - 1].name, h, w);
  return [gh, gw];
}

/**
 * Declares the BN batch statistics of a pass as outputs `<prefix>bnmean:<layer>` and
 * `<prefix>bnvar:<layer>`; returns each layer's element count (for {@linkcode readBnStats}).
 */
export function outputBnStats(
  t: Tape,
  stats: VggGraph["bnStats"],
  prefix: string,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [layer, s] of stats) {
    t.output(s.mean, `${prefix}bnmean:${layer}`);
    t.output(s.variance, `${prefix}bnvar:${layer}`);
    counts.set(layer, s.count);
  }
  return counts;
}

/** A run's BN statistics outputs of one pass (see {@linkcode outputBnStats}) as tfjs tensors. */
export function readBnStats(
  out: Record<string, Float32Array>,
  prefix: string,
  counts: Map<string, number>,
): Map<string, BnBatchStats> {
  const stats = new Map<string, BnBatchStats>();
  for (const [layer, count] of counts) {
    stats.set(layer, {
      mean: tf.tensor1d(out[`${prefix}bnmean:${layer}`]),
      variance: tf.tensor1d(out[`${prefix}bnvar:${layer}`]),
      count,
    });
  }
  return stats;
}
