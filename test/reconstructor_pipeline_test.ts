/**
 * The analysis chain of the paper's Sec. 4 across two real services sharing one file store:
 * Reconstruct writes the reconstructions to the store, SpectralControl and the saliency-scorer's
 * NormRatio read them by reference, and the figure helpers turn the results into PNGs.
 */
import { assert, assertEquals } from "./assert.ts";
import { initBackend } from "../core/engine/backend.ts";
import { figure5Png, figure7Png } from "../core/analysis/figures.ts";
import { generateImageSet } from "../core/data/image_set.ts";
import { decodePng } from "../core/io/image.ts";
import { createMtl, disposeMtl } from "../core/models/mtl.ts";
import { saveMtlCheckpoint } from "../core/train/classifier_checkpoint.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import { decodeTensor, encodeTensor, resolveTensorRef } from "../platform/tensor/tensor.ts";
import { testConfig } from "./fixtures/test_service.ts";
import {
  RECONSTRUCTOR_PROTO,
  RECONSTRUCTOR_SERVICE,
  reconstructorHandlers,
} from "../services/reconstructor/service.ts";
import {
  SALIENCY_PROTO,
  SALIENCY_SERVICE,
  saliencyHandlers,
} from "../services/saliency-scorer/service.ts";

await initBackend("wasm");

Deno.test("pipeline: reconstructions by reference into SpectralControl and NormRatio, then figures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-analysis-" });
  const store = new FileStore(`file://${dir}`);
  const server = new RpcServer({
    name: "analysis",
    protoFiles: [RECONSTRUCTOR_PROTO, SALIENCY_PROTO],
    services: {
      [RECONSTRUCTOR_SERVICE]: reconstructorHandlers({ store, threads: 1 }),
      [SALIENCY_SERVICE]: saliencyHandlers({ store }),
    },
    config: testConfig(),
  });
  await server.start();
  server.setServing(true);
  const rec = new RpcClient({
    protoFiles: [RECONSTRUCTOR_PROTO],
    service: RECONSTRUCTOR_SERVICE,
    target: server.address,
  });
  const sal = new RpcClient({
    protoFiles: [SALIENCY_PROTO],
    service: SALIENCY_SERVICE,
    target: server.address,
  });
  try {
    const net = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 0, seed: 0 });
    await store.put("models/baseline.safetensors", saveMtlCheckpoint(net));
    disposeMtl(net);
    // two 32x32 images of the built-in set, normalised
    const set = generateImageSet({ classes: 2, perClass: 1, size: 32, seed: 1, split: "val" });
    const x0 = Float32Array.from(set.images.data, (v) => (v / 255 - 0.4519) / 0.2221);
    const originals = encodeTensor({ dtype: "float32", shape: [2, 32, 32, 1], data: x0 });
    // deno-lint-ignore no-explicit-any
    let result: any = null;
    for await (
      // deno-lint-ignore no-explicit-any
      const ev of rec.stream<any>("Reconstruct", {
        model_uri: store.uri("models/baseline.safetensors"),
        images: { inline: originals },
        budgets: [5, 15],
        steps: 10,
        optimizer: "adam",
      })
    ) if (ev.result) result = ev.result;
    const ref = result.reconstructions;
    assertEquals(ref.shape.map(Number), [2, 2, 32, 32, 1]);

    // deno-lint-ignore no-explicit-any
    const control = await rec.unary<any>("SpectralControl", {
      originals: { inline: originals },
      reconstructions: { ref },
    });
    const controls = decodeTensor(control.controls.inline).data as Float32Array;
    // deno-lint-ignore no-explicit-any
    const ratio = await sal.unary<any>("NormRatio", {
      originals: { inline: originals },
      reconstructions: { ref },
    });
    const rhoBar = decodeTensor(ratio.rho_bar);
    assertEquals(rhoBar.shape, [2, 2]);
    const bars = Array.from(rhoBar.data as Float32Array);
    assert(bars.every((v) => Number.isFinite(v) && v <= 1), `${bars}`);

    const recon = (await resolveTensorRef(ref, store)).data as Float32Array;
    const cell = (a: Float32Array, k: number) => a.subarray(k * 1024, (k + 1) * 1024);
    const fig5 = decodePng(
      figure5Png(cell(x0, 0), [{
        reconstructions: [cell(recon, 0), cell(recon, 1)],
        controls: [cell(controls, 0), cell(controls, 1)],
      }], 32),
    );
    assert(fig5.width > 5 * 64 && fig5.height > 64, `${fig5.width}x${fig5.height}`);
    const fig7 = decodePng(figure7Png({ mtl: [bars[0], bars[2]], baseline: [bars[1], bars[3]] }));
    assertEquals([fig7.width, fig7.channels], [320, 3]);
  } finally {
    rec.close();
    sal.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
