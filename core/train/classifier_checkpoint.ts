/**
 * Checkpoints of the classifier trainer, as safetensors (core/models/checkpoint.ts):
 *
 * - a trainer checkpoint (`cotrain.kind` = `classifier-trainer`): the weights (`model.<name>`),
 *   the best weights so far (`best.<name>`), the momentum buffers (`optim.<name>.momentum_buffer`),
 *   and in the metadata the run's config, the network config, the epoch, the schedule's state, the
 *   neural cycler's position and the history, so a killed run resumes after its last epoch;
 * - a model checkpoint (`cotrain.kind` = `mtl`): the final network's variables and its config,
 *   which is all {@linkcode loadMtlCheckpoint} needs to rebuild it (Classify, evaluation).
 *
 * @example
 * ```ts
 * import { initBackend } from "../engine/backend.ts";
 * import { createMtl } from "../models/mtl.ts";
 * import { loadMtlCheckpoint, saveMtlCheckpoint } from "./classifier_checkpoint.ts";
 * await initBackend("cpu");
 * const net = createMtl({ width: 0.125, inChannels: 1, classes: 3, neurons: 0, seed: 0 });
 * const back = loadMtlCheckpoint(saveMtlCheckpoint(net));
 * console.log(back.config.classes); // 3
 * ```
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { CoreError } from "../errors.ts";
import { assignParams, loadParams, saveParams } from "../models/checkpoint.ts";
import { createMtl, disposeMtl, type MtlConfig, type MtlModel, mtlParams } from "../models/mtl.ts";
import type { Sgd } from "./optim.ts";
import type { PlateauState } from "./schedule.ts";
import type { TrainConfig } from "./classifier_config.ts";
import type { EpochRecord } from "./classifier.ts";

/** `cotrain.kind` of trainer checkpoints. */
export const TRAINER_KIND = "classifier-trainer";
/** `cotrain.kind` of model checkpoints. */
export const MODEL_KIND = "mtl";

/** What a trainer checkpoint restores besides tensors. */
export interface TrainerState {
  /** Epochs done. */
  epoch: number;
  /** Optimizer steps done over the run. */
  step: number;
  schedule: PlateauState | undefined;
  cycler: { pass: number; pos: number };
  history: EpochRecord[];
  /** The schedule said stop. */
  stopped?: boolean;
}

/** A copy of every variable of the network (caller disposes). */
export function snapshot(model: MtlModel): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [k, v] of mtlParams(model)) out.set(k, v.clone());
  return out;
}

/** Serialises the trainer's whole state. */
export function writeTrainerCheckpoint(
  model: MtlModel,
  opt: Sgd,
  best: Map<string, tf.Tensor> | null,
  config: TrainConfig,
  classes: number,
  state: TrainerState,
): Uint8Array {
  const tensors = new Map<string, tf.Tensor>();
  for (const [k, v] of mtlParams(model)) tensors.set(`model.${k}`, v);
  if (best) { for (const [k, v] of best) tensors.set(`best.${k}`, v); }
  for (const [k, v] of opt.state()) tensors.set(`optim.${k}`, v);
  return saveParams(tensors, {
    kind: TRAINER_KIND,
    config: { train: config, model: model.config, classes },
    extra: { "trainer.state": JSON.stringify(state, nonFiniteOut) },
  });
}

/** JSON has no NaN: losses that are NaN (no neural batch yet) travel as strings. */
function nonFiniteOut(_k: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
}

function nonFiniteIn(_k: string, v: unknown): unknown {
  return v === "NaN" || v === "Infinity" || v === "-Infinity" ? Number(v) : v;
}

function stable(x: unknown): string {
  return JSON.stringify(
    x,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  );
}

/**
 * Restores a trainer checkpoint into a freshly built network and optimizer. The checkpoint must
 * come from the same config (FAILED_PRECONDITION otherwise). Returns the state and the best
 * weights (caller disposes).
 */
export function readTrainerCheckpoint(
  bytes: Uint8Array,
  model: MtlModel,
  opt: Sgd,
  config: TrainConfig,
  classes: number,
): { state: TrainerState; best: Map<string, tf.Tensor> | null } {
  const { tensors, meta } = loadParams(bytes);
  try {
    if (meta.kind !== TRAINER_KIND) {
      throw CoreError.invalidArgument(`checkpoint: kind ${meta.kind}, expected ${TRAINER_KIND}`);
    }
    const saved = meta.config as { train: TrainConfig; classes: number };
    if (stable(saved.train) !== stable(config) || saved.classes !== classes) {
      throw new CoreError(
        "FAILED_PRECONDITION",
        "checkpoint: it was written by a run with another config; start a new run",
      );
    }
    const byPrefix = (p: string) => {
      const m = new Map<string, tf.Tensor>();
      for (const [k, v] of tensors) if (k.startsWith(p)) m.set(k.slice(p.length), v);
      return m;
    };
    assignParams(mtlParams(model), byPrefix("model."));
    opt.loadState(byPrefix("optim."));
    const bestMap = byPrefix("best.");
    const best = bestMap.size > 0 ? bestMap : null;
    for (const [k, v] of tensors) if (!k.startsWith("best.") || !best) v.dispose();
    const state = JSON.parse(meta.extra?.["trainer.state"] ?? "null", nonFiniteIn) as
      | TrainerState
      | null;
    if (!state) throw CoreError.invalidArgument("checkpoint: no trainer.state");
    return { state, best };
  } catch (err) {
    for (const v of tensors.values()) if (!v.isDisposed) v.dispose();
    throw err;
  }
}

/** Serialises the network alone (the final model): variables + `cotrain.config` = MtlConfig. */
export function saveMtlCheckpoint(
  model: MtlModel,
  extra: Record<string, string> = {},
): Uint8Array {
  return saveParams(mtlParams(model), { kind: MODEL_KIND, config: model.config, extra });
}

/** Rebuilds a network from {@linkcode saveMtlCheckpoint}'s bytes (INVALID_ARGUMENT if not one). */
export function loadMtlCheckpoint(bytes: Uint8Array): MtlModel & { extra: Record<string, string> } {
  const { tensors, meta } = loadParams(bytes);
  try {
    if (meta.kind !== MODEL_KIND) {
      throw CoreError.invalidArgument(`checkpoint: kind ${meta.kind}, expected ${MODEL_KIND}`);
    }
    const config = meta.config as MtlConfig;
    const model = createMtl(config);
    try {
      assignParams(mtlParams(model), tensors);
    } catch (err) {
      disposeMtl(model);
      throw err;
    }
    return { ...model, extra: meta.extra ?? {} };
  } finally {
    for (const v of tensors.values()) v.dispose();
  }
}
