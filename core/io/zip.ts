/**
 * A small, strict ZIP reader (stored and deflated entries, ZIP64) used by the npz codec, and a
 * CRC-32.
 *
 * It trusts nothing in the archive: every offset is bounds-checked, the uncompressed size an entry
 * declares must be reachable by DEFLATE from its compressed size (so a forged size cannot make it
 * allocate much more than ~1000x the input), the inflated length must equal the declared size, and
 * the CRC-32 must match. Every problem is an `INVALID_ARGUMENT` `CoreError`.
 *
 * Inflation uses `fflate`; writing archives is left to `fflate`'s `zipSync` (see `npz.ts`).
 *
 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * import { readZip } from "./zip.ts";
 *
 * const archive = zipSync({ "a.txt": new TextEncoder().encode("hello") });
 * const entries = readZip(archive);
 * console.log(entries[0].name, new TextDecoder().decode(entries[0].data)); // a.txt hello
 * ```
 * @module
 */

import { inflateSync } from "fflate";
import { CoreError } from "../errors.ts";

/**
 * One file of an archive.

 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * import { readZip, type ZipEntry } from "./zip.ts";
 * const [entry]: ZipEntry[] = readZip(zipSync({ "n.txt": new Uint8Array([1]) }));
 * console.log(entry.name, entry.data); // n.txt Uint8Array(1) [ 1 ]
 * ```
 */
export interface ZipEntry {
  /** The entry's name, e.g. `weights.npy`. */
  name: string;
  /** Its uncompressed bytes (CRC-checked); for a stored entry, a view into the archive bytes. */
  data: Uint8Array;
}

/**
 * Options for {@linkcode readZip}.

 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * import { readZip } from "./zip.ts";
 * const entries = readZip(zipSync({ "n.txt": new Uint8Array(4) }), { label: "archive", maxTotalBytes: 1024 });
 * console.log(entries.length); // 1
 * ```
 */
export interface ReadZipOptions {
  /** Prefix for error messages (default `"zip"`). */
  label?: string;
  /** Largest total of uncompressed bytes accepted (default 2^32). */
  maxTotalBytes?: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
// DEFLATE emits at most 258 bytes per (at least) 2 bits of a length/distance pair: ~1032:1.
const MAX_DEFLATE_RATIO = 1032;

/**
 * Lists and extracts every file of a ZIP archive, in central-directory order. Directory entries
 * (names ending in `/`) are skipped.
 *
 * @example
 * ```ts
 * import { zipSync } from "fflate";
 * import { readZip } from "./zip.ts";
 *
 * const zip = zipSync({ "x.bin": [new Uint8Array(1000), { level: 9 }] });
 * console.log(readZip(zip)[0].data.length); // 1000
 * ```
 */
export function readZip(bytes: Uint8Array, options: ReadZipOptions = {}): ZipEntry[] {
  const label = options.label ?? "zip";
  const maxTotal = options.maxTotalBytes ?? 2 ** 32;
  const fail = (m: string) => CoreError.invalidArgument(`${label}: ${m}`);
  if (!(bytes instanceof Uint8Array)) throw fail("input is not a Uint8Array");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number, what: string) => {
    const v = view.getUint32(o, true) + view.getUint32(o + 4, true) * 2 ** 32;
    if (!Number.isSafeInteger(v)) throw fail(`${what} ${v} is out of range`);
    return v;
  };

  // End of central directory: the last signature in the final 64 KiB + 22 bytes.
  if (bytes.length < 22) {
    throw fail(`file is ${bytes.length} bytes, too short for a ZIP archive (truncated?)`);
  }
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 0xffff); p--) {
    if (bytes[p] === 0x50 && u32(p) === EOCD && p + 22 + u16(p + 20) <= bytes.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    throw fail("no end-of-central-directory record found; the file is truncated or not a ZIP");
  }
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  let cdLimit = eocd;
  if (u16(eocd + 4) !== 0 && u16(eocd + 4) !== 0xffff) {
    throw fail("multi-disk archives are not supported");
  }
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== ZIP64_LOCATOR) {
      throw fail("the end record asks for ZIP64 but the ZIP64 locator is missing");
    }
    const z = u64(loc + 8, "ZIP64 end record offset");
    if (z + 56 > loc || u32(z) !== ZIP64_EOCD) {
      throw fail("the ZIP64 end record is missing or corrupt");
    }
    count = u64(z + 32, "entry count");
    cdSize = u64(z + 40, "central directory size");
    cdOffset = u64(z + 48, "central directory offset");
    cdLimit = z;
  }
  if (cdOffset + cdSize > cdLimit) {
    throw fail(
      `central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ` +
        `${cdLimit}; the file is truncated or corrupt`,
    );
  }
  if (count > cdSize / 46) {
    throw fail(
      `central directory claims ${count} entries but has room for ${Math.floor(cdSize / 46)}`,
    );
  }

  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const out: ZipEntry[] = [];
  let total = 0;
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== CENTRAL) throw fail(`central directory entry ${i} is corrupt`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let csize = u32(p + 20);
    let usize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let local = u32(p + 42);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) throw fail(`central directory entry ${i} runs past the directory`);
    const nameBytes = bytes.subarray(p + 46, p + 46 + nameLen);
    let name: string;
    try {
      name = utf8.decode(nameBytes);
    } catch {
      throw fail(`entry ${i} has a name that is not UTF-8`);
    }
    const where = `entry ${JSON.stringify(name)}`;
    // ZIP64 extra field: the 64-bit values of whichever fields are 0xFFFFFFFF, in this order.
    if (usize === 0xffffffff || csize === 0xffffffff || local === 0xffffffff) {
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      let found = false;
      while (e + 4 <= eEnd) {
        const id = u16(e);
        const len = u16(e + 2);
        if (e + 4 + len > eEnd) break;
        if (id === 0x0001) {
          let q = e + 4;
          const take = (what: string) => {
            if (q + 8 > e + 4 + len) throw fail(`${where}: ZIP64 extra field is too short`);
            const v = u64(q, what);
            q += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = take("uncompressed size");
          if (csize === 0xffffffff) csize = take("compressed size");
          if (local === 0xffffffff) local = take("local header offset");
          found = true;
          break;
        }
        e += 4 + len;
      }
      if (!found) throw fail(`${where}: sizes need a ZIP64 extra field, which is missing`);
    }
    p = next;
    if (flags & 1) throw fail(`${where} is encrypted; encrypted archives are not supported`);
    if (name.endsWith("/")) continue;

    if (local + 30 > cdOffset || u32(local) !== LOCAL) {
      throw fail(`${where}: local header at ${local} is missing or corrupt`);
    }
    const localNameLen = u16(local + 26);
    const start = local + 30 + localNameLen + u16(local + 28);
    const localName = bytes.subarray(local + 30, local + 30 + localNameLen);
    if (localNameLen !== nameLen || localName.some((b, k) => b !== nameBytes[k])) {
      throw fail(`${where}: the name in its local header differs from the central directory`);
    }
    if (start + csize > cdOffset) {
      throw fail(
        `${where}: ${csize} compressed bytes from offset ${start} run past the data; truncated?`,
      );
    }
    const raw = bytes.subarray(start, start + csize);
    total += usize;
    if (total > maxTotal) {
      throw fail(
        `more than ${maxTotal} uncompressed bytes, the limit; raise maxTotalBytes to read it`,
      );
    }
    let data: Uint8Array;
    if (method === 0) {
      if (usize !== csize) {
        throw fail(`${where} is stored but its sizes differ (${csize} vs ${usize})`);
      }
      data = raw; // a view: callers that keep it copy it (readNpy does)
    } else if (method === 8 && csize === 0) {
      throw fail(`${where} is deflated but has no compressed bytes`);
    } else if (method === 8) {
      if (usize > csize * MAX_DEFLATE_RATIO + 1024) {
        throw fail(
          `${where} declares ${usize} bytes from ${csize} compressed, more than DEFLATE can ` +
            `produce; the archive is corrupt`,
        );
      }
      let inflated: Uint8Array;
      try {
        // One spare byte: a result longer than declared shows up as usize + 1.
        inflated = inflateSync(raw, { out: new Uint8Array(usize + 1) });
      } catch (err) {
        throw fail(`${where}: compressed data is corrupt (${(err as Error).message})`);
      }
      if (inflated.length !== usize) {
        throw fail(
          `${where} inflates to ${
            inflated.length > usize ? `more than ${usize}` : inflated.length
          } bytes; ` +
            `its header says ${usize}`,
        );
      }
      data = inflated;
    } else {
      throw fail(`${where} uses compression method ${method}; expected stored (0) or deflate (8)`);
    }
    if (crc32(data) !== crc) throw fail(`${where}: CRC-32 mismatch; the archive is corrupt`);
    out.push({ name, data });
  }
  return out;
}

let TABLE: Uint32Array | undefined;

/**
 * The CRC-32 (IEEE 802.3, as ZIP and PNG use it) of `bytes`.
 *
 * @example
 * ```ts
 * import { crc32 } from "./zip.ts";
 * console.log(crc32(new TextEncoder().encode("123456789")).toString(16)); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  if (!TABLE) {
    TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      TABLE[n] = c >>> 0;
    }
  }
  const t = TABLE;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
