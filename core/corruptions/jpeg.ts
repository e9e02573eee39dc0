/**
 * A JPEG round trip through libjpeg-turbo (its TurboJPEG API, compiled to WebAssembly, npm
 * `@cornerstonejs/codec-libjpeg-turbo-8bit`): baseline, the standard IJG (JPEG Annex K)
 * quantisation tables scaled by libjpeg's quality rule, 4:2:0 chroma subsampling, as PIL's
 * `Image.save(..., "JPEG", quality=q)` does in the reference. The codec is loaded once, when this
 * module is first imported.
 *
 * @example
 * ```ts
 * import { jpegRoundTrip } from "./jpeg.ts";
 * const rgb = new Uint8Array(32 * 32 * 3).fill(200);
 * console.log(jpegRoundTrip(rgb, 32, 32, 25).length); // 3072
 * ```
 * @module
 */
import factory from "@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs";

interface TurboEncoder {
  getDecodedBuffer(frame: FrameInfo): Uint8Array;
  setQuality(q: number): void;
  setSubSampling(s: number): void;
  encode(): void;
  getEncodedBuffer(): Uint8Array;
}
interface TurboDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): FrameInfo;
}
interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned: boolean;
}
interface TurboModule {
  JPEGEncoder: new () => TurboEncoder;
  JPEGDecoder: new () => TurboDecoder;
}

/** TurboJPEG's TJSAMP_420. */
const TJSAMP_420 = 2;

const codec = await (factory as unknown as () => Promise<TurboModule>)();
const encoder = new codec.JPEGEncoder();
const decoder = new codec.JPEGDecoder();

/** Encodes 8-bit RGB (h x w x 3) at `quality` 1..100 and returns the JPEG bytes. */
export function encodeJpegRgb(rgb: Uint8Array, h: number, w: number, quality: number): Uint8Array {
  const frame = { width: w, height: h, bitsPerSample: 8, componentCount: 3, isSigned: false };
  encoder.getDecodedBuffer(frame).set(rgb);
  encoder.setQuality(quality);
  encoder.setSubSampling(TJSAMP_420);
  encoder.encode();
  return new Uint8Array(encoder.getEncodedBuffer());
}

/** Decodes a JPEG to 8-bit interleaved pixels (as many channels as it has components). */
export function decodeJpegBytes(jpeg: Uint8Array): Uint8Array {
  decoder.getEncodedBuffer(jpeg.length).set(jpeg);
  decoder.decode();
  return new Uint8Array(decoder.getDecodedBuffer());
}

/** Encodes 8-bit RGB at `quality` and decodes it again: the JPEG corruption's core. */
export function jpegRoundTrip(rgb: Uint8Array, h: number, w: number, quality: number): Uint8Array {
  return decodeJpegBytes(encodeJpegRgb(rgb, h, w, quality));
}
