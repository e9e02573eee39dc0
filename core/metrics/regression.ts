/**
 * Ordinary least squares with the classical inference of the paper's Fig. 3C: robustness ~ b0 +
 * b1 * clean_accuracy + b2 * FEV over many models, with standard errors, t statistics and two-sided
 * p-values of each coefficient (Student's t with n - p degrees of freedom; the t CDF comes from
 * @stdlib/stats-base-dists-t-cdf). The fit is a Householder QR of the design matrix in float64, so
 * near-collinear predictors lose no more precision than they must.
 *
 * @example
 * ```ts
 * import { ols } from "./regression.ts";
 * const fit = ols([[0.50, 0.1], [0.52, 0.3], [0.49, 0.5], [0.55, 0.2], [0.51, 0.6]], [100, 104, 107, 103, 111], {
 *   names: ["clean_accuracy", "fev"],
 * });
 * console.log(fit.coefficients.map((c) => [c.name, c.estimate.toFixed(2), c.p.toExponential(1)]));
 * ```
 * @module
 */
import tcdf from "@stdlib/stats-base-dists-t-cdf";
import { CoreError } from "../errors.ts";

/** One coefficient with its standard error, t statistic and two-sided p-value. */
export interface Coefficient {
  name: string;
  estimate: number;
  stdError: number;
  t: number;
  p: number;
}

/** An OLS fit. */
export interface OlsFit {
  /** The intercept first (when fitted), then one per predictor column. */
  coefficients: Coefficient[];
  /** Observations and residual degrees of freedom (n - parameters). */
  n: number;
  df: number;
  /** Residual standard error sqrt(RSS / df). */
  sigma: number;
  rSquared: number;
  adjRSquared: number;
  residuals: Float64Array;
  fitted: Float64Array;
}

/** Options of {@linkcode ols}. */
export interface OlsOptions {
  /** Names of the predictor columns (default x1, x2, ...). */
  names?: string[];
  /** Fit an intercept (default true); named "intercept". */
  intercept?: boolean;
}

/** Two-sided p-value of a t statistic with `df` degrees of freedom. */
export function tTestP(t: number, df: number): number {
  if (!Number.isFinite(t)) return Number.isNaN(t) ? NaN : 0;
  return 2 * tcdf(-Math.abs(t), df);
}

/**
 * Fits y = X b (+ intercept) by least squares. `x` is one row per observation (a plain number
 * per row when there is one predictor). Throws INVALID_ARGUMENT for mismatched lengths, too few
 * observations, non-finite values or a rank-deficient design.
 */
export function ols(
  x: readonly (readonly number[] | number)[],
  y: ArrayLike<number>,
  options: OlsOptions = {},
): OlsFit {
  const n = y.length;
  if (x.length !== n) {
    throw CoreError.invalidArgument(`x: ${x.length} rows but y has ${n} values`);
  }
  const rows = x.map((r) => (typeof r === "number" ? [r] : r));
  const k = rows.length ? rows[0].length : 0;
  const intercept = options.intercept ?? true;
  const names = [
    ...(intercept ? ["intercept"] : []),
    ...(options.names ?? Array.from({ length: k }, (_, i) => `x${i + 1}`)),
  ];
  const p = k + (intercept ? 1 : 0);
  if (names.length !== p) {
    throw CoreError.invalidArgument(
      `names: ${names.length - (intercept ? 1 : 0)} for ${k} columns`,
    );
  }
  if (p === 0) throw CoreError.invalidArgument("x: no predictors and no intercept");
  if (n <= p) {
    throw CoreError.invalidArgument(`y: ${n} observations; need more than ${p} (the parameters)`);
  }
  // design matrix, column-major, and a copy of y
  const a = new Float64Array(n * p);
  const qty = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (r.length !== k) {
      throw CoreError.invalidArgument(`x[${i}]: ${r.length} values, expected ${k}`);
    }
    let j = 0;
    if (intercept) a[j++ * n + i] = 1;
    for (let c = 0; c < k; c++) {
      if (!Number.isFinite(r[c])) throw CoreError.invalidArgument(`x[${i}][${c}]: ${r[c]}`);
      a[j++ * n + i] = r[c];
    }
    if (!Number.isFinite(y[i])) throw CoreError.invalidArgument(`y[${i}]: ${y[i]}`);
    qty[i] = y[i];
  }
  // Householder QR: R in the upper triangle of `a`; Q^T y in `qty`
  const scale = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[j * n + i] ** 2;
    scale[j] = Math.sqrt(s);
  }
  for (let j = 0; j < p; j++) {
    const col = j * n;
    let norm = 0;
    for (let i = j; i < n; i++) norm += a[col + i] ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-12 * (scale[j] || 1))) {
      throw CoreError.invalidArgument(
        `x: column ${names[j]} is a linear combination of the others (rank-deficient design)`,
      );
    }
    const alpha = a[col + j] > 0 ? -norm : norm;
    const v = new Float64Array(n - j);
    v[0] = a[col + j] - alpha;
    for (let i = j + 1; i < n; i++) v[i - j] = a[col + i];
    let vv = 0;
    for (let i = 0; i < v.length; i++) vv += v[i] * v[i];
    const apply = (vec: Float64Array, off: number) => {
      let d = 0;
      for (let i = 0; i < v.length; i++) d += v[i] * vec[off + j + i];
      const f = (2 * d) / vv;
      for (let i = 0; i < v.length; i++) vec[off + j + i] -= f * v[i];
    };
    for (let c = j; c < p; c++) apply(a, c * n);
    apply(qty, 0);
  }
  const r = (i: number, j: number) => a[j * n + i];
  // back-substitution R b = (Q^T y)[:p]
  const beta = new Float64Array(p);
  for (let i = p - 1; i >= 0; i--) {
    let s = qty[i];
    for (let j = i + 1; j < p; j++) s -= r(i, j) * beta[j];
    beta[i] = s / r(i, i);
  }
  // (X^T X)^-1 = R^-1 R^-T: invert the upper-triangular R
  const rinv = new Float64Array(p * p); // row-major
  for (let j = 0; j < p; j++) {
    rinv[j * p + j] = 1 / r(j, j);
    for (let i = j - 1; i >= 0; i--) {
      let s = 0;
      for (let m = i + 1; m <= j; m++) s += r(i, m) * rinv[m * p + j];
      rinv[i * p + j] = -s / r(i, i);
    }
  }
  const fitted = new Float64Array(n);
  const residuals = new Float64Array(n);
  let rss = 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += y[i] / n;
  let tss = 0;
  for (let i = 0; i < n; i++) {
    let f = 0;
    let j = 0;
    if (intercept) f += beta[j++];
    for (let c = 0; c < k; c++) f += beta[j++] * rows[i][c];
    fitted[i] = f;
    residuals[i] = y[i] - f;
    rss += residuals[i] ** 2;
    tss += intercept ? (y[i] - mean) ** 2 : y[i] ** 2;
  }
  const df = n - p;
  const sigma2 = rss / df;
  const coefficients: Coefficient[] = [];
  for (let i = 0; i < p; i++) {
    let v = 0;
    for (let j = i; j < p; j++) v += rinv[i * p + j] ** 2;
    const stdError = Math.sqrt(sigma2 * v);
    const t = beta[i] / stdError;
    coefficients.push({ name: names[i], estimate: beta[i], stdError, t, p: tTestP(t, df) });
  }
  const rSquared = 1 - rss / tss;
  return {
    coefficients,
    n,
    df,
    sigma: Math.sqrt(sigma2),
    rSquared,
    adjRSquared: 1 - (1 - rSquared) * ((intercept ? n - 1 : n) / df),
    residuals,
    fitted,
  };
}

/** One model's point for the Fig. 3C regression. */
export interface RobustnessPoint {
  robustness: number;
  cleanAccuracy: number;
  fev: number;
}

/** The Fig. 3C regression: robustness ~ b0 + b1 * clean_accuracy + b2 * FEV. */
export function robustnessRegression(points: readonly RobustnessPoint[]): OlsFit {
  return ols(
    points.map((p) => [p.cleanAccuracy, p.fev]),
    points.map((p) => p.robustness),
    { names: ["clean_accuracy", "fev"] },
  );
}
