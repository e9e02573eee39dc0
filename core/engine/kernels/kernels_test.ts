import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals } from "../../../test/assert.ts";
import { initBackend } from "../backend.ts";
import { onBoth, rand, relErr } from "./_test_util.ts";
import { biasBatchNormRelu, readoutSample } from "./ops.ts";
import { Sgd } from "../../train/optim.ts";
import { setDirectConv, setFilterGradMode, setIm2colChunkFloats } from "./register.ts";
import { KERNELS_SOURCE_SHA256 } from "./kernels_wasm.ts";
import { sourceHash } from "./build.ts";

await initBackend("wasm");
const TOL = 1e-4;

interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: [number, number];
  s: number;
  pad: "same" | "valid";
}

/** The grid: batch 1-4, odd sizes, channels 1-16, strides 1/2, same/valid, 1x1 to 5x5 filters. */
function convCases(): ConvCase[] {
  const out: ConvCase[] = [];
  const sizes: [number, number][] = [[7, 9], [8, 8], [5, 6], [3, 11]];
  const chans: [number, number][] = [[1, 8], [3, 5], [4, 4], [8, 16], [16, 3], [5, 12]];
  const kernels: [number, number][] = [[3, 3], [1, 1], [2, 2], [5, 3]];
  let i = 0;
  for (const s of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      for (const [h, w] of sizes) {
        const [ci, co] = chans[i % chans.length];
        const k = kernels[i % kernels.length];
        out.push({ n: 1 + (i % 4), h, w, ci, co, k, s, pad });
        i++;
      }
    }
  }
  // VGG's own shapes, small
  out.push({ n: 2, h: 8, w: 8, ci: 8, co: 8, k: [3, 3], s: 1, pad: "same" });
  out.push({ n: 3, h: 2, w: 2, ci: 16, co: 12, k: [1, 1], s: 1, pad: "valid" });
  return out;
}

function outSize(c: ConvCase): [number, number] {
  if (c.pad === "same") return [Math.ceil(c.h / c.s), Math.ceil(c.w / c.s)];
  return [Math.floor((c.h - c.k[0]) / c.s) + 1, Math.floor((c.w - c.k[1]) / c.s) + 1];
}

async function checkConvGrads(label: string): Promise<void> {
  for (const [i, c] of convCases().entries()) {
    const [oh, ow] = outSize(c);
    if (oh < 1 || ow < 1) continue;
    const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: "NHWC" };
    const [ref, got] = await onBoth(() => {
      const x = rand([c.n, c.h, c.w, c.ci], 10 + i);
      const f = rand([...c.k, c.ci, c.co], 20 + i);
      const dy = rand([c.n, oh, ow, c.co], 30 + i);
      const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        ...attrs,
        filterShape: f.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
        ...attrs,
        inputShape: x.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return [dw, dx];
    });
    const e = [relErr(got[0], ref[0]), relErr(got[1], ref[1])];
    assert(
      e[0] <= TOL && e[1] <= TOL,
      `${label} ${JSON.stringify(c)}: rel err dW ${e[0]}, dx ${e[1]}`,
    );
  }
}

Deno.test("kernels: Conv2DBackpropFilter/Input match the cpu backend over the grid", async () => {
  await checkConvGrads("direct");
});

Deno.test("kernels: Conv2DBackpropFilter via im2col + matmul, chunked, matches too", async () => {
  setFilterGradMode("im2col");
  setIm2colChunkFloats(200); // forces one image per chunk
  try {
    await checkConvGrads("im2col");
  } finally {
    setFilterGradMode("direct");
    setIm2colChunkFloats(1 << 18);
  }
});

Deno.test("kernels: Conv2D forward (direct stride-1 kernel, XNNPACK otherwise) matches cpu", async () => {
  const cases = [
    ...convCases(),
    { n: 2, h: 6, w: 5, ci: 7, co: 13, k: [3, 3], s: 1, pad: "same" } as ConvCase,
    { n: 1, h: 4, w: 4, ci: 16, co: 9, k: [2, 3], s: 1, pad: "valid" } as ConvCase,
  ];
  for (const [i, c] of cases.entries()) {
    const [oh, ow] = outSize(c);
    if (oh < 1 || ow < 1) continue;
    const [ref, got] = await onBoth(() => {
      const x = rand([c.n, c.h, c.w, c.ci], 40 + i) as tf.Tensor4D;
      const f = rand([...c.k, c.ci, c.co], 50 + i) as tf.Tensor4D;
      return [tf.conv2d(x, f, c.s, c.pad)];
    });
    const e = relErr(got[0], ref[0]);
    assert(e <= TOL, `conv2d ${JSON.stringify(c)}: rel err ${e}`);
  }
});

Deno.test("kernels: Conv2DBackpropInput on XNNPACK (direct conv off) matches too", async () => {
  setDirectConv(false);
  try {
    await checkConvGrads("xnnpack dx");
  } finally {
    setDirectConv(true);
  }
});

Deno.test("kernels: conv2d gradients through the tape match the cpu backend", async () => {
  const [ref, got] = await onBoth(() => {
    const x = rand([2, 9, 7, 3], 1) as tf.Tensor4D;
    const f = rand([3, 3, 3, 6], 2) as tf.Tensor4D;
    const r = rand([2, 5, 4, 6], 3);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"), r))
    );
    return g([x, f]);
  });
  for (let i = 0; i < 2; i++) {
    assert(relErr(got[i], ref[i]) <= TOL, `grad ${i}: ${relErr(got[i], ref[i])}`);
  }
});

Deno.test("kernels: MaxPoolGrad matches the cpu backend, ties included (ReLU zeros)", async () => {
  const cases: [number[], number, number, "same" | "valid"][] = [
    [[2, 8, 8, 8], 2, 2, "valid"],
    [[3, 7, 9, 5], 2, 2, "valid"],
    [[1, 7, 9, 4], 3, 2, "same"],
    [[4, 6, 5, 16], 3, 1, "same"],
    [[2, 9, 7, 3], 2, 1, "valid"],
  ];
  for (const [i, [shape, f, s, pad]] of cases.entries()) {
    const [ref, got] = await onBoth(() => {
      const x = tf.relu(rand(shape, 40 + i)) as tf.Tensor4D; // about half are 0: ties
      const y = tf.maxPool(x, f, s, pad);
      const dy = rand(y.shape, 50 + i);
      const dx = tf.engine().runKernel("MaxPoolGrad", { dy, input: x, output: y }, {
        filterSize: f,
        strides: s,
        pad,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return [dx];
    });
    assert(relErr(got[0], ref[0]) <= TOL, `${shape} f${f} s${s} ${pad}: ${relErr(got[0], ref[0])}`);
  }
});

Deno.test("kernels: fused bias + batch norm + ReLU matches tf.moments + batchNorm + relu", async () => {
  const shapes = [[2, 7, 9, 3], [4, 4, 4, 8], [1, 5, 5, 16], [3, 6, 5], [64, 5], [2, 3, 3, 1]];
  for (const [i, shape] of shapes.entries()) {
    const c = shape[shape.length - 1];
    const [ref, got] = await onBoth(() => {
      const y = tf.add(tf.mul(rand(shape, 60 + i), 3), 0.5);
      const bias = rand([c], 61 + i);
      const gamma = tf.add(rand([c], 62 + i), 1.2);
      const beta = tf.mul(rand([c], 63 + i), 0.5);
      const r = rand(shape, 64 + i);
      const out = biasBatchNormRelu(y, bias, gamma, beta, 1e-5);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor, gm: tf.Tensor, bt: tf.Tensor) =>
        tf.sum(tf.mul(biasBatchNormRelu(a, b, gm, bt, 1e-5).output, r))
      )([y, bias, gamma, beta]);
      return [out.output, out.mean, out.variance, g[0], g[2], g[3], g[1], g[0]];
    });
    const names = ["output", "mean", "variance", "dy", "dgamma", "dbeta"];
    for (let j = 0; j < names.length; j++) {
      const e = relErr(got[j], ref[j]);
      assert(e <= TOL, `${shape} ${names[j]}: rel err ${e}`);
    }
    // the bias before a batch norm gets a zero gradient (rounding noise on both backends)
    const scale = Math.max(...ref[5].map(Math.abs)) + Math.max(...ref[3].map(Math.abs));
    for (const v of [...got[6], ...ref[6]]) {
      assert(Math.abs(v) <= 1e-4 * scale, `${shape} dbias ${v}`);
    }
  }
});

Deno.test("kernels: Gaussian readout sampling and its gradients match the cpu backend", async () => {
  // grids inside, on pixel centres (a 0 derivative on both paths), on the border and outside
  const cases = [
    { b: 2, h: 5, w: 7, c: 3, n: 4 },
    { b: 3, h: 16, w: 16, c: 8, n: 11 },
    { b: 1, h: 4, w: 9, c: 5, n: 6 },
    { b: 4, h: 8, w: 6, c: 32, n: 40 },
  ];
  for (const [i, k] of cases.entries()) {
    const gridData = Array.from(rand([k.b, k.n, 2], 40 + i).dataSync(), (v, j) => {
      if (j % 7 === 0) return -1 + 2 * Math.round(((v + 1) / 2) * (k.w - 1)) / (k.w - 1);
      if (j % 11 === 0) return j % 2 ? 1 : -1;
      if (j % 13 === 0) return v * 1.3;
      return v;
    });
    const [ref, got] = await onBoth(() => {
      const x = rand([k.b, k.h, k.w, k.c], 10 + i);
      const grid = tf.tensor3d(gridData, [k.b, k.n, 2]);
      const f = rand([k.c, k.n], 20 + i);
      const dy = rand([k.b, k.n], 30 + i);
      const y = readoutSample(x, grid, f);
      const g = tf.grads((a, gr, ff) => tf.sum(tf.mul(readoutSample(a, gr, ff), dy)))([x, grid, f]);
      return [y, ...g];
    });
    const names = ["y", "dx", "dgrid", "dfeatures"];
    for (let j = 0; j < 4; j++) {
      const e = relErr(got[j], ref[j]);
      assert(e <= TOL, `case ${i} ${names[j]}: rel err ${e}`);
    }
  }
});

Deno.test("kernels: Sum over leading axes and SGD momentum match the cpu backend", async () => {
  const [ref, got] = await onBoth(() => {
    const x = rand([4, 5, 6, 7], 70);
    const sums = [
      tf.sum(x, [0, 1, 2]),
      tf.sum(x, [1, 2]),
      tf.sum(x, [0, 1, 2, 3]),
      tf.sum(x, 0, true),
    ];
    const w = tf.variable(rand([3, 3, 2, 5], 71));
    const b = tf.variable(rand([5], 72));
    const opt = new Sgd({ lr: 0.1, momentum: 0.75, weightDecay: 5e-4 });
    for (let s = 0; s < 3; s++) {
      opt.step(new Map([["w", w], ["b", b]]), {
        w: rand([3, 3, 2, 5], 73 + s),
        b: rand([5], 76 + s),
      });
    }
    opt.dispose();
    const out = [...sums, w.clone(), b.clone()];
    w.dispose();
    b.dispose();
    return out;
  });
  for (let j = 0; j < ref.length; j++) {
    assert(relErr(got[j], ref[j]) <= TOL, `output ${j}: ${relErr(got[j], ref[j])}`);
  }
});

Deno.test("kernels: Identity on wasm aliases and survives the source's disposal", async () => {
  await tf.setBackend("wasm");
  const a = tf.tensor([1, 2, 3]);
  const b = tf.clone(a);
  a.dispose();
  assertEquals([...b.dataSync()], [1, 2, 3]);
  b.dispose();
});

Deno.test("kernels: the committed wasm module was built from kernels.c", async () => {
  const src = await Deno.readTextFile(new URL("./kernels.c", import.meta.url));
  assertEquals(
    await sourceHash(src),
    KERNELS_SOURCE_SHA256,
    "kernels.c changed: run `deno task build:kernels`",
  );
});
