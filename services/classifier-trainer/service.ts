/**
 * Handlers of `cotrain.v1.ClassifierTrainer` (protos/cotrain/v1/classifier_trainer.proto):
 * `Train` checks the request, loads the data set and the neural targets, and runs
 * core/train/classifier.ts as an idempotent job (platform/jobs): a checkpoint after every epoch,
 * resume when the same request comes again after a kill, the stored result when it is done.
 * `Classify` runs a trained network on a batch.
 *
 * @example
 * ```ts ignore
 * import { classifierHandlers } from "./service.ts";
 * import { openStore } from "../../platform/store/mod.ts";
 * const handlers = classifierHandlers({ store: openStore("file:///tmp/cotrain") });
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { normalizeTin } from "../../core/data/augment.ts";
import { exportVggOnnx } from "../../core/engine/onnx/vgg.ts";
import { classify, disposeMtl, type MtlModel } from "../../core/models/mtl.ts";
import { ORACLE_TWO_STAGE } from "../../core/train/classifier_config.ts";
import {
  checkData,
  isMtl,
  type NeuralTargets,
  resolveTrainConfig,
  trainClassifier,
  type TrainConfigInput,
  type TrainProgress,
} from "../../core/train/classifier.ts";
import { loadMtlCheckpoint, saveMtlCheckpoint } from "../../core/train/classifier_checkpoint.ts";
import { CotrainError } from "../../platform/errors.ts";
import { canonicalJson, JobRunner, requestKey } from "../../platform/jobs/jobs.ts";
import type { OipModel, OipRegistry } from "../../platform/oip/oip.ts";
import { sha256Hex } from "../../platform/store/keys.ts";
import type { ServiceHandlers } from "../../platform/rpc/server.ts";
import type { ObjectStore } from "../../platform/store/types.ts";
import {
  encodeTensor,
  type HostTensor,
  resolveTensor,
  type TensorOrRefMsg,
} from "../../platform/tensor/tensor.ts";
import { loadDataset } from "../../core/data/datasets.ts";
import { storeCache } from "../../platform/store/cache.ts";
import { optionalField } from "../../platform/rpc/protos.ts";

/** Fully qualified service name. */
export const CLASSIFIER_SERVICE = "cotrain.v1.ClassifierTrainer";
/** The service's .proto (relative to protos/). */
export const CLASSIFIER_PROTO = "cotrain/v1/classifier_trainer.proto";
/** Job kind in the store (`jobs/classifier-train/<key>/`). */
export const JOB_KIND = "classifier-train";

/** What the handlers need. */
export interface ClassifierDeps {
  store: ObjectStore;
  /** When given, every loaded classifier is also served over the Open Inference Protocol. */
  registry?: OipRegistry;
}

/** The wire form of a Train request (proto-loader, keepCase). */
export interface TrainRequestMsg {
  dataset_uri?: string;
  model?: string;
  width?: number | null;
  max_epochs?: number | null;
  batch_size?: number | null;
  neural_batch_size?: number | null;
  neural_ratio?: number | null;
  lr?: number | null;
  momentum?: number | null;
  weight_decay?: number | null;
  lr_factor?: number | null;
  patience?: number | null;
  max_drops?: number | null;
  augment?: boolean | null;
  seed?: number | string;
  shuffle_seed?: number | string;
  neural_targets?: TensorOrRefMsg | null;
  progress_every?: number;
  head_init_scale?: number | null;
  oracle_lambda?: number | null;
  init_model_id?: string;
  [k: string]: unknown;
}

const opt = optionalField;

/** The request as the trainer's config input (no checks yet). */
export function toConfigInput(req: TrainRequestMsg): TrainConfigInput {
  const r = req as Record<string, unknown>;
  return {
    kind: req.model ?? "",
    width: opt<number>(r, "width"),
    maxEpochs: opt<number>(r, "max_epochs"),
    batchSize: opt<number>(r, "batch_size"),
    neuralBatchSize: opt<number>(r, "neural_batch_size"),
    ratio: opt<number>(r, "neural_ratio"),
    lr: opt<number>(r, "lr"),
    momentum: opt<number>(r, "momentum"),
    weightDecay: opt<number>(r, "weight_decay"),
    factor: opt<number>(r, "lr_factor"),
    patience: opt<number>(r, "patience"),
    maxDrops: opt<number>(r, "max_drops"),
    augment: opt<boolean>(r, "augment"),
    seed: Number(req.seed ?? 0),
    shuffleSeed: Number(req.shuffle_seed ?? 0),
    headInitScale: opt<number>(r, "head_init_scale"),
    oracleLambda: opt<number>(r, "oracle_lambda"),
  };
}

async function loadTargets(
  msg: TensorOrRefMsg | null | undefined,
  store: ObjectStore,
): Promise<NeuralTargets> {
  if (!msg || (!msg.inline && !msg.ref)) {
    throw CotrainError.invalidArgument(
      "neural_targets: missing; MTL models need float32 [N_train, neurons] targets",
    );
  }
  const t = await resolveTensor(msg, store, {
    field: "neural_targets",
    dtypes: ["float32"],
    rejectNonFinite: true,
  });
  if (t.shape.length !== 2 || t.shape[1] < 1) {
    throw CotrainError.invalidArgument(
      `neural_targets: shape [${t.shape}]; expected [N_train, neurons]`,
    );
  }
  return { neurons: t.shape[1], data: t.data as Float32Array };
}

interface JobState {
  epoch: number;
  checkpoint: string;
}

interface ArtifactMsg {
  uri: string;
  sha256: string;
  media_type: string;
  size_bytes: number;
}

interface ResultMsg {
  model_id: string;
  checkpoint: ArtifactMsg;
  onnx: ArtifactMsg;
  model: string;
  epochs: number;
  best_epoch: number;
  best_val_accuracy: number;
  test_accuracy: number;
  lr: number;
  s_c: number;
  s_n: number;
  history: Record<string, number>[];
  resumed_from_epoch: number;
  classes: string[];
}

function progressMsg(p: TrainProgress, maxEpochs: number) {
  return {
    stage: p.stage,
    epoch: p.epoch,
    step: p.step,
    steps_per_epoch: p.stepsPerEpoch,
    classification_loss: p.classificationLoss,
    neural_loss: p.neuralLoss,
    consistency_loss: p.consistencyLoss,
    s_c: p.sC,
    s_n: p.sN,
    lr: p.lr,
    val_accuracy: p.valAccuracy ?? NaN,
    decision: p.decision ?? "",
    elapsed_s: p.elapsedS,
    max_epochs: maxEpochs,
  };
}

async function putArtifact(
  store: ObjectStore,
  key: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<ArtifactMsg> {
  const info = await store.put(key, bytes, { contentType: mediaType });
  return { uri: store.uri(key), sha256: info.sha256, media_type: mediaType, size_bytes: info.size };
}

/** The handlers of the service. */
export function classifierHandlers(deps: ClassifierDeps): ServiceHandlers {
  const { store } = deps;
  const jobs = new JobRunner(store, JOB_KIND);
  const models = new Map<string, MtlModel>();

  /** The store key of a trained model named by a Train result's model_id or checkpoint URI. */
  async function modelKey(id: string, field: string): Promise<string> {
    if (!id) throw CotrainError.invalidArgument(`${field}: missing (a Train result's model_id)`);
    const key = /^[0-9a-f]{32}$/.test(id) ? `${jobs.prefix(id)}model.safetensors` : store.keyOf(id);
    if (!(await store.stat(key))) {
      throw CotrainError.notFound(`${field}: ${id}: no trained classifier there`);
    }
    return key;
  }

  /** The OIP name of a loaded classifier: `classifier-` + its checkpoint's sha256 prefix. */
  const oipNames = new Map<string, string>();

  async function modelFor(id: string, field = "model_id"): Promise<MtlModel> {
    const key = await modelKey(id, field);
    const cached = models.get(key);
    if (cached) return cached;
    const bytes = await store.get(key);
    const model = loadMtlCheckpoint(bytes);
    models.set(key, model);
    if (deps.registry) {
      const name = `classifier-${sha256Hex(bytes).slice(0, 12)}`;
      oipNames.set(key, name);
      deps.registry.add(oipModel(name, model));
    }
    if (models.size > 4) {
      const [k, m] = models.entries().next().value!;
      disposeMtl(m);
      models.delete(k);
      const name = oipNames.get(k);
      if (name) deps.registry?.remove(name);
      oipNames.delete(k);
    }
    return model;
  }

  function oipNameOf(modelId: string): string {
    return oipNames.get(`${jobs.prefix(modelId)}model.safetensors`) ?? "";
  }

  /** One training job (one model kind): wire events, the last one the result. */
  async function* trainOne(
    req: TrainRequestMsg,
    ctx: { signal: AbortSignal },
    oracleStage = 0,
  ): AsyncGenerator<{ progress?: unknown; result?: ResultMsg & Record<string, unknown> }> {
    const input = toConfigInput(req);
    const config = resolveTrainConfig(input); // INVALID_ARGUMENT naming the field
    const data = await loadDataset(req.dataset_uri ?? "", storeCache(store)); // NOT_FOUND for unknown
    const targets = isMtl(config.kind) ? await loadTargets(req.neural_targets, store) : undefined;
    const trainData = { ...data, targets };
    checkData(config, trainData);
    let init: Uint8Array | undefined;
    if (config.kind === "oracle-stage2") {
      init = await store.get(await modelKey(req.init_model_id ?? "", "init_model_id"));
    }
    const keyed = {
      dataset_uri: req.dataset_uri,
      init: init ?? null,
      config,
      targets: targets ? { neurons: targets.neurons, data: targets.data } : null,
    };
    const key = await requestKey(keyed);
    const every = req.progress_every || 10;
    for await (
      const ev of jobs.run<JobState, TrainProgress, ResultMsg>(
        key,
        JSON.parse(canonicalJson(keyed)),
        async function* (job) {
          const resume = job.state ? await store.get(job.state.checkpoint) : undefined;
          const ckptKey = `${job.prefix}trainer.safetensors`;
          const run = trainClassifier(input, trainData, {
            resume,
            init,
            signal: ctx.signal,
            progressEvery: every,
            onCheckpoint: async (bytes, epoch) => {
              await store.put(ckptKey, bytes, { contentType: "application/vnd.safetensors" });
              await job.save({ epoch, checkpoint: ckptKey });
            },
          });
          let step = await run.next();
          while (!step.done) {
            yield step.value;
            step = await run.next();
          }
          const r = step.value;
          try {
            const checkpoint = await putArtifact(
              store,
              `${job.prefix}model.safetensors`,
              saveMtlCheckpoint(r.model, { "cotrain.classes": JSON.stringify(data.classNames) }),
              "application/vnd.safetensors",
            );
            const onnx = await putArtifact(
              store,
              `${job.prefix}model.onnx`,
              exportVggOnnx(r.model.vgg),
              "application/onnx",
            );
            return {
              model_id: job.key,
              checkpoint,
              onnx,
              model: r.config.kind,
              epochs: r.epochs,
              best_epoch: r.bestEpoch,
              best_val_accuracy: r.bestValAccuracy,
              test_accuracy: r.testAccuracy,
              lr: r.lr,
              s_c: r.sC,
              s_n: r.sN,
              history: r.history.map((h) => ({
                epoch: h.epoch,
                classification_loss: h.classificationLoss,
                neural_loss: h.neuralLoss,
                consistency_loss: h.consistencyLoss,
                val_accuracy: h.valAccuracy,
                lr: h.lr,
                s_c: h.sC,
                s_n: h.sN,
              })),
              resumed_from_epoch: r.resumedFrom,
              classes: data.classNames,
            };
          } finally {
            disposeMtl(r.model);
          }
        },
      )
    ) {
      if (ev.kind === "progress") {
        yield {
          progress: { ...progressMsg(ev.progress, config.maxEpochs), oracle_stage: oracleStage },
        };
      } else {
        const state = ev.cached
          ? "JOB_STATE_CACHED"
          : ev.resumed
          ? "JOB_STATE_RESUMED"
          : "JOB_STATE_STARTED";
        // served over the Open Inference Protocol from now on
        if (deps.registry) await modelFor(ev.result.model_id);
        yield { result: { ...ev.result, state, oip_model_name: oipNameOf(ev.result.model_id) } };
      }
    }
  }

  return {
    /**
     * One model kind per request, or `oracle-two-stage`: stage 1 ("oracle") and then stage 2
     * ("oracle-stage2" on stage 1's network), each its own content-keyed job exactly as if sent
     * alone, so a re-sent request returns both stored results or resumes the stage it stopped in.
     */
    async *Train(req: TrainRequestMsg, ctx) {
      if (req.model !== ORACLE_TWO_STAGE) {
        for await (const ev of trainOne(req, ctx)) yield ev;
        return;
      }
      const states: string[] = [];
      let stage1: (ResultMsg & Record<string, unknown>) | undefined;
      for await (const ev of trainOne({ ...req, model: "oracle", init_model_id: "" }, ctx, 1)) {
        if (ev.result) stage1 = ev.result;
        else yield ev;
      }
      states.push(String(stage1!.state));
      const stage2 = { ...req, model: "oracle-stage2", init_model_id: stage1!.model_id };
      for await (const ev of trainOne(stage2, ctx, 2)) {
        if (!ev.result) {
          yield ev;
          continue;
        }
        states.push(String(ev.result.state));
        const state = states.every((s) => s === "JOB_STATE_CACHED")
          ? "JOB_STATE_CACHED"
          : states.includes("JOB_STATE_RESUMED")
          ? "JOB_STATE_RESUMED"
          : "JOB_STATE_STARTED";
        yield {
          result: {
            ...ev.result,
            state,
            stage1_model_id: stage1!.model_id,
            stage1_best_val_accuracy: stage1!.best_val_accuracy,
            stage1_test_accuracy: stage1!.test_accuracy,
          },
        };
      }
    },

    async Classify(req: { model_id?: string; images?: TensorOrRefMsg }) {
      const model = await modelFor(req.model_id ?? "");
      const t = await resolveTensor(req.images, store, {
        field: "images",
        dtypes: ["uint8", "float32"],
        rejectNonFinite: true,
      });
      let x: HostTensor<"float32">;
      if (t.dtype === "uint8" && t.shape.length === 3) {
        x = normalizeTin({ dtype: "uint8", shape: t.shape, data: t.data as Uint8Array });
      } else if (t.dtype === "float32" && t.shape.length === 4 && t.shape[3] === 1) {
        x = t as HostTensor<"float32">;
      } else {
        throw CotrainError.invalidArgument(
          `images: ${t.dtype} [${t.shape}]; expected uint8 [N, H, W] or float32 [N, H, W, 1]`,
        );
      }
      if (x.shape[1] < 16 || x.shape[2] < 16) {
        throw CotrainError.invalidArgument(`images: ${x.shape[1]}x${x.shape[2]}; at least 16x16`);
      }
      const [logits, labels] = tf.tidy(() => {
        const out = classify(
          model,
          tf.tensor4d(x.data, x.shape as [number, number, number, number]),
        );
        return [out.dataSync() as Float32Array, tf.argMax(out, 1).dataSync() as Int32Array];
      });
      const n = x.shape[0];
      return {
        logits: encodeTensor({ dtype: "float32", shape: [n, logits.length / n], data: logits }),
        labels: encodeTensor({ dtype: "int32", shape: [n], data: Int32Array.from(labels) }),
      };
    },
  };
}

/** An Open Inference Protocol model of a trained classifier: images NHWC -> logits. */
function oipModel(name: string, model: MtlModel): OipModel {
  const classes = model.vgg.head?.classes ?? 0;
  return {
    name,
    version: "1",
    platform: "tfjs",
    inputs: [{ name: "images", datatype: "FP32", shape: [-1, -1, -1, 1], layout: "NHWC" }],
    outputs: [{ name: "logits", datatype: "FP32", shape: [-1, classes], layout: "NC" }],
    infer(inputs) {
      const x = inputs.images;
      if (x.shape[1] < 16 || x.shape[2] < 16) {
        throw CotrainError.invalidArgument(`inputs[0].shape: images of at least 16x16 are needed`);
      }
      const logits = tf.tidy(() =>
        classify(
          model,
          tf.tensor4d(x.data as Float32Array, x.shape as [number, number, number, number]),
        )
          .dataSync() as Float32Array
      );
      return Promise.resolve({
        logits: { datatype: "FP32", shape: [x.shape[0], classes], data: logits },
      });
    },
  };
}
