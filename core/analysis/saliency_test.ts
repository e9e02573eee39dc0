/**
 * Salient masks, rho and rho_bar on hand-computed cases; masks hold 70% of the density; the
 * spectral-residual model finds an odd blob on a regular background; resizing and density checks.
 */
import { assert, assertClose, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import { rngFor } from "../random.ts";
import {
  normRatio,
  resizeImage,
  rho,
  rhoBar,
  salientMask,
  spectralResidualSaliency,
  toDensity,
} from "./saliency.ts";

Deno.test("saliency: salient masks on hand-computed densities", () => {
  // 0.5 < 0.7 <= 0.5 + 0.3: two pixels, mass 0.8
  let m = salientMask([0.5, 0.3, 0.15, 0.05]);
  assertEquals([Array.from(m.mask), m.count], [[1, 1, 0, 0], 2]);
  assertClose(m.mass, 0.8, 1e-6);
  // unnormalised, shuffled: the same pixels by value
  m = salientMask([1, 10, 3, 6]);
  assertEquals(Array.from(m.mask), [0, 1, 0, 1]);
  assertClose(m.mass, 0.8, 1e-6);
  // exactly 0.7 stops there
  m = salientMask([0.1, 0.3, 0.2, 0.4]);
  assertEquals(Array.from(m.mask), [0, 1, 0, 1]);
  // ties by index: 3 of 4 equal pixels (0.75)
  m = salientMask([1, 1, 1, 1]);
  assertEquals(Array.from(m.mask), [1, 1, 1, 0]);
  // another mass
  assertEquals(Array.from(salientMask([0.5, 0.3, 0.15, 0.05], 0.5).mask), [1, 0, 0, 0]);
  assertThrowsCode(() => salientMask([1, -1]), "INVALID_ARGUMENT");
  assertThrowsCode(() => salientMask([0, 0]), "INVALID_ARGUMENT");
  assertThrowsCode(() => salientMask([1, NaN]), "INVALID_ARGUMENT");
  assertThrowsCode(() => salientMask([1], 0), "INVALID_ARGUMENT");
});

Deno.test("saliency: masks of random densities hold 70% and are minimal", () => {
  const rng = rngFor(3, "densities");
  for (let t = 0; t < 20; t++) {
    const d = Float32Array.from({ length: 64 * 64 }, () => rng.uniform() ** 4);
    const dens = toDensity(d);
    const { mask, mass } = salientMask(d);
    let inside = 0, smallest = Infinity, largestOutside = 0;
    for (let i = 0; i < d.length; i++) {
      if (mask[i]) {
        inside += dens[i];
        smallest = Math.min(smallest, dens[i]);
      } else largestOutside = Math.max(largestOutside, dens[i]);
    }
    assertClose(inside, mass, 1e-5);
    assert(inside >= 0.7 - 1e-5, `mass ${inside}`);
    assert(inside - smallest < 0.7, `not minimal: ${inside} - ${smallest}`);
    assert(smallest >= largestOutside, "a denser pixel was left out");
  }
});

Deno.test("saliency: rho and rho_bar on hand-computed cases", () => {
  const original = [1, 2, 3, 4];
  const mask = [0, 1, 0, 1];
  // rho = (2^2 + 4^2) / (1 + 4 + 9 + 16) = 20 / 30
  assertClose(rho(original, mask), 2 / 3, 1e-12);
  const r = normRatio(original, [[0, 1, 0, 1], [1, 0, 1, 0], [2, 4, 6, 8], [0, 3, 0, 1]], mask);
  assertClose(r.rhoOriginal, 2 / 3, 1e-12);
  // all norm on the mask: 1; none: 0; the original scaled: rho unchanged
  assertEquals(r.rhoReconstructions.slice(0, 2), [1, 0]);
  assertClose(r.rhoReconstructions[2], 2 / 3, 1e-12);
  assertClose(r.rhoReconstructions[3], 1, 1e-12);
  // rho_bar = (rho_r - 2/3) / (1 - 2/3): 1, -2, 0, 1
  [1, -2, 0, 1].forEach((v, i) => assertClose(r.rhoBar[i], v, 1e-12, `rho_bar ${i}`));
  // [3, 1, 1, 1] with mask [1, 0, 0, 0]: rho_o = 9/12; reconstruction [1, 1, 1, 1]: 1/4
  assertClose(rhoBar(rho([1, 1, 1, 1], [1, 0, 0, 0]), rho([3, 1, 1, 1], [1, 0, 0, 0])), -2, 1e-12);
  assert(Number.isNaN(rhoBar(0.5, 1)));
  assertThrowsCode(() => rho([0, 0], [1, 0]), "INVALID_ARGUMENT");
  assertThrowsCode(() => rho([1, 2], [1]), "INVALID_ARGUMENT");
});

Deno.test("saliency: resizing by area (down) and bilinear (up)", () => {
  const src = Float32Array.from({ length: 16 }, (_, i) => i);
  // 2x2 blocks of a 4x4 ramp: means of (0,1,4,5), (2,3,6,7), (8,9,12,13), (10,11,14,15)
  assertEquals(Array.from(resizeImage(src, 4, 4, 2, 2)), [2.5, 4.5, 10.5, 12.5]);
  const up = resizeImage([0, 1, 2, 3], 2, 2, 4, 4);
  // half-pixel centres: corners copy, the inner pixels interpolate
  assertEquals([up[0], up[3], up[12], up[15]], [0, 1, 2, 3]);
  assertClose(up[5], 0.75, 1e-6); // (0.25 row, 0.25 col) -> 0.25*1 + 0.25*2 = 0.75
  assertEquals(Array.from(resizeImage([5, 6], 1, 2, 1, 2)), [5, 6]);
});

Deno.test("saliency: the spectral residual finds an odd blob on a regular background", () => {
  const n = 64;
  const img = new Float32Array(n * n);
  const rng = rngFor(1, "sr");
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      img[y * n + x] = Math.sin(x * 0.8) * Math.sin(y * 0.8) + 0.05 * rng.normal();
    }
  }
  // an odd blob at rows 40..47, cols 12..19
  for (let y = 40; y < 48; y++) for (let x = 12; x < 20; x++) img[y * n + x] = 2.5;
  const d = spectralResidualSaliency(img, n, n);
  assertEquals(d.length, n * n);
  assertClose(d.reduce((s, v) => s + v, 0), 1, 1e-4);
  assert(d.every((v) => v >= 0));
  // the densest pixel lies at the blob, and the blob's neighbourhood holds far more than its share
  let best = 0;
  for (let i = 1; i < d.length; i++) if (d[i] > d[best]) best = i;
  const by = Math.floor(best / n), bx = best % n;
  assert(by >= 34 && by < 54 && bx >= 6 && bx < 26, `peak at (${by}, ${bx})`);
  let near = 0;
  for (let y = 34; y < 54; y++) for (let x = 6; x < 26; x++) near += d[y * n + x];
  assert(near > 3 * (400 / 4096), `blob area holds ${near}`);
  // any size goes in (resized to 64x64 first); the output is 64x64
  assertEquals(
    spectralResidualSaliency(new Float32Array(100 * 80).fill(1).map((_, i) => i % 7), 100, 80)
      .length,
    n * n,
  );
});
