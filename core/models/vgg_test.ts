import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import {
  createVgg,
  disposeModel,
  layerNames,
  paramsUpTo,
  updateBnRunningStats,
  vggForward,
} from "./vgg.ts";

await initBackend("cpu");

Deno.test("vgg: shapes of the trunk, conv3_1 and the head at any input size", () => {
  const model = createVgg({ width: 0.125, inChannels: 1, classes: 7, seed: 1 });
  try {
    assertEquals(layerNames(model).length, 16 + 5);
    const x = tf.randomNormal([2, 64, 64, 1], 0, 1, "float32", 3);
    const conv31 = vggForward(model, x, { training: false, upTo: "conv3_1" }).output;
    assertEquals(conv31.shape, [2, 16, 16, 32]);
    const logits = vggForward(model, x, { training: false }).output;
    assertEquals(logits.shape, [2, 7]);
    const big = vggForward(model, tf.zeros([1, 96, 96, 1]), { training: false }).output;
    assertEquals(big.shape, [1, 7]);
    // the MTL shared part: conv1_1 .. conv3_1 with their BN
    const shared = paramsUpTo(model, "conv3_1");
    assertEquals(shared.length, 5 * 6);
    assert(
      shared.includes("conv3_1.bn.running_var") && !shared.some((n) => n.startsWith("conv3_2")),
    );
  } finally {
    disposeModel(model);
  }
});

Deno.test("vgg: the same seed gives the same weights; another seed differs", () => {
  const a = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 4 });
  const b = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 4 });
  const c = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 5 });
  try {
    const wa = a.params.get("conv2_1.weight")!.dataSync();
    assertEquals(Array.from(wa), Array.from(b.params.get("conv2_1.weight")!.dataSync()));
    assert(wa[0] !== c.params.get("conv2_1.weight")!.dataSync()[0]);
    // kaiming fan_out: std = sqrt(2 / (9 * cout))
    const w = a.params.get("conv3_2.weight")!;
    const std = Math.sqrt(tf.moments(w).variance.dataSync()[0]);
    const expected = Math.sqrt(2 / (9 * 32));
    assert(Math.abs(std - expected) / expected < 0.1, `std ${std} vs ${expected}`);
  } finally {
    for (const m of [a, b, c]) disposeModel(m);
  }
});

Deno.test("vgg: a training pass returns BN batch statistics that update the running averages", () => {
  const model = createVgg({ width: 0.125, inChannels: 1, classes: 3, seed: 2 });
  try {
    const x = tf.add(tf.mul(tf.randomNormal([4, 32, 32, 1], 0, 1, "float32", 9), 3), 5);
    const r = vggForward(model, x, { training: true, dropoutSeed: 1 });
    assertEquals(r.bnStats.size, 16);
    const before = model.params.get("conv1_1.bn.running_mean")!.dataSync().slice();
    updateBnRunningStats(model, r.bnStats);
    const after = model.params.get("conv1_1.bn.running_mean")!.dataSync();
    const batch = r.bnStats.get("conv1_1")!.mean.dataSync();
    for (let i = 0; i < after.length; i++) {
      assert(Math.abs(after[i] - (0.9 * before[i] + 0.1 * batch[i])) < 1e-5);
    }
  } finally {
    disposeModel(model);
  }
});
