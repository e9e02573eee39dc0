/**
 * Client side of grpc.health.v1: check a service's status, or wait until it is SERVING (used by
 * the orchestrator and the demo before they send work, and by tests).
 *
 * @example
 * ```ts
 * import { waitForServing } from "./health.ts";
 * await waitForServing("127.0.0.1:50053", "cotrain.v1.CorruptionGenerator", 30_000);
 * ```
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { CotrainError } from "../errors.ts";
import { RpcClient } from "./client.ts";
import { fromServiceError } from "./status.ts";

/** A health client for `target`. */
export function healthClient(target: string | string[]): RpcClient {
  return new RpcClient({
    protoFiles: ["grpc/health/v1/health.proto"],
    service: "grpc.health.v1.Health",
    target,
    retries: 0,
    deadlineMs: 2000,
  });
}

/** The status of `service` ("" = the whole server): SERVING, NOT_SERVING, ... */
export async function checkHealth(target: string | string[], service = ""): Promise<string> {
  const client = healthClient(target);
  try {
    const res = await client.unary<{ status: string }>("Check", { service });
    return res.status;
  } finally {
    client.close();
  }
}

/**
 * What a server says about itself in the `cotrain-*` initial metadata of a health check (see
 * `RpcServerOptions.info`), e.g. `{ backend: "wasm" }`.
 */
export async function serverInfo(target: string | string[]): Promise<Record<string, string>> {
  const client = healthClient(target);
  try {
    return await new Promise((resolve, reject) => {
      const raw = client.raw as unknown as {
        Check(
          req: unknown,
          md: grpc.Metadata,
          opts: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null) => void,
        ): grpc.ClientUnaryCall;
      };
      const info: Record<string, string> = {};
      const call = raw.Check(
        { service: "" },
        new grpc.Metadata(),
        { deadline: new Date(Date.now() + 2000) },
        (err) => err ? reject(fromServiceError(err, `health at ${target}`)) : resolve(info),
      );
      call.on("metadata", (md) => {
        for (const [k, v] of Object.entries(md.getMap())) {
          if (k.startsWith("cotrain-")) info[k.slice("cotrain-".length)] = String(v);
        }
      });
    });
  } finally {
    client.close();
  }
}

/** Polls until `service` is SERVING; throws UNAVAILABLE after `timeoutMs`. */
export async function waitForServing(
  target: string | string[],
  service = "",
  timeoutMs = 30_000,
): Promise<void> {
  const client = healthClient(target);
  const end = Date.now() + timeoutMs;
  let last = "no answer";
  try {
    while (Date.now() < end) {
      try {
        const res = await client.unary<{ status: string }>("Check", { service });
        if (res.status === "SERVING") return;
        last = res.status;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
  throw CotrainError.unavailable(
    `${service || "server"} at ${target} not SERVING after ${timeoutMs} ms (last: ${last})`,
  );
}
