/**
 * The Monkey Predictor benchmark: `deno task bench predictor [--quick]`. Training img/s of one
 * step of core/train/predictor.ts (VGG-19-BN trunk to conv3_1 + Gaussian readout, sampled grid,
 * scaled Poisson loss + readout L1, Adam) on wasm, and Predict img/s on wasm (tfjs) and on the
 * ONNX export with onnxruntime, beside ../shared/bench/torch_readout_train.py (the same trunk and
 * readout in PyTorch) run in the same process tree. 64 px, batch 32, 458 neurons (the paper's),
 * 2 threads.
 * @module
 */
import { initBackend } from "../core/engine/backend.ts";
import { createOnnxSession } from "../core/engine/onnx/session.ts";
import {
  createPredictor,
  disposePredictor,
  exportPredictorOnnx,
  predict,
  PredictorTrainer,
} from "../core/train/predictor.ts";
import type { PredictorData } from "../core/train/predictor_data.ts";
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
const NEURONS = 458;

function torchPeer(width: number, steps: number): Promise<TorchPeerResult> {
  return runTorchPeer("torch_readout_train.py", { width, size: SIZE, batch: BATCH, steps }, [
    "--neurons",
    String(NEURONS),
  ]);
}

/** One session of NEURONS neurons, 2 batches of random images, Poisson-like targets. */
function syntheticData(): PredictorData {
  const n = 2 * BATCH;
  const inputs = new Float32Array(n * SIZE * SIZE);
  let s = 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < inputs.length; i++) inputs[i] = rnd() * 2 - 1;
  const targets = new Float32Array(n * NEURONS).map(() => Math.floor(rnd() * 5));
  const neurons = Array.from({ length: NEURONS }, (_, k) => k);
  const images = Array.from({ length: n }, (_, i) => i);
  const empty = { images: [], targets: new Float32Array(0), mask: new Float32Array(0) };
  return {
    inputs: { dtype: "float32", shape: [n, SIZE, SIZE, 1], data: inputs },
    responses: { dtype: "float32", shape: [1, n, NEURONS], data: targets },
    split: new Uint8Array(n),
    sessions: [{ id: 0, neurons }],
    bySession: [{
      train: { images, targets, mask: new Float32Array(n * NEURONS).fill(1) },
      validation: empty,
      test: empty,
    }],
  };
}

/** Runs the predictor benchmark. */
export async function* run(options: BenchOptions): AsyncIterable<BenchLine> {
  const progress = options.progress ?? ((m: string) => console.error(m));
  const widths = options.quick ? [0.125] : [0.125, 1];
  await initBackend("wasm");
  const data = syntheticData();
  const x = data.inputs.data.subarray(0, BATCH * SIZE * SIZE);
  for (const width of widths) {
    const key = `predictor-w${width}-${SIZE}px-b${BATCH}-n${NEURONS}`;
    const big = width >= 1;
    progress(`predictor ${key}: PyTorch peer`);
    const torch = await torchPeer(width, big ? 3 : options.quick ? 5 : 10);
    const seconds = options.quick ? 1 : big ? 0 : 3;
    const minSteps = big ? 2 : 3;
    const p = createPredictor({ width, seed: 0, inputSize: SIZE, sessions: data.sessions });
    const trainer = new PredictorTrainer(p, data, { batchSize: BATCH });
    const rows = Array.from({ length: BATCH }, (_, i) => i);
    let seed = 0;
    try {
      progress(`predictor ${key}: ${trainer.engine} training`);
      const train = await imgPerSec(
        async () => void await trainer.step({ session: 0, rows }, seed++),
        BATCH,
        minSteps,
        seconds,
      );
      const engine = trainer.engine === "tfjs" ? "wasm" : trainer.engine;
      yield line(`${key}-${engine}`, "train_img_s", train, torch.peer, torch.train_img_s);

      progress(`predictor ${key}: wasm Predict`);
      const infer = await imgPerSec(
        () => void predict(p, x, [BATCH, SIZE, SIZE, 1], BATCH),
        BATCH,
        minSteps,
        seconds,
      );
      yield line(`${key}-wasm`, "infer_img_s", infer, torch.peer, torch.infer_img_s);

      progress(`predictor ${key}: onnxruntime Predict`);
      const session = await createOnnxSession(exportPredictorOnnx(p), { threads: 2 });
      try {
        const ort = await imgPerSec(
          async () => void await session.run(x, [BATCH, SIZE, SIZE, 1]),
          BATCH,
          minSteps,
          seconds,
        );
        yield line(`${key}-onnxruntime`, "infer_img_s", ort, torch.peer, torch.infer_img_s);
      } finally {
        await session.release();
      }
    } finally {
      trainer.dispose();
      disposePredictor(p);
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
  return { bench: "predictor", case: c, metric, value: round1(value), peer, peer_value: peerValue };
}
