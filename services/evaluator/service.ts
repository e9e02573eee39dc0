/**
 * Handlers of `cotrain.v1.Evaluator` (protos/cotrain/v1/evaluator.proto).
 *
 * `EvaluateShard` checks the request, finds the classifier's checkpoint in the store, and runs one
 * shard as an idempotent job (platform/jobs, kind `evaluate-shard`): the image set's test split is
 * corrupted batch by batch (in-process with core/corruptions, or through the corruption-generator
 * when `corruptionAddr` is set), normalised with TIN's statistics and classified (onnxruntime on
 * the checkpoint's ONNX export, falling back to tfjs); while one batch is classified the next one is
 * corrupted. The per-image correctness (uint8 [N]) is stored under the shard's content key, which
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
import { corruptBatch, CORRUPTIONS, PRESET_NAMES } from "../../core/corruptions/mod.ts";
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

/** Corrupts one uint8 [B, H, W] batch whose first image has data-set index `offset`. */
type Corruptor = (
  images: { shape: [number, number, number]; data: Uint8Array },
  shard: Shard,
  offset: number,
  signal: AbortSignal,
) => Promise<Uint8Array>;

const inProcess: Corruptor = (images, shard, offset) =>
  Promise.resolve(
    corruptBatch({ dtype: "uint8", shape: images.shape, data: images.data }, {
      corruption: shard.corruption,
      severity: shard.severity,
      seed: shard.seed,
      preset: shard.preset,
      indexOffset: offset,
    }).data as Uint8Array,
  );

function viaService(client: RpcClient, store: ObjectStore): Corruptor {
  return async (images, shard, offset, signal) => {
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
    return t.data as Uint8Array;
  };
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
  const corrupt = corruptClient ? viaService(corruptClient, store) : inProcess;
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
  ): Promise<Omit<ShardResult, "key" | "correct"> & { correct: Uint8Array }> {
    const signal = ctx.signal;
    const start = performance.now();
    const data = await loadDataset(shard.datasetUri, storeCache(store));
    const test = data.test;
    const [total, h, w] = test.images.shape as [number, number, number];
    const n = shard.limit > 0 ? Math.min(shard.limit, total) : total;
    const classifier = await classifierFor(ckpt.key, ckpt.sha256);
    const correct = new Uint8Array(n);
    const px = h * w;
    const batchOf = async (i0: number) => {
      const b = Math.min(shard.batchSize, n - i0);
      const raw = test.images.data.subarray(i0 * px, (i0 + b) * px);
      const bytes = shard.corruption === "clean"
        ? raw
        : await corrupt({ shape: [b, h, w], data: raw }, shard, i0, signal);
      return { i0, b, x: normalizeTin({ dtype: "uint8", shape: [b, h, w], data: bytes }) };
    };
    let next = n > 0 ? batchOf(0) : null;
    let nCorrect = 0;
    while (next) {
      const cur = await next;
      ctx.throwIfCancelled();
      const labels = classifier.predict(cur.x.data, [cur.b, h, w, 1]);
      const i1 = cur.i0 + cur.b;
      next = i1 < n ? batchOf(i1) : null; // corrupt the next batch while this one is classified
      const pred = await labels;
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
      for await (
        const ev of jobs.run<null, never, ShardResult>(
          key,
          JSON.parse(canonicalJson(keyed)),
          // deno-lint-ignore require-yield
          async function* (job) {
            const r = await runShard(shard, ckpt, ctx);
            const correct = await storeTensor(
              { dtype: "uint8", shape: [r.n], data: r.correct },
              store,
              `${job.prefix}correct.u8`,
            );
            return { ...r, key: job.key, correct };
          },
        )
      ) {
        if (ev.kind === "result") {
          return {
            ...ev.result,
            state: ev.cached ? "JOB_STATE_CACHED" : "JOB_STATE_STARTED",
            served_by: replica,
            elapsed_s: ev.cached ? 0 : ev.result.elapsed_s,
          };
        }
      }
      throw CotrainError.internal("shard ended without a result");
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
      for (const p of loaded.values()) await p.then((c) => c.release()).catch(() => {});
      loaded.clear();
    },
  };
}
