/**
 * `deno task bench engine [--quick]`: training and inference img/s of VGG-19-BN (200 classes,
 * 64x64 gray, batch 32) at widths 1/8, 1/4 and 1 on cotrain's engines: training (forward,
 * backward, SGD momentum update) on the wasm backend with cotrain's gradient kernels and as one
 * onnxruntime graph per step (core/engine/graph, both cores, the trainers' default), inference on
 * the tfjs wasm forward and on onnxruntime-node running cotrain's ONNX export. The peer is PyTorch
 * on the CPU (../shared/bench/torch_vgg_train.py with Debian's python3-torch, 2 threads), run in
 * the same invocation, just before each width's cotrain cases.
 *
 * `--quick`: width 1/8 only, short timings.
 *
 * @example
 * ```sh
 * deno task bench engine --quick
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../core/engine/backend.ts";
import { createOnnxSession } from "../core/engine/onnx/session.ts";
import { exportVggOnnx } from "../core/engine/onnx/vgg.ts";
import { vggTrainStep } from "../core/engine/kernels/train_step.ts";
import { createVgg, disposeModel, vggForward } from "../core/models/vgg.ts";
import { createMtl, disposeMtl } from "../core/models/mtl.ts";
import { ClassifierStep } from "../core/engine/graph/classifier_step.ts";
import { Sgd } from "../core/train/optim.ts";
import {
  type BenchLine,
  type BenchOptions,
  imgPerSec,
  round1,
  runTorchPeer,
  type TorchPeerResult,
} from "./lib.ts";

const BATCH = 32;
const SIZE = 64;
const CLASSES = 200;

function torchPeer(width: number, steps: number): Promise<TorchPeerResult> {
  return runTorchPeer("torch_vgg_train.py", { width, size: SIZE, batch: BATCH, steps }, [
    "--classes",
    String(CLASSES),
  ]);
}

/** Runs the engine benchmark. */
export async function* run(options: BenchOptions): AsyncIterable<BenchLine> {
  const progress = options.progress ?? ((m: string) => console.error(m));
  const widths = options.quick ? [0.125] : [0.125, 0.25, 1];
  await initBackend("wasm");
  for (const width of widths) {
    const key = `vgg19bn-w${width}-${SIZE}px-b${BATCH}`;
    const big = width >= 1;
    progress(`engine ${key}: PyTorch peer`);
    const torch = await torchPeer(width, big ? 2 : options.quick ? 5 : 10);
    const seconds = options.quick ? 1 : big ? 0 : 3;
    const minSteps = big ? 1 : 3;

    progress(`engine ${key}: wasm training`);
    const model = createVgg({ width, inChannels: 1, classes: CLASSES, seed: 0 });
    const x = tf.randomNormal([BATCH, SIZE, SIZE, 1], 0, 1, "float32", 1);
    const labels = tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % CLASSES), "int32");
    const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
    let seed = 0;
    try {
      const train = await imgPerSec(
        () => void vggTrainStep(model, opt, x, labels, { dropoutSeed: seed++ }),
        BATCH,
        minSteps,
        seconds,
      );
      yield line(`${key}-wasm`, "train_img_s", train, torch.peer, torch.train_img_s);

      progress(`engine ${key}: onnxruntime training`);
      const net = createMtl({ width, inChannels: 1, classes: CLASSES, neurons: 0, seed: 0 });
      const step = await ClassifierStep.create(net, { batch: BATCH, height: SIZE, width: SIZE });
      const sgd = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
      const xs = x.dataSync() as Float32Array;
      const ys = Array.from(labels.dataSync());
      try {
        const ortTrain = await imgPerSec(
          async () => void await step.train(net, sgd, { x: xs, labels: ys, seed: seed++ }),
          BATCH,
          minSteps,
          seconds,
        );
        yield line(`${key}-onnxruntime`, "train_img_s", ortTrain, torch.peer, torch.train_img_s);
      } finally {
        await step.release();
        sgd.dispose();
        disposeMtl(net);
      }

      progress(`engine ${key}: wasm inference`);
      const infer = await imgPerSec(
        () => tf.tidy(() => void vggForward(model, x, { training: false }).output.dataSync()),
        BATCH,
        minSteps,
        seconds,
      );
      yield line(`${key}-wasm`, "infer_img_s", infer, torch.peer, torch.infer_img_s);

      progress(`engine ${key}: onnxruntime inference`);
      const session = await createOnnxSession(exportVggOnnx(model), { threads: 2 });
      const input = x.dataSync() as Float32Array;
      try {
        const ort = await imgPerSec(
          async () => void await session.run(input, [BATCH, SIZE, SIZE, 1]),
          BATCH,
          minSteps,
          seconds,
        );
        yield line(`${key}-onnxruntime`, "infer_img_s", ort, torch.peer, torch.infer_img_s);
      } finally {
        session.release();
      }
    } finally {
      opt.dispose();
      disposeModel(model);
      tf.dispose([x, labels]);
    }
  }
}

function line(
  c: string,
  metric: string,
  value: number,
  peer: string,
  peerValue: number,
): BenchLine {
  return { bench: "engine", case: c, metric, value: round1(value), peer, peer_value: peerValue };
}
