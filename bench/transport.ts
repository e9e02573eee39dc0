/**
 * `deno task bench transport [--quick]`: how fast a float32 tensor makes a round trip
 * client -> server -> client through cotrain's rpc runtime and tensor codec, three ways:
 *
 * - `inline-*`: as a `cotrain.v1.Tensor` inside the gRPC messages (test service `Echo`);
 * - `fileref-*`: as a `TensorRef` through a FileStore: the client stores the tensor, sends the
 *   ref, the server resolves it (sha256 checked), stores its answer and returns a ref, the client
 *   resolves that (`EchoRef`);
 * - `s3ref-*`: the same through MinIO (S3Store).
 *
 * In the same run, a Python grpcio client and server (bench/peers/grpc_echo.py) do the same round
 * trips on the same .proto as the peer. Both servers run in a process of their own; the two sides
 * take turns case by case, never running at once. Each case: untimed warm-up trips for a second
 * or two (the first checked to echo the bytes sent), then the median of several timed ones. Figure: payload bytes / 10^6 / median seconds per
 * round trip (the payload is counted once although it travels both ways).
 *
 * Sizes: 1, 16 and 64 MiB (`--quick`: 1 and 16 MiB, fewer repetitions). MinIO comes from
 * `S3_ENDPOINT`/`S3_ACCESS_KEY`/`S3_SECRET_KEY` when set, else one is started (test/minio.ts).
 * Python is `$COTRAIN_PYTHON` or `python3`, with bench/peers/requirements.txt installed.
 *
 * @example
 * ```sh
 * deno task bench transport --quick
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type ObjectStore, openStore } from "../platform/store/mod.ts";
import {
  decodeTensor,
  encodeTensor,
  type HostTensor,
  resolveTensor,
  storeTensor,
  type TensorMsg,
  type TensorOrRefMsg,
} from "../platform/tensor/tensor.ts";
import type { RpcClient } from "../platform/rpc/client.ts";
import { testClient } from "../test/fixtures/test_service.ts";
import { s3EnvOrStart } from "../test/minio.ts";
import { type BenchLine, type BenchOptions, mbPerSecond, median, round1 } from "./lib.ts";
import { BENCH_MAX_MESSAGE_BYTES } from "./transport_server.ts";

const MiB = 1 << 20;
const REPO = fileURLToPath(new URL("..", import.meta.url));
const SERVER = fileURLToPath(new URL("./transport_server.ts", import.meta.url));
const PEER = fileURLToPath(new URL("./peers/grpc_echo.py", import.meta.url));
const REQUIREMENTS = "bench/peers/requirements.txt";
const BUCKET = "cotrain-bench";
const CALL_DEADLINE_MS = 600_000;

/** The ways a tensor travels. */
export const KINDS = ["inline", "fileref", "s3ref"] as const;
/** One of {@linkcode KINDS}. */
export type Kind = typeof KINDS[number];

/** Sizes and repetitions of a run. */
export interface TransportPlan {
  /** Tensor sizes in MiB. */
  sizesMiB: number[];
  /** Timed round trips per size (same order). */
  reps: number[];
  /**
   * Untimed round trips first, until this many seconds have passed (at least one, and the first
   * is checked to echo what was sent): cotrain's JIT and HTTP/2 windows need a few to settle.
   */
  warmupS: number;
}

/** The full run and the `--quick` one. */
export const PLANS: { full: TransportPlan; quick: TransportPlan } = {
  full: { sizesMiB: [1, 16, 64], reps: [25, 9, 7], warmupS: 2 },
  quick: { sizesMiB: [1, 16], reps: [9, 3], warmupS: 0.5 },
};

/** Name of a case, e.g. `inline-16MiB`. */
export function caseName(kind: Kind, mib: number): string {
  return `${kind}-${mib}MiB`;
}

/** One side of the comparison: cotrain, or the Python peer. */
interface Side {
  /** Its name in the output, e.g. `cotrain` or `python-grpcio-1.85.3`. */
  readonly name: string;
  /** Seconds of each timed round trip of one case, after `warmupS` seconds of untimed ones. */
  measure(kind: Kind, mib: number, warmupS: number, reps: number): Promise<number[]>;
  /** Stops its processes and releases its connections. */
  close(): Promise<void>;
}

/** Runs the benchmark; see the module docs. */
export async function* run(options: BenchOptions): AsyncGenerator<BenchLine> {
  const plan = options.quick ? PLANS.quick : PLANS.full;
  const say = options.progress ?? (() => {});
  const python = Deno.env.get("COTRAIN_PYTHON") || "python3";
  const peerName = await peerVersion(python); // fail before any work when the peer cannot run
  say(`[transport] peer ${peerName} (${python}); sizes ${plan.sizesMiB.join(", ")} MiB`);

  const s3 = await s3EnvOrStart();
  const tmp = await Deno.makeTempDir({ prefix: "cotrain-bench-transport-" });
  const runId = crypto.randomUUID().slice(0, 8);
  const sides: Side[] = [];
  try {
    say(`[transport] MinIO at ${s3.endpoint}${s3.server ? " (started here)" : ""}`);
    const ours = await startCotrainSide({
      fileUrl: pathToFileURL(`${tmp}/cotrain`).href,
      s3Url: `s3://${BUCKET}/transport-${runId}/cotrain`,
      s3Env: s3.env(),
    });
    sides.push(ours);
    const peer = await startPeerSide(python, {
      fileRoot: `${tmp}/python`,
      prefix: `transport-${runId}/python`,
      s3Env: s3.env(),
    });
    sides.push(peer);
    const rows: string[] = [];
    let turn = 0;
    for (const kind of KINDS) {
      for (const [i, mib] of plan.sizesMiB.entries()) {
        const name = caseName(kind, mib);
        // The two sides take turns case by case (first one, then the other first), so a change
        // in the machine's load hits both alike.
        const order = turn++ % 2 === 0 ? [ours, peer] : [peer, ours];
        const mbs = new Map<Side, number>();
        for (const side of order) {
          const seconds = await side.measure(kind, mib, plan.warmupS, plan.reps[i]);
          if (seconds.length === 0) throw new Error(`${side.name} reported no timings for ${name}`);
          mbs.set(side, mbPerSecond(mib * MiB, median(seconds)));
          say(report(side.name, name, mib, seconds));
        }
        const value = mbs.get(ours) as number;
        const peerValue = mbs.get(peer) as number;
        rows.push(
          `| ${name} | ${round1(value)} | ${round1(peerValue)} | ${
            (value / peerValue).toFixed(2)
          } |`,
        );
        yield {
          bench: "transport",
          case: name,
          metric: "roundtrip_MB_s",
          value: round1(value),
          peer: peer.name,
          peer_value: round1(peerValue),
        };
      }
    }
    say(
      `| case | cotrain MB/s | ${peer.name} MB/s | cotrain/peer |\n|---|---|---|---|\n` +
        rows.join("\n"),
    );
  } finally {
    for (const side of sides.reverse()) await side.close().catch((e) => say(`[transport] ${e}`));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await s3.dispose();
  }
}

// --- cotrain side -------------------------------------------------------------------------------

interface CotrainStores {
  fileUrl: string;
  s3Url: string;
  s3Env: Record<string, string>;
}

/** The cotrain server in a process of its own (bench/transport_server.ts) and a client here. */
async function startCotrainSide(where: CotrainStores): Promise<Side> {
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, "--file", where.fileUrl, "--s3", where.s3Url],
    cwd: REPO,
    env: where.s3Env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = jsonLines(server.stdout);
  const stores: Record<"file" | "s3", ObjectStore> = {
    file: openStore(where.fileUrl),
    s3: openStore(where.s3Url, where.s3Env),
  };
  const clients: RpcClient[] = [];
  const close = async () => {
    for (const c of clients) c.close();
    await Promise.all([stores.file.close(), stores.s3.close()]);
    await server.stdin.close().catch(() => {});
    await lines.return(undefined);
    await server.status;
  };
  try {
    const first = await lines.next();
    if (first.done) throw new Error(`the cotrain transport server (${SERVER}) exited early`);
    const ports = first.value as { file: number; s3: number };
    const client = (port: number) => {
      const c = testClient(`127.0.0.1:${port}`, {
        maxMessageBytes: BENCH_MAX_MESSAGE_BYTES,
        deadlineMs: CALL_DEADLINE_MS,
        retries: 0,
      });
      clients.push(c);
      return c;
    };
    const fileClient = client(ports.file);
    const s3Client = client(ports.s3);
    await Promise.all(clients.map((c) => c.waitForReady(30_000)));
    return {
      name: "cotrain",
      measure(kind, mib, warmupS, reps) {
        const t = randomTensor(mib);
        const trip: Trip = kind === "inline"
          ? () => inlineTrip(fileClient, t)
          : kind === "fileref"
          ? () => refTrip(fileClient, stores.file, t)
          : () => refTrip(s3Client, stores.s3, t);
        return timeTrips(caseName(kind, mib), trip, bytesOf(t), warmupS, reps);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

type Trip = () => Promise<{ out: Uint8Array; cleanup?: () => Promise<unknown> }>;

/** A round trip inline: encode, Echo, decode (what a caller of an inline-tensor RPC pays). */
async function inlineTrip(client: RpcClient, t: HostTensor): Promise<{ out: Uint8Array }> {
  const res = await client.unary<{ tensor: TensorMsg }>("Echo", { tensor: encodeTensor(t) });
  return { out: bytesOf(decodeTensor(res.tensor, { field: "tensor", dtypes: ["float32"] })) };
}

/**
 * A round trip by reference: store the tensor, EchoRef (the server resolves, verifies, stores its
 * answer), resolve the answer. The two objects are removed afterwards, outside the timing.
 */
async function refTrip(
  client: RpcClient,
  store: ObjectStore,
  t: HostTensor,
): Promise<{ out: Uint8Array; cleanup: () => Promise<unknown> }> {
  const key = `bench/${crypto.randomUUID()}.bin`;
  const ref = await storeTensor(t, store, key);
  const res = await client.unary<{ tensor: TensorOrRefMsg }>("EchoRef", { tensor: { ref } });
  const back = await resolveTensor(res.tensor, store, { field: "tensor", dtypes: ["float32"] });
  const backKey = store.keyOf(res.tensor.ref?.uri ?? "");
  return {
    out: bytesOf(back),
    cleanup: () => Promise.all([store.delete(key), store.delete(backKey)]),
  };
}

async function timeTrips(
  name: string,
  trip: Trip,
  sent: Uint8Array,
  warmupS: number,
  reps: number,
): Promise<number[]> {
  const seconds: number[] = [];
  const warmupEnd = performance.now() + warmupS * 1000;
  let warm = false;
  for (let i = 0; seconds.length < reps; i++) {
    const t0 = performance.now();
    const { out, cleanup } = await trip();
    const dt = (performance.now() - t0) / 1000;
    if (i === 0 && !Buffer.from(out.buffer, out.byteOffset, out.byteLength).equals(sent)) {
      throw new Error(`cotrain ${name}: the echo differs from what was sent`);
    }
    await cleanup?.();
    if (warm) seconds.push(dt);
    else warm = performance.now() >= warmupEnd;
  }
  return seconds;
}

/** `mib` MiB of finite float32 noise, shaped like a batch of `mib` 64x64x64 feature maps. */
function randomTensor(mib: number): HostTensor<"float32"> {
  const data = new Float32Array(mib * MiB / 4);
  let x = 0x9e3779b9 ^ mib;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = x / 2 ** 32 - 0.5;
  }
  return { dtype: "float32", shape: [mib, 64, 64, 64], data };
}

function bytesOf(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

const ms = (s: number) => (s * 1000).toFixed(1);

function report(who: string, name: string, mib: number, seconds: number[]): string {
  const m = median(seconds);
  return `[transport] ${who} ${name}: ${mbPerSecond(mib * MiB, m).toFixed(1)} MB/s ` +
    `(median ${ms(m)} ms of ${seconds.length}, min ${ms(Math.min(...seconds))}, ` +
    `max ${ms(Math.max(...seconds))})`;
}

// --- the Python peer ----------------------------------------------------------------------------

const installHint = (python: string) =>
  `install the Python peer's packages: \`pip install -r ${REQUIREMENTS}\` ` +
  `(for this interpreter: \`${python} -m pip install -r ${REQUIREMENTS}\`), ` +
  `or set COTRAIN_PYTHON to a Python that has them`;

/** The peer's name (`python-grpcio-<version>`); throws with install instructions when missing. */
export async function peerVersion(python: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(python, {
      args: [PEER, "version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw new Error(
      `cannot run the Python peer with ${python} (${(err as Error).message}); ` +
        `install Python 3 or set COTRAIN_PYTHON, then ${installHint(python)}`,
    );
  }
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    throw new Error(
      out.code === 3
        ? `the Python peer cannot import its packages with ${python} (${stderr}): ${
          installHint(python)
        }`
        : `${python} ${PEER} version exited with ${out.code}: ${stderr}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)).peer;
}

interface PeerStores {
  fileRoot: string;
  prefix: string;
  s3Env: Record<string, string>;
}

/** The Python peer: `grpc_echo.py bench`, which runs each case asked for on its stdin. */
async function startPeerSide(python: string, where: PeerStores): Promise<Side> {
  const proc = new Deno.Command(python, {
    args: [
      PEER,
      "bench",
      "--file-root",
      where.fileRoot,
      "--s3-bucket",
      BUCKET,
      "--s3-prefix",
      where.prefix,
    ],
    cwd: REPO,
    env: { ...where.s3Env, PYTHONUNBUFFERED: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = jsonLines(proc.stdout);
  const stdin = proc.stdin.getWriter();
  const failed = async (what: string) => {
    const status = await proc.status;
    return new Error(
      `the Python peer (${python} ${PEER} bench) exited with ${status.code} ${what}`,
    );
  };
  const close = async () => {
    await stdin.close().catch(() => {});
    for await (const _ of lines) { /* drain */ }
    const status = await proc.status;
    if (!status.success) throw await failed("while closing");
  };
  try {
    const first = await lines.next();
    if (first.done) throw await failed("before it was ready");
    const name = (first.value as { peer: string }).peer;
    return {
      name,
      async measure(kind, mib, warmupS, reps) {
        await stdin.write(
          new TextEncoder().encode(JSON.stringify({ kind, mib, warmup_s: warmupS, reps }) + "\n"),
        );
        const next = await lines.next();
        if (next.done) throw await failed(`during ${caseName(kind, mib)}`);
        const answer = next.value as { case: string; seconds: number[] };
        if (answer.case !== caseName(kind, mib)) {
          throw new Error(`the Python peer answered ${answer.case} to ${caseName(kind, mib)}`);
        }
        return answer.seconds;
      },
      close,
    };
  } catch (err) {
    await stdin.close().catch(() => {});
    await proc.status;
    throw err;
  }
}

/** The JSON objects of a stream of lines (blank lines skipped). */
async function* jsonLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buf.trim()) yield JSON.parse(buf);
}
