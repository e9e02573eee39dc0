import * as tf from "@tensorflow/tfjs-core";
import { assert, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import { initBackend } from "../engine/backend.ts";
import { assignParams, loadParams, saveParams } from "./checkpoint.ts";
import { createVgg, disposeModel } from "./vgg.ts";

await initBackend("cpu");

Deno.test("checkpoint: a VGG round-trips through safetensors, deterministically", () => {
  const a = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 1 });
  const b = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 2 });
  try {
    const bytes = saveParams(a.params, { kind: "vgg", config: a.config, extra: { epoch: "3" } });
    assertEquals(
      saveParams(a.params, { kind: "vgg", config: a.config, extra: { epoch: "3" } }),
      bytes,
    );
    const { tensors, meta } = loadParams(bytes);
    assertEquals(meta.kind, "vgg");
    assertEquals((meta.config as { width: number }).width, 0.125);
    assertEquals(meta.extra?.epoch, "3");
    assignParams(b.params, tensors);
    for (const [name, v] of a.params) {
      assertEquals(Array.from(b.params.get(name)!.dataSync()), Array.from(v.dataSync()), name);
    }
    tf.dispose([...tensors.values()]);
  } finally {
    disposeModel(a);
    disposeModel(b);
  }
});

Deno.test("checkpoint: wrong shapes, missing tensors and foreign files are refused", () => {
  const a = createVgg({ width: 0.125, inChannels: 1, classes: 5, seed: 1 });
  const c = createVgg({ width: 0.25, inChannels: 1, classes: 5, seed: 1 });
  try {
    const { tensors } = loadParams(saveParams(a.params, { kind: "vgg", config: a.config }));
    const err = assertThrowsCode(() => assignParams(c.params, tensors), "INVALID_ARGUMENT");
    assert(err.message.includes("shape"), err.message);
    tensors.delete("conv1_1.weight");
    assertThrowsCode(() => assignParams(a.params, tensors), "INVALID_ARGUMENT");
    assertThrowsCode(() => loadParams(new Uint8Array([1, 2, 3])), "INVALID_ARGUMENT");
  } finally {
    disposeModel(a);
    disposeModel(c);
  }
});
