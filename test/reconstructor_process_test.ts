/**
 * reconstructor and saliency-scorer as real processes (their main.ts): they report SERVING, the
 * reconstructor enforces COTRAIN_MAX_RECONSTRUCT_STEPS from its environment, a bad value stops it
 * with a message naming the variable, and SIGTERM ends both with status 0.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertRejectsCode } from "./assert.ts";
import { waitForServing } from "../platform/rpc/health.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { encodeTensor } from "../platform/tensor/tensor.ts";
import { RECONSTRUCTOR_PROTO, RECONSTRUCTOR_SERVICE } from "../services/reconstructor/service.ts";
import { SALIENCY_PROTO, SALIENCY_SERVICE } from "../services/saliency-scorer/service.ts";

const main = (name: string) =>
  fileURLToPath(new URL(`../services/${name}/main.ts`, import.meta.url));

/** Starts a service process; resolves with it and its address once it logs "listening". */
async function start(name: string, env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main(name)],
    env: { COTRAIN_PORT: "0", COTRAIN_LOG_LEVEL: "info", ...env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} ended before listening: ${buf}`);
    buf += value;
    for (const line of buf.split("\n").slice(0, -1)) {
      const rec = JSON.parse(line);
      if (rec.msg === "listening") {
        // keep draining the log so the child never blocks on a full pipe
        (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })();
        return { child, address: String(rec.address) };
      }
    }
  }
}

Deno.test("process: reconstructor and saliency-scorer serve, the step cap comes from the environment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-analysis-proc-" });
  const env = { COTRAIN_STORE: `file://${dir}`, COTRAIN_MAX_RECONSTRUCT_STEPS: "10" };
  const rec = await start("reconstructor", env);
  const sal = await start("saliency-scorer", env);
  try {
    await waitForServing(rec.address, "", 30_000);
    await waitForServing(sal.address, "", 30_000);
    const client = new RpcClient({
      protoFiles: [RECONSTRUCTOR_PROTO],
      service: RECONSTRUCTOR_SERVICE,
      target: rec.address,
    });
    try {
      const err = await assertRejectsCode(
        (async () => {
          for await (
            const _ of client.stream("Reconstruct", {
              model_uri: `file://${dir}/none.safetensors`,
              images: {
                inline: encodeTensor({
                  dtype: "float32",
                  shape: [1, 16, 16, 1],
                  data: new Float32Array(256),
                }),
              },
              steps: 11,
            })
          ) { /* no events expected */ }
        })(),
        "INVALID_ARGUMENT",
      );
      assert(err.message.includes("cap of 10"), err.message);
    } finally {
      client.close();
    }
    const s = new RpcClient({
      protoFiles: [SALIENCY_PROTO],
      service: SALIENCY_SERVICE,
      target: sal.address,
    });
    try {
      const d = new Float32Array(4096);
      d[5] = 1;
      const res = await s.unary<{ count: number[] }>("SalientMask", {
        densities: { inline: encodeTensor({ dtype: "float32", shape: [1, 64, 64], data: d }) },
      });
      assertEquals(res.count, [1]);
    } finally {
      s.close();
    }
  } finally {
    rec.child.kill("SIGTERM");
    sal.child.kill("SIGTERM");
    assertEquals((await rec.child.status).code, 0);
    assertEquals((await sal.child.status).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("process: a bad COTRAIN_MAX_RECONSTRUCT_STEPS stops the reconstructor with its name", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main("reconstructor")],
    env: { COTRAIN_PORT: "0", COTRAIN_MAX_RECONSTRUCT_STEPS: "lots" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(!out.success, "the process should have stopped");
  const text = new TextDecoder().decode(out.stderr);
  assert(text.includes("COTRAIN_MAX_RECONSTRUCT_STEPS"), text);
});
