/**
 * Errors that carry a canonical status code, so the rpc runtime can answer with the right gRPC
 * status and a message a person can act on.
 *
 * The codes are the canonical (google.rpc.Code) names, not gRPC numbers, so that code outside
 * platform/ can raise them by duck typing: any thrown `Error` whose `code` is one of
 * {@linkcode STATUS_CODES} is mapped to that status (core/ has its own `CoreError` of the same shape
 * and never imports platform/).
 *
 * @example
 * ```ts
 * import { CotrainError } from "./errors.ts";
 * throw CotrainError.invalidArgument("tensor.data: 12 bytes, expected 16 for float32 [2,2]");
 * ```
 * @module
 */

/** Canonical status names used by cotrain, with their gRPC status numbers. */
export const STATUS_CODES = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
} as const;

/** One of the canonical status names. */
export type StatusName = keyof typeof STATUS_CODES;

/** An error with a canonical status code; the rpc runtime answers with that status. */
export class CotrainError extends Error {
  /** The canonical status name, e.g. `INVALID_ARGUMENT`. */
  readonly code: StatusName;

  constructor(code: StatusName, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CotrainError";
    this.code = code;
  }

  /** Bad input: shape, dtype, byte length, unknown name, out-of-range value. */
  static invalidArgument(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("INVALID_ARGUMENT", message, options);
  }
  /** A URI, key or model that does not exist. */
  static notFound(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("NOT_FOUND", message, options);
  }
  /** The system is not in the state the call needs. */
  static failedPrecondition(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("FAILED_PRECONDITION", message, options);
  }
  /** A configured limit was exceeded. */
  static resourceExhausted(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("RESOURCE_EXHAUSTED", message, options);
  }
  /** Stored bytes do not match their checksum. */
  static dataLoss(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("DATA_LOSS", message, options);
  }
  /** A dependency (object store, another service) cannot be reached; retrying may help. */
  static unavailable(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("UNAVAILABLE", message, options);
  }
  /** A bug or an unexpected state. */
  static internal(message: string, options?: ErrorOptions): CotrainError {
    return new CotrainError("INTERNAL", message, options);
  }
}

/** The canonical status name of `err` when it carries one (by duck typing), else undefined. */
export function statusOf(err: unknown): StatusName | undefined {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code in STATUS_CODES && code !== "UNKNOWN") {
      return code as StatusName;
    }
  }
  return undefined;
}
