/**
 * The Monkey Predictor learns the simulated V1 population at smoke scale: one session of 40
 * simple cells (median preferred frequency 1 cycle/deg), 1500 pink-noise images at 32 px, VGG
 * width 1/8, 18 epochs of Adam at lr 5e-3, ~35 s on 2 cores. The target is test
 * FEVe >= 0.5; at this scale the predictor reaches 0.24-0.30 (run to run; 0.48 with 3000 images
 * x 25 epochs, ~110 s), so the test asserts a smoke-scale floor and prints the FEVe beside the
 * true-rate ceiling.
 */
import { assert } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { pinkNoiseImages, simulateV1 } from "../core/data/simulated_v1.ts";
import { preparePredictorData } from "../core/train/predictor_data.ts";
import {
  createPredictor,
  disposePredictor,
  evaluatePredictor,
  PredictorTrainer,
} from "../core/train/predictor.ts";

await initBackend("wasm");

Deno.test("predictor: trained at smoke scale on simulated V1, test FEVe beside the ceiling", async () => {
  const sim = simulateV1(pinkNoiseImages(1500, 64, 0), {
    neurons: 40,
    sessions: 1,
    testImages: 40,
    testRepeats: 20,
    seed: 1,
    simpleFraction: 1,
    sfMedian: 1,
    sfRange: [0.5, 2.5],
  });
  const data = preparePredictorData(sim.arrays, { size: 32 });
  const p = createPredictor({ width: 0.125, seed: 0, inputSize: 32, sessions: data.sessions });
  const trainer = new PredictorTrainer(p, data, { batchSize: 32, maxEpochs: 18, lr: 5e-3 });
  let last = 0;
  for await (const e of trainer.run()) last = e.valCorrelation;
  const ev = evaluatePredictor(p, data);
  console.log(
    `smoke-scale predictor: test FEVe ${ev.feve.toFixed(3)} (true-rate ceiling ` +
      `${ev.ceilingFeve?.toFixed(3)}), correlation to average ${
        ev.correlationToAverage.toFixed(3)
      }, FEV ${ev.fev.toFixed(3)}, last val correlation ${last.toFixed(3)}`,
  );
  assert(ev.ceilingFeve! > 0.95, `ceiling ${ev.ceilingFeve}`);
  assert(ev.correlationToAverage > 0.35, `correlation to average ${ev.correlationToAverage}`);
  assert(ev.feve > 0.1, `FEVe ${ev.feve}`);
  trainer.dispose();
  disposePredictor(p);
});
