import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertThrowsCode } from "../../../test/assert.ts";
import { initBackend } from "../backend.ts";
import { BN_EPS, createVgg, disposeModel } from "../../models/vgg.ts";
import { checkVggAgreement, randomizeBn, relErr, uniform } from "./_test_util.ts";
import { onnx, readOnnxMetadata } from "./graph.ts";
import { exportVggOnnx, foldBatchNorm } from "./vgg.ts";
import { createOnnxSession } from "./session.ts";

await initBackend("cpu");

Deno.test("onnx vgg: BN folding equals conv + eval BN with non-trivial statistics", () => {
  const [kh, kw, cin, cout] = [3, 3, 5, 7];
  const w = uniform(kh * kw * cin * cout, -0.5, 0.5, 1);
  const bn = {
    bias: uniform(cout, -0.1, 0.1, 2),
    gamma: uniform(cout, 0.5, 1.5, 3),
    beta: uniform(cout, -0.2, 0.2, 4),
    mean: uniform(cout, -0.3, 0.3, 5),
    variance: uniform(cout, 0.01, 2, 6),
  };
  const x = tf.tensor(uniform(2 * 9 * 11 * cin, -2, 2, 7), [2, 9, 11, cin]) as tf.Tensor4D;
  const unfolded = tf.tidy(() => {
    const y = tf.add(
      tf.conv2d(x, tf.tensor(w, [kh, kw, cin, cout]) as tf.Tensor4D, 1, "same"),
      bn.bias,
    );
    return tf.batchNorm(y, bn.mean, bn.variance, bn.beta, bn.gamma, BN_EPS).dataSync();
  });
  const f = foldBatchNorm(w, [kh, kw, cin, cout], bn);
  assertEquals(f.dims, [cout, cin, kh, kw]);
  // back to HWIO for tfjs
  const hwio = new Float32Array(w.length);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let h = 0; h < kh; h++) {
        for (let q = 0; q < kw; q++) {
          hwio[((h * kw + q) * cin + i) * cout + o] = f.weight[((o * cin + i) * kh + h) * kw + q];
        }
      }
    }
  }
  const folded = tf.tidy(() =>
    tf.add(tf.conv2d(x, tf.tensor(hwio, [kh, kw, cin, cout]) as tf.Tensor4D, 1, "same"), f.bias)
      .dataSync()
  );
  const err = relErr(folded, unfolded);
  assert(err < 1e-6, `folding rel err ${err}`);
  assertThrowsCode(() => foldBatchNorm(w, [3, 3, 5, 6], bn), "INVALID_ARGUMENT");
});

Deno.test("onnx vgg: tfjs cpu and onnxruntime agree (w=1/8 trunk, conv3_1, head; w=1/4 head)", async () => {
  const errs = [
    await checkVggAgreement({ width: 0.125, classes: 0, size: [64, 64], batch: 2 }, 1),
    await checkVggAgreement(
      { width: 0.125, classes: 0, upTo: "conv3_1", size: [64, 64], batch: 2 },
      2,
    ),
    await checkVggAgreement({ width: 0.125, classes: 200, size: [64, 64], batch: 2 }, 3),
    await checkVggAgreement(
      { width: 0.125, classes: 0, upTo: "conv3_1", size: [40, 56], batch: 3 },
      4,
    ),
    await checkVggAgreement({ width: 0.125, classes: 10, size: [96, 80], batch: 1 }, 5),
    await checkVggAgreement({ width: 0.25, classes: 200, size: [64, 64], batch: 1 }, 6),
  ];
  assert(errs.every((e) => e <= 1e-4), `${errs}`);
});

Deno.test("onnx vgg: metadata, names and dynamic shapes", async () => {
  const model = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 3 });
  try {
    const bytes = exportVggOnnx(model);
    const meta = readOnnxMetadata(bytes);
    assertEquals(meta.layout, "NHWC");
    assertEquals(meta.input_names, "images");
    assertEquals(meta.output_names, "logits");
    assertEquals(meta.kind, "vgg_classifier");
    assert(/^\d+\.\d+\.\d+/.test(meta.cotrain_version), meta.cotrain_version);
    const config = JSON.parse(meta.model_config);
    assertEquals(config.vgg.width, 0.125);
    assertEquals(config.vgg.classes, 5);
    assertEquals(config.upTo, "pool5");
    const m = onnx.ModelProto.decode(bytes);
    assertEquals(Number(m.opsetImport[0].version), 17);
    const graph = m.graph!;
    const dims = graph.input![0].type!.tensorType!.shape!.dim!;
    assertEquals(dims.map((d) => d.dimParam || Number(d.dimValue)), ["N", "H", "W", 1]);
    // BN is folded: no BatchNormalization node, one Conv per trunk layer + 3 for the head
    assertEquals(graph.node!.filter((n) => n.opType === "BatchNormalization").length, 0);
    assertEquals(graph.node!.filter((n) => n.opType === "Conv").length, 16 + 3);

    const s = await createOnnxSession(bytes, { threads: 1 });
    try {
      assertEquals([...s.inputNames], ["images"]);
      assertEquals([...s.outputNames], ["logits"]);
      for (const [n, h, w] of [[1, 32, 32], [5, 64, 48]]) {
        const out = await s.run(new Float32Array(n * h * w), [n, h, w, 1]);
        assertEquals(out.shape, [n, 5]);
      }
    } finally {
      await s.release();
    }
    const trunk = readOnnxMetadata(exportVggOnnx(model, { upTo: "conv3_1" }));
    assertEquals(trunk.output_names, "features");
    assertEquals(JSON.parse(trunk.model_config).upTo, "conv3_1");
    assertThrowsCode(() => exportVggOnnx(model, { upTo: "conv9_9" }), "INVALID_ARGUMENT");
    assertThrowsCode(
      () => exportVggOnnx(model, { upTo: "conv3_1", head: true }),
      "INVALID_ARGUMENT",
    );
  } finally {
    disposeModel(model);
  }
});

Deno.test("onnx vgg: the same weights give the same bytes; other weights do not", () => {
  const a = createVgg({ width: 0.125, inChannels: 1, classes: 7, seed: 11 });
  const b = createVgg({ width: 0.125, inChannels: 1, classes: 7, seed: 11 });
  const c = createVgg({ width: 0.125, inChannels: 1, classes: 7, seed: 12 });
  try {
    randomizeBn(a, 1);
    randomizeBn(b, 1);
    randomizeBn(c, 1);
    const ba = exportVggOnnx(a);
    assertEquals(exportVggOnnx(a), ba);
    assertEquals(exportVggOnnx(b), ba);
    assert(!exportVggOnnx(c).every((v, i) => v === ba[i]), "different weights, same bytes");
  } finally {
    for (const m of [a, b, c]) disposeModel(m);
  }
});
