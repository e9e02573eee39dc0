/**
 * `deno task test`: every test module (`**\/*_test.ts`) in its own `deno test` process, a few at a
 * time, with one type check of all of them first; then one summary line in Deno's own format
 * (`ok | N passed | M failed`) that .ci/run reads.
 *
 * Why not one `deno test --parallel`: that runs every module inside one process, and Deno 2.9's
 * node:http2 can abort a process on a GOAWAY (denoland/deno#36788, README "Known issues"); a test
 * that starts and stops gRPC servers could then take the whole run down without a summary. Here such
 * a crash fails only its own module, which is reported with its exit status and the end of its output.
 *
 * ```sh
 * deno task test                              # everything
 * deno task test test/rpc_test.ts core/io     # some modules, or every module under a folder
 * DENO_JOBS=1 deno task test                  # one module at a time
 * ```
 * @module
 */
import { relative, resolve } from "node:path";

const ROOT = new URL("../", import.meta.url).pathname;
const SKIP_DIRS = new Set(["node_modules", ".git", "runs", ".ci"]);

/** Every `*_test.ts` under `dir` (relative to the repository root), sorted. */
export async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory && !SKIP_DIRS.has(e.name)) await walk(`${d}/${e.name}`);
      else if (e.isFile && e.name.endsWith("_test.ts")) out.push(relative(ROOT, `${d}/${e.name}`));
    }
  };
  await walk(dir.replace(/\/$/, ""));
  return out.sort();
}

/** Passed and failed counts from a `deno test` summary line (0, 0 when there is none). */
export function parseSummary(output: string): { passed: number; failed: number } | null {
  // deno-lint-ignore no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const m = plain.match(/^(?:ok|FAILED) \| (\d+) passed.*?\| (\d+) failed/m);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
}

interface Result {
  file: string;
  code: number;
  signal: string | null;
  output: string;
  passed: number;
  failed: number;
  /** The process ended without a summary, or failed while its summary said all passed. */
  crashed: boolean;
}

async function runOne(file: string): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", file],
    cwd: ROOT,
    // modules run side by side on shared cores: training threads sleep between operators
    env: { COTRAIN_TRAIN_SPIN: Deno.env.get("COTRAIN_TRAIN_SPIN") ?? "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const s = parseSummary(output);
  // a module that died without its summary counts as one failure
  const crashed = !s || (!out.success && s.failed === 0);
  return {
    file,
    code: out.code,
    signal: out.signal,
    output,
    passed: s?.passed ?? 0,
    failed: crashed ? Math.max(1, s?.failed ?? 0) : s.failed,
    crashed,
  };
}

/** Whether a module's own report names a failed test (not just a dead process). */
function hasFailure(r: Result): boolean {
  return r.output.includes("FAILURES") || /\.\.\. \S*FAILED/.test(r.output);
}

async function main(args: string[]): Promise<number> {
  const targets = args.length ? args : ["."];
  const files: string[] = [];
  for (const t of targets) {
    const path = resolve(Deno.cwd(), t);
    const st = await Deno.stat(path);
    if (st.isDirectory) files.push(...await findTests(path));
    else files.push(relative(ROOT, path));
  }
  if (files.length === 0) {
    console.error(`no *_test.ts under ${targets.join(" ")}`);
    return 2;
  }
  // one type check of every module (each process then runs with --no-check)
  const check = await new Deno.Command(Deno.execPath(), {
    args: ["check", ...files],
    cwd: ROOT,
  }).output();
  if (!check.success) {
    console.log(`FAILED | 0 passed | ${files.length} failed (type check)`);
    return 1;
  }
  const jobs = Math.max(1, Number(Deno.env.get("DENO_JOBS") ?? navigator.hardwareConcurrency));
  const queue = [...files];
  const results: Result[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      let r = await runOne(f);
      if (r.crashed && (r.signal === "SIGSEGV" || r.signal === "SIGABRT") && !hasFailure(r)) {
        // Deno 2.9's node:http2 can abort a process on a GOAWAY (denoland/deno#36788, README
        // "Known issues"): one more run of the module, shown in the log; a second crash counts
        console.log(r.output.trimEnd());
        console.log(
          `${r.file}: the process died by ${r.signal} with no test failed; running it again`,
        );
        r = await runOne(f);
      }
      results.push(r);
      // the module's own report, whole, as `deno test` prints it
      console.log(r.output.trimEnd());
      if (r.crashed) {
        console.log(
          `${r.file}: the test process ended without a summary or failed after it (exit ${r.code}` +
            `${r.signal ? `, ${r.signal}` : ""}); counted as a failure`,
        );
      }
    }
  }));
  const passed = results.reduce((a, r) => a + r.passed, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  const bad = results.filter((r) => r.failed > 0).map((r) => r.file);
  const seconds = Math.round((performance.now() - t0) / 1000);
  console.log(`\n${results.length} test modules in ${seconds} s, ${jobs} at a time`);
  if (bad.length) console.log(`modules with failures: ${bad.join(", ")}`);
  console.log(`${failed ? "FAILED" : "ok"} | ${passed} passed | ${failed} failed (${seconds}s)`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
