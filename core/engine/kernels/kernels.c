// cotrain's hand-written WebAssembly (SIMD128) training kernels for tfjs-backend-wasm.
//
// Why hand-written: tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter, a slow Conv2DBackpropInput
// and slow element-wise gradient paths (moments + batchNorm + relu gradients are ~15 tfjs ops each
// walking the whole activation, reductions over N,H,W transpose first). No library provides wasm
// gradient kernels that run on tfjs' own heap, so these are written here: the data-movement parts
// (im2col producing the patch matrix already transposed, zero-dilation, filter flips) and the
// element-wise/reduction parts (fused batch-norm + ReLU forward and backward, max-pool backward,
// the SGD momentum update), and the stride-1 convolutions themselves (forward and input gradient):
// direct, register-blocked, with relaxed-SIMD fused multiply-adds, which XNNPACK's build in tfjs
// 4.22 lacks, and without XNNPACK's per-call operator setup (new weights every step).
//
// The module is linked with --import-memory: it runs on the tfjs-backend-wasm Emscripten heap
// itself, so every pointer below is an address on that heap (tensor memory offsets, or scratch from
// the backend's _malloc). It MUST NOT own any linear memory: no static data, no globals, no stack
// (no local arrays, no address-taken locals). `deno task build:kernels` checks the binary for that.
//
// Build: clang-16 --target=wasm32 -O3 -msimd128 -mrelaxed-simd -mbulk-memory -nostdlib (see
// build.ts). Relaxed SIMD (fused multiply-add) runs in V8 >= 11.4, i.e. every Deno 2.

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

typedef unsigned int u32;

static inline void zero_f32(float* p, int n) { __builtin_memset(p, 0, (unsigned)n * 4u); }
static inline void copy_f32(float* d, const float* s, int n) {
  __builtin_memcpy(d, s, (unsigned)n * 4u);
}

// ---------------------------------------------------------------------------------------------
// Transpose of a rows x cols row-major matrix into cols x rows (4x4 SIMD blocks).
static void transpose2d(const float* src, float* dst, int rows, int cols) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
    int c = 0;
    for (; c + 4 <= cols; c += 4) {
      v128_t a = wasm_v128_load(src + (r + 0) * cols + c);
      v128_t b = wasm_v128_load(src + (r + 1) * cols + c);
      v128_t e = wasm_v128_load(src + (r + 2) * cols + c);
      v128_t d = wasm_v128_load(src + (r + 3) * cols + c);
      v128_t t0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5);
      v128_t t1 = wasm_i32x4_shuffle(e, d, 0, 4, 1, 5);
      v128_t t2 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
      v128_t t3 = wasm_i32x4_shuffle(e, d, 2, 6, 3, 7);
      wasm_v128_store(dst + (c + 0) * rows + r, wasm_i64x2_shuffle(t0, t1, 0, 2));
      wasm_v128_store(dst + (c + 1) * rows + r, wasm_i64x2_shuffle(t0, t1, 1, 3));
      wasm_v128_store(dst + (c + 2) * rows + r, wasm_i64x2_shuffle(t2, t3, 0, 2));
      wasm_v128_store(dst + (c + 3) * rows + r, wasm_i64x2_shuffle(t2, t3, 1, 3));
    }
    for (; c < cols; c++) {
      for (int k = 0; k < 4; k++) dst[c * rows + r + k] = src[(r + k) * cols + c];
    }
  }
  for (; r < rows; r++) {
    for (int c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  }
}

EXPORT(transpose2d)
void transpose2d_export(const float* src, float* dst, int rows, int cols) {
  transpose2d(src, dst, rows, cols);
}

// ---------------------------------------------------------------------------------------------
// im2col, transposed: for images n0 <= n < n1 of x [N,H,W,C] (NHWC) writes
//   out[(kh*KW + kw)*C + c][(n-n0)*OH*OW + oh*OW + ow] = x[n, oh*sH+kh-pT, ow*sW+kw-pL, c] (0 outside)
// i.e. the patch matrix P^T [KH*KW*C, M] whose rows follow the HWIO filter layout, so that
// dW[KH*KW*C, Cout] = P^T x dy[M, Cout] is one plain (non-transposed) matmul.
// scratch: C*H*W floats (one image transposed to CHW).
EXPORT(im2col_t)
void im2col_t(const float* x, float* out, float* scratch, int n0, int n1, int H, int W, int C,
              int KH, int KW, int sH, int sW, int pT, int pL, int OH, int OW) {
  const int HW = H * W;
  const int OHW = OH * OW;
  const int M = (n1 - n0) * OHW;
  for (int n = n0; n < n1; n++) {
    const float* xn = x + (long)n * HW * C;
    if (C == 1) {
      copy_f32(scratch, xn, HW);
    } else {
      transpose2d(xn, scratch, HW, C);
    }
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++) {
        // valid ow range: 0 <= ow*sW + kw - pL < W
        int ow0 = 0;
        while (ow0 < OW && ow0 * sW + kw - pL < 0) ow0++;
        int ow1 = OW;
        while (ow1 > ow0 && (ow1 - 1) * sW + kw - pL >= W) ow1--;
        for (int c = 0; c < C; c++) {
          float* orow = out + (long)((kh * KW + kw) * C + c) * M + (long)(n - n0) * OHW;
          const float* plane = scratch + c * HW;
          for (int oh = 0; oh < OH; oh++) {
            float* o = orow + oh * OW;
            const int ih = oh * sH + kh - pT;
            if (ih < 0 || ih >= H) {
              zero_f32(o, OW);
              continue;
            }
            const float* srow = plane + ih * W + kw - pL;
            if (ow0 > 0) zero_f32(o, ow0);
            if (sW == 1) {
              copy_f32(o + ow0, srow + ow0, ow1 - ow0);
            } else if (sW == 2) {
              int ow = ow0;
              for (; ow + 4 <= ow1; ow += 4) {
                v128_t a = wasm_v128_load(srow + 2 * ow);
                v128_t b = wasm_v128_load(srow + 2 * ow + 4);
                wasm_v128_store(o + ow, wasm_i32x4_shuffle(a, b, 0, 2, 4, 6));
              }
              for (; ow < ow1; ow++) o[ow] = srow[2 * ow];
            } else {
              for (int ow = ow0; ow < ow1; ow++) o[ow] = srow[ow * sW];
            }
            if (ow1 < OW) zero_f32(o + ow1, OW - ow1);
          }
        }
      }
    }
  }
}

// The sW == 2 SIMD path above reads srow[2*ow .. 2*ow+7]; the loop bound (ow + 4 <= ow1) keeps
// 2*(ow+3) within range, but lane 7 (2*ow + 7) may be one past the last valid column: that read
// stays inside the image plane except for the very last row of the last channel, which is why
// the caller allocates scratch with 8 floats of slack.

// ---------------------------------------------------------------------------------------------
// Filter gradient of a 2-D convolution (NHWC, HWIO, dilation 1), computed directly:
//   dw[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*sH+kh-pT, ow*sW+kw-pL, ci] * dy[n,oh,ow,co]
// as outer-product accumulation over each output row: for a tap and a block of 4 input x 8 output
// channels, 8 f32x4 accumulators stay in registers over the row's pixels (4 lane-splats of x, 2 dy
// loads, 8 mul+add per pixel). Per-row partial sums are added to dw, which keeps the f32 rounding
// error to about (OW + N*OH) ulps instead of N*OH*OW. No im2col buffer: this beats im2col + XNNPACK
// matmul, whose GEMM is poorly shaped here ([KH*KW*Ci x M] x [M x Co] with M huge, Co small).
static inline v128_t splat_lane(v128_t v, int lane) {
  switch (lane) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
  }
}

// acc += a * b as one relaxed fused multiply-add (f32x4.relaxed_madd: vfmadd231ps where the CPU has
// FMA, mul + add elsewhere): the convolution loops are bound by the floating-point ports, so a
// fused multiply-add halves their arithmetic instructions. Needs clang >= 16 (see build.ts).
#define MULADD(acc, a, b) \
  acc = (v128_t)__builtin_wasm_relaxed_madd_f32x4((__f32x4)(a), (__f32x4)(b), (__f32x4)(acc))

EXPORT(conv_filter_grad)
void conv_filter_grad(const float* x, const float* dy, float* dw, int N, int H, int W, int Ci,
                      int OH, int OW, int Co, int KH, int KW, int sH, int sW, int pT, int pL) {
  zero_f32(dw, KH * KW * Ci * Co);
  const int Ci4 = Ci & ~3;
  for (int n = 0; n < N; n++) {
    for (int oh = 0; oh < OH; oh++) {
      const float* dyrow = dy + ((long)(n * OH + oh) * OW) * Co;
      for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * sH + kh - pT;
        if (ih < 0 || ih >= H) continue;
        const float* xrow = x + ((long)(n * H + ih) * W) * Ci;
        for (int kw = 0; kw < KW; kw++) {
          int ow0 = 0;
          while (ow0 < OW && ow0 * sW + kw - pL < 0) ow0++;
          int ow1 = OW;
          while (ow1 > ow0 && (ow1 - 1) * sW + kw - pL >= W) ow1--;
          if (ow0 >= ow1) continue;
          float* dwt = dw + (kh * KW + kw) * Ci * Co;
          const float* xs = xrow + (kw - pL) * Ci;
          const int xstep = sW * Ci;
          for (int ci = 0; ci < Ci4; ci += 4) {
            float* d0 = dwt + ci * Co;
            int co = 0;
            for (; co + 8 <= Co; co += 8) {
              v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00,
                     a21 = a00, a30 = a00, a31 = a00;
              for (int ow = ow0; ow < ow1; ow++) {
                const v128_t xv = wasm_v128_load(xs + ow * xstep + ci);
                const v128_t g0 = wasm_v128_load(dyrow + ow * Co + co);
                const v128_t g1 = wasm_v128_load(dyrow + ow * Co + co + 4);
                v128_t xb = splat_lane(xv, 0);
                MULADD(a00, xb, g0);
                MULADD(a01, xb, g1);
                xb = splat_lane(xv, 1);
                MULADD(a10, xb, g0);
                MULADD(a11, xb, g1);
                xb = splat_lane(xv, 2);
                MULADD(a20, xb, g0);
                MULADD(a21, xb, g1);
                xb = splat_lane(xv, 3);
                MULADD(a30, xb, g0);
                MULADD(a31, xb, g1);
              }
              float* r0 = d0 + co;
              wasm_v128_store(r0, wasm_f32x4_add(wasm_v128_load(r0), a00));
              wasm_v128_store(r0 + 4, wasm_f32x4_add(wasm_v128_load(r0 + 4), a01));
              wasm_v128_store(r0 + Co, wasm_f32x4_add(wasm_v128_load(r0 + Co), a10));
              wasm_v128_store(r0 + Co + 4, wasm_f32x4_add(wasm_v128_load(r0 + Co + 4), a11));
              wasm_v128_store(r0 + 2 * Co, wasm_f32x4_add(wasm_v128_load(r0 + 2 * Co), a20));
              wasm_v128_store(r0 + 2 * Co + 4,
                              wasm_f32x4_add(wasm_v128_load(r0 + 2 * Co + 4), a21));
              wasm_v128_store(r0 + 3 * Co, wasm_f32x4_add(wasm_v128_load(r0 + 3 * Co), a30));
              wasm_v128_store(r0 + 3 * Co + 4,
                              wasm_f32x4_add(wasm_v128_load(r0 + 3 * Co + 4), a31));
            }
            for (; co + 4 <= Co; co += 4) {
              v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
              for (int ow = ow0; ow < ow1; ow++) {
                const v128_t xv = wasm_v128_load(xs + ow * xstep + ci);
                const v128_t g0 = wasm_v128_load(dyrow + ow * Co + co);
                MULADD(a0, splat_lane(xv, 0), g0);
                MULADD(a1, splat_lane(xv, 1), g0);
                MULADD(a2, splat_lane(xv, 2), g0);
                MULADD(a3, splat_lane(xv, 3), g0);
              }
              float* r0 = d0 + co;
              wasm_v128_store(r0, wasm_f32x4_add(wasm_v128_load(r0), a0));
              wasm_v128_store(r0 + Co, wasm_f32x4_add(wasm_v128_load(r0 + Co), a1));
              wasm_v128_store(r0 + 2 * Co, wasm_f32x4_add(wasm_v128_load(r0 + 2 * Co), a2));
              wasm_v128_store(r0 + 3 * Co, wasm_f32x4_add(wasm_v128_load(r0 + 3 * Co), a3));
            }
            for (; co < Co; co++) {
              for (int i = 0; i < 4; i++) {
                float a = 0.0f;
                for (int ow = ow0; ow < ow1; ow++) a += xs[ow * xstep + ci + i] * dyrow[ow * Co + co];
                d0[i * Co + co] += a;
              }
            }
          }
          for (int ci = Ci4; ci < Ci; ci++) {
            float* d0 = dwt + ci * Co;
            int co = 0;
            for (; co + 8 <= Co; co += 8) {
              v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
              for (int ow = ow0; ow < ow1; ow++) {
                const v128_t xb = wasm_v128_load32_splat(xs + ow * xstep + ci);
                MULADD(a0, xb, wasm_v128_load(dyrow + ow * Co + co));
                MULADD(a1, xb, wasm_v128_load(dyrow + ow * Co + co + 4));
              }
              wasm_v128_store(d0 + co, wasm_f32x4_add(wasm_v128_load(d0 + co), a0));
              wasm_v128_store(d0 + co + 4, wasm_f32x4_add(wasm_v128_load(d0 + co + 4), a1));
            }
            for (; co + 4 <= Co; co += 4) {
              v128_t a0 = wasm_f32x4_splat(0);
              for (int ow = ow0; ow < ow1; ow++) {
                MULADD(a0, wasm_v128_load32_splat(xs + ow * xstep + ci),
                       wasm_v128_load(dyrow + ow * Co + co));
              }
              wasm_v128_store(d0 + co, wasm_f32x4_add(wasm_v128_load(d0 + co), a0));
            }
            for (; co < Co; co++) {
              float a = 0.0f;
              for (int ow = ow0; ow < ow1; ow++) a += xs[ow * xstep + ci] * dyrow[ow * Co + co];
              d0[co] += a;
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Direct stride-1 convolution (NHWC, HWIO, dilation 1) on an already padded input:
//   out[n,oh,ow,co] = sum_{kh,kw,ci} xp[n, oh+kh, ow+kw, ci] * w[kh,kw,ci,co]
// with xp [N,HP,WP,Ci] (HP >= OH+KH-1, WP >= OW+KW-1). For one filter row kh the taps (kw, ci)
// are contiguous both in xp's row and in w, so the reduction is KH runs of KW*Ci. Output pixels
// (flattened over N*OH*OW, blocks may cross rows and images) go in blocks of 6 against 8 output
// channels: 12 f32x4 accumulators in registers, per tap 2 weight loads + 6 load-splats for 12
// multiply-adds. No indirection buffer, no packing: what XNNPACK's operator setup costs per call
// (every training step brings new weights) is gone, and small channel counts (8, 16) run at the
// speed of large ones. Used for the forward convolution and for the input gradient (a
// convolution of dy with the flipped filter).
#define LSPLAT(p) wasm_v128_load32_splat(p)

// One output pixel of conv2d_s1, output channels co0..Co-1 (tails of the blocked loops).
__attribute__((noinline)) static void conv_pixel(const float* b, const float* w, float* o, int co0,
                                                 int Co, int KH, int J, long rs) {
  int co = co0;
  for (; co + 4 <= Co; co += 4) {
    v128_t a = wasm_f32x4_splat(0);
    for (int kh = 0; kh < KH; kh++) {
      const float* wk = w + (long)kh * J * Co + co;
      for (int j = 0; j < J; j++) MULADD(a, LSPLAT(b + kh * rs + j), wasm_v128_load(wk + j * Co));
    }
    wasm_v128_store(o + co, a);
  }
  for (; co < Co; co++) {
    float a = 0.0f;
    for (int kh = 0; kh < KH; kh++) {
      const float* wk = w + (long)kh * J * Co + co;
      for (int j = 0; j < J; j++) a += b[kh * rs + j] * wk[j * Co];
    }
    o[co] = a;
  }
}

// Advances the input window base `p` of output pixel (oh, ow) to the next output pixel (row-major
// over N*OH*OW): no divisions in the loops (at 8-16 channels two integer divisions per pixel cost
// as much as its multiply-adds).
#define NEXT_PIXEL(p, oh, ow)          \
  do {                                 \
    (p) += Ci;                         \
    if (++(ow) == OW) {                \
      (ow) = 0;                        \
      (p) += (long)(WP - OW) * Ci;     \
      if (++(oh) == OH) {              \
        (oh) = 0;                      \
        (p) += (long)(HP - OH) * WP * Ci; \
      }                                \
    }                                  \
  } while (0)

EXPORT(conv2d_s1)
void conv2d_s1(const float* xp, const float* w, float* out, int N, int HP, int WP, int Ci, int OH,
               int OW, int Co, int KH, int KW) {
  const int OHW = OH * OW;
  const int M = N * OHW;
  const int J = KW * Ci;
  const long rs = (long)WP * Ci;
  const float* cur = xp;  // window base of output pixel q
  int coh = 0, cow = 0;
  int q = 0;
  for (; q + 6 <= M; q += 6) {
    const float* b0 = cur;
    NEXT_PIXEL(cur, coh, cow);
    const float* b1 = cur;
    NEXT_PIXEL(cur, coh, cow);
    const float* b2 = cur;
    NEXT_PIXEL(cur, coh, cow);
    const float* b3 = cur;
    NEXT_PIXEL(cur, coh, cow);
    const float* b4 = cur;
    NEXT_PIXEL(cur, coh, cow);
    const float* b5 = cur;
    NEXT_PIXEL(cur, coh, cow);
    float* o = out + (long)q * Co;
    int co = 0;
    for (; co + 8 <= Co; co += 8) {
      v128_t a00 = wasm_f32x4_splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
             a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
      for (int kh = 0; kh < KH; kh++) {
        const float* wk = w + (long)kh * J * Co + co;
        const long xo = kh * rs;
        const float *x0 = b0 + xo, *x1 = b1 + xo, *x2 = b2 + xo, *x3 = b3 + xo, *x4 = b4 + xo,
                    *x5 = b5 + xo;
        for (int j = 0; j < J; j++) {
          const v128_t w0 = wasm_v128_load(wk + j * Co);
          const v128_t w1 = wasm_v128_load(wk + j * Co + 4);
          v128_t xv = LSPLAT(x0 + j);
          MULADD(a00, xv, w0);
          MULADD(a01, xv, w1);
          xv = LSPLAT(x1 + j);
          MULADD(a10, xv, w0);
          MULADD(a11, xv, w1);
          xv = LSPLAT(x2 + j);
          MULADD(a20, xv, w0);
          MULADD(a21, xv, w1);
          xv = LSPLAT(x3 + j);
          MULADD(a30, xv, w0);
          MULADD(a31, xv, w1);
          xv = LSPLAT(x4 + j);
          MULADD(a40, xv, w0);
          MULADD(a41, xv, w1);
          xv = LSPLAT(x5 + j);
          MULADD(a50, xv, w0);
          MULADD(a51, xv, w1);
        }
      }
      float* r = o + co;
      wasm_v128_store(r, a00);
      wasm_v128_store(r + 4, a01);
      wasm_v128_store(r + Co, a10);
      wasm_v128_store(r + Co + 4, a11);
      wasm_v128_store(r + 2 * Co, a20);
      wasm_v128_store(r + 2 * Co + 4, a21);
      wasm_v128_store(r + 3 * Co, a30);
      wasm_v128_store(r + 3 * Co + 4, a31);
      wasm_v128_store(r + 4 * Co, a40);
      wasm_v128_store(r + 4 * Co + 4, a41);
      wasm_v128_store(r + 5 * Co, a50);
      wasm_v128_store(r + 5 * Co + 4, a51);
    }
    for (; co + 4 <= Co; co += 4) {
      v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
      for (int kh = 0; kh < KH; kh++) {
        const float* wk = w + (long)kh * J * Co + co;
        const long xo = kh * rs;
        for (int j = 0; j < J; j++) {
          const v128_t w0 = wasm_v128_load(wk + j * Co);
          MULADD(a0, LSPLAT(b0 + xo + j), w0);
          MULADD(a1, LSPLAT(b1 + xo + j), w0);
          MULADD(a2, LSPLAT(b2 + xo + j), w0);
          MULADD(a3, LSPLAT(b3 + xo + j), w0);
          MULADD(a4, LSPLAT(b4 + xo + j), w0);
          MULADD(a5, LSPLAT(b5 + xo + j), w0);
        }
      }
      float* r = o + co;
      wasm_v128_store(r, a0);
      wasm_v128_store(r + Co, a1);
      wasm_v128_store(r + 2 * Co, a2);
      wasm_v128_store(r + 3 * Co, a3);
      wasm_v128_store(r + 4 * Co, a4);
      wasm_v128_store(r + 5 * Co, a5);
    }
    if (co < Co) {
      conv_pixel(b0, w, o, co, Co, KH, J, rs);
      conv_pixel(b1, w, o + Co, co, Co, KH, J, rs);
      conv_pixel(b2, w, o + 2 * Co, co, Co, KH, J, rs);
      conv_pixel(b3, w, o + 3 * Co, co, Co, KH, J, rs);
      conv_pixel(b4, w, o + 4 * Co, co, Co, KH, J, rs);
      conv_pixel(b5, w, o + 5 * Co, co, Co, KH, J, rs);
    }
  }
  for (; q < M; q++) {
    conv_pixel(cur, w, out + (long)q * Co, 0, Co, KH, J, rs);
    NEXT_PIXEL(cur, coh, cow);
  }
}

// Zero padding of x [N,H,W,C] into xp [N,HP,WP,C] at offset (pT, pL): rows and columns outside
// the copy are zero (HP >= pT + H, WP >= pL + W).
EXPORT(pad_nhwc)
void pad_nhwc(const float* x, float* xp, int N, int H, int W, int C, int HP, int WP, int pT,
              int pL) {
  const int rowp = WP * C;
  for (int n = 0; n < N; n++) {
    float* dn = xp + (long)n * HP * rowp;
    zero_f32(dn, pT * rowp);
    for (int h = 0; h < H; h++) {
      float* d = dn + (long)(pT + h) * rowp;
      zero_f32(d, pL * C);
      copy_f32(d + pL * C, x + ((long)(n * H + h) * W) * C, W * C);
      zero_f32(d + (pL + W) * C, (WP - pL - W) * C);
    }
    zero_f32(dn + (long)(pT + H) * rowp, (HP - pT - H) * rowp);
  }
}

// ---------------------------------------------------------------------------------------------
// Zero-dilation for strided transposed convolutions: dy [N,OH,OW,C] -> out [N,DH,DW,C] with
// DH = (OH-1)*sH + 1, DW = (OW-1)*sW + 1, dy[n,i,j,:] at out[n, i*sH, j*sW, :], zeros elsewhere.
EXPORT(dilate)
void dilate(const float* dy, float* out, int N, int OH, int OW, int C, int sH, int sW) {
  const int DH = (OH - 1) * sH + 1, DW = (OW - 1) * sW + 1;
  zero_f32(out, N * DH * DW * C);
  for (int n = 0; n < N; n++) {
    for (int i = 0; i < OH; i++) {
      const float* s = dy + ((long)(n * OH + i) * OW) * C;
      float* d = out + ((long)(n * DH + i * sH) * DW) * C;
      for (int j = 0; j < OW; j++) copy_f32(d + j * sW * C, s + j * C, C);
    }
  }
}

// Filter for the input gradient: w [KH,KW,Ci,Co] -> out [KH,KW,Co,Ci] rotated by 180 degrees.
EXPORT(flip_filter)
void flip_filter(const float* w, float* out, int KH, int KW, int Ci, int Co) {
  for (int kh = 0; kh < KH; kh++) {
    for (int kw = 0; kw < KW; kw++) {
      const float* s = w + (kh * KW + kw) * Ci * Co;
      float* d = out + ((KH - 1 - kh) * KW + (KW - 1 - kw)) * Ci * Co;
      transpose2d(s, d, Ci, Co);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Max-pool backward (NHWC): dx = 0, then for each output position and channel the gradient goes
// to the first maximum of the window in row-major order (tfjs' cpu backend and PyTorch do the
// same), padded positions excluded.
EXPORT(maxpool_grad)
void maxpool_grad(const float* x, const float* dy, float* dx, int N, int H, int W, int C, int OH,
                  int OW, int fH, int fW, int sH, int sW, int pT, int pL, int dH, int dW) {
  zero_f32(dx, N * H * W * C);
  const int C4 = C & ~3;
  for (int n = 0; n < N; n++) {
    const float* xn = x + (long)n * H * W * C;
    float* dxn = dx + (long)n * H * W * C;
    for (int oh = 0; oh < OH; oh++) {
      for (int ow = 0; ow < OW; ow++) {
        const float* g = dy + ((long)(n * OH + oh) * OW + ow) * C;
        const int h0 = oh * sH - pT, w0 = ow * sW - pL;
        for (int c = 0; c < C4; c += 4) {
          v128_t best = wasm_f32x4_splat(-__builtin_inff());
          v128_t bidx = wasm_i32x4_splat(-1);
          for (int i = 0; i < fH; i++) {
            const int ih = h0 + i * dH;
            if (ih < 0 || ih >= H) continue;
            for (int j = 0; j < fW; j++) {
              const int iw = w0 + j * dW;
              if (iw < 0 || iw >= W) continue;
              const int pos = (ih * W + iw) * C + c;
              v128_t v = wasm_v128_load(xn + pos);
              v128_t gt = wasm_f32x4_gt(v, best);
              // first window position always wins (bidx < 0), so NaNs still get a target
              gt = wasm_v128_or(gt, wasm_i32x4_lt(bidx, wasm_i32x4_splat(0)));
              best = wasm_v128_bitselect(v, best, gt);
              bidx = wasm_v128_bitselect(wasm_i32x4_splat(pos), bidx, gt);
            }
          }
          v128_t gv = wasm_v128_load(g + c);
          int i0 = wasm_i32x4_extract_lane(bidx, 0);
          int i1 = wasm_i32x4_extract_lane(bidx, 1);
          int i2 = wasm_i32x4_extract_lane(bidx, 2);
          int i3 = wasm_i32x4_extract_lane(bidx, 3);
          if (i0 >= 0) dxn[i0 + 0] += wasm_f32x4_extract_lane(gv, 0);
          if (i1 >= 0) dxn[i1 + 1] += wasm_f32x4_extract_lane(gv, 1);
          if (i2 >= 0) dxn[i2 + 2] += wasm_f32x4_extract_lane(gv, 2);
          if (i3 >= 0) dxn[i3 + 3] += wasm_f32x4_extract_lane(gv, 3);
        }
        for (int c = C4; c < C; c++) {
          float best = 0.0f;
          int bpos = -1;
          for (int i = 0; i < fH; i++) {
            const int ih = h0 + i * dH;
            if (ih < 0 || ih >= H) continue;
            for (int j = 0; j < fW; j++) {
              const int iw = w0 + j * dW;
              if (iw < 0 || iw >= W) continue;
              const int pos = (ih * W + iw) * C + c;
              if (bpos < 0 || xn[pos] > best) {
                best = xn[pos];
                bpos = pos;
              }
            }
          }
          if (bpos >= 0) dxn[bpos] += g[c];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per-channel reductions over the rows of a [M, C] matrix (NHWC activations: C contiguous).
// Blocks of RB rows are reduced per 4-channel group in f32 registers (the block is L1-resident),
// then added to f64 accumulators: no store-to-load chain through memory per row, and the rounding
// error stays at about RB + M/RB ulps.
#define RB 64

static inline void acc_f64(double* acc, v128_t v) {
  wasm_v128_store(acc, wasm_f64x2_add(wasm_v128_load(acc), wasm_f64x2_promote_low_f32x4(v)));
  wasm_v128_store(acc + 2, wasm_f64x2_add(wasm_v128_load(acc + 2),
                                          wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(v, v, 1, 0))));
}

// acc[c] += sum_m x[m, c]
static void colsum_f64(const float* x, int M, int C, double* acc) {
  const int C4 = C & ~3;
  for (int m0 = 0; m0 < M; m0 += RB) {
    const int m1 = m0 + RB < M ? m0 + RB : M;
    for (int c = 0; c < C4; c += 4) {
      v128_t a = wasm_f32x4_splat(0.0f), b = a;
      int m = m0;
      for (; m + 2 <= m1; m += 2) {
        a = wasm_f32x4_add(a, wasm_v128_load(x + (long)m * C + c));
        b = wasm_f32x4_add(b, wasm_v128_load(x + (long)(m + 1) * C + c));
      }
      if (m < m1) a = wasm_f32x4_add(a, wasm_v128_load(x + (long)m * C + c));
      acc_f64(acc + c, wasm_f32x4_add(a, b));
    }
    for (int c = C4; c < C; c++) {
      float a = 0.0f;
      for (int m = m0; m < m1; m++) a += x[(long)m * C + c];
      acc[c] += a;
    }
  }
}

// acc[c] += sum_m (x[m, c] - mu[c])^2
static void colsumsq_f64(const float* x, const float* mu, int M, int C, double* acc) {
  const int C4 = C & ~3;
  for (int m0 = 0; m0 < M; m0 += RB) {
    const int m1 = m0 + RB < M ? m0 + RB : M;
    for (int c = 0; c < C4; c += 4) {
      const v128_t u = wasm_v128_load(mu + c);
      v128_t a = wasm_f32x4_splat(0.0f), b = a;
      int m = m0;
      for (; m + 2 <= m1; m += 2) {
        v128_t d0 = wasm_f32x4_sub(wasm_v128_load(x + (long)m * C + c), u);
        v128_t d1 = wasm_f32x4_sub(wasm_v128_load(x + (long)(m + 1) * C + c), u);
        a = wasm_f32x4_add(a, wasm_f32x4_mul(d0, d0));
        b = wasm_f32x4_add(b, wasm_f32x4_mul(d1, d1));
      }
      if (m < m1) {
        v128_t d0 = wasm_f32x4_sub(wasm_v128_load(x + (long)m * C + c), u);
        a = wasm_f32x4_add(a, wasm_f32x4_mul(d0, d0));
      }
      acc_f64(acc + c, wasm_f32x4_add(a, b));
    }
    for (int c = C4; c < C; c++) {
      float a = 0.0f;
      for (int m = m0; m < m1; m++) {
        float d = x[(long)m * C + c] - mu[c];
        a += d * d;
      }
      acc[c] += a;
    }
  }
}

// Fused training-mode batch norm + ReLU forward over y [M, C] (M = N*H*W) plus a per-channel
// bias b that precedes the batch norm (the conv bias):
//   mean = mean(y) + b, var = mean((y - mean(y))^2) (biased, as tf.moments),
//   out = relu((y - mean(y)) * gamma / sqrt(var + eps) + beta).
// scratch: 2*C doubles (8-byte aligned).
EXPORT(bn_relu_fwd)
void bn_relu_fwd(const float* y, const float* b, const float* gamma, const float* beta, float* out,
                 float* mean_out, float* var_out, double* scratch, int M, int C, float eps) {
  double* s1 = scratch;
  double* s2 = scratch + C;
  for (int c = 0; c < 2 * C; c++) scratch[c] = 0.0;
  colsum_f64(y, M, C, s1);
  float* mu = mean_out;  // holds mean(y) during the kernel, mean(y) + b at the end
  for (int c = 0; c < C; c++) mu[c] = (float)(s1[c] / M);
  colsumsq_f64(y, mu, M, C, s2);
  const int C4 = C & ~3;
  // per-channel scale gamma / sqrt(var + eps), kept in s1's memory (C floats fit in C doubles)
  float* scale = (float*)s1;
  for (int c = 0; c < C; c++) {
    float var = (float)(s2[c] / M);
    var_out[c] = var;
    float k = gamma[c] * (1.0f / __builtin_sqrtf(var + eps));
    scale[c] = k;
  }
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int m = 0; m < M; m++) {
    const float* r = y + (long)m * C;
    float* o = out + (long)m * C;
    for (int c = 0; c < C4; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(r + c), wasm_v128_load(mu + c));
      v128_t z = wasm_f32x4_add(wasm_f32x4_mul(d, wasm_v128_load(scale + c)),
                                wasm_v128_load(beta + c));
      wasm_v128_store(o + c, wasm_f32x4_max(z, zero));
    }
    for (int c = C4; c < C; c++) {
      float z = (r[c] - mu[c]) * scale[c] + beta[c];
      o[c] = z > 0.0f ? z : 0.0f;
    }
  }
  for (int c = 0; c < C; c++) mu[c] += b[c];
}

// Backward of bn_relu_fwd. Inputs: dout, y, out [M,C]; mean (= mean(y) + b), var, gamma, b [C].
// Outputs: dy [M,C]; dgamma, dbeta, db [C]. scratch: 3*C doubles + 3*C floats.
//   g = dout * (out > 0), xhat = (y - mean(y)) / sqrt(var + eps)
//   dbeta = sum g, dgamma = sum g*xhat, dy = gamma/sqrt(var+eps) * (g - dbeta/M - xhat*dgamma/M),
//   db = sum dy.
EXPORT(bn_relu_bwd)
void bn_relu_bwd(const float* dout, const float* y, const float* out, const float* mean,
                 const float* var, const float* gamma, const float* b, float* dy, float* dgamma,
                 float* dbeta, float* db, double* scratch, int M, int C, float eps) {
  double* sg = scratch;
  double* sgx = scratch + C;
  double* sdy = scratch + 2 * C;
  float* mu = (float*)(scratch + 3 * C);
  float* inv = mu + C;
  float* k = inv + C;
  for (int c = 0; c < 3 * C; c++) scratch[c] = 0.0;
  for (int c = 0; c < C; c++) {
    mu[c] = mean[c] - b[c];
    inv[c] = 1.0f / __builtin_sqrtf(var[c] + eps);
  }
  const int C4 = C & ~3;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int m0 = 0; m0 < M; m0 += RB) {
    const int m1 = m0 + RB < M ? m0 + RB : M;
    for (int c = 0; c < C4; c += 4) {
      const v128_t u = wasm_v128_load(mu + c), iv = wasm_v128_load(inv + c);
      v128_t ag = zero, agx = zero;
      for (int m = m0; m < m1; m++) {
        const long o = (long)m * C + c;
        v128_t g = wasm_v128_and(wasm_v128_load(dout + o),
                                 wasm_f32x4_gt(wasm_v128_load(out + o), zero));
        v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(y + o), u), iv);
        ag = wasm_f32x4_add(ag, g);
        agx = wasm_f32x4_add(agx, wasm_f32x4_mul(g, xh));
      }
      acc_f64(sg + c, ag);
      acc_f64(sgx + c, agx);
    }
    for (int c = C4; c < C; c++) {
      float ag = 0.0f, agx = 0.0f;
      for (int m = m0; m < m1; m++) {
        const long o = (long)m * C + c;
        float g = out[o] > 0.0f ? dout[o] : 0.0f;
        ag += g;
        agx += g * (y[o] - mu[c]) * inv[c];
      }
      sg[c] += ag;
      sgx[c] += agx;
    }
  }
  // reuse: dbeta/M in dbeta temporarily via floats
  float* mb = dbeta;   // will hold mean of g, rewritten at the end
  float* mgx = dgamma; // will hold mean of g*xhat, rewritten at the end
  for (int c = 0; c < C; c++) {
    mb[c] = (float)(sg[c] / M);
    mgx[c] = (float)(sgx[c] / M);
    k[c] = gamma[c] * inv[c];
  }
  for (int m = 0; m < M; m++) {
    const long o = (long)m * C;
    for (int c = 0; c < C4; c += 4) {
      v128_t g = wasm_v128_and(wasm_v128_load(dout + o + c),
                               wasm_f32x4_gt(wasm_v128_load(out + o + c), zero));
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(y + o + c), wasm_v128_load(mu + c)),
                                 wasm_v128_load(inv + c));
      v128_t t = wasm_f32x4_sub(wasm_f32x4_sub(g, wasm_v128_load(mb + c)),
                                wasm_f32x4_mul(xh, wasm_v128_load(mgx + c)));
      v128_t d = wasm_f32x4_mul(t, wasm_v128_load(k + c));
      wasm_v128_store(dy + o + c, d);
    }
    for (int c = C4; c < C; c++) {
      float g = out[o + c] > 0.0f ? dout[o + c] : 0.0f;
      float xh = (y[o + c] - mu[c]) * inv[c];
      float d = (g - mb[c] - xh * mgx[c]) * k[c];
      dy[o + c] = d;
    }
  }
  colsum_f64(dy, M, C, sdy);
  for (int c = 0; c < C; c++) {
    dbeta[c] = (float)sg[c];
    dgamma[c] = (float)sgx[c];
    db[c] = (float)sdy[c];
  }
}

// ---------------------------------------------------------------------------------------------
// Per-channel column sums of x [M, C] into out [C] (f64 accumulation). scratch: C doubles.
EXPORT(colsum)
void colsum(const float* x, float* out, double* scratch, int M, int C) {
  for (int c = 0; c < C; c++) scratch[c] = 0.0;
  colsum_f64(x, M, C, scratch);
  for (int c = 0; c < C; c++) out[c] = (float)scratch[c];
}

// dst += src (n floats).
EXPORT(add_inplace)
void add_inplace(float* dst, const float* src, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  }
  for (; i < n; i++) dst[i] += src[i];
}

// SGD with momentum and L2 weight decay, PyTorch's rule (dampening 0, no Nesterov):
//   g' = g + wd*w; m' = mom*m + g'; w' = w - lr*m'.
EXPORT(sgd_momentum)
void sgd_momentum(const float* w, const float* m, const float* g, float* w_out, float* m_out,
                  int n, float lr, float mom, float wd) {
  const v128_t vlr = wasm_f32x4_splat(lr), vmom = wasm_f32x4_splat(mom),
               vwd = wasm_f32x4_splat(wd);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t wv = wasm_v128_load(w + i);
    v128_t gv = wasm_f32x4_add(wasm_v128_load(g + i), wasm_f32x4_mul(vwd, wv));
    v128_t mv = wasm_f32x4_add(wasm_f32x4_mul(vmom, wasm_v128_load(m + i)), gv);
    wasm_v128_store(m_out + i, mv);
    wasm_v128_store(w_out + i, wasm_f32x4_sub(wv, wasm_f32x4_mul(vlr, mv)));
  }
  for (; i < n; i++) {
    float gv = g[i] + wd * w[i];
    float mv = mom * m[i] + gv;
    m_out[i] = mv;
    w_out[i] = w[i] - lr * mv;
  }
}

// ---------------------------------------------------------------------------------------------
// Gaussian readout, sampling first (SPEC.md section 3; core/models/readout.ts): for image b and
// neuron n, the bilinear sample (align_corners = true, zero padding) of x[b] [H,W,C] at
// grid[b,n] = (gx, gy) in [-1,1] (px = (gx+1)/2 (W-1), py = (gy+1)/2 (H-1)), dotted with the
// neuron's channel weights: y[b,n] = sum_c f[c,n] sum_k w_k x[b, corner_k, c]. Four pixels per
// neuron instead of a dense [B*H*W, C] x [C, N] product over every pixel. The bilinear weight of
// pixel j on an axis is max(0, 1 - |p - j|); its derivative (for the grid gradient) is -1 for
// p > j and +1 for p <= j where the weight is > 0, else 0: what tfjs' relu and abs gradients give
// the plain-op path (relu'(0) = 0, abs'(0) = -1), so both paths agree even at pixel centres.
// p = (g + 1) * ((size - 1) / 2) in this order, as the plain-op path rounds it.
//
// scratch (floats): fT [N*C] (f transposed), zero row [C], trash row [C]; the backward kernel
// also dfT [N*C]. Corners outside the image read the zero row and write the trash row.

struct corner4 {
  const float* x[4];
  float w[4];   // bilinear weights (wy * wx)
  float dx[4];  // d weight / d px (wy * dwx)
  float dy[4];  // d weight / d py (dwy * wx)
  int in[4];    // pixel offset (in floats) of the corner in the image, or -1 when outside
};

static inline float floorf_(float v) {
  float t = (float)(int)v;
  return t > v ? t - 1.0f : t;
}

static inline __attribute__((always_inline)) void axis2(float p, int size, int* j, float* w, float* d) {
  float j0 = floorf_(p);
  for (int k = 0; k < 2; k++) {
    float jj = j0 + (float)k;
    float diff = p - jj;
    float a = diff < 0 ? -diff : diff;
    float wt = 1.0f - a;
    int valid = wt > 0.0f && jj >= 0.0f && jj <= (float)(size - 1);
    j[k] = valid ? (int)jj : -1;
    w[k] = valid ? wt : 0.0f;
    d[k] = valid ? (diff > 0 ? -1.0f : 1.0f) : 0.0f;
  }
}

static inline __attribute__((always_inline)) void corners(float gx, float gy, int H, int W, int C, struct corner4* q) {
  int jx[2], jy[2];
  float wx[2], wy[2], dwx[2], dwy[2];
  axis2((gx + 1.0f) * ((float)(W - 1) * 0.5f), W, jx, wx, dwx);
  axis2((gy + 1.0f) * ((float)(H - 1) * 0.5f), H, jy, wy, dwy);
  for (int a = 0; a < 2; a++) {
    for (int b = 0; b < 2; b++) {
      int k = a * 2 + b;
      int ok = jy[a] >= 0 && jx[b] >= 0;
      q->in[k] = ok ? (jy[a] * W + jx[b]) * C : -1;
      q->w[k] = wy[a] * wx[b];
      q->dx[k] = wy[a] * dwx[b];
      q->dy[k] = dwy[a] * wx[b];
    }
  }
}

EXPORT(readout_fwd)
void readout_fwd(const float* x, const float* grid, const float* f, float* y, float* scratch,
                 int B, int H, int W, int C, int N) {
  float* fT = scratch;
  float* zero = fT + N * C;
  transpose2d(f, fT, C, N);
  zero_f32(zero, C);
  struct corner4 q;
  for (int b = 0; b < B; b++) {
    const float* xb = x + b * H * W * C;
    for (int n = 0; n < N; n++) {
      const float* g = grid + (b * N + n) * 2;
      corners(g[0], g[1], H, W, C, &q);
      const float* p0 = q.in[0] >= 0 ? xb + q.in[0] : zero;
      const float* p1 = q.in[1] >= 0 ? xb + q.in[1] : zero;
      const float* p2 = q.in[2] >= 0 ? xb + q.in[2] : zero;
      const float* p3 = q.in[3] >= 0 ? xb + q.in[3] : zero;
      const float* fn = fT + n * C;
      float acc = 0.0f;
      for (int c = 0; c < C; c++) {
        float s = q.w[0] * p0[c] + q.w[1] * p1[c] + q.w[2] * p2[c] + q.w[3] * p3[c];
        acc += s * fn[c];
      }
      y[b * N + n] = acc;
    }
  }
}

// Gradients of readout_fwd for dy [B,N]: dx [B,H,W,C], dgrid [B,N,2], df [C,N].
EXPORT(readout_bwd)
void readout_bwd(const float* dy, const float* x, const float* grid, const float* f, float* dx,
                 float* dgrid, float* df, float* scratch, int B, int H, int W, int C, int N) {
  float* fT = scratch;
  float* dfT = fT + N * C;
  float* zero = dfT + N * C;
  float* trash = zero + C;
  transpose2d(f, fT, C, N);
  zero_f32(dfT, N * C);
  zero_f32(zero, C);
  zero_f32(dx, B * H * W * C);
  struct corner4 q;
  float sx = 0.5f * (float)(W - 1), sy = 0.5f * (float)(H - 1);
  for (int b = 0; b < B; b++) {
    const float* xb = x + b * H * W * C;
    float* dxb = dx + b * H * W * C;
    for (int n = 0; n < N; n++) {
      const float* g = grid + (b * N + n) * 2;
      float gn = dy[b * N + n];
      corners(g[0], g[1], H, W, C, &q);
      const float* p[4];
      float* d[4];
      for (int k = 0; k < 4; k++) {
        p[k] = q.in[k] >= 0 ? xb + q.in[k] : zero;
        d[k] = q.in[k] >= 0 ? dxb + q.in[k] : trash;
      }
      const float* fn = fT + n * C;
      float* dfn = dfT + n * C;
      float apx = 0.0f, apy = 0.0f;
      for (int c = 0; c < C; c++) {
        float x0 = p[0][c], x1 = p[1][c], x2 = p[2][c], x3 = p[3][c];
        float s = q.w[0] * x0 + q.w[1] * x1 + q.w[2] * x2 + q.w[3] * x3;
        dfn[c] += gn * s;
        float ds = gn * fn[c];
        d[0][c] += q.w[0] * ds;
        d[1][c] += q.w[1] * ds;
        d[2][c] += q.w[2] * ds;
        d[3][c] += q.w[3] * ds;
        apx += ds * (q.dx[0] * x0 + q.dx[1] * x1 + q.dx[2] * x2 + q.dx[3] * x3);
        apy += ds * (q.dy[0] * x0 + q.dy[1] * x1 + q.dy[2] * x2 + q.dy[3] * x3);
      }
      dgrid[(b * N + n) * 2] = apx * sx;
      dgrid[(b * N + n) * 2 + 1] = apy * sy;
    }
  }
  transpose2d(dfT, df, N, C);
}
