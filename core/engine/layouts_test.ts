/**
 * The conv weight layouts against their definitions, element by element, on channel counts that
 * are not multiples of the NCHWc block (so the zero padding is checked too).
 */
import { assert, assertEquals } from "../../test/assert.ts";
import { hwioToBack, hwioToNchwc, hwioToNchwcBack, hwioToOihw, oihwToHwio } from "./layouts.ts";

const [KH, KW, CI, CO] = [3, 2, 5, 7];
const hwio = Float32Array.from({ length: KH * KW * CI * CO }, (_, i) => i + 1);
const at = (y: number, x: number, i: number, o: number) => hwio[((y * KW + x) * CI + i) * CO + o];

Deno.test("layouts: OIHW, back to HWIO, and the flipped transposed kernel", () => {
  const oihw = hwioToOihw(hwio, [KH, KW, CI, CO]);
  const back = hwioToBack(hwio, [KH, KW, CI, CO]);
  for (let y = 0; y < KH; y++) {
    for (let x = 0; x < KW; x++) {
      for (let i = 0; i < CI; i++) {
        for (let o = 0; o < CO; o++) {
          assertEquals(oihw[((o * CI + i) * KH + y) * KW + x], at(y, x, i, o));
          assertEquals(
            back[((i * CO + o) * KH + (KH - 1 - y)) * KW + (KW - 1 - x)],
            at(y, x, i, o),
          );
        }
      }
    }
  }
  assert(oihwToHwio(oihw, [KH, KW, CI, CO]).every((v, i) => v === hwio[i]), "round trip");
});

for (const b of [4, 8]) {
  Deno.test(`layouts: NCHWc filters with block ${b}, padded with zeros, into a reused buffer`, () => {
    const up = (c: number) => Math.ceil(c / b) * b;
    // [O/b][I/b][kh][kw][b in][b out] of an [O, I, kh, kw] filter `f`
    const check = (
      d: Float32Array,
      o: number,
      i: number,
      f: (o: number, i: number, y: number, x: number) => number,
    ) => {
      assertEquals(d.length, up(o) * up(i) * KH * KW);
      let p = 0;
      for (let ob = 0; ob < up(o) / b; ob++) {
        for (let ib = 0; ib < up(i) / b; ib++) {
          for (let y = 0; y < KH; y++) {
            for (let x = 0; x < KW; x++) {
              for (let ii = ib * b; ii < (ib + 1) * b; ii++) {
                for (let oo = ob * b; oo < (ob + 1) * b; oo++, p++) {
                  assertEquals(d[p], oo < o && ii < i ? f(oo, ii, y, x) : 0);
                }
              }
            }
          }
        }
      }
    };
    const fwd = hwioToNchwc(hwio, [KH, KW, CI, CO], b);
    check(fwd, CO, CI, (o, i, y, x) => at(y, x, i, o));
    // the backward kernel: outputs are the forward's inputs, flipped in both axes
    const back = hwioToNchwcBack(hwio, [KH, KW, CI, CO], b);
    check(back, CI, CO, (o, i, y, x) => at(KH - 1 - y, KW - 1 - x, o, i));
    // a reused buffer gets the same values (padding is never written, so it stays zero)
    const again = hwioToNchwc(hwio.map((v) => -v), [KH, KW, CI, CO], b, fwd);
    assert(again === fwd, "writes into the buffer given");
    check(again, CO, CI, (o, i, y, x) => -at(y, x, i, o));
  });
}
