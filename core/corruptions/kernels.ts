/**
 * The corruptions' hot loops in WebAssembly with SIMD (wasm/kernels.c, built by wasm/build.sh into
 * wasm/kernels_wasm.ts, committed): the JPEG round trip and the Gaussian filter's passes. Why not
 * JavaScript: at 64x64 the reference's C/SIMD libraries (PIL's libjpeg-turbo, scipy's correlate)
 * beat scalar JS by 2-4x; WebAssembly SIMD runs two doubles (or the JPEG's integer blocks) per
 * instruction without bounds checks, is part of Deno itself (no native addon, nothing to install
 * on a clean machine), and gives the same bits on every machine (no fused multiply-add, no
 * reassociation). Why not an npm codec for the JPEG: the WebAssembly libjpeg-turbo build used
 * before (@cornerstonejs/codec-libjpeg-turbo-8bit) took ~0.6 ms per 64x64 round trip (per-call
 * set-up and the lossless entropy coding) and wrote progressive JPEGs, whose pixels differed from
 * PIL's by a few levels; sharp (libvips, a native addon) is asynchronous, with per-call pipeline
 * costs of the same order. kernels.c computes libjpeg's lossy stages only, and its pixels equal
 * PIL's save/open round trip byte for byte (kernels_test.ts, fixtures made by PIL itself).
 *
 * The module's memory is an arena laid out per call (calls are synchronous); it grows to the
 * largest call up to {@linkcode ARENA_MAX} bytes, larger calls run in a throwaway instance.
 *
 * @example
 * ```ts
 * import { jpegRoundTripFast } from "./kernels.ts";
 * const rgb = new Uint8Array(32 * 32 * 3).fill(200);
 * const out = new Uint8Array(rgb.length);
 * jpegRoundTripFast(rgb, 32, 32, 25, out, 0);
 * console.log(out[0] > 190 && out[0] < 210); // true
 * ```
 * @module
 */
import { KERNELS_WASM_BASE64 } from "./wasm/kernels_wasm.ts";

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  jpeg_work_bytes(h: number, w: number): number;
  jpeg_roundtrip(rgb: number, out: number, h: number, w: number, q: number, work: number): void;
  corr_y(
    src: number,
    dst: number,
    k: number,
    taps: number,
    map: number,
    h: number,
    rowLen: number,
    sym: number,
  ): void;
  defocus_scratch_doubles(h: number, w: number, P: number, gl: number): number;
  defocus(...args: number[]): void;
  pixelate(...args: number[]): void;
  distance_transform(src: number, out: number, h: number, w: number, m: number): void;
  bytes_in(src: number, d: number, n: number): void;
  water_relief(edges: number, liquid: number, m: number, h: number, w: number, s: number): number;
  bytes_out_trunc(r: number, out: number, n: number): void;
  corr_x(
    src: number,
    dst: number,
    k: number,
    taps: number,
    xs: number,
    h: number,
    w: number,
    c: number,
    sym: number,
    pad: number,
  ): void;
}

/**
 * Largest arena (bytes) kept between calls: a larger call runs in a fresh instance of the module
 * that is dropped afterwards (WebAssembly memory cannot shrink), so large images pin no memory.
 */
export const ARENA_MAX = 64 << 20;

const MODULE = (() => {
  const bin = atob(KERNELS_WASM_BASE64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new WebAssembly.Module(bytes);
})();

function instantiate(): Exports {
  return new WebAssembly.Instance(MODULE, {}).exports as unknown as Exports;
}

const shared = instantiate();
const BASE = (Number(shared.__heap_base.value) + 15) & ~15;

let arenaMax = ARENA_MAX;

/**
 * Runs `fn` with the arena capped at `bytes` (tests: the throwaway-instance path on small
 * images), then restores the cap.
 */
export function withArenaMax<T>(bytes: number, fn: () => T): T {
  const before = arenaMax;
  arenaMax = bytes;
  try {
    return fn();
  } finally {
    arenaMax = before;
  }
}

/** An instance whose arena (from BASE) holds at least `bytes`. */
function arena(bytes: number): Exports {
  const wasm = bytes <= arenaMax ? shared : instantiate();
  const need = BASE + bytes, have = wasm.memory.buffer.byteLength;
  if (need > have) wasm.memory.grow(Math.ceil((need - have) / 65536));
  return wasm;
}

const align = (n: number) => (n + 15) & ~15;

/**
 * 8-bit RGB (h x w x 3) through a baseline JPEG at `quality` (IJG tables, 4:2:0, libjpeg's
 * arithmetic; see the module docs), written to out[at..].
 */
export function jpegRoundTripFast(
  rgb: Uint8Array,
  h: number,
  w: number,
  quality: number,
  out: Uint8Array,
  at: number,
): void {
  const n = h * w * 3;
  const inAt = BASE, outAt = inAt + align(n), workAt = outAt + align(n);
  const wasm = arena(workAt - BASE + align(shared.jpeg_work_bytes(h, w)));
  const heap = new Uint8Array(wasm.memory.buffer);
  heap.set(rgb.subarray(0, n), inAt);
  wasm.jpeg_roundtrip(inAt, outAt, h, w, quality, workAt);
  out.set(heap.subarray(outAt, outAt + n), at);
}

/** Whether kernel[t] === kernel[taps - 1 - t] for every t (odd length). */
function isSymmetric(kernel: Float64Array): boolean {
  const n = kernel.length;
  if (n % 2 === 0) return false;
  for (let t = 0; t < n >> 1; t++) if (kernel[t] !== kernel[n - 1 - t]) return false;
  return true;
}

/**
 * Separable correlation of an h x w x c image: `ky` down the columns with source row offsets
 * `ysMap` (output row o, tap t: source row index at o * ky.length + t), then `kx` along the rows
 * with source column indices `xs` (w + kx.length - 1 of them); either kernel may be null (pass
 * skipped). The same sums in the same order as image.ts's correlate1d.
 */
export function separableFast(
  src: Float64Array,
  dst: Float64Array,
  h: number,
  w: number,
  c: number,
  ky: Float64Array | null,
  ysMap: Int32Array | null,
  kx: Float64Array | null,
  xs: Int32Array | null,
): void {
  const n = h * w * c;
  const img = align(n * 8);
  const kyLen = ky ? ky.length : 0, kxLen = kx ? kx.length : 0;
  const aAt = BASE, bAt = aAt + img, kyAt = bAt + img, kxAt = kyAt + align(kyLen * 8);
  const mapAt = kxAt + align(kxLen * 8), xsAt = mapAt + align(h * kyLen * 4);
  const padAt = xsAt + align((w + kxLen) * 4);
  const end = padAt + align((w + kxLen) * c * 8);
  const wasm = arena(end - BASE);
  const buf = wasm.memory.buffer;
  const f64 = new Float64Array(buf), i32 = new Int32Array(buf);
  f64.set(src.subarray(0, n), aAt >> 3);
  let cur = aAt, other = bAt;
  if (ky && ysMap) {
    f64.set(ky, kyAt >> 3);
    const m = i32.subarray(mapAt >> 2, (mapAt >> 2) + h * kyLen);
    for (let i = 0; i < m.length; i++) m[i] = ysMap[i] * w * c;
    wasm.corr_y(cur, other, kyAt, kyLen, mapAt, h, w * c, isSymmetric(ky) ? 1 : 0);
    [cur, other] = [other, cur];
  }
  if (kx && xs) {
    f64.set(kx, kxAt >> 3);
    const m = i32.subarray(xsAt >> 2, (xsAt >> 2) + w + kxLen - 1);
    for (let i = 0; i < m.length; i++) m[i] = xs[i] * c;
    wasm.corr_x(cur, other, kxAt, kxLen, xsAt, h, w, c, isSymmetric(kx) ? 1 : 0, padAt);
    [cur, other] = [other, cur];
  }
  dst.set(f64.subarray(cur >> 3, (cur >> 3) + n));
}

/** The plan of a defocus kernel (see defocus.ts's planFor). */
export interface DefocusPlanArrays {
  radius: number;
  halfWidth: Int32Array;
  count: number;
  gauss: Float64Array;
  pad: number;
  ey: Int32Array;
  ehw: Int32Array;
  ew: Float64Array;
  cy: Int32Array;
  cx: Int32Array;
  cw: Float64Array;
}

/**
 * defocus.ts's disk filter of an h x w x c image, all its passes in WebAssembly: the same sums
 * in the same order (bit for bit). `ys`, `xs`: the padded plane's source rows and columns.
 */
export function defocusFast(
  src: Float64Array,
  dst: Float64Array,
  h: number,
  w: number,
  c: number,
  p: DefocusPlanArrays,
  identity: boolean,
  ys: Int32Array,
  xs: Int32Array,
): void {
  const n = h * w * c, gl = p.gauss.length, ne = p.ew.length, nc = p.cw.length;
  let at = BASE;
  const take = (bytes: number) => {
    const o = at;
    at += align(bytes);
    return o;
  };
  const srcAt = take(n * 8), dstAt = take(n * 8);
  const hwAt = take(p.halfWidth.length * 4), gAt = take(gl * 8);
  const eyAt = take(ne * 4), ehwAt = take(ne * 4), ewAt = take(ne * 8);
  const cyAt = take(nc * 4), cxAt = take(nc * 4), cwAt = take(nc * 8);
  const ysAt = take(ys.length * 4), xsAt = take(xs.length * 4);
  const scratchAt = take(shared.defocus_scratch_doubles(h, w, p.pad, gl) * 8);
  const wasm = arena(at - BASE);
  const buf = wasm.memory.buffer;
  const f64 = new Float64Array(buf), i32 = new Int32Array(buf);
  f64.set(src.subarray(0, n), srcAt >> 3);
  i32.set(p.halfWidth, hwAt >> 2);
  f64.set(p.gauss, gAt >> 3);
  i32.set(p.ey, eyAt >> 2);
  i32.set(p.ehw, ehwAt >> 2);
  f64.set(p.ew, ewAt >> 3);
  i32.set(p.cy, cyAt >> 2);
  i32.set(p.cx, cxAt >> 2);
  f64.set(p.cw, cwAt >> 3);
  i32.set(ys, ysAt >> 2);
  i32.set(xs, xsAt >> 2);
  wasm.defocus(
    srcAt,
    dstAt,
    h,
    w,
    c,
    p.pad,
    p.radius,
    hwAt,
    gAt,
    gl,
    eyAt,
    ehwAt,
    ewAt,
    ne,
    cyAt,
    cxAt,
    cwAt,
    nc,
    1 / p.count,
    identity ? 1 : 0,
    ysAt,
    xsAt,
    scratchAt,
  );
  dst.set(f64.subarray(dstAt >> 3, (dstAt >> 3) + n));
}

/** PIL's box-filter coefficients of one axis (image.ts's pilBoxPlan). */
export interface BoxPlan {
  ksize: number;
  bounds: Int32Array;
  kk: Int32Array;
}

/**
 * image.ts's pilResizeBox down to oh x ow, then pilResizeNearest back up (source column offsets
 * `xs`, times c, and rows `ys` of the small image), of 8-bit h x w x c, into out[at..]: the same
 * integer arithmetic, the same bytes.
 */
export function pixelateFast(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  oh: number,
  ow: number,
  px: BoxPlan,
  py: BoxPlan,
  xs: Int32Array,
  ys: Int32Array,
  out: Uint8Array,
  at: number,
): void {
  const n = h * w * c;
  let a = BASE;
  const take = (bytes: number) => {
    const o = a;
    a += align(bytes);
    return o;
  };
  const srcAt = take(n + 1), outAt = take(n), tmpAt = take(h * ow * c), smallAt = take(oh * ow * c);
  const bxAt = take(px.bounds.length * 4), kxAt = take(px.kk.length * 4);
  const byAt = take(py.bounds.length * 4), kyAt = take(py.kk.length * 4);
  const xsAt = take(xs.length * 4), ysAt = take(ys.length * 4);
  const wasm = arena(a - BASE);
  const buf = wasm.memory.buffer;
  const u8 = new Uint8Array(buf), i32 = new Int32Array(buf);
  u8.set(src.subarray(0, n), srcAt);
  i32.set(px.bounds, bxAt >> 2);
  i32.set(px.kk, kxAt >> 2);
  i32.set(py.bounds, byAt >> 2);
  i32.set(py.kk, kyAt >> 2);
  i32.set(xs, xsAt >> 2);
  i32.set(ys, ysAt >> 2);
  wasm.pixelate(
    srcAt,
    outAt,
    h,
    w,
    c,
    oh,
    ow,
    px.ksize,
    bxAt,
    kxAt,
    py.ksize,
    byAt,
    kyAt,
    xsAt,
    ysAt,
    tmpAt,
    smallAt,
  );
  out.set(u8.subarray(outAt, outAt + n), at);
}

/** spatter.ts's distanceTransform (the same minima, the same values) in WebAssembly. */
export function distanceTransformFast(src: Uint8Array, h: number, w: number): Float64Array {
  const n = h * w;
  const srcAt = BASE, outAt = srcAt + align(n), mAt = outAt + align(n * 8);
  const wasm = arena(mAt + align((h + 4) * (w + 4) * 8) - BASE);
  const buf = wasm.memory.buffer;
  new Uint8Array(buf).set(src.subarray(0, n), srcAt);
  wasm.distance_transform(srcAt, outAt, h, w, mAt);
  return new Float64Array(buf, outAt, n).slice();
}

/**
 * {@linkcode separableFast} on 8-bit values, as corruptBatch's uint8 path computes it: in as
 * byte / 255, out truncated (floor(255 v + 1e-4), clamped), without the float round trip through
 * JavaScript: the same bytes.
 */
export function separableBytesFast(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  ky: Float64Array | null,
  ysMap: Int32Array | null,
  kx: Float64Array | null,
  xs: Int32Array | null,
  out: Uint8Array,
  at: number,
): void {
  const n = h * w * c;
  const img = align(n * 8);
  const kyLen = ky ? ky.length : 0, kxLen = kx ? kx.length : 0;
  const aAt = BASE, bAt = aAt + img, kyAt = bAt + img, kxAt = kyAt + align(kyLen * 8);
  const mapAt = kxAt + align(kxLen * 8), xsAt = mapAt + align(h * kyLen * 4);
  const padAt = xsAt + align((w + kxLen) * 4);
  const u8At = padAt + align((w + kxLen) * c * 8);
  const end = u8At + align(n);
  const wasm = arena(end - BASE);
  const buf = wasm.memory.buffer;
  const f64 = new Float64Array(buf), i32 = new Int32Array(buf), u8 = new Uint8Array(buf);
  u8.set(src.subarray(0, n), u8At);
  wasm.bytes_in(u8At, aAt, n);
  let cur = aAt, other = bAt;
  if (ky && ysMap) {
    f64.set(ky, kyAt >> 3);
    const m = i32.subarray(mapAt >> 2, (mapAt >> 2) + h * kyLen);
    for (let i = 0; i < m.length; i++) m[i] = ysMap[i] * w * c;
    wasm.corr_y(cur, other, kyAt, kyLen, mapAt, h, w * c, isSymmetric(ky) ? 1 : 0);
    [cur, other] = [other, cur];
  }
  if (kx && xs) {
    f64.set(kx, kxAt >> 3);
    const m = i32.subarray(xsAt >> 2, (xsAt >> 2) + w + kxLen - 1);
    for (let i = 0; i < m.length; i++) m[i] = xs[i] * c;
    wasm.corr_x(cur, other, kxAt, kxLen, xsAt, h, w, c, isSymmetric(kx) ? 1 : 0, padAt);
    [cur, other] = [other, cur];
  }
  wasm.bytes_out_trunc(cur, u8At, n);
  out.set(u8.subarray(u8At, u8At + n), at);
}

/**
 * spatter.ts's water relief (waterReliefJs: distance to the edges, blur, equalisation, emboss,
 * blur, times the liquid) in WebAssembly: the same values. Writes m, returns its maximum.
 */
export function waterReliefFast(
  edges: Uint8Array,
  liquid: Float64Array,
  m: Float64Array,
  h: number,
  w: number,
): number {
  const n = h * w;
  const eAt = BASE, lAt = eAt + align(n), mAt = lAt + align(n * 8);
  const sAt = mAt + align(n * 8);
  const end = sAt + align((3 * n + (h + 4) * (w + 4)) * 8 + 2 * n);
  const wasm = arena(end - BASE);
  const buf = wasm.memory.buffer;
  new Uint8Array(buf).set(edges.subarray(0, n), eAt);
  new Float64Array(buf).set(liquid.subarray(0, n), lAt >> 3);
  const max = wasm.water_relief(eAt, lAt, mAt, h, w, sAt);
  m.set(new Float64Array(buf, mAt, n));
  return max;
}
