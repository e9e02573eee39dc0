/**
 * The report's figures as vega-lite specs, rendered to SVG headlessly with vega's `View.toSVG`
 * (no browser, no canvas): accuracy vs severity (the paper's Fig. 2), robustness per category
 * and in total with bootstrap error bars (Fig. 3A/B), and robustness vs neural predictivity with
 * the regression line (Fig. 3C).
 *
 * @example
 * ```ts
 * import { renderSvg } from "./figures.ts";
 * const svg = await renderSvg({
 *   data: { values: [{ x: 1, y: 2 }, { x: 2, y: 3 }] },
 *   mark: "line",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 * });
 * console.log(svg.startsWith("<svg")); // true
 * ```
 * @module
 */
import * as vega from "vega";
import * as vl from "vega-lite";

/** A vega-lite specification (top level). */
// deno-lint-ignore no-explicit-any
export type VlSpec = Record<string, any>;

const CONFIG = {
  font: "Helvetica, Arial, sans-serif",
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  view: { stroke: "#ccc" },
};

/** Compiles a vega-lite spec and renders it to an SVG string. */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const compiled = vl.compile({ config: CONFIG, background: "white", ...spec } as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One accuracy point of Fig. 2 (severity 0 = clean). */
export interface AccuracyPoint {
  model: string;
  corruption: string;
  severity: number;
  accuracy: number;
}

/** Fig. 2: top-1 accuracy vs severity, one panel per corruption, one line per model. */
export function accuracyVsSeveritySpec(
  points: AccuracyPoint[],
  corruptions: string[] = [...new Set(points.map((p) => p.corruption))],
  models: string[] = [...new Set(points.map((p) => p.model))],
): VlSpec {
  return {
    data: { values: points },
    facet: { column: { field: "corruption", type: "nominal", title: null, sort: corruptions } },
    spec: {
      width: 170,
      height: 150,
      layer: [
        { mark: { type: "line", point: true } },
      ],
      encoding: {
        x: {
          field: "severity",
          type: "quantitative",
          title: "severity (0 = clean)",
          scale: { domain: [0, 5] },
          axis: { tickMinStep: 1 },
        },
        y: {
          field: "accuracy",
          type: "quantitative",
          title: "top-1 accuracy",
          axis: { format: ".0%" },
          scale: { domain: [0, 1] },
        },
        color: { field: "model", type: "nominal", title: "model", sort: models },
      },
    },
  };
}

/** A score with its interval. */
export interface ScorePoint {
  model: string;
  group: string;
  value: number;
  lo: number;
  hi: number;
}

/** Fig. 3A: robustness per category (bars) with bootstrap intervals (rules). */
export function robustnessByCategorySpec(points: ScorePoint[], models: string[]): VlSpec {
  const shared = {
    x: {
      field: "group",
      type: "nominal",
      title: "corruption category",
      sort: null,
      axis: { labelAngle: 0 },
    },
    xOffset: { field: "model", type: "nominal", sort: models },
    color: { field: "model", type: "nominal", sort: models, title: "model" },
  };
  return {
    width: { step: Math.max(10, Math.min(28, 160 / Math.max(1, models.length))) },
    height: 220,
    layer: [
      {
        data: { values: points },
        mark: "bar",
        encoding: {
          ...shared,
          y: { field: "value", type: "quantitative", title: "robustness (%)" },
        },
      },
      {
        data: { values: points },
        mark: { type: "rule", color: "black" },
        encoding: {
          ...shared,
          y: { field: "lo", type: "quantitative" },
          y2: { field: "hi" },
        },
      },
      {
        mark: { type: "rule", strokeDash: [4, 3], color: "#555" },
        encoding: { y: { datum: 100 } },
      },
    ],
  };
}

/** Fig. 3B: total robustness per model with bootstrap intervals. */
export function robustnessTotalSpec(points: ScorePoint[], models: string[]): VlSpec {
  return {
    data: { values: points },
    width: { step: 36 },
    height: 220,
    encoding: {
      x: { field: "model", type: "nominal", sort: models, title: null, axis: { labelAngle: -30 } },
      color: { field: "model", type: "nominal", sort: models, legend: null },
    },
    layer: [
      {
        mark: "bar",
        encoding: { y: { field: "value", type: "quantitative", title: "robustness, total (%)" } },
      },
      {
        mark: { type: "rule", color: "black" },
        encoding: { y: { field: "lo", type: "quantitative" }, y2: { field: "hi" } },
      },
    ],
  };
}

/** One network of Fig. 3C. */
export interface FevPoint {
  network: string;
  group: string;
  fev: number;
  robustness: number;
  cleanAccuracy: number;
}

/** A fitted line of Fig. 3C (robustness at the group's mean clean accuracy). */
export interface FitLine {
  group: string;
  fev: number;
  robustness: number;
}

/** Fig. 3C: robustness vs neural predictivity, one point per network, the regression lines. */
export function robustnessVsFevSpec(points: FevPoint[], lines: FitLine[]): VlSpec {
  const layers: VlSpec[] = [
    {
      data: { values: points },
      mark: { type: "point", filled: true, size: 60 },
      encoding: {
        x: {
          field: "fev",
          type: "quantitative",
          title: "neural predictivity: FEVe on the V1 test split",
          scale: { zero: false },
        },
        y: {
          field: "robustness",
          type: "quantitative",
          title: "robustness, total (%)",
          scale: { zero: false },
        },
        color: { field: "group", type: "nominal", title: "model" },
        tooltip: [{ field: "network" }, { field: "fev" }, { field: "robustness" }],
      },
    },
  ];
  if (lines.length) {
    layers.push({
      data: { values: lines },
      mark: { type: "line", strokeWidth: 2 },
      encoding: {
        x: { field: "fev", type: "quantitative" },
        y: { field: "robustness", type: "quantitative" },
        color: { field: "group", type: "nominal" },
      },
    });
  }
  return { width: 380, height: 260, layer: layers };
}
