/**
 * One replica of the data-parallel training measurement ({@linkcode measureDataParallel} in
 * data_parallel.ts): its own tfjs wasm backend and VGG copy (same seed, so identical weights),
 * its share of the batch; gradients are averaged with the other replicas through a
 * SharedArrayBuffer (Atomics barrier), then every replica applies the same SGD update.
 *
 * @example
 * ```ts
 * // started by data_parallel.ts: new Worker(new URL("./dp_worker.ts", import.meta.url), { type: "module" })
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.ts";
import { createVgg, trainableParams } from "../../models/vgg.ts";
import { Sgd } from "../../train/optim.ts";
import { vggLossAndGrads } from "./train_step.ts";

/** The message that starts a replica. */
export interface DpJob {
  rank: number;
  replicas: number;
  width: number;
  batch: number;
  size: number;
  classes: number;
  steps: number;
  /** [barrier counter, barrier generation] as Int32 + per replica a gradient slot (float32). */
  sab: SharedArrayBuffer;
  gradFloats: number;
}

function barrier(ctl: Int32Array, replicas: number): void {
  const gen = Atomics.load(ctl, 1);
  if (Atomics.add(ctl, 0, 1) === replicas - 1) {
    Atomics.store(ctl, 0, 0);
    Atomics.add(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  } else {
    while (Atomics.load(ctl, 1) === gen) Atomics.wait(ctl, 1, gen);
  }
}

/** The worker global (typed here: this file is checked with the window lib). */
const ctx = self as unknown as {
  onmessage: ((e: MessageEvent<DpJob>) => void) | null;
  postMessage(message: unknown): void;
};

ctx.onmessage = async (e: MessageEvent<DpJob>) => {
  const job = e.data;
  await initBackend("wasm");
  const model = createVgg({ width: job.width, inChannels: 1, classes: job.classes, seed: 0 });
  const params = trainableParams(model);
  const names = [...params.keys()];
  const opt = new Sgd({ lr: 0.01, momentum: 0.75, weightDecay: 5e-4 });
  const x = tf.randomNormal([job.batch, job.size, job.size, 1], 0, 1, "float32", 1 + job.rank);
  const y = tf.tensor1d(
    Array.from({ length: job.batch }, (_, i) => (i * 7 + job.rank) % job.classes),
    "int32",
  );
  const ctl = new Int32Array(job.sab, 0, 2);
  const slots = Array.from(
    { length: job.replicas },
    (_, r) => new Float32Array(job.sab, 16 + r * job.gradFloats * 4, job.gradFloats),
  );
  const mine = slots[job.rank];
  const step = (seed: number) => {
    const { loss, grads } = vggLossAndGrads(model, x, y, { dropoutSeed: seed * 16 + job.rank });
    let off = 0;
    for (const n of names) {
      const d = grads[n].dataSync() as Float32Array;
      mine.set(d, off);
      off += d.length;
    }
    tf.dispose([loss, ...Object.values(grads)]);
    barrier(ctl, job.replicas);
    const avg: tf.NamedTensorMap = {};
    off = 0;
    for (const n of names) {
      const v = params.get(n)!;
      const len = v.size;
      const buf = new Float32Array(len);
      for (const s of slots) {
        const part = s.subarray(off, off + len);
        for (let i = 0; i < len; i++) buf[i] += part[i];
      }
      for (let i = 0; i < len; i++) buf[i] /= job.replicas;
      avg[n] = tf.tensor(buf, v.shape);
      off += len;
    }
    barrier(ctl, job.replicas); // everyone has read the slots before they are overwritten
    opt.step(params, avg);
    tf.dispose(Object.values(avg));
  };
  step(0); // warm-up
  barrier(ctl, job.replicas);
  const t0 = performance.now();
  for (let s = 1; s <= job.steps; s++) step(s);
  const ms = performance.now() - t0;
  ctx.postMessage({ rank: job.rank, ms });
};
