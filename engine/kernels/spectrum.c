/* The exact demag's spectrum multiply in one pass: H^ = -N^ M^ in place.
 *
 * X: the spectrum of (Mx, My, Mz), three contiguous blocks of n complex numbers (real and
 * imaginary parts interleaved, as C99 and torch store them); kxx, kxy, ...: the real kernel
 * spectra (n each, -N^ with the pipeline's scale folded in). The same arithmetic as
 * engine.demag.FFTDemag._multiply's torch passes, which read and write the spectrum six times
 * (a film: Hx = kxx Mx + kxy My, Hy = kxy Mx + kyy My, Hz = kzz Mz) or eleven (layers: the full
 * symmetric 3 x 3 tensor, kxz and kyz included).
 */
#include <stddef.h>

#define FILM_MULTIPLY(NAME, T)                                                                   \
    void NAME(T *X, const T *kxx, const T *kxy, const T *kyy, const T *kzz, ptrdiff_t n) {       \
        T *x = X, *y = X + 2 * n, *z = X + 4 * n;                                                \
        for (ptrdiff_t i = 0; i < n; i++) {                                                      \
            const T a = kxx[i], b = kxy[i], c = kyy[i], d = kzz[i];                              \
            const T xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];          \
            x[2 * i] = a * xr + b * yr;                                                          \
            x[2 * i + 1] = a * xi + b * yi;                                                      \
            y[2 * i] = b * xr + c * yr;                                                          \
            y[2 * i + 1] = b * xi + c * yi;                                                      \
            z[2 * i] *= d;                                                                       \
            z[2 * i + 1] *= d;                                                                   \
        }                                                                                        \
    }

FILM_MULTIPLY(nm_film_multiply_f32, float)
FILM_MULTIPLY(nm_film_multiply_f64, double)

#define LAYERED_MULTIPLY(NAME, T)                                                                \
    void NAME(T *X, const T *kxx, const T *kxy, const T *kxz, const T *kyy, const T *kyz,        \
              const T *kzz, ptrdiff_t n) {                                                       \
        T *x = X, *y = X + 2 * n, *z = X + 4 * n;                                                \
        for (ptrdiff_t i = 0; i < 2 * n; i += 2) {                                               \
            const ptrdiff_t k = i / 2;                                                           \
            const T a = kxx[k], b = kxy[k], c = kxz[k], d = kyy[k], e = kyz[k], f = kzz[k];      \
            const T xr = x[i], xi = x[i + 1], yr = y[i], yi = y[i + 1], zr = z[i], zi = z[i + 1]; \
            x[i] = a * xr + b * yr + c * zr;                                                     \
            x[i + 1] = a * xi + b * yi + c * zi;                                                 \
            y[i] = b * xr + d * yr + e * zr;                                                     \
            y[i + 1] = b * xi + d * yi + e * zi;                                                 \
            z[i] = c * xr + e * yr + f * zr;                                                     \
            z[i + 1] = c * xi + e * yi + f * zi;                                                 \
        }                                                                                        \
    }

LAYERED_MULTIPLY(nm_layered_multiply_f32, float)
LAYERED_MULTIPLY(nm_layered_multiply_f64, double)
