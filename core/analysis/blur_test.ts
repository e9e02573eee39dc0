/** The Gaussian kernel and the separable blur on hand-checkable cases. */
import { assertClose, assertEquals } from "../../test/assert.ts";
import { blurInPlace, gaussianKernel1d } from "./blur.ts";

Deno.test("blur: the kernel is a normalised, symmetric Gaussian truncated at 4 sigma", () => {
  const k = gaussianKernel1d(1);
  assertEquals(k.length, 9);
  assertClose(k.reduce((a, b) => a + b, 0), 1, 1e-6);
  for (let i = 0; i < 4; i++) assertClose(k[i], k[8 - i], 1e-9);
  // ratio of neighbouring taps: exp(-1/2) between 0 and 1 px
  assertClose(k[5] / k[4], Math.exp(-0.5), 1e-6);
});

Deno.test("blur: an impulse becomes the kernel's outer product, per channel and row", () => {
  const k = gaussianKernel1d(1);
  const n = 11;
  // two rows, two channels; the impulse sits in channel 1 of row 1 at the centre
  const x = new Float32Array(2 * n * n * 2);
  const at = (r: number, y: number, xx: number, c: number) => ((r * n + y) * n + xx) * 2 + c;
  x[at(1, 5, 5, 1)] = 1;
  blurInPlace(x, [2, n, n, 2], k);
  for (let y = 0; y < n; y++) {
    for (let xx = 0; xx < n; xx++) {
      const ky = Math.abs(y - 5) <= 4 ? k[y - 5 + 4] : 0;
      const kx = Math.abs(xx - 5) <= 4 ? k[xx - 5 + 4] : 0;
      assertClose(x[at(1, y, xx, 1)], ky * kx, 1e-7);
      assertEquals([x[at(1, y, xx, 0)], x[at(0, y, xx, 1)]], [0, 0]);
    }
  }
  // zero padding: mass near the border leaks out
  const edge = new Float32Array(n * n);
  edge[0] = 1;
  blurInPlace(edge, [1, n, n, 1], k);
  assertClose(edge.reduce((a, b) => a + b, 0), (k.slice(4).reduce((a, b) => a + b, 0)) ** 2, 1e-6);
});
