/**
 * Interop with numpy (and hand-written Python) in both directions: files written by numpy are read
 * by cotrain with identical values, and files written by cotrain are read back in Python and
 * checked there. Python prints JSON (shapes, dtypes, sha256 of the C-order bytes) that the tests
 * compare. Needs a Python with numpy (see test/python.ts); without one these tests fail.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runPython } from "../../test/python.ts";
import { f16ToF32, f32ToF16 } from "./half.ts";
import { decodeImage, encodePng } from "./image.ts";
import { DTYPES, type NdArray, toBytes } from "./ndarray.ts";
import { readNpy, writeNpy } from "./npy.ts";
import { readNpz, writeNpz } from "./npz.ts";
import {
  readSafetensors,
  SAFETENSORS_ITEMSIZE,
  type SafetensorsDType,
  type SafetensorsTensor,
  writeSafetensors,
} from "./safetensors.ts";
import {
  assertBytesEqual,
  assertInvalid,
  randomArray,
  randomImage,
  Rng,
  sha256,
  SHAPES,
  withTempDir,
} from "./_test_util.ts";

interface Summary {
  dtype: string;
  shape: number[];
  sha256: string;
}

async function summary(a: NdArray): Promise<Summary> {
  return { dtype: a.dtype, shape: a.shape, sha256: await sha256(toBytes(a)) };
}

const PY_COMMON = `
import sys, os, json, hashlib, struct, zlib, io
import numpy as np
DTYPES = ${JSON.stringify(DTYPES)}
SHAPES = [tuple(s) for s in ${JSON.stringify(SHAPES)}]
def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
def summary(a):
    return {"dtype": a.dtype.name, "shape": list(a.shape), "sha256": digest(a)}
`;

Deno.test("interop: cotrain reads np.save / write_array (v1, v2, v3, Fortran) with identical values", async () => {
  await withTempDir(async (dir) => {
    const out = await runPython(
      PY_COMMON + `
d = sys.argv[1]
rng = np.random.default_rng(1234)
files = []
for dt in DTYPES:
    for i, shape in enumerate(SHAPES):
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.frombuffer(rng.bytes(n * np.dtype(dt).itemsize), dtype=np.uint8).copy()
        if dt == "bool":
            raw &= 1
        a = raw.view(dt).reshape(shape)
        name = f"{dt}_{i}"
        np.save(os.path.join(d, name + ".npy"), a)
        files.append({"file": name + ".npy", "version": 1, "fortran": False, **summary(a)})
        for v in (2, 3):
            with open(os.path.join(d, f"{name}_v{v}.npy"), "wb") as f:
                np.lib.format.write_array(f, a, version=(v, 0))
            files.append({"file": f"{name}_v{v}.npy", "version": v, "fortran": False, **summary(a)})
        if len(shape) >= 2:
            fa = np.asfortranarray(a)
            np.save(os.path.join(d, name + "_F.npy"), fa)
            files.append({"file": name + "_F.npy", "version": 1, "fortran": True, **summary(a)})
print(json.dumps(files))
`,
      [dir],
    );
    const files = JSON.parse(
      out,
    ) as (Summary & { file: string; version: 1 | 2 | 3; fortran: boolean })[];
    assert.ok(files.length >= DTYPES.length * SHAPES.length * 3, `${files.length} files`);
    let fortranSeen = 0;
    for (const f of files) {
      const bytes = await Deno.readFile(join(dir, f.file));
      const a = readNpy(bytes);
      assert.deepEqual(
        await summary(a),
        { dtype: f.dtype, shape: f.shape, sha256: f.sha256 },
        f.file,
      );
      if (f.fortran) {
        if (new TextDecoder().decode(bytes.subarray(0, 128)).includes("'fortran_order': True")) {
          fortranSeen++;
        }
      } else {
        // Writing the array back gives numpy's bytes exactly.
        assertBytesEqual(writeNpy(a, { version: f.version }), bytes, `${f.file} rewritten`);
      }
    }
    assert.ok(fortranSeen >= 12, `${fortranSeen} files were really stored in Fortran order`);
  });
});

Deno.test("interop: cotrain reads np.savez and np.savez_compressed archives", async () => {
  await withTempDir(async (dir) => {
    const out = await runPython(
      PY_COMMON + `
d = sys.argv[1]
rng = np.random.default_rng(99)
arrays = {}
for dt in DTYPES:
    for i, shape in enumerate(SHAPES[:6]):
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.frombuffer(rng.bytes(n * np.dtype(dt).itemsize), dtype=np.uint8).copy()
        if dt == "bool":
            raw &= 1
        arrays[f"{dt}_{i}"] = raw.view(dt).reshape(shape)
np.savez(os.path.join(d, "plain.npz"), **arrays)
np.savez_compressed(os.path.join(d, "compressed.npz"), **arrays)
np.savez(os.path.join(d, "positional.npz"), arrays["float32_4"], arrays["bool_3"])
print(json.dumps({
    "plain.npz": {k: summary(v) for k, v in arrays.items()},
    "compressed.npz": {k: summary(v) for k, v in arrays.items()},
    "positional.npz": {"arr_0": summary(arrays["float32_4"]), "arr_1": summary(arrays["bool_3"])},
}))
`,
      [dir],
    );
    const expected = JSON.parse(out) as Record<string, Record<string, Summary>>;
    for (const [file, arrays] of Object.entries(expected)) {
      const got = readNpz(await Deno.readFile(join(dir, file)));
      assert.deepEqual(Object.keys(got).sort(), Object.keys(arrays).sort(), file);
      for (const [k, s] of Object.entries(arrays)) {
        assert.deepEqual(await summary(got[k]), s, `${file}:${k}`);
      }
    }
  });
});

Deno.test("interop: numpy files cotrain cannot represent are refused with a clear message", async () => {
  await withTempDir(async (dir) => {
    await runPython(
      PY_COMMON + `
d = sys.argv[1]
np.save(os.path.join(d, "big_endian.npy"), np.arange(3, dtype=">f4"))
np.save(os.path.join(d, "object.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
np.save(os.path.join(d, "structured.npy"), np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]))
np.save(os.path.join(d, "complex.npy"), np.zeros(2, dtype=np.complex64))
np.save(os.path.join(d, "strings.npy"), np.array(["ab", "c"]))
np.savez(os.path.join(d, "with_object.npz"), ok=np.zeros(2), bad=np.array([None], dtype=object))
`,
      [dir],
    );
    const read = async (f: string) => await Deno.readFile(join(dir, f));
    const b1 = await read("big_endian.npy");
    assertInvalid(() => readNpy(b1), /npy: dtype '>f4' is big-endian, which cotrain does not read/);
    const b2 = await read("object.npy");
    assertInvalid(() => readNpy(b2), /dtype '\|O' is an object array \(pickled\)/);
    const b3 = await read("structured.npy");
    assertInvalid(() => readNpy(b3), /structured dtypes/);
    const b4 = await read("complex.npy");
    assertInvalid(() => readNpy(b4), /dtype "<c8" is not supported/);
    const b5 = await read("strings.npy");
    assertInvalid(() => readNpy(b5), /dtype "<U2" is not supported/);
    const b6 = await read("with_object.npz");
    assertInvalid(() => readNpz(b6), /npz: entry "bad.npy": npy: dtype '\|O' is an object array/);
  });
});

Deno.test("interop: numpy reads cotrain's .npy (v1, v2, v3) and .npz files with identical values", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(4242);
    const expected: Record<string, Summary | Record<string, Summary>> = {};
    const forNpz: Record<string, NdArray> = {};
    for (const dtype of DTYPES) {
      for (const [i, shape] of SHAPES.entries()) {
        const a = randomArray(rng, dtype, shape);
        forNpz[`${dtype}_${i}`] = a;
        for (const version of [1, 2, 3] as const) {
          const file = `${dtype}_${i}_v${version}.npy`;
          await Deno.writeFile(join(dir, file), writeNpy(a, { version }));
          expected[file] = await summary(a);
        }
      }
    }
    const npzExpected: Record<string, Summary> = {};
    for (const [k, a] of Object.entries(forNpz)) npzExpected[k] = await summary(a);
    await Deno.writeFile(join(dir, "stored.npz"), writeNpz(forNpz));
    await Deno.writeFile(join(dir, "deflated.npz"), writeNpz(forNpz, { compress: true }));
    expected["stored.npz"] = npzExpected;
    expected["deflated.npz"] = npzExpected;

    const out = await runPython(
      PY_COMMON + `
d = sys.argv[1]
result = {}
for fn in sorted(os.listdir(d)):
    path = os.path.join(d, fn)
    if fn.endswith(".npy"):
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
        a = np.load(path, allow_pickle=False)
        assert a.flags.c_contiguous and a.dtype.isnative, fn
        buf = io.BytesIO()
        np.save(buf, a)
        same = buf.getvalue() == open(path, "rb").read()
        assert version != (1, 0) or same, f"{fn}: np.save writes different bytes"
        result[fn] = summary(a)
    elif fn.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            result[fn] = {k: summary(z[k]) for k in z.files}
print(json.dumps(result))
`,
      [dir],
    );
    const got = JSON.parse(out);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort());
    for (const [file, want] of Object.entries(expected)) assert.deepEqual(got[file], want, file);
  });
});

const ST_NUMPY: Record<SafetensorsDType, string> = {
  F32: "<f4",
  F16: "<f2",
  BF16: "<u2",
  I64: "<i8",
  I32: "<i4",
  U8: "|u1",
  BOOL: "|b1",
};

Deno.test("interop: cotrain reads safetensors written by hand in Python (struct + json)", async () => {
  await withTempDir(async (dir) => {
    const out = await runPython(
      PY_COMMON + `
d = sys.argv[1]
NP = ${JSON.stringify(ST_NUMPY)}
rng = np.random.default_rng(7)
def tensor(st, shape):
    n = int(np.prod(shape, dtype=np.int64))
    if st == "F16":
        a = (rng.standard_normal(n) * 100).astype(np.float16)
    elif st == "BOOL":
        a = rng.integers(0, 2, n).astype(bool)
    else:
        a = np.frombuffer(rng.bytes(n * np.dtype(NP[st]).itemsize), dtype=NP[st])
    return a.reshape(shape)
def write(path, tensors, metadata=None, pad=True, indent=None):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (st, a) in tensors:
        b = a.tobytes()
        header[name] = {"dtype": st, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, indent=indent, ensure_ascii=False).encode("utf-8")
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return {name: {"dtype": st, "shape": list(a.shape), "sha256": digest(a)} for name, (st, a) in tensors}
cases = {}
ts = [("z.last", ("F32", tensor("F32", (3, 4)))), ("a.first", ("I64", tensor("I64", (2,)))),
      ("half", ("F16", tensor("F16", (5,)))), ("brain", ("BF16", tensor("BF16", (2, 2)))),
      ("mask", ("BOOL", tensor("BOOL", (6,)))), ("ids", ("I32", tensor("I32", ()))),
      ("pix", ("U8", tensor("U8", (1, 3)))), ("empty", ("F32", tensor("F32", (0, 4)))),
      ("ünïcode ✓", ("U8", tensor("U8", (2,))))]
cases["padded.safetensors"] = {"tensors": write(os.path.join(d, "padded.safetensors"), ts,
    {"format": "pt", "config": json.dumps({"width": 0.125})}), "metadata": {"format": "pt", "config": json.dumps({"width": 0.125})}}
cases["pretty.safetensors"] = {"tensors": write(os.path.join(d, "pretty.safetensors"), ts[:3], pad=False, indent=2), "metadata": {}}
half = dict(ts)["half"][1]
print(json.dumps({"cases": cases, "half_as_f32": digest(half.astype(np.float32))}))
`,
      [dir],
    );
    const { cases, half_as_f32 } = JSON.parse(out) as {
      cases: Record<string, { tensors: Record<string, Summary>; metadata: Record<string, string> }>;
      half_as_f32: string;
    };
    for (const [file, want] of Object.entries(cases)) {
      const { tensors, metadata } = readSafetensors(await Deno.readFile(join(dir, file)));
      assert.deepEqual(metadata, want.metadata, file);
      assert.deepEqual([...tensors.keys()].sort(), Object.keys(want.tensors).sort(), file);
      for (const [name, s] of Object.entries(want.tensors)) {
        const t = tensors.get(name)!;
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        assert.deepEqual(
          { dtype: t.dtype, shape: t.shape, sha256: await sha256(bytes) },
          s,
          `${file}:${name}`,
        );
      }
      if (file === "padded.safetensors") {
        const half = tensors.get("half")!;
        const f32 = f16ToF32(half.data as Uint16Array);
        assert.equal(
          await sha256(new Uint8Array(f32.buffer)),
          half_as_f32,
          "f16ToF32 matches numpy",
        );
      }
    }
  });
});

Deno.test("interop: Python parses cotrain's safetensors and finds the reference layout", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(77);
    const tensors: Record<string, SafetensorsTensor> = {};
    const expected: Record<string, Summary> = {};
    const ctor = {
      F32: Float32Array,
      F16: Uint16Array,
      BF16: Uint16Array,
      I64: BigInt64Array,
      I32: Int32Array,
      U8: Uint8Array,
      BOOL: Uint8Array,
    };
    for (const dtype of Object.keys(SAFETENSORS_ITEMSIZE) as SafetensorsDType[]) {
      for (const [i, shape] of SHAPES.slice(0, 6).entries()) {
        const n = shape.reduce((p, d) => p * d, 1);
        const bytes = rng.bytes(n * SAFETENSORS_ITEMSIZE[dtype]);
        if (dtype === "BOOL") bytes.forEach((b, k) => bytes[k] = b & 1);
        const name = `layer${i}.${dtype.toLowerCase()}`;
        tensors[name] = { dtype, shape, data: new ctor[dtype](bytes.buffer) } as SafetensorsTensor;
        expected[name] = { dtype, shape, sha256: await sha256(bytes) };
      }
    }
    const metadata = { format: "pt", config: JSON.stringify({ width: 0.125, layers: [1, 2] }) };
    await Deno.writeFile(join(dir, "model.safetensors"), writeSafetensors(tensors, metadata));
    const out = await runPython(
      PY_COMMON + `
NP = ${JSON.stringify(ST_NUMPY)}
RANK = {"BOOL": 0, "U8": 1, "F16": 2, "BF16": 3, "I32": 4, "F32": 5, "I64": 6}
data = open(os.path.join(sys.argv[1], "model.safetensors"), "rb").read()
(n,) = struct.unpack("<Q", data[:8])
assert n % 8 == 0, "header length is a multiple of 8"
raw = data[8:8 + n]
text = raw.decode("utf-8")
assert text.rstrip(" ") == text.rstrip(), "padding is spaces"
header = json.loads(text)
metadata = header.pop("__metadata__", {})
assert list(json.loads(text).keys())[0] == "__metadata__", "metadata comes first"
buf = data[8 + n:]
entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
pos = 0
for name, info in entries:
    b, e = info["data_offsets"]
    assert b == pos, f"{name} starts at {b}, expected {pos}"
    assert (8 + n + b) % np.dtype(NP[info["dtype"]]).itemsize == 0, f"{name} is aligned"
    pos = e
assert pos == len(buf), "tensors cover the buffer"
order = list(header.keys())
assert order == sorted(order, key=lambda k: (-RANK[header[k]["dtype"]], k)), "reference order"
result = {}
for name, info in header.items():
    b, e = info["data_offsets"]
    a = np.frombuffer(buf[b:e], dtype=NP[info["dtype"]]).reshape(info["shape"])
    result[name] = {"dtype": info["dtype"], "shape": info["shape"], "sha256": digest(a)}
print(json.dumps({"tensors": result, "metadata": metadata}))
`,
      [dir],
    );
    const got = JSON.parse(out);
    assert.deepEqual(got.metadata, metadata);
    assert.deepEqual(got.tensors, expected);
  });
});

Deno.test("interop: float16 conversions are bit-identical to numpy's", async () => {
  await withTempDir(async (dir) => {
    // f32 -> f16 on random patterns biased to the half range (NaNs excluded: payload rules vary
    // between numpy's SIMD and scalar paths), checked against numpy's astype(np.float16).
    const rng = new Rng(5150);
    const u = new Uint32Array(100_000);
    for (let i = 0; i < u.length; i++) {
      let v = i % 2
        ? rng.u32()
        : ((rng.u32() & 0x8000_0000) | ((96 + rng.int(64)) << 23) | (rng.u32() & 0x7fffff)) >>> 0;
      if ((v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0) v = 0;
      u[i] = v;
    }
    const f = new Float32Array(u.buffer);
    await Deno.writeFile(
      join(dir, "f32.npy"),
      writeNpy({ dtype: "float32", shape: [f.length], data: f }),
    );
    const out = await runPython(
      PY_COMMON + `
a = np.load(os.path.join(sys.argv[1], "f32.npy"))
every = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
print(json.dumps({"narrow": digest(a.astype(np.float16)), "widen": digest(every)}))
`,
      [dir],
    );
    const want = JSON.parse(out);
    const narrowed = f32ToF16(f);
    assert.equal(
      await sha256(new Uint8Array(narrowed.buffer)),
      want.narrow,
      "f32ToF16 = numpy astype",
    );
    const every = f16ToF32(new Uint16Array(65536).map((_, i) => i));
    assert.equal(await sha256(new Uint8Array(every.buffer)), want.widen, "f16ToF32 = numpy astype");
  });
});

const PY_PNG = `
def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)
def filter_rows(rows, bpp):
    out, prev = [], bytes(len(rows[0]))
    for y, row in enumerate(rows):
        ft = y % 5
        f = bytearray([ft])
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ft]
            f.append((x - pred) & 0xFF)
        out.append(bytes(f))
        prev = row
    return b"".join(out)
def unfilter(data, width, height, bpp, rowbytes):
    out, prev, p = [], bytearray(rowbytes), 0
    for y in range(height):
        ft = data[p]; row = bytearray(data[p + 1:p + 1 + rowbytes]); p += 1 + rowbytes
        for i in range(rowbytes):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + [0, a, b, (a + b) // 2, paeth(a, b, c)][ft]) & 0xFF
        out.append(bytes(row)); prev = row
    return b"".join(out)
def chunk(t, b):
    return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
def write_png(path, w, h, depth, ctype, rows, bpp, extra=b""):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    body = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + extra
    body += chunk(b"IDAT", zlib.compress(filter_rows(rows, bpp), 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(body)
`;

Deno.test("interop: cotrain decodes PNGs written by hand in Python (all filters, depths, palettes)", async () => {
  await withTempDir(async (dir) => {
    const out = await runPython(
      PY_COMMON + PY_PNG + `
d = sys.argv[1]
rng = np.random.default_rng(3)
W, H = 13, 7
res = {}
def rows_of(a):
    return [a[y].tobytes() for y in range(a.shape[0])]
def expect(name, pix):
    res[name] = {"width": W, "height": H, "channels": pix.shape[2], "sha256": digest(pix.astype(np.uint8))}
g8 = rng.integers(0, 256, (H, W, 1), dtype=np.uint8)
write_png(os.path.join(d, "gray8.png"), W, H, 8, 0, rows_of(g8), 1); expect("gray8.png", g8)
rgb8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
write_png(os.path.join(d, "rgb8.png"), W, H, 8, 2, rows_of(rgb8), 3); expect("rgb8.png", rgb8)
rgba8 = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
write_png(os.path.join(d, "rgba8.png"), W, H, 8, 6, rows_of(rgba8), 4); expect("rgba8.png", rgba8)
g16 = rng.integers(0, 65536, (H, W, 1), dtype=np.uint16)
write_png(os.path.join(d, "gray16.png"), W, H, 16, 0, rows_of(g16.astype(">u2")), 2)
expect("gray16.png", np.rint(g16 / 257.0))
rgb16 = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
write_png(os.path.join(d, "rgb16.png"), W, H, 16, 2, rows_of(rgb16.astype(">u2")), 6)
expect("rgb16.png", np.rint(rgb16 / 257.0))
ga8 = rng.integers(0, 256, (H, W, 2), dtype=np.uint8)
write_png(os.path.join(d, "graya8.png"), W, H, 8, 4, rows_of(ga8), 2)
expect("graya8.png", np.concatenate([ga8[:, :, :1]] * 3 + [ga8[:, :, 1:]], axis=2))
pal = rng.integers(0, 256, (5, 3), dtype=np.uint8)
alpha = np.array([0, 50, 100, 150, 200], dtype=np.uint8)
idx = rng.integers(0, 5, (H, W), dtype=np.uint8)
extra = chunk(b"PLTE", pal.tobytes()) + chunk(b"tRNS", alpha.tobytes())
write_png(os.path.join(d, "palette8.png"), W, H, 8, 3, rows_of(idx), 1, extra)
expect("palette8.png", np.concatenate([pal[idx], alpha[idx][:, :, None]], axis=2))
g4 = rng.integers(0, 16, (H, W), dtype=np.uint8)
packed = [bytes(((r[i] << 4) | (r[i + 1] if i + 1 < W else 0)) for i in range(0, W, 2)) for r in g4]
write_png(os.path.join(d, "gray4.png"), W, H, 4, 0, packed, 1)
expect("gray4.png", (g4 * 17)[:, :, None])
print(json.dumps(res))
`,
      [dir],
    );
    const expected = JSON.parse(out) as Record<
      string,
      { width: number; height: number; channels: number; sha256: string }
    >;
    assert.equal(Object.keys(expected).length, 8);
    for (const [file, want] of Object.entries(expected)) {
      const img = decodeImage(await Deno.readFile(join(dir, file)));
      assert.deepEqual(
        {
          width: img.width,
          height: img.height,
          channels: img.channels,
          sha256: await sha256(img.data),
        },
        want,
        file,
      );
    }
  });
});

Deno.test("interop: Python decodes cotrain's PNGs (zlib + unfilter) to the same pixels", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(8);
    const expected: Record<
      string,
      { width: number; height: number; channels: number; sha256: string }
    > = {};
    for (const channels of [1, 3, 4] as const) {
      const img = randomImage(rng, 17, 9, channels);
      // Half of the rows are smooth so the encoder has reasons to pick different filters.
      for (let i = 0; i < img.data.length / 2; i++) img.data[i] = (i * 3) & 0xff;
      const file = `c${channels}.png`;
      await Deno.writeFile(join(dir, file), encodePng(img));
      expected[file] = { width: 17, height: 9, channels, sha256: await sha256(img.data) };
    }
    const out = await runPython(
      PY_COMMON + PY_PNG + `
d = sys.argv[1]
res = {}
for fn in sorted(os.listdir(d)):
    data = open(os.path.join(d, fn), "rb").read()
    assert data[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    p, idat = 8, b""
    while p < len(data):
        (n,) = struct.unpack(">I", data[p:p + 4]); t = data[p + 4:p + 8]; body = data[p + 8:p + 8 + n]
        (crc,) = struct.unpack(">I", data[p + 8 + n:p + 12 + n])
        assert crc == zlib.crc32(t + body) & 0xFFFFFFFF, f"{fn}: CRC of {t}"
        if t == b"IHDR":
            w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", body)
        elif t == b"IDAT":
            idat += body
        p += 12 + n
    assert depth == 8 and interlace == 0, (depth, interlace)
    ch = {0: 1, 2: 3, 6: 4}[ctype]
    pix = unfilter(zlib.decompress(idat), w, h, ch, w * ch)
    res[fn] = {"width": w, "height": h, "channels": ch, "sha256": hashlib.sha256(pix).hexdigest()}
print(json.dumps(res))
`,
      [dir],
    );
    assert.deepEqual(JSON.parse(out), expected);
  });
});
