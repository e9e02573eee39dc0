/** The figure helpers give PNGs of the right size with the cells and marks where they belong. */
import { assert, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import { decodePng } from "../io/image.ts";
import { figure5Png, figure7Png, reconstructionGridPng, rhoScatterPng } from "./figures.ts";

Deno.test("figures: the reconstruction grid places each cell, stretched to its own range", () => {
  const ramp = Float32Array.from({ length: 4 }, (_, i) => i * 10);
  const png = reconstructionGridPng([[ramp, undefined], [ramp, ramp]], 2, { scale: 1, gap: 1 });
  const img = decodePng(png);
  assertEquals([img.width, img.height, img.channels], [7, 7, 1]);
  // cell [0][0] at (1,1): 0 -> 0, 30 -> 255; the missing cell [0][1] stays white
  assertEquals([img.data[1 * 7 + 1], img.data[2 * 7 + 2], img.data[1 * 7 + 4]], [0, 255, 255]);
  assertEquals([img.data[4 * 7 + 4], img.data[5 * 7 + 5]], [0, 255]);
  assertThrowsCode(() => reconstructionGridPng([], 2), "INVALID_ARGUMENT");
  assertThrowsCode(() => reconstructionGridPng([[new Float32Array(3)]], 2), "INVALID_ARGUMENT");
});

Deno.test("figures: the rho_bar scatter draws the diagonal and the points in their colour", () => {
  const png = rhoScatterPng([{
    points: [{ x: 0.5, y: -0.5 }, { x: NaN, y: 0 }],
    color: [255, 0, 0],
  }], {
    size: 100,
  });
  const img = decodePng(png);
  assertEquals([img.width, img.height, img.channels], [100, 100, 3]);
  const at = (x: number, y: number) =>
    Array.from(img.data.subarray((y * 100 + x) * 3, (y * 100 + x) * 3 + 3));
  // x = 0.5 -> 12 + 0.75 * 75 = 68; y = -0.5 -> 99 - (12 + 0.25 * 75) = 68 (rounded)
  assertEquals(at(68, 68), [255, 0, 0]);
  assertEquals(at(30, 100 - 1 - 30), [120, 120, 120]); // on the diagonal
  assert(at(5, 5).every((v) => v === 255));
});

Deno.test("figures: Fig. 5 rows are original + budgets + controls; Fig. 7 pairs MTL with each control", () => {
  const cell = Float32Array.from({ length: 4 }, (_, i) => i);
  const png = figure5Png(
    cell,
    [{ reconstructions: [cell, cell], controls: [cell, cell] }, {
      reconstructions: [cell, cell],
    }],
    2,
    { scale: 1, gap: 1 },
  );
  const img = decodePng(png);
  // 5 columns (original, 2 budgets, 2 controls), 2 rows
  assertEquals([img.width, img.height], [5 * 2 + 6, 2 * 2 + 3]);
  const fig7 = decodePng(
    figure7Png({ mtl: [0.5], baseline: [-0.5], oracle: [0.5] }, { size: 100 }),
  );
  const at = (x: number, y: number) =>
    Array.from(fig7.data.subarray((y * 100 + x) * 3, (y * 100 + x) * 3 + 3));
  // (x, y) = (-0.5, 0.5) -> pixel (31, 31); (0.5, 0.5) -> (68, 31)
  assertEquals(at(31, 31), [31, 119, 180]);
  assertEquals(at(68, 31), [255, 127, 14]);
  assertThrowsCode(() => figure7Png({ mtl: [1, 2], baseline: [1] }), "INVALID_ARGUMENT");
});
