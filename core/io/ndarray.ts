/**
 * `NdArray`: a dense, row-major (C order) array with a numpy-style dtype name, shared by the npy,
 * npz and safetensors codecs.
 *
 * Data is the matching typed array; `float16` is kept as raw IEEE half bits in a `Uint16Array`
 * (see `half.ts` for conversions) and `bool` as a `Uint8Array` of 0/1 bytes. Bytes on the wire are
 * little-endian, which is also the byte order of every host cotrain runs on.
 *
 * @example
 * ```ts
 * import { byteLengthOf, type NdArray, numel } from "./ndarray.ts";
 *
 * const a: NdArray = { dtype: "float32", shape: [2, 3], data: new Float32Array(6) };
 * console.log(numel(a.shape)); // 6
 * console.log(byteLengthOf(a.dtype, a.shape)); // 24
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";

/**
 * The dtype names of an {@linkcode NdArray}, as numpy spells them.

 * @example
 * ```ts
 * import type { DType } from "./ndarray.ts";
 * const dtype: DType = "float16";
 * console.log(dtype);
 * ```
 */
export type DType =
  | "float16"
  | "float32"
  | "float64"
  | "int8"
  | "int16"
  | "int32"
  | "int64"
  | "uint8"
  | "uint16"
  | "uint32"
  | "uint64"
  | "bool";

/**
 * The typed array that holds each dtype's elements.

 * @example
 * ```ts
 * import type { DTypeArrays } from "./ndarray.ts";
 * const ids: DTypeArrays["int64"] = new BigInt64Array([1n, 2n]);
 * console.log(ids.length); // 2
 * ```
 */
export interface DTypeArrays {
  /** Raw IEEE 754 half-precision bits. */
  float16: Uint16Array;
  /** 32-bit floats. */
  float32: Float32Array;
  /** 64-bit floats. */
  float64: Float64Array;
  /** Signed 8-bit integers. */
  int8: Int8Array;
  /** Signed 16-bit integers. */
  int16: Int16Array;
  /** Signed 32-bit integers. */
  int32: Int32Array;
  /** Signed 64-bit integers. */
  int64: BigInt64Array;
  /** Unsigned 8-bit integers. */
  uint8: Uint8Array;
  /** Unsigned 16-bit integers. */
  uint16: Uint16Array;
  /** Unsigned 32-bit integers. */
  uint32: Uint32Array;
  /** Unsigned 64-bit integers. */
  uint64: BigUint64Array;
  /** One byte per element, 0 or 1. */
  bool: Uint8Array;
}

/**
 * Any typed array an {@linkcode NdArray} may hold.

 * @example
 * ```ts
 * import type { TypedArray } from "./ndarray.ts";
 * const xs: TypedArray[] = [new Float32Array(2), new BigUint64Array(1)];
 * console.log(xs.length); // 2
 * ```
 */
export type TypedArray = DTypeArrays[DType];

/**
 * A dense row-major array: `data.length === numel(shape)`, and `data` is the typed array of
 * `dtype` (a discriminated union, so `a.dtype === "int64"` narrows `a.data` to `BigInt64Array`).
 *
 * @example
 * ```ts
 * import type { NdArray } from "./ndarray.ts";
 *
 * const scalar: NdArray = { dtype: "int64", shape: [], data: new BigInt64Array([42n]) };
 * const empty: NdArray = { dtype: "bool", shape: [0, 3], data: new Uint8Array(0) };
 * console.log(scalar.data[0], empty.data.length); // 42n 0
 * ```
 */
export type NdArray<D extends DType = DType> = {
  [K in D]: { dtype: K; shape: number[]; data: DTypeArrays[K] };
}[D];

/**
 * Bytes per element of each dtype.

 * @example
 * ```ts
 * import { ITEMSIZE } from "./ndarray.ts";
 * console.log(ITEMSIZE.float16, ITEMSIZE.uint64); // 2 8
 * ```
 */
export const ITEMSIZE: Readonly<Record<DType, number>> = Object.freeze({
  float16: 2,
  float32: 4,
  float64: 8,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
});

/**
 * Every dtype name, in a fixed order.

 * @example
 * ```ts
 * import { DTYPES } from "./ndarray.ts";
 * console.log(DTYPES.includes("bool")); // true
 * ```
 */
export const DTYPES: readonly DType[] = Object.freeze(Object.keys(ITEMSIZE) as DType[]);

type ArrayCtor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBuffer): TypedArray;
  readonly name: string;
};

const CTORS: Readonly<Record<DType, ArrayCtor>> = Object.freeze({
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
});

/**
 * Whether `name` is one of the {@linkcode DType} names.
 *
 * @example
 * ```ts
 * import { isDType } from "./ndarray.ts";
 * console.log(isDType("float32"), isDType("complex64")); // true false
 * ```
 */
export function isDType(name: unknown): name is DType {
  return typeof name === "string" && Object.hasOwn(ITEMSIZE, name);
}

/**
 * Number of elements of `shape` (1 for a 0-d scalar, 0 when any dimension is 0).
 *
 * Throws `INVALID_ARGUMENT` when a dimension is not a non-negative safe integer or the product
 * exceeds `Number.MAX_SAFE_INTEGER`.
 *
 * @example
 * ```ts
 * import { numel } from "./ndarray.ts";
 * console.log(numel([]), numel([2, 3]), numel([4, 0, 5])); // 1 6 0
 * ```
 */
export function numel(shape: readonly number[]): number {
  if (!Array.isArray(shape)) {
    throw CoreError.invalidArgument(`shape is ${describe(shape)}; expected an array of integers`);
  }
  let n = 1;
  let zero = false;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw CoreError.invalidArgument(
        `shape [${shape.map(describe).join(", ")}]: dimension ${i} is ${describe(d)}; ` +
          `expected a non-negative integer`,
      );
    }
    if (d === 0) zero = true;
    else if (!zero) {
      n *= d;
      if (n > Number.MAX_SAFE_INTEGER) {
        throw CoreError.invalidArgument(
          `shape [${shape.join(", ")}] has more than 2^53 elements`,
        );
      }
    }
  }
  return zero ? 0 : n;
}

/**
 * Bytes needed for an array of `dtype` and `shape`: `numel(shape) * ITEMSIZE[dtype]`.
 *
 * @example
 * ```ts
 * import { byteLengthOf } from "./ndarray.ts";
 * console.log(byteLengthOf("float16", [3, 4])); // 24
 * ```
 */
export function byteLengthOf(dtype: DType, shape: readonly number[]): number {
  if (!isDType(dtype)) {
    throw CoreError.invalidArgument(
      `dtype ${describe(dtype)} is not supported; expected one of ${DTYPES.join(", ")}`,
    );
  }
  const n = numel(shape) * ITEMSIZE[dtype];
  if (!Number.isSafeInteger(n)) {
    throw CoreError.invalidArgument(`shape [${shape.join(", ")}] of ${dtype} is too large`);
  }
  return n;
}

/**
 * The name of the typed array that holds `dtype` (e.g. `"BigInt64Array"` for `int64`).
 *
 * @example
 * ```ts
 * import { arrayTypeName } from "./ndarray.ts";
 * console.log(arrayTypeName("float16")); // "Uint16Array"
 * ```
 */
export function arrayTypeName(dtype: DType): string {
  return CTORS[dtype].name;
}

/**
 * A zero-filled array of `dtype` and `shape`.
 *
 * @example
 * ```ts
 * import { zeros } from "./ndarray.ts";
 * const a = zeros("int32", [2, 2]);
 * console.log(a.data); // Int32Array(4) [ 0, 0, 0, 0 ]
 * ```
 */
export function zeros<D extends DType>(dtype: D, shape: readonly number[]): NdArray<D> {
  const n = numel(shape);
  byteLengthOf(dtype, shape);
  return { dtype, shape: [...shape], data: new CTORS[dtype](n) } as NdArray<D>;
}

/**
 * Copies little-endian `bytes` into a new array of `dtype` and `shape` (the copy is always
 * aligned, whatever the offset of `bytes`).
 *
 * Throws `INVALID_ARGUMENT` when `bytes.length` is not `byteLengthOf(dtype, shape)`.
 *
 * @example
 * ```ts
 * import { fromBytes } from "./ndarray.ts";
 * const a = fromBytes("uint16", [2], new Uint8Array([1, 0, 0, 1]));
 * console.log(a.data); // Uint16Array(2) [ 1, 256 ]
 * ```
 */
export function fromBytes<D extends DType>(
  dtype: D,
  shape: readonly number[],
  bytes: Uint8Array,
): NdArray<D> {
  const expected = byteLengthOf(dtype, shape);
  if (bytes.length !== expected) {
    throw CoreError.invalidArgument(
      `${dtype} [${shape.join(", ")}] needs ${expected} bytes, got ${bytes.length}`,
    );
  }
  assertLittleEndianHost();
  const copy = new Uint8Array(expected);
  copy.set(bytes);
  return { dtype, shape: [...shape], data: new CTORS[dtype](copy.buffer) } as NdArray<D>;
}

/**
 * A little-endian byte view of `a.data` (no copy; it shares memory with `a.data`).
 *
 * @example
 * ```ts
 * import { toBytes } from "./ndarray.ts";
 * const bytes = toBytes({ dtype: "int16", shape: [1], data: new Int16Array([-2]) });
 * console.log(bytes); // Uint8Array(2) [ 254, 255 ]
 * ```
 */
export function toBytes(a: NdArray): Uint8Array {
  assertLittleEndianHost();
  return new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

/**
 * Checks that `a` is a well-formed {@linkcode NdArray}: a known dtype, a shape of non-negative
 * integers, `data` of the dtype's typed array with `numel(shape)` elements. `where` names the array
 * in the message. Throws `INVALID_ARGUMENT` otherwise.
 *
 * @example
 * ```ts
 * import { checkNdArray } from "./ndarray.ts";
 * checkNdArray({ dtype: "uint8", shape: [2], data: new Uint8Array(2) }, "mask");
 * ```
 */
export function checkNdArray(a: NdArray, where: string): void {
  if (typeof a !== "object" || a === null) {
    throw CoreError.invalidArgument(`${where}: ${describe(a)} is not an array object`);
  }
  if (!isDType(a.dtype)) {
    throw CoreError.invalidArgument(
      `${where}: dtype ${describe(a.dtype)} is not supported; expected one of ${DTYPES.join(", ")}`,
    );
  }
  let n: number;
  try {
    n = numel(a.shape);
  } catch (err) {
    throw prefixed(err, where);
  }
  const ctor = CTORS[a.dtype];
  if (!(a.data instanceof ctor)) {
    throw CoreError.invalidArgument(
      `${where}: data is ${typeName(a.data)}; expected ${ctor.name} for dtype ${a.dtype}`,
    );
  }
  if (a.data.length !== n) {
    throw CoreError.invalidArgument(
      `${where}: data has ${a.data.length} elements; shape [${a.shape.join(", ")}] needs ${n}`,
    );
  }
}

/**
 * Re-throws a CoreError with `where: ` in front of its message; other errors pass unchanged.

 * @example
 * ```ts
 * import { CoreError } from "../errors.ts";
 * import { prefixed } from "./ndarray.ts";
 * const err = prefixed(CoreError.invalidArgument("bad shape"), "weights.npy");
 * console.log((err as Error).message); // "weights.npy: bad shape"
 * ```
 */
export function prefixed(err: unknown, where: string): unknown {
  if (err instanceof CoreError) {
    return new CoreError(err.code, `${where}: ${err.message}`, { cause: err });
  }
  return err;
}

/**
 * A short, safe description of any value for error messages.

 * @example
 * ```ts
 * import { describe } from "./ndarray.ts";
 * console.log(describe([1, 2]), describe(new Float64Array(1))); // an array of length 2 Float64Array
 * ```
 */
export function describe(v: unknown): string {
  if (typeof v === "string") {
    return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  }
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") {
    return String(v);
  }
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  return typeName(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  const ctor = (v as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === "string" ? ctor.name : "object";
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndianHost(): void {
  if (!LITTLE_ENDIAN) {
    throw CoreError.internal("codecs assume a little-endian host; this host is big-endian");
  }
}
