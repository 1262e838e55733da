/* The cell-local part of an LLG evaluation in one pass over the grid: the exchange stencil, the
 * applied field, uniaxial and cubic anisotropy, interfacial DMI, the sum with the other terms'
 * field (the demag), and the Landau-Lifshitz torque. Python wrapper and the rules for using it:
 * engine/cell_kernel.py.
 *
 * Why: on small grids (standard problem 4: 100 x 25 cells) these terms are about twenty torch
 * calls per evaluation, each a few microseconds of overhead around a few hundred nanoseconds of
 * arithmetic; here they are one call. DMI, which torch.compile does not fuse, on every grid.
 *
 * The formulas are those of the torch terms (engine/exchange.py, zeeman.py, anisotropy.py,
 * dmi.py, llg.py), summed in the same order: exchange bonds x+, x-, y+, y-, z+, z-; the other
 * terms (the demag); the applied field; uniaxial, then cubic anisotropy; DMI. Built without
 * floating-point contraction; torch fuses some multiply-adds (addcmul), so the two agree to
 * rounding, not bit for bit.
 *
 * One argument, a table of int64 fields (R_*); the applied field's three components are stored
 * as the bits of doubles. Arrays: m, the fields and the torque are (3, nz, ny, nx) contiguous;
 * the per-cell ones (nz, ny, nx); the mask bytes (0 or 1). A zero address means "absent".
 */
#ifndef CELLS_BODY
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <pthread.h>

enum {
    R_DTYPE,        /* 0: double, 1: float */
    R_NZ, R_NY, R_NX,
    R_M,            /* m (read) */
    R_HIN,          /* the other terms' field (read), or 0 */
    R_HOUT,         /* where to write the effective field, or 0 */
    R_OUT,          /* where to write dm/dt, or 0 */
    R_CXP, R_CXM, R_CYP, R_CYM, R_CZP, R_CZM,   /* exchange: A/m per unit difference of m, per bond */
    R_MASK,         /* uint8 magnet mask (the applied field, DMI's neighbours) */
    R_HAPP,         /* 1 where an applied field is added */
    R_HX, R_HY, R_HZ,   /* the applied field in A/m, as double bits */
    R_KU,           /* 2 Ku / (mu0 Ms) per cell, or 0 */
    R_KUAXIS,       /* the easy axis (3, nz, ny, nx) */
    R_PREF,         /* -gamma / (1 + alpha^2) per cell */
    R_PREF_ALPHA,   /* that times alpha */
    R_PRECESSION,   /* 1: full torque; 0: the damping term only */
    R_DMI,          /* interfacial DMI: 2 D / (mu0 Ms) per cell (0 outside the magnet), or 0 */
    R_DMI_EX,       /* 2 A / (mu0 Ms) per cell: the exchange's share of the DMI boundary condition */
    R_DMI_D2A,      /* D / (2 A) per cell (1/m) */
    R_DX, R_DY,     /* the cell size in x and y (m), as double bits */
    R_KC,           /* cubic anisotropy: -2 Kc1 / (mu0 Ms) per cell, or 0 */
    R_KC_AXIS1, R_KC_AXIS2, R_KC_AXIS3,   /* its three crystal axes, each (3, nz, ny, nx) */
    R_THREADS,      /* threads sharing the rows (1: this thread alone; at most MAX_THREADS) */
    R_FIELDS
};

int nm_cells_fields(void) { return R_FIELDS; }

/* The Runge-Kutta arithmetic of a step (engine/solvers.py), one call each: a table of int64:
 * S_DTYPE, S_N (values per array: 3 x cells), S_OP, S_OUT, S_M (or 0), S_MASK, S_COUNT, then
 * S_COUNT coefficients (double bits) and S_COUNT addresses of arrays k_j.
 *   OP_SUM:       out = m + sum_j h_j k_j (m 0: h_0 k_0 + ...), summed in order
 *   OP_MAX_NORM:  *(double *)out = max over cells of |sum_j h_j k_j| (arrays (3, cells))
 *   OP_NORMALIZE: out = m * (mask / max(|m|, 1e-30)) per cell (mask bytes, cells) */
enum { S_DTYPE, S_N, S_OP, S_OUT, S_M, S_MASK, S_COUNT, S_TERMS, S_MAX_TERMS = 8 };
enum { OP_SUM = 1, OP_MAX_NORM = 2, OP_NORMALIZE = 3 };
int nm_stage_fields(void) { return S_TERMS + 2 * S_MAX_TERMS; }

#define NOINLINE __attribute__((noinline))
#define PTR(type, field) ((type *)(intptr_t)r[field])

#define CELLS_BODY
#define real double
#define SQRT sqrt
#define FN(x) x##_f64
#include "cells.c"   /* this file again, from its own folder: the body below */
#undef real
#undef SQRT
#undef FN
#define real float
#define SQRT sqrtf
#define FN(x) x##_f32
#include "cells.c"   /* this file again, from its own folder: the body below */
#undef real
#undef SQRT
#undef FN

int nm_stage(const int64_t *r)
{
    if (r[S_COUNT] < 0 || r[S_COUNT] > S_MAX_TERMS)
        return 2;
    if (r[S_DTYPE] == 0)
        return stage_f64(r);
    if (r[S_DTYPE] == 1)
        return stage_f32(r);
    return 1;
}

/* Rows (z, y) row0 .. row1 - 1 of a cells pass: one thread's share. Each cell's arithmetic is
 * the same whoever computes it, so any split gives the same bits. */
typedef struct { const int64_t *r; ptrdiff_t row0, row1; } rows_t;
enum { MAX_THREADS = 64 };

static void *cells_rows(void *arg)
{
    const rows_t *j = arg;
    if (j->r[R_DTYPE] == 0)
        cells_f64(j->r, j->row0, j->row1);
    else
        cells_f32(j->r, j->row0, j->row1);
    return NULL;
}

int nm_cells(const int64_t *r)
{
    if (r[R_DTYPE] != 0 && r[R_DTYPE] != 1)
        return 1;
    const ptrdiff_t rows = (ptrdiff_t)r[R_NZ] * r[R_NY];
    ptrdiff_t t = r[R_THREADS] < 1 ? 1 : r[R_THREADS] > MAX_THREADS ? MAX_THREADS : r[R_THREADS];
    if (t > rows)
        t = rows > 0 ? rows : 1;
    rows_t jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    for (ptrdiff_t i = 0; i < t; i++) {
        jobs[i].r = r;
        jobs[i].row0 = rows * i / t;
        jobs[i].row1 = rows * (i + 1) / t;
    }
    for (ptrdiff_t i = 1; i < t; i++)
        started[i] = pthread_create(&ids[i], NULL, cells_rows, &jobs[i]) == 0;
    cells_rows(&jobs[0]);
    for (ptrdiff_t i = 1; i < t; i++) {
        if (started[i])
            pthread_join(ids[i], NULL);
        else   /* no thread to be had: this one does that share too */
            cells_rows(&jobs[i]);
    }
    return 0;
}

#else   /* the body, once per floating-point type */

/* nm_stage's work for one type (see the table above) */
static int FN(stage)(const int64_t *r)
{
    const ptrdiff_t n = r[S_N], count = r[S_COUNT];
    const real *restrict m = PTR(const real, S_M);
    double h[S_MAX_TERMS];
    const real *restrict k[S_MAX_TERMS];
    memcpy(h, &r[S_TERMS], (size_t)count * sizeof(double));
    for (ptrdiff_t j = 0; j < count; j++)
        k[j] = (const real *)(intptr_t)r[S_TERMS + count + j];
    if (r[S_OP] == OP_SUM) {   /* in chunks: the sum stays in the L1 cache, each array read once */
        enum { CH = 512 };
        real *restrict out = PTR(real, S_OUT);
        real acc[CH];
        for (ptrdiff_t i0 = 0; i0 < n; i0 += CH) {
            const ptrdiff_t w = n - i0 < CH ? n - i0 : CH;
            ptrdiff_t j = 0;
            if (m)
                for (ptrdiff_t i = 0; i < w; i++)
                    acc[i] = m[i0 + i];
            else if (count > 0) {
                const real c = (real)h[0];
                const real *restrict k0 = k[0] + i0;
                for (ptrdiff_t i = 0; i < w; i++)
                    acc[i] = k0[i] * c;
                j = 1;
            }
            for (; j < count; j++) {
                const real c = (real)h[j];
                const real *restrict kj = k[j] + i0;
                for (ptrdiff_t i = 0; i < w; i++)
                    acc[i] += c * kj[i];
            }
            for (ptrdiff_t i = 0; i < w; i++)
                out[i0 + i] = acc[i];
        }
        return 0;
    }
    if (r[S_OP] == OP_MAX_NORM) {   /* in chunks of cells, the sum on the stack */
        enum { CH = 512 };
        const ptrdiff_t cells = n / 3;
        real e[3][CH];
        real best = 0;
        int nan = 0;
        for (ptrdiff_t i0 = 0; i0 < cells; i0 += CH) {
            const ptrdiff_t w = cells - i0 < CH ? cells - i0 : CH;
            for (int a = 0; a < 3; a++) {
                const real c0 = (real)h[0];
                const real *restrict k0 = k[0] + a * cells + i0;
                for (ptrdiff_t i = 0; i < w; i++)
                    e[a][i] = k0[i] * c0;
                for (ptrdiff_t j = 1; j < count; j++) {
                    const real c = (real)h[j];
                    const real *restrict kj = k[j] + a * cells + i0;
                    for (ptrdiff_t i = 0; i < w; i++)
                        e[a][i] += c * kj[i];
                }
            }
            for (ptrdiff_t i = 0; i < w; i++) {
                const real l = SQRT(e[0][i] * e[0][i] + e[1][i] * e[1][i] + e[2][i] * e[2][i]);
                nan |= l != l;
                best = l > best ? l : best;
            }
        }
        const double result = nan ? NAN : (double)best;   /* a NaN anywhere: NaN, as torch's max */
        memcpy(PTR(double, S_OUT), &result, sizeof result);
        return 0;
    }
    if (r[S_OP] == OP_NORMALIZE) {
        const ptrdiff_t cells = n / 3;
        const uint8_t *restrict mask = PTR(const uint8_t, S_MASK);
        real *restrict out = PTR(real, S_OUT);
        for (ptrdiff_t i = 0; i < cells; i++) {
            const real x = m[i], y = m[cells + i], z = m[2 * cells + i];
            real l = SQRT(x * x + y * y + z * z);
            l = l < (real)1e-30 ? (real)1e-30 : l;   /* clamp_min: a NaN length stays NaN */
            const real s = (real)mask[i] / l;
            out[i] = x * s;
            out[cells + i] = y * s;
            out[2 * cells + i] = z * s;
        }
        return 0;
    }
    return 3;
}

/* One bond direction over cells [from, to) of a chunk: h += c (m_neighbour - m), the neighbour
 * `step` cells away. Separate functions, so that the compiler vectorises each loop. */
static NOINLINE void FN(bond)(const real *restrict c, const real *restrict m0, const real *restrict m1,
                              const real *restrict m2, real *restrict hx, real *restrict hy, real *restrict hz,
                              ptrdiff_t from, ptrdiff_t to, ptrdiff_t step)
{
    for (ptrdiff_t k = from; k < to; k++) {
        const real q = c[k];
        hx[k] += q * (m0[k + step] - m0[k]);
        hy[k] += q * (m1[k + step] - m1[k]);
        hz[k] += q * (m2[k + step] - m2[k]);
    }
}

/* dm/dt = pa m x (m x h) + pref m x h over a chunk (pref NULL: the damping term only) */
static NOINLINE void FN(torque)(const real *restrict m0, const real *restrict m1, const real *restrict m2,
                                const real *restrict hx, const real *restrict hy, const real *restrict hz,
                                const real *restrict pa, const real *restrict pref, real *restrict o0,
                                real *restrict o1, real *restrict o2, ptrdiff_t w)
{
    for (ptrdiff_t k = 0; k < w; k++) {
        const real mx = m0[k], my = m1[k], mz = m2[k];
        const real cx = my * hz[k] - mz * hy[k], cy = mz * hx[k] - mx * hz[k], cz = mx * hy[k] - my * hx[k];
        const real p = pa[k];
        o0[k] = p * (my * cz - mz * cy);
        o1[k] = p * (mz * cx - mx * cz);
        o2[k] = p * (mx * cy - my * cx);
    }
    if (pref)
        for (ptrdiff_t k = 0; k < w; k++) {
            const real mx = m0[k], my = m1[k], mz = m2[k];
            const real q = pref[k];
            o0[k] += q * (my * hz[k] - mz * hy[k]);
            o1[k] += q * (mz * hx[k] - mx * hz[k]);
            o2[k] += q * (mx * hy[k] - my * hx[k]);
        }
}

/* Interfacial DMI (engine/dmi.py) of the cells [0, w) of the row chunk starting at cell i0 (x0
 * its first x): central differences of m in x and y, where a neighbour is missing (edge of the
 * grid or vacuum) the boundary condition's ghost m + d D/(2A) (z x n) x m, which also adds the
 * exchange's boundary term 2A/(mu0 Ms) (ghost - m)/d^2. Summed as the torch term sums it. */
static void FN(dmi)(const real *restrict m0, const real *restrict m1, const real *restrict m2,
                    const uint8_t *restrict mask, const real *restrict pref, const real *restrict ex,
                    const real *restrict d2a, ptrdiff_t i0, ptrdiff_t x0, ptrdiff_t w, ptrdiff_t y,
                    ptrdiff_t nx, ptrdiff_t ny, double dx, double dy,
                    real *restrict hx, real *restrict hy, real *restrict hz)
{
    for (ptrdiff_t k = 0; k < w; k++) {
        const ptrdiff_t i = i0 + k, x = x0 + k;
        if (!mask[i])
            continue;   /* times the mask: nothing outside the magnet */
        const real mx = m0[i], my = m1[i], mz = m2[i];
        real h0 = 0, h1 = 0, h2 = 0, b0 = 0, b1 = 0, b2 = 0;
        for (int axis = 0; axis < 2; axis++) {
            if ((axis == 0 ? nx : ny) == 1)
                continue;
            const double d = axis == 0 ? dx : dy;
            const ptrdiff_t step = axis == 0 ? 1 : nx;
            const int has_p = axis == 0 ? x + 1 < nx && mask[i + 1] : y + 1 < ny && mask[i + nx];
            const int has_m = axis == 0 ? x > 0 && mask[i - 1] : y > 0 && mask[i - nx];
            const real dd = (real)d * d2a[i];
            real gp[3], gm[3], p[3], q[3];
            for (int s = 0; s < 2; s++) {   /* the ghosts for the outward normals +axis and -axis */
                const real sign = s == 0 ? 1 : -1;
                /* z x n for n = (sign, 0) or (0, sign): (0, sign, 0) or (-sign, 0, 0) */
                const real a0 = axis == 0 ? 0 : -sign, a1 = axis == 0 ? sign : 0, a2 = 0;
                const real c0 = a1 * mz - a2 * my, c1 = a2 * mx - a0 * mz, c2 = a0 * my - a1 * mx;
                real *g = s == 0 ? gp : gm;
                g[0] = mx + dd * c0;
                g[1] = my + dd * c1;
                g[2] = mz + dd * c2;
            }
            p[0] = has_p ? m0[i + step] : gp[0];
            p[1] = has_p ? m1[i + step] : gp[1];
            p[2] = has_p ? m2[i + step] : gp[2];
            q[0] = has_m ? m0[i - step] : gm[0];
            q[1] = has_m ? m1[i - step] : gm[1];
            q[2] = has_m ? m2[i - step] : gm[2];
            const real twod = (real)(2 * d), dsq = (real)(d * d);
            const real der_comp = (p[axis] - q[axis]) / twod, der_z = (p[2] - q[2]) / twod;
            h2 -= der_comp;
            if (axis == 0)
                h0 += der_z;
            else
                h1 += der_z;
            const real m_[3] = {mx, my, mz};
            real bp[3], bm[3];
            for (int c = 0; c < 3; c++) {
                bp[c] = has_p ? 0 : gp[c] - m_[c];
                bm[c] = has_m ? 0 : gm[c] - m_[c];
            }
            b0 += bp[0] / dsq;
            b1 += bp[1] / dsq;
            b2 += bp[2] / dsq;
            b0 += bm[0] / dsq;
            b1 += bm[1] / dsq;
            b2 += bm[2] / dsq;
        }
        hx[k] += pref[i] * h0 + ex[i] * b0;
        hy[k] += pref[i] * h1 + ex[i] * b1;
        hz[k] += pref[i] * h2 + ex[i] * b2;
    }
}

static void FN(cells)(const int64_t *r, ptrdiff_t row0, ptrdiff_t row1)
{
    enum { CH = 256 };   /* cells of a row done together: the field of a chunk stays on the stack */
    const ptrdiff_t nz = r[R_NZ], ny = r[R_NY], nx = r[R_NX];
    const ptrdiff_t sy = nx, sz = nx * ny, n = nx * ny * nz;
    /* no array overlaps another (the caller's new outputs): restrict lets the loops vectorise */
    const real *restrict m = PTR(const real, R_M);
    const real *restrict hin = PTR(const real, R_HIN);
    real *restrict hout = PTR(real, R_HOUT);
    real *restrict out = PTR(real, R_OUT);
    const real *restrict cxp = PTR(const real, R_CXP), *restrict cxm = PTR(const real, R_CXM);
    const real *restrict cyp = PTR(const real, R_CYP), *restrict cym = PTR(const real, R_CYM);
    const real *restrict czp = PTR(const real, R_CZP), *restrict czm = PTR(const real, R_CZM);
    const uint8_t *restrict mask = PTR(const uint8_t, R_MASK);
    const int happ = r[R_HAPP] != 0 && mask != NULL;
    double hd[3];
    memcpy(hd, &r[R_HX], sizeof hd);
    const real hax = (real)hd[0], hay = (real)hd[1], haz = (real)hd[2];
    const real *restrict ku = PTR(const real, R_KU), *restrict ua = PTR(const real, R_KUAXIS);
    const real *restrict pref = PTR(const real, R_PREF), *restrict pa = PTR(const real, R_PREF_ALPHA);
    const int precession = r[R_PRECESSION] != 0;
    const real *restrict dmi = PTR(const real, R_DMI), *restrict dmi_ex = PTR(const real, R_DMI_EX);
    const real *restrict dmi_d2a = PTR(const real, R_DMI_D2A);
    double dxy[2];
    memcpy(dxy, &r[R_DX], sizeof dxy);
    const real *restrict kc = PTR(const real, R_KC), *restrict c1 = PTR(const real, R_KC_AXIS1);
    const real *restrict c2 = PTR(const real, R_KC_AXIS2), *restrict c3 = PTR(const real, R_KC_AXIS3);
    const real *restrict m0 = m, *restrict m1 = m + n, *restrict m2 = m + 2 * n;
    real hx[CH], hy[CH], hz[CH];

    for (ptrdiff_t row = row0; row < row1; row++) {
        const ptrdiff_t z = row / ny, y = row % ny;
        for (ptrdiff_t x0 = 0; x0 < nx; x0 += CH) {
            const ptrdiff_t w = nx - x0 < CH ? nx - x0 : CH, i0 = z * sz + y * sy + x0;
            for (ptrdiff_t k = 0; k < w; k++)
                hx[k] = hy[k] = hz[k] = 0;
            /* each term is one pass over the chunk, in the torch terms' order */
            if (cxp)
                FN(bond)(cxp + i0, m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, 0, x0 + w < nx ? w : w - 1, 1);
            if (cxm)
                FN(bond)(cxm + i0, m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, x0 == 0 ? 1 : 0, w, -1);
            if (cyp && y + 1 < ny)
                FN(bond)(cyp + i0, m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, 0, w, sy);
            if (cym && y > 0)
                FN(bond)(cym + i0, m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, 0, w, -sy);
            if (czp && z + 1 < nz)
                FN(bond)(czp + i0, m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, 0, w, sz);
            if (czm && z > 0)
                FN(bond)(czm + i0, m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, 0, w, -sz);
            if (hin)
                for (ptrdiff_t k = 0; k < w; k++) {
                    const ptrdiff_t i = i0 + k;
                    hx[k] += hin[i];
                    hy[k] += hin[n + i];
                    hz[k] += hin[2 * n + i];
                }
            if (happ)   /* the applied field times the mask (0 or 1), as torch forms it */
                for (ptrdiff_t k = 0; k < w; k++) {
                    const real on = (real)mask[i0 + k];
                    hx[k] += hax * on;
                    hy[k] += hay * on;
                    hz[k] += haz * on;
                }
            if (ku)
                for (ptrdiff_t k = 0; k < w; k++) {
                    const ptrdiff_t i = i0 + k;
                    const real ux = ua[i], uy = ua[n + i], uz = ua[2 * n + i];
                    const real q = ku[i] * (m0[i] * ux + m1[i] * uy + m2[i] * uz);
                    hx[k] += q * ux;
                    hy[k] += q * uy;
                    hz[k] += q * uz;
                }
            if (kc)   /* H = kc sum_i a_i (a_j^2 + a_k^2) c_i, a_i = m.c_i */
                for (ptrdiff_t k = 0; k < w; k++) {
                    const ptrdiff_t i = i0 + k;
                    const real mx = m0[i], my = m1[i], mz = m2[i];
                    const real a1 = mx * c1[i] + my * c1[n + i] + mz * c1[2 * n + i];
                    const real a2 = mx * c2[i] + my * c2[n + i] + mz * c2[2 * n + i];
                    const real a3 = mx * c3[i] + my * c3[n + i] + mz * c3[2 * n + i];
                    const real t1 = a1 * (a2 * a2 + a3 * a3), t2 = a2 * (a1 * a1 + a3 * a3),
                               t3 = a3 * (a1 * a1 + a2 * a2);
                    hx[k] += kc[i] * (t1 * c1[i] + t2 * c2[i] + t3 * c3[i]);
                    hy[k] += kc[i] * (t1 * c1[n + i] + t2 * c2[n + i] + t3 * c3[n + i]);
                    hz[k] += kc[i] * (t1 * c1[2 * n + i] + t2 * c2[2 * n + i] + t3 * c3[2 * n + i]);
                }
            if (dmi && mask)
                FN(dmi)(m0, m1, m2, mask, dmi, dmi_ex, dmi_d2a, i0, x0, w, y, nx, ny, dxy[0], dxy[1],
                        hx, hy, hz);
            if (hout)
                for (ptrdiff_t k = 0; k < w; k++) {
                    const ptrdiff_t i = i0 + k;
                    hout[i] = hx[k];
                    hout[n + i] = hy[k];
                    hout[2 * n + i] = hz[k];
                }
            if (out)
                FN(torque)(m0 + i0, m1 + i0, m2 + i0, hx, hy, hz, pa + i0, precession ? pref + i0 : NULL,
                           out + i0, out + n + i0, out + 2 * n + i0, w);
        }
    }
}

#endif
