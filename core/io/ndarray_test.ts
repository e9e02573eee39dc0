import assert from "node:assert/strict";
import {
  arrayTypeName,
  byteLengthOf,
  checkNdArray,
  DTYPES,
  fromBytes,
  isDType,
  ITEMSIZE,
  type NdArray,
  numel,
  toBytes,
  zeros,
} from "./ndarray.ts";
import { assertInvalid } from "./_test_util.ts";

Deno.test("numel counts elements of scalars, vectors and zero-size shapes", () => {
  assert.equal(numel([]), 1);
  assert.equal(numel([5]), 5);
  assert.equal(numel([2, 3, 4]), 24);
  assert.equal(numel([2, 0, 4]), 0);
  assert.equal(numel([0, 2 ** 40, 2 ** 40]), 0, "a zero dimension wins over a huge one");
});

Deno.test("numel rejects negative, fractional, non-number and overflowing dimensions", () => {
  assertInvalid(() => numel([2, -1]), /dimension 1 is -1; expected a non-negative integer/);
  assertInvalid(() => numel([1.5]), /dimension 0 is 1.5/);
  assertInvalid(() => numel(["3" as unknown as number]), /dimension 0 is "3"/);
  assertInvalid(() => numel([2 ** 30, 2 ** 30]), /more than 2\^53 elements/);
  assertInvalid(() => numel("12" as unknown as number[]), /expected an array/);
});

Deno.test("byteLengthOf multiplies by the item size of every dtype", () => {
  for (const dtype of DTYPES) {
    assert.equal(byteLengthOf(dtype, [3, 2]), 6 * ITEMSIZE[dtype], dtype);
    assert.equal(zeros(dtype, [3, 2]).data.byteLength, 6 * ITEMSIZE[dtype], dtype);
  }
  assert.equal(byteLengthOf("float16", []), 2);
  assertInvalid(
    () => byteLengthOf("complex64" as never, [1]),
    /dtype "complex64" is not supported/,
  );
});

Deno.test("isDType and arrayTypeName know exactly the twelve dtypes", () => {
  assert.equal(DTYPES.length, 12);
  assert.ok(DTYPES.every(isDType));
  assert.ok(!isDType("toString"), "inherited names are not dtypes");
  assert.ok(!isDType("float128"));
  assert.equal(arrayTypeName("int64"), "BigInt64Array");
  assert.equal(arrayTypeName("float16"), "Uint16Array");
  assert.equal(arrayTypeName("bool"), "Uint8Array");
});

Deno.test("fromBytes copies (aligned) and toBytes views little-endian bytes", () => {
  const backing = new Uint8Array(9);
  backing.set([1, 0, 0, 0, 0, 0, 0, 128], 1); // misaligned on purpose
  const a = fromBytes("int64", [1], backing.subarray(1));
  assert.equal(a.data[0], -(2n ** 63n) + 1n);
  backing[1] = 7;
  assert.equal(a.data[0], -(2n ** 63n) + 1n, "fromBytes copied");
  assert.deepEqual([...toBytes(a)], [1, 0, 0, 0, 0, 0, 0, 128]);
  assertInvalid(() => fromBytes("float32", [2], new Uint8Array(7)), /needs 8 bytes, got 7/);
});

Deno.test("checkNdArray names the array and says what was expected", () => {
  checkNdArray({ dtype: "uint16", shape: [2, 2], data: new Uint16Array(4) }, "x");
  assertInvalid(
    () => checkNdArray({ dtype: "float32", shape: [2], data: new Float64Array(2) } as never, "w"),
    /^w: data is Float64Array; expected Float32Array for dtype float32$/,
  );
  assertInvalid(
    () => checkNdArray({ dtype: "int8", shape: [2, 2], data: new Int8Array(3) }, "w"),
    /w: data has 3 elements; shape \[2, 2\] needs 4/,
  );
  assertInvalid(
    () => checkNdArray({ dtype: "int8", shape: [-2], data: new Int8Array(0) }, "w"),
    /^w: shape/,
  );
  assertInvalid(() => checkNdArray(null as unknown as NdArray, "w"), /w: null/);
  assertInvalid(
    () => checkNdArray({ dtype: "str", shape: [], data: new Uint8Array(1) } as never, "w"),
    /dtype "str" is not supported/,
  );
});
