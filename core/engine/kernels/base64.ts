/**
 * Base64 without JSR's @std/encoding (not reachable here): Deno's atob/btoa on binary strings.
 *
 * @example
 * ```ts
 * import { decodeBase64, encodeBase64 } from "./base64.ts";
 * decodeBase64(encodeBase64(new Uint8Array([0, 97, 115, 109]))); // Uint8Array [0, 97, 115, 109]
 * ```
 * @module
 */

/** Bytes to base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Base64 to bytes. */
export function decodeBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
