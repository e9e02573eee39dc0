/**
 * Reader and writer for numpy's `.npz` archives: a ZIP of `<name>.npy` files, as written by
 * `np.savez` (stored) and `np.savez_compressed` (deflated).
 *
 * Reading goes through the strict ZIP reader in `zip.ts` (CRC-checked, ZIP64-aware, bounded
 * allocation); writing uses `fflate`'s `zipSync` with a fixed timestamp, so the same arrays always
 * give the same bytes. Archives over 4 GiB or with more than 65535 arrays are not written.
 *
 * @example
 * ```ts
 * import { readNpz, writeNpz } from "./npz.ts";
 *
 * const bytes = writeNpz({
 *   responses: { dtype: "float32", shape: [2, 3], data: new Float32Array(6) },
 *   neuron_ids: { dtype: "int64", shape: [3], data: new BigInt64Array([1n, 2n, 3n]) },
 * }, { compress: true });
 * const arrays = readNpz(bytes);
 * console.log(Object.keys(arrays)); // [ "responses", "neuron_ids" ]
 * ```
 * @module
 */

import { type Zippable, zipSync } from "fflate";
import { CoreError } from "../errors.ts";
import { checkNdArray, describe, type NdArray, prefixed } from "./ndarray.ts";
import { readNpy, writeNpy } from "./npy.ts";
import { readZip } from "./zip.ts";

/**
 * Options for {@linkcode writeNpz}.

 * @example
 * ```ts
 * import { writeNpz } from "./npz.ts";
 * const bytes = writeNpz({ x: { dtype: "int8", shape: [2], data: new Int8Array(2) } }, { compress: true });
 * console.log(bytes.length > 0); // true
 * ```
 */
export interface WriteNpzOptions {
  /** Deflate each entry, as `np.savez_compressed` does (default false: stored, as `np.savez`). */
  compress?: boolean;
  /** Deflate level 1-9 when compressing (default 6, as Python's zipfile). */
  level?: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

/**
 * Options for {@linkcode readNpz}.

 * @example
 * ```ts
 * import { readNpz, writeNpz } from "./npz.ts";
 * const npz = writeNpz({ x: { dtype: "int8", shape: [2], data: new Int8Array(2) } });
 * console.log(Object.keys(readNpz(npz, { maxTotalBytes: 1 << 20 }))); // [ "x" ]
 * ```
 */
export interface ReadNpzOptions {
  /** Largest total of uncompressed bytes accepted (default 2^32). */
  maxTotalBytes?: number;
}

/**
 * Reads every array of an `.npz` archive, keyed by entry name without the `.npy` suffix, in
 * archive order (except that a JavaScript object lists integer-like keys such as `"0"` first).
 *
 * Throws `INVALID_ARGUMENT` when the archive is corrupt (bad structure, CRC mismatch, a size that
 * does not add up), an entry is not a `.npy` file, a name repeats, or an entry fails `readNpy`;
 * the message names the entry.
 *
 * @example
 * ```ts
 * import { readNpz, writeNpz } from "./npz.ts";
 *
 * const npz = writeNpz({ x: { dtype: "uint8", shape: [2], data: new Uint8Array([7, 9]) } });
 * console.log(readNpz(npz).x.data); // Uint8Array(2) [ 7, 9 ]
 * ```
 */
export function readNpz(bytes: Uint8Array, options: ReadNpzOptions = {}): Record<string, NdArray> {
  const entries = readZip(bytes, { label: "npz", maxTotalBytes: options.maxTotalBytes });
  const out: [string, NdArray][] = [];
  const seen = new Set<string>();
  for (const { name, data } of entries) {
    if (!name.endsWith(".npy")) {
      throw CoreError.invalidArgument(
        `npz: entry ${describe(name)} is not a .npy file; an .npz holds only <name>.npy entries`,
      );
    }
    const key = name.slice(0, -4);
    if (seen.has(key)) {
      throw CoreError.invalidArgument(`npz: entry ${describe(name)} appears twice`);
    }
    seen.add(key);
    try {
      out.push([key, readNpy(data)]);
    } catch (err) {
      throw prefixed(err, `npz: entry ${describe(name)}`);
    }
  }
  return Object.fromEntries(out);
}

/**
 * Writes arrays to `.npz` bytes that `np.load` reads: one `<name>.npy` entry per array, in the
 * order given; stored by default, deflated with `{compress: true}`.
 *
 * @example
 * ```ts
 * import { writeNpz } from "./npz.ts";
 *
 * const arrays = new Map([["mask", { dtype: "bool" as const, shape: [4], data: new Uint8Array(4) }]]);
 * const bytes = writeNpz(arrays, { compress: true, level: 9 });
 * console.log(bytes[0] === 0x50 && bytes[1] === 0x4b); // true ("PK")
 * ```
 */
export function writeNpz(
  arrays: Record<string, NdArray> | Map<string, NdArray>,
  options: WriteNpzOptions = {},
): Uint8Array {
  const items = arrays instanceof Map ? [...arrays.entries()] : Object.entries(arrays);
  if (items.length > 0xffff) {
    throw CoreError.invalidArgument(
      `npz: ${items.length} arrays; at most 65535 fit in one archive`,
    );
  }
  const level = options.compress ? (options.level ?? 6) : 0;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw CoreError.invalidArgument(`npz: level ${describe(options.level)}; expected 1 to 9`);
  }
  const files: [string, [Uint8Array, { level: 0 | 6 }]][] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const [name, array] of items) {
    if (typeof name !== "string" || name.length === 0 || !name.isWellFormed()) {
      throw CoreError.invalidArgument(
        `npz: array name ${describe(name)} is not a non-empty string`,
      );
    }
    if (name.includes("/") || name.includes("\\")) {
      throw CoreError.invalidArgument(
        `npz: array name ${describe(name)} contains a path separator`,
      );
    }
    const file = `${name}.npy`;
    if (seen.has(file)) {
      throw CoreError.invalidArgument(`npz: array name ${describe(name)} repeats`);
    }
    seen.add(file);
    checkNdArray(array, `npz: array ${describe(name)}`);
    const npy = writeNpy(array);
    total += npy.length + 128 + 2 * file.length;
    if (total >= 0xffffffff) {
      throw CoreError.invalidArgument("npz: more than 4 GiB; write the arrays to separate files");
    }
    files.push([file, [npy, { level: level as 0 | 6 }]]);
  }
  // DOS timestamps start in 1980; a fixed local time keeps the bytes reproducible.
  return zipSync(Object.fromEntries(files) as Zippable, { mtime: new Date(1980, 0, 1) });
}
