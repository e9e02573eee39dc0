/**
 * Spatter (an extra, validation corruption): water drops (severities with mode 0) or mud
 * (mode 1) over the image. The water branch follows the reference's OpenCV pipeline step by step:
 * a smoothed, thresholded Gaussian "liquid" layer, its Canny edges, the distance to them (5x5
 * chamfer, OpenCV's DIST_L2 with mask 5), truncated at 20, box-blurred, histogram-equalised,
 * embossed and blurred again; the liquid times that relief, normalised, tints the image pale
 * turquoise. The mud branch thresholds the liquid, blurs it and paints brown where it is thick.
 *
 * Written by hand: these are small, fixed OpenCV operations on 8-bit images whose exact
 * conventions (rounding, borders) decide the drop shapes; no npm package reproduces them.
 *
 * @example
 * ```ts
 * import { spatter } from "./spatter.ts";
 * import { newImage } from "./image.ts";
 * import { streamFor } from "./rng.ts";
 * const out = spatter(newImage(32, 32, 3), [0.65, 0.3, 4, 0.69, 0.6, 0], streamFor(0, 0, 17, 1));
 * console.log(out.h, out.w); // 32 32
 * ```
 * @module
 */
import { clip01, gaussianFilter, type Img, reflect101Index } from "./image.ts";
import { waterReliefFast } from "./kernels.ts";
import { fillNormalZiggurat, type Rng } from "./rng.ts";

/** The 3x3 Sobel derivatives with the edge pixel repeated, and the L1 norm. */
function sobel(
  src: Uint8Array,
  h: number,
  w: number,
  gx: Int32Array,
  gy: Int32Array,
  mag: Int32Array,
): void {
  const ys = new Int32Array(h + 2), xs = new Int32Array(w + 2);
  for (let y = -1; y <= h; y++) ys[y + 1] = (y < 0 ? 0 : y >= h ? h - 1 : y) * w;
  for (let x = -1; x <= w; x++) xs[x + 1] = x < 0 ? 0 : x >= w ? w - 1 : x;
  for (let y = 0; y < h; y++) {
    const u = ys[y], m = ys[y + 1], d = ys[y + 2];
    for (let x = 0; x < w; x++) {
      const l = xs[x], c = xs[x + 1], r = xs[x + 2];
      const dx = src[u + r] - src[u + l] + 2 * (src[m + r] - src[m + l]) + src[d + r] - src[d + l];
      const dy = src[d + l] - src[u + l] + 2 * (src[d + c] - src[u + c]) + src[d + r] - src[u + r];
      const i = m + x;
      gx[i] = dx;
      gy[i] = dy;
      mag[i] = Math.abs(dx) + Math.abs(dy);
    }
  }
}

/** Non-maximum suppression: state 2 (strong, pushed on `stack`), 1 (weak) or 0; returns depth. */
function suppress(
  mag: Int32Array,
  gx: Int32Array,
  gy: Int32Array,
  h: number,
  w: number,
  low: number,
  high: number,
  state: Uint8Array,
  stack: Int32Array,
): number {
  const TG22 = Math.tan(Math.PI / 8), TG67 = Math.tan(3 * Math.PI / 8);
  let top = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = mag[i];
      if (v <= low) continue;
      const ax = Math.abs(gx[i]), ay = Math.abs(gy[i]);
      // Neighbours outside the image count as 0.
      let keep: boolean;
      if (ay < ax * TG22) {
        keep = v > (x > 0 ? mag[i - 1] : 0) && v >= (x < w - 1 ? mag[i + 1] : 0);
      } else if (ay > ax * TG67) {
        keep = v > (y > 0 ? mag[i - w] : 0) && v >= (y < h - 1 ? mag[i + w] : 0);
      } else {
        const s = (gx[i] ^ gy[i]) < 0 ? -1 : 1;
        const ya = y - 1, xa = x - s, yb = y + 1, xb = x + s;
        const ma = ya < 0 || xa < 0 || xa >= w ? 0 : mag[ya * w + xa];
        const mb = yb >= h || xb < 0 || xb >= w ? 0 : mag[yb * w + xb];
        keep = v > ma && v > mb;
      }
      if (!keep) continue;
      if (v > high) {
        state[i] = 2;
        stack[top++] = i;
      } else state[i] = 1;
    }
  }
  return top;
}

/** Hysteresis: weak pixels 8-connected to strong ones become strong. */
function hysteresis(state: Uint8Array, stack: Int32Array, top: number, h: number, w: number) {
  while (top > 0) {
    const i = stack[--top];
    const y = Math.floor(i / w), x = i - y * w;
    for (let dy = -1; dy <= 1; dy++) {
      const yy = y + dy;
      if (yy < 0 || yy >= h) continue;
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx;
        if (xx < 0 || xx >= w) continue;
        const j = yy * w + xx;
        if (state[j] === 1) {
          state[j] = 2;
          stack[top++] = j;
        }
      }
    }
  }
}

/** cv2.Canny(img, low, high) with a 3x3 Sobel and the L1 gradient norm: 255 on edges, else 0. */
export function canny(
  src: Uint8Array,
  h: number,
  w: number,
  low: number,
  high: number,
): Uint8Array {
  const n = h * w;
  const mag = new Int32Array(n), gx = new Int32Array(n), gy = new Int32Array(n);
  sobel(src, h, w, gx, gy, mag);
  // 0 = not an edge, 1 = weak candidate, 2 = strong; each pixel is pushed at most once.
  const state = new Uint8Array(n);
  const stack = new Int32Array(n);
  const top = suppress(mag, gx, gy, h, w, low, high, state, stack);
  hysteresis(state, stack, top, h, w);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = state[i] === 2 ? 255 : 0;
  return out;
}

/**
 * cv2.distanceTransform(src, DIST_L2, 5): 5x5 chamfer (1, 1.4, 2.1969) to the nearest zero. The
 * corruption runs it in WebAssembly (kernels.ts); this is the reference of its tests.
 */
export function distanceTransform(src: Uint8Array, h: number, w: number): Float64Array {
  const INF = 1e9;
  // The map padded by 2 on every side with INF, which no pixel ever takes (INF + cost > INF):
  // the same minima as skipping the neighbours outside the image, without bounds tests.
  const pw = w + 4, ph = h + 4;
  const m = new Float64Array(pw * ph).fill(INF);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) m[(y + 2) * pw + x + 2] = src[y * w + x] === 0 ? 0 : INF;
  }
  chamferPass(m, h, w, pw, 1);
  chamferPass(m, h, w, pw, -1);
  const d = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) d[y * w + x] = m[(y + 2) * pw + x + 2];
  }
  return d;
}

// The forward mask (row and column offsets; costs 2.1969, 2.1969, 2.1969, 1.4, 1, 1.4, 2.1969, 1 in
// chamferPass); the backward pass uses it
// negated.
const OY = Int32Array.from([-2, -2, -1, -1, -1, -1, -1, 0]);
const OX = Int32Array.from([-1, 1, -2, -1, 0, 1, 2, -1]);

/**
 * One chamfer pass over the padded map (dir 1: top to bottom, left to right; -1: the reverse
 * with the mask negated): each pixel takes the least of itself and its mask neighbours plus their
 * costs (a minimum, so the order of the neighbours does not matter).
 */
function chamferPass(m: Float64Array, h: number, w: number, pw: number, dir: number): void {
  const off = new Int32Array(8);
  for (let k = 0; k < 8; k++) off[k] = dir * (OY[k] * pw + OX[k]);
  const o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3];
  const o4 = off[4], o5 = off[5], o6 = off[6], o7 = off[7];
  const C = 2.1969, B = 1.4;
  // Per row, first the minimum over the rows before (independent per pixel), then a scan with
  // the one neighbour in the same row (o7, the pixel just before): the same minima as taking
  // all nine at once pixel by pixel (a minimum is exact in any order; all values are >= 0), with
  // a short dependency chain, and Math.min rather than branches that mispredicted.
  for (let yi = 0; yi < h; yi++) {
    const y = dir === 1 ? yi : h - 1 - yi;
    const first = (y + 2) * pw + (dir === 1 ? 2 : w + 1);
    for (let xi = 0, i = first; xi < w; xi++, i += dir) {
      const a = Math.min(m[i], m[i + o0] + C), b = Math.min(m[i + o1] + C, m[i + o2] + C);
      const d = Math.min(m[i + o3] + B, m[i + o4] + 1), e = Math.min(m[i + o5] + B, m[i + o6] + C);
      m[i] = Math.min(Math.min(a, b), Math.min(d, e));
    }
    for (let xi = 0, i = first; xi < w; xi++, i += dir) m[i] = Math.min(m[i], m[i + o7] + 1);
  }
}

/** Row and column offsets of the 3x3 neighbourhoods under BORDER_REFLECT_101 (-1, 0, +1 each). */
function nbr3(h: number, w: number): { ys: Int32Array; xs: Int32Array } {
  const ys = new Int32Array(3 * h), xs = new Int32Array(3 * w);
  for (let y = 0; y < h; y++) {
    for (let d = 0; d < 3; d++) ys[3 * y + d] = reflect101Index(y + d - 1, h) * w;
  }
  for (let x = 0; x < w; x++) {
    for (let d = 0; d < 3; d++) xs[3 * x + d] = reflect101Index(x + d - 1, w);
  }
  return { ys, xs };
}

/** cv2.blur(src, (3, 3)) with BORDER_REFLECT_101, on floats. */
function box3(src: Float64Array, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const { ys, xs } = nbr3(h, w);
  for (let y = 0; y < h; y++) {
    const r0 = ys[3 * y], r1 = ys[3 * y + 1], r2 = ys[3 * y + 2];
    for (let x = 0; x < w; x++) {
      const c0 = xs[3 * x], c1 = xs[3 * x + 1], c2 = xs[3 * x + 2];
      // Row by row, left to right (the order of the sums of the loops this unrolls).
      let s = 0;
      s += src[r0 + c0];
      s += src[r0 + c1];
      s += src[r0 + c2];
      s += src[r1 + c0];
      s += src[r1 + c1];
      s += src[r1 + c2];
      s += src[r2 + c0];
      s += src[r2 + c1];
      s += src[r2 + c2];
      out[y * w + x] = s / 9;
    }
  }
  return out;
}

/** cv2.filter2D(src, -1, EMBOSS) on 8-bit values, BORDER_REFLECT_101, saturated to 8 bits. */
function emboss(src: Uint8Array, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const { ys, xs } = nbr3(h, w);
  // EMBOSS = [-2, -1, 0; -1, 1, 1; 0, 1, 2]: an integer sum, so saturate_cast is a clamp.
  for (let y = 0; y < h; y++) {
    const r0 = ys[3 * y], r1 = ys[3 * y + 1], r2 = ys[3 * y + 2];
    for (let x = 0; x < w; x++) {
      const c0 = xs[3 * x], c1 = xs[3 * x + 1], c2 = xs[3 * x + 2];
      const s = -2 * src[r0 + c0] - src[r0 + c1] - src[r1 + c0] + src[r1 + c1] + src[r1 + c2] +
        src[r2 + c1] + 2 * src[r2 + c2];
      out[y * w + x] = s < 0 ? 0 : s > 255 ? 255 : s;
    }
  }
  return out;
}

/** OpenCV's saturate_cast<uchar>: round half to even, clamp. */
function sat8(v: number): number {
  let r = Math.round(v);
  // v - trunc(v) is v % 1 exactly (without the floating-point remainder's library call)
  if (Math.abs(v - Math.trunc(v)) === 0.5 && (r & 1) !== 0) r -= 1;
  return Math.min(Math.max(r, 0), 255);
}

/** cv2.equalizeHist. */
export function equalizeHist(src: Uint8Array): Uint8Array {
  const hist = new Int32Array(256);
  for (const v of src) hist[v]++;
  let i = 0;
  while (!hist[i]) i++;
  const total = src.length;
  const out = new Uint8Array(total);
  if (hist[i] === total) return out.fill(i);
  const scale = 255 / (total - hist[i]);
  const lut = new Uint8Array(256);
  let sum = 0;
  for (lut[i++] = 0; i < 256; i++) {
    sum += hist[i];
    lut[i] = sat8(Math.fround(sum * scale));
  }
  for (let j = 0; j < total; j++) out[j] = lut[src[j]];
  return out;
}

/** The reference's spatter; `p` = [loc, scale, sigma, threshold, intensity, mode]. */
export function spatter(img: Img, p: readonly number[], rng: Rng, inPlace = false): Img {
  const [loc, scale, sigma, thresh, intensity, mode] = p;
  const { h, w, c } = img;
  const n = h * w;
  const raw = new Float64Array(n);
  fillNormalZiggurat(rng, raw, loc, scale);
  const liquid = gaussianFilter({ h, w, c: 1, data: raw }, sigma, sigma, "nearest").data;
  for (let i = 0; i < n; i++) if (liquid[i] < thresh) liquid[i] = 0;
  let d = img.data;
  if (!inPlace) {
    d = new Float64Array(img.data.length);
    for (let i = 0; i < d.length; i++) d[i] = img.data[i];
  }
  if (mode === 0) water(d, liquid, h, w, c, intensity);
  else mud(d, liquid, h, w, c, thresh, intensity);
  // corruptBatch (inPlace) clamps on output itself.
  return inPlace ? { h, w, c, data: d } : clip01({ h, w, c, data: d });
}

/** The water branch (in place on d): relief from the liquid's edges, tinted pale turquoise. */
function water(
  d: Float64Array,
  liquid: Float64Array,
  h: number,
  w: number,
  c: number,
  intensity: number,
): void {
  const n = h * w;
  const l8 = new Uint8Array(n);
  // liquid >= 0 here (thresholded), so | 0 truncates as Math.trunc does
  for (let i = 0; i < n; i++) l8[i] = (liquid[i] * 255) | 0;
  const edges = canny(l8, h, w, 50, 150);
  for (let i = 0; i < n; i++) edges[i] = 255 - edges[i];
  const m = new Float64Array(n);
  const max = waterReliefFast(edges, liquid, m, h, w);
  if (!(max > 0)) return;
  const clamp = (x: number) => x < 0 ? 0 : x > 1 ? 1 : x; // NaN-free inputs: same as min/max
  if (c === 3) {
    const r = 175 / 255, g = 238 / 255;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const v = m[i] / max * intensity;
      d[j] += clamp(v * r);
      const t = clamp(v * g);
      d[j + 1] += t;
      d[j + 2] += t;
    }
  } else {
    const gray = (0.2989 * 175 + 0.587 * 238 + 0.114 * 238) / 255;
    for (let i = 0; i < n; i++) d[i * c] += clamp(m[i] / max * intensity * gray);
  }
}

/**
 * The water branch's relief in JavaScript, the reference of kernels.ts's waterReliefFast (which
 * the corruption runs): the distance to the edges (capped at 20), box blur, bytes, histogram
 * equalisation, emboss, box blur, saturate_cast, times the liquid. Writes m, returns its maximum.
 */
export function waterReliefJs(
  edges: Uint8Array,
  liquid: Float64Array,
  m: Float64Array,
  h: number,
  w: number,
): number {
  const n = h * w;
  const dist = distanceTransform(edges, h, w);
  for (let i = 0; i < n; i++) dist[i] = Math.min(dist[i], 20);
  const b1 = box3(dist, h, w);
  const d8 = new Uint8Array(n);
  for (let i = 0; i < n; i++) d8[i] = Math.trunc(b1[i]);
  const eq = equalizeHist(d8);
  const emb = emboss(eq, h, w);
  const b2 = box3(emb, h, w);
  let max = 0;
  for (let i = 0; i < n; i++) {
    m[i] = liquid[i] * sat8(b2[i]);
    if (m[i] > max) max = m[i];
  }
  return max;
}

/** The mud branch (in place on d): brown where the blurred, thresholded liquid is thick. */
function mud(
  d: Float64Array,
  liquid: Float64Array,
  h: number,
  w: number,
  c: number,
  thresh: number,
  intensity: number,
): void {
  const n = h * w;
  const mask = new Float64Array(n);
  for (let i = 0; i < n; i++) mask[i] = liquid[i] > thresh ? 1 : 0;
  const mb = gaussianFilter({ h, w, c: 1, data: mask }, intensity, intensity, "nearest").data;
  const color = c === 3 ? [63 / 255, 42 / 255, 20 / 255] : [
    (0.2989 * 63 + 0.587 * 42 + 0.114 * 20) / 255,
  ];
  for (let i = 0; i < n; i++) {
    const v = mb[i] < 0.8 ? 0 : mb[i];
    for (let k = 0; k < c; k++) d[i * c + k] = d[i * c + k] * (1 - v) + color[k] * v;
  }
}
