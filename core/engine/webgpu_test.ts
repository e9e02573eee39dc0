/**
 * The webgpu backend's correctness, on whatever WebGPU adapter Deno finds: Mesa's software Vulkan
 * (lavapipe, Debian's mesa-vulkan-drivers, which .ci/run installs) on CPU machines, an NVIDIA GPU
 * on GPU nodes. A whole VGG-19-BN training step (w=1/8, 32x32, batch 2) must give the cpu backend's
 * loss and gradients, and the readout-free forward pass its logits.
 */
import * as tf from "@tensorflow/tfjs-core";
import { assert } from "../../test/assert.ts";
import { activeBackend, initBackend } from "./backend.ts";
import {
  createVgg,
  disposeModel,
  trainableParams,
  updateBnRunningStats,
  vggForward,
} from "../models/vgg.ts";
import { crossEntropy } from "../train/losses.ts";
import { rand, relErr } from "./kernels/_test_util.ts";

/**
 * Loss, per-parameter gradients and eval-mode logits of one VGG step on the active backend, read
 * back asynchronously (webgpu's synchronous reads need a canvas, which Deno has not).
 */
async function vggStep(): Promise<
  { loss: number; grads: Map<string, Float32Array>; logits: Float32Array }
> {
  const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 3 });
  const x = rand([2, 32, 32, 1], 5);
  const y = tf.tensor1d([3, 7], "int32");
  try {
    const params = trainableParams(model);
    const { value, grads } = tf.variableGrads(() => {
      const f = vggForward(model, x, { training: true, dropoutSeed: 7 });
      updateBnRunningStats(model, f.bnStats);
      return crossEntropy(f.output as tf.Tensor2D, y);
    }, [...params.values()]);
    const out = new Map<string, Float32Array>();
    for (const [name, v] of params) out.set(name, (await grads[v.name].data()) as Float32Array);
    const logits = tf.tidy(() => vggForward(model, x, { training: false }).output);
    const result = {
      loss: (await value.data())[0],
      grads: out,
      logits: (await logits.data()) as Float32Array,
    };
    tf.dispose([value, logits, ...Object.values(grads)]);
    return result;
  } finally {
    tf.dispose([x, y]);
    disposeModel(model);
  }
}

Deno.test("webgpu: a VGG-19-BN training step matches the cpu backend", async () => {
  await initBackend("cpu");
  const ref = await vggStep();
  const info = await initBackend("webgpu");
  assert(info.name === "webgpu" && tf.getBackend() === "webgpu", `backend ${tf.getBackend()}`);
  assert(activeBackend()?.detail?.startsWith("navigator.gpu"), `detail ${info.detail}`);
  const got = await vggStep();
  // GPU reductions sum in another order than the cpu backend: float32 rounding, not 1e-7
  const tol = 1e-3;
  assert(
    Math.abs(got.loss - ref.loss) <= tol * Math.abs(ref.loss),
    `loss ${got.loss} vs ${ref.loss}`,
  );
  const eLogits = relErr(got.logits, ref.logits);
  assert(eLogits <= tol, `eval logits: rel err ${eLogits}`);
  let checked = 0;
  for (const [name, want] of ref.grads) {
    if (/^conv\d_\d\.bias$/.test(name)) continue; // exactly 0 before a batch norm: noise only
    const e = relErr(got.grads.get(name)!, want);
    assert(e <= tol, `${name}: rel err ${e}`);
    checked++;
  }
  assert(checked === 16 * 3 + 6, `checked ${checked} gradients`);
});
