/**
 * Checkpoints of cotrain's networks as safetensors (DESIGN.md "Contracts"): every named variable
 * as an F32 (or I32) tensor, plus `__metadata__` strings: `cotrain.kind` (what network, e.g.
 * `vgg`, `predictor`, `mtl`), `cotrain.config` (its config as JSON, so the file alone rebuilds the
 * model), `cotrain.layout` (`HWIO` for conv weights) and any extra strings a trainer adds (epoch,
 * optimiser and schedule state as JSON). The same weights always give the same bytes.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { loadParams, saveParams } from "./checkpoint.ts";
 * const params = new Map([["w", tf.variable(tf.tensor1d([1, 2]))]]);
 * const bytes = saveParams(params, { kind: "demo", config: { n: 2 } });
 * const { tensors, meta } = loadParams(bytes);
 * console.log(meta.kind, tensors.get("w")?.shape); // demo [2]
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { CoreError } from "../errors.ts";
import {
  readSafetensors,
  type SafetensorsTensorInput,
  writeSafetensors,
} from "../io/safetensors.ts";

/** What a checkpoint says about itself. */
export interface CheckpointMeta {
  /** The network kind, e.g. `vgg`, `predictor`, `mtl`. */
  kind: string;
  /** The network's config (JSON-serialisable). */
  config: unknown;
  /** Extra strings (epoch, optimiser state JSON, ...). */
  extra?: Record<string, string>;
}

/** Serialises named tensors (variables, optimiser slots) with their metadata. */
export function saveParams(
  tensors: Map<string, tf.Tensor>,
  meta: CheckpointMeta,
): Uint8Array {
  const out = new Map<string, SafetensorsTensorInput>();
  for (const [name, t] of tensors) {
    if (t.dtype === "float32") {
      out.set(name, { dtype: "F32", shape: t.shape, data: t.dataSync() as Float32Array });
    } else if (t.dtype === "int32") {
      out.set(name, { dtype: "I32", shape: t.shape, data: t.dataSync() as Int32Array });
    } else {
      throw new CoreError("INVALID_ARGUMENT", `checkpoint: ${name} has dtype ${t.dtype}`);
    }
  }
  const metadata: Record<string, string> = {
    ...meta.extra,
    "cotrain.kind": meta.kind,
    "cotrain.config": JSON.stringify(meta.config),
    "cotrain.layout": "HWIO",
  };
  return writeSafetensors(out, metadata);
}

/** Reads a checkpoint: tensors by name (caller disposes them) and the metadata. */
export function loadParams(
  bytes: Uint8Array,
): { tensors: Map<string, tf.Tensor>; meta: CheckpointMeta } {
  const file = readSafetensors(bytes);
  const kind = file.metadata["cotrain.kind"];
  const configText = file.metadata["cotrain.config"];
  if (!kind || configText === undefined) {
    throw new CoreError(
      "INVALID_ARGUMENT",
      "checkpoint: not a cotrain checkpoint (no cotrain.kind / cotrain.config in __metadata__)",
    );
  }
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch {
    throw new CoreError("INVALID_ARGUMENT", "checkpoint: cotrain.config is not valid JSON");
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(file.metadata)) if (!k.startsWith("cotrain.")) extra[k] = v;
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, t] of file.tensors) {
    if (t.dtype === "F32") tensors.set(name, tf.tensor(t.data as Float32Array, t.shape, "float32"));
    else if (t.dtype === "I32") {
      tensors.set(name, tf.tensor(t.data as Int32Array, t.shape, "int32"));
    } else {
      throw new CoreError("INVALID_ARGUMENT", `checkpoint: ${name} has dtype ${t.dtype}`);
    }
  }
  return { tensors, meta: { kind, config, extra } };
}

/**
 * Assigns loaded tensors to a model's variables by name; every variable must be present with the
 * same shape (INVALID_ARGUMENT naming the first that is not). Extra tensors are ignored.
 */
export function assignParams(
  params: Map<string, tf.Variable>,
  tensors: Map<string, tf.Tensor>,
): void {
  for (const [name, v] of params) {
    const t = tensors.get(name);
    if (!t) throw new CoreError("INVALID_ARGUMENT", `checkpoint: no tensor ${name}`);
    if (t.shape.join(",") !== v.shape.join(",")) {
      throw new CoreError(
        "INVALID_ARGUMENT",
        `checkpoint: ${name} has shape [${t.shape}], the model needs [${v.shape}]`,
      );
    }
  }
  for (const [name, v] of params) v.assign(tensors.get(name)!);
}
