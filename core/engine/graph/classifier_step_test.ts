/**
 * The onnxruntime training step against tfjs' autodiff of the same network (cpu backend, the
 * reference): loss, every gradient and the BN batch statistics, for the Baseline and for MTL with
 * two neural batches (trunk to conv3_1 + jittered Gaussian readout, learned task weights) on a
 * short VGG (see CFG), the whole VGG-19 step within a looser bound; live
 * tensors stay constant over 100 steps; the same seed gives the same bytes.
 */
import { assert, assertEquals } from "../../../test/assert.ts";
import { relErr } from "../onnx/_test_util.ts";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import {
  classifyTrain,
  createMtl,
  type MtlModel,
  mtlParams,
  predictNeuralTrain,
} from "../../models/mtl.ts";
import { crossEntropy, mse } from "../../train/losses.ts";
import { featureConsistency } from "../../train/oracle.ts";
import { SHARED_LAYER } from "../../models/mtl.ts";
import { vggForward } from "../../models/vgg.ts";
import { Sgd } from "../../train/optim.ts";
import { ClassifierStep, dropoutMasks, sharedGrid } from "./classifier_step.ts";
import { headGrid } from "./vgg.ts";

await initBackend("cpu");

const N = 4, H = 16, W = 16, CLASSES = 5, NEURONS = 7, NB = 3;
/**
 * A shorter VGG with every kind of layer (and conv3_1): through all 16 BN layers of VGG-19 on
 * 4 images, float rounding differences of 1e-7 flip a few ReLUs and max-pool choices near ties,
 * which moves whole gradients by percents in both engines alike; this depth keeps the check exact.
 */
const CFG = [64, "M", 64, "M", 128, 128, "M", 128, 128] as const; // conv3_1 on 4x4, head on 2x2

/** Non-trivial values for every parameter the default init leaves flat. */
function perturb(model: MtlModel): void {
  let seed = 11;
  for (const [k, v] of mtlParams(model)) {
    if (k.includes("bn.weight")) v.assign(tf.randomUniform(v.shape, 0.5, 1.5, "float32", seed++));
    else if (k.endsWith("bn.bias") || k.startsWith("head.") && k.endsWith(".bias")) {
      v.assign(tf.randomUniform(v.shape, -0.2, 0.2, "float32", seed++));
    }
  }
  if (model.readout) {
    const r = model.readout;
    r.mu.assign(tf.randomUniform([NEURONS, 2], -0.8, 0.8, "float32", seed++));
    r.sigma.assign(tf.randomUniform([NEURONS, 2], 0.05, 0.5, "float32", seed++));
    r.features.assign(tf.randomNormal(r.features.shape, 0, 0.3, "float32", seed++));
    r.bias.assign(tf.randomUniform([NEURONS], 0, 1, "float32", seed++));
    model.sC.assign(tf.scalar(0.3));
    model.sN.assign(tf.scalar(-0.2));
  }
}

/** The masks tf.dropout(x, 0.5, undefined, seed * 7 + k) draws in vggHead (NHWC, as the step's). */
function tfjsMasks(model: MtlModel, seed: number): [Float32Array, Float32Array] {
  const [gh, gw] = headGrid(model.vgg, H, W);
  const one = (k: number) =>
    tf.tidy(() => {
      const u = tf.randomUniform(
        [N, gh, gw, model.vgg.head!.hidden],
        0,
        1,
        "float32",
        seed * 7 + k,
      );
      const m = tf.div(tf.floor(tf.add(u, 0.5)), 0.5);
      return m.dataSync() as Float32Array;
    });
  return [one(1), one(2)];
}

function images(n: number, seed: number, side = H): Float32Array {
  return tf.tidy(() =>
    tf.randomNormal([n, side, side, 1], 0, 1, "float32", seed).dataSync() as Float32Array
  );
}

async function compare(neurons: number, passes: number) {
  const model = createMtl({
    width: 0.125,
    inChannels: 1,
    classes: CLASSES,
    neurons,
    seed: 3,
    cfg: CFG,
  });
  perturb(model);
  const x = images(N, 5);
  const labels = [0, 1, 2, 4];
  const seed = 9;
  const neural = Array.from({ length: passes }, (_, j) => ({
    x: images(NB, 20 + j),
    targets: tf.tidy(() =>
      tf.randomUniform([NB, NEURONS], 0, 3, "float32", 30 + j).dataSync() as Float32Array
    ),
    seed: 40 + j,
  }));
  const params = mtlParams(model);
  const names = [...params.keys()].filter((k) => params.get(k)!.trainable);
  const ref = tf.variableGrads(() => {
    const c = classifyTrain(model, tf.tensor4d(x, [N, H, W, 1]), { seed });
    const ce = crossEntropy(c.logits, tf.tensor1d(labels, "int32"));
    let loss: tf.Scalar = neurons > 0
      ? tf.add(tf.mul(tf.exp(tf.neg(model.sC)), ce), tf.mul(model.sC, 0.5))
      : ce;
    for (const nb of neural) {
      const p = predictNeuralTrain(model, tf.tensor4d(nb.x, [NB, H, W, 1]), { seed: nb.seed });
      const m = mse(p.responses, tf.tensor2d(nb.targets, [NB, NEURONS]));
      loss = tf.add(
        loss,
        tf.add(tf.mul(tf.mul(tf.exp(tf.neg(model.sN)), m), 0.5), tf.mul(model.sN, 0.5)),
      );
    }
    return loss;
  }, names.map((k) => params.get(k)!));
  const refStats = classifyTrain(model, tf.tensor4d(x, [N, H, W, 1]), { seed }).bnStats;

  const step = await ClassifierStep.create(model, {
    batch: N,
    height: H,
    width: W,
    neuralPasses: passes,
    neuralBatch: NB,
  });
  const got = await step.lossAndGrads(model, {
    x,
    labels,
    seed,
    neural,
    masks: tfjsMasks(model, seed),
  });
  assert(Math.abs(got.loss - ref.value.dataSync()[0]) < 1e-4 * Math.abs(got.loss) + 1e-6);
  assertEquals(got.bnStats.length, 1 + passes);
  let worst = 0;
  for (const k of names) {
    const r = ref.grads[params.get(k)!.name];
    const g = got.grads.get(k);
    if (/^conv\d+_\d+\.bias$/.test(k)) {
      // cancelled by BN: exactly 0 here, float noise of order 1e-6 in tfjs
      assertEquals(Math.max(...g!.dataSync().map(Math.abs)), 0);
      continue;
    }
    assert(g, `no gradient for ${k}`);
    const e = relErr(g.dataSync(), r.dataSync());
    assert(e < 1e-4, `${k}: relative error ${e}`);
    worst = Math.max(worst, e);
  }
  for (const [layer, s] of refStats) {
    const o = got.bnStats[0].get(layer)!;
    assert(relErr(o.mean.dataSync(), s.mean.dataSync()) < 1e-4, `${layer} mean`);
    assert(relErr(o.variance.dataSync(), s.variance.dataSync()) < 1e-4, `${layer} variance`);
  }
  await step.release();
  return worst;
}

Deno.test("the Baseline step's loss, gradients and BN statistics equal tfjs'", async () => {
  const worst = await compare(0, 0);
  assert(worst < 1e-4);
});

Deno.test("the MTL step with two neural batches equals tfjs' (readout mu, sigma, task weights)", async () => {
  const worst = await compare(NEURONS, 2);
  assert(worst < 1e-4);
});

Deno.test("Oracle stage 1: CE on clean + A and lambda * conv3_1 consistency of A and B equal tfjs'", async () => {
  const model = createMtl({
    width: 0.125,
    inChannels: 1,
    classes: CLASSES,
    neurons: 0,
    seed: 4,
    cfg: CFG,
  });
  perturb(model);
  const half = 2;
  const clean = images(half, 51);
  const a = images(half, 52);
  const b = images(half, 53);
  const labels = [1, 3];
  const seed = 5;
  const lambda = 0.7;
  // tfjs' dropout masks for the 2 x half rows of the first pass
  const [gh, gw] = headGrid(model.vgg, H, W);
  const masks = [1, 2].map((k) =>
    tf.tidy(() => {
      const u = tf.randomUniform(
        [2 * half, gh, gw, model.vgg.head!.hidden],
        0,
        1,
        "float32",
        seed * 7 + k,
      );
      return tf.div(tf.floor(tf.add(u, 0.5)), 0.5).dataSync() as Float32Array;
    })
  ) as [Float32Array, Float32Array];
  const params = mtlParams(model);
  const names = [...params.keys()].filter((k) => params.get(k)!.trainable);
  const x2 = new Float32Array([...clean, ...a]);
  const ref = tf.variableGrads(() => {
    const r = vggForward(model.vgg, tf.tensor4d(x2, [2 * half, H, W, 1]), {
      training: true,
      taps: [SHARED_LAYER],
      dropoutSeed: seed,
    });
    const ce = crossEntropy(r.output as tf.Tensor2D, tf.tensor1d([...labels, ...labels], "int32"));
    const fa = tf.slice(r.taps.get(SHARED_LAYER)!, [half, 0, 0, 0], [half, -1, -1, -1]);
    const fb = vggForward(model.vgg, tf.tensor4d(b, [half, H, W, 1]), {
      training: true,
      upTo: SHARED_LAYER,
    });
    return tf.add(ce, tf.mul(featureConsistency(fa, fb.output), lambda)) as tf.Scalar;
  }, names.map((k) => params.get(k)!));
  const step = await ClassifierStep.create(model, {
    batch: half,
    height: H,
    width: W,
    oracleLambda: lambda,
  });
  const got = await step.lossAndGrads(model, {
    x: x2,
    labels: [...labels, ...labels],
    xb: b,
    seed,
    masks,
  });
  assert(Math.abs(got.loss - ref.value.dataSync()[0]) < 1e-4 * Math.abs(got.loss));
  assert(got.consistency! > 0);
  assertEquals(got.bnStats.length, 2);
  for (const k of names) {
    if (/^conv\d+_\d+\.bias$/.test(k)) continue;
    const e = relErr(got.grads.get(k)!.dataSync(), ref.grads[params.get(k)!.name].dataSync());
    assert(e < 1e-4, `${k}: relative error ${e}`);
  }
  await step.release();
});

Deno.test("the readout samples each image's jittered position inside the conv3_1 map", () => {
  const model = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 2, seed: 0 });
  assertEquals(sharedGrid(model.vgg, 64, 64), [16, 16]);
  assertEquals(headGrid(model.vgg, 64, 64), [2, 2]);
  assertEquals(sharedGrid(model.vgg, 32, 30), [8, 7]);
});

Deno.test("live tensors stay constant over 100 steps, and the same seed gives the same bytes", async () => {
  const run = async (steps: number) => {
    const model = createMtl({ width: 0.0625, inChannels: 1, classes: 3, neurons: 4, seed: 1 });
    const step = await ClassifierStep.create(model, {
      batch: 2,
      height: 32,
      width: 32,
      neuralPasses: 1,
      neuralBatch: 2,
    });
    const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
    const counts: number[] = [];
    for (let i = 0; i < steps; i++) {
      await step.train(model, opt, {
        x: images(2, i + 1, 32),
        labels: [i % 3, (i + 1) % 3],
        seed: i,
        neural: [{ x: images(2, 100 + i, 32), targets: new Float32Array(8).fill(1), seed: i }],
      });
      counts.push(tf.memory().numTensors);
    }
    const bytes = new Uint8Array(
      model.vgg.params.get("conv1_1.weight")!.dataSync().buffer.slice(0),
    );
    const mu = Array.from(model.readout!.mu.dataSync());
    await step.release();
    opt.dispose();
    for (const v of mtlParams(model).values()) v.dispose();
    return { counts, bytes, mu };
  };
  const a = await run(100);
  assertEquals(
    new Set(a.counts.slice(1)).size,
    1,
    `live tensors changed: ${a.counts.slice(0, 5)}...`,
  );
  const b = await run(3);
  const c = await run(3);
  assertEquals(b.bytes, c.bytes);
  assertEquals(b.mu, c.mu);
});

Deno.test("dropout masks: units 0 or 2, about half kept, independent per layer, the same per seed", () => {
  const model = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 0, seed: 0 });
  const [a, b] = dropoutMasks(model.vgg, 8, 64, 64, 5);
  const [a2] = dropoutMasks(model.vgg, 8, 64, 64, 5);
  const [c] = dropoutMasks(model.vgg, 8, 64, 64, 6);
  assertEquals(a.length, 8 * 2 * 2 * model.vgg.head!.hidden);
  assert(a.every((v) => v === 0 || v === 2), "0 or 2");
  const kept = a.reduce((s, v) => s + v / 2, 0) / a.length;
  assert(Math.abs(kept - 0.5) < 0.03, `kept ${kept}`);
  const same = (x: Float32Array, y: Float32Array) => x.every((v, i) => v === y[i]);
  assert(same(a, a2), "same seed, same mask");
  assert(!same(a, b) && !same(a, c), "other layer or seed, other mask");
  // neighbouring units are not correlated (one random bit each)
  let agree = 0;
  for (let i = 1; i < a.length; i++) agree += a[i] === a[i - 1] ? 1 : 0;
  assert(
    Math.abs(agree / (a.length - 1) - 0.5) < 0.03,
    `neighbours agree ${agree / (a.length - 1)}`,
  );
});
