/**
 * reconstructor over real gRPC on loopback, at smoke scale (a width-1/8 MTL checkpoint in a real
 * file store, 32x32 images, tens of steps): Reconstruct's progress stream and stored result, the
 * cached answer to the same request, SpectralControl, every bad-input path (INVALID_ARGUMENT naming
 * the field, NOT_FOUND), and a cancelled stream whose optimisation stops (the server's step counter
 * stops growing and the next request is served).
 */
import { assert, assertClose, assertEquals, assertRejectsCode } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { createMtl, disposeMtl } from "../core/models/mtl.ts";
import { saveMtlCheckpoint } from "../core/train/classifier_checkpoint.ts";
import { rngFor } from "../core/random.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import { decodeTensor, encodeTensor, resolveTensorRef } from "../platform/tensor/tensor.ts";
import { testConfig } from "./fixtures/test_service.ts";
import {
  RECONSTRUCTOR_PROTO,
  RECONSTRUCTOR_SERVICE,
  reconstructorHandlers,
  type ReconstructorStats,
} from "../services/reconstructor/service.ts";
import { maxStepsFrom } from "../services/reconstructor/main.ts";

await initBackend("wasm");

interface Ctx {
  client: RpcClient;
  store: FileStore;
  stats: ReconstructorStats;
  modelUri: string;
}

async function withService(maxSteps: number, fn: (c: Ctx) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-reconstructor-" });
  const store = new FileStore(`file://${dir}`);
  const stats: ReconstructorStats = { steps: 0, running: 0, cancelled: 0 };
  const server = new RpcServer({
    name: "reconstructor",
    protoFiles: [RECONSTRUCTOR_PROTO],
    services: {
      [RECONSTRUCTOR_SERVICE]: reconstructorHandlers({ store, maxSteps, stats, threads: 1 }),
    },
    config: testConfig(),
  });
  await server.start();
  server.setServing(true);
  const client = new RpcClient({
    protoFiles: [RECONSTRUCTOR_PROTO],
    service: RECONSTRUCTOR_SERVICE,
    target: server.address,
  });
  const net = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 0, seed: 1 });
  await store.put("models/mtl.safetensors", saveMtlCheckpoint(net));
  disposeMtl(net);
  try {
    await fn({ client, store, stats, modelUri: store.uri("models/mtl.safetensors") });
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function images(n: number, size: number) {
  const data = new Float32Array(n * size * size);
  rngFor(3, "reconstructor-test").fillNormal(data);
  return { dtype: "float32" as const, shape: [n, size, size, 1], data };
}

// deno-lint-ignore no-explicit-any
type Ev = { progress?: any; result?: any };

async function collect(client: RpcClient, req: unknown): Promise<Ev[]> {
  const out: Ev[] = [];
  for await (const ev of client.stream<Ev>("Reconstruct", req)) out.push(ev);
  return out;
}

Deno.test("reconstructor: Reconstruct streams progress, stores the result, answers again from the store", async () => {
  await withService(1000, async ({ client, store, modelUri }) => {
    const req = {
      model_uri: modelUri,
      images: { inline: encodeTensor(images(2, 32)) },
      budgets: [5, 15],
      steps: 20,
      loss_every: 5,
      optimizer: "adam",
      lr: 0.05,
      seed: 7,
    };
    const events = await collect(client, req);
    const progress = events.filter((e) => e.progress).map((e) => e.progress);
    assertEquals(progress.map((p) => Number(p.done)), [5, 10, 15, 20]);
    assert(progress.every((p) => p.stage === "reconstruct" && Number(p.total) === 20));
    assert(progress.every((p) => Number.isFinite(p.metrics.mean_loss)));
    const result = events.at(-1)!.result;
    assertEquals(result.state, "JOB_STATE_STARTED");
    assertEquals([result.layer, result.budgets, result.steps], ["conv3_1", [5, 15], 20]);
    assertEquals(result.curve_steps, [5, 10, 15, 20]);
    assertEquals(decodeTensor(result.curve_losses).shape, [4, 2, 2]);
    const norms = decodeTensor(result.norms).data as Float32Array;
    const recon = await resolveTensorRef(result.reconstructions, store, { field: "r" });
    assertEquals(recon.shape, [2, 2, 32, 32, 1]);
    const data = recon.data as Float32Array;
    for (let row = 0; row < 4; row++) {
      const r = [5, 15][row % 2];
      const n = Math.hypot(...data.subarray(row * 1024, (row + 1) * 1024));
      assert(n <= r * (1 + 1e-6), `row ${row}: ${n} > ${r}`);
      assertClose(n, norms[row], 1e-3 * r);
    }
    const again = await collect(client, req);
    assertEquals(again.length, 1);
    assertEquals(again[0].result.state, "JOB_STATE_CACHED");
    assertEquals(again[0].result.key, result.key);
    assertEquals(again[0].result.reconstructions.sha256, result.reconstructions.sha256);
    // the same checkpoint named by a classifier-trainer model_id: the same content, the same result
    const id = "0123456789abcdef0123456789abcdef";
    await store.put(
      `jobs/classifier-train/${id}/model.safetensors`,
      await store.get("models/mtl.safetensors"),
    );
    const byId = await collect(client, { ...req, model_uri: id });
    assertEquals([byId.length, byId[0].result.key], [1, result.key]);
  });
});

Deno.test("reconstructor: SpectralControl keeps each reconstruction's norm", async () => {
  await withService(1000, async ({ client }) => {
    const o = images(2, 16);
    const r = { dtype: "float32" as const, shape: [2, 3, 16, 16, 1], data: new Float32Array(1536) };
    rngFor(4, "recon").fillNormal(r.data);
    const res = await client.unary<{ controls: { inline: never } }>("SpectralControl", {
      originals: { inline: encodeTensor(o) },
      reconstructions: { inline: encodeTensor(r) },
    });
    const c = decodeTensor(res.controls.inline);
    assertEquals(c.shape, [2, 3, 16, 16, 1]);
    const cd = c.data as Float32Array;
    for (let k = 0; k < 6; k++) {
      const a = Math.hypot(...cd.subarray(k * 256, (k + 1) * 256));
      const b = Math.hypot(...r.data.subarray(k * 256, (k + 1) * 256));
      assertClose(a, b, 1e-4 * b);
    }
    // the originals' shape works too
    const same = await client.unary<{ controls: { inline: never } }>("SpectralControl", {
      originals: { inline: encodeTensor(o) },
      reconstructions: { inline: encodeTensor(o) },
    });
    (decodeTensor(same.controls.inline).data as Float32Array).forEach((v, i) =>
      assertClose(v, o.data[i], 1e-4)
    );
    const bad = await assertRejectsCode(
      client.unary("SpectralControl", {
        originals: { inline: encodeTensor(images(1, 12)) },
        reconstructions: { inline: encodeTensor(images(1, 12)) },
      }),
      "INVALID_ARGUMENT",
    );
    assert(bad.message.includes("power-of-two"), bad.message);
    await assertRejectsCode(
      client.unary("SpectralControl", {
        originals: { inline: encodeTensor(o) },
        reconstructions: { inline: encodeTensor(images(3, 16)) },
      }),
      "INVALID_ARGUMENT",
    );
  });
});

Deno.test("reconstructor: bad input gets INVALID_ARGUMENT naming the field, NOT_FOUND for a missing model", async () => {
  await withService(50, async ({ client, modelUri }) => {
    const base = {
      model_uri: modelUri,
      images: { inline: encodeTensor(images(1, 32)) },
      steps: 5,
    };
    const cases: [Record<string, unknown>, string][] = [
      [{ budgets: [5, 0] }, "budgets[1]"],
      [{ budgets: [-3] }, "budgets[0]"],
      [{ layer: "conv7_1" }, "layer"],
      [{ steps: 51 }, "steps"],
      [{ steps: undefined }, "steps"], // the default 8000 is above this server's cap of 50
      [{ optimizer: "lbfgs" }, "optimizer"],
      [{ constraint: "clip" }, "constraint"],
      [{ reduction: "max" }, "reduction"],
      [{ images: { inline: encodeTensor(images(1, 2)) } }, "images"],
      [{
        images: {
          inline: encodeTensor({ dtype: "float32", shape: [2, 8], data: new Float32Array(16) }),
        },
      }, "images"],
      [{ model_uri: "" }, "model_uri"],
    ];
    for (const [change, field] of cases) {
      const err = await assertRejectsCode(
        collect(client, { ...base, ...change }),
        "INVALID_ARGUMENT",
      );
      assert(err.message.includes(`: ${field}`), `${JSON.stringify(change)}: ${err.message}`);
    }
    const layer = await assertRejectsCode(
      collect(client, { ...base, layer: "conv7_1" }),
      "INVALID_ARGUMENT",
    );
    assert(layer.message.includes("conv1_1, conv1_2, pool1"), layer.message);
    const cap = await assertRejectsCode(
      collect(client, { ...base, steps: 51 }),
      "INVALID_ARGUMENT",
    );
    assert(cap.message.includes("COTRAIN_MAX_RECONSTRUCT_STEPS"), cap.message);
    await assertRejectsCode(
      collect(client, {
        ...base,
        model_uri: modelUri.replace("mtl.safetensors", "none.safetensors"),
      }),
      "NOT_FOUND",
    );
    // still serving
    const ok = await collect(client, { ...base, budgets: [5] });
    assertEquals(ok.at(-1)!.result.state, "JOB_STATE_STARTED");
  });
});

Deno.test("reconstructor: a cancelled Reconstruct stops its optimisation and the server serves the next", async () => {
  await withService(1_000_000, async ({ client, stats, modelUri }) => {
    let seen = 0;
    for await (
      const ev of client.stream<Ev>("Reconstruct", {
        model_uri: modelUri,
        images: { inline: encodeTensor(images(1, 32)) },
        budgets: [5],
        steps: 1_000_000,
        loss_every: 1,
      })
    ) {
      if (ev.progress) seen++;
      if (seen === 3) break; // cancels the call
    }
    assertEquals(seen, 3);
    // the handler notices the cancellation before its next step; wait until it has ended
    while (stats.running > 0) await new Promise((r) => setTimeout(r, 20));
    assertEquals(stats.cancelled, 1);
    const stoppedAt = stats.steps;
    assert(stoppedAt >= 3 && stoppedAt < 1_000_000, `${stoppedAt}`);
    // the next request runs exactly its own steps: the cancelled one does no more
    const next = await collect(client, {
      model_uri: modelUri,
      images: { inline: encodeTensor(images(1, 32)) },
      budgets: [5],
      steps: 4,
    });
    assertEquals(next.at(-1)!.result.steps, 4);
    assertEquals(stats.steps, stoppedAt + 4);
  });
});

Deno.test("reconstructor: COTRAIN_MAX_RECONSTRUCT_STEPS is validated", () => {
  assertEquals(maxStepsFrom({}), 20000);
  assertEquals(maxStepsFrom({ COTRAIN_MAX_RECONSTRUCT_STEPS: "9000" }), 9000);
  for (const bad of ["0", "-5", "many", "1.5"]) {
    let code = "";
    try {
      maxStepsFrom({ COTRAIN_MAX_RECONSTRUCT_STEPS: bad });
    } catch (e) {
      code = (e as { code: string }).code;
      assert((e as Error).message.includes("COTRAIN_MAX_RECONSTRUCT_STEPS"));
    }
    assertEquals(code, "INVALID_ARGUMENT", bad);
  }
});
