import assert from "node:assert/strict";
import {
  readSafetensors,
  SAFETENSORS_ITEMSIZE,
  type SafetensorsDType,
  type SafetensorsTensor,
  type SafetensorsTensorInput,
  writeSafetensors,
} from "./safetensors.ts";
import { numel } from "./ndarray.ts";
import { assertBytesEqual, assertInvalid, putUint, Rng, SHAPES } from "./_test_util.ts";

const DTYPES = Object.keys(SAFETENSORS_ITEMSIZE) as SafetensorsDType[];
const CTOR = {
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function randomTensor(rng: Rng, dtype: SafetensorsDType, shape: number[]): SafetensorsTensor {
  const bytes = rng.bytes(numel(shape) * SAFETENSORS_ITEMSIZE[dtype]);
  if (dtype === "BOOL") bytes.forEach((b, i) => bytes[i] = b & 1);
  return { dtype, shape, data: new CTOR[dtype](bytes.buffer) } as SafetensorsTensor;
}

function bytesOf(t: SafetensorsTensorInput): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A file from a header string and a data buffer, with the header length written as given. */
function craft(header: string, data: Uint8Array = new Uint8Array(0), length?: number): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  putUint(out, 0, 8, length ?? json.length);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const info = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

Deno.test("safetensors round-trips every dtype and shape, with metadata", () => {
  const rng = new Rng(1);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const dtype of DTYPES) {
    SHAPES.forEach((shape, i) =>
      tensors.set(`${dtype.toLowerCase()}.${i}`, randomTensor(rng, dtype, shape))
    );
  }
  const metadata = { format: "pt", config: JSON.stringify({ width: 0.125, note: "ünïcode ✓" }) };
  const bytes = writeSafetensors(tensors, metadata);
  const back = readSafetensors(bytes);
  assert.deepEqual(back.metadata, metadata);
  assert.equal(back.tensors.size, tensors.size);
  for (const [name, t] of tensors) {
    const r = back.tensors.get(name);
    assert.ok(r, name);
    assert.equal(r.dtype, t.dtype, name);
    assert.deepEqual(r.shape, t.shape, name);
    assert.equal(r.data.constructor, CTOR[t.dtype], name);
    assert.equal(r.data.length, numel(t.shape), name);
    assertBytesEqual(bytesOf(r), bytesOf(t), name);
  }
});

Deno.test("safetensors writer matches the reference layout byte for byte", () => {
  const bytes = writeSafetensors({
    test: { dtype: "I32", shape: [2, 2], data: new Int32Array(4) },
  });
  const expected = new TextEncoder().encode(
    '@\0\0\0\0\0\0\0{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    ',
  );
  assertBytesEqual(bytes.subarray(0, expected.length), expected, "header");
  assert.equal(bytes.length, expected.length + 16);

  // Dtype (widest first) then name; metadata first with sorted keys; numeric names stay strings.
  const rng = new Rng(2);
  const out = writeSafetensors({
    b: randomTensor(rng, "U8", [3]),
    "10": randomTensor(rng, "F32", [1]),
    "2": randomTensor(rng, "F32", [1]),
    a: randomTensor(rng, "I64", [1]),
    h: randomTensor(rng, "F16", [1]),
  }, { z: "1", a: "2" });
  const n = Number(new DataView(out.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = new TextDecoder().decode(out.subarray(8, 8 + n));
  assert.match(
    header,
    /^\{"__metadata__":\{"a":"2","z":"1"\},"a":.*,"10":.*,"2":.*,"h":.*,"b":.*\} *$/,
  );
  assert.match(header, /"a":\{"dtype":"I64","shape":\[1\],"data_offsets":\[0,8\]\}/);
});

Deno.test("safetensors writer is deterministic and independent of insertion order", () => {
  const rng = new Rng(3);
  const x = randomTensor(rng, "F32", [4, 4]);
  const y = randomTensor(rng, "BF16", [3]);
  const z = randomTensor(rng, "BOOL", [5]);
  const one = writeSafetensors({ x, y, z }, { k: "v", j: "w" });
  const two = writeSafetensors(new Map([["z", z], ["y", y], ["x", x]]), { j: "w", k: "v" });
  assertBytesEqual(one, two, "same tensors in another order");
  // Every tensor starts at a multiple of its item size within the file.
  const { tensors } = readSafetensors(one);
  assert.deepEqual([...tensors.keys()], ["x", "y", "z"], "reader lists tensors in offset order");
  const n = new DataView(one.buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(one.subarray(8, 8 + n)));
  for (
    const [name, t] of Object.entries(header) as [
      string,
      { dtype: SafetensorsDType; data_offsets: number[] },
    ][]
  ) {
    if (name === "__metadata__") continue;
    assert.equal(
      (8 + n + t.data_offsets[0]) % SAFETENSORS_ITEMSIZE[t.dtype],
      0,
      `${name} is aligned`,
    );
  }
});

Deno.test("safetensors accepts raw bytes for any dtype and checks their length", () => {
  const raw = new Uint8Array([0, 0, 128, 63, 0, 0, 0, 64]);
  const t = readSafetensors(writeSafetensors({ w: { dtype: "F32", shape: [2], data: raw } }))
    .tensors.get("w");
  assert.deepEqual(t?.data, new Float32Array([1, 2]));
  assertInvalid(
    () => writeSafetensors({ w: { dtype: "F32", shape: [3], data: raw } }),
    /tensor "w": 8 raw bytes; F32 \[3\] needs 12 \(or pass a Float32Array of 3 elements\)/,
  );
});

Deno.test("safetensors reader copies data out of unaligned input", () => {
  const file = writeSafetensors({
    v: { dtype: "I64", shape: [2], data: new BigInt64Array([1n, -1n]) },
  });
  const shifted = new Uint8Array(file.length + 3);
  shifted.set(file, 3);
  const t = readSafetensors(shifted.subarray(3)).tensors.get("v");
  assert.deepEqual(t?.data, new BigInt64Array([1n, -1n]));
  shifted.fill(0);
  assert.deepEqual(t?.data, new BigInt64Array([1n, -1n]), "not a view of the input");
});

Deno.test("safetensors reader takes tensors in any header order, zero-size and odd names", () => {
  const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const header = `{"z":${info("U8", [4], [0, 4])},"__proto__":${info("I32", [2], [4, 12])},` +
    `"empty":${info("F32", [0, 3], [4, 4])},"__metadata__":{"__proto__":"x"}}`;
  const { tensors, metadata } = readSafetensors(craft(header, data));
  assert.deepEqual([...tensors.keys()].sort(), ["__proto__", "empty", "z"]);
  assert.deepEqual(tensors.get("z")?.data, new Uint8Array([1, 2, 3, 4]));
  assert.deepEqual(tensors.get("__proto__")?.data, new Int32Array([0x08070605, 0x0c0b0a09]));
  assert.equal(tensors.get("empty")?.data.length, 0);
  assert.equal(Object.getPrototypeOf(metadata), Object.prototype, "no prototype pollution");
  assert.equal(Object.getOwnPropertyDescriptor(metadata, "__proto__")?.value, "x");
  const empty = readSafetensors(craft("{}  "));
  assert.equal(empty.tensors.size, 0);
  assert.deepEqual(empty.metadata, {});
  assertBytesEqual(writeSafetensors({}), craft("{}      "), "empty file");
});

Deno.test("safetensors reader rejects bad framing with actionable messages", () => {
  assertInvalid(() => readSafetensors(new Uint8Array(5)), /file is 5 bytes; .* 8-byte header size/);
  const huge = craft("{}");
  putUint(huge, 0, 8, 2 ** 62);
  assertInvalid(
    () => readSafetensors(huge),
    /header size field says 4611686018427388000 bytes but only 2 bytes follow/,
  );
  assertInvalid(() => readSafetensors(craft("{}", undefined, 3)), /says 3 bytes but only 2/);
  assertInvalid(
    () => readSafetensors(craft('{"a":1}'), { maxHeaderBytes: 4 }),
    /more than the limit of 4/,
  );
  assertInvalid(() => readSafetensors(craft(" {}")), /header starts with byte 0x20; expected '\{'/);
  assertInvalid(() => readSafetensors(craft("{", new Uint8Array(0))), /expected a JSON object/);
  const badUtf8 = craft('{"a":"xx"}');
  badUtf8[14] = 0xff;
  assertInvalid(() => readSafetensors(badUtf8), /header is not valid UTF-8/);
  assertInvalid(() => readSafetensors(craft('{"a":}')), /header is not valid JSON/);
  assertInvalid(() => readSafetensors(craft("{}x")), /not valid JSON/);
  assertInvalid(() => readSafetensors(new Uint8Array(7)), /7 bytes/);
});

Deno.test("safetensors reader validates every tensor entry", () => {
  const d8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp][] = [
    [`{"w":5}`, d8, /tensor "w" is 5; expected \{dtype, shape, data_offsets\}/],
    [
      `{"w":${info("F64", [1], [0, 8])}}`,
      d8,
      /dtype F64, which cotrain does not read; supported: F32, F16/,
    ],
    [`{"w":${info("f32", [2], [0, 8])}}`, d8, /dtype "f32"; expected one of F32/],
    [`{"w":${info("F32", "2", [0, 8])}}`, d8, /shape "2"; expected an array of integers/],
    [`{"w":${info("F32", [2, -1], [0, 8])}}`, d8, /dimension 1 is -1/],
    [`{"w":${info("F32", [1.5], [0, 8])}}`, d8, /dimension 0 is 1.5/],
    [`{"w":${info("F32", [2], [0])}}`, d8, /data_offsets \[0\]; expected \[begin, end\]/],
    [`{"w":${info("F32", [2], [0, "8"])}}`, d8, /data_offsets \[0, "8"\]/],
    [`{"w":${info("F32", [2], null)}}`, d8, /data_offsets null/],
    [`{"w":${info("F32", [2], [8, 0])}}`, d8, /begin exceeds end/],
    [`{"w":${info("F32", [4], [0, 16])}}`, d8, /ends at byte 16 but the data buffer has 8 bytes/],
    [
      `{"w":${info("F32", [3], [0, 8])}}`,
      d8,
      /F32 \[3\], which needs 12 bytes, but data_offsets \[0, 8\] span 8/,
    ],
    [`{"w":${info("F32", [1], [4, 8])}}`, d8, /starts at byte 4 .* leaving bytes 0..4 unused/],
    [`{"w":${info("F32", [2], [0, 8])},"v":${info("F32", [1], [4, 8])}}`, d8, /overlaps/],
    [`{"w":${info("F32", [1], [0, 4])}}`, d8, /tensors cover 4 bytes of a 8-byte data buffer/],
    [
      `{"__metadata__":[]}`,
      new Uint8Array(0),
      /"__metadata__" is an array of length 0; expected an object/,
    ],
    [
      `{"__metadata__":{"k":1}}`,
      new Uint8Array(0),
      /"__metadata__"\["k"\] is 1; expected a string/,
    ],
    [`{"w":${info("F32", [2 ** 30, 2 ** 30], [0, 8])}}`, d8, /more than 2\^53/],
  ];
  for (const [header, data, pattern] of cases) {
    assertInvalid(() => readSafetensors(craft(header, data)), pattern);
  }
});

Deno.test("safetensors writer rejects bad tensors, names and metadata", () => {
  const ok = { dtype: "F32" as const, shape: [1], data: new Float32Array(1) };
  assertInvalid(() => writeSafetensors({ __metadata__: ok }), /"__metadata__" is reserved/);
  assertInvalid(() => writeSafetensors({ "": ok }), /tensor name "" is not a non-empty/);
  assertInvalid(() => writeSafetensors({ "\ud800": ok }), /well-formed/);
  assertInvalid(
    () => writeSafetensors({ w: { dtype: "F64", shape: [1], data: new Float64Array(1) } as never }),
    /tensor "w" has dtype "F64"; expected one of F32, F16, BF16, I64, I32, U8, BOOL/,
  );
  assertInvalid(
    () => writeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array(3) } }),
    /tensor "w": data has 3 elements; shape \[2\] needs 2/,
  );
  assertInvalid(
    () => writeSafetensors({ w: { dtype: "I64", shape: [1], data: new Int32Array(2) } as never }),
    /data is Int32Array; expected BigInt64Array or raw bytes/,
  );
  assertInvalid(
    () => writeSafetensors({ w: { dtype: "I32", shape: [-1], data: new Int32Array(0) } }),
    /tensor "w": shape/,
  );
  assertInvalid(
    () => writeSafetensors({ w: ok }, { k: 5 as unknown as string }),
    /metadata\["k"\] is 5/,
  );
});
