import { assert, assertClose, assertEquals } from "../test/assert.ts";
import { Rng, rngFor } from "./random.ts";

function moments(draw: () => number, n: number): [mean: number, variance: number] {
  let s = 0, ss = 0;
  for (let i = 0; i < n; i++) {
    const x = draw();
    s += x;
    ss += x * x;
  }
  const m = s / n;
  return [m, (ss - n * m * m) / (n - 1)];
}

Deno.test("rngFor: keyed streams are reproducible and distinct", () => {
  const a = rngFor(7, 1, 2), b = rngFor(7, 1, 2);
  const xs = Array.from({ length: 8 }, () => a.next());
  assertEquals(Array.from({ length: 8 }, () => b.next()), xs);
  for (const other of [rngFor(8, 1, 2), rngFor(7, 2, 1), rngFor(7, 1), rngFor(7, 1, 2, 0)]) {
    assert(other.next() !== xs[0], "a different key gives a different stream");
  }
  // the first words of xoshiro128** from a fixed state never change (the bytes contract)
  const r = new Rng(1, 2, 3, 4);
  assertEquals([r.next(), r.next(), r.next()], [11520, 0, 5927040]);
  let threw = false;
  try {
    rngFor(1.5);
  } catch {
    threw = true;
  }
  assert(threw, "non-integer keys are refused");
  // strings and numbers are distinct parts; forks are independent and reproducible
  assert(rngFor(1, "a").next() !== rngFor(1, "b").next());
  assert(rngFor(1, "1").next() !== rngFor(1, 1).next());
  assertEquals(rngFor(3).fork("x", 2).next(), rngFor(3).fork("x", 2).next());
  assert(rngFor(3).fork("x").next() !== rngFor(3).fork("y").next());
  assert(rngFor(-1).next() !== rngFor(1).next(), "negative keys differ from positive ones");
});

Deno.test("Rng: uniform, normal, Poisson and gamma have the right moments", () => {
  const rng = rngFor(1, 2);
  const [um, uv] = moments(() => rng.uniform(), 50000);
  assertClose(um, 0.5, 0.01);
  assertClose(uv, 1 / 12, 0.003);
  const [nm, nv] = moments(() => rng.normal(), 50000);
  assertClose(nm, 0, 0.02);
  assertClose(nv, 1, 0.03);
  for (const lambda of [0.3, 3.5, 20, 75]) {
    const [pm, pv] = moments(() => rng.poisson(lambda), 40000);
    assertClose(pm / lambda, 1, 0.03, `Poisson(${lambda}) mean`);
    assertClose(pv / lambda, 1, 0.05, `Poisson(${lambda}) variance`);
  }
  assertEquals(rng.poisson(0), 0);
  for (const shape of [0.5, 4]) {
    const [gm, gv] = moments(() => rng.gamma(shape), 40000);
    assertClose(gm / shape, 1, 0.03, `gamma(${shape}) mean`);
    assertClose(gv / shape, 1, 0.08, `gamma(${shape}) variance`);
  }
  const ints = new Set(Array.from({ length: 1000 }, () => rng.intIn(3, 6)));
  assertEquals([...ints].sort(), [3, 4, 5]);
  const perm = rng.shuffle([0, 1, 2, 3, 4, 5, 6, 7]);
  assertEquals([...perm].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
});
