/**
 * Inference throughput of VGG-19-BN (trunk + head, 200 classes, 64x64 gray, batch 32) on
 * onnxruntime-node (cotrain's ONNX export, 1 thread and every core) vs the tfjs wasm forward, with
 * PyTorch CPU (../shared/bench/torch_vgg_train.py, Debian's python3-torch) run in the same
 * invocation as the peer. Prints one JSON line per measurement (DESIGN.md, "Tests"), progress on
 * stderr.
 *
 * ```sh
 * deno run -A core/engine/onnx/bench_infer.ts            # w = 1/8, 1/4, 1
 * deno run -A core/engine/onnx/bench_infer.ts --quick    # w = 1/8, 1/4, fewer repeats
 * deno run -A core/engine/onnx/bench_infer.ts --no-torch --widths 0.125
 * ```
 *
 * @example
 * ```ts
 * import { measureImgPerSec } from "./bench_infer.ts";
 * const r = await measureImgPerSec(async () => {}, 32, 0.01);
 * console.log(r > 0); // true
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import { createVgg, disposeModel, vggForward } from "../../models/vgg.ts";
import { exportVggOnnx } from "./vgg.ts";
import { createOnnxSession, ONNXRUNTIME_VERSION, type OnnxSession } from "./session.ts";

const TORCH_SCRIPT = new URL("../../../../shared/bench/torch_vgg_train.py", import.meta.url);

/**
 * Images per second of `step` (one batch of `batch` images): one warm-up call, then repeats until
 * `seconds` have passed (at least 3).
 */
export async function measureImgPerSec(
  step: () => Promise<void>,
  batch: number,
  seconds: number,
): Promise<number> {
  await step();
  let n = 0;
  const t0 = performance.now();
  while (n < 3 || performance.now() - t0 < seconds * 1000) {
    await step();
    n++;
  }
  return (n * batch) / ((performance.now() - t0) / 1000);
}

interface Peer {
  name: string;
  value: number;
}

function python(args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command("/usr/bin/python3", { args, stdout: "piped", stderr: "piped" }).output();
}

async function torchPeer(width: number, batch: number, size: number): Promise<Peer | null> {
  const steps = width >= 1 ? 3 : width >= 0.25 ? 10 : 20;
  try {
    const out = await python([
      TORCH_SCRIPT.pathname,
      ...["--width", String(width), "--size", String(size), "--batch", String(batch)],
      ...["--steps", String(steps), "--threads", String(navigator.hardwareConcurrency)],
    ]);
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).slice(-300));
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
    const j = JSON.parse(line);
    return { name: j.peer, value: j.infer_img_s };
  } catch (err) {
    console.error(`pytorch peer unavailable: ${(err as Error).message}`);
    return null;
  }
}

/** The same net exported by PyTorch (torch.onnx.export, NCHW input), or null without PyTorch. */
async function torchExport(
  width: number,
  classes: number,
  size: number,
): Promise<Uint8Array | null> {
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    const dir = new URL(".", TORCH_SCRIPT).pathname;
    const code = `import sys, torch; sys.path.insert(0, ${JSON.stringify(dir)})
from torch_vgg_train import vgg19_bn
torch.manual_seed(0); m = vgg19_bn(${width}, 1, ${classes}).eval()
torch.onnx.export(m, torch.randn(1, 1, ${size}, ${size}), ${JSON.stringify(path)},
  input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}}, opset_version=13)`;
    const out = await python(["-c", code]);
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).slice(-300));
    return await Deno.readFile(path);
  } catch (err) {
    console.error(`pytorch export unavailable: ${(err as Error).message}`);
    return null;
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

async function main(): Promise<void> {
  const args = Deno.args;
  const quick = args.includes("--quick");
  const noTorch = args.includes("--no-torch");
  const wi = args.indexOf("--widths");
  const widths = wi >= 0
    ? args[wi + 1].split(",").map(Number)
    : quick
    ? [0.125, 0.25]
    : [0.125, 0.25, 1];
  const [batch, size, classes] = [32, 64, 200];
  // engines are measured in interleaved rounds and the best round is reported, so that a burst
  // of load from another process hits every engine alike and does not decide the figure
  const rounds = quick ? 2 : 3;
  const seconds = quick ? 0.5 : 1.5;
  const cores = navigator.hardwareConcurrency;
  await initBackend("wasm");
  for (const width of widths) {
    const key = `vgg19bn-w${width}-${size}px-b${batch}`;
    const peer = noTorch ? null : await torchPeer(width, batch, size);
    const model = createVgg({ width, inChannels: 1, classes, seed: 0 });
    const input = Float32Array.from({ length: batch * size * size }, (_, i) => Math.sin(i));
    const nhwc = [batch, size, size, 1];
    const ort = `onnxruntime-${ONNXRUNTIME_VERSION}`;
    const engines: { engine: string; extra: Record<string, unknown>; step: () => Promise<void> }[] =
      [];
    const sessions: OnnxSession[] = [];
    const addOrt = async (
      bytes: Uint8Array,
      shape: number[],
      engine: string,
      threads: number,
      spinning: boolean,
    ) => {
      const s = await createOnnxSession(bytes, { threads, spinning });
      sessions.push(s);
      engines.push({
        engine,
        extra: { threads, spinning },
        step: async () => void await s.run(input, shape),
      });
    };
    const bytes = exportVggOnnx(model);
    for (const threads of [...new Set([1, cores])]) await addOrt(bytes, nhwc, ort, threads, false);
    if (cores > 1) await addOrt(bytes, nhwc, ort, cores, true);
    const theirs = noTorch ? null : await torchExport(width, classes, size);
    if (theirs) await addOrt(theirs, [batch, 1, size, size], `${ort}-torch-export`, cores, false);
    const x = tf.tensor(input, nhwc);
    engines.push({
      engine: `tfjs-wasm-${tf.version_core}`,
      extra: {},
      step: async () => {
        const y = tf.tidy(() => vggForward(model, x, { training: false }).output);
        await y.data();
        y.dispose();
      },
    });
    const best = new Array(engines.length).fill(0);
    for (let r = 0; r < rounds; r++) {
      for (const [i, e] of engines.entries()) {
        best[i] = Math.max(best[i], await measureImgPerSec(e.step, batch, seconds));
      }
    }
    for (const [i, e] of engines.entries()) {
      console.log(JSON.stringify({
        bench: "engine",
        case: key,
        metric: "infer_img_s",
        engine: e.engine,
        ...e.extra,
        value: Math.round(best[i] * 10) / 10,
        ...(peer ? { peer: peer.name, peer_value: peer.value } : {}),
      }));
    }
    for (const s of sessions) await s.release();
    x.dispose();
    disposeModel(model);
    console.error(`done ${key}`);
  }
}

if (import.meta.main) await main();
