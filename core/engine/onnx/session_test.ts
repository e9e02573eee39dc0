import { assert, assertEquals, assertRejectsCode } from "../../../test/assert.ts";
import { NCHWC_DOMAIN, onnx, OnnxGraph, OPSET } from "./graph.ts";
import { createOnnxSession, ONNXRUNTIME_VERSION } from "./session.ts";

function reluModel(): Uint8Array {
  const g = new OnnxGraph();
  g.input("x", ["N", 3]);
  const w = g.initializer("w", new Float32Array([1, -2, 3]), [3]);
  g.output(g.node("Relu", [g.node("Mul", ["x", w])]), "y", ["N", 3]);
  return g.toModel({ metadata: { layout: "NC" } });
}

Deno.test("onnx session: loads onnxruntime-node under Deno and runs a graph", async () => {
  assert(/^1\.\d+\.\d+/.test(ONNXRUNTIME_VERSION), ONNXRUNTIME_VERSION);
  const s = await createOnnxSession(reluModel());
  try {
    assertEquals([...s.inputNames], ["x"]);
    assertEquals([...s.outputNames], ["y"]);
    assert(s.threads >= 1);
    const out = await s.run(new Float32Array([1, 1, 1, -1, -1, -1]), [2, 3]);
    assertEquals(out.shape, [2, 3]);
    assertEquals(Array.from(out.data), [1, 0, 3, 0, 2, 0]);
    const all = await s.runAll(new Float32Array([2, 2, 2]), [1, 3]);
    assertEquals(Array.from(all.y.data), [2, 0, 6]);
  } finally {
    await s.release();
  }
});

Deno.test("onnx session: bad bytes, shapes and use after release are mapped errors", async () => {
  await assertRejectsCode(createOnnxSession(new Uint8Array([1, 2, 3])), "INVALID_ARGUMENT");
  await assertRejectsCode(createOnnxSession(reluModel(), { threads: 0 }), "INVALID_ARGUMENT");
  const s = await createOnnxSession(reluModel(), { threads: 1 });
  await assertRejectsCode(s.run(new Float32Array(5), [2, 3]), "INVALID_ARGUMENT");
  await assertRejectsCode(s.run(new Float32Array(4), [1, 4]), "INVALID_ARGUMENT");
  await s.release();
  await s.release();
  await assertRejectsCode(s.run(new Float32Array(3), [1, 3]), "FAILED_PRECONDITION");
});

Deno.test("onnx graph: a node of another operator domain imports that domain once, at version 1", () => {
  const g = new OnnxGraph();
  g.input("x", [1, 4, 2, 2]);
  const r = g.node("ReorderInput", ["x"], {}, undefined, NCHWC_DOMAIN);
  const o = g.node("ReorderOutput", [r], { channels: 4 }, undefined, NCHWC_DOMAIN);
  g.output(g.node("Relu", [o]), "y", [1, 4, 2, 2]);
  const m = onnx.ModelProto.decode(g.toModel());
  assertEquals(
    m.opsetImport.map((i) => [i.domain, Number(i.version)]),
    [["", OPSET], [NCHWC_DOMAIN, 1]],
  );
  assertEquals(m.graph!.node!.map((n) => n.domain ?? ""), [NCHWC_DOMAIN, NCHWC_DOMAIN, "", ""]);
});
