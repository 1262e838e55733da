/* The exact demag's spectrum multiply for a film (one layer), in one pass: H^ = -N^ M^ in place.
 *
 * X: the spectrum of (Mx, My, Mz), three contiguous blocks of n complex numbers (real and
 * imaginary parts interleaved, as C99 and torch store them); kxx, kxy, kyy, kzz: the real
 * kernel spectra (n each, -N^ with the pipeline's scale folded in). The same arithmetic as
 * engine.demag.FFTDemag._multiply's torch passes (Hx = kxx Mx + kxy My, Hy = kxy Mx + kyy My,
 * Hz = kzz Mz), which read and write the spectrum six times.
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
