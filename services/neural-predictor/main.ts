/**
 * The neural-predictor service: `deno task serve:neural-predictor` (default port 50051). Serves
 * `cotrain.v1.NeuralPredictor` and, for the checkpoints it has loaded, the Open Inference Protocol
 * (`inference.GRPCInferenceService`) on the same port.
 * @module
 */
import { initBackend } from "../../core/engine/backend.ts";
import { loadConfig } from "../../platform/config/config.ts";
import { OIP_PROTO, OIP_SERVICE, oipHandlers, OipRegistry } from "../../platform/oip/oip.ts";
import { serve } from "../../platform/rpc/server.ts";
import { openStore } from "../../platform/store/mod.ts";
import {
  NEURAL_PREDICTOR_PROTO,
  NEURAL_PREDICTOR_SERVICE,
  neuralPredictorHandlers,
  NeuralPredictorModels,
} from "./service.ts";

/** The service's default port. */
export const DEFAULT_PORT = 50051;

/** The service's version in ServerMetadata. */
export const VERSION = "0.1.0";

if (import.meta.main) {
  const config = loadConfig(undefined, { defaultPort: DEFAULT_PORT });
  const engine = await initBackend(config.backend);
  const store = openStore(config.store);
  const registry = new OipRegistry();
  const models = new NeuralPredictorModels(store, registry);
  await serve({
    name: "neural-predictor",
    protoFiles: [NEURAL_PREDICTOR_PROTO, OIP_PROTO],
    services: {
      [NEURAL_PREDICTOR_SERVICE]: neuralPredictorHandlers({
        store,
        models,
        inlineLimitBytes: config.inlineLimitBytes,
      }),
      [OIP_SERVICE]: oipHandlers(registry, { name: "neural-predictor", version: VERSION }),
    },
    config,
    info: { backend: engine.name, "train-engine": config.trainEngine },
  });
}
