/**
 * Robustness measures of SPEC.md section 5, from per-image correctness of every (corruption,
 * severity, seed) shard:
 *
 * - accuracy A_{l,c,s} per corruption c, severity l and seed s (mean over seeds per (c, l));
 * - the paper's robustness score: A_c = mean over severities and seeds; score =
 *   100 * mean_c A_c(model) / A_c(Baseline), per category (noise, blur, weather, digital) and in
 *   total, so the Baseline scores 100%;
 * - Hendrycks' mCE with the Baseline as reference: CE_c = sum_l E_{l,c}(model) / sum_l
 *   E_{l,c}(Baseline), mCE = mean_c CE_c, and relative mCE with the clean error subtracted
 *   (both in %);
 * - bootstrap intervals (250 resamples of the test images by default, seeded, percentile method):
 *   one resample of image indices is drawn per repetition and applied to every model and shard, so
 *   the ratios to the Baseline are paired as in the paper. Each model's shards are first folded
 *   into per-image means (clean; per corruption over severities and seeds), so a resample costs
 *   one weighted sum per corruption rather than one per shard.
 *
 * @example
 * ```ts
 * import { scoreModels } from "./robustness.ts";
 * const ones = new Uint8Array([1, 1, 0, 1]);
 * const base = { name: "Baseline", clean: [ones], shards: [{ corruption: "fog", severity: 1, seed: 0, correct: new Uint8Array([1, 0, 0, 1]) }] };
 * const mtl = { name: "MTL", clean: [ones], shards: [{ corruption: "fog", severity: 1, seed: 0, correct: ones }] };
 * const r = scoreModels([base, mtl], { corruptions: ["fog"], bootstrap: 20 });
 * console.log(r.models[1].robustnessTotal.value); // 150
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import { rngFor } from "../random.ts";
import { GROUPS, PAPER_14 } from "../corruptions/presets.ts";

/** The paper's 14 corruptions (ImageNet-C without glass_blur): core/corruptions' list. */
export const PAPER_CORRUPTIONS: readonly string[] = PAPER_14;

/** The paper's categories (SPEC.md section 5): the ImageNet-C groups without glass_blur. */
export const CATEGORIES: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  (["noise", "blur", "weather", "digital"] as const).map((g) => [
    g,
    GROUPS[g].filter((c) => PAPER_14.includes(c)),
  ]),
);

/** Per-image correctness of one shard (1 = right). */
export interface ShardCorrectness {
  corruption: string;
  severity: number;
  seed: number;
  correct: Uint8Array;
}

/** A model's evaluation: clean correctness (one array per seed, usually one) and its shards. */
export interface ModelCorrectness {
  name: string;
  clean: Uint8Array[];
  shards: ShardCorrectness[];
}

/** A value with its bootstrap interval. */
export interface Estimate {
  value: number;
  lo: number;
  hi: number;
}

/** Mean accuracy at one corruption and severity (over seeds). */
export interface CorruptionAccuracy {
  corruption: string;
  severity: number;
  accuracy: number;
  seeds: number;
}

/** The scores of one model. */
export interface ModelScore {
  name: string;
  cleanAccuracy: Estimate;
  accuracy: CorruptionAccuracy[];
  /** A_c per corruption. */
  corruptionAccuracy: Record<string, number>;
  /** Robustness (%) per category that has a scored corruption. */
  robustness: Record<string, Estimate>;
  robustnessTotal: Estimate;
  mce: Estimate;
  relativeMce: Estimate;
  /** CE_c per corruption (%). */
  ce: Record<string, number>;
  /** Test images per shard. */
  n: number;
}

/** Options of {@linkcode scoreModels}. */
export interface ScoreOptions {
  /** Reference model (default "Baseline"). */
  baseline?: string;
  /** Corruptions scored (default the paper's 14). */
  corruptions?: readonly string[];
  /** Bootstrap resamples (default 250; 0 = no intervals, lo = hi = value). */
  bootstrap?: number;
  /** Seed of the resamples (default 0). */
  seed?: number;
  /** Interval coverage (default 0.95). */
  confidence?: number;
}

/** The result of {@linkcode scoreModels}. */
export interface ScoreResult {
  baseline: string;
  corruptions: string[];
  bootstrap: number;
  confidence: number;
  models: ModelScore[];
}

/** Fraction of ones in `correct`, or with `weights[i]` copies of image i (a bootstrap resample). */
export function accuracy(correct: Uint8Array, weights?: Uint16Array): number {
  const n = correct.length;
  if (n === 0) return NaN;
  let s = 0;
  if (weights) {
    for (let i = 0; i < n; i++) s += correct[i] * weights[i];
  } else {
    for (let i = 0; i < n; i++) s += correct[i];
  }
  return s / n;
}

/** Accuracy per corruption and severity, mean over seeds, in a stable order. */
export function accuracyTable(
  shards: readonly ShardCorrectness[],
  weights?: Uint16Array,
): CorruptionAccuracy[] {
  const groups = new Map<string, { c: string; l: number; sum: number; k: number }>();
  for (const s of shards) {
    const id = `${s.corruption}\u0000${s.severity}`;
    const g = groups.get(id) ?? { c: s.corruption, l: s.severity, sum: 0, k: 0 };
    g.sum += accuracy(s.correct, weights);
    g.k++;
    groups.set(id, g);
  }
  return [...groups.values()]
    .sort((a, b) => a.c < b.c ? -1 : a.c > b.c ? 1 : a.l - b.l)
    .map((g) => ({ corruption: g.c, severity: g.l, accuracy: g.sum / g.k, seeds: g.k }));
}

/** A_c: mean over severities (each already a mean over seeds) per corruption. */
export function corruptionAccuracies(table: readonly CorruptionAccuracy[]): Map<string, number> {
  const sums = new Map<string, [number, number]>();
  for (const r of table) {
    const s = sums.get(r.corruption) ?? [0, 0];
    s[0] += r.accuracy;
    s[1]++;
    sums.set(r.corruption, s);
  }
  return new Map([...sums].map(([c, [s, k]]) => [c, s / k]));
}

/**
 * The paper's robustness score in %: 100 * mean over `corruptions` of A_c(model) / A_c(baseline).
 */
export function robustnessScore(
  model: Map<string, number>,
  baseline: Map<string, number>,
  corruptions: readonly string[],
): number {
  if (corruptions.length === 0) return NaN;
  let s = 0;
  for (const c of corruptions) {
    const a = model.get(c);
    const b = baseline.get(c);
    if (a === undefined || b === undefined) {
      throw CoreError.invalidArgument(`corruptions: no accuracy for ${c}`);
    }
    s += a / b;
  }
  return (100 * s) / corruptions.length;
}

/** Sum over severities of the error per corruption, optionally minus the clean error each time. */
function errorSums(table: readonly CorruptionAccuracy[], cleanError = 0): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of table) {
    out.set(r.corruption, (out.get(r.corruption) ?? 0) + (1 - r.accuracy) - cleanError);
  }
  return out;
}

/**
 * Hendrycks' CE_c and mCE (%) of a model with `baseline` as reference; with `relative`, the clean
 * errors are subtracted (relative mCE).
 */
export function meanCorruptionError(
  model: readonly CorruptionAccuracy[],
  baseline: readonly CorruptionAccuracy[],
  corruptions: readonly string[],
  relative?: { modelClean: number; baselineClean: number },
): { ce: Map<string, number>; mce: number } {
  const m = errorSums(model, relative ? 1 - relative.modelClean : 0);
  const b = errorSums(baseline, relative ? 1 - relative.baselineClean : 0);
  const ce = new Map<string, number>();
  let s = 0;
  for (const c of corruptions) {
    const em = m.get(c);
    const eb = b.get(c);
    if (em === undefined || eb === undefined) {
      throw CoreError.invalidArgument(`corruptions: no accuracy for ${c}`);
    }
    const v = (100 * em) / eb;
    ce.set(c, v);
    s += v;
  }
  return { ce, mce: s / corruptions.length };
}

/** Percentile interval of `values` (sorted in place) at coverage `confidence`. */
export function percentileInterval(values: Float64Array, confidence: number): [number, number] {
  const v = values.filter((x) => Number.isFinite(x)).sort();
  if (v.length === 0) return [NaN, NaN];
  const q = (p: number) => {
    const pos = p * (v.length - 1);
    const i = Math.floor(pos);
    const f = pos - i;
    return i + 1 < v.length ? v[i] * (1 - f) + v[i + 1] * f : v[i];
  };
  const a = (1 - confidence) / 2;
  return [q(a), q(1 - a)];
}

/**
 * Draws one bootstrap resample of `n` images: `weights[i]` = how many times image i was drawn
 * (n draws with replacement), from the stream (seed, "bootstrap", rep).
 */
export function bootstrapWeights(n: number, seed: number, rep: number): Uint16Array {
  const rng = rngFor(seed, "bootstrap", rep);
  const w = new Uint16Array(n);
  for (let i = 0; i < n; i++) w[rng.int(n)]++;
  return w;
}

interface PointScores {
  clean: number[];
  tables: CorruptionAccuracy[][];
  robustness: Record<string, number>[];
  total: number[];
  mce: number[];
  relMce: number[];
  ce: Map<string, number>[];
}

function checkModels(models: readonly ModelCorrectness[], corruptions: readonly string[]): number {
  if (models.length === 0) throw CoreError.invalidArgument("models: none given");
  let n = -1;
  const names = new Set<string>();
  for (const m of models) {
    if (names.has(m.name)) throw CoreError.invalidArgument(`models: name ${m.name} twice`);
    names.add(m.name);
    if (m.clean.length === 0) {
      throw CoreError.invalidArgument(`models[${m.name}]: no clean shard`);
    }
    for (const arr of [...m.clean, ...m.shards.map((s) => s.correct)]) {
      if (n < 0) n = arr.length;
      if (arr.length !== n) {
        throw CoreError.invalidArgument(
          `models[${m.name}]: shards cover ${arr.length} and ${n} images; every shard must cover the same test images`,
        );
      }
    }
    for (const c of corruptions) {
      if (!m.shards.some((s) => s.corruption === c)) {
        throw CoreError.invalidArgument(`models[${m.name}]: no shard of corruption ${c}`);
      }
    }
  }
  if (n <= 0) throw CoreError.invalidArgument("models: shards hold no images");
  return n;
}

function pointScores(
  models: readonly ModelCorrectness[],
  baseIndex: number,
  corruptions: readonly string[],
  categories: [string, string[]][],
  weights?: Uint16Array,
): PointScores {
  const used = new Set(corruptions);
  const clean = models.map((m) =>
    m.clean.reduce((s, c) => s + accuracy(c, weights), 0) / m.clean.length
  );
  const tables = models.map((m) =>
    accuracyTable(m.shards.filter((s) => used.has(s.corruption)), weights)
  );
  const acs = tables.map(corruptionAccuracies);
  const out: PointScores = {
    clean,
    tables,
    robustness: [],
    total: [],
    mce: [],
    relMce: [],
    ce: [],
  };
  for (let i = 0; i < models.length; i++) {
    const rob: Record<string, number> = {};
    for (const [cat, cs] of categories) rob[cat] = robustnessScore(acs[i], acs[baseIndex], cs);
    out.robustness.push(rob);
    out.total.push(robustnessScore(acs[i], acs[baseIndex], corruptions));
    const m = meanCorruptionError(tables[i], tables[baseIndex], corruptions);
    out.ce.push(m.ce);
    out.mce.push(m.mce);
    out.relMce.push(
      meanCorruptionError(tables[i], tables[baseIndex], corruptions, {
        modelClean: clean[i],
        baselineClean: clean[baseIndex],
      }).mce,
    );
  }
  return out;
}

/**
 * What a resample needs of a model, folded over severities and seeds once: per image, its mean
 * correctness over the clean shards, and per corruption its mean over severities of the mean over
 * seeds (so A_c of a resample is one weighted sum per corruption instead of one per shard), with
 * the number of severities (for the error sums of mCE).
 */
interface Aggregate {
  clean: Float64Array;
  perCorruption: Map<string, { k: Float64Array; severities: number }>;
}

function aggregate(m: ModelCorrectness, corruptions: readonly string[], n: number): Aggregate {
  const clean = new Float64Array(n);
  for (const c of m.clean) for (let i = 0; i < n; i++) clean[i] += c[i] / m.clean.length;
  const perCorruption = new Map<string, { k: Float64Array; severities: number }>();
  for (const name of corruptions) {
    const bySeverity = new Map<number, Uint8Array[]>();
    for (const s of m.shards) {
      if (s.corruption !== name) continue;
      const list = bySeverity.get(s.severity) ?? [];
      list.push(s.correct);
      bySeverity.set(s.severity, list);
    }
    const k = new Float64Array(n);
    const levels = bySeverity.size;
    for (const list of bySeverity.values()) {
      const f = 1 / (levels * list.length);
      for (const c of list) for (let i = 0; i < n; i++) k[i] += c[i] * f;
    }
    perCorruption.set(name, { k, severities: levels });
  }
  return { clean, perCorruption };
}

function weighted(k: Float64Array, w: Uint16Array): number {
  let s = 0;
  for (let i = 0; i < k.length; i++) s += k[i] * w[i];
  return s / k.length;
}

/** The bootstrap statistics of one resample from the folded models (same formulas as pointScores). */
function resampledScores(
  agg: readonly Aggregate[],
  baseIndex: number,
  corruptions: readonly string[],
  categories: [string, string[]][],
  w: Uint16Array,
): Omit<PointScores, "tables" | "ce"> {
  const clean = agg.map((a) => weighted(a.clean, w));
  const acs = agg.map((a) =>
    new Map(corruptions.map((c) => [c, weighted(a.perCorruption.get(c)!.k, w)]))
  );
  const out: Omit<PointScores, "tables" | "ce"> = {
    clean,
    robustness: [],
    total: [],
    mce: [],
    relMce: [],
  };
  const b = baseIndex;
  for (let i = 0; i < agg.length; i++) {
    const rob: Record<string, number> = {};
    for (const [cat, cs] of categories) rob[cat] = robustnessScore(acs[i], acs[b], cs);
    out.robustness.push(rob);
    out.total.push(robustnessScore(acs[i], acs[b], corruptions));
    // sum over severities of the error = L_c (1 - A_c); minus the clean error: L_c (clean - A_c)
    let mce = 0;
    let rel = 0;
    for (const c of corruptions) {
      const lm = agg[i].perCorruption.get(c)!.severities;
      const lb = agg[b].perCorruption.get(c)!.severities;
      const am = acs[i].get(c)!;
      const ab = acs[b].get(c)!;
      mce += (100 * lm * (1 - am)) / (lb * (1 - ab));
      rel += (100 * lm * (clean[i] - am)) / (lb * (clean[b] - ab));
    }
    out.mce.push(mce / corruptions.length);
    out.relMce.push(rel / corruptions.length);
  }
  return out;
}

/**
 * Scores of every model against the baseline, with bootstrap intervals over the test images.
 * Throws INVALID_ARGUMENT when the baseline is missing, a model lacks a scored corruption, or the
 * shards cover different numbers of images.
 */
export function scoreModels(
  models: readonly ModelCorrectness[],
  options: ScoreOptions = {},
): ScoreResult {
  const baseline = options.baseline || "Baseline";
  const corruptions = [...(options.corruptions?.length ? options.corruptions : PAPER_CORRUPTIONS)];
  const bootstrap = options.bootstrap ?? 250;
  const confidence = options.confidence ?? 0.95;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(bootstrap) || bootstrap < 0) {
    throw CoreError.invalidArgument(`bootstrap: ${bootstrap}; a whole number >= 0`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw CoreError.invalidArgument(`confidence: ${confidence}; between 0 and 1`);
  }
  const baseIndex = models.findIndex((m) => m.name === baseline);
  if (baseIndex < 0) {
    throw CoreError.invalidArgument(
      `baseline: no model named ${baseline} (models: ${models.map((m) => m.name).join(", ")})`,
    );
  }
  const n = checkModels(models, corruptions);
  const categories: [string, string[]][] = Object.entries(CATEGORIES)
    .map(([k, cs]): [string, string[]] => [k, cs.filter((c) => corruptions.includes(c))])
    .filter(([, cs]) => cs.length > 0);

  const point = pointScores(models, baseIndex, corruptions, categories);
  const k = models.length;
  const reps = {
    clean: Array.from({ length: k }, () => new Float64Array(bootstrap)),
    total: Array.from({ length: k }, () => new Float64Array(bootstrap)),
    mce: Array.from({ length: k }, () => new Float64Array(bootstrap)),
    relMce: Array.from({ length: k }, () => new Float64Array(bootstrap)),
    cat: Array.from(
      { length: k },
      () => Object.fromEntries(categories.map(([c]) => [c, new Float64Array(bootstrap)])),
    ),
  };
  const agg = models.map((m) => aggregate(m, corruptions, n));
  for (let b = 0; b < bootstrap; b++) {
    const w = bootstrapWeights(n, seed, b);
    const p = resampledScores(agg, baseIndex, corruptions, categories, w);
    for (let i = 0; i < k; i++) {
      reps.clean[i][b] = p.clean[i];
      reps.total[i][b] = p.total[i];
      reps.mce[i][b] = p.mce[i];
      reps.relMce[i][b] = p.relMce[i];
      for (const [c] of categories) reps.cat[i][c][b] = p.robustness[i][c];
    }
  }
  const est = (value: number, samples: Float64Array): Estimate => {
    if (bootstrap === 0) return { value, lo: value, hi: value };
    const [lo, hi] = percentileInterval(samples, confidence);
    return { value, lo, hi };
  };
  return {
    baseline,
    corruptions,
    bootstrap,
    confidence,
    models: models.map((m, i) => ({
      name: m.name,
      cleanAccuracy: est(point.clean[i], reps.clean[i]),
      accuracy: point.tables[i],
      corruptionAccuracy: Object.fromEntries(corruptionAccuracies(point.tables[i])),
      robustness: Object.fromEntries(
        categories.map(([c]) => [c, est(point.robustness[i][c], reps.cat[i][c])]),
      ),
      robustnessTotal: est(point.total[i], reps.total[i]),
      mce: est(point.mce[i], reps.mce[i]),
      relativeMce: est(point.relMce[i], reps.relMce[i]),
      ce: Object.fromEntries(point.ce[i]),
      n,
    })),
  };
}
