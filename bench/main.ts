/**
 * The benchmark runner: `deno task bench <name> [--quick]` runs bench/<name>.ts and prints one
 * JSON line per measurement on stdout (progress goes to stderr); with no name it runs them all.
 * A new benchmark is a module exporting `run` (see {@linkcode Bench}) plus one line in
 * {@linkcode BENCHES}.
 *
 * @example
 * ```sh
 * deno task bench transport --quick
 * deno task bench            # every benchmark, full size
 * ```
 * @module
 */
import { type Bench, stderrProgress } from "./lib.ts";

/** Every benchmark by name, loaded only when it runs. */
export const BENCHES: Record<string, () => Promise<Bench>> = {
  transport: () => import("./transport.ts"),
  engine: () => import("./engine.ts"),
  exports: () => import("./exports.ts"),
  corruptions: () => import("./corruptions.ts"),
  trainer: () => import("./trainer.ts"),
  predictor: () => import("./predictor.ts"),
  sweep: () => import("./sweep.ts"),
  reconstruct: () => import("./reconstruct.ts"),
};

const USAGE = `usage: deno task bench [name] [--quick]
  name     one of: ${Object.keys(BENCHES).join(", ")} (default: all)
  --quick  a short run, under a minute per benchmark`;

/** Parses the command line: the benchmarks to run and whether to run them quick. */
export function parseArgs(args: string[]): { names: string[]; quick: boolean } {
  let quick = false;
  const names: string[] = [];
  for (const a of args) {
    if (a === "--quick") quick = true;
    else if (a === "-h" || a === "--help") throw new UsageError(USAGE, 0);
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}\n${USAGE}`, 2);
    else if (!(a in BENCHES)) {
      throw new UsageError(
        `unknown benchmark ${JSON.stringify(a)}; known: ${Object.keys(BENCHES).join(", ")}`,
        2,
      );
    } else names.push(a);
  }
  return { names: names.length > 0 ? names : Object.keys(BENCHES), quick };
}

/** A bad command line, with the exit code to leave with. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    (err.exitCode === 0 ? console.log : console.error)(err.message);
    return err.exitCode;
  }
  for (const name of parsed.names) {
    const started = performance.now();
    stderrProgress(`[${name}] ${parsed.quick ? "quick" : "full"} run`);
    try {
      const bench = await BENCHES[name]();
      for await (const line of bench.run({ quick: parsed.quick, progress: stderrProgress })) {
        console.log(JSON.stringify(line));
      }
    } catch (err) {
      console.error(`[${name}] failed: ${err instanceof Error ? err.message : err}`);
      return 1;
    }
    stderrProgress(`[${name}] done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
