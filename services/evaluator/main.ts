/**
 * The evaluator service: `deno task serve:evaluator` (default port 50054). Run k of them on one
 * shared store (COTRAIN_STORE) and spread a sweep's shards over them (clients/ts/lib/shards.ts).
 *
 * Besides the common COTRAIN_* settings (platform/config):
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | COTRAIN_CORRUPTION_ADDR | (unset: in-process) | corruption-generator to corrupt through, host:port or dns:///name:port |
 * | COTRAIN_EVAL_ENGINE | auto | auto (onnxruntime when the ONNX export loads, else tfjs), onnxruntime, tfjs |
 * | COTRAIN_EVAL_THREADS | every core | onnxruntime intra-op threads of this replica |
 * | COTRAIN_EVAL_CORRUPT_WORKERS | 1 | Web Workers that corrupt in-process while the main thread classifies (0 = on the main thread) |
 * @module
 */
import { z } from "zod";
import { initBackend } from "../../core/engine/backend.ts";
import { loadConfig } from "../../platform/config/config.ts";
import { serve } from "../../platform/rpc/server.ts";
import { openStore } from "../../platform/store/mod.ts";
import { createEvaluator, EVALUATOR_PROTO, EVALUATOR_SERVICE } from "./service.ts";

/** The service's default port. */
export const DEFAULT_PORT = 50054;

const EvaluatorEnv = z.object({
  COTRAIN_CORRUPTION_ADDR: z.string().trim().optional(),
  COTRAIN_EVAL_ENGINE: z.enum(["auto", "onnxruntime", "tfjs"]).default("auto"),
  COTRAIN_EVAL_THREADS: z.coerce.number().int().min(1).max(1024).optional(),
  COTRAIN_EVAL_CORRUPT_WORKERS: z.coerce.number().int().min(0).max(256).default(1),
});

/** The evaluator's own settings from the environment (throws naming the variable). */
export function loadEvaluatorEnv(env: Record<string, string | undefined> = Deno.env.toObject()) {
  const parsed = EvaluatorEnv.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    );
  }
  return parsed.data;
}

if (import.meta.main) {
  const config = loadConfig(undefined, { defaultPort: DEFAULT_PORT });
  const env = loadEvaluatorEnv();
  const engine = await initBackend(config.backend);
  const store = openStore(config.store);
  const evaluator = createEvaluator({
    store,
    corruptionAddr: env.COTRAIN_CORRUPTION_ADDR || undefined,
    engine: env.COTRAIN_EVAL_ENGINE,
    threads: env.COTRAIN_EVAL_THREADS,
    corruptWorkers: env.COTRAIN_EVAL_CORRUPT_WORKERS,
  });
  await serve({
    name: "evaluator",
    protoFiles: [EVALUATOR_PROTO],
    services: { [EVALUATOR_SERVICE]: evaluator.handlers },
    config,
    info: { backend: engine.name },
  });
}
