/**
 * The error type of core/: an `Error` that carries a canonical status name in `code`.
 *
 * core/ never imports platform/; the rpc runtime maps any thrown `Error` whose `code` is a
 * canonical status name to that gRPC status by duck typing, so a `CoreError` raised deep inside a
 * codec reaches the caller as, e.g., `INVALID_ARGUMENT` with its message intact.
 *
 * Messages say what is wrong, where, and what was expected, e.g.
 * `npy: header 'shape' is (2, -1); expected a tuple of non-negative integers`.
 *
 * @example
 * ```ts
 * import { CoreError } from "./errors.ts";
 *
 * function checkRank(shape: number[]): void {
 *   if (shape.length !== 4) {
 *     throw CoreError.invalidArgument(`images: rank ${shape.length}, expected 4 (NHWC)`);
 *   }
 * }
 * checkRank([1, 64, 64, 3]);
 * ```
 * @module
 */

/**
 * The canonical status names that core/ raises.

 * @example
 * ```ts
 * import type { CoreErrorCode } from "./errors.ts";
 * const code: CoreErrorCode = "NOT_FOUND";
 * console.log(code); // "NOT_FOUND"
 * ```
 */
export type CoreErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "FAILED_PRECONDITION"
  | "DATA_LOSS"
  | "RESOURCE_EXHAUSTED"
  | "INTERNAL";

/**
 * An error with a canonical status name; the rpc runtime answers with that status.
 *
 * @example
 * ```ts
 * import { CoreError } from "./errors.ts";
 *
 * try {
 *   throw new CoreError("DATA_LOSS", "weights.safetensors: sha256 differs from the manifest");
 * } catch (err) {
 *   if (err instanceof CoreError) console.log(err.code); // "DATA_LOSS"
 * }
 * ```
 */
export class CoreError extends Error {
  /** The canonical status name, e.g. `INVALID_ARGUMENT`. */
  readonly code: CoreErrorCode;

  /** Makes an error with status `code` and a message a person can act on. */
  constructor(code: CoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CoreError";
    this.code = code;
  }

  /**
   * Bad input: shape, dtype, byte length, malformed file, out-of-range value.
   *
   * @example
   * ```ts
   * import { CoreError } from "./errors.ts";
   * const err = CoreError.invalidArgument("npy: magic is not \\x93NUMPY");
   * console.log(err.code); // "INVALID_ARGUMENT"
   * ```
   */
  static invalidArgument(message: string, options?: ErrorOptions): CoreError {
    return new CoreError("INVALID_ARGUMENT", message, options);
  }

  /**
   * A configured limit was exceeded (memory, pixels, bytes).
   *
   * @example
   * ```ts
   * import { CoreError } from "./errors.ts";
   * const err = CoreError.resourceExhausted("npz: 5 GiB uncompressed, limit 4 GiB");
   * console.log(err.code); // "RESOURCE_EXHAUSTED"
   * ```
   */
  static resourceExhausted(message: string, options?: ErrorOptions): CoreError {
    return new CoreError("RESOURCE_EXHAUSTED", message, options);
  }

  /**
   * A bug or an unexpected state of the host (not the caller's fault).
   *
   * @example
   * ```ts
   * import { CoreError } from "./errors.ts";
   * const err = CoreError.internal("codec: host is big-endian");
   * console.log(err.code); // "INTERNAL"
   * ```
   */
  static internal(message: string, options?: ErrorOptions): CoreError {
    return new CoreError("INTERNAL", message, options);
  }
}
