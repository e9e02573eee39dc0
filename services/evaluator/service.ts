/**
 * Handlers of `cotrain.v1.Evaluator` (protos/cotrain/v1/evaluator.proto).
 *
 * `EvaluateShard` checks the request, finds the classifier's checkpoint in the store, and runs one
 * shard as an idempotent job (platform/jobs, kind `evaluate-shard`): the image set's test split is
 * corrupted batch by batch (in-process with core/corruptions on a Web Worker, ./corrupt_pool.ts,
 * or through the corruption-generator when `corruptionAddr` is set), normalised with TIN's
 * statistics and classified (onnxruntime on the checkpoint's ONNX export, falling back to tfjs).
 * onnxruntime-node's `run` blocks the main thread, so the worker corrupts the next batch, of this
 * shard or of another one in flight, while the main thread classifies. The per-image correctness (uint8 [N]) is stored under the shard's content key, which
 * hashes the checkpoint's bytes (so a model_id and its checkpoint URI name the same shard), the data
 * set, corruption, severity, seed, preset and limit.
 *
 * `Score` reads stored shards and computes the paper's scores with core/metrics/robustness.ts.
 *
 * @example
 * ```ts ignore
 * import { evaluatorHandlers } from "./service.ts";
 * import { openStore } from "../../platform/store/mod.ts";
 * const handlers = evaluatorHandlers({ store: openStore("file:///tmp/cotrain") });
 * ```
 * @module
 */
import { hostname } from "node:os";
import { normalizeTin } from "../../core/data/augment.ts";
import { CORRUPTIONS, PRESET_NAMES } from "../../core/corruptions/mod.ts";
import {
  type ModelCorrectness,
  scoreModels,
  type ShardCorrectness,
} from "../../core/metrics/robustness.ts";
import { CotrainError } from "../../platform/errors.ts";
import { canonicalJson, JobRunner, requestKey } from "../../platform/jobs/jobs.ts";
import { RpcClient } from "../../platform/rpc/client.ts";
import type { ServiceHandlers } from "../../platform/rpc/server.ts";
import type { ObjectStore } from "../../platform/store/types.ts";
import {
  encodeTensor,
  resolveTensor,
  resolveTensorRef,
  storeTensor,
  type TensorOrRefMsg,
  type TensorRefMsg,
} from "../../platform/tensor/tensor.ts";
import { loadDataset } from "../../core/data/datasets.ts";
import { storeCache } from "../../platform/store/cache.ts";
import { CorruptPool } from "./corrupt_pool.ts";
import { type Classifier, type EngineChoice, loadClassifier } from "./engine.ts";

/** Fully qualified service name. */
export const EVALUATOR_SERVICE = "cotrain.v1.Evaluator";
/** The service's .proto (relative to protos/). */
export const EVALUATOR_PROTO = "cotrain/v1/evaluator.proto";
/** Job kind in the store (`jobs/evaluate-shard/<key>/`). */
export const JOB_KIND = "evaluate-shard";
/** Where classifier-trainer keeps its results (`jobs/classifier-train/<model_id>/`). */
export const CLASSIFIER_JOB_KIND = "classifier-train";

/** What the handlers need. */
export interface EvaluatorDeps {
  store: ObjectStore;
  /** Address of a corruption-generator to corrupt through; unset = in-process. */
  corruptionAddr?: string;
  /** Inference engine (default "auto": onnxruntime when the export loads, else tfjs). */
  engine?: EngineChoice;
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /**
   * Web Workers that corrupt in-process (default 1; 0 = on the thread that classifies). One lets
   * a replica corrupt one batch while it classifies another (onnxruntime's `run` blocks its
   * thread). The same values either way.
   */
  corruptWorkers?: number;
  /** This replica's name in results (default host:pid). */
  replica?: string;
}

/** The wire form of an EvaluateShard request. */
export interface EvaluateShardMsg {
  model_id?: string;
  dataset_uri?: string;
  corruption?: string;
  severity?: number;
  seed?: number | string;
  preset?: string;
  limit?: number;
  batch_size?: number;
}

/** A shard's stored result (result.json) and most of the response. */
export interface ShardResult {
  key: string;
  correct: TensorRefMsg;
  n: number;
  n_correct: number;
  accuracy: number;
  replica: string;
  model_id: string;
  checkpoint_sha256: string;
  dataset_uri: string;
  corruption: string;
  severity: number;
  seed: number;
  preset: string;
  limit: number;
  engine: string;
  corrupted_by: string;
  elapsed_s: number;
}

/** A checked shard request. */
interface Shard {
  modelId: string;
  datasetUri: string;
  corruption: string;
  severity: number;
  seed: number;
  preset: string;
  limit: number;
  batchSize: number;
}

/** Checks a request; INVALID_ARGUMENT naming the field. */
export function checkShard(req: EvaluateShardMsg): Shard {
  const corruption = (req.corruption ?? "").trim();
  if (!corruption) {
    throw CotrainError.invalidArgument(`corruption: missing; "clean" or a corruption name`);
  }
  const clean = corruption === "clean";
  if (!clean && !(CORRUPTIONS as readonly string[]).includes(corruption)) {
    throw CotrainError.invalidArgument(
      `corruption: unknown ${JSON.stringify(corruption)}; "clean" or one of ${
        CORRUPTIONS.join(", ")
      }`,
    );
  }
  const severity = Number(req.severity ?? 0);
  if (clean ? !(severity >= 0 && severity <= 5) : !(severity >= 1 && severity <= 5)) {
    throw CotrainError.invalidArgument(
      `severity: ${severity} is outside ${clean ? "0..5 (0 for clean)" : "1..5"}`,
    );
  }
  const preset = req.preset || "imagecorruptions";
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) {
    throw CotrainError.invalidArgument(
      `preset: unknown ${JSON.stringify(preset)}; one of ${PRESET_NAMES.join(", ")}`,
    );
  }
  const seed = Number(req.seed ?? 0);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw CotrainError.invalidArgument(`seed: ${req.seed} must be a whole number >= 0`);
  }
  const limit = Number(req.limit ?? 0);
  if (!Number.isInteger(limit) || limit < 0) {
    throw CotrainError.invalidArgument(`limit: ${limit} must be >= 0 (0 = every test image)`);
  }
  const batchSize = Number(req.batch_size || 64);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 4096) {
    throw CotrainError.invalidArgument(`batch_size: ${req.batch_size} must be in 1..4096`);
  }
  if (!req.dataset_uri) {
    throw CotrainError.invalidArgument(
      "dataset_uri: missing (builtin:image-set?.. or file:///dir)",
    );
  }
  return {
    modelId: req.model_id ?? "",
    datasetUri: req.dataset_uri,
    corruption,
    severity: clean ? 0 : severity,
    seed: clean ? 0 : seed,
    preset: clean ? "" : preset,
    limit,
    batchSize,
  };
}

/**
 * Corrupts one uint8 [B, H, W] batch whose first image has data-set index `offset` (unless the
 * shard is clean) and normalises it: float32 [B, H, W, 1].
 */
type Preparer = (
  images: { shape: [number, number, number]; data: Uint8Array },
  shard: Shard,
  offset: number,
  signal: AbortSignal,
) => Promise<Float32Array>;

function inProcess(pool: CorruptPool): Preparer {
  return (images, shard, offset) =>
    pool.run({
      shape: images.shape,
      data: images.data,
      corruption: shard.corruption,
      severity: shard.severity,
      seed: shard.seed,
      preset: shard.preset,
      indexOffset: offset,
    });
}

function viaService(client: RpcClient, store: ObjectStore): Preparer {
  return async (images, shard, offset, signal) => {
    if (shard.corruption === "clean") {
      return normalizeTin({ dtype: "uint8", shape: images.shape, data: images.data }).data;
    }
    const res = await client.unary<{ images: TensorOrRefMsg }>("Corrupt", {
      images: {
        inline: encodeTensor({ dtype: "uint8", shape: images.shape, data: images.data }),
      },
      corruption: shard.corruption,
      severity: shard.severity,
      options: { seed: shard.seed, preset: shard.preset, index_offset: offset },
    }, { signal });
    const t = await resolveTensor(res.images, store, { field: "images", dtypes: ["uint8"] });
    if (t.data.length !== images.data.length) {
      throw CotrainError.internal(`corruption-generator returned ${t.data.length} values`);
    }
    return normalizeTin({ dtype: "uint8", shape: images.shape, data: t.data as Uint8Array }).data;
  };
}

/**
 * Where one EvaluateShard call's time goes, logged at debug level ("shard timings",
 * COTRAIN_LOG_LEVEL=debug): `*_ms` marks since the call arrived (at `start_unix_ms`), and sums
 * (corruption and normalisation of every batch, inference).
 */
class Timings {
  readonly #t0 = performance.now();
  readonly #fields: Record<string, number> = {};
  mark(name: string): void {
    this.#fields[name] = performance.now() - this.#t0;
  }
  add(name: string, ms: number): void {
    this.#fields[name] = (this.#fields[name] ?? 0) + ms;
  }
  fields(): Record<string, number> {
    const round = (x: number) => Math.round(x * 100) / 100;
    const out: Record<string, number> = {
      start_unix_ms: Math.round(performance.timeOrigin + this.#t0),
    };
    for (const [k, v] of Object.entries(this.#fields)) out[k] = round(v);
    return out;
  }
}

/** The service: its handlers, and `close` to release loaded models and the corruption client. */
export interface Evaluator {
  handlers: ServiceHandlers;
  close(): Promise<void>;
}

/** The handlers of the service (see {@linkcode createEvaluator} to release them again). */
export function evaluatorHandlers(deps: EvaluatorDeps): ServiceHandlers {
  return createEvaluator(deps).handlers;
}

/** The service with its handlers. */
export function createEvaluator(deps: EvaluatorDeps): Evaluator {
  const { store } = deps;
  const jobs = new JobRunner(store, JOB_KIND);
  const classifierJobs = new JobRunner(store, CLASSIFIER_JOB_KIND);
  const replica = deps.replica ?? `${hostname()}:${Deno.pid}`;
  const corruptClient = deps.corruptionAddr
    ? new RpcClient({
      protoFiles: ["cotrain/v1/corruption.proto"],
      service: "cotrain.v1.CorruptionGenerator",
      target: deps.corruptionAddr,
    })
    : null;
  const pool = new CorruptPool(corruptClient ? 0 : deps.corruptWorkers ?? 1);
  const prepare = corruptClient ? viaService(corruptClient, store) : inProcess(pool);
  const corruptedBy = deps.corruptionAddr ? `service:${deps.corruptionAddr}` : "in-process";
  const loaded = new Map<string, Promise<Classifier>>();

  /** The checkpoint's store key and sha256 for a model_id or checkpoint URI. */
  async function checkpointOf(id: string): Promise<{ key: string; sha256: string }> {
    if (!id) {
      throw CotrainError.invalidArgument(
        "model_id: missing (a classifier-trainer Train result's model_id or checkpoint URI)",
      );
    }
    const key = /^[0-9a-f]{32}$/.test(id)
      ? `${classifierJobs.prefix(id)}model.safetensors`
      : store.keyOf(id); // INVALID_ARGUMENT outside the store
    const info = await store.stat(key);
    if (!info) throw CotrainError.notFound(`model_id: ${id}: no classifier checkpoint there`);
    return { key, sha256: info.sha256 };
  }

  function classifierFor(key: string, sha256: string): Promise<Classifier> {
    let p = loaded.get(sha256);
    if (!p) {
      const onnxKey = key.replace(/\.safetensors$/, "") + ".onnx";
      p = loadClassifier({
        checkpoint: () => store.get(key),
        onnx: async () =>
          onnxKey !== key && (await store.stat(onnxKey)) ? await store.get(onnxKey) : null,
      }, { engine: deps.engine, threads: deps.threads });
      loaded.set(sha256, p);
      p.catch(() => loaded.delete(sha256));
      if (loaded.size > 4) {
        const [k, old] = loaded.entries().next().value!;
        loaded.delete(k);
        old.then((c) => c.release()).catch(() => {});
      }
    }
    return p;
  }

  async function runShard(
    shard: Shard,
    ckpt: { key: string; sha256: string },
    ctx: { signal: AbortSignal; throwIfCancelled(): void },
    tm: Timings = new Timings(),
  ): Promise<Omit<ShardResult, "key" | "correct"> & { correct: Uint8Array }> {
    const signal = ctx.signal;
    const start = performance.now();
    const data = await loadDataset(shard.datasetUri, storeCache(store));
    const test = data.test;
    const [total, h, w] = test.images.shape as [number, number, number];
    const n = shard.limit > 0 ? Math.min(shard.limit, total) : total;
    tm.mark("dataset_ms");
    const classifier = await classifierFor(ckpt.key, ckpt.sha256);
    tm.mark("model_ms");
    const correct = new Uint8Array(n);
    const px = h * w;
    const batchOf = async (i0: number) => {
      const b = Math.min(shard.batchSize, n - i0);
      const tc = performance.now();
      const raw = test.images.data.subarray(i0 * px, (i0 + b) * px);
      const x = await prepare({ shape: [b, h, w], data: raw }, shard, i0, signal);
      tm.add("corrupt_ms", performance.now() - tc);
      if (i0 === 0) tm.mark("first_batch_ready_ms");
      return { i0, b, x };
    };
    let next = n > 0 ? batchOf(0) : null;
    let nCorrect = 0;
    while (next) {
      const cur = await next;
      ctx.throwIfCancelled();
      const labels = classifier.predict(cur.x, [cur.b, h, w, 1]);
      const i1 = cur.i0 + cur.b;
      next = i1 < n ? batchOf(i1) : null; // corrupt the next batch while this one is classified
      const ti = performance.now();
      const pred = await labels;
      tm.add("infer_ms", performance.now() - ti);
      tm.mark("infer_end_ms");
      for (let i = 0; i < cur.b; i++) {
        const ok = pred[i] === test.labels.data[cur.i0 + i] ? 1 : 0;
        correct[cur.i0 + i] = ok;
        nCorrect += ok;
      }
    }
    return {
      correct,
      n,
      n_correct: nCorrect,
      accuracy: n > 0 ? nCorrect / n : NaN,
      replica,
      model_id: shard.modelId,
      checkpoint_sha256: ckpt.sha256,
      dataset_uri: shard.datasetUri,
      corruption: shard.corruption,
      severity: shard.severity,
      seed: shard.seed,
      preset: shard.preset,
      limit: shard.limit,
      engine: classifier.engine,
      corrupted_by: corruptedBy,
      elapsed_s: (performance.now() - start) / 1000,
    };
  }

  /** Shards being computed in this process, by content key. */
  const running = new Map<string, Promise<{ result: ShardResult; cached: boolean }>>();

  /**
   * Computes a shard and stores it as a job (platform/jobs: request.json, correct.u8, then
   * result.json). The computation starts at once, so the job's first store write (request.json)
   * overlaps it instead of delaying it; when the job turns out to be stored meanwhile (another
   * replica finished it), that result is answered and this computation is dropped.
   */
  async function computeShard(
    key: string,
    keyed: Record<string, unknown>,
    shard: Shard,
    ckpt: { key: string; sha256: string },
    ctx: { signal: AbortSignal; throwIfCancelled(): void },
    tm: Timings,
  ): Promise<{ result: ShardResult; cached: boolean }> {
    const computing = runShard(shard, ckpt, ctx, tm);
    computing.catch(() => {}); // awaited below, or dropped when the job is stored meanwhile
    for await (
      const ev of jobs.run<null, never, ShardResult>(
        key,
        JSON.parse(canonicalJson(keyed)),
        // deno-lint-ignore require-yield
        async function* (job) {
          const r = await computing;
          tm.mark("run_end_ms");
          const correct = await storeTensor(
            { dtype: "uint8", shape: [r.n], data: r.correct },
            store,
            `${job.prefix}correct.u8`,
          );
          tm.mark("correct_put_ms");
          return { ...r, key: job.key, correct };
        },
      )
    ) {
      if (ev.kind === "result") return { result: ev.result, cached: ev.cached };
    }
    throw CotrainError.internal("shard ended without a result");
  }

  /** A stored shard by key (NOT_FOUND when not evaluated). */
  async function storedShard(key: string, field: string): Promise<ShardResult> {
    if (!/^[0-9a-f]{32}$/.test(key)) {
      throw CotrainError.invalidArgument(`${field}: ${JSON.stringify(key)} is not a shard key`);
    }
    const r = await jobs.result<ShardResult>(key);
    if (!r) throw CotrainError.notFound(`${field}: shard ${key} has not been evaluated`);
    return r;
  }

  const handlers: ServiceHandlers = {
    async EvaluateShard(req: EvaluateShardMsg, ctx) {
      const tm = new Timings();
      const shard = checkShard(req);
      const ckpt = await checkpointOf(shard.modelId);
      // a limit at or above the test split's size is no limit: the same shard as limit 0
      const total = (await loadDataset(shard.datasetUri, storeCache(store))).test.images.shape[0];
      if (shard.limit >= total) shard.limit = 0;
      const keyed = {
        checkpoint_sha256: ckpt.sha256,
        dataset_uri: shard.datasetUri,
        corruption: shard.corruption,
        severity: shard.severity,
        seed: shard.seed,
        preset: shard.preset,
        limit: shard.limit,
      };
      const key = await requestKey(keyed);
      tm.mark("key_ms");
      const done = await jobs.result<ShardResult>(key);
      let outcome: { result: ShardResult; cached: boolean };
      if (done) outcome = { result: done, cached: true };
      else {
        // the same shard already running here (another call, a retry): join it
        let p = running.get(key);
        if (!p) {
          p = computeShard(key, keyed, shard, ckpt, ctx, tm);
          running.set(key, p);
          p.catch(() => {}).finally(() => running.delete(key));
        }
        outcome = await p;
      }
      tm.mark("total_ms");
      ctx.log.debug("shard timings", { cached: outcome.cached, ...tm.fields() });
      return {
        ...outcome.result,
        state: outcome.cached ? "JOB_STATE_CACHED" : "JOB_STATE_STARTED",
        served_by: replica,
        elapsed_s: outcome.cached ? 0 : outcome.result.elapsed_s,
      };
    },

    async Score(req: {
      models?: { name?: string; shard_keys?: string[]; fev?: number | null; _fev?: string }[];
      baseline?: string;
      corruptions?: string[];
      bootstrap?: number;
      bootstrap_seed?: number | string;
      confidence?: number;
    }) {
      const models = req.models ?? [];
      if (models.length === 0) throw CotrainError.invalidArgument("models: none given");
      const inputs: ModelCorrectness[] = [];
      let reference: string | null = null;
      for (const [i, m] of models.entries()) {
        if (!m.name) throw CotrainError.invalidArgument(`models[${i}].name: missing`);
        const keys = m.shard_keys ?? [];
        if (keys.length === 0) {
          throw CotrainError.invalidArgument(`models[${i}].shard_keys: none given`);
        }
        const mc: ModelCorrectness = { name: m.name, clean: [], shards: [] };
        // read the model's shards 32 at a time (a paper-sized model has 351)
        const loadedShards: { r: ShardResult; correct: Uint8Array }[] = [];
        for (let j0 = 0; j0 < keys.length; j0 += 32) {
          loadedShards.push(
            ...await Promise.all(
              keys.slice(j0, j0 + 32).map(async (key, dj) => {
                const field = `models[${i}].shard_keys[${j0 + dj}]`;
                const r = await storedShard(key, field);
                const t = await resolveTensorRef(r.correct, store, { field, dtypes: ["uint8"] });
                return { r, correct: t.data as Uint8Array };
              }),
            ),
          );
        }
        for (const [j, { r, correct }] of loadedShards.entries()) {
          const field = `models[${i}].shard_keys[${j}]`;
          const ident = `${r.dataset_uri} limit ${r.limit}`;
          reference ??= ident;
          if (ident !== reference) {
            throw CotrainError.invalidArgument(
              `${field}: shard of ${ident}; the others are of ${reference} (every shard must cover the same test images)`,
            );
          }
          if (r.corruption === "clean") mc.clean.push(correct);
          else {
            mc.shards.push(
              {
                corruption: r.corruption,
                severity: r.severity,
                seed: r.seed,
                correct,
              } satisfies ShardCorrectness,
            );
          }
        }
        inputs.push(mc);
      }
      const bootstrap = req.bootstrap || 250;
      if (bootstrap < 1 || bootstrap > 100_000) {
        throw CotrainError.invalidArgument(`bootstrap: ${bootstrap} must be in 1..100000`);
      }
      const confidence = req.confidence || 0.95;
      const r = scoreModels(inputs, {
        baseline: req.baseline || "Baseline",
        corruptions: req.corruptions ?? [],
        bootstrap,
        seed: Number(req.bootstrap_seed ?? 0),
        confidence,
      });
      return {
        baseline: r.baseline,
        corruptions: r.corruptions,
        bootstrap: r.bootstrap,
        confidence: r.confidence,
        models: r.models.map((s, i) => ({
          name: s.name,
          clean_accuracy: s.cleanAccuracy,
          accuracy: s.accuracy,
          corruption_accuracy: s.corruptionAccuracy,
          robustness: s.robustness,
          robustness_total: s.robustnessTotal,
          mce: s.mce,
          relative_mce: s.relativeMce,
          ce: s.ce,
          fev: models[i]._fev === "fev" && models[i].fev != null ? Number(models[i].fev) : NaN,
          n: s.n,
        })),
      };
    },
  };
  return {
    handlers,
    async close() {
      corruptClient?.close();
      pool.close();
      for (const p of loaded.values()) await p.then((c) => c.release()).catch(() => {});
      loaded.clear();
    },
  };
}
