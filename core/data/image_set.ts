/**
 * The built-in image set: a synthetic, class-structured stand-in for Tiny ImageNet, for tests and
 * the demo. A class is an object **shape** carrying an oriented **surface texture** (a grating of
 * one orientation and spatial frequency), pasted onto a 1/f-noise background with random position,
 * scale, rotation, contrast polarity, contrast and brightness. Images are 64x64 gray (any size
 * works), any number of classes and images per class, and seeded: the same seed gives the same
 * pixels, and the same bytes on disk.
 *
 * Why it is learnable by a CNN but not by a linear read-out of pixels: the grating's phase, the
 * object's position and the sign of its luminance offset are random, so every class has the same
 * mean image (mid-gray plus noise) and no pixel or linear combination of pixels tells classes
 * apart; the class lives in local oriented energy (texture orientation and frequency) and in the
 * object's outline, which oriented filters followed by rectification and pooling (a CNN's first
 * layers, or the probe in `image_set_probe.ts`) pick up easily. `image_set_test.ts` checks both.
 *
 * ## Class definitions
 * Class `c` of `n` gets shape `SHAPES[c % 10]` and texture `c % K`, where `K = n` for `n <= 10`
 * and otherwise the smallest of 11, 13, 17, 19, 21, 23, ... (coprime to 10) with `10 * K >= n`, so
 * every class has a distinct (shape, texture) pair and, for up to 10 classes, a distinct texture.
 * Texture `t` of `K`: with `F` frequencies (1 if `K <= 4`, 2 if `K <= 12`, else 3) and
 * `O = ceil(K / F)` orientations, orientation `(t % O) * 180 / O` degrees and frequency
 * `FREQUENCIES[F][floor(t / O)]` cycles per pixel (at 64 px; scaled by 64 / size otherwise).
 * With 10 classes: disk 0 deg 0.09, square 36 deg 0.09, triangle 72 deg 0.09, ring 108 deg 0.09,
 * cross 144 deg 0.09, star 0 deg 0.18, bar 36 deg 0.18, ellipse 72 deg 0.18, hexagon 108 deg 0.18,
 * crescent 144 deg 0.18 (`imageSetClasses(10)` lists them).
 *
 * ## One image
 * Background: 1/f (pink) noise, RMS 0.12. Object: radius 0.20..0.34 of the image, rotation
 * uniform over 360 deg, centre uniform within `size/2 - 0.85 * radius` of the middle, luminance
 * offset +-(0.06..0.16) (random sign), grating amplitude 0.16..0.24 at the class orientation
 * (+-min(8, spacing/4) deg) and frequency (x 0.9..1.1), random phase, plus pink noise of RMS 0.06.
 * The whole image is then scaled by a contrast of 0.5..1 around a brightness of 0.3..0.7 (in [0, 1]
 * units), clipped, and rounded to uint8. Edges are anti-aliased with 2x2 supersampling.
 *
 * ## On disk
 * `writeImageSet` writes the Tiny ImageNet layout (`wnids.txt`, `words.txt`,
 * `train/<wnid>/images/<wnid>_<i>.JPEG`, `train/<wnid>/<wnid>_boxes.txt`, `val/images/val_<k>.JPEG`,
 * `val/val_annotations.txt` with the object's bounding box) plus `image_set.json` (the options and
 * class list), so `loadTinyImageNet` reads it like the real thing.
 *
 * @example
 * ```ts
 * import { generateImageSet } from "./image_set.ts";
 *
 * const set = generateImageSet({ classes: 4, perClass: 2, seed: 1 });
 * console.log(set.images.shape, set.labels.data); // [ 8, 64, 64 ] Int32Array(8) [ 0, 0, 1, 1, 2, 2, 3, 3 ]
 * ```
 * @module
 */

import { CoreError } from "../errors.ts";
import { encodeJpeg } from "../io/image.ts";
import { fft2d } from "../fft.ts";
import { Rng } from "../random.ts";
import type { LabelledImages } from "./tiny_imagenet.ts";

/**
 * The object shapes, in class order (class `c` has shape `SHAPES[c % SHAPES.length]`).
 *
 * @example
 * ```ts
 * import { SHAPES } from "./image_set.ts";
 * console.log(SHAPES.length, SHAPES[0]); // 10 "disk"
 * ```
 */
export const SHAPES = [
  "disk",
  "square",
  "triangle",
  "ring",
  "cross",
  "star",
  "bar",
  "ellipse",
  "hexagon",
  "crescent",
] as const;

/**
 * One of {@linkcode SHAPES}.
 *
 * @example
 * ```ts
 * import type { ShapeName } from "./image_set.ts";
 * const s: ShapeName = "ring";
 * console.log(s); // "ring"
 * ```
 */
export type ShapeName = typeof SHAPES[number];

/** Texture frequencies in cycles per pixel at 64 px, by number of frequency levels. */
const FREQUENCIES: Record<number, number[]> = { 1: [0.125], 2: [0.09, 0.18], 3: [0.07, 0.12, 0.2] };

/**
 * One class of the built-in image set.
 *
 * @example
 * ```ts
 * import { imageSetClasses } from "./image_set.ts";
 * const [c0] = imageSetClasses(3);
 * console.log(c0.wnid, c0.shape); // "n90000000" "disk"
 * ```
 */
export interface ImageSetClass {
  /** Position in the class list (= label). */
  index: number;
  /** A WordNet-like id, `n9` + 7 digits, used as the folder name on disk. */
  wnid: string;
  /** The object's outline. */
  shape: ShapeName;
  /**
   * The grating's orientation: direction of its wave vector in degrees, counter-clockwise from
   * the +x axis with y pointing up (0 = vertical stripes, 90 = horizontal stripes).
   */
  orientationDeg: number;
  /** The grating's spatial frequency in cycles per pixel at 64 px. */
  frequency: number;
  /** The largest orientation jitter in degrees (half of it is at most a quarter of the spacing). */
  jitterDeg: number;
  /** A readable description, written to `words.txt`. */
  name: string;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The class definitions for an image set of `n` classes (see the module doc for the rule).
 *
 * @example
 * ```ts
 * import { imageSetClasses } from "./image_set.ts";
 * for (const c of imageSetClasses(3)) console.log(c.name);
 * // disk, 0 deg grating, 0.125 c/px
 * // square, 60 deg grating, 0.125 c/px
 * // triangle, 120 deg grating, 0.125 c/px
 * ```
 */
export function imageSetClasses(n: number): ImageSetClass[] {
  if (!Number.isSafeInteger(n) || n < 1 || n > 10000) {
    throw CoreError.invalidArgument(`image set: classes is ${n}; expected an integer 1..10000`);
  }
  const S = SHAPES.length;
  let K = n;
  if (n > S) {
    K = Math.max(S + 1, Math.ceil(n / S));
    while (gcd(K, S) !== 1) K++;
  }
  const F = K <= 4 ? 1 : K <= 12 ? 2 : 3;
  const O = Math.ceil(K / F);
  const spacing = 180 / O;
  const jitterDeg = Math.min(8, spacing / 4);
  const out: ImageSetClass[] = [];
  for (let c = 0; c < n; c++) {
    const t = c % K;
    const orientationDeg = Math.round((t % O) * spacing * 1000) / 1000;
    const frequency = FREQUENCIES[F][Math.floor(t / O)];
    const shape = SHAPES[c % S];
    out.push({
      index: c,
      wnid: `n9${String(c).padStart(7, "0")}`,
      shape,
      orientationDeg,
      frequency,
      jitterDeg,
      name: `${shape}, ${orientationDeg} deg grating, ${frequency} c/px`,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shapes: inside tests in the object's frame (radius 1).

function regularPolygon(k: number, r: number, phase: number): number[] {
  const pts: number[] = [];
  for (let i = 0; i < k; i++) {
    const a = phase + (2 * Math.PI * i) / k;
    pts.push(r * Math.cos(a), r * Math.sin(a));
  }
  return pts;
}

function starPolygon(points: number, outer: number, inner: number): number[] {
  const pts: number[] = [];
  for (let i = 0; i < 2 * points; i++) {
    const a = Math.PI / 2 + (Math.PI * i) / points;
    const r = i % 2 === 0 ? outer : inner;
    pts.push(r * Math.cos(a), r * Math.sin(a));
  }
  return pts;
}

const TRIANGLE = regularPolygon(3, 1, Math.PI / 2);
const HEXAGON = regularPolygon(6, 0.95, 0);
const STAR = starPolygon(5, 1, 0.45);

/** Crossing-number point-in-polygon test. */
function inPolygon(poly: number[], x: number, y: number): boolean {
  let inside = false;
  const n = poly.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = poly[2 * i], yi = poly[2 * i + 1];
    const xj = poly[2 * j], yj = poly[2 * j + 1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function insideShape(shape: ShapeName, x: number, y: number): boolean {
  const r2 = x * x + y * y;
  switch (shape) {
    case "disk":
      return r2 <= 1;
    case "square":
      return Math.abs(x) <= 0.8 && Math.abs(y) <= 0.8;
    case "triangle":
      return inPolygon(TRIANGLE, x, y);
    case "ring":
      return r2 <= 1 && r2 >= 0.55 * 0.55;
    case "cross":
      return (Math.abs(x) <= 0.3 && Math.abs(y) <= 1) || (Math.abs(y) <= 0.3 && Math.abs(x) <= 1);
    case "star":
      return inPolygon(STAR, x, y);
    case "bar":
      return Math.abs(x) <= 1 && Math.abs(y) <= 0.3;
    case "ellipse":
      return x * x + (y * y) / (0.55 * 0.55) <= 1;
    case "hexagon":
      return inPolygon(HEXAGON, x, y);
    case "crescent":
      return r2 <= 1 && (x - 0.45) * (x - 0.45) + y * y > 0.8 * 0.8;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

/**
 * Pink (1/f amplitude) noise on a `size` x `size` grid, zero mean, unit standard deviation.
 *
 * @example
 * ```ts
 * import { pinkNoise } from "./image_set.ts";
 * import { Rng } from "../random.ts";
 * const z = pinkNoise(Rng.from(3), 64);
 * console.log(z.length); // 4096
 * ```
 */
export function pinkNoise(rng: Rng, size: number): Float64Array {
  let n = 1;
  while (n < size) n <<= 1;
  const re = new Float64Array(n * n);
  const im = new Float64Array(n * n);
  for (let ky = 0; ky < n; ky++) {
    const fy = ky <= n / 2 ? ky : ky - n;
    for (let kx = 0; kx < n; kx++) {
      const fx = kx <= n / 2 ? kx : kx - n;
      const f = Math.hypot(fx, fy);
      const a = f === 0 ? 0 : 1 / f;
      re[ky * n + kx] = a * rng.normal();
      im[ky * n + kx] = a * rng.normal();
    }
  }
  fft2d(re, im, n, true);
  const out = new Float64Array(size * size);
  let sum = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) sum += out[y * size + x] = re[y * n + x];
  }
  const mean = sum / out.length;
  let ss = 0;
  for (let i = 0; i < out.length; i++) ss += (out[i] -= mean) ** 2;
  const sd = Math.sqrt(ss / out.length) || 1;
  for (let i = 0; i < out.length; i++) out[i] /= sd;
  return out;
}

/**
 * One rendered image: `size * size` gray bytes and the object's bounding box
 * `[x0, y0, x1, y1]` (inclusive pixel coordinates, as in Tiny ImageNet's annotations).
 *
 * @example
 * ```ts
 * import { imageSetClasses, renderImage } from "./image_set.ts";
 * import { Rng } from "../random.ts";
 * const img = renderImage(imageSetClasses(2)[1], Rng.from(0));
 * console.log(img.pixels.length, img.bbox.length); // 4096 4
 * ```
 */
export interface RenderedImage {
  /** Row-major gray pixels. */
  pixels: Uint8Array;
  /** The object's bounding box, clamped to the image. */
  bbox: [number, number, number, number];
}

/**
 * Renders one image of class `def` from the stream `rng` (see the module doc for the recipe).
 *
 * @example
 * ```ts
 * import { imageSetClasses, renderImage } from "./image_set.ts";
 * import { Rng } from "../random.ts";
 * const def = imageSetClasses(10)[3];
 * const a = renderImage(def, Rng.from(5, "train", 3, 0));
 * const b = renderImage(def, Rng.from(5, "train", 3, 0));
 * console.log(a.pixels.every((v, i) => v === b.pixels[i])); // true
 * ```
 */
export function renderImage(def: ImageSetClass, rng: Rng, size = 64): RenderedImage {
  const noise = pinkNoise(rng.fork("background"), size);
  const inner = pinkNoise(rng.fork("surface"), size);
  const brightness = rng.uniform(0.3, 0.7);
  const contrast = rng.uniform(0.5, 1);
  const radius = rng.uniform(0.2, 0.34) * size;
  const rot = rng.uniform(0, 2 * Math.PI);
  const margin = Math.max(0, size / 2 - 0.85 * radius);
  const cx = (size - 1) / 2 + rng.uniform(-margin, margin);
  const cy = (size - 1) / 2 + rng.uniform(-margin, margin);
  const offset = (rng.next() & 1 ? 1 : -1) * rng.uniform(0.06, 0.16);
  const amp = rng.uniform(0.16, 0.24);
  const theta = ((def.orientationDeg + rng.uniform(-def.jitterDeg, def.jitterDeg)) * Math.PI) /
    180;
  const freq = (def.frequency * rng.uniform(0.9, 1.1) * 64) / size;
  const phase = rng.uniform(0, 2 * Math.PI);

  const cosR = Math.cos(rot) / radius;
  const sinR = Math.sin(rot) / radius;
  const kx = 2 * Math.PI * freq * Math.cos(theta);
  const ky = -2 * Math.PI * freq * Math.sin(theta); // y points down in the image
  const pixels = new Uint8Array(size * size);
  let x0 = size, y0 = size, x1 = -1, y1 = -1;
  const SUB = [-0.25, 0.25];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let m = 0;
      for (const sy of SUB) {
        for (const sx of SUB) {
          const dx = x + sx - cx;
          const dy = y + sy - cy;
          const u = dx * cosR + dy * sinR;
          const v = -dx * sinR + dy * cosR;
          if (insideShape(def.shape, u, v)) m += 0.25;
        }
      }
      const i = y * size + x;
      const surface = offset + amp * Math.cos(kx * x + ky * y + phase) + 0.06 * inner[i];
      const value = brightness + contrast * ((1 - m) * 0.12 * noise[i] + m * surface);
      pixels[i] = Math.min(255, Math.max(0, Math.round(value * 255)));
      if (m >= 0.5) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) {
    const c = Math.min(size - 1, Math.max(0, Math.round(cx)));
    const r = Math.min(size - 1, Math.max(0, Math.round(cy)));
    [x0, y0, x1, y1] = [c, r, c, r];
  }
  return { pixels, bbox: [x0, y0, x1, y1] };
}

// ---------------------------------------------------------------------------------------------
// In memory.

/**
 * Options for {@linkcode generateImageSet}.
 *
 * @example
 * ```ts
 * import type { GenerateImageSetOptions } from "./image_set.ts";
 * const o: GenerateImageSetOptions = { classes: 10, perClass: 50, seed: 0, split: "val" };
 * console.log(o.split); // "val"
 * ```
 */
export interface GenerateImageSetOptions {
  /** Number of classes (1..10000). */
  classes: number;
  /** Images per class (>= 0). */
  perClass: number;
  /** Seed (a safe integer; default 0). */
  seed?: number;
  /** Which split's images (different streams): `"train"` (default) or `"val"`. */
  split?: "train" | "val";
  /** Image side in pixels (default 64). */
  size?: number;
  /** Index of the first image of each class (default 0): `perClass` images from there on. */
  start?: number;
}

/**
 * An in-memory image set: packed images, labels, and the class definitions.
 *
 * @example
 * ```ts
 * import { generateImageSet } from "./image_set.ts";
 * const s = generateImageSet({ classes: 2, perClass: 1 });
 * console.log(s.classes.map((c) => c.shape)); // [ "disk", "square" ]
 * ```
 */
export interface ImageSet extends LabelledImages {
  /** The class definitions, label order. */
  classes: ImageSetClass[];
  /** Bounding boxes `[x0, y0, x1, y1]` per image. */
  bboxes: Int32Array;
}

function checkCount(name: string, v: unknown, min: number): number {
  if (!Number.isSafeInteger(v) || (v as number) < min) {
    throw CoreError.invalidArgument(
      `image set: ${name} is ${JSON.stringify(v)}; expected an integer >= ${min}`,
    );
  }
  return v as number;
}

function checkSeed(seed: unknown): number {
  if (!Number.isSafeInteger(seed)) {
    throw CoreError.invalidArgument(
      `image set: seed is ${JSON.stringify(seed)}; expected a safe integer`,
    );
  }
  return seed as number;
}

/**
 * Image `index` of class `label` in `split`: the same pixels `writeImageSet` stores as JPEG.
 *
 * @example
 * ```ts
 * import { imageSetClasses, imageSetImage } from "./image_set.ts";
 * const img = imageSetImage(imageSetClasses(5), 0, "train", 2, 7);
 * console.log(img.pixels.length); // 4096
 * ```
 */
export function imageSetImage(
  classes: ImageSetClass[],
  seed: number,
  split: "train" | "val",
  label: number,
  index: number,
  size = 64,
): RenderedImage {
  return renderImage(classes[label], Rng.from(seed, "image-set", split, label, index), size);
}

/**
 * Generates `perClass` images of each of `classes` classes in memory, class-major
 * (labels 0,0,...,1,1,...). Train and val use different streams; the result equals, pixel for
 * pixel, what {@linkcode writeImageSet} encodes as JPEG with the same seed.
 *
 * @example
 * ```ts
 * import { generateImageSet } from "./image_set.ts";
 * const a = generateImageSet({ classes: 3, perClass: 2, seed: 9 });
 * const b = generateImageSet({ classes: 3, perClass: 2, seed: 9 });
 * console.log(a.images.data.every((v, i) => v === b.images.data[i])); // true
 * ```
 */
export function generateImageSet(options: GenerateImageSetOptions): ImageSet {
  const nClasses = checkCount("classes", options.classes, 1);
  const perClass = checkCount("perClass", options.perClass, 0);
  const seed = checkSeed(options.seed ?? 0);
  const size = checkCount("size", options.size ?? 64, 8);
  const start = checkCount("start", options.start ?? 0, 0);
  const split = options.split ?? "train";
  if (split !== "train" && split !== "val") {
    throw CoreError.invalidArgument(
      `image set: split is ${JSON.stringify(split)}; expected "train" or "val"`,
    );
  }
  const classes = imageSetClasses(nClasses);
  const n = nClasses * perClass;
  const images = new Uint8Array(n * size * size);
  const labels = new Int32Array(n);
  const bboxes = new Int32Array(n * 4);
  let k = 0;
  for (let c = 0; c < nClasses; c++) {
    for (let i = 0; i < perClass; i++, k++) {
      const img = imageSetImage(classes, seed, split, c, start + i, size);
      images.set(img.pixels, k * size * size);
      labels[k] = c;
      bboxes.set(img.bbox, 4 * k);
    }
  }
  return {
    images: { dtype: "uint8", shape: [n, size, size], data: images },
    labels: { dtype: "int32", shape: [n], data: labels },
    classes,
    bboxes,
  };
}

// ---------------------------------------------------------------------------------------------
// On disk.

/**
 * Options for {@linkcode writeImageSet}.
 *
 * @example
 * ```ts
 * import type { WriteImageSetOptions } from "./image_set.ts";
 * const o: WriteImageSetOptions = { classes: 10, trainPerClass: 500, valPerClass: 50, seed: 1 };
 * console.log(o.classes); // 10
 * ```
 */
export interface WriteImageSetOptions {
  /** Number of classes (1..10000). */
  classes: number;
  /** Training images per class (Tiny ImageNet: 500). */
  trainPerClass: number;
  /** Validation images per class, written to `val/` (Tiny ImageNet: 50). */
  valPerClass: number;
  /** Seed (default 0). */
  seed?: number;
  /** Image side (default 64). */
  size?: number;
  /** JPEG quality 1..100 (default 90). */
  jpegQuality?: number;
}

/**
 * What {@linkcode writeImageSet} wrote.
 *
 * @example
 * ```ts
 * import type { ImageSetSummary } from "./image_set.ts";
 * const s: ImageSetSummary = { root: "/tmp/x", classes: [], train: 0, val: 0 };
 * console.log(s.train); // 0
 * ```
 */
export interface ImageSetSummary {
  /** The folder. */
  root: string;
  /** The class definitions (label order = `wnids.txt` order). */
  classes: ImageSetClass[];
  /** Number of training images. */
  train: number;
  /** Number of validation images. */
  val: number;
}

/**
 * Writes an image set in the Tiny ImageNet layout under `root` (created if missing; existing files
 * of the same names are overwritten). Same options, same bytes.
 *
 * @example
 * ```ts
 * import { writeImageSet } from "./image_set.ts";
 * const root = await Deno.makeTempDir();
 * const s = await writeImageSet(root, { classes: 2, trainPerClass: 3, valPerClass: 1, seed: 4 });
 * console.log(s.train, s.val); // 6 2
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function writeImageSet(
  root: string,
  options: WriteImageSetOptions,
): Promise<ImageSetSummary> {
  const nClasses = checkCount("classes", options.classes, 1);
  const trainPer = checkCount("trainPerClass", options.trainPerClass, 0);
  const valPer = checkCount("valPerClass", options.valPerClass, 0);
  const seed = checkSeed(options.seed ?? 0);
  const size = checkCount("size", options.size ?? 64, 8);
  const quality = options.jpegQuality ?? 90;
  const classes = imageSetClasses(nClasses);
  const enc = new TextEncoder();
  const jpeg = (pixels: Uint8Array) =>
    encodeJpeg({ width: size, height: size, channels: 1, data: pixels }, quality);

  await Deno.mkdir(`${root}/val/images`, { recursive: true });
  await Deno.writeTextFile(`${root}/wnids.txt`, classes.map((c) => c.wnid).join("\n") + "\n");
  await Deno.writeTextFile(
    `${root}/words.txt`,
    classes.map((c) => `${c.wnid}\t${c.name}`).join("\n") + "\n",
  );
  await Deno.writeTextFile(
    `${root}/image_set.json`,
    JSON.stringify(
      { generator: "cotrain image set", seed, size, jpegQuality: quality, classes },
      null,
      1,
    ) + "\n",
  );

  for (const c of classes) {
    const dir = `${root}/train/${c.wnid}`;
    await Deno.mkdir(`${dir}/images`, { recursive: true });
    const boxes: string[] = [];
    const writes: Promise<void>[] = [];
    for (let i = 0; i < trainPer; i++) {
      const img = imageSetImage(classes, seed, "train", c.index, i, size);
      const file = `${c.wnid}_${i}.JPEG`;
      boxes.push(`${file}\t${img.bbox.join("\t")}`);
      writes.push(Deno.writeFile(`${dir}/images/${file}`, jpeg(img.pixels)));
      if (writes.length >= 64) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await Deno.writeFile(
      `${dir}/${c.wnid}_boxes.txt`,
      enc.encode(boxes.map((b) => b + "\n").join("")),
    );
  }

  // Validation images are numbered in a seeded shuffled order, as Tiny ImageNet's are mixed.
  const order = Int32Array.from({ length: nClasses * valPer }, (_, k) => k);
  Rng.from(seed, "image-set", "val-order").shuffle(order);
  const lines: string[] = new Array(order.length);
  const writes: Promise<void>[] = [];
  for (let k = 0; k < order.length; k++) {
    const label = Math.floor(order[k] / valPer);
    const i = order[k] % valPer;
    const img = imageSetImage(classes, seed, "val", label, i, size);
    const file = `val_${k}.JPEG`;
    lines[k] = `${file}\t${classes[label].wnid}\t${img.bbox.join("\t")}\n`;
    writes.push(Deno.writeFile(`${root}/val/images/${file}`, jpeg(img.pixels)));
    if (writes.length >= 64) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  await Deno.writeTextFile(`${root}/val/val_annotations.txt`, lines.join(""));
  return { root, classes, train: nClasses * trainPer, val: nClasses * valPer };
}
