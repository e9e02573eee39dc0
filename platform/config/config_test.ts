import { assertEquals, assertThrowsCode } from "../../test/assert.ts";
import { loadConfig } from "./config.ts";

Deno.test("config: defaults", () => {
  const c = loadConfig({}, { defaultPort: 50053 });
  assertEquals(c.port, 50053);
  assertEquals(c.host, "127.0.0.1");
  assertEquals(c.maxMessageBytes, 64 * 1024 * 1024);
  assertEquals(c.store, `file://${Deno.cwd()}/runs/store`);
  assertEquals(c.backend, "wasm");
  assertEquals(c.trainEngine, "onnxruntime");
  assertEquals(c.otel, false);
});

Deno.test("config: values are parsed", () => {
  const c = loadConfig({
    COTRAIN_PORT: "0",
    COTRAIN_STORE: "s3://bucket/pre",
    S3_ENDPOINT: "http://127.0.0.1:9000",
    S3_ACCESS_KEY: "a",
    S3_SECRET_KEY: "b",
    COTRAIN_MAX_MESSAGE_BYTES: "2048",
    OTEL_DENO: "true",
  });
  assertEquals(c.port, 0);
  assertEquals(c.store, "s3://bucket/pre");
  assertEquals(c.maxMessageBytes, 2048);
  assertEquals(c.otel, true);
});

Deno.test("config: bad values name the variable", () => {
  const err = assertThrowsCode(
    () => loadConfig({ COTRAIN_PORT: "70000", COTRAIN_BACKEND: "gpu" }),
    "INVALID_ARGUMENT",
  );
  if (!err.message.includes("COTRAIN_PORT") || !err.message.includes("COTRAIN_BACKEND")) {
    throw new Error(`message should name both variables: ${err.message}`);
  }
  assertThrowsCode(() => loadConfig({ COTRAIN_STORE: "ftp://x" }), "INVALID_ARGUMENT");
  const e = assertThrowsCode(
    () => loadConfig({ COTRAIN_TRAIN_ENGINE: "torch" }),
    "INVALID_ARGUMENT",
  );
  if (!e.message.includes("COTRAIN_TRAIN_ENGINE")) throw new Error(e.message);
  assertEquals(loadConfig({ COTRAIN_TRAIN_ENGINE: "tfjs" }).trainEngine, "tfjs");
  assertThrowsCode(() => loadConfig({ COTRAIN_STORE: "s3://bucket" }), "INVALID_ARGUMENT");
});
