/**
 * The WebAssembly kernels (kernels.ts) against what they replace: the JPEG round trip against
 * PIL's own (fixtures from testdata/make_jpeg_pil.py: Pillow 9.4 on libjpeg-turbo 2.1.5, the
 * reference's stack), byte for byte; the Gaussian filter, the defocus disk filter and pixelate
 * against the JavaScript code they replace (kept for these tests), bit for bit.
 */
import { assert, assertEquals } from "../../test/assert.ts";
import { decodePng } from "../io/image.ts";
import { corruptBatch, corruptImage } from "./corrupt.ts";
import { pixelateBytes } from "./corruptions.ts";
import { defocusFilter, defocusFilterJs } from "./defocus.ts";
import {
  gaussianFilter,
  gaussianFilterJs,
  newImage,
  pilResizeBox,
  pilResizeNearest,
} from "./image.ts";
import {
  distanceTransformFast,
  jpegRoundTripFast,
  waterReliefFast,
  withArenaMax,
} from "./kernels.ts";
import { type CorruptionName, PRESETS } from "./presets.ts";
import { KERNELS_C_SHA256 } from "./wasm/kernels_wasm.ts";
import { canny, distanceTransform, waterReliefJs } from "./spatter.ts";
import { streamFor } from "./rng.ts";

const DATA = new URL("./testdata/", import.meta.url);

async function rgbPng(name: string): Promise<{ h: number; w: number; data: Uint8Array }> {
  const img = decodePng(await Deno.readFile(new URL(name, DATA)));
  assertEquals(img.channels, 3, name);
  return { h: img.height, w: img.width, data: img.data as Uint8Array };
}

function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

Deno.test("jpeg: corruptBatch's jpeg_compression equals PIL's save/open round trip byte for byte", async () => {
  const src = await rgbPng("jpeg_pil_astronaut64_in.png");
  const qualities = PRESETS["imagecorruptions"].jpeg_compression as number[];
  assertEquals(qualities, [25, 18, 15, 10, 7]);
  for (let s = 1; s <= 5; s++) {
    const want = await rgbPng(`jpeg_pil_astronaut64_q${qualities[s - 1]}.png`);
    const got = corruptBatch({ dtype: "uint8", shape: [1, 64, 64, 3], data: src.data }, {
      corruption: "jpeg_compression",
      severity: s,
    });
    assertEquals(differing(got.data as Uint8Array, want.data), 0, `severity ${s}`);
  }
});

Deno.test("jpeg: odd sizes (partial blocks at the right and bottom edges) equal PIL's", async () => {
  const src = await rgbPng("jpeg_pil_chelsea45x37_in.png");
  assertEquals([src.h, src.w], [45, 37]);
  for (const q of [18, 7]) {
    const want = await rgbPng(`jpeg_pil_chelsea45x37_q${q}.png`);
    const got = new Uint8Array(src.data.length);
    jpegRoundTripFast(src.data, src.h, src.w, q, got, 0);
    assertEquals(differing(got, want.data), 0, `quality ${q}`);
  }
});

Deno.test("jpeg: writes at an offset, any quality 1..100, the same bytes on every call", () => {
  const rng = streamFor(5, 0, 0, 0);
  const h = 40, w = 56, n = h * w * 3;
  const rgb = new Uint8Array(n);
  // smooth colour gradients plus a little noise (random colour noise would not survive 4:2:0)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < 3; k++) {
        const v = 128 + 100 * Math.sin((x + 2 * y) / (9 + 5 * k)) + 20 * rng.uniform();
        rgb[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  for (const q of [1, 50, 100]) {
    const a = new Uint8Array(n), b = new Uint8Array(n + 10).fill(7);
    jpegRoundTripFast(rgb, h, w, q, a, 0);
    jpegRoundTripFast(rgb, h, w, q, b, 10);
    assertEquals(b.subarray(0, 10), new Uint8Array(10).fill(7));
    assertEquals(differing(a, b.subarray(10)), 0);
  }
  // quality 100 keeps nearly everything; quality 1 much less
  const hi = new Uint8Array(n), lo = new Uint8Array(n);
  jpegRoundTripFast(rgb, h, w, 100, hi, 0);
  jpegRoundTripFast(rgb, h, w, 1, lo, 0);
  const err = (x: Uint8Array) => x.reduce((s, v, i) => s + Math.abs(v - rgb[i]), 0) / n;
  assert(err(hi) < 6 && err(lo) > 3 * err(hi), `mean abs error q100 ${err(hi)}, q1 ${err(lo)}`);
});

Deno.test("gaussian filter: the WebAssembly passes equal correlate1d bit for bit", () => {
  const rng = streamFor(9, 0, 0, 0);
  for (const [h, w, c] of [[64, 64, 3], [33, 47, 1], [40, 35, 3], [32, 90, 1]]) {
    const img = newImage(h, w, c);
    for (let i = 0; i < img.data.length; i++) img.data[i] = rng.uniform();
    for (const border of ["nearest", "reflect", "reflect101"] as const) {
      for (
        const [sy, sx, truncate] of [[1, 1, 4], [6, 6, 4], [0.7, 2.5, 4], [3, 0, 3], [0, 1.5, 3]]
      ) {
        const a = gaussianFilter(img, sy, sx, border, truncate).data;
        const b = gaussianFilterJs(img, sy, sx, border, truncate).data;
        let diff = 0;
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
        assertEquals(diff, 0, `${h}x${w}x${c} ${border} sigma ${sy},${sx} truncate ${truncate}`);
      }
    }
  }
});

Deno.test("defocus: the WebAssembly passes equal defocusFilterJs bit for bit, both presets' kernels", () => {
  const rng = streamFor(11, 0, 0, 0);
  const kernels = [
    ...PRESETS["imagecorruptions"].defocus_blur,
    ...PRESETS["tiny-imagenet-c"].defocus_blur,
  ];
  for (const [h, w, c] of [[64, 64, 3], [33, 47, 1], [40, 35, 3]]) {
    const img = newImage(h, w, c);
    for (let i = 0; i < img.data.length; i++) img.data[i] = rng.uniform();
    for (const [radius, alias] of kernels) {
      const a = defocusFilter(img, radius, alias).data;
      const b = defocusFilterJs(img, radius, alias).data;
      let diff = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
      assertEquals(diff, 0, `${h}x${w}x${c} radius ${radius} alias ${alias}`);
    }
  }
});

Deno.test("pixelate: the WebAssembly box-down, nearest-up equals pilResizeBox + pilResizeNearest", () => {
  const rng = streamFor(13, 0, 0, 0);
  for (const [h, w, c] of [[64, 64, 3], [33, 47, 1], [40, 35, 3], [32, 32, 1]]) {
    const x = new Uint8Array(h * w * c);
    for (let i = 0; i < x.length; i++) x[i] = Math.floor(rng.uniform() * 256);
    for (const f of [...PRESETS["imagecorruptions"].pixelate, 0.9, 0.3]) {
      const got = pixelateBytes(x, h, w, c, f, "imagecorruptions");
      const oh = Math.max(1, Math.trunc(h * f)), ow = Math.max(1, Math.trunc(w * f));
      const want = pilResizeNearest(pilResizeBox(x, h, w, c, oh, ow), oh, ow, c, h, w);
      assertEquals(differing(got, want), 0, `${h}x${w}x${c} factor ${f}`);
    }
  }
});

Deno.test("uint8 RGB fast paths (noise, pixelate, JPEG, Gaussian blur) equal the float path, truncated", () => {
  const rng = streamFor(17, 0, 0, 0);
  const h = 37, w = 45, n = h * w * 3;
  const bytes = new Uint8Array(2 * n);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng.uniform() * 256);
  for (
    const corruption of [
      "gaussian_noise",
      "speckle_noise",
      "pixelate",
      "jpeg_compression",
      "gaussian_blur",
    ]
  ) {
    for (let severity = 1; severity <= 5; severity++) {
      const got = corruptBatch({ dtype: "uint8", shape: [2, h, w, 3], data: bytes }, {
        corruption,
        severity,
        seed: 4,
        indexOffset: 10,
      }).data as Uint8Array;
      for (let i = 0; i < 2; i++) {
        const img = newImage(h, w, 3);
        for (let p = 0; p < n; p++) img.data[p] = bytes[i * n + p] * (1 / 255);
        const r = corruptImage(img, corruption as CorruptionName, severity, {
          seed: 4,
          index: 10 + i,
        }).data;
        let diff = 0;
        for (let p = 0; p < n; p++) {
          const q = Math.min(Math.max(Math.floor(r[p] * 255 + 1e-4), 0), 255);
          if (q !== got[i * n + p]) diff++;
        }
        assertEquals(diff, 0, `${corruption} severity ${severity} image ${i}`);
      }
    }
  }
});

Deno.test("spatter: the WebAssembly distance transform equals distanceTransform", () => {
  const rng = streamFor(19, 0, 0, 0);
  for (const [h, w] of [[64, 64], [33, 47]]) {
    for (const p of [0.01, 0.1, 0.5, 0.95]) {
      const src = new Uint8Array(h * w);
      for (let i = 0; i < src.length; i++) src[i] = rng.uniform() < p ? 0 : 255;
      const a = distanceTransformFast(src, h, w), b = distanceTransform(src, h, w);
      let diff = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
      assertEquals(diff, 0, `${h}x${w} zeros ${p}`);
    }
  }
});

Deno.test("spatter: the WebAssembly water relief equals waterReliefJs", () => {
  const rng = streamFor(23, 0, 0, 0);
  for (const [h, w] of [[64, 64], [33, 47]]) {
    for (const sigma of [1, 3]) {
      // a smoothed random "liquid", as spatter makes it, and its inverted Canny edges
      const raw = newImage(h, w, 1);
      for (let i = 0; i < raw.data.length; i++) {
        raw.data[i] = 0.65 + 0.3 * (rng.uniform() - 0.5) * 3;
      }
      const liquid = gaussianFilter(raw, sigma, sigma, "nearest").data;
      for (let i = 0; i < liquid.length; i++) if (liquid[i] < 0.68) liquid[i] = 0;
      const l8 = new Uint8Array(h * w);
      for (let i = 0; i < l8.length; i++) l8[i] = Math.trunc(liquid[i] * 255) & 255;
      const edges = canny(l8, h, w, 50, 150);
      for (let i = 0; i < edges.length; i++) edges[i] = 255 - edges[i];
      const a = new Float64Array(h * w), b = new Float64Array(h * w);
      const maxA = waterReliefFast(edges, liquid, a, h, w);
      const maxB = waterReliefJs(edges, liquid, b, h, w);
      assertEquals(maxA, maxB, `${h}x${w} sigma ${sigma}: max`);
      let diff = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
      assertEquals(diff, 0, `${h}x${w} sigma ${sigma}`);
    }
  }
});

Deno.test("calls larger than the kept arena run in a throwaway instance, with the same results", () => {
  const rng = streamFor(29, 0, 0, 0);
  const h = 40, w = 36, n = h * w * 3;
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(rng.uniform() * 256);
  for (
    const corruption of ["jpeg_compression", "gaussian_blur", "defocus_blur", "pixelate", "spatter"]
  ) {
    const run = () =>
      corruptBatch({ dtype: "uint8", shape: [1, h, w, 3], data: bytes }, {
        corruption,
        severity: 3,
      })
        .data as Uint8Array;
    const kept = run();
    const throwaway = withArenaMax(1024, run);
    assertEquals(differing(kept, throwaway), 0, corruption);
  }
});

Deno.test("the embedded WebAssembly is built from the current kernels.c (else: bash wasm/build.sh)", async () => {
  const source = await Deno.readFile(new URL("./wasm/kernels.c", import.meta.url));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", source));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  assertEquals(hex, KERNELS_C_SHA256, "kernels.c changed since kernels_wasm.ts was built");
});
