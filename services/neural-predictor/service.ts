/**
 * Handlers of `cotrain.v1.NeuralPredictor` (protos/cotrain/v1/neural_predictor.proto): Train runs
 * core/train/predictor.ts as a content-keyed, resumable job (platform/jobs); Predict,
 * PredictDataset and Evaluate load checkpoints from the store (cached, by sha256) and run them on
 * tfjs or on their ONNX export with onnxruntime. Every loaded checkpoint is also registered with the
 * Open Inference Protocol registry (platform/oip) under its `model_name`. Evaluate also takes a
 * classifier-trainer model checkpoint (kind `mtl`) of a co-trained network: its shared trunk and
 * Gaussian readout run in eval mode on the V1 test images (cropped, resized to `input_size`, the
 * side of the images it was co-trained on, and normalised as for a predictor): Fig. 3C's FEVe.
 *
 * @example
 * ```ts ignore
 * import { neuralPredictorHandlers, NeuralPredictorModels } from "./service.ts";
 * import { OipRegistry } from "../../platform/oip/oip.ts";
 * import { openStore } from "../../platform/store/mod.ts";
 * const store = openStore("file:///tmp/cotrain");
 * const models = new NeuralPredictorModels(store, new OipRegistry());
 * const handlers = neuralPredictorHandlers({ store, models, inlineLimitBytes: 4 << 20 });
 * ```
 * @module
 */
import { decodeV1Arrays, toModelInput } from "../../core/data/v1_arrays.ts";
import type { NdArray } from "../../core/io/mod.ts";
import { createOnnxSession, type OnnxSession } from "../../core/engine/onnx/mod.ts";
import {
  assignTrunk,
  createPredictor,
  disposePredictor,
  evaluateMtlNeural,
  evaluatePredictor,
  exportPredictorOnnx,
  loadPredictor,
  predict,
  predictMtlNeural,
  type Predictor,
  type PredictorEvaluation,
  PredictorTrainer,
  type PredictorTrainOptions,
  savePredictor,
  scorePredictions,
  trunkOfCheckpoint,
} from "../../core/train/predictor.ts";
import { preparePredictorData } from "../../core/train/predictor_data.ts";
import { loadMtlCheckpoint, MODEL_KIND } from "../../core/train/classifier_checkpoint.ts";
import { disposeMtl, type MtlModel } from "../../core/models/mtl.ts";
import { CotrainError } from "../../platform/errors.ts";
import { canonicalJson, JobRunner, requestKey } from "../../platform/jobs/jobs.ts";
import type { OipRegistry } from "../../platform/oip/oip.ts";
import type { CallContext, ServiceHandlers } from "../../platform/rpc/server.ts";
import type { ObjectStore } from "../../platform/store/types.ts";
import {
  type HostTensor,
  resolveTensor,
  resolveTensorRef,
  sha256Hex,
  storeTensor,
  tensorOrRef,
  type TensorOrRefMsg,
  type TensorRefMsg,
} from "../../platform/tensor/tensor.ts";
import { yieldTurn } from "../../core/event_loop.ts";

/** Fully qualified service name. */
export const NEURAL_PREDICTOR_SERVICE = "cotrain.v1.NeuralPredictor";
/** The service's .proto (relative to protos/). */
export const NEURAL_PREDICTOR_PROTO = "cotrain/v1/neural_predictor.proto";
/** Media types of the artefacts. */
export const SAFETENSORS_MEDIA_TYPE = "application/vnd.cotrain.safetensors";
export const ONNX_MEDIA_TYPE = "application/onnx";

const ONNX_BATCH = 256;

/** A checkpoint loaded for inference. */
export interface LoadedPredictor {
  /** `predictor-<first 12 hex digits of the checkpoint's sha256>`. */
  name: string;
  uri: string;
  predictor: Predictor;
  /** The ONNX session, created on first use. */
  onnx(): Promise<OnnxSession>;
  /** Frees the session (if one was created). */
  release(): Promise<void>;
}

/** Loaded checkpoints by sha256, registered with the OIP registry as they load. */
export class NeuralPredictorModels {
  readonly store: ObjectStore;
  readonly registry: OipRegistry;
  #bySha = new Map<string, Promise<LoadedPredictor>>();

  constructor(store: ObjectStore, registry: OipRegistry) {
    this.store = store;
    this.registry = registry;
  }

  /**
   * The store key and object info of the checkpoint at `uri`: INVALID_ARGUMENT naming `field` for
   * an empty uri or one outside the store, NOT_FOUND when nothing is there.
   */
  async #locate(uri: string, field: string) {
    if (!uri) throw CotrainError.invalidArgument(`${field}: empty; pass a checkpoint's uri`);
    let key: string;
    try {
      key = this.store.keyOf(uri);
    } catch (err) {
      throw CotrainError.invalidArgument(`${field}: ${(err as Error).message}`);
    }
    const info = await this.store.stat(key);
    if (!info) throw CotrainError.notFound(`${field}: no checkpoint at ${uri}`);
    return { key, info };
  }

  /** Loads (or returns the cached) checkpoint at `uri`; NOT_FOUND when it does not exist. */
  async load(uri: string, field = "checkpoint_uri"): Promise<LoadedPredictor> {
    const { key, info } = await this.#locate(uri, field);
    const cached = this.#bySha.get(info.sha256);
    if (cached) return await cached;
    const loading = (async () => {
      const bytes = await this.store.get(key);
      let predictor: Predictor;
      try {
        predictor = loadPredictor(bytes);
      } catch (err) {
        throw CotrainError.invalidArgument(`${field}: ${uri}: ${(err as Error).message}`);
      }
      return this.#register(uri, info.sha256, predictor);
    })();
    this.#bySha.set(info.sha256, loading);
    try {
      return await loading;
    } catch (err) {
      this.#bySha.delete(info.sha256);
      throw err;
    }
  }

  /**
   * What the checkpoint at `uri` is: a predictor (loaded, cached) or a classifier-trainer model
   * checkpoint (kind `mtl`, loaded for the caller, who disposes it). NOT_FOUND when absent,
   * INVALID_ARGUMENT naming `field` for anything else.
   */
  async loadNetwork(uri: string, field = "checkpoint_uri"): Promise<LoadedNetwork> {
    const { key, info } = await this.#locate(uri, field);
    if (this.#bySha.has(info.sha256)) {
      return { kind: PREDICTOR_CHECKPOINT, loaded: await this.load(uri, field) };
    }
    const bytes = await this.store.get(key);
    const kind = checkpointKind(bytes);
    if (kind === PREDICTOR_CHECKPOINT) {
      return { kind: PREDICTOR_CHECKPOINT, loaded: await this.load(uri, field) };
    }
    if (kind !== MODEL_KIND) {
      throw CotrainError.invalidArgument(
        `${field}: ${uri} is ${
          kind === null ? "not a cotrain checkpoint" : `a ${kind} checkpoint`
        }` +
          `; expected a predictor checkpoint or a classifier-trainer model checkpoint (mtl)`,
      );
    }
    let model: MtlModel;
    try {
      model = loadMtlCheckpoint(bytes);
    } catch (err) {
      throw CotrainError.invalidArgument(`${field}: ${uri}: ${(err as Error).message}`);
    }
    if (!model.readout) {
      disposeMtl(model);
      throw CotrainError.invalidArgument(
        `${field}: ${uri} is a classifier without a readout (neurons: 0, a Baseline or an ` +
          `Oracle): it has no neural branch to evaluate`,
      );
    }
    if (model.config.inChannels !== 1) {
      const c = model.config.inChannels;
      disposeMtl(model);
      throw CotrainError.invalidArgument(
        `${field}: the network takes ${c} input channels; V1 images are gray (1 channel)`,
      );
    }
    return { kind: MODEL_KIND, name: `mtl-${info.sha256.slice(0, 12)}`, model };
  }

  #register(uri: string, sha: string, predictor: Predictor): LoadedPredictor {
    let session: Promise<OnnxSession> | null = null;
    const name = `predictor-${sha.slice(0, 12)}`;
    const loaded: LoadedPredictor = {
      name,
      uri,
      predictor,
      onnx: () => (session ??= createOnnxSession(exportPredictorOnnx(predictor))),
      release: async () => {
        if (session) await (await session).release();
        session = null;
      },
    };
    const s = predictor.config.inputSize;
    this.registry.add({
      name,
      version: "1",
      platform: "onnxruntime_onnx",
      inputs: [{ name: "images", datatype: "FP32", shape: [-1, s, s, 1], layout: "NHWC" }],
      outputs: [{
        name: "responses",
        datatype: "FP32",
        shape: [-1, predictor.neurons],
        layout: "NC",
      }],
      infer: async (inputs) => {
        const x = inputs.images;
        const y = await runOnnx(loaded, x.data as Float32Array, x.shape);
        return { responses: { datatype: "FP32", shape: [x.shape[0], predictor.neurons], data: y } };
      },
    });
    return loaded;
  }

  /** Frees every loaded model. */
  async dispose(): Promise<void> {
    for (const p of this.#bySha.values()) {
      try {
        const m = await p;
        this.registry.remove(m.name);
        disposePredictor(m.predictor);
        await m.release();
      } catch {
        // a failed load holds nothing
      }
    }
    this.#bySha.clear();
  }
}

/** `cotrain.kind` of predictor checkpoints. */
const PREDICTOR_CHECKPOINT = "predictor";

/** A checkpoint {@linkcode NeuralPredictorModels.loadNetwork} loaded. */
export type LoadedNetwork =
  | { kind: "predictor"; loaded: LoadedPredictor }
  | { kind: "mtl"; name: string; model: MtlModel };

/**
 * `cotrain.kind` from a safetensors checkpoint's header alone (no tensor is decoded), or null when
 * the bytes are not a safetensors file with that metadata.
 */
export function checkpointKind(bytes: Uint8Array): string | null {
  if (bytes.length < 8) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true);
  if (view.getUint32(4, true) !== 0 || n < 2 || n > bytes.length - 8) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const kind = header?.__metadata__?.["cotrain.kind"];
    return typeof kind === "string" ? kind : null;
  } catch {
    return null;
  }
}

async function runOnnx(
  m: LoadedPredictor,
  x: Float32Array,
  shape: number[],
): Promise<Float32Array> {
  const session = await m.onnx();
  const [n, h, w] = shape;
  const k = m.predictor.neurons;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i += ONNX_BATCH) {
    const b = Math.min(ONNX_BATCH, n - i);
    const r = await session.run(x.subarray(i * h * w, (i + b) * h * w), [b, h, w, 1]);
    out.set(r.data, i * k);
  }
  return out;
}

/** What the handlers need. */
export interface NeuralPredictorDeps {
  store: ObjectStore;
  models: NeuralPredictorModels;
  inlineLimitBytes: number;
}

/** Wire form of PredictorTrainOptions. */
export interface TrainOptionsMsg {
  width?: number;
  input_size?: number;
  crop?: number;
  batch_size?: number;
  max_epochs?: number;
  lr?: number;
  weight_decay?: number;
  readout_l1?: number;
  lr_decay_factor?: number;
  patience?: number;
  max_drops?: number;
  min_lr?: number;
  seed?: number;
}

/** The request's options with defaults filled in (zero = default), checked. */
export function trainOptions(o: TrainOptionsMsg | null | undefined): {
  width: number;
  inputSize: number;
  crop: number;
  seed: number;
  train: Required<Omit<PredictorTrainOptions, "seed" | "freezeTrunk">>;
} {
  const or = (v: number | undefined, d: number) => (v ? Number(v) : d);
  const out = {
    width: or(o?.width, 1),
    inputSize: or(o?.input_size, 64),
    crop: or(o?.crop, 0),
    seed: Number(o?.seed ?? 0),
    train: {
      batchSize: or(o?.batch_size, 128),
      maxEpochs: or(o?.max_epochs, 150),
      lr: or(o?.lr, 5e-4),
      weightDecay: or(o?.weight_decay, 5e-4),
      readoutL1: or(o?.readout_l1, 0.5),
      factor: or(o?.lr_decay_factor, 0.5),
      patience: or(o?.patience, 5),
      maxDrops: or(o?.max_drops, 5),
      minLr: or(o?.min_lr, 1e-4),
    },
  };
  const positive: [string, number][] = [
    ["options.width", out.width],
    ["options.lr", out.train.lr],
    ["options.lr_decay_factor", out.train.factor],
    ["options.min_lr", out.train.minLr],
  ];
  for (const [f, v] of positive) {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw CotrainError.invalidArgument(`${f}: ${v}; must be > 0`);
    }
  }
  if (out.train.factor >= 1) {
    throw CotrainError.invalidArgument(`options.lr_decay_factor: ${out.train.factor}; must be < 1`);
  }
  const whole: [string, number, number][] = [
    ["options.input_size", out.inputSize, 8],
    ["options.batch_size", out.train.batchSize, 1],
    ["options.max_epochs", out.train.maxEpochs, 1],
    ["options.patience", out.train.patience, 0],
    ["options.max_drops", out.train.maxDrops, 0],
    ["options.crop", out.crop, 0],
  ];
  for (const [f, v, lo] of whole) {
    if (!Number.isInteger(v) || v < lo) {
      throw CotrainError.invalidArgument(`${f}: ${v}; a whole number >= ${lo}`);
    }
  }
  if (out.inputSize > 512) {
    throw CotrainError.invalidArgument(`options.input_size: ${out.inputSize}; at most 512`);
  }
  return out;
}

/**
 * Images of a request as model inputs [N, S, S, 1] for `p` (INVALID_ARGUMENT naming `field`):
 * float32 [N, S, S, 1] are model inputs already (TIN-normalised); [N, H, W] (uint8 0..255 or
 * float32 0..1) and uint8 [N, H, W, 1] are raw gray images, centre-cropped, resized and normalised.
 */
export function modelInputs(t: HostTensor, s: number, field = "images"): NdArray<"float32"> {
  const shape = t.shape;
  if (t.dtype !== "uint8" && t.dtype !== "float32") {
    throw CotrainError.invalidArgument(`${field}: dtype ${t.dtype}; uint8 or float32`);
  }
  if (shape[0] === 0) throw CotrainError.invalidArgument(`${field}: no images (N = 0)`);
  const raw = shape.length === 3 || (t.dtype === "uint8" && shape.length === 4 && shape[3] === 1);
  if (raw) {
    try {
      return toModelInput(
        { dtype: t.dtype, shape: shape.slice(0, 3), data: t.data } as NdArray,
        { size: s },
      );
    } catch (err) {
      throw CotrainError.invalidArgument(`${field}: ${(err as Error).message}`);
    }
  }
  if (shape.length !== 4 || shape[1] !== s || shape[2] !== s || shape[3] !== 1) {
    throw CotrainError.invalidArgument(
      `${field}: ${t.dtype} shape [${shape}]; this checkpoint takes model inputs float32 ` +
        `[N, ${s}, ${s}, 1] (TIN-normalised), or raw gray images [N, H, W]`,
    );
  }
  return { dtype: "float32", shape: [shape[0], s, s, 1], data: t.data as Float32Array };
}

/** Engine name of the wire enum. */
function engineOf(e: string | undefined): "tfjs" | "onnxruntime" {
  if (!e || e === "PREDICT_ENGINE_UNSPECIFIED" || e === "PREDICT_ENGINE_TFJS") return "tfjs";
  if (e === "PREDICT_ENGINE_ONNXRUNTIME") return "onnxruntime";
  throw CotrainError.invalidArgument(
    `engine: unknown ${JSON.stringify(e)}; PREDICT_ENGINE_TFJS or PREDICT_ENGINE_ONNXRUNTIME`,
  );
}

async function runPredict(
  m: LoadedPredictor,
  x: NdArray<"float32">,
  engine: "tfjs" | "onnxruntime",
  ctx?: CallContext,
): Promise<Float32Array> {
  if (engine === "onnxruntime") return await runOnnx(m, x.data, x.shape);
  const [n, h, w] = x.shape;
  const k = m.predictor.neurons;
  const out = new Float32Array(n * k);
  const chunk = 256;
  for (let i = 0; i < n; i += chunk) {
    ctx?.throwIfCancelled();
    const b = Math.min(chunk, n - i);
    out.set(predict(m.predictor, x.data.subarray(i * h * w, (i + b) * h * w), [b, h, w, 1]), i * k);
    await yieldTurn();
  }
  return out;
}

/** Wire form of PredictorMetrics. */
export function metricsMsg(e: PredictorEvaluation) {
  const num = (v: number) => (Number.isFinite(v) ? v : 0);
  return {
    images: e.images,
    single_trial_correlation: num(e.singleTrialCorrelation),
    correlation_to_average: num(e.correlationToAverage),
    fev: num(e.fev),
    feve: num(e.feve),
    ceiling_feve: num(e.ceilingFeve ?? 0),
    has_ceiling: e.ceilingFeve !== undefined,
    feve_per_neuron: e.perNeuron.feve.map(num),
    correlation_per_neuron: e.perNeuron.correlationToAverage.map(num),
  };
}

async function readDataset(store: ObjectStore, uri: string, field = "dataset_uri") {
  if (!uri) throw CotrainError.invalidArgument(`${field}: empty; pass the uri of a V1 .npz`);
  let key: string;
  try {
    key = store.keyOf(uri);
  } catch (err) {
    throw CotrainError.invalidArgument(`${field}: ${(err as Error).message}`);
  }
  const info = await store.stat(key);
  if (!info) throw CotrainError.notFound(`${field}: no data set at ${uri}`);
  return { key, info };
}

async function loadDataset(store: ObjectStore, key: string, uri: string, field = "dataset_uri") {
  try {
    return decodeV1Arrays(await store.get(key));
  } catch (err) {
    throw CotrainError.invalidArgument(`${field}: ${uri}: ${(err as Error).message}`);
  }
}

/**
 * The checkpoint named by `frozen_trunk_uri`: NOT_FOUND when absent, INVALID_ARGUMENT when it is
 * not a classifier or predictor checkpoint, or its width disagrees with a requested one.
 */
async function readFrozenTrunk(
  store: ObjectStore,
  uri: string,
  width: number | undefined,
): Promise<{ bytes: Uint8Array; sha256: string; width: number }> {
  const field = "frozen_trunk_uri";
  let key: string;
  try {
    key = store.keyOf(uri);
  } catch (err) {
    throw CotrainError.invalidArgument(`${field}: ${(err as Error).message}`);
  }
  const info = await store.stat(key);
  if (!info) throw CotrainError.notFound(`${field}: no checkpoint at ${uri}`);
  const bytes = await store.get(key);
  const { width: w, tensors } = trunkOfCheckpoint(bytes, field);
  for (const t of tensors.values()) t.dispose();
  if (width && Number(width) !== w) {
    throw CotrainError.invalidArgument(
      `options.width: ${width}, but the frozen trunk's checkpoint has width ${w} (pass 0 to take it)`,
    );
  }
  return { bytes, sha256: info.sha256, width: w };
}

interface TrainState {
  epoch: number;
  checkpointKey: string;
}

interface TrainResultJson {
  checkpoint: { uri: string; sha256: string; media_type: string; size_bytes: number };
  onnx: { uri: string; sha256: string; media_type: string; size_bytes: number };
  model_name: string;
  epochs: number;
  best_epoch: number;
  best_val_correlation: number;
  stopped: string;
  test: ReturnType<typeof metricsMsg> | null;
  neurons: number;
  input_size: number;
}

/** The handlers of the service. */
export function neuralPredictorHandlers(deps: NeuralPredictorDeps): ServiceHandlers {
  const { store, models } = deps;
  const jobs = new JobRunner(store, "neural-predictor-train");

  return {
    async *Train(
      req: { dataset_uri: string; options?: TrainOptionsMsg; frozen_trunk_uri?: string },
      ctx: CallContext,
    ) {
      const { key: dataKey, info } = await readDataset(store, req.dataset_uri);
      const opts = trainOptions(req.options);
      const frozen = req.frozen_trunk_uri
        ? await readFrozenTrunk(store, req.frozen_trunk_uri, req.options?.width)
        : null;
      if (frozen) opts.width = frozen.width;
      const canonical = {
        dataset_sha256: info.sha256,
        options: opts,
        ...(frozen ? { frozen_trunk_sha256: frozen.sha256 } : {}),
      };
      const key = await requestKey(canonical);
      const started = performance.now();
      let trainer: PredictorTrainer | null = null;
      let finished = false;
      const work = async function* (job: {
        prefix: string;
        state: TrainState | null;
        save(s: TrainState): Promise<void>;
      }): AsyncGenerator<Record<string, unknown>, TrainResultJson> {
        const v1 = await loadDataset(store, dataKey, req.dataset_uri);
        let data;
        try {
          data = preparePredictorData(v1, { size: opts.inputSize, crop: opts.crop || undefined });
        } catch (err) {
          throw CotrainError.invalidArgument(`dataset_uri: ${(err as Error).message}`);
        }
        if (job.state) {
          trainer = PredictorTrainer.restore(await store.get(job.state.checkpointKey), data);
          yield {
            progress: {
              stage: "resume",
              epoch: trainer.epoch,
              done: trainer.epoch,
              total: opts.train.maxEpochs,
              message: `resumed after epoch ${trainer.epoch}`,
            },
          };
        } else {
          const predictor = createPredictor({
            width: opts.width,
            seed: opts.seed,
            inputSize: opts.inputSize,
            sessions: data.sessions,
          });
          if (frozen) {
            const { tensors } = trunkOfCheckpoint(frozen.bytes);
            try {
              assignTrunk(predictor, tensors);
            } finally {
              for (const t of tensors.values()) t.dispose();
            }
          }
          trainer = new PredictorTrainer(predictor, data, {
            ...opts.train,
            seed: opts.seed,
            freezeTrunk: frozen !== null,
          });
        }
        const t = trainer;
        while (!t.finished) {
          const r = await t.runEpoch(ctx.signal);
          const ckKey = `${job.prefix}train_state.safetensors`;
          await store.put(ckKey, t.checkpoint(), { contentType: SAFETENSORS_MEDIA_TYPE });
          await job.save({ epoch: t.epoch, checkpointKey: ckKey });
          yield {
            progress: {
              stage: "train",
              epoch: r.epoch,
              done: r.epoch,
              total: opts.train.maxEpochs,
              metrics: {
                loss: r.loss,
                val_correlation: Number.isFinite(r.valCorrelation) ? r.valCorrelation : 0,
                lr: r.lr,
                best: Number.isFinite(r.best) ? r.best : 0,
                images_per_s: r.images / r.seconds,
              },
              message: r.decayed ? "lr lowered, best weights restored" : r.improved ? "best" : "",
              elapsed_s: (performance.now() - started) / 1000,
            },
          };
        }
        const p = t.predictor;
        const ckBytes = savePredictor(p);
        const onnxBytes = exportPredictorOnnx(p);
        const ck = await store.put(`${job.prefix}predictor.safetensors`, ckBytes, {
          contentType: SAFETENSORS_MEDIA_TYPE,
        });
        const ox = await store.put(`${job.prefix}predictor.onnx`, onnxBytes, {
          contentType: ONNX_MEDIA_TYPE,
        });
        const hasTest = data.split.includes(2);
        const test = hasTest ? metricsMsg(evaluatePredictor(p, data)) : null;
        const summary = t.finished!;
        finished = true;
        t.dispose();
        disposePredictor(p);
        return {
          checkpoint: {
            uri: store.uri(ck.key),
            sha256: ck.sha256,
            media_type: SAFETENSORS_MEDIA_TYPE,
            size_bytes: ck.size,
          },
          onnx: {
            uri: store.uri(ox.key),
            sha256: ox.sha256,
            media_type: ONNX_MEDIA_TYPE,
            size_bytes: ox.size,
          },
          model_name: `predictor-${ck.sha256.slice(0, 12)}`,
          epochs: summary.epochs,
          best_epoch: summary.bestEpoch,
          best_val_correlation: Number.isFinite(summary.bestValCorrelation)
            ? summary.bestValCorrelation
            : 0,
          stopped: summary.stopped,
          test,
          neurons: p.neurons,
          input_size: p.config.inputSize,
        };
      };
      try {
        for await (
          const ev of jobs.run<TrainState, Record<string, unknown>, TrainResultJson>(
            key,
            canonical,
            work,
          )
        ) {
          if (ev.kind === "progress") {
            yield ev.progress;
            continue;
          }
          const r = ev.result;
          await models.load(r.checkpoint.uri); // serve it over OIP at once
          yield {
            result: {
              ...r,
              state: ev.cached
                ? "JOB_STATE_CACHED"
                : ev.resumed
                ? "JOB_STATE_RESUMED"
                : "JOB_STATE_DONE",
            },
          };
        }
      } finally {
        // A cancelled call leaves the job's generator suspended: free its tensors here.
        const t = trainer as PredictorTrainer | null;
        if (t && !finished) {
          t.dispose();
          disposePredictor(t.predictor);
        }
      }
    },

    async Predict(
      req: { checkpoint_uri: string; images: TensorOrRefMsg; engine?: string },
      ctx: CallContext,
    ) {
      const engine = engineOf(req.engine);
      const m = await models.load(req.checkpoint_uri);
      const t = await resolveTensor(req.images, store, {
        field: "images",
        dtypes: ["uint8", "float32"],
        rejectNonFinite: true,
      });
      const x = modelInputs(t, m.predictor.config.inputSize);
      const y = await runPredict(m, x, engine, ctx);
      const out: HostTensor = {
        dtype: "float32",
        shape: [x.shape[0], m.predictor.neurons],
        data: y,
      };
      const inline = req.images?.kind !== "ref";
      const key = `predictions/${m.name}/${sha256Hex(new Uint8Array(y.buffer)).slice(0, 16)}.f32`;
      return {
        responses: await tensorOrRef(out, store, key, inline ? deps.inlineLimitBytes : 0),
        model_name: m.name,
      };
    },

    async PredictDataset(
      req: { checkpoint_uri: string; images: TensorRefMsg; engine?: string; batch_size?: number },
      ctx: CallContext,
    ) {
      const engine = engineOf(req.engine);
      const m = await models.load(req.checkpoint_uri);
      if (!req.images?.uri) throw CotrainError.invalidArgument("images: set a TensorRef (uri)");
      const outKey = `predictions/${m.name}/${
        sha256Hex(new TextEncoder().encode(canonicalJson({ ...req.images, engine })))
          .slice(0, 24)
      }.f32`;
      const t = await resolveTensorRef(req.images, store, {
        field: "images",
        dtypes: ["uint8", "float32"],
        rejectNonFinite: true,
      });
      const x = modelInputs(t, m.predictor.config.inputSize);
      const k = m.predictor.neurons;
      const shape = [x.shape[0], k];
      const existing = await store.stat(outKey);
      if (existing && existing.size === x.shape[0] * k * 4) {
        return {
          responses: {
            uri: store.uri(outKey),
            sha256: existing.sha256,
            dtype: "DTYPE_FLOAT32",
            shape,
          },
          model_name: m.name,
          cached: true,
        };
      }
      const y = await runPredict(m, x, engine, ctx);
      const ref = await storeTensor({ dtype: "float32", shape, data: y }, store, outKey);
      return { responses: ref, model_name: m.name, cached: false };
    },

    async Evaluate(req: {
      checkpoint_uri: string;
      dataset_uri?: string;
      images?: TensorOrRefMsg;
      responses?: TensorOrRefMsg;
      input_size?: number;
    }, ctx: CallContext) {
      const requested = Number(req.input_size ?? 0);
      if (!Number.isInteger(requested) || requested < 0 || (requested > 0 && requested < 8)) {
        throw CotrainError.invalidArgument(
          `input_size: ${req.input_size}; a whole number >= 8 (or 0 for the default)`,
        );
      }
      const net = await models.loadNetwork(req.checkpoint_uri);
      // what runs: the predictor, or the MTL network's trunk -> readout (eval mode)
      let size: number, neurons: number, name: string, what: string;
      let respond: (x: NdArray<"float32">) => Promise<Float32Array>;
      let evaluate: (data: ReturnType<typeof preparePredictorData>) => PredictorEvaluation;
      if (net.kind === "predictor") {
        const m = net.loaded;
        size = m.predictor.config.inputSize;
        if (requested && requested !== size) {
          throw CotrainError.invalidArgument(
            `input_size: ${requested}; this predictor checkpoint takes ${size} (pass 0)`,
          );
        }
        neurons = m.predictor.neurons;
        name = m.name;
        what = "the checkpoint predicts";
        respond = (x) => runPredict(m, x, "tfjs", ctx);
        evaluate = (data) => evaluatePredictor(m.predictor, data);
      } else {
        const model = net.model;
        size = requested || 64;
        neurons = model.config.neurons;
        name = net.name;
        what = "the checkpoint's readout predicts";
        respond = (x) => Promise.resolve(predictMtlNeural(model, x.data, x.shape));
        evaluate = (data) => evaluateMtlNeural(model, data);
      }
      try {
        let e: PredictorEvaluation;
        if (req.dataset_uri) {
          const { key } = await readDataset(store, req.dataset_uri);
          const v1 = await loadDataset(store, key, req.dataset_uri);
          if (v1.responses.shape[2] !== neurons) {
            throw CotrainError.invalidArgument(
              `dataset_uri: ${v1.responses.shape[2]} neurons; ${what} ${neurons}`,
            );
          }
          let data;
          try {
            data = preparePredictorData(v1, { size });
          } catch (err) {
            throw CotrainError.invalidArgument(`dataset_uri: ${(err as Error).message}`);
          }
          if (!data.split.includes(2)) {
            throw CotrainError.invalidArgument("dataset_uri: the data set has no test images");
          }
          ctx.throwIfCancelled();
          e = evaluate(data);
        } else {
          if (!req.images || !req.responses) {
            throw CotrainError.invalidArgument("set dataset_uri, or images and responses");
          }
          const t = await resolveTensor(req.images, store, {
            field: "images",
            dtypes: ["uint8", "float32"],
            rejectNonFinite: true,
          });
          const x = modelInputs(t, size);
          const r = await resolveTensor(req.responses, store, {
            field: "responses",
            dtypes: ["float32"],
          });
          const n = x.shape[0];
          if (r.shape.length !== 3 || r.shape[1] !== n || r.shape[2] !== neurons) {
            throw CotrainError.invalidArgument(
              `responses: shape [${r.shape}] disagrees with images (${n}) and the checkpoint ` +
                `(${neurons} neurons); expected [repeats, ${n}, ${neurons}]`,
            );
          }
          const pred = await respond(x);
          e = scorePredictions(r.data as Float32Array, pred, [r.shape[0], n, neurons]);
        }
        return {
          metrics: metricsMsg(e),
          model_name: name,
          checkpoint_kind: net.kind,
          input_size: size,
        };
      } finally {
        if (net.kind === "mtl") disposeMtl(net.model);
      }
    },
  };
}
