import {
  assert,
  assertClose,
  assertEquals,
  assertRejectsCode,
  assertThrowsCode,
} from "../../test/assert.ts";
import { type NdArray, readNpz, writeNpy, writeNpz } from "../io/mod.ts";
import { pinkNoiseImages, simulateV1 } from "./simulated_v1.ts";
import {
  decodeV1Arrays,
  encodeV1Arrays,
  loadV1Arrays,
  parseV1Arrays,
  resizePlane,
  SPLIT,
  splitIndices,
  TIN_MEAN,
  TIN_STD,
  toModelInput,
  type V1Arrays,
  writeV1Arrays,
} from "./v1_arrays.ts";

/** A tiny valid data set: 3 images of 2x2, 2 repeats, 2 neurons in 2 sessions. */
function tiny(): Record<string, NdArray> {
  return {
    images: {
      dtype: "uint8",
      shape: [3, 2, 2],
      data: new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]),
    },
    responses: {
      dtype: "float32",
      shape: [2, 3, 2],
      data: new Float32Array([1, NaN, NaN, 2, 3, 4, NaN, NaN, NaN, NaN, 5, 6]),
    },
    session: { dtype: "int32", shape: [2], data: new Int32Array([0, 1]) },
    split: { dtype: "uint8", shape: [3], data: new Uint8Array([0, 1, 2]) },
  };
}

function bytesOf(a: { data: ArrayBufferView }): number[] {
  return [...new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength)];
}

function assertSameArrays(a: V1Arrays, b: V1Arrays): void {
  for (const name of ["images", "responses", "session", "split", "rates"] as const) {
    const x = a[name], y = b[name];
    assertEquals(x === undefined, y === undefined, `${name} presence`);
    if (!x || !y) continue;
    assertEquals(x.dtype, y.dtype, `${name} dtype`);
    assertEquals(x.shape, y.shape, `${name} shape`);
    assertEquals(bytesOf(x), bytesOf(y), `${name} bytes`); // NaN positions included
  }
}

Deno.test("v1 arrays: write -> load round trip (npz, compressed npz, npy folder, bytes)", async () => {
  const sim = simulateV1(pinkNoiseImages(40, 64, 3), {
    neurons: 6,
    sessions: 2,
    testImages: 5,
    testRepeats: 4,
    trainSessions: 1,
    seed: 2,
  });
  const v1 = sim.arrays;
  assert(v1.responses.data.some((v) => Number.isNaN(v)), "the layout has NaN");
  const dir = await Deno.makeTempDir();
  try {
    await writeV1Arrays(`${dir}/a.npz`, v1);
    assertSameArrays(await loadV1Arrays(`${dir}/a.npz`), v1);
    await writeV1Arrays(`${dir}/b.npz`, v1, { compress: true });
    const compressed = await Deno.readFile(`${dir}/b.npz`);
    assert(compressed.length < (await Deno.readFile(`${dir}/a.npz`)).length);
    assertSameArrays(await loadV1Arrays(compressed), v1);
    await writeV1Arrays(`${dir}/folder`, v1);
    const names = [...Deno.readDirSync(`${dir}/folder`)].map((e) => e.name).sort();
    assertEquals(names, ["images.npy", "rates.npy", "responses.npy", "session.npy", "split.npy"]);
    assertSameArrays(await loadV1Arrays(`${dir}/folder`), v1);
    // uint8 images and no rates
    const t = parseV1Arrays(tiny());
    assertSameArrays(decodeV1Arrays(encodeV1Arrays(t)), t);
    assertEquals(Object.keys(readNpz(encodeV1Arrays(t))), [
      "images",
      "responses",
      "session",
      "split",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("v1 arrays: numpy's default dtypes are converted", () => {
  const a = tiny();
  const v1 = parseV1Arrays({
    ...a,
    images: {
      dtype: "float64",
      shape: [3, 2, 2],
      data: Float64Array.from(a.images.data as Uint8Array, (v) => v / 255),
    },
    responses: {
      dtype: "float64",
      shape: [2, 3, 2],
      data: Float64Array.from(a.responses.data as Float32Array),
    },
    session: { dtype: "int64", shape: [2], data: new BigInt64Array([3n, 7n]) },
    split: { dtype: "int64", shape: [3], data: new BigInt64Array([2n, 2n, 0n]) },
    rates: { dtype: "float64", shape: [3, 2], data: new Float64Array(6).fill(1.5) },
    extra: { dtype: "int8", shape: [1], data: new Int8Array(1) }, // ignored
  });
  assertEquals(v1.images.dtype, "float32");
  assertEquals(v1.responses.dtype, "float32");
  assertEquals([...v1.session.data], [3, 7]);
  assertEquals(v1.session.data instanceof Int32Array, true);
  assertEquals([...v1.split.data], [2, 2, 0]);
  assertEquals(v1.rates?.shape, [3, 2]);
  assertEquals(Object.keys(v1).sort(), ["images", "rates", "responses", "session", "split"]);
  assertEquals(splitIndices(v1.split, "test"), [0, 1]);
  assertEquals(SPLIT, { train: 0, validation: 1, test: 2 });
});

Deno.test("v1 arrays: a wrong shape, dtype, value or a missing array names the array", async () => {
  const cases: [string, (a: Record<string, NdArray>) => void, RegExp][] = [
    ["missing split", (a) => delete a.split, /split: missing/],
    ["missing responses", (a) => delete a.responses, /responses: missing/],
    [
      "images rank",
      (a) => (a.images = { dtype: "uint8", shape: [3, 4], data: new Uint8Array(12) }),
      /images: shape \(3, 4\)/,
    ],
    [
      "images dtype",
      (a) => (a.images = { dtype: "int16", shape: [3, 2, 2], data: new Int16Array(12) }),
      /images: dtype int16/,
    ],
    [
      "images range",
      (
        a,
      ) => (a.images = {
        dtype: "float32",
        shape: [3, 2, 2],
        data: new Float32Array(12).fill(255),
      }),
      /images: value 255/,
    ],
    [
      "images NaN",
      (
        a,
      ) => (a.images = {
        dtype: "float32",
        shape: [3, 2, 2],
        data: new Float32Array(12).fill(NaN),
      }),
      /images: value NaN/,
    ],
    [
      "responses images",
      (a) => (a.responses = { dtype: "float32", shape: [2, 4, 2], data: new Float32Array(16) }),
      /responses: shape \(2, 4, 2\) has 4 images; images has 3/,
    ],
    [
      "responses rank",
      (a) => (a.responses = { dtype: "float32", shape: [3, 2], data: new Float32Array(6) }),
      /responses: shape \(3, 2\) has rank 2/,
    ],
    [
      "responses dtype",
      (a) => (a.responses = { dtype: "int32", shape: [2, 3, 2], data: new Int32Array(12) }),
      /responses: dtype int32/,
    ],
    [
      "responses negative",
      (a) => ((a.responses.data as Float32Array)[4] = -1),
      /responses: value -1 at \[0, 2, 0\]/,
    ],
    [
      "responses inf",
      (a) => ((a.responses.data as Float32Array)[0] = Infinity),
      /responses: value Infinity/,
    ],
    [
      "session length",
      (a) => (a.session = { dtype: "int32", shape: [3], data: new Int32Array(3) }),
      /session: shape \(3,\); responses has 2 neurons/,
    ],
    [
      "session dtype",
      (a) => (a.session = { dtype: "float32", shape: [2], data: new Float32Array(2) }),
      /session: dtype float32/,
    ],
    [
      "session negative",
      (a) => (a.session = { dtype: "int32", shape: [2], data: new Int32Array([0, -2]) }),
      /session: value -2/,
    ],
    [
      "split length",
      (a) => (a.split = { dtype: "uint8", shape: [2], data: new Uint8Array(2) }),
      /split: shape \(2,\); images has 3/,
    ],
    [
      "split value",
      (a) => (a.split = { dtype: "uint8", shape: [3], data: new Uint8Array([0, 3, 1]) }),
      /split: value 3 at \[1\]/,
    ],
    [
      "rates shape",
      (a) => (a.rates = { dtype: "float32", shape: [2, 3], data: new Float32Array(6) }),
      /rates: shape \(2, 3\); expected \(3, 2\)/,
    ],
    [
      "rates NaN",
      (a) => (a.rates = { dtype: "float32", shape: [3, 2], data: new Float32Array(6).fill(NaN) }),
      /rates: value NaN/,
    ],
    [
      "data length",
      (a) => (a.split = { dtype: "uint8", shape: [3], data: new Uint8Array(2) }),
      /split: data has 2 elements/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    const arrays = tiny();
    mutate(arrays);
    const err = assertThrowsCode(() => parseV1Arrays(arrays), "INVALID_ARGUMENT");
    assert(message.test(err.message), `${what}: ${err.message}`);
    if (what === "data length") continue; // writeNpz itself refuses such an array
    // the same through npz bytes
    const err2 = assertThrowsCode(() => decodeV1Arrays(writeNpz(arrays)), "INVALID_ARGUMENT");
    assert(message.test(err2.message), `${what} (npz): ${err2.message}`);
  }

  const dir = await Deno.makeTempDir();
  try {
    await assertRejectsCode(loadV1Arrays(`${dir}/nothing`), "NOT_FOUND");
    await assertRejectsCode(loadV1Arrays(`${dir}/nothing.npz`), "NOT_FOUND");
    const a = tiny();
    for (const name of ["images", "responses", "split"]) {
      await Deno.writeFile(`${dir}/${name}.npy`, writeNpy(a[name]));
    }
    const e = await assertRejectsCode(loadV1Arrays(dir), "INVALID_ARGUMENT");
    assert(/session: .*session\.npy is missing/.test(e.message), e.message);
    await Deno.writeFile(`${dir}/session.npy`, new Uint8Array([1, 2, 3]));
    const e2 = await assertRejectsCode(loadV1Arrays(dir), "INVALID_ARGUMENT");
    assert(e2.message.includes("session"), e2.message);
    await Deno.writeFile(`${dir}/bad.npz`, new Uint8Array(30));
    const e3 = await assertRejectsCode(loadV1Arrays(`${dir}/bad.npz`), "INVALID_ARGUMENT");
    assert(e3.message.includes("bad.npz"), e3.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resizePlane: area and bilinear against hand-computed values", () => {
  // 3x3 -> 2x2. Area: output 0 covers input [0, 1.5) on each axis, weights (1, 0.5) / 1.5 =
  // (2/3, 1/3); output 1 covers [1.5, 3): (1/3, 2/3). Top-left: rows mix to 2/3*1 + 1/3*2 = 4/3
  // and 2/3*4 + 1/3*5 = 13/3, then 2/3 * 4/3 + 1/3 * 13/3 = 21/9 = 7/3; likewise the others.
  const p = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const area = resizePlane(p, 3, 3, 2, 2, "area");
  [7 / 3, 11 / 3, 19 / 3, 23 / 3].forEach((v, i) => assertClose(area[i], v, 1e-6));
  // Bilinear, half-pixel centres: output 0 samples input coordinate 0.5 * 1.5 - 0.5 = 0.25.
  const bil = resizePlane(p, 3, 3, 2, 2, "bilinear");
  // rows 0 and 1 mix to 0.75 * 1 + 0.25 * 2 = 1.25 and 4.25, then 0.75 * 1.25 + 0.25 * 4.25 = 2
  assertClose(bil[0], 2, 1e-6);
  assertClose(bil[3], 8, 1e-6); // coordinate 1.75: 0.25 * p[1] + 0.75 * p[2] on both axes
  // 4x4 -> 2x2 area is the mean of 2x2 blocks; 2x upsampling of a constant stays constant
  const q = Array.from({ length: 16 }, (_, i) => i);
  assertEquals([...resizePlane(q, 4, 4, 2, 2, "area")], [2.5, 4.5, 10.5, 12.5]);
  assertEquals([...resizePlane([3, 3, 3, 3], 2, 2, 4, 4, "area")], new Array(16).fill(3));
  assertEquals([...resizePlane([3, 3, 3, 3], 2, 2, 4, 4, "bilinear")], new Array(16).fill(3));
  // bilinear upsampling 1x2 -> 1x4: coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped)
  assertEquals([...resizePlane([0, 4], 1, 2, 1, 4, "bilinear")], [0, 1, 3, 4]);
  assertThrowsCode(() => resizePlane([1, 2, 3], 2, 2, 1, 1), "INVALID_ARGUMENT");
});

Deno.test("toModelInput: centre crop, resize and TIN normalisation to NHWC float32", () => {
  // One 5x6 uint8 image, values 10 * row + col; crop 4 -> rows 0..3 (floor(1/2) = 0), cols 1..4.
  const data = new Uint8Array(30).map((_, i) => 10 * Math.floor(i / 6) + (i % 6));
  const images: NdArray = { dtype: "uint8", shape: [1, 5, 6], data };
  const x = toModelInput(images, { crop: 4, size: 2, method: "area" });
  assertEquals(x.dtype, "float32");
  assertEquals(x.shape, [1, 2, 2, 1]);
  // block means of the crop: top-left block rows 0-1, cols 1-2: (1 + 2 + 11 + 12) / 4 = 6.5
  const expected = [6.5, 8.5, 26.5, 28.5].map((v) => (v / 255 - TIN_MEAN) / TIN_STD);
  for (let i = 0; i < 4; i++) assertClose(x.data[i], expected[i], 1e-5);
  // default crop is the shorter side (5): rows 0..4, cols 0..4; size = crop means no resampling
  const y = toModelInput(images, { size: 5 });
  assertClose(y.data[0], (0 - TIN_MEAN) / TIN_STD, 1e-6);
  assertClose(y.data[24], (44 / 255 - TIN_MEAN) / TIN_STD, 1e-6);
  // float input in [0, 1] equals uint8 / 255; mean/std overridable
  const f: NdArray = {
    dtype: "float32",
    shape: [1, 5, 6],
    data: Float32Array.from(data, (v) => v / 255),
  };
  const z = toModelInput(f, { crop: 4, size: 2, mean: 0, std: 1 });
  assertClose(z.data[0], 6.5 / 255, 1e-6);
  // the paper's geometry: 420 px at 63 px/deg -> crop 288 -> 64 px at 14 px/deg
  const big: NdArray = {
    dtype: "uint8",
    shape: [1, 420, 420],
    data: new Uint8Array(420 * 420).fill(255),
  };
  const b = toModelInput(big, { crop: 288, size: 64 });
  assertEquals(b.shape, [1, 64, 64, 1]);
  assertClose(b.data[100], (1 - TIN_MEAN) / TIN_STD, 1e-5);
  // bad options and input
  assertThrowsCode(() => toModelInput(images, { crop: 6 }), "INVALID_ARGUMENT");
  assertThrowsCode(() => toModelInput(images, { size: 0 }), "INVALID_ARGUMENT");
  assertThrowsCode(() => toModelInput(images, { std: 0 }), "INVALID_ARGUMENT");
  assertThrowsCode(
    () => toModelInput({ dtype: "uint8", shape: [5, 6], data: new Uint8Array(30) }),
    "INVALID_ARGUMENT",
  );
  assertThrowsCode(
    () => toModelInput({ dtype: "int32", shape: [1, 5, 6], data: new Int32Array(30) }),
    "INVALID_ARGUMENT",
  );
});
