/**
 * Probes for the built-in image set's two promises: its classes are learnable from oriented
 * energy (what a CNN's first layers compute) and not from pixels through a linear read-out.
 *
 * - {@linkcode orientedEnergyFeatures}: a global, HOG-like oriented-energy descriptor: the power
 *   spectrum of each (mean-subtracted, Hann-windowed) image summed in orientation x log-frequency
 *   bins, log-compressed and contrast-normalised (the image's mean log energy is subtracted). By
 *   Parseval, each bin is the spatially pooled energy of a quadrature filter pair tuned to that
 *   orientation and frequency band.
 * - {@linkcode nearestClassMean}: z-scores features with the training statistics and assigns the
 *   class whose mean is nearest.
 * - {@linkcode ridgeClassifier}: one-vs-rest ridge regression on raw pixels (scaled to [0, 1] and
 *   centred), solved in the dual (n x n), the linear baseline.
 *
 * @example
 * ```ts
 * import { generateImageSet } from "./image_set.ts";
 * import { accuracy, nearestClassMean, orientedEnergyFeatures } from "./image_set_probe.ts";
 *
 * const train = generateImageSet({ classes: 4, perClass: 10, seed: 1 });
 * const test = generateImageSet({ classes: 4, perClass: 5, seed: 1, split: "val" });
 * const pred = nearestClassMean(
 *   orientedEnergyFeatures(train.images),
 *   train.labels.data,
 *   orientedEnergyFeatures(test.images),
 * );
 * console.log(accuracy(pred, test.labels.data) > 0.5); // true
 * ```
 * @module
 */

import type { NdArray } from "../io/ndarray.ts";
import { fft2d } from "../fft.ts";

/**
 * A row-major matrix of `rows` x `cols` float64 values.
 *
 * @example
 * ```ts
 * import type { Matrix } from "./image_set_probe.ts";
 * const m: Matrix = { rows: 1, cols: 2, data: new Float64Array([1, 2]) };
 * console.log(m.data[1]); // 2
 * ```
 */
export interface Matrix {
  /** Number of rows (samples). */
  rows: number;
  /** Number of columns (features). */
  cols: number;
  /** `rows * cols` values. */
  data: Float64Array;
}

/**
 * Options for {@linkcode orientedEnergyFeatures}.
 *
 * @example
 * ```ts
 * import type { OrientedEnergyOptions } from "./image_set_probe.ts";
 * const o: OrientedEnergyOptions = { orientations: 12, bands: 6 };
 * console.log(o.bands); // 6
 * ```
 */
export interface OrientedEnergyOptions {
  /** Orientation bins over 180 degrees (default 12). */
  orientations?: number;
  /** Log-spaced frequency bands between 0.03 and 0.5 cycles per pixel (default 6). */
  bands?: number;
}

/**
 * The oriented-energy descriptor of each image of a uint8 `[N, H, W]` (H = W) array:
 * `orientations * bands` features per image.
 *
 * @example
 * ```ts
 * import { orientedEnergyFeatures } from "./image_set_probe.ts";
 * const f = orientedEnergyFeatures({ dtype: "uint8", shape: [2, 8, 8], data: new Uint8Array(128) });
 * console.log(f.rows, f.cols); // 2 72
 * ```
 */
export function orientedEnergyFeatures(
  images: NdArray<"uint8">,
  options: OrientedEnergyOptions = {},
): Matrix {
  const [n, h, w] = images.shape;
  if (h !== w) {
    throw new RangeError(`orientedEnergyFeatures: images are ${h}x${w}; expected square`);
  }
  const nOri = options.orientations ?? 12;
  const nBands = options.bands ?? 6;
  let p = 1;
  while (p < h) p <<= 1;
  const lo = Math.log(0.03);
  const hi = Math.log(0.5);
  // Bin of every frequency sample (-1: outside the bands or DC).
  const bin = new Int32Array(p * p).fill(-1);
  for (let ky = 0; ky < p; ky++) {
    const fy = (ky <= p / 2 ? ky : ky - p) / p;
    for (let kx = 0; kx < p; kx++) {
      const fx = (kx <= p / 2 ? kx : kx - p) / p;
      const r = Math.hypot(fx, fy);
      if (r === 0) continue;
      const b = Math.floor(((Math.log(r) - lo) / (hi - lo)) * nBands);
      if (b < 0 || b >= nBands) continue;
      let a = Math.atan2(-fy, fx); // y points down
      if (a < 0) a += Math.PI;
      const o = Math.floor((a / Math.PI) * nOri) % nOri;
      bin[ky * p + kx] = b * nOri + o;
    }
  }
  const win = new Float64Array(h);
  for (let i = 0; i < h; i++) win[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / h);
  const d = nOri * nBands;
  const out = new Float64Array(n * d);
  const re = new Float64Array(p * p);
  const im = new Float64Array(p * p);
  const acc = new Float64Array(d);
  const px = h * w;
  for (let k = 0; k < n; k++) {
    const img = images.data.subarray(k * px, (k + 1) * px);
    let mean = 0;
    for (let i = 0; i < px; i++) mean += img[i];
    mean /= px;
    re.fill(0);
    im.fill(0);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) re[y * p + x] = (img[y * w + x] - mean) * win[y] * win[x];
    }
    fft2d(re, im, p);
    acc.fill(0);
    for (let i = 0; i < p * p; i++) {
      const b = bin[i];
      if (b >= 0) acc[b] += re[i] * re[i] + im[i] * im[i];
    }
    let s = 0;
    for (let j = 0; j < d; j++) s += acc[j] = Math.log(acc[j] + 1e-6);
    for (let j = 0; j < d; j++) out[k * d + j] = acc[j] - s / d;
  }
  return { rows: n, cols: d, data: out };
}

/**
 * Raw pixels of a uint8 `[N, ...]` array as a `N x (H*W...)` matrix in [0, 1].
 *
 * @example
 * ```ts
 * import { pixelFeatures } from "./image_set_probe.ts";
 * const m = pixelFeatures({ dtype: "uint8", shape: [1, 1, 2], data: new Uint8Array([0, 255]) });
 * console.log([...m.data]); // [ 0, 1 ]
 * ```
 */
export function pixelFeatures(images: NdArray<"uint8">): Matrix {
  const n = images.shape[0];
  const cols = n === 0 ? 0 : images.data.length / n;
  return { rows: n, cols, data: Float64Array.from(images.data, (v) => v / 255) };
}

/**
 * Nearest class mean after z-scoring each feature with the training mean and deviation.
 *
 * @example
 * ```ts
 * import { nearestClassMean } from "./image_set_probe.ts";
 * const train = { rows: 2, cols: 1, data: new Float64Array([0, 1]) };
 * const test = { rows: 1, cols: 1, data: new Float64Array([0.9]) };
 * console.log(nearestClassMean(train, new Int32Array([0, 1]), test)); // Int32Array(1) [ 1 ]
 * ```
 */
export function nearestClassMean(train: Matrix, labels: Int32Array, test: Matrix): Int32Array {
  const d = train.cols;
  const { mu, sd } = columnStats(train);
  const nClasses = Math.max(...labels) + 1;
  const means = new Float64Array(nClasses * d);
  const counts = new Float64Array(nClasses);
  for (let i = 0; i < train.rows; i++) {
    const c = labels[i];
    counts[c]++;
    for (let j = 0; j < d; j++) means[c * d + j] += (train.data[i * d + j] - mu[j]) / sd[j];
  }
  for (let c = 0; c < nClasses; c++) {
    for (let j = 0; j < d; j++) means[c * d + j] /= counts[c] || 1;
  }
  const pred = new Int32Array(test.rows);
  for (let i = 0; i < test.rows; i++) {
    let best = Infinity;
    for (let c = 0; c < nClasses; c++) {
      if (!counts[c]) continue;
      let dist = 0;
      for (let j = 0; j < d; j++) {
        const z = (test.data[i * d + j] - mu[j]) / sd[j] - means[c * d + j];
        dist += z * z;
      }
      if (dist < best) [best, pred[i]] = [dist, c];
    }
  }
  return pred;
}

function columnStats(m: Matrix): { mu: Float64Array; sd: Float64Array } {
  const { rows, cols, data } = m;
  const mu = new Float64Array(cols);
  const sd = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mu[j] += data[i * cols + j];
  for (let j = 0; j < cols; j++) mu[j] /= rows;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) sd[j] += (data[i * cols + j] - mu[j]) ** 2;
  }
  for (let j = 0; j < cols; j++) sd[j] = Math.sqrt(sd[j] / rows) || 1;
  return { mu, sd };
}

/**
 * One-vs-rest ridge regression (targets +1 / -1, features centred by the training mean, an
 * unpenalised intercept), solved in the dual: `alpha = (X X^T + lambda I)^-1 Y`. Predicts the
 * class with the largest score.
 *
 * @example
 * ```ts
 * import { ridgeClassifier } from "./image_set_probe.ts";
 * const train = { rows: 4, cols: 1, data: new Float64Array([0, 0.1, 1, 1.1]) };
 * const test = { rows: 2, cols: 1, data: new Float64Array([0.05, 0.95]) };
 * console.log(ridgeClassifier(train, new Int32Array([0, 0, 1, 1]), test, 0.01)); // Int32Array(2) [ 0, 1 ]
 * ```
 */
export function ridgeClassifier(
  train: Matrix,
  labels: Int32Array,
  test: Matrix,
  lambda: number,
): Int32Array {
  const n = train.rows;
  const d = train.cols;
  const nClasses = Math.max(...labels) + 1;
  const mu = columnStats(train).mu;
  const center = (m: Matrix) => {
    const out = new Float64Array(m.data.length);
    for (let i = 0; i < m.rows; i++) {
      for (let j = 0; j < d; j++) out[i * d + j] = m.data[i * d + j] - mu[j];
    }
    return out;
  };
  const xc = center(train);
  const tc = center(test);
  // Gram matrix plus ridge.
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = i; k < n; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += xc[i * d + j] * xc[k * d + j];
      g[i * n + k] = g[k * n + i] = s;
    }
    g[i * n + i] += lambda;
  }
  // Targets: +1 for the class, -1 otherwise, centred (the intercept).
  const y = new Float64Array(n * nClasses);
  const bias = new Float64Array(nClasses);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < nClasses; c++) y[i * nClasses + c] = labels[i] === c ? 1 : -1;
  }
  for (let c = 0; c < nClasses; c++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += y[i * nClasses + c];
    bias[c] = s / n;
    for (let i = 0; i < n; i++) y[i * nClasses + c] -= bias[c];
  }
  const alpha = choleskySolve(g, n, y, nClasses);
  const pred = new Int32Array(test.rows);
  const kt = new Float64Array(n);
  for (let t = 0; t < test.rows; t++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += tc[t * d + j] * xc[i * d + j];
      kt[i] = s;
    }
    let best = -Infinity;
    for (let c = 0; c < nClasses; c++) {
      let s = bias[c];
      for (let i = 0; i < n; i++) s += kt[i] * alpha[i * nClasses + c];
      if (s > best) [best, pred[t]] = [s, c];
    }
  }
  return pred;
}

/** Solves A X = B for symmetric positive definite A (n x n) and B (n x m), in place on copies. */
function choleskySolve(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const l = Float64Array.from(a);
  for (let j = 0; j < n; j++) {
    let s = l[j * n + j];
    for (let k = 0; k < j; k++) s -= l[j * n + k] ** 2;
    if (!(s > 0)) throw new RangeError("ridgeClassifier: Gram matrix is not positive definite");
    const djj = Math.sqrt(s);
    l[j * n + j] = djj;
    for (let i = j + 1; i < n; i++) {
      let t = l[i * n + j];
      for (let k = 0; k < j; k++) t -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = t / djj;
    }
  }
  const x = Float64Array.from(b);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = x[i * m + c];
      for (let k = 0; k < i; k++) s -= l[i * n + k] * x[k * m + c];
      x[i * m + c] = s / l[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i * m + c];
      for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k * m + c];
      x[i * m + c] = s / l[i * n + i];
    }
  }
  return x;
}

/**
 * Share of `pred` equal to `labels`.
 *
 * @example
 * ```ts
 * import { accuracy } from "./image_set_probe.ts";
 * console.log(accuracy(new Int32Array([1, 2]), new Int32Array([1, 0]))); // 0.5
 * ```
 */
export function accuracy(pred: Int32Array, labels: Int32Array): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) ok++;
  return labels.length ? ok / labels.length : 0;
}
