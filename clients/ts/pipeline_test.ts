/**
 * The pipeline's failure paths that need no trained models: input files that do not exist are
 * reported with their field before any service is called; a service that is not there is
 * UNAVAILABLE naming the service and its address; a data set the trainer does not have is
 * NOT_FOUND naming dataset_uri.
 */
import { assert, assertEquals } from "../../test/assert.ts";
import { parseExperiment } from "./experiment.ts";
import { runPipeline } from "./pipeline.ts";
import { ExperimentError } from "./experiment.ts";

const BASE = {
  name: "t",
  imageSet: { kind: "builtin", classes: 2, trainPerClass: 2, valPerClass: 1, testPerClass: 1 },
  v1: { kind: "simulated", images: 16, size: 32, neurons: 2, sessions: 1, testImages: 4 },
  models: [{ kind: "monkey-predictor", epochs: 1 }, { kind: "baseline" }],
};

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("did not reject");
}

Deno.test("pipeline: a missing V1 arrays file is reported as v1.path before any call", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const exp = parseExperiment({ ...BASE, v1: { kind: "arrays", path: `${dir}/nope.npz` } });
    const err = await rejects(runPipeline(exp, {
      outDir: `${dir}/run`,
      store: `file://${dir}/store`,
      targets: {
        neuralPredictor: "127.0.0.1:1",
        classifierTrainer: "127.0.0.1:1",
        evaluator: "127.0.0.1:1",
      },
    }));
    assert(err instanceof ExperimentError, String(err));
    assert(err.message.includes(`v1.path: cannot read ${dir}/nope.npz`), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline: a missing Tiny ImageNet folder is NOT_FOUND naming dataset_uri", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const exp = parseExperiment({
      ...BASE,
      imageSet: { kind: "tiny-imagenet", path: `${dir}/tin` },
      models: [...BASE.models, { kind: "mtl-monkey" }],
    });
    const err = await rejects(runPipeline(exp, {
      outDir: `${dir}/run`,
      store: `file://${dir}/store`,
      targets: {
        neuralPredictor: "127.0.0.1:1",
        classifierTrainer: "127.0.0.1:1",
        evaluator: "127.0.0.1:1",
      },
    }));
    assertEquals((err as { code?: string }).code, "NOT_FOUND", err.message);
    assert(err.message.includes("dataset_uri"), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline: a service that is not running is UNAVAILABLE naming it", async () => {
  const dir = await Deno.makeTempDir();
  // a port nothing listens on
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  try {
    const exp = parseExperiment(BASE);
    const addr = `127.0.0.1:${port}`;
    const err = await rejects(runPipeline(exp, {
      outDir: `${dir}/run`,
      store: `file://${dir}/store`,
      targets: { neuralPredictor: addr, classifierTrainer: addr, evaluator: addr },
    }));
    assertEquals((err as { code?: string }).code, "UNAVAILABLE", err.message);
    assert(err.message.includes("cotrain.v1.NeuralPredictor/Train"), err.message);
    assert(err.message.includes(addr), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
