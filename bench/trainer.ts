/**
 * `deno task bench trainer [--quick]`: training throughput of the classifier trainer
 * (core/train/classifier.ts: batch preparation with augmentation, forward, backward, SGD) for the
 * Baseline and MTL (ratio 1:1: one classification and one neural batch per step) at widths 1/8 and
 * 1/4, 64x64 gray, 200 classes, batch 32, on the default training engine (one onnxruntime graph
 * per step, core/engine/graph; `COTRAIN_TRAIN_ENGINE=tfjs` measures the tfjs wasm path). The peers
 * are PyTorch on the CPU (Debian's python3-torch, 2 threads), run in the same invocation just
 * before each width's cases: ../shared/bench/torch_vgg_train.py, a single-task training step on the
 * same network, for the Baseline (and, as the issue names it, for the MTL lines too), and
 * bench/peers/torch_mtl_train.py, the same MTL 1:1 step (shared trunk to conv3_1, Gaussian
 * readout, Kendall task weights), for the MTL lines marked `vs-mtl-peer`.
 *
 * Each width runs three rounds (peers, then cotrain, back to back); every figure is the median over
 * the rounds.
 *
 * Metrics: `train_img_s` counts classification images per second; the MTL case also reports
 * `train_all_img_s`, classification plus neural images per second (each step sees both).
 *
 * @example
 * ```sh
 * deno task bench trainer --quick
 * ```
 * @module
 */
import { initBackend } from "../core/engine/backend.ts";
import { disposeMtl } from "../core/models/mtl.ts";
import { type ClassifierData, trainClassifier } from "../core/train/classifier.ts";
import {
  type BenchLine,
  type BenchOptions,
  median,
  round1,
  runTorchPeer,
  type TorchPeerResult,
} from "./lib.ts";

const BATCH = 32;
const SIZE = 64;
const CLASSES = 200;
const NEURONS = 64;

function torchPeer(width: number, steps: number): Promise<TorchPeerResult> {
  return runTorchPeer("torch_vgg_train.py", { width, size: SIZE, batch: BATCH, steps }, [
    "--classes",
    String(CLASSES),
  ]);
}

/** The MTL 1:1 step in PyTorch (bench/peers/torch_mtl_train.py); train_img_s per classification image. */
function torchMtlPeer(width: number, steps: number): Promise<TorchPeerResult> {
  return runTorchPeer(
    new URL("./peers/torch_mtl_train.py", import.meta.url),
    { width, size: SIZE, batch: BATCH, steps },
    ["--classes", String(CLASSES), "--neurons", String(NEURONS)],
  );
}

/** Random images and targets: `steps + 1` batches of training data, a tiny validation set. */
function data(steps: number): ClassifierData {
  const n = BATCH * (steps + 1);
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 4294967296;
  const images = new Uint8Array(n * SIZE * SIZE).map(() => Math.floor(rand() * 256));
  const labels = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
  const set = { images: { dtype: "uint8" as const, shape: [n, SIZE, SIZE], data: images } };
  return {
    train: { ...set, labels: { dtype: "int32", shape: [n], data: labels } },
    val: {
      images: { dtype: "uint8", shape: [2, SIZE, SIZE], data: images.subarray(0, 2 * SIZE * SIZE) },
      labels: { dtype: "int32", shape: [2], data: labels.subarray(0, 2) },
    },
    classes: CLASSES,
    targets: { neurons: NEURONS, data: new Float32Array(n * NEURONS).map(() => 1 + rand()) },
  };
}

/** Classification images per second over the steps after the first (warm-up). */
async function trainerImgPerSec(kind: string, width: number, steps: number): Promise<number> {
  const run = trainClassifier(
    { kind, width, maxEpochs: 1, batchSize: BATCH, neuralBatchSize: BATCH, lr: 0.01, seed: 0 },
    data(steps),
    { progressEvery: 1 },
  );
  let t0 = 0;
  let s0 = 0;
  let last = 0;
  let lastStep = 0;
  let r = await run.next();
  while (!r.done) {
    if (r.value.stage === "train") {
      if (r.value.step === 1) [t0, s0] = [performance.now(), 1];
      else [last, lastStep] = [performance.now(), r.value.step];
    }
    r = await run.next();
  }
  disposeMtl(r.value.model);
  return ((lastStep - s0) * BATCH) / ((last - t0) / 1000);
}

/**
 * Runs the trainer benchmark. This machine's speed drifts by a third within minutes (PyTorch's own
 * figure included), so each width is measured in `rounds` rounds of peers then cotrain, back to
 * back, and every figure is the median over the rounds: a drift hits both sides of a round alike.
 */
export async function* run(options: BenchOptions): AsyncIterable<BenchLine> {
  const progress = options.progress ?? ((m: string) => console.error(m));
  const widths = options.quick ? [0.125] : [0.125, 0.25];
  const rounds = options.quick ? 1 : 3;
  await initBackend("wasm");
  for (const width of widths) {
    const key = `vgg19bn-w${width}-${SIZE}px-b${BATCH}`;
    const steps = options.quick ? 6 : width <= 0.125 ? 16 : 8;
    const peerSteps = options.quick ? 5 : 10;
    const got = { torch: [] as TorchPeerResult[], torchMtl: [] as TorchPeerResult[] };
    const base: number[] = [];
    const mtl: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      progress(`trainer ${key} round ${r}/${rounds}: PyTorch peers`);
      got.torch.push(await torchPeer(width, peerSteps));
      got.torchMtl.push(await torchMtlPeer(width, peerSteps));
      progress(`trainer ${key} round ${r}/${rounds}: Baseline, MTL 1:1`);
      base.push(await trainerImgPerSec("baseline", width, steps));
      mtl.push(await trainerImgPerSec("mtl", width, steps));
      progress(
        `trainer ${key} round ${r}: PyTorch ${got.torch[r - 1].train_img_s}, PyTorch MTL ` +
          `${got.torchMtl[r - 1].train_img_s}, Baseline ${round1(base[r - 1])}, MTL ${
            round1(mtl[r - 1])
          } img/s`,
      );
    }
    const peer = (runs: TorchPeerResult[]): TorchPeerResult => ({
      ...runs[0],
      train_img_s: median(runs.map((t) => t.train_img_s)),
    });
    const torch = peer(got.torch);
    const torchMtl = peer(got.torchMtl);
    yield line(`${key}-baseline`, "train_img_s", median(base), torch);
    yield line(`${key}-mtl-1:1`, "train_img_s", median(mtl), torch);
    yield line(`${key}-mtl-1:1`, "train_all_img_s", 2 * median(mtl), torch);
    yield line(`${key}-mtl-1:1-vs-mtl-peer`, "train_img_s", median(mtl), torchMtl);
  }
}

function line(c: string, metric: string, value: number, torch: TorchPeerResult): BenchLine {
  return {
    bench: "trainer",
    case: c,
    metric,
    value: round1(value),
    peer: torch.peer,
    peer_value: torch.train_img_s,
  };
}
