import assert from "node:assert/strict";
import { deflateSync, zipSync } from "fflate";
import { readNpz, writeNpz } from "./npz.ts";
import { writeNpy } from "./npy.ts";
import { crc32, readZip } from "./zip.ts";
import { DTYPES, type NdArray } from "./ndarray.ts";
import {
  assertBytesEqual,
  assertInvalid,
  assertSameArray,
  randomArray,
  Rng,
  SHAPES,
} from "./_test_util.ts";

interface RawEntry {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  crc?: number;
  usize?: number;
  flags?: number;
  method?: number;
  zip64?: boolean;
}

/** A ZIP built by hand, so tests can forge any field (ZIP64 forms, bad CRCs, sizes, methods). */
function buildZip(entries: RawEntry[], options: { zip64Eocd?: boolean } = {}): Uint8Array {
  const enc = new TextEncoder();
  const chunks: number[] = [];
  const central: number[] = [];
  const u16 = (a: number[], v: number) => a.push(v & 0xff, (v >>> 8) & 0xff);
  const u32 = (a: number[], v: number) => {
    u16(a, v & 0xffff);
    u16(a, Math.floor(v / 65536) & 0xffff);
  };
  const u64 = (a: number[], v: number) => {
    u32(a, v % 2 ** 32);
    u32(a, Math.floor(v / 2 ** 32));
  };
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = e.deflate ? deflateSync(e.data) : e.data;
    const method = e.method ?? (e.deflate ? 8 : 0);
    const crc = e.crc ?? crc32(e.data);
    const usize = e.usize ?? e.data.length;
    const offset = chunks.length;
    u32(chunks, 0x04034b50);
    u16(chunks, 20);
    u16(chunks, e.flags ?? 0);
    u16(chunks, method);
    u32(chunks, 0);
    u32(chunks, crc);
    u32(chunks, body.length);
    u32(chunks, usize);
    u16(chunks, name.length);
    u16(chunks, 0);
    chunks.push(...name, ...body);
    const extra: number[] = [];
    if (e.zip64) {
      u16(extra, 1);
      u16(extra, 24);
      u64(extra, usize);
      u64(extra, body.length);
      u64(extra, offset);
    }
    u32(central, 0x02014b50);
    u16(central, 45);
    u16(central, 45);
    u16(central, e.flags ?? 0);
    u16(central, method);
    u32(central, 0);
    u32(central, crc);
    u32(central, e.zip64 ? 0xffffffff : body.length);
    u32(central, e.zip64 ? 0xffffffff : usize);
    u16(central, name.length);
    u16(central, extra.length);
    u16(central, 0);
    u16(central, 0);
    u16(central, 0);
    u32(central, 0);
    u32(central, e.zip64 ? 0xffffffff : offset);
    central.push(...name, ...extra);
  }
  const cdOffset = chunks.length;
  chunks.push(...central);
  if (options.zip64Eocd) {
    const z = chunks.length;
    u32(chunks, 0x06064b50);
    u64(chunks, 44);
    u16(chunks, 45);
    u16(chunks, 45);
    u32(chunks, 0);
    u32(chunks, 0);
    u64(chunks, entries.length);
    u64(chunks, entries.length);
    u64(chunks, central.length);
    u64(chunks, cdOffset);
    u32(chunks, 0x07064b50);
    u32(chunks, 0);
    u64(chunks, z);
    u32(chunks, 1);
  }
  u32(chunks, 0x06054b50);
  u16(chunks, 0);
  u16(chunks, 0);
  u16(chunks, options.zip64Eocd ? 0xffff : entries.length);
  u16(chunks, options.zip64Eocd ? 0xffff : entries.length);
  u32(chunks, options.zip64Eocd ? 0xffffffff : central.length);
  u32(chunks, options.zip64Eocd ? 0xffffffff : cdOffset);
  u16(chunks, 0);
  return new Uint8Array(chunks);
}

const small: NdArray = { dtype: "int16", shape: [3], data: new Int16Array([1, -2, 3]) };

Deno.test("npz round-trips every dtype and shape, stored and deflated", () => {
  const rng = new Rng(21);
  const arrays: Record<string, NdArray> = {};
  for (const dtype of DTYPES) {
    SHAPES.forEach((s, i) => arrays[`${dtype}_${i}`] = randomArray(rng, dtype, s));
  }
  for (const compress of [false, true]) {
    const bytes = writeNpz(arrays, { compress });
    const back = readNpz(bytes);
    assert.deepEqual(Object.keys(back), Object.keys(arrays), "names and order");
    for (const [k, a] of Object.entries(arrays)) {
      assertSameArray(back[k], a, `${k} compress=${compress}`);
    }
  }
});

Deno.test("npz deflate really compresses and the method is recorded per entry", () => {
  const zeros: NdArray = { dtype: "float64", shape: [1000], data: new Float64Array(1000) };
  const stored = writeNpz({ zeros });
  const deflated = writeNpz({ zeros }, { compress: true, level: 9 });
  assert.ok(stored.length > 8000, `stored is ${stored.length} bytes`);
  assert.ok(deflated.length < 400, `deflated is ${deflated.length} bytes`);
  const method = (b: Uint8Array) => b[8] | (b[9] << 8);
  assert.equal(method(stored), 0);
  assert.equal(method(deflated), 8);
});

Deno.test("npz writer is deterministic, keeps order and odd names", () => {
  const arrays = new Map<string, NdArray>([["zeta", small], ["__proto__", small], ["ünï", small], [
    "0",
    small,
  ]]);
  const one = writeNpz(arrays, { compress: true });
  const two = writeNpz(arrays, { compress: true });
  assertBytesEqual(one, two, "same bytes twice");
  // The DOS time and date of every entry are fixed at 1980-01-01 00:00, not the clock.
  const view = new DataView(one.buffer);
  assert.equal(view.getUint16(10, true), 0, "local header time");
  assert.equal(view.getUint16(12, true), (1 << 5) | 1, "local header date");
  const back = readNpz(one);
  // A record lists integer-like keys first (a JavaScript rule); the others keep archive order.
  assert.deepEqual(Object.keys(back), ["0", "zeta", "__proto__", "ünï"]);
  const names = readZip(one).map((e) => e.name);
  assert.deepEqual(names, ["zeta.npy", "__proto__.npy", "ünï.npy", "0.npy"], "archive order");
  assert.equal(Object.getPrototypeOf(back), Object.prototype, "no prototype pollution");
  assertSameArray(back.__proto__ as NdArray, small);
});

Deno.test("npz reader reads ZIP64 fields as numpy's force_zip64 archives use them", () => {
  const npy = writeNpy(small);
  for (const zip64Eocd of [false, true]) {
    const zip = buildZip([{ name: "a.npy", data: npy, zip64: true }, {
      name: "b.npy",
      data: npy,
      deflate: true,
    }], { zip64Eocd });
    const back = readNpz(zip);
    assertSameArray(back.a, small);
    assertSameArray(back.b, small);
  }
  const dirs = buildZip([{ name: "sub/", data: new Uint8Array(0) }, { name: "x.npy", data: npy }]);
  assert.deepEqual(Object.keys(readNpz(dirs)), ["x"], "directory entries are skipped");
});

Deno.test("npz reader rejects corrupt archives with the entry name", () => {
  const npy = writeNpy(small);
  assertInvalid(() => readNpz(new Uint8Array(10)), /npz: file is 10 bytes, too short for a ZIP/);
  assertInvalid(() => readNpz(npy), /no end-of-central-directory record found/);
  const good = writeNpz({ a: small });
  assertInvalid(
    () => readNpz(good.subarray(0, good.length - 30)),
    /no end-of-central-directory|central directory/,
  );
  const flipped = good.slice();
  flipped[100] ^= 0x01; // inside a.npy's data
  assertInvalid(
    () => readNpz(flipped),
    /npz: entry "a.npy": CRC-32 mismatch; the archive is corrupt/,
  );
  assertInvalid(() => readNpz(buildZip([{ name: "a.npy", data: npy, crc: 1 }])), /CRC-32 mismatch/);
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.txt", data: npy }])),
    /entry "a.txt" is not a .npy file/,
  );
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.npy", data: npy }, { name: "a.npy", data: npy }])),
    /entry "a.npy" appears twice/,
  );
  assertInvalid(() => readNpz(buildZip([{ name: "a.npy", data: npy, flags: 1 }])), /encrypted/);
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.npy", data: npy, method: 12 }])),
    /compression method 12; expected stored \(0\) or deflate \(8\)/,
  );
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.npy", data: npy, usize: npy.length + 1 }])),
    /stored but its sizes differ/,
  );
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.npy", data: npy, deflate: true, usize: 2 ** 31 }])),
    /declares 2147483648 bytes from \d+ compressed, more than DEFLATE can produce/,
  );
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.npy", data: npy, deflate: true, usize: npy.length + 5 }])),
    /inflates to \d+ bytes; its header says/,
  );
  assertInvalid(
    () => readNpz(buildZip([{ name: "a.npy", data: npy, deflate: true, usize: npy.length - 5 }])),
    /inflates to more than \d+ bytes/,
  );
  assertInvalid(
    () =>
      readNpz(buildZip([{ name: "a.npy", data: npy, zip64: true }]).slice(0, -22 - 10).reverse()),
    /end-of-central-directory/,
  );
  const badNpy = npy.slice(0, -1);
  assertInvalid(
    () => readNpz(buildZip([{ name: "w.npy", data: badNpy }])),
    /^npz: entry "w.npy": npy: '<i2' \(3,\) needs 6 data bytes/,
  );
  assertInvalid(
    () => readNpz(good, { maxTotalBytes: 10 }),
    /more than 10 uncompressed bytes, the limit; raise maxTotalBytes/,
  );
  const method8 = buildZip([{ name: "a.npy", data: new Uint8Array([1, 2, 3, 4]), method: 8 }]);
  assertInvalid(() => readNpz(method8), /compressed data is corrupt|inflates to/);
});

Deno.test("npz writer validates names and arrays", () => {
  assertInvalid(() => writeNpz({ "a/b": small }), /array name "a\/b" contains a path separator/);
  assertInvalid(() => writeNpz({ "": small }), /array name "" is not a non-empty string/);
  assertInvalid(
    () => writeNpz({ w: { dtype: "float32", shape: [2], data: new Float32Array(1) } }),
    /^npz: array "w": data has 1 elements; shape \[2\] needs 2$/,
  );
  assertInvalid(
    () => writeNpz({ w: small }, { compress: true, level: 11 as 9 }),
    /level 11; expected 1 to 9/,
  );
});

Deno.test("zip reader and crc32 agree with fflate", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  const rng = new Rng(5);
  const files = { "a.bin": rng.bytes(3000), "b/c.txt": new TextEncoder().encode("hello") };
  const zip = zipSync({ "a.bin": [files["a.bin"], { level: 6 }], "b/c.txt": files["b/c.txt"] });
  const entries = readZip(zip);
  assert.deepEqual(entries.map((e) => e.name), ["a.bin", "b/c.txt"]);
  assertBytesEqual(entries[0].data, files["a.bin"], "a.bin");
  assertBytesEqual(entries[1].data, files["b/c.txt"], "b/c.txt");
});
