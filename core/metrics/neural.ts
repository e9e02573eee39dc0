/**
 * Neural predictivity measures (SPEC.md section 5): single-trial Pearson correlation per neuron,
 * correlation to the repeat average, and the fraction of explainable variance explained (FEVe,
 * Cadena et al. 2019). Plain float64 loops: these are a few formulas over small arrays.
 *
 * Layouts: `responses` is (repeats, images, neurons) row-major with NaN where a trial was not
 * recorded (unequal repeat counts); `predictions` is (images, neurons).
 *
 * @example
 * ```ts
 * import { fev } from "./neural.ts";
 * const r = fev(new Float64Array([1, 2, 3, 5]), new Float64Array([1.5, 4]), [2, 2, 1]);
 * console.log(r.feve[0]);
 * ```
 * @module
 */

/** Dimensions of a response array: repeats, images, neurons. */
export type ResponseDims = [repeats: number, images: number, neurons: number];

/** Per-neuron results and their means over neurons (NaN-aware). */
export interface FevResult {
  /** Fraction of explainable variance, per neuron. */
  fev: Float64Array;
  /** Fraction of explainable variance explained by the predictions, per neuron. */
  feve: Float64Array;
  /** Noise variance (mean over images of the across-repeat variance, ddof 1), per neuron. */
  noiseVar: Float64Array;
  /** Variance over all trials of all images (ddof 1), per neuron. */
  totalVar: Float64Array;
  /** Mean over trials of (prediction - response)^2, per neuron. */
  mse: Float64Array;
  meanFev: number;
  meanFeve: number;
}

function check(responses: ArrayLike<number>, predictions: ArrayLike<number>, dims: ResponseDims) {
  const [r, n, k] = dims;
  if (responses.length !== r * n * k) {
    throw new Error(`responses: ${responses.length} values, expected ${r}x${n}x${k}`);
  }
  if (predictions.length !== n * k) {
    throw new Error(`predictions: ${predictions.length} values, expected ${n}x${k}`);
  }
}

/** Mean of the finite values of `xs` (NaN when there are none). */
export function nanMean(xs: ArrayLike<number>): number {
  let s = 0, c = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isFinite(xs[i])) {
      s += xs[i];
      c++;
    }
  }
  return c ? s / c : NaN;
}

/** FEV and FEVe per neuron, exactly as SPEC.md section 5. */
export function fev(
  responses: ArrayLike<number>,
  predictions: ArrayLike<number>,
  dims: ResponseDims,
): FevResult {
  check(responses, predictions, dims);
  const [R, N, K] = dims;
  const out: FevResult = {
    fev: new Float64Array(K),
    feve: new Float64Array(K),
    noiseVar: new Float64Array(K),
    totalVar: new Float64Array(K),
    mse: new Float64Array(K),
    meanFev: NaN,
    meanFeve: NaN,
  };
  for (let k = 0; k < K; k++) {
    // noise variance: per image, variance across its recorded repeats (ddof 1), then mean
    let noiseSum = 0, noiseImages = 0;
    let sum = 0, count = 0;
    let se = 0;
    for (let n = 0; n < N; n++) {
      let s = 0, c = 0;
      for (let r = 0; r < R; r++) {
        const v = responses[(r * N + n) * K + k];
        if (Number.isFinite(v)) {
          s += v;
          c++;
          const d = predictions[n * K + k] - v;
          se += d * d;
        }
      }
      sum += s;
      count += c;
      if (c >= 2) {
        const m = s / c;
        let ss = 0;
        for (let r = 0; r < R; r++) {
          const v = responses[(r * N + n) * K + k];
          if (Number.isFinite(v)) ss += (v - m) * (v - m);
        }
        noiseSum += ss / (c - 1);
        noiseImages++;
      }
    }
    const mean = sum / count;
    let tss = 0;
    for (let i = 0; i < R * N; i++) {
      const v = responses[i * K + k];
      if (Number.isFinite(v)) tss += (v - mean) * (v - mean);
    }
    const totalVar = count > 1 ? tss / (count - 1) : NaN;
    const noiseVar = noiseImages ? noiseSum / noiseImages : NaN;
    const mseK = count ? se / count : NaN;
    out.noiseVar[k] = noiseVar;
    out.totalVar[k] = totalVar;
    out.mse[k] = mseK;
    out.fev[k] = (totalVar - noiseVar) / totalVar;
    out.feve[k] = 1 - (mseK - noiseVar) / (totalVar - noiseVar);
  }
  out.meanFev = nanMean(out.fev);
  out.meanFeve = nanMean(out.feve);
  return out;
}

/** Pearson correlation of the pairs (x[i], y[i]) where both are finite (NaN if undefined). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let n = 0, sx = 0, sy = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i]) && Number.isFinite(y[i])) {
      n++;
      sx += x[i];
      sy += y[i];
    }
  }
  if (n < 2) return NaN;
  const mx = sx / n, my = sy / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i]) && Number.isFinite(y[i])) {
      const dx = x[i] - mx, dy = y[i] - my;
      sxy += dx * dy;
      sxx += dx * dx;
      syy += dy * dy;
    }
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** Single-trial correlation per neuron: every recorded trial against the image's prediction. */
export function singleTrialCorrelation(
  responses: ArrayLike<number>,
  predictions: ArrayLike<number>,
  dims: ResponseDims,
): Float64Array {
  check(responses, predictions, dims);
  const [R, N, K] = dims;
  const out = new Float64Array(K);
  const x = new Float64Array(R * N), y = new Float64Array(R * N);
  for (let k = 0; k < K; k++) {
    for (let r = 0; r < R; r++) {
      for (let n = 0; n < N; n++) {
        x[r * N + n] = predictions[n * K + k];
        y[r * N + n] = responses[(r * N + n) * K + k];
      }
    }
    out[k] = pearson(x, y);
  }
  return out;
}

/** Correlation per neuron between predictions and the mean response over repeats. */
export function correlationToAverage(
  responses: ArrayLike<number>,
  predictions: ArrayLike<number>,
  dims: ResponseDims,
): Float64Array {
  check(responses, predictions, dims);
  const [R, N, K] = dims;
  const out = new Float64Array(K);
  const x = new Float64Array(N), y = new Float64Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      let s = 0, c = 0;
      for (let r = 0; r < R; r++) {
        const v = responses[(r * N + n) * K + k];
        if (Number.isFinite(v)) {
          s += v;
          c++;
        }
      }
      x[n] = predictions[n * K + k];
      y[n] = c ? s / c : NaN;
    }
    out[k] = pearson(x, y);
  }
  return out;
}
