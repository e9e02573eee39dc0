/**
 * Pictures of the analyses as PNG bytes (core/io), for a report to embed: the grid of the paper's
 * Fig. 5 (rows: models, columns: the original, the reconstruction at each budget, the spectral
 * controls) and the scatter of Fig. 7 (rho_bar of one model against another per image, with the
 * diagonal). No text is drawn; the caption and labels belong to the page around the image.
 *
 * @example
 * ```ts
 * import { reconstructionGridPng, rhoScatterPng } from "./figures.ts";
 * const cell = Float32Array.from({ length: 16 }, (_, i) => i);
 * const grid = reconstructionGridPng([[cell, cell], [cell, cell]], 4);
 * const scatter = rhoScatterPng([{ points: [{ x: 0.1, y: 0.3 }], color: [200, 0, 0] }]);
 * console.log(grid[1], scatter[1]); // 80 80 ("P" of the PNG signature)
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import { encodePng } from "../io/image.ts";

/** Options of {@linkcode reconstructionGridPng}. */
export interface GridOptions {
  /** Pixels each image cell is scaled up by (nearest; default 2). */
  scale?: number;
  /** Gap between cells in pixels (default 4, white). */
  gap?: number;
}

/**
 * A grid of gray images (each `side` x `side`, row-major), `cells[row][column]`; every cell is
 * stretched to its own min..max (reconstructions at different budgets differ in contrast).
 * Missing cells (undefined) stay white.
 */
export function reconstructionGridPng(
  cells: (ArrayLike<number> | undefined)[][],
  side: number,
  options: GridOptions = {},
): Uint8Array {
  const scale = options.scale ?? 2;
  const gap = options.gap ?? 4;
  const rows = cells.length;
  const cols = Math.max(0, ...cells.map((r) => r.length));
  if (rows === 0 || cols === 0) throw CoreError.invalidArgument("figure: no cells");
  const cs = side * scale;
  const W = cols * cs + (cols + 1) * gap;
  const H = rows * cs + (rows + 1) * gap;
  const data = new Uint8Array(W * H).fill(255);
  cells.forEach((row, r) =>
    row.forEach((cell, c) => {
      if (!cell) return;
      if (cell.length !== side * side) {
        throw CoreError.invalidArgument(`figure: cell [${r}][${c}] has ${cell.length} pixels`);
      }
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < cell.length; i++) {
        lo = Math.min(lo, cell[i]);
        hi = Math.max(hi, cell[i]);
      }
      const span = hi > lo ? hi - lo : 1;
      const ox = gap + c * (cs + gap), oy = gap + r * (cs + gap);
      for (let y = 0; y < cs; y++) {
        for (let x = 0; x < cs; x++) {
          const v = cell[Math.floor(y / scale) * side + Math.floor(x / scale)];
          data[(oy + y) * W + ox + x] = Math.round(((v - lo) / span) * 255);
        }
      }
    })
  );
  return encodePng({ width: W, height: H, channels: 1, data });
}

/** One series of a scatter: points and an RGB colour. */
export interface ScatterSeries {
  points: { x: number; y: number }[];
  color: [number, number, number];
}

/** Options of {@linkcode rhoScatterPng}. */
export interface ScatterOptions {
  /** Plot side in pixels (default 320). */
  size?: number;
  /** Axis range, the same on both axes (default [-1, 1], rho_bar's range). */
  range?: [number, number];
}

/**
 * A scatter plot (RGB PNG): a frame, the zero lines, the diagonal y = x, and each series' points
 * as 5x5 dots. Points outside the range are clamped to the frame; NaN points are skipped.
 */
export function rhoScatterPng(series: ScatterSeries[], options: ScatterOptions = {}): Uint8Array {
  const size = options.size ?? 320;
  const [lo, hi] = options.range ?? [-1, 1];
  if (!(hi > lo)) throw CoreError.invalidArgument(`figure: range [${lo}, ${hi}]`);
  const data = new Uint8Array(size * size * 3).fill(255);
  const m = 12;
  const set = (x: number, y: number, c: readonly number[]) => {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    data.set(c, (y * size + x) * 3);
  };
  const px = (v: number) =>
    Math.round(m + ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (size - 1 - 2 * m));
  const py = (v: number) => size - 1 - px(v);
  for (let i = m; i < size - m; i++) {
    for (const [x, y] of [[i, m], [i, size - 1 - m], [m, i], [size - 1 - m, i]]) {
      set(x, y, [0, 0, 0]);
    }
    if (lo < 0 && hi > 0) {
      set(px(0), i, [200, 200, 200]);
      set(i, py(0), [200, 200, 200]);
    }
    set(i, size - 1 - i, [120, 120, 120]); // the diagonal
  }
  for (const s of series) {
    for (const p of s.points) {
      if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
      const cx = px(p.x), cy = py(p.y);
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) if (dx * dx + dy * dy <= 5) set(cx + dx, cy + dy, s.color);
      }
    }
  }
  return encodePng({ width: size, height: size, channels: 3, data });
}

/** One model's row of Fig. 5: its reconstruction at each budget and, optionally, their controls. */
export interface Figure5Row {
  reconstructions: ArrayLike<number>[];
  controls?: ArrayLike<number>[];
}

/**
 * Fig. 5 for one image: a row per model, columns = the original, the reconstruction at each
 * budget, then the spectral control of each (all `side` x `side`).
 */
export function figure5Png(
  original: ArrayLike<number>,
  rows: Figure5Row[],
  side: number,
  options: GridOptions = {},
): Uint8Array {
  return reconstructionGridPng(
    rows.map((r) => [original, ...r.reconstructions, ...(r.controls ?? [])]),
    side,
    options,
  );
}

/** Series colours of Fig. 7: MTL-Monkey against Baseline (blue) and against Oracle (orange). */
export const FIGURE7_COLORS = {
  baseline: [31, 119, 180] as [number, number, number],
  oracle: [255, 127, 14] as [number, number, number],
};

/**
 * Fig. 7: rho_bar per image of MTL-Monkey (y) against Baseline and against Oracle (x), with the
 * diagonal; points above it are images whose MTL reconstruction keeps more of its norm on the
 * salient pixels.
 */
export function figure7Png(
  rhoBar: { mtl: number[]; baseline?: number[]; oracle?: number[] },
  options: ScatterOptions = {},
): Uint8Array {
  const series: ScatterSeries[] = [];
  for (const name of ["baseline", "oracle"] as const) {
    const xs = rhoBar[name];
    if (!xs) continue;
    if (xs.length !== rhoBar.mtl.length) {
      throw CoreError.invalidArgument(
        `figure: ${xs.length} ${name} values for ${rhoBar.mtl.length} MTL values`,
      );
    }
    series.push({
      points: xs.map((x, i) => ({ x, y: rhoBar.mtl[i] })),
      color: FIGURE7_COLORS[name],
    });
  }
  return rhoScatterPng(series, options);
}
