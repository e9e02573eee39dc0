/**
 * `deno task bench sweep [--quick]`: images corrupted and classified per second by a robustness
 * sweep (the paper's 14 corruptions x 5 severities, one shard each) over 1 and over 2 evaluator
 * replicas (real processes, `services/evaluator/main.ts`, each with cores / replicas onnxruntime
 * threads, at least one, on a fresh file store per run so nothing comes from the store), VGG-19-BN
 * width 1/8 on 64x64 gray images, against ../shared/bench/python_sweep.py (bethgelab/imagecorruptions + PyTorch on 2 threads, the
 * same grid and image count) run in the same invocation.
 *
 * Then the same with every replica given one core (one onnxruntime thread, no corruption worker:
 * a pod with a CPU limit of 1), cases `...-1core`: horizontal scale as on a cluster, which a 2-core
 * machine cannot show with replicas that each use both cores.
 *
 * The sweep's clock runs from the first shard sent to the last result (the dispatcher,
 * clients/ts/lib/shards.ts, with its default of 3 shards in flight per replica, or
 * COTRAIN_SHARDS_INFLIGHT); each replica corrupts on its default one Web Worker
 * (COTRAIN_EVAL_CORRUPT_WORKERS) while its main thread classifies, and is warmed first with a
 * clean shard that loads the image set, the model and the worker.
 *
 * Python: `$COTRAIN_IC_PYTHON`, else the first of `python3`, `/usr/bin/python3` that imports both
 * imagecorruptions and torch.
 *
 * @example
 * ```sh
 * COTRAIN_IC_PYTHON=/tmp/icdeb2/bin/python deno task bench sweep --quick
 * ```
 * @module
 */
import { fileURLToPath } from "node:url";
import { initBackend } from "../core/engine/backend.ts";
import { PAPER_CORRUPTIONS } from "../core/metrics/robustness.ts";
import { FileStore } from "../platform/store/mod.ts";
import { defaultInflight, type EvaluateShardRequest, runShards } from "../clients/ts/lib/shards.ts";
import { type ServiceProcess, startService } from "../clients/ts/lib/cluster.ts";
import { storeTinyClassifier } from "../test/fixtures/evaluator.ts";
import { type BenchLine, type BenchOptions, round1 } from "./lib.ts";

const PEER = fileURLToPath(new URL("../../shared/bench/python_sweep.py", import.meta.url));

/** Test images per shard (the sweep classifies 70 times as many). */
export const PLANS = { full: { images: 64 }, quick: { images: 32 } };

const WIDTH = 0.125;

function datasetUri(images: number): string {
  // 10 classes; train and validation split only feed the short training of the model
  const perClass = Math.ceil(images / 10);
  return `builtin:image-set?classes=10&train_per_class=4&val_per_class=1&test_per_class=${perClass}&size=64&seed=0`;
}

async function findPython(): Promise<string> {
  const candidates = [Deno.env.get("COTRAIN_IC_PYTHON"), "python3", "/usr/bin/python3"]
    .filter((p): p is string => !!p);
  for (const p of candidates) {
    try {
      const { success } = await new Deno.Command(p, {
        args: [
          "-c",
          "import warnings; warnings.simplefilter('ignore'); import imagecorruptions, torch",
        ],
        stdout: "null",
        stderr: "null",
      }).output();
      if (success) return p;
    } catch { /* not there */ }
  }
  throw new Error(
    `no Python that imports imagecorruptions and torch (tried ${candidates.join(", ")}); ` +
      `set COTRAIN_IC_PYTHON (see bench/peers/imagecorruptions_peer.py for installing it)`,
  );
}

async function runPeer(python: string, images: number): Promise<{ peer: string; img_s: number }> {
  const out = await new Deno.Command(python, {
    args: [PEER, "--images", String(images), "--width", String(WIDTH), "--threads", "2"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`the peer failed: ${new TextDecoder().decode(out.stderr).slice(-400)}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

/** The 1-minute load average (the machine may be shared), or "?" where it cannot be read. */
function loadAverage(): string {
  try {
    return Deno.loadavg()[0].toFixed(2);
  } catch {
    return "?";
  }
}

/** onnxruntime threads of each of `k` replicas: the machine's cores shared out, at least one. */
export function threadsPerReplica(k: number, cores = navigator.hardwareConcurrency ?? 1): number {
  return Math.max(1, Math.floor(cores / k));
}

/** One evaluator process on `storeUrl` (clients/ts/lib/cluster.ts). */
async function startReplica(
  storeUrl: string,
  logDir: string,
  i: number,
  threads: number,
  oneCore: boolean,
): Promise<ServiceProcess> {
  return await startService("evaluator", {
    store: storeUrl,
    logFile: `${logDir}/evaluator-${i}.log`,
    replica: i,
    env: {
      COTRAIN_EVAL_THREADS: String(threads),
      // one core per replica (a pod with a CPU limit of 1): corruption on the main thread
      ...(oneCore ? { COTRAIN_EVAL_CORRUPT_WORKERS: "0" } : {}),
    },
    readyTimeoutMs: 60_000,
  });
}

async function stopReplica(r: ServiceProcess): Promise<void> {
  try {
    r.child.kill("SIGTERM");
  } catch { /* gone */ }
  await r.exited;
}

/** Images per second of the whole sweep on `k` fresh replicas. */
async function sweepImgPerSec(
  k: number,
  checkpoint: { safetensors: Uint8Array; onnx: Uint8Array; modelId: string },
  images: number,
  progress: (m: string) => void,
  oneCore = false,
): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-bench-sweep-" });
  const store = new FileStore(`file://${dir}`);
  const logDir = await Deno.makeTempDir({ prefix: "cotrain-bench-sweep-logs-" });
  const replicas: ServiceProcess[] = [];
  try {
    const prefix = `jobs/classifier-train/${checkpoint.modelId}/`;
    await store.put(`${prefix}model.safetensors`, checkpoint.safetensors);
    await store.put(`${prefix}model.onnx`, checkpoint.onnx);
    const threads = oneCore ? 1 : threadsPerReplica(k);
    for (let i = 0; i < k; i++) {
      replicas.push(await startReplica(store.url, logDir, i, threads, oneCore));
    }
    const uri = datasetUri(images);
    const base = { model_id: checkpoint.modelId, dataset_uri: uri, limit: images };
    // warm every replica: image set and model loaded, onnxruntime session created
    await Promise.all(
      replicas.map((r, i) =>
        runShards([r.address], [{ ...base, corruption: "clean", severity: 0, limit: i + 1 }])
      ),
    );
    const shards: EvaluateShardRequest[] = [];
    for (const corruption of PAPER_CORRUPTIONS) {
      for (let severity = 1; severity <= 5; severity++) {
        shards.push({ ...base, corruption, severity, seed: 0 });
      }
    }
    const t0 = performance.now();
    const results = await runShards(replicas.map((r) => r.address), shards);
    const s = (performance.now() - t0) / 1000;
    const n = results.reduce((a, r) => a + r.n, 0);
    const engines = new Set(results.map((r) => r.engine));
    progress(
      `  ${k} replica(s)${
        oneCore ? " of one core" : ""
      }, ${threads} onnxruntime thread(s) and ${defaultInflight()} shards in flight each: ${n} images in ${
        s.toFixed(2)
      } s (${[...engines].join(",")}; load average ${loadAverage()})`,
    );
    return n / s;
  } finally {
    for (const r of replicas) await stopReplica(r);
    await store.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(logDir, { recursive: true });
  }
}

/** Runs the benchmark. */
export async function* run(options: BenchOptions): AsyncGenerator<BenchLine> {
  const progress = options.progress ?? (() => {});
  const plan = options.quick ? PLANS.quick : PLANS.full;
  const python = await findPython();
  await initBackend("wasm");
  // a briefly trained classifier, stored the way classifier-trainer stores it
  const setupDir = await Deno.makeTempDir({ prefix: "cotrain-bench-sweep-" });
  const setup = new FileStore(`file://${setupDir}`);
  let checkpoint;
  try {
    const m = await storeTinyClassifier(setup, {
      datasetUri: datasetUri(plan.images),
      seed: 0,
      epochs: 1,
      width: WIDTH,
    });
    const prefix = `jobs/classifier-train/${m.modelId}/`;
    checkpoint = {
      modelId: m.modelId,
      safetensors: await setup.get(`${prefix}model.safetensors`),
      onnx: await setup.get(`${prefix}model.onnx`),
    };
  } finally {
    await setup.close();
    await Deno.remove(setupDir, { recursive: true });
  }
  progress(`sweep: 70 shards x ${plan.images} images, w=${WIDTH}, 64x64`);
  const one = await sweepImgPerSec(1, checkpoint, plan.images, progress);
  const two = await sweepImgPerSec(2, checkpoint, plan.images, progress);
  // horizontal scale as on a cluster: each replica one core (this machine has two)
  const one1 = await sweepImgPerSec(1, checkpoint, plan.images, progress, true);
  const two1 = await sweepImgPerSec(2, checkpoint, plan.images, progress, true);
  progress(`peer: ${PEER} --images ${plan.images}`);
  const peer = await runPeer(python, plan.images);
  progress(
    `  peer: ${peer.img_s} img/s (load average ${loadAverage()}); 1 replica ${
      (one / peer.img_s).toFixed(2)
    }x the peer, 2 replicas / 1 replica = ${
      (two / one).toFixed(2)
    }; one core per replica: 2 / 1 = ${(two1 / one1).toFixed(2)}`,
  );
  const kase = `vgg19bn-w${WIDTH}-64px-paper14x5-${plan.images}img`;
  const cases = [[1, one, ""], [2, two, ""], [1, one1, "-1core"], [2, two1, "-1core"]] as const;
  for (const [k, v, core] of cases) {
    yield {
      bench: "sweep",
      case: `${kase}-${k}replica${k > 1 ? "s" : ""}${core}`,
      metric: "img_s",
      value: round1(v),
      peer: peer.peer,
      peer_value: peer.img_s,
    };
  }
}
