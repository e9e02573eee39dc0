import { SpanKind, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { assert, assertEquals } from "../../test/assert.ts";
import { startTestServer, testClient } from "../../test/fixtures/test_service.ts";
import { splitMethodPath } from "./telemetry.ts";

Deno.test("telemetry: client and server spans with rpc attributes share one trace", async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  const server = await startTestServer();
  const client = testClient(server.address);
  try {
    const res = await client.unary<{ trace_id: string }>("WhoAmI", {});
    await client.unary("Fail", { kind: "not_found" }).catch(() => {});
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    const who = spans.filter((s) => s.name === "cotrain.test.TestService/WhoAmI");
    const serverSpan = who.find((s) => s.kind === SpanKind.SERVER);
    const clientSpan = who.find((s) => s.kind === SpanKind.CLIENT);
    assert(serverSpan && clientSpan, `spans: ${spans.map((s) => `${s.name}/${s.kind}`)}`);
    assertEquals(serverSpan.spanContext().traceId, clientSpan.spanContext().traceId);
    assertEquals(serverSpan.spanContext().traceId, res.trace_id);
    assertEquals(serverSpan.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
    assertEquals(serverSpan.attributes["rpc.system"], "grpc");
    assertEquals(serverSpan.attributes["rpc.service"], "cotrain.test.TestService");
    assertEquals(serverSpan.attributes["rpc.method"], "WhoAmI");
    assertEquals(serverSpan.attributes["rpc.grpc.status_code"], 0);
    const failed = spans.filter((s) => s.name === "cotrain.test.TestService/Fail");
    assertEquals(failed.length, 2);
    for (const s of failed) assertEquals(s.attributes["rpc.grpc.status_code"], 5);
  } finally {
    client.close();
    await server.shutdown();
    trace.disable();
  }
});

Deno.test("telemetry: method paths split into service and method", () => {
  assertEquals(splitMethodPath("/cotrain.v1.Evaluator/Score"), {
    service: "cotrain.v1.Evaluator",
    method: "Score",
  });
});
