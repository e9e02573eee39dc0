/**
 * `deno task demo`: the whole study on one machine. Starts every cotrain service on loopback as
 * its own process (a small cluster: neural-predictor, classifier-trainer, corruption-generator,
 * evaluator, and the analysis services when present), with a file store under ./runs/store, runs
 * experiments/demo.json through the orchestrator (clients/ts/pipeline.ts), stops the services and
 * prints the path of the report.
 *
 * ```sh
 * deno task demo                       # -> runs/demo/report.html
 * deno task demo --experiment experiments/smoke.json --evaluators 2 --corruption-service
 * ```
 * Finished steps stay in the store, so a second `deno task demo` only re-renders the report.
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { loadExperiment } from "./experiment.ts";
import { runPipeline } from "./pipeline.ts";
import { serviceExists, type ServiceName, startCluster } from "./lib/cluster.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Runs the demo; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        experiment: { type: "string", default: `${ROOT}experiments/demo.json` },
        store: { type: "string" },
        evaluators: { type: "string", default: "1" },
        "corruption-service": { type: "boolean", default: false },
        "no-progress": { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    console.error(`demo: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.error(
      "usage: deno task demo [--experiment FILE] [--store file:///abs/dir] [--evaluators K] " +
        "[--corruption-service] [--no-progress]",
    );
    return 0;
  }
  const evaluators = Number(values.evaluators);
  if (!Number.isInteger(evaluators) || evaluators < 1) {
    console.error(`demo: --evaluators ${values.evaluators}: expected a whole number >= 1`);
    return 2;
  }
  const t0 = performance.now();
  const exp = await loadExperiment(values.experiment!).catch((err) => {
    console.error((err as Error).message);
    return null;
  });
  if (!exp) return 2;
  const store = values.store ?? `file://${Deno.cwd()}/runs/store`;
  const outDir = exp.output ?? `runs/${exp.name}`;
  const services: ServiceName[] = [
    "neural-predictor",
    "classifier-trainer",
    "corruption-generator",
    ...Array<ServiceName>(evaluators).fill("evaluator"),
    "reconstructor",
    "saliency-scorer",
  ];
  const missing = services.filter((s) => !serviceExists(s));
  const required: ServiceName[] = ["neural-predictor", "classifier-trainer", "evaluator"];
  if (required.some((s) => missing.includes(s))) {
    console.error(`demo: services missing from this checkout: ${missing.join(", ")}`);
    return 2;
  }
  console.error(
    `demo: starting ${services.filter((s) => !missing.includes(s)).join(", ")} ` +
      `(store ${store}; logs in ${outDir}/logs)`,
  );
  const cluster = await startCluster({
    services: services.filter((s) => !missing.includes(s)),
    store,
    logDir: `${outDir}/logs`,
    logLevel: "info",
    corruptionViaService: values["corruption-service"],
    restart: true,
  });
  let status = 0;
  try {
    console.error(
      `demo: ${cluster.processes.length} services up in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s; running ${values.experiment}`,
    );
    const out = await runPipeline(exp, {
      outDir,
      store,
      targets: {
        neuralPredictor: cluster.address("neural-predictor"),
        classifierTrainer: cluster.address("classifier-trainer"),
        evaluator: cluster.addresses("evaluator"),
        ...(missing.includes("reconstructor")
          ? {}
          : { reconstructor: cluster.address("reconstructor") }),
        ...(missing.includes("saliency-scorer")
          ? {}
          : { saliencyScorer: cluster.address("saliency-scorer") }),
      },
      progress: !values["no-progress"],
      log: (l) => console.error(l),
    });
    const cached = out.results.steps.filter((s) => s.cached).length;
    console.error(
      `demo: ${out.results.steps.length} steps (${cached} from the store) in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    for (const r of cluster.restarts) {
      console.error(`demo: ${r.name} died (${r.signal ?? r.code}) and was restarted`);
    }
    console.log(out.reportPath);
  } catch (err) {
    console.error(`demo: ${(err as Error).message}`);
    console.error(`demo: the services' logs are in ${cluster.logDir}`);
    status = 1;
  } finally {
    await cluster.stop();
  }
  return status;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
