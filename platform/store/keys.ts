/**
 * Object keys, shared by every store: validation that keeps a key inside its store's root, the
 * URI form of a key, and the sha256 used to verify stored bytes.
 *
 * A key is a `/`-separated relative path such as `runs/demo/ckpt.safetensors`. The same rules
 * hold in every backend, so a key valid in a FileStore is valid in an S3Store and the other way
 * round. Refused, with `INVALID_ARGUMENT` naming the key:
 *
 * - the empty key, a key over 1024 UTF-8 bytes, or a segment over 255 bytes;
 * - absolute keys (`/etc/passwd`) and drive-letter keys (`C:/x`);
 * - empty segments (`a//b`, a trailing `/`), `.` and `..` segments, also when percent-encoded
 *   (`%2e%2e`), since some layer may decode them;
 * - backslashes, NUL and other control characters;
 * - segments starting with {@linkcode RESERVED_PREFIX} (the FileStore's sidecars, lock and
 *   temporary files live under such names).
 *
 * @example
 * ```ts
 * import { checkKey, encodeKey } from "./keys.ts";
 * checkKey("runs/demo/ckpt.safetensors"); // returns the key
 * encodeKey("runs/a b.npy"); // "runs/a%20b.npy"
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { CotrainError } from "../errors.ts";

/**
 * Names starting with this are reserved for the stores' own bookkeeping and refused in keys.
 *
 * @example
 * ```ts
 * import { RESERVED_PREFIX } from "./keys.ts";
 * console.log(`${RESERVED_PREFIX}meta`); // the FileStore's sidecar tree
 * ```
 */
export const RESERVED_PREFIX = ".cotrain-";

const MAX_KEY_BYTES = 1024;
const MAX_SEGMENT_BYTES = 255;
const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function refuse(key: string, why: string): CotrainError {
  return CotrainError.invalidArgument(`object key ${JSON.stringify(key)}: ${why}`);
}

function decodeOnce(segment: string): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // not valid percent-encoding: taken literally
  }
}

function checkSegment(key: string, segment: string, last: boolean, partial: boolean): void {
  if (segment === "") {
    if (last && partial) return; // a prefix may end with "/"
    throw refuse(key, "empty path segment (leading, trailing or doubled '/')");
  }
  if (encoder.encode(segment).length > MAX_SEGMENT_BYTES) {
    throw refuse(key, `path segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  // A prefix's last segment is only matched against names, never resolved: "a/.." may prefix
  // "a/..x", so only characters are checked there.
  const resolved = !(last && partial);
  const decoded = decodeOnce(segment);
  for (const s of new Set([segment, decoded])) {
    if (resolved && (s === "." || s === "..")) {
      throw refuse(key, `'${segment}' segments are not allowed (keys stay inside the store root)`);
    }
    if (s !== segment && (s.includes("/") || s.includes("\\"))) {
      throw refuse(key, `segment '${segment}' decodes to a path separator`);
    }
    if (s.startsWith(RESERVED_PREFIX)) {
      throw refuse(key, `names starting with '${RESERVED_PREFIX}' are reserved for the store`);
    }
  }
}

function check(key: unknown, partial: boolean): string {
  if (typeof key !== "string") {
    throw CotrainError.invalidArgument(`object key must be a string, got ${typeof key}`);
  }
  if (key === "") {
    if (partial) return key;
    throw refuse(key, "empty key");
  }
  if (encoder.encode(key).length > MAX_KEY_BYTES) {
    throw refuse(key, `longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (key.includes("\0")) throw refuse(key, "contains NUL");
  if (CONTROL.test(key)) throw refuse(key, "contains a control character");
  if (key.includes("\\")) throw refuse(key, "contains a backslash (use '/' between segments)");
  if (key.startsWith("/")) throw refuse(key, "absolute path (keys are relative to the store)");
  if (/^[A-Za-z]:/.test(key)) throw refuse(key, "drive-letter path");
  const segments = key.split("/");
  segments.forEach((s, i) => checkSegment(key, s, i === segments.length - 1, partial));
  return key;
}

/**
 * Returns `key` when it is a valid object key, else throws `INVALID_ARGUMENT` naming it.
 *
 * @example
 * ```ts
 * import { checkKey } from "./keys.ts";
 * checkKey("a/b.bin"); // "a/b.bin"
 * try { checkKey("../x"); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function checkKey(key: string): string {
  return check(key, false);
}

/**
 * Returns `prefix` when it is a valid list prefix: empty, or the start of a valid key (it may end
 * in `/` or in part of a name), else throws `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * import { checkPrefix } from "./keys.ts";
 * checkPrefix("runs/de"); // "runs/de"
 * ```
 */
export function checkPrefix(prefix: string): string {
  return check(prefix, true);
}

/**
 * The URI path form of a key: each segment percent-encoded, joined by `/`.
 *
 * @example
 * ```ts
 * import { encodeKey } from "./keys.ts";
 * encodeKey("a b/c#1"); // "a%20b/c%231"
 * ```
 */
export function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

/**
 * Decodes the `/`-separated, percent-encoded path of a URI into segments, refusing (with
 * `INVALID_ARGUMENT` naming `uri`) malformed escapes and segments that decode to a separator.
 *
 * @example
 * ```ts
 * import { decodePath } from "./keys.ts";
 * decodePath("/a%20b/c", "file:///a%20b/c"); // ["", "a b", "c"]
 * ```
 */
export function decodePath(path: string, uri: string): string[] {
  return path.split("/").map((s) => {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      throw CotrainError.invalidArgument(`URI ${JSON.stringify(uri)}: malformed escape in '${s}'`);
    }
    if (d.includes("/") || d.includes("\\")) {
      throw CotrainError.invalidArgument(
        `URI ${JSON.stringify(uri)}: segment '${s}' decodes to a path separator`,
      );
    }
    return d;
  });
}

/**
 * The key of `uri` given the store's URI scheme and authority (`file:` + `""`, `s3:` + bucket)
 * and its root path segments; `INVALID_ARGUMENT` when `uri` lies outside the store or its key is
 * not valid. `storeUrl` only names the store in messages.
 *
 * @example
 * ```ts
 * import { keyOfUri } from "./keys.ts";
 * keyOfUri("s3://b/p/x/y.bin", "s3:", ["b"], ["p"], "s3://b/p"); // "x/y.bin"
 * ```
 */
export function keyOfUri(
  uri: string,
  scheme: string,
  authorities: readonly string[],
  rootSegments: readonly string[],
  storeUrl: string,
): string {
  const outside = (why: string) =>
    CotrainError.invalidArgument(
      `URI ${JSON.stringify(uri)} is not in the store ${storeUrl}: ${why}`,
    );
  if (typeof uri !== "string") throw outside("not a string");
  if (!uri.toLowerCase().startsWith(`${scheme}//`)) throw outside(`scheme is not ${scheme}//`);
  if (/[?#]/.test(uri)) throw outside("query strings and fragments are not allowed");
  const rest = uri.slice(scheme.length + 2);
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  if (!authorities.includes(authority)) {
    throw outside(`${authority === "" ? "no host/bucket" : `'${authority}'`} is not this store's`);
  }
  const segments = decodePath(slash < 0 ? "" : rest.slice(slash + 1), uri);
  for (let i = 0; i < rootSegments.length; i++) {
    if (segments[i] !== rootSegments[i]) throw outside("path is not under the store root");
  }
  const keySegments = segments.slice(rootSegments.length);
  if (keySegments.length === 0 || (keySegments.length === 1 && keySegments[0] === "")) {
    throw outside("names the store root, not an object");
  }
  const key = keySegments.join("/");
  try {
    return checkKey(key);
  } catch (err) {
    throw outside((err as Error).message);
  }
}

/**
 * Lower-case hex sha256 of `data`.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./keys.ts";
 * sha256Hex(new Uint8Array()); // "e3b0c442...b855"
 * ```
 */
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Checks `offset`/`length` of a range read: non-negative safe integers, else `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * import { checkRange } from "./keys.ts";
 * checkRange("a.bin", 0, 16);
 * ```
 */
export function checkRange(key: string, offset: number, length: number): void {
  for (const [name, v] of [["offset", offset], ["length", length]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw CotrainError.invalidArgument(
        `range of ${JSON.stringify(key)}: ${name} must be a non-negative integer, got ${v}`,
      );
    }
  }
}

/**
 * Orders keys by UTF-16 code units: the order in which every store lists.
 *
 * @example
 * ```ts
 * import { compareKeys } from "./keys.ts";
 * ["b", "a/c", "a"].sort(compareKeys); // ["a", "a/c", "b"]
 * ```
 */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
