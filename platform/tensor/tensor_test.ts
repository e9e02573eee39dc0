import { assert, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import {
  decodeTensor,
  type DType,
  encodeTensor,
  firstNonFinite,
  type HostTensor,
  ITEMSIZE,
  parseDType,
  protoDType,
} from "./tensor.ts";

const samples: HostTensor[] = [
  { dtype: "float32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-30, 7]) },
  { dtype: "float16", shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x0000]) },
  { dtype: "int32", shape: [1, 2, 2], data: new Int32Array([1, -1, 2 ** 31 - 1, -(2 ** 31)]) },
  { dtype: "int64", shape: [2], data: new BigInt64Array([2n ** 62n, -5n]) },
  { dtype: "uint8", shape: [4, 1], data: new Uint8Array([0, 1, 128, 255]) },
  { dtype: "bool", shape: [3], data: new Uint8Array([1, 0, 1]) },
  { dtype: "float32", shape: [], data: new Float32Array([42]) },
  { dtype: "float32", shape: [0, 5], data: new Float32Array(0) },
];

Deno.test("tensor: every dtype round-trips through the wire message", () => {
  for (const t of samples) {
    const msg = encodeTensor(t);
    assertEquals(msg.dtype, protoDType(t.dtype));
    assertEquals(msg.data.byteLength, t.data.length * ITEMSIZE[t.dtype]);
    const back = decodeTensor(msg);
    assertEquals(back.dtype, t.dtype);
    assertEquals(back.shape, t.shape);
    assertEquals(
      Array.from(back.data as ArrayLike<unknown>),
      Array.from(t.data as ArrayLike<unknown>),
    );
  }
});

Deno.test("tensor: unaligned wire buffers decode correctly", () => {
  const raw = new Uint8Array(4 * 3 + 1);
  const values = new Float32Array([1.5, -2.25, 3]);
  raw.set(new Uint8Array(values.buffer), 1);
  const t = decodeTensor({ dtype: "DTYPE_FLOAT32", shape: [3], data: raw.subarray(1) });
  assertEquals(Array.from(t.data as Float32Array), [1.5, -2.25, 3]);
});

Deno.test("tensor: bad messages are INVALID_ARGUMENT naming the field", () => {
  const cases: [unknown, string][] = [
    [{ dtype: "DTYPE_FLOAT32", shape: [2, 2], data: new Uint8Array(12) }, "images.data: 12 bytes"],
    [{ dtype: "DTYPE_FLOAT64", shape: [1], data: new Uint8Array(8) }, "images.dtype"],
    [{ dtype: "DTYPE_UNSPECIFIED", shape: [1], data: new Uint8Array(4) }, "images.dtype"],
    [{ dtype: "DTYPE_UINT8", shape: [-1], data: new Uint8Array(0) }, "images.shape[0]"],
    [{ dtype: "DTYPE_UINT8", shape: [1.5], data: new Uint8Array(0) }, "images.shape[0]"],
    [null, "images: missing"],
  ];
  for (const [msg, expected] of cases) {
    const err = assertThrowsCode(
      () => decodeTensor(msg as never, { field: "images" }),
      "INVALID_ARGUMENT",
    );
    assert(err.message.includes(expected), `${err.message} should include ${expected}`);
  }
  const err = assertThrowsCode(
    () =>
      decodeTensor(encodeTensor({ dtype: "int32", shape: [1], data: new Int32Array([1]) }), {
        field: "x",
        dtypes: ["float32"],
      }),
    "INVALID_ARGUMENT",
  );
  assert(err.message.includes("allowed: DTYPE_FLOAT32"), err.message);
});

Deno.test("tensor: NaN and Inf are refused on request, in float32 and float16", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const msg = encodeTensor({ dtype: "float32", shape: [3], data: new Float32Array([0, 1, bad]) });
    decodeTensor(msg); // accepted unless asked
    const err = assertThrowsCode(
      () => decodeTensor(msg, { field: "x", rejectNonFinite: true }),
      "INVALID_ARGUMENT",
    );
    assert(err.message.includes("element 2"), err.message);
  }
  const half: HostTensor = {
    dtype: "float16",
    shape: [2],
    data: new Uint16Array([0x3c00, 0x7e00]),
  };
  assertEquals(firstNonFinite(half), 1);
  assertEquals(firstNonFinite(samples[1]), -1);
});

Deno.test("tensor: dtype names parse from proto and plain forms", () => {
  for (const d of Object.keys(ITEMSIZE) as DType[]) {
    assertEquals(parseDType(d), d);
    assertEquals(parseDType(protoDType(d)), d);
  }
  assertThrowsCode(() => parseDType("complex64"), "INVALID_ARGUMENT");
});
