/*
 * cotrain's corruption kernels, compiled to WebAssembly (with SIMD) by build.sh and embedded in
 * kernels_wasm.ts. No libc: plain loops over buffers that kernels.ts lays out in this module's
 * memory. Written for cotrain (not taken from any library); where a kernel reproduces another
 * implementation's arithmetic, the comment says whose and why.
 *
 * jpeg_roundtrip: the lossy half of a baseline JPEG round trip exactly as libjpeg(-turbo) computes
 *   it with its defaults (what PIL's Image.save(quality=q) and Image.open use in the reference):
 *   fixed-point RGB -> YCbCr, 4:2:0 box down-sampling with alternating bias, the accurate integer
 *   ("islow") forward DCT, quantisation by the IJG tables (Annex K) scaled by libjpeg's quality
 *   rule with baseline clamping, then dequantisation, the islow inverse DCT, "fancy" (triangle)
 *   up-sampling and fixed-point YCbCr -> RGB. The entropy coding in between is lossless, so it is
 *   skipped: the pixels equal libjpeg-turbo's decode(encode(x)) bit for bit (jpeg_test.ts checks
 *   this against the library itself).
 *
 * corr_y / corr_x: the separable correlation passes of image.ts's gaussianFilter, two doubles per
 *   SIMD lane pair, summing in the same order as the scalar code (the same bits).
 */
#include <stdint.h>
#ifdef __wasm__
#include <wasm_simd128.h>
#endif

#define EXPORT(name) __attribute__((export_name(name)))

/* ---------------------------------------------------------------- JPEG */

static const uint8_t STD_LUMA[64] = {
    16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
    14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
    18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
static const uint8_t STD_CHROMA[64] = {
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};

/* Per table (0 luma, 1 chroma): quantiser q, the DCT-domain divisor 8q as its reciprocal. */
static int32_t qval[2][64];
static double qinv[2][64];
static float qinvf[2][64];
static int32_t qhalf[2][64];
static int cur_quality = -1;

static void set_quality(int quality) {
  if (quality == cur_quality) return;
  cur_quality = quality;
  if (quality < 1) quality = 1;
  if (quality > 100) quality = 100;
  int scale = quality < 50 ? 5000 / quality : 200 - quality * 2;
  for (int t = 0; t < 2; t++) {
    for (int i = 0; i < 64; i++) {
      int32_t v = ((int32_t)(t == 0 ? STD_LUMA[i] : STD_CHROMA[i]) * scale + 50) / 100;
      if (v < 1) v = 1;
      if (v > 255) v = 255; /* baseline */
      qval[t][i] = v;
      qhalf[t][i] = (v * 8) >> 1;
      qinv[t][i] = 1.0 / (double)(v * 8);
      qinvf[t][i] = 1.0f / (float)(v * 8);
    }
  }
}

/* Fixed-point constants (13 bits) of the Loeffler-Ligtenberg-Moschytz DCT as libjpeg has them. */
#define C_0_298 2446
#define C_0_390 3196
#define C_0_541 4433
#define C_0_765 6270
#define C_0_899 7373
#define C_1_175 9633
#define C_1_501 12299
#define C_1_847 15137
#define C_1_961 16069
#define C_2_053 16819
#define C_2_562 20995
#define C_3_072 25172

/* libjpeg's post-IDCT range limit: value + 128, clamped, wrapping as its table does past +-512. */
static inline uint8_t idct_limit(int32_t v) {
  int32_t i = v & 1023;
  if (i < 128) return (uint8_t)(i + 128);
  if (i < 512) return 255;
  if (i < 896) return 0;
  return (uint8_t)(i - 896);
}

#ifndef __wasm_simd128__
/* The scalar block (the native build; the reference for the SIMD one below). */

static inline int32_t rshift_round(int32_t x, int n) { return (x + (1 << (n - 1))) >> n; }

/*
 * One 8-point forward DCT step (a row or a column: stride s), in place. `shift_even` scales the
 * even outputs 0 and 4 (left shift 2 on rows, rounded right shift 2 on columns); `descale` is the
 * rounding shift of the rotated outputs.
 */
static inline void fdct8(int32_t *d, int s, int rows) {
  int32_t a0 = d[0] + d[7 * s], a7 = d[0] - d[7 * s];
  int32_t a1 = d[s] + d[6 * s], a6 = d[s] - d[6 * s];
  int32_t a2 = d[2 * s] + d[5 * s], a5 = d[2 * s] - d[5 * s];
  int32_t a3 = d[3 * s] + d[4 * s], a4 = d[3 * s] - d[4 * s];
  int32_t e0 = a0 + a3, e3 = a0 - a3, e1 = a1 + a2, e2 = a1 - a2;
  int n = rows ? 11 : 15;
  if (rows) {
    d[0] = (e0 + e1) << 2;
    d[4 * s] = (e0 - e1) << 2;
  } else {
    d[0] = rshift_round(e0 + e1, 2);
    d[4 * s] = rshift_round(e0 - e1, 2);
  }
  int32_t z = (e2 + e3) * C_0_541;
  d[2 * s] = rshift_round(z + e3 * C_0_765, n);
  d[6 * s] = rshift_round(z - e2 * C_1_847, n);
  int32_t z1 = a4 + a7, z2 = a5 + a6, z3 = a4 + a6, z4 = a5 + a7;
  int32_t z5 = (z3 + z4) * C_1_175;
  int32_t t4 = a4 * C_0_298, t5 = a5 * C_2_053, t6 = a6 * C_3_072, t7 = a7 * C_1_501;
  z1 *= -C_0_899;
  z2 *= -C_2_562;
  z3 = z3 * -C_1_961 + z5;
  z4 = z4 * -C_0_390 + z5;
  d[7 * s] = rshift_round(t4 + z1 + z3, n);
  d[5 * s] = rshift_round(t5 + z2 + z4, n);
  d[3 * s] = rshift_round(t6 + z2 + z3, n);
  d[1 * s] = rshift_round(t7 + z1 + z4, n);
}

/*
 * One 8-point inverse DCT step on dequantised values v[0..7] (stride s) into out (stride os),
 * descaled by `n` bits with rounding.
 */
static inline void idct8(const int32_t *v, int s, int32_t *out, int os, int n) {
  int32_t z2 = v[2 * s], z3 = v[6 * s];
  int32_t z1 = (z2 + z3) * C_0_541;
  int32_t t2 = z1 - z3 * C_1_847, t3 = z1 + z2 * C_0_765;
  int32_t t0 = (v[0] + v[4 * s]) << 13, t1 = (v[0] - v[4 * s]) << 13;
  int32_t e10 = t0 + t3, e13 = t0 - t3, e11 = t1 + t2, e12 = t1 - t2;
  int32_t o0 = v[7 * s], o1 = v[5 * s], o2 = v[3 * s], o3 = v[1 * s];
  int32_t y1 = o0 + o3, y2 = o1 + o2, y3 = o0 + o2, y4 = o1 + o3;
  int32_t y5 = (y3 + y4) * C_1_175;
  o0 *= C_0_298;
  o1 *= C_2_053;
  o2 *= C_3_072;
  o3 *= C_1_501;
  y1 *= -C_0_899;
  y2 *= -C_2_562;
  y3 = y3 * -C_1_961 + y5;
  y4 = y4 * -C_0_390 + y5;
  o0 += y1 + y3;
  o1 += y2 + y4;
  o2 += y2 + y3;
  o3 += y1 + y4;
  int32_t r = 1 << (n - 1);
  out[0] = (e10 + o3 + r) >> n;
  out[7 * os] = (e10 - o3 + r) >> n;
  out[1 * os] = (e11 + o2 + r) >> n;
  out[6 * os] = (e11 - o2 + r) >> n;
  out[2 * os] = (e12 + o1 + r) >> n;
  out[5 * os] = (e12 - o1 + r) >> n;
  out[3 * os] = (e13 + o0 + r) >> n;
  out[4 * os] = (e13 - o0 + r) >> n;
}


/* An 8x8 block of plane p (row stride ps) through FDCT, quantisation, dequantisation, IDCT. */
static void block_roundtrip(uint8_t *p, int ps, int t) {
  int32_t b[64], ws[64];
  for (int y = 0; y < 8; y++)
    for (int x = 0; x < 8; x++) b[y * 8 + x] = (int32_t)p[y * ps + x] - 128;
  for (int y = 0; y < 8; y++) fdct8(b + y * 8, 1, 1);
  for (int x = 0; x < 8; x++) fdct8(b + x, 8, 0);
  /* Quantise (round half away from zero, as libjpeg) and dequantise. */
  const double *inv = qinv[t];
  const int32_t *half = qhalf[t], *q = qval[t];
  for (int i = 0; i < 64; i++) {
    int32_t v = b[i];
    int32_t a = v < 0 ? -v : v;
    /* (a + half) / 8q: the reciprocal's error is far below 1 / 2040, the smallest fraction. */
    int32_t k = (int32_t)((double)(a + half[i]) * inv[i] + 1e-6);
    b[i] = (v < 0 ? -k : k) * q[i];
  }
  /* Columns (a column with no AC term is its DC, scaled, as libjpeg's shortcut gives). */
  for (int x = 0; x < 8; x++) {
    const int32_t *c = b + x;
    if ((c[8] | c[16] | c[24] | c[32] | c[40] | c[48] | c[56]) == 0) {
      int32_t dc = c[0] << 2;
      for (int y = 0; y < 8; y++) ws[y * 8 + x] = dc;
    } else idct8(c, 8, ws + x, 8, 11);
  }
  for (int y = 0; y < 8; y++) {
    int32_t *r = ws + y * 8, o[8];
    uint8_t *out = p + y * ps;
    if ((r[1] | r[2] | r[3] | r[4] | r[5] | r[6] | r[7]) == 0) {
      uint8_t v = idct_limit((r[0] + 16) >> 5);
      for (int x = 0; x < 8; x++) out[x] = v;
      continue;
    }
    idct8(r, 1, o, 1, 18);
    for (int x = 0; x < 8; x++) out[x] = idct_limit(o[x]);
  }
}
#endif

#ifdef __wasm_simd128__
/*
 * block_roundtrip with SIMD: the same integer arithmetic on four columns (or, after a transpose,
 * four rows) at a time. Quantisation in float32: (|v| + 4q) / 8q for |v| <= 8192 is off by at
 * most 1.4e-4 there, while a quotient that is not whole is at least 1 / 2040 = 4.9e-4 below the
 * next integer; adding 2.5e-4 before truncating gives libjpeg's rounded quotient exactly.
 */
typedef v128_t V;
#define VADD wasm_i32x4_add
#define VSUB wasm_i32x4_sub
#define VMUL(a, k) wasm_i32x4_mul(a, wasm_i32x4_splat(k))

static inline V vround(V x, int n) { return wasm_i32x4_shr(VADD(x, wasm_i32x4_splat(1 << (n - 1))), n); }

/* Eight 4-lane vectors d[0..7] (element k of four 1-D transforms): libjpeg's islow FDCT step. */
static inline void fdct_v(V *d, int rows) {
  V a0 = VADD(d[0], d[7]), a7 = VSUB(d[0], d[7]);
  V a1 = VADD(d[1], d[6]), a6 = VSUB(d[1], d[6]);
  V a2 = VADD(d[2], d[5]), a5 = VSUB(d[2], d[5]);
  V a3 = VADD(d[3], d[4]), a4 = VSUB(d[3], d[4]);
  V e0 = VADD(a0, a3), e3 = VSUB(a0, a3), e1 = VADD(a1, a2), e2 = VSUB(a1, a2);
  int n = rows ? 11 : 15;
  if (rows) {
    d[0] = wasm_i32x4_shl(VADD(e0, e1), 2);
    d[4] = wasm_i32x4_shl(VSUB(e0, e1), 2);
  } else {
    d[0] = vround(VADD(e0, e1), 2);
    d[4] = vround(VSUB(e0, e1), 2);
  }
  V z = VMUL(VADD(e2, e3), C_0_541);
  d[2] = vround(VADD(z, VMUL(e3, C_0_765)), n);
  d[6] = vround(VSUB(z, VMUL(e2, C_1_847)), n);
  V z1 = VADD(a4, a7), z2 = VADD(a5, a6), z3 = VADD(a4, a6), z4 = VADD(a5, a7);
  V z5 = VMUL(VADD(z3, z4), C_1_175);
  V t4 = VMUL(a4, C_0_298), t5 = VMUL(a5, C_2_053), t6 = VMUL(a6, C_3_072), t7 = VMUL(a7, C_1_501);
  z1 = VMUL(z1, -C_0_899);
  z2 = VMUL(z2, -C_2_562);
  z3 = VADD(VMUL(z3, -C_1_961), z5);
  z4 = VADD(VMUL(z4, -C_0_390), z5);
  d[7] = vround(VADD(VADD(t4, z1), z3), n);
  d[5] = vround(VADD(VADD(t5, z2), z4), n);
  d[3] = vround(VADD(VADD(t6, z2), z3), n);
  d[1] = vround(VADD(VADD(t7, z1), z4), n);
}

/* libjpeg's islow IDCT step on eight 4-lane vectors, descaled by n bits. */
static inline void idct_v(V *v, int n) {
  V z2 = v[2], z3 = v[6];
  V z1 = VMUL(VADD(z2, z3), C_0_541);
  V t2 = VSUB(z1, VMUL(z3, C_1_847)), t3 = VADD(z1, VMUL(z2, C_0_765));
  V t0 = wasm_i32x4_shl(VADD(v[0], v[4]), 13), t1 = wasm_i32x4_shl(VSUB(v[0], v[4]), 13);
  V e10 = VADD(t0, t3), e13 = VSUB(t0, t3), e11 = VADD(t1, t2), e12 = VSUB(t1, t2);
  V o0 = v[7], o1 = v[5], o2 = v[3], o3 = v[1];
  V y1 = VADD(o0, o3), y2 = VADD(o1, o2), y3 = VADD(o0, o2), y4 = VADD(o1, o3);
  V y5 = VMUL(VADD(y3, y4), C_1_175);
  o0 = VMUL(o0, C_0_298);
  o1 = VMUL(o1, C_2_053);
  o2 = VMUL(o2, C_3_072);
  o3 = VMUL(o3, C_1_501);
  y1 = VMUL(y1, -C_0_899);
  y2 = VMUL(y2, -C_2_562);
  y3 = VADD(VMUL(y3, -C_1_961), y5);
  y4 = VADD(VMUL(y4, -C_0_390), y5);
  o0 = VADD(o0, VADD(y1, y3));
  o1 = VADD(o1, VADD(y2, y4));
  o2 = VADD(o2, VADD(y2, y3));
  o3 = VADD(o3, VADD(y1, y4));
  v[0] = vround(VADD(e10, o3), n);
  v[7] = vround(VSUB(e10, o3), n);
  v[1] = vround(VADD(e11, o2), n);
  v[6] = vround(VSUB(e11, o2), n);
  v[2] = vround(VADD(e12, o1), n);
  v[5] = vround(VSUB(e12, o1), n);
  v[3] = vround(VADD(e13, o0), n);
  v[4] = vround(VSUB(e13, o0), n);
}

/* 8x8 transpose of L[k] (columns 0-3 of row k) and R[k] (columns 4-7). */
static inline void transpose8(V *L, V *R) {
  V oL[8], oR[8];
  for (int g = 0; g < 2; g++) {
    for (int hf = 0; hf < 2; hf++) {
      V *src = hf ? R : L;
      V a = src[4 * g], b = src[4 * g + 1], c = src[4 * g + 2], d = src[4 * g + 3];
      V t0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
      V t2 = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
      /* block (rows 4g.., cols 4hf..) goes to (rows 4hf.., cols 4g..) */
      V *dst = g ? oR : oL;
      dst[4 * hf] = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
      dst[4 * hf + 1] = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
      dst[4 * hf + 2] = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
      dst[4 * hf + 3] = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
    }
  }
  for (int k = 0; k < 8; k++) {
    L[k] = oL[k];
    R[k] = oR[k];
  }
}

static void block_roundtrip_simd(uint8_t *p, int ps, int t) {
  V L[8], R[8];
  V c128 = wasm_i32x4_splat(128);
  for (int y = 0; y < 8; y++) {
    V px = wasm_u16x8_extend_low_u8x16(wasm_v128_load64_zero(p + y * ps));
    L[y] = VSUB(wasm_u32x4_extend_low_u16x8(px), c128);
    R[y] = VSUB(wasm_u32x4_extend_high_u16x8(px), c128);
  }
  /* rows, then columns */
  transpose8(L, R);
  fdct_v(L, 1);
  fdct_v(R, 1);
  transpose8(L, R);
  fdct_v(L, 0);
  fdct_v(R, 0);
  /* quantise and dequantise; note whether any AC coefficient survives */
  const float *inv = qinvf[t];
  const int32_t *half = qhalf[t], *q = qval[t];
  V any = wasm_i32x4_splat(0);
  V eps = wasm_f32x4_splat(2.5e-4f);
  for (int y = 0; y < 8; y++) {
    for (int hf = 0; hf < 2; hf++) {
      V v = hf ? R[y] : L[y];
      int o = y * 8 + hf * 4;
      V a = wasm_i32x4_abs(v);
      V f = wasm_f32x4_convert_i32x4(VADD(a, wasm_v128_load(half + o)));
      V k = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(wasm_f32x4_mul(f, wasm_v128_load(inv + o)), eps));
      V neg = wasm_i32x4_lt(v, wasm_i32x4_splat(0));
      k = wasm_v128_bitselect(wasm_i32x4_neg(k), k, neg);
      V dq = wasm_i32x4_mul(k, wasm_v128_load(q + o));
      if (hf) R[y] = dq;
      else L[y] = dq;
      if (y > 0 || hf) any = wasm_v128_or(any, dq);
    }
  }
  /* DC alone: a flat block (the value libjpeg's zero-AC shortcuts give, which equal the full
   * transform's) */
  if (!wasm_v128_any_true(wasm_v128_or(any, wasm_i32x4_replace_lane(L[0], 0, 0)))) {
    uint8_t v = idct_limit((wasm_i32x4_extract_lane(L[0], 0) * 4 + 16) >> 5);
    for (int y = 0; y < 8; y++)
      for (int x = 0; x < 8; x++) p[y * ps + x] = v;
    return;
  }
  /* columns, then rows */
  idct_v(L, 11);
  idct_v(R, 11);
  transpose8(L, R);
  idct_v(L, 18);
  idct_v(R, 18);
  transpose8(L, R);
  for (int y = 0; y < 8; y++) {
    uint8_t *o = p + y * ps;
    int32_t tmp[8];
    wasm_v128_store(tmp, L[y]);
    wasm_v128_store(tmp + 4, R[y]);
    for (int x = 0; x < 8; x++) o[x] = idct_limit(tmp[x]);
  }
}
#define BLOCK block_roundtrip_simd
#else
#define BLOCK block_roundtrip
#endif

#define FIXS(x) ((int32_t)((x) * 65536.0 + 0.5))

static inline int imin(int a, int b) { return a < b ? a : b; }

/*
 * rgb (h x w x 3) -> JPEG at `quality` (4:2:0) -> out (h x w x 3). work: at least
 * jpeg_work_bytes(h, w) bytes.
 */
EXPORT("jpeg_work_bytes") int jpeg_work_bytes(int h, int w) {
  int yw = (w + 7) / 8 * 8, yh = (h + 7) / 8 * 8;
  int cw = (w + 15) / 16 * 8, ch = (h + 15) / 16 * 8;
  return yw * yh + 2 * cw * ch + 7 * (2 * cw + 16) + 8 * (cw + 4) + 64;
}

static inline int32_t clamp255(int32_t v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* YCbCr -> RGB for one row (jdcolor's fixed point), planar. */
static void ycc_row(const uint8_t *__restrict yr, const uint8_t *__restrict ub,
                    const uint8_t *__restrict ur, uint8_t *__restrict oR, uint8_t *__restrict oG,
                    uint8_t *__restrict oB, int w) {
  const int32_t ONE_HALF = 1 << 15;
  for (int x = 0; x < w; x++) {
    int32_t yv = yr[x], xb = ub[x] - 128, xr = ur[x] - 128;
    oR[x] = (uint8_t)clamp255(yv + ((FIXS(1.40200) * xr + ONE_HALF) >> 16));
    oG[x] = (uint8_t)clamp255(yv + ((-FIXS(0.34414) * xb + ONE_HALF - FIXS(0.71414) * xr) >> 16));
    oB[x] = (uint8_t)clamp255(yv + ((FIXS(1.77200) * xb + ONE_HALF) >> 16));
  }
}

/* RGB -> Y (n values) and Cb, Cr (m values) for one row (jccolor's fixed point), planar. */
static void rgb_row(const uint8_t *__restrict R, const uint8_t *__restrict G,
                    const uint8_t *__restrict B, uint8_t *__restrict yr, uint8_t *__restrict br,
                    uint8_t *__restrict rr, int n, int m) {
  const int32_t ONE_HALF = 1 << 15, OFF = 128 << 16;
  for (int x = 0; x < n; x++)
    yr[x] = (uint8_t)((FIXS(0.29900) * R[x] + FIXS(0.58700) * G[x] + FIXS(0.11400) * B[x] +
                       ONE_HALF) >> 16);
  for (int x = 0; x < m; x++) {
    br[x] = (uint8_t)((-FIXS(0.16874) * R[x] - FIXS(0.33126) * G[x] + FIXS(0.5) * B[x] + OFF +
                       ONE_HALF - 1) >> 16);
    rr[x] = (uint8_t)((FIXS(0.5) * R[x] - FIXS(0.41869) * G[x] - FIXS(0.08131) * B[x] + OFF +
                       ONE_HALF - 1) >> 16);
  }
}

EXPORT("jpeg_roundtrip")
void jpeg_roundtrip(const uint8_t *rgb, uint8_t *out, int h, int w, int quality, uint8_t *work) {
  set_quality(quality);
  int yw = (w + 7) / 8 * 8, yh = (h + 7) / 8 * 8;
  int cw = (w + 15) / 16 * 8, ch = (h + 15) / 16 * 8;
  int dh = (h + 1) / 2, dw = (w + 1) / 2, w2 = 2 * cw, rl = w2 + 16;
  uint8_t *Y = work, *Cb = Y + yw * yh, *Cr = Cb + cw * ch;
  /* Row buffers: planar R, G, B; two rows of full-resolution Cb and Cr; up-sampled Cb, Cr. */
  uint8_t *R = Cr + cw * ch, *G = R + rl, *B = G + rl;
  uint8_t *fb = B + rl, *fr = fb + 2 * rl;
  uint8_t *ub = R, *ur = G; /* reused when decoding */
  int32_t *csb = (int32_t *)(((uintptr_t)(fr + 2 * rl) + 15) & ~(uintptr_t)15) + 4;
  int32_t *csr = csb + cw + 4;
  /* Colour conversion (jccolor's fixed point; Cb and Cr rounded by 0.5 - epsilon), two rows at a
   * time, then 2x2 means with bias 1, 2, 1, 2, ... along each row (jcsample); edges
   * replicated. */
  for (int yy = 0; yy < dh; yy++) {
    for (int v = 0; v < 2; v++) {
      int y = imin(2 * yy + v, h - 1);
      const uint8_t *s = rgb + y * w * 3;
      for (int x = 0; x < w; x++) {
        R[x] = s[3 * x];
        G[x] = s[3 * x + 1];
        B[x] = s[3 * x + 2];
      }
      for (int x = w; x < w2; x++) {
        R[x] = R[w - 1];
        G[x] = G[w - 1];
        B[x] = B[w - 1];
      }
      rgb_row(R, G, B, Y + (2 * yy + v) * yw, fb + v * rl, fr + v * rl, yw, w2);
    }
    uint8_t *cb = Cb + yy * cw, *cr = Cr + yy * cw;
    const uint8_t *b0 = fb, *b1 = fb + rl, *r0 = fr, *r1 = fr + rl;
    for (int x = 0; x < cw; x++) {
      int bias = 1 + (x & 1), i = 2 * x;
      cb[x] = (uint8_t)((b0[i] + b0[i + 1] + b1[i] + b1[i + 1] + bias) >> 2);
      cr[x] = (uint8_t)((r0[i] + r0[i + 1] + r1[i] + r1[i + 1] + bias) >> 2);
    }
  }
  for (int y = 2 * dh; y < yh; y++)
    for (int x = 0; x < yw; x++) Y[y * yw + x] = Y[(h - 1) * yw + x]; /* bottom edge */
  for (int y = dh; y < ch; y++)
    for (int x = 0; x < cw; x++) {
      Cb[y * cw + x] = Cb[(dh - 1) * cw + x];
      Cr[y * cw + x] = Cr[(dh - 1) * cw + x];
    }
#ifndef NO_BLOCKS
  for (int by = 0; by < yh; by += 8)
    for (int bx = 0; bx < yw; bx += 8) BLOCK(Y + by * yw + bx, yw, 0);
  for (int by = 0; by < ch; by += 8)
    for (int bx = 0; bx < cw; bx += 8) {
      BLOCK(Cb + by * cw + bx, cw, 1);
      BLOCK(Cr + by * cw + bx, cw, 1);
    }
#endif
  /* Fancy up-sampling (jdsample's triangle filter: 3/4 nearer + 1/4 further sample per axis,
   * rounding 8 then 7) and YCbCr -> RGB (jdcolor's fixed point); edges replicated. */
  for (int y = 0; y < h; y++) {
    int r0 = y >> 1;
    int r1 = (y & 1) ? imin(r0 + 1, dh - 1) : (r0 > 0 ? r0 - 1 : 0);
    const uint8_t *b0 = Cb + r0 * cw, *b1 = Cb + r1 * cw;
    const uint8_t *c0 = Cr + r0 * cw, *c1 = Cr + r1 * cw;
    for (int c = 0; c < dw; c++) {
      csb[c] = 3 * b0[c] + b1[c];
      csr[c] = 3 * c0[c] + c1[c];
    }
    csb[-1] = csb[0];
    csr[-1] = csr[0];
    csb[dw] = csb[dw - 1];
    csr[dw] = csr[dw - 1];
    for (int c = 0; c < dw; c++) {
      ub[2 * c] = (uint8_t)((3 * csb[c] + csb[c - 1] + 8) >> 4);
      ub[2 * c + 1] = (uint8_t)((3 * csb[c] + csb[c + 1] + 7) >> 4);
      ur[2 * c] = (uint8_t)((3 * csr[c] + csr[c - 1] + 8) >> 4);
      ur[2 * c + 1] = (uint8_t)((3 * csr[c] + csr[c + 1] + 7) >> 4);
    }
    ycc_row(Y + y * yw, ub, ur, B, fb, fb + rl, w);
    uint8_t *o = out + y * w * 3;
    const uint8_t *oR = B, *oG = fb, *oB = fb + rl;
    for (int x = 0; x < w; x++) {
      o[3 * x] = oR[x];
      o[3 * x + 1] = oG[x];
      o[3 * x + 2] = oB[x];
    }
  }
}

#ifdef __wasm__
/* ---------------------------------------------------------------- Gaussian passes */

/*
 * Down the columns: dst row y, value i = sum over taps t of k[t] * src[map[y * taps + t] + i]
 * (symmetric kernels: k[r] * centre + sum_{t<r} k[t] * (mirror pair)), rowLen values a row.
 */
EXPORT("corr_y")
void corr_y(const double *src, double *dst, const double *k, int taps, const int32_t *map, int h,
            int rowLen, int sym) {
  int r = (taps - 1) >> 1;
  for (int y = 0; y < h; y++) {
    const int32_t *m = map + y * taps;
    double *o = dst + y * rowLen;
    int i = 0;
    if (sym) {
      v128_t kc = wasm_f64x2_splat(k[r]);
      const double *qc = src + m[r];
      for (; i + 8 <= rowLen; i += 8) {
        v128_t s0 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i));
        v128_t s1 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 2));
        v128_t s2 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 4));
        v128_t s3 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 6));
        for (int t = 0; t < r; t++) {
          v128_t kt = wasm_f64x2_splat(k[t]);
          const double *a = src + m[t] + i, *b = src + m[taps - 1 - t] + i;
          s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a), wasm_v128_load(b))));
          s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 2), wasm_v128_load(b + 2))));
          s2 = wasm_f64x2_add(s2, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 4), wasm_v128_load(b + 4))));
          s3 = wasm_f64x2_add(s3, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 6), wasm_v128_load(b + 6))));
        }
        wasm_v128_store(o + i, s0);
        wasm_v128_store(o + i + 2, s1);
        wasm_v128_store(o + i + 4, s2);
        wasm_v128_store(o + i + 6, s3);
      }
      for (; i + 4 <= rowLen; i += 4) {
        v128_t s0 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i));
        v128_t s1 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 2));
        for (int t = 0; t < r; t++) {
          v128_t kt = wasm_f64x2_splat(k[t]);
          const double *a = src + m[t] + i, *b = src + m[taps - 1 - t] + i;
          s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a), wasm_v128_load(b))));
          s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 2), wasm_v128_load(b + 2))));
        }
        wasm_v128_store(o + i, s0);
        wasm_v128_store(o + i + 2, s1);
      }
      for (; i < rowLen; i++) {
        double s = k[r] * qc[i];
        for (int t = 0; t < r; t++) s += k[t] * (src[m[t] + i] + src[m[taps - 1 - t] + i]);
        o[i] = s;
      }
    } else {
      for (; i + 4 <= rowLen; i += 4) {
        v128_t s0 = wasm_f64x2_splat(0), s1 = wasm_f64x2_splat(0);
        for (int t = 0; t < taps; t++) {
          v128_t kt = wasm_f64x2_splat(k[t]);
          const double *a = src + m[t] + i;
          s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(kt, wasm_v128_load(a)));
          s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(kt, wasm_v128_load(a + 2)));
        }
        wasm_v128_store(o + i, s0);
        wasm_v128_store(o + i + 2, s1);
      }
      for (; i < rowLen; i++) {
        double s = 0;
        for (int t = 0; t < taps; t++) s += k[t] * src[m[t] + i];
        o[i] = s;
      }
    }
  }
}

/*
 * Along the rows: each row padded by the border rule (value offsets xs[0 .. w + taps - 2], times
 * c) into pad, then dst value i = sum over taps t of k[t] * pad[i + c t].
 */
EXPORT("corr_x")
void corr_x(const double *src, double *dst, const double *k, int taps, const int32_t *xs, int h,
            int w, int c, int sym, double *pad) {
  int r = (taps - 1) >> 1, rowLen = w * c, nx = w + taps - 1;
  for (int y = 0; y < h; y++) {
    const double *s = src + y * rowLen;
    for (int x = 0; x < nx; x++)
      for (int j = 0; j < c; j++) pad[x * c + j] = s[xs[x] + j];
    double *o = dst + y * rowLen;
    int i = 0;
    if (sym) {
      v128_t kc = wasm_f64x2_splat(k[r]);
      const double *qc = pad + c * r;
      for (; i + 8 <= rowLen; i += 8) {
        v128_t s0 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i));
        v128_t s1 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 2));
        v128_t s2 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 4));
        v128_t s3 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 6));
        for (int t = 0; t < r; t++) {
          v128_t kt = wasm_f64x2_splat(k[t]);
          const double *a = pad + c * t + i, *b = pad + c * (taps - 1 - t) + i;
          s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a), wasm_v128_load(b))));
          s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 2), wasm_v128_load(b + 2))));
          s2 = wasm_f64x2_add(s2, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 4), wasm_v128_load(b + 4))));
          s3 = wasm_f64x2_add(s3, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 6), wasm_v128_load(b + 6))));
        }
        wasm_v128_store(o + i, s0);
        wasm_v128_store(o + i + 2, s1);
        wasm_v128_store(o + i + 4, s2);
        wasm_v128_store(o + i + 6, s3);
      }
      for (; i + 4 <= rowLen; i += 4) {
        v128_t s0 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i));
        v128_t s1 = wasm_f64x2_mul(kc, wasm_v128_load(qc + i + 2));
        for (int t = 0; t < r; t++) {
          v128_t kt = wasm_f64x2_splat(k[t]);
          const double *a = pad + c * t + i, *b = pad + c * (taps - 1 - t) + i;
          s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a), wasm_v128_load(b))));
          s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(kt, wasm_f64x2_add(wasm_v128_load(a + 2), wasm_v128_load(b + 2))));
        }
        wasm_v128_store(o + i, s0);
        wasm_v128_store(o + i + 2, s1);
      }
      for (; i < rowLen; i++) {
        double v = k[r] * qc[i];
        for (int t = 0; t < r; t++) v += k[t] * (pad[c * t + i] + pad[c * (taps - 1 - t) + i]);
        o[i] = v;
      }
    } else {
      for (; i + 4 <= rowLen; i += 4) {
        v128_t s0 = wasm_f64x2_splat(0), s1 = wasm_f64x2_splat(0);
        for (int t = 0; t < taps; t++) {
          v128_t kt = wasm_f64x2_splat(k[t]);
          const double *a = pad + c * t + i;
          s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(kt, wasm_v128_load(a)));
          s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(kt, wasm_v128_load(a + 2)));
        }
        wasm_v128_store(o + i, s0);
        wasm_v128_store(o + i + 2, s1);
      }
      for (; i < rowLen; i++) {
        double v = 0;
        for (int t = 0; t < taps; t++) v += k[t] * pad[c * t + i];
        o[i] = v;
      }
    }
  }
}

/* ---------------------------------------------------------------- defocus (see defocus.ts) */

typedef v128_t F2;
#define LD(p) wasm_v128_load(p)
#define ST(p, v) wasm_v128_store(p, v)
#define FADD wasm_f64x2_add
#define FSUB wasm_f64x2_sub
#define FMUL wasm_f64x2_mul
#define FS wasm_f64x2_splat

/* Disk sums (eh x ew) from row prefix sums sm (row stride sw). */
static void disk_sums(double *a, const double *sm, const int32_t *hwOf, int r, int eh, int ew,
                      int sw, int P, int gr) {
  int32_t his[2 * r + 1], los[2 * r + 1];
  for (int y = 0; y < eh; y++) {
    int nr = 0;
    for (int dy = -r; dy <= r; dy++) {
      int hw = hwOf[dy + r];
      if (hw < 0) continue;
      int so = (y - gr + dy + P) * sw + P - gr;
      his[nr] = so + hw + 1;
      los[nr++] = so - hw;
    }
    double *ao = a + y * ew;
    int x = 0;
    for (; x + 4 <= ew; x += 4) {
      F2 s0 = FS(0), s1 = FS(0);
      for (int j = 0; j < nr; j++) {
        const double *hi = sm + his[j] + x, *lo = sm + los[j] + x;
        s0 = FADD(s0, FSUB(LD(hi), LD(lo)));
        s1 = FADD(s1, FSUB(LD(hi + 2), LD(lo + 2)));
      }
      ST(ao + x, s0);
      ST(ao + x + 2, s1);
    }
    for (; x < ew; x++) {
      double v = 0;
      for (int j = 0; j < nr; j++) v += sm[his[j] + x] - sm[los[j] + x];
      ao[x] = v;
    }
  }
}

/* out (h x n) (+)= sum over t of g[t] * scale * inp rows y + t. */
static void col_gauss(double *out, const double *inp, const double *g, int gl, double scale,
                      int h, int n, int add) {
  double gs[8];
  for (int t = 0; t < gl; t++) gs[t] = g[t] * scale;
  for (int y = 0; y < h; y++) {
    double *oo = out + y * n;
    int x = 0;
    for (; x + 4 <= n; x += 4) {
      F2 s0 = add ? LD(oo + x) : FS(0), s1 = add ? LD(oo + x + 2) : FS(0);
      for (int t = 0; t < gl; t++) {
        F2 gt = FS(gs[t]);
        const double *io = inp + (y + t) * n + x;
        s0 = FADD(s0, FMUL(gt, LD(io)));
        s1 = FADD(s1, FMUL(gt, LD(io + 2)));
      }
      ST(oo + x, s0);
      ST(oo + x + 2, s1);
    }
    for (; x < n; x++) {
      double v = add ? oo[x] : 0;
      for (int t = 0; t < gl; t++) v += gs[t] * inp[(y + t) * n + x];
      oo[x] = v;
    }
  }
}

/* out (h x w) = the Gaussian along the rows of b (h x (w + gl - 1)). */
static void row_gauss(double *out, const double *b, const double *g, int gl, int h, int w) {
  int bw = w + gl - 1;
  for (int y = 0; y < h; y++) {
    const double *bo = b + y * bw;
    double *oo = out + y * w;
    int x = 0;
    for (; x + 4 <= w; x += 4) {
      F2 s0 = FS(0), s1 = FS(0);
      for (int t = 0; t < gl; t++) {
        F2 gt = FS(g[t]);
        s0 = FADD(s0, FMUL(gt, LD(bo + x + t)));
        s1 = FADD(s1, FMUL(gt, LD(bo + x + t + 2)));
      }
      ST(oo + x, s0);
      ST(oo + x + 2, s1);
    }
    for (; x < w; x++) {
      double v = 0;
      for (int t = 0; t < gl; t++) v += g[t] * bo[x + t];
      oo[x] = v;
    }
  }
}

/* b (h x ew) += E's weights times horizontal box sums. */
static void edge_rows(double *b, const double *sm, const int32_t *ey, const int32_t *ehw,
                      const double *eww, int ne, int h, int ew, int sw, int P, int gr) {
  int32_t his[ne], los[ne];
  for (int y = 0; y < h; y++) {
    for (int e = 0; e < ne; e++) {
      int so = (y + ey[e] + P) * sw + P - gr;
      his[e] = so + ehw[e] + 1;
      los[e] = so - ehw[e];
    }
    double *bo = b + y * ew;
    int x = 0;
    for (; x + 4 <= ew; x += 4) {
      F2 s0 = LD(bo + x), s1 = LD(bo + x + 2);
      for (int e = 0; e < ne; e++) {
        F2 wt = FS(eww[e]);
        const double *hi = sm + his[e] + x, *lo = sm + los[e] + x;
        s0 = FADD(s0, FMUL(wt, FSUB(LD(hi), LD(lo))));
        s1 = FADD(s1, FMUL(wt, FSUB(LD(hi + 2), LD(lo + 2))));
      }
      ST(bo + x, s0);
      ST(bo + x + 2, s1);
    }
    for (; x < ew; x++) {
      double v = bo[x];
      for (int e = 0; e < ne; e++) v += eww[e] * (sm[his[e] + x] - sm[los[e] + x]);
      bo[x] = v;
    }
  }
}

/* F (eh x w) = E's weights times vertical box sums (column prefix sums cm, row stride pw). */
static void edge_cols(double *F, const double *cm, const int32_t *ey, const int32_t *ehw,
                      const double *eww, int ne, int eh, int w, int pw, int P, int gr) {
  int32_t tops[ne], bots[ne];
  for (int y = 0; y < eh; y++) {
    for (int e = 0; e < ne; e++) {
      int off = ey[e] + P;
      tops[e] = (P - gr + y - ehw[e]) * pw + off;
      bots[e] = (P - gr + y + ehw[e] + 1) * pw + off;
    }
    double *fo = F + y * w;
    int x = 0;
    for (; x + 4 <= w; x += 4) {
      F2 s0 = FS(0), s1 = FS(0);
      for (int e = 0; e < ne; e++) {
        F2 wt = FS(eww[e]);
        const double *bo = cm + bots[e] + x, *to = cm + tops[e] + x;
        s0 = FADD(s0, FMUL(wt, FSUB(LD(bo), LD(to))));
        s1 = FADD(s1, FMUL(wt, FSUB(LD(bo + 2), LD(to + 2))));
      }
      ST(fo + x, s0);
      ST(fo + x + 2, s1);
    }
    for (; x < w; x++) {
      double v = 0;
      for (int e = 0; e < ne; e++) v += eww[e] * (cm[bots[e] + x] - cm[tops[e] + x]);
      fo[x] = v;
    }
  }
}

/*
 * defocus.ts's defocusFilter, all channels: the same passes, the same sums in the same order
 * (bit for bit). Integer inputs: ys (ph source rows), xs (pw source column offsets, times c),
 * hwOf (2 r + 1), ey, ehw (ne), cy, cx (nc); doubles: gauss (gl), eww (ne), cw (nc). scratch:
 * defocus_scratch_doubles(...) doubles.
 */
EXPORT("defocus")
void defocus(const double *src, double *dst, int h, int w, int c, int P, int r,
             const int32_t *hwOf, const double *gauss, int gl, const int32_t *ey,
             const int32_t *ehw, const double *eww, int ne, const int32_t *cy, const int32_t *cx,
             const double *cw, int nc, double inv, int identity, const int32_t *ys,
             const int32_t *xs, double *scratch) {
  int gr = (gl - 1) >> 1;
  int ph = h + 2 * P, pw = w + 2 * P, sw = pw + 1;
  int eh = h + 2 * gr, ew = w + 2 * gr;
  double *pl = scratch, *sm = pl + ph * pw, *a = sm + ph * sw, *b = a + eh * ew;
  double *o = b + h * ew, *cm = o + h * w, *F = cm + (ph + 1) * pw;
  int rowLen = w * c;
  for (int k = 0; k < c; k++) {
    for (int y = 0; y < ph; y++) {
      const double *srow = src + ys[y] * rowLen + k;
      double *po = pl + y * pw, *so = sm + y * sw;
      double acc = 0;
      for (int x = 0; x < pw; x++) {
        double v = srow[xs[x]];
        po[x] = v;
        so[x] = acc;
        acc += v;
      }
      so[pw] = acc;
    }
    disk_sums(a, sm, hwOf, r, eh, ew, sw, P, gr);
    if (identity) {
      for (int y = 0; y < h; y++) {
        const double *ao = a + (y + gr) * ew + gr;
        double *oo = o + y * w;
        for (int x = 0; x < w; x++) oo[x] = ao[x] * inv;
      }
    } else {
      col_gauss(b, a, gauss, gl, inv, h, ew, 0);
      if (ne > 0) edge_rows(b, sm, ey, ehw, eww, ne, h, ew, sw, P, gr);
      row_gauss(o, b, gauss, gl, h, w);
    }
    if (ne > 0) {
      for (int x = 0; x < pw; x++) cm[x] = 0;
      for (int y = 0; y < ph; y++) {
        const double *prev = cm + y * pw, *row = pl + y * pw;
        double *next = cm + (y + 1) * pw;
        for (int x = 0; x < pw; x++) next[x] = prev[x] + row[x];
      }
      edge_cols(F, cm, ey, ehw, eww, ne, eh, w, pw, P, gr);
      col_gauss(o, F, gauss, gl, 1, h, w, 1);
    }
    for (int j = 0; j < nc; j++) {
      double wt = cw[j];
      const double *base = pl + (P + cy[j]) * pw + P + cx[j];
      for (int y = 0; y < h; y++) {
        double *oo = o + y * w;
        const double *po = base + y * pw;
        for (int x = 0; x < w; x++) oo[x] += wt * po[x];
      }
    }
    double *d = dst + k;
    for (int i = 0; i < h * w; i++) d[i * c] = o[i];
  }
}

EXPORT("defocus_scratch_doubles")
int defocus_scratch_doubles(int h, int w, int P, int gl) {
  int gr = (gl - 1) >> 1;
  int ph = h + 2 * P, pw = w + 2 * P, sw = pw + 1;
  int eh = h + 2 * gr, ew = w + 2 * gr;
  return ph * pw + ph * sw + eh * ew + h * ew + h * w + (ph + 1) * pw + eh * w + 8;
}

/* ---------------------------------------------------------------- pixelate (see image.ts) */

static inline uint8_t clip8(int32_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/*
 * PIL's Image.resize(BOX) of 8-bit h x w x c to oh x ow (22-bit fixed-point taps kk, ksize per
 * output, with bounds [start, count] per output; horizontal pass, then vertical, uint8 between;
 * a pass is skipped when its size does not change), then PIL's NEAREST back to h x w (source
 * column offsets xs, source rows ys, both of the small image). tmp, small: h * ow * c and
 * oh * ow * c bytes.
 */
EXPORT("pixelate")
void pixelate(const uint8_t *src, uint8_t *out, int h, int w, int c, int oh, int ow,
              int kxSize, const int32_t *bx, const int32_t *kx, int kySize, const int32_t *by,
              const int32_t *ky, const int32_t *xs, const int32_t *ys, uint8_t *tmp,
              uint8_t *small) {
  const uint8_t *cur = src;
  if (ow != w && c == 3) {
    /* RGB: the three channels (and one byte of the next pixel, ignored) in one vector; src
     * must be readable one byte past its end. */
    V half = wasm_i32x4_splat(1 << 21);
    for (int y = 0; y < h; y++) {
      const uint8_t *row = src + y * w * 3;
      uint8_t *orow = tmp + y * ow * 3;
      for (int x = 0; x < ow; x++) {
        int xmin = bx[2 * x], xmax = bx[2 * x + 1];
        const uint8_t *s = row + xmin * 3;
        const int32_t *k = kx + x * kxSize;
        V acc = half;
        for (int t = 0; t < xmax; t++) {
          V px = wasm_u32x4_extend_low_u16x8(
              wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(s + 3 * t)));
          acc = wasm_i32x4_add(acc, wasm_i32x4_mul(px, wasm_i32x4_splat(k[t])));
        }
        acc = wasm_i32x4_shr(acc, 22);
        if (x + 1 < ow) {
          /* saturating narrows clamp to 0..255; the fourth byte is overwritten next */
          V b = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(acc, acc), acc);
          wasm_v128_store32_lane(orow + 3 * x, b, 0);
        } else {
          orow[3 * x] = clip8(wasm_i32x4_extract_lane(acc, 0));
          orow[3 * x + 1] = clip8(wasm_i32x4_extract_lane(acc, 1));
          orow[3 * x + 2] = clip8(wasm_i32x4_extract_lane(acc, 2));
        }
      }
    }
    cur = tmp;
  } else if (ow != w) {
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < ow; x++) {
        int xmin = bx[2 * x], xmax = bx[2 * x + 1];
        const uint8_t *s = src + (y * w + xmin) * c;
        const int32_t *k = kx + x * kxSize;
        uint8_t *o = tmp + (y * ow + x) * c;
        for (int j = 0; j < c; j++) {
          int32_t acc = 1 << 21;
          for (int t = 0; t < xmax; t++) acc += s[t * c + j] * k[t];
          o[j] = clip8(acc >> 22);
        }
      }
    }
    cur = tmp;
  }
  int rowLen = ow * c;
  if (oh != h) {
    for (int y = 0; y < oh; y++) {
      int ymin = by[2 * y], ymax = by[2 * y + 1];
      const int32_t *k = ky + y * kySize;
      const uint8_t *s = cur + ymin * rowLen;
      uint8_t *o = small + y * rowLen;
      int i = 0;
      for (; i + 16 <= rowLen; i += 16) {
        V a0 = wasm_i32x4_splat(1 << 21), a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0; t < ymax; t++) {
          V px = wasm_v128_load(s + t * rowLen + i), kt = wasm_i32x4_splat(k[t]);
          V lo = wasm_u16x8_extend_low_u8x16(px), hi = wasm_u16x8_extend_high_u8x16(px);
          a0 = wasm_i32x4_add(a0, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(lo), kt));
          a1 = wasm_i32x4_add(a1, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(lo), kt));
          a2 = wasm_i32x4_add(a2, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(hi), kt));
          a3 = wasm_i32x4_add(a3, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(hi), kt));
        }
        V b0 = wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(a0, 22), wasm_i32x4_shr(a1, 22));
        V b1 = wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(a2, 22), wasm_i32x4_shr(a3, 22));
        wasm_v128_store(o + i, wasm_u8x16_narrow_i16x8(b0, b1));
      }
      for (; i < rowLen; i++) {
        int32_t acc = 1 << 21;
        for (int t = 0; t < ymax; t++) acc += s[t * rowLen + i] * k[t];
        o[i] = clip8(acc >> 22);
      }
    }
  } else {
    for (int i = 0; i < oh * rowLen; i++) small[i] = cur[i];
  }
  int outLen = w * c, prev = -1;
  for (int y = 0; y < h; y++) {
    uint8_t *o = out + y * outLen;
    if (ys[y] == prev) {
      int i = 0;
      for (; i + 16 <= outLen; i += 16) wasm_v128_store(o + i, wasm_v128_load(o + i - outLen));
      for (; i < outLen; i++) o[i] = o[i - outLen];
      continue;
    }
    prev = ys[y];
    const uint8_t *s = small + ys[y] * rowLen;
    if (c == 3) {
      /* four bytes a pixel (the fourth overwritten next), the last one byte by byte */
      for (int x = 0; x + 1 < w; x++)
        wasm_v128_store32_lane(o + 3 * x, wasm_v128_load32_zero(s + xs[x]), 0);
      const uint8_t *p = s + xs[w - 1];
      o[3 * (w - 1)] = p[0];
      o[3 * (w - 1) + 1] = p[1];
      o[3 * (w - 1) + 2] = p[2];
    } else {
      for (int x = 0; x < w; x++)
        for (int j = 0; j < c; j++) o[x * c + j] = s[xs[x] + j];
    }
  }
}


/* ---------------------------------------------------------------- spatter's distance transform */

static inline double dmin(double a, double b) { return b < a ? b : a; }

/* One pass of spatter.ts's chamferPass over the padded map m (see there). */
static void chamfer_pass(double *m, int h, int w, int pw, int dir) {
  static const int OY[8] = {-2, -2, -1, -1, -1, -1, -1, 0};
  static const int OX[8] = {-1, 1, -2, -1, 0, 1, 2, -1};
  int o[8];
  for (int k = 0; k < 8; k++) o[k] = dir * (OY[k] * pw + OX[k]);
  const double C = 2.1969, B = 1.4;
  for (int yi = 0; yi < h; yi++) {
    int y = dir == 1 ? yi : h - 1 - yi;
    int first = (y + 2) * pw + (dir == 1 ? 2 : w + 1);
    for (int xi = 0, i = first; xi < w; xi++, i += dir) {
      double a = dmin(m[i], m[i + o[0]] + C), b = dmin(m[i + o[1]] + C, m[i + o[2]] + C);
      double d = dmin(m[i + o[3]] + B, m[i + o[4]] + 1), e = dmin(m[i + o[5]] + B, m[i + o[6]] + C);
      m[i] = dmin(dmin(a, b), dmin(d, e));
    }
    for (int xi = 0, i = first; xi < w; xi++, i += dir) m[i] = dmin(m[i], m[i + o[7]] + 1);
  }
}

/* spatter.ts's distanceTransform: src (h x w bytes) -> out (h x w doubles); m: (h+4)(w+4). */
EXPORT("distance_transform")
void distance_transform(const uint8_t *src, double *out, int h, int w, double *m) {
  const double INF = 1e9;
  int pw = w + 4, ph = h + 4;
  for (int i = 0; i < pw * ph; i++) m[i] = INF;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) m[(y + 2) * pw + x + 2] = src[y * w + x] == 0 ? 0 : INF;
  chamfer_pass(m, h, w, pw, 1);
  chamfer_pass(m, h, w, pw, -1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) out[y * w + x] = m[(y + 2) * pw + x + 2];
}

/* ---------------------------------------------------------------- 8-bit in and out */

/* d[i] = src[i] / 255, as corruptBatch's table (byte * (1 / 255)). */
EXPORT("bytes_in")
void bytes_in(const uint8_t *src, double *d, int n) {
  const double inv = 1.0 / 255.0;
  for (int i = 0; i < n; i++) d[i] = (double)src[i] * inv;
}

/*
 * corruptBatch's truncating output conversion: floor(255 r + 1e-4) clamped to 0..255 (the clamp
 * by pmin/pmax, single instructions, where wasm's min/max take NaN-handling sequences; the
 * values are never NaN).
 */
EXPORT("bytes_out_trunc")
void bytes_out_trunc(const double *r, uint8_t *out, int n) {
  F2 zero = FS(0), k255 = FS(255), eps = FS(1e-4);
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    F2 y = FADD(FMUL(LD(r + i), k255), eps);
    y = wasm_f64x2_pmin(wasm_f64x2_pmax(y, zero), k255);
    out[i] = (uint8_t)(int32_t)wasm_f64x2_extract_lane(y, 0);
    out[i + 1] = (uint8_t)(int32_t)wasm_f64x2_extract_lane(y, 1);
  }
  for (; i < n; i++) {
    double y = r[i] * 255 + 1e-4;
    y = y < 0 ? 0 : y;
    y = y > 255 ? 255 : y;
    out[i] = (uint8_t)(int32_t)y;
  }
}

/* ---------------------------------------------------------------- spatter's water relief */

/* OpenCV's saturate_cast<uchar> of a double: round half to even, clamp. */
static inline int32_t sat8d(double v) {
  /* integer clamps (callers' values lie in [0, 255]; wasm's f64 min/max are slow in V8) */
  int32_t r = (int32_t)__builtin_rint(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/* spatter.ts's box3: cv2.blur 3x3, BORDER_REFLECT_101, sums row by row, left to right. */
static void box3d(const double *src, double *out, int h, int w) {
  for (int y = 0; y < h; y++) {
    const double *r0 = src + (y == 0 ? 1 : y - 1) * w, *r1 = src + y * w;
    const double *r2 = src + (y == h - 1 ? h - 2 : y + 1) * w;
    for (int x = 0; x < w; x++) {
      int c0 = x == 0 ? 1 : x - 1, c2 = x == w - 1 ? w - 2 : x + 1;
      double s = 0;
      s += r0[c0];
      s += r0[x];
      s += r0[c2];
      s += r1[c0];
      s += r1[x];
      s += r1[c2];
      s += r2[c0];
      s += r2[x];
      s += r2[c2];
      out[y * w + x] = s / 9;
    }
  }
}

/*
 * The water branch's relief (spatter.ts, water): from the inverted Canny edges (bytes), the
 * distance to them (capped at 20), box blur, truncation to bytes, histogram equalisation,
 * emboss, box blur, saturate_cast; m = liquid times that. Returns max(m) (0 if none is above).
 * scratch: 3 h w + (h + 4)(w + 4) doubles and 2 h w bytes past them.
 */
EXPORT("water_relief")
double water_relief(const uint8_t *edges, const double *liquid, double *m, int h, int w,
                    double *scratch) {
  int n = h * w;
  double *dist = scratch, *b1 = dist + n, *emb = b1 + n, *pad = emb + n;
  uint8_t *d8 = (uint8_t *)(pad + (h + 4) * (w + 4)), *eq = d8 + n;
  distance_transform(edges, dist, h, w, pad);
  for (int i = 0; i + 2 <= n; i += 2) ST(dist + i, wasm_f64x2_pmin(LD(dist + i), FS(20)));
  if (n & 1) dist[n - 1] = dist[n - 1] > 20 ? 20 : dist[n - 1];
  box3d(dist, b1, h, w);
  for (int i = 0; i < n; i++) d8[i] = (uint8_t)(int32_t)b1[i];
  /* cv2.equalizeHist */
  int32_t hist[256];
  for (int i = 0; i < 256; i++) hist[i] = 0;
  for (int i = 0; i < n; i++) hist[d8[i]]++;
  int lo = 0;
  while (!hist[lo]) lo++;
  if (hist[lo] == n) {
    for (int i = 0; i < n; i++) eq[i] = (uint8_t)lo;
  } else {
    double scale = 255.0 / (double)(n - hist[lo]);
    uint8_t lut[256];
    for (int i = 0; i < 256; i++) lut[i] = 0;
    int32_t sum = 0;
    for (int i = lo + 1; i < 256; i++) {
      sum += hist[i];
      lut[i] = (uint8_t)sat8d((double)(float)((double)sum * scale));
    }
    for (int i = 0; i < n; i++) eq[i] = lut[d8[i]];
  }
  /* cv2.filter2D with EMBOSS = [-2 -1 0; -1 1 1; 0 1 2], BORDER_REFLECT_101, saturated */
  for (int y = 0; y < h; y++) {
    const uint8_t *r0 = eq + (y == 0 ? 1 : y - 1) * w, *r1 = eq + y * w;
    const uint8_t *r2 = eq + (y == h - 1 ? h - 2 : y + 1) * w;
    for (int x = 0; x < w; x++) {
      int c0 = x == 0 ? 1 : x - 1, c2 = x == w - 1 ? w - 2 : x + 1;
      int32_t v = -2 * r0[c0] - r0[x] - r1[c0] + r1[x] + r1[c2] + r2[x] + 2 * r2[c2];
      emb[y * w + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  box3d(emb, b1, h, w);
  double max = 0;
  for (int i = 0; i < n; i++) {
    m[i] = liquid[i] * (double)sat8d(b1[i]);
    if (m[i] > max) max = m[i];
  }
  return max;
}
#endif
