/**
 * Helpers shared by the ONNX tests: a seeded PRNG, randomised BatchNorm statistics, the normwise
 * relative error, an agreement check of tfjs against onnxruntime, and a direct (float64) computation
 * of the Gaussian readout's eval formula.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert } from "../../../test/assert.ts";
import { createVgg, disposeModel, vggForward, type VggModel } from "../../models/vgg.ts";
import type { GaussianReadoutArrays } from "./readout.ts";
import { exportVggOnnx } from "./vgg.ts";
import { createOnnxSession } from "./session.ts";

/** Tolerance of tfjs vs onnxruntime: max |a - b| <= TOL * max |b| over the output. */
export const TOL = 1e-4;

/** mulberry32: a seeded uniform PRNG in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** `n` uniform values in [lo, hi). */
export function uniform(n: number, lo: number, hi: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/**
 * Sets every conv bias, BN gamma/beta and running mean/variance of `model` to random non-trivial
 * values (so BN folding is really exercised).
 */
export function randomizeBn(model: VggModel, seed: number): void {
  let s = seed * 7919;
  for (const [name, v] of model.params) {
    const n = v.size;
    let vals: Float32Array | null = null;
    if (name.endsWith(".bn.weight")) vals = uniform(n, 0.5, 1.5, s++);
    else if (name.endsWith(".bn.bias")) vals = uniform(n, -0.2, 0.2, s++);
    else if (name.endsWith(".bn.running_mean")) vals = uniform(n, -0.3, 0.3, s++);
    else if (name.endsWith(".bn.running_var")) vals = uniform(n, 0.3, 2.0, s++);
    else if (name.endsWith(".bias")) vals = uniform(n, -0.1, 0.1, s++);
    if (vals) v.assign(tf.tensor(vals, v.shape));
  }
}

/** max |a - b| / max |ref|. */
export function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert(a.length === ref.length, `length ${a.length} vs ${ref.length}`);
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(a[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  assert(m > 0, "reference is all zeros");
  return d / m;
}

/** One agreement case: a VGG, what to export, the input size. */
export interface AgreementCase {
  width: number;
  classes: number;
  upTo?: string;
  size: [number, number];
  batch: number;
}

/**
 * Builds a seeded VGG with random BN statistics, runs `vggForward` (eval, the active tfjs backend)
 * and the exported ONNX graph on onnxruntime on the same random input, and checks they agree.
 * Returns the relative error.
 */
export async function checkVggAgreement(c: AgreementCase, seed: number): Promise<number> {
  const model = createVgg({ width: c.width, inChannels: 1, classes: c.classes, seed });
  try {
    randomizeBn(model, seed);
    const shape = [c.batch, c.size[0], c.size[1], 1];
    const input = uniform(shape.reduce((a, b) => a * b), -2, 2, seed + 100);
    const ref = tf.tidy(() =>
      vggForward(model, tf.tensor(input, shape), { training: false, upTo: c.upTo }).output
    );
    const refData = ref.dataSync();
    const refShape = ref.shape;
    ref.dispose();
    const session = await createOnnxSession(exportVggOnnx(model, { upTo: c.upTo }));
    try {
      const out = await session.run(input, shape);
      assert(
        JSON.stringify(out.shape) === JSON.stringify(refShape),
        `shape ${out.shape} vs ${refShape}`,
      );
      const err = relErr(out.data, refData);
      assert(err <= TOL, `${JSON.stringify(c)} (${tf.getBackend()}): rel err ${err}`);
      return err;
    } finally {
      await session.release();
    }
  } finally {
    disposeModel(model);
  }
}

/** bilinear(x[b, :, :, c], (gx, gy)) with align_corners = true and zero padding; x NHWC. */
function bilinear(
  x: ArrayLike<number>,
  [, h, w, ch]: readonly number[],
  b: number,
  c: number,
  gx: number,
  gy: number,
): number {
  const px = (gx + 1) / 2 * (w - 1);
  const py = (gy + 1) / 2 * (h - 1);
  const x0 = Math.floor(px), y0 = Math.floor(py);
  const at = (yy: number, xx: number) =>
    yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : x[((b * h + yy) * w + xx) * ch + c];
  const ax = px - x0, ay = py - y0;
  return (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x0 + 1)) +
    ay * ((1 - ax) * at(y0 + 1, x0) + ax * at(y0 + 1, x0 + 1));
}

/**
 * The readout's eval formula computed directly (float64): for image b and neuron n,
 * y = sum_c f[c, n] * bilinear(x[b, :, :, c], clamp(mu_n)) + b_n, r = ELU(y - 1) + 1. x is NHWC.
 */
export function readoutReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  r: GaussianReadoutArrays,
): Float64Array {
  const [batch, , , ch] = shape;
  const out = new Float64Array(batch * r.neurons);
  const clamp = (v: number) => Math.min(1, Math.max(-1, v));
  for (let b = 0; b < batch; b++) {
    for (let n = 0; n < r.neurons; n++) {
      const gx = clamp(r.mu[2 * n]), gy = clamp(r.mu[2 * n + 1]);
      let y = r.bias[n];
      for (let c = 0; c < ch; c++) {
        y += r.features[c * r.neurons + n] * bilinear(x, shape, b, c, gx, gy);
      }
      const z = y - 1;
      out[b * r.neurons + n] = (z > 0 ? z : Math.expm1(z)) + 1;
    }
  }
  return out;
}

/** A random readout: mu in [-1.2, 1.2]^2 (some clamped), f ~ U(-1, 1) / sqrt(C), bias ~ U(0, 1). */
export function randomReadout(
  channels: number,
  neurons: number,
  seed: number,
): GaussianReadoutArrays {
  const mu = uniform(neurons * 2, -1.2, 1.2, seed);
  mu.set([-1, -1, 1, 1], 0); // exactly the corner pixels
  return {
    channels,
    neurons,
    mu,
    features: uniform(channels * neurons, -1, 1, seed + 1).map((v) => v / Math.sqrt(channels)),
    bias: uniform(neurons, 0, 1, seed + 2),
  };
}
