/**
 * What every benchmark in bench/ shares: the shape of its output line, its options, and the few
 * statistics it needs. A benchmark is a module exporting {@linkcode Bench}'s `run`, registered
 * by one line in bench/main.ts.
 *
 * @example
 * ```ts
 * import { median, mbPerSecond, type BenchLine } from "./lib.ts";
 * const s = median([0.12, 0.1, 0.11]);
 * const line: BenchLine = {
 *   bench: "transport",
 *   case: "inline-1MiB",
 *   metric: "roundtrip_MB_s",
 *   value: mbPerSecond(1 << 20, s),
 *   peer: "python-grpcio-1.85.3",
 *   peer_value: 9.1,
 * };
 * console.log(JSON.stringify(line));
 * ```
 * @module
 */

/** One measurement, printed as one JSON line, keys in this order (DESIGN.md, Tests). */
export interface BenchLine {
  /** The benchmark's name, e.g. `transport`. */
  bench: string;
  /** What was measured, e.g. `inline-16MiB`. */
  case: string;
  /** The unit and direction, e.g. `roundtrip_MB_s` (higher is better) or `train_img_s`. */
  metric: string;
  /** cotrain's figure. */
  value: number;
  /** The peer it is compared with, with its version, e.g. `python-grpcio-1.85.3`. */
  peer: string;
  /** The peer's figure for the same case and metric, measured in the same run. */
  peer_value: number;
}

/** Options every benchmark takes. */
export interface BenchOptions {
  /** A short run (under a minute) with fewer cases and repetitions. */
  quick: boolean;
  /** Where progress goes (default: stderr); stdout carries only the JSON lines. */
  progress?: (message: string) => void;
}

/** A benchmark module: bench/<name>.ts exports `run`. */
export interface Bench {
  /** Runs the benchmark, yielding its lines as they are ready. */
  run(options: BenchOptions): AsyncIterable<BenchLine>;
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  if (xs.length === 0) throw new Error("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Throughput in MB/s (1 MB = 10^6 bytes) of moving `bytes` in `seconds`. */
export function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

/** Rounds to one decimal (figures in MB/s or items/s do not deserve more). */
export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Writes a progress line to stderr. */
export function stderrProgress(message: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(message + "\n"));
}

/** A peer script's last JSON line (PyTorch's scripts print one). */
export interface TorchPeerResult {
  peer: string;
  train_img_s: number;
  infer_img_s: number;
}

/** What every PyTorch peer script takes. */
export interface TorchPeerShape {
  width: number;
  size: number;
  batch: number;
  steps: number;
}

/**
 * Runs one of ../shared/bench's PyTorch scripts (e.g. `torch_vgg_train.py`; a URL: a script of
 * cotrain's own, e.g. bench/peers/torch_mtl_train.py) at `shape` on 2
 * threads, with the script's own `extra` flags, and returns its JSON line. Python:
 * `$COTRAIN_TORCH_PYTHON`, else Debian's /usr/bin/python3 (python3-torch). Fails with an
 * instruction when the peer cannot run: a benchmark never skips its peer.
 */
export async function runTorchPeer(
  script: string | URL,
  shape: TorchPeerShape,
  extra: string[] = [],
): Promise<TorchPeerResult> {
  const path = script instanceof URL
    ? script.pathname
    : new URL(`../../shared/bench/${script}`, import.meta.url).pathname;
  const lines = (await runTorchPython([
    path,
    ...["--width", String(shape.width), "--size", String(shape.size)],
    ...["--batch", String(shape.batch), "--steps", String(shape.steps), "--threads", "2"],
    ...extra,
  ])).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as TorchPeerResult;
}

/**
 * Runs the PyTorch peers' Python (`$COTRAIN_TORCH_PYTHON`, else Debian's /usr/bin/python3 with
 * python3-torch) with `args`; resolves to its stdout, or fails with an instruction (a benchmark
 * never skips its peer).
 */
export async function runTorchPython(args: string[]): Promise<string> {
  const python = Deno.env.get("COTRAIN_TORCH_PYTHON") ?? "/usr/bin/python3";
  const out = await new Deno.Command(python, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `the PyTorch peer failed (${python} ${args[0]}); install Debian's python3-torch or set ` +
        `COTRAIN_TORCH_PYTHON: ${new TextDecoder().decode(out.stderr).slice(-400)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * Images per second of `step`, one batch of `batch` images per call: one untimed warm-up call,
 * then at least `minSteps` timed calls and at least `seconds` of them.
 */
export async function imgPerSec(
  step: () => Promise<void> | void,
  batch: number,
  minSteps: number,
  seconds: number,
): Promise<number> {
  await step();
  let n = 0;
  const t0 = performance.now();
  while (n < minSteps || performance.now() - t0 < seconds * 1000) {
    await step();
    n++;
  }
  return (n * batch) / ((performance.now() - t0) / 1000);
}
