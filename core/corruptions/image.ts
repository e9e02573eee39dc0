/**
 * The working image of the corruptions and the filters they are made of: float64 pixels in
 * [0, 1], interleaved HWC. Every filter states the border rule it follows, because the reference
 * (bethgelab/imagecorruptions on numpy, scipy, scikit-image, OpenCV and PIL) mixes several, and
 * matching them is what keeps cotrain's output close to it.
 *
 * Written by hand rather than taken from an image library: no npm package reproduces these exact
 * border rules and resampling conventions (scipy's `nearest`/`reflect`, OpenCV's
 * `BORDER_REFLECT_101`, PIL's fixed-point box filter), and the speed target needs loops shaped for
 * 32..256 px images.
 *
 * @example
 * ```ts
 * import { gaussianFilter, newImage } from "./image.ts";
 * const img = newImage(32, 32, 3);
 * img.data[3 * (16 * 32 + 16)] = 1;
 * const blurred = gaussianFilter(img, 1, 1, "nearest");
 * console.log(blurred.data[3 * (16 * 32 + 16)] < 1); // true
 * ```
 * @module
 */
import { separableFast } from "./kernels.ts";

/** An image: `data[(y * w + x) * c + k]`, float64, nominally in [0, 1]. */
export interface Img {
  h: number;
  w: number;
  c: number;
  data: Float64Array;
}

/** A zero image. */
export function newImage(h: number, w: number, c: number): Img {
  return { h, w, c, data: new Float64Array(h * w * c) };
}

/** Clips every value to [0, 1] in place. */
export function clip01(img: Img): Img {
  const d = img.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    d[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return img;
}

/** Scratch buffers kept between calls only up to this many values (32 MiB of doubles). */
export const SCRATCH_KEEP_MAX = 1 << 22;

/**
 * A buffer of at least `n` doubles: `kept` when it is large enough, else a new one, which the
 * caller keeps for the next call (`keep`) only if it is at most {@linkcode SCRATCH_KEEP_MAX}
 * long (large images do not pin large buffers).
 */
export function scratch(
  kept: Float64Array<ArrayBuffer>,
  n: number,
  keep: (b: Float64Array<ArrayBuffer>) => void,
): Float64Array<ArrayBuffer> {
  if (kept.length >= n) return kept;
  const b = new Float64Array(n);
  if (n <= SCRATCH_KEEP_MAX) keep(b);
  return b;
}

/** Index of `i` in 0..n-1 with scipy's `nearest` rule (edge value repeated). */
export function nearestIndex(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/** Index with scipy's `reflect` (half-sample symmetric: d c b a | a b c d | d c b a). */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const p = 2 * n;
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - 1 - i;
}

/** Index with OpenCV's `BORDER_REFLECT_101` (whole-sample symmetric: c b | a b c d | c b). */
export function reflect101Index(i: number, n: number): number {
  if (n === 1) return 0;
  const p = 2 * n - 2;
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - i;
}

/** Border rules by name. */
export type Border = "nearest" | "reflect" | "reflect101";
const BORDERS: Record<Border, (i: number, n: number) => number> = {
  nearest: nearestIndex,
  reflect: reflectIndex,
  reflect101: reflect101Index,
};

/** scipy's 1-D Gaussian weights: radius int(truncate * sigma + 0.5), normalised to sum 1. */
export function gaussianWeights(sigma: number, truncate = 4): Float64Array {
  const r = Math.floor(truncate * sigma + 0.5);
  const k = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) {
    const v = Math.exp(-0.5 * (i * i) / (sigma * sigma));
    k[i + r] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

let rowPad = new Float64Array(0);

/**
 * Correlates every channel with a 1-D kernel along one axis (0 = rows/y, 1 = columns/x), with the
 * given border rule. The kernel's centre is its middle element.
 */
export function correlate1d(img: Img, kernel: Float64Array, axis: 0 | 1, border: Border): Img {
  const { h, w, c } = img;
  const out = newImage(h, w, c);
  const r = (kernel.length - 1) >> 1;
  const idx = BORDERS[border];
  // Two leaf functions, one per axis: each is optimised on its own and stays so.
  if (axis === 1) {
    const xs = new Int32Array(w + kernel.length - 1);
    for (let x = 0; x < xs.length; x++) xs[x] = idx(x - r, w) * c;
    correlateAlongRows(img.data, out.data, kernel, xs, h, w, c);
  } else {
    const map = new Int32Array(h * kernel.length);
    for (let o = 0; o < h; o++) {
      for (let t = 0; t < kernel.length; t++) {
        map[o * kernel.length + t] = idx(o + t - r, h) * w * c;
      }
    }
    correlateDownColumns(img.data, out.data, kernel, map, h, w * c);
  }
  return out;
}

/**
 * Along x: each row padded by the border rule (source offsets `xs`) into a reused buffer, then
 * straight taps (the same sums, in the same order, as reading through an index map).
 */
function correlateAlongRows(
  src: Float64Array,
  dst: Float64Array,
  kernel: Float64Array,
  xs: Int32Array,
  h: number,
  w: number,
  c: number,
): void {
  const taps = kernel.length;
  const sym = isSymmetric(kernel);
  const rowLen = w * c;
  const padLen = xs.length * c;
  const pad = scratch(rowPad, padLen, (b) => rowPad = b);
  for (let y = 0; y < h; y++) {
    const base = y * rowLen;
    for (let x = 0; x < xs.length; x++) {
      const s0 = base + xs[x], p0 = x * c;
      for (let k = 0; k < c; k++) pad[p0 + k] = src[s0 + k];
    }
    if (c === 3 && sym) {
      // A symmetric kernel: the two taps at the same distance share one multiplication.
      const r = (taps - 1) >> 1, kc = kernel[r];
      for (let x = 0; x < w; x++) {
        const q0 = x * 3, qc = q0 + 3 * r;
        let s0 = kc * pad[qc], s1 = kc * pad[qc + 1], s2 = kc * pad[qc + 2];
        for (let t = 0, q = q0, u = q0 + 3 * (taps - 1); t < r; t++, q += 3, u -= 3) {
          const kt = kernel[t];
          s0 += kt * (pad[q] + pad[u]);
          s1 += kt * (pad[q + 1] + pad[u + 1]);
          s2 += kt * (pad[q + 2] + pad[u + 2]);
        }
        const o = base + q0;
        dst[o] = s0;
        dst[o + 1] = s1;
        dst[o + 2] = s2;
      }
    } else if (c === 1 && sym) {
      const r = (taps - 1) >> 1, kc = kernel[r];
      for (let x = 0; x < w; x++) {
        let s = kc * pad[x + r];
        for (let t = 0; t < r; t++) s += kernel[t] * (pad[x + t] + pad[x + taps - 1 - t]);
        dst[base + x] = s;
      }
    } else if (c === 3) {
      for (let x = 0; x < w; x++) {
        let s0 = 0, s1 = 0, s2 = 0;
        for (let t = 0, q = x * 3; t < taps; t++, q += 3) {
          const kt = kernel[t];
          s0 += kt * pad[q];
          s1 += kt * pad[q + 1];
          s2 += kt * pad[q + 2];
        }
        const o = base + x * 3;
        dst[o] = s0;
        dst[o + 1] = s1;
        dst[o + 2] = s2;
      }
    } else if (c === 1) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let t = 0; t < taps; t++) s += kernel[t] * pad[x + t];
        dst[base + x] = s;
      }
    } else {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) {
          let s = 0;
          for (let t = 0, q = x * c + k; t < taps; t++, q += c) s += kernel[t] * pad[q];
          dst[base + x * c + k] = s;
        }
      }
    }
  }
}

/**
 * Down y: source row starts `map` per output row and tap; each output value summed in registers
 * over the taps, four at a time (the same order as tap-by-tap row passes, so the same sums).
 */
function correlateDownColumns(
  src: Float64Array,
  dst: Float64Array,
  kernel: Float64Array,
  map: Int32Array,
  h: number,
  rowLen: number,
): void {
  const taps = kernel.length;
  if (isSymmetric(kernel)) {
    correlateDownColumnsSym(src, dst, kernel, map, h, rowLen);
    return;
  }
  for (let y = 0; y < h; y++) {
    const m = y * taps;
    const o = y * rowLen;
    let i = 0;
    for (; i + 4 <= rowLen; i += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let t = 0; t < taps; t++) {
        const kt = kernel[t], q = map[m + t] + i;
        s0 += kt * src[q];
        s1 += kt * src[q + 1];
        s2 += kt * src[q + 2];
        s3 += kt * src[q + 3];
      }
      dst[o + i] = s0;
      dst[o + i + 1] = s1;
      dst[o + i + 2] = s2;
      dst[o + i + 3] = s3;
    }
    for (; i < rowLen; i++) {
      let s = 0;
      for (let t = 0; t < taps; t++) s += kernel[t] * src[map[m + t] + i];
      dst[o + i] = s;
    }
  }
}

/** Whether kernel[t] === kernel[taps - 1 - t] for every t (odd length). */
function isSymmetric(kernel: Float64Array): boolean {
  const n = kernel.length;
  if (n % 2 === 0) return false;
  for (let t = 0; t < n >> 1; t++) if (kernel[t] !== kernel[n - 1 - t]) return false;
  return true;
}

/** {@linkcode correlateDownColumns} for a symmetric kernel: mirrored taps share a product. */
function correlateDownColumnsSym(
  src: Float64Array,
  dst: Float64Array,
  kernel: Float64Array,
  map: Int32Array,
  h: number,
  rowLen: number,
): void {
  const taps = kernel.length, r = (taps - 1) >> 1, kc = kernel[r];
  for (let y = 0; y < h; y++) {
    const m = y * taps;
    const o = y * rowLen;
    const qc = map[m + r];
    let i = 0;
    for (; i + 4 <= rowLen; i += 4) {
      let s0 = kc * src[qc + i], s1 = kc * src[qc + i + 1];
      let s2 = kc * src[qc + i + 2], s3 = kc * src[qc + i + 3];
      for (let t = 0; t < r; t++) {
        const kt = kernel[t], q = map[m + t] + i, u = map[m + taps - 1 - t] + i;
        s0 += kt * (src[q] + src[u]);
        s1 += kt * (src[q + 1] + src[u + 1]);
        s2 += kt * (src[q + 2] + src[u + 2]);
        s3 += kt * (src[q + 3] + src[u + 3]);
      }
      dst[o + i] = s0;
      dst[o + i + 1] = s1;
      dst[o + i + 2] = s2;
      dst[o + i + 3] = s3;
    }
    for (; i < rowLen; i++) {
      let s = kc * src[qc + i];
      for (let t = 0; t < r; t++) {
        s += kernel[t] * (src[map[m + t] + i] + src[map[m + taps - 1 - t] + i]);
      }
      dst[o + i] = s;
    }
  }
}

/**
 * The kernel and border index map of gaussianFilter along one axis (rows: output row, tap ->
 * source row; else padded column -> source column), cached per (size, sigma, truncate, border).
 */
const gaussPlans = new Map<string, { k: Float64Array; map: Int32Array }>();

export function gaussPlan(
  n: number,
  sigma: number,
  truncate: number,
  border: Border,
  rows: boolean,
): { k: Float64Array; map: Int32Array } {
  const key = `${n}/${sigma}/${truncate}/${border}/${rows}`;
  let p = gaussPlans.get(key);
  if (p) return p;
  const k = gaussianWeights(sigma, truncate);
  const taps = k.length, r = (taps - 1) >> 1, idx = BORDERS[border];
  let map: Int32Array;
  if (rows) {
    // output row o, tap t: source row
    map = new Int32Array(n * taps);
    for (let o = 0; o < n; o++) {
      for (let t = 0; t < taps; t++) map[o * taps + t] = idx(o + t - r, n);
    }
  } else {
    // padded column x: source column
    map = new Int32Array(n + taps - 1);
    for (let x = 0; x < map.length; x++) map[x] = idx(x - r, n);
  }
  p = { k, map };
  if (gaussPlans.size >= 256) gaussPlans.clear();
  gaussPlans.set(key, p);
  return p;
}

/**
 * scipy.ndimage.gaussian_filter over the two spatial axes (each channel alone), as
 * skimage.filters.gaussian calls it: rows first, then columns. Runs kernels.ts's WebAssembly
 * passes: the same sums in the same order as {@linkcode correlate1d} (bit for bit).
 */
export function gaussianFilter(
  img: Img,
  sigmaY: number,
  sigmaX: number,
  border: Border,
  truncate = 4,
): Img {
  const { h, w, c } = img;
  if (!(sigmaY > 0) && !(sigmaX > 0)) return { ...img, data: img.data.slice() };
  const py = sigmaY > 0 ? gaussPlan(h, sigmaY, truncate, border, true) : null;
  const px = sigmaX > 0 ? gaussPlan(w, sigmaX, truncate, border, false) : null;
  const out = newImage(h, w, c);
  separableFast(
    img.data,
    out.data,
    h,
    w,
    c,
    py?.k ?? null,
    py?.map ?? null,
    px?.k ?? null,
    px?.map ?? null,
  );
  return out;
}

/** {@linkcode gaussianFilter} in JavaScript (correlate1d twice): the reference of its tests. */
export function gaussianFilterJs(
  img: Img,
  sigmaY: number,
  sigmaX: number,
  border: Border,
  truncate = 4,
): Img {
  let out = img;
  if (sigmaY > 0) out = correlate1d(out, gaussianWeights(sigmaY, truncate), 0, border);
  if (sigmaX > 0) out = correlate1d(out, gaussianWeights(sigmaX, truncate), 1, border);
  return out === img ? { ...img, data: img.data.slice() } : out;
}

/** 1-D linear-interpolation plan of scipy.ndimage.zoom (order 1, grid_mode false). */
function zoomPlan(nIn: number, nOut: number): { i0: Int32Array; i1: Int32Array; f: Float64Array } {
  const i0 = new Int32Array(nOut);
  const i1 = new Int32Array(nOut);
  const f = new Float64Array(nOut);
  const scale = nOut > 1 ? (nIn - 1) / (nOut - 1) : 0;
  for (let o = 0; o < nOut; o++) {
    const x = o * scale;
    let a = Math.floor(x);
    if (a > nIn - 1) a = nIn - 1;
    const b = a + 1 < nIn ? a + 1 : nIn - 1;
    i0[o] = a;
    i1[o] = b;
    f[o] = x - a;
  }
  return { i0, i1, f };
}

/**
 * The reference's `clipped_zoom`: the centre crop of ceil(side / z) rows and columns, zoomed
 * bilinearly by `z` with scipy's corner-aligned grid to round(crop * z) pixels (which may be a
 * little larger than the image; callers crop).
 */
export function clippedZoom(img: Img, z: number): Img {
  const { h, w, c } = img;
  const ch = Math.ceil(h / z);
  const cw = Math.ceil(w / z);
  const top = (h - ch) >> 1;
  const left = (w - cw) >> 1;
  const oh = Math.round(ch * z);
  const ow = Math.round(cw * z);
  const py = zoomPlan(ch, oh);
  const px = zoomPlan(cw, ow);
  // Columns first into a (ch x ow) buffer, then rows.
  const tmp = new Float64Array(ch * ow * c);
  const src = img.data;
  for (let y = 0; y < ch; y++) {
    const sBase = ((top + y) * w + left) * c;
    const tBase = y * ow * c;
    for (let x = 0; x < ow; x++) {
      const a = sBase + px.i0[x] * c;
      const b = sBase + px.i1[x] * c;
      const f = px.f[x];
      const g = 1 - f;
      const t = tBase + x * c;
      for (let k = 0; k < c; k++) tmp[t + k] = g * src[a + k] + f * src[b + k];
    }
  }
  const out = newImage(oh, ow, c);
  const dst = out.data;
  const rowLen = ow * c;
  for (let y = 0; y < oh; y++) {
    const a = py.i0[y] * rowLen;
    const b = py.i1[y] * rowLen;
    const f = py.f[y];
    const g = 1 - f;
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) dst[o + i] = g * tmp[a + i] + f * tmp[b + i];
  }
  return out;
}

interface ZoomAccPlan {
  top: number;
  left: number;
  /** Crop rows that the kept output rows read (first..last), for the column pass. */
  r0: number;
  r1: number;
  py: { i0: Int32Array; i1: Int32Array; f: Float64Array };
  px: { i0: Int32Array; i1: Int32Array; f: Float64Array };
}
const zoomAccPlans = new Map<string, ZoomAccPlan>();
let zoomTmp = new Float64Array(0);

/**
 * Adds the top-left h x w part of {@linkcode clippedZoom}(img, z) to `acc` (h x w x c), with the
 * same arithmetic (so the same doubles) as zooming, cropping and adding; only the kept rows and
 * columns are computed, the interpolation plans are cached per (h, w, z) and the column pass
 * writes into a reused buffer.
 */
export function addClippedZoom(img: Img, z: number, acc: Float64Array): void {
  const { h, w, c } = img;
  const key = `${h}/${w}/${z}`;
  let p = zoomAccPlans.get(key);
  if (!p) {
    const ch = Math.ceil(h / z), cw = Math.ceil(w / z);
    const py = zoomPlan(ch, Math.round(ch * z)), px = zoomPlan(cw, Math.round(cw * z));
    if (py.i0.length < h || px.i0.length < w) {
      throw new RangeError(`addClippedZoom: zoom ${z} of ${h}x${w} is smaller than the image`);
    }
    let r0 = ch, r1 = -1;
    for (let y = 0; y < h; y++) {
      r0 = Math.min(r0, py.i0[y], py.i1[y]);
      r1 = Math.max(r1, py.i0[y], py.i1[y]);
    }
    p = { top: (h - ch) >> 1, left: (w - cw) >> 1, r0, r1, py, px };
    if (zoomAccPlans.size > 256) zoomAccPlans.clear();
    zoomAccPlans.set(key, p);
  }
  const rowLen = w * c;
  const tmp = scratch(zoomTmp, (p.r1 + 1) * rowLen, (b) => zoomTmp = b);
  const src = img.data;
  const { i0: xa, i1: xb, f: xf } = p.px;
  for (let y = p.r0; y <= p.r1; y++) {
    const sBase = ((p.top + y) * w + p.left) * c;
    const tBase = y * rowLen;
    if (c === 3) {
      for (let x = 0; x < w; x++) {
        const a = sBase + xa[x] * 3, b = sBase + xb[x] * 3, f = xf[x], g = 1 - f, t = tBase + x * 3;
        tmp[t] = g * src[a] + f * src[b];
        tmp[t + 1] = g * src[a + 1] + f * src[b + 1];
        tmp[t + 2] = g * src[a + 2] + f * src[b + 2];
      }
    } else {
      for (let x = 0; x < w; x++) {
        const a = sBase + xa[x] * c, b = sBase + xb[x] * c, f = xf[x], g = 1 - f, t = tBase + x * c;
        for (let k = 0; k < c; k++) tmp[t + k] = g * src[a + k] + f * src[b + k];
      }
    }
  }
  const { i0: ya, i1: yb, f: yf } = p.py;
  for (let y = 0; y < h; y++) {
    const a = ya[y] * rowLen, b = yb[y] * rowLen, f = yf[y], g = 1 - f, o = y * rowLen;
    for (let i = 0; i < rowLen; i++) acc[o + i] += g * tmp[a + i] + f * tmp[b + i];
  }
}

function zoomAccPlan(h: number, w: number, z: number): ZoomAccPlan {
  const key = `${h}/${w}/${z}`;
  let p = zoomAccPlans.get(key);
  if (!p) {
    const ch = Math.ceil(h / z), cw = Math.ceil(w / z);
    const py = zoomPlan(ch, Math.round(ch * z)), px = zoomPlan(cw, Math.round(cw * z));
    if (py.i0.length < h || px.i0.length < w) {
      throw new RangeError(`zoom ${z} of ${h}x${w} is smaller than the image`);
    }
    let r0 = ch, r1 = -1;
    for (let y = 0; y < h; y++) {
      r0 = Math.min(r0, py.i0[y], py.i1[y]);
      r1 = Math.max(r1, py.i0[y], py.i1[y]);
    }
    p = { top: (h - ch) >> 1, left: (w - cw) >> 1, r0, r1, py, px };
    if (zoomAccPlans.size > 256) zoomAccPlans.clear();
    zoomAccPlans.set(key, p);
  }
  return p;
}

/** The column pass of a clipped zoom: crop rows r0..r1, the first w output columns, into tmp. */
function zoomColumns(src: Float64Array, p: ZoomAccPlan, w: number, c: number, tmp: Float64Array) {
  const rowLen = w * c;
  const { i0: xa, i1: xb, f: xf } = p.px;
  for (let y = p.r0; y <= p.r1; y++) {
    const sBase = ((p.top + y) * w + p.left) * c;
    const tBase = y * rowLen;
    if (c === 3) {
      for (let x = 0; x < w; x++) {
        const a = sBase + xa[x] * 3, b = sBase + xb[x] * 3, f = xf[x], g = 1 - f, t = tBase + x * 3;
        tmp[t] = g * src[a] + f * src[b];
        tmp[t + 1] = g * src[a + 1] + f * src[b + 1];
        tmp[t + 2] = g * src[a + 2] + f * src[b + 2];
      }
    } else {
      for (let x = 0; x < w; x++) {
        const a = sBase + xa[x] * c, b = sBase + xb[x] * c, f = xf[x], g = 1 - f, t = tBase + x * c;
        for (let k = 0; k < c; k++) tmp[t + k] = g * src[a + k] + f * src[b + k];
      }
    }
  }
}

let zoomLayers = new Float64Array(0);

/**
 * The image plus the top-left h x w parts of its clipped zooms by each of `zooms`, in that order
 * (the same doubles as adding them one by one): the column passes of all zooms first, then each
 * output value summed over the zooms in a register.
 */
export function zoomSum(img: Img, zooms: readonly number[]): Img {
  const { h, w, c } = img;
  const rowLen = w * c;
  const nz = zooms.length;
  const plans = zooms.map((z) => zoomAccPlan(h, w, z));
  const offs = new Int32Array(nz);
  let total = 0;
  for (let j = 0; j < nz; j++) {
    offs[j] = total;
    total += (plans[j].r1 + 1) * rowLen;
  }
  const layers = scratch(zoomLayers, total, (b) => zoomLayers = b);
  for (let j = 0; j < nz; j++) {
    zoomColumns(
      img.data,
      plans[j],
      w,
      c,
      layers.subarray(offs[j], offs[j] + (plans[j].r1 + 1) * rowLen),
    );
  }
  // Per output row and zoom: the two source rows (absolute offsets into layers) and weights.
  const ra = new Int32Array(h * nz), rb = new Int32Array(h * nz), rf = new Float64Array(h * nz);
  for (let j = 0; j < nz; j++) {
    const py = plans[j].py;
    for (let y = 0; y < h; y++) {
      ra[y * nz + j] = offs[j] + py.i0[y] * rowLen;
      rb[y * nz + j] = offs[j] + py.i1[y] * rowLen;
      rf[y * nz + j] = py.f[y];
    }
  }
  const out = newImage(h, w, c);
  zoomRows(img.data, layers, ra, rb, rf, out.data, h, rowLen, nz);
  return out;
}

function zoomRows(
  src: Float64Array,
  layers: Float64Array,
  ra: Int32Array,
  rb: Int32Array,
  rf: Float64Array,
  dst: Float64Array,
  h: number,
  rowLen: number,
  nz: number,
): void {
  for (let y = 0; y < h; y++) {
    const o = y * rowLen, m = y * nz;
    let i = 0;
    for (; i + 4 <= rowLen; i += 4) {
      let s0 = src[o + i], s1 = src[o + i + 1], s2 = src[o + i + 2], s3 = src[o + i + 3];
      for (let j = 0; j < nz; j++) {
        const f = rf[m + j], g = 1 - f, a = ra[m + j] + i, b = rb[m + j] + i;
        s0 += g * layers[a] + f * layers[b];
        s1 += g * layers[a + 1] + f * layers[b + 1];
        s2 += g * layers[a + 2] + f * layers[b + 2];
        s3 += g * layers[a + 3] + f * layers[b + 3];
      }
      dst[o + i] = s0;
      dst[o + i + 1] = s1;
      dst[o + i + 2] = s2;
      dst[o + i + 3] = s3;
    }
    for (; i < rowLen; i++) {
      let s = src[o + i];
      for (let j = 0; j < nz; j++) {
        const f = rf[m + j];
        s += (1 - f) * layers[ra[m + j] + i] + f * layers[rb[m + j] + i];
      }
      dst[o + i] = s;
    }
  }
}

/** The top-left h x w part of an image (which must be at least that large). */
export function cropTopLeft(img: Img, h: number, w: number): Img {
  if (img.h === h && img.w === w) return img;
  const out = newImage(h, w, img.c);
  const rowLen = w * img.c;
  for (let y = 0; y < h; y++) {
    const s = y * img.w * img.c;
    out.data.set(img.data.subarray(s, s + rowLen), y * rowLen);
  }
  return out;
}

/**
 * The reference's motion blur: the sum of `kernel.length` copies of the image, copy i shifted by
 * (dy_i, dx_i) pixels with the edge pixels repeated, weighted by `kernel[i]`.
 */
export function shiftedSum(img: Img, kernel: Float64Array, dy: number[], dx: number[]): Img {
  const { h, w, c } = img;
  const out = newImage(h, w, c);
  const taps = dy.length;
  const lo = new Int32Array(taps), hi = new Int32Array(taps), sxs = new Int32Array(taps);
  const sys = new Int32Array(taps);
  // Output column x reads source column clamp(x - sx): columns [lo, hi) read x - sx directly,
  // the rest the edge pixel. Columns [xlo, xhi) read directly for every tap.
  let xlo = 0, xhi = w;
  for (let t = 0; t < taps; t++) {
    const sx = dx[t] | 0;
    sxs[t] = sx;
    sys[t] = dy[t] | 0;
    lo[t] = Math.max(0, sx);
    hi[t] = Math.min(w, w + sx);
    xlo = Math.max(xlo, lo[t]);
    xhi = Math.min(xhi, hi[t]);
  }
  if (xhi < xlo) xhi = xlo;
  shiftedRows(img.data, out.data, kernel, sys, sxs, lo, hi, xlo, xhi, h, w, c);
  return out;
}

/**
 * shiftedSum's rows: every output value is the sum over the taps in order (so the same sums as
 * tap-by-tap passes); the columns every tap reads directly are summed in registers, four values
 * at a time, the others tap by tap.
 */
function shiftedRows(
  src: Float64Array,
  dst: Float64Array,
  kernel: Float64Array,
  sys: Int32Array,
  sxs: Int32Array,
  lo: Int32Array,
  hi: Int32Array,
  xlo: number,
  xhi: number,
  h: number,
  w: number,
  c: number,
): void {
  const taps = sys.length;
  const rowLen = w * c;
  const base = new Int32Array(taps);
  for (let y = 0; y < h; y++) {
    const dRow = y * rowLen;
    for (let t = 0; t < taps; t++) {
      let srcY = y - sys[t];
      srcY = srcY < 0 ? 0 : srcY >= h ? h - 1 : srcY;
      base[t] = srcY * rowLen - sxs[t] * c;
    }
    // The interior, in registers.
    const iEnd = xhi * c;
    let i = xlo * c;
    for (; i + 4 <= iEnd; i += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let t = 0; t < taps; t++) {
        const wt = kernel[t], q = base[t] + i;
        s0 += wt * src[q];
        s1 += wt * src[q + 1];
        s2 += wt * src[q + 2];
        s3 += wt * src[q + 3];
      }
      dst[dRow + i] = s0;
      dst[dRow + i + 1] = s1;
      dst[dRow + i + 2] = s2;
      dst[dRow + i + 3] = s3;
    }
    for (; i < iEnd; i++) {
      let s = 0;
      for (let t = 0; t < taps; t++) s += kernel[t] * src[base[t] + i];
      dst[dRow + i] = s;
    }
    // The border columns [0, xlo) and [xhi, w), tap by tap.
    if (xlo > 0 || xhi < w) {
      for (let t = 0; t < taps; t++) {
        const wt = kernel[t];
        const rowStart = base[t] + sxs[t] * c;
        const l = lo[t], u = hi[t], b = base[t];
        for (let region = 0; region < 2; region++) {
          const a0 = region === 0 ? 0 : xhi, a1 = region === 0 ? xlo : w;
          // In [a0, a1): the first pixel before l, direct reads in [l, u), the last pixel after.
          const f1 = Math.min(a1, l);
          for (let x = a0; x < f1; x++) {
            for (let k = 0; k < c; k++) dst[dRow + x * c + k] += wt * src[rowStart + k];
          }
          const d0 = Math.max(a0, l), d1 = Math.min(a1, u);
          for (let i = d0 * c; i < d1 * c; i++) dst[dRow + i] += wt * src[b + i];
          const last = rowStart + (w - 1) * c;
          for (let x = Math.max(a0, u); x < a1; x++) {
            for (let k = 0; k < c; k++) dst[dRow + x * c + k] += wt * src[last + k];
          }
        }
      }
    }
  }
}

/**
 * The reference's `_motion_blur`: a one-sided Gaussian of width 2 * radius + 1 along `angle`
 * (degrees), stopping where the shift would leave the image.
 */
export function motionBlur(img: Img, radius: number, sigma: number, angle: number): Img {
  const width = 2 * radius + 1;
  const kernel = new Float64Array(width);
  let z = 0;
  for (let i = 0; i < width; i++) {
    kernel[i] = Math.exp(-(i * i) / (2 * sigma * sigma)) / (Math.sqrt(2 * Math.PI) * sigma);
    z += kernel[i];
  }
  for (let i = 0; i < width; i++) kernel[i] /= z;
  // The tail whose weights sum to under 2e-5 (values are in [0, 1]: no result moves by 1/200 of
  // an 8-bit level) is dropped: up to a third of the taps at the smallest sigmas.
  let taps = width, tail = 0;
  while (taps > 1 && tail + kernel[taps - 1] < 2e-5) tail += kernel[--taps];
  const rad = angle * Math.PI / 180;
  const py = width * Math.sin(rad);
  const px = width * Math.cos(rad);
  const hyp = Math.hypot(py, px);
  const dy: number[] = [];
  const dx: number[] = [];
  for (let i = 0; i < taps; i++) {
    const sy = -Math.ceil((i * py) / hyp - 0.5);
    const sx = -Math.ceil((i * px) / hyp - 0.5);
    if (Math.abs(sy) >= img.h || Math.abs(sx) >= img.w) break;
    dy.push(sy);
    dx.push(sx);
  }
  return shiftedSum(img, kernel, dy, dx);
}

/**
 * scipy.ndimage.map_coordinates with order 1 and mode `reflect`, the same displacement for every
 * channel: out(y, x) = img(y + dy(y, x), x + dx(y, x)) interpolated bilinearly.
 */
export function remapBilinearReflect(img: Img, dy: Float64Array, dx: Float64Array): Img {
  const { h, w, c } = img;
  const src = img.data;
  const out = newImage(h, w, c);
  const dst = out.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const sy = y + dy[p];
      const sx = x + dx[p];
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      // Inside the image (most pixels) the reflections are the identity.
      const inY = y0 >= 0 && y0 + 1 < h, inX = x0 >= 0 && x0 + 1 < w;
      const ya = (inY ? y0 : reflectIndex(y0, h)) * w;
      const yb = (inY ? y0 + 1 : reflectIndex(y0 + 1, h)) * w;
      const xa = inX ? x0 : reflectIndex(x0, w);
      const xb = inX ? x0 + 1 : reflectIndex(x0 + 1, w);
      const w00 = (1 - fy) * (1 - fx);
      const w01 = (1 - fy) * fx;
      const w10 = fy * (1 - fx);
      const w11 = fy * fx;
      const o = p * c;
      const a = (ya + xa) * c;
      const b = (ya + xb) * c;
      const d = (yb + xa) * c;
      const e = (yb + xb) * c;
      for (let k = 0; k < c; k++) {
        dst[o + k] = w00 * src[a + k] + w01 * src[b + k] + w10 * src[d + k] + w11 * src[e + k];
      }
    }
  }
  return out;
}

/** Luma weights of ITU-R BT.601 (OpenCV's and PIL's RGB to gray). */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** One gray channel from RGB with {@linkcode LUMA} weights. */
export function luma(img: Img): Float64Array {
  const n = img.h * img.w;
  const g = new Float64Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    g[i] = LUMA[0] * d[3 * i] + LUMA[1] * d[3 * i + 1] + LUMA[2] * d[3 * i + 2];
  }
  return g;
}

/**
 * skimage.color.rgb2hsv then `edit` then hsv2rgb, pixel by pixel, in place: `edit` gets and
 * returns [h, s, v].
 */
export function editHsv(img: Img, edit: (hsv: [number, number, number]) => void): Img {
  const d = img.data;
  const hsv: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < d.length; i += 3) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    const v = Math.max(r, g, b);
    const delta = v - Math.min(r, g, b);
    let hue = 0;
    let s = 0;
    if (delta !== 0) {
      s = delta / v;
      // skimage assigns red, then green, then blue: the last maximum wins ties.
      if (b === v) hue = 4 + (r - g) / delta;
      else if (g === v) hue = 2 + (b - r) / delta;
      else hue = (g - b) / delta;
      hue = hue / 6;
      hue = hue - Math.floor(hue); // Python's % 1 on floats
    }
    hsv[0] = hue;
    hsv[1] = s;
    hsv[2] = v;
    edit(hsv);
    const [hh, ss, vv] = hsv;
    const hi6 = Math.floor(hh * 6);
    const f = hh * 6 - hi6;
    const p = vv * (1 - ss);
    const q = vv * (1 - f * ss);
    const t = vv * (1 - (1 - f) * ss);
    switch (((hi6 % 6) + 6) % 6) {
      case 0:
        d[i] = vv, d[i + 1] = t, d[i + 2] = p;
        break;
      case 1:
        d[i] = q, d[i + 1] = vv, d[i + 2] = p;
        break;
      case 2:
        d[i] = p, d[i + 1] = vv, d[i + 2] = t;
        break;
      case 3:
        d[i] = p, d[i + 1] = q, d[i + 2] = vv;
        break;
      case 4:
        d[i] = t, d[i + 1] = p, d[i + 2] = vv;
        break;
      default:
        d[i] = vv, d[i + 1] = p, d[i + 2] = q;
    }
  }
  return img;
}

const boxCoeffs = new Map<string, { ksize: number; bounds: Int32Array; kk: Int32Array }>();

/** {@linkcode pilBoxCoeffsOf}, cached per (in, out) size. */
export function pilBoxCoeffs(inSize: number, outSize: number) {
  const key = `${inSize}/${outSize}`;
  let t = boxCoeffs.get(key);
  if (!t) {
    t = pilBoxCoeffsOf(inSize, outSize);
    if (boxCoeffs.size > 1024) boxCoeffs.clear();
    boxCoeffs.set(key, t);
  }
  return t;
}

/** PIL's resampling coefficients for the box filter, in its 22-bit fixed point. */
function pilBoxCoeffsOf(inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 0.5 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const u = (x + xmin - center + 0.5) * ss;
      const wgt = u > -0.5 && u <= 0.5 ? 1 : 0; // PIL's box filter
      k[x] = wgt;
      ww += wgt;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : 0;
      // PIL: (int)(0.5 + v * (1 << 22)) for v >= 0
      kk[xx * ksize + x] = Math.trunc(0.5 + v * (1 << 22));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** PIL's `Image.resize(..., BOX)` of an 8-bit image (horizontal pass, then vertical, uint8 between). */
export function pilResizeBox(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
): Uint8Array {
  let cur = src;
  if (ow !== w) {
    const { ksize, bounds, kk } = pilBoxCoeffs(w, ow);
    const out = new Uint8Array(h * ow * c);
    boxAlongRows(src, out, h, w, c, ow, ksize, bounds, kk);
    cur = out;
  }
  if (oh !== h) {
    const { ksize, bounds, kk } = pilBoxCoeffs(h, oh);
    const out = new Uint8Array(oh * ow * c);
    boxDownColumns(cur, out, oh, ow * c, ksize, bounds, kk);
    cur = out;
  }
  return cur === src ? src.slice() : cur;
}

/** PIL's horizontal pass: 22-bit fixed-point taps, rounded, clipped to 8 bits. */
function boxAlongRows(
  src: Uint8Array,
  out: Uint8Array,
  h: number,
  w: number,
  c: number,
  ow: number,
  ksize: number,
  bounds: Int32Array,
  kk: Int32Array,
): void {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      const xmin = bounds[2 * x], xmax = bounds[2 * x + 1];
      const s0 = (y * w + xmin) * c, k0 = x * ksize, o = (y * ow + x) * c;
      if (c === 3) {
        let a = 1 << 21, b = 1 << 21, d = 1 << 21;
        for (let t = 0, q = s0; t < xmax; t++, q += 3) {
          const kt = kk[k0 + t];
          a += src[q] * kt;
          b += src[q + 1] * kt;
          d += src[q + 2] * kt;
        }
        a >>= 22;
        b >>= 22;
        d >>= 22;
        out[o] = a < 0 ? 0 : a > 255 ? 255 : a;
        out[o + 1] = b < 0 ? 0 : b > 255 ? 255 : b;
        out[o + 2] = d < 0 ? 0 : d > 255 ? 255 : d;
        continue;
      }
      for (let k = 0; k < c; k++) {
        let ss = 1 << 21;
        for (let t = 0; t < xmax; t++) ss += src[s0 + t * c + k] * kk[k0 + t];
        const v = ss >> 22;
        out[o + k] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
}

/** PIL's vertical pass over rows of `rowLen` values. */
function boxDownColumns(
  src: Uint8Array,
  out: Uint8Array,
  oh: number,
  rowLen: number,
  ksize: number,
  bounds: Int32Array,
  kk: Int32Array,
): void {
  for (let y = 0; y < oh; y++) {
    const ymin = bounds[2 * y], ymax = bounds[2 * y + 1];
    const k0 = y * ksize, o = y * rowLen, s0 = ymin * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let ss = 1 << 21;
      for (let t = 0, q = s0 + i; t < ymax; t++, q += rowLen) ss += src[q] * kk[k0 + t];
      const v = ss >> 22;
      out[o + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

/**
 * PIL's `Image.resize(..., NEAREST)`: source index floor((o + 0.5) * in / out). Writes into `out`
 * from `at` when given (a new array otherwise).
 */
export function pilResizeNearest(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
  out: Uint8Array = new Uint8Array(oh * ow * c),
  at = 0,
): Uint8Array {
  const xs = new Int32Array(ow);
  for (let x = 0; x < ow; x++) xs[x] = Math.min(w - 1, Math.floor((x + 0.5) * w / ow)) * c;
  const rowLen = ow * c;
  let prev = -1;
  for (let y = 0; y < oh; y++) {
    const sy = Math.min(h - 1, Math.floor((y + 0.5) * h / oh));
    const o = at + y * rowLen;
    if (sy === prev) {
      // The same source row as the previous output row: copy that row.
      out.copyWithin(o, o - rowLen, o);
      continue;
    }
    prev = sy;
    const s = sy * w * c;
    if (c === 3) {
      for (let x = 0, q = o; x < ow; x++, q += 3) {
        const p = s + xs[x];
        out[q] = src[p];
        out[q + 1] = src[p + 1];
        out[q + 2] = src[p + 2];
      }
    } else {
      for (let x = 0; x < ow; x++) {
        for (let k = 0; k < c; k++) out[o + x * c + k] = src[s + xs[x] + k];
      }
    }
  }
  return out;
}

/** Float [0,1] to uint8 with the reference's truncation (`np.uint8(np.clip(x, 0, 1) * 255)`). */
export function toUint8Trunc(d: Float64Array): Uint8Array {
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i] * 255;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : v; // Uint8Array stores truncate
  }
  return out;
}
