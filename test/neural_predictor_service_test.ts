/**
 * neural-predictor over real gRPC on loopback, with the Open Inference Protocol on the same port:
 * Train (streamed progress, artefacts, idempotent replay, resume after a killed run), Predict
 * (inline and by reference, tfjs and onnxruntime), OIP ModelInfer equal to Predict,
 * PredictDataset, Evaluate (of predictors and of an MTL network's neural branch: the FEVe of
 * Fig. 3C), and every bad-input path, after which the service still answers.
 */
import { assert, assertClose, assertEquals, assertRejectsCode } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { pinkNoiseImages, simulateV1 } from "../core/data/simulated_v1.ts";
import { encodeV1Arrays, toModelInput } from "../core/data/v1_arrays.ts";
import {
  createPredictor,
  disposePredictor,
  loadPredictor,
  predict,
} from "../core/train/predictor.ts";
import * as tf from "@tensorflow/tfjs-core";
import {
  createMtl,
  disposeMtl,
  mtlParams,
  predictNeural,
  sharedParamNames,
} from "../core/models/mtl.ts";
import { loadMtlCheckpoint, saveMtlCheckpoint } from "../core/train/classifier_checkpoint.ts";
import { trainClassifier } from "../core/train/classifier.ts";
import { loadDataset } from "../core/data/datasets.ts";
import { fev } from "../core/metrics/neural.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import { testConfig } from "./fixtures/test_service.ts";
import { OIP_PROTO, OIP_SERVICE, oipHandlers, OipRegistry } from "../platform/oip/oip.ts";
import {
  decodeTensor,
  encodeTensor,
  type HostTensor,
  resolveTensorRef,
  storeTensor,
  type TensorOrRefMsg,
  type TensorRefMsg,
} from "../platform/tensor/tensor.ts";
import {
  NEURAL_PREDICTOR_PROTO,
  NEURAL_PREDICTOR_SERVICE,
  neuralPredictorHandlers,
  NeuralPredictorModels,
} from "../services/neural-predictor/service.ts";

await initBackend("wasm");

const CONFIG = testConfig();

const SIZE = 32;
const SIM = simulateV1(pinkNoiseImages(160, 64, 3), {
  neurons: 6,
  sessions: 2,
  testImages: 16,
  testRepeats: 8,
  seed: 3,
});

interface Ctx {
  np: RpcClient;
  oip: RpcClient;
  store: FileStore;
  dataset: string;
  restart(): Promise<void>;
}

async function withService(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-np-" });
  const store = new FileStore(`file://${dir}`);
  const info = await store.put("data/v1.npz", encodeV1Arrays(SIM.arrays));
  let server: RpcServer, models: NeuralPredictorModels, np: RpcClient, oip: RpcClient;
  const start = async () => {
    const registry = new OipRegistry();
    models = new NeuralPredictorModels(store, registry);
    server = new RpcServer({
      name: "neural-predictor",
      protoFiles: [NEURAL_PREDICTOR_PROTO, OIP_PROTO],
      services: {
        [NEURAL_PREDICTOR_SERVICE]: neuralPredictorHandlers({
          store,
          models,
          inlineLimitBytes: 4 << 20,
        }),
        [OIP_SERVICE]: oipHandlers(registry, { name: "neural-predictor", version: "test" }),
      },
      config: CONFIG,
    });
    await server.start();
    server.setServing(true);
    np = new RpcClient({
      protoFiles: [NEURAL_PREDICTOR_PROTO],
      service: NEURAL_PREDICTOR_SERVICE,
      target: server.address,
    });
    oip = new RpcClient({ protoFiles: [OIP_PROTO], service: OIP_SERVICE, target: server.address });
  };
  const stop = async () => {
    np.close();
    oip.close();
    await server.shutdown();
    await models.dispose();
  };
  await start();
  const ctx: Ctx = {
    get np() {
      return np;
    },
    get oip() {
      return oip;
    },
    store,
    dataset: store.uri(info.key),
    restart: async () => {
      await stop();
      await start();
    },
  };
  try {
    await fn(ctx);
  } finally {
    await stop();
    await Deno.remove(dir, { recursive: true });
  }
}

interface Artifact {
  uri: string;
  sha256: string;
  media_type: string;
}
interface TrainEvent {
  progress?: { stage: string; epoch: number; metrics: Record<string, number>; message: string };
  result?: {
    checkpoint: Artifact;
    onnx: Artifact;
    model_name: string;
    epochs: number;
    state: string;
    neurons: number;
    test: { feve: number; has_ceiling: boolean; ceiling_feve: number };
  };
}

const OPTIONS = { width: 0.125, input_size: SIZE, batch_size: 32, max_epochs: 2, lr: 2e-3 };

async function train(
  np: RpcClient,
  dataset: string,
  options: Record<string, number>,
  stopAfterEpoch = 0,
): Promise<TrainEvent[]> {
  const events: TrainEvent[] = [];
  for await (const ev of np.stream<TrainEvent>("Train", { dataset_uri: dataset, options })) {
    events.push(ev);
    if (stopAfterEpoch && ev.progress?.stage === "train" && ev.progress.epoch >= stopAfterEpoch) {
      break; // cancels the call: the job is killed mid-way
    }
  }
  return events;
}

/** An inline TensorOrRef. */
function tensorMsg(t: HostTensor): TensorOrRefMsg {
  return { inline: encodeTensor(t) } as TensorOrRefMsg;
}

function testImages(n = 5): Float32Array {
  const x = toModelInput(SIM.arrays.images, { size: SIZE });
  return x.data.slice(0, n * SIZE * SIZE);
}

Deno.test("neural-predictor: Train, Predict, OIP, PredictDataset, Evaluate, errors", async () => {
  await withService(async (c) => {
    // Train: per-epoch progress, then the result with both artefacts.
    const events = await train(c.np, c.dataset, OPTIONS);
    const progress = events.filter((e) => e.progress).map((e) => e.progress!);
    assertEquals(progress.map((p) => p.epoch), [1, 2]);
    for (const p of progress) {
      for (const k of ["loss", "val_correlation", "lr"]) assert(k in p.metrics, `metric ${k}`);
    }
    const result = events.at(-1)!.result!;
    assertEquals(result.state, "JOB_STATE_DONE");
    assertEquals(result.epochs, 2);
    assertEquals(result.neurons, 6);
    assert(result.test.has_ceiling && result.test.ceiling_feve > 0.8, "ceiling reported");
    assertEquals(result.onnx.media_type, "application/onnx");
    const ckBytes = await c.store.get(c.store.keyOf(result.checkpoint.uri));

    // Idempotent: the same request returns the stored result.
    const again = await train(c.np, c.dataset, OPTIONS);
    assertEquals(again.length, 1);
    assertEquals(again[0].result!.state, "JOB_STATE_CACHED");
    assertEquals(again[0].result!.checkpoint.sha256, result.checkpoint.sha256);

    // Predict inline (tfjs) equals the library on the same checkpoint.
    const n = 5;
    const x = testImages(n);
    const images = {
      inline: encodeTensor({ dtype: "float32", shape: [n, SIZE, SIZE, 1], data: x }),
    };
    const res = await c.np.unary<{ responses: TensorOrRefMsg; model_name: string }>("Predict", {
      checkpoint_uri: result.checkpoint.uri,
      images,
    });
    assertEquals(res.model_name, result.model_name);
    const got = decodeTensor(res.responses.inline).data as Float32Array;
    const p = loadPredictor(ckBytes);
    const want = predict(p, x, [n, SIZE, SIZE, 1]);
    disposePredictor(p);
    assertEquals([...got], [...want]);

    // onnxruntime engine agrees with tfjs.
    const resOnnx = await c.np.unary<{ responses: TensorOrRefMsg }>("Predict", {
      checkpoint_uri: result.checkpoint.uri,
      images,
      engine: "PREDICT_ENGINE_ONNXRUNTIME",
    });
    const gotOnnx = decodeTensor(resOnnx.responses.inline).data as Float32Array;
    for (let i = 0; i < got.length; i++) {
      assertClose(gotOnnx[i], got[i], 1e-4 * Math.max(1, Math.abs(got[i])), `onnx[${i}]`);
    }

    // OIP: metadata, readiness, and ModelInfer equal to Predict on onnxruntime.
    assertEquals((await c.oip.unary<{ live: boolean }>("ServerLive", {})).live, true);
    assertEquals((await c.oip.unary<{ ready: boolean }>("ServerReady", {})).ready, true);
    assertEquals(
      (await c.oip.unary<{ ready: boolean }>("ModelReady", { name: result.model_name })).ready,
      true,
    );
    assertEquals(
      (await c.oip.unary<{ ready: boolean }>("ModelReady", { name: "nope" })).ready,
      false,
    );
    const meta = await c.oip.unary<{
      platform: string;
      inputs: { name: string; datatype: string; shape: number[] }[];
      outputs: { name: string; shape: number[] }[];
    }>("ModelMetadata", { name: result.model_name });
    assertEquals(meta.inputs, [{ name: "images", datatype: "FP32", shape: [-1, SIZE, SIZE, 1] }]);
    assertEquals(meta.outputs[0].shape, [-1, 6]);
    assert(meta.platform.includes("images:NHWC"), meta.platform);
    const infer = await c.oip.unary<{
      outputs: {
        name: string;
        shape: number[];
        parameters: Record<string, { string_param: string }>;
      }[];
      raw_output_contents: Uint8Array[];
    }>("ModelInfer", {
      model_name: result.model_name,
      inputs: [{ name: "images", datatype: "FP32", shape: [n, SIZE, SIZE, 1] }],
      raw_input_contents: [new Uint8Array(x.buffer, x.byteOffset, x.byteLength)],
    });
    assertEquals(infer.outputs[0].shape, [n, 6]);
    assertEquals(infer.outputs[0].parameters.layout.string_param, "NC");
    const raw = infer.raw_output_contents[0];
    const oipOut = new Float32Array(Uint8Array.from(raw).buffer);
    assertEquals([...oipOut], [...gotOnnx]);
    for (let i = 0; i < got.length; i++) {
      assertClose(oipOut[i], got[i], 1e-4 * Math.max(1, Math.abs(got[i])), `oip[${i}]`);
    }
    await assertRejectsCode(
      c.oip.unary("ModelInfer", { model_name: "predictor-unknown", inputs: [] }),
      "NOT_FOUND",
    );
    const badShape = await assertRejectsCode(
      c.oip.unary("ModelInfer", {
        model_name: result.model_name,
        inputs: [{ name: "images", datatype: "FP32", shape: [1, 16, 16, 1] }],
        raw_input_contents: [new Uint8Array(16 * 16 * 4)],
      }),
      "INVALID_ARGUMENT",
    );
    assert(badShape.message.includes("inputs[0].shape"), badShape.message);

    // PredictDataset: the raw stored images by reference -> a stored [N, neurons] array; then cached.
    const imgRef = await storeTensor(
      SIM.arrays.images as unknown as HostTensor,
      c.store,
      "images/all.bin",
    );
    const pd = await c.np.unary<{ responses: TensorRefMsg; cached: boolean }>("PredictDataset", {
      checkpoint_uri: result.checkpoint.uri,
      images: imgRef,
    });
    assertEquals(pd.cached, false);
    assertEquals(pd.responses.shape, [160, 6]);
    const all = await resolveTensorRef(pd.responses, c.store);
    const first = (all.data as Float32Array).slice(0, n * 6);
    for (let i = 0; i < first.length; i++) assertClose(first[i], got[i], 1e-5, `dataset[${i}]`);
    const pd2 = await c.np.unary<{ responses: TensorRefMsg; cached: boolean }>("PredictDataset", {
      checkpoint_uri: result.checkpoint.uri,
      images: imgRef,
    });
    assertEquals(pd2.cached, true);
    assertEquals(pd2.responses.sha256, pd.responses.sha256);

    // Evaluate on the stored data set's test split equals Train's test metrics.
    const ev = await c.np.unary<{ metrics: { feve: number; has_ceiling: boolean } }>("Evaluate", {
      checkpoint_uri: result.checkpoint.uri,
      dataset_uri: c.dataset,
    });
    assertClose(ev.metrics.feve, result.test.feve, 1e-9);
    assertEquals(ev.metrics.has_ceiling, true);

    // Bad input: named fields, right codes.
    const errs: [string, () => Promise<unknown>, string, string][] = [
      [
        "unknown checkpoint",
        () => c.np.unary("Predict", { checkpoint_uri: c.store.uri("nope.safetensors"), images }),
        "NOT_FOUND",
        "checkpoint_uri",
      ],
      [
        "unknown data set",
        () =>
          c.np.unary("Evaluate", {
            checkpoint_uri: result.checkpoint.uri,
            dataset_uri: c.store.uri("nope.npz"),
          }),
        "NOT_FOUND",
        "dataset_uri",
      ],
      [
        "wrong image size",
        () =>
          c.np.unary("Predict", {
            checkpoint_uri: result.checkpoint.uri,
            images: {
              inline: encodeTensor({
                dtype: "float32",
                shape: [1, 16, 16, 1],
                data: new Float32Array(256),
              }),
            },
          }),
        "INVALID_ARGUMENT",
        "images",
      ],
      [
        "NaN image",
        () =>
          c.np.unary("Predict", {
            checkpoint_uri: result.checkpoint.uri,
            images: {
              inline: encodeTensor({
                dtype: "float32",
                shape: [1, SIZE, SIZE, 1],
                data: new Float32Array(SIZE * SIZE).fill(NaN),
              }),
            },
          }),
        "INVALID_ARGUMENT",
        "images",
      ],
      [
        "responses disagree with images",
        () =>
          c.np.unary("Evaluate", {
            checkpoint_uri: result.checkpoint.uri,
            images,
            responses: {
              inline: encodeTensor({
                dtype: "float32",
                shape: [2, n + 1, 6],
                data: new Float32Array(2 * (n + 1) * 6),
              }),
            },
          }),
        "INVALID_ARGUMENT",
        "responses",
      ],
      [
        "bad option",
        () => train(c.np, c.dataset, { ...OPTIONS, lr: -1 }),
        "INVALID_ARGUMENT",
        "options.lr",
      ],
    ];
    for (const [what, call, code, field] of errs) {
      const err = await assertRejectsCode(call, code);
      assert(err.message.includes(field), `${what}: ${err.message} should name ${field}`);
    }

    // Still serving.
    const after = await c.np.unary<{ responses: TensorOrRefMsg }>("Predict", {
      checkpoint_uri: result.checkpoint.uri,
      images,
    });
    assertEquals([...(decodeTensor(after.responses.inline).data as Float32Array)], [...got]);
  });
});

Deno.test("neural-predictor: a killed Train resumes from its last saved epoch", async () => {
  await withService(async (c) => {
    const options = { ...OPTIONS, max_epochs: 4, seed: 7 };
    const killed = await train(c.np, c.dataset, options, 2);
    assertEquals(killed.filter((e) => e.progress?.stage === "train").length, 2);
    assert(!killed.some((e) => e.result), "killed before the result");
    // A fresh process on the same store (the old one is gone with its in-memory state).
    await c.restart();
    const resumed = await train(c.np, c.dataset, options);
    const first = resumed[0].progress!;
    assertEquals(first.stage, "resume");
    // the client cancels after its second epoch event; a smoke-scale epoch is short enough that
    // the server may finish and save the third before the cancellation reaches it
    const from = first.epoch;
    assert(from === 2 || from === 3, `resumed from epoch ${from}`);
    const epochs = resumed.filter((e) => e.progress?.stage === "train").map((e) =>
      e.progress!.epoch
    );
    assertEquals(epochs, from === 2 ? [3, 4] : [4]);
    const result = resumed.at(-1)!.result!;
    assertEquals(result.state, "JOB_STATE_RESUMED");
    assertEquals(result.epochs, 4);
  });
});

Deno.test("neural-predictor: Train on a classifier's frozen trunk (MTL-Oracle targets)", async () => {
  await withService(async (c) => {
    // a classifier checkpoint as classifier-trainer stores it (an "Oracle"; trained or not, the
    // predictor must keep its trunk bit for bit)
    const oracle = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 0, seed: 9 });
    const oracleBytes = saveMtlCheckpoint(oracle);
    const trunk = new Map<string, Float32Array>();
    for (const name of sharedParamNames(oracle)) {
      trunk.set(name, mtlParams(oracle).get(name)!.dataSync() as Float32Array);
    }
    disposeMtl(oracle);
    const put = await c.store.put("models/oracle.safetensors", oracleBytes);
    const frozenUri = c.store.uri(put.key);
    const options = { ...OPTIONS, width: 0 }; // width from the checkpoint
    const events: TrainEvent[] = [];
    for await (
      const ev of c.np.stream<TrainEvent>("Train", {
        dataset_uri: c.dataset,
        options,
        frozen_trunk_uri: frozenUri,
      })
    ) events.push(ev);
    const result = events.at(-1)!.result!;
    assertEquals(result.epochs, 2);
    const p = loadPredictor(await c.store.get(c.store.keyOf(result.checkpoint.uri)));
    try {
      assertEquals(p.config.width, 0.125);
      for (const [name, want] of trunk) {
        assertEquals([...p.trunk.params.get(name)!.dataSync()], [...want], name);
      }
      // the readouts trained: mu moved from its initialisation
      const fresh = createPredictor({ ...p.config });
      const moved = p.readouts[0].mu.dataSync().some((v, i) =>
        v !== fresh.readouts[0].mu.dataSync()[i]
      );
      disposePredictor(fresh);
      assert(moved, "readout mu did not move");
    } finally {
      disposePredictor(p);
    }
    // a plain Train of the same data is another job (the frozen trunk is part of the key)
    const plain = await train(c.np, c.dataset, OPTIONS);
    assert(plain.at(-1)!.result!.checkpoint.sha256 !== result.checkpoint.sha256);

    // bad input: a missing checkpoint, a width that disagrees, something that is not a checkpoint
    const call = (uri: string, opts: Record<string, number> = options) =>
      (async () => {
        for await (
          const _ of c.np.stream("Train", {
            dataset_uri: c.dataset,
            options: opts,
            frozen_trunk_uri: uri,
          })
        ) { /* drain */ }
      })();
    await assertRejectsCode(call(c.store.uri("models/nope.safetensors")), "NOT_FOUND");
    const e = await assertRejectsCode(
      call(frozenUri, { ...OPTIONS, width: 0.25 }),
      "INVALID_ARGUMENT",
    );
    assert(String(e.message).includes("options.width"), e.message);
    const junk = await c.store.put("models/junk.safetensors", new Uint8Array([1, 2, 3]));
    const e2 = await assertRejectsCode(call(c.store.uri(junk.key)), "INVALID_ARGUMENT");
    assert(String(e2.message).includes("frozen_trunk_uri"), e2.message);
    // the service still answers
    const again = await train(c.np, c.dataset, OPTIONS);
    assertEquals(again.at(-1)!.result!.state, "JOB_STATE_CACHED");
  });
});

Deno.test("neural-predictor: Evaluate an MTL network's neural branch (Fig. 3C's FEVe)", async () => {
  await withService(async (c) => {
    // smoke-scale co-training as the pipeline runs it: a Monkey Predictor, its responses to the
    // classification training images, an MTL network trained on them (classifier-trainer's code)
    const pred = (await train(c.np, c.dataset, { ...OPTIONS, seed: 4 })).at(-1)!.result!;
    const images = await loadDataset(
      `builtin:image-set?classes=3&train_per_class=12&val_per_class=4&test_per_class=4` +
        `&size=${SIZE}&seed=2`,
    );
    const tin = images.train.images;
    const ref = await storeTensor(
      { dtype: "uint8", shape: [...tin.shape], data: tin.data as Uint8Array },
      c.store,
      "data/train-images.bin",
    );
    const pd = await c.np.unary<{ responses: TensorRefMsg }>("PredictDataset", {
      checkpoint_uri: pred.checkpoint.uri,
      images: ref,
    });
    const targets = await resolveTensorRef(pd.responses, c.store, {
      field: "responses",
      dtypes: ["float32"],
    });
    const run = trainClassifier({
      kind: "mtl-monkey",
      width: 0.125,
      maxEpochs: 2,
      batchSize: 12,
      neuralBatchSize: 12,
      lr: 0.02,
      headInitScale: 0.1,
      seed: 1,
    }, {
      ...images,
      targets: { neurons: SIM.arrays.responses.shape[2], data: targets.data as Float32Array },
    });
    let step = await run.next();
    while (!step.done) step = await run.next();
    const trained = step.value.model;
    const mtlBytes = saveMtlCheckpoint(trained);
    disposeMtl(trained);
    const mtlUri = c.store.uri((await c.store.put("models/mtl.safetensors", mtlBytes)).key);

    interface EvalRes {
      metrics: { images: number; feve: number; fev: number; correlation_to_average: number };
      model_name: string;
      checkpoint_kind: string;
      input_size: number;
    }
    const res = await c.np.unary<EvalRes>("Evaluate", {
      checkpoint_uri: mtlUri,
      dataset_uri: c.dataset,
      input_size: SIZE,
    });
    const testRows = [...SIM.arrays.split.data].flatMap((s, i) => (s === 2 ? [i] : []));
    assertEquals(res.checkpoint_kind, "mtl");
    assertEquals(res.input_size, SIZE);
    assert(res.model_name.startsWith("mtl-"), res.model_name);
    assertEquals(res.metrics.images, testRows.length);
    assert(Number.isFinite(res.metrics.feve) && res.metrics.feve !== 0, `${res.metrics.feve}`);

    // the same number computed here: trunk -> readout in eval mode on the cropped, resized,
    // normalised test images, FEVe from core/metrics
    const [R, N, K] = SIM.arrays.responses.shape;
    const x = toModelInput(SIM.arrays.images, { size: SIZE });
    const per = SIZE * SIZE;
    const xt = new Float32Array(testRows.length * per);
    testRows.forEach((r, i) => xt.set(x.data.subarray(r * per, (r + 1) * per), i * per));
    const resp = new Float32Array(R * testRows.length * K);
    for (let r = 0; r < R; r++) {
      testRows.forEach((row, i) =>
        resp.set(
          SIM.arrays.responses.data.subarray((r * N + row) * K, (r * N + row + 1) * K),
          (r * testRows.length + i) * K,
        )
      );
    }
    const net = loadMtlCheckpoint(mtlBytes);
    const y = predictNeural(net, tf.tensor4d(xt, [testRows.length, SIZE, SIZE, 1]), {
      training: false,
    });
    const predictions = y.dataSync() as Float32Array;
    y.dispose();
    disposeMtl(net);
    const want = fev(resp, predictions, [R, testRows.length, K]).meanFeve;
    assertClose(res.metrics.feve, want, 1e-4);

    // test images and responses inline give the same FEVe
    const raw = SIM.arrays.images;
    const [, H, W] = raw.shape;
    const rawTest = new Float32Array(testRows.length * H * W); // gray in [0, 1]
    const scale = raw.dtype === "uint8" ? 1 / 255 : 1;
    testRows.forEach((r, i) => {
      for (let j = 0; j < H * W; j++) rawTest[i * H * W + j] = raw.data[r * H * W + j] * scale;
    });
    const inline = await c.np.unary<EvalRes>("Evaluate", {
      checkpoint_uri: mtlUri,
      images: tensorMsg({ dtype: "float32", shape: [testRows.length, H, W], data: rawTest }),
      responses: tensorMsg({ dtype: "float32", shape: [R, testRows.length, K], data: resp }),
      input_size: SIZE,
    });
    assertClose(inline.metrics.feve, res.metrics.feve, 1e-5);
    // input_size 0: the Tiny ImageNet side (64); the network is fully convolutional
    const at64 = await c.np.unary<EvalRes>("Evaluate", {
      checkpoint_uri: mtlUri,
      dataset_uri: c.dataset,
    });
    assertEquals(at64.input_size, 64);
    assert(Number.isFinite(at64.metrics.feve));
    // a predictor checkpoint still evaluates, and says so
    const pe = await c.np.unary<EvalRes>("Evaluate", {
      checkpoint_uri: pred.checkpoint.uri,
      dataset_uri: c.dataset,
    });
    assertEquals(pe.checkpoint_kind, "predictor");
    assertClose(pe.metrics.feve, pred.test.feve, 1e-6);

    // bad input
    const evaluate = (r: Record<string, unknown>) => c.np.unary("Evaluate", r);
    const baseline = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 0, seed: 2 });
    const baseUri = c.store.uri(
      (await c.store.put("models/baseline.safetensors", saveMtlCheckpoint(baseline))).key,
    );
    disposeMtl(baseline);
    const e1 = await assertRejectsCode(
      evaluate({ checkpoint_uri: baseUri, dataset_uri: c.dataset }),
      "INVALID_ARGUMENT",
    );
    assert(String(e1.message).includes("no neural branch"), e1.message);
    const other = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: K + 2, seed: 2 });
    const otherUri = c.store.uri(
      (await c.store.put("models/other.safetensors", saveMtlCheckpoint(other))).key,
    );
    disposeMtl(other);
    const e2 = await assertRejectsCode(
      evaluate({ checkpoint_uri: otherUri, dataset_uri: c.dataset, input_size: SIZE }),
      "INVALID_ARGUMENT",
    );
    assert(String(e2.message).includes("dataset_uri"), e2.message);
    assert(String(e2.message).includes(`${K + 2}`), e2.message);
    const e3 = await assertRejectsCode(
      evaluate({
        checkpoint_uri: otherUri,
        images: tensorMsg({ dtype: "float32", shape: [testRows.length, H, W], data: rawTest }),
        responses: tensorMsg({ dtype: "float32", shape: [R, testRows.length, K], data: resp }),
      }),
      "INVALID_ARGUMENT",
    );
    assert(String(e3.message).includes("responses"), e3.message);
    const e4 = await assertRejectsCode(
      evaluate({ checkpoint_uri: pred.checkpoint.uri, dataset_uri: c.dataset, input_size: 48 }),
      "INVALID_ARGUMENT",
    );
    assert(String(e4.message).includes("input_size"), e4.message);
    const e5 = await assertRejectsCode(
      evaluate({ checkpoint_uri: mtlUri, dataset_uri: c.dataset, input_size: 3 }),
      "INVALID_ARGUMENT",
    );
    assert(String(e5.message).includes("input_size"), e5.message);
    const junk = await c.store.put("models/junk2.safetensors", new Uint8Array([9, 9, 9]));
    const e6 = await assertRejectsCode(
      evaluate({ checkpoint_uri: c.store.uri(junk.key), dataset_uri: c.dataset }),
      "INVALID_ARGUMENT",
    );
    assert(String(e6.message).includes("checkpoint_uri"), e6.message);
    await assertRejectsCode(
      evaluate({ checkpoint_uri: c.store.uri("models/none.safetensors"), dataset_uri: c.dataset }),
      "NOT_FOUND",
    );
    // the service still answers
    const again = await c.np.unary<EvalRes>("Evaluate", {
      checkpoint_uri: mtlUri,
      dataset_uri: c.dataset,
      input_size: SIZE,
    });
    assertEquals(again.metrics.feve, res.metrics.feve);
  });
});
