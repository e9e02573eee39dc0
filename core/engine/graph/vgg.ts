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
import type * as tf from "@tensorflow/tfjs-core";
import type { VggModel } from "../../models/vgg.ts";
import { BN_EPS } from "../../models/vgg.ts";
import type { Sym, Tape } from "./tape.ts";

/** Graph inputs for parameters, created once per name (shared when a trunk is applied twice). */
export class ParamInputs {
  readonly byName = new Map<string, Sym>();
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

  /** The graph input of parameter `name` (in its tfjs shape). */
  get(name: string): Sym {
    let s = this.byName.get(name);
    if (!s) {
      const v = this.#model.params.get(name);
      if (!v) throw new Error(`model has no parameter ${name}`);
      s = this.#t.input(name, v.shape, v.trainable && this.#trainable(name));
      this.byName.set(name, s);
    }
    return s;
  }

  /** Trainable parameters that became graph inputs, in insertion order. */
  trainable(): Sym[] {
    return [...this.byName.values()].filter((s) => this.#t.needsGrad(s));
  }
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
      const w = t.transpose(params.get(`${l.name}.weight`), [3, 2, 0, 1]);
      const z = t.conv(h, w, 1);
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

/** The head's spatial size for a trunk input of h x w (one halving per 2x2 pool). */
export function headGrid(model: VggModel, h: number, w: number): [number, number] {
  for (const l of model.layers) {
    if (l.kind === "pool") {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
  }
  return [h, w];
}
