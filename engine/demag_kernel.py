"""The demagnetizing tensor of equal cuboid cells (Newell, Williams & Dunlop 1993).

Sign convention (as OOMMF): H_d(r_i) = -sum_j N(r_i - r_j) M(r_j), so the self term of a cube
is N = diag(1/3, 1/3, 1/3). Everything is computed in float64 (numpy) and cast by the caller.

Near cells use Newell's closed forms f (for Nxx) and g (for Nxy): the sixth-order finite
difference of f or g over the 27 neighbouring offsets. Those forms cancel catastrophically far
away (relative error about eps * (r/d)^6), so beyond `NEAR_CELLS` cell sizes we use the point
dipole with its first finite-size correction: the kernel averaged over source and target cell
is K(r) + sum_i (d_i^2/12) d^2K/dr_i^2 + O((d/r)^4) (the quadrupole term vanishes for a
centrally symmetric cell). The second derivative is taken as a central difference with step
d_i, which has the same order of accuracy. At the switch (32 cells) both branches agree to
about 1e-7 relative.
"""
from __future__ import annotations

import functools

import numpy as np

NEAR_CELLS = 32


def _safe_div(a, b):
    out = np.zeros(np.broadcast(a, b).shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def newell_f(x, y, z):
    """Newell's f(x, y, z); Nxx is its sixth difference. Arguments in any length unit."""
    x, y, z = np.abs(x), np.abs(y), np.abs(z)  # f is even in each argument
    x2, y2, z2 = x * x, y * y, z * z
    R = np.sqrt(x2 + y2 + z2)
    f = (2 * x2 - y2 - z2) * R / 6.0
    f += 0.5 * y * (z2 - x2) * np.arcsinh(_safe_div(y, np.sqrt(x2 + z2)))
    f += 0.5 * z * (y2 - x2) * np.arcsinh(_safe_div(z, np.sqrt(x2 + y2)))
    f -= x * y * z * np.arctan(_safe_div(y * z, x * R))
    return f


def newell_g(x, y, z):
    """Newell's g(x, y, z); Nxy is its sixth difference. Odd in x and y, even in z."""
    sx, sy = np.sign(x), np.sign(y)
    x, y, z = np.abs(x), np.abs(y), np.abs(z)
    x2, y2, z2 = x * x, y * y, z * z
    R = np.sqrt(x2 + y2 + z2)
    g = -x * y * R / 3.0
    g += x * y * z * np.arcsinh(_safe_div(z, np.sqrt(x2 + y2)))
    g += y / 6.0 * (3 * z2 - y2) * np.arcsinh(_safe_div(x, np.sqrt(y2 + z2)))
    g += x / 6.0 * (3 * z2 - x2) * np.arcsinh(_safe_div(y, np.sqrt(x2 + z2)))
    g -= z * z2 / 6.0 * np.arctan(_safe_div(x * y, z * R))
    g -= z * y2 / 2.0 * np.arctan(_safe_div(x * z, y * R))
    g -= z * x2 / 2.0 * np.arctan(_safe_div(y * z, x * R))
    return g * sx * sy


def _second_difference(F, axis):
    """2 F(i) - F(i-1) - F(i+1) along `axis` for F sampled at i = -1 .. n (output 0 .. n-1)."""
    F = np.moveaxis(F, axis, 0)
    out = 2 * F[1:-1] - F[:-2] - F[2:]
    return np.moveaxis(out, 0, axis)


def _newell_block(nx, ny, nz, dx, dy, dz):
    """Six components (xx, xy, xz, yy, yz, zz) for offsets 0..n-1 on each axis, shape (nz, ny, nx)."""
    ix = np.arange(-1, nx + 1) * dx
    iy = np.arange(-1, ny + 1) * dy
    iz = np.arange(-1, nz + 1) * dz
    Z, Y, X = np.meshgrid(iz, iy, ix, indexing="ij")
    scale = 1.0 / (4 * np.pi * dx * dy * dz)

    def combine(F):
        return scale * _second_difference(_second_difference(_second_difference(F, 0), 1), 2)

    return {
        "xx": combine(newell_f(X, Y, Z)),
        "xy": combine(newell_g(X, Y, Z)),
        "xz": combine(newell_g(X, Z, Y)),
        "yy": combine(newell_f(Y, Z, X)),
        "yz": combine(newell_g(Y, Z, X)),
        "zz": combine(newell_f(Z, X, Y)),
    }


def dipole_tensor(X, Y, Z, volume):
    """Point-dipole demag tensor N_ij = -(V/4pi)(3 r_i r_j / r^5 - delta_ij / r^3)."""
    r2 = X * X + Y * Y + Z * Z
    r = np.sqrt(r2)
    inv5 = _safe_div(np.ones_like(r), r2 * r2 * r)
    inv3 = _safe_div(np.ones_like(r), r2 * r)
    c = -volume / (4 * np.pi)
    return {
        "xx": c * (3 * X * X * inv5 - inv3), "yy": c * (3 * Y * Y * inv5 - inv3),
        "zz": c * (3 * Z * Z * inv5 - inv3), "xy": c * 3 * X * Y * inv5,
        "xz": c * 3 * X * Z * inv5, "yz": c * 3 * Y * Z * inv5,
    }


def far_field_tensor(X, Y, Z, d):
    """Cell-averaged dipole kernel to O((d/r)^4): K + sum_i (d_i^2/12) K''_i (see module doc)."""
    dx, dy, dz = d
    V = dx * dy * dz
    base = dipole_tensor(X, Y, Z, V)
    out = {k: v.copy() for k, v in base.items()}
    for shift in ((dx, 0, 0), (0, dy, 0), (0, 0, dz)):
        plus = dipole_tensor(X + shift[0], Y + shift[1], Z + shift[2], V)
        minus = dipole_tensor(X - shift[0], Y - shift[1], Z - shift[2], V)
        for k in out:
            out[k] += (plus[k] - 2 * base[k] + minus[k]) / 12.0
    return out


@functools.lru_cache(maxsize=8)
def demag_tensor_quadrant(n: tuple, d: tuple) -> dict:
    """The six tensor components for non-negative offsets (0..nx-1, 0..ny-1, 0..nz-1), each a
    float64 array (nz, ny, nx). Cached per grid; arguments are tuples (n in cells, d in m)."""
    nx, ny, nz = n
    dx, dy, dz = d
    # Work in units of the largest cell edge: the formulas are scale-free, and O(1) numbers
    # keep the closed forms' cancellation as small as it can be.
    L = max(d)
    ux, uy, uz = dx / L, dy / L, dz / L
    iz, iy, ix = np.meshgrid(np.arange(nz) * uz, np.arange(ny) * uy, np.arange(nx) * ux, indexing="ij")
    out = far_field_tensor(ix, iy, iz, (ux, uy, uz))
    kx, ky, kz = (min(m, int(np.ceil(NEAR_CELLS / u)) + 1) for m, u in zip((nx, ny, nz), (ux, uy, uz)))
    near = _newell_block(kx, ky, kz, ux, uy, uz)
    dist = np.sqrt(ix[:kz, :ky, :kx] ** 2 + iy[:kz, :ky, :kx] ** 2 + iz[:kz, :ky, :kx] ** 2)
    use_near = dist <= NEAR_CELLS
    for k in out:
        block = out[k][:kz, :ky, :kx]
        block[use_near] = near[k][use_near]
    return out


# parity of each component in (x, y, z): +1 even, -1 odd
PARITY = {"xx": (1, 1, 1), "yy": (1, 1, 1), "zz": (1, 1, 1),
          "xy": (-1, -1, 1), "xz": (-1, 1, -1), "yz": (1, -1, -1)}


def unfold(quadrant: np.ndarray, parity: tuple, padded: tuple) -> np.ndarray:
    """Place a quadrant (nz, ny, nx) of non-negative offsets into a wrap-around array of shape
    `padded` (Pz, Py, Px), filling negative offsets by the component's parity."""
    nz, ny, nx = quadrant.shape
    Pz, Py, Px = padded
    out = np.zeros(padded)
    q = quadrant
    for sz in ((1, -1) if Pz > 1 else (1,)):
        for sy in ((1, -1) if Py > 1 else (1,)):
            for sx in ((1, -1) if Px > 1 else (1,)):
                sign = 1.0
                for s, p in zip((sx, sy, sz), (parity[0], parity[1], parity[2])):
                    if s < 0 and p < 0:
                        sign = -sign
                zi = np.arange(nz) if sz > 0 else (-np.arange(nz)) % Pz
                yi = np.arange(ny) if sy > 0 else (-np.arange(ny)) % Py
                xi = np.arange(nx) if sx > 0 else (-np.arange(nx)) % Px
                out[np.ix_(zi, yi, xi)] = sign * q
    return out
