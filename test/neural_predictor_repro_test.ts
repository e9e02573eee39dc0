/**
 * Predictor training is reproducible: the same data and seed give byte-identical trainer
 * checkpoints (weights, best weights, Adam moments, schedule) in one process and in another.
 * Seed 0 on purpose: tfjs' randomNormal takes Math.random for seed 0, which is how the readout's
 * first sampling step once made runs differ.
 *
 * Run as a program (`deno run -A test/neural_predictor_repro_test.ts`) it trains once and prints
 * the checkpoint's sha256, which the test compares with its own runs.
 */
import { assertEquals } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { pinkNoiseImages, simulateV1 } from "../core/data/simulated_v1.ts";
import { preparePredictorData } from "../core/train/predictor_data.ts";
import { createPredictor, disposePredictor, PredictorTrainer } from "../core/train/predictor.ts";

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Two epochs on a tiny simulated session; the trainer checkpoint's sha256. */
async function trainOnce(): Promise<string> {
  const sim = simulateV1(pinkNoiseImages(160, 64, 0), {
    neurons: 6,
    sessions: 2,
    testImages: 20,
    testRepeats: 4,
    seed: 3,
  });
  const data = preparePredictorData(sim.arrays, { size: 32 });
  const p = createPredictor({ width: 0.125, seed: 0, inputSize: 32, sessions: data.sessions });
  const trainer = new PredictorTrainer(p, data, { batchSize: 32, maxEpochs: 2, lr: 5e-3 });
  try {
    for await (const _ of trainer.run()) { /* epochs */ }
    return await sha256(trainer.checkpoint());
  } finally {
    trainer.dispose();
    disposePredictor(p);
  }
}

if (import.meta.main) {
  await initBackend("wasm");
  console.log(await trainOnce());
} else {
  Deno.test("predictor: the same seed gives the same checkpoint bytes, in this process and another", async () => {
    await initBackend("wasm");
    const a = await trainOnce();
    const b = await trainOnce();
    assertEquals(b, a, "two runs in one process");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assertEquals(out.code, 0);
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assertEquals(lines.at(-1), a, "a run in another process");
  });
}
