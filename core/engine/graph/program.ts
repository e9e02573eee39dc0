/**
 * A compiled training-step graph on onnxruntime: named float32 inputs in, named float32 outputs
 * out, every core busy (intra-op threads), idle threads not spinning between steps.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { CoreError } from "../../errors.ts";
import { cpuSessionOptions } from "../onnx/session.ts";
import { NCHWC_DOMAIN, OnnxGraph } from "../onnx/graph.ts";

/** A float32 (or int64 index) array with its dims. */
export interface Feed {
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

/** A loaded graph. */
export interface Program {
  /** Runs it; resolves to every output by name. */
  run(feeds: Record<string, Feed>): Promise<Record<string, Float32Array>>;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  release(): Promise<void>;
}

/** Threads of a training graph: COTRAIN_TRAIN_THREADS, else every core. */
export function trainThreads(): number {
  const env = Number(Deno.env.get("COTRAIN_TRAIN_THREADS") ?? "");
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, navigator.hardwareConcurrency ?? 1);
}

/**
 * Whether a training graph's idle threads spin between operators (COTRAIN_TRAIN_SPIN, default on,
 * onnxruntime's own default). A step is ~700 operators back to back: on free cores spinning saves a
 * thread wake-up per operator (VGG w=1/8 on 2 idle cores: 253 vs 189-231 img/s; w=1/4 110 vs 90),
 * but when another process holds a core it costs a third or more (91 vs 138), so `0` for training
 * that shares its cores.
 */
export function trainSpinning(): boolean {
  return envOn("COTRAIN_TRAIN_SPIN");
}

/** An on/off setting that is on unless set to `0` or `false` (platform/config validates it). */
function envOn(name: string): boolean {
  const v = Deno.env.get(name) ?? "1";
  return v !== "0" && v !== "false";
}

/**
 * Loads ONNX `bytes` as a CPU session with `threads` intra-op threads (`spinning`: default
 * {@linkcode trainSpinning}).
 */
export async function loadProgram(
  bytes: Uint8Array,
  threads = trainThreads(),
  options: { spinning?: boolean } = {},
): Promise<Program> {
  const spinning = options.spinning ?? trainSpinning();
  let session: ort.InferenceSession;
  const profile = Deno.env.get("COTRAIN_ORT_PROFILE");
  try {
    session = await ort.InferenceSession.create(bytes, {
      ...cpuSessionOptions(threads, spinning),
      // COTRAIN_ORT_PROFILE=<prefix>: onnxruntime writes a per-node timing JSON (chrome://tracing)
      ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
    });
  } catch (err) {
    throw CoreError.internal(`onnx: cannot load the graph: ${(err as Error).message}`);
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const t: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) {
        t[k] = v.data instanceof BigInt64Array
          ? new ort.Tensor("int64", v.data, [...v.dims])
          : new ort.Tensor("float32", v.data, [...v.dims]);
      }
      const res = await session.run(t);
      const out: Record<string, Float32Array> = {};
      for (const name of session.outputNames) out[name] = res[name].data as Float32Array;
      return out;
    },
    release: () => session.release(),
  };
}

/**
 * Whether training graphs may use onnxruntime's NCHWc convolutions (COTRAIN_TRAIN_NCHWC, default
 * on; `0` runs every convolution as a plain ONNX Conv).
 */
export function trainNchwc(): boolean {
  return envOn("COTRAIN_TRAIN_NCHWC");
}

let blockProbe: Promise<number> | undefined;

/**
 * The channel block of onnxruntime's NCHWc kernels on this CPU (16 with AVX-512, 8 with AVX2), or
 * 0 where it has none or {@linkcode trainNchwc} is off. MLAS picks the block from the CPU at
 * start-up and does not say it, so a one-node graph reorders 4 channels and its output's length is
 * the block (once per process).
 */
export function nchwcBlock(): Promise<number> {
  if (!trainNchwc()) return Promise.resolve(0);
  blockProbe ??= (async () => {
    const g = new OnnxGraph();
    g.input("x", [1, 4, 1, 1]);
    g.output(g.node("ReorderInput", ["x"], {}, undefined, NCHWC_DOMAIN), "y", [1, null, 1, 1]);
    try {
      const p = await loadProgram(g.toModel({ name: "cotrain-nchwc-probe" }), 1, {
        spinning: false,
      });
      const out = await p.run({ x: { data: new Float32Array(4), dims: [1, 4, 1, 1] } });
      await p.release();
      const block = out.y.length;
      return block >= 4 && block % 4 === 0 ? block : 0;
    } catch {
      return 0; // no NCHWc kernels in this build or on this CPU: plain convolutions
    }
  })();
  return blockProbe;
}

/** The training engine: COTRAIN_TRAIN_ENGINE, `onnxruntime` (the default) or `tfjs`. */
export type TrainEngine = "onnxruntime" | "tfjs";

/** Reads COTRAIN_TRAIN_ENGINE (unknown values are an error naming the allowed ones). */
export function trainEngine(): TrainEngine {
  const v = Deno.env.get("COTRAIN_TRAIN_ENGINE") ?? "onnxruntime";
  if (v !== "onnxruntime" && v !== "tfjs") {
    throw CoreError.invalidArgument(
      `COTRAIN_TRAIN_ENGINE: unknown engine ${v}; allowed: onnxruntime, tfjs`,
    );
  }
  return v;
}
