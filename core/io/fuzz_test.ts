/**
 * Seeded fuzzing of every decoder: inputs derived from valid files by bit flips, byte changes,
 * truncations, forged length fields, insertions, deletions and format-aware header edits. Each
 * call must either return a well-formed result or throw a CoreError INVALID_ARGUMENT; any other
 * exception (RangeError, TypeError, a SyntaxError from JSON.parse, ...) fails the test.
 */
import assert from "node:assert/strict";
import { zlibSync } from "fflate";
import { CoreError } from "../errors.ts";
import { decodeImage, encodeJpeg, encodePng, type RasterImage } from "./image.ts";
import { checkNdArray, type NdArray, numel } from "./ndarray.ts";
import { readNpy, writeNpy } from "./npy.ts";
import { readNpz, writeNpz } from "./npz.ts";
import {
  readSafetensors,
  SAFETENSORS_ITEMSIZE,
  type SafetensorsTensor,
  writeSafetensors,
} from "./safetensors.ts";
import { crc32 } from "./zip.ts";
import { makePng, pngChunk, putUint, randomArray, Rng, smoothImage } from "./_test_util.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const INTERESTING = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  0x20,
  0x22,
  0x27,
  0x2c,
  0x2d,
  0x30,
  0x39,
  0x7b,
  0x7d,
];
const BIG = [
  0,
  1,
  7,
  8,
  63,
  64,
  255,
  256,
  0xffff,
  0x10000,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 53,
  2 ** 63,
];

/** One generic mutation of `b`; returns the new bytes and a description for failure reports. */
function mutateOnce(rng: Rng, b: Uint8Array, fieldOffsets: number[]): [Uint8Array, string] {
  const at = () => rng.int(Math.max(1, b.length));
  switch (rng.int(10)) {
    case 0: {
      const out = b.slice();
      const i = at();
      if (out.length) out[i] ^= 1 << rng.int(8);
      return [out, `flip bit at ${i}`];
    }
    case 1: {
      const out = b.slice();
      const i = at();
      if (out.length) out[i] = rng.u32() & 0xff;
      return [out, `random byte at ${i}`];
    }
    case 2: {
      const out = b.slice();
      const i = at();
      if (out.length) out[i] = rng.pick(INTERESTING);
      return [out, `interesting byte at ${i}`];
    }
    case 3: {
      const n = rng.int(b.length + 1);
      return [b.slice(0, n), `truncate to ${n}`];
    }
    case 4:
    case 5: {
      const out = b.slice();
      const i = fieldOffsets.length && rng.int(2)
        ? rng.pick(fieldOffsets)
        : rng.int(Math.min(64, b.length + 1));
      const size = rng.pick([2, 4, 8]);
      const v = rng.int(3) ? rng.pick(BIG) + rng.int(3) - 1 : rng.int(b.length + 16);
      putUint(out, i, size, Math.max(0, v));
      return [out, `u${size * 8} ${v} at ${i}`];
    }
    case 6: {
      const i = rng.int(b.length + 1);
      const ins = rng.bytes(1 + rng.int(16));
      const out = new Uint8Array(b.length + ins.length);
      out.set(b.subarray(0, i));
      out.set(ins, i);
      out.set(b.subarray(i), i + ins.length);
      return [out, `insert ${ins.length} bytes at ${i}`];
    }
    case 7: {
      const i = rng.int(b.length + 1);
      const n = 1 + rng.int(16);
      const out = new Uint8Array([...b.subarray(0, i), ...b.subarray(i + n)]);
      return [out, `delete ${n} bytes at ${i}`];
    }
    case 8: {
      const i = rng.int(b.length + 1);
      const j = rng.int(b.length + 1);
      const n = rng.int(32);
      const out = new Uint8Array([...b.subarray(0, i), ...b.subarray(j, j + n), ...b.subarray(i)]);
      return [out, `copy ${n} bytes from ${j} to ${i}`];
    }
    default: {
      const keep = rng.int(Math.min(b.length, 16) + 1);
      const out = new Uint8Array([...b.subarray(0, keep), ...rng.bytes(rng.int(256))]);
      return [out, `keep ${keep} bytes then random`];
    }
  }
}

/** Replaces one character of `text` with a character that matters to a header parser. */
function mutateText(rng: Rng, text: string, alphabet: string): string {
  const i = rng.int(text.length);
  const c = rng.int(4) ? alphabet[rng.int(alphabet.length)] : String.fromCharCode(rng.int(0x3000));
  switch (rng.int(3)) {
    case 0:
      return text.slice(0, i) + c + text.slice(i + 1);
    case 1:
      return text.slice(0, i) + c + text.slice(i);
    default:
      return text.slice(0, i) + text.slice(i + 1 + rng.int(4));
  }
}

interface Target {
  name: string;
  seeds: Uint8Array[];
  iterations: number;
  decode: (bytes: Uint8Array) => unknown;
  validate: (result: unknown) => void;
  fieldOffsets?: (seed: Uint8Array) => number[];
  aware?: (rng: Rng, seed: Uint8Array) => [Uint8Array, string];
}

function runFuzz(t: Target, seed: number): void {
  const rng = new Rng(seed);
  const failures: string[] = [];
  let accepted = 0;
  let rejected = 0;
  let slowest = 0;
  const started = performance.now();
  for (let iter = 0; iter < t.iterations; iter++) {
    const base = rng.pick(t.seeds);
    let input: Uint8Array;
    let how: string;
    if (t.aware && rng.int(3) === 0) {
      [input, how] = t.aware(rng, base);
    } else {
      input = base;
      const steps: string[] = [];
      const offsets = t.fieldOffsets?.(base) ?? [];
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const [next, what] = mutateOnce(rng, input, offsets);
        input = next;
        steps.push(what);
      }
      how = steps.join(", ");
    }
    const t0 = performance.now();
    try {
      const result = t.decode(input);
      t.validate(result);
      accepted++;
    } catch (err) {
      if (err instanceof CoreError && err.code === "INVALID_ARGUMENT") {
        rejected++;
      } else if (failures.length < 5) {
        failures.push(
          `#${iter} (${how}): ${(err as Error)?.constructor?.name}: ${
            (err as Error)?.message ?? err
          }`,
        );
      } else {
        failures.push("");
      }
    }
    slowest = Math.max(slowest, performance.now() - t0);
  }
  const ms = performance.now() - started;
  console.log(
    `${t.name}: ${t.iterations} inputs in ${ms.toFixed(0)} ms, ${accepted} accepted, ` +
      `${rejected} rejected, slowest ${slowest.toFixed(1)} ms`,
  );
  if (failures.length) {
    assert.fail(
      `${t.name}: ${failures.length} inputs raised something other than CoreError ` +
        `INVALID_ARGUMENT (seed ${seed}):\n${failures.filter(Boolean).join("\n")}`,
    );
  }
  assert.ok(
    rejected > t.iterations / 10,
    `${t.name}: only ${rejected} rejections; mutations too weak?`,
  );
}

function validateNdArray(r: unknown): void {
  checkNdArray(r as NdArray, "fuzz result");
}

// ---------------------------------------------------------------------------------------------
// safetensors

const CTOR = {
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function safetensorsSeeds(): Uint8Array[] {
  const rng = new Rng(100);
  const t = (dtype: keyof typeof CTOR, shape: number[]) => {
    const bytes = rng.bytes(numel(shape) * SAFETENSORS_ITEMSIZE[dtype]);
    return { dtype, shape, data: new CTOR[dtype](bytes.buffer) } as SafetensorsTensor;
  };
  return [
    writeSafetensors({
      "conv.weight": t("F32", [2, 3]),
      "conv.bias": t("F16", [3]),
      step: t("I64", []),
      ids: t("I32", [2]),
      mask: t("BOOL", [0, 4]),
      raw: t("U8", [5]),
      half: t("BF16", [2, 1]),
    }, { format: "pt", config: '{"width":0.125}' }),
    writeSafetensors({ a: t("F32", [4]) }),
    writeSafetensors({}),
  ];
}

function safetensorsAware(rng: Rng, seed: Uint8Array): [Uint8Array, string] {
  const n = new DataView(seed.buffer, seed.byteOffset).getUint32(0, true);
  const text = new TextDecoder().decode(seed.subarray(8, 8 + n));
  const edited = mutateText(rng, text, '0123456789-.e{}[]":,FIUB "_');
  const json = new TextEncoder().encode(edited);
  const out = new Uint8Array(8 + json.length + seed.length - 8 - n);
  putUint(out, 0, 8, json.length);
  out.set(json, 8);
  out.set(seed.subarray(8 + n), 8 + json.length);
  return [out, `header text edit: ${JSON.stringify(edited.slice(0, 200))}`];
}

function validateSafetensors(r: unknown): void {
  const { tensors, metadata } = r as ReturnType<typeof readSafetensors>;
  assert.ok(tensors instanceof Map);
  for (const v of Object.values(metadata)) assert.equal(typeof v, "string");
  for (const [name, t] of tensors) {
    assert.ok(t.data instanceof CTOR[t.dtype], `${name}: ${t.dtype} array type`);
    assert.equal(t.data.length, numel(t.shape), `${name}: element count`);
  }
}

Deno.test("fuzz: readSafetensors returns a valid file or throws INVALID_ARGUMENT (20,000 inputs)", () => {
  runFuzz({
    name: "safetensors",
    seeds: safetensorsSeeds(),
    iterations: 20_000,
    decode: (b) => readSafetensors(b),
    validate: validateSafetensors,
    fieldOffsets: () => [0, 4],
    aware: safetensorsAware,
  }, 0x5afe);
});

// ---------------------------------------------------------------------------------------------
// npy

function npySeeds(): Uint8Array[] {
  const rng = new Rng(200);
  return [
    writeNpy(randomArray(rng, "float32", [3, 4])),
    writeNpy(randomArray(rng, "int64", [])),
    writeNpy(randomArray(rng, "bool", [5])),
    writeNpy(randomArray(rng, "float16", [2, 0, 3]), { version: 2 }),
    writeNpy(randomArray(rng, "uint16", [2, 2, 2]), { version: 3 }),
    fortranSeed(),
  ];
}

function fortranSeed(): Uint8Array {
  const b = writeNpy({ dtype: "int32", shape: [2, 3], data: new Int32Array([0, 3, 1, 4, 2, 5]) });
  const at = new TextDecoder("latin1").decode(b.subarray(0, 128)).indexOf("False");
  b.set(new TextEncoder().encode("True "), at); // same length: the header stays aligned
  return b;
}

function npyAware(rng: Rng, seed: Uint8Array): [Uint8Array, string] {
  const prefix = seed[6] === 1 ? 10 : 12;
  const len = prefix === 10
    ? seed[8] | (seed[9] << 8)
    : new DataView(seed.buffer, seed.byteOffset).getUint32(8, true);
  const text = new TextDecoder("latin1").decode(seed.subarray(prefix, prefix + len));
  const edited = mutateText(rng, text, "'\"(),:{}[] 0123456789-+LTrueFalse<>|=fiubO?\n\\");
  const body = new TextEncoder().encode(edited);
  const out = new Uint8Array(prefix + body.length + seed.length - prefix - len);
  out.set(seed.subarray(0, prefix));
  putUint(out, 8, prefix === 10 ? 2 : 4, rng.int(8) ? body.length : rng.int(1 << 16));
  out.set(body, prefix);
  out.set(seed.subarray(prefix + len), prefix + body.length);
  return [out, `header text edit: ${JSON.stringify(edited.slice(0, 200))}`];
}

Deno.test("fuzz: readNpy returns a valid array or throws INVALID_ARGUMENT (20,000 inputs)", () => {
  runFuzz({
    name: "npy",
    seeds: npySeeds(),
    iterations: 20_000,
    decode: (b) => readNpy(b),
    validate: validateNdArray,
    fieldOffsets: () => [6, 7, 8, 9, 10],
    aware: npyAware,
  }, 0x2e5);
});

// ---------------------------------------------------------------------------------------------
// npz

function npzSeeds(): Uint8Array[] {
  const rng = new Rng(300);
  const arrays = {
    x: randomArray(rng, "float32", [2, 3]),
    y: randomArray(rng, "uint8", [4]),
    s: randomArray(rng, "int16", []),
  };
  return [writeNpz(arrays), writeNpz(arrays, { compress: true }), writeNpz({})];
}

/** Offsets of the ZIP structure fields (local headers, central directory, end record). */
function zipFieldOffsets(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] === 0x50 && b[i + 1] === 0x4b && b[i + 2] < 8 && b[i + 3] < 9) {
      for (let k = 4; k < 46; k += 2) out.push(i + k);
    }
  }
  return out;
}

function npzAware(rng: Rng): [Uint8Array, string] {
  // A structurally valid ZIP whose .npy entry is mutated: errors must name the entry.
  const base = rng.pick(npySeeds());
  const [npy, how] = rng.int(2) ? npyAware(rng, base) : mutateOnce(rng, base, [8, 9]);
  const compress = rng.int(2) === 1;
  const names = ["a.npy", "b", "c.npy/", "a.npy"];
  const entries: Record<string, Uint8Array> = { [rng.pick(names)]: npy };
  const zip = rezip(entries, compress);
  return [zip, `valid zip around npy (${how})`];
}

function rezip(entries: Record<string, Uint8Array>, compress: boolean): Uint8Array {
  // Same encoder as writeNpz, but with arbitrary entry bytes.
  return writeRawZip(entries, compress);
}

function writeRawZip(entries: Record<string, Uint8Array>, compress: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const [name, data] of Object.entries(entries)) {
    const body = compress ? deflateRaw(data) : data;
    const n = enc.encode(name);
    const local = new Uint8Array(30 + n.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(8, compress ? 8 : 0, true);
    lv.setUint32(14, crc32(data), true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    const cd = new Uint8Array(46 + n.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, compress ? 8 : 0, true);
    cv.setUint32(16, crc32(data), true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, offset, true);
    cd.set(n, 46);
    parts.push(local, body);
    central.push(cd);
    offset += local.length + body.length;
  }
  const cdSize = central.reduce((s, c) => s + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, central.length, true);
  ev.setUint16(10, central.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((s, c) => s + c.length, 0));
  let p = 0;
  for (const c of all) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

function deflateRaw(data: Uint8Array): Uint8Array {
  const z = zlibSync(data); // 2-byte zlib header, raw deflate, 4-byte Adler-32
  return z.subarray(2, z.length - 4);
}

Deno.test("fuzz: readNpz returns valid arrays or throws INVALID_ARGUMENT (20,000 inputs)", () => {
  runFuzz({
    name: "npz",
    seeds: npzSeeds(),
    iterations: 20_000,
    decode: (b) => readNpz(b),
    validate: (r) => {
      for (const [k, a] of Object.entries(r as Record<string, NdArray>)) {
        assert.equal(typeof k, "string");
        validateNdArray(a);
      }
    },
    fieldOffsets: zipFieldOffsets,
    aware: npzAware,
  }, 0x2e52);
});

// ---------------------------------------------------------------------------------------------
// images

function validateImage(r: unknown): void {
  const img = r as RasterImage;
  assert.ok(Number.isSafeInteger(img.width) && img.width > 0);
  assert.ok(Number.isSafeInteger(img.height) && img.height > 0);
  assert.ok([1, 3, 4].includes(img.channels));
  assert.ok(img.data instanceof Uint8Array);
  assert.equal(img.data.length, img.width * img.height * img.channels);
}

function pngSeeds(): Uint8Array[] {
  const plte = pngChunk("PLTE", new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]));
  const trns = pngChunk("tRNS", new Uint8Array([0, 128]));
  return [
    encodePng(smoothImage(8, 6, 3)),
    encodePng(smoothImage(5, 5, 1)),
    encodePng(smoothImage(4, 3, 4)),
    makePng(4, 2, 2, 3, [new Uint8Array([0b00011011]), new Uint8Array([0b11100100])], [plte, trns]),
    makePng(3, 2, 16, 2, [new Uint8Array(18).fill(0x55), new Uint8Array(18).fill(0xaa)]),
    makePng(9, 2, 1, 0, [new Uint8Array([0xa5, 0x80]), new Uint8Array([0x5a, 0x00])]),
    makePng(2, 2, 8, 4, [new Uint8Array([1, 2, 3, 4]), new Uint8Array([5, 6, 7, 8])]),
  ];
}

/** Edits a field of IHDR or the IDAT stream and fixes the chunk CRC, so the decoder sees it. */
function pngAware(rng: Rng, seed: Uint8Array): [Uint8Array, string] {
  const out = seed.slice();
  const view = new DataView(out.buffer);
  let chunkStart = 8;
  const chunks: [number, number][] = [];
  while (chunkStart + 12 <= out.length) {
    const len = view.getUint32(chunkStart);
    chunks.push([chunkStart, len]);
    chunkStart += 12 + len;
  }
  const [start, len] = rng.int(2) ? chunks[0] : rng.pick(chunks);
  if (len === 0) return [out, "no-op"];
  const i = start + 8 + rng.int(len);
  out[i] = rng.int(2) ? rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 0xff]) : rng.u32() & 0xff;
  view.setUint32(start + 8 + len, crc32(out.subarray(start + 4, start + 8 + len)));
  return [out, `chunk at ${start} byte ${i} = ${out[i]} (CRC fixed)`];
}

Deno.test("fuzz: decodeImage (PNG) returns a valid image or throws INVALID_ARGUMENT (3,000 inputs)", () => {
  runFuzz({
    name: "png",
    seeds: pngSeeds(),
    iterations: 3_000,
    decode: (b) => decodeImage(b, { maxPixels: 1 << 16 }),
    validate: validateImage,
    fieldOffsets: () => [8, 16, 20, 24, 25, 26, 27, 28, 29, 33],
    aware: pngAware,
  }, 0x9e6);
});

Deno.test("fuzz: decodeImage (JPEG) returns a valid image or throws INVALID_ARGUMENT (3,000 inputs)", async () => {
  const seeds = [
    encodeJpeg(smoothImage(16, 16, 3), 80),
    encodeJpeg(smoothImage(9, 7, 1), 50),
    await Deno.readFile(new URL("gray16_libjpeg.jpg", TESTDATA)),
    await Deno.readFile(new URL("rgb16_progressive_libjpeg.jpg", TESTDATA)),
  ];
  runFuzz({
    name: "jpeg",
    seeds,
    iterations: 3_000,
    decode: (b) => decodeImage(b, { maxPixels: 1 << 16 }),
    validate: validateImage,
    aware: (rng, seed) => {
      // Bias edits towards the marker segments (tables, frame and scan headers).
      const out = seed.slice();
      const i = 2 + rng.int(Math.min(out.length - 2, 620));
      out[i] = rng.int(2)
        ? rng.pick([0, 1, 2, 3, 4, 0x10, 0x11, 0x22, 0xff, 0xc0, 0xc4, 0xda, 0xdb])
        : rng.u32() & 0xff;
      return [out, `segment byte ${i} = ${out[i]}`];
    },
  }, 0x19e6);
});
