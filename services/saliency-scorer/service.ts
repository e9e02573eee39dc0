/**
 * Handlers of `cotrain.v1.SaliencyScorer` (protos/cotrain/v1/saliency.proto): saliency density
 * maps (spectral residual, Hou & Zhang 2007, or supplied arrays), 70% salient masks and the
 * salient-norm ratio of Eq. 1, batched; the science is in core/analysis/saliency.ts.
 *
 * @example
 * ```ts ignore
 * import { saliencyHandlers } from "./service.ts";
 * import { openStore } from "../../platform/store/mod.ts";
 * const handlers = saliencyHandlers({ store: openStore("file:///tmp/cotrain") });
 * ```
 * @module
 */
import {
  DEFAULT_MASS,
  normRatio,
  resizeImage,
  SALIENCY_SIZE,
  salientMask,
  spectralResidualSaliency,
  toDensity,
} from "../../core/analysis/saliency.ts";
import { CotrainError } from "../../platform/errors.ts";
import type { ServiceHandlers } from "../../platform/rpc/server.ts";
import type { ObjectStore } from "../../platform/store/types.ts";
import {
  encodeTensor,
  type HostTensor,
  resolveTensor,
  tensorOrRef,
  type TensorOrRefMsg,
} from "../../platform/tensor/tensor.ts";

/** Fully qualified service name. */
export const SALIENCY_SERVICE = "cotrain.v1.SaliencyScorer";
/** The service's .proto (relative to protos/). */
export const SALIENCY_PROTO = "cotrain/v1/saliency.proto";

/** The saliency models this service computes, with their papers. */
export const SALIENCY_MODELS: Record<string, string> = {
  "spectral-residual":
    "X. Hou and L. Zhang, Saliency Detection: A Spectral Residual Approach, CVPR 2007",
};

/** What the handlers need. */
export interface SaliencyDeps {
  store: ObjectStore;
  /** Largest tensor sent inline (larger density batches go through the store). */
  inlineLimitBytes?: number;
}

const S = SALIENCY_SIZE;

/** A batch of gray images, each as float64-friendly values, with its size. */
interface Gray {
  n: number;
  h: number;
  w: number;
  /** Images per original (reconstructions: K), 1 otherwise. */
  k: number;
  values: Float32Array;
}

async function grayImages(
  msg: TensorOrRefMsg | null | undefined,
  store: ObjectStore,
  field: string,
  perOriginal = false,
): Promise<Gray> {
  const t: HostTensor = await resolveTensor(msg, store, {
    field,
    dtypes: ["uint8", "float32"],
    rejectNonFinite: true,
  });
  let s = [...t.shape];
  if (s.length >= 4 && s[s.length - 1] === 1) s = s.slice(0, -1);
  let k = 1;
  if (perOriginal && s.length === 4) {
    k = s[1];
    s = [s[0] * s[1], s[2], s[3]];
  }
  if (s.length !== 3 || s[0] < 1 || s[1] < 2 || s[2] < 2) {
    throw CotrainError.invalidArgument(
      `${field}: shape [${t.shape}]; expected gray [N, H, W] or [N, H, W, 1]` +
        (perOriginal ? " (or [N, K, H, W(, 1)])" : "") + ", at least 2x2",
    );
  }
  return {
    n: s[0] / k,
    k,
    h: s[1],
    w: s[2],
    values: Float32Array.from(t.data as ArrayLike<number>),
  };
}

function image(g: Gray, i: number): Float32Array {
  return g.values.subarray(i * g.h * g.w, (i + 1) * g.h * g.w);
}

function checkModel(model: string | undefined): string {
  const m = model || "spectral-residual";
  if (!(m in SALIENCY_MODELS)) {
    throw CotrainError.invalidArgument(
      `model: unknown ${JSON.stringify(m)}; allowed: ${Object.keys(SALIENCY_MODELS).join(", ")} ` +
        `(or supply densities)`,
    );
  }
  return m;
}

function checkMass(req: Record<string, unknown>): number {
  const v = req.mass;
  const set = v !== undefined && v !== null && (!("_mass" in req) || req._mass === "mass");
  const mass = set ? Number(v) : DEFAULT_MASS;
  if (!(mass > 0 && mass <= 1)) throw CotrainError.invalidArgument(`mass: ${mass}; in (0, 1]`);
  return mass;
}

/** Densities [N, 64, 64] of the originals: supplied (resized, normalised) or from the model. */
async function densitiesOf(
  images: Gray | null,
  supplied: TensorOrRefMsg | null | undefined,
  store: ObjectStore,
): Promise<Float32Array[]> {
  if (supplied && (supplied.inline || supplied.ref)) {
    const d = await grayImages(supplied, store, "densities");
    if (images && d.n !== images.n) {
      throw CotrainError.invalidArgument(
        `densities: ${d.n} maps for ${images.n} originals; one per original`,
      );
    }
    return Array.from(
      { length: d.n },
      (_, i) => toDensity(resizeImage(image(d, i), d.h, d.w, S, S), `densities[${i}]`),
    );
  }
  if (!images) throw CotrainError.invalidArgument("images: set images or densities");
  return Array.from({ length: images.n }, (_, i) => {
    try {
      return spectralResidualSaliency(image(images, i), images.h, images.w);
    } catch (err) {
      throw CotrainError.invalidArgument(
        `images[${i}]: no saliency (${(err as Error).message}); supply densities instead`,
      );
    }
  });
}

/** The handlers of the service. */
export function saliencyHandlers(deps: SaliencyDeps): ServiceHandlers {
  const { store } = deps;
  const inlineLimit = deps.inlineLimitBytes ?? 4 * 1024 * 1024;
  return {
    async SaliencyMap(req: { images?: TensorOrRefMsg; model?: string }) {
      const model = checkModel(req.model);
      const g = await grayImages(req.images, store, "images");
      const maps = await densitiesOf(g, null, store);
      const out = new Float32Array(g.n * S * S);
      maps.forEach((m, i) => out.set(m, i * S * S));
      return {
        densities: await tensorOrRef(
          { dtype: "float32", shape: [g.n, S, S], data: out },
          store,
          `saliency/${crypto.randomUUID()}.f32`,
          inlineLimit,
        ),
        model,
        citation: SALIENCY_MODELS[model],
      };
    },

    async SalientMask(req: {
      images?: TensorOrRefMsg | null;
      densities?: TensorOrRefMsg | null;
      mass?: number;
      model?: string;
    }) {
      const hasImages = !!(req.images && (req.images.inline || req.images.ref));
      const hasDensities = !!(req.densities && (req.densities.inline || req.densities.ref));
      if (hasImages === hasDensities) {
        throw CotrainError.invalidArgument("images, densities: set exactly one of the two");
      }
      const mass = checkMass(req as Record<string, unknown>);
      checkModel(req.model);
      const g = hasImages ? await grayImages(req.images, store, "images") : null;
      const maps = await densitiesOf(g, hasDensities ? req.densities : null, store);
      const masks = new Uint8Array(maps.length * S * S);
      const held: number[] = [];
      const counts: number[] = [];
      maps.forEach((d, i) => {
        const m = salientMask(d, mass);
        masks.set(m.mask, i * S * S);
        held.push(m.mass);
        counts.push(m.count);
      });
      return {
        masks: encodeTensor({ dtype: "uint8", shape: [maps.length, S, S], data: masks }),
        mass: held,
        count: counts,
      };
    },

    async NormRatio(req: {
      originals?: TensorOrRefMsg;
      reconstructions?: TensorOrRefMsg;
      densities?: TensorOrRefMsg | null;
      mass?: number;
      model?: string;
    }) {
      const mass = checkMass(req as Record<string, unknown>);
      checkModel(req.model);
      const o = await grayImages(req.originals, store, "originals");
      const r = await grayImages(req.reconstructions, store, "reconstructions", true);
      if (r.n !== o.n) {
        throw CotrainError.invalidArgument(
          `reconstructions: ${r.n} originals' worth ([N, K, H, W] with N = ${r.n}); the originals ` +
            `are ${o.n}`,
        );
      }
      const maps = await densitiesOf(o, req.densities, store);
      const k = r.k;
      const rhoO = new Float32Array(o.n);
      const rhoR = new Float32Array(o.n * k);
      const rhoBar = new Float32Array(o.n * k);
      const masks = new Uint8Array(o.n * S * S);
      for (let i = 0; i < o.n; i++) {
        const { mask } = salientMask(maps[i], mass);
        masks.set(mask, i * S * S);
        const orig = resizeImage(image(o, i), o.h, o.w, S, S);
        const recs = Array.from(
          { length: k },
          (_, j) => resizeImage(image(r, i * k + j), r.h, r.w, S, S),
        );
        let res;
        try {
          res = normRatio(orig, recs, mask);
        } catch (err) {
          throw CotrainError.invalidArgument(
            `originals[${i}] or its reconstructions: ${(err as Error).message}`,
          );
        }
        rhoO[i] = res.rhoOriginal;
        rhoR.set(res.rhoReconstructions, i * k);
        rhoBar.set(res.rhoBar, i * k);
      }
      return {
        rho_original: encodeTensor({ dtype: "float32", shape: [o.n], data: rhoO }),
        rho_reconstruction: encodeTensor({ dtype: "float32", shape: [o.n, k], data: rhoR }),
        rho_bar: encodeTensor({ dtype: "float32", shape: [o.n, k], data: rhoBar }),
        masks: encodeTensor({ dtype: "uint8", shape: [o.n, S, S], data: masks }),
      };
    },
  };
}
