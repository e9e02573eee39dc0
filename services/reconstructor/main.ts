/**
 * The reconstructor service: `deno task serve:reconstructor` (default port 50055). Besides the
 * common configuration (README.md) it reads `COTRAIN_MAX_RECONSTRUCT_STEPS` (default 20000), the
 * most optimisation steps one Reconstruct request may ask for.
 * @module
 */
import { z } from "zod";
import { initBackend } from "../../core/engine/backend.ts";
import { loadConfig, processEnv } from "../../platform/config/config.ts";
import { CotrainError } from "../../platform/errors.ts";
import { serve } from "../../platform/rpc/server.ts";
import { openStore } from "../../platform/store/mod.ts";
import {
  DEFAULT_MAX_STEPS,
  RECONSTRUCTOR_PROTO,
  RECONSTRUCTOR_SERVICE,
  reconstructorHandlers,
} from "./service.ts";

/** The service's default port. */
export const DEFAULT_PORT = 50055;

/** COTRAIN_MAX_RECONSTRUCT_STEPS from `env` (a whole number >= 1), validated. */
export function maxStepsFrom(env: Record<string, string | undefined>): number {
  const raw = env.COTRAIN_MAX_RECONSTRUCT_STEPS;
  if (raw === undefined || raw.trim() === "") return DEFAULT_MAX_STEPS;
  const parsed = z.string().trim().regex(/^\d+$/).transform(Number).pipe(
    z.number().int().min(1).max(10_000_000),
  ).safeParse(raw);
  if (!parsed.success) {
    throw CotrainError.invalidArgument(
      `bad configuration: COTRAIN_MAX_RECONSTRUCT_STEPS=${JSON.stringify(raw)}: ` +
        `must be a whole number from 1 to 10000000`,
    );
  }
  return parsed.data;
}

if (import.meta.main) {
  const env = processEnv();
  const config = loadConfig(env, { defaultPort: DEFAULT_PORT });
  const maxSteps = maxStepsFrom(env);
  const engine = await initBackend(config.backend);
  const store = openStore(config.store);
  await serve({
    name: "reconstructor",
    protoFiles: [RECONSTRUCTOR_PROTO],
    services: {
      [RECONSTRUCTOR_SERVICE]: reconstructorHandlers({
        store,
        maxSteps,
        inlineLimitBytes: config.inlineLimitBytes,
      }),
    },
    config,
    info: { backend: engine.name },
  });
}
