/**
 * The Python client (clients/python) against a real corruption-generator over gRPC: stubs
 * generated from protos/, a health check, a Corrupt call whose bytes equal the TypeScript
 * library's, and an error that reaches Python as INVALID_ARGUMENT. Needs a Python with numpy,
 * grpcio and grpcio-tools (`pip install -r clients/python/requirements.txt`; .ci/run does it):
 * the test fails, never skips, without them.
 */
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { assert, assertEquals } from "./assert.ts";
import { testConfig } from "./fixtures/test_service.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { FileStore } from "../platform/store/mod.ts";
import { corruptBatch } from "../core/corruptions/mod.ts";
import {
  CORRUPTION_PROTO,
  CORRUPTION_SERVICE,
  corruptionHandlers,
} from "../services/corruption-generator/service.ts";

const EXAMPLE = fileURLToPath(new URL("../clients/python/examples/corrupt.py", import.meta.url));

async function pythonWithGrpc(): Promise<string> {
  const candidates = [Deno.env.get("COTRAIN_PYTHON"), "python3", "/usr/bin/python3"]
    .filter((p): p is string => !!p);
  for (const p of candidates) {
    try {
      const r = await new Deno.Command(p, {
        args: ["-c", "import grpc, grpc_tools, numpy"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (r.success) return p;
    } catch { /* not there */ }
  }
  throw new Error(
    `no Python with grpcio, grpcio-tools and numpy (tried ${candidates.join(", ")}): ` +
      "pip install -r clients/python/requirements.txt",
  );
}

Deno.test("python client: health, Corrupt equal to the library, errors as grpc status", async () => {
  const python = await pythonWithGrpc();
  const dir = await Deno.makeTempDir({ prefix: "cotrain-py-" });
  const store = new FileStore(`file://${dir}`);
  const server = new RpcServer({
    name: "corruption-generator",
    protoFiles: [CORRUPTION_PROTO],
    services: { [CORRUPTION_SERVICE]: corruptionHandlers({ store, inlineLimitBytes: 4 << 20 }) },
    config: testConfig(),
  });
  await server.start();
  server.setServing(true);
  try {
    const out = await new Deno.Command(python, { args: [EXAMPLE, server.address] }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `python example failed: ${stderr}`);
    const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    assertEquals(r.health, "SERVING");
    assertEquals([r.shape, r.dtype], [[4, 64, 64], "uint8"]);
    assert(r.changed > 0, "the images changed");
    assertEquals(r.error?.code, "INVALID_ARGUMENT");
    assert(String(r.error?.details).includes("rain"), r.error?.details);
    // the same bytes as the TypeScript library for the same seed (numpy's default_rng(0) images)
    const images = await new Deno.Command(python, {
      args: [
        "-c",
        "import numpy as np,sys; sys.stdout.buffer.write(np.random.default_rng(0).integers(0,256,size=(4,64,64),dtype=np.uint8).tobytes())",
      ],
    }).output();
    const lib = corruptBatch(
      { dtype: "uint8", shape: [4, 64, 64], data: images.stdout },
      { corruption: "gaussian_noise", severity: 3, seed: 7 },
    );
    const sha = createHash("sha256").update(lib.data as Uint8Array).digest("hex");
    assertEquals(r.sha256, sha);
  } finally {
    await server.shutdown();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
