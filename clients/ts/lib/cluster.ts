/**
 * A small cluster on loopback: each cotrain service as its own child process (`deno run -A
 * services/<name>/main.ts`) on a free port, sharing one object store, with its JSON log written
 * to a file. The demo and the end-to-end tests use it; so can any test that needs real replicas.
 *
 * A service is ready when it has logged its address ("listening") and its health check says
 * SERVING. {@linkcode Cluster.stop} sends SIGTERM (graceful drain), then SIGKILL after a grace.
 *
 * @example
 * ```ts ignore
 * import { startCluster } from "./cluster.ts";
 * const cluster = await startCluster({
 *   services: ["neural-predictor", "classifier-trainer"],
 *   store: "file:///tmp/cotrain-store",
 * });
 * console.log(cluster.address("classifier-trainer")); // 127.0.0.1:41234
 * await cluster.stop();
 * ```
 * @module
 */
import { fileURLToPath } from "node:url";
import { waitForServing } from "../../../platform/rpc/health.ts";

/** The services cotrain has, by folder name under services/. */
export type ServiceName =
  | "neural-predictor"
  | "classifier-trainer"
  | "corruption-generator"
  | "evaluator"
  | "reconstructor"
  | "saliency-scorer";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The main module of a service. */
export function serviceMain(name: ServiceName): string {
  return `${ROOT}services/${name}/main.ts`;
}

/** Whether a service exists in this checkout. */
export function serviceExists(name: ServiceName): boolean {
  try {
    return Deno.statSync(serviceMain(name)).isFile;
  } catch {
    return false;
  }
}

/** One running service process. */
export interface ServiceProcess {
  name: ServiceName;
  /** Replica number (0 for the first process of a service). */
  replica: number;
  address: string;
  pid: number;
  /** File that receives the process's stderr (its JSON log). */
  logFile: string;
  child: Deno.ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  /** Services to start, each one process (a name twice starts two replicas). */
  services: ServiceName[];
  /** COTRAIN_STORE of every process (file:///abs/dir or s3://bucket/prefix). */
  store: string;
  /** Folder for the processes' logs (default: a temporary folder). */
  logDir?: string;
  /** COTRAIN_LOG_LEVEL (default "info"). */
  logLevel?: string;
  /** Extra environment of every process, or per service. */
  env?: Record<string, string>;
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /**
   * Point the evaluator at the corruption-generator (COTRAIN_CORRUPTION_ADDR) when both run
   * (default false: it corrupts in-process, the same bytes).
   */
  corruptionViaService?: boolean;
  /** How long one service may take to become SERVING (default 120 s). */
  readyTimeoutMs?: number;
  /**
   * Restart a process that exits on its own (not by {@linkcode Cluster.stop} or
   * {@linkcode Cluster.kill}) on the same port, as a Kubernetes restart policy would (default
   * false). Each restart is counted in {@linkcode Cluster.restarts}.
   */
  restart?: boolean;
}

/** A set of running service processes. */
export class Cluster {
  readonly processes: ServiceProcess[] = [];
  /** Processes that exited on their own and were restarted: name, replica, exit status. */
  readonly restarts: { name: ServiceName; replica: number; code: number; signal: string | null }[] =
    [];
  #stopping = new Set<ServiceProcess>();
  #restarter: ((p: ServiceProcess) => Promise<ServiceProcess>) | null = null;
  constructor(readonly logDir: string) {}

  /** Watches a process; restarts it on the same port when it exits on its own. */
  watch(p: ServiceProcess, restarter: ((p: ServiceProcess) => Promise<ServiceProcess>) | null) {
    this.#restarter = restarter;
    p.exited.then(async (st) => {
      if (this.#stopping.has(p) || !this.#restarter) return;
      this.restarts.push({ name: p.name, replica: p.replica, code: st.code, signal: st.signal });
      try {
        const q = await this.#restarter(p);
        const i = this.processes.indexOf(p);
        if (i >= 0) this.processes[i] = q;
        this.watch(q, this.#restarter);
      } catch { /* it stays down; callers see UNAVAILABLE */ }
    });
  }

  /** The address of a service's first replica; throws when it was not started. */
  address(name: ServiceName): string {
    const p = this.processes.find((p) => p.name === name);
    if (!p) throw new Error(`cluster: ${name} is not running`);
    return p.address;
  }

  /** Addresses of every replica of a service. */
  addresses(name: ServiceName): string[] {
    return this.processes.filter((p) => p.name === name).map((p) => p.address);
  }

  /** Kills one process at once (SIGKILL), e.g. to test failover. */
  async kill(p: ServiceProcess): Promise<void> {
    this.#stopping.add(p);
    try {
      p.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await p.exited;
  }

  /** Stops every process: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    this.#restarter = null;
    await Promise.all(this.processes.map(async (p) => {
      this.#stopping.add(p);
      try {
        p.child.kill("SIGTERM");
      } catch { /* already gone */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((r) =>
        timer = setTimeout(() => r("timeout"), graceMs)
      );
      const r = await Promise.race([p.exited, timeout]);
      clearTimeout(timer);
      if (r === "timeout") await this.kill(p);
    }));
  }
}

/** Starts one service process and waits until it is SERVING. */
export async function startService(
  name: ServiceName,
  options: {
    store: string;
    logFile: string;
    replica?: number;
    logLevel?: string;
    env?: Record<string, string>;
    readyTimeoutMs?: number;
    /** A fixed port (default: any free one). */
    port?: number;
    /** Append to the log file instead of starting it afresh. */
    appendLog?: boolean;
  },
): Promise<ServiceProcess> {
  if (!serviceExists(name)) throw new Error(`cluster: no service ${name} (${serviceMain(name)})`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", serviceMain(name)],
    cwd: ROOT,
    env: {
      COTRAIN_HOST: "127.0.0.1",
      COTRAIN_PORT: String(options.port ?? 0),
      COTRAIN_STORE: options.store,
      COTRAIN_LOG_LEVEL: options.logLevel ?? "info",
      COTRAIN_MAX_CONNECTION_AGE_MS: "0",
      ...options.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const exited = child.status;
  const log = await Deno.open(options.logFile, {
    create: true,
    write: true,
    truncate: !options.appendLog,
    append: options.appendLog,
  });
  const { promise: addr, resolve: resolveAddr, reject: rejectAddr } = Promise.withResolvers<
    string
  >();
  // Copy the log to its file, watching for the "listening" line.
  (async () => {
    const enc = new TextEncoder();
    let buf = "";
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        await log.write(enc.encode(chunk));
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.includes('"listening"')) continue;
          try {
            const rec = JSON.parse(line);
            if (rec.msg === "listening") resolveAddr(String(rec.address));
          } catch { /* not JSON */ }
        }
      }
    } finally {
      log.close();
      rejectAddr(new Error(`cluster: ${name} exited before listening; see ${options.logFile}`));
    }
  })();
  exited.then((s) =>
    rejectAddr(new Error(`cluster: ${name} exited (${s.code}) early; see ${options.logFile}`))
  );
  try {
    const address = await addr;
    await waitForServing(address, "", options.readyTimeoutMs ?? 120_000);
    return {
      name,
      replica: options.replica ?? 0,
      address,
      pid: child.pid,
      logFile: options.logFile,
      child,
      exited,
    };
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await exited;
    throw err;
  }
}

/**
 * Starts the services (one process each; independent ones at once) and returns the running
 * cluster. On failure the processes already started are stopped.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const logDir = options.logDir ?? await Deno.makeTempDir({ prefix: "cotrain-cluster-" });
  await Deno.mkdir(logDir, { recursive: true });
  const cluster = new Cluster(logDir);
  const counts = new Map<ServiceName, number>();
  const plan = options.services.map((name) => {
    const replica = counts.get(name) ?? 0;
    counts.set(name, replica + 1);
    return { name, replica };
  });
  const start = (
    name: ServiceName,
    replica: number,
    extra: Record<string, string> = {},
    port?: number,
  ) =>
    startService(name, {
      port,
      appendLog: port !== undefined,
      store: options.store,
      logFile: `${logDir}/${name}${replica ? `-${replica}` : ""}.log`,
      replica,
      logLevel: options.logLevel,
      env: { ...options.env, ...options.serviceEnv?.[name], ...extra },
      readyTimeoutMs: options.readyTimeoutMs,
    });
  try {
    // The corruption-generator first when the evaluator is to use it.
    const viaService = options.corruptionViaService &&
      plan.some((p) => p.name === "corruption-generator");
    const first = viaService ? plan.filter((p) => p.name === "corruption-generator") : [];
    const rest = plan.filter((p) => !first.includes(p));
    const results = await Promise.allSettled(first.map((p) => start(p.name, p.replica)));
    for (const r of results) if (r.status === "fulfilled") cluster.processes.push(r.value);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const corruptionAddr = viaService ? cluster.address("corruption-generator") : "";
    const results2 = await Promise.allSettled(rest.map((p) =>
      start(
        p.name,
        p.replica,
        p.name === "evaluator" && corruptionAddr ? { COTRAIN_CORRUPTION_ADDR: corruptionAddr } : {},
      )
    ));
    for (const r of results2) if (r.status === "fulfilled") cluster.processes.push(r.value);
    const failed2 = results2.find((r) => r.status === "rejected");
    if (failed2) throw (failed2 as PromiseRejectedResult).reason;
    if (options.restart) {
      const extraOf = (p: ServiceProcess): Record<string, string> =>
        p.name === "evaluator" && corruptionAddr ? { COTRAIN_CORRUPTION_ADDR: corruptionAddr } : {};
      const restarter = (p: ServiceProcess) =>
        start(p.name, p.replica, extraOf(p), Number(p.address.split(":").pop()));
      for (const p of cluster.processes) cluster.watch(p, restarter);
    }
    return cluster;
  } catch (err) {
    await cluster.stop(2000);
    throw err;
  }
}
