/**
 * ONNX export of cotrain's networks and inference on onnxruntime-node:
 *
 * - {@linkcode exportVggOnnx}: VGG-19-BN trunk up to any layer, optionally with the classification
 *   head, eval mode, BN folded (vgg.ts);
 * - {@linkcode exportVggReadoutOnnx} / {@linkcode exportGaussianReadoutOnnx}: trunk to conv3_1 +
 *   Gaussian readout in eval mode, or the readout alone, from plain arrays (readout.ts);
 * - {@linkcode createOnnxSession}: a CPU onnxruntime session (session.ts);
 * - {@linkcode OnnxGraph}: the deterministic graph builder underneath (graph.ts).
 *
 * Every exported graph takes NHWC float32 input and says so in its `metadata_props`.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { createOnnxSession, exportVggOnnx } from "./mod.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 0 });
 * const session = await createOnnxSession(exportVggOnnx(model));
 * const { shape } = await session.run(new Float32Array(2 * 64 * 64), [2, 64, 64, 1]);
 * console.log(shape); // [2, 10]
 * await session.release();
 * ```
 * @module
 */
export * from "./graph.ts";
export * from "./vgg.ts";
export * from "./readout.ts";
export * from "./session.ts";
