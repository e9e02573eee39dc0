/**
 * Fidelity measurement shared by test/corruption_fidelity_test.ts and the README table: cotrain's
 * mean PSNR and SSIM to the clean image, per corruption and severity, on the fidelity images of
 * test/corruption_data/ (the same images and metric as make_reference.py measures on the
 * reference).
 * @module
 */
import { fileURLToPath } from "node:url";
import { decodePng } from "../core/io/image.ts";
import { corruptBatch, type CorruptionName, CORRUPTIONS } from "../core/corruptions/mod.ts";

/** Folder of the fidelity data. */
export const DATA_DIR = fileURLToPath(new URL("./corruption_data/", import.meta.url));
/** The four images. */
export const IMAGE_NAMES = ["astronaut", "camera", "chelsea", "coffee"] as const;

/** One row of the reference table. */
export interface FidelityRow {
  psnr: number;
  ssim: number;
  psnr_sd?: number;
}

/** The reference's table (reference.json). */
export interface ReferenceTable {
  reference: string;
  sizes: Record<string, { repeats: number; table: Record<string, FidelityRow[]> }>;
}

/** Loads reference.json. */
export async function loadReference(): Promise<ReferenceTable> {
  return JSON.parse(await Deno.readTextFile(`${DATA_DIR}reference.json`));
}

/** The four clean images of one size as RGB uint8 (gray ones stacked). */
export async function loadImages(size: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const name of IMAGE_NAMES) {
    const img = decodePng(await Deno.readFile(`${DATA_DIR}${name}_${size}.png`));
    const rgb = new Uint8Array(size * size * 3);
    for (let p = 0; p < size * size; p++) {
      for (let k = 0; k < 3; k++) {
        rgb[3 * p + k] = img.data[p * img.channels + (img.channels === 1 ? 0 : k)];
      }
    }
    out.push(rgb);
  }
  return out;
}

/** PSNR in dB (capped at 60) of two uint8 arrays. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  if (se === 0) return 60;
  return Math.min(60, 10 * Math.log10(255 * 255 / (se / a.length)));
}

/**
 * SSIM of two uint8 RGB images as skimage.metrics.structural_similarity computes it by default
 * (7x7 uniform window, sample covariance, K1 0.01, K2 0.03, data range 255, the mean over
 * channels of the mean over the image without a 3-pixel border).
 */
export function ssim(a: Uint8Array, b: Uint8Array, h: number, w: number): number {
  const r = 3, win = 7, np = win * win, cov = np / (np - 1);
  const C1 = (0.01 * 255) ** 2, C2 = (0.03 * 255) ** 2;
  let total = 0;
  for (let k = 0; k < 3; k++) {
    let s = 0, count = 0;
    for (let y = r; y < h - r; y++) {
      for (let x = r; x < w - r; x++) {
        let ma = 0, mb = 0, aa = 0, bb = 0, ab = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const i = ((y + dy) * w + x + dx) * 3 + k;
            const u = a[i], v = b[i];
            ma += u;
            mb += v;
            aa += u * u;
            bb += v * v;
            ab += u * v;
          }
        }
        ma /= np;
        mb /= np;
        const va = cov * (aa / np - ma * ma), vb = cov * (bb / np - mb * mb);
        const vab = cov * (ab / np - ma * mb);
        s += ((2 * ma * mb + C1) * (2 * vab + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
        count++;
      }
    }
    total += s / count;
  }
  return total / 3;
}

/** cotrain's mean PSNR and SSIM over the images and `repeats` seeds, per severity. */
export function measure(
  images: Uint8Array[],
  size: number,
  corruption: CorruptionName,
  repeats: number,
  withSsim = true,
): FidelityRow[] {
  const rows: FidelityRow[] = [];
  for (let s = 1; s <= 5; s++) {
    let p = 0, q = 0, n = 0;
    for (const [i, img] of images.entries()) {
      for (let r = 0; r < repeats; r++) {
        const out = corruptBatch(
          { dtype: "uint8", shape: [1, size, size, 3], data: img },
          { corruption, severity: s, seed: 1000 + r, indexOffset: i },
        ).data as Uint8Array;
        p += psnr(img, out);
        if (withSsim) q += ssim(img, out, size, size);
        n++;
      }
    }
    rows.push({ psnr: p / n, ssim: q / n });
  }
  return rows;
}

if (import.meta.main) {
  const ref = await loadReference();
  const size = Number(Deno.args[0] ?? 64);
  const repeats = Number(Deno.args[1] ?? 4);
  const images = await loadImages(size);
  const lines = [];
  for (const c of CORRUPTIONS) {
    const ours = measure(images, size, c, repeats);
    const theirs = ref.sizes[String(size)]?.table[c];
    lines.push(
      `| ${c} | ${
        ours.map((r, i) => `${r.psnr.toFixed(1)} / ${theirs?.[i].psnr.toFixed(1)}`).join(" | ")
      } | ${ours.map((r, i) => `${r.ssim.toFixed(2)}/${theirs?.[i].ssim.toFixed(2)}`).join(" ")} |`,
    );
    console.log(lines.at(-1));
  }
}
