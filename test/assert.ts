/**
 * Small assertion helpers for tests (JSR's @std/assert is not reachable from these machines).
 * @module
 */
import { deepStrictEqual } from "node:assert/strict";

/** Fails unless `actual` deep-equals `expected`. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  if (msg === undefined) deepStrictEqual(actual, expected);
  else deepStrictEqual(actual, expected, msg);
}

/** Fails unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Fails unless |actual - expected| <= tol. */
export function assertClose(actual: number, expected: number, tol: number, msg = ""): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${msg} expected ${expected} +- ${tol}, got ${actual}`);
  }
}

/** Runs `fn`, expects it to throw an error whose `code` equals `code`; returns the error. */
export function assertThrowsCode(fn: () => unknown, code: string | number): Error {
  try {
    fn();
  } catch (e) {
    const got = (e as { code?: unknown }).code;
    if (got !== code) throw new Error(`expected code ${code}, got ${String(got)}: ${e}`);
    return e as Error;
  }
  throw new Error(`expected an error with code ${code}, nothing was thrown`);
}

/** Awaits `p`, expects a rejection whose `code` equals `code`; returns the error. */
export async function assertRejectsCode(
  p: Promise<unknown> | (() => Promise<unknown>),
  code: string | number,
): Promise<Error & { code: unknown; details?: string }> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    const got = (e as { code?: unknown }).code;
    if (got !== code) throw new Error(`expected code ${code}, got ${String(got)}: ${e}`);
    return e as Error & { code: unknown; details?: string };
  }
  throw new Error(`expected a rejection with code ${code}, the call succeeded`);
}
