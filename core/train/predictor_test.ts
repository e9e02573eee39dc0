import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import { createOnnxSession } from "../engine/onnx/mod.ts";
import { pinkNoiseImages, simulateV1 } from "../data/simulated_v1.ts";
import { preparePredictorData, sessionsOf } from "./predictor_data.ts";
import {
  createPredictor,
  disposePredictor,
  exportPredictorOnnx,
  loadPredictor,
  predict,
  predictorParams,
  PredictorTrainer,
  savePredictor,
} from "./predictor.ts";

await initBackend("wasm");

const SIZE = 32;
const sim = simulateV1(pinkNoiseImages(120, 64, 5), {
  neurons: 6,
  sessions: 2,
  testImages: 12,
  testRepeats: 6,
  seed: 5,
});

Deno.test("predictor data: sessions, NaN masked, targets are repeat means", () => {
  assertEquals(sessionsOf([1, 0, 1, 2]), [
    { id: 0, neurons: [1] },
    { id: 1, neurons: [0, 2] },
    { id: 2, neurons: [3] },
  ]);
  const data = preparePredictorData(sim.arrays, { size: SIZE });
  assertEquals(data.inputs.shape, [120, SIZE, SIZE, 1]);
  const [R, N, K] = sim.arrays.responses.shape;
  for (const [s, by] of data.bySession.entries()) {
    const neurons = data.sessions[s].neurons;
    for (const split of [by.train, by.validation, by.test]) {
      split.images.forEach((n, i) => {
        neurons.forEach((k, j) => {
          let sum = 0, c = 0;
          for (let r = 0; r < R; r++) {
            const v = sim.arrays.responses.data[(r * N + n) * K + k];
            if (Number.isFinite(v)) {
              sum += v;
              c++;
            }
          }
          assertEquals(split.mask[i * neurons.length + j], c ? 1 : 0);
          assertClose(split.targets[i * neurons.length + j], c ? sum / c : 0, 1e-5);
          assert(Number.isFinite(split.targets[i * neurons.length + j]));
        });
      });
    }
  }
});

Deno.test("predictor: training from a checkpoint continues exactly as without the stop", async () => {
  const data = preparePredictorData(sim.arrays, { size: SIZE });
  const opts = { batchSize: 32, maxEpochs: 3, lr: 2e-3 };
  const make = () =>
    createPredictor({ width: 0.125, seed: 1, inputSize: SIZE, sessions: data.sessions });
  // straight through
  const a = new PredictorTrainer(make(), data, opts);
  const reportsA = [];
  for await (const r of a.run()) reportsA.push(r);
  // one epoch, checkpoint, restore (as a new process would), the rest
  const b1 = new PredictorTrainer(make(), data, opts);
  await b1.runEpoch();
  const bytes = b1.checkpoint();
  b1.dispose();
  disposePredictor(b1.predictor);
  const b = PredictorTrainer.restore(bytes, data);
  assertEquals(b.epoch, 1);
  const reportsB = [];
  for await (const r of b.run()) reportsB.push(r);
  assertEquals(reportsB.map((r) => r.epoch), [2, 3]);
  assertEquals(a.finished?.epochs, 3);
  assertEquals(b.finished, a.finished);
  for (let i = 0; i < 2; i++) {
    assertClose(reportsB[i].loss, reportsA[i + 1].loss, 1e-3 * Math.abs(reportsA[i + 1].loss));
    assertClose(reportsB[i].valCorrelation, reportsA[i + 1].valCorrelation, 1e-3);
  }
  const pa = predictorParams(a.predictor), pb = predictorParams(b.predictor);
  for (const [k, v] of pa) {
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(v, pb.get(k)!))).dataSync()[0]);
    assert(d < 1e-3, `${k} differs by ${d}`);
  }
  for (const t of [a, b]) {
    t.dispose();
    disposePredictor(t.predictor);
  }
});

Deno.test("predictor: save/load round trip, ONNX export agrees with tfjs, bad input named", async () => {
  const data = preparePredictorData(sim.arrays, { size: SIZE });
  const p = createPredictor({ width: 0.125, seed: 2, inputSize: SIZE, sessions: data.sessions });
  // move readouts off their init so the neuron order matters
  for (const r of p.readouts) tf.tidy(() => r.mu.assign(tf.randomUniform(r.mu.shape, -0.8, 0.8)));
  const x = data.inputs.data.slice(0, 4 * SIZE * SIZE);
  const y = predict(p, x, [4, SIZE, SIZE, 1]);
  assertEquals(y.length, 4 * 6);
  const q = loadPredictor(savePredictor(p));
  assertEquals([...predict(q, x, [4, SIZE, SIZE, 1])], [...y]);
  const session = await createOnnxSession(exportPredictorOnnx(p), { threads: 1 });
  const o = await session.run(x, [4, SIZE, SIZE, 1]);
  assertEquals(o.shape, [4, 6]);
  for (let i = 0; i < y.length; i++) assertClose(o.data[i], y[i], 1e-4 * Math.max(1, y[i]));
  await session.release();
  let msg = "";
  try {
    predict(p, x.subarray(0, 16 * 16), [1, 16, 16, 1]);
  } catch (err) {
    msg = (err as Error).message;
  }
  assert(msg.startsWith("images:"), msg);
  disposePredictor(p);
  disposePredictor(q);
});
