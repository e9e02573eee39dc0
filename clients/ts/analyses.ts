/**
 * The analyses of issue 8 (SPEC.md section 7), run by the orchestrator after the classifiers are
 * trained, through the reconstructor and saliency-scorer services:
 *
 * - `reconstruction` (Fig. 5): a few test images, each reconstructed from a layer (default
 *   conv3_1) of each chosen network under every norm budget ||x||_2 <= r (reconstructor
 *   `Reconstruct`), and the spectral control of each reconstruction (`SpectralControl`: the
 *   original's Fourier phase with the reconstruction's amplitude). One PNG per image: a row per
 *   network; columns: the original, the reconstruction at each budget, then their controls.
 * - `saliency` (Fig. 7): more test images reconstructed at one budget by each network, and the
 *   salient-norm ratio rho_bar of each reconstruction (saliency-scorer `NormRatio`, the spectral
 *   residual density, mask at cumulative mass 0.7). One PNG: rho_bar of MTL-Monkey (y) against
 *   Baseline and against Oracle (x) per image, with the diagonal.
 *
 * Images are drawn from the test split by a seeded shuffle (core/random.ts) and TIN-normalised
 * (the networks' input units). The optimiser is SGD for co-trained (MTL) networks and Adam for
 * Baseline and Oracle, as in the paper, unless the experiment names one.
 *
 * Each analysis is idempotent: its whole outcome is kept in the store under the content key of
 * what it depends on (the settings, the data set, the networks' model ids), so a re-run is one
 * store read (`cached`); the services cache their own work as well.
 * @module
 */
import { Buffer } from "node:buffer";
import { figure5Png, figure7Png } from "../../core/analysis/figures.ts";
import { loadDataset } from "../../core/data/datasets.ts";
import { normalizeTin } from "../../core/data/augment.ts";
import { rngFor } from "../../core/random.ts";
import { requestKey } from "../../platform/jobs/jobs.ts";
import { RpcClient } from "../../platform/rpc/client.ts";
import type { ObjectStore } from "../../platform/store/mod.ts";
import { storeCache } from "../../platform/store/cache.ts";
import {
  decodeTensor,
  type HostTensor,
  resolveTensor,
  resolveTensorRef,
  type TensorMsg,
  tensorOrRef,
  type TensorOrRefMsg,
  type TensorRefMsg,
} from "../../platform/tensor/tensor.ts";
import { type Experiment, ExperimentError, type ModelSpec } from "./experiment.ts";

/** Proto and service names of the analysis services. */
export const RECONSTRUCTOR_PROTO = "cotrain/v1/reconstructor.proto";
export const RECONSTRUCTOR_SERVICE = "cotrain.v1.Reconstructor";
export const SALIENCY_PROTO = "cotrain/v1/saliency.proto";
export const SALIENCY_SERVICE = "cotrain.v1.SaliencyScorer";
/** Default ports (services/reconstructor, services/saliency-scorer). */
export const RECONSTRUCTOR_DEFAULT_PORT = 50055;
export const SALIENCY_DEFAULT_PORT = 50056;

/** A trained network the analyses can use (a subset of the pipeline's ClassifierResult). */
export interface AnalysisNetwork {
  name: string;
  kind: ModelSpec["kind"];
  seed: number;
  model_id: string;
}

/** The outcome of the reconstruction analysis (in results.json). */
export interface ReconstructionOutcome {
  layer: string;
  budgets: number[];
  steps: number;
  /** Test-split indices of the images. */
  images: number[];
  /** Image side in pixels. */
  side: number;
  /** ||x0||_2 per image (normalised units, noise included). */
  target_norms: number[];
  models: {
    name: string;
    kind: string;
    seed: number;
    model_id: string;
    optimizer: string;
    /** float32 [N, B, H, W, 1] in the store. */
    reconstructions_uri: string;
    /** [image][budget]: ||x*||_2 and the final layer loss. */
    norms: number[][];
    final_losses: number[][];
  }[];
  /** Fig. 5, one PNG (base64) per image: rows = models, columns = original, budgets, controls. */
  figures: string[];
}

/** The outcome of the saliency analysis (in results.json). */
export interface SaliencyOutcome {
  layer: string;
  budget: number;
  steps: number;
  mass: number;
  images: number[];
  /** rho of the originals (per image). */
  rho_original: number[];
  models: {
    name: string;
    kind: string;
    seed: number;
    model_id: string;
    optimizer: string;
    /** rho_bar of the reconstruction of each image (null: rho(I_o) = 1). */
    rho_bar: (number | null)[];
    /** Mean rho_bar over the images (finite values). */
    mean_rho_bar: number | null;
  }[];
  /** Fig. 7 (PNG, base64), or null when MTL-Monkey or both references are missing (see note). */
  figure: string | null;
  /** Which model is y, which are x. */
  note: string;
}

/** What the pipeline's results hold about the analyses. */
export interface AnalysesOutcome {
  reconstruction?: ReconstructionOutcome;
  saliency?: SaliencyOutcome;
}

type StepFn = <T>(
  kind: string,
  name: string,
  fn: () => Promise<{ value: T; cached: boolean; note?: string }>,
) => Promise<T>;

/** A progress bar factory (the pipeline's). */
export type BarFn = (
  name: string,
  total: number,
  unit: string,
) => { update(v: number): void; stop(): void };

/** Everything {@linkcode runAnalyses} needs from the pipeline. */
export interface AnalysisContext {
  exp: Experiment;
  dsUri: string;
  store: ObjectStore;
  networks: AnalysisNetwork[];
  targets: { reconstructor: string; saliencyScorer: string };
  step: StepFn;
  bar: BarFn;
}

// deno-lint-ignore no-explicit-any
type Msg = any;

const MTL_KINDS = new Set(["mtl-monkey", "mtl-shuffled", "mtl-oracle"]);

/** The networks an analysis uses: the named models (first seed), else one per listed kind. */
export function pickNetworks(
  networks: AnalysisNetwork[],
  names: string[] | undefined,
  kinds: ModelSpec["kind"][],
  field: string,
): AnalysisNetwork[] {
  const first = (pred: (n: AnalysisNetwork) => boolean) =>
    networks.filter(pred).sort((a, b) => a.seed - b.seed)[0];
  if (names) {
    return names.map((name, i) => {
      const n = first((c) => c.name === name);
      if (!n) {
        const known = [...new Set(networks.map((c) => c.name))].join(", ");
        throw new ExperimentError([`${field}[${i}]: no trained model named ${name} (${known})`]);
      }
      return n;
    });
  }
  return kinds.map((k) => first((c) => c.kind === k)).filter((n) => n !== undefined);
}

/** The optimiser of a network's reconstructions (the paper's choice unless one is named). */
export function optimizerFor(kind: string, named?: string): "sgd" | "adam" {
  if (named === "sgd" || named === "adam") return named;
  return MTL_KINDS.has(kind) ? "sgd" : "adam";
}

/** `count` test images by a seeded shuffle: their indices and the normalised [k, H, W, 1] batch. */
export async function pickImages(
  dsUri: string,
  store: ObjectStore,
  count: number,
  seed: number,
  noise: number,
  field: string,
): Promise<{ indices: number[]; x: HostTensor<"float32">; side: number }> {
  const ds = await loadDataset(dsUri, storeCache(store));
  const t = ds.test.images;
  const [n, h, w] = t.shape;
  if (count > n) {
    throw new ExperimentError([`${field}: ${count} images, but the test split has ${n}`]);
  }
  const order = rngFor(seed, "analysis-images").shuffle(Array.from({ length: n }, (_, i) => i));
  const indices = order.slice(0, count).sort((a, b) => a - b);
  const px = h * w;
  const data = t.dtype === "uint8" ? new Uint8Array(count * px) : new Float32Array(count * px);
  indices.forEach((r, k) => data.set(t.data.subarray(r * px, (r + 1) * px), k * px));
  const x = normalizeTin(
    { dtype: t.dtype, shape: [count, h, w], data } as Parameters<
      typeof normalizeTin
    >[0],
  );
  if (noise > 0) {
    const rng = rngFor(seed, "analysis-noise");
    for (let i = 0; i < x.data.length; i++) x.data[i] += rng.normal(0, noise);
  }
  return { indices, x: { dtype: "float32", shape: [count, h, w, 1], data: x.data }, side: h };
}

function f32(msg: TensorMsg): Float32Array {
  return decodeTensor(msg).data as Float32Array;
}

function rows(a: Float32Array, n: number, b: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * b, (i + 1) * b)));
}

/** One Reconstruct call, with a progress bar; returns the result message. */
async function reconstruct(
  rc: RpcClient,
  bar: BarFn,
  label: string,
  req: Record<string, unknown>,
): Promise<Msg> {
  const b = bar(label, Number(req.steps), "steps");
  let result: Msg = null;
  try {
    for await (const e of rc.stream<Msg>("Reconstruct", req)) {
      if (e.progress) b.update(Number(e.progress.done));
      if (e.result) result = e.result;
    }
  } finally {
    b.stop();
  }
  if (!result) throw new Error(`${label}: Reconstruct ended without a result`);
  return result;
}

/** A JSON value kept in the store under `key` (the analysis' content key). */
async function cachedJson<T>(
  store: ObjectStore,
  key: string,
  compute: () => Promise<T>,
): Promise<{ value: T; cached: boolean }> {
  if (await store.stat(key)) {
    return { value: JSON.parse(new TextDecoder().decode(await store.get(key))), cached: true };
  }
  const value = await compute();
  await store.put(key, new TextEncoder().encode(JSON.stringify(value)), {
    contentType: "application/json",
  });
  return { value, cached: false };
}

/** Runs the analyses the experiment declares (none: an empty outcome, no calls). */
export async function runAnalyses(ctx: AnalysisContext): Promise<AnalysesOutcome> {
  const { reconstruction, saliency } = ctx.exp.analyses;
  const out: AnalysesOutcome = {};
  if (!reconstruction && !saliency) return out;
  const rc = new RpcClient({
    protoFiles: [RECONSTRUCTOR_PROTO],
    service: RECONSTRUCTOR_SERVICE,
    target: ctx.targets.reconstructor,
  });
  const sc = saliency
    ? new RpcClient({
      protoFiles: [SALIENCY_PROTO],
      service: SALIENCY_SERVICE,
      target: ctx.targets.saliencyScorer,
    })
    : null;
  try {
    if (reconstruction) out.reconstruction = await runReconstruction(ctx, rc);
    if (saliency) out.saliency = await runSaliency(ctx, rc, sc!);
    return out;
  } finally {
    rc.close();
    sc?.close();
  }
}

async function runReconstruction(ctx: AnalysisContext, rc: RpcClient) {
  const a = ctx.exp.analyses.reconstruction!;
  const nets = pickNetworks(
    ctx.networks,
    a.models,
    ["baseline", "mtl-monkey", "mtl-shuffled", "oracle", "mtl-oracle"],
    "analyses.reconstruction.models",
  );
  const keyed = { analysis: "reconstruction", a, dsUri: ctx.dsUri, models: nets };
  const key = `pipeline/analysis/reconstruction-${await requestKey(keyed)}.json`;
  return await ctx.step(
    "analysis",
    `reconstruct ${a.images} image(s) x ${a.budgets.length} budget(s) from ${nets.length} models`,
    () =>
      cachedJson<ReconstructionOutcome>(ctx.store, key, async () => {
        const { indices, x, side } = await pickImages(
          ctx.dsUri,
          ctx.store,
          a.images,
          a.seed,
          a.noise,
          "analyses.reconstruction.images",
        );
        const n = indices.length, nb = a.budgets.length, px = side * side;
        const images = await tensorOrRef(
          x,
          ctx.store,
          `pipeline/analysis/images-${await requestKey({ d: ctx.dsUri, indices, a })}.f32`,
          1 << 20,
        );
        const models: ReconstructionOutcome["models"] = [];
        const recs: Float32Array[] = [];
        const controls: Float32Array[] = [];
        let targetNorms: number[] = [];
        for (const net of nets) {
          const optimizer = optimizerFor(net.kind, a.optimizer);
          const res = await reconstruct(rc, ctx.bar, `reconstruct ${net.name}`, {
            model_uri: net.model_id,
            layer: a.layer,
            images,
            budgets: a.budgets,
            steps: a.steps,
            optimizer,
            ...(a.lr !== undefined ? { lr: a.lr } : {}),
            seed: a.seed,
          });
          const ref = res.reconstructions as TensorRefMsg;
          const r = await resolveTensorRef(ref, ctx.store, { field: "reconstructions" });
          recs.push(r.data as Float32Array);
          if (a.spectralControl) {
            const sp = await rc.unary<Msg>("SpectralControl", {
              originals: images,
              reconstructions: { ref },
            }, { deadlineMs: 0 });
            const c = await resolveTensor(sp.controls as TensorOrRefMsg, ctx.store, {
              field: "controls",
            });
            controls.push(c.data as Float32Array);
          }
          targetNorms = Array.from(f32(res.target_norms));
          models.push({
            name: net.name,
            kind: net.kind,
            seed: net.seed,
            model_id: net.model_id,
            optimizer,
            reconstructions_uri: ref.uri,
            norms: rows(f32(res.norms), n, nb),
            final_losses: rows(f32(res.final_losses), n, nb),
          });
        }
        const cell = (a: Float32Array, i: number, b: number) =>
          a.subarray((i * nb + b) * px, (i * nb + b + 1) * px);
        const figures = indices.map((_, i) =>
          encodeBase64(figure5Png(
            x.data.subarray(i * px, (i + 1) * px),
            nets.map((_, m) => ({
              reconstructions: a.budgets.map((_, b) => cell(recs[m], i, b)),
              ...(a.spectralControl
                ? { controls: a.budgets.map((_, b) => cell(controls[m], i, b)) }
                : {}),
            })),
            side,
            { scale: side <= 32 ? 3 : 2 },
          ))
        );
        return {
          layer: a.layer,
          budgets: a.budgets,
          steps: a.steps,
          images: indices,
          side,
          target_norms: targetNorms,
          models,
          figures,
        };
      }),
  );
}

async function runSaliency(ctx: AnalysisContext, rc: RpcClient, sc: RpcClient) {
  const s = ctx.exp.analyses.saliency!;
  const rec = ctx.exp.analyses.reconstruction;
  const layer = s.layer ?? rec?.layer ?? "conv3_1";
  const steps = s.steps ?? rec?.steps ?? 8000;
  const budget = s.budget ?? (rec ? Math.min(...rec.budgets) : 5);
  const nets = pickNetworks(
    ctx.networks,
    s.models,
    ["baseline", "mtl-monkey", "oracle"],
    "analyses.saliency.models",
  );
  const keyed = {
    analysis: "saliency",
    s,
    layer,
    steps,
    budget,
    dsUri: ctx.dsUri,
    models: nets,
  };
  const key = `pipeline/analysis/saliency-${await requestKey(keyed)}.json`;
  return await ctx.step(
    "analysis",
    `salient-norm ratio of ${s.images} image(s) from ${nets.length} models`,
    () =>
      cachedJson<SaliencyOutcome>(ctx.store, key, async () => {
        const { indices, x } = await pickImages(
          ctx.dsUri,
          ctx.store,
          s.images,
          s.seed,
          0,
          "analyses.saliency.images",
        );
        const n = indices.length;
        const images = await tensorOrRef(
          x,
          ctx.store,
          `pipeline/analysis/images-${await requestKey({ d: ctx.dsUri, indices, s })}.f32`,
          1 << 20,
        );
        const models: SaliencyOutcome["models"] = [];
        let rhoOriginal: number[] = [];
        for (const net of nets) {
          const optimizer = optimizerFor(net.kind, s.optimizer);
          const res = await reconstruct(rc, ctx.bar, `reconstruct ${net.name} (saliency)`, {
            model_uri: net.model_id,
            layer,
            images,
            budgets: [budget],
            steps,
            optimizer,
            seed: s.seed,
          });
          const nr = await sc.unary<Msg>("NormRatio", {
            originals: images,
            reconstructions: { ref: res.reconstructions },
            mass: s.mass,
          }, { deadlineMs: 0 });
          rhoOriginal = Array.from(f32(nr.rho_original));
          const rb = Array.from(f32(nr.rho_bar)).slice(0, n);
          const finite = rb.filter(Number.isFinite);
          models.push({
            name: net.name,
            kind: net.kind,
            seed: net.seed,
            model_id: net.model_id,
            optimizer,
            rho_bar: rb.map((v) => Number.isFinite(v) ? v : null),
            mean_rho_bar: finite.length ? finite.reduce((p, q) => p + q, 0) / finite.length : null,
          });
        }
        const byKind = (k: string) => models.find((m) => m.kind === k);
        const mtl = byKind("mtl-monkey"), base = byKind("baseline"), oracle = byKind("oracle");
        const nums = (m: typeof mtl) => m!.rho_bar.map((v) => v ?? NaN);
        let figure: string | null = null;
        let note: string;
        if (mtl && (base || oracle)) {
          figure = encodeBase64(figure7Png({
            mtl: nums(mtl),
            ...(base ? { baseline: nums(base) } : {}),
            ...(oracle ? { oracle: nums(oracle) } : {}),
          }));
          note = `y: ${mtl.name}; x: ${
            [base && `${base.name} (blue)`, oracle && `${oracle.name} (orange)`]
              .filter(Boolean).join(", ")
          }`;
        } else {
          note = "Fig. 7 needs an MTL-Monkey network and a Baseline or Oracle among the models";
        }
        return {
          layer,
          budget,
          steps,
          mass: s.mass,
          images: indices,
          rho_original: rhoOriginal,
          models,
          figure,
          note,
        };
      }),
  );
}

/** Keeps only what identifies a network (so its content key does not change with scores). */
export function analysisNetworks(
  cs: { name: string; kind: ModelSpec["kind"]; seed: number; model_id: string }[],
): AnalysisNetwork[] {
  return cs.map(({ name, kind, seed, model_id }) => ({ name, kind, seed, model_id }));
}

function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
