/**
 * ONNX graph of the Gaussian readout in eval mode (SPEC.md section 3), from plain arrays so the
 * readout module can call it without tfjs:
 *
 *   grid_n = clamp(mu_n, -1, 1)
 *   y_n    = sum_c f[c, n] * bilinear(x[c], grid_n) + b_n     (align_corners = true, zero padding)
 *   r_n    = ELU(y_n - 1) + 1
 *
 * `mu_n = (mu_x, mu_y)` follows `torch.nn.functional.grid_sample` (and neuralpredictors): `mu_x`
 * indexes the width axis, `mu_y` the height axis, and -1 / +1 are the centres of the corner pixels.
 * The graph is one ONNX GridSample over the feature map reshaped to `[1, N*C, H, W]` (so the grid
 * needs no batch broadcast and H, W stay dynamic), a per-neuron channel weighting and an ELU.
 *
 * @example
 * ```ts
 * import { exportGaussianReadoutOnnx } from "./readout.ts";
 * const bytes = exportGaussianReadoutOnnx({
 *   channels: 2, neurons: 1,
 *   mu: new Float32Array([0, 0]), features: new Float32Array([0.5, 0.5]), bias: new Float32Array([0]),
 * });
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */
import type { VggModel } from "../../models/vgg.ts";
import type { GaussianReadout } from "../../models/readout.ts";
import { CoreError } from "../../errors.ts";
import { COTRAIN_VERSION, type Dim, OnnxGraph, OPSET, stableJson } from "./graph.ts";
import { addNhwcInput, addVggTrunk, IMAGES_INPUT, vggMetadata } from "./vgg.ts";

/** The eval-mode parameters of one Gaussian readout, as plain arrays. */
export interface GaussianReadoutArrays {
  /** Input channels C. */
  channels: number;
  /** Neurons N. */
  neurons: number;
  /** Locations `[N, 2]` row-major, `(x, y)` per neuron in [-1, 1] (clamped on export). */
  mu: Float32Array | number[];
  /** Channel weights `[C, N]` row-major (`f[c * N + n]`). */
  features: Float32Array | number[];
  /** Biases `[N]`. */
  bias: Float32Array | number[];
}

/**
 * The eval-mode arrays of a tfjs readout (core/models/readout.ts), whose conventions these are:
 * mu `[N, 2]` as (x, y), features `[C, N]`, bias `[N]`.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createGaussianReadout } from "../../models/readout.ts";
 * import { exportGaussianReadoutOnnx, readoutArrays } from "./readout.ts";
 * await initBackend("cpu");
 * const r = createGaussianReadout({ neurons: 5, channels: 8, seed: 0 });
 * const bytes = exportGaussianReadoutOnnx(readoutArrays(r));
 * console.log(bytes.length > 0); // true
 * ```
 */
export function readoutArrays(readout: GaussianReadout): GaussianReadoutArrays {
  return {
    channels: readout.config.channels,
    neurons: readout.config.neurons,
    mu: readout.mu.dataSync() as Float32Array,
    features: readout.features.dataSync() as Float32Array,
    bias: readout.bias.dataSync() as Float32Array,
  };
}

function check(r: GaussianReadoutArrays): void {
  const { channels: c, neurons: n } = r;
  if (!(Number.isInteger(c) && c > 0 && Number.isInteger(n) && n > 0)) {
    throw CoreError.invalidArgument(`readout: channels ${c} and neurons ${n} must be positive`);
  }
  const want = { mu: n * 2, features: c * n, bias: n };
  for (const k of ["mu", "features", "bias"] as const) {
    if (r[k].length !== want[k]) {
      throw CoreError.invalidArgument(
        `readout: ${k} has ${r[k].length} values; expected ${
          want[k]
        } (channels ${c}, neurons ${n})`,
      );
    }
  }
}

/**
 * Adds the eval-mode readout on an NCHW feature tensor `[B, C, H, W]`; returns the name of the
 * responses `[B, N]`. H and W may be dynamic.
 *
 * @example
 * ```ts
 * import { OnnxGraph } from "./graph.ts";
 * import { addGaussianReadout } from "./readout.ts";
 * const g = new OnnxGraph();
 * g.input("x", ["B", 2, "H", "W"]);
 * const r = { channels: 2, neurons: 1, mu: [0.1, -0.2], features: [0.5, 0.5], bias: [0] };
 * g.output(addGaussianReadout(g, "x", r), "responses", ["B", 1]);
 * console.log(g.toModel().length > 0); // true
 * ```
 */
export function addGaussianReadout(g: OnnxGraph, x: string, r: GaussianReadoutArrays): string {
  check(r);
  const { channels: c, neurons: n } = r;
  const grid = new Float32Array(n * 2);
  for (let i = 0; i < n * 2; i++) grid[i] = Math.min(1, Math.max(-1, r.mu[i]));
  const gridT = g.initializer("readout.grid", grid, [1, 1, n, 2]);
  const f = g.initializer("readout.features", Float32Array.from(r.features), [c, n]);
  const b = g.initializer("readout.bias", Float32Array.from(r.bias), [n]);
  const one = g.initializer("readout.one", new Float32Array([1]), []);
  // [B, C, H, W] -> [1, B*C, H, W]: one grid serves every image and channel
  const flat = g.node("Reshape", [x, g.int64("readout.flat_shape", [1, -1, 0, 0])]);
  const sampled = g.node("GridSample", [flat, gridT], {
    mode: "bilinear",
    padding_mode: "zeros",
    align_corners: 1,
  }); // [1, B*C, 1, N]
  const perImage = g.node("Reshape", [sampled, g.int64("readout.bcn_shape", [-1, c, n])]);
  const weighted = g.node("Mul", [perImage, f]); // [B, C, N]
  const summed = g.node("ReduceSum", [weighted, g.int64("readout.axes", [1])], { keepdims: 0 });
  const y = g.node("Add", [summed, b]);
  const elu = g.node("Elu", [g.node("Sub", [y, one])], { alpha: { f: 1 } });
  return g.node("Add", [elu, one], {}, "readout.responses");
}

/** Options of a standalone readout export. */
export interface ReadoutExportOptions {
  /** Fixed feature-map height (default: dynamic). */
  height?: number;
  /** Fixed feature-map width (default: dynamic). */
  width?: number;
}

/**
 * Exports the readout alone: input `features` NHWC `[B, H, W, C]`, output `responses` `[B, N]`.
 *
 * @example
 * ```ts
 * import { exportGaussianReadoutOnnx } from "./readout.ts";
 * const bytes = exportGaussianReadoutOnnx(
 *   { channels: 1, neurons: 2, mu: [0, 0, 0.5, -0.5], features: [1, 1], bias: [0, 0] },
 *   { height: 16, width: 16 },
 * );
 * console.log(bytes.length > 0); // true
 * ```
 */
export function exportGaussianReadoutOnnx(
  r: GaussianReadoutArrays,
  options: ReadoutExportOptions = {},
): Uint8Array {
  check(r);
  const g = new OnnxGraph();
  const dims: Dim[] = ["B", options.height ?? "H", options.width ?? "W", r.channels];
  const x = addNhwcInput(g, "features", r.channels, dims);
  const y = addGaussianReadout(g, x, r);
  g.output(y, "responses", ["B", r.neurons]);
  return g.toModel({
    name: "gaussian_readout",
    metadata: {
      layout: "NHWC",
      input_names: "features",
      output_names: "responses",
      cotrain_version: COTRAIN_VERSION,
      kind: "gaussian_readout",
      opset: String(OPSET),
      model_config: stableJson({
        readout: { channels: r.channels, neurons: r.neurons, mode: "eval", align_corners: true },
        height: options.height ?? null,
        width: options.width ?? null,
      }),
    },
    doc: "Gaussian readout, eval mode: ELU(sum_c f * bilinear(x, clamp(mu)) + b - 1) + 1",
  });
}

/**
 * Exports trunk (default up to `conv3_1`, the MTL shared part) + readout: input `images` NHWC,
 * output `responses` `[N, neurons]`.
 *
 * @example
 * ```ts
 * import { initBackend } from "../backend.ts";
 * import { createVgg } from "../../models/vgg.ts";
 * import { exportVggReadoutOnnx } from "./readout.ts";
 * await initBackend("cpu");
 * const model = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed: 0 });
 * const c = 32; // conv3_1 channels at w = 1/8
 * const bytes = exportVggReadoutOnnx(model, {
 *   channels: c, neurons: 1, mu: [0, 0], features: new Float32Array(c).fill(1 / c), bias: [0],
 * });
 * console.log(bytes.length > 0); // true
 * ```
 */
export function exportVggReadoutOnnx(
  model: VggModel,
  r: GaussianReadoutArrays,
  options: { upTo?: string; height?: number; width?: number } = {},
): Uint8Array {
  const upTo = options.upTo ?? "conv3_1";
  const g = new OnnxGraph();
  const c = model.config.inChannels;
  const x = addNhwcInput(g, IMAGES_INPUT, c, ["N", options.height ?? "H", options.width ?? "W", c]);
  const trunk = addVggTrunk(g, model, x, upTo);
  if (trunk.channels !== r.channels) {
    throw CoreError.invalidArgument(
      `readout has ${r.channels} channels but ${upTo} gives ${trunk.channels}`,
    );
  }
  const y = addGaussianReadout(g, trunk.output, r);
  g.output(y, "responses", ["N", r.neurons]);
  return g.toModel({
    name: "vgg_readout",
    metadata: vggMetadata(model, "vgg_readout", "responses", {
      upTo,
      head: false,
      readout: { channels: r.channels, neurons: r.neurons, mode: "eval", align_corners: true },
    }),
    doc: `VGG-19-BN trunk up to ${upTo} (BN folded) + Gaussian readout (eval); input NHWC`,
  });
}
