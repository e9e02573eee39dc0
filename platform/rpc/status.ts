/**
 * The mapping from thrown errors to gRPC statuses (DESIGN.md "Contracts"): an error that carries
 * a canonical code (CotrainError, core's CoreError, a ZodError from request validation) becomes that
 * status with its message; anything else becomes INTERNAL with an id that is also logged with the
 * stack, so a person can find it without the server leaking internals.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { CotrainError, STATUS_CODES, type StatusName, statusOf } from "../errors.ts";

/** A status to send: numeric gRPC code and details text. */
export interface RpcStatus {
  code: grpc.status;
  details: string;
  /** Set for INTERNAL errors: the id written to the log beside the stack. */
  errorId?: string;
}

/** The canonical name of a numeric gRPC status code. */
export function statusName(code: number): StatusName | "OK" {
  if (code === 0) return "OK";
  for (const [name, n] of Object.entries(STATUS_CODES)) if (n === code) return name as StatusName;
  return "UNKNOWN";
}

function isZodError(err: unknown): err is { issues: { path: PropertyKey[]; message: string }[] } {
  return err instanceof Error && err.name === "ZodError" &&
    Array.isArray((err as { issues?: unknown }).issues);
}

function isGrpcServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "number" &&
    "metadata" in err && "details" in err;
}

/** Maps any thrown value to the status the client receives. */
export function toRpcStatus(err: unknown): RpcStatus {
  const name = statusOf(err);
  if (name) return { code: STATUS_CODES[name] as number, details: (err as Error).message };
  if (isZodError(err)) {
    const text = err.issues.map((i) => `${i.path.map(String).join(".") || "request"}: ${i.message}`)
      .join("; ");
    return { code: grpc.status.INVALID_ARGUMENT, details: text };
  }
  if (isGrpcServiceError(err)) {
    // An upstream call failed: pass its status on, saying where it came from.
    return { code: err.code, details: `upstream: ${err.details}` };
  }
  const errorId = crypto.randomUUID().slice(0, 8);
  return {
    code: grpc.status.INTERNAL,
    details: `internal error (id ${errorId}); the server log has the details`,
    errorId,
  };
}

/** Turns a failed client call into a CotrainError with the canonical name of its status. */
export function fromServiceError(err: unknown, where: string): Error {
  if (isGrpcServiceError(err)) {
    const name = statusName(err.code);
    const code = name === "OK" || name === "UNKNOWN" ? "INTERNAL" : name;
    const e = new CotrainError(code, `${where}: ${err.details}`, { cause: err });
    return e;
  }
  return err instanceof Error ? err : new Error(String(err));
}
