import assert from "node:assert/strict";
import { npyHeader, readNpy, writeNpy } from "./npy.ts";
import { DTYPES, type NdArray } from "./ndarray.ts";
import { assertInvalid, assertSameArray, putUint, randomArray, Rng, SHAPES } from "./_test_util.ts";

/** A .npy file from a header dict string and data bytes (v1 unless `version` says otherwise). */
function craft(dict: string, data: Uint8Array = new Uint8Array(0), version = 1): Uint8Array {
  const h = new TextEncoder().encode(dict + "\n");
  const prefix = version === 1 ? 10 : 12;
  const out = new Uint8Array(prefix + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  putUint(out, 8, version === 1 ? 2 : 4, h.length);
  out.set(h, prefix);
  out.set(data, prefix + h.length);
  return out;
}

const f4 = (shape: string, extra = "") =>
  `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, ${extra}}`;

Deno.test("npy round-trips every dtype and shape in every version", () => {
  const rng = new Rng(11);
  for (const dtype of DTYPES) {
    for (const shape of SHAPES) {
      const a = randomArray(rng, dtype, shape);
      for (const version of [undefined, 1, 2, 3] as const) {
        const bytes = writeNpy(a, { version });
        assert.equal(bytes[6], version ?? 1, "version byte");
        const headerEnd = bytes.length - a.data.byteLength;
        assert.equal(headerEnd % 64, 0, "data starts on a 64-byte boundary");
        assert.equal(bytes[headerEnd - 1], 0x0a, "header ends with a newline");
        assertSameArray(readNpy(bytes), a, `${dtype} [${shape}] v${version}`);
      }
    }
  }
});

Deno.test("npy header is numpy's dict literal with growth padding", () => {
  const h = new TextDecoder().decode(npyHeader("float32", [3, 4]));
  assert.equal(h.length, 128);
  assert.equal(
    h.slice(10),
    "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" + " ".repeat(58) + "\n",
  );
  const scalar = new TextDecoder().decode(npyHeader("bool", []));
  assert.equal(
    scalar.slice(10).trimEnd(),
    "{'descr': '|b1', 'fortran_order': False, 'shape': (), }",
  );
  assert.ok(new TextDecoder().decode(npyHeader("uint8", [7])).includes("'shape': (7,), }"));
  assert.equal(npyHeader("int8", [1], 2).length % 64, 0);
});

Deno.test("npy reader accepts every header spelling numpy's literal_eval would", () => {
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  const spellings = [
    f4("(2, 3)"),
    `{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}`,
    `{'shape':(2,3),'fortran_order':False,'descr':'<f4'}`,
    `  { 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }   `,
    f4("(2L, 3L)"), // written by Python 2
    `{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }`,
  ];
  for (const dict of spellings) {
    const a = readNpy(craft(dict, data));
    assert.equal(a.dtype, "float32", dict);
    assert.deepEqual(a.shape, [2, 3], dict);
    assert.deepEqual(a.data, new Float32Array([1, 2, 3, 4, 5, 6]), dict);
  }
  for (const descr of ["|u1", "<u1", ">u1", "u1"]) {
    const a = readNpy(
      craft(`{'descr': '${descr}', 'fortran_order': False, 'shape': (2,)}`, new Uint8Array([4, 5])),
    );
    assert.equal(a.dtype, "uint8", descr);
  }
  const b = readNpy(
    craft(`{'descr': '?', 'fortran_order': False, 'shape': ()}`, new Uint8Array([1])),
  );
  assert.equal(b.dtype, "bool");
  assert.deepEqual(readNpy(craft(f4("(2, 3)"), data, 2)).shape, [2, 3], "v2 header");
  assert.deepEqual(readNpy(craft(f4("(2, 3)"), data, 3)).shape, [2, 3], "v3 header");
});

Deno.test("npy reader transposes fortran_order True into C order", () => {
  // A 2x3 matrix [[0,1,2],[3,4,5]] stored column-major is 0 3 1 4 2 5.
  const f = new Int16Array([0, 3, 1, 4, 2, 5]);
  const a = readNpy(
    craft(`{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }`, new Uint8Array(f.buffer)),
  );
  assert.deepEqual(a.data, new Int16Array([0, 1, 2, 3, 4, 5]));
  // 3-d: element (i, j, k) of shape (2, 3, 4) stored column-major at i + 2j + 6k.
  const src = new Float64Array(24);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 4; k++) src[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
    }
  }
  const b = readNpy(
    craft(
      `{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 4), }`,
      new Uint8Array(src.buffer),
    ),
  );
  const want = new Float64Array(24);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 4; k++) want[12 * i + 4 * j + k] = 100 * i + 10 * j + k;
    }
  }
  assert.deepEqual(b.data, want);
});

Deno.test("npy reader rejects bad framing and data lengths", () => {
  const good = writeNpy({ dtype: "int32", shape: [2], data: new Int32Array([1, 2]) });
  assertInvalid(() => readNpy(new Uint8Array(4)), /file is 4 bytes, too short/);
  assertInvalid(
    () => readNpy(new TextEncoder().encode("PK\x03\x04 not numpy at all")),
    /magic \\x93NUMPY/,
  );
  const v4 = good.slice();
  v4[6] = 4;
  assertInvalid(() => readNpy(v4), /format version 4.0 is not supported; expected 1.0, 2.0 or 3.0/);
  const long = good.slice();
  putUint(long, 8, 2, 60000);
  assertInvalid(() => readNpy(long), /header length field says 60000 bytes but only \d+ follow/);
  assertInvalid(
    () => readNpy(good.subarray(0, good.length - 1)),
    /'<i4' \(2,\) needs 8 data bytes but the file has 7; the file is truncated/,
  );
  const extra = new Uint8Array(good.length + 2);
  extra.set(good);
  assertInvalid(() => readNpy(extra), /has 10; the file is followed by extra bytes/);
  const badUtf8 = craft(f4("()"), new Uint8Array(4), 3);
  badUtf8[14] = 0xff;
  assertInvalid(() => readNpy(badUtf8), /v3.0 header is not valid UTF-8/);
});

Deno.test("npy reader rejects malformed or unsupported headers with clear messages", () => {
  const cases: [string, RegExp][] = [
    [
      `{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }`,
      /'>f4' is big-endian.*a.astype\('<f4'\)/,
    ],
    [
      `{'descr': '|O', 'fortran_order': False, 'shape': (1,), }`,
      /'\|O' is an object array \(pickled\)/,
    ],
    [`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }`, /structured dtypes/],
    [
      `{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }`,
      /dtype "<c8" is not supported; expected one of <f2 <f4/,
    ],
    [`{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }`, /dtype "<U5" is not supported/],
    [f4("[1, 2]"), /'shape' is \[1, 2\]; expected a tuple of non-negative integers/],
    [f4("(3)"), /'\(n\)' is not a tuple; a 1-tuple is written '\(n,\)'/],
    [f4("(2, -1)"), /'shape' is \(2, -1\); expected a tuple of non-negative/],
    [f4("('2',)"), /'shape' is \('2',\)/],
    [f4("(1e3,)"), /malformed integer/],
    [f4("(012,)"), /malformed integer/],
    [f4("(99999999999999999999,)"), /out of range/],
    [f4("(1073741824, 1073741824)"), /more than 2\^53 elements/],
    [
      f4("(2,)", "'extra': 1, "),
      /header keys are \{'descr', 'extra', 'fortran_order', 'shape'\}; expected exactly/,
    ],
    [`{'descr': '<f4', 'shape': (1,), }`, /header keys are \{'descr', 'shape'\}/],
    [
      `{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }`,
      /key 'descr' appears twice/,
    ],
    [
      `{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }`,
      /'fortran_order' is 0; expected True or False/,
    ],
    [`{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,), }`, /unexpected "F"/],
    [`{'descr': 5, 'fortran_order': False, 'shape': (1,), }`, /'descr' is 5; expected a string/],
    [
      `{'descr': '<f4', 'fortran_order': False, 'shape': (1,) }x`,
      /unexpected text after the header dict/,
    ],
    [
      `{'descr': '<f4', 'fortran_order': False 'shape': (1,) }`,
      /expected ',' or '\}' after a dict value/,
    ],
    [
      `{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,) }`,
      /escapes in strings are not supported/,
    ],
    [`{'descr: '<f4'}`, /expected ':' after a dict key/],
    [`{5: 1}`, /dict key 5 is not a string/],
    [`['descr']`, /expected '\{' at the start/],
    [
      `{'descr': '<f4', 'fortran_order': False, 'shape': (((((((((1,),),),),),),),),), }`,
      /nesting is too deep/,
    ],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (1,`, /header ends early/],
    [`{'descr': '<f4, 'fortran_order': False}`, /expected ',' or '\}' after a dict value/],
    [`{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2], }`, /expected ',' or '\)'/],
  ];
  for (const [dict, pattern] of cases) {
    assertInvalid(() => readNpy(craft(dict, new Uint8Array(4))), pattern);
  }
});

Deno.test("npy writer rejects bad arrays and versions", () => {
  assertInvalid(
    () => writeNpy({ dtype: "float32", shape: [2], data: new Float32Array(3) }),
    /^npy: data has 3 elements; shape \[2\] needs 2$/,
  );
  assertInvalid(
    () =>
      writeNpy({ dtype: "uint64", shape: [1], data: new BigInt64Array(1) } as unknown as NdArray),
    /data is BigInt64Array; expected BigUint64Array for dtype uint64/,
  );
  assertInvalid(
    () =>
      writeNpy({ dtype: "float32", shape: [1], data: new Float32Array(1) }, { version: 4 as 1 }),
    /version 4 is not supported/,
  );
});
