/**
 * The experiment file: what `deno task pipeline <experiment.json>` runs. One JSON object names the
 * image set, the V1 data, the models (the paper's Table 1 plus ratio sweeps), the training seeds,
 * the evaluation grid and the analyses; {@linkcode parseExperiment} validates it with zod and
 * reports every problem with the field's path (`models[2].ratio: expected a number > 0`).
 *
 * Paths inside the file (Tiny ImageNet folder, V1 arrays, output folder) are relative to the
 * file's own folder unless absolute.
 *
 * @example
 * ```ts
 * import { parseExperiment } from "./experiment.ts";
 * const exp = parseExperiment({
 *   name: "tiny",
 *   imageSet: { kind: "builtin", classes: 3 },
 *   v1: { kind: "simulated", neurons: 8 },
 *   models: [{ kind: "monkey-predictor" }, { kind: "baseline" }, { kind: "mtl-monkey" }],
 * });
 * console.log(exp.seeds, exp.evaluation.severities); // [ 0 ] [ 1, 2, 3, 4, 5 ]
 * ```
 * @module
 */
import { z } from "zod";
import { CORRUPTIONS, PAPER_14, PRESET_NAMES } from "../../core/corruptions/presets.ts";

const int = (min: number) =>
  z.number({ error: `expected a whole number >= ${min}` }).int({
    error: `expected a whole number >= ${min}`,
  }).gte(min, { error: `expected a whole number >= ${min}` });
const positive = () =>
  z.number({ error: "expected a number > 0" }).gt(0, { error: "expected a number > 0" });
const nonNegative = () =>
  z.number({ error: "expected a number >= 0" }).gte(0, { error: "expected a number >= 0" });
const seed = () => int(0);

/** The built-in class-structured image set (core/data/image_set.ts). */
const BuiltinImageSet = z.strictObject({
  kind: z.literal("builtin"),
  classes: int(1).default(10),
  trainPerClass: int(1).default(450),
  valPerClass: int(1).default(50),
  testPerClass: int(1).default(50),
  size: int(16).default(64),
  seed: seed().default(0),
});

/** A folder in the Tiny ImageNet layout (wnids.txt, train/, val/). */
const TinyImageNet = z.strictObject({
  kind: z.literal("tiny-imagenet"),
  path: z.string({ error: "expected the path of a tiny-imagenet-200 folder" }).min(1),
});

/** The simulated V1 population (core/data/simulated_v1.ts) shown pink-noise images. */
const SimulatedV1 = z.strictObject({
  kind: z.literal("simulated"),
  images: int(8).default(600),
  size: int(16).default(64),
  neurons: int(1).default(48),
  sessions: int(1).default(4),
  testImages: int(1).default(40),
  testRepeats: int(2).default(10),
  /** Median preferred spatial frequency (cycles/deg) and its limits (simulator defaults). */
  sfMedian: positive().optional(),
  sfRange: z.tuple([positive(), positive()]).optional(),
  seed: seed().default(0),
});

/** V1 arrays on disk (.npz in the layout of core/data/v1_arrays.ts; real recordings). */
const V1ArraysFile = z.strictObject({
  kind: z.literal("arrays"),
  path: z.string({ error: "expected the path of an .npz in the V1 array layout" }).min(1),
});

/** Classifier training settings; every classifier model inherits them and may override any. */
const TrainingFields = {
  width: positive().optional(),
  epochs: int(1).optional(),
  batchSize: int(1).optional(),
  neuralBatchSize: int(1).optional(),
  lr: positive().optional(),
  momentum: nonNegative().optional(),
  weightDecay: nonNegative().optional(),
  lrFactor: positive().optional(),
  patience: int(0).optional(),
  maxDrops: int(0).optional(),
  augment: z.boolean({ error: "expected true or false" }).optional(),
  headInitScale: positive().optional(),
};
const Training = z.strictObject(TrainingFields);

/** A batch ratio r:1 as a number (2 = 2:1, 0.2 = 1:5) or the string "a:b" with a or b = 1. */
const Ratio = z.union([
  positive(),
  z.string().regex(/^\d+:\d+$/, { error: 'expected a number > 0 or "a:b" such as "1:5"' }),
], { error: 'expected a number > 0 or "a:b" such as "1:5"' });

const modelCommon = {
  /** Display name in the results and the report (default: from the kind). */
  name: z.string().min(1).optional(),
  /** Training seeds of this model (default: the experiment's `seeds`). */
  seeds: z.array(seed()).min(1).optional(),
};

const MonkeyPredictor = z.strictObject({
  kind: z.literal("monkey-predictor"),
  name: z.string().min(1).optional(),
  width: positive().default(1),
  inputSize: int(16).default(64),
  batchSize: int(1).default(128),
  epochs: int(1).default(150),
  lr: positive().default(5e-4),
  seed: seed().default(0),
});

const Baseline = z.strictObject({ kind: z.literal("baseline"), ...modelCommon, ...TrainingFields });

const mtlFields = {
  ...modelCommon,
  ...TrainingFields,
  /** Neural batches per classification batch (default 1:1). */
  ratio: Ratio.optional(),
  /** A ratio sweep: one model per ratio (Fig. 3C). */
  ratios: z.array(Ratio).min(1).optional(),
  /** The monkey-predictor model whose predictions are the targets (default: the only one). */
  predictor: z.string().min(1).optional(),
};
const MtlMonkey = z.strictObject({ kind: z.literal("mtl-monkey"), ...mtlFields });
const MtlShuffled = z.strictObject({
  kind: z.literal("mtl-shuffled"),
  ...mtlFields,
  shuffleSeed: seed().default(0),
});
const Oracle = z.strictObject({
  kind: z.literal("oracle"),
  ...modelCommon,
  ...TrainingFields,
  /** Weight of the conv3_1 feature-consistency loss (stage 1). */
  lambda: nonNegative().default(1),
  /** Epochs of stage 2 (default: `epochs`). */
  stage2Epochs: int(1).optional(),
});
const MtlOracle = z.strictObject({
  kind: z.literal("mtl-oracle"),
  ...mtlFields,
  /** The oracle model whose conv3_1 predicts the targets (default: the only one). */
  oracle: z.string().min(1).optional(),
  /**
   * Epochs of the Gaussian readout fitted to the V1 data on the frozen Oracle's conv3_1 (SPEC.md
   * section 4: 10); the other predictor settings come from the monkey-predictor model.
   */
  readoutEpochs: int(1).default(10),
});

const Model = z.discriminatedUnion("kind", [
  MonkeyPredictor,
  Baseline,
  MtlMonkey,
  MtlShuffled,
  Oracle,
  MtlOracle,
], {
  error: "expected kind monkey-predictor, baseline, mtl-monkey, mtl-shuffled, oracle or mtl-oracle",
});

const CorruptionName = z.enum(CORRUPTIONS as unknown as [string, ...string[]], {
  error: `expected one of ${CORRUPTIONS.join(", ")}`,
});

const Evaluation = z.strictObject({
  /** The corruptions of the grid (default: the paper's 14). */
  corruptions: z.array(CorruptionName).min(1).default([...PAPER_14]),
  severities: z.array(int(1).lte(5, { error: "expected a severity 1..5" })).min(1)
    .default([1, 2, 3, 4, 5]),
  preset: z.enum(PRESET_NAMES, { error: `expected ${PRESET_NAMES.join(" or ")}` })
    .default("imagecorruptions"),
  /** Seed of the corruptions' randomness (a model's training seed is added). */
  seed: seed().default(0),
  /** Only the first `limit` test images (0 = all). */
  limit: int(0).default(0),
  batchSize: int(1).default(64),
  bootstrap: int(1).default(250),
  bootstrapSeed: seed().default(0),
  confidence: z.number().gt(0).lt(1, { error: "expected a number in (0, 1)" }).default(0.95),
  /** Corruptions shown in the accuracy-vs-severity figure (Fig. 2; default: the first four). */
  figureCorruptions: z.array(CorruptionName).optional(),
  /** Shards in flight per evaluator replica (default: the dispatcher's, 3 or COTRAIN_SHARDS_INFLIGHT). */
  concurrency: int(1).optional(),
});

/**
 * The analyses of issue 8 (norm-constrained reconstruction, Fig. 5, and the salient-norm ratio,
 * Fig. 7), run by the pipeline through the reconstructor and saliency-scorer (clients/ts/analyses.ts).
 */
const Analyses = z.strictObject({
  reconstruction: z.strictObject({
    /** Model names (display names) to reconstruct from. */
    models: z.array(z.string().min(1)).min(1).optional(),
    layer: z.string().default("conv3_1"),
    /** Norm budgets ||x||_2 <= r. */
    budgets: z.array(positive()).min(1).default([5, 15, 60]),
    steps: int(1).default(8000),
    images: int(1).default(4),
    /** Noise added to the target images (std in normalised units). */
    noise: nonNegative().default(0),
    spectralControl: z.boolean().default(true),
    /** Optimiser (default: SGD for MTL networks, Adam for Baseline and Oracle, as the paper). */
    optimizer: z.enum(["sgd", "adam"], { error: "expected sgd or adam" }).optional(),
    /** Learning rate (default: the reconstructor's, 5 for SGD and 0.01 for Adam). */
    lr: positive().optional(),
    seed: seed().default(0),
  }).optional(),
  saliency: z.strictObject({
    /** Model names (default: Baseline, the first MTL-Monkey, Oracle: Fig. 7's three). */
    models: z.array(z.string().min(1)).min(1).optional(),
    images: int(1).default(70),
    /** Cumulative density of the salient mask. */
    mass: z.number({ error: "expected a number in (0, 1)" })
      .gt(0, { error: "expected a number in (0, 1)" })
      .lt(1, { error: "expected a number in (0, 1)" }).default(0.7),
    /** Norm budget of the reconstructions scored (default: the smallest reconstruction budget, else 5). */
    budget: positive().optional(),
    /** Optimisation steps and layer (default: the reconstruction analysis', else 8000, conv3_1). */
    steps: int(1).optional(),
    layer: z.string().min(1).optional(),
    optimizer: z.enum(["sgd", "adam"], { error: "expected sgd or adam" }).optional(),
    seed: seed().default(0),
  }).optional(),
}).prefault({});

/** Where the services are (default: environment variables, then loopback default ports). */
const Services = z.strictObject({
  neuralPredictor: z.string().min(1).optional(),
  classifierTrainer: z.string().min(1).optional(),
  /** A list of host:port (one per replica) or one dns:///name:port target. */
  evaluator: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  reconstructor: z.string().min(1).optional(),
  saliencyScorer: z.string().min(1).optional(),
}).prefault({});

/** The experiment file's schema. */
export const ExperimentSchema = z.strictObject({
  name: z.string({ error: "expected a name (letters, digits, - and _)" })
    .regex(/^[A-Za-z0-9_-]+$/, { error: "expected a name (letters, digits, - and _)" }),
  description: z.string().optional(),
  imageSet: z.discriminatedUnion("kind", [BuiltinImageSet, TinyImageNet], {
    error: "expected kind builtin or tiny-imagenet",
  }),
  v1: z.discriminatedUnion("kind", [SimulatedV1, V1ArraysFile], {
    error: "expected kind simulated or arrays",
  }),
  /** Defaults of every classifier model. */
  training: Training.prefault({}),
  models: z.array(Model).min(1, { error: "expected at least one model" }),
  /** Training seeds (the paper: 5). */
  seeds: z.array(seed()).min(1).default([0]),
  evaluation: Evaluation.prefault({}),
  analyses: Analyses,
  services: Services,
  /** The run folder (default runs/<name>, relative to the current folder). */
  output: z.string().min(1).optional(),
});

/** A validated experiment (defaults filled in). */
export type Experiment = z.output<typeof ExperimentSchema>;
/** One model entry. */
export type ModelSpec = Experiment["models"][number];
/** Classifier training settings. */
export type TrainingSpec = z.output<typeof Training>;

/** An experiment file that does not validate: every problem, one per line, with its field. */
export class ExperimentError extends Error {
  constructor(readonly problems: string[], source = "experiment") {
    super(`${source}: invalid experiment\n  ${problems.join("\n  ")}`);
    this.name = "ExperimentError";
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(root)";
}

/** Display names of the model kinds (the paper's). */
export const KIND_NAMES: Record<ModelSpec["kind"], string> = {
  "monkey-predictor": "Monkey Predictor",
  baseline: "Baseline",
  "mtl-monkey": "MTL-Monkey",
  "mtl-shuffled": "MTL-Shuffled",
  oracle: "Oracle",
  "mtl-oracle": "MTL-Oracle",
};

/** Turns a ratio ("1:5", "2:1", 0.2, 2) into neural batches per classification batch. */
export function ratioValue(r: number | string): number {
  if (typeof r === "number") return r;
  const [a, b] = r.split(":").map(Number);
  return a / b;
}

/** The "a:b" label of a ratio. */
export function ratioLabel(r: number | string): string {
  const v = ratioValue(r);
  if (v >= 1) return `${+v.toFixed(3)}:1`;
  return `1:${+(1 / v).toFixed(3)}`;
}

function checkRatio(r: number | string): string | null {
  const v = ratioValue(r);
  if (!(v > 0) || !Number.isFinite(v)) return "expected a number > 0";
  const whole = (x: number) => Math.abs(x - Math.round(x)) < 1e-9;
  if (v >= 1 ? !whole(v) : !whole(1 / v)) {
    return `expected r:1 with r whole or 1:k with k whole (got ${ratioLabel(r)})`;
  }
  return null;
}

/** Cross-field checks zod's per-field schema cannot make. */
function crossChecks(exp: Experiment): string[] {
  const problems: string[] = [];
  const predictors = exp.models.map((m, i) => ({ m, i })).filter(({ m }) =>
    m.kind === "monkey-predictor"
  );
  const oracles = exp.models.filter((m) => m.kind === "oracle");
  const names = new Map<string, number>();
  exp.models.forEach((m, i) => {
    const base = m.name ?? KIND_NAMES[m.kind];
    const sweep = "ratios" in m && m.ratios ? m.ratios : null;
    const own = sweep ? sweep.map((r) => `${base} ${ratioLabel(r)}`) : [base];
    for (const name of new Set(own)) {
      if (names.has(name)) {
        problems.push(
          `models[${i}].name: ${JSON.stringify(name)} is used by models[${names.get(name)}] too`,
        );
      } else names.set(name, i);
    }
  });
  exp.models.forEach((m, i) => {
    if (m.kind === "mtl-monkey" || m.kind === "mtl-shuffled" || m.kind === "mtl-oracle") {
      if (m.ratio !== undefined && m.ratios !== undefined) {
        problems.push(`models[${i}].ratios: give ratio or ratios, not both`);
      }
      if (m.ratio !== undefined) {
        const p = checkRatio(m.ratio);
        if (p) problems.push(`models[${i}].ratio: ${p}`);
      }
      m.ratios?.forEach((r, j) => {
        const p = checkRatio(r);
        if (p) problems.push(`models[${i}].ratios[${j}]: ${p}`);
      });
    }
    if (m.kind === "mtl-monkey" || m.kind === "mtl-shuffled" || m.kind === "mtl-oracle") {
      if (m.predictor !== undefined) {
        if (!predictors.some(({ m: p }) => (p.name ?? KIND_NAMES[p.kind]) === m.predictor)) {
          problems.push(`models[${i}].predictor: no monkey-predictor named ${m.predictor}`);
        }
      } else if (predictors.length !== 1 && !(m.kind === "mtl-oracle" && predictors.length === 0)) {
        problems.push(
          `models[${i}].predictor: ${
            predictors.length === 0
              ? "MTL needs a monkey-predictor model in models"
              : "several monkey-predictor models: name the one to use"
          }`,
        );
      }
    }
    if (m.kind === "mtl-oracle") {
      if (
        m.oracle === undefined
          ? oracles.length !== 1
          : !oracles.some((o) => (o.name ?? KIND_NAMES[o.kind]) === m.oracle)
      ) {
        problems.push(`models[${i}].oracle: MTL-Oracle needs exactly one (named) oracle model`);
      }
      if (predictors.length === 0) {
        problems.push(`models[${i}]: MTL-Oracle needs a monkey-predictor model (the V1 data fit)`);
      }
    }
  });
  if (!exp.models.some((m) => m.kind === "baseline")) {
    problems.push("models: the Baseline is the reference of every score: add a baseline model");
  }
  const classifierNames = new Set(classifierRuns(exp).map((r) => r.name));
  for (const a of ["reconstruction", "saliency"] as const) {
    exp.analyses[a]?.models?.forEach((name, j) => {
      if (!classifierNames.has(name)) {
        problems.push(
          `analyses.${a}.models[${j}]: no classifier named ${name} (${
            [...classifierNames].join(", ")
          })`,
        );
      }
    });
  }
  for (const [j, c] of (exp.evaluation.figureCorruptions ?? []).entries()) {
    if (!exp.evaluation.corruptions.includes(c)) {
      problems.push(`evaluation.figureCorruptions[${j}]: ${c} is not in evaluation.corruptions`);
    }
  }
  return problems;
}

/**
 * Validates an experiment (already parsed JSON). Throws {@linkcode ExperimentError} listing every
 * problem with its field path.
 */
export function parseExperiment(value: unknown, source = "experiment"): Experiment {
  const r = ExperimentSchema.safeParse(value);
  if (!r.success) {
    throw new ExperimentError(
      r.error.issues.map((i) => `${fieldPath(i.path)}: ${i.message}`),
      source,
    );
  }
  const problems = crossChecks(r.data);
  if (problems.length) throw new ExperimentError(problems, source);
  return r.data;
}

/**
 * Reads and validates an experiment file; relative paths inside it become absolute (relative to
 * the file's folder).
 */
export async function loadExperiment(path: string): Promise<Experiment> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ExperimentError([`cannot read ${path}: ${(err as Error).message}`], path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ExperimentError([`not JSON: ${(err as Error).message}`], path);
  }
  const exp = parseExperiment(json, path);
  const dir = new URL(".", `file://${absolute(path)}`).pathname;
  const abs = (p: string) => p.startsWith("/") ? p : new URL(p, `file://${dir}`).pathname;
  if (exp.imageSet.kind === "tiny-imagenet") exp.imageSet.path = abs(exp.imageSet.path);
  if (exp.v1.kind === "arrays") exp.v1.path = abs(exp.v1.path);
  return exp;
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

/** One classifier to train: a model entry expanded over its ratios and seeds. */
export interface ClassifierRun {
  /** Display name shared by the seeds of one model (what Score groups by). */
  name: string;
  /** Index of the entry in `models`. */
  index: number;
  spec: Exclude<ModelSpec, { kind: "monkey-predictor" }>;
  seed: number;
  /** Neural batches per classification batch (MTL kinds). */
  ratio?: number;
  /** The ratio as "a:b". */
  ratioLabel?: string;
}

/** The classifiers an experiment trains: one per model entry, ratio and seed. */
export function classifierRuns(exp: Experiment): ClassifierRun[] {
  const runs: ClassifierRun[] = [];
  exp.models.forEach((m, index) => {
    if (m.kind === "monkey-predictor") return;
    const base = m.name ?? KIND_NAMES[m.kind];
    const seeds = m.seeds ?? exp.seeds;
    const ratios: (number | string | undefined)[] = "ratios" in m && m.ratios
      ? m.ratios
      : ["ratio" in m ? m.ratio : undefined];
    for (const r of ratios) {
      const label = r === undefined ? undefined : ratioLabel(r);
      const name = "ratios" in m && m.ratios ? `${base} ${label}` : base;
      for (const seed of seeds) {
        runs.push({
          name,
          index,
          spec: m,
          seed,
          ratio: r === undefined ? undefined : ratioValue(r),
          ratioLabel: label,
        });
      }
    }
  });
  return runs;
}
