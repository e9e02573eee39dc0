/**
 * The 19 corruptions, each a function of (image in [0, 1], its parameter row, random stream)
 * returning a new image clipped to [0, 1] (corruptBatch's scratch mode excepted, see
 * {@linkcode Corruptor}). They follow bethgelab/imagecorruptions (the reference;
 * its behaviour, not its code) operation by operation; where the reference uses a library, the
 * comment names the convention matched. The order of random draws is cotrain's own (its streams
 * are seeded, the reference's global RNG is not), so results agree in distribution, not in bytes.
 *
 * Every function accepts 1 channel (gray, processed directly) or 3 (RGB).
 *
 * @example
 * ```ts
 * import { CORRUPTORS } from "./corruptions.ts";
 * import { PRESETS } from "./presets.ts";
 * import { newImage } from "./image.ts";
 * import { streamFor } from "./rng.ts";
 * const img = newImage(32, 32, 3);
 * const out = CORRUPTORS.contrast(
 *   img,
 *   PRESETS["imagecorruptions"].contrast[0],
 *   streamFor(0, 0, 11, 1),
 *   "imagecorruptions",
 * );
 * console.log(out.h); // 32
 * ```
 * @module
 */
import { defocusFilter } from "./defocus.ts";
import { frostTexture } from "./frost.ts";
import {
  clip01,
  clippedZoom,
  cropTopLeft,
  editHsv,
  gaussianFilter,
  gaussPlan,
  type Img,
  LUMA,
  motionBlur,
  newImage,
  pilBoxCoeffs,
  pilResizeBox,
  pilResizeNearest,
  reflect101Index,
  remapBilinearReflect,
  scratch,
  zoomSum,
} from "./image.ts";
import { jpegRoundTripFast, pixelateFast, separableBytesFast } from "./kernels.ts";
import {
  type CorruptionName,
  type ElasticAffine,
  type ElasticRelative,
  type PresetName,
  PRESETS,
  zoomFactors,
} from "./presets.ts";
import { fillNormalZiggurat, poissonCdf, type Rng } from "./rng.ts";
import { spatter } from "./spatter.ts";

/**
 * A corruption: image and parameter row in, new image out, clipped to [0, 1]. With `inPlace`
 * (corruptBatch's own scratch input) a corruptor may overwrite the input and return it, and may
 * leave values outside [0, 1]: corruptBatch clamps them on output.
 */
export type Corruptor = (
  img: Img,
  // deno-lint-ignore no-explicit-any
  params: any,
  rng: Rng,
  preset: PresetName,
  inPlace?: boolean,
) => Img;

/**
 * The result clipped to [0, 1], except for corruptBatch (`inPlace`), whose output conversion
 * clamps anyway (the same bytes, one pass fewer).
 */
function fin(img: Img, inPlace: boolean): Img {
  return inPlace ? img : clip01(img);
}

/** The image itself when the caller allows overwriting it, else a copy. */
function own(img: Img, inPlace: boolean): Img {
  return inPlace ? img : copy(img);
}

function copy(img: Img): Img {
  // A loop into a new array: several times faster than slice() for image-sized arrays.
  const src = img.data;
  const data = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) data[i] = src[i];
  return { h: img.h, w: img.w, c: img.c, data };
}

/** Round half to even, as numpy's np.round. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Float [0, 1] to 8 bits by rounding (the reference receives 8-bit images). */
function toBytes(img: Img): Uint8Array {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Math.round(img.data[i] * 255);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

function fromBytes(b: Uint8Array, h: number, w: number, c: number): Img {
  const img = newImage(h, w, c);
  for (let i = 0; i < b.length; i++) img.data[i] = b[i] / 255;
  return img;
}

/** Scratch for noise fields (reused; one image at a time). */
let noiseBuf = new Float64Array(0);
function noiseField(n: number): Float64Array {
  return scratch(noiseBuf, n, (b) => noiseBuf = b).subarray(0, n);
}

/** out = clip01(x + noise) */
function addClipped(x: Float64Array, noise: Float64Array, out: Float64Array): void {
  for (let i = 0; i < out.length; i++) {
    const v = x[i] + noise[i];
    out[i] = Math.min(Math.max(v, 0), 1); // branchless: noise clips at random
  }
}

/** out = clip01(x + x * noise) */
function addScaledClipped(x: Float64Array, noise: Float64Array, out: Float64Array): void {
  for (let i = 0; i < out.length; i++) {
    const v = x[i] + x[i] * noise[i];
    out[i] = Math.min(Math.max(v, 0), 1);
  }
}

/**
 * gaussian_noise (x + N(0, p)) or speckle_noise (x + x N(0, p)) on 8-bit values with the
 * reference's truncation, into out[at..] (corruptBatch's uint8 fast path): the same draws and
 * arithmetic as {@linkcode CORRUPTORS}' float path, the same bytes.
 */
export function noiseBytes(
  corruption: "gaussian_noise" | "speckle_noise",
  bytes: Uint8Array,
  p: number,
  rng: Rng,
  out: Uint8Array,
  at: number,
): void {
  const noise = noiseField(bytes.length);
  fillNormalZiggurat(rng, noise, 0, p);
  if (corruption === "speckle_noise") scaledNoiseBytes(bytes, noise, out, at);
  else addNoiseBytes(bytes, noise, out, at);
}

/** Byte value times 1 / 255 (corruptBatch's input conversion), by table. */
const BYTE = Float64Array.from({ length: 256 }, (_, i) => i * (1 / 255));

// One pass each: input conversion, noise and the truncating output conversion. The float path
// clips to [0, 1] and then clamps floor(255 v + 1e-4) to 0..255; the clamp alone gives the same
// bytes (v < 0 or v > 1 land on 0 or 255 either way), done on integers (|v| is far below 2^23):
// no branches, which noise mispredicts, and no float min/max.

function addNoiseBytes(b: Uint8Array, noise: Float64Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < b.length; i++) {
    const q = ((BYTE[b[i]] + noise[i]) * 255 + 1e-4) | 0;
    out[at + i] = Math.min(q & ~(q >> 31), 255);
  }
}

function scaledNoiseBytes(b: Uint8Array, noise: Float64Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < b.length; i++) {
    const x = BYTE[b[i]];
    const q = ((x + x * noise[i]) * 255 + 1e-4) | 0;
    out[at + i] = Math.min(q & ~(q >> 31), 255);
  }
}

/** x + N(0, sigma) */
function gaussianNoise(img: Img, sigma: number, rng: Rng, inPlace: boolean): Img {
  const out = inPlace ? img : newImage(img.h, img.w, img.c);
  const noise = noiseField(out.data.length);
  fillNormalZiggurat(rng, noise, 0, sigma);
  addClipped(img.data, noise, out.data);
  return out;
}

/** Guide tables of the Poisson CDFs (see `poissonGuided`), per mean. */
const guides = new Map<number, { cdf: Float64Array; guide: Int32Array }>();

function guideFor(lambda: number): { cdf: Float64Array; guide: Int32Array } {
  let t = guides.get(lambda);
  if (t) return t;
  const cdf = poissonCdf(lambda);
  // guide[j]: the smallest k with cdf[k] > j / 256 (or the last index).
  const guide = new Int32Array(256);
  let k = 0;
  for (let j = 0; j < 256; j++) {
    while (k < cdf.length - 1 && !(cdf[k] > j / 256)) k++;
    guide[j] = k;
  }
  t = { cdf, guide };
  if (guides.size >= 8192) guides.clear();
  guides.set(lambda, t);
  return t;
}

/**
 * `rng.poisson(lambda)` exactly (the same word, the same inversion of the same CDF: the smallest
 * k with cdf[k] > u, capped at the table's end), found from a guide table instead of a binary
 * search.
 */
function poissonGuided(t: { cdf: Float64Array; guide: Int32Array }, word: number): number {
  const u = word / 4294967296;
  const cdf = t.cdf;
  const last = cdf.length - 1;
  let k = t.guide[word >>> 24];
  while (k < last && !(cdf[k] > u)) k++;
  return k;
}

/** poisson(x * c) / c */
function shotNoise(img: Img, c: number, rng: Rng, inPlace: boolean): Img {
  const out = inPlace ? img : newImage(img.h, img.w, img.c);
  // Per call, a table per 8-bit level (uint8 inputs have at most 256 distinct means), kept with
  // the exact value it was made for; other values look their table up by mean.
  const byLevel: ({ cdf: Float64Array; guide: Int32Array } | undefined)[] = new Array(256);
  const levelValue = new Float64Array(256).fill(-1);
  const x = img.data, d = out.data;
  for (let i = 0; i < d.length; i++) {
    const v = x[i];
    const lambda = v * c;
    if (!(lambda > 0)) {
      d[i] = 0;
      continue;
    }
    const level = Math.round(v * 255);
    let t: { cdf: Float64Array; guide: Int32Array } | undefined;
    if (level <= 255 && levelValue[level] === v) t = byLevel[level];
    else if (level <= 255 && levelValue[level] === -1) {
      t = byLevel[level] = guideFor(lambda);
      levelValue[level] = v;
    } else t = guideFor(lambda);
    const k = poissonGuided(t as { cdf: Float64Array; guide: Int32Array }, rng.next()) / c;
    d[i] = k > 1 ? 1 : k;
  }
  return out;
}

/** skimage's salt-and-pepper: each value flipped with probability `amount`, half to 1, half to 0. */
function impulseNoise(img: Img, amount: number, rng: Rng, inPlace: boolean): Img {
  const out = own(img, inPlace);
  const d = out.data;
  const half = amount / 2;
  for (let i = 0; i < d.length; i++) {
    const u = rng.uniform();
    if (u < amount) d[i] = u < half ? 1 : 0;
  }
  return out;
}

/** x + x * N(0, c) */
function speckleNoise(img: Img, c: number, rng: Rng, inPlace: boolean): Img {
  const out = inPlace ? img : newImage(img.h, img.w, img.c);
  const noise = noiseField(out.data.length);
  fillNormalZiggurat(rng, noise, 0, c);
  addScaledClipped(img.data, noise, out.data);
  return out;
}

/**
 * gaussian_blur on 8-bit values with the reference's truncation, into out[at..] (corruptBatch's
 * uint8 fast path): the float path's filter and conversions, in one WebAssembly call.
 */
export function gaussianBlurBytes(
  bytes: Uint8Array,
  h: number,
  w: number,
  c: number,
  sigma: number,
  out: Uint8Array,
  at: number,
): void {
  const py = gaussPlan(h, sigma, 4, "nearest", true), px = gaussPlan(w, sigma, 4, "nearest", false);
  separableBytesFast(bytes, h, w, c, py.k, py.map, px.k, px.map, out, at);
}

/** skimage.filters.gaussian (scipy, mode `nearest`, truncate 4). */
function gaussianBlur(img: Img, sigma: number, inPlace: boolean): Img {
  return fin(gaussianFilter(img, sigma, sigma, "nearest"), inPlace);
}

/** Blur, local pixel moves on the 8-bit image (in the reference's scan order), blur. */
function glassBlur(img: Img, p: [number, number, number], rng: Rng, inPlace: boolean): Img {
  const [sigma, delta, iterations] = p;
  const { h, w, c } = img;
  const blurred = gaussianFilter(img, sigma, sigma, "nearest").data;
  // np.uint8(gaussian(x) * 255): truncation
  const px = new Float64Array(blurred.length);
  for (let i = 0; i < px.length; i++) {
    const v = blurred[i] * 255;
    px[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  for (let it = 0; it < iterations; it++) {
    for (let y = h - delta; y > delta; y--) {
      for (let x = w - delta; x > delta; x--) {
        const dx = rng.intIn(-delta, delta);
        const dy = rng.intIn(-delta, delta);
        const a = (y * w + x) * c, b = ((y + dy) * w + x + dx) * c;
        // The reference's "swap" `x[h, w], x[h', w'] = x[h', w'], x[h, w]` assigns numpy views:
        // both pixels end up with the value of (h', w'). Matched, not fixed.
        for (let k = 0; k < c; k++) px[a + k] = px[b + k];
      }
    }
  }
  for (let i = 0; i < px.length; i++) px[i] /= 255;
  return fin(gaussianFilter({ h, w, c, data: px }, sigma, sigma, "nearest"), inPlace);
}

/** cv2.filter2D with the anti-aliased disk. */
function defocusBlur(img: Img, p: [number, number], inPlace: boolean): Img {
  return fin(defocusFilter(img, p[0], p[1]), inPlace);
}

/** The reference's one-sided Gaussian motion kernel along an angle U(-45, 45). */
function motionBlurC(img: Img, p: [number, number], rng: Rng, inPlace: boolean): Img {
  const angle = rng.uniform(-45, 45);
  return fin(motionBlur(img, p[0], p[1], angle), inPlace);
}

/** Mean of the image and its centre zooms. */
function zoomBlur(
  img: Img,
  range: { start: number; stop: number; step: number },
  inPlace: boolean,
): Img {
  const zooms = zoomFactors(range);
  const acc = zoomSum(img, zooms);
  const d = acc.data;
  const inv = 1 / (zooms.length + 1);
  for (let i = 0; i < d.length; i++) d[i] *= inv;
  return fin(acc, inPlace);
}

/** Snow: a zoomed, thresholded, motion-blurred Gaussian layer over a brightened image. */
function snow(img: Img, p: number[], rng: Rng, inPlace: boolean): Img {
  const [loc, scale, zoom, thresh, radius, sigma, blend] = p;
  const { h, w, c } = img;
  const raw = newImage(h, w, 1);
  fillNormalZiggurat(rng, raw.data, loc, scale);
  let layer = clippedZoom(raw, zoom);
  const l = layer.data;
  for (let i = 0; i < l.length; i++) {
    const v = l[i] < thresh ? 0 : l[i];
    l[i] = v > 1 ? 1 : v;
  }
  layer = motionBlur(layer, radius, sigma, rng.uniform(-135, -45));
  layer = cropTopLeft(layer, h, w);
  const s = layer.data;
  for (let i = 0; i < s.length; i++) s[i] = roundHalfEven(s[i] * 255) / 255;
  const out = own(img, inPlace);
  const d = out.data;
  const n = h * w;
  for (let i = 0; i < n; i++) {
    const gray = c === 3
      ? LUMA[0] * d[3 * i] + LUMA[1] * d[3 * i + 1] + LUMA[2] * d[3 * i + 2]
      : d[i];
    const bright = gray * 1.5 + 0.5;
    const flakes = s[i] + s[n - 1 - i]; // the layer plus the layer turned by 180 degrees
    for (let k = 0; k < c; k++) {
      const v = d[i * c + k];
      d[i * c + k] = blend * v + (1 - blend) * Math.max(v, bright) + flakes;
    }
  }
  return fin(out, inPlace);
}

/** Blend with a procedural frost texture (see frost.ts). */
function frost(img: Img, p: [number, number], rng: Rng, inPlace: boolean): Img {
  const { h, w, c } = img;
  const tex = frostTexture(h, w, rng);
  const out = own(img, inPlace);
  const d = out.data;
  for (let i = 0; i < h * w; i++) {
    if (c === 3) {
      for (let k = 0; k < 3; k++) d[3 * i + k] = p[0] * d[3 * i + k] + p[1] * tex[3 * i + k] / 255;
    } else {
      const g = 0.2989 * tex[3 * i] + 0.587 * tex[3 * i + 1] + 0.114 * tex[3 * i + 2];
      d[i] = p[0] * d[i] + p[1] * g / 255;
    }
  }
  return fin(out, inPlace);
}

/** The reference's diamond-square plasma fractal, `size` a power of two, values in [0, 1]. */
export function plasmaFractal(size: number, decay: number, rng: Rng): Float64Array {
  const m = new Float64Array(size * size);
  let step = size;
  let wibble = 100;
  while (step >= 2) {
    plasmaStep(m, size, step, wibble, rng);
    step >>= 1;
    wibble /= decay;
  }
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < m.length; i++) {
    const v = m[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  for (let i = 0; i < m.length; i++) m[i] = (m[i] - lo) / span;
  return m;
}

/**
 * One diamond-square step of `plasmaFractal` (lattice spacing `step`, noise amplitude `wibble`),
 * in the reference's order of draws: squares, then diamonds on the rows of corners, then on the
 * columns.
 */
function plasmaStep(m: Float64Array, size: number, step: number, wibble: number, rng: Rng) {
  const half = step >> 1;
  const n = size / step;
  // squares: centre = mean of the four corners (wrapping) + noise
  for (let i = 0; i < n; i++) {
    const i1 = i + 1 === n ? 0 : i + 1;
    for (let j = 0; j < n; j++) {
      const j1 = j + 1 === n ? 0 : j + 1;
      const s = m[i * step * size + j * step] + m[i1 * step * size + j * step] +
        m[i * step * size + j1 * step] + m[i1 * step * size + j1 * step];
      m[(i * step + half) * size + j * step + half] = s / 4 + wibble * (2 * rng.uniform() - 1) *
          wibble;
    }
  }
  // diamonds on the rows of corners: centres above and below, corners left and right
  for (let i = 0; i < n; i++) {
    const im = i === 0 ? n - 1 : i - 1;
    for (let j = 0; j < n; j++) {
      const j1 = j + 1 === n ? 0 : j + 1;
      const s = m[(i * step + half) * size + j * step + half] +
        m[(im * step + half) * size + j * step + half] + m[i * step * size + j * step] +
        m[i * step * size + j1 * step];
      m[i * step * size + j * step + half] = s / 4 + wibble * (2 * rng.uniform() - 1) * wibble;
    }
  }
  // diamonds on the columns of corners: centres left and right, corners above and below
  for (let i = 0; i < n; i++) {
    const i1 = i + 1 === n ? 0 : i + 1;
    for (let j = 0; j < n; j++) {
      const jm = j === 0 ? n - 1 : j - 1;
      const s = m[(i * step + half) * size + j * step + half] +
        m[(i * step + half) * size + jm * step + half] + m[i * step * size + j * step] +
        m[i1 * step * size + j * step];
      m[(i * step + half) * size + j * step] = s / 4 + wibble * (2 * rng.uniform() - 1) * wibble;
    }
  }
}

/** x + strength * plasma, rescaled by max / (max + strength). */
function fog(img: Img, p: [number, number], rng: Rng, inPlace: boolean): Img {
  const { h, w, c } = img;
  let size = 1;
  while (size < Math.max(h, w, c)) size *= 2;
  const plasma = plasmaFractal(size, p[1], rng);
  const out = own(img, inPlace);
  const d = out.data;
  let max = 0;
  for (const v of d) if (v > max) max = v;
  const gain = max / (max + p[0]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const f = p[0] * plasma[y * size + x];
      const o = (y * w + x) * c;
      for (let k = 0; k < c; k++) d[o + k] = (d[o + k] + f) * gain;
    }
  }
  return fin(out, inPlace);
}

/** HSV value + c (gray: x + c). */
function brightness(img: Img, c: number, inPlace: boolean): Img {
  const out = own(img, inPlace);
  if (img.c === 1) {
    for (let i = 0; i < out.data.length; i++) out.data[i] += c;
    return fin(out, inPlace);
  }
  editHsv(out, (hsv) => {
    const v = hsv[2] + c;
    hsv[2] = v > 1 ? 1 : v;
  });
  return fin(out, inPlace);
}

/** (x - mean) * c + mean, mean per channel. */
function contrast(img: Img, f: number, inPlace: boolean): Img {
  const out = own(img, inPlace);
  const { c } = img;
  const d = out.data;
  const n = img.h * img.w;
  for (let k = 0; k < c; k++) {
    let s = 0;
    for (let i = k; i < d.length; i += c) s += d[i];
    const mean = s / n;
    for (let i = k; i < d.length; i += c) d[i] = (d[i] - mean) * f + mean;
  }
  return fin(out, inPlace);
}

/** HSV saturation * a + b (gray: through RGB, then channel 0, as the reference). */
function saturate(img: Img, p: [number, number], inPlace = false): Img {
  if (img.c === 1) {
    const rgb = newImage(img.h, img.w, 3);
    for (let i = 0; i < img.data.length; i++) {
      rgb.data[3 * i] = rgb.data[3 * i + 1] = rgb.data[3 * i + 2] = img.data[i];
    }
    const s = saturate(rgb, p, true);
    const out = newImage(img.h, img.w, 1);
    for (let i = 0; i < out.data.length; i++) out.data[i] = s.data[3 * i];
    return fin(out, inPlace);
  }
  const out = own(img, inPlace);
  editHsv(out, (hsv) => {
    const s = hsv[1] * p[0] + p[1];
    hsv[1] = s < 0 ? 0 : s > 1 ? 1 : s;
  });
  return fin(out, inPlace);
}

/** Smoothed uniform displacement field (gaussian, mode `reflect`, truncate 3). */
function displacement(
  h: number,
  w: number,
  lim: number,
  sy: number,
  sx: number,
  gain: number,
  rng: Rng,
) {
  const f = newImage(h, w, 1);
  for (let i = 0; i < f.data.length; i++) f.data[i] = rng.uniform(-lim, lim);
  const g = sy > 0 || sx > 0 ? gaussianFilter(f, sy, sx, "reflect", 3) : f;
  for (let i = 0; i < g.data.length; i++) g.data[i] *= gain;
  return g.data;
}

/** cv2.warpAffine (bilinear, BORDER_REFLECT_101) with the affine map taking `from` to `to`. */
function warpAffine(img: Img, from: number[][], to: number[][]): Img {
  // Solve dst = M * [src, 1] for M from three point pairs, then sample src = M^-1 * dst.
  const [[x0, y0], [x1, y1], [x2, y2]] = from;
  const det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1);
  const solve = (v: number[]) => {
    const a = (v[0] * (y1 - y2) - y0 * (v[1] - v[2]) + (v[1] * y2 - v[2] * y1)) / det;
    const b = (x0 * (v[1] - v[2]) - v[0] * (x1 - x2) + (x1 * v[2] - x2 * v[1])) / det;
    const c = (x0 * (y1 * v[2] - y2 * v[1]) - y0 * (x1 * v[2] - x2 * v[1]) +
      v[0] * (x1 * y2 - x2 * y1)) / det;
    return [a, b, c];
  };
  const [a, b, c] = solve(to.map((p) => p[0]));
  const [d, e, f] = solve(to.map((p) => p[1]));
  const idet = 1 / (a * e - b * d);
  const { h, w, c: ch } = img;
  const out = newImage(h, w, ch);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x - c, v = y - f;
      const sx = (e * u - b * v) * idet;
      const sy = (-d * u + a * v) * idet;
      const ix = Math.floor(sx), iy = Math.floor(sy);
      const fx = sx - ix, fy = sy - iy;
      const xa = reflect101Index(ix, w), xb = reflect101Index(ix + 1, w);
      const ya = reflect101Index(iy, h), yb = reflect101Index(iy + 1, h);
      for (let k = 0; k < ch; k++) {
        const p00 = img.data[(ya * w + xa) * ch + k], p01 = img.data[(ya * w + xb) * ch + k];
        const p10 = img.data[(yb * w + xa) * ch + k], p11 = img.data[(yb * w + xb) * ch + k];
        out.data[(y * w + x) * ch + k] = (1 - fy) * ((1 - fx) * p00 + fx * p01) +
          fy * ((1 - fx) * p10 + fx * p11);
      }
    }
  }
  return out;
}

/** Smoothed random displacement, bilinear, reflect (plus a random affine in Tiny ImageNet-C). */
function elasticTransform(
  img: Img,
  p: ElasticRelative | ElasticAffine,
  rng: Rng,
  inPlace: boolean,
): Img {
  const { h, w } = img;
  if (p.kind === "relative") {
    const lim = h * p.maxShiftFrac;
    const dx = displacement(h, w, lim, h * p.sigmaFrac, w * p.sigmaFrac, p.alpha, rng);
    const dy = displacement(h, w, lim, h * p.sigmaFrac, w * p.sigmaFrac, p.alpha, rng);
    return fin(remapBilinearReflect(img, dy, dx), inPlace);
  }
  const cy = Math.floor(h / 2), cx = Math.floor(w / 2);
  const sq = Math.floor(Math.min(h, w) / 3);
  const pts = [[cx + sq, cy + sq], [cx + sq, cy - sq], [cx - sq, cy - sq]];
  const moved = pts.map((
    [x, y],
  ) => [x + rng.uniform(-p.affine, p.affine), y + rng.uniform(-p.affine, p.affine)]);
  const warped = warpAffine(img, pts, moved);
  const dx = displacement(h, w, 1, p.sigma, p.sigma, p.alpha, rng);
  const dy = displacement(h, w, 1, p.sigma, p.sigma, p.alpha, rng);
  return fin(remapBilinearReflect(warped, dy, dx), inPlace);
}

/**
 * Pixelate on 8-bit pixels directly (the corruption's own arithmetic is 8-bit): the uint8 fast
 * path of corruptBatch, byte for byte what {@linkcode CORRUPTORS}.pixelate gives. With `out`, the
 * result is written there from `at` (and `out` returned).
 */
export function pixelateBytes(
  bytes: Uint8Array,
  h: number,
  w: number,
  c: number,
  f: number,
  preset: PresetName,
  out?: Uint8Array,
  at = 0,
): Uint8Array {
  const oh = Math.max(1, Math.trunc(h * f)), ow = Math.max(1, Math.trunc(w * f));
  if (PRESETS[preset].pixelate_up === "box") {
    const small = pilResizeBox(bytes, h, w, c, oh, ow);
    const up = pilResizeBox(small, oh, ow, c, h, w);
    if (!out) return up;
    for (let i = 0; i < up.length; i++) out[at + i] = up[i];
    return out;
  }
  // Box down and nearest up in one WebAssembly call (the same integer arithmetic as
  // pilResizeBox and pilResizeNearest).
  const m = nearestMaps(h, w, c, oh, ow);
  const dst = out ?? new Uint8Array(h * w * c);
  pixelateFast(
    bytes,
    h,
    w,
    c,
    oh,
    ow,
    pilBoxCoeffs(w, ow),
    pilBoxCoeffs(h, oh),
    m.xs,
    m.ys,
    dst,
    at,
  );
  return dst;
}

/** pilResizeNearest's source maps from oh x ow up to h x w (column offsets times c), cached. */
const nearest = new Map<string, { xs: Int32Array; ys: Int32Array }>();
function nearestMaps(h: number, w: number, c: number, oh: number, ow: number) {
  const key = `${h}/${w}/${c}/${oh}/${ow}`;
  let m = nearest.get(key);
  if (!m) {
    const xs = new Int32Array(w), ys = new Int32Array(h);
    for (let x = 0; x < w; x++) xs[x] = Math.min(ow - 1, Math.floor((x + 0.5) * ow / w)) * c;
    for (let y = 0; y < h; y++) ys[y] = Math.min(oh - 1, Math.floor((y + 0.5) * oh / h));
    m = { xs, ys };
    if (nearest.size >= 256) nearest.clear();
    nearest.set(key, m);
  }
  return m;
}

/** PIL box down by `f`, then nearest (imagecorruptions) or box (Tiny ImageNet-C) back up. */
function pixelate(img: Img, f: number, preset: PresetName): Img {
  const { h, w, c } = img;
  const oh = Math.max(1, Math.trunc(h * f)), ow = Math.max(1, Math.trunc(w * f));
  const small = pilResizeBox(toBytes(img), h, w, c, oh, ow);
  const up = PRESETS[preset].pixelate_up === "box"
    ? pilResizeBox(small, oh, ow, c, h, w)
    : pilResizeNearest(small, oh, ow, c, h, w);
  return fromBytes(up, h, w, c);
}

/** A JPEG round trip at `quality` (libjpeg's arithmetic, IJG tables, 4:2:0; see kernels.ts). */
function jpegCompression(img: Img, quality: number): Img {
  const { h, w, c } = img;
  const bytes = toBytes(img);
  let rgb = bytes;
  if (c === 1) {
    rgb = new Uint8Array(h * w * 3);
    for (let i = 0; i < h * w; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = bytes[i];
  }
  const px = new Uint8Array(h * w * 3);
  jpegRoundTripFast(rgb, h, w, quality, px, 0);
  const out = newImage(h, w, c);
  for (let i = 0; i < h * w; i++) {
    if (c === 1) {
      // PIL's convert("L"): (R * 299 + G * 587 + B * 114 + 500) / 1000
      out.data[i] = Math.floor(
        (px[3 * i] * 299 + px[3 * i + 1] * 587 + px[3 * i + 2] * 114 + 500) / 1000,
      ) / 255;
    } else {
      for (let k = 0; k < 3; k++) out.data[3 * i + k] = px[3 * i + k] / 255;
    }
  }
  return out;
}

/** Every corruption by name. */
export const CORRUPTORS: Record<CorruptionName, Corruptor> = {
  gaussian_noise: (img, p, rng, _preset, inPlace = false) => gaussianNoise(img, p, rng, inPlace),
  shot_noise: (img, p, rng, _preset, inPlace = false) => shotNoise(img, p, rng, inPlace),
  impulse_noise: (img, p, rng, _preset, inPlace = false) => impulseNoise(img, p, rng, inPlace),
  defocus_blur: (img, p, _rng, _preset, inPlace = false) => defocusBlur(img, p, inPlace),
  glass_blur: (img, p, rng, _preset, inPlace = false) => glassBlur(img, p, rng, inPlace),
  motion_blur: (img, p, rng, _preset, inPlace = false) => motionBlurC(img, p, rng, inPlace),
  zoom_blur: (img, p, _rng, _preset, inPlace = false) => zoomBlur(img, p, inPlace),
  snow: (img, p, rng, _preset, inPlace = false) => snow(img, p, rng, inPlace),
  frost: (img, p, rng, _preset, inPlace = false) => frost(img, p, rng, inPlace),
  fog: (img, p, rng, _preset, inPlace = false) => fog(img, p, rng, inPlace),
  brightness: (img, p, _rng, _preset, inPlace = false) => brightness(img, p, inPlace),
  contrast: (img, p, _rng, _preset, inPlace = false) => contrast(img, p, inPlace),
  elastic_transform: (img, p, rng, _preset, inPlace = false) =>
    elasticTransform(img, p, rng, inPlace),
  pixelate: (img, p, _rng, preset) => pixelate(img, p, preset),
  jpeg_compression: (img, p) => jpegCompression(img, p),
  speckle_noise: (img, p, rng, _preset, inPlace = false) => speckleNoise(img, p, rng, inPlace),
  gaussian_blur: (img, p, _rng, _preset, inPlace = false) => gaussianBlur(img, p, inPlace),
  spatter: (img, p, rng, _preset, inPlace = false) => spatter(img, p, rng, inPlace),
  saturate: (img, p, _rng, _preset, inPlace = false) => saturate(img, p, inPlace),
};
