/**
 * A service as a real process: it logs JSON, reports SERVING when ready, survives stray async
 * errors, and on SIGTERM drains running calls, goes NOT_SERVING and exits 0.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertRejectsCode } from "./assert.ts";
import { testClient } from "./fixtures/test_service.ts";
import { checkHealth, waitForServing } from "../platform/rpc/health.ts";

const MAIN = fileURLToPath(new URL("./fixtures/test_main.ts", import.meta.url));

async function readLogUntil(
  reader: ReadableStreamDefaultReader<string>,
  lines: Record<string, unknown>[],
  pred: (r: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`process ended before the expected log line; got ${JSON.stringify(lines)}`);
    }
    buf += value;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const rec = JSON.parse(line);
      lines.push(rec);
      if (pred(rec)) return rec;
    }
  }
}

Deno.test("process: SERVING when ready, survives stray errors, drains and exits 0 on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: { COTRAIN_PORT: "0", COTRAIN_LOG_LEVEL: "info", COTRAIN_SHUTDOWN_GRACE_MS: "5000" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const lines: Record<string, unknown>[] = [];
  try {
    const listening = await readLogUntil(reader, lines, (r) => r.msg === "listening");
    const address = String(listening.address);
    assertEquals(listening.service, "test-service");
    await waitForServing(address, "", 10_000);
    const c = testClient(address);
    try {
      // A stray rejection inside a handler is logged, and the process keeps serving.
      await assertRejectsCode(c.unary("Fail", { kind: "stray_rejection" }), "INTERNAL");
      await readLogUntil(reader, lines, (r) => r.msg === "unhandled rejection");
      assertEquals(await checkHealth(address), "SERVING");
      // SIGTERM while a call runs: the call completes, then the process exits 0.
      const running = c.unary<{ slept_ms: number }>("Sleep", { ms: 500 });
      await new Promise((r) => setTimeout(r, 100));
      child.kill("SIGTERM");
      assert((await running).slept_ms >= 450, "the running call finished during the drain");
      const status = await child.status;
      assertEquals(status.code, 0);
      await readLogUntil(reader, lines, (r) => r.msg === "stopped");
      assert(lines.some((r) => r.msg === "health" && r.status === "NOT_SERVING"));
    } finally {
      c.close();
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await reader.cancel().catch(() => {});
  }
});
