/**
 * report.html in a real browser: Debian's headless Chromium opens a report rendered from a full
 * set of results (seven models, a ratio sweep with its Fig. 3C regression), driven over the
 * DevTools protocol. The page must load without console errors or exceptions and show every
 * figure as a non-empty SVG. A page that does log an error is caught (the check can fail).
 *
 * Chromium comes from `apt-get install chromium` (.ci/run installs it); `$CHROMIUM` overrides the
 * path.
 */
import { assert, assertEquals } from "./assert.ts";
import { FIGURE_IDS, renderReport } from "../clients/ts/report/report.ts";
import type { ClassifierResult, PipelineResults } from "../clients/ts/pipeline.ts";
import { parseExperiment } from "../clients/ts/experiment.ts";
import { robustnessRegression } from "../core/metrics/regression.ts";
import type { ModelScoreMsg } from "../clients/ts/lib/shards_types.ts";
import { rngFor } from "../core/random.ts";
import { openInChromium } from "../clients/ts/report/browser_check.ts";

/** A complete set of results, as the pipeline writes them, with plausible numbers. */
export function fixtureResults(): PipelineResults {
  const exp = parseExperiment({
    name: "report-fixture",
    description: "Results made up for the report test.",
    imageSet: { kind: "builtin", classes: 10, size: 32 },
    v1: { kind: "simulated", neurons: 24 },
    models: [
      { kind: "monkey-predictor", width: 0.125 },
      { kind: "baseline" },
      { kind: "mtl-monkey", ratios: ["1:4", "1:2", "1:1", "2:1", "3:1"] },
      { kind: "mtl-shuffled" },
      { kind: "oracle" },
    ],
    seeds: [0, 1],
    evaluation: {
      corruptions: ["gaussian_noise", "shot_noise", "defocus_blur", "fog", "contrast", "pixelate"],
      figureCorruptions: ["gaussian_noise", "fog", "contrast"],
    },
  });
  const rng = rngFor("report-fixture", 7);
  const names = [
    "Baseline",
    "MTL-Monkey 1:4",
    "MTL-Monkey 1:2",
    "MTL-Monkey 1:1",
    "MTL-Monkey 2:1",
    "MTL-Monkey 3:1",
    "MTL-Shuffled",
    "Oracle",
  ];
  const est = (v: number, w: number) => ({ value: v, lo: v - w, hi: v + w });
  const score = (name: string, i: number): ModelScoreMsg => {
    const gain = name === "Baseline" ? 0 : name === "Oracle" ? 25 : 3 * i + rng.uniform() * 3;
    const rob = 100 + gain;
    const acc = exp.evaluation.corruptions.flatMap((c) =>
      exp.evaluation.severities.map((s) => ({
        corruption: c,
        severity: s,
        accuracy: Math.max(0.05, 0.8 - 0.12 * s + gain / 400 + 0.05 * rng.uniform()),
        seeds: 2,
      }))
    );
    return {
      name,
      clean_accuracy: est(0.78 + 0.02 * rng.uniform(), 0.03),
      accuracy: acc,
      corruption_accuracy: {},
      robustness: {
        noise: est(rob + 2, 4),
        blur: est(rob - 1, 3),
        weather: est(rob, 3),
        digital: est(rob + 1, 4),
      },
      robustness_total: est(rob, 2.5),
      mce: est(100 - gain / 2, 2),
      relative_mce: est(100 - gain, 3),
      ce: {},
      fev: NaN,
      n: 500,
    };
  };
  const models = names.map(score);
  const classifiers: ClassifierResult[] = [];
  const runModels: ModelScoreMsg[] = [models[0]];
  names.forEach((name, i) => {
    for (const seed of exp.seeds) {
      const kind = name === "Baseline"
        ? "baseline"
        : name === "Oracle"
        ? "oracle"
        : name === "MTL-Shuffled"
        ? "mtl-shuffled"
        : "mtl-monkey";
      const fev = kind.startsWith("mtl")
        ? (kind === "mtl-shuffled" ? 0.05 : 0.1 * i) + 0.02 * rng.uniform()
        : NaN;
      classifiers.push({
        name,
        kind,
        seed,
        model_id: `m${i}${seed}`,
        checkpoint_uri: `file:///x/${i}/${seed}`,
        epochs: 10,
        best_val_accuracy: 0.8,
        test_accuracy: 0.78,
        fev,
        shard_keys: [],
      });
      if (kind !== "baseline") {
        const s = score(name, i);
        runModels.push({ ...s, name: `${name} #${seed}`, fev });
      }
    }
  });
  const monkey = classifiers.filter((c) => c.kind === "mtl-monkey").map((c) => {
    const s = runModels.find((m) => m.name === `${c.name} #${c.seed}`)!;
    return {
      robustness: s.robustness_total.value,
      cleanAccuracy: s.clean_accuracy.value,
      fev: c.fev,
    };
  });
  const { residuals: _r, fitted: _f, ...fit } = robustnessRegression(monkey);
  const meta = {
    baseline: "Baseline",
    corruptions: exp.evaluation.corruptions,
    bootstrap: 250,
    confidence: 0.95,
  };
  return {
    experiment: exp,
    created: "2026-01-01T00:00:00.000Z",
    steps: [
      { kind: "train", name: "train Baseline seed 0", cached: false, seconds: 12.5 },
      {
        kind: "shards",
        name: "evaluate 130 shards",
        cached: true,
        seconds: 0.4,
        note: "0 computed",
      },
    ],
    predictors: [{
      name: "Monkey Predictor",
      checkpoint_uri: "file:///x/p",
      epochs: 20,
      best_val_correlation: 0.4,
      test: {
        feve: 0.45,
        fev: 0.6,
        has_ceiling: true,
        ceiling_feve: 0.9,
        single_trial_correlation: 0.3,
        correlation_to_average: 0.6,
      },
      targets_uri: "file:///x/t",
    }],
    classifiers,
    fev_measure: "feve_v1_test",
    scores: { ...meta, models },
    runScores: { ...meta, models: runModels },
    regressions: [
      { group: "MTL-Monkey", fit, note: `${monkey.length} networks` },
      { group: "MTL-Shuffled", fit: null, note: "2 networks; the regression needs >= 4" },
    ],
    pendingAnalyses: ["reconstruction"],
  };
}

Deno.test("report: opens in headless Chromium without console errors and shows every figure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-report-" });
  try {
    const html = await renderReport(fixtureResults());
    const path = `${dir}/report.html`;
    await Deno.writeTextFile(path, html);
    const page = await openInChromium(`file://${path}`);
    assertEquals(page.errors, []);
    assertEquals(page.title, "cotrain report: report-fixture");
    assertEquals(page.figures.map((f) => f.id), [...FIGURE_IDS]);
    for (const f of page.figures) {
      assertEquals(f.svgs, 1, `${f.id}: one svg`);
      assert(f.width > 200 && f.height > 150, `${f.id}: ${f.width} x ${f.height}`);
      assert(f.marks > 10, `${f.id}: too few marks`);
    }
    // the regression line is drawn, and the tables carry every model
    assert(html.includes('id="regression"') && html.includes("clean_accuracy"));
    for (const name of ["Baseline", "MTL-Monkey 3:1", "MTL-Shuffled", "Oracle"]) {
      assert(html.includes(`<td>${name}</td>`), `table row of ${name}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report: the browser check catches a page that logs an error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-report-" });
  try {
    const path = `${dir}/bad.html`;
    await Deno.writeTextFile(
      path,
      `<!DOCTYPE html><html><head><title>bad</title></head><body>` +
        `<script>console.error("broken figure"); undefinedFunction();</script></body></html>`,
    );
    const page = await openInChromium(`file://${path}`);
    assert(page.errors.some((e) => e.includes("broken figure")), JSON.stringify(page.errors));
    assert(page.errors.some((e) => e.includes("undefinedFunction")), JSON.stringify(page.errors));
    assertEquals(page.figures, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
