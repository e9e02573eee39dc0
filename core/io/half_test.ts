import assert from "node:assert/strict";
import {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  floatBitsToHalfBits,
  halfBitsToFloatBits,
  halfToNumber,
  numberToHalf,
} from "./half.ts";
import { Rng } from "./_test_util.ts";

const f16round = (Math as unknown as { f16round?: (x: number) => number }).f16round;

Deno.test("f16ToF32 widens all 65536 half patterns exactly and f32ToF16 maps them back", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const wide = f16ToF32(all);
  const back = f32ToF16(wide);
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) {
      assert.ok(Number.isNaN(wide[h]), `0x${h.toString(16)} is NaN`);
      assert.equal(back[h], h, `NaN payload of 0x${h.toString(16)} survives`);
    } else {
      assert.equal(back[h], h, `0x${h.toString(16)} round-trips`);
    }
  }
  assert.equal(halfToNumber(0x0001), 2 ** -24, "smallest subnormal");
  assert.equal(halfToNumber(0x03ff), 1023 * 2 ** -24, "largest subnormal");
  assert.equal(halfToNumber(0x0400), 2 ** -14, "smallest normal");
  assert.equal(halfToNumber(0x7bff), 65504);
  assert.equal(halfToNumber(0xfc00), -Infinity);
  assert.ok(Object.is(halfToNumber(0x8000), -0));
});

Deno.test("f32ToF16 rounds to nearest even, overflows to infinity, underflows to zero", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff], // below the midpoint to infinity
    [65520, 0x7c00], // the midpoint rounds to even = infinity
    [1e9, 0x7c00],
    [-1e9, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even is 1
    [1 + 3 * 2 ** -11, 0x3c02], // tie: even is 1+2^-9
    [2 ** -25, 0x0000], // half the smallest subnormal: tie to even zero
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2: even is 2
    [2 ** -26, 0x0000],
    [-(2 ** -30), 0x8000],
    [Infinity, 0x7c00],
  ];
  for (const [x, bits] of cases) {
    assert.equal(numberToHalf(x), bits, `${x} -> 0x${bits.toString(16)}`);
  }
  assert.ok(Number.isNaN(halfToNumber(numberToHalf(NaN))));
});

Deno.test("f32ToF16 agrees with Math.f16round on 200,000 random float32 patterns", () => {
  if (!f16round) throw new Error("this Deno has no Math.f16round; the cross-check needs it");
  const rng = new Rng(7);
  const u = new Uint32Array(200_000);
  for (let i = 0; i < u.length; i++) {
    // Bias exponents towards the half range so subnormals, ties and overflow are common.
    u[i] = i % 2 ? rng.u32() : ((rng.u32() & 0x8000_0000) | ((96 + rng.int(64)) << 23) |
      (rng.u32() & 0x7fffff)) >>> 0;
  }
  const f = new Float32Array(u.buffer);
  const h = f32ToF16(f);
  for (let i = 0; i < f.length; i++) {
    const want: number = f16round(f[i]);
    const got = halfToNumber(h[i]);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got));
    else assert.ok(Object.is(got, want), `0x${u[i].toString(16)}: got ${got}, want ${want}`);
  }
});

Deno.test("bit-level helpers agree with the array helpers", () => {
  assert.equal(halfBitsToFloatBits(0x3c00), 0x3f800000);
  assert.equal(floatBitsToHalfBits(0x3f800000), 0x3c00);
  assert.equal(floatBitsToHalfBits(0x7fc00000), 0x7e00, "quiet NaN stays quiet");
  assert.equal(floatBitsToHalfBits(0x7f800001), 0x7c01, "a NaN whose payload vanishes stays NaN");
});

Deno.test("bf16 widening is exact and narrowing rounds to nearest even", () => {
  assert.deepEqual([...bf16ToF32(new Uint16Array([0x3f80, 0xc040, 0x7f80, 0x0001]))], [
    1,
    -3,
    Infinity,
    2 ** -133,
  ]);
  const f = new Float32Array([
    1,
    1 + 2 ** -8, // tie between 1 and 1+2^-7: even is 1
    1 + 3 * 2 ** -8, // tie: even is 1 + 2^-6
    1 + 2 ** -8 + 2 ** -20, // above the tie
    3.4028234663852886e38, // float32 max rounds up to infinity
    -0,
    NaN,
  ]);
  const b = f32ToBf16(f);
  assert.deepEqual([...b.subarray(0, 6)], [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x7f80, 0x8000]);
  assert.ok(Number.isNaN(bf16ToF32(b)[6]), "NaN stays NaN");
  // Every bf16 pattern that is not NaN round-trips.
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = f32ToBf16(bf16ToF32(all));
  for (let i = 0; i < 65536; i++) {
    if ((i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0) continue;
    assert.equal(back[i], i);
  }
});

Deno.test("f32ToF16 and f32ToBf16 read subarray views at their offset", () => {
  const f = new Float32Array([9, 1, 2]).subarray(1);
  assert.deepEqual([...f16ToF32(f32ToF16(f))], [1, 2]);
  assert.deepEqual([...bf16ToF32(f32ToBf16(f))], [1, 2]);
});
