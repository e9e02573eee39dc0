/**
 * Helpers shared by the codec tests: a seeded PRNG, random arrays of every dtype, byte comparison,
 * sha256, and an assertion that a call fails with a `CoreError` `INVALID_ARGUMENT`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { zlibSync } from "fflate";
import { CoreError } from "../errors.ts";
import type { RasterImage } from "./image.ts";
import { crc32 } from "./zip.ts";
import { type DType, fromBytes, ITEMSIZE, type NdArray, numel, toBytes } from "./ndarray.ts";

/** mulberry32: a small seeded PRNG returning uint32 values. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** A uniform uint32. */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n);
  }
  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }
  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** A random array of `dtype` and `shape`: random bit patterns (NaNs, infinities, extremes). */
export function randomArray(rng: Rng, dtype: DType, shape: number[]): NdArray {
  const bytes = rng.bytes(numel(shape) * ITEMSIZE[dtype]);
  if (dtype === "bool") { for (let i = 0; i < bytes.length; i++) bytes[i] &= 1; }
  return fromBytes(dtype, shape, bytes);
}

/** Shapes used by the round-trip tests: scalar, zero-size, vectors, matrices, higher ranks. */
export const SHAPES: number[][] = [[], [0], [1], [7], [2, 3], [3, 0, 2], [2, 1, 3, 2], [0, 0], [
  4,
  5,
]];

/** Asserts that two arrays have the same dtype, shape and bytes (NaN payloads included). */
export function assertSameArray(actual: NdArray, expected: NdArray, where = ""): void {
  assert.equal(actual.dtype, expected.dtype, `${where} dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${where} shape`);
  assert.equal(actual.data.constructor, expected.data.constructor, `${where} data type`);
  assertBytesEqual(toBytes(actual), toBytes(expected), `${where} data`);
}

/** Asserts byte equality with a short message (no giant diffs). */
export function assertBytesEqual(a: Uint8Array, b: Uint8Array, where = ""): void {
  if (a.length !== b.length) assert.fail(`${where}: ${a.length} bytes vs ${b.length} bytes`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${where}: first difference at byte ${i}: ${a[i]} vs ${b[i]}`);
  }
}

/** Lower-case hex sha256 of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes.slice());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Asserts that `fn` throws a CoreError INVALID_ARGUMENT whose message matches `pattern`. */
export function assertInvalid(fn: () => unknown, pattern?: RegExp): CoreError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CoreError)) {
      assert.fail(`expected a CoreError, got ${(err as Error)?.constructor?.name}: ${err}`);
    }
    assert.equal(err.code, "INVALID_ARGUMENT", err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected a CoreError INVALID_ARGUMENT${pattern ? ` matching ${pattern}` : ""}`);
}

/** Writes a little-endian unsigned integer of `size` bytes (up to 8) at `offset`. */
export function putUint(bytes: Uint8Array, offset: number, size: number, value: number): void {
  let v = BigInt(Math.floor(value));
  for (let i = 0; i < size && offset + i < bytes.length; i++) {
    bytes[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** A temporary directory removed after `fn`. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-io-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Peak signal-to-noise ratio in dB between two 8-bit buffers of equal length. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / a.length));
}

/** A smooth test picture (gradients plus a soft disc), like a natural image for JPEG. */
export function smoothImage(width: number, height: number, channels: 1 | 3 | 4): RasterImage {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r = Math.hypot(x - width / 2, y - height / 2) / Math.max(width, height);
      const disc = 80 / (1 + Math.exp(40 * (r - 0.25)));
      const v = [(x / width) * 150 + disc, (y / height) * 150 + disc, 100 + disc, 255];
      for (let c = 0; c < channels; c++) {
        data[(y * width + x) * channels + c] = Math.round(channels === 1 ? v[0] : v[c]);
      }
    }
  }
  return { width, height, channels, data };
}

export function randomImage(
  rng: Rng,
  width: number,
  height: number,
  channels: 1 | 3 | 4,
): RasterImage {
  return { width, height, channels, data: rng.bytes(width * height * channels) };
}

export function pngChunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/**
 * A PNG built by hand: `rows` are the packed scanlines (without filter bytes); colour types
 * 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
 */
export function makePng(
  width: number,
  height: number,
  depth: number,
  colorType: number,
  rows: Uint8Array[],
  extra: Uint8Array[] = [],
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, 0], 8);
  const raw = new Uint8Array(rows.reduce((n, r) => n + r.length + 1, 0));
  let p = 0;
  for (const r of rows) {
    raw[p++] = 0;
    raw.set(r, p);
    p += r.length;
  }
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...extra,
    pngChunk("IDAT", zlibSync(raw)),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
  p = 0;
  for (const c of parts) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}
