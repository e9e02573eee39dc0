/**
 * The spectral control keeps the original's Fourier phase and the reconstruction's amplitude, so
 * (Parseval) its norm is the reconstruction's; checked on random images and a hand-made case.
 */
import { assert, assertClose, assertThrowsCode } from "../../test/assert.ts";
import { rngFor } from "../random.ts";
import { spectralControl, spectralControlBatch, spectrum } from "./spectral.ts";

function randomImage(n: number, seed: number): Float32Array {
  const x = new Float32Array(n * n);
  rngFor(seed, "spectral").fillNormal(x);
  return x;
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

Deno.test("spectral: Parseval holds for the FFT and the control keeps the reconstruction's norm", () => {
  for (const n of [8, 64]) {
    const o = randomImage(n, 1);
    const r = Float32Array.from(randomImage(n, 2), (v) => 3 * v + 0.5);
    // Parseval: sum |X_k|^2 = n^2 sum |x|^2
    const [re, im] = spectrum(r, n);
    let e = 0;
    for (let k = 0; k < n * n; k++) e += re[k] ** 2 + im[k] ** 2;
    assertClose(e / (n * n), norm(r) ** 2, 1e-6 * norm(r) ** 2, "Parseval");
    const s = spectralControl(o, r, n);
    assertClose(norm(s), norm(r), 1e-4 * norm(r), `norm at n=${n}`);
  }
});

Deno.test("spectral: the control has the original's phase and the reconstruction's amplitude", () => {
  const n = 16;
  const o = randomImage(n, 3);
  const r = randomImage(n, 4);
  const s = spectralControl(o, r, n);
  const [sre, sim] = spectrum(s, n);
  const [ore, oim] = spectrum(o, n);
  const [rre, rim] = spectrum(r, n);
  for (let k = 0; k < n * n; k++) {
    const amp = Math.hypot(sre[k], sim[k]);
    assertClose(amp, Math.hypot(rre[k], rim[k]), 1e-4, `amplitude ${k}`);
    if (amp > 1e-3 && Math.hypot(ore[k], oim[k]) > 1e-3) {
      // same phase: the cross product vanishes and the dot product is positive
      const cross = sre[k] * oim[k] - sim[k] * ore[k];
      const dot = sre[k] * ore[k] + sim[k] * oim[k];
      assert(Math.abs(cross) < 1e-3 * Math.hypot(ore[k], oim[k]) * amp, `phase ${k}`);
      assert(dot > 0, `phase sign ${k}`);
    }
  }
  // hand-made: a reconstruction that is the original scaled by 2 gives 2 x the original
  const twice = spectralControl(o, Float32Array.from(o, (v) => 2 * v), n);
  twice.forEach((v, i) => assertClose(v, 2 * o[i], 1e-4));
  // and a shifted copy of the original (same amplitude) gives the original back
  const shifted = Float32Array.from(o, (_, i) => o[(Math.floor(i / n) * n) + ((i + 3) % n)]);
  spectralControl(o, shifted, n).forEach((v, i) => assertClose(v, o[i], 1e-4));
});

Deno.test("spectral: batches pair each original with its K reconstructions; bad sizes refused", () => {
  const n = 8;
  const o = new Float32Array([...randomImage(n, 5), ...randomImage(n, 6)]);
  const r = new Float32Array(2 * 3 * n * n);
  rngFor(7, "batch").fillNormal(r);
  const out = spectralControlBatch(o, r, 2, 3, n);
  const one = spectralControl(o.subarray(64, 128), r.subarray(4 * 64, 5 * 64), n);
  one.forEach((v, i) => assertClose(out[4 * 64 + i], v, 1e-6));
  assertThrowsCode(
    () => spectralControl(new Float32Array(36), new Float32Array(36), 6),
    "INVALID_ARGUMENT",
  );
  assertThrowsCode(() => spectralControlBatch(o, r, 2, 2, n), "INVALID_ARGUMENT");
});
