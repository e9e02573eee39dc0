import { assert } from "../../../test/assert.ts";
import { initBackend } from "../backend.ts";
import { checkVggAgreement } from "./_test_util.ts";

await initBackend("wasm");

Deno.test("onnx vgg: tfjs wasm and onnxruntime agree (w=1/8 trunk, head at two sizes; w=1/4)", async () => {
  const errs = [
    await checkVggAgreement({ width: 0.125, classes: 0, size: [64, 64], batch: 4 }, 21),
    await checkVggAgreement({ width: 0.125, classes: 200, size: [64, 64], batch: 4 }, 22),
    await checkVggAgreement(
      { width: 0.125, classes: 0, upTo: "conv3_1", size: [64, 64], batch: 4 },
      23,
    ),
    await checkVggAgreement({ width: 0.125, classes: 200, size: [72, 48], batch: 2 }, 24),
    await checkVggAgreement({ width: 0.25, classes: 200, size: [64, 64], batch: 2 }, 25),
    await checkVggAgreement({ width: 0.25, classes: 0, size: [40, 40], batch: 2 }, 26),
  ];
  assert(errs.every((e) => e <= 1e-4), `${errs}`);
});
