import { assertClose } from "../test/assert.ts";
import { fft2d } from "./fft.ts";

/** Direct O(n^4) DFT for comparison. */
function dft2d(re: Float64Array, im: Float64Array, n: number) {
  const or = new Float64Array(n * n), oi = new Float64Array(n * n);
  for (let u = 0; u < n; u++) {
    for (let v = 0; v < n; v++) {
      let sr = 0, si = 0;
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const a = -2 * Math.PI * (u * y + v * x) / n;
          const r = re[y * n + x], i = im[y * n + x];
          sr += r * Math.cos(a) - i * Math.sin(a);
          si += r * Math.sin(a) + i * Math.cos(a);
        }
      }
      or[u * n + v] = sr;
      oi[u * n + v] = si;
    }
  }
  return [or, oi];
}

Deno.test("fft2d: matches a direct DFT and inverts exactly", () => {
  for (const n of [2, 4, 8, 16]) {
    const re = Float64Array.from({ length: n * n }, (_, i) => Math.sin(i * 1.3) + (i % 3));
    const im = Float64Array.from({ length: n * n }, (_, i) => Math.cos(i * 0.7));
    const [er, ei] = dft2d(re, im, n);
    const r = re.slice(), i = im.slice();
    fft2d(r, i, n);
    for (let k = 0; k < n * n; k++) {
      assertClose(r[k], er[k], 1e-9);
      assertClose(i[k], ei[k], 1e-9);
    }
    fft2d(r, i, n, true);
    for (let k = 0; k < n * n; k++) {
      assertClose(r[k], re[k], 1e-12);
      assertClose(i[k], im[k], 1e-12);
    }
  }
});
