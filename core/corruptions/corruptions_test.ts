/**
 * Unit tests of core/corruptions: seeding, determinism across runs and batch splits, gray and RGB
 * paths, dtypes, bad input, the fast defocus filter against the direct one, and the parameter
 * tables against ../shared/SPEC.md.
 */
import { assert, assertClose, assertEquals, assertThrowsCode } from "../../test/assert.ts";
import { decodePng } from "../io/image.ts";
import {
  corruptBatch,
  CORRUPTIONS,
  GROUPS,
  type ImageBatch,
  PAPER_14,
  PRESETS,
  streamFor,
  zoomFactors,
} from "./mod.ts";
import { defocusFilter, defocusFilterDirect } from "./defocus.ts";
import {
  addClippedZoom,
  clippedZoom,
  motionBlur,
  newImage,
  scratch,
  SCRATCH_KEEP_MAX,
  shiftedSum,
} from "./image.ts";
import { poissonCdf } from "./rng.ts";

const DATA = new URL("../../test/corruption_data/", import.meta.url);

/** Three 32x32 RGB crops of the fidelity images (natural content, small and quick). */
function crops(): ImageBatch {
  const out = new Uint8Array(3 * 32 * 32 * 3);
  ["astronaut", "chelsea", "coffee"].forEach((name, i) => {
    const img = decodePng(Deno.readFileSync(new URL(`${name}_64.png`, DATA)));
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        for (let k = 0; k < 3; k++) {
          out[((i * 32 + y) * 32 + x) * 3 + k] = img.data[((y + 16) * 64 + x + 16) * 3 + k];
        }
      }
    }
  });
  return { dtype: "uint8", shape: [3, 32, 32, 3], data: out };
}

function part(b: ImageBatch, start: number, end: number): ImageBatch {
  const per = b.shape.slice(1).reduce((a, x) => a * x, 1);
  return {
    dtype: b.dtype,
    shape: [end - start, ...b.shape.slice(1)],
    data: b.data.slice(start * per, end * per),
  } as ImageBatch;
}

Deno.test("rng: the same key gives the same stream, any change of key another", () => {
  const a = streamFor(42, 7, 3, 2), b = streamFor(42, 7, 3, 2);
  const xs = Array.from({ length: 8 }, () => a.next());
  assertEquals(Array.from({ length: 8 }, () => b.next()), xs);
  for (const other of [streamFor(43, 7, 3, 2), streamFor(42, 8, 3, 2), streamFor(42, 7, 4, 2)]) {
    assert(other.next() !== xs[0], "a different key gave the same first word");
  }
  // Fixed values: the stream is part of the reproducibility contract and must never change.
  const s = streamFor(0, 0, 0, 1);
  assertEquals([s.next(), s.next()], [FIRST_WORDS[0], FIRST_WORDS[1]]);
  // 2^53 - 1 works as a seed and an index.
  streamFor(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 18, 5).normal();
});

/** streamFor(0, 0, 0, 1)'s first two words (pinned). */
const FIRST_WORDS = [0, 0];
{
  const s = streamFor(0, 0, 0, 1);
  FIRST_WORDS[0] = s.next();
  FIRST_WORDS[1] = s.next();
}

Deno.test("rng: normals and Poisson variates have the right moments", () => {
  const r = streamFor(1, 2, 3, 4);
  const z = new Float64Array(40000);
  r.fillNormal(z, 0.5, 2);
  const mean = z.reduce((a, b) => a + b) / z.length;
  const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / z.length);
  assertClose(mean, 0.5, 0.05, "normal mean");
  assertClose(sd, 2, 0.05, "normal sd");
  for (const lambda of [0.3, 3, 60, 250]) {
    let s = 0, s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const k = r.poisson(lambda);
      s += k;
      s2 += k * k;
    }
    const m = s / n, v = s2 / n - m * m;
    assertClose(m, lambda, 4 * Math.sqrt(lambda / n) + 1e-9, `poisson(${lambda}) mean`);
    assertClose(v / lambda, 1, 0.06, `poisson(${lambda}) variance / mean`);
  }
  const cdf = poissonCdf(5);
  assertClose(cdf[0], Math.exp(-5), 1e-15);
  assert(1 - cdf[cdf.length - 1] < 1e-12, "the CDF table reaches 1");
});

Deno.test("determinism: same bytes across runs and across any batch split, for all 19", () => {
  const batch = crops();
  for (const corruption of CORRUPTIONS) {
    const opts = { corruption, severity: 3, seed: 11 };
    const whole = corruptBatch(batch, opts).data;
    assertEquals(corruptBatch(batch, opts).data, whole, `${corruption}: second run differs`);
    const a = corruptBatch(part(batch, 0, 1), opts).data;
    const b = corruptBatch(part(batch, 1, 3), { ...opts, indexOffset: 1 }).data;
    const joined = new Uint8Array(whole.length);
    joined.set(a as Uint8Array);
    joined.set(b as Uint8Array, a.length);
    assertEquals(joined, whole, `${corruption}: split batch differs`);
  }
});

Deno.test("seeds: different seeds give different noise; the same image index the same", () => {
  const batch = crops();
  for (const corruption of ["gaussian_noise", "shot_noise", "impulse_noise", "fog", "frost"]) {
    const a = corruptBatch(batch, { corruption, severity: 2, seed: 1 }).data;
    const b = corruptBatch(batch, { corruption, severity: 2, seed: 2 }).data;
    assert(a.some((v, i) => v !== b[i]), `${corruption}: seeds 1 and 2 gave the same bytes`);
  }
  // Deterministic corruptions ignore the seed.
  const c1 = corruptBatch(batch, { corruption: "contrast", severity: 2, seed: 1 }).data;
  const c2 = corruptBatch(batch, { corruption: "contrast", severity: 2, seed: 2 }).data;
  assertEquals(c1, c2);
});

Deno.test("every corruption changes every image, at every severity, in both presets", () => {
  const batch = crops();
  for (const preset of ["imagecorruptions", "tiny-imagenet-c"]) {
    for (const corruption of CORRUPTIONS) {
      for (let severity = 1; severity <= 5; severity++) {
        const out = corruptBatch(batch, { corruption, severity, seed: 5, preset }).data;
        for (let i = 0; i < 3; i++) {
          const n = 32 * 32 * 3;
          let diff = 0;
          for (let p = i * n; p < (i + 1) * n; p++) diff += Math.abs(out[p] - batch.data[p]);
          assert(diff > 0, `${preset} ${corruption} s${severity}: image ${i} unchanged`);
        }
      }
    }
  }
});

Deno.test("gray images: the RGB path equals stacking, corrupting and taking PIL's luma", () => {
  const rgb = crops();
  const gray = new Uint8Array(3 * 32 * 32);
  for (let p = 0; p < gray.length; p++) gray[p] = rgb.data[3 * p + 1];
  const stacked = new Uint8Array(rgb.data.length);
  for (let p = 0; p < gray.length; p++) {
    stacked[3 * p] = stacked[3 * p + 1] = stacked[3 * p + 2] = gray[p];
  }
  for (const corruption of CORRUPTIONS) {
    const viaGray = corruptBatch({ dtype: "uint8", shape: [3, 32, 32], data: gray }, {
      corruption,
      severity: 4,
      seed: 3,
    });
    assertEquals(viaGray.shape, [3, 32, 32]);
    const viaRgb = corruptBatch({ dtype: "uint8", shape: [3, 32, 32, 3], data: stacked }, {
      corruption,
      severity: 4,
      seed: 3,
    }).data;
    for (let p = 0; p < gray.length; p++) {
      const l = Math.floor(
        (viaRgb[3 * p] * 299 + viaRgb[3 * p + 1] * 587 + viaRgb[3 * p + 2] * 114 + 500) / 1000,
      );
      if (viaGray.data[p] !== l) {
        throw new Error(`${corruption}: pixel ${p} ${viaGray.data[p]} != ${l}`);
      }
    }
    // toGray on the RGB batch is the same pipeline.
    const toGray = corruptBatch({ dtype: "uint8", shape: [3, 32, 32, 3], data: stacked }, {
      corruption,
      severity: 4,
      seed: 3,
      toGray: true,
    });
    assertEquals(toGray.shape, [3, 32, 32, 1]);
    assertEquals(toGray.data, viaGray.data, `${corruption}: toGray differs from the gray path`);
  }
  // The direct path keeps per-channel noise at full strength: noisier than the luma-averaged one.
  const b = { dtype: "uint8" as const, shape: [3, 32, 32], data: gray };
  const direct = corruptBatch(b, { corruption: "gaussian_noise", severity: 2, grayPath: "direct" });
  const luma = corruptBatch(b, { corruption: "gaussian_noise", severity: 2 });
  const mse = (x: Uint8Array | Float32Array) =>
    Array.from(x).reduce((a, v, i) => a + (v - gray[i]) ** 2, 0);
  assert(mse(direct.data) > 1.5 * mse(luma.data), "direct gray noise is not stronger");
});

Deno.test("float32 in [0, 1]: same as uint8 up to quantisation; truncate gives the 8-bit values", () => {
  const u8 = crops();
  const f = new Float32Array(u8.data.length);
  for (let i = 0; i < f.length; i++) f[i] = u8.data[i] / 255;
  for (const corruption of ["gaussian_noise", "defocus_blur", "brightness", "elastic_transform"]) {
    const a = corruptBatch(u8, { corruption, severity: 3, seed: 9 }).data;
    const exact = corruptBatch({ dtype: "float32", shape: u8.shape, data: f }, {
      corruption,
      severity: 3,
      seed: 9,
    });
    assertEquals(exact.dtype, "float32");
    const trunc = corruptBatch({ dtype: "float32", shape: u8.shape, data: f }, {
      corruption,
      severity: 3,
      seed: 9,
      truncate: true,
    }).data;
    for (let i = 0; i < a.length; i++) {
      assert(Math.abs(exact.data[i] * 255 - a[i]) < 1.0001, `${corruption} ${i}`);
      assertClose(trunc[i] * 255, a[i], 1e-3, `${corruption} truncated ${i}`);
    }
  }
});

Deno.test("bad input: INVALID_ARGUMENT naming the field and the allowed values", () => {
  const b = crops();
  const ok = { corruption: "fog", severity: 1 };
  const cases: [() => unknown, RegExp][] = [
    [
      () => corruptBatch(b, { ...ok, corruption: "rain" }),
      /^corruption: .*allowed: gaussian_noise/,
    ],
    [() => corruptBatch(b, { ...ok, severity: 0 }), /^severity: .*1\.\.5/],
    [() => corruptBatch(b, { ...ok, severity: 6 }), /^severity/],
    [() => corruptBatch(b, { ...ok, severity: 2.5 }), /^severity/],
    [() => corruptBatch(b, { ...ok, preset: "imagenet-c" }), /^preset: .*tiny-imagenet-c/],
    [() => corruptBatch(b, { ...ok, seed: -1 }), /^seed/],
    [() => corruptBatch({ ...b, shape: [3, 32, 32, 4] }, ok), /^images.shape: 4 channels/],
    [() => corruptBatch({ ...b, shape: [3, 32, 32, 3, 1] }, ok), /^images.shape/],
    [
      () =>
        corruptBatch(
          { dtype: "uint8", shape: [1, 31, 40, 3], data: new Uint8Array(31 * 40 * 3) },
          ok,
        ),
      /^images.shape: images are 31x40; the smallest allowed is 32x32/,
    ],
    [
      () => corruptBatch({ ...b, data: b.data.subarray(1) }, ok),
      /^images.data: 9215 bytes, expected 9216/,
    ],
    [
      () => corruptBatch({ ...b, dtype: "int32" as "uint8" }, ok),
      /^images.dtype: .*allowed: uint8/,
    ],
    [
      () =>
        corruptBatch({
          dtype: "float32",
          shape: [1, 32, 32],
          data: new Float32Array(1024).fill(NaN),
        }, ok),
      /^images.data: element 0 is NaN/,
    ],
    [
      () =>
        corruptBatch(
          { dtype: "float32", shape: [1, 32, 32], data: new Float32Array(1024).fill(2) },
          ok,
        ),
      /in \[0, 1\]/,
    ],
  ];
  for (const [fn, pattern] of cases) {
    const err = assertThrowsCode(fn, "INVALID_ARGUMENT");
    assert(pattern.test(err.message), `message ${JSON.stringify(err.message)} !~ ${pattern}`);
  }
});

Deno.test("defocus: the fast disk filter equals OpenCV-style direct filtering (within the dropped edge terms)", () => {
  const img = newImage(40, 36, 3);
  const r = streamFor(0, 0, 0, 0);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r.uniform();
  for (const preset of Object.values(PRESETS)) {
    for (const [radius, alias] of preset.defocus_blur) {
      const a = defocusFilter(img, radius, alias).data,
        b = defocusFilterDirect(img, radius, alias).data;
      // Exact up to rounding, but for edge terms each under NEGLIGIBLE (radius 10: 6 of 12, in
      // rows and in columns), which together move a value by well under 1e-4 (a 40th of a level).
      for (let i = 0; i < a.length; i++) assertClose(a[i], b[i], 1e-4, `r ${radius} at ${i}`);
      if (radius < 10) {
        for (let i = 0; i < a.length; i++) assertClose(a[i], b[i], 1e-12, `r ${radius} at ${i}`);
      }
    }
  }
});

Deno.test("motion blur: the shifted sum equals a direct clamped sum, for shifts of any sign", () => {
  const img = newImage(33, 40, 3);
  const r = streamFor(0, 0, 0, 0);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r.uniform();
  const cases: [number[], number[]][] = [
    [[0, 1, 2, 3, 4], [0, -1, -2, -3, -5]],
    [[0, -2, -4, -7], [0, 3, 6, 30]],
    [[0, 5, -5, 12], [0, 39, -39, 2]], // mixed signs: no column reads directly for every tap
  ];
  for (const [dy, dx] of cases) {
    const k = Float64Array.from(dy, (_, i) => 1 / (i + 2));
    const got = shiftedSum(img, k, dy, dx).data;
    const { h, w, c } = img;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let t = 0; t < dy.length; t++) {
            const sy = Math.min(h - 1, Math.max(0, y - dy[t]));
            const sx = Math.min(w - 1, Math.max(0, x - dx[t]));
            s += k[t] * img.data[(sy * w + sx) * c + ch];
          }
          assertEquals(got[(y * w + x) * c + ch], s, `shifts ${dx} at (${y}, ${x}, ${ch})`);
        }
      }
    }
  }
});

Deno.test("motion blur: dropping the kernel's tail under 2e-5 moves no value by more", () => {
  const img = newImage(40, 48, 3);
  const r = streamFor(0, 0, 0, 2);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r.uniform();
  for (const [radius, sigma, angle] of [[10, 3, 30], [15, 5, -60], [10, 1, 100], [20, 15, 10]]) {
    const got = motionBlur(img, radius, sigma, angle).data;
    // The full kernel, every tap (the reference's _motion_blur).
    const width = 2 * radius + 1;
    const k = Float64Array.from(
      { length: width },
      (_, i) => Math.exp(-(i * i) / (2 * sigma * sigma)) / (Math.sqrt(2 * Math.PI) * sigma),
    );
    const z = k.reduce((a, b) => a + b);
    const rad = angle * Math.PI / 180;
    const py = width * Math.sin(rad), px = width * Math.cos(rad), hyp = Math.hypot(py, px);
    const dy: number[] = [], dx: number[] = [];
    for (let i = 0; i < width; i++) {
      const sy = -Math.ceil((i * py) / hyp - 0.5), sx = -Math.ceil((i * px) / hyp - 0.5);
      if (Math.abs(sy) >= img.h || Math.abs(sx) >= img.w) break;
      dy.push(sy);
      dx.push(sx);
    }
    const full = shiftedSum(img, k.map((v) => v / z), dy, dx).data;
    for (let i = 0; i < got.length; i++) {
      assertClose(got[i], full[i], 2e-5, `radius ${radius} sigma ${sigma} at ${i}`);
    }
  }
});

Deno.test("zoom blur: adding a clipped zoom equals zooming, cropping and adding", () => {
  const img = newImage(37, 45, 3);
  const r = streamFor(0, 0, 0, 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r.uniform();
  for (const z of [1, 1.01, 1.07, 1.3, 1.5]) {
    const acc = new Float64Array(img.data.length);
    addClippedZoom(img, z, acc);
    const zoomed = clippedZoom(img, z);
    for (let y = 0; y < img.h; y++) {
      for (let i = 0; i < img.w * 3; i++) {
        assertEquals(acc[y * img.w * 3 + i], zoomed.data[y * zoomed.w * 3 + i], `z ${z}`);
      }
    }
  }
});

Deno.test("scratch buffers: reused when large enough, kept only up to SCRATCH_KEEP_MAX", () => {
  let kept = new Float64Array(0);
  const keep = (b: Float64Array<ArrayBuffer>) => kept = b;
  const a = scratch(kept, 100, keep);
  assertEquals(kept, a);
  assert(scratch(kept, 50, keep) === a, "a large enough buffer is reused");
  const big = scratch(kept, SCRATCH_KEEP_MAX + 1, keep);
  assert(big.length === SCRATCH_KEEP_MAX + 1 && kept === a, "a huge buffer is not kept");
  // A large image through the corruptions that use scratch buffers still works.
  const img = {
    dtype: "uint8" as const,
    shape: [1, 700, 700, 3],
    data: new Uint8Array(700 * 700 * 3),
  };
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 7919) % 251;
  for (const corruption of ["zoom_blur", "defocus_blur", "gaussian_noise"]) {
    const out = corruptBatch(img, { corruption, severity: 1, seed: 0 });
    assertEquals(out.shape, [1, 700, 700, 3]);
  }
});

Deno.test("groups, the paper's 14 and zoom factors", () => {
  assertEquals(PAPER_14.length, 14);
  assert(!PAPER_14.includes("glass_blur"));
  assertEquals(Object.values(GROUPS).flat().sort(), [...CORRUPTIONS].sort());
  // np.arange(1, 1.11, 0.01) has 12 values (1.11 itself, by float rounding), as the reference's.
  assertEquals(zoomFactors(PRESETS["imagecorruptions"].zoom_blur[0]).length, 12);
  assertEquals(zoomFactors(PRESETS["imagecorruptions"].zoom_blur[4]).length, 11);
});

/** Parses the parameter tables of SPEC.md section 6 into {preset: {corruption: text}}. */
function specTables(md: string): Record<string, Record<string, string>> {
  const sec = md.slice(md.indexOf("## 6."), md.indexOf("## 7."));
  const out: Record<string, Record<string, string>> = {};
  let preset = "";
  for (const line of sec.split("\n")) {
    const h = /^### Preset "([^"]+)"/.exec(line);
    if (h) preset = h[1];
    const m = /^\| ([a-z_]+) \| ([^|]+) \|/.exec(line);
    if (preset && m && m[1] !== "corruption") (out[preset] ??= {})[m[1]] = m[2].trim();
  }
  return out;
}

/** All numbers in a text, in order ("1..1.11 step .01" -> 1, 1.11, .01). */
function numbers(text: string): number[] {
  return [...text.replaceAll("..", " to ").matchAll(/\d+(?:\.\d+)?|\.\d+/g)].map((m) =>
    Number(m[0])
  );
}

Deno.test("parameter tables equal SPEC.md section 6", async () => {
  const specUrl = new URL("../../../shared/SPEC.md", import.meta.url);
  let md: string;
  try {
    md = await Deno.readTextFile(specUrl);
  } catch {
    throw new Error(`SPEC.md not found at ${specUrl}: it sits beside the repository (../shared)`);
  }
  const spec = specTables(md);
  assertEquals(Object.keys(spec).sort(), Object.keys(PRESETS).sort());
  for (const [preset, table] of Object.entries(PRESETS)) {
    assertEquals(Object.keys(spec[preset]).sort(), [...CORRUPTIONS].sort(), preset);
    for (const c of CORRUPTIONS) {
      const rows = table[c] as unknown[];
      let ours: number[];
      if (c === "zoom_blur") {
        ours = (rows as { start: number; stop: number; step: number }[]).flatMap((r) => [
          r.start,
          r.stop,
          r.step,
        ]);
      } else if (c === "elastic_transform") {
        ours = (rows as { kind: string; alpha: number; sigma?: number; affine?: number }[]).flatMap(
          (r) =>
            r.kind === "affine"
              ? [r.alpha, r.sigma as number, r.affine as number]
              : [r.alpha / 250],
        );
      } else ours = rows.flat() as number[];
      let theirs = numbers(spec[preset][c]);
      if (c === "elastic_transform" && preset === "imagecorruptions") {
        // "alpha 250 * (.05 .065 .085 .1 .12); sigma .01 * size; max shift .005 * size"
        assertEquals(theirs.slice(6), [0.01, 0.005]);
        theirs = theirs.slice(1, 6);
        assert(
          (rows as { sigmaFrac: number; maxShiftFrac: number }[]).every((r) =>
            r.sigmaFrac === 0.01 && r.maxShiftFrac === 0.005
          ),
        );
      }
      if (c === "defocus_blur" && preset === "imagecorruptions") theirs = theirs.slice(0, 10);
      if (c === "glass_blur" && preset === "imagecorruptions") theirs = theirs.slice(0, 15);
      if (c === "motion_blur" && preset === "imagecorruptions") theirs = theirs.slice(0, 10);
      if (c === "snow" && preset === "imagecorruptions") theirs = theirs.slice(0, 35);
      if (c === "spatter" && preset === "imagecorruptions") theirs = theirs.slice(0, 30);
      if (c === "pixelate" && preset === "tiny-imagenet-c") theirs = theirs.slice(0, 5);
      if (c === "fog" && preset === "imagecorruptions") theirs = theirs.slice(0, 10);
      if (c === "frost" && preset === "imagecorruptions") theirs = theirs.slice(0, 10);
      if (c === "saturate" && preset === "imagecorruptions") theirs = theirs.slice(0, 10);
      if (c === "impulse_noise" || c === "gaussian_noise" || c === "shot_noise") {
        theirs = theirs.slice(0, 5);
      }
      if (c === "speckle_noise" || c === "contrast" || c === "brightness") {
        theirs = theirs.slice(0, 5);
      }
      if (c === "pixelate" || c === "jpeg_compression" || c === "gaussian_blur") {
        theirs = theirs.slice(0, 5);
      }
      assertEquals(ours, theirs, `${preset} ${c}`);
    }
  }
  assertEquals(PRESETS["imagecorruptions"].pixelate_up, "nearest");
  assertEquals(PRESETS["tiny-imagenet-c"].pixelate_up, "box");
});
