/**
 * File codecs of cotrain: safetensors (checkpoints), numpy `.npy`/`.npz` (arrays exchanged with
 * Python), and PNG/JPEG (images). Every decoder validates its input completely and reports bad data
 * as a `CoreError` with code `INVALID_ARGUMENT` and a message that says what is wrong and where.
 *
 * @example
 * ```ts
 * import { readNpz, readSafetensors, writeNpz, writeSafetensors } from "./mod.ts";
 *
 * const npz = writeNpz({ x: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
 * console.log(readNpz(npz).x.shape); // [ 2 ]
 *
 * const st = writeSafetensors({ w: { dtype: "F32", shape: [1], data: new Float32Array([3]) } });
 * console.log(readSafetensors(st).tensors.get("w")?.data); // Float32Array(1) [ 3 ]
 * ```
 * @module
 */

export {
  arrayTypeName,
  byteLengthOf,
  checkNdArray,
  type DType,
  type DTypeArrays,
  DTYPES,
  fromBytes,
  isDType,
  ITEMSIZE,
  type NdArray,
  numel,
  toBytes,
  type TypedArray,
  zeros,
} from "./ndarray.ts";
export {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  floatBitsToHalfBits,
  halfBitsToFloatBits,
  halfToNumber,
  numberToHalf,
} from "./half.ts";
export {
  readSafetensors,
  type ReadSafetensorsOptions,
  SAFETENSORS_ITEMSIZE,
  type SafetensorsArrays,
  type SafetensorsDType,
  type SafetensorsFile,
  type SafetensorsTensor,
  type SafetensorsTensorInput,
  writeSafetensors,
} from "./safetensors.ts";
export { NPY_DESCR, npyHeader, readNpy, writeNpy, type WriteNpyOptions } from "./npy.ts";
export { readNpz, type ReadNpzOptions, writeNpz, type WriteNpzOptions } from "./npz.ts";
export { crc32, readZip, type ReadZipOptions, type ZipEntry } from "./zip.ts";
export {
  decodeImage,
  type DecodeImageOptions,
  decodeJpeg,
  decodePng,
  encodeJpeg,
  encodePng,
  type ImageFormat,
  type RasterImage,
  sniffImageFormat,
} from "./image.ts";
