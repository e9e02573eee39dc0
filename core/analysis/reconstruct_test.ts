/**
 * Norm-constrained reconstruction at smoke scale (VGG w = 1/8, 16-32 px, tens of steps): the
 * constraint holds after every run (projection and rescaling, SGD and Adam), a budget above ||x0||
 * lets the reconstruction approach x0, the folded eval trunk equals vggForward, the onnxruntime
 * gradient equals tfjs autodiff (odd sizes included), aborting stops the run, bad options name the
 * field, and MTL and predictor checkpoints load.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import { createVgg, vggForward, type VggModel } from "../models/vgg.ts";
import { createMtl, disposeMtl } from "../models/mtl.ts";
import { saveMtlCheckpoint } from "../train/classifier_checkpoint.ts";
import { createPredictor, disposePredictor, savePredictor } from "../train/predictor.ts";
import { rngFor } from "../random.ts";
import {
  constrainRows,
  featureCount,
  foldedForward,
  foldTrunk,
  loadFeatureModel,
  reconstruct,
  reconstructSteps,
  resolveReconstructOptions,
} from "./reconstruct.ts";

await initBackend("wasm");

/** A VGG whose BN statistics are not the identity, so folding is exercised. */
function model(seed = 1): VggModel {
  const vgg = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed });
  const rng = rngFor(seed, "bn");
  for (const [k, v] of vgg.params) {
    if (!k.includes(".bn.")) continue;
    const vals = Float32Array.from(
      { length: v.size },
      () =>
        k.endsWith("running_var") || k.endsWith("bn.weight")
          ? rng.uniform(0.5, 1.5)
          : rng.uniform(-0.2, 0.2),
    );
    v.assign(tf.tensor(vals, v.shape));
  }
  return vgg;
}

/** Smooth images with some noise, [n, size, size, 1]. */
function images(n: number, size: number, seed = 5): Float32Array {
  const rng = rngFor(seed, "img");
  const x = new Float32Array(n * size * size);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        x[(i * size + y) * size + xx] = Math.sin(xx / (3 + i)) + Math.cos(y / 4) +
          0.3 * rng.normal();
      }
    }
  }
  return x;
}

const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));

Deno.test("reconstruct: the folded eval trunk equals vggForward in eval mode", () => {
  const vgg = model();
  tf.tidy(() => {
    const x = tf.tensor4d(images(2, 20), [2, 20, 20, 1]);
    for (const layer of ["conv1_1", "pool1", "conv3_1"]) {
      const folded = foldTrunk(vgg, layer);
      const a = vggForward(vgg, x, { training: false, upTo: layer }).output;
      const b = foldedForward(folded, x);
      assertEquals(a.shape, b.shape);
      const err = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      assert(err < 1e-4 * (1 + tf.max(tf.abs(a)).dataSync()[0]), `${layer}: ${err}`);
      for (const l of folded) if (l.kind === "conv") tf.dispose([l.w, l.b]);
    }
  });
});

Deno.test("reconstruct: the onnxruntime gradient equals tfjs autodiff (odd sizes, several chunks)", async () => {
  const vgg = model(2);
  for (const size of [16, 18]) {
    const data = images(2, size, size);
    const runs = [];
    for (const engine of ["onnx", "tfjs"] as const) {
      runs.push(
        await reconstruct(vgg, { shape: [2, size, size, 1], data }, {
          layer: "conv3_1",
          budgets: [3, 10, 20, 40, 80], // 10 rows: two onnxruntime chunks
          steps: 6,
          optimizer: "adam",
          lr: 0.05,
          seed: 4,
          lossEvery: 1,
          engine,
        }),
      );
    }
    const [a, b] = runs;
    const scale = Math.max(...b.curve.losses);
    a.curve.losses.forEach((v, i) => assertClose(v, b.curve.losses[i], 1e-3 * scale, `loss ${i}`));
    a.reconstructions.forEach((v, i) =>
      assertClose(v, b.reconstructions[i], 1e-3, `size ${size} pixel ${i}`)
    );
  }
});

Deno.test("reconstruct: the norm constraint holds for projection and rescaling, SGD and Adam", async () => {
  const vgg = model();
  const data = images(2, 16);
  const budgets = [0.5, 5, 15, 60];
  for (const optimizer of ["sgd", "adam"] as const) {
    for (const constraint of ["project", "rescale"] as const) {
      const r = await reconstruct(vgg, { shape: [2, 16, 16, 1], data }, {
        layer: "conv2_1",
        budgets,
        steps: 8,
        optimizer,
        constraint,
        seed: 1,
      });
      assertEquals(r.reconstructions.length, 2 * budgets.length * 256);
      for (let row = 0; row < 2 * budgets.length; row++) {
        const rBudget = budgets[row % budgets.length];
        const n = norm(r.reconstructions.subarray(row * 256, (row + 1) * 256));
        assertClose(n, r.norms[row], 1e-3 * rBudget);
        assert(n <= rBudget * (1 + 1e-6), `${optimizer}/${constraint}: ${n} > ${rBudget}`);
        if (constraint === "rescale") assertClose(n, rBudget, 1e-4 * rBudget, "rescaled norm");
      }
    }
  }
  // the projection alone: rows inside the ball stay, rows outside land on the sphere
  const x = new Float32Array([3, 4, 0.3, 0.4]);
  constrainRows(x, 2, () => 1, "project");
  assertClose(Math.hypot(x[0], x[1]), 1, 1e-6);
  assertEquals([x[2], x[3]], [Math.fround(0.3), Math.fround(0.4)]);
});

Deno.test("reconstruct: with r above ||x0|| the reconstruction approaches x0", async () => {
  const vgg = model();
  const data = images(2, 32);
  const n0 = norm(data.subarray(0, 1024));
  const r = await reconstruct(vgg, { shape: [2, 32, 32, 1], data }, {
    layer: "conv1_2",
    budgets: [2 * n0],
    steps: 100,
    optimizer: "adam",
    lr: 0.1,
    blurSigma: 0,
    seed: 0,
  });
  for (let i = 0; i < 2; i++) {
    const x0 = data.subarray(i * 1024, (i + 1) * 1024);
    const x = r.reconstructions.subarray(i * 1024, (i + 1) * 1024);
    const err = norm(Float32Array.from(x, (v, k) => v - x0[k])) / norm(x0);
    assert(err < 0.15, `image ${i}: relative error ${err}`);
  }
  assert(r.finalLosses[0] < 0.01 * r.curve.losses[0], "loss did not fall");
  // at conv3_1 (the paper's layer) the loss falls steadily too
  const deep = await reconstruct(vgg, { shape: [2, 32, 32, 1], data }, {
    budgets: [2 * n0],
    steps: 60,
    optimizer: "adam",
    lr: 0.1,
    lossEvery: 10,
  });
  assertEquals(deep.curve.steps, [10, 20, 30, 40, 50, 60]);
  const row0 = deep.curve.steps.map((_, k) => deep.curve.losses[k * 2]);
  row0.slice(1).forEach((l, k) => assert(l < row0[k], `not falling: ${row0}`));
  assert(deep.finalLosses[0] < 0.5 * row0[0], `${row0}`);
});

Deno.test("reconstruct: the same seed gives the same result; abort stops between steps", async () => {
  const vgg = model();
  const data = images(1, 16);
  const opts = { layer: "conv2_1", budgets: [5], steps: 5, seed: 9 };
  const a = await reconstruct(vgg, { shape: [1, 16, 16, 1], data }, opts);
  const b = await reconstruct(vgg, { shape: [1, 16, 16, 1], data }, opts);
  assertEquals(a.reconstructions, b.reconstructions);

  const ctl = new AbortController();
  let seen = 0;
  const gen = reconstructSteps(vgg, { shape: [1, 16, 16, 1], data }, {
    ...opts,
    steps: 1000,
    lossEvery: 1,
    signal: ctl.signal,
  });
  let err: unknown = null;
  try {
    for await (const p of gen) {
      seen = p.step;
      if (p.step === 3) ctl.abort(new Error("stop here"));
    }
  } catch (e) {
    err = e;
  }
  assertEquals((err as Error).message, "stop here");
  assertEquals(seen, 3);
});

Deno.test("reconstruct: losses are per-activation means by default, sums on request", async () => {
  const vgg = model();
  const data = images(1, 16);
  const opts = { layer: "conv2_1", budgets: [5], steps: 3, optimizer: "adam" as const, seed: 2 };
  const mean = await reconstruct(vgg, { shape: [1, 16, 16, 1], data }, opts);
  const sum = await reconstruct(vgg, { shape: [1, 16, 16, 1], data }, {
    ...opts,
    reduction: "sum",
  });
  // conv2_1 at w = 1/8 on 16x16: 16 channels x 8 x 8 activations
  assertEquals(featureCount(vgg, "conv2_1", 16, 16), 1024);
  assertClose(sum.finalLosses[0], 1024 * mean.finalLosses[0], 1e-3 * sum.finalLosses[0]);
  assertThrowsCode(
    () => resolveReconstructOptions(vgg, { reduction: "max" as "sum" }),
    "INVALID_ARGUMENT",
  );
});

Deno.test("reconstruct: bad options get INVALID_ARGUMENT naming the field", () => {
  const vgg = model();
  const e = assertThrowsCode(
    () => resolveReconstructOptions(vgg, { layer: "conv9_9" }),
    "INVALID_ARGUMENT",
  );
  assert(e.message.includes("conv1_1") && e.message.includes("pool5"), e.message);
  for (const budgets of [[0], [5, -1], [NaN]]) {
    const b = assertThrowsCode(
      () => resolveReconstructOptions(vgg, { budgets }),
      "INVALID_ARGUMENT",
    );
    assert(b.message.startsWith("budgets["), b.message);
  }
  assertThrowsCode(() => resolveReconstructOptions(vgg, { steps: 0 }), "INVALID_ARGUMENT");
  assertThrowsCode(() => resolveReconstructOptions(vgg, { lr: -1 }), "INVALID_ARGUMENT");
  const d = resolveReconstructOptions(vgg, {});
  assertEquals([d.layer, d.budgets, d.steps, d.optimizer, d.lr, d.constraint, d.blurSigma], [
    "conv3_1",
    [5, 15, 60],
    8000,
    "sgd",
    5,
    "project",
    1,
  ]);
  assertEquals(resolveReconstructOptions(vgg, { optimizer: "adam" }).lr, 0.01);
});

Deno.test("reconstruct: MTL and predictor checkpoints load; other kinds are refused", async () => {
  const mtl = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 4, seed: 0 });
  const fm = loadFeatureModel(saveMtlCheckpoint(mtl));
  assertEquals(fm.kind, "mtl");
  const w0 = mtl.vgg.params.get("conv1_1.weight")!.dataSync();
  assertEquals(fm.vgg.params.get("conv1_1.weight")!.dataSync(), w0);
  fm.dispose();
  disposeMtl(mtl);
  const p = createPredictor({
    width: 0.125,
    seed: 0,
    inputSize: 32,
    sessions: [{ id: 0, neurons: [0, 1] }],
  });
  const fp = loadFeatureModel(savePredictor(p));
  assertEquals(fp.kind, "predictor");
  assert(fp.vgg.layers.at(-1)!.name === "conv3_1");
  const r = await reconstruct(fp.vgg, { shape: [1, 16, 16, 1], data: images(1, 16) }, {
    budgets: [5],
    steps: 2,
  });
  assertEquals(r.layer, "conv3_1");
  fp.dispose();
  disposePredictor(p);
  const { saveParams } = await import("../models/checkpoint.ts");
  const other = saveParams(new Map([["w", tf.zeros([1])]]), { kind: "other", config: {} });
  const e = assertThrowsCode(() => loadFeatureModel(other), "INVALID_ARGUMENT");
  assert(e.message.includes("mtl") && e.message.includes("predictor"), e.message);
});
