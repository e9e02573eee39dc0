/**
 * `deno task test`'s runner (test/run_all.ts): each module in its own process, so a module whose
 * process dies without a summary (here: SIGABRT, as Deno 2.9's node:http2 can) fails alone and is
 * counted, while the others' results still add up in the final line .ci/run reads.
 */
import { assert, assertEquals } from "./assert.ts";
import { parseSummary } from "./run_all.ts";

Deno.test("run_all: summaries are parsed from deno test's output, colours or not", () => {
  assertEquals(parseSummary("x\nok | 12 passed (3 steps) | 0 failed (2s)\n"), {
    passed: 12,
    failed: 0,
  });
  assertEquals(parseSummary("\x1b[0m\x1b[31mFAILED\x1b[0m | 3 passed | 2 failed \x1b[0m(9ms)"), {
    passed: 3,
    failed: 2,
  });
  assertEquals(parseSummary("no summary here"), null);
});

Deno.test("run_all: a module that crashes fails alone; the others still count", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-run-all-" });
  try {
    await Deno.writeTextFile(
      `${dir}/good_test.ts`,
      'Deno.test("a", () => {});\nDeno.test("b", () => {});\n',
    );
    await Deno.writeTextFile(
      `${dir}/crash_test.ts`,
      'Deno.test("dies", () => { Deno.kill(Deno.pid, "SIGABRT"); });\n',
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./run_all.ts", import.meta.url).pathname, dir],
      env: { NO_COLOR: "1", DENO_JOBS: "2" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(!out.success, "the run must fail");
    const lines = text.trimEnd().split("\n");
    assert(/^FAILED \| 2 passed \| 1 failed/.test(lines.at(-1)!), lines.at(-1));
    assert(
      text.includes("crash_test.ts: the test process ended without a summary or failed after it"),
      text,
    );
    assert(text.includes("modules with failures: ") && !/failures: .*good_test/.test(text), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
