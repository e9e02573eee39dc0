/**
 * cotrain's wasm kernels (kernels.c, built into kernels_wasm.ts) instantiated on the heap of a
 * tfjs-backend-wasm backend: the module imports the backend's own `WebAssembly.Memory`
 * (`backend.wasm.asm.memory`, the Emscripten instance's exported memory), so kernels read and
 * write tensors in place at their `memoryOffset`s, and scratch comes from the backend's `_malloc`.
 * No copies between heaps.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { heapOf } from "./wasm_module.ts";
 * await tf.setBackend("wasm");
 * const heap = heapOf(tf.backend() as never);
 * const p = heap.malloc(16); heap.free(p);
 * ```
 * @module
 */
import { decodeBase64 } from "./base64.ts";
import { KERNELS_WASM_BASE64 } from "./kernels_wasm.ts";

/** The exports of kernels.c (pointers are byte addresses on the backend heap). */
export interface KernelExports {
  transpose2d(src: number, dst: number, rows: number, cols: number): void;
  im2col_t(
    x: number,
    out: number,
    scratch: number,
    n0: number,
    n1: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
    oh: number,
    ow: number,
  ): void;
  conv_filter_grad(
    x: number,
    dy: number,
    dw: number,
    n: number,
    h: number,
    w: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
  ): void;
  dilate(
    dy: number,
    out: number,
    n: number,
    oh: number,
    ow: number,
    c: number,
    sh: number,
    sw: number,
  ): void;
  flip_filter(w: number, out: number, kh: number, kw: number, ci: number, co: number): void;
  conv2d_s1(
    xp: number,
    w: number,
    out: number,
    n: number,
    hp: number,
    wp: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    kh: number,
    kw: number,
  ): void;
  pad_nhwc(
    x: number,
    xp: number,
    n: number,
    h: number,
    w: number,
    c: number,
    hp: number,
    wp: number,
    pt: number,
    pl: number,
  ): void;
  maxpool_grad(
    x: number,
    dy: number,
    dx: number,
    n: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
    dh: number,
    dw: number,
  ): void;
  bn_relu_fwd(
    y: number,
    b: number,
    gamma: number,
    beta: number,
    out: number,
    mean: number,
    variance: number,
    scratch: number,
    m: number,
    c: number,
    eps: number,
  ): void;
  bn_relu_bwd(
    dout: number,
    y: number,
    out: number,
    mean: number,
    variance: number,
    gamma: number,
    b: number,
    dy: number,
    dgamma: number,
    dbeta: number,
    db: number,
    scratch: number,
    m: number,
    c: number,
    eps: number,
  ): void;
  colsum(x: number, out: number, scratch: number, m: number, c: number): void;
  readout_fwd(
    x: number,
    grid: number,
    f: number,
    y: number,
    scratch: number,
    b: number,
    h: number,
    w: number,
    c: number,
    n: number,
  ): void;
  readout_bwd(
    dy: number,
    x: number,
    grid: number,
    f: number,
    dx: number,
    dgrid: number,
    df: number,
    scratch: number,
    b: number,
    h: number,
    w: number,
    c: number,
    n: number,
  ): void;
  add_inplace(dst: number, src: number, n: number): void;
  sgd_momentum(
    w: number,
    m: number,
    g: number,
    wOut: number,
    mOut: number,
    n: number,
    lr: number,
    mom: number,
    wd: number,
  ): void;
}

/** The parts of tfjs-backend-wasm's Emscripten module cotrain uses. */
export interface EmscriptenModule {
  asm: { memory: WebAssembly.Memory };
  HEAPF32: Float32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

/** A wasm backend's heap with cotrain's kernels bound to it. */
export interface KernelHeap {
  k: KernelExports;
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
  /** The current Float32Array view of the heap (re-read after anything that may grow it). */
  f32(): Float32Array;
}

let compiled: WebAssembly.Module | null = null;
const heaps = new WeakMap<object, KernelHeap>();

/** Compiles the kernel module once per process. */
function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    compiled = new WebAssembly.Module(decodeBase64(KERNELS_WASM_BASE64) as Uint8Array<ArrayBuffer>);
  }
  return compiled;
}

/**
 * The kernels bound to the heap of `backend` (a tfjs-backend-wasm instance), instantiated on first
 * use and cached per backend.
 */
export function heapOf(backend: { wasm: EmscriptenModule }): KernelHeap {
  let heap = heaps.get(backend);
  if (heap) return heap;
  const em = backend.wasm;
  const memory = em.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("tfjs-backend-wasm does not expose its WebAssembly.Memory (wasm.asm.memory)");
  }
  const instance = new WebAssembly.Instance(kernelModule(), { env: { memory } });
  heap = {
    k: instance.exports as unknown as KernelExports,
    memory,
    malloc: (bytes: number) => {
      const p = em._malloc(bytes);
      if (!p) throw new Error(`wasm heap: out of memory allocating ${bytes} bytes`);
      return p;
    },
    free: (p: number) => em._free(p),
    f32: () => em.HEAPF32,
  };
  heaps.set(backend, heap);
  return heap;
}
