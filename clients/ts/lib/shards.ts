/**
 * The shard dispatcher: spreads a sweep's EvaluateShard requests over k evaluator replicas.
 *
 * Targets are either a list of `host:port` (one channel per replica: each gets at most
 * `concurrency` shards at a time, default 3 or COTRAIN_SHARDS_INFLIGHT, and a replica that fails
 * is paused and its shard handed to another), or one gRPC target such as `dns:///evaluator.cotrain.svc:50054` (or
 * `ipv4:10.0.0.1:50054,10.0.0.2:50054`) whose addresses one channel balances round_robin (as on
 * Kubernetes; `concurrency x replicas` shards in flight, and a failed shard is re-sent on the same
 * channel, which routes it to a live replica).
 *
 * A shard whose replica died (UNAVAILABLE, a dropped connection) is retried; shards are idempotent
 * and content-keyed in the shared store, so a retry elsewhere gives the same result, and a shard
 * another replica already finished comes back from the store at once. Any other error (bad input,
 * NOT_FOUND) ends the run with that error.
 *
 * @example
 * ```ts ignore
 * import { runShards } from "./shards.ts";
 * const results = await runShards(["127.0.0.1:50054", "127.0.0.1:50064"], shards, {
 *   concurrency: 2,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * });
 * ```
 * @module
 */
import { CotrainError } from "../../../platform/errors.ts";
import { RpcClient } from "../../../platform/rpc/client.ts";
import {
  type EvaluateShardRequest,
  type EvaluateShardResponse,
  EVALUATOR_PROTO,
  EVALUATOR_SERVICE,
  type RunShards,
  type RunShardsOptions,
} from "./shards_types.ts";

export * from "./shards_types.ts";

/** Whether a failed shard call may succeed when sent again (its replica went away). */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (code === "UNAVAILABLE" || code === 14 || code === "ABORTED" || code === 10) return true;
  const msg = String((err as { message?: unknown }).message ?? "");
  return (code === "INTERNAL" || code === 13 || code === "UNKNOWN" || code === 2) &&
    /RST_STREAM|connection|Connection|socket|ECONNRESET|GOAWAY/.test(msg);
}

/** Shards in flight per replica when `concurrency` is not given. */
export const DEFAULT_INFLIGHT = 3;

/**
 * Shards in flight per replica by default: COTRAIN_SHARDS_INFLIGHT when set (a whole number >= 1,
 * else INVALID_ARGUMENT naming it), else {@linkcode DEFAULT_INFLIGHT}. More than one keeps a
 * replica busy: while one shard's images are classified (the evaluator's main thread), the next
 * one's are corrupted (its worker), and a third's store writes (two fsynced puts after its
 * inference) and gRPC round trip overlap both. Measured on 2 cores (BENCHMARKS.md "Sweep"), 3 in
 * flight beat 2 by 8-20% for one replica; 1 leaves corruption and inference in turn.
 */
export function defaultInflight(
  env: (name: string) => string | undefined = (name) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env: the default
    }
  },
): number {
  const v = env("COTRAIN_SHARDS_INFLIGHT")?.trim();
  if (!v) return DEFAULT_INFLIGHT;
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw CotrainError.invalidArgument(
      `COTRAIN_SHARDS_INFLIGHT: ${
        JSON.stringify(v)
      }; a whole number >= 1 (shards in flight per replica)`,
    );
  }
  return n;
}

interface Replica {
  client: RpcClient;
  target: string;
  slots: number;
  /** Pause a failed replica (list mode) or just back off (one balanced channel). */
  pauses: boolean;
  downUntil: number;
  failures: number;
  probe: Promise<boolean> | null;
}

/** A gRPC target one channel balances by itself: `dns:///name:port`, `ipv4:a:p,b:q`, ... */
const BALANCED = /^(dns|ipv4|ipv6|unix):/;

function splitTargets(targets: string[] | string): string[] {
  if (typeof targets === "string" && BALANCED.test(targets.trim())) return [targets.trim()];
  const list = (Array.isArray(targets) ? targets : targets.split(","))
    .map((t) => t.trim()).filter((t) => t.length > 0);
  if (list.length === 0) throw CotrainError.invalidArgument("targets: no evaluator address given");
  return list;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/**
 * Runs every shard on the replicas and resolves with the results in the order of `shards`.
 * See {@linkcode RunShards}.
 */
export const runShards: RunShards = async (
  targets: string[] | string,
  shards: EvaluateShardRequest[],
  opts: RunShardsOptions = {},
): Promise<EvaluateShardResponse[]> => {
  const list = splitTargets(targets);
  const concurrency = opts.concurrency ?? defaultInflight();
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw CotrainError.invalidArgument(`concurrency: ${concurrency}; a whole number >= 1`);
  }
  const balanced = list.length === 1 && BALANCED.test(list[0]);
  const replicas: Replica[] = list.map((target) => ({
    client: new RpcClient({
      protoFiles: [EVALUATOR_PROTO],
      service: EVALUATOR_SERVICE,
      // an ipv4:/ipv6: list goes as its addresses (RpcClient builds the same target from them)
      target: /^ipv[46]:/.test(target) ? target.replace(/^ipv[46]:/, "").split(",") : target,
      deadlineMs: opts.deadlineMs ?? 0,
      retries: 0,
    }),
    target,
    slots: balanced ? concurrency * (opts.replicas ?? 2) : concurrency,
    pauses: !balanced,
    downUntil: 0,
    failures: 0,
    probe: null,
  }));
  const maxAttempts = 1 + (opts.retries ?? 3 * Math.max(list.length, opts.replicas ?? 1));
  const total = shards.length;
  const results: (EvaluateShardResponse | undefined)[] = new Array(total);
  const attempts = new Int32Array(total);
  const queue: number[] = shards.map((_, i) => i);
  let done = 0;
  let failure: unknown = null;
  const stop = new AbortController();
  const onAbort = () => {
    failure ??= opts.signal?.reason ?? CotrainError.unavailable("runShards: aborted");
    stop.abort();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  // workers wait here when the queue is empty but shards are still in flight (they may come back)
  let waiters: (() => void)[] = [];
  const wakeAll = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const wait = () => new Promise<void>((r) => waiters.push(r));

  let lastAlive = Date.now();
  const giveUpMs = opts.unavailableMs ?? 60_000;

  /**
   * After a failure, one worker of the replica waits for its channel to connect again (no shard
   * is spent on a replica that is still down); the others wait for that probe.
   */
  function probe(r: Replica): Promise<boolean> {
    r.probe ??= (async () => {
      const now = Date.now();
      if (r.downUntil > now) await sleep(r.downUntil - now, stop.signal);
      try {
        await r.client.waitForReady(2000);
        lastAlive = Date.now();
        return true;
      } catch {
        r.failures++;
        r.downUntil = Date.now() + Math.min(5000, 100 * 2 ** (r.failures - 1));
        if (replicas.every((x) => x.failures > 0) && Date.now() - lastAlive > giveUpMs) {
          failure ??= CotrainError.unavailable(
            `no evaluator replica reachable for ${giveUpMs} ms (${list.join(", ")})`,
          );
          stop.abort();
          wakeAll();
        }
        return false;
      } finally {
        r.probe = null;
      }
    })();
    return r.probe;
  }

  async function worker(r: Replica): Promise<void> {
    while (!failure && done < total) {
      if (r.failures > 0 && r.pauses && !(await probe(r))) continue;
      const i = queue.shift();
      if (i === undefined) {
        await wait();
        continue;
      }
      attempts[i]++;
      try {
        const res = await r.client.unary<EvaluateShardResponse>("EvaluateShard", shards[i], {
          signal: stop.signal,
        });
        results[i] = res;
        r.failures = 0;
        lastAlive = Date.now();
        done++;
        opts.onProgress?.(done, total, res);
        if (done === total) wakeAll();
      } catch (err) {
        if (failure) return;
        if (!isRetryable(err) || attempts[i] >= maxAttempts) {
          failure = attempts[i] >= maxAttempts && isRetryable(err)
            ? CotrainError.unavailable(
              `shard ${i} (${shards[i].corruption} ${shards[i].severity}) failed ${
                attempts[i]
              } times; last: ${(err as Error).message}`,
              { cause: err },
            )
            : err;
          stop.abort();
          wakeAll();
          return;
        }
        // the replica went away: hand the shard to whoever is free, pause (or back off) here
        queue.unshift(i);
        opts.onRetry?.(i, r.target, err as Error);
        r.failures++;
        r.downUntil = Date.now() + Math.min(5000, 100 * 2 ** (r.failures - 1));
        wakeAll();
        if (!r.pauses) await sleep(r.downUntil - Date.now(), stop.signal);
      }
    }
  }

  try {
    const workers: Promise<void>[] = [];
    for (const r of replicas) for (let s = 0; s < r.slots; s++) workers.push(worker(r));
    await Promise.all(workers);
    if (failure) throw failure;
    return results as EvaluateShardResponse[];
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    stop.abort();
    for (const r of replicas) r.client.close();
  }
};
