/**
 * `deno task corrupt`: the batch tool users of the reference asked for. Reads images (a folder of
 * PNG/JPEG files, or an .npy array N x H x W [x C] of uint8 or float32), applies corruptions x
 * severities with a seed and a preset, writes .npy arrays or PNG files, with a progress bar on
 * stderr.
 *
 * Image i (in sorted file order, or along the array's first axis) is corrupted with the stream of
 * (seed, i, corruption, severity), so results equal those of the library and the service for the
 * same index.
 *
 * @example
 * ```sh
 * deno task corrupt --in val.npy --out out/ --corruptions paper14 --severities 1-5 --seed 0
 * deno task corrupt --in photos/ --out out/ --corruptions fog,snow --severities 3 --format png
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { basename, extname, join } from "node:path";
import cliProgress from "cli-progress";
import process from "node:process";
import { decodeImage, encodePng, readNpy, writeNpy } from "../../core/io/mod.ts";
import type { NdArray } from "../../core/io/mod.ts";
import {
  corruptBatch,
  CORRUPTIONS,
  GROUPS,
  type ImageBatch,
  PAPER_14,
  PRESET_NAMES,
} from "../../core/corruptions/mod.ts";

const USAGE = `usage: deno task corrupt --in PATH --out PATH [options]
  --in PATH            a folder of .png/.jpg/.jpeg files (sorted by name) or an .npy array
                       N x H x W [x C] (C 1 or 3), uint8 0..255 or float32 [0, 1]
  --out PATH           a folder (created); .npy output may also be a file name when one
                       corruption and one severity are asked for
  --corruptions LIST   comma-separated names, or paper14 (default), all, common, noise, blur,
                       weather, digital, extra
  --severities LIST    e.g. 1,3,5 or 1-5 (default 1-5)
  --seed N             whole number (default 0)
  --preset NAME        ${PRESET_NAMES.join(" | ")} (default imagecorruptions)
  --format F           npy (default for .npy input) | png (default for folder input)
  --gray-path P        rgb (default: stack, corrupt, luma) | direct
  --to-gray            write RGB results as gray (luma), the paper's pipeline
  --round              round instead of the reference's truncation (uint8)
  --batch N            images per step (default 64)
  --quiet              no progress bar`;

/** Parsed command line. */
export interface CorruptArgs {
  input: string;
  output: string;
  corruptions: string[];
  severities: number[];
  seed: number;
  preset: string;
  format?: "npy" | "png";
  grayPath: "rgb" | "direct";
  toGray: boolean;
  round: boolean;
  batch: number;
  quiet: boolean;
}

/** A bad command line (exit code 2). */
export class UsageError extends Error {}

/** Expands a corruption list (names or group words). */
export function expandCorruptions(list: string): string[] {
  const out: string[] = [];
  for (const item of list.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (item === "paper14") out.push(...PAPER_14);
    else if (item === "all") out.push(...CORRUPTIONS);
    else if (item === "common") out.push(...CORRUPTIONS.slice(0, 15));
    else if (item in GROUPS) out.push(...GROUPS[item]);
    else if ((CORRUPTIONS as readonly string[]).includes(item)) out.push(item);
    else {
      throw new UsageError(
        `--corruptions: unknown ${JSON.stringify(item)}; allowed: ${
          CORRUPTIONS.join(", ")
        }, paper14, all, common, ${Object.keys(GROUPS).join(", ")}`,
      );
    }
  }
  return [...new Set(out)];
}

/** Expands a severity list such as `1,3-5`. */
export function expandSeverities(list: string): number[] {
  const out: number[] = [];
  for (const item of list.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item);
    const lo = m ? Number(m[1]) : NaN, hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 5 || lo > hi) {
      throw new UsageError(`--severities: ${JSON.stringify(item)}; allowed: 1..5, e.g. 1,3 or 2-4`);
    }
    for (let s = lo; s <= hi; s++) out.push(s);
  }
  return [...new Set(out)];
}

/** Parses the command line. */
export function parseCorruptArgs(args: string[]): CorruptArgs {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        in: { type: "string" },
        out: { type: "string" },
        corruptions: { type: "string", default: "paper14" },
        severities: { type: "string", default: "1-5" },
        seed: { type: "string", default: "0" },
        preset: { type: "string", default: "imagecorruptions" },
        format: { type: "string" },
        "gray-path": { type: "string", default: "rgb" },
        "to-gray": { type: "boolean", default: false },
        round: { type: "boolean", default: false },
        batch: { type: "string", default: "64" },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : err}\n${USAGE}`);
  }
  if (v.help) throw new UsageError(USAGE);
  if (!v.in || !v.out) throw new UsageError(`--in and --out are required\n${USAGE}`);
  const seed = Number(v.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new UsageError(`--seed: ${JSON.stringify(v.seed)}; expected a whole number >= 0`);
  }
  if (!(PRESET_NAMES as readonly string[]).includes(v.preset as string)) {
    throw new UsageError(
      `--preset: unknown ${JSON.stringify(v.preset)}; allowed: ${PRESET_NAMES.join(", ")}`,
    );
  }
  if (v.format !== undefined && v.format !== "npy" && v.format !== "png") {
    throw new UsageError(`--format: ${JSON.stringify(v.format)}; allowed: npy, png`);
  }
  if (v["gray-path"] !== "rgb" && v["gray-path"] !== "direct") {
    throw new UsageError(`--gray-path: ${JSON.stringify(v["gray-path"])}; allowed: rgb, direct`);
  }
  const batch = Number(v.batch);
  if (!Number.isSafeInteger(batch) || batch < 1) {
    throw new UsageError(`--batch: ${JSON.stringify(v.batch)}; expected a whole number >= 1`);
  }
  return {
    input: v.in,
    output: v.out,
    corruptions: expandCorruptions(v.corruptions as string),
    severities: expandSeverities(v.severities as string),
    seed,
    preset: v.preset as string,
    format: v.format as "npy" | "png" | undefined,
    grayPath: v["gray-path"] as "rgb" | "direct",
    toGray: v["to-gray"] as boolean,
    round: v.round as boolean,
    batch,
    quiet: v.quiet as boolean,
  };
}

/** Images read from the input: one batch (same size) plus file names for PNG output. */
interface Input {
  batch: ImageBatch;
  names: string[];
  fromNpy: boolean;
}

async function readInput(path: string): Promise<Input> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    if (extname(path).toLowerCase() !== ".npy") {
      throw new UsageError(
        `--in: ${path} is a file but not .npy; give a folder of images or an .npy`,
      );
    }
    const a = readNpy(await Deno.readFile(path));
    if (a.dtype !== "uint8" && a.dtype !== "float32") {
      throw new UsageError(`--in: ${path} holds ${a.dtype}; allowed: uint8, float32`);
    }
    const n = a.shape[0] ?? 0;
    return {
      batch: { dtype: a.dtype, shape: [...a.shape], data: a.data as Uint8Array | Float32Array },
      names: Array.from({ length: n }, (_, i) => String(i).padStart(6, "0")),
      fromNpy: true,
    };
  }
  const files: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if (e.isFile && /\.(png|jpe?g)$/i.test(e.name)) files.push(e.name);
  }
  files.sort();
  if (files.length === 0) throw new UsageError(`--in: no .png/.jpg/.jpeg files in ${path}`);
  let h = 0, w = 0, c = 0;
  const pixels: Uint8Array[] = [];
  for (const f of files) {
    const img = decodeImage(await Deno.readFile(join(path, f)));
    const ch = img.channels === 1 ? 1 : 3;
    if (pixels.length === 0) [h, w, c] = [img.height, img.width, ch];
    if (img.height !== h || img.width !== w || ch !== c) {
      throw new UsageError(
        `--in: ${f} is ${img.width}x${img.height}x${ch}, the first image ${w}x${h}x${c}; ` +
          `all images must have the same size and channels`,
      );
    }
    if (img.channels === 4) {
      const rgb = new Uint8Array(h * w * 3);
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < 3; k++) rgb[3 * p + k] = img.data[4 * p + k];
      }
      pixels.push(rgb);
    } else pixels.push(img.data);
  }
  const data = new Uint8Array(files.length * h * w * c);
  pixels.forEach((p, i) => data.set(p, i * h * w * c));
  return {
    batch: { dtype: "uint8", shape: [files.length, h, w, c], data },
    names: files.map((f) => basename(f, extname(f))),
    fromNpy: false,
  };
}

function slice(b: ImageBatch, start: number, end: number): ImageBatch {
  const per = b.shape.slice(1).reduce((a, x) => a * x, 1);
  return {
    dtype: b.dtype,
    shape: [end - start, ...b.shape.slice(1)],
    data: b.data.subarray(start * per, end * per),
  } as ImageBatch;
}

/** Runs the tool; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let a: CorruptArgs;
  try {
    a = parseCorruptArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(err.message);
    return err.message === USAGE ? 0 : 2;
  }
  let input: Input;
  try {
    input = await readInput(a.input);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  const format = a.format ?? (input.fromNpy ? "npy" : "png");
  const n = input.batch.shape[0];
  const pairs = a.corruptions.flatMap((c) => a.severities.map((s) => [c, s] as const));
  const single = pairs.length === 1 && format === "npy" && a.output.toLowerCase().endsWith(".npy");
  if (!single) await Deno.mkdir(a.output, { recursive: true });
  const bar = new cliProgress.SingleBar({
    format: "corrupt |{bar}| {percentage}% | {value}/{total} images | {pair}",
    stream: process.stderr, // a node stream: Deno.stderr.write takes bytes, not strings
    noTTYOutput: true,
    notTTYSchedule: 2000,
  }, cliProgress.Presets.shades_classic);
  if (!a.quiet) bar.start(n * pairs.length, 0, { pair: "" });
  try {
    for (const [c, s] of pairs) {
      const parts: ImageBatch[] = [];
      for (let start = 0; start < n; start += a.batch) {
        const end = Math.min(n, start + a.batch);
        const out = corruptBatch(slice(input.batch, start, end), {
          corruption: c,
          severity: s,
          seed: a.seed,
          preset: a.preset,
          indexOffset: start,
          grayPath: a.grayPath,
          toGray: a.toGray,
          truncate: a.round ? false : undefined,
        });
        if (format === "png") {
          const dir = join(a.output, c, String(s));
          await Deno.mkdir(dir, { recursive: true });
          const [, h, w] = out.shape;
          const ch = out.shape.length === 4 ? out.shape[3] as 1 | 3 : 1;
          for (let i = 0; i < end - start; i++) {
            const px = new Uint8Array(h * w * ch);
            for (let p = 0; p < px.length; p++) {
              const v = out.data[i * px.length + p];
              px[p] = out.dtype === "uint8" ? v : Math.max(0, Math.min(255, Math.round(v * 255)));
            }
            await Deno.writeFile(
              join(dir, `${input.names[start + i]}.png`),
              encodePng({ width: w, height: h, channels: ch, data: px }),
            );
          }
        } else parts.push(out);
        if (!a.quiet) bar.increment(end - start, { pair: `${c} s${s}` });
      }
      if (format === "npy") {
        const shape = parts[0]?.shape ?? input.batch.shape;
        const outShape = [n, ...shape.slice(1)];
        const per = outShape.slice(1).reduce((x, y) => x * y, 1);
        const data = input.batch.dtype === "uint8"
          ? new Uint8Array(n * per)
          : new Float32Array(n * per);
        let off = 0;
        for (const p of parts) {
          data.set(p.data as never, off);
          off += p.data.length;
        }
        const file = single ? a.output : join(a.output, `${c}-s${s}.npy`);
        await Deno.writeFile(
          file,
          writeNpy({ dtype: input.batch.dtype, shape: outShape, data } as NdArray),
        );
      }
    }
  } catch (err) {
    if (!a.quiet) bar.stop();
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
  if (!a.quiet) bar.stop();
  if (!a.quiet) {
    console.error(
      `wrote ${pairs.length} corruption x severity results for ${n} images to ${a.output}`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
