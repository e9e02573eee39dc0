/**
 * Optimisers with PyTorch's exact update rules, so cotrain's hyper-parameters mean what the paper's
 * do (SPEC.md section 4): SGD with momentum and L2 weight decay (Baseline, MTL), Adam with L2 weight
 * decay (Monkey Predictor). tfjs ships optimisers, but with other rules (no coupled weight decay,
 * another epsilon placement), hence these few lines.
 *
 * State is a plain map of tensors per parameter name, so it can be checkpointed with the weights.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { Sgd } from "./optim.ts";
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const opt = new Sgd({ lr: 0.1, momentum: 0.75, weightDecay: 5e-4 });
 * opt.step(new Map([["w", w]]), new Map([["w", tf.tensor1d([0.5, -0.5])]]));
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { fusedKernelsActive } from "../engine/kernels/ops.ts";
import { SGD_MOMENTUM } from "../engine/kernels/register.ts";

/** Gradients by parameter name, as a Map or as tfjs' NamedTensorMap. */
export type GradMap = Map<string, tf.Tensor> | tf.NamedTensorMap;

function gradOf(grads: GradMap, name: string): tf.Tensor | undefined {
  return grads instanceof Map ? grads.get(name) : grads[name];
}

/** An optimiser over named variables. */
export interface Optimizer {
  /** Learning rate (the schedule changes it). */
  lr: number;
  /** Applies one update; `grads` are keyed like `params` (missing keys are skipped). */
  step(params: Map<string, tf.Variable>, grads: GradMap): void;
  /** The state tensors by name (`<param>.<slot>`), for checkpoints. */
  state(): Map<string, tf.Tensor>;
  /** Restores state saved by {@linkcode state}. */
  loadState(state: Map<string, tf.Tensor>): void;
  /** Frees the state. */
  dispose(): void;
}

/** SGD options (PyTorch semantics). */
export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

/**
 * SGD as torch.optim.SGD (dampening 0, not Nesterov): g = grad + wd * p; buf = m * buf + g;
 * p -= lr * buf (the first step sets buf = g). On the wasm backend one fused kernel per variable
 * (core/engine/kernels) does the whole update.
 */
export class Sgd implements Optimizer {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  #buf = new Map<string, tf.Tensor>();

  constructor(options: SgdOptions) {
    this.lr = options.lr;
    this.momentum = options.momentum ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
  }

  step(params: Map<string, tf.Variable>, grads: GradMap): void {
    const fused = fusedKernelsActive();
    const { lr, momentum, weightDecay } = this;
    for (const [name, p] of params) {
      const g = gradOf(grads, name);
      if (!g) continue;
      const buf = this.#buf.get(name);
      let newP: tf.Tensor, newBuf: tf.Tensor;
      if (fused) {
        // the kernel's first step (buf = 0) gives buf = g, as torch's first step does
        const b = buf ?? tf.zerosLike(p);
        [newP, newBuf] = tf.engine().runKernel(
          SGD_MOMENTUM,
          { w: p, m: b, g } as unknown as tf.NamedTensorMap,
          { lr, momentum, weightDecay } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
        if (!buf) b.dispose();
      } else {
        [newP, newBuf] = tf.tidy(() => {
          const gd = weightDecay ? tf.add(g, tf.mul(p, weightDecay)) : g;
          const d = momentum && buf ? tf.add(tf.mul(buf, momentum), gd) : tf.clone(gd);
          return [tf.sub(p, tf.mul(d, lr)), d];
        });
      }
      p.assign(newP);
      newP.dispose();
      buf?.dispose();
      if (momentum) this.#buf.set(name, tf.keep(newBuf));
      else newBuf.dispose();
    }
  }

  state(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [k, v] of this.#buf) out.set(`${k}.momentum_buffer`, v);
    return out;
  }

  loadState(state: Map<string, tf.Tensor>): void {
    this.dispose();
    for (const [k, v] of state) {
      if (k.endsWith(".momentum_buffer")) {
        this.#buf.set(k.slice(0, -".momentum_buffer".length), tf.keep(v.clone()));
      }
    }
  }

  dispose(): void {
    for (const v of this.#buf.values()) v.dispose();
    this.#buf.clear();
  }
}

/** Adam options (PyTorch semantics, L2 weight decay added to the gradient). */
export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/**
 * Adam as torch.optim.Adam: g = grad + wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 */
export class Adam implements Optimizer {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  #m = new Map<string, tf.Variable>();
  #v = new Map<string, tf.Variable>();
  #t = new Map<string, number>();

  constructor(options: AdamOptions) {
    this.lr = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
  }

  step(params: Map<string, tf.Variable>, grads: GradMap): void {
    tf.tidy(() => {
      for (const [name, p] of params) {
        const grad = gradOf(grads, name);
        if (!grad) continue;
        const g = this.weightDecay ? tf.add(grad, tf.mul(p, this.weightDecay)) : grad;
        let m = this.#m.get(name);
        let v = this.#v.get(name);
        if (!m || !v) {
          m = tf.keep(tf.variable(tf.zerosLike(p), false));
          v = tf.keep(tf.variable(tf.zerosLike(p), false));
          this.#m.set(name, m);
          this.#v.set(name, v);
        }
        const t = (this.#t.get(name) ?? 0) + 1;
        this.#t.set(name, t);
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const c1 = 1 - this.beta1 ** t;
        const c2 = 1 - this.beta2 ** t;
        const denom = tf.add(tf.sqrt(tf.div(v, c2)), this.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), this.lr / c1)));
      }
    });
  }

  state(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [k, v] of this.#m) out.set(`${k}.exp_avg`, v);
    for (const [k, v] of this.#v) out.set(`${k}.exp_avg_sq`, v);
    for (const [k, t] of this.#t) out.set(`${k}.step`, tf.scalar(t, "int32"));
    return out;
  }

  loadState(state: Map<string, tf.Tensor>): void {
    this.dispose();
    for (const [k, v] of state) {
      if (k.endsWith(".exp_avg")) this.#m.set(k.slice(0, -8), tf.variable(v.clone(), false));
      else if (k.endsWith(".exp_avg_sq")) {
        this.#v.set(k.slice(0, -11), tf.variable(v.clone(), false));
      } else if (k.endsWith(".step")) this.#t.set(k.slice(0, -5), v.dataSync()[0]);
    }
  }

  dispose(): void {
    for (const v of [...this.#m.values(), ...this.#v.values()]) v.dispose();
    this.#m.clear();
    this.#v.clear();
    this.#t.clear();
  }
}
