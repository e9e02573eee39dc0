/**
 * Handlers of `cotrain.v1.Reconstructor` (protos/cotrain/v1/reconstructor.proto): `Reconstruct`
 * loads the checkpoint named by the request (cached), checks the request, and runs
 * core/analysis/reconstruct.ts as an idempotent job (platform/jobs): progress events while it runs,
 * the reconstructions written to the store, the same request again answered from the store.
 * Cancelling the call aborts the optimisation before its next step. `SpectralControl` pairs each
 * original with its reconstructions (core/analysis/spectral.ts).
 *
 * @example
 * ```ts ignore
 * import { reconstructorHandlers } from "./service.ts";
 * import { openStore } from "../../platform/store/mod.ts";
 * const handlers = reconstructorHandlers({ store: openStore("file:///tmp/cotrain"), maxSteps: 20000 });
 * ```
 * @module
 */
import {
  type FeatureModel,
  loadFeatureModel,
  reconstruct,
  type ReconstructProgress,
  resolveReconstructOptions,
} from "../../core/analysis/reconstruct.ts";
import { spectralControlBatch } from "../../core/analysis/spectral.ts";
import { CotrainError } from "../../platform/errors.ts";
import { canonicalJson, JobRunner, requestKey } from "../../platform/jobs/jobs.ts";
import type { ServiceHandlers } from "../../platform/rpc/server.ts";
import type { ObjectStore } from "../../platform/store/types.ts";
import {
  encodeTensor,
  type HostTensor,
  resolveTensor,
  storeTensor,
  tensorOrRef,
  type TensorOrRefMsg,
  type TensorRefMsg,
} from "../../platform/tensor/tensor.ts";
import { optionalField } from "../../platform/rpc/protos.ts";

/** Fully qualified service name. */
export const RECONSTRUCTOR_SERVICE = "cotrain.v1.Reconstructor";
/** The service's .proto (relative to protos/). */
export const RECONSTRUCTOR_PROTO = "cotrain/v1/reconstructor.proto";
/** Job kind in the store (`jobs/reconstruct/<key>/`). */
export const JOB_KIND = "reconstruct";
/** Default cap on `steps` (COTRAIN_MAX_RECONSTRUCT_STEPS). */
export const DEFAULT_MAX_STEPS = 20000;

/** Counters of the optimisation work this service did (tests and logs read them). */
export interface ReconstructorStats {
  /** Optimisation steps done, over every call. */
  steps: number;
  /** Reconstructions running now. */
  running: number;
  /** Reconstructions that ended because the call was cancelled. */
  cancelled: number;
}

/** What the handlers need. */
export interface ReconstructorDeps {
  store: ObjectStore;
  /** Largest `steps` a request may ask for. */
  maxSteps?: number;
  /** Largest tensor sent inline (SpectralControl). */
  inlineLimitBytes?: number;
  /** onnxruntime threads per reconstruction (default: every core). */
  threads?: number;
  /** Counters, updated in place. */
  stats?: ReconstructorStats;
}

/** The wire form of a Reconstruct request (proto-loader, keepCase). */
export interface ReconstructRequestMsg {
  model_uri?: string;
  layer?: string;
  images?: TensorOrRefMsg;
  budgets?: number[];
  steps?: number | null;
  optimizer?: string;
  lr?: number | null;
  constraint?: string;
  blur_sigma?: number | null;
  seed?: number | string;
  loss_every?: number;
  reduction?: string;
  [k: string]: unknown;
}

const opt = optionalField;

/** What result.json keeps (plain JSON; Tensor messages are made on the way out). */
interface StoredResult {
  key: string;
  layer: string;
  budgets: number[];
  images: number;
  reconstructions: TensorRefMsg;
  norms: number[];
  final_losses: number[];
  target_norms: number[];
  curve_steps: number[];
  curve_losses: number[];
  steps: number;
  elapsed_s: number;
}

function f32(shape: number[], values: ArrayLike<number>) {
  return encodeTensor({ dtype: "float32", shape, data: Float32Array.from(values) });
}

function resultMsg(r: StoredResult, state: string) {
  const nb = r.budgets.length;
  return {
    key: r.key,
    layer: r.layer,
    budgets: r.budgets,
    reconstructions: r.reconstructions,
    norms: f32([r.images, nb], r.norms),
    final_losses: f32([r.images, nb], r.final_losses),
    target_norms: f32([r.images], r.target_norms),
    curve_steps: r.curve_steps,
    curve_losses: f32([r.curve_steps.length, r.images, nb], r.curve_losses),
    steps: r.steps,
    state,
    elapsed_s: r.elapsed_s,
  };
}

/** Gray images as float32 [N, H, W, 1] (from [N, H, W] or [N, H, W, 1]). */
function grayBatch(
  t: HostTensor,
  field: string,
): { shape: [number, number, number, number]; data: Float32Array } {
  const s = t.shape;
  if (!((s.length === 3) || (s.length === 4 && s[3] === 1)) || s[0] < 1) {
    throw CotrainError.invalidArgument(
      `${field}: shape [${s}]; expected float32 [N, H, W, 1] or [N, H, W] (gray, normalised)`,
    );
  }
  return { shape: [s[0], s[1], s[2], 1], data: t.data as Float32Array };
}

/** The handlers of the service. */
export function reconstructorHandlers(deps: ReconstructorDeps): ServiceHandlers {
  const { store } = deps;
  const maxSteps = deps.maxSteps ?? DEFAULT_MAX_STEPS;
  const stats = deps.stats ?? { steps: 0, running: 0, cancelled: 0 };
  const jobs = new JobRunner(store, JOB_KIND);
  const models = new Map<string, FeatureModel>();

  /** Requests using each cached model now (a model in use is never evicted). */
  const inUse = new Map<string, number>();

  /**
   * The network named by `ref` (a checkpoint URI, or a classifier-trainer model_id), cached by the
   * stored object's sha256; the caller releases it with {@linkcode release}.
   */
  async function acquire(ref: string): Promise<{ model: FeatureModel; sha256: string }> {
    if (!ref) {
      throw CotrainError.invalidArgument(
        "model_uri: missing (the store URI of a classifier-trainer or neural-predictor checkpoint)",
      );
    }
    const key = /^[0-9a-f]{32}$/.test(ref)
      ? `jobs/classifier-train/${ref}/model.safetensors`
      : store.keyOf(ref); // INVALID_ARGUMENT outside the store
    const info = await store.stat(key);
    if (!info) throw CotrainError.notFound(`model_uri: ${ref} does not exist`);
    const id = info.sha256 || key;
    let model = models.get(id);
    if (!model) {
      model = loadFeatureModel(await store.get(key));
      models.set(id, model);
    }
    inUse.set(id, (inUse.get(id) ?? 0) + 1);
    for (const [k, m] of models) {
      if (models.size <= 4) break;
      if (inUse.get(k)) continue;
      models.delete(k);
      m.dispose();
    }
    return { model, sha256: id };
  }

  function release(id: string): void {
    const n = (inUse.get(id) ?? 1) - 1;
    if (n > 0) inUse.set(id, n);
    else inUse.delete(id);
  }

  return {
    async *Reconstruct(req: ReconstructRequestMsg, ctx) {
      const r = req as Record<string, unknown>;
      const budgets = (req.budgets ?? []).map(Number);
      budgets.forEach((b, i) => {
        if (!(Number.isFinite(b) && b > 0)) {
          throw CotrainError.invalidArgument(`budgets[${i}]: ${b}; a norm budget must be > 0`);
        }
      });
      const steps = opt<number>(r, "steps");
      if (steps !== undefined && steps > maxSteps) {
        throw CotrainError.invalidArgument(
          `steps: ${steps} is above this server's cap of ${maxSteps} ` +
            `(COTRAIN_MAX_RECONSTRUCT_STEPS)`,
        );
      }
      const optimizer = req.optimizer || "sgd";
      if (optimizer !== "sgd" && optimizer !== "adam") {
        throw CotrainError.invalidArgument(
          `optimizer: unknown ${JSON.stringify(optimizer)}; allowed: sgd, adam`,
        );
      }
      const constraint = req.constraint || "project";
      if (constraint !== "project" && constraint !== "rescale") {
        throw CotrainError.invalidArgument(
          `constraint: unknown ${JSON.stringify(constraint)}; allowed: project, rescale`,
        );
      }
      const { model, sha256 } = await acquire(req.model_uri ?? "");
      try {
        const options = resolveReconstructOptions(model.vgg, {
          layer: req.layer || undefined,
          budgets: budgets.length ? budgets : undefined,
          steps,
          optimizer,
          lr: opt<number>(r, "lr"),
          constraint,
          blurSigma: opt<number>(r, "blur_sigma"),
          seed: Number(req.seed ?? 0),
          lossEvery: req.loss_every || undefined,
          reduction: (req.reduction || undefined) as "mean" | "sum" | undefined,
        });
        if (options.steps > maxSteps) {
          throw CotrainError.invalidArgument(
            `steps: the default ${options.steps} is above this server's cap of ${maxSteps} ` +
              `(COTRAIN_MAX_RECONSTRUCT_STEPS); ask for fewer steps`,
          );
        }
        const t = await resolveTensor(req.images, store, {
          field: "images",
          dtypes: ["float32"],
          rejectNonFinite: true,
        });
        const images = grayBatch(t, "images");
        const keyed = { model: sha256, images: images.data, shape: images.shape, options };
        const key = await requestKey(keyed);
        const started = performance.now();
        for await (
          const ev of jobs.run<null, ReconstructProgress, StoredResult>(
            key,
            JSON.parse(canonicalJson(keyed)),
            async function* (job) {
              // The optimisation drives itself (not the stream's consumer), so a cancelled call
              // stops it through the signal even when the stream is abandoned at a yield.
              const queue: ReconstructProgress[] = [];
              let wake: (() => void) | null = null;
              let settled = false;
              let done = 0;
              stats.running++;
              const task = reconstruct(model.vgg, images, {
                ...options,
                signal: ctx.signal,
                threads: deps.threads,
                onStep: (s) => {
                  done = s;
                  stats.steps++;
                },
                onProgress: (p) => {
                  queue.push(p);
                  wake?.();
                },
              }).catch((err) => {
                if (ctx.signal.aborted) {
                  stats.cancelled++;
                  ctx.log.info("reconstruction cancelled", { key, step: done });
                }
                throw err;
              }).finally(() => {
                stats.running--;
                settled = true;
                wake?.();
              });
              task.catch(() => {}); // awaited below; this only keeps it from counting as unhandled
              while (true) {
                while (queue.length > 0) yield queue.shift()!;
                if (settled) break;
                await new Promise<void>((r) => (wake = r));
                wake = null;
              }
              const res = await task;
              const [n, h, w] = res.shape;
              const nb = res.budgets.length;
              const ref = await storeTensor(
                { dtype: "float32", shape: [n, nb, h, w, 1], data: res.reconstructions },
                store,
                `${job.prefix}reconstructions.f32`,
              );
              return {
                key: job.key,
                layer: res.layer,
                budgets: res.budgets,
                images: n,
                reconstructions: ref,
                norms: Array.from(res.norms),
                final_losses: Array.from(res.finalLosses),
                target_norms: Array.from(res.targetNorms),
                curve_steps: res.curve.steps,
                curve_losses: Array.from(res.curve.losses),
                steps: res.steps,
                elapsed_s: (performance.now() - started) / 1000,
              };
            },
          )
        ) {
          if (ev.kind === "progress") {
            const l = Array.from(ev.progress.losses);
            yield {
              progress: {
                stage: "reconstruct",
                done: ev.progress.step,
                total: ev.progress.steps,
                metrics: {
                  mean_loss: l.reduce((a, b) => a + b, 0) / l.length,
                  min_loss: Math.min(...l),
                  max_loss: Math.max(...l),
                },
                message: "",
                elapsed_s: ev.progress.elapsedS,
              },
            };
          } else {
            yield {
              result: resultMsg(ev.result, ev.cached ? "JOB_STATE_CACHED" : "JOB_STATE_STARTED"),
            };
          }
        }
      } finally {
        release(sha256);
      }
    },

    async SpectralControl(req: { originals?: TensorOrRefMsg; reconstructions?: TensorOrRefMsg }) {
      const o = await resolveTensor(req.originals, store, {
        field: "originals",
        dtypes: ["float32"],
        rejectNonFinite: true,
      });
      const r = await resolveTensor(req.reconstructions, store, {
        field: "reconstructions",
        dtypes: ["float32"],
        rejectNonFinite: true,
      });
      const os = grayBatch(o, "originals").shape;
      const [n, side] = os;
      if (os[1] !== os[2]) {
        throw CotrainError.invalidArgument(
          `originals: ${os[1]}x${os[2]}; the spectral control needs square images (e.g. 64x64)`,
        );
      }
      let k: number;
      const rs = r.shape;
      const tail = rs.length && rs[rs.length - 1] === 1 && rs.length >= 4 ? rs.slice(0, -1) : rs;
      if (tail.length === 3 && tail[0] === n && tail[1] === side && tail[2] === side) k = 1;
      else if (tail.length === 4 && tail[0] === n && tail[2] === side && tail[3] === side) {
        k = tail[1];
      } else {
        throw CotrainError.invalidArgument(
          `reconstructions: shape [${rs}]; expected [${n}, K, ${side}, ${side}(, 1)] or the ` +
            `originals' shape [${o.shape}]`,
        );
      }
      const out = spectralControlBatch(
        o.data as Float32Array,
        r.data as Float32Array,
        n,
        k,
        side,
      );
      const key = `spectral/${crypto.randomUUID()}.f32`;
      return {
        controls: await tensorOrRef(
          { dtype: "float32", shape: [...rs], data: out },
          store,
          key,
          deps.inlineLimitBytes ?? 4 * 1024 * 1024,
        ),
      };
    },
  };
}
