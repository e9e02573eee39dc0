/**
 * Issue 6: the built-in image set is learnable by a small VGG, at least 70% test accuracy at demo
 * scale (core/train/classifier_config.ts' DEMO_SCALE: 10 classes, 300 training images per class
 * at 32 px, VGG-19-BN width 1/8, the paper's SGD at lr 0.02, 12 epochs; a couple of minutes on two
 * cores). The linear read-out of pixels on the same kind of set stays near chance
 * (core/data/image_set_test.ts), so what the network learns is not pixel statistics.
 */
import { assert, assertEquals } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { generateImageSet } from "../core/data/image_set.ts";
import { disposeMtl } from "../core/models/mtl.ts";
import { trainClassifier, type TrainResult } from "../core/train/classifier.ts";
import { DEMO_DATASET_URI, DEMO_SCALE } from "../core/train/classifier_config.ts";
import { loadDataset } from "../core/data/datasets.ts";

await initBackend("wasm");

Deno.test("image set learnable: demo-scale Baseline reaches >= 70% test accuracy", async () => {
  const s = DEMO_SCALE.imageSet;
  const common = { classes: s.classes, size: s.size, seed: s.seed };
  const train = generateImageSet({ ...common, perClass: s.trainPerClass });
  const data = {
    train,
    val: generateImageSet({ ...common, perClass: s.valPerClass, start: s.trainPerClass }),
    test: generateImageSet({ ...common, perClass: s.testPerClass, split: "val" }),
    classes: s.classes,
  };
  // the service's URI names the same images
  const viaUri = await loadDataset(DEMO_DATASET_URI);
  assertEquals(viaUri.train.images.data, train.images.data);
  assertEquals(viaUri.test.images.data, data.test.images.data);

  const run = trainClassifier(DEMO_SCALE.training, data, { progressEvery: 0 });
  let r = await run.next();
  const val: number[] = [];
  while (!r.done) {
    if (r.value.stage === "validate") val.push(r.value.valAccuracy!);
    r = await run.next();
  }
  const result: TrainResult = r.value;
  try {
    console.log(
      `demo-scale Baseline: val accuracy per epoch ${val.map((v) => v.toFixed(2)).join(" ")}; ` +
        `best val ${result.bestValAccuracy.toFixed(3)}, test ${result.testAccuracy.toFixed(3)} ` +
        `(chance ${(1 / s.classes).toFixed(2)})`,
    );
    assert(result.testAccuracy >= 0.7, `test accuracy ${result.testAccuracy}`);
  } finally {
    disposeMtl(result.model);
  }
});
