/**
 * `deno task bench exports [--quick]`: inference img/s of VGG-19-BN (trunk + head, 200 classes,
 * 64x64 gray, batch 32) at widths 1/8, 1/4 (and 1 in the full run) through cotrain's ONNX export
 * on onnxruntime-node (one thread, every core, every core spinning), through PyTorch's own export
 * of the same network (torch.onnx.export of ../shared/bench/torch_vgg_train.py's vgg19_bn) on the
 * same onnxruntime, and the tfjs wasm forward. The peer is PyTorch's eager inference on the CPU
 * (torch_vgg_train.py, 2 threads), run in the same invocation before each width's cases.
 *
 * The engines are measured in interleaved rounds and the best round is reported, so that a burst
 * of load from another process hits every engine alike and does not decide the figure.
 *
 * @example
 * ```sh
 * deno task bench exports --quick
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../core/engine/backend.ts";
import { createVgg, disposeModel, vggForward } from "../core/models/vgg.ts";
import { exportVggOnnx } from "../core/engine/onnx/vgg.ts";
import {
  createOnnxSession,
  ONNXRUNTIME_VERSION,
  type OnnxSession,
} from "../core/engine/onnx/session.ts";
import {
  type BenchLine,
  type BenchOptions,
  imgPerSec,
  round1,
  runTorchPeer,
  runTorchPython,
} from "./lib.ts";

const [BATCH, SIZE, CLASSES] = [32, 64, 200];
const TORCH_DIR = new URL("../../shared/bench/", import.meta.url).pathname;

/** The same net exported by PyTorch (torch.onnx.export, NCHW input). */
async function torchExport(width: number): Promise<Uint8Array> {
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    const code = `import sys, torch; sys.path.insert(0, ${JSON.stringify(TORCH_DIR)})
from torch_vgg_train import vgg19_bn
torch.manual_seed(0); m = vgg19_bn(${width}, 1, ${CLASSES}).eval()
torch.onnx.export(m, torch.randn(1, 1, ${SIZE}, ${SIZE}), ${JSON.stringify(path)},
  input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}}, opset_version=13)`;
    await runTorchPython(["-c", code]);
    return await Deno.readFile(path);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

interface Engine {
  name: string;
  step: () => Promise<void>;
}

/** Runs the benchmark. */
export async function* run(options: BenchOptions): AsyncIterable<BenchLine> {
  const progress = options.progress ?? ((m: string) => console.error(m));
  const widths = options.quick ? [0.125, 0.25] : [0.125, 0.25, 1];
  const rounds = options.quick ? 2 : 3;
  const seconds = options.quick ? 0.5 : 1.5;
  const cores = navigator.hardwareConcurrency;
  await initBackend("wasm");
  for (const width of widths) {
    const key = `vgg19bn-w${width}-${SIZE}px-b${BATCH}`;
    progress(`exports ${key}: PyTorch peer`);
    const steps = width >= 1 ? 3 : width >= 0.25 ? 10 : 20;
    const torch = await runTorchPeer("torch_vgg_train.py", {
      width,
      size: SIZE,
      batch: BATCH,
      steps,
    }, ["--classes", String(CLASSES)]);
    const model = createVgg({ width, inChannels: 1, classes: CLASSES, seed: 0 });
    const input = Float32Array.from({ length: BATCH * SIZE * SIZE }, (_, i) => Math.sin(i));
    const nhwc = [BATCH, SIZE, SIZE, 1];
    const ort = `onnxruntime-${ONNXRUNTIME_VERSION}`;
    const engines: Engine[] = [];
    const sessions: OnnxSession[] = [];
    const addOrt = async (
      bytes: Uint8Array,
      shape: number[],
      name: string,
      threads: number,
      spinning: boolean,
    ) => {
      const s = await createOnnxSession(bytes, { threads, spinning });
      sessions.push(s);
      engines.push({
        name: `${name}-t${threads}${spinning ? "-spin" : ""}`,
        step: async () => void await s.run(input, shape),
      });
    };
    const ours = exportVggOnnx(model);
    for (const threads of [...new Set([1, cores])]) await addOrt(ours, nhwc, ort, threads, false);
    if (cores > 1) await addOrt(ours, nhwc, ort, cores, true);
    await addOrt(
      await torchExport(width),
      [BATCH, 1, SIZE, SIZE],
      `${ort}-torch-export`,
      cores,
      false,
    );
    const x = tf.tensor(input, nhwc);
    engines.push({
      name: `tfjs-wasm-${tf.version_core}`,
      step: async () => {
        const y = tf.tidy(() => vggForward(model, x, { training: false }).output);
        await y.data();
        y.dispose();
      },
    });
    const best = new Array(engines.length).fill(0);
    for (let r = 1; r <= rounds; r++) {
      progress(`exports ${key}: round ${r}/${rounds}`);
      for (const [i, e] of engines.entries()) {
        best[i] = Math.max(best[i], await imgPerSec(e.step, BATCH, 3, seconds));
      }
    }
    for (const [i, e] of engines.entries()) {
      yield {
        bench: "exports",
        case: `${key}-${e.name}`,
        metric: "infer_img_s",
        value: round1(best[i]),
        peer: torch.peer,
        peer_value: torch.infer_img_s,
      };
    }
    for (const s of sessions) await s.release();
    x.dispose();
    disposeModel(model);
  }
}
