/**
 * Defocus blur: the reference's anti-aliased disk kernel (a binary disk, normalised, blurred by a
 * 3x3 or 5x5 Gaussian with OpenCV's BORDER_REFLECT_101 inside the kernel array) applied like
 * `cv2.filter2D` (correlation, BORDER_REFLECT_101).
 *
 * A 21x21 kernel applied directly costs 441 multiply-adds per value; here it is split as
 * K = G D G' + E D G' + G D E' + E D E' (see planFor): the disk part is a sum of row runs (two
 * prefix-sum reads per kernel row), the Gaussian is separable, and the edge terms E (where the
 * kernel array cut and reflected the blurred disk) are a few box-sum passes sharing the disk's
 * Gaussian. Exact up to rounding, except that edge terms which can move no value by
 * {@linkcode NEGLIGIBLE} are left out (radius 10: 6 of 12).
 *
 * @example
 * ```ts
 * import { defocusKernel } from "./defocus.ts";
 * const k = defocusKernel(3, 0.1);
 * console.log(k.size, Math.abs(k.weights.reduce((a, b) => a + b, 0) - 1) < 1e-6); // 17 true
 * ```
 * @module
 */
import { type Img, newImage, reflect101Index, scratch as keptScratch } from "./image.ts";
import { defocusFast } from "./kernels.ts";

/** OpenCV's getGaussianKernel for sigma > 0. */
function cvGaussian(ksize: number, sigma: number): Float64Array {
  const g = new Float64Array(ksize);
  const c = (ksize - 1) / 2;
  let sum = 0;
  for (let i = 0; i < ksize; i++) {
    g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    sum += g[i];
  }
  for (let i = 0; i < ksize; i++) g[i] /= sum;
  return g;
}

/** The reference's disk kernel: `size` x `size` weights, row-major. */
export function defocusKernel(
  radius: number,
  aliasBlur: number,
): { size: number; weights: Float64Array } {
  const R = radius <= 8 ? 8 : radius;
  const ks = radius <= 8 ? 3 : 5;
  const size = 2 * R + 1;
  const disk = new Float64Array(size * size);
  let count = 0;
  for (let y = -R; y <= R; y++) {
    for (let x = -R; x <= R; x++) {
      if (x * x + y * y <= radius * radius) {
        disk[(y + R) * size + x + R] = 1;
        count++;
      }
    }
  }
  for (let i = 0; i < disk.length; i++) disk[i] /= count;
  const g = cvGaussian(ks, aliasBlur);
  const gr = (ks - 1) >> 1;
  const tmp = new Float64Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let t = 0; t < ks; t++) s += g[t] * disk[y * size + reflect101Index(x + t - gr, size)];
      tmp[y * size + x] = s;
    }
  }
  const out = new Float64Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let t = 0; t < ks; t++) s += g[t] * tmp[reflect101Index(y + t - gr, size) * size + x];
      out[y * size + x] = s;
    }
  }
  return { size, weights: out };
}

interface Plan {
  radius: number;
  /** Half-width of the disk's row at each dy = -r..r. */
  halfWidth: Int32Array;
  count: number;
  gauss: Float64Array;
  /** Pad around the image (kernel half-size plus the Gaussian's). */
  pad: number;
  /**
   * Edge terms (see defocusFilter): kernel row (or column) offset, half-width of the disk row
   * (column) it comes from, weight (already divided by the disk's count).
   */
  ey: Int32Array;
  ehw: Int32Array;
  ew: Float64Array;
  /** Sparse taps of the remaining corner term: dy, dx, weight. */
  cy: Int32Array;
  cx: Int32Array;
  cw: Float64Array;
}

const plans = new Map<string, Plan>();

/** Edge terms that can change no result by more than this (2e-5 = 1/200 of a level) are dropped. */
export const NEGLIGIBLE = 2e-5;

/**
 * The kernel as matrices: K = A D A^T, D the normalised disk ((2R+1)^2), A the 1-D Gaussian with
 * BORDER_REFLECT_101 inside the kernel array. With G the same Gaussian on the kernel array
 * extended by its radius (no reflection, rows past the array kept) and E = A - G (zero-padded):
 * K = G D G^T + E D G^T + G D E^T + E D E^T. The first term is the disk blurred in full (disk
 * sums by prefix sums, then the separable Gaussian); E has a few entries by each edge of the
 * array, so the second and third terms are a few row (column) passes of box-and-Gaussian
 * filtered planes; the fourth is a handful of sparse taps (none for the presets' kernels).
 */
function planFor(radius: number, aliasBlur: number): Plan {
  const key = `${radius}/${aliasBlur}`;
  let p = plans.get(key);
  if (p) return p;
  const R = radius <= 8 ? 8 : radius;
  const size = 2 * R + 1;
  const ks = radius <= 8 ? 3 : 5;
  const gr = (ks - 1) >> 1;
  const gauss = cvGaussian(ks, aliasBlur);
  const r = Math.floor(radius);
  const halfWidth = new Int32Array(2 * r + 1);
  let count = 0;
  for (let dy = -r; dy <= r; dy++) {
    let a = -1;
    for (let dx = 0; dx <= r; dx++) if (dx * dx + dy * dy <= radius * radius) a = dx;
    halfWidth[dy + r] = a;
    count += a >= 0 ? 2 * a + 1 : 0;
  }
  const hwOfRow = (j: number) => (Math.abs(j - R) <= r ? halfWidth[j - R + r] : -1);
  // E over extended rows y = -gr..2R+gr (stored at y + gr) and array columns j = 0..2R.
  const P = R + gr;
  const ne = size + 2 * gr;
  const E = new Float64Array(ne * size);
  for (let y = -gr; y < size + gr; y++) {
    for (let j = 0; j < size; j++) {
      let a = 0;
      if (y >= 0 && y < size) {
        for (let t = 0; t < ks; t++) if (reflect101Index(y + t - gr, size) === j) a += gauss[t];
      }
      const g = Math.abs(y - j) <= gr ? gauss[j - y + gr] : 0;
      E[(y + gr) * size + j] = a - g;
    }
  }
  const ey: number[] = [], ehw: number[] = [], ew: number[] = [];
  for (let y = -gr; y < size + gr; y++) {
    for (let j = 0; j < size; j++) {
      const e = E[(y + gr) * size + j];
      // Terms whose largest contribution (weight times the box's pixel count, on values in
      // [0, 1]) is under NEGLIGIBLE are dropped: they move no value by a 200th of an 8-bit level.
      if (e !== 0 && hwOfRow(j) >= 0 && Math.abs(e / count) * (2 * hwOfRow(j) + 1) >= NEGLIGIBLE) {
        ey.push(y - R);
        ehw.push(hwOfRow(j));
        ew.push(e / count);
      }
    }
  }
  // E D E^T, sparse.
  const cy: number[] = [], cx: number[] = [], cw: number[] = [];
  for (let y = 0; y < ne; y++) {
    for (let x = 0; x < ne; x++) {
      let v = 0;
      for (let j = 0; j < size; j++) {
        const ej = E[y * size + j], hw = hwOfRow(j);
        if (ej === 0 || hw < 0) continue;
        for (let i = R - hw; i <= R + hw; i++) v += ej * E[x * size + i] / count;
      }
      if (v !== 0) {
        cy.push(y - P);
        cx.push(x - P);
        cw.push(v);
      }
    }
  }
  p = {
    radius: r,
    halfWidth,
    count,
    gauss,
    pad: P,
    ey: Int32Array.from(ey),
    ehw: Int32Array.from(ehw),
    ew: Float64Array.from(ew),
    cy: Int32Array.from(cy),
    cx: Int32Array.from(cx),
    cw: Float64Array.from(cw),
  };
  plans.set(key, p);
  return p;
}

/** Scratch buffers, grown on demand and reused between calls (one image at a time). */
let scratchBuf = new Float64Array(0);
function scratchOf(n: number): Float64Array {
  return keptScratch(scratchBuf, n, (b) => scratchBuf = b);
}

// The passes below are small leaf functions on purpose: each is optimised on its own after a few
// calls and stays optimised when the caller takes another branch (another severity), where one
// large function was deoptimised and recompiled again and again.

/** Channel k of the image, padded by P with BORDER_REFLECT_101, and its row prefix sums. */
function padPlane(
  src: Float64Array,
  k: number,
  rowLen: number,
  ys: Int32Array,
  xs: Int32Array,
  pl: Float64Array,
  sm: Float64Array,
  ph: number,
  pw: number,
): void {
  const sw = pw + 1;
  for (let y = 0; y < ph; y++) {
    const srow = ys[y] * rowLen + k;
    const po = y * pw, so = y * sw;
    let acc = 0;
    for (let x = 0; x < pw; x++) {
      const v = src[srow + xs[x]];
      pl[po + x] = v;
      sm[so + x] = acc;
      acc += v;
    }
    sm[so + pw] = acc;
  }
}

/**
 * Disk sums (eh x ew, the image extended by gr) from the row prefix sums: per output value, the
 * rows' two prefix reads summed in a register, in the order of the rows (dy = -r..r).
 */
function diskSums(
  a: Float64Array,
  sm: Float64Array,
  hwOf: Int32Array,
  r: number,
  eh: number,
  ew: number,
  sw: number,
  P: number,
  gr: number,
): void {
  let nr = 0;
  const his = new Int32Array(2 * r + 1), los = new Int32Array(2 * r + 1);
  for (let y = 0; y < eh; y++) {
    nr = 0;
    for (let dy = -r; dy <= r; dy++) {
      const hw = hwOf[dy + r];
      if (hw < 0) continue;
      const so = (y - gr + dy + P) * sw + P - gr;
      his[nr] = so + hw + 1;
      los[nr++] = so - hw;
    }
    const ao = y * ew;
    let x = 0;
    for (; x + 4 <= ew; x += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let j = 0; j < nr; j++) {
        const hi = his[j] + x, lo = los[j] + x;
        s0 += sm[hi] - sm[lo];
        s1 += sm[hi + 1] - sm[lo + 1];
        s2 += sm[hi + 2] - sm[lo + 2];
        s3 += sm[hi + 3] - sm[lo + 3];
      }
      a[ao + x] = s0;
      a[ao + x + 1] = s1;
      a[ao + x + 2] = s2;
      a[ao + x + 3] = s3;
    }
    for (; x < ew; x++) {
      let s = 0;
      for (let j = 0; j < nr; j++) s += sm[his[j] + x] - sm[los[j] + x];
      a[ao + x] = s;
    }
  }
}

/** out (h x n) = sum over t of g[t] * scale * inp rows y + t (inp (h + taps - 1) x n). */
function colGauss(
  out: Float64Array,
  inp: Float64Array,
  g: Float64Array,
  scale: number,
  h: number,
  n: number,
  add: boolean,
): void {
  const gl = g.length;
  const gs = new Float64Array(gl);
  for (let t = 0; t < gl; t++) gs[t] = g[t] * scale;
  for (let y = 0; y < h; y++) {
    const oo = y * n;
    let x = 0;
    // In registers, four columns at a time, the taps in order (the same sums as tap-by-tap).
    for (; x + 4 <= n; x += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      if (add) {
        s0 = out[oo + x], s1 = out[oo + x + 1], s2 = out[oo + x + 2], s3 = out[oo + x + 3];
      }
      for (let t = 0; t < gl; t++) {
        const gt = gs[t], io = (y + t) * n + x;
        s0 += gt * inp[io];
        s1 += gt * inp[io + 1];
        s2 += gt * inp[io + 2];
        s3 += gt * inp[io + 3];
      }
      out[oo + x] = s0;
      out[oo + x + 1] = s1;
      out[oo + x + 2] = s2;
      out[oo + x + 3] = s3;
    }
    for (; x < n; x++) {
      let s = add ? out[oo + x] : 0;
      for (let t = 0; t < gl; t++) s += gs[t] * inp[(y + t) * n + x];
      out[oo + x] = s;
    }
  }
}

/** out (h x w) = the Gaussian along the rows of b (h x (w + taps - 1)). */
function rowGauss(out: Float64Array, b: Float64Array, g: Float64Array, h: number, w: number) {
  const gl = g.length, bw = w + gl - 1;
  for (let y = 0; y < h; y++) {
    const bo = y * bw, oo = y * w;
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let t = 0; t < gl; t++) s += g[t] * b[bo + x + t];
      out[oo + x] = s;
    }
  }
}

/** E D G^T before its horizontal Gaussian: E's weights times horizontal box sums, added to b. */
function edgeRows(
  b: Float64Array,
  sm: Float64Array,
  ey: Int32Array,
  ehw: Int32Array,
  eww: Float64Array,
  h: number,
  ew: number,
  sw: number,
  P: number,
  gr: number,
): void {
  const ne = eww.length;
  const his = new Int32Array(ne), los = new Int32Array(ne);
  for (let y = 0; y < h; y++) {
    for (let e = 0; e < ne; e++) {
      const so = (y + ey[e] + P) * sw + P - gr;
      his[e] = so + ehw[e] + 1;
      los[e] = so - ehw[e];
    }
    const bo = y * ew;
    let x = 0;
    for (; x + 4 <= ew; x += 4) {
      let s0 = b[bo + x], s1 = b[bo + x + 1], s2 = b[bo + x + 2], s3 = b[bo + x + 3];
      for (let e = 0; e < ne; e++) {
        const wt = eww[e], hi = his[e] + x, lo = los[e] + x;
        s0 += wt * (sm[hi] - sm[lo]);
        s1 += wt * (sm[hi + 1] - sm[lo + 1]);
        s2 += wt * (sm[hi + 2] - sm[lo + 2]);
        s3 += wt * (sm[hi + 3] - sm[lo + 3]);
      }
      b[bo + x] = s0;
      b[bo + x + 1] = s1;
      b[bo + x + 2] = s2;
      b[bo + x + 3] = s3;
    }
    for (; x < ew; x++) {
      let s = b[bo + x];
      for (let e = 0; e < ne; e++) s += eww[e] * (sm[his[e] + x] - sm[los[e] + x]);
      b[bo + x] = s;
    }
  }
}

/** Column prefix sums ((ph + 1) x pw) of the padded plane. */
function colPrefix(cm: Float64Array, pl: Float64Array, ph: number, pw: number): void {
  for (let x = 0; x < pw; x++) cm[x] = 0;
  for (let y = 0; y < ph; y++) {
    const co = y * pw;
    for (let x = 0; x < pw; x++) cm[co + pw + x] = cm[co + x] + pl[co + x];
  }
}

/** G D E^T before its vertical Gaussian: E's weights times vertical box sums (eh x w). */
function edgeCols(
  F: Float64Array,
  cm: Float64Array,
  ey: Int32Array,
  ehw: Int32Array,
  eww: Float64Array,
  eh: number,
  w: number,
  pw: number,
  P: number,
  gr: number,
): void {
  const ne = eww.length;
  const tops = new Int32Array(ne), bots = new Int32Array(ne);
  for (let y = 0; y < eh; y++) {
    for (let e = 0; e < ne; e++) {
      const off = ey[e] + P;
      tops[e] = (P - gr + y - ehw[e]) * pw + off;
      bots[e] = (P - gr + y + ehw[e] + 1) * pw + off;
    }
    const fo = y * w;
    let x = 0;
    for (; x + 4 <= w; x += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let e = 0; e < ne; e++) {
        const wt = eww[e], bo = bots[e] + x, to = tops[e] + x;
        s0 += wt * (cm[bo] - cm[to]);
        s1 += wt * (cm[bo + 1] - cm[to + 1]);
        s2 += wt * (cm[bo + 2] - cm[to + 2]);
        s3 += wt * (cm[bo + 3] - cm[to + 3]);
      }
      F[fo + x] = s0;
      F[fo + x + 1] = s1;
      F[fo + x + 2] = s2;
      F[fo + x + 3] = s3;
    }
    for (; x < w; x++) {
      let s = 0;
      for (let e = 0; e < ne; e++) s += eww[e] * (cm[bots[e] + x] - cm[tops[e] + x]);
      F[fo + x] = s;
    }
  }
}

/** Sparse taps on the padded plane, added to o (h x w). */
function sparseTaps(
  o: Float64Array,
  pl: Float64Array,
  cy: Int32Array,
  cx: Int32Array,
  cw: Float64Array,
  h: number,
  w: number,
  pw: number,
  P: number,
): void {
  for (let j = 0; j < cw.length; j++) {
    const wt = cw[j], off = (P + cy[j]) * pw + P + cx[j];
    for (let y = 0; y < h; y++) {
      const oo = y * w, po = off + y * pw;
      for (let x = 0; x < w; x++) o[oo + x] += wt * pl[po + x];
    }
  }
}

/** o (h x w) = the centre of a ((h + 2 gr) x (w + 2 gr)) times `scale`. */
function centre(o: Float64Array, a: Float64Array, scale: number, h: number, w: number, gr: number) {
  const ew = w + 2 * gr;
  for (let y = 0; y < h; y++) {
    const ao = (y + gr) * ew + gr, oo = y * w;
    for (let x = 0; x < w; x++) o[oo + x] = a[ao + x] * scale;
  }
}

/** Writes plane o as channel k of interleaved d. */
function interleave(d: Float64Array, o: Float64Array, k: number, c: number, n: number): void {
  for (let i = 0, q = k; i < n; i++, q += c) d[q] = o[i];
}

/** Border maps of the padded plane per (h, w, c, P): source rows, source column offsets. */
const borderMaps = new Map<string, { ys: Int32Array; xs: Int32Array }>();

/**
 * `cv2.filter2D(img, -1, disk(radius, aliasBlur))` per channel, BORDER_REFLECT_101: the passes of
 * {@linkcode defocusFilterJs} in WebAssembly (kernels.ts), bit for bit the same.
 */
export function defocusFilter(img: Img, radius: number, aliasBlur: number): Img {
  const { h, w, c } = img;
  const p = planFor(radius, aliasBlur);
  const P = p.pad;
  const g = p.gauss;
  const identity = g.length === 3 && g[0] < 1e-18 && p.ew.length === 0;
  const key = `${h}/${w}/${c}/${P}`;
  let m = borderMaps.get(key);
  if (!m) {
    const ph = h + 2 * P, pw = w + 2 * P;
    const ys = new Int32Array(ph), xs = new Int32Array(pw);
    for (let y = 0; y < ph; y++) ys[y] = reflect101Index(y - P, h);
    for (let x = 0; x < pw; x++) xs[x] = reflect101Index(x - P, w) * c;
    m = { ys, xs };
    if (borderMaps.size >= 64) borderMaps.clear();
    borderMaps.set(key, m);
  }
  const out = newImage(h, w, c);
  defocusFast(img.data, out.data, h, w, c, p, identity, m.ys, m.xs);
  return out;
}

/** {@linkcode defocusFilter} in JavaScript (the reference of its WebAssembly passes in tests). */
export function defocusFilterJs(img: Img, radius: number, aliasBlur: number): Img {
  const { h, w, c } = img;
  const p = planFor(radius, aliasBlur);
  const P = p.pad;
  const g = p.gauss;
  const gr = (g.length - 1) >> 1;
  const ne = p.ew.length;
  // A Gaussian whose side weights vanish next to 1 (alias blur 0.1: ~2e-22) is the identity.
  const identity = g.length === 3 && g[0] < 1e-18 && ne === 0;
  const ph = h + 2 * P, pw = w + 2 * P, sw = pw + 1;
  const eh = h + 2 * gr, ew = w + 2 * gr;
  const nPl = ph * pw, nSm = ph * sw, nA = eh * ew, nB = h * ew, nO = h * w;
  const nCm = ne > 0 ? (ph + 1) * pw : 0, nF = ne > 0 ? eh * w : 0;
  const buf = scratchOf(nPl + nSm + nA + nB + nO + nCm + nF);
  let at = 0;
  const pl = buf.subarray(at, at += nPl), sm = buf.subarray(at, at += nSm);
  const a = buf.subarray(at, at += nA), b = buf.subarray(at, at += nB);
  const o = buf.subarray(at, at += nO), cm = buf.subarray(at, at += nCm);
  const F = buf.subarray(at, at += nF);
  const ys = new Int32Array(ph), xs = new Int32Array(pw);
  for (let y = 0; y < ph; y++) ys[y] = reflect101Index(y - P, h);
  for (let x = 0; x < pw; x++) xs[x] = reflect101Index(x - P, w) * c;
  const out = newImage(h, w, c);
  const inv = 1 / p.count;
  for (let k = 0; k < c; k++) {
    padPlane(img.data, k, w * c, ys, xs, pl, sm, ph, pw);
    diskSums(a, sm, p.halfWidth, p.radius, eh, ew, sw, P, gr);
    if (identity) centre(o, a, inv, h, w, gr);
    else {
      // The Gaussian down the columns (scaled by 1 / count), E D G^T's rows, the Gaussian along
      // the rows.
      colGauss(b, a, g, inv, h, ew, false);
      if (ne > 0) edgeRows(b, sm, p.ey, p.ehw, p.ew, h, ew, sw, P, gr);
      rowGauss(o, b, g, h, w);
    }
    if (ne > 0) {
      // G D E^T: vertical box sums at E's column offsets, then the Gaussian down the columns.
      colPrefix(cm, pl, ph, pw);
      edgeCols(F, cm, p.ey, p.ehw, p.ew, eh, w, pw, P, gr);
      colGauss(o, F, g, 1, h, w, true);
    }
    if (p.cw.length > 0) sparseTaps(o, pl, p.cy, p.cx, p.cw, h, w, pw, P);
    interleave(out.data, o, k, c, nO);
  }
  return out;
}

/** Direct `cv2.filter2D` with the full kernel (slow; the reference for tests). */
export function defocusFilterDirect(img: Img, radius: number, aliasBlur: number): Img {
  const { size, weights } = defocusKernel(radius, aliasBlur);
  const R = (size - 1) >> 1;
  const { h, w, c } = img;
  const out = newImage(h, w, c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let u = -R; u <= R; u++) {
          const sy = reflect101Index(y + u, h);
          for (let v = -R; v <= R; v++) {
            const wt = weights[(u + R) * size + v + R];
            if (wt !== 0) s += wt * img.data[(sy * w + reflect101Index(x + v, w)) * c + k];
          }
        }
        out.data[(y * w + x) * c + k] = s;
      }
    }
  }
  return out;
}
