/**
 * The engine benchmark's GPU half (issue 3): VGG-19-BN (200 classes, 64x64 gray, batch 32) training
 * (forward, backward, SGD momentum) and inference img/s on the tfjs `webgpu` backend (Deno's WebGPU:
 * Vulkan on an NVIDIA GPU) at widths 1/8, 1/4 and 1, as JSON lines like `deno task bench engine`.
 * Run on a GPU machine, where neither node_modules nor the PyTorch peer script travel, as a bundle:
 *
 * @example
 * ```sh
 * deno bundle --platform deno -o engine_gpu.js bench/engine_gpu.ts   # here
 * deno run -A engine_gpu.js [--widths 0.125,0.25,1] [--seconds 5]  # there
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../core/engine/backend.ts";
import { vggLossAndGrads } from "../core/engine/kernels/train_step.ts";
import { createVgg, disposeModel, trainableParams, vggForward } from "../core/models/vgg.ts";
import { Sgd } from "../core/train/optim.ts";
import { imgPerSec } from "./lib.ts";

const BATCH = 32;
const SIZE = 64;
const CLASSES = 200;

/** img/s over at least `seconds` (and 3 steps), after 2 warm-up steps (shader compilation). */
async function measure(step: () => Promise<void>, seconds: number): Promise<number> {
  await step();
  return await imgPerSec(step, BATCH, 3, seconds); // its own warm-up step is the second
}

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

const backend = arg("backend", "webgpu");
const info = await initBackend(backend as "webgpu");
const widths = arg("widths", "0.125,0.25,1").split(",").map(Number);
const seconds = Number(arg("seconds", "5"));
console.error(`engine_gpu: backend ${info.name}`);
for (const width of widths) {
  const key = `vgg19bn-w${width}-${SIZE}px-b${BATCH}-${backend}`;
  const model = createVgg({ width, inChannels: 1, classes: CLASSES, seed: 0 });
  const x = tf.randomNormal([BATCH, SIZE, SIZE, 1], 0, 1, "float32", 1);
  const labels = tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % CLASSES), "int32");
  const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
  let seed = 1;
  // each step reads its loss back (asynchronously: webgpu's dataSync needs a canvas), so it ends
  // when the GPU has finished it
  const train = await measure(async () => {
    const { loss, grads } = vggLossAndGrads(model, x, labels, { dropoutSeed: seed++ });
    opt.step(trainableParams(model), grads);
    for (const g of Object.values(grads)) g.dispose();
    await loss.data();
    loss.dispose();
  }, seconds);
  console.log(
    JSON.stringify({ bench: "engine", case: key, metric: "train_img_s", value: +train.toFixed(1) }),
  );
  const infer = await measure(async () => {
    const y = tf.tidy(() => vggForward(model, x, { training: false }).output);
    await y.data();
    y.dispose();
  }, seconds);
  console.log(
    JSON.stringify({ bench: "engine", case: key, metric: "infer_img_s", value: +infer.toFixed(1) }),
  );
  opt.dispose();
  disposeModel(model);
  tf.dispose([x, labels]);
}
