/**
 * Defocus blur: the reference's anti-aliased disk kernel (a binary disk, normalised, blurred by a
 * 3x3 or 5x5 Gaussian with OpenCV's BORDER_REFLECT_101 inside the kernel array) applied like
 * `cv2.filter2D` (correlation, BORDER_REFLECT_101).
 *
 * A 21x21 kernel applied directly costs 441 multiply-adds per value; here it is split exactly as
 * disk, then Gaussian, plus a sparse correction for where the kernel array cut the blurred disk:
 * the disk part is a sum of row runs (two prefix-sum reads per kernel row), the Gaussian is
 * separable, and the correction has a few dozen taps at most.
 *
 * @example
 * ```ts
 * import { defocusKernel } from "./defocus.ts";
 * const k = defocusKernel(3, 0.1);
 * console.log(k.size, Math.abs(k.weights.reduce((a, b) => a + b, 0) - 1) < 1e-6); // 17 true
 * ```
 * @module
 */
import { type Img, newImage, reflect101Index } from "./image.ts";

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
  /** Sparse correction taps: dy, dx, weight. */
  cy: Int32Array;
  cx: Int32Array;
  cw: Float64Array;
}

const plans = new Map<string, Plan>();

function planFor(radius: number, aliasBlur: number): Plan {
  const key = `${radius}/${aliasBlur}`;
  let p = plans.get(key);
  if (p) return p;
  const { size, weights } = defocusKernel(radius, aliasBlur);
  const R = (size - 1) >> 1;
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
  // (G * D) in full, on [-(R+gr), R+gr]^2, and the correction K - (G * D).
  const P = R + gr;
  const n = 2 * P + 1;
  const gd = new Float64Array(n * n);
  for (let y = -r; y <= r; y++) {
    const a = halfWidth[y + r];
    for (let x = -a; x <= a; x++) {
      for (let ty = -gr; ty <= gr; ty++) {
        for (let tx = -gr; tx <= gr; tx++) {
          gd[(y + ty + P) * n + (x + tx + P)] += gauss[ty + gr] * gauss[tx + gr] / count;
        }
      }
    }
  }
  const cy: number[] = [], cx: number[] = [], cw: number[] = [];
  for (let y = -P; y <= P; y++) {
    for (let x = -P; x <= P; x++) {
      const k = Math.abs(y) <= R && Math.abs(x) <= R ? weights[(y + R) * size + x + R] : 0;
      const d = k - gd[(y + P) * n + x + P];
      if (Math.abs(d) > 1e-12) {
        cy.push(y);
        cx.push(x);
        cw.push(d);
      }
    }
  }
  p = {
    radius: r,
    halfWidth,
    count,
    gauss,
    pad: P,
    cy: Int32Array.from(cy),
    cx: Int32Array.from(cx),
    cw: Float64Array.from(cw),
  };
  plans.set(key, p);
  return p;
}

/** Scratch buffers, grown on demand and reused between calls (one image at a time). */
let scratch = new Float64Array(0);
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(n);
  return scratch;
}

/** `cv2.filter2D(img, -1, disk(radius, aliasBlur))` per channel, BORDER_REFLECT_101. */
export function defocusFilter(img: Img, radius: number, aliasBlur: number): Img {
  const { h, w, c } = img;
  const p = planFor(radius, aliasBlur);
  const P = p.pad;
  const g = p.gauss;
  const gl = g.length;
  const gr = (gl - 1) >> 1;
  // A Gaussian whose side weights vanish next to 1 (alias blur 0.1: ~2e-22) is the identity.
  const identity = gl === 3 && g[0] < 1e-18;
  const ph = h + 2 * P, pw = w + 2 * P, sw = pw + 1;
  const eh = h + 2 * gr, ew = w + 2 * gr;
  const nPl = ph * pw, nSm = ph * sw, nA = eh * ew, nB = eh * w, nO = h * w;
  const buf = scratchOf(nPl + nSm + nA + nB + nO);
  const pl = buf.subarray(0, nPl);
  const sm = buf.subarray(nPl, nPl + nSm);
  const a = buf.subarray(nPl + nSm, nPl + nSm + nA);
  const b = buf.subarray(nPl + nSm + nA, nPl + nSm + nA + nB);
  const o = buf.subarray(nPl + nSm + nA + nB, nPl + nSm + nA + nB + nO);
  const ys = new Int32Array(ph), xs = new Int32Array(pw);
  for (let y = 0; y < ph; y++) ys[y] = reflect101Index(y - P, h);
  for (let x = 0; x < pw; x++) xs[x] = reflect101Index(x - P, w) * c;
  const src = img.data;
  const out = newImage(h, w, c);
  const d = out.data;
  const r = p.radius;
  const hwOf = p.halfWidth;
  const inv = 1 / p.count;
  const cy = p.cy, cx = p.cx, cw = p.cw, nc = cw.length;
  for (let k = 0; k < c; k++) {
    // Padded plane and its row prefix sums.
    for (let y = 0; y < ph; y++) {
      const srow = ys[y] * w * c + k;
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
    // Disk sums on the image extended by gr on every side.
    a.fill(0);
    for (let dy = -r; dy <= r; dy++) {
      const hw = hwOf[dy + r];
      if (hw < 0) continue;
      for (let y = 0; y < eh; y++) {
        const so = (y - gr + dy + P) * sw + P - gr;
        const hi = so + hw + 1, lo = so - hw;
        const ao = y * ew;
        for (let x = 0; x < ew; x++) a[ao + x] += sm[hi + x] - sm[lo + x];
      }
    }
    // Separable Gaussian (columns of the kernel, then rows), scaled by 1 / count.
    if (identity) {
      for (let y = 0; y < h; y++) {
        const ao = (y + gr) * ew + gr, oo = y * w;
        for (let x = 0; x < w; x++) o[oo + x] = a[ao + x] * inv;
      }
    } else {
      for (let y = 0; y < eh; y++) {
        const ao = y * ew, bo = y * w;
        if (gl === 3) {
          const g0 = g[0], g1 = g[1], g2 = g[2];
          for (let x = 0; x < w; x++) {
            b[bo + x] = g0 * a[ao + x] + g1 * a[ao + x + 1] + g2 * a[ao + x + 2];
          }
        } else {
          for (let x = 0; x < w; x++) {
            let s = 0;
            for (let t = 0; t < gl; t++) s += g[t] * a[ao + x + t];
            b[bo + x] = s;
          }
        }
      }
      for (let y = 0; y < h; y++) {
        const oo = y * w;
        for (let x = 0; x < w; x++) o[oo + x] = 0;
        for (let t = 0; t < gl; t++) {
          const gt = g[t] * inv, bo = (y + t) * w;
          for (let x = 0; x < w; x++) o[oo + x] += gt * b[bo + x];
        }
      }
    }
    // Sparse correction where the kernel array cut the blurred disk.
    for (let j = 0; j < nc; j++) {
      const wt = cw[j], off = (P + cy[j]) * pw + P + cx[j];
      for (let y = 0; y < h; y++) {
        const oo = y * w, po = off + y * pw;
        for (let x = 0; x < w; x++) o[oo + x] += wt * pl[po + x];
      }
    }
    for (let i = 0, q = k; i < nO; i++, q += c) d[q] = o[i];
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
