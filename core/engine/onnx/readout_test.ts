import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertThrowsCode } from "../../../test/assert.ts";
import { initBackend } from "../backend.ts";
import { createVgg, disposeModel, vggForward } from "../../models/vgg.ts";
import { createGaussianReadout, disposeReadout, gaussianReadout } from "../../models/readout.ts";
import {
  randomizeBn,
  randomReadout,
  readoutReference,
  relErr,
  TOL,
  uniform,
} from "./_test_util.ts";
import { readOnnxMetadata } from "./graph.ts";
import { exportGaussianReadoutOnnx, exportVggReadoutOnnx, readoutArrays } from "./readout.ts";
import { createOnnxSession } from "./session.ts";

Deno.test("onnx readout: the graph computes the eval formula (clamped mu, non-square maps)", async () => {
  for (
    const [b, h, w, c, n, seed] of [[3, 16, 16, 32, 50, 1], [2, 7, 12, 5, 9, 2], [1, 1, 4, 3, 4, 3]]
  ) {
    const r = randomReadout(c, n, seed);
    const shape = [b, h, w, c];
    const x = uniform(b * h * w * c, -1, 3, seed + 10);
    const ref = readoutReference(x, shape, r);
    const s = await createOnnxSession(exportGaussianReadoutOnnx(r), { threads: 1 });
    try {
      const out = await s.run(x, shape);
      assertEquals(out.shape, [b, n]);
      const err = relErr(out.data, ref);
      assert(err <= 1e-5, `readout [${shape}] rel err ${err}`);
      assert(out.data.every((v) => v > 0), "responses are positive");
      // the same session on another map size (H, W are dynamic)
      const shape2 = [b, h + 3, w + 1, c];
      const x2 = uniform(shape2.reduce((p, q) => p * q), -1, 3, seed + 20);
      const err2 = relErr((await s.run(x2, shape2)).data, readoutReference(x2, shape2, r));
      assert(err2 <= 1e-5, `readout [${shape2}] rel err ${err2}`);
    } finally {
      await s.release();
    }
  }
});

Deno.test("onnx readout: mu = (x, y) indexes (width, height) and corners hit pixel centres", async () => {
  // a 2x3 map holding its own pixel index; f = 1, bias = 0 so ELU(y - 1) + 1 = y for y >= 1
  const [h, w] = [2, 3];
  const x = Float32Array.from({ length: h * w }, (_, i) => i + 1);
  const r = {
    channels: 1,
    neurons: 4,
    mu: [-1, -1, 1, -1, -1, 1, 5, 5],
    features: [1, 1, 1, 1],
    bias: [0, 0, 0, 0],
  };
  const s = await createOnnxSession(exportGaussianReadoutOnnx(r, { height: h, width: w }), {
    threads: 1,
  });
  try {
    const out = await s.run(x, [1, h, w, 1]);
    // top-left, top-right (x = +1 is the last column), bottom-left, bottom-right (clamped)
    assertEquals(Array.from(out.data), [1, 3, 4, 6]);
  } finally {
    await s.release();
  }
});

Deno.test("onnx readout: trunk to conv3_1 + readout matches tfjs trunk + formula (cpu, wasm)", async () => {
  for (
    const [backend, width, size, seed] of [
      ["cpu", 0.125, [64, 64], 1],
      ["wasm", 0.125, [64, 64], 2],
      ["wasm", 0.125, [48, 80], 3],
      ["wasm", 0.25, [64, 64], 4],
    ] as const
  ) {
    await initBackend(backend);
    const model = createVgg({ width, inChannels: 1, classes: 0, seed });
    try {
      randomizeBn(model, seed);
      const shape = [3, size[0], size[1], 1];
      const input = uniform(shape.reduce((a, b) => a * b), -2, 2, seed + 5);
      const feats = tf.tidy(() =>
        vggForward(model, tf.tensor(input, shape), { training: false, upTo: "conv3_1" }).output
      );
      const r = randomReadout(feats.shape[3]!, 40, seed + 7);
      const ref = readoutReference(feats.dataSync(), feats.shape, r);
      feats.dispose();
      const bytes = exportVggReadoutOnnx(model, r);
      const meta = readOnnxMetadata(bytes);
      assertEquals([meta.layout, meta.output_names, meta.kind], [
        "NHWC",
        "responses",
        "vgg_readout",
      ]);
      assertEquals(JSON.parse(meta.model_config).readout.neurons, 40);
      assertEquals(exportVggReadoutOnnx(model, r), bytes);
      const s = await createOnnxSession(bytes);
      try {
        const out = await s.run(input, shape);
        assertEquals(out.shape, [3, 40]);
        const err = relErr(out.data, ref);
        assert(err <= TOL, `${backend} w=${width} ${size}: rel err ${err}`);
      } finally {
        await s.release();
      }
      assertThrowsCode(
        () => exportVggReadoutOnnx(model, randomReadout(7, 3, 1)),
        "INVALID_ARGUMENT",
      );
    } finally {
      disposeModel(model);
    }
  }
});

Deno.test("onnx readout: matches core/models/readout.ts (eval) on the tfjs trunk (cpu, wasm)", async () => {
  for (const [backend, seed] of [["cpu", 1], ["wasm", 2]] as const) {
    await initBackend(backend);
    const model = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed });
    const readout = createGaussianReadout({ neurons: 30, channels: 32, seed, initMuRange: 1.1 });
    try {
      randomizeBn(model, seed);
      readout.features.assign(tf.tensor(uniform(32 * 30, -0.3, 0.3, seed), [32, 30]));
      readout.bias.assign(tf.tensor(uniform(30, 0, 1, seed + 1)));
      const shape = [2, 64, 64, 1];
      const input = uniform(2 * 64 * 64, -2, 2, seed + 2);
      const ref = tf.tidy(() => {
        const feats = vggForward(model, tf.tensor(input, shape), {
          training: false,
          upTo: "conv3_1",
        }).output;
        return gaussianReadout(readout, feats, { training: false }).dataSync();
      });
      const s = await createOnnxSession(exportVggReadoutOnnx(model, readoutArrays(readout)));
      try {
        const err = relErr((await s.run(input, shape)).data, ref);
        assert(err <= TOL, `${backend}: rel err ${err}`);
      } finally {
        await s.release();
      }
    } finally {
      disposeModel(model);
      disposeReadout(readout);
    }
  }
});

Deno.test("onnx readout: bad arrays are INVALID_ARGUMENT", () => {
  const ok = randomReadout(4, 3, 1);
  assertThrowsCode(() => exportGaussianReadoutOnnx({ ...ok, mu: [0, 0] }), "INVALID_ARGUMENT");
  assertThrowsCode(() => exportGaussianReadoutOnnx({ ...ok, features: [1] }), "INVALID_ARGUMENT");
  assertThrowsCode(() => exportGaussianReadoutOnnx({ ...ok, neurons: 0 }), "INVALID_ARGUMENT");
});
