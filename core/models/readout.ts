/**
 * The Gaussian readout (Lurz et al. 2021, neuralpredictors' FullGaussian2d), one per recording
 * session, exactly as SPEC.md section 3: neuron n reads the feature map at a location mu_n in
 * [-1,1]^2 (x, y), in training jittered per image by sigma_n * eps with eps ~ N(0,1), and weights
 * the channels there by f_{c,n}; output ELU(y - 1) + 1.
 *
 * Bilinear sampling (align_corners = true, zero padding) and the channel weighting are
 * core/engine/kernels/ops.ts's `readoutSample`: on the wasm backend one kernel each way reading the
 * 4 pixels around each neuron's position; elsewhere plain tfjs ops. Gradients reach the features,
 * mu and sigma.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { createGaussianReadout, gaussianReadout } from "./readout.ts";
 * const r = createGaussianReadout({ neurons: 5, channels: 8, seed: 0 });
 * const y = gaussianReadout(r, tf.zeros([2, 16, 16, 8]), { training: false });
 * console.log(y.shape); // [2, 5]
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { rngFor } from "../random.ts";
import { axisWeights, fusedKernelsActive, readoutSample } from "../engine/kernels/ops.ts";

/** Settings of one readout. */
export interface ReadoutConfig {
  /** Number of neurons of the session. */
  neurons: number;
  /** Channels of the feature map it reads (conv3_1: 256 x width). */
  channels: number;
  /** Seed of the initialisation. */
  seed: number;
  /** Half-width of the uniform mu init (0.3 in the paper). */
  initMuRange?: number;
  /** Upper bound of the uniform sigma init (0.6 in the paper). */
  initSigma?: number;
}

/** A readout's parameters. */
export interface GaussianReadout {
  config: ReadoutConfig;
  /** Locations [N, 2] as (x, y) in [-1, 1]. */
  mu: tf.Variable;
  /** Per-axis jitter [N, 2], >= 0. */
  sigma: tf.Variable;
  /** Channel weights [C, N]. */
  features: tf.Variable;
  /** Bias [N]. */
  bias: tf.Variable;
}

/** Creates a readout: mu ~ U(-0.3, 0.3), sigma ~ U(0, 0.6), f = 1/C, bias 0 (see initBias). */
export function createGaussianReadout(config: ReadoutConfig): GaussianReadout {
  const { neurons: n, channels: c, seed } = config;
  const muRange = config.initMuRange ?? 0.3;
  const sigmaMax = config.initSigma ?? 0.6;
  const rng = rngFor(seed, "gaussian-readout-init");
  const mu = Float32Array.from({ length: n * 2 }, () => rng.uniform(-muRange, muRange));
  const sigma = Float32Array.from({ length: n * 2 }, () => rng.uniform(0, sigmaMax));
  return {
    config,
    mu: tf.variable(tf.tensor2d(mu, [n, 2])),
    sigma: tf.variable(tf.tensor2d(sigma, [n, 2])),
    features: tf.variable(tf.fill([c, n], 1 / c)),
    bias: tf.variable(tf.zeros([n])),
  };
}

/** Sets the bias to the mean response of the first training batch (responses [B, N]). */
export function initReadoutBias(readout: GaussianReadout, responses: tf.Tensor2D): void {
  tf.tidy(() => readout.bias.assign(tf.mean(responses, 0)));
}

/** Clamps mu to [-1, 1] and sigma to >= 0 in place (done before every training step). */
export function clampReadout(readout: GaussianReadout): void {
  tf.tidy(() => {
    readout.mu.assign(tf.clipByValue(readout.mu, -1, 1));
    readout.sigma.assign(tf.relu(readout.sigma));
  });
}

/** Options of a readout pass. */
export interface ReadoutOptions {
  /** Training: sample the grid around mu per image; eval: read at mu. */
  training: boolean;
  /**
   * Seed of the eps draw (training): eps comes from core/random.ts' stream of this seed, so the
   * same seed gives the same grid in every process (0 is a seed like any other; tfjs'
   * randomNormal would draw from Math.random for it).
   */
  sampleSeed?: number;
}

/** The grid [B, N, 2] the readout samples at: mu (eval) or clamp(mu + sigma * eps) (training). */
export function readoutGrid(
  readout: GaussianReadout,
  batch: number,
  options: ReadoutOptions,
): tf.Tensor3D {
  return tf.tidy(() => {
    const n = readout.config.neurons;
    const mu = tf.expandDims(tf.clipByValue(readout.mu, -1, 1), 0);
    if (!options.training) return tf.tile(mu, [batch, 1, 1]) as tf.Tensor3D;
    const draws = new Float32Array(batch * n * 2);
    rngFor(options.sampleSeed ?? 0, "gaussian-readout-eps").fillNormal(draws);
    const eps = tf.tensor3d(draws, [batch, n, 2]);
    const sigma = tf.expandDims(tf.relu(readout.sigma), 0);
    return tf.clipByValue(tf.add(mu, tf.mul(sigma, eps)), -1, 1) as tf.Tensor3D;
  });
}

/**
 * Responses [B, N] of the readout on a feature map x [B, H, W, C].
 *
 * The sampling and channel weighting is core/engine/kernels/ops.ts's `readoutSample` (one wasm
 * kernel each way on the wasm backend). In eval mode on other backends every image shares the
 * weights at mu, so the plain-op path builds them once ([HW, N]) instead of per image.
 */
export function gaussianReadout(
  readout: GaussianReadout,
  x: tf.Tensor,
  options: ReadoutOptions,
): tf.Tensor2D {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  if (x.rank !== 4 || c !== readout.config.channels) {
    throw new Error(`readout input must be [B,H,W,${readout.config.channels}]; got [${x.shape}]`);
  }
  const n = readout.config.neurons;
  return tf.tidy(() => {
    let y: tf.Tensor;
    if (!options.training && !fusedKernelsActive()) {
      const z = tf.reshape(tf.matMul(tf.reshape(x, [b * h * w, c]), readout.features), [
        b,
        h * w,
        n,
      ]);
      const mu = tf.clipByValue(readout.mu, -1, 1); // [N, 2] as (x, y)
      const [gx, gy] = tf.split(mu, 2, 1).map((t) => tf.squeeze(t, [1]));
      const wgt = tf.mul(
        tf.expandDims(axisWeights(gy, h), 2),
        tf.expandDims(axisWeights(gx, w), 1),
      );
      const wt = tf.transpose(tf.reshape(wgt, [n, h * w])); // [HW, N], the same for every image
      y = tf.sum(tf.mul(z, wt), 1);
    } else {
      y = readoutSample(x, readoutGrid(readout, b, options), readout.features);
    }
    return tf.add(tf.elu(tf.sub(tf.add(y, readout.bias), 1)), 1) as tf.Tensor2D;
  });
}

/** Every variable of the readout by name (`mu`, `sigma`, `features`, `bias`). */
export function readoutParams(readout: GaussianReadout, prefix = ""): Map<string, tf.Variable> {
  return new Map([
    [`${prefix}mu`, readout.mu],
    [`${prefix}sigma`, readout.sigma],
    [`${prefix}features`, readout.features],
    [`${prefix}bias`, readout.bias],
  ]);
}

/** Frees the readout's variables. */
export function disposeReadout(readout: GaussianReadout): void {
  for (const v of readoutParams(readout).values()) v.dispose();
}
