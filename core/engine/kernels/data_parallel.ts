/**
 * Data-parallel training across cores, measured: `replicas` Deno workers, each with its own tfjs
 * wasm backend (tfjs-backend-wasm's threaded build does not start in Deno: its pthread workers are
 * created from blob: URLs, which Deno's node:worker_threads rejects), each training on
 * batch/replicas images; gradients are averaged through a SharedArrayBuffer before the identical
 * SGD update on every replica. BN batch statistics are per replica (as PyTorch DDP without SyncBN).
 *
 * @example
 * ```ts
 * import { measureDataParallel } from "./data_parallel.ts";
 * const imgS = await measureDataParallel({ width: 0.125, batch: 32, replicas: 2, steps: 5 });
 * ```
 * @module
 */
import { createVgg, disposeModel, trainableParams } from "../../models/vgg.ts";
import type { DpJob } from "./dp_worker.ts";

/** What to measure. */
export interface DpOptions {
  width: number;
  batch: number;
  replicas: number;
  steps: number;
  size?: number;
  classes?: number;
}

/** Training img/s of the VGG with `replicas` data-parallel workers (total batch `batch`). */
export async function measureDataParallel(o: DpOptions): Promise<number> {
  const size = o.size ?? 64;
  const classes = o.classes ?? 200;
  const probe = createVgg({ width: o.width, inChannels: 1, classes, seed: 0 });
  const gradFloats = [...trainableParams(probe).values()].reduce((a, v) => a + v.size, 0);
  disposeModel(probe);
  const sab = new SharedArrayBuffer(16 + o.replicas * gradFloats * 4);
  const workers = Array.from(
    { length: o.replicas },
    () => new Worker(new URL("./dp_worker.ts", import.meta.url), { type: "module" }),
  );
  try {
    const results = await Promise.all(
      workers.map((w, rank) =>
        new Promise<{ ms: number }>((resolve, reject) => {
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => {
            e.preventDefault();
            reject(new Error(e.message));
          };
          const job: DpJob = {
            rank,
            replicas: o.replicas,
            width: o.width,
            batch: o.batch / o.replicas,
            size,
            classes,
            steps: o.steps,
            sab,
            gradFloats,
          };
          w.postMessage(job);
        })
      ),
    );
    const ms = Math.max(...results.map((r) => r.ms));
    return (o.steps * o.batch * 1000) / ms;
  } finally {
    for (const w of workers) w.terminate();
  }
}
