/**
 * The gradient of a reconstruction loss as an ONNX graph, run on onnxruntime-node (its CPU build
 * is several times faster than the tfjs wasm backend on wide convolutions; DESIGN.md "Compute").
 *
 * For a VGG trunk up to `layer` in eval mode (BatchNorm folded into the convolutions) and a fixed
 * target activation t, the graph takes x `[R, C, H, W]` (NCHW) and gives
 *
 * - `grad`: d/dx sum_rows ||f(x) - t||^2, written out by hand (reverse mode): `2 (f - t)`, then per
 *   layer backwards: ReLU' (pre-activation > 0), a convolution with the flipped, transposed
 *   weights (the input gradient of a stride-1, pad-1 convolution), and for a 2x2 max-pool the gradient routed to the
 *   window's elements that equal the maximum (nearest upsampling + Equal; ties other than at zero
 *   have probability zero, and a zero after ReLU gets no gradient anyway; an odd row/column that
 *   the pool drops gets none);
 * - `loss`: ||f(x) - t||^2 per row `[R]`.
 *
 * The features graph (no target) gives `features` `[R, C', h, w]`, to compute t from x0.
 *
 * @example
 * ```ts
 * import { initBackend } from "../engine/backend.ts";
 * import { createVgg } from "../models/vgg.ts";
 * import { exportFeaturesOnnx } from "./onnx_grad.ts";
 * await initBackend("cpu");
 * const vgg = createVgg({ width: 0.125, inChannels: 1, classes: 0, seed: 0 });
 * const bytes = exportFeaturesOnnx(vgg, "conv2_1", [1, 16, 16]); // any batch size
 * console.log(bytes.length > 0); // true
 * ```
 * @module
 */
import { CoreError } from "../errors.ts";
import type { VggModel } from "../models/vgg.ts";
import { OnnxGraph } from "../engine/onnx/graph.ts";
import { foldBatchNorm } from "../engine/onnx/vgg.ts";
import { loadProgram, type Program } from "../engine/graph/program.ts";

type Shape4 = [number, number, number, number];

function read(model: VggModel, name: string): Float32Array {
  const v = model.params.get(name);
  if (!v) throw CoreError.invalidArgument(`model: no parameter ${name}`);
  return v.dataSync() as Float32Array;
}

interface Trace {
  kind: "conv" | "pool";
  /** conv: weight initializer, pre-activation; pool: its input and output. */
  weight?: string;
  /** conv: the flipped, transposed weight of its input gradient. */
  backWeight?: string;
  pre?: string;
  input: string;
  output: string;
  inShape: Shape4;
  outShape: Shape4;
}

/**
 * The weight of a stride-1 convolution's input gradient as a convolution: OIHW [o, i, kh, kw] ->
 * [i, o, kh, kw] flipped in both spatial axes (onnxruntime's Conv is much faster than its
 * ConvTranspose, which has no blocked-layout kernel).
 */
export function flipTranspose(w: Float32Array, [o, i, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < i; b++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          out[((b * o + a) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] =
            w[((a * i + b) * kh + y) * kw + x];
        }
      }
    }
  }
  return out;
}

/** Adds the folded forward trunk on `x`; returns the per-layer trace and the output's shape. */
function forward(
  g: OnnxGraph,
  model: VggModel,
  layer: string,
  x: string,
  shape: Shape4,
  backward: boolean,
) {
  const trace: Trace[] = [];
  let h = x;
  let s: Shape4 = shape;
  let found = false;
  for (const l of model.layers) {
    if (l.kind === "conv") {
      const w = model.params.get(`${l.name}.weight`)!;
      const f = foldBatchNorm(read(model, `${l.name}.weight`), w.shape as Shape4, {
        bias: read(model, `${l.name}.bias`),
        gamma: read(model, `${l.name}.bn.weight`),
        beta: read(model, `${l.name}.bn.bias`),
        mean: read(model, `${l.name}.bn.running_mean`),
        variance: read(model, `${l.name}.bn.running_var`),
      });
      const wn = g.initializer(`${l.name}.weight`, f.weight, f.dims);
      const wb = !backward
        ? undefined
        : g.initializer(`${l.name}.weight_back`, flipTranspose(f.weight, f.dims), [
          f.dims[1],
          f.dims[0],
          f.dims[2],
          f.dims[3],
        ]);
      const bn = g.initializer(`${l.name}.bias`, f.bias, [f.dims[0]]);
      const pre = g.node("Conv", [h, wn, bn], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
        strides: [1, 1],
      }, `${l.name}.pre`);
      const out = g.node("Relu", [pre], {}, l.name);
      const outShape: Shape4 = [s[0], f.dims[0], s[2], s[3]];
      trace.push({
        kind: "conv",
        weight: wn,
        backWeight: wb,
        pre,
        input: h,
        output: out,
        inShape: s,
        outShape,
      });
      h = out;
      s = outShape;
    } else {
      const out = g.node("MaxPool", [h], { kernel_shape: [2, 2], strides: [2, 2] }, l.name);
      const outShape: Shape4 = [s[0], s[1], Math.floor(s[2] / 2), Math.floor(s[3] / 2)];
      trace.push({ kind: "pool", input: h, output: out, inShape: s, outShape });
      h = out;
      s = outShape;
    }
    if (l.name === layer) {
      found = true;
      break;
    }
  }
  if (!found) throw CoreError.invalidArgument(`layer: unknown layer ${layer}`);
  return { trace, features: h, shape: s };
}

/** The features graph: input `x` NCHW `["R", c, h, w]`, output `features` NCHW. */
export function exportFeaturesOnnx(
  model: VggModel,
  layer: string,
  [c, h, w]: readonly [number, number, number],
): Uint8Array {
  const g = new OnnxGraph();
  const shape: Shape4 = [1, c, h, w];
  g.input("x", ["R", c, h, w]);
  const f = forward(g, model, layer, "x", shape, false);
  g.output(f.features, "features", ["R", ...f.shape.slice(1)]);
  return g.toModel({ name: "cotrain-features" });
}

/** Nearest 2x upsampling of `t` [R, C, h, w] to [R, C, H, W] (extra odd row/column: `pad`). */
function upsample2(g: OnnxGraph, t: string, small: Shape4, big: Shape4, pad: number): string {
  const [, , h, w] = small;
  // nearest: out[y][x] = t[floor(y / 2)][floor(x / 2)] (onnxruntime's Resize is several times
  // faster here than a Reshape + Expand or Concat + DepthToSpace)
  let u = g.node("Resize", [t, "", g.initializer("scales", new Float32Array([1, 1, 2, 2]), [4])], {
    mode: "nearest",
    coordinate_transformation_mode: "asymmetric",
    nearest_mode: "floor",
  });
  const dh = big[2] - 2 * h;
  const dw = big[3] - 2 * w;
  if (dh > 0 || dw > 0) {
    const pads = g.int64("pads", [0, 0, 0, 0, 0, 0, dh, dw]);
    u = g.node("Pad", [u, pads, g.initializer("padv", new Float32Array([pad]), [])], {
      mode: "constant",
    });
  }
  return u;
}

/**
 * The gradient graph: inputs `x` NCHW `["R", c, h, w]` and `target` (the features of x0 for each
 * row, NCHW), outputs `grad` (the shape of x) and `loss` `[R]`. The batch size R is free, so one
 * session serves batches in chunks.
 */
export function exportReconstructionGradOnnx(
  model: VggModel,
  layer: string,
  [c, h, w]: readonly [number, number, number],
): Uint8Array {
  const g = new OnnxGraph();
  const shape: Shape4 = [1, c, h, w];
  g.input("x", ["R", c, h, w]);
  const f = forward(g, model, layer, "x", shape, true);
  const t = g.input("target", ["R", ...f.shape.slice(1)]);
  const diff = g.node("Sub", [f.features, t], {}, "diff");
  g.output(g.node("ReduceSumSquare", [diff], { axes: [1, 2, 3], keepdims: 0 }), "loss", ["R"]);
  const zero = g.initializer("zero", new Float32Array([0]), []);
  let grad = g.node("Mul", [diff, g.initializer("two", new Float32Array([2]), [])]);
  for (let i = f.trace.length - 1; i >= 0; i--) {
    const l = f.trace[i];
    if (l.kind === "conv") {
      const pos = g.node("Greater", [l.output, zero]); // = pre-activation > 0
      const gp = g.node("Where", [pos, grad, zero]);
      grad = g.node("Conv", [gp, l.backWeight!], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
        strides: [1, 1],
      });
    } else {
      const maxUp = upsample2(g, l.output, l.outShape, l.inShape, -3.0e38);
      const gradUp = upsample2(g, grad, l.outShape, l.inShape, 0);
      const isMax = g.node("Equal", [l.input, maxUp]);
      grad = g.node("Where", [isMax, gradUp, zero]);
    }
  }
  g.output(grad, "grad", ["R", c, h, w]);
  return g.toModel({ name: "cotrain-reconstruction-grad" });
}

/** An onnxruntime session of one of these graphs (float32 inputs and outputs by name). */
export type GradSession = Program;

/**
 * Opens a CPU session on `bytes` with `threads` intra-op threads (default: every core), idle
 * threads sleeping between operators (a service shares its cores).
 */
export function openGradSession(
  bytes: Uint8Array,
  threads = Math.max(1, navigator.hardwareConcurrency ?? 1),
): Promise<GradSession> {
  return loadProgram(bytes, threads, { spinning: false });
}
