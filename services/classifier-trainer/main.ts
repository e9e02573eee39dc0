/**
 * The classifier-trainer service: `deno task serve:classifier-trainer` (default port 50052).
 * @module
 */
import { initBackend } from "../../core/engine/backend.ts";
import { loadConfig } from "../../platform/config/config.ts";
import { serve } from "../../platform/rpc/server.ts";
import { openStore } from "../../platform/store/mod.ts";
import { OIP_PROTO, OIP_SERVICE, oipHandlers, OipRegistry } from "../../platform/oip/oip.ts";
import { CLASSIFIER_PROTO, CLASSIFIER_SERVICE, classifierHandlers } from "./service.ts";

/** The service's default port. */
export const DEFAULT_PORT = 50052;

if (import.meta.main) {
  const config = loadConfig(undefined, { defaultPort: DEFAULT_PORT });
  const engine = await initBackend(config.backend);
  const store = openStore(config.store);
  const registry = new OipRegistry();
  await serve({
    name: "classifier-trainer",
    protoFiles: [CLASSIFIER_PROTO, OIP_PROTO],
    services: {
      [CLASSIFIER_SERVICE]: classifierHandlers({ store, registry }),
      [OIP_SERVICE]: oipHandlers(registry, { name: "classifier-trainer", version: "0.1.0" }),
    },
    config,
    info: { backend: engine.name, "train-engine": config.trainEngine },
  });
}
