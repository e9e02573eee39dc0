/**
 * cotrain's training kernels for tfjs-backend-wasm, registered on top of tfjs' own:
 *
 * | kernel | how |
 * |---|---|
 * | `Conv2DBackpropFilter` (missing in tfjs wasm) | wasm outer-product accumulation, no im2col (alternative mode: wasm im2col writing P^T [KH*KW*Cin, M], then XNNPACK matmuls P^T x dy) |
 * | `Conv2D`, stride 1 | direct wasm convolution (6 pixels x 8 output channels register blocks on a zero-padded copy), other strides to XNNPACK |
 * | `Conv2DBackpropInput` (slow in tfjs wasm) | wasm filter flip (+ zero-dilation of dy for strides > 1), then the direct stride-1 convolution |
 * | `MaxPoolGrad` | wasm, SIMD over channels, first maximum of each window (as tfjs cpu / PyTorch) |
 * | `CotrainBnRelu` / `CotrainBnReluGrad` (new) | wasm fused batch-norm (batch statistics) + ReLU, forward and backward |
 * | `CotrainSgdMomentum` (new) | wasm fused SGD momentum + weight-decay update |
 * | `Sum` over leading axes | wasm column sums (tfjs transposes first), other cases go to tfjs |
 * | `Identity` | a reference-counted alias (tfjs wasm copies; the tape clones every saved tensor) |
 *
 * All run on the backend heap (see wasm_module.ts). Only NHWC, dilation 1 convolutions.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { registerWasmKernels } from "./register.ts";
 * registerWasmKernels();
 * await tf.setBackend("wasm");
 * const x = tf.randomNormal([2, 7, 9, 3]) as tf.Tensor4D;
 * const dy = tf.randomNormal([2, 7, 9, 4]) as tf.Tensor4D;
 * const dw = tf.conv2dBackpropFilter?.(x, dy, [3, 3, 3, 4], 1, "same"); // [3, 3, 3, 4]
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
// registers tfjs' gradients into the single tfjs-core instance (as core/engine/backend.ts does)
import "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { backend_util, type KernelFunc, type TensorInfo } from "@tensorflow/tfjs-core";
import { type EmscriptenModule, heapOf, type KernelHeap } from "./wasm_module.ts";

/** Name of the fused batch-norm + ReLU kernel (outputs: y, batch mean, batch variance). */
export const BN_RELU = "CotrainBnRelu";
/** Name of its backward kernel (outputs: dx, dgamma, dbeta, dbias). */
export const BN_RELU_GRAD = "CotrainBnReluGrad";
/** Name of the fused SGD momentum update kernel (outputs: new weights, new momentum). */
export const SGD_MOMENTUM = "CotrainSgdMomentum";
/** Kernel name of the Gaussian readout's sampling + channel weighting (see ops.ts readoutSample). */
export const READOUT = "CotrainGaussianReadout";
/** Kernel name of its gradient (dx, dgrid, dfeatures). */
export const READOUT_GRAD = "CotrainGaussianReadoutGrad";

const BACKEND = "wasm";
/**
 * Floats of im2col scratch per chunk of Conv2DBackpropFilter: small enough that the patch matrix
 * stays in the L2 cache between being written and being read by the matmul (whole images per chunk).
 */
let im2colChunkFloats = 1 << 18;
let filterGradMode: "direct" | "im2col" = "direct";
/**
 * How Conv2DBackpropFilter computes: `direct` (default, wasm outer-product accumulation) or
 * `im2col` (wasm im2col producing P^T, then XNNPACK matmuls). For benchmarks and tests.
 */
export function setFilterGradMode(mode: "direct" | "im2col"): void {
  filterGradMode = mode;
}
/** Sets the chunk size of Conv2DBackpropFilter's im2col (floats; for tuning). */
export function setIm2colChunkFloats(n: number): void {
  im2colChunkFloats = n;
}

interface TensorData {
  id: number;
  memoryOffset: number;
}
/** The parts of tfjs-backend-wasm's BackendWasm the kernels use. */
interface WasmBackend {
  wasm: EmscriptenModule;
  dataIdMap: { get(dataId: unknown): TensorData | undefined };
  makeOutput(shape: number[], dtype: "float32"): TensorInfo;
  disposeData(dataId: unknown): boolean;
}
type Args = Parameters<KernelFunc>[0];

function ptr(backend: WasmBackend, t: TensorInfo): number {
  const d = backend.dataIdMap.get(t.dataId);
  if (!d) throw new Error("wasm kernel: tensor not on the wasm backend");
  return d.memoryOffset;
}
function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
function need(cond: boolean, msg: string): void {
  if (!cond) throw new Error(`cotrain wasm kernels: ${msg}`);
}
function checkFloat(...ts: TensorInfo[]): void {
  for (const t of ts) need(t.dtype === "float32", `float32 only, got ${t.dtype}`);
}
function tfKernel(name: string): KernelFunc {
  const k = tf.getKernel(name, BACKEND);
  if (!k) throw new Error(`tfjs-backend-wasm has no ${name} kernel`);
  return k.kernelFunc;
}
function withScratch<T>(heap: KernelHeap, bytes: number, f: (p: number) => T): T {
  const p = heap.malloc(Math.max(16, bytes));
  try {
    return f(p);
  } finally {
    heap.free(p);
  }
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: dW [KH,KW,Cin,Cout] = P^T [KH*KW*Cin, M] x dy [M, Cout].

function conv2dBackpropFilter(args: Args): TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args
    .attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  checkFloat(x, dy);
  need(dataFormat === "NHWC" || dataFormat == null, "Conv2DBackpropFilter: NHWC only");
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const heap = heapOf(backend);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow } = info;
  if (filterGradMode === "direct") {
    const dW = backend.makeOutput([...filterShape], "float32");
    heap.k.conv_filter_grad(
      ptr(backend, x),
      ptr(backend, dy),
      ptr(backend, dW),
      n,
      h,
      w,
      ci,
      oh,
      ow,
      co,
      fh,
      fw,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
    return dW;
  }
  const kdim = fh * fw * ci;
  const ohw = oh * ow;
  const per = Math.max(1, Math.min(n, Math.floor(im2colChunkFloats / (kdim * ohw))));
  const matMul = tfKernel("BatchMatMul");
  let result: TensorInfo | null = null;
  const scratchBytes = (ci * h * w + 8) * 4;
  withScratch(heap, scratchBytes, (scratch) => {
    for (let n0 = 0; n0 < n; n0 += per) {
      const n1 = Math.min(n, n0 + per);
      const m = (n1 - n0) * ohw;
      const pt = backend.makeOutput([1, kdim, m], "float32");
      let dyChunk = dy;
      let ownDy = false;
      try {
        heap.k.im2col_t(
          ptr(backend, x),
          ptr(backend, pt),
          scratch,
          n0,
          n1,
          h,
          w,
          ci,
          fh,
          fw,
          info.strideHeight,
          info.strideWidth,
          info.padInfo.top,
          info.padInfo.left,
          oh,
          ow,
        );
        if (n0 > 0 || n1 < n) {
          dyChunk = backend.makeOutput([1, m, co], "float32");
          ownDy = true;
          const f32 = heap.f32();
          const src = ptr(backend, dy) / 4 + n0 * ohw * co;
          f32.copyWithin(ptr(backend, dyChunk) / 4, src, src + m * co);
        }
        const b3 = { dataId: dyChunk.dataId, shape: [1, m, co], dtype: "float32" } as TensorInfo;
        const part = matMul({
          inputs: { a: pt, b: b3 },
          backend: args.backend,
          attrs: { transposeA: false, transposeB: false },
        }) as TensorInfo;
        if (result === null) {
          result = part;
        } else {
          heap.k.add_inplace(ptr(backend, result), ptr(backend, part), kdim * co);
          backend.disposeData(part.dataId);
        }
      } finally {
        backend.disposeData(pt.dataId);
        if (ownDy) backend.disposeData(dyChunk.dataId);
      }
    }
  });
  const out = result as unknown as TensorInfo;
  return { dataId: out.dataId, shape: [...filterShape], dtype: "float32" };
}

// ---------------------------------------------------------------------------------------------
// Stride-1 convolutions in wasm (kernels.c conv2d_s1): forward Conv2D and the input gradient.

let directConv = true;
/**
 * Whether stride-1 convolutions (Conv2D and the convolution inside Conv2DBackpropInput) run on
 * cotrain's direct wasm kernel (default) or on tfjs' XNNPACK Conv2D. For benchmarks and tests.
 */
export function setDirectConv(on: boolean): void {
  directConv = on;
}

/**
 * The direct kernel wins on small channel counts (w = 1/8, 1/4: XNNPACK's per-call packing
 * dominates there) and loses on wide layers (w = 1 inference ran at half speed), so it takes a
 * convolution only when neither side has more channels than this.
 */
export const DIRECT_CONV_MAX_CHANNELS = 64;

function useDirectConv(inChannels: number, outChannels: number): boolean {
  return directConv && Math.max(inChannels, outChannels) <= DIRECT_CONV_MAX_CHANNELS;
}

/**
 * out [N, HP-KH+1, WP-KW+1, Co] = x [N,H,W,Ci] zero-padded by (top, bottom, left, right), convolved
 * (stride 1, dilation 1) with w [KH,KW,Ci,Co].
 */
function conv2dS1(
  backend: WasmBackend,
  x: TensorInfo,
  w: TensorInfo,
  pads: [number, number, number, number],
): TensorInfo {
  const heap = heapOf(backend);
  const [n, h, wd, ci] = x.shape;
  const [kh, kw, , co] = w.shape;
  const [top, bottom, left, right] = pads;
  const hp = h + top + bottom;
  const wp = wd + left + right;
  const oh = hp - kh + 1;
  const ow = wp - kw + 1;
  const out = backend.makeOutput([n, oh, ow, co], "float32");
  if (oh < 1 || ow < 1) return out;
  const run = (xp: number) =>
    heap.k.conv2d_s1(xp, ptr(backend, w), ptr(backend, out), n, hp, wp, ci, oh, ow, co, kh, kw);
  if (top === 0 && bottom === 0 && left === 0 && right === 0) {
    run(ptr(backend, x));
  } else {
    withScratch(heap, n * hp * wp * ci * 4, (xp) => {
      heap.k.pad_nhwc(ptr(backend, x), xp, n, h, wd, ci, hp, wp, top, left);
      run(xp);
    });
  }
  return out;
}

/** Conv2D: stride 1, dilation 1, NHWC float32 on the direct kernel; anything else to tfjs. */
function makeConv2D(original: KernelFunc): KernelFunc {
  return (args: Args) => {
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = args
      .attrs as unknown as tf.Conv2DAttrs;
    if (
      !useDirectConv(filter.shape[2], filter.shape[3]) || x.dtype !== "float32" ||
      filter.dtype !== "float32" || (dataFormat != null && dataFormat !== "NHWC")
    ) return original(args);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      dilations ?? 1,
      pad,
      dimRoundingMode,
    );
    if (
      info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 ||
      info.dilationWidth !== 1
    ) return original(args);
    const p = info.padInfo;
    return conv2dS1(args.backend as unknown as WasmBackend, x, filter, [
      p.top,
      p.bottom,
      p.left,
      p.right,
    ]);
  };
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput: dx = conv(dilate(dy), rot180(W)^T), stride 1, explicit padding.

function conv2dBackpropInput(args: Args): TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args
    .attrs as unknown as tf.Conv2DBackpropInputAttrs;
  checkFloat(dy, filter);
  need(dataFormat === "NHWC" || dataFormat == null, "Conv2DBackpropInput: NHWC only");
  const info = backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const heap = heapOf(backend);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const dh = (oh - 1) * sh + 1;
  const dw = (ow - 1) * sw + 1;
  const top = fh - 1 - info.padInfo.top;
  const left = fw - 1 - info.padInfo.left;
  const bottom = h + fh - 1 - dh - top;
  const right = w + fw - 1 - dw - left;
  need(
    top >= 0 && left >= 0 && bottom >= 0 && right >= 0,
    `Conv2DBackpropInput: padding ${JSON.stringify(info.padInfo)} larger than the filter - 1`,
  );
  const flipped = backend.makeOutput([fh, fw, co, ci], "float32");
  let src = dy;
  try {
    heap.k.flip_filter(ptr(backend, filter), ptr(backend, flipped), fh, fw, ci, co);
    if (sh > 1 || sw > 1) {
      src = backend.makeOutput([n, dh, dw, co], "float32");
      heap.k.dilate(ptr(backend, dy), ptr(backend, src), n, oh, ow, co, sh, sw);
    }
    if (useDirectConv(ci, co)) return conv2dS1(backend, src, flipped, [top, bottom, left, right]);
    return tfKernel("Conv2D")({
      inputs: { x: src, filter: flipped },
      backend: args.backend,
      attrs: {
        strides: [1, 1],
        pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
        dataFormat: "NHWC",
        dilations: [1, 1],
        dimRoundingMode: undefined,
      } as unknown as tf.NamedAttrMap,
    }) as TensorInfo;
  } finally {
    backend.disposeData(flipped.dataId);
    if (src !== dy) backend.disposeData(src.dataId);
  }
}

// ---------------------------------------------------------------------------------------------

function maxPoolGrad(args: Args): TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args
    .attrs as unknown as tf.MaxPoolGradAttrs;
  checkFloat(dy, input);
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const heap = heapOf(backend);
  const dx = backend.makeOutput(input.shape, "float32");
  heap.k.maxpool_grad(
    ptr(backend, input),
    ptr(backend, dy),
    ptr(backend, dx),
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.dilationHeight,
    info.dilationWidth,
  );
  return dx;
}

// ---------------------------------------------------------------------------------------------

function bnRelu(args: Args): TensorInfo[] {
  const backend = args.backend as unknown as WasmBackend;
  const { x, bias, gamma, beta } = args.inputs as Record<string, TensorInfo>;
  const eps = (args.attrs as { epsilon: number }).epsilon;
  checkFloat(x, bias, gamma, beta);
  const c = x.shape[x.shape.length - 1];
  const m = size(x.shape) / c;
  need(bias.shape.length === 1 && bias.shape[0] === c, "BnRelu: bias must be [C]");
  need(gamma.shape.length === 1 && gamma.shape[0] === c, "BnRelu: gamma must be [C]");
  need(beta.shape.length === 1 && beta.shape[0] === c, "BnRelu: beta must be [C]");
  const heap = heapOf(backend);
  const out = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([c], "float32");
  const variance = backend.makeOutput([c], "float32");
  withScratch(heap, 16 * c, (s) =>
    heap.k.bn_relu_fwd(
      ptr(backend, x),
      ptr(backend, bias),
      ptr(backend, gamma),
      ptr(backend, beta),
      ptr(backend, out),
      ptr(backend, mean),
      ptr(backend, variance),
      s,
      m,
      c,
      eps,
    ));
  return [out, mean, variance];
}

function bnReluGrad(args: Args): TensorInfo[] {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, x, y, mean, variance, gamma, bias } = args.inputs as Record<string, TensorInfo>;
  const eps = (args.attrs as { epsilon: number }).epsilon;
  checkFloat(dy, x, y, mean, variance, gamma, bias);
  const c = x.shape[x.shape.length - 1];
  const m = size(x.shape) / c;
  const heap = heapOf(backend);
  const dx = backend.makeOutput(x.shape, "float32");
  const dgamma = backend.makeOutput([c], "float32");
  const dbeta = backend.makeOutput([c], "float32");
  const dbias = backend.makeOutput([c], "float32");
  withScratch(heap, 40 * c, (s) =>
    heap.k.bn_relu_bwd(
      ptr(backend, dy),
      ptr(backend, x),
      ptr(backend, y),
      ptr(backend, mean),
      ptr(backend, variance),
      ptr(backend, gamma),
      ptr(backend, bias),
      ptr(backend, dx),
      ptr(backend, dgamma),
      ptr(backend, dbeta),
      ptr(backend, dbias),
      s,
      m,
      c,
      eps,
    ));
  return [dx, dgamma, dbeta, dbias];
}

function sgdMomentum(args: Args): TensorInfo[] {
  const backend = args.backend as unknown as WasmBackend;
  const { w, m, g } = args.inputs as Record<string, TensorInfo>;
  const { lr, momentum, weightDecay } = args.attrs as {
    lr: number;
    momentum: number;
    weightDecay: number;
  };
  checkFloat(w, m, g);
  const n = size(w.shape);
  need(size(m.shape) === n && size(g.shape) === n, "SgdMomentum: shapes differ");
  const heap = heapOf(backend);
  const wOut = backend.makeOutput(w.shape, "float32");
  const mOut = backend.makeOutput(w.shape, "float32");
  heap.k.sgd_momentum(
    ptr(backend, w),
    ptr(backend, m),
    ptr(backend, g),
    ptr(backend, wOut),
    ptr(backend, mOut),
    n,
    lr,
    momentum,
    weightDecay,
  );
  return [wOut, mOut];
}

/** Shapes of a readout call: x [B,H,W,C], grid [B,N,2], features [C,N]. */
function readoutDims(x: TensorInfo, grid: TensorInfo, f: TensorInfo): number[] {
  checkFloat(x, grid, f);
  need(x.shape.length === 4, `GaussianReadout: x must be [B,H,W,C]; got [${x.shape}]`);
  const [b, h, w, c] = x.shape;
  const n = f.shape[1];
  need(
    f.shape.length === 2 && f.shape[0] === c,
    `GaussianReadout: features must be [${c},N]; got [${f.shape}]`,
  );
  need(
    grid.shape.length === 3 && grid.shape[0] === b && grid.shape[1] === n && grid.shape[2] === 2,
    `GaussianReadout: grid must be [${b},${n},2]; got [${grid.shape}]`,
  );
  return [b, h, w, c, n];
}

function readout(args: Args): TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const { x, grid, features } = args.inputs as Record<string, TensorInfo>;
  const [b, h, w, c, n] = readoutDims(x, grid, features);
  const heap = heapOf(backend);
  const y = backend.makeOutput([b, n], "float32");
  withScratch(heap, (n * c + c) * 4, (s) =>
    heap.k.readout_fwd(
      ptr(backend, x),
      ptr(backend, grid),
      ptr(backend, features),
      ptr(backend, y),
      s,
      b,
      h,
      w,
      c,
      n,
    ));
  return y;
}

function readoutGrad(args: Args): TensorInfo[] {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, x, grid, features } = args.inputs as Record<string, TensorInfo>;
  const [b, h, w, c, n] = readoutDims(x, grid, features);
  checkFloat(dy);
  const heap = heapOf(backend);
  const dx = backend.makeOutput(x.shape, "float32");
  const dgrid = backend.makeOutput(grid.shape, "float32");
  const df = backend.makeOutput(features.shape, "float32");
  withScratch(heap, (2 * n * c + 2 * c) * 4, (s) =>
    heap.k.readout_bwd(
      ptr(backend, dy),
      ptr(backend, x),
      ptr(backend, grid),
      ptr(backend, features),
      ptr(backend, dx),
      ptr(backend, dgrid),
      ptr(backend, df),
      s,
      b,
      h,
      w,
      c,
      n,
    ));
  return [dx, dgrid, df];
}

/** Sum over the leading axes (bias gradients) in wasm; anything else goes to tfjs' Sum. */
function makeSum(original: KernelFunc): KernelFunc {
  return (args: Args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== "float32" || keepDims) return original(args);
    const backend = args.backend as unknown as WasmBackend;
    const heap = heapOf(backend);
    const c = x.shape[rank - 1];
    const out = backend.makeOutput([c], "float32");
    withScratch(
      heap,
      8 * c,
      (s) => heap.k.colsum(ptr(backend, x), ptr(backend, out), s, size(x.shape) / c, c),
    );
    return out;
  };
}

/**
 * Identity (tf.clone, and the engine's copies of every tensor the tape saves) as a shared,
 * reference-counted alias like the cpu backend's, instead of tfjs wasm's full copy: tensors are
 * immutable and every kernel here writes only its fresh outputs.
 */
function makeIdentity(original: KernelFunc): KernelFunc {
  return (args: Args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === "string") return original(args);
    (args.backend as unknown as { incRef(dataId: unknown): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

let registered = false;

/**
 * Registers cotrain's kernels on the `wasm` backend (idempotent) and the gradient of
 * {@linkcode BN_RELU}. Call before or after `tf.setBackend("wasm")`; `initBackend("wasm")` calls it.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  const replace = (kernelName: string, kernelFunc: KernelFunc, setupFunc?: tf.KernelSetupFunc) => {
    if (tf.getKernel(kernelName, BACKEND)) tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc, setupFunc });
  };
  replace("Conv2DBackpropFilter", conv2dBackpropFilter);
  replace("Conv2DBackpropInput", conv2dBackpropInput);
  replace("MaxPoolGrad", maxPoolGrad);
  const conv2d = tf.getKernel("Conv2D", BACKEND);
  // keep tfjs' setupFunc: it binds the XNNPACK Conv2D that the wrapper falls back to
  if (conv2d) replace("Conv2D", makeConv2D(conv2d.kernelFunc), conv2d.setupFunc);
  replace(BN_RELU, bnRelu as unknown as KernelFunc);
  replace(BN_RELU_GRAD, bnReluGrad as unknown as KernelFunc);
  replace(SGD_MOMENTUM, sgdMomentum as unknown as KernelFunc);
  replace(READOUT, readout as unknown as KernelFunc);
  replace(READOUT_GRAD, readoutGrad as unknown as KernelFunc);
  const identity = tf.getKernel("Identity", BACKEND);
  if (identity) replace("Identity", makeIdentity(identity.kernelFunc), identity.setupFunc);
  const sum = tf.getKernel("Sum", BACKEND);
  // keep tfjs' setupFunc: it binds the C++ Sum that the wrapper falls back to
  if (sum) replace("Sum", makeSum(sum.kernelFunc), sum.setupFunc);
  tf.registerGradient({
    kernelName: BN_RELU,
    inputsToSave: ["x", "bias", "gamma"],
    outputsToSave: [true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, bias, gamma, y, mean, variance] = saved;
      const [dx, dgamma, dbeta, dbias] = tf.engine().runKernel(
        BN_RELU_GRAD,
        { dy, x, y, mean, variance, gamma, bias } as unknown as tf.NamedTensorMap,
        attrs,
      ) as tf.Tensor[];
      return { x: () => dx, bias: () => dbias, gamma: () => dgamma, beta: () => dbeta };
    },
  });
  tf.registerGradient({
    kernelName: READOUT,
    inputsToSave: ["x", "grid", "features"],
    gradFunc: (dys, saved) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, grid, features] = saved;
      const [dx, dgrid, df] = tf.engine().runKernel(
        READOUT_GRAD,
        { dy, x, grid, features } as unknown as tf.NamedTensorMap,
        {},
      ) as tf.Tensor[];
      return { x: () => dx, grid: () => dgrid, features: () => df };
    },
  });
  registered = true;
}

/** Whether {@linkcode registerWasmKernels} has run. */
export function wasmKernelsRegistered(): boolean {
  return registered;
}
