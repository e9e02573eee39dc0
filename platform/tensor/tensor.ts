/**
 * The tensor codec of the wire contract: `cotrain.v1.Tensor` (inline raw bytes) and
 * `cotrain.v1.TensorRef` (bytes in the object store) to and from typed arrays, with every check
 * a service needs before touching the data: known dtype, whole non-negative shape, byte length
 * equal to prod(shape) * itemsize, optional rejection of NaN/Inf, and for references a URI inside
 * the store and a matching sha256. Failures are CotrainErrors naming the field.
 *
 * @example
 * ```ts
 * import { decodeTensor, encodeTensor } from "./tensor.ts";
 * const msg = encodeTensor({ dtype: "float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
 * const t = decodeTensor(msg, { field: "images", rejectNonFinite: true });
 * console.log(t.shape, t.data);
 * ```
 * @module
 */
import { CotrainError } from "../errors.ts";
import { sha256Hex } from "../store/keys.ts";
import type { ObjectStore } from "../store/types.ts";

/** Element types of the wire contract. */
export type DType = "float32" | "float16" | "int32" | "int64" | "uint8" | "bool";

/** The typed array that holds each dtype (float16 as raw half bits, bool as 0/1 bytes). */
export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** A tensor in memory: dtype, shape and a typed array of prod(shape) elements. */
export interface HostTensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  data: TypedArrayOf[D];
}

/** A `cotrain.v1.Tensor` message as proto-loader presents it. */
export interface TensorMsg {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** A `cotrain.v1.TensorRef` message. */
export interface TensorRefMsg {
  uri: string;
  sha256: string;
  dtype: string;
  shape: number[];
}

/** A `cotrain.v1.TensorOrRef` message (oneof `kind`). */
export interface TensorOrRefMsg {
  inline?: TensorMsg | null;
  ref?: TensorRefMsg | null;
  kind?: "inline" | "ref";
}

/** Bytes per element of each dtype. */
export const ITEMSIZE: Record<DType, number> = {
  float32: 4,
  float16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  bool: 1,
};

const PROTO_NAMES: Record<DType, string> = {
  float32: "DTYPE_FLOAT32",
  float16: "DTYPE_FLOAT16",
  int32: "DTYPE_INT32",
  int64: "DTYPE_INT64",
  uint8: "DTYPE_UINT8",
  bool: "DTYPE_BOOL",
};

/** The dtype of a proto enum name (`DTYPE_FLOAT32`) or plain name (`float32`), or throws. */
export function parseDType(value: string | number, field = "dtype"): DType {
  for (const [name, proto] of Object.entries(PROTO_NAMES)) {
    if (value === proto || value === name) return name as DType;
  }
  throw CotrainError.invalidArgument(
    `${field}: unknown or missing dtype ${JSON.stringify(value)}; allowed: ${
      Object.values(PROTO_NAMES).join(", ")
    }`,
  );
}

/** The proto enum name of a dtype. */
export function protoDType(dtype: DType): string {
  return PROTO_NAMES[dtype];
}

/** Number of elements of `shape`, after checking it is a list of whole numbers >= 0. */
export function checkShape(shape: unknown, field = "shape"): number {
  if (!Array.isArray(shape)) throw CotrainError.invalidArgument(`${field}: must be a list`);
  let n = 1;
  for (const [i, d] of shape.entries()) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw CotrainError.invalidArgument(
        `${field}[${i}]: ${JSON.stringify(d)} is not a whole number >= 0`,
      );
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw CotrainError.invalidArgument(`${field}: too many elements`);
  return n;
}

function view<D extends DType>(dtype: D, bytes: Uint8Array): TypedArrayOf[D] {
  // A view when the bytes are aligned for the element type; a copy into a fresh buffer when not
  // (wire buffers are often unaligned slices of a larger pool).
  const size = ITEMSIZE[dtype];
  // (Uint8Array.from, not slice: a Node Buffer's slice is a view, not a copy.)
  const src = bytes.byteOffset % size === 0 ? bytes : Uint8Array.from(bytes);
  const { buffer, byteOffset, byteLength } = src;
  const n = byteLength / size;
  const out = {
    float32: () => new Float32Array(buffer, byteOffset, n),
    float16: () => new Uint16Array(buffer, byteOffset, n),
    int32: () => new Int32Array(buffer, byteOffset, n),
    int64: () => new BigInt64Array(buffer, byteOffset, n),
    uint8: () => new Uint8Array(buffer, byteOffset, n),
    bool: () => new Uint8Array(buffer, byteOffset, n),
  }[dtype]();
  return out as TypedArrayOf[D];
}

function bytesOf(t: HostTensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Index of the first NaN or +-Inf element, or -1. */
export function firstNonFinite(t: HostTensor): number {
  if (t.dtype === "float32") {
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return i;
  } else if (t.dtype === "float16") {
    const d = t.data as Uint16Array;
    for (let i = 0; i < d.length; i++) if ((d[i] & 0x7c00) === 0x7c00) return i;
  }
  return -1;
}

/** Options of {@linkcode decodeTensor}. */
export interface DecodeOptions {
  /** Name of the field in error messages, e.g. `images`. */
  field?: string;
  /** Refuse NaN and +-Inf (float dtypes). */
  rejectNonFinite?: boolean;
  /** Allowed dtypes (default: all). */
  dtypes?: DType[];
}

function checkTensor(
  dtype: DType,
  shape: number[],
  byteLength: number,
  options: DecodeOptions,
): void {
  const field = options.field ?? "tensor";
  if (options.dtypes && !options.dtypes.includes(dtype)) {
    throw CotrainError.invalidArgument(
      `${field}.dtype: ${protoDType(dtype)} is not accepted here; allowed: ${
        options.dtypes.map(protoDType).join(", ")
      }`,
    );
  }
  const n = checkShape(shape, `${field}.shape`);
  const expected = n * ITEMSIZE[dtype];
  if (byteLength !== expected) {
    throw CotrainError.invalidArgument(
      `${field}.data: ${byteLength} bytes, expected ${expected} (${dtype} [${
        shape.join(",")
      }] = ${n} elements x ${ITEMSIZE[dtype]} bytes)`,
    );
  }
}

function finish(t: HostTensor, options: DecodeOptions): HostTensor {
  if (options.rejectNonFinite) {
    const i = firstNonFinite(t);
    if (i >= 0) {
      throw CotrainError.invalidArgument(
        `${options.field ?? "tensor"}.data: element ${i} is NaN or infinite; finite values only`,
      );
    }
  }
  return t;
}

/** Checks and decodes an inline `cotrain.v1.Tensor`. */
export function decodeTensor(
  msg: TensorMsg | null | undefined,
  options: DecodeOptions = {},
): HostTensor {
  const field = options.field ?? "tensor";
  if (!msg) throw CotrainError.invalidArgument(`${field}: missing`);
  const dtype = parseDType(msg.dtype, `${field}.dtype`);
  const shape = (msg.shape ?? []).map(Number);
  const data = msg.data ?? new Uint8Array(0);
  checkTensor(dtype, shape, data.byteLength, options);
  return finish({ dtype, shape, data: view(dtype, data) }, options);
}

/** Encodes a tensor as an inline `cotrain.v1.Tensor`. */
export function encodeTensor(t: HostTensor): TensorMsg {
  const n = checkShape(t.shape);
  if (t.data.length !== n) {
    throw CotrainError.invalidArgument(
      `tensor: ${t.data.length} elements for shape [${t.shape.join(",")}] (${n} expected)`,
    );
  }
  return { dtype: protoDType(t.dtype), shape: [...t.shape], data: bytesOf(t) };
}

export { sha256Hex };

/**
 * Reads a `cotrain.v1.TensorRef` through the store: the URI must lie inside the store
 * (INVALID_ARGUMENT), the object must exist (NOT_FOUND) and match the given sha256 (DATA_LOSS).
 */
export async function resolveTensorRef(
  ref: TensorRefMsg | null | undefined,
  store: ObjectStore,
  options: DecodeOptions = {},
): Promise<HostTensor> {
  const field = options.field ?? "tensor";
  if (!ref) throw CotrainError.invalidArgument(`${field}: missing`);
  const dtype = parseDType(ref.dtype, `${field}.dtype`);
  const shape = (ref.shape ?? []).map(Number);
  checkShape(shape, `${field}.shape`);
  if (ref.sha256 && !/^[0-9a-f]{64}$/.test(ref.sha256)) {
    throw CotrainError.invalidArgument(`${field}.sha256: must be 64 lower-case hex digits`);
  }
  const key = store.keyOf(ref.uri);
  const info = await store.stat(key);
  if (!info) throw CotrainError.notFound(`${field}.uri: ${ref.uri} does not exist`);
  checkTensor(dtype, shape, info.size, options);
  // The store records each object's sha256 on write and verifies the bytes against it on read, so
  // comparing the reference's hash with the recorded one checks the bytes without hashing twice.
  if (ref.sha256 && info.sha256 !== ref.sha256) {
    throw CotrainError.dataLoss(
      `${field}: ${ref.uri} has sha256 ${info.sha256 || "(none recorded)"}, ` +
        `the reference says ${ref.sha256}`,
    );
  }
  const bytes = await store.get(key);
  return finish({ dtype, shape, data: view(dtype, bytes) }, options);
}

/** Decodes a `cotrain.v1.TensorOrRef`: inline bytes or a reference through the store. */
export function resolveTensor(
  msg: TensorOrRefMsg | null | undefined,
  store: ObjectStore,
  options: DecodeOptions = {},
): Promise<HostTensor> {
  const field = options.field ?? "tensor";
  if (msg?.inline && msg.kind !== "ref") {
    return Promise.resolve().then(() =>
      decodeTensor(msg.inline, { ...options, field: `${field}.inline` })
    );
  }
  if (msg?.ref) return resolveTensorRef(msg.ref, store, { ...options, field: `${field}.ref` });
  return Promise.reject(CotrainError.invalidArgument(`${field}: set inline or ref`));
}

/** Writes a tensor's raw bytes to `key` and returns the `cotrain.v1.TensorRef` naming it. */
export async function storeTensor(
  t: HostTensor,
  store: ObjectStore,
  key: string,
): Promise<TensorRefMsg> {
  const msg = encodeTensor(t);
  const info = await store.put(key, msg.data, { contentType: "application/octet-stream" });
  return { uri: store.uri(key), sha256: info.sha256, dtype: msg.dtype, shape: msg.shape };
}

/**
 * A `cotrain.v1.TensorOrRef` for `t`: inline when its bytes fit `inlineLimitBytes`, otherwise
 * stored under `key` and sent as a reference.
 */
export async function tensorOrRef(
  t: HostTensor,
  store: ObjectStore,
  key: string,
  inlineLimitBytes = 4 * 1024 * 1024,
): Promise<TensorOrRefMsg> {
  if (t.data.byteLength <= inlineLimitBytes) return { inline: encodeTensor(t) };
  return { ref: await storeTensor(t, store, key) };
}
