/**
 * Reader and writer for the safetensors format: an 8-byte little-endian header length `N`, `N`
 * bytes of UTF-8 JSON mapping each tensor name to `{dtype, shape, data_offsets: [begin, end]}`
 * (offsets relative to the data buffer), an optional `"__metadata__"` map of strings, then the data
 * buffer.
 *
 * Supported dtypes: `F32`, `F16`, `BF16`, `I64`, `I32`, `U8`, `BOOL`. `F16` and `BF16` are kept
 * as raw bits in a `Uint16Array` (convert with `half.ts`).
 *
 * The writer is deterministic and matches the reference implementation's layout: tensors ordered
 * by dtype (widest first, so every tensor stays aligned) then by name, metadata keys sorted, the
 * header padded with spaces to a multiple of 8 bytes.
 *
 * The reader checks everything before trusting it and throws `INVALID_ARGUMENT` on the first
 * problem; it copies each tensor out of the file, so alignment never matters.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 *
 * const bytes = writeSafetensors(
 *   { "conv1.weight": { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { config: JSON.stringify({ width: 0.125 }) },
 * );
 * const { tensors, metadata } = readSafetensors(bytes);
 * console.log(tensors.get("conv1.weight")?.data, metadata.config);
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import { describe, numel } from "./ndarray.ts";

/**
 * The safetensors dtypes cotrain reads and writes.

 * @example
 * ```ts
 * import type { SafetensorsDType } from "./safetensors.ts";
 * const dtype: SafetensorsDType = "BF16";
 * console.log(dtype);
 * ```
 */
export type SafetensorsDType = "F32" | "F16" | "BF16" | "I64" | "I32" | "U8" | "BOOL";

/**
 * The typed array that holds each safetensors dtype.

 * @example
 * ```ts
 * import type { SafetensorsArrays } from "./safetensors.ts";
 * const steps: SafetensorsArrays["I64"] = new BigInt64Array([100n]);
 * console.log(steps[0]); // 100n
 * ```
 */
export interface SafetensorsArrays {
  /** 32-bit floats. */
  F32: Float32Array;
  /** Raw IEEE half-precision bits. */
  F16: Uint16Array;
  /** Raw bfloat16 bits. */
  BF16: Uint16Array;
  /** Signed 64-bit integers. */
  I64: BigInt64Array;
  /** Signed 32-bit integers. */
  I32: Int32Array;
  /** Unsigned bytes. */
  U8: Uint8Array;
  /** One byte per element, 0 or 1. */
  BOOL: Uint8Array;
}

/**
 * One tensor: dtype, shape and its elements as the dtype's typed array (row-major).
 *
 * @example
 * ```ts
 * import type { SafetensorsTensor } from "./safetensors.ts";
 * const bias: SafetensorsTensor = { dtype: "F32", shape: [3], data: new Float32Array(3) };
 * console.log(bias.shape); // [ 3 ]
 * ```
 */
export type SafetensorsTensor = {
  [K in SafetensorsDType]: { dtype: K; shape: number[]; data: SafetensorsArrays[K] };
}[SafetensorsDType];

/**
 * A tensor given to the writer: typed as {@linkcode SafetensorsTensor}, or with `data` as raw
 * little-endian bytes (`Uint8Array` of exactly `numel(shape) * itemsize` bytes) for any dtype.

 * @example
 * ```ts
 * import { type SafetensorsTensorInput, writeSafetensors } from "./safetensors.ts";
 * const raw: SafetensorsTensorInput = { dtype: "F32", shape: [1], data: new Uint8Array([0, 0, 128, 63]) };
 * console.log(writeSafetensors({ one: raw }).length); // 68
 * ```
 */
export type SafetensorsTensorInput = SafetensorsTensor | {
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
};

/**
 * What {@linkcode readSafetensors} returns.

 * @example
 * ```ts
 * import { readSafetensors, type SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * const file: SafetensorsFile = readSafetensors(writeSafetensors({}, { note: "empty" }));
 * console.log(file.tensors.size, file.metadata.note); // 0 empty
 * ```
 */
export interface SafetensorsFile {
  /** Tensors by name, in the order of their data offsets. */
  tensors: Map<string, SafetensorsTensor>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

/**
 * Options for {@linkcode readSafetensors}.

 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const file = readSafetensors(writeSafetensors({}), { maxHeaderBytes: 1 << 20 });
 * console.log(file.tensors.size); // 0
 * ```
 */
export interface ReadSafetensorsOptions {
  /** Largest JSON header accepted, in bytes (default 100,000,000, as the reference reader). */
  maxHeaderBytes?: number;
}

/**
 * Bytes per element of each supported dtype.

 * @example
 * ```ts
 * import { SAFETENSORS_ITEMSIZE } from "./safetensors.ts";
 * console.log(SAFETENSORS_ITEMSIZE.BF16); // 2
 * ```
 */
export const SAFETENSORS_ITEMSIZE: Readonly<Record<SafetensorsDType, number>> = Object.freeze({
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U8: 1,
  BOOL: 1,
});

const CTORS = {
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
} as const;

// The reference implementation orders tensors by its Dtype enum, largest first, then by name.
const DTYPE_RANK: Readonly<Record<SafetensorsDType, number>> = {
  I64: 0,
  F32: 1,
  I32: 2,
  BF16: 3,
  F16: 4,
  U8: 5,
  BOOL: 6,
};

const SUPPORTED = Object.keys(SAFETENSORS_ITEMSIZE).join(", ");
const KNOWN_UNSUPPORTED = new Set([
  "F64",
  "U64",
  "U32",
  "I16",
  "U16",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F6_E2M3",
  "F6_E3M2",
  "F4",
  "C64",
]);
const METADATA_KEY = "__metadata__";
const DEFAULT_MAX_HEADER = 100_000_000;

function fail(message: string): CoreError {
  return CoreError.invalidArgument(`safetensors: ${message}`);
}

function isSafetensorsDType(v: unknown): v is SafetensorsDType {
  return typeof v === "string" && Object.hasOwn(SAFETENSORS_ITEMSIZE, v);
}

/**
 * Parses a safetensors file and copies every tensor out of it.
 *
 * Checks: the header length fits in the file (huge lengths are refused before any allocation),
 * the header is UTF-8 JSON whose top level is an object, every entry has a supported dtype, a shape
 * of non-negative integers and `data_offsets` inside the buffer, the tensors tile the data buffer
 * exactly (no gap, no overlap, nothing left over), each tensor's byte length is
 * `numel(shape) * itemsize`, and `__metadata__` maps strings to strings.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 *
 * const file = writeSafetensors({ step: { dtype: "I64", shape: [], data: new BigInt64Array([7n]) } });
 * const t = readSafetensors(file).tensors.get("step");
 * if (t?.dtype === "I64") console.log(t.data[0]); // 7n
 * ```
 */
export function readSafetensors(
  bytes: Uint8Array,
  options: ReadSafetensorsOptions = {},
): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) {
    throw fail(`input is ${describe(bytes)}; expected a Uint8Array`);
  }
  const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  if (bytes.length < 8) {
    throw fail(
      `file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header size`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const available = bytes.length - 8;
  if (hi !== 0 || lo > available) {
    const n = hi * 2 ** 32 + lo;
    throw fail(
      `header size field says ${n} bytes but only ${available} bytes follow it; ` +
        `the file is truncated or not safetensors`,
    );
  }
  const n = lo;
  if (n > maxHeader) {
    throw fail(`header is ${n} bytes, more than the limit of ${maxHeader}`);
  }
  if (n < 2) throw fail(`header is ${n} bytes; expected a JSON object`);
  const headerBytes = bytes.subarray(8, 8 + n);
  if (headerBytes[0] !== 0x7b /* { */) {
    throw fail(`header starts with byte 0x${headerBytes[0].toString(16)}; expected '{'`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw fail(`header is ${describe(header)}; expected a JSON object`);
  }

  const dataStart = 8 + n;
  const bufferLength = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: {
    name: string;
    dtype: SafetensorsDType;
    shape: number[];
    begin: number;
    end: number;
  }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(info);
      continue;
    }
    entries.push({ name, ...parseTensorInfo(name, info, bufferLength) });
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      throw fail(
        e.begin > expected
          ? `tensor ${
            describe(e.name)
          } starts at byte ${e.begin} of the data buffer, leaving bytes ` +
            `${expected}..${e.begin} unused; tensors must tile the buffer contiguously`
          : `tensor ${
            describe(e.name)
          } (bytes ${e.begin}..${e.end}) overlaps the tensor ending at ` +
            `byte ${expected}`,
      );
    }
    expected = e.end;
  }
  if (expected !== bufferLength) {
    throw fail(
      `tensors cover ${expected} bytes of a ${bufferLength}-byte data buffer; ` +
        `the file is truncated or has trailing bytes`,
    );
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const copy = bytes.slice(dataStart + e.begin, dataStart + e.end);
    const data = new CTORS[e.dtype](copy.buffer);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data } as SafetensorsTensor);
  }
  return { tensors, metadata };
}

function parseMetadata(info: unknown): Record<string, string> {
  if (typeof info !== "object" || info === null || Array.isArray(info)) {
    throw fail(`"__metadata__" is ${describe(info)}; expected an object of strings`);
  }
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(info)) {
    if (typeof v !== "string") {
      throw fail(`"__metadata__"[${describe(k)}] is ${describe(v)}; expected a string`);
    }
    out.push([k, v]);
  }
  return Object.fromEntries(out);
}

function parseTensorInfo(
  name: string,
  info: unknown,
  bufferLength: number,
): { dtype: SafetensorsDType; shape: number[]; begin: number; end: number } {
  const where = `tensor ${describe(name)}`;
  if (typeof info !== "object" || info === null || Array.isArray(info)) {
    throw fail(`${where} is ${describe(info)}; expected {dtype, shape, data_offsets}`);
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (!isSafetensorsDType(dtype)) {
    if (typeof dtype === "string" && KNOWN_UNSUPPORTED.has(dtype)) {
      throw fail(
        `${where} has dtype ${dtype}, which cotrain does not read; supported: ${SUPPORTED}`,
      );
    }
    throw fail(`${where} has dtype ${describe(dtype)}; expected one of ${SUPPORTED}`);
  }
  if (!Array.isArray(shape)) {
    throw fail(`${where} has shape ${describe(shape)}; expected an array of integers`);
  }
  let count: number;
  try {
    count = numel(shape);
  } catch (err) {
    throw fail(`${where}: ${(err as Error).message}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw fail(
      `${where} has data_offsets ${
        Array.isArray(offsets) ? `[${offsets.map(describe).join(", ")}]` : describe(offsets)
      }; expected [begin, end] with non-negative integers`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`${where} has data_offsets [${begin}, ${end}]; begin exceeds end`);
  if (end > bufferLength) {
    throw fail(
      `${where} ends at byte ${end} but the data buffer has ${bufferLength} bytes; ` +
        `the file is truncated`,
    );
  }
  const nbytes = count * SAFETENSORS_ITEMSIZE[dtype];
  if (end - begin !== nbytes) {
    throw fail(
      `${where} is ${dtype} [${shape.join(", ")}], which needs ${nbytes} bytes, ` +
        `but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { dtype, shape: [...shape], begin, end };
}

/**
 * Serialises tensors (and optional string metadata) to safetensors bytes.
 *
 * Each tensor's `data` is the dtype's typed array with `numel(shape)` elements, or raw
 * little-endian bytes of the exact length. Names must be non-empty, well-formed strings other than
 * `"__metadata__"`. Throws `INVALID_ARGUMENT` on the first bad tensor.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 *
 * const weights = new Map([
 *   ["fc.bias", { dtype: "F32" as const, shape: [2], data: new Float32Array([0.5, -0.5]) }],
 * ]);
 * const bytes = writeSafetensors(weights, { format: "pt" });
 * console.log(bytes.length % 8); // 0
 * ```
 */
export function writeSafetensors(
  tensors: Map<string, SafetensorsTensorInput> | Record<string, SafetensorsTensorInput>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const items = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const prepared = items.map(([name, t]) => prepareTensor(name, t));
  prepared.sort((a, b) =>
    DTYPE_RANK[a.dtype] - DTYPE_RANK[b.dtype] || compareCodePoints(a.name, b.name)
  );

  const parts: string[] = [];
  const metaEntries = Object.entries(metadata ?? {});
  for (const [k, v] of metaEntries) {
    if (typeof v !== "string") {
      throw fail(`metadata[${describe(k)}] is ${describe(v)}; expected a string`);
    }
  }
  if (metaEntries.length > 0) {
    metaEntries.sort((a, b) => compareCodePoints(a[0], b[0]));
    const body = metaEntries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${body.join(",")}}`);
  }
  let offset = 0;
  for (const t of prepared) {
    const begin = offset;
    offset += t.bytes.length;
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${
        t.shape.join(",")
      }],"data_offsets":[${begin},${offset}]}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let pos = 8 + headerLength;
  for (const t of prepared) {
    out.set(t.bytes, pos);
    pos += t.bytes.length;
  }
  return out;
}

function prepareTensor(
  name: string,
  t: SafetensorsTensorInput,
): { name: string; dtype: SafetensorsDType; shape: number[]; bytes: Uint8Array } {
  if (typeof name !== "string" || name.length === 0 || !name.isWellFormed()) {
    throw fail(`tensor name ${describe(name)} is not a non-empty, well-formed string`);
  }
  if (name === METADATA_KEY) throw fail(`"__metadata__" is reserved and cannot name a tensor`);
  const where = `tensor ${describe(name)}`;
  if (typeof t !== "object" || t === null) {
    throw fail(`${where} is ${describe(t)}; expected {dtype, shape, data}`);
  }
  if (!isSafetensorsDType(t.dtype)) {
    throw fail(`${where} has dtype ${describe(t.dtype)}; expected one of ${SUPPORTED}`);
  }
  let count: number;
  try {
    count = numel(t.shape);
  } catch (err) {
    throw fail(`${where}: ${(err as Error).message}`);
  }
  const itemsize = SAFETENSORS_ITEMSIZE[t.dtype];
  const ctor = CTORS[t.dtype];
  const data: unknown = t.data;
  let bytes: Uint8Array;
  if (data instanceof ctor) {
    if (data.length !== count) {
      throw fail(
        `${where}: data has ${data.length} elements; shape [${t.shape.join(", ")}] needs ${count}`,
      );
    }
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else if (data instanceof Uint8Array) {
    if (data.length !== count * itemsize) {
      throw fail(
        `${where}: ${data.length} raw bytes; ${t.dtype} [${t.shape.join(", ")}] needs ` +
          `${count * itemsize} (or pass a ${ctor.name} of ${count} elements)`,
      );
    }
    bytes = data;
  } else {
    throw fail(
      `${where}: data is ${describe(data)}; expected ${ctor.name} or raw bytes (Uint8Array) ` +
        `for dtype ${t.dtype}`,
    );
  }
  return { name, dtype: t.dtype, shape: [...t.shape], bytes };
}

/** Orders strings by Unicode code point, which is the byte order of their UTF-8 (as Rust does). */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
