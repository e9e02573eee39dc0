/**
 * The evaluator's inference engines: a trained classifier's ONNX export on onnxruntime (the fast
 * path), or its safetensors checkpoint on tfjs (the fallback when there is no export or
 * onnxruntime cannot load it, or when asked for). Both take NHWC float32 images in normalised
 * units and give the top-1 label of each.
 *
 * @example
 * ```ts ignore
 * import { loadClassifier } from "./engine.ts";
 * const c = await loadClassifier({ checkpoint: ckptBytes, onnx: onnxBytes }, { engine: "auto" });
 * const labels = await c.predict(images, [n, 64, 64, 1]);
 * await c.release();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { createOnnxSession } from "../../core/engine/onnx/session.ts";
import { classify, disposeMtl } from "../../core/models/mtl.ts";
import { loadMtlCheckpoint } from "../../core/train/classifier_checkpoint.ts";

/** Which engine to use: onnxruntime when the export loads ("auto"), or one of them only. */
export type EngineChoice = "auto" | "onnxruntime" | "tfjs";

/** A loaded classifier. */
export interface Classifier {
  readonly engine: "onnxruntime" | "tfjs";
  /** Top-1 labels of `images` (NHWC float32, normalised). */
  predict(images: Float32Array, shape: [number, number, number, number]): Promise<Int32Array>;
  release(): Promise<void>;
}

/** Index of the largest of each row of a [rows, cols] array (first on ties). */
export function argmaxRows(data: Float32Array, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let v = data[r * cols];
    for (let c = 1; c < cols; c++) {
      const x = data[r * cols + c];
      if (x > v) {
        v = x;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/**
 * Loads a classifier from its checkpoint bytes (and ONNX export when there is one). With "auto",
 * onnxruntime is used when the export loads, else tfjs.
 */
export async function loadClassifier(
  bytes: { checkpoint: () => Promise<Uint8Array>; onnx: () => Promise<Uint8Array | null> },
  options: { engine?: EngineChoice; threads?: number } = {},
): Promise<Classifier> {
  const engine = options.engine ?? "auto";
  if (engine !== "tfjs") {
    const onnx = await bytes.onnx();
    if (onnx) {
      try {
        const session = await createOnnxSession(onnx, { threads: options.threads });
        return {
          engine: "onnxruntime",
          async predict(images, shape) {
            const out = await session.run(images, shape);
            return argmaxRows(out.data, out.shape[0], out.shape[1]);
          },
          release: () => session.release(),
        };
      } catch (err) {
        if (engine === "onnxruntime") throw err;
      }
    } else if (engine === "onnxruntime") {
      throw Object.assign(new Error("checkpoint: no ONNX export next to it (model.onnx)"), {
        code: "FAILED_PRECONDITION",
      });
    }
  }
  const model = loadMtlCheckpoint(await bytes.checkpoint());
  return {
    engine: "tfjs",
    predict(images, shape) {
      const labels = tf.tidy(() => tf.argMax(classify(model, tf.tensor4d(images, shape)), 1));
      const out = labels.dataSync() as Int32Array;
      labels.dispose();
      return Promise.resolve(Int32Array.from(out));
    },
    release() {
      disposeMtl(model);
      return Promise.resolve();
    },
  };
}
