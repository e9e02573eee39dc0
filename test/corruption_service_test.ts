/**
 * corruption-generator over real gRPC on loopback: Corrupt inline and by TensorRef, CorruptGrid's
 * stream, ListCorruptions, and every bad-input path (INVALID_ARGUMENT naming the field), after
 * which the service still answers.
 */
import { assert, assertEquals, assertRejectsCode } from "./assert.ts";
import { RpcServer } from "../platform/rpc/server.ts";
import { RpcClient } from "../platform/rpc/client.ts";
import { FileStore } from "../platform/store/mod.ts";
import {
  decodeTensor,
  encodeTensor,
  resolveTensor,
  storeTensor,
  type TensorOrRefMsg,
} from "../platform/tensor/tensor.ts";
import { corruptBatch, PAPER_14 } from "../core/corruptions/mod.ts";
import { testConfig } from "./fixtures/test_service.ts";
import {
  CORRUPTION_PROTO,
  CORRUPTION_SERVICE,
  corruptionHandlers,
} from "../services/corruption-generator/service.ts";

const CONFIG = testConfig();

async function withService(
  fn: (client: RpcClient, store: FileStore) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cotrain-corrupt-" });
  const store = new FileStore(`file://${dir}`);
  const server = new RpcServer({
    name: "corruption-generator",
    protoFiles: [CORRUPTION_PROTO],
    services: { [CORRUPTION_SERVICE]: corruptionHandlers({ store, inlineLimitBytes: 4 << 20 }) },
    config: CONFIG,
  });
  await server.start();
  server.setServing(true);
  const client = new RpcClient({
    protoFiles: [CORRUPTION_PROTO],
    service: CORRUPTION_SERVICE,
    target: server.address,
  });
  try {
    await fn(client, store);
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function images(n = 2, c = 3) {
  const data = new Uint8Array(n * 32 * 32 * c);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 7) * 11) % 256;
  return { dtype: "uint8" as const, shape: c === 1 ? [n, 32, 32] : [n, 32, 32, c], data };
}

interface CorruptRes {
  images: TensorOrRefMsg;
  corruption: string;
  severity: number;
}

Deno.test("service: Corrupt inline equals the library, with options", async () => {
  await withService(async (client) => {
    const b = images();
    const res = await client.unary<CorruptRes>("Corrupt", {
      images: { inline: encodeTensor(b) },
      corruption: "shot_noise",
      severity: 4,
      options: { seed: 9, index_offset: 5, preset: "tiny-imagenet-c", to_gray: true },
    });
    const got = decodeTensor(res.images.inline);
    const want = corruptBatch(b, {
      corruption: "shot_noise",
      severity: 4,
      seed: 9,
      indexOffset: 5,
      preset: "tiny-imagenet-c",
      toGray: true,
    });
    assertEquals(got.shape, [2, 32, 32, 1]);
    assertEquals(got.data, want.data);
    // float32 in, float32 out
    const f = new Float32Array(b.data.length).map((_, i) => b.data[i] / 255);
    const fres = await client.unary<CorruptRes>("Corrupt", {
      images: { inline: encodeTensor({ dtype: "float32", shape: b.shape, data: f }) },
      corruption: "contrast",
      severity: 2,
    });
    assertEquals(decodeTensor(fres.images.inline).dtype, "float32");
  });
});

Deno.test("service: Corrupt by TensorRef answers by TensorRef", async () => {
  await withService(async (client, store) => {
    const b = images(3, 1);
    const ref = await storeTensor(b, store, "in/batch.bin");
    const res = await client.unary<CorruptRes>("Corrupt", {
      images: { ref },
      corruption: "motion_blur",
      severity: 2,
      options: { seed: 1, gray_path: "GRAY_PATH_DIRECT" },
    });
    assertEquals(res.images.kind, "ref");
    const got = await resolveTensor(res.images, store);
    const want = corruptBatch(b, {
      corruption: "motion_blur",
      severity: 2,
      seed: 1,
      grayPath: "direct",
    });
    assertEquals(got.data, want.data);
  });
});

Deno.test("service: CorruptGrid streams progress and one result per pair", async () => {
  await withService(async (client) => {
    const b = images(1);
    const results: CorruptRes[] = [];
    let progress = 0;
    for await (
      const ev of client.stream<
        { result?: CorruptRes; progress?: { done: number; total: number } }
      >(
        "CorruptGrid",
        { images: { inline: encodeTensor(b) }, severities: [1, 5], options: { seed: 3 } },
      )
    ) {
      if (ev.result) results.push(ev.result);
      if (ev.progress) {
        progress++;
        assertEquals(ev.progress.total, 28);
      }
    }
    assertEquals(
      results.map((r) => `${r.corruption}-${r.severity}`),
      PAPER_14.flatMap((c) => [`${c}-1`, `${c}-5`]),
    );
    assertEquals(progress, 29);
    const fog = results.find((r) => r.corruption === "fog" && r.severity === 5) as CorruptRes;
    assertEquals(
      decodeTensor(fog.images.inline).data,
      corruptBatch(b, { corruption: "fog", severity: 5, seed: 3 }).data,
    );
  });
});

Deno.test("service: ListCorruptions gives names, groups, the paper's 14 and the tables", async () => {
  await withService(async (client) => {
    const all = await client.unary<{
      corruptions: string[];
      paper_14: string[];
      groups: { name: string; corruptions: string[] }[];
      presets: { name: string; params: { corruption: string; severities_json: string[] }[] }[];
    }>("ListCorruptions", {});
    assertEquals(all.corruptions.length, 19);
    assertEquals(all.paper_14, [...PAPER_14]);
    assertEquals(all.groups.map((g) => g.name), ["noise", "blur", "weather", "digital", "extra"]);
    assertEquals(all.presets.map((p) => p.name), ["imagecorruptions", "tiny-imagenet-c"]);
    const gn = all.presets[0].params.find((p) => p.corruption === "gaussian_noise");
    assertEquals(gn?.severities_json, ["0.08", "0.12", "0.18", "0.26", "0.38"]);
    const one = await client.unary<{ presets: unknown[] }>("ListCorruptions", {
      preset: "tiny-imagenet-c",
    });
    assertEquals(one.presets.length, 1);
  });
});

Deno.test("service: bad input gets INVALID_ARGUMENT naming the field; the service keeps serving", async () => {
  await withService(async (client) => {
    const ok = { images: { inline: encodeTensor(images(1)) }, corruption: "fog", severity: 1 };
    const small = { dtype: "uint8" as const, shape: [1, 16, 16, 3], data: new Uint8Array(768) };
    const nan = {
      dtype: "float32" as const,
      shape: [1, 32, 32],
      data: new Float32Array(1024).fill(NaN),
    };
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, corruption: "rain" }, /corruption: unknown "rain"; allowed: gaussian_noise/],
      [{ ...ok, severity: 6 }, /severity: 6 is outside 1\.\.5/],
      [{ ...ok, severity: 0 }, /severity: 0/],
      [{ ...ok, options: { preset: "imagenet-c" } }, /preset: unknown "imagenet-c"; allowed/],
      [
        { ...ok, images: { inline: encodeTensor(small) } },
        /images.shape: images are 16x16; the smallest allowed is 32x32/,
      ],
      [
        { ...ok, images: { inline: { ...encodeTensor(images(1)), dtype: "DTYPE_INT32" } } },
        /images.inline.dtype: .*allowed: DTYPE_UINT8, DTYPE_FLOAT32/,
      ],
      [
        { ...ok, images: { inline: { ...encodeTensor(images(1)), data: new Uint8Array(10) } } },
        /images.inline.data: 10 bytes, expected 3072/,
      ],
      [{ ...ok, images: { inline: encodeTensor(nan) } }, /images.inline.data: element 0 is NaN/],
      [{ ...ok, images: {} }, /images: set inline or ref/],
    ];
    for (const [req, pattern] of bad) {
      const err = await assertRejectsCode(client.unary("Corrupt", req), "INVALID_ARGUMENT");
      assert(pattern.test(err.message), `${err.message} !~ ${pattern}`);
    }
    const grid = async (req: Record<string, unknown>) => {
      for await (const _ of client.stream("CorruptGrid", req)) { /* drain */ }
    };
    let err = await assertRejectsCode(
      grid({ images: ok.images, corruptions: ["fog", "rain"] }),
      "INVALID_ARGUMENT",
    );
    assert(/corruptions\[1\]: unknown "rain"/.test(err.message), err.message);
    err = await assertRejectsCode(
      grid({ images: ok.images, severities: [2, 9] }),
      "INVALID_ARGUMENT",
    );
    assert(/severities\[1\]: 9 is outside/.test(err.message), err.message);
    await assertRejectsCode(client.unary("ListCorruptions", { preset: "x" }), "INVALID_ARGUMENT");
    const res = await client.unary<CorruptRes>("Corrupt", ok);
    assertEquals(decodeTensor(res.images.inline).shape, [1, 32, 32, 3]);
  });
});
