import * as tf from "@tensorflow/tfjs-core";
import { assert } from "../../../test/assert.ts";
import { initBackend } from "../backend.ts";
import {
  createVgg,
  disposeModel,
  trainableParams,
  updateBnRunningStats,
  vggForward,
} from "../../models/vgg.ts";
import { rand, relErr } from "./_test_util.ts";
import { Sgd } from "../../train/optim.ts";
import { crossEntropy } from "../../train/losses.ts";
import { vggLossAndGrads, vggTrainStep } from "./train_step.ts";

await initBackend("wasm");

function labels(n: number, classes: number): tf.Tensor1D {
  return tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 3) % classes), "int32");
}

Deno.test("train step: whole VGG (w=1/8, 32x32, batch 2) has the cpu backend's gradients", async () => {
  // reference: vgg.ts's own forward (moments + batchNorm + relu, tfjs gradients) on cpu
  await tf.setBackend("cpu");
  const ref = new Map<string, Float32Array>();
  let refLoss = 0;
  {
    const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 3 });
    const params = trainableParams(model);
    tf.tidy(() => {
      const x = rand([2, 32, 32, 1], 5);
      const y = labels(2, 10);
      const vars = [...params.values()];
      const { value, grads } = tf.variableGrads(() => {
        const f = vggForward(model, x, { training: true, dropoutSeed: 7 });
        updateBnRunningStats(model, f.bnStats);
        return crossEntropy(f.output as tf.Tensor2D, y);
      }, vars);
      refLoss = value.dataSync()[0];
      for (const [name, v] of params) {
        ref.set(name, grads[v.name].dataSync().slice() as Float32Array);
      }
    });
    disposeModel(model);
  }
  await tf.setBackend("wasm");
  const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 3 });
  try {
    const x = rand([2, 32, 32, 1], 5);
    const y = labels(2, 10);
    const { loss, grads } = vggLossAndGrads(model, x, y, { dropoutSeed: 7 });
    const l = loss.dataSync()[0];
    assert(Math.abs(l - refLoss) <= 1e-4 * Math.abs(refLoss), `loss ${l} vs ${refLoss}`);
    let checked = 0;
    for (const [name, g] of Object.entries(grads)) {
      const got = g.dataSync() as Float32Array;
      const want = ref.get(name)!;
      if (/^conv\d_\d\.bias$/.test(name)) {
        // a conv bias right before a batch norm has gradient 0: rounding noise on both sides
        const scale = Math.max(...ref.get(name.replace(".bias", ".bn.bias"))!.map(Math.abs));
        for (const v of [...got, ...want]) assert(Math.abs(v) <= 1e-4 * scale, `${name}: ${v}`);
        continue;
      }
      const e = relErr(got, want);
      assert(e <= 1e-4, `${name}: rel err ${e}`);
      checked++;
    }
    assert(checked === 16 * 3 + 6, `checked ${checked} gradients`);
    tf.dispose([x, y, loss, ...Object.values(grads)]);
  } finally {
    disposeModel(model);
  }
});

Deno.test("train step: 100 SGD steps keep the number of live tensors and heap bytes constant", async () => {
  await tf.setBackend("wasm");
  const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 1 });
  const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
  const x = rand([2, 32, 32, 1], 9);
  const y = labels(2, 10);
  try {
    vggTrainStep(model, opt, x, y, { dropoutSeed: 0 }); // creates the momentum buffers
    const before = tf.memory();
    let loss = 0;
    for (let i = 1; i <= 100; i++) loss = vggTrainStep(model, opt, x, y, { dropoutSeed: i });
    const after = tf.memory();
    assert(Number.isFinite(loss), `loss ${loss}`);
    assert(
      after.numTensors === before.numTensors,
      `tensors ${before.numTensors} -> ${after.numTensors}`,
    );
    assert(after.numBytes === before.numBytes, `bytes ${before.numBytes} -> ${after.numBytes}`);
  } finally {
    opt.dispose();
    disposeModel(model);
    tf.dispose([x, y]);
  }
});
