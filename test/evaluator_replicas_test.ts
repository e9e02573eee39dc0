/**
 * Horizontal scale with real processes: two evaluator replicas (`services/evaluator/main.ts`) on
 * one file store run a small sweep through clients/ts/lib/shards.ts; one replica is killed with
 * SIGKILL in the middle. Every shard still finishes (the killed replica's shards are retried on the
 * other), and the per-image results and the scores equal those of a one-replica run on a separate
 * store (reached through a `dns:///` target, the balanced single-channel path).
 */
import { assert, assertEquals } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import { storeTinyClassifier } from "./fixtures/evaluator.ts";
import {
  type EvaluateShardRequest,
  type EvaluateShardResponse,
  EVALUATOR_PROTO,
  EVALUATOR_SERVICE,
  runShards,
} from "../clients/ts/lib/shards.ts";
import { startService } from "../clients/ts/lib/cluster.ts";

await initBackend("wasm");

const DATASET =
  "builtin:image-set?classes=3&train_per_class=16&val_per_class=2&test_per_class=16&size=32&seed=4";

interface Replica {
  address: string;
  pid: number;
  child: Deno.ChildProcess;
  stop(signal?: Deno.Signal): Promise<void>;
}

/** One evaluator process on `storeUrl` (clients/ts/lib/cluster.ts), its log under `logDir`. */
async function startReplica(storeUrl: string, logDir: string): Promise<Replica> {
  const p = await startService("evaluator", {
    store: storeUrl,
    logFile: await Deno.makeTempFile({ dir: logDir, suffix: ".log" }),
    env: { COTRAIN_EVAL_THREADS: "1", COTRAIN_SHUTDOWN_GRACE_MS: "1000" },
    readyTimeoutMs: 30_000,
  });
  return {
    address: p.address,
    pid: p.pid,
    child: p.child,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        p.child.kill(signal);
      } catch { /* already gone */ }
      await p.exited;
    },
  };
}

function sweep(modelId: string): EvaluateShardRequest[] {
  const shards: EvaluateShardRequest[] = [
    { model_id: modelId, dataset_uri: DATASET, corruption: "clean", severity: 0 },
  ];
  for (const corruption of ["gaussian_noise", "motion_blur", "zoom_blur", "fog", "pixelate"]) {
    for (const severity of [2, 5]) {
      for (const seed of [0, 1]) {
        shards.push({ model_id: modelId, dataset_uri: DATASET, corruption, severity, seed });
      }
    }
  }
  return shards;
}

async function score(address: string, keys: string[]) {
  const c = new RpcClient({
    protoFiles: [EVALUATOR_PROTO],
    service: EVALUATOR_SERVICE,
    target: address,
  });
  try {
    return await c.unary("Score", {
      models: [{ name: "Baseline", shard_keys: keys }, { name: "Same", shard_keys: keys }],
      corruptions: ["gaussian_noise", "motion_blur", "zoom_blur", "fog", "pixelate"],
      bootstrap: 30,
      bootstrap_seed: 2,
    });
  } finally {
    c.close();
  }
}

async function correctness(store: FileStore, results: EvaluateShardResponse[]) {
  return await Promise.all(results.map((r) => store.get(store.keyOf(r.correct.uri))));
}

Deno.test("replicas: a sweep survives a SIGKILLed replica and equals a one-replica run", async () => {
  const dir1 = await Deno.makeTempDir({ prefix: "cotrain-replicas-" });
  const dir2 = await Deno.makeTempDir({ prefix: "cotrain-replicas-" });
  const logs = await Deno.makeTempDir({ prefix: "cotrain-replicas-logs-" });
  const store1 = new FileStore(`file://${dir1}`);
  const store2 = new FileStore(`file://${dir2}`);
  const started: Replica[] = [];
  try {
    const model = await storeTinyClassifier(store1, { datasetUri: DATASET, seed: 1, epochs: 2 });
    const again = await storeTinyClassifier(store2, { datasetUri: DATASET, seed: 1, epochs: 2 });
    assertEquals(again.modelId, model.modelId); // seeded training: the same checkpoint bytes
    const shards = sweep(model.modelId);

    const [a, b] = await Promise.all([
      startReplica(store1.url, logs),
      startReplica(store1.url, logs),
    ]);
    started.push(a, b);
    const retried: { index: number; target: string; code: unknown }[] = [];
    let killed = false;
    let bServed = 0;
    const progress: number[] = [];
    const results = await runShards([a.address, b.address], shards, {
      concurrency: 2,
      onProgress: (done, _total, r) => {
        progress.push(done);
        if (r.served_by === `${Deno.hostname()}:${b.pid}`) bServed++;
        // mid-sweep, once b has answered at least one shard: b has shards in flight and the queue
        // is not empty (which replica answers first is up to the scheduler)
        if (done >= 4 && bServed > 0 && !killed && done < shards.length - 4) {
          killed = true;
          b.child.kill("SIGKILL");
        }
      },
      onRetry: (index, target, error) =>
        retried.push({ index, target, code: (error as { code?: unknown }).code }),
    });
    await b.child.status;
    assert(killed, "the replica was not killed");
    assertEquals(progress, shards.map((_, i) => i + 1));
    assertEquals(results.length, shards.length);
    assert(retried.length >= 1, "no shard was retried after the kill");
    console.log("retried after the kill:", JSON.stringify(retried));
    assert(retried.every((r) => r.target === b.address), JSON.stringify(retried));
    const names = new Set(results.map((r) => r.served_by));
    assert(names.has(`${Deno.hostname()}:${a.pid}`) && names.has(`${Deno.hostname()}:${b.pid}`));
    for (const [i, r] of results.entries()) {
      assertEquals([r.corruption, r.severity], [shards[i].corruption, shards[i].severity]);
      assertEquals(r.n, 48);
    }

    // one replica, a fresh store, reached through a dns:/// name
    const c = await startReplica(store2.url, logs);
    started.push(c);
    const port = c.address.split(":").pop();
    const single = await runShards(`dns:///localhost:${port}`, shards, { concurrency: 2 });
    assert(single.every((r) => r.state === "JOB_STATE_STARTED"));
    assertEquals(single.map((r) => r.key), results.map((r) => r.key));
    assertEquals(single.map((r) => r.n_correct), results.map((r) => r.n_correct));
    assertEquals(await correctness(store2, single), await correctness(store1, results));
    const keys = results.map((r) => r.key);
    assertEquals(await score(c.address, keys), await score(a.address, keys));

    // the sweep again on the survivor: every shard comes from the store
    const cached = await runShards([a.address], shards);
    assert(cached.every((r) => r.state === "JOB_STATE_CACHED"));
  } finally {
    for (const r of started) await r.stop("SIGKILL");
    await store1.close();
    await store2.close();
    await Deno.remove(dir1, { recursive: true });
    await Deno.remove(dir2, { recursive: true });
    await Deno.remove(logs, { recursive: true });
  }
});
