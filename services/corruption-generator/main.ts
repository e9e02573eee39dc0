/**
 * The corruption-generator service: `deno task serve:corruption-generator` (default port 50053).
 * @module
 */
import { loadConfig } from "../../platform/config/config.ts";
import { serve } from "../../platform/rpc/server.ts";
import { openStore } from "../../platform/store/mod.ts";
import { CORRUPTION_PROTO, CORRUPTION_SERVICE, corruptionHandlers } from "./service.ts";

/** The service's default port. */
export const DEFAULT_PORT = 50053;

if (import.meta.main) {
  const config = loadConfig(undefined, { defaultPort: DEFAULT_PORT });
  const store = openStore(config.store);
  await serve({
    name: "corruption-generator",
    protoFiles: [CORRUPTION_PROTO],
    services: {
      [CORRUPTION_SERVICE]: corruptionHandlers({
        store,
        inlineLimitBytes: config.inlineLimitBytes,
      }),
    },
    config,
  });
}
