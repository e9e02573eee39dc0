/**
 * The saliency-scorer service: `deno task serve:saliency-scorer` (default port 50056).
 * @module
 */
import { loadConfig } from "../../platform/config/config.ts";
import { serve } from "../../platform/rpc/server.ts";
import { openStore } from "../../platform/store/mod.ts";
import { SALIENCY_PROTO, SALIENCY_SERVICE, saliencyHandlers } from "./service.ts";

/** The service's default port. */
export const DEFAULT_PORT = 50056;

if (import.meta.main) {
  const config = loadConfig(undefined, { defaultPort: DEFAULT_PORT });
  const store = openStore(config.store);
  await serve({
    name: "saliency-scorer",
    protoFiles: [SALIENCY_PROTO],
    services: {
      [SALIENCY_SERVICE]: saliencyHandlers({ store, inlineLimitBytes: config.inlineLimitBytes }),
    },
    config,
  });
}
