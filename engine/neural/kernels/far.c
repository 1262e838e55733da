/* The lean network's learned part (engine/neural/lean.py, LeanFilmNet.far and combine) for one
 * float32 sample on one CPU thread: what engine/neural/compiled.py compiles and calls.
 *
 * Why: at 256^2 torch ran the ~45 small operations of the coarse levels at 5-7 GFLOP/s (per
 * operation overhead, layout reorders, separate pooling and skip additions), while one pass over
 * channels-last buffers keeps eight channels in one vector register and fuses pooling, pixel
 * shuffle, crop and skip addition into the loops that produce them.
 *
 * Layout: feature maps are channels-last (row, column, channel), each in a buffer with a zero
 * border (the convolutions' padding) that Python allocates once per grid and this code never
 * writes. A pointer to a map's interior and its padded row length (pixels) describe it.
 * Weights are packed [ky][kx][in][out], so the innermost loop runs over output channels.
 * Every function is plain C99, single threaded, without allocation; the GIL is released
 * around each call by ctypes.
 */
#include <stddef.h>

#define RESTRICT __restrict__

/* Eight floats as one vector (GCC and clang vector extensions: AVX on x86-64, two NEON or SSE
 * registers elsewhere); the unaligned type reads and writes packed weights and feature maps. */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
#define LD(p) (*(const v8u *)(p))
#define ST(p, v) (*(v8u *)(p) = (v))

/* acc[p][v] (NP pixels along a row, VC vectors of output channels from o0) of a K x K
 * convolution whose window for pixel p starts at s + p CI: every input value is broadcast once
 * and every weight vector loaded once per tile. */
#define TILE(NP, VC, CO)                                                                        \
    v8 acc[NP][VC];                                                                             \
    for (int p = 0; p < NP; p++)                                                                \
        for (int v = 0; v < VC; v++) acc[p][v] = (v8){0};                                       \
    for (int ky = 0; ky < K; ky++)                                                              \
        for (int kx = 0; kx < K; kx++) {                                                        \
            const float *s = win + ((ptrdiff_t)ky * irow + kx) * CI;                            \
            const float *wk = w + (ptrdiff_t)(ky * K + kx) * CI * CO + o0;                      \
            for (int i = 0; i < CI; i++) {                                                      \
                v8 b[NP];                                                                       \
                for (int p = 0; p < NP; p++) b[p] = (v8){0} + s[p * CI + i];                    \
                const float *wi = wk + i * CO;                                                  \
                for (int v = 0; v < VC; v++) {                                                  \
                    v8 wv = LD(wi + 8 * v);                                                     \
                    for (int p = 0; p < NP; p++) acc[p][v] += b[p] * wv;                        \
                }                                                                               \
            }                                                                                   \
        }

/* out = conv(in), 3 x 3, CI inputs and 8 outputs, over an (oh, ow) output; `in` points where
 * output (0, 0)'s window starts, out at the output's (0, 0), rows of orow pixels. */
#define DEF_CONV8(CI_)                                                                          \
static void conv8_##CI_(const float *RESTRICT in, int irow, const float *RESTRICT w,            \
                        float *RESTRICT out, int oh, int ow, int orow)                           \
{                                                                                               \
    enum { CI = CI_, K = 3, o0 = 0 };                                                           \
    for (int y = 0; y < oh; y++) {                                                              \
        int x = 0;                                                                              \
        for (; x + 4 <= ow; x += 4) {                                                           \
            const float *win = in + ((ptrdiff_t)y * irow + x) * CI;                             \
            TILE(4, 1, 8)                                                                       \
            for (int p = 0; p < 4; p++) ST(out + ((ptrdiff_t)y * orow + x + p) * 8, acc[p][0]); \
        }                                                                                       \
        for (; x < ow; x++) {                                                                   \
            const float *win = in + ((ptrdiff_t)y * irow + x) * CI;                             \
            TILE(1, 1, 8)                                                                       \
            ST(out + ((ptrdiff_t)y * orow + x) * 8, acc[0][0]);                                 \
        }                                                                                       \
    }                                                                                           \
}
DEF_CONV8(3)
DEF_CONV8(6)
DEF_CONV8(8)
DEF_CONV8(9)
DEF_CONV8(12)

/* One coarse pixel's outputs t to its F x F fine pixels, dst = src + alpha t, at fine
 * (F (Y - 1) + i, F (X - 1) + j) (the crop drops one coarse cell of halo).
 * Channels-last (CL): t in (i, j, c) order (the weights' outputs were permuted when packed), dst
 * and src with unit channel stride. Channels-first: t in torch's pixel_shuffle order
 * o = c F^2 + i F + j, dst and src with unit column stride where `unit`. */
/* The fine pixels (yy, xx) of coarse pixel (Y, X) that lie inside the (h, wd) grid, with their
 * offsets (i, j) in the coarse pixel; the statements run once for each. */
#define FOR_FINE_PIXELS(F, ...)                                                                 \
    for (int i = 0; i < F; i++) {                                                               \
        int yy = F * (Y - 1) + i;                                                               \
        if (yy >= h) break;                                                                     \
        for (int j = 0; j < F; j++) {                                                           \
            int xx = F * (X - 1) + j;                                                           \
            if (xx >= wd) break;                                                                \
            __VA_ARGS__                                                                         \
        }                                                                                       \
    }

#define SCATTER_CL(C, F)                                                                        \
    FOR_FINE_PIXELS(F,                                                                          \
        float *d = dst + yy * dy + xx * dx;                                                     \
        const float *s = src + yy * sy + xx * sx;                                               \
        const float *tt = t + (i * F + j) * C;                                                  \
        for (int c = 0; c < C; c++) d[c] = s[c] + alpha * tt[c];)

#define SCATTER_CF(C, F)                                                                        \
    if (unit && F * X <= wd && F * Y <= h) {                                                    \
        for (int c = 0; c < C; c++)                                                             \
            for (int i = 0; i < F; i++) {                                                       \
                ptrdiff_t yy = F * (Y - 1) + i, xx = F * (X - 1);                               \
                float *d = dst + c * dc + yy * dy + xx;                                         \
                const float *tt = t + c * F * F + i * F;                                        \
                if (src) {                                                                      \
                    const float *s = src + c * sc + yy * sy + xx;                               \
                    for (int j = 0; j < F; j++) d[j] = s[j] + alpha * tt[j];                    \
                } else                                                                          \
                    for (int j = 0; j < F; j++) d[j] = alpha * tt[j];                           \
            }                                                                                   \
    } else {                                                                                    \
        FOR_FINE_PIXELS(F,                                                                      \
            for (int c = 0; c < C; c++)                                                         \
                dst[c * dc + yy * dy + xx * dx] = (src ? src[c * sc + yy * sy + xx * sx] : 0.0f) \
                                                  + alpha * t[c * F * F + i * F + j];)          \
    }

/* dst = src + alpha crop(pixel_shuffle(conv(in), F)) over an (h, wd) fine grid: a K x K
 * convolution with 8 inputs and CO = C F^2 outputs in chunks of VC vectors, two coarse pixels at
 * a time, scattered by SCATTER (CL: into a channels-last skip, in place; CF: into the
 * channels-first near field). `in` points where coarse output (0, 0)'s window starts. */
#define DEF_CONV_SHUFFLE(NAME, CO, VC, K_, F, SCATTER, DT)                                      \
static void NAME(const float *RESTRICT in, int irow, const float *RESTRICT w, int h, int wd,    \
                 float alpha, DT *dst, ptrdiff_t dc, ptrdiff_t dy, ptrdiff_t dx,                \
                 const float *src, ptrdiff_t sc, ptrdiff_t sy, ptrdiff_t sx,                    \
                 const unsigned char *mask, ptrdiff_t my, ptrdiff_t mx, int y0, int y1)         \
{                                                                                               \
    enum { CI = 8, K = K_, C = CO / (F * F) };                                                  \
    const int HY = (h + F - 1) / F, WX = (wd + F - 1) / F, unit = dx == 1 && sx == 1;           \
    (void)dc; (void)sc; (void)unit; (void)mask; (void)my; (void)mx;                             \
    float tb[2][CO];                                                                            \
    for (int Y = y0 > 1 ? y0 : 1; Y <= (y1 < HY ? y1 : HY); Y++) {                              \
        int X0 = 1;                                                                             \
        for (; X0 + 1 <= WX; X0 += 2) {                                                         \
            const float *win = in + ((ptrdiff_t)Y * irow + X0) * CI;                            \
            for (int o0 = 0; o0 < CO; o0 += 8 * VC) {                                           \
                TILE(2, VC, CO)                                                                 \
                for (int p = 0; p < 2; p++)                                                     \
                    for (int v = 0; v < VC; v++) ST(tb[p] + o0 + 8 * v, acc[p][v]);             \
            }                                                                                   \
            for (int p = 0; p < 2; p++) {                                                       \
                const int X = X0 + p;                                                           \
                const float *t = tb[p];                                                         \
                SCATTER(C, F)                                                                   \
            }                                                                                   \
        }                                                                                       \
        for (; X0 <= WX; X0++) {                                                                \
            const float *win = in + ((ptrdiff_t)Y * irow + X0) * CI;                            \
            for (int o0 = 0; o0 < CO; o0 += 8 * VC) {                                           \
                TILE(1, VC, CO)                                                                 \
                for (int v = 0; v < VC; v++) ST(tb[0] + o0 + 8 * v, acc[0][v]);                 \
            }                                                                                   \
            const int X = X0;                                                                   \
            const float *t = tb[0];                                                             \
            SCATTER(C, F)                                                                       \
        }                                                                                       \
    }                                                                                           \
}

/* Channels-first into a double field times a cell mask (bytes, 0 or 1; strides my, mx), the
 * engine's H of a one-layer film: what torch.mul(near + alpha t, mask, out=double) gives. */
#define SCATTER_CF_MASKED(C, F)                                                                 \
    FOR_FINE_PIXELS(F,                                                                          \
        const int on = mask[yy * my + xx * mx] != 0;                                            \
        for (int c = 0; c < C; c++) {                                                           \
            const float v = src[c * sc + yy * sy + xx * sx] + alpha * t[c * F * F + i * F + j]; \
            dst[c * dc + yy * dy + xx * dx] = on ? (double)v : 0.0;                             \
        })

DEF_CONV_SHUFFLE(decode_up, 32, 4, 3, 2, SCATTER_CL, float)
DEF_CONV_SHUFFLE(u0_48_k3, 48, 6, 3, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_96_k3, 96, 6, 3, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_144_k3, 144, 6, 3, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_192_k3, 192, 6, 3, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_48_k1, 48, 6, 1, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_96_k1, 96, 6, 1, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_144_k1, 144, 6, 1, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_192_k1, 192, 6, 1, 4, SCATTER_CF, float)
DEF_CONV_SHUFFLE(u0_masked_48_k3, 48, 6, 3, 4, SCATTER_CF_MASKED, double)
DEF_CONV_SHUFFLE(u0_masked_48_k1, 48, 6, 1, 4, SCATTER_CF_MASKED, double)

/* E_1, E and the bottom convolutions: 3 x 3, CI inputs, 8 outputs. Returns 0, or -1 for an
 * input width without a compiled loop. */
int nm_conv(const float *in, int irow, int CI, const float *w, float *out, int oh, int ow, int orow)
{
    switch (CI) {
    case 3: conv8_3(in, irow, w, out, oh, ow, orow); return 0;
    case 6: conv8_6(in, irow, w, out, oh, ow, orow); return 0;
    case 8: conv8_8(in, irow, w, out, oh, ow, orow); return 0;
    case 9: conv8_9(in, irow, w, out, oh, ow, orow); return 0;
    case 12: conv8_12(in, irow, w, out, oh, ow, orow); return 0;
    default: return -1;
    }
}

/* A decoder level: U (3 x 3, 8 -> 32, weights packed with outputs in (i, j, c) order), pixel
 * shuffle by 2, crop, times alpha, added in place to the channels-last skip `a` (h, wd, 8). */
void nm_decode(const float *in, int irow, const float *w, int h, int wd, float alpha, float *a, int arow)
{
    ptrdiff_t dy = (ptrdiff_t)arow * 8;
    decode_up(in, irow, w, h, wd, alpha, a, 1, dy, 8, a, 1, dy, 8, NULL, 0, 0, 1, h);
}

/* U_0 (K x K, 8 -> CO = 16 x 3 nz), pixel shuffle by 4 and crop, times alpha, added to the
 * channels-first near field src into dst (strides in floats; src NULL: alpha times it alone),
 * for the coarse rows y0 .. y1 (1-based, inclusive; fine rows 4 (y0 - 1) .. 4 y1 - 1), so that
 * two threads can each take a part. Returns -1 for an unknown shape. */
int nm_u0(const float *in, int irow, const float *w, int K, int CO, int h, int wd, float alpha,
          float *dst, ptrdiff_t dc, ptrdiff_t dy, ptrdiff_t dx,
          const float *src, ptrdiff_t sc, ptrdiff_t sy, ptrdiff_t sx, int y0, int y1)
{
#define CASE(N) case N:                                                                         \
        if (K == 3)                                                                             \
            u0_##N##_k3(in, irow, w, h, wd, alpha, dst, dc, dy, dx, src, sc, sy, sx, NULL, 0, 0, y0, y1); \
        else                                                                                    \
            u0_##N##_k1(in, irow, w, h, wd, alpha, dst, dc, dy, dx, src, sc, sy, sx, NULL, 0, 0, y0, y1); \
        return 0;
    if (K != 1 && K != 3)
        return -1;
    switch (CO) {
    CASE(48) CASE(96) CASE(144) CASE(192)
    default: return -1;
    }
#undef CASE
}

/* nm_u0 for one layer (CO = 48) into the engine's double field: near field src (float, never
 * NULL) plus alpha times U_0's prolongation, times the cell mask (bytes; strides in elements),
 * for the coarse rows y0 .. y1 as nm_u0. Returns -1 for an unknown shape. */
int nm_u0_masked(const float *in, int irow, const float *w, int K, int CO, int h, int wd, float alpha,
                 double *dst, ptrdiff_t dc, ptrdiff_t dy, ptrdiff_t dx,
                 const float *src, ptrdiff_t sc, ptrdiff_t sy, ptrdiff_t sx,
                 const unsigned char *mask, ptrdiff_t my, ptrdiff_t mx, int y0, int y1)
{
    if (CO != 48 || (K != 1 && K != 3) || !src || !mask)
        return -1;
    if (K == 3)
        u0_masked_48_k3(in, irow, w, h, wd, alpha, dst, dc, dy, dx, src, sc, sy, sx, mask, my, mx, y0, y1);
    else
        u0_masked_48_k1(in, irow, w, h, wd, alpha, dst, dc, dy, dx, src, sc, sy, sx, mask, my, mx, y0, y1);
    return 0;
}

/* buf = Ms m, rounded once to float (what torch.mul(Ms, m, out=buf) gives): m (C, h, w) and Ms
 * (h, w) both double (kind 8) or both float (kind 4), strides in elements; buf float. Rows
 * y0 .. y1 - 1 only (0-based), so that two threads can each take a part. */
void nm_load(const void *m, int kind, ptrdiff_t mc, ptrdiff_t my, ptrdiff_t mx, const void *Ms,
             ptrdiff_t sy, ptrdiff_t sx, float *buf, ptrdiff_t bc, ptrdiff_t by, ptrdiff_t bx,
             int C, int h, int w, int y0, int y1)
{
    if (y1 > h) y1 = h;
    for (int c = 0; c < C; c++)
        for (int y = y0 < 0 ? 0 : y0; y < y1; y++) {
            float *b = buf + c * bc + y * by;
            if (kind == 8) {
                const double *a = (const double *)m + c * mc + y * my, *s = (const double *)Ms + y * sy;
                for (int x = 0; x < w; x++) b[x * bx] = (float)(s[x * sx] * a[x * mx]);
            } else {
                const float *a = (const float *)m + c * mc + y * my, *s = (const float *)Ms + y * sy;
                for (int x = 0; x < w; x++) b[x * bx] = s[x * sx] * a[x * mx];
            }
        }
}

/* Channels-first x (strides in floats) averaged over f x f blocks (cells past h, w count as
 * vacuum) into the channels-last interior `out` of (oh, ow) pixels, row length orow; `row`
 * holds ow floats. */
void nm_pool(const float *x, ptrdiff_t xc, ptrdiff_t xy, ptrdiff_t xx, int C, int h, int w, int f,
             float *out, int oh, int ow, int orow, float *row)
{
    const float scale = 1.0f / (float)(f * f);
    const int whole = w / f;          /* blocks with all f columns inside */
    for (int c = 0; c < C; c++)
        for (int Y = 0; Y < oh; Y++) {
            for (int X = 0; X < ow; X++) row[X] = 0.0f;
            for (int i = 0; i < f && f * Y + i < h; i++) {
                const float *r = x + c * xc + (ptrdiff_t)(f * Y + i) * xy;
                if (xx == 1 && f == 4)
                    for (int X = 0; X < whole; X++) row[X] += (r[4 * X] + r[4 * X + 1]) + (r[4 * X + 2] + r[4 * X + 3]);
                else if (xx == 1 && f == 2)
                    for (int X = 0; X < whole; X++) row[X] += r[2 * X] + r[2 * X + 1];
                else
                    for (int X = 0; X < whole; X++)
                        for (int j = 0; j < f; j++) row[X] += r[(f * X + j) * xx];
                for (int xi = whole * f; xi < w; xi++) row[xi / f] += r[xi * xx];
            }
            float *dst = out + (ptrdiff_t)Y * orow * C + c;
            for (int X = 0; X < ow; X++) dst[X * C] = row[X] * scale;
        }
}

/* 2 x 2 average pooling of a channels-last interior (h, w, C; row length irow) into the
 * interior `out` (ceil(h / 2), ceil(w / 2); row length orow); an odd side's last block has one
 * vacuum row or column. */
void nm_down(const float *in, int irow, int C, int h, int w, float *out, int orow)
{
    const int oh = (h + 1) / 2, ow = (w + 1) / 2;
    for (int Y = 0; Y < oh; Y++)
        for (int X = 0; X < ow; X++) {
            float *dst = out + ((ptrdiff_t)Y * orow + X) * C;
            const float *a = in + ((ptrdiff_t)(2 * Y) * irow + 2 * X) * C;
            int dy = (2 * Y + 1 < h) ? irow * C : -1, dx = (2 * X + 1 < w) ? C : -1;
            for (int c = 0; c < C; c++) {
                float s = a[c];
                if (dx > 0) s += a[dx + c];
                if (dy > 0) { s += a[dy + c]; if (dx > 0) s += a[dy + dx + c]; }
                dst[c] = 0.25f * s;
            }
        }
}

/* The levels of one evaluation in one call (a call from Python costs about a microsecond, as
 * much as a whole level on a small grid, and each argument it converts a little more): n
 * records of OP_FIELDS 64-bit fields, the first the operation, the rest its arguments in the
 * order of nm_conv, nm_down, nm_decode, nm_load, nm_pool and nm_u0_masked (pointers as integers;
 * nm_decode's alpha in thousandths, nm_u0_masked's as the bits of a float). A simulation's
 * evaluation is two such calls around the near field's FFT (engine/neural/compiled.py,
 * StateProgram). Returns 0, or the 1-based index of the record that failed. */
enum { OP_FIELDS = 22, OP_CONV = 1, OP_DOWN = 2, OP_DECODE = 3, OP_LOAD = 4, OP_POOL = 5, OP_U0_MASKED = 6 };

#define PTR(T, v) ((T)(size_t)(v))

static float float_bits(long long v)
{
    union { unsigned int u; float f; } b;
    b.u = (unsigned int)v;
    return b.f;
}

int nm_run(const long long *ops, int n)
{
    for (int k = 0; k < n; k++) {
        const long long *a = ops + (ptrdiff_t)k * OP_FIELDS;
        switch (a[0]) {
        case OP_CONV:
            if (nm_conv(PTR(const float *, a[1]), (int)a[2], (int)a[3], PTR(const float *, a[4]),
                        PTR(float *, a[5]), (int)a[6], (int)a[7], (int)a[8]))
                return k + 1;
            break;
        case OP_DOWN:
            nm_down(PTR(const float *, a[1]), (int)a[2], (int)a[3], (int)a[4], (int)a[5],
                    PTR(float *, a[6]), (int)a[7]);
            break;
        case OP_DECODE:
            nm_decode(PTR(const float *, a[1]), (int)a[2], PTR(const float *, a[3]), (int)a[4],
                      (int)a[5], (float)a[6] / 1000.0f, PTR(float *, a[7]), (int)a[8]);
            break;
        case OP_LOAD:
            nm_load(PTR(const void *, a[1]), (int)a[2], (ptrdiff_t)a[3], (ptrdiff_t)a[4], (ptrdiff_t)a[5],
                    PTR(const void *, a[6]), (ptrdiff_t)a[7], (ptrdiff_t)a[8], PTR(float *, a[9]),
                    (ptrdiff_t)a[10], (ptrdiff_t)a[11], (ptrdiff_t)a[12], (int)a[13], (int)a[14], (int)a[15],
                    (int)a[16], (int)a[17]);
            break;
        case OP_POOL:
            nm_pool(PTR(const float *, a[1]), (ptrdiff_t)a[2], (ptrdiff_t)a[3], (ptrdiff_t)a[4], (int)a[5],
                    (int)a[6], (int)a[7], (int)a[8], PTR(float *, a[9]), (int)a[10], (int)a[11], (int)a[12],
                    PTR(float *, a[13]));
            break;
        case OP_U0_MASKED:
            if (nm_u0_masked(PTR(const float *, a[1]), (int)a[2], PTR(const float *, a[3]), (int)a[4],
                             (int)a[5], (int)a[6], (int)a[7], float_bits(a[8]), PTR(double *, a[9]),
                             (ptrdiff_t)a[10], (ptrdiff_t)a[11], (ptrdiff_t)a[12], PTR(const float *, a[13]),
                             (ptrdiff_t)a[14], (ptrdiff_t)a[15], (ptrdiff_t)a[16],
                             PTR(const unsigned char *, a[17]), (ptrdiff_t)a[18], (ptrdiff_t)a[19],
                             (int)a[20], (int)a[21]))
                return k + 1;
            break;
        default:
            return k + 1;
        }
    }
    return 0;
}
