/**
 * Configuration from the environment (COTRAIN_* and S3_*), validated once at start-up with zod so
 * a wrong value stops the process with a message that names the variable and what it accepts.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | COTRAIN_HOST | 127.0.0.1 | address a service binds (0.0.0.0 in a container) |
 * | COTRAIN_PORT | the service's own default | port a service binds (0 = any free port) |
 * | COTRAIN_STORE | file://$PWD/runs/store | object store root: file:///abs/dir or s3://bucket/prefix |
 * | COTRAIN_MAX_MESSAGE_BYTES | 67108864 | largest gRPC message sent or received |
 * | COTRAIN_INLINE_LIMIT_BYTES | 4194304 | largest tensor sent inline; larger ones go as TensorRef |
 * | COTRAIN_MAX_CONNECTION_AGE_MS | 0 (off) | servers close connections this old, so clients rebalance (see README: Deno 2.9 bug) |
 * | COTRAIN_SHUTDOWN_GRACE_MS | 10000 | on SIGTERM, time given to running calls before they are cut |
 * | COTRAIN_DEADLINE_MS | 60000 | default deadline of client calls (streams: none) |
 * | COTRAIN_BACKEND | wasm | compute backend: wasm, tensorflow, webgpu, cpu |
 * | COTRAIN_TRAIN_ENGINE | onnxruntime | training steps: onnxruntime (one graph per step, core/engine/graph) or tfjs |
 * | COTRAIN_TRAIN_THREADS | every core | onnxruntime threads of a training step |
 * | COTRAIN_TRAIN_SPIN | 1 | training threads spin between operators (0: sleep; for shared cores) |
 * | COTRAIN_TRAIN_NCHWC | 1 | training convolutions on onnxruntime's NCHWc kernels where the CPU has them (0: plain Conv) |
 * | COTRAIN_LOG_LEVEL | info | debug, info, warn, error |
 * | S3_ENDPOINT | - | e.g. http://minio:9000 (required for s3:// stores) |
 * | S3_ACCESS_KEY, S3_SECRET_KEY | - | credentials (required for s3:// stores) |
 * | S3_REGION | us-east-1 | region |
 * | OTEL_DENO | false | export traces with Deno's built-in OpenTelemetry (OTEL_EXPORTER_OTLP_ENDPOINT) |
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const cfg = loadConfig({ COTRAIN_PORT: "0" }, { defaultPort: 50053 });
 * console.log(cfg.port, cfg.store);
 * ```
 * @module
 */
import { z } from "zod";
import { CotrainError } from "../errors.ts";

const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().trim().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(
    z.number().int().min(min).max(max),
  );

const boolFrom = z.string().trim().toLowerCase().pipe(z.enum(["true", "false", "1", "0", ""]))
  .transform((v) => v === "true" || v === "1");

const schema = z.object({
  COTRAIN_HOST: z.string().trim().min(1).default("127.0.0.1"),
  COTRAIN_PORT: intFrom(0, 65535).optional(),
  COTRAIN_STORE: z.string().trim().regex(
    /^(file:\/\/\/|s3:\/\/[^/]+)/,
    "must be file:///absolute/dir or s3://bucket[/prefix]",
  ).optional(),
  COTRAIN_MAX_MESSAGE_BYTES: intFrom(1024).default(64 * 1024 * 1024),
  COTRAIN_INLINE_LIMIT_BYTES: intFrom(0).default(4 * 1024 * 1024),
  // off by default: the GOAWAY it sends can crash a Deno 2.9 client (denoland/deno#36788)
  COTRAIN_MAX_CONNECTION_AGE_MS: intFrom(0).default(0),
  COTRAIN_SHUTDOWN_GRACE_MS: intFrom(0).default(10_000),
  COTRAIN_DEADLINE_MS: intFrom(1).default(60_000),
  COTRAIN_BACKEND: z.enum(["wasm", "tensorflow", "webgpu", "cpu"]).default("wasm"),
  COTRAIN_TRAIN_ENGINE: z.enum(["onnxruntime", "tfjs"]).default("onnxruntime"),
  COTRAIN_TRAIN_THREADS: z.coerce.number().int().min(1).max(1024).optional(),
  COTRAIN_TRAIN_SPIN: z.enum(["0", "1", "true", "false"]).default("1"),
  COTRAIN_TRAIN_NCHWC: z.enum(["0", "1", "true", "false"]).default("1"),
  COTRAIN_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  S3_ENDPOINT: z.string().trim().regex(/^https?:\/\/[^/]+/, "must be http(s)://host:port")
    .optional(),
  S3_ACCESS_KEY: z.string().optional(),
  S3_SECRET_KEY: z.string().optional(),
  S3_REGION: z.string().trim().default("us-east-1"),
  OTEL_DENO: boolFrom.default(false),
});

/** The environment variables {@linkcode loadConfig} reads. */
export const ENV_VARS: readonly string[] = Object.keys(schema.shape);

/** The validated configuration of one process. */
export interface Config {
  host: string;
  port: number;
  store: string;
  maxMessageBytes: number;
  inlineLimitBytes: number;
  maxConnectionAgeMs: number;
  shutdownGraceMs: number;
  deadlineMs: number;
  backend: "wasm" | "tensorflow" | "webgpu" | "cpu";
  /** Engine of training steps (core/engine/graph/program.ts reads the same variable). */
  trainEngine: "onnxruntime" | "tfjs";
  logLevel: "debug" | "info" | "warn" | "error";
  s3: { endpoint?: string; accessKey?: string; secretKey?: string; region: string };
  otel: boolean;
}

/** Per-service defaults. */
export interface ConfigDefaults {
  /** The port a service uses when COTRAIN_PORT is not set. */
  defaultPort?: number;
}

/** The environment as a plain record (all of it, or nothing when env access is not granted). */
export function processEnv(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {};
  }
}

/**
 * Validates `env` and returns the configuration; throws a CotrainError (INVALID_ARGUMENT) whose
 * message lists every bad variable with what it accepts.
 */
export function loadConfig(
  env: Record<string, string | undefined> = processEnv(),
  defaults: ConfigDefaults = {},
): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== "") picked[key] = v;
  }
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? "?");
      return `${name}=${JSON.stringify(picked[name] ?? "")}: ${i.message}`;
    });
    throw CotrainError.invalidArgument(`bad configuration: ${lines.join("; ")}`);
  }
  const c = parsed.data;
  const store = c.COTRAIN_STORE ?? `file://${Deno.cwd()}/runs/store`;
  if (store.startsWith("s3://") && !(c.S3_ENDPOINT && c.S3_ACCESS_KEY && c.S3_SECRET_KEY)) {
    throw CotrainError.invalidArgument(
      `bad configuration: COTRAIN_STORE=${store} needs S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY`,
    );
  }
  return {
    host: c.COTRAIN_HOST,
    port: c.COTRAIN_PORT ?? defaults.defaultPort ?? 0,
    store,
    maxMessageBytes: c.COTRAIN_MAX_MESSAGE_BYTES,
    inlineLimitBytes: c.COTRAIN_INLINE_LIMIT_BYTES,
    maxConnectionAgeMs: c.COTRAIN_MAX_CONNECTION_AGE_MS,
    shutdownGraceMs: c.COTRAIN_SHUTDOWN_GRACE_MS,
    deadlineMs: c.COTRAIN_DEADLINE_MS,
    backend: c.COTRAIN_BACKEND,
    trainEngine: c.COTRAIN_TRAIN_ENGINE,
    logLevel: c.COTRAIN_LOG_LEVEL,
    s3: {
      endpoint: c.S3_ENDPOINT,
      accessKey: c.S3_ACCESS_KEY,
      secretKey: c.S3_SECRET_KEY,
      region: c.S3_REGION,
    },
    otel: c.OTEL_DENO,
  };
}
