/**
 * Inference on an exported ONNX graph through onnxruntime-node's CPU build, which ships inside its
 * npm package (`bin/napi-v6/<os>/<arch>/onnxruntime_binding.node` + `libonnxruntime.so.1`). Deno does
 * not run the package's install script (it only downloads CUDA add-ons), and the native binding
 * loads under Deno's Node-API support as is.
 *
 * @example
 * ```ts
 * import { OnnxGraph } from "./graph.ts";
 * import { createOnnxSession } from "./session.ts";
 * const g = new OnnxGraph();
 * g.input("x", ["N", 2]);
 * g.output(g.node("Relu", ["x"]), "y", ["N", 2]);
 * const session = await createOnnxSession(g.toModel(), { threads: 1 });
 * const out = await session.run(new Float32Array([-1, 2]), [1, 2]);
 * console.log(out.shape, Array.from(out.data)); // [1, 2] [0, 2]
 * session.release();
 * ```
 * @module
 */
import * as ort from "onnxruntime-node";
import { CoreError } from "../../errors.ts";

/** Options of {@linkcode createOnnxSession}. */
export interface OnnxSessionOptions {
  /** Intra-op threads (default: `navigator.hardwareConcurrency`, i.e. every core). */
  threads?: number;
  /**
   * Let idle intra-op threads spin between operators (onnxruntime's default). Off by default here:
   * on a quiet 2-core machine spinning is within noise (VGG w = 1/8, batch 32: best of 4, 2956 vs
   * 2644 img/s; w = 1: 63 vs 65), but when another process holds a core it costs a third or more
   * (1115 vs 1804 img/s at w = 1/8) and it burns CPU between requests.
   */
  spinning?: boolean;
  /** Graph optimisation level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
}

/** A float32 tensor as plain data. */
export interface OnnxOutput {
  /** Values, row-major. */
  data: Float32Array;
  /** Dimensions. */
  shape: number[];
}

/** A loaded model: run it on one float32 input, get its first output. */
export interface OnnxSession {
  /** Runs the model on `input` with `shape` (e.g. NHWC `[N, H, W, C]`); resolves to the first output. */
  run(input: Float32Array, shape: readonly number[]): Promise<OnnxOutput>;
  /** Runs the model and returns every output by name. */
  runAll(input: Float32Array, shape: readonly number[]): Promise<Record<string, OnnxOutput>>;
  /** The model's input names (cotrain's exports have one). */
  readonly inputNames: readonly string[];
  /** The model's output names; `run` returns the first. */
  readonly outputNames: readonly string[];
  /** Intra-op threads in use. */
  readonly threads: number;
  /** Frees the native session; further runs reject. */
  release(): Promise<void>;
}

/**
 * cotrain's onnxruntime CPU session options: `threads` intra-op threads, one inter-op thread,
 * sequential execution, idle threads spinning or not between operators.
 */
export function cpuSessionOptions(
  threads: number,
  spinning: boolean,
  optimization: OnnxSessionOptions["optimization"] = "all",
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: optimization,
    extra: { session: { intra_op: { allow_spinning: spinning ? "1" : "0" } } },
  };
}

/** The onnxruntime version in use. */
export const ONNXRUNTIME_VERSION: string = ort.env.versions.common;

/**
 * Creates an onnxruntime CPU session from ONNX bytes.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { exportVggOnnx } from "./vgg.ts";
 * import { createOnnxSession } from "./session.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed: 0 });
 * const s = await createOnnxSession(exportVggOnnx(model, { upTo: "conv3_1" }), { threads: 2 });
 * const { data, shape } = await s.run(new Float32Array(64 * 64), [1, 64, 64, 1]);
 * console.log(shape, data.length); // [1, 16, 16, 32] 8192
 * await s.release();
 * ```
 */
export async function createOnnxSession(
  bytes: Uint8Array,
  options: OnnxSessionOptions = {},
): Promise<OnnxSession> {
  const threads = options.threads ?? Math.max(1, navigator.hardwareConcurrency ?? 1);
  if (!Number.isInteger(threads) || threads < 1) {
    throw CoreError.invalidArgument(`onnx session: threads ${threads} must be a positive integer`);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(
      bytes,
      cpuSessionOptions(threads, options.spinning ?? false, options.optimization),
    );
  } catch (err) {
    throw CoreError.invalidArgument(`onnx session: cannot load model: ${(err as Error).message}`);
  }
  const inputName = session.inputNames[0];
  let released = false;
  const runAll = async (input: Float32Array, shape: readonly number[]) => {
    if (released) throw new CoreError("FAILED_PRECONDITION", "onnx session: already released");
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== input.length) {
      throw CoreError.invalidArgument(
        `onnx session: input has ${input.length} values; shape [${shape}] needs ${n}`,
      );
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run({ [inputName]: new ort.Tensor("float32", input, [...shape]) });
    } catch (err) {
      throw CoreError.invalidArgument(
        `onnx session: run on [${shape}] failed: ${(err as Error).message}`,
      );
    }
    const out: Record<string, OnnxOutput> = {};
    for (const name of session.outputNames) {
      const t = results[name];
      out[name] = { data: t.data as Float32Array, shape: t.dims.map(Number) };
    }
    return out;
  };
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    threads,
    runAll,
    async run(input, shape) {
      return (await runAll(input, shape))[session.outputNames[0]];
    },
    async release() {
      if (released) return;
      released = true;
      await session.release();
    },
  };
}
