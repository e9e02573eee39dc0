import { assert, assertClose, assertEquals } from "../../test/assert.ts";
import {
  accuracy,
  accuracyTable,
  bootstrapWeights,
  corruptionAccuracies,
  meanCorruptionError,
  type ModelCorrectness,
  PAPER_CORRUPTIONS,
  percentileInterval,
  robustnessScore,
  scoreModels,
} from "./robustness.ts";
import { rngFor } from "../random.ts";

function assertThrows(fn: () => unknown, _type: unknown, text: string): void {
  try {
    fn();
  } catch (e) {
    assert(String(e).includes(text), `expected an error mentioning ${text}, got ${e}`);
    return;
  }
  throw new Error(`expected an error mentioning ${text}`);
}

const u8 = (...v: number[]) => Uint8Array.from(v);

Deno.test("accuracy: plain and weighted", () => {
  assertEquals(accuracy(u8(1, 0, 1, 1)), 0.75);
  // image 0 drawn twice, image 1 twice: (1*2 + 0*2) / 4
  assertEquals(accuracy(u8(1, 0, 1, 1), Uint16Array.from([2, 2, 0, 0])), 0.5);
});

Deno.test("accuracy table: mean over seeds per corruption and severity; A_c over severities", () => {
  const t = accuracyTable([
    { corruption: "fog", severity: 1, seed: 0, correct: u8(1, 1, 0, 0) },
    { corruption: "fog", severity: 1, seed: 1, correct: u8(1, 1, 1, 0) },
    { corruption: "fog", severity: 2, seed: 0, correct: u8(0, 0, 0, 1) },
    { corruption: "contrast", severity: 1, seed: 0, correct: u8(1, 1, 1, 1) },
  ]);
  assertEquals(t, [
    { corruption: "contrast", severity: 1, accuracy: 1, seeds: 1 },
    { corruption: "fog", severity: 1, accuracy: 0.625, seeds: 2 },
    { corruption: "fog", severity: 2, accuracy: 0.25, seeds: 1 },
  ]);
  const ac = corruptionAccuracies(t);
  assertEquals(ac.get("fog"), (0.625 + 0.25) / 2);
  assertEquals(ac.get("contrast"), 1);
});

Deno.test("robustness score: mean of per-corruption ratios to the baseline, in %", () => {
  const base = new Map([["fog", 0.4], ["contrast", 0.5]]);
  const model = new Map([["fog", 0.6], ["contrast", 0.5]]);
  assertClose(robustnessScore(model, base, ["fog", "contrast"]), 125, 1e-12);
  assertEquals(robustnessScore(base, base, ["fog", "contrast"]), 100);
  assertThrows(() => robustnessScore(model, base, ["snow"]), Error, "snow");
});

Deno.test("mCE and relative mCE by hand", () => {
  const row = (c: string, l: number, a: number) => ({
    corruption: c,
    severity: l,
    accuracy: a,
    seeds: 1,
  });
  const base = [row("fog", 1, 0.8), row("fog", 2, 0.6)]; // errors .2 + .4 = .6
  const model = [row("fog", 1, 0.9), row("fog", 2, 0.6)]; // errors .1 + .4 = .5
  const { ce, mce } = meanCorruptionError(model, base, ["fog"]);
  assertClose(ce.get("fog")!, (100 * 0.5) / 0.6, 1e-9);
  assertClose(mce, (100 * 0.5) / 0.6, 1e-9);
  // relative: clean errors model .05, baseline .1 -> (.5 - 2*.05) / (.6 - 2*.1)
  const rel = meanCorruptionError(model, base, ["fog"], { modelClean: 0.95, baselineClean: 0.9 });
  assertClose(rel.mce, (100 * 0.4) / 0.4, 1e-9);
});

Deno.test("bootstrap weights: n draws, seeded, different per repetition", () => {
  const a = bootstrapWeights(100, 3, 0);
  assertEquals(a.reduce((s, x) => s + x, 0), 100);
  assertEquals(a, bootstrapWeights(100, 3, 0));
  assert(a.some((x, i) => x !== bootstrapWeights(100, 3, 1)[i]));
});

Deno.test("percentile interval: linear interpolation like numpy's default", () => {
  const v = Float64Array.from({ length: 101 }, (_, i) => 100 - i); // 100..0
  const [lo, hi] = percentileInterval(v, 0.95);
  assertClose(lo, 2.5, 1e-12);
  assertClose(hi, 97.5, 1e-12);
});

function fakeModel(name: string, pClean: number, pCorrupt: number, n: number, seed: number) {
  const rng = rngFor(seed, name);
  const draw = (p: number) => Uint8Array.from({ length: n }, () => (rng.uniform() < p ? 1 : 0));
  const m: ModelCorrectness = { name, clean: [draw(pClean)], shards: [] };
  for (const c of PAPER_CORRUPTIONS) {
    for (let l = 1; l <= 5; l++) {
      for (let s = 0; s < 2; s++) {
        m.shards.push({ corruption: c, severity: l, seed: s, correct: draw(pCorrupt - 0.05 * l) });
      }
    }
  }
  return m;
}

Deno.test("scoreModels: Baseline at 100 with a zero-width interval; better model above; seeded", () => {
  const models = [fakeModel("Baseline", 0.6, 0.4, 300, 1), fakeModel("MTL", 0.6, 0.5, 300, 1)];
  const r = scoreModels(models, { bootstrap: 50, seed: 7 });
  assertEquals(r.corruptions.length, 14);
  const [b, m] = r.models;
  assertEquals(b.robustnessTotal, { value: 100, lo: 100, hi: 100 });
  assertEquals(b.mce.value, 100);
  assertEquals(Object.keys(b.robustness).sort(), ["blur", "digital", "noise", "weather"]);
  assert(m.robustnessTotal.value > 110, `${m.robustnessTotal.value}`);
  assert(m.robustnessTotal.lo < m.robustnessTotal.value);
  assert(m.robustnessTotal.hi > m.robustnessTotal.value);
  assert(m.mce.value < 100);
  assert(b.cleanAccuracy.lo < b.cleanAccuracy.value && b.cleanAccuracy.value < b.cleanAccuracy.hi);
  assertEquals(m.accuracy.length, 14 * 5);
  assertEquals(m.accuracy[0].seeds, 2);
  // the category scores average to the total when weighted by their sizes
  const total = (3 * m.robustness.noise.value + 3 * m.robustness.blur.value +
    4 * m.robustness.weather.value + 4 * m.robustness.digital.value) / 14;
  assertClose(total, m.robustnessTotal.value, 1e-9);
  // seeded: the same seed gives the same intervals, another seed others
  assertEquals(scoreModels(models, { bootstrap: 50, seed: 7 }), r);
  const other = scoreModels(models, { bootstrap: 50, seed: 8 });
  assert(other.models[1].robustnessTotal.lo !== m.robustnessTotal.lo);
});

Deno.test("scoreModels: bad input names the field", () => {
  const models = [fakeModel("Baseline", 0.6, 0.4, 20, 1), fakeModel("MTL", 0.6, 0.5, 20, 1)];
  assertThrows(() => scoreModels([models[1]]), Error, "baseline: no model named Baseline");
  assertThrows(() => scoreModels(models, { corruptions: ["saturate"] }), Error, "saturate");
  assertThrows(() => scoreModels(models, { bootstrap: -1 }), Error, "bootstrap");
  assertThrows(() => scoreModels([models[0], models[0]]), Error, "twice");
  const short = fakeModel("MTL", 0.6, 0.5, 19, 1);
  assertThrows(() => scoreModels([models[0], short]), Error, "same test images");
  assertThrows(() => scoreModels([]), Error, "models");
});

Deno.test("scoreModels: a resample's scores equal the per-shard formulas on the resampled images", () => {
  const models = [fakeModel("Baseline", 0.6, 0.45, 200, 4), fakeModel("MTL", 0.65, 0.5, 200, 4)];
  models[1].shards.pop(); // uneven seeds: jpeg_compression severity 5 has one seed here
  const r = scoreModels(models, { bootstrap: 1, seed: 11 });
  const w = bootstrapWeights(200, 11, 0);
  const tables = models.map((m) => accuracyTable(m.shards, w));
  const acs = tables.map(corruptionAccuracies);
  const clean = models.map((m) => accuracy(m.clean[0], w));
  const total = robustnessScore(acs[1], acs[0], PAPER_CORRUPTIONS);
  const noise = robustnessScore(acs[1], acs[0], ["gaussian_noise", "shot_noise", "impulse_noise"]);
  const mce = meanCorruptionError(tables[1], tables[0], PAPER_CORRUPTIONS).mce;
  const rel = meanCorruptionError(tables[1], tables[0], PAPER_CORRUPTIONS, {
    modelClean: clean[1],
    baselineClean: clean[0],
  }).mce;
  const m = r.models[1];
  for (
    const [e, want] of [
      [m.robustnessTotal, total],
      [m.robustness.noise, noise],
      [m.mce, mce],
      [m.relativeMce, rel],
      [m.cleanAccuracy, clean[1]],
    ] as const
  ) {
    assertClose(e.lo, want, 1e-9);
    assertClose(e.hi, want, 1e-9);
  }
});

Deno.test("scoreModels: paper-sized (250 resamples of 10,000 images, 140 shards a model): narrow intervals", () => {
  const models = [
    fakeModel("Baseline", 0.6, 0.45, 10_000, 5),
    fakeModel("MTL", 0.6, 0.5, 10_000, 5),
  ];
  const r = scoreModels(models, { bootstrap: 250 });
  const m = r.models[1].robustnessTotal;
  assert(m.hi - m.lo < 5 && m.lo < m.value && m.value < m.hi, JSON.stringify(m));
});
