/**
 * Client helpers for calling cotrain services (and other gRPC services): a default deadline on
 * every unary call, retries with exponential backoff on UNAVAILABLE (requests are idempotent by
 * contract), round_robin over a list of addresses or a `dns:///` name, OpenTelemetry context
 * propagation, message limits from the configuration, and failures as CotrainErrors with the
 * canonical status name.
 *
 * @example
 * ```ts
 * import { RpcClient } from "./client.ts";
 * const client = new RpcClient({
 *   protoFiles: ["inference/open_inference_grpc.proto"],
 *   service: "inference.GRPCInferenceService",
 *   target: ["127.0.0.1:50051", "127.0.0.1:50052"],
 * });
 * const live = await client.unary("ServerLive", {});
 * client.close();
 * ```
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { CotrainError } from "../errors.ts";
import { clientInterceptor } from "../telemetry/telemetry.ts";
import { loadProtos, serviceDefinition } from "./protos.ts";
import { fromServiceError } from "./status.ts";

/** Options of {@linkcode RpcClient}. */
export interface RpcClientOptions {
  /** .proto files (relative to protos/ or absolute) that define the service. */
  protoFiles: string[];
  /** Extra include dirs for absolute proto files. */
  includeDirs?: string[];
  /** Fully qualified service name, e.g. `cotrain.v1.Evaluator`. */
  service: string;
  /**
   * Where the service is: `host:port`, a list of them (round_robin over all), a comma-separated
   * list, or a gRPC target such as `dns:///evaluator.cotrain.svc:50054`.
   */
  target: string | string[];
  /** Deadline of unary calls in ms (default 60 s). Streams have none unless a call sets one. */
  deadlineMs?: number;
  /** How many times a call failing with UNAVAILABLE is retried (default 4). */
  retries?: number;
  /** First backoff in ms, doubled each retry, with jitter (default 100). */
  backoffMs?: number;
  /** Largest message sent or received (default 64 MiB). */
  maxMessageBytes?: number;
  /** Extra channel options. */
  channelOptions?: grpc.ChannelOptions;
}

/** Per-call options. */
export interface CallOptions {
  /** Deadline of this call in ms from now (overrides the client's default; 0 = none). */
  deadlineMs?: number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
  /** Extra request metadata. */
  metadata?: Record<string, string>;
  /** Retries for this call (overrides the client's). */
  retries?: number;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}:\d+$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]:\d+$/;

/**
 * Turns a list of addresses into one gRPC target: IP literals become an `ipv4:`/`ipv6:` list
 * (one subchannel each, balanced round_robin); a single name stays as it is (`dns:///` by default).
 */
export function normalizeTarget(target: string | string[]): string {
  const list = (Array.isArray(target) ? target : target.split(","))
    .map((t) => t.trim()).filter((t) => t.length > 0);
  if (list.length === 0) throw CotrainError.invalidArgument("target: no address given");
  if (list.length === 1) {
    const t = list[0];
    if (t.includes(":///") || /^(ipv4|ipv6|unix|dns):/.test(t)) return t;
    if (t.startsWith("localhost:")) return `ipv4:127.0.0.1:${t.slice("localhost:".length)}`;
    return t;
  }
  const mapped = list.map((t) => t.startsWith("localhost:") ? `127.0.0.1:${t.slice(10)}` : t);
  if (mapped.every((t) => IPV4.test(t))) return `ipv4:${mapped.join(",")}`;
  if (mapped.every((t) => IPV6.test(t))) return `ipv6:${mapped.join(",")}`;
  throw CotrainError.invalidArgument(
    `target: a list must hold IP literals of one family (got ${list.join(",")}); ` +
      "for host names use one dns:///name:port target whose DNS lists every replica",
  );
}

type GrpcMethod = (...args: unknown[]) => grpc.ClientUnaryCall | grpc.ClientReadableStream<unknown>;

/** A client of one service with cotrain's call policy. */
export class RpcClient {
  readonly service: string;
  readonly target: string;
  #client: grpc.Client;
  #methods: Record<string, { path: string; responseStream: boolean }>;
  #deadlineMs: number;
  #retries: number;
  #backoffMs: number;

  constructor(options: RpcClientOptions) {
    const def = loadProtos(options.protoFiles, options.includeDirs ?? []);
    const svc = serviceDefinition(def, options.service);
    this.service = options.service;
    this.target = normalizeTarget(options.target);
    this.#deadlineMs = options.deadlineMs ?? 60_000;
    this.#retries = options.retries ?? 4;
    this.#backoffMs = options.backoffMs ?? 100;
    this.#methods = {};
    for (const [name, m] of Object.entries(svc)) {
      this.#methods[name] = { path: m.path, responseStream: m.responseStream };
    }
    const max = options.maxMessageBytes ?? 64 * 1024 * 1024;
    const Ctor = grpc.makeGenericClientConstructor(svc as grpc.ServiceDefinition, options.service);
    this.#client = new Ctor(this.target, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": max,
      "grpc.max_send_message_length": max,
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      "grpc.enable_retries": 0,
      interceptors: [clientInterceptor],
      ...options.channelOptions,
    });
  }

  /** The underlying grpc-js client (for raw calls in tests). */
  get raw(): grpc.Client {
    return this.#client;
  }

  /** Waits until the channel is connected, or throws UNAVAILABLE after `timeoutMs`. */
  waitForReady(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (err) => {
        if (err) {
          reject(CotrainError.unavailable(`${this.service} at ${this.target}: ${err.message}`));
        } else resolve();
      });
    });
  }

  #method(name: string) {
    const m = this.#methods[name];
    if (!m) {
      throw CotrainError.invalidArgument(
        `${this.service} has no method ${name} (methods: ${Object.keys(this.#methods).join(", ")})`,
      );
    }
    return m;
  }

  #metadata(extra?: Record<string, string>): grpc.Metadata {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(extra ?? {})) md.set(k, v);
    return md;
  }

  /** Calls a unary method; retries on UNAVAILABLE with backoff inside the deadline. */
  async unary<Res = Record<string, unknown>>(
    method: string,
    request: unknown,
    options: CallOptions = {},
  ): Promise<Res> {
    const m = this.#method(method);
    if (m.responseStream) {
      throw CotrainError.invalidArgument(`${method} is server-streaming: use stream()`);
    }
    const deadlineMs = options.deadlineMs ?? this.#deadlineMs;
    const deadline = deadlineMs > 0 ? Date.now() + deadlineMs : Infinity;
    const retries = options.retries ?? this.#retries;
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#unaryOnce<Res>(m.path, request, deadline, options);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const wait = this.#backoffMs * 2 ** attempt * (0.5 + Math.random());
        if (
          code !== grpc.status.UNAVAILABLE || attempt >= retries || options.signal?.aborted ||
          Date.now() + wait >= deadline
        ) {
          throw fromServiceError(err, `${this.service}/${method} at ${this.target}`);
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  #unaryOnce<Res>(
    path: string,
    request: unknown,
    deadline: number,
    options: CallOptions,
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const fn = (this.#client as unknown as Record<string, GrpcMethod>)[
        path.split("/").pop() as string
      ];
      const call = fn.call(
        this.#client,
        request,
        this.#metadata(options.metadata),
        { deadline: Number.isFinite(deadline) ? new Date(deadline) : undefined },
        (err: grpc.ServiceError | null, res: Res) => {
          options.signal?.removeEventListener("abort", onAbort);
          if (err) reject(err);
          else resolve(res);
        },
      ) as grpc.ClientUnaryCall;
      const onAbort = () => call.cancel();
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Calls a server-streaming method and yields its messages. Breaking out of the loop cancels
   * the call. No retries: a stream that failed midway is re-sent by the caller (requests are
   * idempotent and resume from their last checkpoint).
   */
  async *stream<Res = Record<string, unknown>>(
    method: string,
    request: unknown,
    options: CallOptions = {},
  ): AsyncGenerator<Res> {
    const m = this.#method(method);
    if (!m.responseStream) throw CotrainError.invalidArgument(`${method} is unary: use unary()`);
    const deadlineMs = options.deadlineMs ?? 0;
    const fn = (this.#client as unknown as Record<string, GrpcMethod>)[method];
    const call = fn.call(
      this.#client,
      request,
      this.#metadata(options.metadata),
      { deadline: deadlineMs > 0 ? new Date(Date.now() + deadlineMs) : undefined },
    ) as grpc.ClientReadableStream<Res>;
    const onAbort = () => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // Our own queue rather than the stream's async iterator, which drops messages already
    // delivered when the final status is an error. (grpc-js itself also discards messages it has
    // not yet handed over once an error status arrives: progress events are best effort.)
    const queue: Res[] = [];
    let failure: unknown = null;
    let ended = false;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    call.on("data", (msg: Res) => {
      queue.push(msg);
      notify();
    });
    call.on("error", (err: unknown) => {
      failure = err;
      ended = true;
      notify();
    });
    call.on("end", () => {
      ended = true;
      notify();
    });
    try {
      while (true) {
        if (queue.length > 0) {
          yield queue.shift() as Res;
          continue;
        }
        if (ended) break;
        await new Promise<void>((r) => (wake = r));
      }
      if (failure) throw fromServiceError(failure, `${this.service}/${method} at ${this.target}`);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }
}
