import * as tf from "@tensorflow/tfjs-core";
import { assert, assertClose, assertEquals } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import {
  clampReadout,
  createGaussianReadout,
  disposeReadout,
  type GaussianReadout,
  gaussianReadout,
  readoutGrid,
} from "./readout.ts";

await initBackend("cpu");

/** Direct bilinear sampling (align_corners, zeros padding) of x[b] at (gx, gy). */
function bilinear(
  x: Float32Array,
  hw: [number, number, number],
  b: number,
  gx: number,
  gy: number,
  ch: number,
) {
  const [h, w, c] = hw;
  const px = (gx + 1) / 2 * (w - 1), py = (gy + 1) / 2 * (h - 1);
  const x0 = Math.floor(px), y0 = Math.floor(py);
  let s = 0;
  for (const [yy, xx] of [[y0, x0], [y0, x0 + 1], [y0 + 1, x0], [y0 + 1, x0 + 1]]) {
    if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
    const wgt = (1 - Math.abs(px - xx)) * (1 - Math.abs(py - yy));
    s += wgt * x[((b * h + yy) * w + xx) * c + ch];
  }
  return s;
}

Deno.test("readout: eval output equals the formula with bilinear sampling at mu", () => {
  const r = createGaussianReadout({ neurons: 6, channels: 3, seed: 1 });
  try {
    r.mu.assign(tf.tensor2d([[-1, -1], [1, 1], [0, 0], [0.37, -0.81], [-0.999, 0.5], [0.2, 0.99]]));
    r.features.assign(tf.randomNormal([3, 6], 0, 1, "float32", 5));
    r.bias.assign(tf.tensor1d([0.1, -0.2, 0.3, 0, 0.5, 1]));
    const x = tf.randomNormal([2, 5, 7, 3], 0, 1, "float32", 3);
    const y = gaussianReadout(r, x, { training: false }).arraySync();
    const xd = x.dataSync() as Float32Array;
    const mu = r.mu.arraySync() as number[][];
    const f = r.features.arraySync() as number[][];
    const bias = r.bias.dataSync();
    for (let b = 0; b < 2; b++) {
      for (let n = 0; n < 6; n++) {
        let s = bias[n];
        for (let c = 0; c < 3; c++) {
          s += f[c][n] * bilinear(xd, [5, 7, 3], b, mu[n][0], mu[n][1], c);
        }
        const expected = s > 1 ? s : Math.exp(s - 1); // ELU(s - 1) + 1
        assertClose(y[b][n], expected, 1e-5, `b${b} n${n}`);
      }
    }
  } finally {
    disposeReadout(r);
  }
});

Deno.test("readout: training samples around mu per image, clamped to [-1, 1]; eval reads at mu", () => {
  const r = createGaussianReadout({ neurons: 4, channels: 2, seed: 2 });
  try {
    r.mu.assign(tf.tensor2d([[0.95, 0], [0, 0], [-0.5, 0.5], [0.1, 0.1]]));
    r.sigma.assign(tf.tensor2d([[0.5, 0.5], [0, 0], [0.2, 0.2], [0.3, 0]]));
    const g = readoutGrid(r, 64, { training: true, sampleSeed: 7 }).arraySync();
    const mu3y = (r.mu.arraySync() as number[][])[3][1];
    let maxAbs = 0, differ = 0;
    for (const img of g) {
      for (const [x, y] of img) maxAbs = Math.max(maxAbs, Math.abs(x), Math.abs(y));
      if (img[2][0] !== g[0][2][0]) differ++; // neuron 2 is rarely clamped
      assertEquals(img[1], [0, 0]); // sigma 0: exactly mu
      assertEquals(img[3][1], mu3y); // sigma_y 0: exactly mu_y
    }
    assert(maxAbs <= 1, "grid clamped");
    assert(differ > 50, "each image gets its own sample");
    const again = readoutGrid(r, 64, { training: true, sampleSeed: 7 }).arraySync();
    assertEquals(again, g);
    // seed 0 is a seed like any other (tfjs' randomNormal would take Math.random for it)
    const zero = readoutGrid(r, 8, { training: true, sampleSeed: 0 }).arraySync();
    assertEquals(readoutGrid(r, 8, { training: true, sampleSeed: 0 }).arraySync(), zero);
    const ev = readoutGrid(r, 3, { training: false }).arraySync();
    for (const img of ev) assertEquals(img[2], [-0.5, 0.5]);
    // parameters out of range are clamped in place
    r.mu.assign(tf.tensor2d([[2, -3], [0, 0], [0, 0], [0, 0]]));
    r.sigma.assign(tf.tensor2d([[-1, 1], [0, 0], [0, 0], [0, 0]]));
    clampReadout(r);
    assertEquals((r.mu.arraySync() as number[][])[0], [1, -1]);
    assertEquals((r.sigma.arraySync() as number[][])[0], [0, 1]);
  } finally {
    disposeReadout(r);
  }
});

Deno.test("readout: gradients reach features, bias, mu and sigma and match finite differences", () => {
  const r = createGaussianReadout({ neurons: 3, channels: 2, seed: 3 });
  try {
    const x = tf.randomNormal([2, 6, 6, 2], 1, 1, "float32", 9);
    const loss = () =>
      tf.sum(gaussianReadout(r, x, { training: true, sampleSeed: 1 })) as tf.Scalar;
    const { grads } = tf.variableGrads(loss, [r.mu, r.sigma, r.features, r.bias]);
    for (const v of [r.mu, r.sigma, r.features, r.bias]) {
      const g = grads[v.name].dataSync();
      assert(g.some((e) => e !== 0), `gradient of ${v.name} is not zero`);
    }
    // finite difference on one mu coordinate
    const g0 = grads[r.mu.name].dataSync()[0];
    const base = r.mu.arraySync() as number[][];
    const h = 1e-3;
    const at = (d: number) => {
      const m = base.map((row) => [...row]);
      m[0][0] += d;
      r.mu.assign(tf.tensor2d(m));
      return loss().dataSync()[0];
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    assertClose(g0, fd, 1e-2 * Math.max(1, Math.abs(fd)));
  } finally {
    disposeReadout(r);
  }
});

/** The rows-first formulation (sample the map at the grid, then weight the channels), as reference. */
function rowsFirstReadout(
  r: GaussianReadout,
  x: tf.Tensor,
  o: { training: boolean; sampleSeed?: number },
) {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  return tf.tidy(() => {
    const grid = readoutGrid(r, b, o);
    const [gx, gy] = tf.split(grid, 2, 2).map((t) => tf.squeeze(t, [2]) as tf.Tensor2D);
    const axis = (g: tf.Tensor2D, size: number) =>
      tf.relu(
        tf.sub(
          1,
          tf.abs(
            tf.sub(
              tf.expandDims(tf.mul(tf.add(g, 1), (size - 1) / 2), 2),
              tf.reshape(tf.range(0, size, 1, "float32"), [1, 1, size]),
            ),
          ),
        ),
      );
    const rows = tf.matMul(axis(gy, h) as tf.Tensor3D, tf.reshape(x, [b, h, w * c]) as tf.Tensor3D);
    const sampled = tf.sum(
      tf.mul(tf.reshape(rows, [b, -1, w, c]), tf.expandDims(axis(gx, w), 3)),
      2,
    );
    const y = tf.add(
      tf.sum(tf.mul(sampled, tf.expandDims(tf.transpose(r.features), 0)), 2),
      r.bias,
    );
    return tf.add(tf.elu(tf.sub(y, 1)), 1);
  });
}

Deno.test("readout: channels-first equals the rows-first formulation, values and gradients", () => {
  const r = createGaussianReadout({ neurons: 7, channels: 5, seed: 3 });
  tf.tidy(() => {
    r.mu.assign(tf.randomUniform([7, 2], -1.2, 1.2, "float32", 4));
    r.features.assign(tf.randomNormal([5, 7], 0, 1, "float32", 5));
    r.bias.assign(tf.randomNormal([7], 0, 1, "float32", 6));
  });
  const x = tf.randomNormal([3, 6, 9, 5], 0, 1, "float32", 7);
  const vars = [r.mu, r.sigma, r.features, r.bias];
  for (const training of [false, true]) {
    const o = { training, sampleSeed: 11 };
    const want = tf.variableGrads(() => tf.sum(tf.square(rowsFirstReadout(r, x, o))), vars);
    const got = tf.variableGrads(() => tf.sum(tf.square(gaussianReadout(r, x, o))), vars);
    assertClose(got.value.dataSync()[0], want.value.dataSync()[0], 1e-4 * want.value.dataSync()[0]);
    for (const v of vars) {
      assertEquals(v.name in got.grads, v.name in want.grads, `${v.name} has a gradient in both`);
      if (!(v.name in want.grads)) continue; // sigma in eval mode
      const a = got.grads[v.name].dataSync(), b = want.grads[v.name].dataSync();
      for (let i = 0; i < a.length; i++) {
        assertClose(a[i], b[i], 1e-4 * Math.max(1, Math.abs(b[i])), `${v.name}[${i}]`);
      }
    }
    tf.dispose([want.value, got.value, ...Object.values(want.grads), ...Object.values(got.grads)]);
  }
  x.dispose();
  disposeReadout(r);
});
