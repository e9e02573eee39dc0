/**
 * The onnxruntime predictor step against tfjs' autodiff of the tfjs engine's step
 * (core/train/predictor.ts' predictorTrainLoss, cpu backend, the reference): loss, every gradient
 * (trunk, readout mu, sigma, features, bias) and the BN batch statistics, on a batch whose targets
 * have unrecorded (NaN, masked) neurons, with the trunk training and frozen; live tensors stay
 * constant over 100 steps; the same seed gives the same bytes; the trainer picks its engine from
 * COTRAIN_TRAIN_ENGINE.
 *
 * The predictor's trunk stops at conv3_1 (5 BN layers), short enough that float rounding does not
 * flip ReLU or max-pool ties between the engines (see classifier_step_test.ts).
 */
import { assert, assertEquals, assertThrowsCode } from "../../../test/assert.ts";
import { relErr } from "../onnx/_test_util.ts";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import { vggForward } from "../../models/vgg.ts";
import { clampReadout } from "../../models/readout.ts";
import {
  createPredictor,
  disposePredictor,
  type Predictor,
  predictorParams,
  predictorTrainable,
  PredictorTrainer,
  predictorTrainLoss,
} from "../../train/predictor.ts";
import type { PredictorData } from "../../train/predictor_data.ts";
import { Adam } from "../../train/optim.ts";
import { PredictorStep } from "./predictor_step.ts";
import { trainEngine } from "./program.ts";

await initBackend("cpu");

const B = 4, S = 32;
const SESSIONS = [{ id: 3, neurons: [0, 2, 4, 6, 8] }, { id: 7, neurons: [1, 3, 5, 7] }];

/** A predictor with non-trivial values where the init is flat (BN, readout). */
function makePredictor(width: number, seed: number): Predictor {
  const p = createPredictor({ width, seed, inputSize: S, sessions: SESSIONS });
  let s = seed * 100 + 11;
  for (const [k, v] of p.trunk.params) {
    if (k.endsWith("bn.weight")) v.assign(tf.randomUniform(v.shape, 0.5, 1.5, "float32", s++));
    else if (k.endsWith("bn.bias") || k.endsWith(".bias")) {
      v.assign(tf.randomUniform(v.shape, -0.2, 0.2, "float32", s++));
    } else if (k.endsWith("running_mean")) {
      v.assign(tf.randomUniform(v.shape, -0.1, 0.1, "float32", s++));
    } else if (k.endsWith("running_var")) {
      v.assign(tf.randomUniform(v.shape, 0.5, 2, "float32", s++));
    }
  }
  for (const r of p.readouts) {
    const n = r.config.neurons;
    // one mu outside [-1, 1] and one sigma < 0: the clamps before the step
    const mu = tf.randomUniform([n, 2], -0.8, 0.8, "float32", s++).dataSync() as Float32Array;
    mu[0] = 1.3;
    r.mu.assign(tf.tensor2d(mu, [n, 2]));
    const sg = tf.randomUniform([n, 2], 0.05, 0.5, "float32", s++).dataSync() as Float32Array;
    sg[3] = -0.1;
    r.sigma.assign(tf.tensor2d(sg, [n, 2]));
    const f = tf.randomNormal(r.features.shape, 0, 0.3, "float32", s++).dataSync() as Float32Array;
    f[1] = 0; // |.|'s gradient at 0
    r.features.assign(tf.tensor(f, r.features.shape));
    r.bias.assign(tf.randomUniform([n], 0, 1, "float32", s++));
  }
  return p;
}

function images(n: number, seed: number): Float32Array {
  return tf.tidy(() =>
    tf.randomNormal([n, S, S, 1], 0, 1, "float32", seed).dataSync() as Float32Array
  );
}

/** Targets with unrecorded neurons: NaN in the data, masked and 0 as predictor_data gives them. */
function targetsOf(n: number, k: number, seed: number) {
  const raw = tf.tidy(() =>
    tf.randomUniform([n, k], 0, 4, "float32", seed).dataSync() as Float32Array
  );
  for (let i = 0; i < raw.length; i += 3) raw[i] = NaN;
  const mask = raw.map((v) => Number.isFinite(v) ? 1 : 0);
  const targets = raw.map((v) => Number.isFinite(v) ? Math.round(v) : 0);
  return { targets, mask };
}

async function compare(frozen: boolean, session: number) {
  const p = makePredictor(0.125, 2);
  const readout = p.readouts[session];
  clampReadout(readout);
  const k = readout.config.neurons;
  const x = images(B, 5);
  const { targets, mask } = targetsOf(B, k, 6);
  const sampleSeed = 17, trainSize = 50;
  const prefix = `readout.${SESSIONS[session].id}.`;
  const all = predictorParams(p);
  const names = [...all.keys()].filter((n) =>
    frozen ? n.startsWith(prefix) : all.get(n)!.trainable &&
      (!n.startsWith("readout.") || n.startsWith(prefix))
  );
  const xt = tf.tensor4d(x, [B, S, S, 1]);
  const fixed = frozen
    ? vggForward(p.trunk, xt, { training: false, upTo: p.config.upTo }).output
    : null;
  const refStats = new Map<string, { mean: Float32Array; variance: Float32Array }>();
  const ref = tf.variableGrads(
    () =>
      predictorTrainLoss(
        p,
        session,
        {
          x: xt,
          targets: tf.tensor2d(targets, [B, k]),
          mask: tf.tensor2d(mask, [B, k]),
          trainSize,
        },
        sampleSeed,
        0.5,
        fixed,
        (stats) => {
          for (const [l, s] of stats) {
            refStats.set(l, {
              mean: s.mean.dataSync() as Float32Array,
              variance: s.variance.dataSync() as Float32Array,
            });
          }
        },
      ),
    names.map((n) => all.get(n)!),
  );
  const step = await PredictorStep.create(p, session, { batch: B, height: S, width: S }, {
    frozen,
  });
  const got = await step.lossAndGrads(p, { x, targets, mask, trainSize, seed: sampleSeed });
  const refLoss = ref.value.dataSync()[0];
  assert(Number.isFinite(got.loss), `loss ${got.loss}`);
  assert(Math.abs(got.loss - refLoss) < 1e-4 * Math.abs(refLoss), `loss ${got.loss} vs ${refLoss}`);
  assertEquals([...got.grads.keys()].sort(), [...names].sort());
  let worst = 0;
  for (const n of names) {
    const r = ref.grads[all.get(n)!.name];
    const g = got.grads.get(n)!;
    assertEquals(g.shape, r.shape, n);
    if (!frozen && /^conv\d+_\d+\.bias$/.test(n)) {
      // cancelled by BN: exactly 0 here, float noise in tfjs
      assertEquals(Math.max(...g.dataSync().map(Math.abs)), 0);
      continue;
    }
    const e = relErr(g.dataSync(), r.dataSync());
    assert(e < 1e-4, `${n}: relative error ${e}`);
    assert(Math.max(...r.dataSync().map(Math.abs)) > 0, `${n}: the reference gradient is 0`);
    worst = Math.max(worst, e);
  }
  // features[0][1] is 0: tfjs' |.| gradient there is -0.5 (step(0, -1) x 0.5), plus the data term
  assertEquals(got.bnStats.size, frozen ? 0 : refStats.size);
  for (const [layer, s] of refStats) {
    if (frozen) break;
    const o = got.bnStats.get(layer)!;
    assert(relErr(o.mean.dataSync(), s.mean) < 1e-4, `${layer} mean`);
    assert(relErr(o.variance.dataSync(), s.variance) < 1e-4, `${layer} variance`);
  }
  for (const g of got.grads.values()) g.dispose();
  for (const s of got.bnStats.values()) tf.dispose([s.mean, s.variance]);
  tf.dispose([ref.value, ...Object.values(ref.grads), xt]);
  fixed?.dispose();
  await step.release();
  disposePredictor(p);
  return worst;
}

Deno.test("the predictor step with a training trunk equals tfjs' (loss, trunk, readout, BN)", async () => {
  assert(await compare(false, 0) < 1e-4);
});

Deno.test("the predictor step with a frozen trunk equals tfjs' (readout only, no BN update)", async () => {
  assert(await compare(true, 1) < 1e-4);
});

Deno.test("the step refuses a batch of another size, naming the array", async () => {
  const p = makePredictor(0.0625, 1);
  const step = await PredictorStep.create(p, 0, { batch: 2, height: S, width: S });
  let msg = "";
  try {
    await step.lossAndGrads(p, {
      x: images(3, 1),
      targets: new Float32Array(10),
      mask: new Float32Array(10),
      trainSize: 10,
      seed: 1,
    });
  } catch (err) {
    msg = (err as Error).message;
  }
  assert(msg.startsWith("x:"), msg);
  await step.release();
  disposePredictor(p);
});

Deno.test("live tensors stay constant over 100 steps, and the same seed gives the same bytes", async () => {
  const run = async (steps: number, frozen: boolean) => {
    const p = makePredictor(0.0625, 1);
    const step = await PredictorStep.create(p, 1, { batch: 2, height: S, width: S }, { frozen });
    const opt = new Adam({ lr: 1e-3, weightDecay: 5e-4 });
    const counts: number[] = [];
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      clampReadout(p.readouts[1]);
      const { targets, mask } = targetsOf(2, 4, 200 + i);
      losses.push(
        await step.train(p, opt, { x: images(2, i + 1), targets, mask, trainSize: 40, seed: i }),
      );
      counts.push(tf.memory().numTensors);
    }
    const bytes = [...predictorTrainable(p).values()].map((v) =>
      new Uint8Array(v.dataSync().buffer.slice(0))
    );
    const stats = new Uint8Array(
      p.trunk.params.get("conv2_1.bn.running_var")!.dataSync().buffer.slice(0),
    );
    await step.release();
    opt.dispose();
    disposePredictor(p);
    return { counts, bytes, stats, losses };
  };
  const a = await run(100, false);
  assertEquals(new Set(a.counts.slice(1)).size, 1, `live tensors changed: ${a.counts.slice(0, 5)}`);
  assert(a.losses.every(Number.isFinite));
  assert(
    a.losses.slice(-10).reduce((s, v) => s + v) < a.losses.slice(0, 10).reduce((s, v) => s + v),
  );
  const f = await run(100, true);
  assertEquals(new Set(f.counts.slice(1)).size, 1, `live tensors changed: ${f.counts.slice(0, 5)}`);
  for (const frozen of [false, true]) {
    const b = await run(3, frozen);
    const c = await run(3, frozen);
    assertEquals(b.bytes, c.bytes);
    assertEquals(b.stats, c.stats);
    assertEquals(b.losses, c.losses);
  }
});

/** One session of 16 images whose targets miss some neurons. */
function tinyData(): PredictorData {
  const n = 16, k = 4;
  const inputs = images(n, 77);
  const { targets, mask } = targetsOf(n, k, 78);
  const rows = Array.from({ length: n }, (_, i) => i);
  const empty = { images: [], targets: new Float32Array(0), mask: new Float32Array(0) };
  return {
    inputs: { dtype: "float32", shape: [n, S, S, 1], data: inputs },
    responses: { dtype: "float32", shape: [1, n, k], data: targets },
    split: new Uint8Array(n),
    sessions: [{ id: 0, neurons: [0, 1, 2, 3] }],
    bySession: [{ train: { images: rows, targets, mask }, validation: empty, test: empty }],
  };
}

Deno.test("the trainer's engine: onnxruntime by default, tfjs on request, both the same step", async () => {
  const data = tinyData();
  const losses: Record<string, number[]> = {};
  const before = Deno.env.get("COTRAIN_TRAIN_ENGINE");
  try {
    for (const engine of ["onnxruntime", "tfjs"]) {
      Deno.env.set("COTRAIN_TRAIN_ENGINE", engine);
      const p = createPredictor({ width: 0.0625, seed: 4, inputSize: S, sessions: data.sessions });
      const trainer = new PredictorTrainer(p, data, { batchSize: 5, lr: 1e-3 });
      assertEquals(trainer.engine, engine);
      losses[engine] = [];
      for (const b of trainer.epochBatches(0)) losses[engine].push(await trainer.step(b, 9));
      trainer.dispose();
      disposePredictor(p);
    }
    Deno.env.set("COTRAIN_TRAIN_ENGINE", "torch");
    const err = assertThrowsCode(() => trainEngine(), "INVALID_ARGUMENT");
    assert(err.message.includes("COTRAIN_TRAIN_ENGINE"), err.message);
  } finally {
    if (before === undefined) Deno.env.delete("COTRAIN_TRAIN_ENGINE");
    else Deno.env.set("COTRAIN_TRAIN_ENGINE", before);
  }
  // batches of 5, 5, 5 and 1 image: a step compiled per batch size
  assertEquals(losses.onnxruntime.length, 4);
  const e = relErr(losses.onnxruntime, losses.tfjs);
  assert(e < 1e-3, `losses ${losses.onnxruntime} vs ${losses.tfjs}`);
});
