import { assert, assertEquals } from "../../test/assert.ts";
import {
  classifierRuns,
  ExperimentError,
  loadExperiment,
  parseExperiment,
  ratioLabel,
  ratioValue,
} from "./experiment.ts";
import { datasetUri, main as pipelineMain, resolveTargets } from "./pipeline.ts";

const MIN = {
  name: "t",
  imageSet: { kind: "builtin", classes: 3 },
  v1: { kind: "simulated" },
  models: [{ kind: "monkey-predictor" }, { kind: "baseline" }],
};

function problems(value: unknown): string[] {
  try {
    parseExperiment(value);
  } catch (err) {
    assert(err instanceof ExperimentError, String(err));
    return err.problems;
  }
  throw new Error("validated");
}

Deno.test("experiment: defaults fill in; ratio sweeps and seeds expand into runs", () => {
  const e = parseExperiment({
    ...MIN,
    models: [...MIN.models, { kind: "mtl-monkey", ratios: ["1:5", 2, "1:1"] }, {
      kind: "oracle",
      seeds: [7],
    }],
    seeds: [0, 1],
  });
  assertEquals(e.evaluation.corruptions.length, 14);
  assert(!e.evaluation.corruptions.includes("glass_blur"));
  assertEquals(e.evaluation.severities, [1, 2, 3, 4, 5]);
  assertEquals(e.evaluation.bootstrap, 250);
  assertEquals(e.imageSet, {
    kind: "builtin",
    classes: 3,
    trainPerClass: 450,
    valPerClass: 50,
    testPerClass: 50,
    size: 64,
    seed: 0,
  });
  const runs = classifierRuns(e);
  assertEquals(runs.map((r) => `${r.name}/${r.seed}`), [
    "Baseline/0",
    "Baseline/1",
    "MTL-Monkey 1:5/0",
    "MTL-Monkey 1:5/1",
    "MTL-Monkey 2:1/0",
    "MTL-Monkey 2:1/1",
    "MTL-Monkey 1:1/0",
    "MTL-Monkey 1:1/1",
    "Oracle/7",
  ]);
  assertEquals(runs[2].ratio, 0.2);
  assertEquals([ratioValue("1:4"), ratioValue(3), ratioLabel(0.25), ratioLabel("3:1")], [
    0.25,
    3,
    "1:4",
    "3:1",
  ]);
  assertEquals(
    datasetUri(e),
    "builtin:image-set?classes=3&train_per_class=450&val_per_class=50&test_per_class=50&size=64&seed=0",
  );
  const t = resolveTargets(e, { COTRAIN_EVALUATOR_ADDR: "127.0.0.1:1,127.0.0.1:2" });
  assertEquals(t.evaluator, ["127.0.0.1:1", "127.0.0.1:2"]);
  assertEquals(t.classifierTrainer, "127.0.0.1:50052");
});

Deno.test("experiment: every problem is reported with its field path", () => {
  const p = problems({
    name: "has space",
    imageSet: { kind: "imagenet" },
    v1: { kind: "simulated", neurons: 0 },
    models: [
      { kind: "baseline" },
      { kind: "monkey-predictor" },
      { kind: "mtl-monkey", ratio: -1 },
      { kind: "baseline", name: "B2", epochs: 2.5 },
      { kind: "teacher" },
    ],
    evaluation: { corruptions: ["fogg"], severities: [6], preset: "mild" },
    extra: 1,
  });
  const has = (prefix: string) =>
    assert(p.some((l) => l.startsWith(prefix)), `no ${prefix} in\n${p.join("\n")}`);
  has("name: expected a name");
  has("imageSet.kind: expected kind builtin or tiny-imagenet");
  has("v1.neurons: expected a whole number >= 1");
  has("models[2].ratio: expected a number > 0");
  has("models[3].epochs: expected a whole number >= 1");
  has("models[4].kind: expected kind monkey-predictor, baseline");
  has("evaluation.corruptions[0]: expected one of gaussian_noise");
  has("evaluation.severities[0]: expected a severity 1..5");
  has("evaluation.preset: expected imagecorruptions or tiny-imagenet-c");
  has("(root): Unrecognized key");
});

Deno.test("experiment: cross-field checks (Baseline, predictor, ratios, names)", () => {
  const p = problems({
    ...MIN,
    models: [
      { kind: "monkey-predictor", name: "P1" },
      { kind: "monkey-predictor", name: "P2" },
      { kind: "mtl-monkey", ratio: "3:2" },
      { kind: "mtl-shuffled", predictor: "P3" },
      { kind: "mtl-oracle" },
      { kind: "mtl-monkey", name: "P1", predictor: "P1" },
      { kind: "mtl-monkey", predictor: "P2", ratio: 1, ratios: [1] },
    ],
    evaluation: { corruptions: ["fog"], figureCorruptions: ["contrast"] },
  });
  assertEquals(p, [
    'models[5].name: "P1" is used by models[0] too',
    "models[2].ratio: expected r:1 with r whole or 1:k with k whole (got 1.5:1)",
    "models[2].predictor: several monkey-predictor models: name the one to use",
    "models[3].predictor: no monkey-predictor named P3",
    // MTL-Oracle's readout is fitted with a monkey-predictor's settings: which one, when several
    "models[4].predictor: several monkey-predictor models: name the one to use",
    "models[4].oracle: MTL-Oracle needs exactly one (named) oracle model",
    "models[6].ratios: give ratio or ratios, not both",
    "models: the Baseline is the reference of every score: add a baseline model",
    "evaluation.figureCorruptions[0]: contrast is not in evaluation.corruptions",
  ]);
});

Deno.test("experiment: the shipped files validate; relative paths resolve from the file", async () => {
  for (const f of ["smoke", "demo", "paper"]) {
    const e = await loadExperiment(
      new URL(`../../experiments/${f}.json`, import.meta.url).pathname,
    );
    assertEquals(e.name, f);
  }
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/e.json`,
      JSON.stringify({
        ...MIN,
        imageSet: { kind: "tiny-imagenet", path: "data/tin" },
        v1: { kind: "arrays", path: "../v1.npz" },
      }),
    );
    const e = await loadExperiment(`${dir}/e.json`);
    assertEquals(e.imageSet.kind === "tiny-imagenet" && e.imageSet.path, `${dir}/data/tin`);
    assertEquals(e.v1.kind === "arrays" && e.v1.path, `${dir.replace(/\/[^/]+$/, "")}/v1.npz`);
    await Deno.writeTextFile(`${dir}/bad.json`, "{ not json");
    await assertThrowsAsync(() => loadExperiment(`${dir}/bad.json`), "not JSON");
    assert(problems(null).some((l) => l.startsWith("(root):")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline CLI: a bad experiment file exits 2 naming the field; no services needed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/e.json`,
      JSON.stringify({ ...MIN, models: [{ kind: "baseline", lr: 0 }] }),
    );
    const lines: string[] = [];
    const orig = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(" "));
    try {
      assertEquals(await pipelineMain([`${dir}/e.json`]), 2);
      assertEquals(await pipelineMain([]), 2);
    } finally {
      console.error = orig;
    }
    assert(lines.some((l) => l.includes("models[0].lr: expected a number > 0")), lines.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function assertThrowsAsync(fn: () => Promise<unknown>, includes: string): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert(String((err as Error).message).includes(includes), String(err));
    return;
  }
  throw new Error("did not throw");
}

Deno.test("experiment: analyses name trained classifiers; their settings are checked", () => {
  const p = problems({
    ...MIN,
    models: [...MIN.models, { kind: "mtl-monkey", ratios: ["1:2", "1:1"] }],
    analyses: {
      reconstruction: { models: ["Baseline", "MTL-Monkey"], budgets: [5, 0], optimizer: "lbfgs" },
      saliency: { models: ["MTL-Monkey 1:2", "Monkey Predictor"], mass: 1.5 },
    },
  });
  assertEquals(p, [
    "analyses.reconstruction.budgets[1]: expected a number > 0",
    "analyses.reconstruction.optimizer: expected sgd or adam",
    "analyses.saliency.mass: expected a number in (0, 1)",
  ]);
  const q = problems({
    ...MIN,
    models: [...MIN.models, { kind: "mtl-monkey", ratios: ["1:2", "1:1"] }],
    analyses: {
      reconstruction: { models: ["Baseline", "MTL-Monkey"] },
      saliency: { models: ["MTL-Monkey 1:2", "Monkey Predictor"] },
    },
  });
  assertEquals(q, [
    "analyses.reconstruction.models[1]: no classifier named MTL-Monkey (Baseline, " +
    "MTL-Monkey 1:2, MTL-Monkey 1:1)",
    "analyses.saliency.models[1]: no classifier named Monkey Predictor (Baseline, " +
    "MTL-Monkey 1:2, MTL-Monkey 1:1)",
  ]);
  const ok = parseExperiment({ ...MIN, analyses: { saliency: {} } });
  assertEquals(ok.analyses.saliency!.images, 70);
  assertEquals(ok.analyses.saliency!.budget, undefined); // the reconstruction's smallest, else 5
});
