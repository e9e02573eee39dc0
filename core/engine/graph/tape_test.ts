/**
 * The Tape's rules one op at a time against tfjs' autodiff (cpu backend): a 3x3 convolution's input
 * and weight gradients by both weight-gradient forms (one 3-D convolution, or per image), a 1x1
 * convolution, BN + ReLU and the 2x2 max-pool; the same convolution on onnxruntime's NCHWc kernels
 * (weights fed in their blocked layout), and the probe that finds this CPU's NCHWc block.
 */
import { assert } from "../../../test/assert.ts";
import { relErr } from "../onnx/_test_util.ts";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import { biasBatchNormRelu } from "../kernels/ops.ts";
import { loadProgram, nchwcBlock } from "./program.ts";
import { Tape } from "./tape.ts";
import { hwioToNchwc, hwioToNchwcBack } from "../layouts.ts";

await initBackend("cpu");

const rand = (shape: number[], seed: number, relu = false) =>
  tf.tidy(() => {
    const t = tf.randomNormal(shape, 0, 1, "float32", seed);
    return (relu ? tf.relu(t) : t).dataSync() as Float32Array;
  });
const nhwc = (d: Float32Array, [n, c, h, w]: number[]) =>
  tf.transpose(tf.tensor4d(d, [n, c, h, w]), [0, 2, 3, 1]);
const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]).dataSync();

for (
  const [k, hh, ww, perImageFrom] of [[3, 8, 8, 0], [3, 8, 8, 1e9], [3, 7, 5, 0], [1, 4, 4, 0], [
    1,
    4,
    4,
    1e9,
  ]]
) {
  Deno.test(`conv ${k}x${k} on ${hh}x${ww}, weight gradient ${perImageFrom ? "as one 3-D conv" : "per image (shifted runs)"}`, async () => {
    const [n, c, o] = [3, 5, 4];
    const pad = (k - 1) / 2;
    const xs = [n, c, hh, ww];
    const x = rand(xs, 1, true);
    const w = rand([o, c, k, k], 2);
    const g = rand([n, o, hh, ww], 3);
    const t = new Tape({ perImageWeightGradFrom: perImageFrom });
    const xi = t.input("x", xs, true);
    const wi = t.input("w", [o, c, k, k], true);
    const gi = t.input("g", [n, o, hh, ww], false);
    const loss = t.sumAll(t.mul(t.conv(xi, wi, pad), gi));
    const [gx, gw] = t.gradients(loss, [xi, wi]);
    t.output(gx!, "gx");
    t.output(gw!, "gw");
    const p = await loadProgram(t.toModel(), 1);
    const out = await p.run({
      x: { data: x, dims: xs },
      w: { data: w, dims: [o, c, k, k] },
      g: { data: g, dims: [n, o, hh, ww] },
    });
    await p.release();
    const wt = tf.transpose(tf.tensor4d(w, [o, c, k, k]), [2, 3, 1, 0]);
    const [rx, rw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(
          tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same"),
          nhwc(g, [n, o, hh, ww]),
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

/** The NCHWc block MLAS picks on this CPU (x86: 16 with AVX-512F, 8 with AVX2; else none). */
function expectedBlock(): number | undefined {
  let flags = "";
  try {
    flags = Deno.readTextFileSync("/proc/cpuinfo");
  } catch {
    return undefined;
  }
  if (/\bavx512f\b/.test(flags)) return 16;
  if (/\bavx2\b/.test(flags)) return 8;
  return undefined;
}

Deno.test("nchwcBlock finds this CPU's NCHWc block, and COTRAIN_TRAIN_NCHWC=0 turns it off", async () => {
  const block = await nchwcBlock();
  const expected = expectedBlock();
  if (expected !== undefined) assert(block === expected, `block ${block}, expected ${expected}`);
  else assert(block === 0 || block % 4 === 0, `block ${block}`);
  const before = Deno.env.get("COTRAIN_TRAIN_NCHWC");
  Deno.env.set("COTRAIN_TRAIN_NCHWC", "0");
  try {
    assert((await nchwcBlock()) === 0, "COTRAIN_TRAIN_NCHWC=0 must give block 0");
  } finally {
    if (before === undefined) Deno.env.delete("COTRAIN_TRAIN_NCHWC");
    else Deno.env.set("COTRAIN_TRAIN_NCHWC", before);
  }
});

// 20 input channels (padded to a block) into 24 outputs: both directions on the blocked kernels
Deno.test("a 3x3 conv on NCHWc kernels equals the plain one: output, input and weight gradients", async () => {
  const block = await nchwcBlock();
  const [n, c, o, side] = [3, 20, 24, 9];
  const xs = [n, c, side, side];
  const x = rand(xs, 6, true);
  const hwio = rand([3, 3, c, o], 7);
  const oihw = tf.transpose(tf.tensor4d(hwio, [3, 3, c, o]), [3, 2, 0, 1])
    .dataSync() as Float32Array;
  const g = rand([n, o, side, side], 8);
  const run = async (b: number) => {
    const t = new Tape({ nchwcBlock: b });
    const xi = t.input("x", xs, true);
    const gi = t.input("g", [n, o, side, side], false);
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
      x: { data: x, dims: xs },
      g: { data: g, dims: [n, o, side, side] },
    };
    const up = (v: number) => Math.ceil(v / b) * b;
    let wi;
    let blocked = {};
    if (t.blocked(c) && t.blocked(o)) {
      wi = t.gradientOnly("w", [o, c, 3, 3]);
      blocked = {
        w: t.input("wr", [up(o), up(c), 3, 3], false),
        back: t.input("wb", [up(c), up(o), 3, 3], false),
      };
      feeds.wr = { data: hwioToNchwc(hwio, [3, 3, c, o], b), dims: [up(o), up(c), 3, 3] };
      feeds.wb = { data: hwioToNchwcBack(hwio, [3, 3, c, o], b), dims: [up(c), up(o), 3, 3] };
    } else {
      wi = t.input("w", [o, c, 3, 3], true);
      feeds.w = { data: oihw, dims: [o, c, 3, 3] };
    }
    const y = t.conv(xi, wi, 1, undefined, blocked);
    const [gx, gw] = t.gradients(t.sumAll(t.mul(y, gi)), [xi, wi]);
    t.output(y, "y");
    t.output(gx!, "gx");
    t.output(gw!, "gw");
    const model = t.toModel();
    const p = await loadProgram(model, 1);
    const out = await p.run(feeds);
    await p.release();
    return {
      out,
      nchwcNodes: new TextDecoder().decode(model).split("com.microsoft.nchwc").length - 1,
    };
  };
  const plain = await run(0);
  assert(plain.nchwcNodes === 0, "block 0 must give plain convolutions");
  const fast = await run(block);
  if (block === 0) {
    assert(fast.nchwcNodes === 0, "no NCHWc block: plain convolutions");
    return;
  }
  assert(fast.nchwcNodes >= 6, `expected NCHWc nodes, found ${fast.nchwcNodes}`);
  assert(relErr(fast.out.y, plain.out.y) < 1e-5, "output");
  assert(relErr(fast.out.gx, plain.out.gx) < 1e-5, "input gradient");
  assert(relErr(fast.out.gw, plain.out.gw) < 1e-5, "weight gradient");
});
