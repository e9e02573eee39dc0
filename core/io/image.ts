/**
 * PNG and JPEG decoding and encoding to 8-bit interleaved pixels (HWC), through the npm packages
 * `fast-png` and `jpeg-js`.
 *
 * Decoding normalises every PNG to 1 (gray), 3 (RGB) or 4 (RGBA) channels of 8 bits:
 * gray stays 1 channel, gray+alpha becomes RGBA, palettes are expanded to RGB or RGBA, 1/2/4-bit
 * gray is scaled to 0..255, and **16-bit samples are scaled to 8 bits** with `round(v / 257)` (the
 * exact inverse of the usual 8-to-16-bit widening `v * 257`). A `tRNS` colour key on gray or RGB
 * images is ignored. JPEGs decode to RGB, or to 1 channel when the file has a single (gray)
 * component; CMYK/YCCK JPEGs are converted to RGB by jpeg-js.
 *
 * Every failure (corrupt or truncated data, CRC mismatch, an image over the pixel limit) is a
 * `CoreError` with code `INVALID_ARGUMENT`. Pixel and memory limits are set before decoding so a
 * forged header cannot make the decoder allocate gigabytes.
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 *
 * const png = encodePng({ width: 2, height: 1, channels: 3, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
 * const img = decodeImage(png);
 * console.log(img.width, img.height, img.channels); // 2 1 3
 * ```
 * @module
 */

import { decode as pngDecode, encode as pngEncode } from "fast-png";
import { decode as jpegDecode, encode as jpegEncode } from "jpeg-js";
import { CoreError } from "../errors.ts";
import { describe } from "./ndarray.ts";

/**
 * An 8-bit image, pixels interleaved row by row (`data[(y * width + x) * channels + c]`).
 *
 * @example
 * ```ts
 * import type { RasterImage } from "./image.ts";
 * const gray: RasterImage = { width: 3, height: 2, channels: 1, data: new Uint8Array(6) };
 * console.log(gray.data.length); // 6
 * ```
 */
export interface RasterImage {
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
  /** 1 (gray), 3 (RGB) or 4 (RGBA). */
  channels: 1 | 3 | 4;
  /** `width * height * channels` bytes. */
  data: Uint8Array;
}

/**
 * Options for the decoders.

 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng({ width: 2, height: 2, channels: 1, data: new Uint8Array(4) });
 * console.log(decodeImage(png, { maxPixels: 4096, maxMemoryMB: 64 }).width); // 2
 * ```
 */
export interface DecodeImageOptions {
  /** Largest `width * height` accepted (default 100,000,000, as jpeg-js). */
  maxPixels?: number;
  /** Memory jpeg-js may use, in MiB (default 1024). */
  maxMemoryMB?: number;
}

/**
 * The formats {@linkcode sniffImageFormat} recognises.

 * @example
 * ```ts
 * import { type ImageFormat, sniffImageFormat } from "./image.ts";
 * const format: ImageFormat | undefined = sniffImageFormat(new Uint8Array([0x89, 0x50]));
 * console.log(format); // undefined (too short to tell)
 * ```
 */
export type ImageFormat = "png" | "jpeg";

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * `"png"` or `"jpeg"` from the first bytes of `bytes`, or `undefined`.
 *
 * @example
 * ```ts
 * import { sniffImageFormat } from "./image.ts";
 * console.log(sniffImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))); // "jpeg"
 * ```
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  return undefined;
}

/**
 * Decodes a PNG or JPEG, chosen by its magic bytes.
 *
 * @example
 * ```ts
 * import { decodeImage, encodeJpeg } from "./image.ts";
 *
 * const jpeg = encodeJpeg({ width: 8, height: 8, channels: 3, data: new Uint8Array(192).fill(200) }, 90);
 * const img = decodeImage(jpeg);
 * console.log(img.channels, img.data.length); // 3 192
 * ```
 */
export function decodeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): RasterImage {
  if (!(bytes instanceof Uint8Array)) {
    throw CoreError.invalidArgument(`image: input is ${describe(bytes)}; expected a Uint8Array`);
  }
  const format = sniffImageFormat(bytes);
  if (format === "png") return decodePng(bytes, options);
  if (format === "jpeg") return decodeJpeg(bytes, options);
  const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  throw CoreError.invalidArgument(
    `image: not a PNG or JPEG (first bytes: ${head || "none"}); expected PNG or JPEG data`,
  );
}

/**
 * Decodes a PNG to 8-bit gray, RGB or RGBA (see the module doc for the conversions).
 *
 * @example
 * ```ts
 * import { decodePng, encodePng } from "./image.ts";
 *
 * const png = encodePng({ width: 1, height: 1, channels: 1, data: new Uint8Array([77]) });
 * console.log(decodePng(png).data); // Uint8Array(1) [ 77 ]
 * ```
 */
export function decodePng(bytes: Uint8Array, options: DecodeImageOptions = {}): RasterImage {
  const fail = (m: string) => CoreError.invalidArgument(`png: ${m}`);
  if (!(bytes instanceof Uint8Array) || sniffImageFormat(bytes) !== "png") {
    throw fail("data does not start with the PNG signature");
  }
  if (bytes.length < 33) {
    throw fail(`file is ${bytes.length} bytes, too short for a PNG; truncated?`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== 13 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") {
    throw fail("the first chunk is not a 13-byte IHDR; the file is corrupt");
  }
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  checkPixels("png", width, height, options.maxPixels);

  let png: ReturnType<typeof pngDecode>;
  try {
    png = pngDecode(bytes, { checkCrc: true });
  } catch (err) {
    throw fail(`corrupt or unsupported data (${messageOf(err)})`);
  }
  if (png.width !== width || png.height !== height) throw fail("image size changed while decoding");
  const n = width * height;
  const { depth, channels, palette } = png;
  const src = png.data;

  if (bytes[25] === 3 && !palette) throw fail("palette image (colour type 3) has no PLTE chunk");
  if (palette) {
    if (channels !== 1 || depth > 8 || !(src instanceof Uint8Array)) {
      throw fail(`palette image with ${channels} channels at ${depth} bits is malformed`);
    }
    const idx = unpackRows(src, width, height, depth, false);
    const outChannels = palette.some((c) => c.length === 4) ? 4 : 3;
    const data = new Uint8Array(n * outChannels);
    for (let i = 0; i < n; i++) {
      const color = palette[idx[i]];
      if (!color) throw fail(`pixel ${i} uses palette index ${idx[i]} of ${palette.length}`);
      for (let c = 0; c < outChannels; c++) data[i * outChannels + c] = color[c] ?? 255;
    }
    return { width, height, channels: outChannels, data };
  }

  let samples: Uint8Array;
  if (depth === 16) {
    if (!(src instanceof Uint16Array) || src.length !== n * channels) {
      throw fail(`16-bit data has ${src.length} samples; expected ${n * channels}`);
    }
    samples = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i++) samples[i] = Math.round(src[i] / 257);
  } else if (depth === 8) {
    if (src.length !== n * channels) {
      throw fail(`8-bit data has ${src.length} samples; expected ${n * channels}`);
    }
    samples = src instanceof Uint8Array ? src : Uint8Array.from(src);
  } else {
    if (channels !== 1 || !(src instanceof Uint8Array)) {
      throw fail(`${depth}-bit samples with ${channels} channels is not a valid PNG`);
    }
    samples = unpackRows(src, width, height, depth, true);
  }

  if (channels === 1 || channels === 3 || channels === 4) {
    return { width, height, channels, data: samples.slice() };
  }
  if (channels === 2) {
    const data = new Uint8Array(n * 4);
    for (let i = 0; i < n; i++) {
      const g = samples[2 * i];
      data[4 * i] = g;
      data[4 * i + 1] = g;
      data[4 * i + 2] = g;
      data[4 * i + 3] = samples[2 * i + 1];
    }
    return { width, height, channels: 4, data };
  }
  throw fail(`${channels} channels is not a valid PNG colour type`);
}

/** Unpacks 1/2/4/8-bit rows (each padded to a byte) to one byte per sample, optionally scaled. */
function unpackRows(
  src: Uint8Array,
  width: number,
  height: number,
  depth: number,
  scale: boolean,
): Uint8Array {
  if (depth === 8) {
    if (src.length !== width * height) {
      throw CoreError.invalidArgument(
        `png: data has ${src.length} bytes; expected ${width * height}`,
      );
    }
    return src;
  }
  const rowBytes = Math.ceil((width * depth) / 8);
  if (src.length !== rowBytes * height) {
    throw CoreError.invalidArgument(
      `png: ${depth}-bit data has ${src.length} bytes; expected ${rowBytes * height}`,
    );
  }
  const out = new Uint8Array(width * height);
  const mask = (1 << depth) - 1;
  const factor = scale ? 255 / mask : 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const v = (src[y * rowBytes + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
      out[y * width + x] = Math.round(v * factor);
    }
  }
  return out;
}

/**
 * Decodes a JPEG to RGB, or to 1 channel when the file has a single (gray) component.
 *
 * @example
 * ```ts
 * import { decodeJpeg, encodeJpeg } from "./image.ts";
 *
 * const jpeg = encodeJpeg({ width: 4, height: 4, channels: 3, data: new Uint8Array(48).fill(90) });
 * console.log(decodeJpeg(jpeg).channels); // 3
 * ```
 */
export function decodeJpeg(bytes: Uint8Array, options: DecodeImageOptions = {}): RasterImage {
  const fail = (m: string) => CoreError.invalidArgument(`jpeg: ${m}`);
  if (!(bytes instanceof Uint8Array) || sniffImageFormat(bytes) !== "jpeg") {
    throw fail("data does not start with the JPEG SOI marker (ff d8 ff)");
  }
  const frame = jpegFrame(bytes);
  if (!frame) throw fail("no frame header (SOF) found; the file is truncated or corrupt");
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkPixels("jpeg", frame.width, frame.height, maxPixels);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpegDecode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: options.maxMemoryMB ?? 1024,
    });
  } catch (err) {
    throw fail(`corrupt or unsupported data (${messageOf(err)})`);
  }
  const { width, height, data } = decoded;
  const n = width * height;
  if (!(n > 0) || data.length !== n * 3) {
    throw fail(
      `decoder returned ${width}x${height} with ${data.length} bytes; the file is corrupt`,
    );
  }
  if (frame.components === 1) {
    const gray = new Uint8Array(n);
    for (let i = 0; i < n; i++) gray[i] = data[3 * i];
    return { width, height, channels: 1, data: gray };
  }
  return { width, height, channels: 3, data: data.slice() };
}

/** Width, height and component count from the first SOF marker, if any. */
function jpegFrame(
  bytes: Uint8Array,
): { width: number; height: number; components: number } | undefined {
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return undefined;
    const m = bytes[p + 1];
    if (m === 0xff) {
      p++;
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      p += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return undefined;
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (p + 10 > bytes.length) return undefined;
      return {
        height: (bytes[p + 5] << 8) | bytes[p + 6],
        width: (bytes[p + 7] << 8) | bytes[p + 8],
        components: bytes[p + 9],
      };
    }
    p += 2 + len;
  }
  return undefined;
}

/**
 * Encodes an 8-bit gray, RGB or RGBA image as a PNG (lossless).
 *
 * @example
 * ```ts
 * import { encodePng } from "./image.ts";
 * const png = encodePng({ width: 2, height: 2, channels: 4, data: new Uint8Array(16).fill(255) });
 * console.log(png.subarray(1, 4)); // Uint8Array(3) [ 80, 78, 71 ] ("PNG")
 * ```
 */
export function encodePng(img: RasterImage): Uint8Array {
  checkImage("png", img);
  try {
    return pngEncode({
      width: img.width,
      height: img.height,
      channels: img.channels,
      depth: 8,
      data: img.data,
    });
  } catch (err) {
    throw CoreError.invalidArgument(`png: cannot encode (${messageOf(err)})`);
  }
}

/**
 * Encodes an image as a baseline JPEG at `quality` 1..100 (default 90). Gray images are stored as
 * RGB (they decode with 3 equal channels); an alpha channel is dropped.
 *
 * @example
 * ```ts
 * import { encodeJpeg } from "./image.ts";
 * const jpeg = encodeJpeg({ width: 8, height: 8, channels: 1, data: new Uint8Array(64) }, 75);
 * console.log(jpeg[0].toString(16), jpeg[1].toString(16)); // ff d8
 * ```
 */
export function encodeJpeg(img: RasterImage, quality = 90): Uint8Array {
  checkImage("jpeg", img);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw CoreError.invalidArgument(
      `jpeg: quality ${describe(quality)}; expected an integer 1..100`,
    );
  }
  if (img.width > 65535 || img.height > 65535) {
    throw CoreError.invalidArgument(
      `jpeg: ${img.width}x${img.height} is larger than JPEG's 65535x65535`,
    );
  }
  const n = img.width * img.height;
  const rgba = new Uint8Array(n * 4);
  const { data, channels } = img;
  for (let i = 0; i < n; i++) {
    if (channels === 1) {
      rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = data[i];
    } else {
      rgba[4 * i] = data[channels * i];
      rgba[4 * i + 1] = data[channels * i + 1];
      rgba[4 * i + 2] = data[channels * i + 2];
    }
    rgba[4 * i + 3] = 255;
  }
  try {
    const out = jpegEncode({ width: img.width, height: img.height, data: rgba }, quality);
    return new Uint8Array(out.data);
  } catch (err) {
    throw CoreError.invalidArgument(`jpeg: cannot encode (${messageOf(err)})`);
  }
}

function checkImage(label: string, img: RasterImage): void {
  const fail = (m: string) => CoreError.invalidArgument(`${label}: ${m}`);
  if (typeof img !== "object" || img === null) throw fail(`image is ${describe(img)}`);
  const { width, height, channels, data } = img;
  if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
    throw fail(`size ${describe(width)}x${describe(height)}; expected positive integers`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw fail(`channels is ${describe(channels)}; expected 1, 3 or 4`);
  }
  if (!(data instanceof Uint8Array)) throw fail(`data is ${describe(data)}; expected a Uint8Array`);
  if (data.length !== width * height * channels) {
    throw fail(
      `data has ${data.length} bytes; ${width}x${height}x${channels} needs ${
        width * height * channels
      }`,
    );
  }
}

function checkPixels(label: string, width: number, height: number, maxPixels?: number): void {
  const max = maxPixels ?? DEFAULT_MAX_PIXELS;
  if (width < 1 || height < 1) {
    throw CoreError.invalidArgument(`${label}: size ${width}x${height}; an image needs pixels`);
  }
  if (width * height > max) {
    throw CoreError.invalidArgument(
      `${label}: ${width}x${height} is ${width * height} pixels, more than the limit of ${max} ` +
        `(raise maxPixels to decode it)`,
    );
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
