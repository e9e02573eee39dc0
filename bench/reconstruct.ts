/**
 * `deno task bench reconstruct [--quick]`: optimisation steps per second of norm-constrained
 * reconstruction at conv3_1 of VGG-19-BN (widths 1/8 and 1, 64x64 gray, 4 images, budget 15,
 * SGD, projection after every step, no gradient blur: the work of the peer), on cotrain's default
 * engine (the hand-written gradient graph on onnxruntime-node, 2 threads) and on tfjs autodiff
 * (wasm backend with cotrain's kernels). The peer is PyTorch on the CPU
 * (../shared/bench/torch_reconstruct.py, Debian's python3-torch, 2 threads), run in the same
 * invocation just before each width's cotrain cases. A step is one forward to conv3_1, the input
 * gradient, the update and the projection; timings start after the first step.
 *
 * `--quick`: fewer steps, tfjs at w = 1/8 only.
 *
 * @example
 * ```sh
 * deno task bench reconstruct --quick
 * ```
 * @module
 */
import { initBackend } from "../core/engine/backend.ts";
import { reconstruct, type ReconstructEngine } from "../core/analysis/reconstruct.ts";
import { createVgg, disposeModel } from "../core/models/vgg.ts";
import { rngFor } from "../core/random.ts";
import { type BenchLine, type BenchOptions, round1, runTorchPython } from "./lib.ts";

const SIZE = 64;
const IMAGES = 4;
const BUDGET = 15;

interface PeerResult {
  peer: string;
  steps_s: number;
}

/** Runs ../shared/bench/torch_reconstruct.py (it takes --images, not the common --batch). */
async function torchPeer(width: number, steps: number): Promise<PeerResult> {
  const path = new URL("../../shared/bench/torch_reconstruct.py", import.meta.url).pathname;
  const lines = (await runTorchPython([
    path,
    ...["--width", String(width), "--size", String(SIZE), "--images", String(IMAGES)],
    ...["--steps", String(steps), "--norm", String(BUDGET), "--threads", "2"],
  ])).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as PeerResult;
}

/** Steps per second of one reconstruction run of `steps` steps (the first step untimed). */
async function stepsPerSecond(
  width: number,
  engine: ReconstructEngine,
  steps: number,
): Promise<number> {
  const model = createVgg({ width, inChannels: 1, classes: 0, seed: 0 });
  const data = new Float32Array(IMAGES * SIZE * SIZE);
  rngFor(0, "bench-reconstruct").fillNormal(data);
  let t1 = 0, tn = 0;
  try {
    await reconstruct(model, { shape: [IMAGES, SIZE, SIZE, 1], data }, {
      layer: "conv3_1",
      budgets: [BUDGET],
      steps,
      optimizer: "sgd",
      lr: 5,
      constraint: "project",
      blurSigma: 0,
      reduction: "sum",
      lossEvery: steps,
      engine,
      threads: 2,
      onStep: (s) => {
        if (s === 1) t1 = performance.now();
        if (s === steps) tn = performance.now();
      },
    });
  } finally {
    disposeModel(model);
  }
  return (steps - 1) / ((tn - t1) / 1000);
}

/** Runs the reconstruction benchmark. */
export async function* run(options: BenchOptions): AsyncIterable<BenchLine> {
  const progress = options.progress ?? ((m: string) => console.error(m));
  await initBackend("wasm");
  const cases = [
    { width: 0.125, steps: options.quick ? 40 : 200, tfjs: true },
    { width: 1, steps: options.quick ? 8 : 40, tfjs: !options.quick },
  ];
  for (const c of cases) {
    const key = `vgg19bn-conv3_1-w${c.width}-${SIZE}px-${IMAGES}img`;
    progress(`reconstruct ${key}: PyTorch peer`);
    const peer = await torchPeer(c.width, c.steps);
    const engines: ReconstructEngine[] = c.tfjs ? ["onnx", "tfjs"] : ["onnx"];
    for (const engine of engines) {
      progress(`reconstruct ${key}: ${engine}`);
      const steps = engine === "tfjs" && c.width >= 1 ? Math.min(c.steps, 10) : c.steps;
      const value = await stepsPerSecond(c.width, engine, steps);
      yield {
        bench: "reconstruct",
        case: `${key}-${engine === "onnx" ? "onnxruntime" : "tfjs-wasm"}`,
        metric: "steps_s",
        value: round1(value),
        peer: peer.peer,
        peer_value: peer.steps_s,
      };
    }
  }
}
