/**
 * The orchestrator: `deno task pipeline <experiment.json>` runs an experiment file through the
 * services over gRPC, in dependency order:
 *
 * 1. data: the V1 data set (simulated, or an .npz of real recordings) and the classification
 *    training images go into the shared object store (content-addressed keys);
 * 2. neural-predictor `Train` (the Monkey Predictor), then `PredictDataset` on the training images:
 *    the co-training targets;
 * 3. classifier-trainer `Train` for every model x ratio x seed (Oracle: stage 1, then stage 2;
 *    MTL-Oracle after its Oracle: neural-predictor `Train` of a readout on the frozen Oracle's
 *    conv3_1 (`frozen_trunk_uri`), `PredictDataset` on the training images, then MTL training);
 *    every co-trained network's neural branch then goes through neural-predictor `Evaluate` on the
 *    V1 test split: its FEVe is the network's `fev` (Fig. 3C's x axis, `fev_measure`
 *    "feve_v1_test");
 * 4. evaluator `EvaluateShard` for every classifier x (clean + corruption x severity), spread over
 *    the evaluator replicas by `runShards`;
 * 5. evaluator `Score` (per model, and per trained network for the Fig. 3C regression);
 * 6. the declared analyses (clients/ts/analyses.ts): reconstructor `Reconstruct` and
 *    `SpectralControl` (Fig. 5), saliency-scorer `NormRatio` (Fig. 7);
 * 7. results (results.json, accuracy.npy, robustness.npy, fig5-<i>.png, fig7.png) and report.html
 *    in the run folder.
 *
 * Every step is idempotent in the services (results stored under the request's content key), so a
 * re-run of a finished experiment does no training or evaluation work: every step reports
 * `cached`. Progress bars go to stderr.
 *
 * ```sh
 * deno task pipeline experiments/smoke.json [--out runs/smoke] [--store file:///abs/dir]
 * ```
 * Service addresses: the experiment's `services`, else COTRAIN_NEURAL_PREDICTOR_ADDR,
 * COTRAIN_CLASSIFIER_TRAINER_ADDR, COTRAIN_EVALUATOR_ADDR (comma-separated replicas or a
 * dns:/// name), COTRAIN_RECONSTRUCTOR_ADDR, COTRAIN_SALIENCY_SCORER_ADDR, else the default
 * loopback ports 50051, 50052, 50054, 50055, 50056.
 * @module
 */
import cliProgress from "cli-progress";
import process from "node:process";
import { parseArgs } from "node:util";
import { pinkNoiseImages, simulateV1 } from "../../core/data/simulated_v1.ts";
import { encodeV1Arrays } from "../../core/data/v1_arrays.ts";
import { writeNpy } from "../../core/io/npy.ts";
import { CATEGORIES } from "../../core/metrics/robustness.ts";
import { type OlsFit, robustnessRegression } from "../../core/metrics/regression.ts";
import { requestKey } from "../../platform/jobs/jobs.ts";
import { RpcClient } from "../../platform/rpc/client.ts";
import { type ObjectStore, openStore, sha256Hex } from "../../platform/store/mod.ts";
import { storeCache } from "../../platform/store/cache.ts";
import { storeTensor, type TensorRefMsg } from "../../platform/tensor/tensor.ts";
import { loadDataset } from "../../core/data/datasets.ts";
import {
  type ClassifierRun,
  classifierRuns,
  type Experiment,
  ExperimentError,
  KIND_NAMES,
  loadExperiment,
  type ModelSpec,
} from "./experiment.ts";
import { runShards } from "./lib/shards.ts";
import {
  type EvaluateShardRequest,
  type EvaluateShardResponse,
  EVALUATOR_DEFAULT_PORT,
  EVALUATOR_PROTO,
  EVALUATOR_SERVICE,
  type ModelScoreMsg,
  type ScoreRequest,
  type ScoreResponse,
} from "./lib/shards_types.ts";
import { renderReport } from "./report/report.ts";
import {
  type AnalysesOutcome,
  analysisNetworks,
  RECONSTRUCTOR_DEFAULT_PORT,
  runAnalyses,
  SALIENCY_DEFAULT_PORT,
} from "./analyses.ts";
import { Buffer } from "node:buffer";

const NEURAL_PREDICTOR_PROTO = "cotrain/v1/neural_predictor.proto";
const NEURAL_PREDICTOR_SERVICE = "cotrain.v1.NeuralPredictor";
const CLASSIFIER_PROTO = "cotrain/v1/classifier_trainer.proto";
const CLASSIFIER_SERVICE = "cotrain.v1.ClassifierTrainer";

/** Where the services are. */
export interface ServiceTargets {
  neuralPredictor: string;
  classifierTrainer: string;
  /** host:port per replica, or one dns:/// target. */
  evaluator: string | string[];
  /** The analysis services (needed only when the experiment declares analyses). */
  reconstructor?: string;
  saliencyScorer?: string;
}

/** One step the pipeline ran, and whether the store already held its result. */
export interface StepRecord {
  /** "data", "predictor", "targets", "train", "neural", "shards", "score", "analysis". */
  kind: string;
  /** What it was, e.g. "train Baseline seed 0". */
  name: string;
  /** The result came from the store: no work was done. */
  cached: boolean;
  /** Skipped: this pipeline cannot run it yet (the note says why). */
  skipped?: boolean;
  seconds: number;
  note?: string;
}

/** One trained classifier in the results. */
export interface ClassifierResult {
  name: string;
  kind: ModelSpec["kind"];
  seed: number;
  ratio?: number;
  ratioLabel?: string;
  model_id: string;
  checkpoint_uri: string;
  epochs: number;
  best_val_accuracy: number;
  test_accuracy: number;
  /**
   * Neural predictivity of a co-trained network (mtl-monkey, mtl-shuffled, mtl-oracle): FEVe
   * (SPEC.md section 5) of its own neural branch (shared trunk to conv3_1 + its Gaussian readout,
   * eval mode) on the test split of the experiment's V1 data set, from neural-predictor
   * `Evaluate`; NaN for the other kinds.
   */
  fev: number;
  /** What `fev` measures: "feve_v1_test" for co-trained networks, absent for the others. */
  fev_measure?: typeof FEV_MEASURE;
  /** The neural branch's other test metrics (correlations, images), with `fev`. */
  neural_test?: NeuralTestMetrics;
  shard_keys: string[];
}

/** The measure behind every classifier's `fev` (and Fig. 3C's x axis). */
export const FEV_MEASURE = "feve_v1_test";

/** neural-predictor Evaluate's metrics of a co-trained network on the V1 test split. */
export interface NeuralTestMetrics {
  images: number;
  feve: number;
  single_trial_correlation: number;
  correlation_to_average: number;
  /** The data's explainable variance fraction (the same for every network). */
  fev_of_data: number;
  /** Side of the model inputs the V1 test images were resized to (the image set's). */
  input_size: number;
}

/** What results.json holds. */
export interface PipelineResults {
  experiment: Experiment;
  created: string;
  steps: StepRecord[];
  predictors: {
    name: string;
    checkpoint_uri: string;
    epochs: number;
    best_val_correlation: number;
    test: Record<string, unknown>;
    targets_uri: string;
  }[];
  classifiers: ClassifierResult[];
  /** What the classifiers' `fev` is: FEVe of each network's neural branch on the V1 test split. */
  fev_measure: typeof FEV_MEASURE;
  /** Score over the model names (seeds pooled). */
  scores: ScoreResponse | null;
  /** Score per trained network (one point each in Fig. 3C). */
  runScores: ScoreResponse | null;
  /** Fig. 3C regressions (robustness ~ clean accuracy + FEV) per MTL kind with enough models. */
  regressions: { group: string; fit: Omit<OlsFit, "residuals" | "fitted"> | null; note: string }[];
  /** The analyses' outcomes (Fig. 5 and Fig. 7), when the experiment declares them. */
  analyses?: AnalysesOutcome;
  /** Analyses configured in the experiment that this pipeline did not run (none since issue 8). */
  pendingAnalyses: string[];
}

/** Options of {@linkcode runPipeline}. */
export interface PipelineOptions {
  /** The run folder (results, report). */
  outDir: string;
  /** The object store every service uses (a URL, or an open store). */
  store: string | ObjectStore;
  targets: ServiceTargets;
  /** Progress bars on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** One line per finished step (default: none). */
  log?: (line: string) => void;
}

/** The outcome of a run. */
export interface PipelineOutcome {
  results: PipelineResults;
  reportPath: string;
  resultsPath: string;
  /** Every step came from the store. */
  allCached: boolean;
}

/** The `dataset_uri` the classifier-trainer and evaluator take for the experiment's image set. */
export function datasetUri(exp: Experiment): string {
  const s = exp.imageSet;
  if (s.kind === "tiny-imagenet") return `file://${s.path}`;
  return `builtin:image-set?classes=${s.classes}&train_per_class=${s.trainPerClass}` +
    `&val_per_class=${s.valPerClass}&test_per_class=${s.testPerClass}&size=${s.size}` +
    `&seed=${s.seed}`;
}

/** Service targets: the experiment's, else the environment's, else the default ports. */
export function resolveTargets(
  exp: Experiment,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ServiceTargets {
  const ev = exp.services.evaluator ?? env.COTRAIN_EVALUATOR_ADDR ??
    `127.0.0.1:${EVALUATOR_DEFAULT_PORT}`;
  return {
    neuralPredictor: exp.services.neuralPredictor ?? env.COTRAIN_NEURAL_PREDICTOR_ADDR ??
      "127.0.0.1:50051",
    classifierTrainer: exp.services.classifierTrainer ?? env.COTRAIN_CLASSIFIER_TRAINER_ADDR ??
      "127.0.0.1:50052",
    evaluator: typeof ev === "string" && !ev.includes(":///") && ev.includes(",")
      ? ev.split(",").map((s) => s.trim())
      : ev,
    reconstructor: exp.services.reconstructor ?? env.COTRAIN_RECONSTRUCTOR_ADDR ??
      `127.0.0.1:${RECONSTRUCTOR_DEFAULT_PORT}`,
    saliencyScorer: exp.services.saliencyScorer ?? env.COTRAIN_SALIENCY_SCORER_ADDR ??
      `127.0.0.1:${SALIENCY_DEFAULT_PORT}`,
  };
}

// ---------------------------------------------------------------------------------------------
// progress

interface Bars {
  start(name: string, total: number, unit: string): { update(v: number): void; stop(): void };
  stop(): void;
}

function makeBars(enabled: boolean): Bars {
  if (!enabled) {
    return { start: () => ({ update() {}, stop() {} }), stop() {} };
  }
  const multi = new cliProgress.MultiBar({
    format: "{name} |{bar}| {value}/{total} {unit} | {duration_formatted}",
    stream: process.stderr, // a node stream: cli-progress writes strings
    hideCursor: true,
    clearOnComplete: false,
    barsize: 24,
  }, cliProgress.Presets.shades_classic);
  return {
    start(name, total, unit) {
      const bar = multi.create(Math.max(1, total), 0, { name: name.padEnd(34).slice(0, 34), unit });
      return {
        update: (v) => bar.update(Math.min(v, Math.max(1, total))),
        stop: () => bar.stop(),
      };
    },
    stop: () => multi.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// the pipeline

// deno-lint-ignore no-explicit-any
type Msg = any;

/** Runs an experiment end to end; see the module doc. */
export async function runPipeline(
  exp: Experiment,
  options: PipelineOptions,
): Promise<PipelineOutcome> {
  const store = typeof options.store === "string" ? openStore(options.store) : options.store;
  await Deno.mkdir(options.outDir, { recursive: true });
  const log = options.log ?? (() => {});
  const bars = makeBars(options.progress ?? Deno.stderr.isTerminal());
  const steps: StepRecord[] = [];
  const step = async <T>(
    kind: string,
    name: string,
    fn: () => Promise<{ value: T; cached: boolean; note?: string }>,
  ): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    const rec: StepRecord = {
      kind,
      name,
      cached: r.cached,
      seconds: +((performance.now() - t0) / 1000).toFixed(3),
      ...(r.note ? { note: r.note } : {}),
    };
    steps.push(rec);
    log(`${r.cached ? "cached " : "done   "} ${name} (${rec.seconds.toFixed(1)} s)`);
    return r.value;
  };

  const np = new RpcClient({
    protoFiles: [NEURAL_PREDICTOR_PROTO],
    service: NEURAL_PREDICTOR_SERVICE,
    target: options.targets.neuralPredictor,
  });
  const ct = new RpcClient({
    protoFiles: [CLASSIFIER_PROTO],
    service: CLASSIFIER_SERVICE,
    target: options.targets.classifierTrainer,
  });
  const ev = new RpcClient({
    protoFiles: [EVALUATOR_PROTO],
    service: EVALUATOR_SERVICE,
    target: options.targets.evaluator,
    // a replica may be restarting (a Kubernetes pod, or the demo's supervisor): wait up to ~50 s
    retries: 8,
    backoffMs: 200,
  });
  try {
    const dsUri = datasetUri(exp);
    const runs = classifierRuns(exp);
    const needsTargets = exp.models.some((m) =>
      m.kind === "mtl-monkey" || m.kind === "mtl-shuffled" || m.kind === "mtl-oracle"
    );

    // 1. data ---------------------------------------------------------------------------------
    const v1Uri = await step("data", "V1 data", () => putV1(exp, store));
    const trainImages = needsTargets
      ? await step("data", "classification training images", () => putTrainImages(dsUri, store))
      : null;

    // 2. Monkey Predictor(s) and their predictions on the training images ----------------------
    const predictors: PipelineResults["predictors"] = [];
    const targetsOf = new Map<string, TensorRefMsg>();
    for (const m of exp.models) {
      if (m.kind !== "monkey-predictor") continue;
      const name = m.name ?? KIND_NAMES[m.kind];
      const options = {
        width: m.width,
        input_size: m.inputSize,
        batch_size: m.batchSize,
        max_epochs: m.epochs,
        lr: m.lr,
        seed: m.seed,
      };
      const res = await step(
        "predictor",
        `train ${name}`,
        () =>
          trainPredictor(np, bars, `train ${name}`, m.epochs, name, {
            dataset_uri: v1Uri,
            options,
          }),
      );
      let targetsUri = "";
      if (trainImages) {
        const pd = await step("targets", `${name} predicts the training images`, async () => {
          const r = await np.unary<Msg>("PredictDataset", {
            checkpoint_uri: res.checkpoint.uri,
            images: trainImages,
            engine: "PREDICT_ENGINE_ONNXRUNTIME",
          }, { deadlineMs: 0 });
          return { value: r, cached: Boolean(r.cached) };
        });
        targetsOf.set(name, pd.responses);
        targetsUri = pd.responses.uri;
      }
      predictors.push({
        name,
        checkpoint_uri: res.checkpoint.uri,
        epochs: res.epochs,
        best_val_correlation: res.best_val_correlation,
        test: res.test,
        targets_uri: targetsUri,
      });
    }
    // The MTL-Oracle targets of one Oracle network (one readout fit per Oracle checkpoint).
    const oracleTargetsOf = new Map<string, TensorRefMsg>();
    const oracleTargets = async (
      oracle: ClassifierResult,
      spec: Extract<ModelSpec, { kind: "mtl-oracle" }>,
    ): Promise<TensorRefMsg> => {
      const pName = predictorName(exp, spec);
      const p = exp.models.find((m) =>
        m.kind === "monkey-predictor" && (m.name ?? KIND_NAMES[m.kind]) === pName
      ) as Extract<ModelSpec, { kind: "monkey-predictor" }>;
      const options = {
        width: 0, // the Oracle's
        input_size: p.inputSize,
        batch_size: p.batchSize,
        max_epochs: spec.readoutEpochs,
        lr: p.lr,
        seed: p.seed,
      };
      const cacheKey = `${oracle.checkpoint_uri} ${JSON.stringify(options)}`;
      const known = oracleTargetsOf.get(cacheKey);
      if (known) return known;
      const name = `${runLabel(oracle)} readout`;
      const res = await step(
        "predictor",
        `fit ${name} (frozen conv3_1)`,
        () =>
          trainPredictor(np, bars, `fit ${name}`, options.max_epochs, name, {
            dataset_uri: v1Uri,
            options,
            frozen_trunk_uri: oracle.checkpoint_uri,
          }),
      );
      const pd = await step("targets", `${name} predicts the training images`, async () => {
        const r = await np.unary<Msg>("PredictDataset", {
          checkpoint_uri: res.checkpoint.uri,
          images: trainImages,
          engine: "PREDICT_ENGINE_ONNXRUNTIME",
        }, { deadlineMs: 0 });
        return { value: r, cached: Boolean(r.cached) };
      });
      const ref = pd.responses as TensorRefMsg;
      oracleTargetsOf.set(cacheKey, ref);
      predictors.push({
        name,
        checkpoint_uri: res.checkpoint.uri,
        epochs: res.epochs,
        best_val_correlation: res.best_val_correlation,
        test: res.test,
        targets_uri: ref.uri,
      });
      return ref;
    };

    // 3. classifiers ----------------------------------------------------------------------------
    const classifiers: ClassifierResult[] = [];
    const oracleStage1 = new Map<string, string>(); // `${index}/${seed}` -> stage-1 model_id
    // MTL-Oracle's targets come from a trained Oracle: those runs go after every other one
    const ordered = [
      ...runs.filter((r) => r.spec.kind !== "mtl-oracle"),
      ...runs.filter((r) => r.spec.kind === "mtl-oracle"),
    ];
    for (const run of ordered) {
      const label = `${run.name} seed ${run.seed}`;
      let targets = targetsOf;
      if (run.spec.kind === "mtl-oracle") {
        // SPEC.md section 4: a Gaussian readout fitted to the V1 data on the frozen Oracle's
        // conv3_1, then its predictions on the training images are the neural targets
        const oracle = oracleFor(exp, run, classifiers);
        const ref = await oracleTargets(oracle, run.spec);
        targets = new Map([[predictorName(exp, run.spec), ref]]);
      }
      const req = trainRequest(exp, run, dsUri, targets);
      let trainReq = req;
      if (run.spec.kind === "oracle") {
        const stage1 = await trainStep(ct, bars, step, `train ${label} stage 1`, req);
        oracleStage1.set(`${run.index}/${run.seed}`, stage1.model_id);
        trainReq = {
          ...req,
          model: "oracle-stage2",
          init_model_id: stage1.model_id,
          max_epochs: run.spec.stage2Epochs ?? req.max_epochs,
        };
        delete trainReq.oracle_lambda;
      }
      const r = await trainStep(
        ct,
        bars,
        step,
        `train ${label}${run.spec.kind === "oracle" ? " stage 2" : ""}`,
        trainReq,
      );
      // Fig. 3C's x axis: FEVe of the network's own neural branch on the V1 test split
      const neural = isCoTrained(run.spec.kind)
        ? await step(
          "neural",
          `FEVe of ${label} on the V1 test split`,
          () =>
            cachedNeuralEvaluation(np, store, {
              checkpoint_uri: r.checkpoint.uri,
              dataset_uri: v1Uri,
              input_size: imageSide(exp),
            }, r.checkpoint.sha256),
        )
        : null;
      classifiers.push({
        name: run.name,
        kind: run.spec.kind,
        seed: run.seed,
        ...(run.ratio !== undefined ? { ratio: run.ratio, ratioLabel: run.ratioLabel } : {}),
        model_id: r.model_id,
        checkpoint_uri: r.checkpoint.uri,
        epochs: r.epochs,
        best_val_accuracy: r.best_val_accuracy,
        test_accuracy: r.test_accuracy,
        fev: neural ? neural.feve : NaN,
        ...(neural ? { fev_measure: FEV_MEASURE, neural_test: neural } : {}),
        shard_keys: [],
      });
    }

    // 4. evaluation shards ----------------------------------------------------------------------
    const e = exp.evaluation;
    const shards: EvaluateShardRequest[] = [];
    const owner: number[] = [];
    classifiers.forEach((c, i) => {
      const common = {
        model_id: c.model_id,
        dataset_uri: dsUri,
        seed: e.seed + c.seed,
        preset: e.preset,
        limit: e.limit,
        batch_size: e.batchSize,
      };
      shards.push({ ...common, corruption: "clean", severity: 0 });
      owner.push(i);
      for (const corruption of e.corruptions) {
        for (const severity of e.severities) {
          shards.push({ ...common, corruption, severity });
          owner.push(i);
        }
      }
    });
    const evalTargets = options.targets.evaluator;
    const shardResults = await step("shards", `evaluate ${shards.length} shards`, async () => {
      const bar = bars.start("evaluate shards", shards.length, "shards");
      let res: EvaluateShardResponse[];
      try {
        res = await runShards(evalTargets, shards, {
          concurrency: e.concurrency,
          onProgress: (done) => bar.update(done),
        });
      } finally {
        bar.stop();
      }
      const computed = res.filter((r) => r.state !== "JOB_STATE_CACHED").length;
      return {
        value: res,
        cached: computed === 0,
        note: `${computed} computed, ${res.length - computed} from the store`,
      };
    });
    shardResults.forEach((r, j) => classifiers[owner[j]].shard_keys.push(r.key));

    // 5. scores -----------------------------------------------------------------------------
    const baselineName = runs.find((r) => r.spec.kind === "baseline")!.name;
    const names = [...new Set(classifiers.map((c) => c.name))];
    const common = {
      baseline: baselineName,
      corruptions: e.corruptions,
      bootstrap: e.bootstrap,
      bootstrap_seed: e.bootstrapSeed,
      confidence: e.confidence,
    };
    const scoreReq: ScoreRequest = {
      ...common,
      models: names.map((name) => {
        const cs = classifiers.filter((c) => c.name === name);
        const fevs = cs.map((c) => c.fev).filter(Number.isFinite);
        return {
          name,
          shard_keys: cs.flatMap((c) => c.shard_keys),
          ...(fevs.length ? { fev: fevs.reduce((a, b) => a + b, 0) / fevs.length } : {}),
        };
      }),
    };
    const scores = await step("score", "score models", () => cachedScore(ev, store, scoreReq));
    // one point per trained network for Fig. 3C, against the pooled Baseline
    const perRun = classifiers.filter((c) => c.kind !== "baseline");
    let runScores: ScoreResponse | null = null;
    if (perRun.length) {
      const runReq: ScoreRequest = {
        ...common,
        models: [
          scoreReq.models.find((m) => m.name === baselineName)!,
          ...perRun.map((c) => ({
            name: runLabel(c),
            shard_keys: c.shard_keys,
            ...(Number.isFinite(c.fev) ? { fev: c.fev } : {}),
          })),
        ],
      };
      runScores = await step("score", "score each network", () => cachedScore(ev, store, runReq));
    }
    const regressions = fig3cRegressions(classifiers, runScores);

    // 6. analyses (issue 8): reconstructions (Fig. 5) and salient-norm ratios (Fig. 7) ---------
    const analyses = await runAnalyses({
      exp,
      dsUri,
      store,
      networks: analysisNetworks(classifiers),
      targets: {
        reconstructor: options.targets.reconstructor ?? `127.0.0.1:${RECONSTRUCTOR_DEFAULT_PORT}`,
        saliencyScorer: options.targets.saliencyScorer ?? `127.0.0.1:${SALIENCY_DEFAULT_PORT}`,
      },
      step,
      bar: (name, total, unit) => bars.start(name, total, unit),
    });
    const pendingAnalyses: string[] = [];

    // 7. results and report ------------------------------------------------------------------
    const results: PipelineResults = {
      experiment: exp,
      created: new Date().toISOString(),
      steps,
      predictors,
      classifiers,
      fev_measure: FEV_MEASURE,
      scores,
      runScores,
      regressions,
      analyses,
      pendingAnalyses,
    };
    const resultsPath = `${options.outDir}/results.json`;
    await Deno.writeTextFile(resultsPath, JSON.stringify(results, nanToNull, 2) + "\n");
    await writeArrays(options.outDir, results);
    await writeFigurePngs(options.outDir, analyses);
    const reportPath = `${options.outDir}/report.html`;
    await Deno.writeTextFile(reportPath, await renderReport(results));
    bars.stop();
    return {
      results,
      reportPath,
      resultsPath,
      allCached: steps.every((s) => s.cached),
    };
  } finally {
    bars.stop();
    np.close();
    ct.close();
    ev.close();
  }
}

function nanToNull(_k: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? null : v;
}

/** The label of one trained network ("MTL-Monkey 1:5 #0"). */
export function runLabel(c: { name: string; seed: number }): string {
  return `${c.name} #${c.seed}`;
}

function predictorName(exp: Experiment, spec: ModelSpec): string {
  if ("predictor" in spec && spec.predictor) return spec.predictor;
  const p = exp.models.find((m) => m.kind === "monkey-predictor")!;
  return p.name ?? KIND_NAMES[p.kind];
}

/** The trained Oracle network whose conv3_1 gives an MTL-Oracle run its targets (same seed). */
function oracleFor(
  exp: Experiment,
  run: ClassifierRun,
  trained: ClassifierResult[],
): ClassifierResult {
  const spec = run.spec as Extract<ModelSpec, { kind: "mtl-oracle" }>;
  const o = exp.models.find((m) =>
    m.kind === "oracle" &&
    (spec.oracle === undefined || (m.name ?? KIND_NAMES[m.kind]) === spec.oracle)
  )!;
  const name = o.name ?? KIND_NAMES[o.kind];
  const same = trained.filter((c) => c.kind === "oracle" && c.name === name);
  const pick = same.find((c) => c.seed === run.seed) ?? same[0];
  if (!pick) throw new Error(`${run.name}: the Oracle ${name} was not trained`);
  return pick;
}

/**
 * A neural-predictor Train stream with an epochs bar labelled `label`: its result, and whether
 * the store already held it.
 */
async function trainPredictor(
  np: RpcClient,
  bars: Bars,
  label: string,
  epochs: number,
  name: string,
  req: Record<string, unknown>,
): Promise<{ value: Msg; cached: boolean }> {
  const bar = bars.start(label, epochs, "epochs");
  let result: Msg = null;
  try {
    for await (const e of np.stream<Msg>("Train", req)) {
      if (e.progress) bar.update(e.progress.epoch);
      if (e.result) result = e.result;
    }
  } finally {
    bar.stop();
  }
  if (!result) throw new Error(`${name}: Train ended without a result`);
  return { value: result, cached: result.state === "JOB_STATE_CACHED" };
}
/** The classifier-trainer request of one run. */
function trainRequest(
  exp: Experiment,
  run: ClassifierRun,
  dsUri: string,
  targets: Map<string, TensorRefMsg>,
): Record<string, unknown> {
  const t = { ...exp.training, ...stripUndefined(run.spec as Record<string, unknown>) } as Record<
    string,
    unknown
  >;
  const req: Record<string, unknown> = {
    dataset_uri: dsUri,
    model: run.spec.kind === "oracle" ? "oracle" : run.spec.kind,
    seed: run.seed,
    progress_every: 5,
  };
  const map: [string, string][] = [
    ["width", "width"],
    ["epochs", "max_epochs"],
    ["batchSize", "batch_size"],
    ["neuralBatchSize", "neural_batch_size"],
    ["lr", "lr"],
    ["momentum", "momentum"],
    ["weightDecay", "weight_decay"],
    ["lrFactor", "lr_factor"],
    ["patience", "patience"],
    ["maxDrops", "max_drops"],
    ["augment", "augment"],
    ["headInitScale", "head_init_scale"],
  ];
  for (const [from, to] of map) if (t[from] !== undefined) req[to] = t[from];
  if (run.spec.kind === "oracle") req.oracle_lambda = run.spec.lambda;
  if (run.spec.kind.startsWith("mtl")) {
    req.neural_targets = { ref: targets.get(predictorName(exp, run.spec)) };
    if (run.ratio !== undefined) req.neural_ratio = run.ratio;
    if (run.spec.kind === "mtl-shuffled") req.shuffle_seed = run.spec.shuffleSeed;
  }
  return req;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

async function trainStep(
  ct: RpcClient,
  bars: Bars,
  step: <T>(
    kind: string,
    name: string,
    fn: () => Promise<{ value: T; cached: boolean }>,
  ) => Promise<T>,
  name: string,
  req: Record<string, unknown>,
): Promise<Msg> {
  return await step("train", name, async () => {
    const maxEpochs = Number(req.max_epochs ?? 400);
    let bar: ReturnType<Bars["start"]> | null = null;
    let result: Msg = null;
    try {
      for await (const e of ct.stream<Msg>("Train", req)) {
        if (e.progress) {
          const p = e.progress;
          const per = Math.max(1, p.steps_per_epoch);
          bar ??= bars.start(name, maxEpochs * per, "steps");
          bar.update((p.epoch - 1) * per + (p.stage === "validate" ? per : p.step));
        }
        if (e.result) result = e.result;
      }
    } finally {
      bar?.stop();
    }
    if (!result) throw new Error(`${name}: Train ended without a result`);
    return { value: result, cached: result.state === "JOB_STATE_CACHED" };
  });
}

/** Score, with its response kept in the store under the request's content key. */
async function cachedScore(
  ev: RpcClient,
  store: ObjectStore,
  req: ScoreRequest,
): Promise<{ value: ScoreResponse; cached: boolean }> {
  const key = `pipeline/score/${await requestKey(req)}.json`;
  if (await store.stat(key)) {
    return { value: JSON.parse(new TextDecoder().decode(await store.get(key))), cached: true };
  }
  const res = await ev.unary<ScoreResponse>("Score", req, { deadlineMs: 0 });
  await store.put(key, new TextEncoder().encode(JSON.stringify(res)));
  return { value: res, cached: false };
}

/** Mean over neurons of the variance of the targets across images. */
/** The kinds that train a neural branch (their `fev` is measured). */
function isCoTrained(kind: ModelSpec["kind"]): boolean {
  return kind === "mtl-monkey" || kind === "mtl-shuffled" || kind === "mtl-oracle";
}

/** Side of the classification images (what a co-trained network's readout learned on). */
export function imageSide(exp: Experiment): number {
  return exp.imageSet.kind === "builtin" ? exp.imageSet.size : 64; // Tiny ImageNet: 64 x 64
}

/**
 * neural-predictor `Evaluate` of a co-trained network's checkpoint on the V1 data set's test split,
 * stored under the request's content key (with the checkpoint's sha256): a re-run asks nothing.
 */
async function cachedNeuralEvaluation(
  np: RpcClient,
  store: ObjectStore,
  req: { checkpoint_uri: string; dataset_uri: string; input_size: number },
  checkpointSha: string,
): Promise<{ value: NeuralTestMetrics; cached: boolean }> {
  const key = `pipeline/feve/${await requestKey({ ...req, checkpointSha })}.json`;
  if (await store.stat(key)) {
    return { value: JSON.parse(new TextDecoder().decode(await store.get(key))), cached: true };
  }
  const res = await np.unary<Msg>("Evaluate", req, { deadlineMs: 0 });
  const m = res.metrics;
  const value: NeuralTestMetrics = {
    images: m.images,
    feve: m.feve,
    single_trial_correlation: m.single_trial_correlation,
    correlation_to_average: m.correlation_to_average,
    fev_of_data: m.fev,
    input_size: res.input_size,
  };
  await store.put(key, new TextEncoder().encode(JSON.stringify(value)));
  return { value, cached: false };
}

async function putV1(
  exp: Experiment,
  store: ObjectStore,
): Promise<{ value: string; cached: boolean }> {
  const v = exp.v1;
  let bytes: Uint8Array | null = null;
  let key: string;
  if (v.kind === "simulated") {
    key = `pipeline/data/v1-simulated-${(await requestKey(v)).slice(0, 24)}.npz`;
  } else {
    try {
      bytes = await Deno.readFile(v.path);
    } catch (err) {
      throw new ExperimentError([`v1.path: cannot read ${v.path}: ${(err as Error).message}`]);
    }
    key = `pipeline/data/v1-${(await sha256Hex(bytes)).slice(0, 24)}.npz`;
  }
  if (await store.stat(key)) return { value: store.uri(key), cached: true };
  if (!bytes && v.kind === "simulated") {
    const sim = simulateV1(pinkNoiseImages(v.images, v.size, v.seed), {
      neurons: v.neurons,
      sessions: v.sessions,
      testImages: v.testImages,
      testRepeats: v.testRepeats,
      seed: v.seed,
      ...(v.sfMedian !== undefined ? { sfMedian: v.sfMedian } : {}),
      ...(v.sfRange !== undefined ? { sfRange: v.sfRange } : {}),
    });
    bytes = encodeV1Arrays(sim.arrays);
  }
  await store.put(key, bytes!, { contentType: "application/octet-stream" });
  return { value: store.uri(key), cached: false };
}

async function putTrainImages(
  dsUri: string,
  store: ObjectStore,
): Promise<{ value: TensorRefMsg; cached: boolean }> {
  const key = `pipeline/data/train-images-${(await requestKey({ dsUri })).slice(0, 24)}`;
  if (await store.stat(`${key}.json`)) {
    const ref = JSON.parse(new TextDecoder().decode(await store.get(`${key}.json`)));
    if (await store.stat(`${key}.bin`)) return { value: ref, cached: true };
  }
  const ds = await loadDataset(dsUri, storeCache(store));
  const t = ds.train.images;
  const ref = await storeTensor(
    { dtype: "uint8", shape: [...t.shape], data: t.data as Uint8Array },
    store,
    `${key}.bin`,
  );
  await store.put(`${key}.json`, new TextEncoder().encode(JSON.stringify(ref)));
  return { value: ref, cached: false };
}

/** Fig. 3C: robustness ~ clean accuracy + FEV over the networks of each MTL kind. */
function fig3cRegressions(
  classifiers: ClassifierResult[],
  runScores: ScoreResponse | null,
): PipelineResults["regressions"] {
  const out: PipelineResults["regressions"] = [];
  if (!runScores) return out;
  const byName = new Map(runScores.models.map((m) => [m.name, m]));
  for (const kind of ["mtl-monkey", "mtl-shuffled"] as const) {
    const seen = new Set<string>(); // a network listed under two names counts once
    const pts = classifiers.filter((c) =>
      c.kind === kind && Number.isFinite(c.fev) && !seen.has(c.model_id) && seen.add(c.model_id)
    ).map((c) => {
      const s = byName.get(runLabel(c)) as ModelScoreMsg;
      return {
        robustness: s.robustness_total.value,
        cleanAccuracy: s.clean_accuracy.value,
        fev: c.fev,
      };
    });
    if (pts.length === 0) continue;
    const group = KIND_NAMES[kind];
    if (pts.length < 4) {
      out.push({ group, fit: null, note: `${pts.length} networks; the regression needs >= 4` });
      continue;
    }
    try {
      const { residuals: _r, fitted: _f, ...fit } = robustnessRegression(pts);
      out.push({ group, fit, note: `${pts.length} networks` });
    } catch (err) {
      out.push({ group, fit: null, note: (err as Error).message });
    }
  }
  return out;
}

/** Fig. 5 (fig5-<i>.png, one per image) and Fig. 7 (fig7.png) next to report.html. */
async function writeFigurePngs(dir: string, a: AnalysesOutcome): Promise<void> {
  const b64 = (s: string) => Uint8Array.from(Buffer.from(s, "base64"));
  for (const [i, png] of (a.reconstruction?.figures ?? []).entries()) {
    await Deno.writeFile(`${dir}/fig5-${i}.png`, b64(png));
  }
  if (a.saliency?.figure) await Deno.writeFile(`${dir}/fig7.png`, b64(a.saliency.figure));
}

/** Writes accuracy.npy [models, corruptions, severities] and robustness.npy [models, groups, 3]. */
async function writeArrays(dir: string, r: PipelineResults): Promise<void> {
  if (!r.scores) return;
  const { corruptions, models } = r.scores;
  const sev = r.experiment.evaluation.severities;
  const acc = new Float32Array(models.length * corruptions.length * sev.length).fill(NaN);
  models.forEach((m, i) => {
    for (const a of m.accuracy) {
      const c = corruptions.indexOf(a.corruption), s = sev.indexOf(a.severity);
      if (c >= 0 && s >= 0) acc[(i * corruptions.length + c) * sev.length + s] = a.accuracy;
    }
  });
  await Deno.writeFile(
    `${dir}/accuracy.npy`,
    writeNpy({
      dtype: "float32",
      shape: [models.length, corruptions.length, sev.length],
      data: acc,
    }),
  );
  const groups = [...Object.keys(CATEGORIES), "total"];
  const rob = new Float32Array(models.length * groups.length * 3).fill(NaN);
  models.forEach((m, i) => {
    groups.forEach((g, j) => {
      const est = g === "total" ? m.robustness_total : m.robustness[g];
      if (!est) return;
      rob.set([est.value, est.lo, est.hi], (i * groups.length + j) * 3);
    });
  });
  await Deno.writeFile(
    `${dir}/robustness.npy`,
    writeNpy({ dtype: "float32", shape: [models.length, groups.length, 3], data: rob }),
  );
  await Deno.writeTextFile(
    `${dir}/arrays.json`,
    JSON.stringify(
      {
        "accuracy.npy": {
          axes: ["model", "corruption", "severity"],
          model: models.map((m) => m.name),
          corruption: corruptions,
          severity: sev,
        },
        "robustness.npy": {
          axes: ["model", "group", "value_lo_hi"],
          model: models.map((m) => m.name),
          group: groups,
        },
      },
      null,
      2,
    ) + "\n",
  );
}

// ---------------------------------------------------------------------------------------------
// CLI

/** `deno task pipeline <experiment.json> [--out DIR] [--store URL] [--no-progress]`. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        store: { type: "string" },
        "no-progress": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    console.error(`pipeline: ${(err as Error).message}`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length !== 1) {
    console.error(
      "usage: deno task pipeline <experiment.json> [--out DIR] [--store file:///abs|s3://b/p] " +
        "[--no-progress]",
    );
    return parsed.values.help ? 0 : 2;
  }
  let exp: Experiment;
  try {
    exp = await loadExperiment(parsed.positionals[0]);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const outDir = parsed.values.out ?? exp.output ?? `runs/${exp.name}`;
  const store = parsed.values.store ?? Deno.env.get("COTRAIN_STORE") ??
    `file://${Deno.cwd()}/runs/store`;
  try {
    const t0 = performance.now();
    const out = await runPipeline(exp, {
      outDir,
      store,
      targets: resolveTargets(exp),
      progress: !parsed.values["no-progress"],
      log: (l) => console.error(l),
    });
    const cached = out.results.steps.filter((s) => s.cached).length;
    console.error(
      `pipeline: ${out.results.steps.length} steps (${cached} from the store) in ` +
        `${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    console.log(out.reportPath);
    return 0;
  } catch (err) {
    console.error(`pipeline: ${(err as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
