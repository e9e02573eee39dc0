/**
 * ONNX export of cotrain's VGG-19-BN (core/models/vgg.ts) for inference: the trunk up to any named
 * layer, optionally the fully convolutional classification head, in eval mode with every BatchNorm
 * folded into its convolution.
 *
 * The graph takes NHWC float32 images `[N, H, W, C]` (N, H and W dynamic), transposes them to NCHW
 * once, and gives back what `vggForward(model, x, { training: false, upTo })` gives: trunk features
 * as NHWC `[N, h, w, c]` (output `features`) or logits `[N, classes]` (output `logits`). The layout,
 * the input/output names, cotrain's version and the model config are in `metadata_props`.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { exportVggOnnx } from "./vgg.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 10, seed: 0 });
 * const bytes = exportVggOnnx(model); // trunk + head -> logits
 * const trunk = exportVggOnnx(model, { upTo: "conv3_1" }); // features [N, h, w, 32]
 * console.log(bytes.length > trunk.length); // true
 * ```
 * @module
 */
import { BN_EPS, layerNames, type VggModel } from "../../models/vgg.ts";
import { CoreError } from "../../errors.ts";
import { COTRAIN_VERSION, type Dim, OnnxGraph, OPSET, stableJson } from "./graph.ts";
import { hwioToOihw } from "../layouts.ts";

/** Name of the image input of every exported VGG graph. */
export const IMAGES_INPUT = "images";

/** A convolution with BatchNorm folded in: weight OIHW `[cout, cin, kh, kw]`, bias `[cout]`. */
export interface FoldedConv {
  /** Folded weights, OIHW. */
  weight: Float32Array;
  /** Folded bias. */
  bias: Float32Array;
  /** `[cout, cin, kh, kw]`. */
  dims: [number, number, number, number];
}

/**
 * Folds eval-mode BatchNorm into the preceding convolution:
 * `s = gamma / sqrt(var + eps)`, `W' = W * s` (per output channel), `b' = (b - mean) * s + beta`.
 * Takes tfjs' HWIO weights and returns ONNX's OIHW layout; arithmetic in float64.
 *
 * @example
 * ```ts
 * import { foldBatchNorm } from "./vgg.ts";
 * const f = foldBatchNorm(new Float32Array([2]), [1, 1, 1, 1], {
 *   bias: new Float32Array([1]), gamma: new Float32Array([3]), beta: new Float32Array([0.5]),
 *   mean: new Float32Array([1]), variance: new Float32Array([4 - 1e-5]),
 * });
 * console.log(f.weight[0], f.bias[0]); // 3 0.5
 * ```
 */
export function foldBatchNorm(
  weightHwio: Float32Array,
  shape: readonly [number, number, number, number],
  bn: {
    bias: Float32Array;
    gamma: Float32Array;
    beta: Float32Array;
    mean: Float32Array;
    variance: Float32Array;
    eps?: number;
  },
): FoldedConv {
  const [kh, kw, cin, cout] = shape;
  if (weightHwio.length !== kh * kw * cin * cout) {
    throw CoreError.invalidArgument(
      `foldBatchNorm: weight has ${weightHwio.length} values, shape [${shape}]`,
    );
  }
  for (const k of ["bias", "gamma", "beta", "mean", "variance"] as const) {
    if (bn[k].length !== cout) {
      throw CoreError.invalidArgument(
        `foldBatchNorm: ${k} has ${bn[k].length} values, cout ${cout}`,
      );
    }
  }
  const eps = bn.eps ?? BN_EPS;
  const scale = new Float64Array(cout);
  const bias = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    scale[o] = bn.gamma[o] / Math.sqrt(bn.variance[o] + eps);
    bias[o] = (bn.bias[o] - bn.mean[o]) * scale[o] + bn.beta[o];
  }
  const weight = new Float32Array(weightHwio.length);
  for (let h = 0; h < kh; h++) {
    for (let w = 0; w < kw; w++) {
      for (let i = 0; i < cin; i++) {
        const src = ((h * kw + w) * cin + i) * cout;
        for (let o = 0; o < cout; o++) {
          weight[((o * cin + i) * kh + h) * kw + w] = weightHwio[src + o] * scale[o];
        }
      }
    }
  }
  return { weight, bias, dims: [cout, cin, kh, kw] };
}

function read(model: VggModel, name: string): { data: Float32Array; shape: number[] } {
  const v = model.params.get(name);
  if (!v) throw CoreError.invalidArgument(`VGG has no parameter ${name}`);
  return { data: v.dataSync() as Float32Array, shape: v.shape };
}

/**
 * Adds the NHWC image input (dims default `["N", "H", "W", channels]`) and its transpose to NCHW;
 * returns the NCHW tensor's name.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { OnnxGraph } from "./graph.ts";
 * import { addNhwcInput, addVggHead, addVggTrunk } from "./vgg.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 3, seed: 0 });
 * const g = new OnnxGraph();
 * const x = addNhwcInput(g, "images", 1);
 * const trunk = addVggTrunk(g, model, x);
 * g.output(addVggHead(g, model, trunk.output), "logits", ["N", 3]);
 * console.log(g.toModel().length > 0); // true
 * ```
 */
export function addNhwcInput(g: OnnxGraph, name: string, channels: number, dims?: Dim[]): string {
  g.input(name, dims ?? ["N", "H", "W", channels]);
  return g.node("Transpose", [name], { perm: [0, 3, 1, 2] }, "nchw");
}

/**
 * Adds the trunk (conv + folded BN + ReLU, 2x2 max-pools) on an NCHW tensor, stopping after
 * `upTo` (default: the whole trunk). Returns the NCHW output's name and channel count.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { OnnxGraph } from "./graph.ts";
 * import { addNhwcInput, addVggHead, addVggTrunk } from "./vgg.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 3, seed: 0 });
 * const g = new OnnxGraph();
 * const x = addNhwcInput(g, "images", 1);
 * const trunk = addVggTrunk(g, model, x);
 * g.output(addVggHead(g, model, trunk.output), "logits", ["N", 3]);
 * console.log(g.toModel().length > 0); // true
 * ```
 */
export function addVggTrunk(
  g: OnnxGraph,
  model: VggModel,
  x: string,
  upTo?: string,
): { output: string; channels: number } {
  if (upTo && !model.layers.some((l) => l.name === upTo)) {
    throw CoreError.invalidArgument(
      `no layer ${upTo}; layers: ${layerNames(model).join(", ")}`,
    );
  }
  let h = x;
  let channels = model.config.inChannels;
  for (const l of model.layers) {
    if (l.kind === "conv") {
      const w = read(model, `${l.name}.weight`);
      const f = foldBatchNorm(w.data, w.shape as [number, number, number, number], {
        bias: read(model, `${l.name}.bias`).data,
        gamma: read(model, `${l.name}.bn.weight`).data,
        beta: read(model, `${l.name}.bn.bias`).data,
        mean: read(model, `${l.name}.bn.running_mean`).data,
        variance: read(model, `${l.name}.bn.running_var`).data,
      });
      const wn = g.initializer(`${l.name}.weight`, f.weight, f.dims);
      const bn = g.initializer(`${l.name}.bias`, f.bias, [f.dims[0]]);
      const conv = g.node("Conv", [h, wn, bn], {
        kernel_shape: [f.dims[2], f.dims[3]],
        pads: [1, 1, 1, 1],
        strides: [1, 1],
      }, `${l.name}.conv`);
      h = g.node("Relu", [conv], {}, l.name);
      channels = l.outChannels;
    } else {
      h = g.node("MaxPool", [h], { kernel_shape: [2, 2], strides: [2, 2] }, l.name);
    }
    if (l.name === upTo) break;
  }
  return { output: h, channels };
}

/**
 * Adds the eval-mode head (1x1 convs + ReLU, global max over H, W) on NCHW trunk features;
 * returns the name of the logits `[N, classes]`.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { OnnxGraph } from "./graph.ts";
 * import { addNhwcInput, addVggHead, addVggTrunk } from "./vgg.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 3, seed: 0 });
 * const g = new OnnxGraph();
 * const x = addNhwcInput(g, "images", 1);
 * const trunk = addVggTrunk(g, model, x);
 * g.output(addVggHead(g, model, trunk.output), "logits", ["N", 3]);
 * console.log(g.toModel().length > 0); // true
 * ```
 */
export function addVggHead(g: OnnxGraph, model: VggModel, features: string): string {
  if (!model.head) throw CoreError.invalidArgument("VGG has no head (classes = 0)");
  let h = features;
  for (const [i, name] of ["head.fc1", "head.fc2", "head.fc3"].entries()) {
    const w = read(model, `${name}.weight`);
    const [kh, kw, cin, cout] = w.shape;
    const wn = g.initializer(`${name}.weight`, hwioToOihw(w.data, w.shape), [cout, cin, kh, kw]);
    const bn = g.initializer(`${name}.bias`, read(model, `${name}.bias`).data, [cout]);
    h = g.node("Conv", [h, wn, bn], { kernel_shape: [kh, kw] }, name);
    if (i < 2) h = g.node("Relu", [h], {}, `${name}.relu`);
  }
  return g.node("ReduceMax", [h], { axes: [2, 3], keepdims: 0 }, "head.max");
}

/** What to export. */
export interface VggExportOptions {
  /** Stop after this trunk layer (the output is then its features); default: whole trunk. */
  upTo?: string;
  /** Include the classification head (default: when the model has one and `upTo` is unset). */
  head?: boolean;
  /** Fixed input height (default: dynamic). */
  height?: number;
  /** Fixed input width (default: dynamic). */
  width?: number;
}

/**
 * Metadata common to cotrain's VGG exports: layout, input/output names, cotrain version, kind,
 * opset, and the model config (plus `extra`) as sorted-key JSON.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { vggMetadata } from "./vgg.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed: 0 });
 * console.log(vggMetadata(model, "vgg_trunk", "features").layout); // "NHWC"
 * ```
 */
export function vggMetadata(
  model: VggModel,
  kind: string,
  output: string,
  extra: Record<string, unknown> = {},
): Record<string, string> {
  return {
    layout: "NHWC",
    input_names: IMAGES_INPUT,
    output_names: output,
    cotrain_version: COTRAIN_VERSION,
    kind,
    opset: String(OPSET),
    bn_folded: "true",
    model_config: stableJson({ vgg: model.config, ...extra }),
  };
}

/**
 * Exports a VGG (eval mode) as ONNX bytes: the trunk up to `upTo`, plus the head when asked (or by
 * default when the model has one and no `upTo` is given). Input `images` NHWC `[N, H, W, C]`;
 * output `logits` `[N, classes]` or `features` NHWC. The same weights give the same bytes.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { exportVggOnnx } from "./vgg.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed: 0 });
 * const bytes = exportVggOnnx(model, { upTo: "conv3_1" });
 * console.log(bytes instanceof Uint8Array); // true
 * ```
 */
export function exportVggOnnx(model: VggModel, options: VggExportOptions = {}): Uint8Array {
  const withHead = options.head ?? (model.head !== null && !options.upTo);
  if (withHead && options.upTo && options.upTo !== model.layers[model.layers.length - 1].name) {
    throw CoreError.invalidArgument(
      `the head needs the whole trunk; got upTo=${options.upTo}`,
    );
  }
  const g = new OnnxGraph();
  const hDim: Dim = options.height ?? "H";
  const wDim: Dim = options.width ?? "W";
  const c = model.config.inChannels;
  const x = addNhwcInput(g, IMAGES_INPUT, c, ["N", hDim, wDim, c]);
  const trunk = addVggTrunk(g, model, x, options.upTo);
  const upTo = options.upTo ?? model.layers[model.layers.length - 1].name;
  if (withHead) {
    const logits = addVggHead(g, model, trunk.output);
    g.output(logits, "logits", ["N", model.head!.classes]);
    return g.toModel({
      name: "vgg_classifier",
      metadata: vggMetadata(model, "vgg_classifier", "logits", { upTo, head: true }),
      doc: "VGG-19-BN trunk + classification head, eval mode, BN folded; input NHWC",
    });
  }
  const nhwc = g.node("Transpose", [trunk.output], { perm: [0, 2, 3, 1] });
  g.output(nhwc, "features", ["N", "h", "w", trunk.channels]);
  return g.toModel({
    name: "vgg_trunk",
    metadata: vggMetadata(model, "vgg_trunk", "features", { upTo, head: false }),
    doc: `VGG-19-BN trunk up to ${upTo}, eval mode, BN folded; input and output NHWC`,
  });
}
