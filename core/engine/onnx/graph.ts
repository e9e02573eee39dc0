/**
 * A small, deterministic ONNX graph builder over the `onnx-proto` message classes: float32
 * initializers stored as little-endian `raw_data`, nodes with generated unique names, typed graph
 * inputs and outputs with symbolic dimensions, and a model with `metadata_props`.
 *
 * The same calls in the same order give the same bytes: nothing depends on time, randomness or
 * object-key order (metadata is written in the order given; JSON values should come from
 * {@linkcode stableJson}).
 *
 * @example
 * ```ts
 * import { OnnxGraph } from "./graph.ts";
 * const g = new OnnxGraph();
 * g.input("x", [null, 4]);
 * const y = g.node("Relu", ["x"]);
 * g.output(y, "y", [null, 4]);
 * const bytes = g.toModel({ metadata: { layout: "NC" } });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */
import onnxProto from "onnx-proto";
import type { onnx as OnnxNs } from "onnx-proto";
import { CoreError } from "../../errors.ts";

/** The `onnx` namespace of onnx-proto (a CommonJS module, so it arrives as the default export). */
export const onnx: typeof OnnxNs = (onnxProto as unknown as { onnx: typeof OnnxNs }).onnx;

/** The ONNX opset cotrain's exports use (GridSample needs 16; ReduceMax keeps its `axes` attribute up to 17). */
export const OPSET = 17;
/** IR version written into every model (onnx-proto's schema is ONNX 1.10, IR 8). */
export const IR_VERSION = 8;
/** onnxruntime's operator domain of its blocked-channel (NCHWc) CPU kernels (opset version 1). */
export const NCHWC_DOMAIN = "com.microsoft.nchwc";
/** Producer name and version written into every model. */
export const PRODUCER = "cotrain";
/** cotrain's version as written into exported models (`cotrain_version` metadata). */
export const COTRAIN_VERSION = "0.1.0";

/** A dimension of a graph input/output: a fixed size, or a symbolic name (`null` = anonymous). */
export type Dim = number | string | null;

/** An attribute value: numbers are INT unless given as `{ f }`; number arrays are INTS. */
export type AttrValue = number | number[] | string | { f: number } | { floats: number[] };

const AT = onnx.AttributeProto.AttributeType;
const DT = onnx.TensorProto.DataType;

function attribute(name: string, v: AttrValue): OnnxNs.IAttributeProto {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw CoreError.invalidArgument(`onnx attr ${name}: ${v} not int`);
    return { name, type: AT.INT, i: v };
  }
  if (typeof v === "string") return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  if ("f" in v) return { name, type: AT.FLOAT, f: v.f };
  return { name, type: AT.FLOATS, floats: v.floats };
}

function valueInfo(name: string, dims: Dim[], elemType: number): OnnxNs.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) =>
            typeof d === "number" ? { dimValue: d } : d === null ? {} : { dimParam: d }
          ),
        },
      },
    },
  };
}

/** Little-endian bytes of a typed array (a copy, independent of the platform's byte order). */
function leBytes(data: Float32Array | BigInt64Array): Uint8Array {
  const out = new Uint8Array(data.length * data.BYTES_PER_ELEMENT);
  const view = new DataView(out.buffer);
  if (data instanceof Float32Array) {
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  } else {
    for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, data[i], true);
  }
  return out;
}

/** What a model carries besides its graph. */
export interface ModelOptions {
  /** Graph name (default "cotrain"). */
  name?: string;
  /** `metadata_props`, written in the given order. */
  metadata?: Record<string, string>;
  /** Free text for the model's doc_string. */
  doc?: string;
}

/**
 * Builds one ONNX graph. Tensor names are strings; {@linkcode OnnxGraph.node} returns the name of
 * its (first) output.
 *
 * @example
 * ```ts
 * import { OnnxGraph } from "./graph.ts";
 * const g = new OnnxGraph();
 * g.input("x", ["N", 3]);
 * const w = g.initializer("w", new Float32Array([1, 2, 3]), [3]);
 * g.output(g.node("Mul", ["x", w]), "y", ["N", 3]);
 * console.log(g.toModel().byteLength > 0); // true
 * ```
 */
export class OnnxGraph {
  readonly #nodes: OnnxNs.INodeProto[] = [];
  readonly #inits: OnnxNs.ITensorProto[] = [];
  readonly #inputs: OnnxNs.IValueInfoProto[] = [];
  readonly #outputs: OnnxNs.IValueInfoProto[] = [];
  readonly #names = new Set<string>();
  /** Operator domains other than the default one that nodes use (opset version 1 each). */
  readonly #domains = new Set<string>();
  #counter = 0;

  /** A fresh tensor name starting with `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.#names.has(name)) name = `${base}_${++this.#counter}`;
    this.#names.add(name);
    return name;
  }

  /** Declares a graph input (float32 unless `dtype` says int64). */
  input(name: string, dims: Dim[], dtype: "float32" | "int64" = "float32"): string {
    if (this.#names.has(name)) throw CoreError.invalidArgument(`onnx: duplicate name ${name}`);
    this.#names.add(name);
    this.#inputs.push(valueInfo(name, dims, dtype === "int64" ? DT.INT64 : DT.FLOAT));
    return name;
  }

  /** Declares a float32 graph output named `name`, fed by tensor `from` (Identity if renamed). */
  output(from: string, name: string, dims: Dim[]): string {
    if (from !== name) {
      if (this.#names.has(name)) throw CoreError.invalidArgument(`onnx: duplicate name ${name}`);
      this.#names.add(name);
      this.#nodes.push({
        name: `${name}_identity`,
        opType: "Identity",
        input: [from],
        output: [name],
      });
    }
    this.#outputs.push(valueInfo(name, dims, DT.FLOAT));
    return name;
  }

  /** A float32 constant (initializer) with the given dims; returns its (unique) name. */
  initializer(base: string, data: Float32Array, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) {
      throw CoreError.invalidArgument(
        `onnx initializer ${base}: ${data.length} values, dims [${dims}]`,
      );
    }
    const name = this.fresh(base);
    this.#inits.push({ name, dims, dataType: DT.FLOAT, rawData: leBytes(data) });
    return name;
  }

  /** An int64 constant (for shapes and axes inputs). */
  int64(base: string, values: number[]): string {
    const name = this.fresh(base);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.#inits.push({ name, dims: [values.length], dataType: DT.INT64, rawData: leBytes(data) });
    return name;
  }

  /**
   * Adds a node; returns the name of its output (`out`, or a fresh name from the op type).
   * `domain`: an operator set other than ONNX's (e.g. onnxruntime's `com.microsoft.nchwc`),
   * imported at version 1.
   */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    out?: string,
    domain?: string,
  ): string {
    const output = out ?? this.fresh(opType.toLowerCase());
    if (out) {
      if (this.#names.has(out)) throw CoreError.invalidArgument(`onnx: duplicate name ${out}`);
      this.#names.add(out);
    }
    if (domain) this.#domains.add(domain);
    this.#nodes.push({
      name: `${output}_node`,
      opType,
      ...(domain ? { domain } : {}),
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Adds a node with several outputs, named `outs` (each must be fresh). */
  nodeMulti(
    opType: string,
    inputs: string[],
    outs: string[],
    attrs: Record<string, AttrValue> = {},
  ): void {
    this.#nodes.push({
      name: `${outs[0]}_node`,
      opType,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
  }

  /** Number of nodes so far. */
  get nodeCount(): number {
    return this.#nodes.length;
  }

  /** Serialises the graph as an ONNX ModelProto (opset {@linkcode OPSET}). */
  toModel(options: ModelOptions = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: PRODUCER,
      producerVersion: COTRAIN_VERSION,
      domain: "org.cotrain",
      modelVersion: 1,
      docString: options.doc ?? "",
      opsetImport: [
        { domain: "", version: OPSET },
        ...[...this.#domains].map((domain) => ({ domain, version: 1 })),
      ],
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: options.name ?? "cotrain",
        node: this.#nodes,
        initializer: this.#inits,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    const buf = onnx.ModelProto.encode(model).finish();
    return new Uint8Array(buf); // a plain copy, not a Node Buffer view of a pooled arena
  }
}

/** JSON with object keys sorted at every level: the same value always gives the same string. */
export function stableJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v as object).sort()) {
        out[k] = norm((v as Record<string, unknown>)[k]);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}

/** Reads back the `metadata_props` of an ONNX model. */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const m = onnx.ModelProto.decode(bytes);
  const out: Record<string, string> = {};
  for (const p of m.metadataProps) out[p.key ?? ""] = p.value ?? "";
  return out;
}
