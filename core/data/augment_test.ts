import assert from "node:assert/strict";
import { CoreError } from "../errors.ts";
import type { NdArray } from "../io/ndarray.ts";
import {
  applyAugmentParams,
  augment,
  augmentParams,
  evaluationBatch,
  normalizeTin,
  rotateBilinear,
  TIN_MEAN,
  TIN_STD,
  trainingBatch,
} from "./augment.ts";
import { generateImageSet } from "./image_set.ts";

/** Images whose pixels are all distinct-ish: value = (7 * k + 3 * y + 5 * x) % 251 + 1 (never 0). */
function ramp(n: number, h: number, w: number): NdArray<"uint8"> {
  const data = new Uint8Array(n * h * w);
  for (let k = 0; k < n; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = ((7 * k + 3 * y + 5 * x) % 251) + 1;
    }
  }
  return { dtype: "uint8", shape: [n, h, w], data };
}

function row(a: NdArray, k: number): number[] {
  const px = a.shape[1] * a.shape[2];
  return [...(a.data as Uint8Array | Float32Array).subarray(k * px, (k + 1) * px)];
}

Deno.test("augment: seeded per (seed, epoch, index)", () => {
  const images = ramp(6, 16, 16);
  const a = augment(images, undefined, { seed: 1, epoch: 0 });
  const b = augment(images, undefined, { seed: 1, epoch: 0 });
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(augment(images, undefined, { seed: 1, epoch: 1 }).data, a.data);
  assert.notDeepEqual(augment(images, undefined, { seed: 2, epoch: 0 }).data, a.data);
  assert.deepEqual(
    augmentParams(3, { seed: 1, epoch: 0 }),
    augmentParams(3, { seed: 1, epoch: 0 }),
  );
  assert.notDeepEqual(
    augmentParams(3, { seed: 1, epoch: 0 }),
    augmentParams(4, { seed: 1, epoch: 0 }),
  );
});

Deno.test("augment: parameters cover the documented ranges", () => {
  const dx = new Set<number>();
  const dy = new Set<number>();
  let flips = 0;
  let lo = 0, hi = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const p = augmentParams(i, { seed: 9, epoch: 4 });
    dx.add(p.dx);
    dy.add(p.dy);
    if (p.flip) flips++;
    assert.ok(Math.abs(p.angleDeg) <= 15);
    lo = Math.min(lo, p.angleDeg);
    hi = Math.max(hi, p.angleDeg);
  }
  assert.deepEqual([...dx].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...dy].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(Math.abs(flips / n - 0.5) < 0.05, `flip rate ${flips / n}`);
  assert.ok(lo < -14 && hi > 14, `angles ${lo}..${hi}`);
  const none = augmentParams(5, {
    seed: 9,
    epoch: 4,
    padding: 0,
    flipProbability: 0,
    maxRotationDeg: 0,
  });
  assert.deepEqual(none, { dx: 0, dy: 0, flip: false, angleDeg: 0 });
});

Deno.test("augment: flip is an exact mirror", () => {
  const images = ramp(3, 8, 10);
  const out = augment(images, undefined, {
    seed: 0,
    epoch: 0,
    padding: 0,
    flipProbability: 1,
    maxRotationDeg: 0,
  });
  for (let k = 0; k < 3; k++) {
    const src = row(images, k);
    const dst = row(out, k);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 10; x++) assert.equal(dst[y * 10 + x], src[y * 10 + 9 - x]);
    }
  }
  // Flipping twice is the identity (float32 too).
  const f = {
    dtype: "float32" as const,
    shape: [3, 8, 10, 1],
    data: Float32Array.from(images.data, (v) => v / 255),
  };
  const opts = { seed: 0, epoch: 0, padding: 0, flipProbability: 1, maxRotationDeg: 0 };
  const twice = augment(augment(f, undefined, opts), undefined, opts);
  assert.deepEqual(twice.shape, [3, 8, 10, 1]);
  assert.deepEqual(twice.data, f.data);
});

Deno.test("augment: the crop is a zero-padded shift within +-padding", () => {
  const images = ramp(40, 12, 12);
  const opts = { seed: 5, epoch: 2, flipProbability: 0, maxRotationDeg: 0 };
  const out = augment(images, undefined, opts);
  for (let k = 0; k < 40; k++) {
    const { dx, dy } = augmentParams(k, opts);
    const src = row(images, k);
    const dst = row(out, k);
    let zeros = 0;
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        const sy = y + dy - 4;
        const sx = x + dx - 4;
        const inside = sy >= 0 && sy < 12 && sx >= 0 && sx < 12;
        assert.equal(dst[y * 12 + x], inside ? src[sy * 12 + sx] : 0);
        if (!inside) zeros++;
      }
    }
    // The zero border is exactly as wide as the shift.
    assert.equal(zeros, 144 - (12 - Math.abs(dx - 4)) * (12 - Math.abs(dy - 4)));
  }
});

Deno.test("augment: rotation turns a known pattern counter-clockwise, bilinearly, with fill 0", () => {
  // A single bright pixel right of and above the centre of a 9x9 image.
  const src = new Float64Array(81);
  src[2 * 9 + 5] = 1; // (x=5, y=2): u=+1, v=-2
  const r90 = rotateBilinear(src, 9, 9, 90);
  // Counter-clockwise by 90 deg: (u, v) = (1, -2) -> (-2, -1), i.e. (x=2, y=3).
  r90.forEach((v, i) =>
    assert.ok(Math.abs(v - (i === 3 * 9 + 2 ? 1 : 0)) < 1e-9, `pixel ${i}: ${v}`)
  );
  // A horizontal bar becomes vertical; 0 degrees is the identity.
  const bar = new Float64Array(81);
  for (let x = 1; x < 8; x++) bar[4 * 9 + x] = 1;
  const vertical = rotateBilinear(bar, 9, 9, -90);
  for (let y = 0; y < 9; y++) {
    for (let x = 0; x < 9; x++) {
      assert.ok(Math.abs(vertical[y * 9 + x] - (x === 4 && y >= 1 && y < 8 ? 1 : 0)) < 1e-9);
    }
  }
  assert.deepEqual(rotateBilinear(bar, 9, 9, 0), bar);
  // Bilinear: by 45 deg, the pixel at (u, v) = (2, 0) lands at (sqrt 2, -sqrt 2), between pixels;
  // the output samples near it interpolate.
  const dot = new Float64Array(81);
  dot[4 * 9 + 6] = 1;
  const r45 = rotateBilinear(dot, 9, 9, 45);
  const s = Math.SQRT2;
  // Output pixel (x=5, y=3) = (u=1, v=-1) samples the source at (u=sqrt 2, v=0), between u=1
  // and the dot at u=2: weight sqrt 2 - 1 on the dot.
  assert.ok(Math.abs(r45[3 * 9 + 5] - (s - 1)) < 1e-9, `${r45[3 * 9 + 5]}`);
  // A constant image keeps its value where the source covers it and gets 0 beyond the corners.
  const flat = new Float64Array(64 * 64).fill(100);
  const rot = rotateBilinear(flat, 64, 64, 15);
  assert.ok(Math.abs(rot[32 * 64 + 32] - 100) < 1e-9);
  assert.equal(rot[0], 0);
  assert.equal(rot[64 * 64 - 1], 0);
  let mass = 0;
  for (const v of rot) mass += v;
  // The surviving mass is the area shared by the square and its 15-degree rotation (sampled).
  const t = (15 * Math.PI) / 180;
  let inside = 0;
  const N = 400;
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      const u = (i + 0.5) / N - 0.5;
      const v = (j + 0.5) / N - 0.5;
      const x = u * Math.cos(t) - v * Math.sin(t);
      const y = u * Math.sin(t) + v * Math.cos(t);
      if (Math.abs(x) <= 0.5 && Math.abs(y) <= 0.5) inside++;
    }
  }
  assert.ok(Math.abs(mass / (100 * 4096) - inside / (N * N)) < 0.003, `${mass / 409600}`);
});

Deno.test("augment: crop, then flip, then rotation", () => {
  const images = ramp(1, 16, 16);
  const p = { dx: 6, dy: 1, flip: true, angleDeg: 10 };
  const cropped = applyAugmentParams(images.data, 16, 16, { ...p, flip: false, angleDeg: 0 }, 4);
  const flipped = applyAugmentParams(cropped, 16, 16, { dx: 0, dy: 0, flip: true, angleDeg: 0 }, 0);
  const expected = rotateBilinear(flipped, 16, 16, 10);
  assert.deepEqual(applyAugmentParams(images.data, 16, 16, p, 4), expected);
});

Deno.test("augment: results do not depend on batch composition", () => {
  const set = generateImageSet({ classes: 2, perClass: 4, seed: 3 });
  const opts = { seed: 17, epoch: 6 };
  const full = trainingBatch(set.images, [0, 1, 2, 3, 4, 5, 6, 7], opts);
  const px = 64 * 64;
  for (const rows of [[5, 2], [7], [3, 0, 6, 1, 4]]) {
    const part = trainingBatch(set.images, rows, opts);
    rows.forEach((r, k) => {
      assert.deepEqual(
        part.data.subarray(k * px, (k + 1) * px),
        full.data.subarray(r * px, (r + 1) * px),
      );
    });
  }
  // augment() keys on the indices given, not the row positions.
  const one = { ...set.images, shape: [1, 64, 64], data: set.images.data.slice(5 * px, 6 * px) };
  const a = augment(one, [5], opts);
  const b = augment(set.images, undefined, opts);
  assert.deepEqual(a.data, b.data.subarray(5 * px, 6 * px));
  assert.notDeepEqual(augment(one, [4], opts).data, a.data);
});

Deno.test("augment: TIN normalisation to NHWC float32", () => {
  const u8: NdArray<"uint8"> = {
    dtype: "uint8",
    shape: [2, 1, 2],
    data: new Uint8Array([0, 255, 128, 64]),
  };
  const x = normalizeTin(u8);
  assert.deepEqual(x.shape, [2, 1, 2, 1]);
  [0, 255, 128, 64].forEach((v, i) =>
    assert.ok(Math.abs(x.data[i] - (v / 255 - TIN_MEAN) / TIN_STD) < 1e-6)
  );
  const f: NdArray<"float32"> = {
    dtype: "float32",
    shape: [1, 1, 1, 1],
    data: new Float32Array([TIN_MEAN]),
  };
  assert.ok(Math.abs(normalizeTin(f).data[0]) < 1e-6);
  const ev = evaluationBatch(u8, [1]);
  assert.deepEqual(ev.shape, [1, 1, 2, 1]);
  assert.deepEqual(ev.data, x.data.subarray(2, 4));
  // A training batch of a uint8 data set equals augment-then-normalise.
  const set = ramp(3, 8, 8);
  const tb = trainingBatch(set, [2], { seed: 1, epoch: 1 });
  const ref = normalizeTin(
    augment({ ...set, shape: [1, 8, 8], data: set.data.slice(128) }, [2], { seed: 1, epoch: 1 }),
  );
  assert.deepEqual(tb.data, ref.data);
});

Deno.test("augment: bad input is INVALID_ARGUMENT naming the problem", () => {
  const ok = ramp(2, 4, 4);
  const bad = (fn: () => unknown, re: RegExp) =>
    assert.throws(
      fn,
      (e: unknown) => e instanceof CoreError && e.code === "INVALID_ARGUMENT" && re.test(e.message),
    );
  bad(
    () => augment({ ...ok, shape: [2, 4, 4, 3] }, undefined, { seed: 0, epoch: 0 }),
    /shape \[2, 4, 4, 3\]/,
  );
  bad(() => augment({ ...ok, shape: [2, 4, 5] }, undefined, { seed: 0, epoch: 0 }), /32 values/);
  bad(() => augment(ok, [1], { seed: 0, epoch: 0 }), /1 indices for 2 images/);
  bad(() => augment(ok, undefined, { seed: 0.5, epoch: 0 }), /seed/);
  bad(() => augment(ok, undefined, { seed: 0, epoch: 0, padding: -1 }), /padding/);
  bad(() => augment(ok, undefined, { seed: 0, epoch: 0, flipProbability: 2 }), /flipProbability/);
  bad(() => trainingBatch(ok, [2], { seed: 0, epoch: 0 }), /row 2 is outside 0..1/);
  bad(
    () =>
      normalizeTin(
        { dtype: "int32", shape: [1, 1, 1], data: new Int32Array(1) } as unknown as NdArray<
          "uint8"
        >,
      ),
    /dtype int32/,
  );
});
