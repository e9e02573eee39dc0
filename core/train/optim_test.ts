import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import { Adam, Sgd } from "./optim.ts";

await initBackend("cpu");

Deno.test("optim: SGD with momentum and weight decay follows torch.optim.SGD", () => {
  const w = tf.variable(tf.tensor1d([1, -2]));
  const opt = new Sgd({ lr: 0.1, momentum: 0.75, weightDecay: 0.01 });
  const params = new Map([["w", w]]);
  // hand computation of torch's rule over three steps with gradients g_t
  const gs = [[0.5, 0.25], [-1, 2], [0.125, 0]];
  let p = [1, -2];
  let buf: number[] | null = null;
  for (const gt of gs) {
    const g = gt.map((v, i) => v + 0.01 * p[i]);
    buf = buf ? buf.map((b, i) => 0.75 * b + g[i]) : g;
    p = p.map((v, i) => v - 0.1 * buf![i]);
    opt.step(params, new Map([["w", tf.tensor1d(gt)]]));
  }
  const got = w.dataSync();
  for (let i = 0; i < 2; i++) assertClose(got[i], p[i], 1e-6);
  const before = tf.memory().numTensors;
  opt.step(params, new Map([["w", tf.keep(tf.tensor1d([0, 0]))]]));
  assert(tf.memory().numTensors <= before + 1, "no tensors leak per step");
  opt.dispose();
  w.dispose();
});

Deno.test("optim: Adam with L2 weight decay follows torch.optim.Adam", () => {
  const w = tf.variable(tf.tensor1d([0.5]));
  const opt = new Adam({ lr: 5e-4, weightDecay: 5e-4 });
  const params = new Map([["w", w]]);
  let p = 0.5, m = 0, v = 0;
  const gs = [1, -0.5, 2, 0.1];
  gs.forEach((gt, k) => {
    const t = k + 1;
    const g = gt + 5e-4 * p;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    p -= 5e-4 * (m / (1 - 0.9 ** t)) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
    opt.step(params, new Map([["w", tf.tensor1d([gt])]]));
  });
  assertClose(w.dataSync()[0], p, 1e-6);
  // state round trip: a restored optimiser continues identically
  const other = new Adam({ lr: 5e-4, weightDecay: 5e-4 });
  other.loadState(opt.state());
  const w2 = tf.variable(w.clone());
  opt.step(params, new Map([["w", tf.tensor1d([0.3])]]));
  other.step(new Map([["w", w2]]), new Map([["w", tf.tensor1d([0.3])]]));
  assertClose(w2.dataSync()[0], w.dataSync()[0], 1e-7);
  opt.dispose();
  other.dispose();
});
