/**
 * The shard dispatcher (clients/ts/lib/shards.ts) against a real evaluator on loopback: results in
 * request order with progress, a dead address in the list is skipped, bad input ends the run with
 * the evaluator's status, nothing reachable ends it with UNAVAILABLE, and an abort stops it.
 */
import { assert, assertEquals, assertRejectsCode } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { FileStore } from "../platform/store/mod.ts";
import { testConfig } from "./fixtures/test_service.ts";
import { storeTinyClassifier } from "./fixtures/evaluator.ts";
import {
  createEvaluator,
  EVALUATOR_PROTO,
  EVALUATOR_SERVICE,
} from "../services/evaluator/service.ts";
import {
  DEFAULT_INFLIGHT,
  defaultInflight,
  type EvaluateShardRequest,
  isRetryable,
  runShards,
} from "../clients/ts/lib/shards.ts";

await initBackend("wasm");

const DATASET =
  "builtin:image-set?classes=3&train_per_class=8&val_per_class=2&test_per_class=4&size=32&seed=4";

/** A loopback port nothing listens on. */
function deadAddress(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `127.0.0.1:${port}`;
}

Deno.test("shards: order, progress, a dead address skipped, bad input and no replica fail clearly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-shards-" });
  const store = new FileStore(`file://${dir}`);
  const evaluator = createEvaluator({ store, threads: 1 });
  const server = new RpcServer({
    name: "evaluator",
    protoFiles: [EVALUATOR_PROTO],
    services: { [EVALUATOR_SERVICE]: evaluator.handlers },
    config: testConfig(),
  });
  await server.start();
  server.setServing(true);
  try {
    const { modelId } = await storeTinyClassifier(store, {
      datasetUri: DATASET,
      seed: 1,
      epochs: 1,
    });
    const shards: EvaluateShardRequest[] = ["clean", "fog", "contrast", "pixelate", "snow"].map((
      corruption,
    ) => ({
      model_id: modelId,
      dataset_uri: DATASET,
      corruption,
      severity: corruption === "clean" ? 0 : 3,
      seed: 2,
    }));
    const progress: [number, number][] = [];
    const dead = deadAddress();
    const results = await runShards([dead, server.address], shards, {
      concurrency: 2,
      onProgress: (d, t) => progress.push([d, t]),
    });
    assertEquals(results.map((r) => r.corruption), shards.map((s) => s.corruption));
    assertEquals(progress, [[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
    assertEquals(await runShards(server.address, []), []);

    // one balanced channel over two replicas (ipv4: list, round_robin): both get shards
    const evaluator2 = createEvaluator({ store, threads: 1, replica: "second" });
    const server2 = new RpcServer({
      name: "evaluator",
      protoFiles: [EVALUATOR_PROTO],
      services: { [EVALUATOR_SERVICE]: evaluator2.handlers },
      config: testConfig(),
    });
    await server2.start();
    server2.setServing(true);
    try {
      const fresh = shards.map((s) => ({ ...s, seed: 3 }));
      const both = await runShards(`ipv4:${server.address},${server2.address}`, fresh, {
        concurrency: 1,
        replicas: 2,
      });
      assertEquals(both.map((r) => r.corruption), shards.map((s) => s.corruption));
      assertEquals(new Set(both.map((r) => r.served_by)).size, 2);
    } finally {
      await server2.shutdown();
      await evaluator2.close();
    }

    const bad = await assertRejectsCode(
      runShards([server.address], [...shards, { ...shards[1], severity: 9 }]),
      "INVALID_ARGUMENT",
    );
    assert(bad.message.includes("severity"), bad.message);
    await assertRejectsCode(
      runShards([dead], shards, { unavailableMs: 300, retries: 2 }),
      "UNAVAILABLE",
    );
    await assertRejectsCode(runShards([], shards), "INVALID_ARGUMENT");
    await assertRejectsCode(
      runShards(server.address, shards, { concurrency: 0 }),
      "INVALID_ARGUMENT",
    );
    const ac = new AbortController();
    ac.abort(Object.assign(new Error("stopped by the user"), { code: "CANCELLED" }));
    await assertRejectsCode(runShards(server.address, shards, { signal: ac.signal }), "CANCELLED");

    assert(isRetryable({ code: "UNAVAILABLE" }));
    assert(isRetryable({ code: "INTERNAL", message: "Received RST_STREAM with code 2" }));
    assert(!isRetryable({ code: "INTERNAL", message: "internal error (id 1234)" }));
    assert(!isRetryable({ code: "NOT_FOUND" }));
  } finally {
    await server.shutdown();
    await evaluator.close();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shards: shards in flight per replica default to 3 or COTRAIN_SHARDS_INFLIGHT", () => {
  assertEquals(DEFAULT_INFLIGHT, 3);
  assertEquals(defaultInflight(() => undefined), 3);
  assertEquals(defaultInflight(() => " "), 3);
  assertEquals(defaultInflight(() => "2"), 2);
  for (const bad of ["0", "-1", "1.5", "two"]) {
    let err: { code?: string; message?: string } = {};
    try {
      defaultInflight(() => bad);
    } catch (e) {
      err = e as typeof err;
    }
    assertEquals(err.code, "INVALID_ARGUMENT", bad);
    assert(err.message?.includes("COTRAIN_SHARDS_INFLIGHT"), err.message);
  }
});
