/**
 * core/models/readout.ts's Gaussian readout on a {@linkcode Tape}, same semantics (bilinear
 * sampling with align_corners and zero padding, per-image jitter in training, ELU(y + b - 1) + 1).
 *
 * The sampling positions do not depend on the network, so {@linkcode readoutSampling} computes
 * them in TypeScript from mu, sigma and the seeded eps draw: for each image and neuron the 4 pixels
 * around its position (int64 row indices into the flattened feature map) and their bilinear
 * weights. The graph gathers those 4 feature vectors, weights them and applies the channel weights
 * (B N 4 C multiply-adds, not a dense B HW C N product). The weights are a differentiable graph
 * input, so the graph returns their gradient, and {@linkcode samplingGradients} carries it on to
 * mu and sigma by the chain rule through the bilinear weights and the clamps, exactly as tfjs'
 * autodiff does through core/engine/kernels/ops.ts' readout (0 at exact pixel centres and outside
 * the clamps).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { rngFor } from "../../random.ts";
import type { GaussianReadout } from "../../models/readout.ts";
import type { Sym, Tape } from "./tape.ts";
import type { ParamInputs } from "./vgg.ts";

/** Where a batch samples: indices and weights for the graph, and what the chain rule needs. */
export interface ReadoutSampling {
  /** Flat pixel row (b * h * w + y * w + x) of each corner, int64 [B, 4, N]. */
  idx: BigInt64Array;
  /** Bilinear weight of each corner [B, 4, N]. */
  weights: Float32Array;
  /** d weight / d grid_x and d weight / d grid_y [B, 4, N] (grid units, [-1, 1]). */
  dwx: Float32Array;
  dwy: Float32Array;
  /** Training only: eps [B, N, 2] and whether the jittered position was inside [-1, 1] [B, N, 2]. */
  eps?: Float32Array;
  inside?: Uint8Array;
  batch: number;
  /** mu and sigma [N, 2] as read for this sampling (the chain rule's clamps need them). */
  mu: Float32Array;
  sigma: Float32Array;
}

/**
 * The sampling of a batch of `batch` feature maps h x w: at mu (eval) or at
 * clamp(clamp(mu) + relu(sigma) eps) with eps from core/random.ts' stream of `seed` (training),
 * as core/models/readout.ts' readoutGrid draws it.
 */
export function readoutSampling(
  readout: GaussianReadout,
  batch: number,
  h: number,
  w: number,
  training: boolean,
  seed = 0,
): ReadoutSampling {
  const n = readout.config.neurons;
  const mu = readout.mu.dataSync() as Float32Array;
  const sigma = readout.sigma.dataSync() as Float32Array;
  let eps: Float32Array | undefined;
  let inside: Uint8Array | undefined;
  if (training) {
    eps = new Float32Array(batch * n * 2);
    rngFor(seed, "gaussian-readout-eps").fillNormal(eps);
    inside = new Uint8Array(batch * n * 2);
  }
  const idx = new BigInt64Array(batch * 4 * n);
  const weights = new Float32Array(batch * 4 * n);
  const dwx = new Float32Array(batch * 4 * n);
  const dwy = new Float32Array(batch * 4 * n);
  const clamp = (v: number) => Math.min(1, Math.max(-1, v));
  const sx = (w - 1) / 2;
  const sy = (h - 1) / 2;
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < n; j++) {
      let gx = clamp(mu[2 * j]);
      let gy = clamp(mu[2 * j + 1]);
      if (eps) {
        const e = (b * n + j) * 2;
        const rx = gx + Math.max(0, sigma[2 * j]) * eps[e];
        const ry = gy + Math.max(0, sigma[2 * j + 1]) * eps[e + 1];
        inside![e] = rx >= -1 && rx <= 1 ? 1 : 0;
        inside![e + 1] = ry >= -1 && ry <= 1 ? 1 : 0;
        gx = clamp(rx);
        gy = clamp(ry);
      }
      // float32 positions, as the tfjs path computes them
      const px = Math.fround(Math.fround(gx + 1) * Math.fround(sx));
      const py = Math.fround(Math.fround(gy + 1) * Math.fround(sy));
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      const fx = px - x0;
      const fy = py - y0;
      // at an exact pixel centre tfjs' |.| and relu have zero slope: no gradient
      const ddx = fx === 0 ? 0 : sx;
      const ddy = fy === 0 ? 0 : sy;
      const corners: [number, number, number, number, number][] = [
        [y0, x0, (1 - fy) * (1 - fx), -(1 - fy) * ddx, -(1 - fx) * ddy],
        [y0, x0 + 1, (1 - fy) * fx, (1 - fy) * ddx, -fx * ddy],
        [y0 + 1, x0, fy * (1 - fx), -fy * ddx, (1 - fx) * ddy],
        [y0 + 1, x0 + 1, fy * fx, fy * ddx, fx * ddy],
      ];
      for (let k = 0; k < 4; k++) {
        const [yy, xx, wt, dx, dy] = corners[k];
        const at = (b * 4 + k) * n + j;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) {
          idx[at] = BigInt(b * h * w); // any valid row; weight and slopes 0 (zero padding)
          continue;
        }
        idx[at] = BigInt(b * h * w + yy * w + xx);
        weights[at] = wt;
        dwx[at] = dx;
        dwy[at] = dy;
      }
    }
  }
  return { idx, weights, dwx, dwy, eps, inside, batch, mu, sigma };
}

/**
 * The readout's responses [B, N] on features f NCHW [B, C, h, w], parameters `<prefix>features`
 * [C, N] and `<prefix>bias` [N]; `idx` int64 [B, 4, N] and `weights` [B, 4, N] are graph inputs fed
 * from {@linkcode readoutSampling} (`weights` trainable, for its gradient).
 */
export function addReadout(
  t: Tape,
  params: ParamInputs,
  prefix: string,
  f: Sym,
  idx: Sym,
  weights: Sym,
): Sym {
  const [b, c, h, w] = f.shape;
  const n = weights.shape[2];
  const rows = t.reshape(t.transpose(f, [0, 2, 3, 1]), [b * h * w, c]);
  const corners = t.gatherRows(rows, idx); // [B, 4, N, C]
  const sampled = t.reduceSum(t.mul(corners, t.reshape(weights, [b, 4, n, 1])), [1], false);
  const ft = t.transpose(params.get(`${prefix}features`), [1, 0]); // [N, C]
  const y = t.reduceSum(t.mul(sampled, ft), [2], false); // [B, N]
  const z = t.add(t.add(y, params.get(`${prefix}bias`)), t.scalar(-1));
  return t.add(t.elu(z), t.scalar(1));
}

/**
 * Adds the mu and sigma gradients [N, 2] that follow from the graph's gradient of the corner
 * weights [B, 4, N] (see the module doc) to `gMu` and `gSigma`.
 */
export function samplingGradients(
  readout: GaussianReadout,
  s: ReadoutSampling,
  gWeights: Float32Array,
  gMu: Float32Array,
  gSigma: Float32Array,
): void {
  const n = readout.config.neurons;
  const { mu, sigma } = s;
  for (let b = 0; b < s.batch; b++) {
    for (let j = 0; j < n; j++) {
      let gx = 0;
      let gy = 0;
      for (let k = 0; k < 4; k++) {
        const at = (b * 4 + k) * n + j;
        gx += gWeights[at] * s.dwx[at];
        gy += gWeights[at] * s.dwy[at];
      }
      for (let a = 0; a < 2; a++) {
        let ga = a === 0 ? gx : gy;
        if (s.eps) {
          const e = (b * n + j) * 2 + a;
          if (!s.inside![e]) ga = 0;
          if (sigma[2 * j + a] > 0) gSigma[2 * j + a] += ga * s.eps[e];
        }
        const m = mu[2 * j + a];
        if (m >= -1 && m <= 1) gMu[2 * j + a] += ga;
      }
    }
  }
}

/**
 * The mu and sigma gradients [N, 2] of a step's passes through `readout`: each pass's sampling and
 * the graph's gradient of its corner weights, summed (see {@linkcode samplingGradients}).
 */
export function readoutGradients(
  readout: GaussianReadout,
  passes: readonly { sampling: ReadoutSampling; gWeights: Float32Array }[],
): { mu: tf.Tensor2D; sigma: tf.Tensor2D } {
  const n = readout.config.neurons;
  const gMu = new Float32Array(n * 2);
  const gSigma = new Float32Array(n * 2);
  for (const p of passes) samplingGradients(readout, p.sampling, p.gWeights, gMu, gSigma);
  return { mu: tf.tensor2d(gMu, [n, 2]), sigma: tf.tensor2d(gSigma, [n, 2]) };
}
