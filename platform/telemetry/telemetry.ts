/**
 * OpenTelemetry for cotrain's gRPC calls: server spans made by the rpc runtime for every handled
 * call, and a grpc-js client interceptor that opens a client span and carries the W3C
 * `traceparent` in gRPC metadata, so one trace follows a request through every service.
 *
 * Spans go to whatever tracer provider `@opentelemetry/api` has: with `OTEL_DENO=true` that is
 * Deno's built-in exporter (OTLP, configured by the usual OTEL_EXPORTER_OTLP_* variables); without
 * it, spans are no-ops but the trace context still propagates. Tests register an in-memory
 * provider.
 *
 * Attributes follow the OpenTelemetry RPC semantic conventions: `rpc.system` = `grpc`,
 * `rpc.service`, `rpc.method`, `rpc.grpc.status_code`.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { clientInterceptor } from "./telemetry.ts";
 * const options: grpc.ChannelOptions & grpc.ClientOptions = { interceptors: [clientInterceptor] };
 * ```
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

const propagator = new W3CTraceContextPropagator();

/** The tracer of cotrain's rpc layer. */
export function rpcTracer(): Tracer {
  return trace.getTracer("cotrain.rpc", "0.1.0");
}

const metadataSetter = {
  set(carrier: grpc.Metadata, key: string, value: string) {
    carrier.set(key, value);
  },
};

const metadataGetter = {
  get(carrier: grpc.Metadata, key: string): string | undefined {
    const v = carrier.get(key);
    return v.length > 0 ? String(v[0]) : undefined;
  },
  keys(carrier: grpc.Metadata): string[] {
    return Object.keys(carrier.getMap());
  },
};

/** Writes the trace context of `ctx` into gRPC metadata (`traceparent`, `tracestate`). */
export function injectTraceContext(ctx: Context, metadata: grpc.Metadata): void {
  propagator.inject(ctx, metadata, metadataSetter);
}

/** Reads the trace context carried by gRPC metadata into a new context based on `base`. */
export function extractTraceContext(
  metadata: grpc.Metadata,
  base: Context = context.active(),
): Context {
  return propagator.extract(base, metadata, metadataGetter);
}

/** Splits `/pkg.Service/Method` into its service and method names. */
export function splitMethodPath(path: string): { service: string; method: string } {
  const parts = path.split("/").filter((p) => p.length > 0);
  return { service: parts[0] ?? "", method: parts[1] ?? "" };
}

function rpcAttributes(path: string) {
  const { service, method } = splitMethodPath(path);
  return { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
}

/** Ends `span` with the gRPC status `code` (0 = OK) and an error message when not OK. */
export function endRpcSpan(span: Span, code: number, message?: string): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}

/**
 * Starts the server span of one call, as a child of the trace context in its metadata.
 * Returns the span and the context that handlers should run in.
 */
export function startServerSpan(
  path: string,
  metadata: grpc.Metadata,
): { span: Span; ctx: Context } {
  const parent = extractTraceContext(metadata);
  const span = rpcTracer().startSpan(
    path.replace(/^\//, ""),
    { kind: SpanKind.SERVER, attributes: rpcAttributes(path) },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

/**
 * A grpc-js client interceptor: starts a client span for every call (child of the active
 * context), injects `traceparent` into the outgoing metadata and ends the span with the status.
 */
export const clientInterceptor: grpc.Interceptor = (options, nextCall) => {
  const path = options.method_definition.path;
  const span = rpcTracer().startSpan(
    path.replace(/^\//, ""),
    { kind: SpanKind.CLIENT, attributes: rpcAttributes(path) },
    context.active(),
  );
  const spanCtx = trace.setSpan(context.active(), span);
  return new grpc.InterceptingCall(nextCall(options), {
    start(metadata, _listener, next) {
      injectTraceContext(spanCtx, metadata);
      const withSpanEnd = new grpc.ListenerBuilder()
        .withOnReceiveStatus((status, nextStatus) => {
          endRpcSpan(span, status.code, status.details);
          nextStatus(status);
        })
        .build();
      next(metadata, withSpanEnd);
    },
  });
};

let contextManagerChecked = false;

/**
 * Makes `context.with` carry the active span across `await`s (AsyncLocalStorage), unless a
 * context manager is already registered (Deno's built-in OpenTelemetry registers its own).
 */
export async function ensureContextManager(): Promise<void> {
  if (contextManagerChecked) return;
  contextManagerChecked = true;
  const { AsyncLocalStorageContextManager } = await import(
    "@opentelemetry/context-async-hooks"
  );
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
}
