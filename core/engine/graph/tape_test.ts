/**
 * The Tape's rules one op at a time against tfjs' autodiff (cpu backend): a 3x3 convolution's input
 * and weight gradients by both weight-gradient forms (one 3-D convolution, or per image), a 1x1
 * convolution, BN + ReLU and the 2x2 max-pool.
 */
import { assert } from "../../../test/assert.ts";
import { relErr } from "../onnx/_test_util.ts";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import { biasBatchNormRelu } from "../kernels/ops.ts";
import { loadProgram } from "./program.ts";
import { Tape } from "./tape.ts";

await initBackend("cpu");

const rand = (shape: number[], seed: number, relu = false) =>
  tf.tidy(() => {
    const t = tf.randomNormal(shape, 0, 1, "float32", seed);
    return (relu ? tf.relu(t) : t).dataSync() as Float32Array;
  });
const nhwc = (d: Float32Array, [n, c, h, w]: number[]) =>
  tf.transpose(tf.tensor4d(d, [n, c, h, w]), [0, 2, 3, 1]);
const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]).dataSync();

for (const [k, side, perImageFrom] of [[3, 8, 0], [3, 8, 1e9], [1, 4, 0], [1, 4, 1e9]]) {
  Deno.test(`conv ${k}x${k} on ${side}x${side}, weight gradient ${perImageFrom ? "as one 3-D conv" : "per image"}`, async () => {
    const [n, c, o] = [3, 5, 4];
    const pad = (k - 1) / 2;
    const xs = [n, c, side, side];
    const x = rand(xs, 1, true);
    const w = rand([o, c, k, k], 2);
    const g = rand([n, o, side, side], 3);
    const t = new Tape({ perImageWeightGradFrom: perImageFrom });
    const xi = t.input("x", xs, true);
    const wi = t.input("w", [o, c, k, k], true);
    const gi = t.input("g", [n, o, side, side], false);
    const loss = t.sumAll(t.mul(t.conv(xi, wi, pad), gi));
    const [gx, gw] = t.gradients(loss, [xi, wi]);
    t.output(gx!, "gx");
    t.output(gw!, "gw");
    const p = await loadProgram(t.toModel(), 1);
    const out = await p.run({
      x: { data: x, dims: xs },
      w: { data: w, dims: [o, c, k, k] },
      g: { data: g, dims: [n, o, side, side] },
    });
    await p.release();
    const wt = tf.transpose(tf.tensor4d(w, [o, c, k, k]), [2, 3, 1, 0]);
    const [rx, rw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(
          tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same"),
          nhwc(g, [n, o, side, side]),
        ),
      )
    )([nhwc(x, xs), wt]);
    assert(relErr(out.gx, nchw(rx)) < 1e-5, "input gradient");
    assert(relErr(out.gw, tf.transpose(rw, [3, 2, 0, 1]).dataSync()) < 1e-5, "weight gradient");
  });
}

Deno.test("BN + ReLU with batch statistics, then a 2x2 max-pool (odd size), against tfjs", async () => {
  const [n, c, h, w] = [4, 3, 7, 6];
  const z = rand([n, c, h, w], 4);
  const gamma = Float32Array.from([1.2, 0.7, 1]);
  const beta = Float32Array.from([-0.3, 0.2, 0]);
  const g = rand([n, c, 3, 3], 5);
  const t = new Tape();
  const zi = t.input("z", [n, c, h, w], true);
  const gi = t.input("gamma", [1, c, 1, 1], true);
  const bi = t.input("beta", [1, c, 1, 1], true);
  const r = t.bnRelu(zi, gi, bi, 1e-5);
  const loss = t.sumAll(t.mul(t.maxPool2(r.y), t.input("g", [n, c, 3, 3], false)));
  const grads = t.gradients(loss, [zi, gi, bi]);
  grads.forEach((s, i) => t.output(s!, `g${i}`));
  const p = await loadProgram(t.toModel(), 1);
  const out = await p.run({
    z: { data: z, dims: [n, c, h, w] },
    gamma: { data: gamma, dims: [1, c, 1, 1] },
    beta: { data: beta, dims: [1, c, 1, 1] },
    g: { data: g, dims: [n, c, 3, 3] },
  });
  await p.release();
  const ref = tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => {
    const y = biasBatchNormRelu(a, tf.zeros([c]), b, d, 1e-5).output as tf.Tensor4D;
    return tf.sum(tf.mul(tf.maxPool(y, 2, 2, "valid"), nhwc(g, [n, c, 3, 3])));
  })([nhwc(z, [n, c, h, w]), tf.tensor1d(gamma), tf.tensor1d(beta)]);
  assert(relErr(out.g0, nchw(ref[0])) < 1e-4, "dz");
  assert(relErr(out.g1, ref[1].dataSync()) < 1e-4, "dgamma");
  assert(relErr(out.g2, ref[2].dataSync()) < 1e-4, "dbeta");
});
