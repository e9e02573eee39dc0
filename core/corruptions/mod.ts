/**
 * Image corruptions of ImageNet-C (15) and its 4 extra ones, 5 severities, two parameter presets
 * (`imagecorruptions`, the paper's; `tiny-imagenet-c`), seeded per (seed, image index, corruption,
 * severity). Faithful in distribution to bethgelab/imagecorruptions; see the README's
 * "Corruptions" section for where cotrain deliberately differs (frost textures, seeding, JPEG
 * chroma subsampling).
 *
 * @example
 * ```ts
 * import { corruptBatch, PAPER_14 } from "./mod.ts";
 * const images = { dtype: "uint8" as const, shape: [1, 64, 64], data: new Uint8Array(64 * 64).fill(100) };
 * for (const corruption of PAPER_14) {
 *   corruptBatch(images, { corruption, severity: 5, seed: 1 });
 * }
 * ```
 * @module
 */
export {
  checkBatch,
  checkOptions,
  corruptBatch,
  corruptImage,
  type CorruptOptions,
  type ImageBatch,
  MIN_SIDE,
} from "./corrupt.ts";
export {
  type CorruptionName,
  CORRUPTIONS,
  GROUPS,
  PAPER_14,
  paramsOf,
  PRESET_NAMES,
  type PresetName,
  PRESETS,
  type PresetTable,
  zoomFactors,
} from "./presets.ts";
export { type Img, newImage } from "./image.ts";
export { Rng, streamFor } from "./rng.ts";
