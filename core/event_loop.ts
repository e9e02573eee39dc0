/**
 * A turn of the event loop for long computations that must stay responsive (a cancelled gRPC
 * stream, a health check) between their steps.
 *
 * `setImmediate` runs its callback after the loop has polled for I/O, so pending requests,
 * cancellations and due timers are handled, and then resumes at once; `setTimeout(r, 0)` did the
 * same but waited ~2 ms a turn (browsers' and Deno's clamp of nested timeouts), a training step's
 * worth of time every few dozen steps.
 *
 * @example
 * ```ts
 * import { yieldTurn } from "./event_loop.ts";
 * let fired = false;
 * setTimeout(() => (fired = true), 0);
 * while (!fired) await yieldTurn();
 * console.log(fired); // true
 * ```
 * @module
 */
import { setImmediate } from "node:timers";

/** Resolves after the event loop has had one turn (I/O, timers). */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
