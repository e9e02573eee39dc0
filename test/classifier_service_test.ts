/**
 * classifier-trainer over real gRPC on loopback, at smoke scale (width 1/8, 32x32, 3 classes of
 * the built-in image set): Train's progress stream and result with artifacts, Classify by model id
 * and by checkpoint URI, the stored result on a second call, resume after a killed stream, and
 * every bad-input path (NOT_FOUND / INVALID_ARGUMENT naming the field), after which the service
 * still answers.
 */
import { assert, assertEquals, assertRejectsCode } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import { OIP_PROTO, OIP_SERVICE, oipHandlers, OipRegistry } from "../platform/oip/oip.ts";
import { testConfig } from "./fixtures/test_service.ts";
import { decodeTensor, encodeTensor, storeTensor } from "../platform/tensor/tensor.ts";
import { generateImageSet } from "../core/data/image_set.ts";
import { disposeMtl, mtlParams, sharedParamNames } from "../core/models/mtl.ts";
import { loadMtlCheckpoint } from "../core/train/classifier_checkpoint.ts";
import {
  CLASSIFIER_PROTO,
  CLASSIFIER_SERVICE,
  classifierHandlers,
} from "../services/classifier-trainer/service.ts";

await initBackend("wasm");

const CONFIG = testConfig();

const DATASET =
  "builtin:image-set?classes=3&train_per_class=12&val_per_class=4&test_per_class=4&size=32&seed=2";
const N_TRAIN = 36;

async function withService(
  fn: (client: RpcClient, store: FileStore, oip: RpcClient) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-classifier-" });
  const store = new FileStore(`file://${dir}`);
  const registry = new OipRegistry();
  const server = new RpcServer({
    name: "classifier-trainer",
    protoFiles: [CLASSIFIER_PROTO, OIP_PROTO],
    services: {
      [CLASSIFIER_SERVICE]: classifierHandlers({ store, registry }),
      [OIP_SERVICE]: oipHandlers(registry, { name: "classifier-trainer", version: "0.1.0" }),
    },
    config: CONFIG,
  });
  await server.start();
  server.setServing(true);
  const client = new RpcClient({
    protoFiles: [CLASSIFIER_PROTO],
    service: CLASSIFIER_SERVICE,
    target: server.address,
  });
  const oip = new RpcClient({
    protoFiles: [OIP_PROTO],
    service: OIP_SERVICE,
    target: server.address,
  });
  try {
    await fn(client, store, oip);
  } finally {
    client.close();
    oip.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function targets(rows = N_TRAIN, neurons = 4) {
  const data = Float32Array.from({ length: rows * neurons }, (_, i) => 1 + (i % 5) / 5);
  return { dtype: "float32" as const, shape: [rows, neurons], data };
}

function request(extra: Record<string, unknown> = {}) {
  return {
    dataset_uri: DATASET,
    model: "baseline",
    width: 0.125,
    max_epochs: 2,
    batch_size: 12,
    neural_batch_size: 12,
    lr: 0.02,
    head_init_scale: 0.1,
    seed: 3,
    progress_every: 1,
    ...extra,
  };
}

// deno-lint-ignore no-explicit-any
type Ev = { progress?: any; result?: any; event?: string };

async function collect(client: RpcClient, req: unknown): Promise<Ev[]> {
  const out: Ev[] = [];
  for await (const ev of client.stream<Ev>("Train", req)) out.push(ev);
  return out;
}

Deno.test("service: Train streams progress and a result; Classify and OIP; the result is stored", async () => {
  await withService(async (client, _store, oip) => {
    const events = await collect(
      client,
      request({ model: "mtl", neural_targets: { inline: encodeTensor(targets()) } }),
    );
    const progress = events.filter((e) => e.progress).map((e) => e.progress);
    const validate = progress.filter((p) => p.stage === "validate");
    assertEquals(validate.map((p) => p.epoch), [1, 2]);
    assert(progress.some((p) => p.stage === "train" && p.step === 1), "no step events");
    for (const p of validate) {
      assert(Number.isFinite(p.classification_loss) && Number.isFinite(p.neural_loss));
      assert(p.val_accuracy >= 0 && p.val_accuracy <= 1 && p.lr === 0.02 && p.max_epochs === 2);
    }
    assert(validate[1].s_c !== 0 && validate[1].s_n !== 0, "task weights did not move");
    const result = events[events.length - 1].result;
    assertEquals(result.state, "JOB_STATE_STARTED");
    assertEquals([result.model, result.epochs, result.history.length], ["mtl", 2, 2]);
    assertEquals(result.checkpoint.media_type, "application/vnd.safetensors");
    assertEquals(result.onnx.media_type, "application/onnx");
    assertEquals(result.classes.length, 3);
    assert(result.test_accuracy >= 0 && result.test_accuracy <= 1);

    // Classify by model id (uint8) and by checkpoint URI (float32 normalised)
    const imgs = generateImageSet({ classes: 3, perClass: 2, size: 32, seed: 2, split: "val" });
    const a = await client.unary<{ logits: unknown; labels: unknown }>("Classify", {
      model_id: result.model_id,
      images: { inline: encodeTensor(imgs.images) },
    });
    const logits = decodeTensor(a.logits as never);
    assertEquals(logits.shape, [6, 3]);
    assertEquals(decodeTensor(a.labels as never).shape, [6]);
    const f = Float32Array.from(imgs.images.data, (v) => (v / 255 - 0.4519) / 0.2221);
    const b = await client.unary<{ logits: unknown }>("Classify", {
      model_id: result.checkpoint.uri,
      images: { inline: encodeTensor({ dtype: "float32", shape: [6, 32, 32, 1], data: f }) },
    });
    const lb = decodeTensor(b.logits as never).data as Float32Array;
    (logits.data as Float32Array).forEach((v, i) => assert(Math.abs(v - lb[i]) < 1e-4));

    // the trained model is served over the Open Inference Protocol: ModelInfer equals Classify
    assert(result.oip_model_name.startsWith("classifier-"), result.oip_model_name);
    const ready = await oip.unary<{ ready: boolean }>("ModelReady", {
      name: result.oip_model_name,
    });
    assertEquals(ready.ready, true);
    const infer = await oip.unary<{
      outputs: { name: string; shape: number[] }[];
      raw_output_contents: Uint8Array[];
    }>("ModelInfer", {
      model_name: result.oip_model_name,
      inputs: [{ name: "images", datatype: "FP32", shape: [6, 32, 32, 1] }],
      raw_input_contents: [new Uint8Array(f.buffer, f.byteOffset, f.byteLength)],
    });
    assertEquals([infer.outputs[0].name, infer.outputs[0].shape], ["logits", [6, 3]]);
    const oipLogits = new Float32Array(Uint8Array.from(infer.raw_output_contents[0]).buffer);
    oipLogits.forEach((v, i) => assert(Math.abs(v - lb[i]) < 1e-4, `oip logit ${i}`));
    await assertRejectsCode(
      oip.unary("ModelInfer", { model_name: "classifier-nope", inputs: [] }),
      "NOT_FOUND",
    );

    // the same request again: the stored result
    const again = await collect(
      client,
      request({ model: "mtl", neural_targets: { inline: encodeTensor(targets()) } }),
    );
    assertEquals(again.length, 1);
    assertEquals(again[0].result.state, "JOB_STATE_CACHED");
    assertEquals(again[0].result.model_id, result.model_id);
  });
});

Deno.test("service: a killed Train resumes from its last epoch when sent again", async () => {
  await withService(async (client, store) => {
    const req = request({ max_epochs: 6, progress_every: 0 });
    let first = 0;
    for await (const ev of client.stream<Ev>("Train", req)) {
      if (ev.progress?.stage === "validate") {
        first = ev.progress.epoch;
        break; // cancels the call: the run stops between steps
      }
    }
    assertEquals(first, 1);
    await new Promise((r) => setTimeout(r, 500));
    const states = (await store.list("jobs/classifier-train/")).filter((o) =>
      o.key.endsWith("state.json")
    );
    assertEquals(states.length, 1);
    const events = await collect(client, req);
    const result = events[events.length - 1].result;
    assertEquals(result.state, "JOB_STATE_RESUMED");
    assert(
      result.resumed_from_epoch >= 1 && result.resumed_from_epoch < 6,
      `${result.resumed_from_epoch}`,
    );
    const epochs = events.filter((e) => e.progress).map((e) => e.progress.epoch);
    assertEquals(epochs[0], result.resumed_from_epoch + 1);
    assertEquals(result.epochs, 6);
    assertEquals(result.history.map((h: { epoch: number }) => h.epoch), [1, 2, 3, 4, 5, 6]);
  });
});

Deno.test("service: bad input gets NOT_FOUND / INVALID_ARGUMENT naming the field", async () => {
  await withService(async (client, store) => {
    const train = (extra: Record<string, unknown>) => () => collect(client, request(extra));
    const nf1 = await assertRejectsCode(train({ dataset_uri: "imagenet:full" }), "NOT_FOUND");
    assert(nf1.message.includes("dataset_uri"), nf1.message);
    await assertRejectsCode(train({ dataset_uri: "file:///no/such/tin" }), "NOT_FOUND");
    await assertRejectsCode(train({ dataset_uri: "builtin:cifar" }), "NOT_FOUND");
    const ref = await storeTensor(targets(), store, "targets/t.bin");
    const nf2 = await assertRejectsCode(
      train({
        model: "mtl",
        neural_targets: { ref: { ...ref, uri: store.uri("targets/missing.bin") } },
      }),
      "NOT_FOUND",
    );
    assert(nf2.message.includes("neural_targets"), nf2.message);
    const cases: [Record<string, unknown>, string][] = [
      [
        { model: "mtl", neural_targets: { inline: encodeTensor(targets(N_TRAIN - 1)) } },
        "neural_targets",
      ],
      [{ model: "mtl" }, "neural_targets"],
      [{ model: "mtl", neural_targets: { ref }, neural_ratio: 0 }, "neural_ratio"],
      [{ model: "mtl", neural_targets: { ref }, neural_ratio: -2 }, "neural_ratio"],
      [{ lr: -0.1 }, "lr"],
      [{ model: "resnet50" }, "model"],
      [{ max_epochs: 0 }, "max_epochs"],
    ];
    for (const [extra, field] of cases) {
      const e = await assertRejectsCode(train(extra), "INVALID_ARGUMENT");
      assert(e.message.includes(`${field}:`), `${field}: ${e.message}`);
    }
    await assertRejectsCode(
      client.unary("Classify", {
        model_id: "0123456789abcdef0123456789abcdef",
        images: { inline: encodeTensor(targets()) },
      }),
      "NOT_FOUND",
    );
    // the service still trains and answers
    const events = await collect(client, request({ max_epochs: 1 }));
    const result = events[events.length - 1].result;
    assertEquals(result.epochs, 1);
    const e = await assertRejectsCode(
      client.unary("Classify", {
        model_id: result.model_id,
        images: { inline: encodeTensor(targets()) },
      }),
      "INVALID_ARGUMENT",
    );
    assert(e.message.includes("images"), e.message);
  });
});

Deno.test("service: Oracle stage 1 then stage 2 from its model_id", async () => {
  await withService(async (client) => {
    const s1 = await collect(client, request({ model: "oracle", max_epochs: 1 }));
    const r1 = s1[s1.length - 1].result;
    assert(
      Number.isFinite(s1.find((e) => e.progress?.stage === "validate")!.progress.consistency_loss),
    );
    const s2 = await collect(
      client,
      request({ model: "oracle-stage2", max_epochs: 1, init_model_id: r1.model_id }),
    );
    assertEquals(s2[s2.length - 1].result.model, "oracle-stage2");
    const nf = await assertRejectsCode(
      collect(client, request({ model: "oracle-stage2", init_model_id: "0".repeat(32) })),
      "NOT_FOUND",
    );
    assert(nf.message.includes("init_model_id"), nf.message);
    await assertRejectsCode(
      collect(client, request({ model: "oracle-stage2" })),
      "INVALID_ARGUMENT",
    );
  });
});

Deno.test("service: oracle-two-stage runs both Oracle stages in one request, idempotent per stage", async () => {
  await withService(async (client, store) => {
    const events = await collect(client, request({ model: "oracle-two-stage", max_epochs: 1 }));
    const stages = events.filter((e) => e.progress?.stage === "validate").map((e) =>
      e.progress.oracle_stage
    );
    assertEquals(stages, [1, 2]);
    const validate = events.filter((e) => e.progress?.stage === "validate");
    assert(Number.isFinite(validate[0].progress.consistency_loss), "stage 1 has corruptions");
    const r = events[events.length - 1].result;
    assertEquals([r.model, r.state], ["oracle-stage2", "JOB_STATE_STARTED"]);
    assert(/^[0-9a-f]{32}$/.test(r.stage1_model_id), r.stage1_model_id);
    assert(r.stage1_model_id !== r.model_id);
    // stage 1 is the job an "oracle" request makes; stage 2 the job of "oracle-stage2" on it
    const s1 = await collect(client, request({ model: "oracle", max_epochs: 1 }));
    assertEquals(s1.length, 1);
    assertEquals([s1[0].result.state, s1[0].result.model_id], [
      "JOB_STATE_CACHED",
      r.stage1_model_id,
    ]);
    const s2 = await collect(
      client,
      request({ model: "oracle-stage2", max_epochs: 1, init_model_id: r.stage1_model_id }),
    );
    assertEquals([s2[0].result.state, s2[0].result.model_id], ["JOB_STATE_CACHED", r.model_id]);
    // the same request again: both stored
    const again = await collect(client, request({ model: "oracle-two-stage", max_epochs: 1 }));
    assertEquals(again.length, 1);
    assertEquals([again[0].result.state, again[0].result.model_id], [
      "JOB_STATE_CACHED",
      r.model_id,
    ]);
    // stage 2 kept stage 1's trunk bit for bit
    const [a, b] = await Promise.all(
      [r.stage1_model_id, r.model_id].map(async (id) =>
        loadMtlCheckpoint(await store.get(`jobs/classifier-train/${id}/model.safetensors`))
      ),
    );
    try {
      const pb = mtlParams(b);
      for (const name of sharedParamNames(a)) {
        assertEquals([...pb.get(name)!.dataSync()], [...mtlParams(a).get(name)!.dataSync()], name);
      }
    } finally {
      disposeMtl(a);
      disposeMtl(b);
    }
    const bad = await assertRejectsCode(
      collect(client, request({ model: "oracle-three-stage" })),
      "INVALID_ARGUMENT",
    );
    assert(bad.message.includes("oracle-two-stage"), bad.message);
  });
});
