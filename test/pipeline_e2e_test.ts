/**
 * The whole study end to end at smoke scale: experiments/smoke.json through real service
 * processes (neural-predictor, classifier-trainer, evaluator, corruption-generator, reconstructor,
 * saliency-scorer; one process each, loopback, one file store). Checks the results (every model
 * scored, MTL-Oracle included, Baseline = 100%, intervals around the values, the npy arrays), the
 * analyses (Fig. 5 reconstructions within their budgets, Fig. 7 rho_bar per image), the report
 * (every figure drawn in headless Chromium: SVGs, and the analyses' PNGs decoded; no console
 * errors), and that a second run of the finished experiment does no work: every step comes from
 * the store.
 */
import { assert, assertEquals } from "./assert.ts";
import { readNpy } from "../core/io/npy.ts";
import { loadExperiment } from "../clients/ts/experiment.ts";
import { datasetUri, runPipeline } from "../clients/ts/pipeline.ts";
import { analysisNetworks, runAnalyses } from "../clients/ts/analyses.ts";
import { openStore } from "../platform/store/mod.ts";
import { ANALYSIS_FIGURE_IDS, FIGURE_IDS } from "../clients/ts/report/report.ts";
import { startCluster } from "../clients/ts/lib/cluster.ts";
import { openInChromium } from "../clients/ts/report/browser_check.ts";

const SMOKE = new URL("../experiments/smoke.json", import.meta.url).pathname;

Deno.test("pipeline: smoke.json end to end through service processes; a re-run is all cached", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-e2e-" });
  const store = `file://${dir}/store`;
  const cluster = await startCluster({
    services: [
      "neural-predictor",
      "classifier-trainer",
      "corruption-generator",
      "evaluator",
      "reconstructor",
      "saliency-scorer",
    ],
    store,
    logDir: `${dir}/logs`,
    corruptionViaService: true,
    restart: true,
  });
  try {
    const exp = await loadExperiment(SMOKE);
    const targets = {
      neuralPredictor: cluster.address("neural-predictor"),
      classifierTrainer: cluster.address("classifier-trainer"),
      evaluator: cluster.addresses("evaluator"),
      reconstructor: cluster.address("reconstructor"),
      saliencyScorer: cluster.address("saliency-scorer"),
    };
    const first = await runPipeline(exp, {
      outDir: `${dir}/run1`,
      store,
      targets,
      progress: false,
    });
    const r = first.results;

    // every step ran; nothing was cached on a fresh store, nothing skipped
    assert(r.steps.some((s) => !s.cached), "a fresh run computed nothing");
    assertEquals(r.steps.filter((s) => s.skipped).length, 0);
    // 1 Baseline + 4 MTL-Monkey ratios + 1 MTL-Shuffled + 1 Oracle + 1 MTL-Oracle, one seed
    assertEquals(r.classifiers.length, 8);
    assertEquals(r.steps.filter((s) => s.kind === "train").length, 9); // Oracle: two stages
    // MTL-Oracle's targets: a readout fitted on the frozen Oracle's conv3_1, then its predictions
    assertEquals(r.steps.filter((s) => s.kind === "predictor").map((s) => s.name), [
      "train Monkey Predictor",
      "fit Oracle #0 readout (frozen conv3_1)",
    ]);
    assertEquals(r.steps.filter((s) => s.kind === "targets").length, 2);
    const names = r.scores!.models.map((m) => m.name);
    assertEquals(names, [
      "Baseline",
      "MTL-Monkey 1:2",
      "MTL-Monkey 1:1",
      "MTL-Monkey 2:1",
      "MTL-Monkey 3:1",
      "MTL-Shuffled",
      "Oracle",
      "MTL-Oracle",
    ]);
    const base = r.scores!.models[0];
    assert(Math.abs(base.robustness_total.value - 100) < 1e-9, "Baseline is not 100%");
    for (const m of r.scores!.models) {
      assertEquals(m.n, 24);
      assert(m.clean_accuracy.value >= 0 && m.clean_accuracy.value <= 1);
      const t = m.robustness_total;
      assert(t.lo <= t.value + 1e-9 && t.value <= t.hi + 1e-9, `${m.name}: interval`);
      assertEquals(
        Object.keys(m.robustness).sort(),
        ["blur", "digital", "noise", "weather"],
      );
      assertEquals(m.accuracy.length, 4 * 2);
    }
    // each classifier: a clean shard and 4 corruptions x 2 severities
    for (const c of r.classifiers) assertEquals(c.shard_keys.length, 9);
    // MTL networks carry a neural predictivity (FEVe of their own readout on the V1 test split,
    // through neural-predictor Evaluate); the others do not
    assertEquals(r.fev_measure, "feve_v1_test");
    for (const c of r.classifiers) {
      assertEquals(Number.isFinite(c.fev), c.kind.startsWith("mtl"), `${c.name} fev`);
      if (!c.kind.startsWith("mtl")) continue;
      assertEquals(c.fev_measure, "feve_v1_test");
      assertEquals(c.neural_test!.feve, c.fev);
      assertEquals(c.neural_test!.images, exp.v1.kind === "simulated" ? exp.v1.testImages : -1);
      assertEquals(c.neural_test!.input_size, 32);
    }
    assertEquals(r.steps.filter((s) => s.kind === "neural").length, 6);
    console.log(
      "FEVe (V1 test):",
      r.classifiers.filter((c) => c.kind.startsWith("mtl")).map((c) =>
        `${c.name} ${c.fev.toFixed(3)}`
      ).join(", "),
    );
    assertEquals(r.predictors.length, 2);
    for (const p of r.predictors) assert(Number.isFinite(p.test.feve as number), p.name);
    assertEquals(r.predictors[1].epochs, 3); // readoutEpochs of smoke.json
    assert(r.predictors[0].targets_uri !== r.predictors[1].targets_uri);
    const mtlOracle = r.scores!.models.find((m) => m.name === "MTL-Oracle")!;
    assert(Number.isFinite(mtlOracle.robustness_total.value), "MTL-Oracle is not scored");
    // Fig. 3C: the MTL-Monkey ratio sweep has 4 networks, enough for the regression
    const reg = r.regressions.find((g) => g.group === "MTL-Monkey")!;
    assert(reg.fit !== null || /rank|collinear/i.test(reg.note), reg.note);

    // the files: results.json, the arrays, the report with every figure as SVG
    const saved = JSON.parse(await Deno.readTextFile(first.resultsPath));
    assertEquals(saved.scores.models.length, 8);
    const acc = readNpy(await Deno.readFile(`${dir}/run1/accuracy.npy`));
    assertEquals(acc.shape, [8, 4, 2]);
    const rob = readNpy(await Deno.readFile(`${dir}/run1/robustness.npy`));
    assertEquals(rob.shape, [8, 5, 3]);
    assertEquals(rob.data[4 * 3], 100); // Baseline, total, value
    const html = await Deno.readTextFile(first.reportPath);
    for (const id of FIGURE_IDS) {
      const at = html.indexOf(`id="${id}"`);
      assert(at >= 0, `report lacks ${id}`);
      assert(html.slice(at, at + 400).includes("<svg"), `${id} holds no svg`);
    }

    // the analyses: Fig. 5 (1 image, 2 budgets, 5 networks) and Fig. 7 (2 images, 3 networks)
    const rec = r.analyses!.reconstruction!;
    assertEquals(rec.images.length, 1);
    assertEquals(rec.budgets, [5, 15]);
    assertEquals(rec.models.map((m) => m.name), [
      "Baseline",
      "MTL-Monkey 1:2",
      "MTL-Shuffled",
      "Oracle",
      "MTL-Oracle",
    ]);
    assertEquals(rec.models.map((m) => m.optimizer), ["adam", "sgd", "sgd", "adam", "sgd"]);
    for (const m of rec.models) {
      m.norms[0].forEach((v, b) => assert(v <= rec.budgets[b] * (1 + 1e-4), `${m.name}: ${v}`));
      for (const l of m.final_losses[0]) assert(Number.isFinite(l), `${m.name} loss`);
    }
    assertEquals(rec.figures.length, 1);
    const sal = r.analyses!.saliency!;
    assertEquals(sal.images.length, 2);
    assertEquals(sal.models.map((m) => m.name), ["Baseline", "MTL-Monkey 1:2", "Oracle"]);
    for (const v of sal.rho_original) assert(v > 0 && v < 1, `rho ${v}`);
    for (const m of sal.models) {
      assertEquals(m.rho_bar.length, 2);
      for (const v of m.rho_bar) assert(v === null || (v >= -1 - 1e-6 && v <= 1 + 1e-6), `${v}`);
    }
    assert(sal.figure !== null, sal.note);
    const png = await Deno.readFile(`${dir}/run1/fig7.png`);
    assertEquals([...png.subarray(1, 4)], [80, 78, 71]); // "PNG"
    await Deno.stat(`${dir}/run1/fig5-0.png`);

    // ... and it loads in a browser without errors, every figure drawn
    const page = await openInChromium(`file://${first.reportPath}`);
    assertEquals(page.errors, []);
    assertEquals(page.figures.map((f) => f.id), [...FIGURE_IDS, ...ANALYSIS_FIGURE_IDS]);
    for (const f of page.figures) {
      if ((FIGURE_IDS as readonly string[]).includes(f.id)) {
        assert(f.svgs === 1 && f.width > 100, `${f.id} not drawn`);
      } else {
        assert(f.imgs >= 1 && f.imgsLoaded === f.imgs && f.width > 100, `${f.id} not drawn`);
      }
    }

    // bad analysis input: an unknown layer is INVALID_ARGUMENT naming the field and listing the
    // layers; the reconstructor keeps serving (the re-run below reads its stored results)
    let bad: Error | undefined;
    try {
      await runAnalyses({
        exp: {
          ...exp,
          analyses: { reconstruction: { ...exp.analyses.reconstruction!, layer: "conv9_9" } },
        },
        dsUri: datasetUri(exp),
        store: openStore(store),
        networks: analysisNetworks(r.classifiers),
        targets: { reconstructor: targets.reconstructor, saliencyScorer: targets.saliencyScorer },
        step: async (_k, _n, fn) => (await fn()).value,
        bar: () => ({ update() {}, stop() {} }),
      });
    } catch (err) {
      bad = err as Error;
    }
    assertEquals((bad as { code?: string } | undefined)?.code, "INVALID_ARGUMENT", bad?.message);
    assert(/layer/.test(bad!.message) && bad!.message.includes("conv3_1"), bad!.message);

    // the same experiment again: no work, every step from the store, the same numbers
    const second = await runPipeline(exp, {
      outDir: `${dir}/run2`,
      store,
      targets,
      progress: false,
    });
    const notCached = second.results.steps.filter((s) => !s.cached).map((s) => s.name);
    assertEquals(notCached, [], `steps that did work on the re-run: ${notCached.join(", ")}`);
    assert(second.allCached);
    assertEquals(
      second.results.scores!.models.map((m) => m.robustness_total),
      r.scores!.models.map((m) => m.robustness_total),
    );
    if (cluster.restarts.length) {
      console.warn(
        `service processes that died and were restarted: ${JSON.stringify(cluster.restarts)}`,
      );
    }
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
