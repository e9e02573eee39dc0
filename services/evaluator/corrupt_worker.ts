/**
 * A Web Worker of the evaluator's corruption pool (./corrupt_pool.ts): corrupts a uint8 [B, H, W]
 * batch with core/corruptions and normalises it with TIN's statistics
 * ({@linkcode corruptAndNormalize}, the same call as on the main thread, so the same values), so
 * the evaluator's main thread only classifies: onnxruntime-node's `run` is synchronous on the
 * thread that calls it, and corrupting here lets one replica corrupt one shard while it classifies
 * another.
 *
 * Messages in: a {@linkcode CorruptJob}; out: a {@linkcode CorruptReply} (the float32 images
 * transferred, or the error's code and message).
 *
 * @example
 * ```ts ignore
 * // started by corrupt_pool.ts
 * new Worker(new URL("./corrupt_worker.ts", import.meta.url), { type: "module" });
 * ```
 * @module
 */
import { corruptAndNormalize, type CorruptJob, type CorruptReply } from "./corrupt_pool.ts";

const ctx = self as unknown as {
  onmessage: ((e: MessageEvent<CorruptJob>) => void) | null;
  postMessage(message: CorruptReply, transfer?: Transferable[]): void;
};

ctx.onmessage = (e: MessageEvent<CorruptJob>) => {
  const job = e.data;
  try {
    const x = corruptAndNormalize(job);
    ctx.postMessage({ id: job.id, ok: true, x }, [x.buffer as ArrayBuffer]);
  } catch (err) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    ctx.postMessage({
      id: job.id,
      ok: false,
      code: typeof code === "string" ? code : undefined,
      message: String(message ?? err),
    });
  }
};
