/**
 * The server runtime of every cotrain service. A service is a .proto, a map of handlers and a
 * main.ts that calls {@linkcode serve}; the runtime gives it, for free: grpc.health.v1 (NOT_SERVING
 * until the service says it is ready), server reflection, message size limits, deadlines and
 * cancellation as an AbortSignal, the error mapping of DESIGN.md, an OpenTelemetry span per call,
 * JSON logs, `grpc.max_connection_age_ms` so clients rebalance, and graceful shutdown on
 * SIGTERM/SIGINT (health goes NOT_SERVING, running calls get the grace period, then are cut).
 *
 * Handlers are plain async functions: a unary handler returns the response; a server-streaming
 * handler is an async generator that yields messages (progress events, then the result).
 *
 * @example
 * ```ts
 * import { RpcServer } from "./server.ts";
 * const server = new RpcServer({
 *   name: "echo",
 *   protoFiles: ["cotrain/v1/tensor.proto"],
 *   services: {},
 * });
 * const port = await server.start();
 * server.setServing(true);
 * await server.shutdown();
 * ```
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { context, type Span } from "@opentelemetry/api";
import { type Config, loadConfig } from "../config/config.ts";
import { CotrainError } from "../errors.ts";
import { createLogger, type Logger } from "../log/log.ts";
import { endRpcSpan, ensureContextManager, startServerSpan } from "../telemetry/telemetry.ts";
import { loadProtos, serviceDefinition } from "./protos.ts";
import { statusName, toRpcStatus } from "./status.ts";

/** What a handler knows of its call. */
export interface CallContext {
  /** Full method path, e.g. `/cotrain.v1.Evaluator/Score`. */
  readonly method: string;
  /** Aborted when the client cancels, the deadline passes or the server shuts down. */
  readonly signal: AbortSignal;
  /** The client's deadline, if it set one. */
  readonly deadline?: Date;
  /** The request metadata. */
  readonly metadata: grpc.Metadata;
  /** A logger carrying the service, method and request id. */
  readonly log: Logger;
  /** A short id of this call, also in every log line of it. */
  readonly requestId: string;
  /** The server span of this call. */
  readonly span: Span;
  /** Throws CANCELLED or DEADLINE_EXCEEDED when the call is no longer wanted. */
  throwIfCancelled(): void;
}

/** A unary handler: request in, response out. */
// deno-lint-ignore no-explicit-any
export type UnaryHandler<Req = any, Res = any> = (req: Req, ctx: CallContext) => Promise<Res> | Res;
/** A server-streaming handler: an async generator of response messages. */
// deno-lint-ignore no-explicit-any
export type StreamHandler<Req = any, Res = any> = (
  req: Req,
  ctx: CallContext,
) => AsyncIterable<Res>;
/** The handlers of one service, keyed by the method names of the .proto (PascalCase). */
export type ServiceHandlers = Record<string, UnaryHandler | StreamHandler>;

/** Options of {@linkcode RpcServer}. */
export interface RpcServerOptions {
  /** The service's name in logs and health, e.g. `corruption-generator`. */
  name: string;
  /** .proto files (relative to protos/ or absolute) that define the services. */
  protoFiles: string[];
  /** Extra include dirs for absolute proto files (tests). */
  includeDirs?: string[];
  /** Handlers per fully qualified service name, e.g. `cotrain.v1.Evaluator`. */
  services: Record<string, ServiceHandlers>;
  /** Configuration; read from the environment when omitted. */
  config?: Config;
  /** Default port when the configuration does not set one. */
  defaultPort?: number;
  /** Logger; a JSON logger named after the service when omitted. */
  log?: Logger;
  /** Extra grpc-js server options (tests). */
  grpcOptions?: grpc.ServerOptions;
  /**
   * Facts about this process worth telling every caller, e.g. `{ backend: "wasm" }`: logged at
   * start and sent as initial metadata `cotrain-<key>` on every response (health checks included),
   * so `grpcurl -v` or any client sees which engine answered.
   */
  info?: Record<string, string>;
}

/** How close to its deadline a client reset counts as DEADLINE_EXCEEDED rather than CANCELLED. */
const DEADLINE_SLACK_MS = 250;

/** Thrown inside handlers' signal when the call ends early. */
class CallEnded extends CotrainError {}

/** A gRPC server with cotrain's runtime around its handlers. */
export class RpcServer {
  readonly name: string;
  readonly config: Config;
  readonly log: Logger;
  readonly health: HealthImplementation;
  readonly packageDefinition: protoLoader.PackageDefinition;
  /** See {@linkcode RpcServerOptions.info}. */
  readonly info: Record<string, string>;
  #server: grpc.Server;
  #serviceNames: string[];
  #port = 0;
  #active = new Set<AbortController>();
  #shuttingDown = false;

  constructor(options: RpcServerOptions) {
    this.name = options.name;
    this.config = options.config ??
      loadConfig(undefined, { defaultPort: options.defaultPort });
    this.log = options.log ?? createLogger({ service: options.name }, this.config.logLevel);
    this.packageDefinition = loadProtos(
      [...options.protoFiles, "grpc/health/v1/health.proto"],
      options.includeDirs ?? [],
    );
    this.#serviceNames = Object.keys(options.services);
    this.info = { ...options.info };
    this.#server = new grpc.Server({
      interceptors: [infoInterceptor(this.info)],
      "grpc.max_receive_message_length": this.config.maxMessageBytes,
      "grpc.max_send_message_length": this.config.maxMessageBytes,
      ...(this.config.maxConnectionAgeMs > 0
        ? { "grpc.max_connection_age_ms": this.config.maxConnectionAgeMs }
        : {}),
      ...options.grpcOptions,
    });
    const statuses: Record<string, "NOT_SERVING"> = { "": "NOT_SERVING" };
    for (const s of this.#serviceNames) statuses[s] = "NOT_SERVING";
    this.health = new HealthImplementation(statuses);
    this.health.addToServer(this.#server);
    new ReflectionService(this.packageDefinition).addToServer(this.#server);
    for (const [fqName, handlers] of Object.entries(options.services)) {
      this.#addService(fqName, handlers);
    }
  }

  /** The bound port (after {@linkcode start}). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` clients can dial (after {@linkcode start}). */
  get address(): string {
    const host = this.config.host === "0.0.0.0" ? "127.0.0.1" : this.config.host;
    return `${host.includes(":") ? `[${host}]` : host}:${this.#port}`;
  }

  /** Binds and starts serving (health stays NOT_SERVING until {@linkcode setServing}). */
  async start(): Promise<number> {
    await ensureContextManager();
    const host = this.config.host.includes(":") ? `[${this.config.host}]` : this.config.host;
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(
        `${host}:${this.config.port}`,
        grpc.ServerCredentials.createInsecure(),
        (err, port) => err ? reject(err) : resolve(port),
      );
    });
    this.log.info("listening", {
      address: `${this.config.host}:${this.#port}`,
      services: this.#serviceNames,
      max_message_bytes: this.config.maxMessageBytes,
      store: this.config.store,
      ...this.info,
    });
    return this.#port;
  }

  /** Sets the health of every service of this server (and of the server as a whole). */
  setServing(serving: boolean): void {
    const status = serving ? "SERVING" : "NOT_SERVING";
    this.health.setStatus("", status);
    for (const s of this.#serviceNames) this.health.setStatus(s, status);
    this.log.info("health", { status });
  }

  /**
   * Stops: health NOT_SERVING, no new calls, running calls get `graceMs` (config default) to
   * finish, then are cancelled (their signals abort) and the server is forced down.
   */
  async shutdown(graceMs = this.config.shutdownGraceMs): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.setServing(false);
    this.log.info("shutting down", { running_calls: this.#active.size, grace_ms: graceMs });
    const drained = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const result = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (result === "timeout") {
      for (const ac of this.#active) {
        ac.abort(new CallEnded("UNAVAILABLE", "server shutting down"));
      }
      this.#server.forceShutdown();
      this.log.warn("forced shutdown", { cut_calls: this.#active.size });
    }
    this.log.info("stopped");
  }

  /**
   * Shuts down gracefully on SIGTERM or SIGINT and exits the process. Returns a function that
   * removes the handlers again.
   */
  handleSignals(exit: (code: number) => void = Deno.exit): () => void {
    const onSignal = () => {
      this.shutdown().finally(() => exit(0));
    };
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    return () => {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
    };
  }

  #addService(fqName: string, handlers: ServiceHandlers): void {
    const def = serviceDefinition(this.packageDefinition, fqName);
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [methodName, handler] of Object.entries(handlers)) {
      const m = def[methodName];
      if (!m) {
        throw new Error(
          `${fqName} has no method ${methodName} (methods: ${Object.keys(def).join(", ")})`,
        );
      }
      if (m.requestStream) {
        throw new Error(
          `${fqName}/${methodName}: client streaming is not supported by the runtime`,
        );
      }
      impl[methodName] = m.responseStream
        ? this.#wrapStream(m.path, handler as StreamHandler)
        : this.#wrapUnary(m.path, handler as UnaryHandler);
    }
    this.#server.addService(def as grpc.ServiceDefinition, impl);
  }

  #beginCall(
    path: string,
    call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  ) {
    const requestId = crypto.randomUUID().slice(0, 8);
    const ac = new AbortController();
    this.#active.add(ac);
    const rawDeadline = call.getDeadline();
    const deadline = rawDeadline instanceof Date
      ? rawDeadline
      : (typeof rawDeadline === "number" && Number.isFinite(rawDeadline)
        ? new Date(rawDeadline)
        : undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expire = () =>
      ac.abort(new CallEnded("DEADLINE_EXCEEDED", `deadline exceeded for ${path}`));
    if (deadline) {
      const ms = deadline.getTime() - Date.now();
      if (ms <= 0) expire();
      else timer = setTimeout(expire, ms);
    }
    (call as unknown as { on(e: "cancelled", f: () => void): void }).on("cancelled", () => {
      // A client whose own deadline fires resets the stream just before ours does, and a reset
      // does not say why; one that lands this close to the deadline is taken as the deadline.
      if (deadline && deadline.getTime() - Date.now() <= DEADLINE_SLACK_MS) expire();
      else ac.abort(new CallEnded("CANCELLED", `${path} was cancelled by the client`));
    });
    const { span, ctx: otelCtx } = startServerSpan(path, call.metadata);
    const log = this.log.child({ method: path, request_id: requestId });
    const ctx: CallContext = {
      method: path,
      signal: ac.signal,
      deadline,
      metadata: call.metadata,
      log,
      requestId,
      span,
      throwIfCancelled: () => {
        if (ac.signal.aborted) throw ac.signal.reason;
      },
    };
    const started = performance.now();
    const finish = (err: unknown): { code: number; details: string } => {
      clearTimeout(timer);
      this.#active.delete(ac);
      let status: { code: number; details: string; errorId?: string } = { code: 0, details: "" };
      if (err !== undefined) {
        // A handler that failed because its call ended reports why the call ended.
        const cause = ac.signal.aborted ? ac.signal.reason : err;
        status = toRpcStatus(cause);
        const fields: Record<string, unknown> = {
          status: statusName(status.code),
          details: status.details,
          ms: Math.round(performance.now() - started),
        };
        if (status.code === grpc.status.INTERNAL) {
          log.error("handler failed", { ...fields, error_id: status.errorId, error: err });
        } else log.info("call failed", fields);
      } else {
        log.debug("call ok", { ms: Math.round(performance.now() - started) });
      }
      endRpcSpan(span, status.code, status.details);
      return status;
    };
    return { ctx, otelCtx, finish };
  }

  #wrapUnary(path: string, handler: UnaryHandler): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      const { ctx, otelCtx, finish } = this.#beginCall(path, call);
      context.with(otelCtx, async () => {
        try {
          ctx.throwIfCancelled();
          const res = await handler(call.request, ctx);
          finish(undefined);
          callback(null, res);
        } catch (err) {
          const status = finish(err);
          callback({ code: status.code, details: status.details } as grpc.ServiceError);
        }
      });
    };
  }

  #wrapStream(
    path: string,
    handler: StreamHandler,
  ): grpc.handleServerStreamingCall<unknown, unknown> {
    return (call) => {
      const { ctx, otelCtx, finish } = this.#beginCall(path, call);
      context.with(otelCtx, async () => {
        try {
          ctx.throwIfCancelled();
          for await (const msg of handler(call.request, ctx)) {
            ctx.throwIfCancelled();
            // One message at a time, each handed to HTTP/2 before the next: a status sent right
            // after (an error) then never overtakes messages still in the stream's buffer.
            await written(call, msg, ctx.signal);
          }
          finish(undefined);
          call.end();
        } catch (err) {
          const status = finish(err);
          if (!call.cancelled) {
            call.emit("error", { code: status.code, details: status.details });
          }
        }
      });
    };
  }
}

function written(
  stream: grpc.ServerWritableStream<unknown, unknown>,
  msg: unknown,
  signal: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    stream.write(msg, (err: Error | null | undefined) => {
      signal.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * Keeps a server process alive through stray async errors: an unhandled rejection or error event
 * is logged and swallowed instead of ending the process (handlers' own errors are already mapped
 * to statuses; this is the last line of defence).
 */
export function installProcessGuards(log: Logger): void {
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error("unhandled rejection", { error: e.reason });
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error("uncaught error", { error: e.error ?? e.message });
  });
}

/** Adds `cotrain-<key>: value` for every entry of `info` to the initial metadata of each response. */
function infoInterceptor(info: Record<string, string>): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      sendMetadata: (md, next) => {
        for (const [k, v] of Object.entries(info)) md.set(`cotrain-${k}`, v);
        next(md);
      },
    });
}

/** Options of {@linkcode serve}. */
export interface ServeOptions extends RpcServerOptions {
  /** Work to do before the service reports SERVING (load models, open the store). */
  ready?: (server: RpcServer) => Promise<void> | void;
}

/**
 * The main of a service: start the server, run `ready`, report SERVING, shut down gracefully on
 * SIGTERM/SIGINT. Returns the running server.
 */
export async function serve(options: ServeOptions): Promise<RpcServer> {
  const server = new RpcServer(options);
  installProcessGuards(server.log);
  server.handleSignals();
  await server.start();
  await options.ready?.(server);
  server.setServing(true);
  return server;
}
