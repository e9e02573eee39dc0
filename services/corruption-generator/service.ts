/**
 * Handlers of `cotrain.v1.CorruptionGenerator` (protos/cotrain/v1/corruption.proto): decode the
 * batch (inline or through the store), call core/corruptions, send the result back inline or as a
 * TensorRef. Bad input surfaces as INVALID_ARGUMENT from the tensor codec or from core.
 *
 * @example
 * ```ts ignore
 * import { corruptionHandlers } from "./service.ts";
 * import { openStore } from "../../platform/store/mod.ts";
 * const handlers = corruptionHandlers({ store: openStore("file:///tmp/cotrain"), inlineLimitBytes: 4 << 20 });
 * ```
 * @module
 */
import {
  checkOptions,
  corruptBatch,
  CORRUPTIONS,
  type CorruptOptions,
  GROUPS,
  type ImageBatch,
  PAPER_14,
  PRESET_NAMES,
  PRESETS,
} from "../../core/corruptions/mod.ts";
import { CotrainError } from "../../platform/errors.ts";
import type { ServiceHandlers } from "../../platform/rpc/server.ts";
import type { ObjectStore } from "../../platform/store/types.ts";
import {
  type HostTensor,
  resolveTensor,
  sha256Hex,
  tensorOrRef,
  type TensorOrRefMsg,
} from "../../platform/tensor/tensor.ts";
import { yieldTurn } from "../../core/event_loop.ts";

/** Fully qualified service name. */
export const CORRUPTION_SERVICE = "cotrain.v1.CorruptionGenerator";
/** The service's .proto (relative to protos/). */
export const CORRUPTION_PROTO = "cotrain/v1/corruption.proto";

/** Wire form of CorruptOptions. */
export interface OptionsMsg {
  seed?: number;
  preset?: string;
  index_offset?: number;
  gray_path?: string;
  to_gray?: boolean;
  quantization?: string;
}

/** What the handlers need. */
export interface CorruptionDeps {
  store: ObjectStore;
  inlineLimitBytes: number;
}

const SEEDING = "each image draws from xoshiro128** seeded by a murmur3-finalised hash of " +
  "(seed, index_offset + i, corruption number, severity): any batch split gives the same bytes";

/** The request's options as core's. */
export function toCoreOptions(
  corruption: string,
  severity: number,
  o: OptionsMsg | null | undefined,
  isUint8: boolean,
): CorruptOptions {
  const q = o?.quantization ?? "QUANTIZATION_DEFAULT";
  let truncate: boolean | undefined;
  if (q === "QUANTIZATION_TRUNCATE") truncate = true;
  else if (q === "QUANTIZATION_ROUND") truncate = false;
  else if (q !== "QUANTIZATION_DEFAULT") {
    throw CotrainError.invalidArgument(
      `options.quantization: unknown ${JSON.stringify(q)}; allowed: QUANTIZATION_DEFAULT, ` +
        `QUANTIZATION_TRUNCATE, QUANTIZATION_ROUND`,
    );
  }
  const g = o?.gray_path ?? "GRAY_PATH_UNSPECIFIED";
  if (!["GRAY_PATH_UNSPECIFIED", "GRAY_PATH_RGB", "GRAY_PATH_DIRECT"].includes(g)) {
    throw CotrainError.invalidArgument(
      `options.gray_path: unknown ${JSON.stringify(g)}; allowed: GRAY_PATH_RGB, GRAY_PATH_DIRECT`,
    );
  }
  return {
    corruption,
    severity,
    seed: Number(o?.seed ?? 0),
    preset: o?.preset || "imagecorruptions",
    indexOffset: Number(o?.index_offset ?? 0),
    grayPath: g === "GRAY_PATH_DIRECT" ? "direct" : "rgb",
    toGray: o?.to_gray ?? false,
    truncate: truncate ?? (isUint8 ? true : false),
  };
}

async function loadImages(msg: TensorOrRefMsg | null | undefined, store: ObjectStore) {
  const t = await resolveTensor(msg, store, {
    field: "images",
    dtypes: ["uint8", "float32"],
    rejectNonFinite: true,
  });
  return { batch: t as unknown as ImageBatch, inline: msg?.kind !== "ref" && !!msg?.inline };
}

async function reply(
  out: ImageBatch,
  deps: CorruptionDeps,
  inline: boolean,
  key: string,
): Promise<TensorOrRefMsg> {
  return await tensorOrRef(
    out as unknown as HostTensor,
    deps.store,
    key,
    inline ? deps.inlineLimitBytes : 0,
  );
}

/** Runs `fn`; an error about `field` is re-raised naming `as` instead. */
function renamed(fn: () => unknown, field: string, as: string): void {
  try {
    fn();
  } catch (err) {
    const m = err instanceof Error ? err.message : String(err);
    if (m.startsWith(`${field}:`)) throw CotrainError.invalidArgument(as + m.slice(field.length));
    throw err;
  }
}

function resultKey(req: unknown, corruption: string, severity: number): string {
  const h = sha256Hex(
    new TextEncoder().encode(
      JSON.stringify(req, (_k, v) => v instanceof Uint8Array ? sha256Hex(v) : v),
    ),
  ).slice(0, 16);
  return `corruptions/${h}/${corruption}-s${severity}.bin`;
}

/** The handlers of the service. */
export function corruptionHandlers(deps: CorruptionDeps): ServiceHandlers {
  return {
    async Corrupt(req: {
      images: TensorOrRefMsg;
      corruption: string;
      severity: number;
      options?: OptionsMsg;
    }) {
      const { batch, inline } = await loadImages(req.images, deps.store);
      const opts = toCoreOptions(
        req.corruption,
        req.severity,
        req.options,
        batch.dtype === "uint8",
      );
      const out = corruptBatch(batch, opts);
      return {
        images: await reply(out, deps, inline, resultKey(req, req.corruption, req.severity)),
        corruption: req.corruption,
        severity: req.severity,
      };
    },

    async *CorruptGrid(req: {
      images: TensorOrRefMsg;
      corruptions: string[];
      severities: number[];
      options?: OptionsMsg;
    }, ctx) {
      const { batch, inline } = await loadImages(req.images, deps.store);
      const corruptions = req.corruptions?.length ? req.corruptions : [...PAPER_14];
      const severities = req.severities?.length ? req.severities : [1, 2, 3, 4, 5];
      // Check every name and severity before any work, so a typo fails fast.
      for (const [i, c] of corruptions.entries()) {
        renamed(
          () => checkOptions(toCoreOptions(c, 1, req.options, true)),
          "corruption",
          `corruptions[${i}]`,
        );
      }
      for (const [j, s] of severities.entries()) {
        renamed(
          () => checkOptions(toCoreOptions(corruptions[0], s, req.options, true)),
          "severity",
          `severities[${j}]`,
        );
      }
      const total = corruptions.length * severities.length;
      const started = performance.now();
      let done = 0;
      yield {
        progress: { stage: "corrupt", done, total, message: `${batch.shape[0]} images` },
      };
      for (const c of corruptions) {
        for (const s of severities) {
          ctx.throwIfCancelled();
          const out = corruptBatch(
            batch,
            toCoreOptions(c, s, req.options, batch.dtype === "uint8"),
          );
          yield {
            result: {
              images: await reply(out, deps, inline, resultKey(req, c, s)),
              corruption: c,
              severity: s,
            },
          };
          done++;
          yield {
            progress: {
              stage: "corrupt",
              done,
              total,
              message: `${c} s${s}`,
              elapsed_s: (performance.now() - started) / 1000,
            },
          };
          // Let the event loop breathe (cancellation, health checks) between pairs.
          await yieldTurn();
        }
      }
    },

    ListCorruptions(req: { preset?: string }) {
      const want = req.preset || "";
      if (want && !(PRESET_NAMES as readonly string[]).includes(want)) {
        throw CotrainError.invalidArgument(
          `preset: unknown ${JSON.stringify(want)}; allowed: ${PRESET_NAMES.join(", ")}`,
        );
      }
      const presets = PRESET_NAMES.filter((p) => !want || p === want).map((name) => ({
        name,
        params: CORRUPTIONS.map((c) => ({
          corruption: c,
          severities_json: (PRESETS[name][c] as unknown[]).map((row) => JSON.stringify(row)),
        })),
      }));
      return {
        corruptions: [...CORRUPTIONS],
        groups: Object.entries(GROUPS).map(([name, cs]) => ({ name, corruptions: [...cs] })),
        paper_14: [...PAPER_14],
        presets,
        seeding: SEEDING,
      };
    },
  };
}
