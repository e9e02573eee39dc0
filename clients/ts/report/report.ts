/**
 * report.html of a pipeline run: one self-contained page (inline SVG and PNG figures, no
 * scripts) with the paper's figures and tables:
 *
 * - Fig. 2: accuracy vs severity for the chosen corruptions;
 * - Fig. 3A/B: robustness per category and in total (Baseline = 100%) with bootstrap intervals;
 * - Fig. 3C: robustness vs neural predictivity per network (FEVe of the network's own neural
 *   branch on the V1 test split), with the regression line (robustness ~ b0 + b1 clean accuracy
 *   + b2 FEVe, from core/metrics/regression.ts) and its coefficients, standard errors, t
 *   statistics and p-values;
 * - a table of clean accuracy, FEVe on the V1 test split, scores and mCE per model; the Monkey
 *   Predictor's FEVe on held-out V1 data; the steps the pipeline ran (and which were cached).
 *
 * - Fig. 5 (when the experiment declares `analyses.reconstruction`): norm-constrained
 *   reconstructions, a row per network, columns the original, each budget and the spectral
 *   controls, one PNG per image, with a table of the reconstructions' norms and losses;
 * - Fig. 7 (`analyses.saliency`): the salient-norm ratio rho_bar per image, MTL-Monkey against
 *   Baseline and Oracle, with the diagonal (a PNG).
 *
 * Every figure is a `<figure class="figure" id="...">` holding one `<svg>` (Fig. 2, 3A-C) or
 * PNG `<img>`s as data: URLs (Fig. 5, 7), so the page stays one self-contained file.
 *
 * @example
 * ```ts ignore
 * import { renderReport } from "./report.ts";
 * const results = JSON.parse(await Deno.readTextFile("runs/demo/results.json"));
 * await Deno.writeTextFile("runs/demo/report.html", await renderReport(results));
 * ```
 * @module
 */
import type { ModelScoreMsg } from "../lib/shards_types.ts";
import type { PipelineResults } from "../pipeline.ts";
import { KIND_NAMES } from "../experiment.ts";
import {
  type AccuracyPoint,
  accuracyVsSeveritySpec,
  type FevPoint,
  type FitLine,
  renderSvg,
  robustnessByCategorySpec,
  robustnessTotalSpec,
  robustnessVsFevSpec,
  type ScorePoint,
} from "./figures.ts";

/** The ids of the figures a complete report holds (each an SVG). */
export const FIGURE_IDS = ["fig2", "fig3a", "fig3b", "fig3c"] as const;
/**
 * The ids of the analyses' figures (PNG images, as data: URLs), present when the experiment
 * declares the analyses: Fig. 5 (reconstruction) and Fig. 7 (saliency).
 */
export const ANALYSIS_FIGURE_IDS = ["fig5", "fig7"] as const;

const CATEGORY_ORDER = ["noise", "blur", "weather", "digital"];

function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

function num(v: unknown, digits = 1): string {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–";
}

function est(e: { value: number; lo: number; hi: number } | undefined, scale = 1): string {
  if (!e || !Number.isFinite(e.value)) return "–";
  const f = (v: number) =>
    !Number.isFinite(v) ? "–" : Math.abs(v) >= 1e4 ? v.toExponential(1) : v.toFixed(1);
  return `${f(scale * e.value)} <small>[${f(scale * e.lo)}, ${f(scale * e.hi)}]</small>`;
}

function pValue(p: number): string {
  if (!Number.isFinite(p)) return "–";
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

/** The figures' data, pulled out of the results (exported for tests). */
export function figureData(r: PipelineResults): {
  accuracy: AccuracyPoint[];
  categories: ScorePoint[];
  totals: ScorePoint[];
  fev: FevPoint[];
  lines: FitLine[];
  models: string[];
} {
  const scores = r.scores?.models ?? [];
  const models = scores.map((m) => m.name);
  const ev = r.experiment.evaluation;
  const figCorr = ev.figureCorruptions ?? ev.corruptions.slice(0, 4);
  const accuracy: AccuracyPoint[] = [];
  for (const m of scores) {
    for (const c of figCorr) {
      accuracy.push({
        model: m.name,
        corruption: c,
        severity: 0,
        accuracy: m.clean_accuracy.value,
      });
      for (const a of m.accuracy) {
        if (a.corruption === c) {
          accuracy.push({
            model: m.name,
            corruption: c,
            severity: a.severity,
            accuracy: a.accuracy,
          });
        }
      }
    }
  }
  const categories: ScorePoint[] = [];
  const totals: ScorePoint[] = [];
  for (const m of scores) {
    for (const g of CATEGORY_ORDER) {
      const e = m.robustness[g];
      if (e) categories.push({ model: m.name, group: g, ...e });
    }
    totals.push({ model: m.name, group: "total", ...m.robustness_total });
  }
  const runScores = new Map((r.runScores?.models ?? []).map((m) => [m.name, m]));
  const fev: FevPoint[] = [];
  for (const c of r.classifiers) {
    const s = runScores.get(`${c.name} #${c.seed}`) as ModelScoreMsg | undefined;
    if (!s || !Number.isFinite(c.fev) || c.fev === null) continue;
    fev.push({
      network: `${c.name} #${c.seed}`,
      group: KIND_NAMES[c.kind as keyof typeof KIND_NAMES] ?? c.kind,
      fev: c.fev,
      robustness: s.robustness_total.value,
      cleanAccuracy: s.clean_accuracy.value,
    });
  }
  const lines: FitLine[] = [];
  for (const reg of r.regressions) {
    if (!reg.fit) continue;
    const pts = fev.filter((p) => p.group === reg.group);
    if (pts.length === 0) continue;
    const coef = Object.fromEntries(reg.fit.coefficients.map((c) => [c.name, c.estimate]));
    const meanAcc = pts.reduce((s, p) => s + p.cleanAccuracy, 0) / pts.length;
    const xs = pts.map((p) => p.fev);
    for (const x of [Math.min(...xs), Math.max(...xs)]) {
      lines.push({
        group: reg.group,
        fev: x,
        robustness: coef.intercept + coef.clean_accuracy * meanAcc + coef.fev * x,
      });
    }
  }
  return { accuracy, categories, totals, fev, lines, models };
}

function figure(id: string, title: string, svg: string, caption: string): string {
  return `<figure class="figure" id="${id}"><h2>${esc(title)}</h2>${svg}<figcaption>${caption}` +
    `</figcaption></figure>`;
}

function pngImg(b64: string, alt: string): string {
  return `<img src="data:image/png;base64,${b64}" alt="${esc(alt)}">`;
}

/** Fig. 5 and Fig. 7 (PNG images from core/analysis/figures.ts), when the analyses ran. */
function analysisFigures(r: PipelineResults): string[] {
  const out: string[] = [];
  const rec = r.analyses?.reconstruction;
  if (rec && rec.figures.length) {
    const withControls = r.experiment.analyses.reconstruction?.spectralControl ?? false;
    const imgs = rec.figures.map((b64, i) =>
      `<div class="panel">${
        pngImg(b64, `Fig. 5: reconstructions of test image ${rec.images[i]}`)
      }<br><small>test image ${rec.images[i]}, ||x0|| = ${
        num(rec.target_norms[i], 1)
      }</small></div>`
    ).join("");
    const normRows = rec.models.map((m) =>
      `<tr><td>${esc(m.name)}</td><td>${esc(m.optimizer)}</td>${
        rec.budgets.map((_, b) => {
          const mean = (a: number[][]) => a.reduce((s, row) => s + row[b], 0) / a.length;
          return `<td>${num(mean(m.norms), 2)}</td><td>${num(mean(m.final_losses), 4)}</td>`;
        }).join("")
      }</tr>`
    ).join("\n");
    const normTable = `<table id="fig5-norms"><thead><tr><th>model</th><th>optimiser</th>${
      rec.budgets.map((b) => `<th>||x*|| (r = ${b})</th><th>loss (r = ${b})</th>`).join("")
    }</tr></thead><tbody>${normRows}</tbody></table>`;
    out.push(figure(
      "fig5",
      "Fig. 5 — norm-constrained reconstructions",
      imgs + normTable,
      `Reconstructions x* = argmin ||f(x) − f(x0)||² subject to ||x||₂ ≤ r from ${
        esc(rec.layer)
      } of each network (${rec.steps} steps, seeded random start). Rows, top to bottom: ${
        rec.models.map((m) => esc(`${m.name} #${m.seed}`)).join(", ")
      }. Columns: the original, the reconstruction at r = ${rec.budgets.join(", ")}${
        withControls
          ? `, then the spectral control of each (the original's Fourier phase with the ` +
            `reconstruction's amplitude, the same norm)`
          : ""
      }. Each cell is stretched to its own range. The table: mean ||x*|| and final layer loss ` +
        `over the images.`,
    ));
  }
  const sal = r.analyses?.saliency;
  if (sal && sal.figure) {
    const means = sal.models.map((m) => `${esc(m.name)} ${num(m.mean_rho_bar ?? NaN, 3)}`)
      .join(", ");
    out.push(figure(
      "fig7",
      "Fig. 7 — salient-norm ratio per image",
      pngImg(sal.figure, "Fig. 7: rho_bar per image, MTL-Monkey against Baseline and Oracle"),
      `ρ̄ = (ρ(I<sub>r</sub>) − ρ(I<sub>o</sub>)) / (1 − ρ(I<sub>o</sub>)), ρ(I) the share of ` +
        `||I||² on the original's salient pixels (spectral-residual saliency, mask at ` +
        `cumulative mass ${sal.mass}), for reconstructions at r = ${sal.budget} from ${
          esc(sal.layer)
        } (${sal.steps} steps) of ${sal.images.length} test images. One dot per image; ` +
        `${esc(sal.note)}; axes −1..1, the diagonal y = x: dots above it are images whose ` +
        `MTL reconstruction keeps more of its norm on the salient pixels. Mean ρ̄: ${means}.`,
    ));
  } else if (sal) {
    out.push(`<p>Fig. 7 not drawn: ${esc(sal.note)}.</p>`);
  }
  return out;
}

/** Renders the report page of a pipeline run. */
export async function renderReport(r: PipelineResults): Promise<string> {
  const d = figureData(r);
  const ev = r.experiment.evaluation;
  const conf = `${Math.round(100 * ev.confidence)}%`;
  const figs: string[] = [];
  figs.push(figure(
    "fig2",
    "Fig. 2 — accuracy vs severity",
    await renderSvg(
      accuracyVsSeveritySpec(
        d.accuracy,
        ev.figureCorruptions ?? ev.corruptions.slice(0, 4),
        d.models,
      ),
    ),
    `Top-1 accuracy on the test split under each corruption (preset ${esc(ev.preset)}), mean ` +
      `over training seeds; severity 0 is the clean images.`,
  ));
  figs.push(figure(
    "fig3a",
    "Fig. 3A — robustness per category",
    await renderSvg(robustnessByCategorySpec(d.categories, d.models)),
    `Robustness score per corruption category: mean over the category's corruptions of ` +
      `A<sub>c</sub>(model) / A<sub>c</sub>(Baseline), in % (Baseline = 100, dashed). Bars: ` +
      `${conf} bootstrap intervals over test images (${ev.bootstrap} resamples).`,
  ));
  figs.push(figure(
    "fig3b",
    "Fig. 3B — robustness in total",
    await renderSvg(robustnessTotalSpec(d.totals, d.models)),
    `Robustness over all ${ev.corruptions.length} corruptions, with ${conf} bootstrap intervals.`,
  ));
  const regNotes = r.regressions.map((g) => `${esc(g.group)}: ${esc(g.note)}`).join("; ");
  figs.push(figure(
    "fig3c",
    "Fig. 3C — robustness vs neural predictivity",
    await renderSvg(robustnessVsFevSpec(d.fev, d.lines)),
    `One point per co-trained network. Neural predictivity is FEVe (fraction of explainable ` +
      `variance explained, Cadena et al. 2019) of the network's own neural branch (shared trunk ` +
      `to conv3_1 and its Gaussian readout, eval mode) on the test split of the V1 data set. ` +
      `Lines: the regression robustness ~ b0 + b1·clean accuracy + b2·FEVe of each group, drawn ` +
      `at the group's mean clean accuracy. ${
        regNotes || "No co-trained networks in this experiment."
      }`,
  ));

  figs.push(...analysisFigures(r));

  const scoreRows = (r.scores?.models ?? []).map((m) => {
    const cs = r.classifiers.filter((c) => c.name === m.name);
    const fevs = cs.map((c) => c.fev).filter((v) => typeof v === "number" && Number.isFinite(v));
    const fev = fevs.length ? fevs.reduce((a, b) => a + b, 0) / fevs.length : NaN;
    return `<tr><td>${esc(m.name)}</td><td>${cs.length}</td><td>${
      est(m.clean_accuracy, 100)
    }</td><td>${num(fev, 3)}</td>${
      CATEGORY_ORDER.map((g) => `<td>${est(m.robustness[g])}</td>`).join("")
    }<td><b>${est(m.robustness_total)}</b></td><td>${est(m.mce)}</td><td>${
      est(m.relative_mce)
    }</td></tr>`;
  }).join("\n");
  const scoreTable = `<table id="scores"><thead><tr><th>model</th><th>seeds</th>` +
    `<th>clean accuracy (%)</th><th>FEVe (V1 test)</th>` +
    CATEGORY_ORDER.map((g) => `<th>${g} (%)</th>`).join("") +
    `<th>total (%)</th><th>mCE (%)</th><th>relative mCE (%)</th></tr></thead>` +
    `<tbody>${scoreRows}</tbody></table>`;

  const predRows = r.predictors.map((p) => {
    const t = p.test as Record<string, number | boolean>;
    return `<tr><td>${esc(p.name)}</td><td>${p.epochs}</td><td>${num(t.feve, 3)}</td><td>${
      t.has_ceiling ? num(t.ceiling_feve, 3) : "–"
    }</td><td>${num(t.fev, 3)}</td><td>${num(t.single_trial_correlation, 3)}</td><td>${
      num(t.correlation_to_average, 3)
    }</td></tr>`;
  }).join("\n");
  const predTable = r.predictors.length
    ? `<table id="predictors"><thead><tr><th>predictor</th><th>epochs</th><th>FEVe</th>` +
      `<th>ceiling FEVe</th><th>FEV of the data</th><th>single-trial r</th>` +
      `<th>r to average</th></tr></thead><tbody>${predRows}</tbody></table>`
    : "<p>No Monkey Predictor in this experiment.</p>";

  const regRows = r.regressions.flatMap((g) =>
    g.fit
      ? g.fit.coefficients.map((c) =>
        `<tr><td>${esc(g.group)}</td><td>${esc(c.name)}</td><td>${num(c.estimate, 3)}</td><td>${
          num(c.stdError, 3)
        }</td><td>${num(c.t, 2)}</td><td>${pValue(c.p)}</td><td>${g.fit!.n}</td><td>${
          num(g.fit!.rSquared, 3)
        }</td></tr>`
      )
      : [`<tr><td>${esc(g.group)}</td><td colspan="7">${esc(g.note)}</td></tr>`]
  ).join("\n");
  const regTable = r.regressions.length
    ? `<table id="regression"><thead><tr><th>group</th><th>coefficient</th><th>estimate</th>` +
      `<th>std. error</th><th>t</th><th>p</th><th>n</th><th>R²</th></tr></thead><tbody>` +
      `${regRows}</tbody></table>`
    : "<p>No regression (no co-trained networks).</p>";

  const stepRows = r.steps.map((s) =>
    `<tr><td>${esc(s.kind)}</td><td>${esc(s.name)}</td><td>${
      s.skipped ? "skipped" : s.cached ? "from the store" : "computed"
    }</td><td>${num(s.seconds, 1)}</td><td>${esc(s.note ?? "")}</td></tr>`
  ).join("\n");
  const pending = r.pendingAnalyses.length
    ? `<p>Analyses configured but not run by this pipeline yet: ${
      r.pendingAnalyses.map(esc).join(", ")
    }.</p>`
    : "";
  const exp = r.experiment;
  const imageSet = exp.imageSet.kind === "builtin"
    ? `built-in image set (${exp.imageSet.classes} classes, ${exp.imageSet.size} px)`
    : `Tiny ImageNet at ${esc(exp.imageSet.path)}`;
  const v1 = exp.v1.kind === "simulated"
    ? `simulated V1 population (${exp.v1.neurons} neurons, ${exp.v1.sessions} sessions)`
    : `V1 arrays ${esc(exp.v1.path)}`;

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cotrain report: ${esc(exp.name)}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
figure { margin: 2em 0; overflow-x: auto; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
small { color: #666; }
.panel { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
</style></head>
<body>
<h1>cotrain: ${esc(exp.name)}</h1>
<p>${esc(exp.description ?? "")}</p>
<p>Image set: ${imageSet}. V1 data: ${v1}. Training seeds: ${exp.seeds.join(", ")}.
Corruptions: ${ev.corruptions.length} × severities ${ev.severities.join(", ")}
(preset ${esc(ev.preset)}${ev.limit ? `, first ${ev.limit} test images` : ""}). Created ${
    esc(r.created)
  }.</p>
<h2>Scores per model</h2>
<p>Clean accuracy and scores with ${conf} bootstrap intervals; robustness in % of the Baseline
(${esc(r.scores?.baseline ?? "Baseline")} = 100); mCE and relative mCE (Hendrycks) with the
Baseline as reference (lower is better).</p>
${scoreTable}
${figs.join("\n")}
<h2>Fig. 3C regression</h2>
${regTable}
<h2>Monkey Predictor on held-out V1 data</h2>
${predTable}
${pending}
<h2>Steps</h2>
<table id="steps"><thead><tr><th>kind</th><th>step</th><th>result</th><th>seconds</th><th>note</th>
</tr></thead><tbody>${stepRows}</tbody></table>
</body></html>
`;
}
