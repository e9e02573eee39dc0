/**
 * Procedural frost. The reference blends a random crop of one of five frost photographs that ship
 * with its package; those photographs cannot ship with cotrain, so cotrain synthesises a texture
 * with the same first-order statistics: one of five "plates" (picked uniformly, like the
 * reference's five files), each with the mean colour and the crop-to-crop contrast measured on
 * the corresponding photograph (64x64 crops: mean RGB, standard deviation within a crop, and
 * spread of crop means), and a structure of ice crystals: straight needles with side branches at
 * +-60 degrees (dendrites), drawn anti-aliased and softened, over a multi-octave value-noise
 * haze. The result is bright, bluish-white and high-frequency like the photographs, but it is not
 * them: PSNR and SSIM to the clean image follow the reference closely on average (see
 * test/corruption_fidelity_test.ts), individual images do not.
 *
 * @example
 * ```ts
 * import { frostTexture } from "./frost.ts";
 * import { streamFor } from "./rng.ts";
 * const t = frostTexture(64, 64, streamFor(1, 0, 8, 1));
 * console.log(t.length); // 12288 (RGB, 0..255)
 * ```
 * @module
 */
import type { Rng } from "./rng.ts";

/** Statistics measured on the reference's five frost photographs (64x64 crops, 0..255). */
export const FROST_PLATES = [
  { rgb: [77.7, 149.1, 165.7], sd: 11.8, meanSd: 14.1, roughness: 0.63 },
  { rgb: [200.8, 205.4, 214.5], sd: 15.2, meanSd: 11.9, roughness: 0.53 },
  { rgb: [200.8, 205.4, 214.5], sd: 15.2, meanSd: 11.9, roughness: 0.53 },
  { rgb: [137.6, 152.8, 165.2], sd: 21.4, meanSd: 17.5, roughness: 0.64 },
  { rgb: [112.4, 123.4, 134.8], sd: 32.1, meanSd: 19.7, roughness: 0.55 },
] as const;

/** Bilinear value noise with a lattice step of `cell` pixels, zero mean-ish, in [-1, 1]. */
function valueNoise(h: number, w: number, cell: number, rng: Rng, out: Float64Array, amp: number) {
  const gh = Math.ceil(h / cell) + 2, gw = Math.ceil(w / cell) + 2;
  const g = new Float64Array(gh * gw);
  for (let i = 0; i < g.length; i++) g[i] = rng.uniform() * 2 - 1;
  const oy = rng.uniform() * cell, ox = rng.uniform() * cell;
  // Column lattice indices and smoothstep weights once per column (the same values per row).
  const ixs = new Int32Array(w), sxs = new Float64Array(w);
  for (let x = 0; x < w; x++) {
    const fx = (x + ox) / cell;
    const ix = Math.floor(fx), tx = fx - ix;
    ixs[x] = ix;
    sxs[x] = tx * tx * (3 - 2 * tx);
  }
  for (let y = 0; y < h; y++) {
    const fy = (y + oy) / cell;
    const iy = Math.floor(fy), ty = fy - iy;
    const sy = ty * ty * (3 - 2 * ty);
    const r0 = iy * gw, r1 = r0 + gw, o = y * w;
    for (let x = 0; x < w; x++) {
      const ix = ixs[x], sx = sxs[x];
      const a = g[r0 + ix], b = g[r0 + ix + 1];
      const c = g[r1 + ix], d = g[r1 + ix + 1];
      out[o + x] += amp * ((a * (1 - sx) + b * sx) * (1 - sy) + (c * (1 - sx) + d * sx) * sy);
    }
  }
}

/** Adds an anti-aliased line of brightness `v` (splatting 2x2 bilinear weights per step). */
function needle(
  f: Float64Array,
  h: number,
  w: number,
  y0: number,
  x0: number,
  angle: number,
  len: number,
  v: number,
) {
  const dy = Math.sin(angle), dx = Math.cos(angle);
  for (let t = 0; t <= len; t += 0.5) {
    const y = y0 + dy * t, x = x0 + dx * t;
    const iy = Math.floor(y), ix = Math.floor(x);
    const fy = y - iy, fx = x - ix;
    const fade = v * (1 - 0.6 * t / (len + 1));
    for (let a = 0; a < 2; a++) {
      const yy = iy + a;
      if (yy < 0 || yy >= h) continue;
      const wy = a ? fy : 1 - fy;
      for (let b = 0; b < 2; b++) {
        const xx = ix + b;
        if (xx < 0 || xx >= w) continue;
        f[yy * w + xx] += fade * wy * (b ? fx : 1 - fx);
      }
    }
  }
}

/**
 * A frost texture of h x w RGB pixels in 0..255 (interleaved), like a random crop of one of the
 * reference's photographs.
 */
export function frostTexture(h: number, w: number, rng: Rng): Float64Array {
  const plate = FROST_PLATES[Math.min(4, Math.floor(rng.uniform() * 5))];
  const n = h * w;
  const haze = new Float64Array(n);
  // Haze: three octaves of value noise, finest carrying most of the energy (photographs of frost
  // are rough at the pixel scale).
  valueNoise(h, w, 24, rng, haze, 0.6);
  valueNoise(h, w, 6, rng, haze, 0.5);
  valueNoise(h, w, 2, rng, haze, 0.35);
  // Crystals: needles with side branches, density per pixel area.
  const crystals = new Float64Array(n);
  const count = Math.max(4, Math.round(n / 90));
  for (let i = 0; i < count; i++) {
    const y = rng.uniform() * h, x = rng.uniform() * w;
    const a = rng.uniform() * Math.PI * 2;
    const len = 3 + rng.uniform() * 14;
    const v = 0.5 + rng.uniform();
    needle(crystals, h, w, y, x, a, len, v);
    const branches = Math.floor(rng.uniform() * 4);
    for (let b = 0; b < branches; b++) {
      const t = rng.uniform() * len;
      const side = rng.uniform() < 0.5 ? -1 : 1;
      needle(
        crystals,
        h,
        w,
        y + Math.sin(a) * t,
        x + Math.cos(a) * t,
        a + side * Math.PI / 3,
        len * (0.2 + 0.4 * rng.uniform()),
        v * 0.7,
      );
    }
  }
  // Standardise both layers, mix by the plate's roughness, scale to its contrast.
  const std = (f: Float64Array) => {
    let m = 0;
    for (let i = 0; i < n; i++) m += f[i];
    m /= n;
    let s = 0;
    for (let i = 0; i < n; i++) s += (f[i] - m) ** 2;
    s = Math.sqrt(s / n) || 1;
    for (let i = 0; i < n; i++) f[i] = (f[i] - m) / s;
  };
  std(haze);
  std(crystals);
  const r = plate.roughness;
  const shift = rng.normal() * plate.meanSd;
  const tint = [rng.normal() * 3, rng.normal() * 3, rng.normal() * 3];
  const out = new Float64Array(n * 3);
  const mix = Math.sqrt(r * r + (1 - r) * (1 - r));
  for (let i = 0; i < n; i++) {
    const tone = plate.sd * (r * crystals[i] + (1 - r) * haze[i]) / mix;
    for (let k = 0; k < 3; k++) {
      const v = plate.rgb[k] + shift + tint[k] + tone;
      out[3 * i + k] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}
