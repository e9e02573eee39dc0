/**
 * Reader and writer for numpy's `.npy` format (versions 1.0 and 2.0; 3.0 is read too).
 *
 * A file is the magic `\x93NUMPY`, a version (major, minor), the header length (u16 for 1.0, u32
 * for 2.0/3.0), a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and a final
 * `\n` so that the data starts at a multiple of 64 bytes, then the raw little-endian data.
 *
 * Dtypes: `<f2 <f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1`. Fortran-ordered files are read and
 * transposed into C order. Big-endian, object (`|O`), structured, string and complex arrays are
 * refused with `INVALID_ARGUMENT`. The header is parsed by a small strict parser, never evaluated.
 *
 * The writer's bytes are identical to `np.save` (numpy >= 1.23) for the same array.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "./npy.ts";
 *
 * const bytes = writeNpy({ dtype: "float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
 * const a = readNpy(bytes);
 * console.log(a.dtype, a.shape, a.data); // float32 [ 2, 2 ] Float32Array(4) [ 1, 2, 3, 4 ]
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import {
  checkNdArray,
  describe,
  type DType,
  fromBytes,
  ITEMSIZE,
  type NdArray,
  numel,
  toBytes,
} from "./ndarray.ts";

/**
 * The `descr` numpy writes for each dtype.

 * @example
 * ```ts
 * import { NPY_DESCR } from "./npy.ts";
 * console.log(NPY_DESCR.float32, NPY_DESCR.bool); // <f4 |b1
 * ```
 */
export const NPY_DESCR: Readonly<Record<DType, string>> = Object.freeze({
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
  int8: "|i1",
  int16: "<i2",
  int32: "<i4",
  int64: "<i8",
  uint8: "|u1",
  uint16: "<u2",
  uint32: "<u4",
  uint64: "<u8",
  bool: "|b1",
});

const BY_TYPECODE: Readonly<Record<string, DType>> = {
  f2: "float16",
  f4: "float32",
  f8: "float64",
  i1: "int8",
  i2: "int16",
  i4: "int32",
  i8: "int64",
  u1: "uint8",
  u2: "uint16",
  u4: "uint32",
  u8: "uint64",
  b1: "bool",
  "?": "bool",
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ARRAY_ALIGN = 64;
const GROWTH_AXIS_MAX_DIGITS = 21;
const SUPPORTED = Object.values(NPY_DESCR).join(" ");

/**
 * Options for {@linkcode writeNpy}.

 * @example
 * ```ts
 * import { writeNpy } from "./npy.ts";
 * const v2 = writeNpy({ dtype: "uint8", shape: [1], data: new Uint8Array([5]) }, { version: 2 });
 * console.log(v2[6]); // 2
 * ```
 */
export interface WriteNpyOptions {
  /** Format version; by default 1 unless the header needs more than 65535 bytes, then 2. */
  version?: 1 | 2 | 3;
}

function fail(message: string): CoreError {
  return CoreError.invalidArgument(`npy: ${message}`);
}

/**
 * Parses a `.npy` file and copies its data into a new typed array (C order).
 *
 * Throws `INVALID_ARGUMENT` for a bad magic or version, a header that does not fit in the file or
 * is not `{'descr': ..., 'fortran_order': ..., 'shape': ...}`, an unsupported dtype, or data whose
 * length is not `numel(shape) * itemsize`.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "./npy.ts";
 *
 * const a = readNpy(writeNpy({ dtype: "bool", shape: [3], data: new Uint8Array([1, 0, 1]) }));
 * console.log(a.dtype, a.data); // bool Uint8Array(3) [ 1, 0, 1 ]
 * ```
 */
export function readNpy(bytes: Uint8Array): NdArray {
  if (!(bytes instanceof Uint8Array)) {
    throw fail(`input is ${describe(bytes)}; expected a Uint8Array`);
  }
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw fail(
      bytes.length < 10
        ? `file is ${bytes.length} bytes, too short for a .npy header`
        : `file does not start with the magic \\x93NUMPY; it is not a .npy file`,
    );
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (!(minor === 0 && (major === 1 || major === 2 || major === 3))) {
    throw fail(`format version ${major}.${minor} is not supported; expected 1.0, 2.0 or 3.0`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = view.getUint16(8, true);
  } else {
    if (bytes.length < 12) {
      throw fail(`file is ${bytes.length} bytes, too short for a v${major} header`);
    }
    headerStart = 12;
    headerLength = view.getUint32(8, true);
  }
  if (headerStart + headerLength > bytes.length) {
    throw fail(
      `header length field says ${headerLength} bytes but only ${
        bytes.length - headerStart
      } follow; the file is truncated`,
    );
  }
  const raw = bytes.subarray(headerStart, headerStart + headerLength);
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
    } catch {
      throw fail("v3.0 header is not valid UTF-8");
    }
  } else {
    text = new TextDecoder("latin1").decode(raw);
  }
  const header = parseHeader(text);
  const dtype = dtypeOfDescr(header.descr);
  const dataStart = headerStart + headerLength;
  const expected = numel(header.shape) * ITEMSIZE[dtype];
  const actual = bytes.length - dataStart;
  if (actual !== expected) {
    throw fail(
      `'${header.descr}' ${
        shapeRepr(header.shape)
      } needs ${expected} data bytes but the file has ` +
        `${actual}; the file is ${actual < expected ? "truncated" : "followed by extra bytes"}`,
    );
  }
  let data = bytes.subarray(dataStart);
  if (header.fortranOrder) data = fortranToC(data, header.shape, ITEMSIZE[dtype]);
  return fromBytes(dtype, header.shape, data);
}

/**
 * Serialises an array to `.npy` bytes, byte-identical to `np.save` of the same array.
 *
 * @example
 * ```ts
 * import { writeNpy } from "./npy.ts";
 *
 * const bytes = writeNpy({ dtype: "int64", shape: [], data: new BigInt64Array([3n]) });
 * console.log(new TextDecoder().decode(bytes.subarray(10, 65)));
 * // {'descr': '<i8', 'fortran_order': False, 'shape': (), }
 * ```
 */
export function writeNpy(array: NdArray, options: WriteNpyOptions = {}): Uint8Array {
  checkNdArray(array, "npy");
  const header = headerBytes(array.dtype, array.shape, options.version);
  const data = toBytes(array);
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/**
 * The header of a `.npy` file (magic, version, length, padded dict) for `dtype` and `shape`.
 *
 * @example
 * ```ts
 * import { npyHeader } from "./npy.ts";
 * console.log(npyHeader("float32", [3, 4]).length); // 128
 * ```
 */
export function npyHeader(dtype: DType, shape: readonly number[], version?: 1 | 2 | 3): Uint8Array {
  numel(shape);
  return headerBytes(dtype, shape, version);
}

function headerBytes(dtype: DType, shape: readonly number[], version?: 1 | 2 | 3): Uint8Array {
  if (version !== undefined && version !== 1 && version !== 2 && version !== 3) {
    throw fail(`version ${describe(version)} is not supported; expected 1, 2 or 3`);
  }
  let dict = `{'descr': '${NPY_DESCR[dtype]}', 'fortran_order': False, 'shape': ${
    shapeRepr(shape)
  }, }`;
  // numpy leaves room to grow the first axis in place.
  if (shape.length > 0) dict += " ".repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  const encoded = new TextEncoder().encode(dict); // ASCII: the same bytes in latin1 and UTF-8
  const wrap = (v: 1 | 2 | 3): Uint8Array | undefined => {
    const prefix = v === 1 ? 10 : 12;
    const hlen = encoded.length + 1;
    const padlen = ARRAY_ALIGN - ((prefix + hlen) % ARRAY_ALIGN);
    const total = hlen + padlen;
    if (v === 1 && total > 0xffff) return undefined;
    const out = new Uint8Array(prefix + total);
    out.set(MAGIC);
    out[6] = v;
    out[7] = 0;
    const view = new DataView(out.buffer);
    if (v === 1) view.setUint16(8, total, true);
    else view.setUint32(8, total, true);
    out.set(encoded, prefix);
    out.fill(0x20, prefix + encoded.length, out.length - 1);
    out[out.length - 1] = 0x0a;
    return out;
  };
  if (version === undefined) return wrap(1) ?? wrap(2)!;
  const out = wrap(version);
  if (!out) throw fail(`header of ${encoded.length} bytes does not fit in format 1.0; use 2.0`);
  return out;
}

/** Python's repr of a shape tuple: `()`, `(3,)`, `(3, 4)`. */
function shapeRepr(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

function dtypeOfDescr(descr: string): DType {
  const m = /^([<>|=]?)([a-zA-Z?]\d*)$/.exec(descr);
  const dtype = m ? BY_TYPECODE[m[2]] : undefined;
  if (m && dtype) {
    const order = m[1];
    if (order === ">" && ITEMSIZE[dtype] > 1) {
      throw fail(
        `dtype '${descr}' is big-endian, which cotrain does not read; save it little-endian ` +
          `(a.astype('<${m[2]}'))`,
      );
    }
    return dtype;
  }
  if (/^[<>|=]?O\d*$/.test(descr)) {
    throw fail(`dtype '${descr}' is an object array (pickled); cotrain reads numeric arrays only`);
  }
  throw fail(`dtype ${describe(descr)} is not supported; expected one of ${SUPPORTED}`);
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/** Validates the parsed header dict. */
function parseHeader(text: string): Header {
  const value = new LiteralParser(text).parseHeaderDict();
  const keys = [...value.keys()].sort();
  if (keys.join() !== "descr,fortran_order,shape") {
    throw fail(
      `header keys are {${keys.map((k) => `'${k}'`).join(", ")}}; expected exactly ` +
        `{'descr', 'fortran_order', 'shape'}`,
    );
  }
  const descr = value.get("descr");
  if (Array.isArray(descr) && descr.kind === "list") {
    throw fail("structured dtypes (a list 'descr') are not supported; save one array per field");
  }
  if (typeof descr !== "string") throw fail(`header 'descr' is ${show(descr)}; expected a string`);
  const fortranOrder = value.get("fortran_order");
  if (typeof fortranOrder !== "boolean") {
    throw fail(`header 'fortran_order' is ${show(fortranOrder)}; expected True or False`);
  }
  const shape = value.get("shape");
  if (
    !Array.isArray(shape) || shape.kind !== "tuple" || !shape.every((d) => typeof d === "number")
  ) {
    throw fail(`header 'shape' is ${show(shape)}; expected a tuple of non-negative integers`);
  }
  const dims = shape as number[];
  if (dims.some((d) => d < 0)) {
    throw fail(`header 'shape' is ${show(shape)}; expected a tuple of non-negative integers`);
  }
  numelOrFail(dims);
  return { descr, fortranOrder, shape: [...dims] };
}

function numelOrFail(shape: number[]): void {
  try {
    numel(shape);
  } catch (err) {
    throw fail(`header 'shape': ${(err as Error).message}`);
  }
}

type PyValue = string | number | boolean | PySeq;
type PySeq = PyValue[] & { kind: "tuple" | "list" };

function show(v: PyValue | undefined): string {
  if (v === undefined) return "missing";
  if (typeof v === "string") return `'${v.length > 40 ? v.slice(0, 40) + "…" : v}'`;
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  const inner = v.map(show).join(", ");
  if (v.kind === "list") return `[${inner}]`;
  return v.length === 1 ? `(${inner},)` : `(${inner})`;
}

/**
 * A strict parser for the Python literals a .npy header may hold: a dict with string keys whose
 * values are strings, True/False, integers, or tuples/lists of those. Nothing is evaluated.
 */
class LiteralParser {
  pos = 0;
  depth = 0;
  constructor(readonly s: string) {}

  parseHeaderDict(): Map<string, PyValue> {
    this.ws();
    if (this.s[this.pos] !== "{") this.error("expected '{' at the start of the header dict");
    this.pos++;
    const out = new Map<string, PyValue>();
    this.ws();
    while (this.s[this.pos] !== "}") {
      const key = this.value();
      if (typeof key !== "string") this.error(`dict key ${show(key)} is not a string`);
      if (out.has(key)) this.error(`key '${key}' appears twice`);
      this.ws();
      if (this.s[this.pos] !== ":") this.error("expected ':' after a dict key");
      this.pos++;
      out.set(key, this.value());
      this.ws();
      if (this.s[this.pos] === ",") {
        this.pos++;
        this.ws();
      } else if (this.s[this.pos] !== "}") {
        this.error("expected ',' or '}' after a dict value");
      }
    }
    this.pos++;
    if (!/^[ \t\r\n\f\v\0]*$/.test(this.s.slice(this.pos))) {
      this.error("unexpected text after the header dict");
    }
    return out;
  }

  private value(): PyValue {
    this.ws();
    const c = this.s[this.pos];
    if (c === "'" || c === '"') return this.string(c);
    if (c === "(" || c === "[") return this.sequence(c);
    if (c === "-" || c === "+" || (c >= "0" && c <= "9")) return this.integer();
    for (const [word, v] of [["True", true], ["False", false]] as const) {
      if (
        this.s.startsWith(word, this.pos) &&
        !/[A-Za-z0-9_]/.test(this.s[this.pos + word.length] ?? "")
      ) {
        this.pos += word.length;
        return v;
      }
    }
    if (c === undefined) this.error("header ends early");
    this.error(`unexpected ${JSON.stringify(c)}`);
  }

  private string(quote: string): string {
    const end = this.s.indexOf(quote, this.pos + 1);
    if (end < 0) this.error("unterminated string");
    const body = this.s.slice(this.pos + 1, end);
    if (body.includes("\\") || body.includes("\n")) {
      this.error("escapes in strings are not supported");
    }
    this.pos = end + 1;
    return body;
  }

  private integer(): number {
    const m = /^[-+]?[0-9]+[lL]?/.exec(this.s.slice(this.pos, this.pos + 40));
    if (!m || /^[-+]?0[0-9]/.test(m[0])) this.error("malformed integer");
    const n = Number(m[0].replace(/[lL]$/, ""));
    if (!Number.isSafeInteger(n)) this.error(`integer ${m[0]} is out of range`);
    this.pos += m[0].length;
    if (/[0-9A-Za-z_.]/.test(this.s[this.pos] ?? "")) this.error("malformed integer");
    return n === 0 ? 0 : n;
  }

  private sequence(open: string): PySeq {
    const close = open === "(" ? ")" : "]";
    if (++this.depth > 8) this.error("nesting is too deep");
    this.pos++;
    const items: PyValue[] = [];
    let trailingComma = false;
    this.ws();
    while (this.s[this.pos] !== close) {
      items.push(this.value());
      this.ws();
      trailingComma = false;
      if (this.s[this.pos] === ",") {
        this.pos++;
        trailingComma = true;
        this.ws();
      } else if (this.s[this.pos] !== close) {
        this.error(`expected ',' or '${close}'`);
      }
    }
    this.pos++;
    this.depth--;
    if (open === "(" && items.length === 1 && !trailingComma) {
      this.error("'(n)' is not a tuple; a 1-tuple is written '(n,)'");
    }
    return Object.assign(items, { kind: open === "(" ? "tuple" as const : "list" as const });
  }

  private ws(): void {
    while (this.pos < this.s.length && " \t\r\n\f\v".includes(this.s[this.pos])) this.pos++;
  }

  private error(message: string): never {
    throw fail(
      `header dict is malformed at character ${this.pos}: ${message} (header: ${
        JSON.stringify(this.s.length > 120 ? this.s.slice(0, 120) + "…" : this.s)
      })`,
    );
  }
}

/** Reorders Fortran-order (column-major) element bytes into C order. */
function fortranToC(src: Uint8Array, shape: readonly number[], itemsize: number): Uint8Array {
  const n = src.length / itemsize;
  const nd = shape.length;
  if (nd < 2 || n === 0) return src;
  const dst = new Uint8Array(src.length);
  const stride: number[] = [];
  let s = itemsize;
  for (let k = 0; k < nd; k++) {
    stride.push(s);
    s *= shape[k];
  }
  const idx = new Array<number>(nd).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const o = i * itemsize;
    for (let b = 0; b < itemsize; b++) dst[o + b] = src[off + b];
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      off += stride[k];
      if (idx[k] < shape[k]) break;
      off -= stride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return dst;
}
