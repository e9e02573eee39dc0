/**
 * The corruptions as data: their names and numbers, the four groups, the paper's 14, and the
 * parameter tables of both presets (../shared/SPEC.md section 6), one row per severity 1..5.
 *
 * @example
 * ```ts
 * import { PAPER_14, PRESETS } from "./presets.ts";
 * console.log(PAPER_14.length, PRESETS["imagecorruptions"].gaussian_noise[4]); // 14 0.38
 * ```
 * @module
 */

/** The 19 corruptions, in the reference's order (their number seeds the random streams). */
export const CORRUPTIONS = [
  "gaussian_noise",
  "shot_noise",
  "impulse_noise",
  "defocus_blur",
  "glass_blur",
  "motion_blur",
  "zoom_blur",
  "snow",
  "frost",
  "fog",
  "brightness",
  "contrast",
  "elastic_transform",
  "pixelate",
  "jpeg_compression",
  "speckle_noise",
  "gaussian_blur",
  "spatter",
  "saturate",
] as const;

/** One of {@linkcode CORRUPTIONS}. */
export type CorruptionName = typeof CORRUPTIONS[number];

/** The four ImageNet-C groups (the paper's categories) and the four extra (validation) ones. */
export const GROUPS: Readonly<Record<string, readonly CorruptionName[]>> = {
  noise: ["gaussian_noise", "shot_noise", "impulse_noise"],
  blur: ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"],
  weather: ["snow", "frost", "fog", "brightness"],
  digital: ["contrast", "elastic_transform", "pixelate", "jpeg_compression"],
  extra: ["speckle_noise", "gaussian_blur", "spatter", "saturate"],
};

/** The 14 corruptions of the paper's TIN-TC (the 15 ImageNet-C ones without glass_blur). */
export const PAPER_14: readonly CorruptionName[] = CORRUPTIONS.slice(0, 15).filter((c) =>
  c !== "glass_blur"
);

/** The presets. */
export const PRESET_NAMES = ["imagecorruptions", "tiny-imagenet-c"] as const;
/** One of {@linkcode PRESET_NAMES}. */
export type PresetName = typeof PRESET_NAMES[number];

/** np.arange-style zoom factors: start, stop (exclusive), step. */
export interface ZoomRange {
  start: number;
  stop: number;
  step: number;
}

/** Elastic transform, the imagecorruptions way: sizes relative to the image. */
export interface ElasticRelative {
  kind: "relative";
  /** Displacement gain. */
  alpha: number;
  /** Smoothing sigma as a fraction of each side. */
  sigmaFrac: number;
  /** Largest raw displacement as a fraction of the height. */
  maxShiftFrac: number;
}

/** Elastic transform, Hendrycks' Tiny ImageNet-C way: pixels, with a random affine first. */
export interface ElasticAffine {
  kind: "affine";
  alpha: number;
  sigma: number;
  /** Largest displacement of the three affine anchor points, in pixels. */
  affine: number;
}

/** The parameter rows of one preset: for each corruption, one entry per severity 1..5. */
export interface PresetTable {
  gaussian_noise: number[];
  shot_noise: number[];
  impulse_noise: number[];
  /** [radius, alias_blur] */
  defocus_blur: [number, number][];
  /** [sigma, max_delta, iterations] */
  glass_blur: [number, number, number][];
  /** [radius, sigma] */
  motion_blur: [number, number][];
  zoom_blur: ZoomRange[];
  /** [loc, scale, zoom, threshold, blur_radius, blur_sigma, blend] */
  snow: [number, number, number, number, number, number, number][];
  /** [image_weight, frost_weight] */
  frost: [number, number][];
  /** [strength, wibble_decay] */
  fog: [number, number][];
  brightness: number[];
  contrast: number[];
  elastic_transform: (ElasticRelative | ElasticAffine)[];
  pixelate: number[];
  /** How pixelate scales back up: "nearest" (imagecorruptions) or "box" (Tiny ImageNet-C). */
  pixelate_up: "nearest" | "box";
  jpeg_compression: number[];
  speckle_noise: number[];
  gaussian_blur: number[];
  /** [loc, scale, sigma, threshold, intensity, mode (0 water, 1 mud)] */
  spatter: [number, number, number, number, number, number][];
  /** [scale, shift] of HSV saturation */
  saturate: [number, number][];
}

const zr = (stop: number, step: number): ZoomRange => ({ start: 1, stop, step });
const rel = (m: number): ElasticRelative => ({
  kind: "relative",
  alpha: 250 * m,
  sigmaFrac: 0.01,
  maxShiftFrac: 0.005,
});
const aff = (alpha: number, sigma: number, affine: number): ElasticAffine => ({
  kind: "affine",
  alpha,
  sigma,
  affine,
});

/** Both presets' tables (SPEC.md section 6). */
export const PRESETS: Readonly<Record<PresetName, Readonly<PresetTable>>> = {
  "imagecorruptions": {
    gaussian_noise: [.08, .12, .18, .26, .38],
    shot_noise: [60, 25, 12, 5, 3],
    impulse_noise: [.03, .06, .09, .17, .27],
    defocus_blur: [[3, .1], [4, .5], [6, .5], [8, .5], [10, .5]],
    glass_blur: [[.7, 1, 2], [.9, 2, 1], [1, 2, 3], [1.1, 3, 2], [1.5, 4, 2]],
    motion_blur: [[10, 3], [15, 5], [15, 8], [15, 12], [20, 15]],
    zoom_blur: [zr(1.11, .01), zr(1.16, .01), zr(1.21, .02), zr(1.26, .02), zr(1.31, .03)],
    snow: [
      [.1, .3, 3, .5, 10, 4, .8],
      [.2, .3, 2, .5, 12, 4, .7],
      [.55, .3, 4, .9, 12, 8, .7],
      [.55, .3, 4.5, .85, 12, 8, .65],
      [.55, .3, 2.5, .85, 12, 12, .55],
    ],
    frost: [[1, .4], [.8, .6], [.7, .7], [.65, .7], [.6, .75]],
    fog: [[1.5, 2], [2, 2], [2.5, 1.7], [2.5, 1.5], [3, 1.4]],
    brightness: [.1, .2, .3, .4, .5],
    contrast: [.4, .3, .2, .1, .05],
    elastic_transform: [rel(.05), rel(.065), rel(.085), rel(.1), rel(.12)],
    pixelate: [.6, .5, .4, .3, .25],
    pixelate_up: "nearest",
    jpeg_compression: [25, 18, 15, 10, 7],
    speckle_noise: [.15, .2, .35, .45, .6],
    gaussian_blur: [1, 2, 3, 4, 6],
    spatter: [
      [.65, .3, 4, .69, .6, 0],
      [.65, .3, 3, .68, .6, 0],
      [.65, .3, 2, .68, .5, 0],
      [.65, .3, 1, .65, 1.5, 1],
      [.67, .4, 1, .65, 1.5, 1],
    ],
    saturate: [[.3, 0], [.1, 0], [2, 0], [5, .1], [20, .2]],
  },
  "tiny-imagenet-c": {
    gaussian_noise: [.04, .08, .12, .15, .18],
    shot_noise: [250, 100, 50, 30, 15],
    impulse_noise: [.01, .02, .05, .08, .14],
    defocus_blur: [[.5, .6], [1, .1], [1.5, .1], [2.5, .01], [3, .1]],
    glass_blur: [[.1, 1, 1], [.5, 1, 1], [.6, 1, 2], [.7, 2, 1], [.9, 2, 2]],
    motion_blur: [[10, 1], [10, 1.5], [10, 2], [10, 2.5], [12, 3]],
    zoom_blur: [zr(1.06, .01), zr(1.11, .01), zr(1.16, .01), zr(1.21, .01), zr(1.26, .01)],
    snow: [
      [.1, .2, 1, .6, 8, 3, .8],
      [.1, .2, 1, .5, 10, 4, .8],
      [.15, .3, 1.75, .55, 10, 4, .7],
      [.25, .3, 2.25, .6, 12, 6, .65],
      [.3, .3, 1.25, .65, 14, 12, .6],
    ],
    frost: [[1, .3], [.9, .4], [.8, .45], [.75, .5], [.7, .55]],
    fog: [[.4, 3], [.7, 3], [1, 2.5], [1.5, 2], [2, 1.75]],
    brightness: [.1, .2, .3, .4, .5],
    contrast: [.4, .3, .2, .1, .05],
    elastic_transform: [
      aff(0, 0, 5.12),
      aff(3.2, 19.2, 3.84),
      aff(6.4, 5.12, 3.84),
      aff(6.4, 1.92, 1.92),
      aff(10.24, 1.92, 1.28),
    ],
    pixelate: [.9, .8, .7, .6, .5],
    pixelate_up: "box",
    jpeg_compression: [65, 58, 50, 40, 25],
    speckle_noise: [.15, .2, .25, .3, .35],
    gaussian_blur: [.5, .75, 1, 1.25, 1.5],
    spatter: [
      [.62, .1, .7, .7, .6, 0],
      [.65, .1, .8, .7, .6, 0],
      [.65, .3, 1, .69, .6, 0],
      [.65, .1, .7, .68, .6, 1],
      [.65, .1, .5, .67, .6, 1],
    ],
    saturate: [[.3, 0], [.1, 0], [2, 0], [5, .1], [30, .2]],
  },
};

/** np.arange(start, stop, step) for floats: ceil((stop - start) / step) values start + i * step. */
export function zoomFactors(r: ZoomRange): number[] {
  const n = Math.ceil((r.stop - r.start) / r.step);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.start + i * r.step);
  return out;
}

/** The parameters of `corruption` at `severity` (1..5) in `preset`, as plain data. */
export function paramsOf(
  preset: PresetName,
  corruption: CorruptionName,
  severity: number,
): unknown {
  const row = PRESETS[preset][corruption];
  return row[severity - 1];
}
