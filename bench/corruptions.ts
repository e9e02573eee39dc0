/**
 * `deno task bench corruptions [--quick]`: milliseconds per 64x64 RGB uint8 image for every
 * corruption and severity, one core, cotrain's library (`corruptBatch` on one image, results
 * identical to the service's) against the reference, bethgelab/imagecorruptions, run in the same
 * invocation on the same four images (test/corruption_data/*_64.png) by
 * bench/peers/imagecorruptions_peer.py.
 *
 * Figures: median ms of the timed calls per (corruption, severity) after untimed warm-up rounds
 * over all severities of the corruption (see PLANS); the peer runs as a server and times each
 * corruption just before cotrain does (the two sides of a corruption under the same load);
 * a case line per corruption and severity (`<name>-s<severity>`), a line per corruption (`<name>`,
 * mean over severities), and `paper14` (mean over the paper's 14 and the 5 severities); the per
 * corruption and paper14 lines again with the minima of the timed calls (`ms_per_img_min`: the
 * compute cost without the preemption a loaded machine adds to medians, for both sides).
 *
 * Python: `$COTRAIN_IC_PYTHON`, else `$COTRAIN_PYTHON`, else the first of `python3`,
 * `/usr/bin/python3` that can `import imagecorruptions` (see the peer script for installing it).
 *
 * @example
 * ```sh
 * deno task bench corruptions --quick
 * ```
 * @module
 */
import { fileURLToPath } from "node:url";
import { corruptBatch, CORRUPTIONS, PAPER_14 } from "../core/corruptions/mod.ts";
import { loadImages } from "../test/corruption_fidelity.ts";
import { type BenchLine, type BenchOptions, median } from "./lib.ts";

const PEER = fileURLToPath(new URL("./peers/imagecorruptions_peer.py", import.meta.url));
const DATA = fileURLToPath(new URL("../test/corruption_data/", import.meta.url));
const NAMES = ["astronaut", "camera", "chelsea", "coffee"];

/**
 * Repetitions per (corruption, severity); warm-up per corruption: rounds over all 5 severities
 * (at least `warmup` rounds, and until `warmupMs` have passed), so the JIT has compiled every
 * severity's code paths before any is timed (steady state, as a long TIN-TC sweep runs).
 */
export const PLANS = {
  full: { reps: 30, warmup: 10, warmupMs: 300 },
  quick: { reps: 6, warmup: 3, warmupMs: 100 },
};

async function findPython(): Promise<string> {
  const candidates = [
    Deno.env.get("COTRAIN_IC_PYTHON"),
    Deno.env.get("COTRAIN_PYTHON"),
    "python3",
    "/usr/bin/python3",
  ].filter((p): p is string => !!p);
  for (const p of candidates) {
    try {
      const { success } = await new Deno.Command(p, {
        args: ["-c", "import warnings; warnings.simplefilter('ignore'); import imagecorruptions"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (success) return p;
    } catch { /* not there */ }
  }
  throw new Error(
    `no Python that can import imagecorruptions (tried ${candidates.join(", ")}); ` +
      `set COTRAIN_IC_PYTHON (see bench/peers/imagecorruptions_peer.py for installing it)`,
  );
}

/**
 * The peer as a server: it times one corruption (5 severities) per request, so each corruption's
 * two sides are timed back to back, under the same load.
 */
class Peer {
  #child: Deno.ChildProcess;
  #reader: ReadableStreamDefaultReader<string>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #buf = "";
  version = "unknown";

  constructor(python: string, reps: number) {
    this.#child = new Deno.Command(python, {
      args: [PEER, "--serve", String(reps), ...NAMES.map((n) => `${DATA}${n}_64.png`)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#writer = this.#child.stdin.getWriter();
  }

  async #line(): Promise<string> {
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("the imagecorruptions peer exited (its stderr is above)");
      this.#buf += value;
    }
  }

  async start(): Promise<void> {
    this.version = JSON.parse(await this.#line()).version;
  }

  /** ms per image at severities 1..5: medians and minima of the timed calls. */
  async time(corruption: string): Promise<{ ms: number[]; min: number[] }> {
    await this.#writer.write(new TextEncoder().encode(`${corruption}\n`));
    const answer = JSON.parse(await this.#line());
    if (answer.corruption !== corruption) throw new Error(`peer answered ${answer.corruption}`);
    return answer;
  }

  async close(): Promise<void> {
    await this.#writer.close();
    await this.#reader.cancel();
    const { success } = await this.#child.status;
    if (!success) throw new Error("the imagecorruptions peer failed (its stderr is above)");
  }
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Runs the benchmark; see the module docs. */
export async function* run(options: BenchOptions): AsyncGenerator<BenchLine> {
  const plan = options.quick ? PLANS.quick : PLANS.full;
  const say = options.progress ?? (() => {});
  const python = await findPython();
  say(`[corruptions] peer: imagecorruptions via ${python}, ${plan.reps} reps per case`);
  const server = new Peer(python, plan.reps);
  await server.start();
  const peer = { ms: {} as Record<string, number[]>, min: {} as Record<string, number[]> };
  const peerName = `imagecorruptions-${server.version}`;
  const images = await loadImages(64);
  const ours: Record<string, number[]> = {};
  const oursMin: Record<string, number[]> = {};
  for (const c of CORRUPTIONS) {
    ({ ms: peer.ms[c], min: peer.min[c] } = await server.time(c));
    ours[c] = [];
    oursMin[c] = [];
    const call = (s: number, r: number) =>
      corruptBatch({ dtype: "uint8", shape: [1, 64, 64, 3], data: images[r % 4] }, {
        corruption: c,
        severity: s,
        seed: 1,
        indexOffset: r,
      });
    const start = performance.now();
    for (let round = 0; round < plan.warmup || performance.now() - start < plan.warmupMs; round++) {
      for (let s = 1; s <= 5; s++) call(s, round);
    }
    for (let s = 1; s <= 5; s++) {
      const times: number[] = [];
      for (let r = 0; r < plan.reps; r++) {
        const t = performance.now();
        call(s, r);
        times.push(performance.now() - t);
      }
      ours[c].push(median(times));
      oursMin[c].push(Math.min(...times));
    }
    say(`[corruptions] cotrain ${c}: ${(ours[c].reduce((a, b) => a + b) / 5).toFixed(3)} ms`);
  }
  await server.close();
  const rows: string[] = [];
  const mean5 = (xs: number[]) => xs.reduce((a, b) => a + b) / 5;
  for (const c of CORRUPTIONS) {
    for (let s = 0; s < 5; s++) {
      yield {
        bench: "corruptions",
        case: `${c}-s${s + 1}`,
        metric: "ms_per_img",
        value: r3(ours[c][s]),
        peer: peerName,
        peer_value: r3(peer.ms[c][s]),
      };
    }
    const m = mean5(ours[c]), pm = mean5(peer.ms[c]);
    const mMin = mean5(oursMin[c]), pMin = mean5(peer.min[c]);
    rows.push(
      `| ${c} | ${m.toFixed(3)} | ${pm.toFixed(3)} | ${(pm / m).toFixed(2)} | ${
        mMin.toFixed(3)
      } | ${pMin.toFixed(3)} | ${(pMin / mMin).toFixed(2)} |`,
    );
    yield {
      bench: "corruptions",
      case: c,
      metric: "ms_per_img",
      value: r3(m),
      peer: peerName,
      peer_value: r3(pm),
    };
    yield {
      bench: "corruptions",
      case: c,
      metric: "ms_per_img_min",
      value: r3(mMin),
      peer: peerName,
      peer_value: r3(pMin),
    };
  }
  const mean14 = (t: Record<string, number[]>) =>
    PAPER_14.reduce((a, c) => a + t[c].reduce((x, y) => x + y), 0) / (14 * 5);
  const m14 = mean14(ours), p14 = mean14(peer.ms);
  const m14Min = mean14(oursMin), p14Min = mean14(peer.min);
  rows.push(
    `| paper14 (mean) | ${m14.toFixed(3)} | ${p14.toFixed(3)} | ${(p14 / m14).toFixed(2)} | ${
      m14Min.toFixed(3)
    } | ${p14Min.toFixed(3)} | ${(p14Min / m14Min).toFixed(2)} |`,
  );
  say(
    `[corruptions] | corruption | cotrain ms/img | ${peerName} ms/img | speed-up | ` +
      `cotrain min | peer min | speed-up (min) |\n${rows.join("\n")}`,
  );
  yield {
    bench: "corruptions",
    case: "paper14",
    metric: "ms_per_img",
    value: r3(m14),
    peer: peerName,
    peer_value: r3(p14),
  };
  yield {
    bench: "corruptions",
    case: "paper14",
    metric: "ms_per_img_min",
    value: r3(m14Min),
    peer: peerName,
    peer_value: r3(p14Min),
  };
}
