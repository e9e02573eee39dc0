/**
 * core/train/classifier.ts at smoke scale (width 1/8, 32x32, 3-4 classes, the built-in image set):
 * the Baseline learns well above chance, MTL lowers both losses and moves both task weights,
 * MTL-Shuffled's targets are a permutation, the batch cycler follows the ratios, and a run killed
 * after an epoch resumes from its checkpoint to exactly the weights of an uninterrupted run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertThrowsCode } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { generateImageSet } from "../core/data/image_set.ts";
import {
  classify,
  createMtl,
  disposeMtl,
  mtlParams,
  sharedParamNames,
} from "../core/models/mtl.ts";
import { oracleBatch } from "../core/train/oracle.ts";
import {
  type ClassifierData,
  resolveTrainConfig,
  shuffleTargets,
  trainClassifier,
  type TrainConfigInput,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
} from "../core/train/classifier.ts";
import { loadMtlCheckpoint, saveMtlCheckpoint } from "../core/train/classifier_checkpoint.ts";
import {
  epochBatches,
  IndexCycler,
  neuralBatchesAt,
  PAPER_RATIOS,
  parseRatio,
} from "../core/train/batch_cycler.ts";

await initBackend("wasm");

function dataset(perClass: number, classes = 4, size = 32, neurons = 5): ClassifierData {
  const common = { classes, size, seed: 1 };
  const train = generateImageSet({ ...common, perClass });
  const val = generateImageSet({ ...common, perClass: 20, start: 200 });
  const test = generateImageSet({ ...common, perClass: 20, split: "val" });
  const n = train.images.shape[0];
  // targets a readout on conv3_1 can learn: a per-image brightness statistic per neuron
  const data = new Float32Array(n * neurons);
  const px = size * size;
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let k = 0; k < px; k++) mean += train.images.data[i * px + k] / 255 / px;
    for (let j = 0; j < neurons; j++) data[i * neurons + j] = 1 + mean * (j + 1) / neurons;
  }
  return {
    train: { images: train.images, labels: train.labels },
    val: { images: val.images, labels: val.labels },
    test: { images: test.images, labels: test.labels },
    classes,
    targets: { neurons, data },
  };
}

async function drain(
  config: TrainConfigInput,
  data: ClassifierData,
  options: TrainOptions = {},
): Promise<{ events: TrainProgress[]; result: TrainResult }> {
  const events: TrainProgress[] = [];
  const run = trainClassifier(config, data, { progressEvery: 0, ...options });
  let r = await run.next();
  while (!r.done) {
    events.push(r.value);
    r = await run.next();
  }
  return { events, result: r.value };
}

const SMOKE = { width: 0.125, batchSize: 16, neuralBatchSize: 16, headInitScale: 0.1 };

Deno.test("batch cycler: ratios r:1 and 1:k, every row once per pass", () => {
  assertEquals(PAPER_RATIOS.map((r) => parseRatio(r)).slice(0, 2), [1 / 15, 1 / 10]);
  assertEquals(parseRatio("3:1"), 3);
  assertEquals([0, 1, 2, 3, 4, 5].map((s) => neuralBatchesAt(s, parseRatio("1:3"))), [
    1,
    0,
    0,
    1,
    0,
    0,
  ]);
  assertEquals(neuralBatchesAt(7, parseRatio("5:1")), 5);
  for (const bad of [0, -1, "0:1", "1.5:1", "x"]) {
    assertThrowsCode(() => parseRatio(bad, "neural_ratio"), "INVALID_ARGUMENT");
  }
  const c = new IndexCycler(10, 4, 3);
  const seen = [...c.next(), ...c.next(), ...c.next()].sort((a, b) => a - b);
  assertEquals(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const again = new IndexCycler(10, 4, 3, c.state);
  assertEquals([...again.next()], [...c.next()]);
  const e = epochBatches(10, 4, 0, 1);
  assertEquals(e.map((b) => b.length), [4, 4, 2]);
});

Deno.test("config: paper defaults, bad fields named", () => {
  const b = resolveTrainConfig({ kind: "baseline" });
  assertEquals([b.lr, b.momentum, b.weightDecay, b.factor, b.maxEpochs], [
    0.1,
    0.75,
    5e-4,
    0.4,
    400,
  ]);
  const m = resolveTrainConfig({ kind: "mtl-monkey" });
  assertEquals([m.kind, m.factor, m.maxEpochs], ["mtl", 0.3, 407]);
  const e1 = assertThrowsCode(() => resolveTrainConfig({ kind: "resnet" }), "INVALID_ARGUMENT");
  assert(e1.message.startsWith("model:"), e1.message);
  const e2 = assertThrowsCode(
    () => resolveTrainConfig({ kind: "mtl", lr: -1 }),
    "INVALID_ARGUMENT",
  );
  assert(e2.message.startsWith("lr:"), e2.message);
  const e3 = assertThrowsCode(
    () => resolveTrainConfig({ kind: "mtl", ratio: 0 }),
    "INVALID_ARGUMENT",
  );
  assert(e3.message.startsWith("neural_ratio:"), e3.message);
});

Deno.test("MTL-Shuffled: the targets are a seeded permutation of the rows", () => {
  const t = { neurons: 3, data: Float32Array.from({ length: 30 }, (_, i) => i) };
  const a = shuffleTargets(t, 5);
  const b = shuffleTargets(t, 5);
  assertEquals(a.permutation, b.permutation);
  assertEquals([...a.permutation].sort((x, y) => x - y), [...Array(10).keys()]);
  assert(a.permutation.some((p, i) => p !== i), "not the identity");
  for (let i = 0; i < 10; i++) {
    const p = a.permutation[i];
    assertEquals([...a.targets.data.subarray(i * 3, i * 3 + 3)], [3 * p, 3 * p + 1, 3 * p + 2]);
  }
  assert(shuffleTargets(t, 6).permutation.some((p, i) => p !== a.permutation[i]));
});

Deno.test("Baseline learns well above chance (3 classes, chance 0.33)", async () => {
  // 600 images at 32 px, lr 0.02, the last head conv's init x 0.01 (logits start near 0), 8
  // epochs of batch 16: test accuracy 0.65-0.67 for model seeds 0, 1 and 2. The former setting
  // (4 classes, 320 images, lr 0.01, init x 0.1, 10 epochs) was chaotic (val accuracy 0.39-0.69
  // across numerically equivalent kernels), and 4 classes stay bimodal at this size (0.5 or
  // 0.75-0.99 by seed: 0/90 and 45/135 degree textures are confused first).
  const data = dataset(200, 3, 32);
  const { events, result } = await drain(
    { kind: "baseline", ...SMOKE, headInitScale: 0.01, maxEpochs: 8, lr: 0.02, augment: false },
    data,
  );
  try {
    const v = events.filter((e) => e.stage === "validate");
    assertEquals(v.length, 8);
    assert(v[7].classificationLoss < v[0].classificationLoss * 0.8, "CE did not fall");
    console.log(`baseline: best val ${result.bestValAccuracy}, test ${result.testAccuracy}`);
    assert(result.bestValAccuracy >= 0.5, `val accuracy ${result.bestValAccuracy}`);
    assert(result.testAccuracy >= 0.5, `test accuracy ${result.testAccuracy}`);
  } finally {
    disposeMtl(result.model);
  }
});

Deno.test("MTL lowers both losses and moves both task weights", async () => {
  const data = dataset(40);
  const { events, result } = await drain(
    { kind: "mtl", ...SMOKE, maxEpochs: 4, lr: 0.02, augment: false, ratio: "2:1" },
    data,
  );
  try {
    const v = events.filter((e) => e.stage === "validate");
    console.log(
      v.map((e) => [e.classificationLoss, e.neuralLoss, e.sC, e.sN].map((x) => x.toFixed(3))),
    );
    assert(v[3].classificationLoss < v[0].classificationLoss, "CE did not fall");
    assert(v[3].neuralLoss < v[0].neuralLoss, "neural MSE did not fall");
    assert(
      Math.abs(result.sC) > 1e-3 && Math.abs(result.sN) > 1e-3,
      `s_c ${result.sC} s_n ${result.sN}`,
    );
    assertEquals(result.model.readout?.config.neurons, 5);
    // the checkpoint rebuilds the same network
    const back = loadMtlCheckpoint(saveMtlCheckpoint(result.model));
    const x = tf.randomNormal([2, 32, 32, 1], 0, 1, "float32", 3);
    const [a, b] = [classify(result.model, x), classify(back, x)];
    assertEquals(a.dataSync(), b.dataSync());
    tf.dispose([x, a, b]);
    disposeMtl(back);
  } finally {
    disposeMtl(result.model);
  }
});

Deno.test("resume after a kill continues from the saved epoch, bit for bit", async () => {
  const data = dataset(12);
  const config = { kind: "mtl-shuffled", ...SMOKE, maxEpochs: 3, lr: 0.02, ratio: 0.5 };
  const full = await drain(config, data);
  // killed run: abort once epoch 1's checkpoint is written
  const abort = new AbortController();
  let saved: Uint8Array | null = null;
  let killed = false;
  try {
    await drain(config, data, {
      signal: abort.signal,
      onCheckpoint: (bytes, epoch) => {
        saved = bytes;
        if (epoch === 1) abort.abort(new Error("killed"));
      },
    });
  } catch (err) {
    killed = (err as Error).message === "killed";
  }
  assert(killed && saved, "the run was not killed after epoch 1");
  const resumed = await drain(config, data, { resume: saved! });
  try {
    assertEquals(resumed.events.filter((e) => e.stage === "validate")[0].epoch, 2);
    assertEquals(resumed.result.resumedFrom, 1);
    assertEquals(resumed.result.epochs, 3);
    assertEquals(resumed.result.history.length, 3);
    assertEquals(resumed.result.history, full.result.history);
    const a = mtlParams(full.result.model);
    for (const [name, v] of mtlParams(resumed.result.model)) {
      assertEquals(v.dataSync(), a.get(name)!.dataSync(), name);
    }
  } finally {
    disposeMtl(full.result.model);
    disposeMtl(resumed.result.model);
  }
});

Deno.test("MTL without targets or with the wrong row count is INVALID_ARGUMENT", async () => {
  const data = dataset(3);
  const bad = { ...data, targets: { neurons: 5, data: new Float32Array(5 * 7) } };
  let err: unknown;
  try {
    await drain({ kind: "mtl", ...SMOKE, maxEpochs: 1 }, bad);
  } catch (e) {
    err = e;
  }
  assertEquals((err as { code?: string }).code, "INVALID_ARGUMENT");
  assert((err as Error).message.startsWith("neural_targets:"));
  const m = createMtl({ width: 0.125, inChannels: 1, classes: 2, neurons: 0, seed: 0 });
  assertEquals(mtlParams(m).has("task.s_c"), false);
  disposeMtl(m);
});

Deno.test("Oracle: stage 1 trains with corruptions; stage 2 keeps the trunk bitwise, moves the rest", async () => {
  const data = { ...dataset(8), targets: undefined };
  const b = oracleBatch(data.train.images, Int32Array.from([0, 5]), {
    seed: 1,
    epoch: 1,
    augment: true,
  });
  assert(b.choices.every((c) => c.a.corruption !== c.b.corruption), "two different corruptions");
  assert(b.corruptedA.data.some((v, i) => v !== b.clean.data[i]), "corrupted equals clean");
  const s1 = await drain({ kind: "oracle", ...SMOKE, maxEpochs: 2, lr: 0.02 }, data);
  const v1 = s1.events.filter((e) => e.stage === "validate");
  assert(
    v1.every((e) => Number.isFinite(e.consistencyLoss) && Number.isFinite(e.classificationLoss)),
  );
  const init = saveMtlCheckpoint(s1.result.model);
  const s2 = await drain({ kind: "oracle-stage2", ...SMOKE, maxEpochs: 2, lr: 0.02 }, data, {
    init,
  });
  try {
    const before = mtlParams(s1.result.model);
    const shared = new Set(sharedParamNames(s2.result.model));
    assert(shared.has("conv3_1.weight") && shared.has("conv1_1.bn.running_mean"));
    let changed = 0;
    for (const [name, v] of mtlParams(s2.result.model)) {
      const same = v.dataSync().every((x, i) => Object.is(x, before.get(name)!.dataSync()[i]));
      if (shared.has(name)) assert(same, `${name} changed`);
      else if (!same) changed++;
    }
    assert(changed >= 10, `only ${changed} unfrozen variables changed`);
    let err: unknown;
    try {
      await drain({ kind: "oracle-stage2", ...SMOKE, maxEpochs: 1 }, data);
    } catch (e) {
      err = e;
    }
    assertEquals((err as { code?: string }).code, "INVALID_ARGUMENT");
  } finally {
    disposeMtl(s1.result.model);
    disposeMtl(s2.result.model);
  }
});
