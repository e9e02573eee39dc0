/**
 * A generic Open Inference Protocol (KServe v2, `inference.GRPCInferenceService`) handler set over a
 * registry of loaded models, for any service that serves models (neural-predictor, classifier):
 * ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer. Inputs are
 * read from `raw_input_contents` (or, for FP32, `contents.fp32_contents`); outputs always go back
 * in `raw_output_contents` (little-endian, row-major), each output tensor carrying its `layout` as
 * a parameter. ModelMetadata gives every tensor's datatype and shape (-1 for a dynamic dimension);
 * since the v2 metadata message has no parameters field, the layouts are also appended to
 * `platform` as `<platform>;layout=<input layout>-><output layout>`.
 *
 * Bad requests get INVALID_ARGUMENT naming the field (unknown input, wrong datatype, shape that the
 * model's metadata does not allow, byte count that disagrees with the shape, NaN when the model
 * refuses it); an unknown model or version gets NOT_FOUND.
 *
 * @example
 * ```ts ignore
 * import { OipRegistry, oipHandlers, OIP_PROTO, OIP_SERVICE } from "./oip.ts";
 * const registry = new OipRegistry();
 * registry.add({
 *   name: "double", version: "1", platform: "js",
 *   inputs: [{ name: "x", datatype: "FP32", shape: [-1], layout: "N" }],
 *   outputs: [{ name: "y", datatype: "FP32", shape: [-1], layout: "N" }],
 *   infer: (inp) => Promise.resolve({ y: { ...inp.x, data: inp.x.data.map((v) => 2 * v) } }),
 * });
 * // new RpcServer({ protoFiles: [OIP_PROTO], services: { [OIP_SERVICE]: oipHandlers(registry) } })
 * ```
 * @module
 */
import { CotrainError } from "../errors.ts";
import type { ServiceHandlers } from "../rpc/server.ts";

/** The OIP .proto (relative to protos/). */
export const OIP_PROTO = "inference/open_inference_grpc.proto";
/** Fully qualified OIP service name. */
export const OIP_SERVICE = "inference.GRPCInferenceService";

/** The datatypes this piece handles (OIP names). */
export type OipDatatype = "FP32" | "INT32" | "UINT8";

const ITEMSIZE: Record<OipDatatype, number> = { FP32: 4, INT32: 4, UINT8: 1 };

/** Metadata of one input or output tensor. */
export interface OipTensorMeta {
  name: string;
  datatype: OipDatatype;
  /** Dimensions; -1 is dynamic. */
  shape: number[];
  /** Memory layout, e.g. `NHWC`, `NC` (neurons last). */
  layout: string;
}

/** A tensor in or out of a model. */
export interface OipTensor {
  datatype: OipDatatype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** A loaded model as the registry serves it. */
export interface OipModel {
  name: string;
  version: string;
  /** Engine, e.g. `onnxruntime_onnx`, `tfjs`. */
  platform: string;
  inputs: OipTensorMeta[];
  outputs: OipTensorMeta[];
  /** Reject NaN/Inf in FP32 inputs (default true). */
  rejectNonFinite?: boolean;
  /** Runs the model on checked inputs (by name); returns outputs by name. */
  infer(inputs: Record<string, OipTensor>): Promise<Record<string, OipTensor>>;
}

/** Loaded models by name and version. */
export class OipRegistry {
  #models = new Map<string, Map<string, OipModel>>();

  /** Adds (or replaces) a model version. */
  add(model: OipModel): void {
    if (!this.#models.has(model.name)) this.#models.set(model.name, new Map());
    this.#models.get(model.name)!.set(model.version, model);
  }

  /** Removes a model (every version when `version` is omitted). */
  remove(name: string, version?: string): void {
    if (version === undefined) this.#models.delete(name);
    else this.#models.get(name)?.delete(version);
  }

  /** A model by name and version ("" or undefined: the highest version), or undefined. */
  get(name: string, version?: string): OipModel | undefined {
    const versions = this.#models.get(name);
    if (!versions || versions.size === 0) return undefined;
    if (version) return versions.get(version);
    return [...versions.values()].sort((a, b) => compareVersions(b.version, a.version))[0];
  }

  /** Versions of a model, ascending. */
  versions(name: string): string[] {
    return [...(this.#models.get(name)?.keys() ?? [])].sort(compareVersions);
  }

  /** Every model name. */
  names(): string[] {
    return [...this.#models.keys()].sort();
  }
}

function compareVersions(a: string, b: string): number {
  const na = Number(a), nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of {@linkcode oipHandlers}. */
export interface OipServerInfo {
  /** ServerMetadata name (the service). */
  name: string;
  /** ServerMetadata version. */
  version: string;
  /** Whether the server is ready (default: always). */
  ready?: () => boolean;
}

interface InferInputMsg {
  name: string;
  datatype: string;
  shape: (number | string)[];
  contents?: { fp32_contents?: number[]; int_contents?: number[]; uint_contents?: number[] } | null;
}

interface InferRequestMsg {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferInputMsg[];
  outputs: { name: string }[];
  raw_input_contents: Uint8Array[];
}

function findModel(registry: OipRegistry, name: string, version: string): OipModel {
  if (!name) throw CotrainError.invalidArgument("model_name: empty");
  const m = registry.get(name, version || undefined);
  if (!m) {
    const known = registry.names();
    throw CotrainError.notFound(
      version && registry.get(name)
        ? `model_version: ${name} has no version ${JSON.stringify(version)}; versions: ${
          registry.versions(name).join(", ")
        }`
        : `model_name: no model ${JSON.stringify(name)} is loaded; loaded: ${
          known.length ? known.join(", ") : "(none)"
        }`,
    );
  }
  return m;
}

function typedView(datatype: OipDatatype, bytes: Uint8Array): OipTensor["data"] {
  const src = bytes.byteOffset % ITEMSIZE[datatype] === 0 ? bytes : Uint8Array.from(bytes);
  const n = src.byteLength / ITEMSIZE[datatype];
  if (datatype === "FP32") return new Float32Array(src.buffer, src.byteOffset, n);
  if (datatype === "INT32") return new Int32Array(src.buffer, src.byteOffset, n);
  return new Uint8Array(src.buffer, src.byteOffset, n);
}

function decodeInput(
  model: OipModel,
  msg: InferInputMsg,
  index: number,
  raw: Uint8Array | undefined,
): OipTensor {
  const field = `inputs[${index}]`;
  const meta = model.inputs.find((m) => m.name === msg.name);
  if (!meta) {
    throw CotrainError.invalidArgument(
      `${field}.name: ${JSON.stringify(msg.name)} is not an input of ${model.name}; inputs: ${
        model.inputs.map((m) => m.name).join(", ")
      }`,
    );
  }
  if (msg.datatype !== meta.datatype) {
    throw CotrainError.invalidArgument(
      `${field}.datatype: ${JSON.stringify(msg.datatype)}; ${meta.name} takes ${meta.datatype}`,
    );
  }
  const shape = (msg.shape ?? []).map(Number);
  const fits = shape.length === meta.shape.length &&
    shape.every((d, i) =>
      Number.isInteger(d) && d >= 0 && (meta.shape[i] < 0 || meta.shape[i] === d)
    );
  if (!fits) {
    throw CotrainError.invalidArgument(
      `${field}.shape: [${shape.join(",")}]; ${meta.name} takes [${meta.shape.join(",")}] ` +
        `(${meta.layout}, -1 = any)`,
    );
  }
  const n = shape.reduce((a, b) => a * b, 1);
  let data: OipTensor["data"];
  if (raw !== undefined) {
    const want = n * ITEMSIZE[meta.datatype];
    if (raw.byteLength !== want) {
      throw CotrainError.invalidArgument(
        `raw_input_contents[${index}]: ${raw.byteLength} bytes; ${meta.datatype} [${shape}] needs ${want}`,
      );
    }
    data = typedView(meta.datatype, raw);
  } else {
    const c = msg.contents;
    const values = meta.datatype === "FP32"
      ? c?.fp32_contents
      : meta.datatype === "INT32"
      ? c?.int_contents
      : c?.uint_contents;
    if (!values || values.length !== n) {
      throw CotrainError.invalidArgument(
        `${field}.contents: ${values?.length ?? 0} values for shape [${shape}] (${n}); ` +
          `send raw_input_contents or the typed contents`,
      );
    }
    data = meta.datatype === "FP32"
      ? Float32Array.from(values)
      : meta.datatype === "INT32"
      ? Int32Array.from(values)
      : Uint8Array.from(values);
  }
  if (meta.datatype === "FP32" && model.rejectNonFinite !== false) {
    const d = data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        throw CotrainError.invalidArgument(
          `${field} (${meta.name}): element ${i} is NaN or infinite; finite values only`,
        );
      }
    }
  }
  return { datatype: meta.datatype, shape, data };
}

function bytesOf(t: OipTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The OIP handlers over `registry`. */
export function oipHandlers(registry: OipRegistry, info: OipServerInfo): ServiceHandlers {
  const ready = info.ready ?? (() => true);
  return {
    ServerLive: () => ({ live: true }),
    ServerReady: () => ({ ready: ready() }),
    ModelReady: (req: { name: string; version: string }) => ({
      ready: ready() && registry.get(req.name, req.version || undefined) !== undefined,
    }),
    ServerMetadata: () => ({ name: info.name, version: info.version, extensions: [] }),
    ModelMetadata: (req: { name: string; version: string }) => {
      const m = findModel(registry, req.name, req.version);
      const layouts = `${m.inputs.map((t) => `${t.name}:${t.layout}`).join(",")}->${
        m.outputs.map((t) => `${t.name}:${t.layout}`).join(",")
      }`;
      return {
        name: m.name,
        versions: registry.versions(m.name),
        platform: `${m.platform};layout=${layouts}`,
        inputs: m.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        outputs: m.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      };
    },
    async ModelInfer(req: InferRequestMsg) {
      const m = findModel(registry, req.model_name, req.model_version);
      const raw = req.raw_input_contents ?? [];
      if (raw.length > 0 && raw.length !== req.inputs.length) {
        throw CotrainError.invalidArgument(
          `raw_input_contents: ${raw.length} entries for ${req.inputs.length} inputs`,
        );
      }
      const inputs: Record<string, OipTensor> = {};
      req.inputs.forEach((msg, i) => {
        inputs[msg.name] = decodeInput(m, msg, i, raw.length ? raw[i] : undefined);
      });
      for (const meta of m.inputs) {
        if (!inputs[meta.name]) {
          throw CotrainError.invalidArgument(`inputs: missing ${JSON.stringify(meta.name)}`);
        }
      }
      const wanted = (req.outputs ?? []).map((o) => o.name);
      for (const [i, name] of wanted.entries()) {
        if (!m.outputs.some((o) => o.name === name)) {
          throw CotrainError.invalidArgument(
            `outputs[${i}].name: ${JSON.stringify(name)} is not an output of ${m.name}; outputs: ${
              m.outputs.map((o) => o.name).join(", ")
            }`,
          );
        }
      }
      const result = await m.infer(inputs);
      const metas = m.outputs.filter((o) => wanted.length === 0 || wanted.includes(o.name));
      return {
        model_name: m.name,
        model_version: m.version,
        id: req.id ?? "",
        outputs: metas.map((o) => ({
          name: o.name,
          datatype: result[o.name].datatype,
          shape: result[o.name].shape,
          parameters: { layout: { string_param: o.layout } },
        })),
        raw_output_contents: metas.map((o) => bytesOf(result[o.name])),
      };
    },
  };
}
