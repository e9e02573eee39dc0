/**
 * Training throughput of VGG-19-BN (64x64x1, batch 32, SGD momentum 0.75 + weight decay 5e-4,
 * 200 classes: what ../shared/bench/torch_vgg_train.py does) on the wasm backend with cotrain's
 * kernels, PyTorch's figure from the same run beside it, and optionally per-kernel timings.
 *
 * ```sh
 * deno run -A core/engine/kernels/profile_step.ts                 # w=1/8 and w=1/4 + PyTorch
 * deno run -A core/engine/kernels/profile_step.ts --widths 0.125 --steps 5 --kernels --no-torch --no-workers
 * deno run -A core/engine/kernels/profile_step.ts --layer          # one layer: tfjs vs cotrain kernels
 * ```
 * Each width is measured in one thread and with 2 data-parallel workers (data_parallel.ts; skip
 * with `--no-workers`); `ratio` is the better of the two over PyTorch.
 * `--kernels` prints where the time of one step goes (tf.profile, per kernel name); `--layer`
 * times each gradient kernel alone on conv1_2's shape (32x64x64x8) against what tfjs does without
 * cotrain's kernels. PyTorch runs with Debian's python3-torch (/usr/bin/python3) when installed.
 *
 * @example
 * ```ts
 * // deno run -A core/engine/kernels/profile_step.ts --widths 0.125 --steps 3 --no-torch
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import { createVgg, disposeModel } from "../../models/vgg.ts";
import { biasBatchNormRelu } from "./ops.ts";
import { Sgd } from "../../train/optim.ts";
import { vggTrainStep } from "./train_step.ts";
import { measureDataParallel } from "./data_parallel.ts";

const args = Deno.args;
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const widths = opt("widths", "0.125,0.25").split(",").map(Number);
const steps = Number(opt("steps", "10"));
const batch = Number(opt("batch", "32"));
const size = Number(opt("size", "64"));
const classes = 200;

/** Training img/s of the VGG at `width` on the active backend. */
export function trainImgPerSec(width: number, nSteps: number, perKernel = false): number {
  const model = createVgg({ width, inChannels: 1, classes, seed: 0 });
  const optimizer = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
  const x = tf.randomNormal([batch, size, size, 1], 0, 1, "float32", 1);
  const labels = tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 7) % classes), "int32");
  try {
    vggTrainStep(model, optimizer, x, labels, { dropoutSeed: 0 }); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < nSteps; i++) {
      vggTrainStep(model, optimizer, x, labels, { dropoutSeed: i + 1 });
    }
    const imgS = (nSteps * batch * 1000) / (performance.now() - t0);
    if (perKernel) printKernelProfile(model, optimizer, x, labels);
    return imgS;
  } finally {
    optimizer.dispose();
    disposeModel(model);
    x.dispose();
    labels.dispose();
  }
}

function printKernelProfile(
  model: ReturnType<typeof createVgg>,
  optimizer: Sgd,
  x: tf.Tensor,
  labels: tf.Tensor1D,
): void {
  // tf.profile is async; run it synchronously enough by awaiting below in main
  pending.push(
    tf.profile(() => {
      vggTrainStep(model, optimizer, x, labels, { dropoutSeed: 99 });
    }).then((info) => {
      const by = new Map<string, { ms: number; n: number }>();
      for (const k of info.kernels) {
        const e = by.get(k.name) ?? { ms: 0, n: 0 };
        e.ms += Number(k.kernelTimeMs);
        e.n++;
        by.set(k.name, e);
      }
      const total = [...by.values()].reduce((a, b) => a + b.ms, 0);
      console.log(`per-kernel time of one step (sum ${total.toFixed(1)} ms):`);
      for (const [name, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
        console.log(`  ${name.padEnd(24)} ${e.ms.toFixed(2).padStart(8)} ms  x${e.n}`);
      }
    }),
  );
}
const pending: Promise<void>[] = [];

function timeMs(f: () => tf.Tensor | tf.Tensor[], n = 5): number {
  tf.dispose(f());
  const t0 = performance.now();
  for (let i = 0; i < n; i++) tf.dispose(f());
  return (performance.now() - t0) / n;
}

/** One layer's gradient kernels (conv1_2 at w=1/8): tfjs' way vs cotrain's kernels. */
function layerComparison(): void {
  const [n, h, w, c] = [batch, size, size, 8];
  const x = tf.randomNormal([n, h, w, c], 0, 1, "float32", 2) as tf.Tensor4D;
  const dy = tf.randomNormal([n, h, w, c], 0, 1, "float32", 3) as tf.Tensor4D;
  const filter = tf.randomNormal([3, 3, c, c], 0, 1, "float32", 4) as tf.Tensor4D;
  const bias = tf.zeros([c]), gamma = tf.ones([c]), beta = tf.zeros([c]);
  const rows: [string, number, number][] = [];
  // conv forward for scale
  const fwd = timeMs(() => tf.conv2d(x, filter, 1, "same"));
  // dW, tfjs' way (no backend kernel): im2col by pad + slices + concat, transpose, matmul
  const dwTfjs = timeMs(() =>
    tf.tidy(() => {
      const xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
      const cols: tf.Tensor[] = [];
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) cols.push(tf.slice(xp, [0, i, j, 0], [n, h, w, c]));
      }
      const p = tf.reshape(tf.concat(cols, 3), [n * h * w, 9 * c]);
      return tf.matMul(tf.transpose(p), tf.reshape(dy, [n * h * w, c]));
    })
  );
  const dwOurs = timeMs(() =>
    tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      strides: [1, 1],
      pad: "same",
      dataFormat: "NHWC",
      filterShape: [3, 3, c, c],
    } as unknown as tf.NamedAttrMap) as tf.Tensor
  );
  rows.push(["Conv2DBackpropFilter", dwTfjs, dwOurs]);
  const dxOurs = timeMs(() => tf.conv2dTranspose(dy, filter, [n, h, w, c], 1, "same"));
  const dxTfjs = timeMs(() =>
    tf.tidy(() => tf.conv2d(dy, tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]), 1, "same"))
  );
  rows.push(["Conv2DBackpropInput (ours) / flipped conv (tfjs ops)", dxTfjs, dxOurs]);
  const pooled = tf.maxPool(x, 2, 2, "valid");
  const dp = tf.randomNormal(pooled.shape, 0, 1, "float32", 5);
  const poolOurs = timeMs(() =>
    tf.engine().runKernel("MaxPoolGrad", { dy: dp, input: x, output: pooled }, {
      filterSize: 2,
      strides: 2,
      pad: "valid",
    } as unknown as tf.NamedAttrMap) as tf.Tensor
  );
  const bnGrad = (fused: boolean) =>
    timeMs(() =>
      tf.tidy(() => {
        const f = (xx: tf.Tensor) => {
          if (fused) return biasBatchNormRelu(xx, bias, gamma, beta, 1e-5).output;
          const z = tf.add(xx, bias);
          const m = tf.moments(z, [0, 1, 2]);
          return tf.relu(tf.batchNorm(z, m.mean, m.variance, beta, gamma, 1e-5));
        };
        return tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx), dy)))(x);
      })
    );
  rows.push(["bias+BN+ReLU fwd+bwd", bnGrad(false), bnGrad(true)]);
  console.log(
    `one layer, ${n}x${h}x${w}x${c} -> ${c}, 3x3 same; conv2d forward ${fwd.toFixed(1)} ms`,
  );
  console.log(`  ${"kernel".padEnd(54)} ${"tfjs".padStart(9)} ${"cotrain".padStart(9)}`);
  for (const [name, a, b] of rows) {
    console.log(
      `  ${name.padEnd(54)} ${a.toFixed(1).padStart(6)} ms ${b.toFixed(1).padStart(6)} ms`,
    );
  }
  console.log(`  MaxPoolGrad 2x2 (cotrain) ${poolOurs.toFixed(2)} ms`);
  tf.dispose([x, dy, filter, bias, gamma, beta, pooled, dp]);
}

/** Runs ../shared/bench/torch_vgg_train.py; null when PyTorch is not installed. */
async function torchImgPerSec(width: number, threads = 2): Promise<number | null> {
  const script = new URL("../../../../shared/bench/torch_vgg_train.py", import.meta.url).pathname;
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [
        script,
        "--width",
        String(width),
        "--size",
        String(size),
        "--batch",
        String(batch),
        "--steps",
        String(steps),
        "--threads",
        String(threads),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) return null;
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    return JSON.parse(line).train_img_s as number;
  } catch {
    return null;
  }
}

if (import.meta.main) {
  await initBackend("wasm");
  console.log(`backend ${tf.getBackend()}, batch ${batch}, ${size}x${size}x1, ${steps} steps`);
  if (flag("layer")) layerComparison();
  for (const width of widths) {
    const ours = trainImgPerSec(width, steps, flag("kernels"));
    await Promise.all(pending.splice(0));
    const dp = flag("no-workers")
      ? null
      : await measureDataParallel({ width, batch, replicas: 2, steps, size, classes });
    const torch = flag("no-torch") ? null : await torchImgPerSec(width, 2);
    const torch1 = flag("no-torch") ? null : await torchImgPerSec(width, 1);
    const r = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
    const best = Math.max(ours, dp ?? 0);
    console.log(
      JSON.stringify({
        case: `vgg19bn_train_w${width}`,
        train_img_s: r(ours),
        train_img_s_2workers: r(dp),
        pytorch_train_img_s: torch,
        pytorch_1thread_train_img_s: torch1,
        ratio: torch ? Math.round((best / torch) * 100) / 100 : null,
      }),
    );
  }
}
