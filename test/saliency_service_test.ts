/**
 * saliency-scorer over real gRPC on loopback: SaliencyMap equals core's spectral residual,
 * SalientMask from supplied densities (hand-computed) and from images (70% of the density),
 * NormRatio's rho and rho_bar on hand-computed cases with supplied and computed densities, and
 * every bad-input path (INVALID_ARGUMENT naming the field), after which the service still answers.
 */
import { assert, assertClose, assertEquals, assertRejectsCode } from "./assert.ts";
import { spectralResidualSaliency } from "../core/analysis/saliency.ts";
import { rngFor } from "../core/random.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import { decodeTensor, encodeTensor, type HostTensor } from "../platform/tensor/tensor.ts";
import { testConfig } from "./fixtures/test_service.ts";
import {
  SALIENCY_PROTO,
  SALIENCY_SERVICE,
  saliencyHandlers,
} from "../services/saliency-scorer/service.ts";

async function withService(fn: (client: RpcClient) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-saliency-" });
  const store = new FileStore(`file://${dir}`);
  const server = new RpcServer({
    name: "saliency-scorer",
    protoFiles: [SALIENCY_PROTO],
    services: { [SALIENCY_SERVICE]: saliencyHandlers({ store }) },
    config: testConfig(),
  });
  await server.start();
  server.setServing(true);
  const client = new RpcClient({
    protoFiles: [SALIENCY_PROTO],
    service: SALIENCY_SERVICE,
    target: server.address,
  });
  try {
    await fn(client);
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const inline = (t: HostTensor) => ({ inline: encodeTensor(t) });
const f32 = (shape: number[], data: Float32Array) => inline({ dtype: "float32", shape, data });

function uint8Images(n: number, size: number): HostTensor<"uint8"> {
  const rng = rngFor(2, "saliency-test");
  const data = new Uint8Array(n * size * size);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  // an odd bright square in each image
  for (let i = 0; i < n; i++) {
    for (let y = 10; y < 18; y++) {
      for (let x = 30; x < 38; x++) data[(i * size + y) * size + x] = 255;
    }
  }
  return { dtype: "uint8", shape: [n, size, size], data };
}

/** A 64x64 density with 10 pixels of 0.1 each at the start of the first row. */
function tenPixelDensity(): Float32Array {
  const d = new Float32Array(64 * 64);
  d.fill(0.1, 0, 10);
  return d;
}

Deno.test("saliency-scorer: SaliencyMap gives the spectral-residual densities", async () => {
  await withService(async (client) => {
    const imgs = uint8Images(2, 64);
    // deno-lint-ignore no-explicit-any
    const res = await client.unary<any>("SaliencyMap", { images: inline(imgs) });
    assertEquals(res.model, "spectral-residual");
    assert(res.citation.includes("Hou") && res.citation.includes("2007"), res.citation);
    const d = decodeTensor(res.densities.inline);
    assertEquals(d.shape, [2, 64, 64]);
    const data = d.data as Float32Array;
    for (let i = 0; i < 2; i++) {
      const own = spectralResidualSaliency(imgs.data.subarray(i * 4096, (i + 1) * 4096), 64, 64);
      own.forEach((v, k) => assertClose(data[i * 4096 + k], v, 1e-9));
    }
    // float32 [N, H, W, 1] of another size: resized to 64x64 first
    const small = new Float32Array(32 * 32);
    rngFor(1, "small").fillNormal(small);
    // deno-lint-ignore no-explicit-any
    const r2 = await client.unary<any>("SaliencyMap", { images: f32([1, 32, 32, 1], small) });
    const d2 = decodeTensor(r2.densities.inline);
    assertEquals(d2.shape, [1, 64, 64]);
    assertClose((d2.data as Float32Array).reduce((s, v) => s + v, 0), 1, 1e-4);
  });
});

Deno.test("saliency-scorer: SalientMask from supplied densities and from images", async () => {
  await withService(async (client) => {
    // deno-lint-ignore no-explicit-any
    const res = await client.unary<any>("SalientMask", {
      densities: f32([1, 64, 64], tenPixelDensity()),
    });
    const m = decodeTensor(res.masks);
    assertEquals(m.shape, [1, 64, 64]);
    // ties broken by index: the first 7 of the 10 equal pixels hold 0.7
    assertEquals(Array.from((m.data as Uint8Array).subarray(0, 12)), [
      1,
      1,
      1,
      1,
      1,
      1,
      1,
      0,
      0,
      0,
      0,
      0,
    ]);
    assertEquals(res.count, [7]);
    assertClose(res.mass[0], 0.7, 1e-6);
    // another mass
    // deno-lint-ignore no-explicit-any
    const half = await client.unary<any>("SalientMask", {
      densities: f32([1, 64, 64], tenPixelDensity()),
      mass: 0.5,
    });
    assertEquals(half.count, [5]);
    // from images: each mask holds at least 70% of its density and is not larger than needed
    const imgs = uint8Images(3, 64);
    // deno-lint-ignore no-explicit-any
    const fromImages = await client.unary<any>("SalientMask", { images: inline(imgs) });
    const masks = decodeTensor(fromImages.masks).data as Uint8Array;
    for (let i = 0; i < 3; i++) {
      const d = spectralResidualSaliency(imgs.data.subarray(i * 4096, (i + 1) * 4096), 64, 64);
      let held = 0, smallest = 1;
      for (let k = 0; k < 4096; k++) {
        if (masks[i * 4096 + k]) {
          held += d[k];
          smallest = Math.min(smallest, d[k]);
        }
      }
      assert(held >= 0.7 - 1e-5 && held - smallest < 0.7, `image ${i}: ${held}`);
      assertClose(fromImages.mass[i], held, 1e-4);
    }
  });
});

Deno.test("saliency-scorer: NormRatio gives hand-computed rho and rho_bar", async () => {
  await withService(async (client) => {
    const ones = new Float32Array(4096).fill(1);
    const onMask = new Float32Array(4096);
    onMask.fill(2, 0, 7);
    const offMask = new Float32Array(4096);
    offMask.fill(1, 100, 200);
    const recons = new Float32Array(3 * 4096);
    recons.set(onMask, 0);
    recons.set(ones.map((v) => 3 * v), 4096);
    recons.set(offMask, 8192);
    // deno-lint-ignore no-explicit-any
    const res = await client.unary<any>("NormRatio", {
      originals: f32([1, 64, 64, 1], ones),
      reconstructions: f32([1, 3, 64, 64, 1], recons),
      densities: f32([1, 64, 64], tenPixelDensity()),
    });
    // the mask is 7 pixels: rho_o = 7 / 4096; the reconstructions: all on the mask (1), the
    // original scaled (7 / 4096), none on the mask (0)
    const ro = 7 / 4096;
    assertClose((decodeTensor(res.rho_original).data as Float32Array)[0], ro, 1e-7);
    const rr = decodeTensor(res.rho_reconstruction);
    const rb = decodeTensor(res.rho_bar);
    assertEquals(rr.shape, [1, 3]);
    [1, ro, 0].forEach((v, i) => assertClose((rr.data as Float32Array)[i], v, 1e-6));
    [1, 0, -ro / (1 - ro)].forEach((v, i) => assertClose((rb.data as Float32Array)[i], v, 1e-6));
    assertEquals(decodeTensor(res.masks).shape, [1, 64, 64]);

    // densities computed by the model, 32x32 images resized to 64x64, one reconstruction each
    const imgs = uint8Images(2, 32);
    const rec = new Float32Array(2 * 32 * 32);
    rngFor(5, "rec").fillNormal(rec);
    // deno-lint-ignore no-explicit-any
    const auto = await client.unary<any>("NormRatio", {
      originals: inline(imgs),
      reconstructions: f32([2, 32, 32], rec),
    });
    const bar = decodeTensor(auto.rho_bar);
    assertEquals(bar.shape, [2, 1]);
    (bar.data as Float32Array).forEach((v) => assert(Number.isFinite(v) && v <= 1, `${v}`));
  });
});

Deno.test("saliency-scorer: bad input gets INVALID_ARGUMENT naming the field", async () => {
  await withService(async (client) => {
    const d = f32([1, 64, 64], tenPixelDensity());
    const img = inline(uint8Images(1, 64));
    const neg = new Float32Array(4096);
    neg[0] = -1;
    neg[1] = 2;
    const cases: [string, Record<string, unknown>, string][] = [
      ["SalientMask", {}, "images, densities"],
      ["SalientMask", { images: img, densities: d }, "images, densities"],
      ["SalientMask", { densities: d, mass: 1.5 }, "mass"],
      ["SalientMask", { densities: d, mass: 0 }, "mass"],
      ["SalientMask", { densities: f32([1, 64, 64], neg) }, "densities[0]"],
      ["SalientMask", { densities: f32([1, 64, 64], new Float32Array(4096)) }, "densities[0]"],
      ["SaliencyMap", { images: img, model: "deepgaze" }, "model"],
      ["SaliencyMap", { images: f32([2, 8], new Float32Array(16)) }, "images"],
      ["SaliencyMap", {
        images: inline({ dtype: "int32", shape: [1, 4, 4], data: new Int32Array(16) }),
      }, "images"],
      [
        "NormRatio",
        { originals: img, reconstructions: inline(uint8Images(2, 64)) },
        "reconstructions",
      ],
      ["NormRatio", {
        originals: f32([1, 64, 64], new Float32Array(4096)),
        reconstructions: img,
        densities: d,
      }, "originals[0]"],
      ["NormRatio", {
        originals: img,
        reconstructions: img,
        densities: f32([2, 64, 64], new Float32Array(8192).fill(1)),
      }, "densities"],
    ];
    for (const [method, req, field] of cases) {
      const err = await assertRejectsCode(client.unary(method, req), "INVALID_ARGUMENT");
      assert(
        err.message.includes(`: ${field}`),
        `${method} ${JSON.stringify(Object.keys(req))}: ${err.message}`,
      );
    }
    // still serving
    // deno-lint-ignore no-explicit-any
    const ok = await client.unary<any>("SalientMask", { densities: d });
    assertEquals(ok.count, [7]);
  });
});
