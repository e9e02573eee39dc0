/**
 * The analyses' choices that need no service: which networks, which optimiser, which test images
 * (seeded, normalised, noise), and the errors for impossible requests; a reconstructor that is
 * not running is UNAVAILABLE naming the method and address. The calls through real services are
 * in test/pipeline_e2e_test.ts.
 */
import { assert, assertEquals } from "../../test/assert.ts";
import {
  type AnalysisNetwork,
  optimizerFor,
  pickImages,
  pickNetworks,
  runAnalyses,
} from "./analyses.ts";
import { ExperimentError, parseExperiment } from "./experiment.ts";
import { openStore } from "../../platform/store/mod.ts";
import { TIN_MEAN, TIN_STD } from "../../core/data/augment.ts";
import { loadDataset } from "../../core/data/datasets.ts";

const NETS: AnalysisNetwork[] = [
  { name: "Baseline", kind: "baseline", seed: 1, model_id: "b1" },
  { name: "Baseline", kind: "baseline", seed: 0, model_id: "b0" },
  { name: "MTL-Monkey 1:2", kind: "mtl-monkey", seed: 0, model_id: "m12" },
  { name: "MTL-Monkey 1:1", kind: "mtl-monkey", seed: 0, model_id: "m11" },
  { name: "Oracle", kind: "oracle", seed: 0, model_id: "o" },
];
const DS = "builtin:image-set?classes=2&train_per_class=2&val_per_class=1&test_per_class=5" +
  "&size=16&seed=4";

Deno.test("analyses: networks by name (first seed) or one per kind; unknown names are refused", () => {
  assertEquals(
    pickNetworks(NETS, undefined, ["baseline", "mtl-monkey", "mtl-shuffled", "oracle"], "f")
      .map((n) => n.model_id),
    ["b0", "m12", "o"],
  );
  assertEquals(
    pickNetworks(NETS, ["MTL-Monkey 1:1", "Baseline"], [], "f").map((n) => n.model_id),
    ["m11", "b0"],
  );
  let err: unknown;
  try {
    pickNetworks(NETS, ["Baseline", "Nope"], [], "analyses.saliency.models");
  } catch (e) {
    err = e;
  }
  assert(err instanceof ExperimentError);
  assert(err.problems[0].startsWith("analyses.saliency.models[1]: no trained model named Nope"));
  assertEquals(optimizerFor("baseline"), "adam");
  assertEquals(optimizerFor("oracle"), "adam");
  assertEquals(optimizerFor("mtl-oracle"), "sgd");
  assertEquals(optimizerFor("mtl-monkey", "adam"), "adam");
});

Deno.test("analyses: test images by a seeded shuffle, TIN-normalised, optional noise", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = openStore(`file://${dir}`);
    const a = await pickImages(DS, store, 3, 7, 0, "f");
    const b = await pickImages(DS, store, 3, 7, 0, "f");
    const c = await pickImages(DS, store, 3, 8, 0, "f");
    assertEquals(a.indices, b.indices);
    assertEquals(a.indices.length, 3);
    assert(a.indices.every((i, k) => i >= 0 && i < 10 && (k === 0 || i > a.indices[k - 1])));
    assert(a.indices.join() !== c.indices.join(), "another seed, other images");
    assertEquals(a.x.shape, [3, 16, 16, 1]);
    assertEquals(a.side, 16);
    const ds = await loadDataset(DS);
    const raw = ds.test.images.data[a.indices[1] * 256 + 17];
    const want = (raw / 255 - TIN_MEAN) / TIN_STD;
    assert(Math.abs(a.x.data[256 + 17] - want) < 1e-5);
    const noisy = await pickImages(DS, store, 3, 7, 0.5, "f");
    const diff = noisy.x.data.map((v, i) => v - a.x.data[i]);
    const sd = Math.sqrt(diff.reduce((s, v) => s + v * v, 0) / diff.length);
    assert(sd > 0.4 && sd < 0.6, `noise sd ${sd}`);

    let err: unknown;
    try {
      await pickImages(DS, store, 11, 0, 0, "analyses.reconstruction.images");
    } catch (e) {
      err = e;
    }
    assert(err instanceof ExperimentError);
    assertEquals(err.problems, [
      "analyses.reconstruction.images: 11 images, but the test split has 10",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("analyses: none declared -> no calls; a reconstructor not running is UNAVAILABLE", async () => {
  const dir = await Deno.makeTempDir();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const addr = `127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  l.close();
  try {
    const base = {
      name: "a",
      imageSet: { kind: "builtin", classes: 2, testPerClass: 5, size: 16, seed: 4 },
      v1: { kind: "simulated" },
      models: [{ kind: "baseline" }],
    };
    const ctx = {
      dsUri: DS,
      store: openStore(`file://${dir}`),
      networks: NETS,
      targets: { reconstructor: addr, saliencyScorer: addr },
      step: async <T>(_k: string, _n: string, fn: () => Promise<{ value: T }>) =>
        (await fn()).value,
      bar: () => ({ update() {}, stop() {} }),
    };
    assertEquals(await runAnalyses({ ...ctx, exp: parseExperiment(base) }), {});
    const exp = parseExperiment({
      ...base,
      analyses: { reconstruction: { images: 1, steps: 2, models: ["Baseline"] } },
    });
    let err: Error | undefined;
    try {
      await runAnalyses({ ...ctx, exp });
    } catch (e) {
      err = e as Error;
    }
    assert(err, "no error");
    assertEquals((err as { code?: string }).code, "UNAVAILABLE", err.message);
    assert(err.message.includes("cotrain.v1.Reconstructor/Reconstruct"), err.message);
    assert(err.message.includes(addr), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
