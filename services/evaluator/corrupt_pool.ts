/**
 * The evaluator's in-process corruption, on Web Workers (./corrupt_worker.ts) or on the calling
 * thread. Each batch is corrupted with core/corruptions and normalised with TIN's statistics
 * ({@linkcode corruptAndNormalize}); a worker runs the very same function, so both give the same
 * float32 values. onnxruntime-node's `run` blocks the thread that calls it, so with a worker one
 * replica corrupts the next batch (of this shard or the next one in flight) while the main thread
 * classifies: one replica keeps two cores busy.
 *
 * A batch goes to the worker with the fewest batches waiting; a worker that dies fails its
 * batches (INTERNAL) and is started afresh for the next one.
 *
 * @example
 * ```ts ignore
 * import { CorruptPool } from "./corrupt_pool.ts";
 * const pool = new CorruptPool(1);
 * const x = await pool.run({
 *   shape: [2, 64, 64], data: new Uint8Array(2 * 64 * 64), corruption: "fog", severity: 3,
 *   seed: 0, preset: "imagecorruptions", indexOffset: 0,
 * });
 * pool.close();
 * ```
 * @module
 */
import { corruptBatch } from "../../core/corruptions/mod.ts";
import { normalizeTin } from "../../core/data/augment.ts";
import { CotrainError, STATUS_CODES, type StatusName } from "../../platform/errors.ts";

/** One batch to corrupt and normalise (`id` is the pool's). */
export interface CorruptJob {
  id: number;
  /** [B, H, W] */
  shape: [number, number, number];
  /** uint8 [B, H, W] images. */
  data: Uint8Array;
  /** A corruption name, or "clean" (normalise only). */
  corruption: string;
  severity: number;
  seed: number;
  preset: string;
  /** Data-set index of the batch's first image (the corruption's random streams key on it). */
  indexOffset: number;
}

/** A worker's answer: float32 [B, H, W, 1] images in normalised units, or the error. */
export type CorruptReply =
  | { id: number; ok: true; x: Float32Array }
  | { id: number; ok: false; code?: string; message: string };

/** Corrupts (unless "clean") and normalises one batch: float32 [B, H, W, 1] as a flat array. */
export function corruptAndNormalize(job: Omit<CorruptJob, "id">): Float32Array {
  const bytes = job.corruption === "clean" ? job.data : corruptBatch(
    { dtype: "uint8", shape: job.shape, data: job.data },
    {
      corruption: job.corruption,
      severity: job.severity,
      seed: job.seed,
      preset: job.preset,
      indexOffset: job.indexOffset,
    },
  ).data as Uint8Array;
  return normalizeTin({ dtype: "uint8", shape: job.shape, data: bytes }).data;
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve(x: Float32Array): void; reject(e: Error): void }>;
}

/** Corruption on `size` workers (0: on the calling thread). */
export class CorruptPool {
  readonly size: number;
  #slots: (Slot | null)[];
  #nextId = 1;
  #closed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 0) {
      throw CotrainError.invalidArgument(`corruption workers: ${size}; a whole number >= 0`);
    }
    this.size = size;
    this.#slots = new Array(size).fill(null);
  }

  /** Corrupts and normalises one batch. `data` is copied (the caller's array stays usable). */
  run(job: Omit<CorruptJob, "id">): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(CotrainError.unavailable("evaluator: shutting down"));
    if (this.size === 0) {
      try {
        return Promise.resolve(corruptAndNormalize(job));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    let best = 0;
    for (let i = 1; i < this.size; i++) {
      if ((this.#slots[i]?.pending.size ?? 0) < (this.#slots[best]?.pending.size ?? 0)) best = i;
    }
    const slot = this.#slots[best] ?? this.#start(best);
    const id = this.#nextId++;
    const data = job.data.slice(); // its buffer is handed over to the worker
    return new Promise<Float32Array>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id, data } satisfies CorruptJob, [data.buffer]);
    });
  }

  #start(i: number): Slot {
    const worker = new Worker(new URL("./corrupt_worker.ts", import.meta.url), { type: "module" });
    const slot: Slot = { worker, pending: new Map() };
    worker.onmessage = (e: MessageEvent<CorruptReply>) => {
      const r = e.data;
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (r.ok) p.resolve(r.x);
      else {
        const code = r.code && r.code in STATUS_CODES ? r.code as StatusName : "INTERNAL";
        p.reject(new CotrainError(code, r.message));
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      if (this.#slots[i] === slot) this.#slots[i] = null;
      worker.terminate();
      const err = CotrainError.internal(`corruption worker failed: ${e.message}`);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    this.#slots[i] = slot;
    return slot;
  }

  /** Stops the workers; batches still waiting fail with UNAVAILABLE. */
  close(): void {
    this.#closed = true;
    const err = CotrainError.unavailable("evaluator: shutting down");
    for (const [i, slot] of this.#slots.entries()) {
      if (!slot) continue;
      slot.worker.terminate();
      for (const p of slot.pending.values()) p.reject(err);
      this.#slots[i] = null;
    }
  }
}
