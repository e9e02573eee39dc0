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
import { fillNormalZiggurat, type Rng } from "./rng.ts";

/** cv2.Canny(img, low, high) with a 3x3 Sobel and the L1 gradient norm: 255 on edges, else 0. */
export function canny(
  src: Uint8Array,
  h: number,
  w: number,
  low: number,
  high: number,
): Uint8Array {
  const mag = new Int32Array(h * w);
  const gx = new Int32Array(h * w);
  const gy = new Int32Array(h * w);
  const at = (y: number, x: number) =>
    src[(y < 0 ? 0 : y >= h ? h - 1 : y) * w + (x < 0 ? 0 : x >= w ? w - 1 : x)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = at(y - 1, x + 1) - at(y - 1, x - 1) + 2 * (at(y, x + 1) - at(y, x - 1)) +
        at(y + 1, x + 1) - at(y + 1, x - 1);
      const dy = at(y + 1, x - 1) - at(y - 1, x - 1) + 2 * (at(y + 1, x) - at(y - 1, x)) +
        at(y + 1, x + 1) - at(y - 1, x + 1);
      gx[y * w + x] = dx;
      gy[y * w + x] = dy;
      mag[y * w + x] = Math.abs(dx) + Math.abs(dy);
    }
  }
  const m = (y: number, x: number) => (y < 0 || y >= h || x < 0 || x >= w ? 0 : mag[y * w + x]);
  // 0 = not an edge, 1 = weak candidate, 2 = strong
  const state = new Uint8Array(h * w);
  const TG22 = Math.tan(Math.PI / 8), TG67 = Math.tan(3 * Math.PI / 8);
  const stack: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = mag[i];
      if (v <= low) continue;
      const ax = Math.abs(gx[i]), ay = Math.abs(gy[i]);
      let keep: boolean;
      if (ay < ax * TG22) keep = v > m(y, x - 1) && v >= m(y, x + 1);
      else if (ay > ax * TG67) keep = v > m(y - 1, x) && v >= m(y + 1, x);
      else {
        const s = (gx[i] ^ gy[i]) < 0 ? -1 : 1;
        keep = v > m(y - 1, x - s) && v > m(y + 1, x + s);
      }
      if (!keep) continue;
      if (v > high) {
        state[i] = 2;
        stack.push(i);
      } else state[i] = 1;
    }
  }
  while (stack.length) {
    const i = stack.pop() as number;
    const y = Math.floor(i / w), x = i - y * w;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const j = yy * w + xx;
        if (state[j] === 1) {
          state[j] = 2;
          stack.push(j);
        }
      }
    }
  }
  const out = new Uint8Array(h * w);
  for (let i = 0; i < out.length; i++) out[i] = state[i] === 2 ? 255 : 0;
  return out;
}

/** cv2.distanceTransform(src, DIST_L2, 5): 5x5 chamfer (1, 1.4, 2.1969) to the nearest zero. */
export function distanceTransform(src: Uint8Array, h: number, w: number): Float64Array {
  const A = 1, B = 1.4, C = 2.1969;
  const INF = 1e9;
  const d = new Float64Array(h * w);
  for (let i = 0; i < d.length; i++) d[i] = src[i] === 0 ? 0 : INF;
  // The forward mask (row offset, column offset, cost); the backward pass uses it negated.
  const OY = [-2, -2, -1, -1, -1, -1, -1, 0];
  const OX = [-1, 1, -2, -1, 0, 1, 2, -1];
  const OC = [C, C, C, B, A, B, C, A];
  // Forward: top to bottom, left to right; backward: bottom to top, right to left. Each pixel
  // takes the least of itself and its mask neighbours plus their costs (order-free: a minimum).
  for (let dir = 1; dir >= -1; dir -= 2) {
    for (let yi = 0; yi < h; yi++) {
      const y = dir === 1 ? yi : h - 1 - yi;
      for (let xi = 0; xi < w; xi++) {
        const x = dir === 1 ? xi : w - 1 - xi;
        const i = y * w + x;
        let v = d[i];
        if (v === 0) continue;
        for (let m = 0; m < 8; m++) {
          const yy = y + dir * OY[m], xx = x + dir * OX[m];
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const u = d[yy * w + xx] + OC[m];
          if (u < v) v = u;
        }
        d[i] = v;
      }
    }
  }
  return d;
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
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = 0; dy < 3; dy++) {
        const yy = ys[3 * y + dy];
        for (let dx = 0; dx < 3; dx++) s += src[yy + xs[3 * x + dx]];
      }
      out[y * w + x] = s / 9;
    }
  }
  return out;
}

/** cv2.filter2D(src, -1, EMBOSS) on 8-bit values, BORDER_REFLECT_101, saturated to 8 bits. */
function emboss(src: Uint8Array, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  const { ys, xs } = nbr3(h, w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = 0; dy < 3; dy++) {
        const yy = ys[3 * y + dy];
        for (let dx = 0; dx < 3; dx++) s += EMBOSS[dy * 3 + dx] * src[yy + xs[3 * x + dx]];
      }
      out[y * w + x] = sat8(s);
    }
  }
  return out;
}

/** OpenCV's saturate_cast<uchar>: round half to even, clamp. */
function sat8(v: number): number {
  let r = Math.round(v);
  if (Math.abs(v % 1) === 0.5 && r % 2 !== 0) r -= 1;
  return r < 0 ? 0 : r > 255 ? 255 : r;
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

const EMBOSS = Int32Array.from([-2, -1, 0, -1, 1, 1, 0, 1, 2]);

/** The reference's spatter; `p` = [loc, scale, sigma, threshold, intensity, mode]. */
export function spatter(img: Img, p: readonly number[], rng: Rng): Img {
  const [loc, scale, sigma, thresh, intensity, mode] = p;
  const { h, w, c } = img;
  const n = h * w;
  const raw = new Float64Array(n);
  fillNormalZiggurat(rng, raw, loc, scale);
  const liquid = gaussianFilter({ h, w, c: 1, data: raw }, sigma, sigma, "nearest").data;
  for (let i = 0; i < n; i++) if (liquid[i] < thresh) liquid[i] = 0;
  const out = { h, w, c, data: img.data.slice() };
  const d = out.data;
  if (mode === 0) {
    const l8 = new Uint8Array(n);
    for (let i = 0; i < n; i++) l8[i] = Math.trunc(liquid[i] * 255) & 255;
    const edges = canny(l8, h, w, 50, 150);
    for (let i = 0; i < n; i++) edges[i] = 255 - edges[i];
    const dist = distanceTransform(edges, h, w);
    for (let i = 0; i < n; i++) if (dist[i] > 20) dist[i] = 20;
    const b1 = box3(dist, h, w);
    const d8 = new Uint8Array(n);
    for (let i = 0; i < n; i++) d8[i] = Math.trunc(b1[i]);
    const eq = equalizeHist(d8);
    const emb = emboss(eq, h, w);
    const b2 = box3(emb, h, w);
    let max = 0;
    const m = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      m[i] = liquid[i] * sat8(b2[i]);
      if (m[i] > max) max = m[i];
    }
    const color = c === 3 ? [175 / 255, 238 / 255, 238 / 255] : [
      (0.2989 * 175 + 0.587 * 238 + 0.114 * 238) / 255,
    ];
    if (max > 0) {
      for (let i = 0; i < n; i++) {
        const v = m[i] / max * intensity;
        for (let k = 0; k < c; k++) d[i * c + k] += Math.min(1, Math.max(0, v * color[k]));
      }
    }
  } else {
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
  return clip01(out);
}
