"""Demagnetizing tensor (engine.demag_kernel) and FFT demag field (engine.demag), checked against
OOMMF's tabulated values, the tensor's symmetries, Aharoni's analytic prism factors and a
brute-force direct sum. Sign convention: H_d = -N * M (OOMMF's)."""
import itertools
import os
import platform
import subprocess
import sys
import math

import numpy as np
import pytest
import torch

from engine.demag import FFTDemag
from engine.demag_kernel import (NEAR_CELLS, PARITY, demag_tensor_quadrant, far_field_tensor,
                                 newell_f, newell_g)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- helpers
# Newell's 27-point combination written out independently of the engine's block code:
# weight of an offset with k non-zero entries is (-1)^k 2^(3-k) (+8, -4, +2, -1).
_OFFSETS = [(i, j, k, (-1) ** (abs(i) + abs(j) + abs(k)) * 2 ** (3 - abs(i) - abs(j) - abs(k)))
            for i, j, k in itertools.product((-1, 0, 1), repeat=3)]


def newell_tensor(X, Y, Z, d):
    """The full 3x3 tensor N at the signed offset (X, Y, Z) between cells of size d (scalars)."""
    dx, dy, dz = d
    comp = {c: 0.0 for c in ("xx", "xy", "xz", "yy", "yz", "zz")}
    for i, j, k, w in _OFFSETS:
        x, y, z = X + i * dx, Y + j * dy, Z + k * dz
        comp["xx"] += w * newell_f(x, y, z)
        comp["yy"] += w * newell_f(y, z, x)
        comp["zz"] += w * newell_f(z, x, y)
        comp["xy"] += w * newell_g(x, y, z)
        comp["xz"] += w * newell_g(x, z, y)
        comp["yz"] += w * newell_g(y, z, x)
    s = 1.0 / (4 * math.pi * dx * dy * dz)
    c = {k: float(v) * s for k, v in comp.items()}
    return np.array([[c["xx"], c["xy"], c["xz"]],
                     [c["xy"], c["yy"], c["yz"]],
                     [c["xz"], c["yz"], c["zz"]]])


def aharoni_Dz(a, b, c):
    """Aharoni (J. Appl. Phys. 83, 3432, 1998), eq. (1): the demagnetizing factor along the edge
    2c of a rectangular prism with edges 2a, 2b, 2c (only the ratios matter)."""
    r = math.sqrt(a * a + b * b + c * c)
    ab, bc, ac = math.hypot(a, b), math.hypot(b, c), math.hypot(a, c)
    t = ((b * b - c * c) / (2 * b * c) * math.log((r - a) / (r + a))
         + (a * a - c * c) / (2 * a * c) * math.log((r - b) / (r + b))
         + b / (2 * c) * math.log((ab + a) / (ab - a))
         + a / (2 * c) * math.log((ab + b) / (ab - b))
         + c / (2 * a) * math.log((bc - b) / (bc + b))
         + c / (2 * b) * math.log((ac - a) / (ac + a))
         + 2 * math.atan(a * b / (c * r))
         + (a ** 3 + b ** 3 - 2 * c ** 3) / (3 * a * b * c)
         + (a * a + b * b - 2 * c * c) / (3 * a * b * c) * r
         + c / (a * b) * (ac + bc)
         - (ab ** 3 + bc ** 3 + ac ** 3) / (3 * a * b * c))
    return t / math.pi


def aharoni_factors(lx, ly, lz):
    """(Nx, Ny, Nz) of a prism with edges lx, ly, lz."""
    return (aharoni_Dz(ly, lz, lx), aharoni_Dz(lz, lx, ly), aharoni_Dz(lx, ly, lz))


class _Uniform:
    """The least a Demag needs from a state: Ms, m, mask."""

    def __init__(self, m, mask, Ms=1.0):
        self.m, self.mask, self.Ms = m, mask, Ms


# ----------------------------------------------------------------------------- check values
def test_self_term_of_a_cube_is_one_third():
    q = demag_tensor_quadrant((1, 1, 1), (1.0, 1.0, 1.0))
    for c in ("xx", "yy", "zz"):
        assert q[c][0, 0, 0] == pytest.approx(1 / 3, abs=1e-14)
    for c in ("xy", "xz", "yz"):
        assert abs(q[c][0, 0, 0]) < 1e-15


def test_self_term_Nxx_of_a_1x1x2_cell_matches_oommf():
    q = demag_tensor_quadrant((1, 1, 1), (1.0, 1.0, 2.0))
    assert q["xx"][0, 0, 0] == pytest.approx(0.4008419236, abs=1e-10)
    assert q["yy"][0, 0, 0] == pytest.approx(0.4008419236, abs=1e-10)


def test_Nxy_at_offset_111_of_unit_cubes_matches_oommf():
    q = demag_tensor_quadrant((2, 2, 2), (1.0, 1.0, 1.0))
    assert q["xy"][1, 1, 1] == pytest.approx(-0.0160621278, abs=1e-10)
    assert q["xz"][1, 1, 1] == pytest.approx(-0.0160621278, abs=1e-10)
    assert q["yz"][1, 1, 1] == pytest.approx(-0.0160621278, abs=1e-10)
    # the independent 27-point sum gives the same
    assert newell_tensor(1.0, 1.0, 1.0, (1.0, 1.0, 1.0))[0, 1] == pytest.approx(-0.0160621278, abs=1e-10)


def test_check_values_do_not_depend_on_the_length_unit():
    q = demag_tensor_quadrant((2, 2, 2), (5e-9, 5e-9, 10e-9))
    assert q["xx"][0, 0, 0] == pytest.approx(0.4008419236, abs=1e-10)


@pytest.mark.parametrize("d", [(1.0, 1.0, 1.0), (1.0, 1.0, 2.0), (5.0, 5.0, 3.0), (1.0, 3.0, 0.2), (2.5, 1.0, 7.0)])
def test_sum_rule_trace_is_one_at_zero_offset(d):
    q = demag_tensor_quadrant((1, 1, 1), d)
    assert q["xx"][0, 0, 0] + q["yy"][0, 0, 0] + q["zz"][0, 0, 0] == pytest.approx(1.0, abs=1e-12)


def test_trace_vanishes_away_from_the_cell():
    """Outside the source cell the field is a potential field: tr N = 0 (div H = 0 there)."""
    q = demag_tensor_quadrant((6, 5, 4), (5.0, 5.0, 3.0))
    tr = q["xx"] + q["yy"] + q["zz"]
    tr[0, 0, 0] = 0.0
    assert np.abs(tr).max() < 1e-12


# ----------------------------------------------------------------------------- symmetries
@pytest.mark.parametrize("offset", [(2.0, 1.0, 0.0), (1.0, 3.0, 2.0), (4.0, 0.0, 1.0)])
def test_off_diagonal_parities(offset):
    """Nxy is odd in x and y and even in z; Nxz odd in x, z; Nyz odd in y, z; diagonals even."""
    d = (1.0, 1.5, 0.7)
    X, Y, Z = offset[0] * d[0], offset[1] * d[1], offset[2] * d[2]
    N = newell_tensor(X, Y, Z, d)
    idx = {"x": 0, "y": 1, "z": 2}
    for c, par in PARITY.items():
        i, j = idx[c[0]], idx[c[1]]
        for axis, p in enumerate(par):
            flip = [X, Y, Z]
            flip[axis] = -flip[axis]
            Nf = newell_tensor(*flip, d)
            # equal up to the rounding of the 27-term sums
            assert Nf[i, j] == pytest.approx(p * N[i, j], abs=1e-10 * np.abs(N).max()), (c, axis)


def test_tensor_is_invariant_under_exchanging_equal_axes():
    """For cubic cells, Nyy at (a, b, c) equals Nxx at (b, a, c), and Nxz(a, b, c) = Nxy(a, c, b)."""
    d = (1.0, 1.0, 1.0)
    N1 = newell_tensor(3.0, 1.0, 2.0, d)
    N2 = newell_tensor(1.0, 3.0, 2.0, d)
    N3 = newell_tensor(3.0, 2.0, 1.0, d)
    assert N1[1, 1] == pytest.approx(N2[0, 0], rel=1e-12)
    assert N1[0, 2] == pytest.approx(N3[0, 1], rel=1e-12)


def test_engine_quadrant_matches_the_independent_27_point_sum():
    d = (5.0, 4.0, 3.0)
    q = demag_tensor_quadrant((5, 4, 3), d)
    idx = {"x": 0, "y": 1, "z": 2}
    for iz, iy, ix in itertools.product(range(3), range(4), range(5)):
        N = newell_tensor(ix * d[0], iy * d[1], iz * d[2], d)
        for c in q:
            assert q[c][iz, iy, ix] == pytest.approx(N[idx[c[0]], idx[c[1]]], abs=1e-13)


@pytest.mark.parametrize("d", [(1.0, 1.0, 1.0), (5.0, 5.0, 3.0), (2.0, 2.0, 1.0)])
def test_near_and_far_field_agree_at_the_switch_distance(d):
    """At NEAR_CELLS cell sizes Newell's closed forms and the asymptotic expansion agree to 1e-5
    (relative to the tensor's size there), so the switch leaves no visible seam."""
    L = max(d)
    u = tuple(x / L for x in d)
    R = NEAR_CELLS
    dirs = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 1, 1), (3, 1, 2), (0.6, 0.8, 0)]
    for v in dirs:
        v = np.asarray(v, float) / np.linalg.norm(v)
        # a grid point near the switch sphere, in units of cells
        cells = np.round(v * R / np.asarray(u))
        X, Y, Z = cells * np.asarray(u)
        near = newell_tensor(X, Y, Z, u)
        far_c = far_field_tensor(np.array(X), np.array(Y), np.array(Z), u)
        far = np.array([[far_c["xx"], far_c["xy"], far_c["xz"]],
                        [far_c["xy"], far_c["yy"], far_c["yz"]],
                        [far_c["xz"], far_c["yz"], far_c["zz"]]], dtype=float)
        scale = np.abs(near).max()
        assert np.abs(near - far).max() / scale < 1e-5, (v, near, far)


# ----------------------------------------------------------------------------- Aharoni
def _average_demag_factors(n, d):
    nx, ny, nz = n
    dem = FFTDemag(n, d, torch.float64)
    mask = torch.ones((nz, ny, nx), dtype=torch.float64)
    out = []
    for axis in range(3):
        m = torch.zeros((3, nz, ny, nx), dtype=torch.float64)
        m[axis] = 1.0
        H = dem.h(_Uniform(m, mask))
        out.append(-float(H[axis].mean()))
        # the transverse field of a uniformly magnetized prism averages to zero
        assert all(abs(float(H[k].mean())) < 1e-12 for k in range(3) if k != axis)
    return np.array(out)


def test_aharoni_formula_reproduces_published_values():
    assert aharoni_factors(1, 1, 1) == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-12)
    assert aharoni_factors(500, 125, 3) == pytest.approx((0.009180, 0.038176, 0.952644), abs=1e-6)
    assert sum(aharoni_factors(7, 2, 0.5)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n,d", [
    ((10, 10, 10), (2e-9, 2e-9, 2e-9)),        # cube
    ((100, 25, 1), (5e-9, 5e-9, 3e-9)),        # thin film 500 x 125 x 3 nm (SP4)
    ((64, 6, 5), (2e-9, 2e-9, 2e-9)),          # elongated prism, several layers
], ids=["cube", "thin_film", "elongated"])
def test_average_field_of_uniform_prism_equals_aharoni_factors(n, d):
    N = _average_demag_factors(n, d)
    expect = aharoni_factors(*(k * h for k, h in zip(n, d)))
    np.testing.assert_allclose(N, expect, atol=1e-4)
    # in practice the agreement is far better than the required 1e-4
    np.testing.assert_allclose(N, expect, atol=2e-6)


def test_thin_film_factors_match_the_published_numbers():
    N = _average_demag_factors((100, 25, 1), (5e-9, 5e-9, 3e-9))
    np.testing.assert_allclose(N, (0.009180, 0.038176, 0.952644), atol=1e-5)


# ----------------------------------------------------------------------------- FFT vs direct sum
def _direct_sum(M, d):
    """H_i = -sum_j N(r_i - r_j) M_j over every pair of cells, N at signed offsets from the
    independent 27-point formula."""
    _, nz, ny, nx = M.shape
    cache = {}
    H = np.zeros_like(M)
    for tz, ty, tx in itertools.product(range(nz), range(ny), range(nx)):
        acc = np.zeros(3)
        for sz, sy, sx in itertools.product(range(nz), range(ny), range(nx)):
            off = (tx - sx, ty - sy, tz - sz)
            if off not in cache:
                cache[off] = newell_tensor(off[0] * d[0], off[1] * d[1], off[2] * d[2], d)
            acc += cache[off] @ M[:, sz, sy, sx]
        H[:, tz, ty, tx] = -acc
    return H


@pytest.mark.parametrize("n", [(7, 5, 3), (6, 5, 1), (5, 1, 3), (1, 4, 2)], ids=["7x5x3", "6x5x1", "5x1x3", "1x4x2"])
def test_fft_convolution_equals_direct_sum_on_irregular_masked_grid(n):
    nx, ny, nz = n
    d = (1.0, 1.3, 0.8)  # unequal edges, odd sizes
    rng = np.random.default_rng(1)
    m = rng.normal(size=(3, nz, ny, nx))
    m /= np.linalg.norm(m, axis=0)
    mask = rng.random((nz, ny, nx)) > 0.3
    m *= mask
    Ms = 8e5
    expect = _direct_sum(Ms * m, d) * mask
    dem = FFTDemag(n, d, torch.float64)
    H = dem.h(_Uniform(torch.tensor(m), torch.tensor(mask), Ms)).numpy()
    assert np.abs(H - expect).max() / Ms < 1e-10


def test_float32_demag_is_close_to_float64():
    n, d = (48, 32, 2), (4e-9, 4e-9, 2e-9)
    nx, ny, nz = n
    rng = np.random.default_rng(2)
    m = rng.normal(size=(3, nz, ny, nx))
    m /= np.linalg.norm(m, axis=0)
    mask = np.ones((nz, ny, nx), bool)
    Ms = 8e5
    H64 = FFTDemag(n, d, torch.float64).h(_Uniform(torch.tensor(m), torch.tensor(mask), Ms))
    H32 = FFTDemag(n, d, torch.float32).h(_Uniform(torch.tensor(m, dtype=torch.float32),
                                                   torch.tensor(mask), Ms))
    assert H32.dtype == torch.float32
    err = (H32.double() - H64).abs().max() / H64.abs().max()
    assert err < 1e-5


def test_thin_film_batch_rides_along_the_third_last_axis():
    """For nz = 1 only the last two axes are transformed: engine.neural.data stacks samples there."""
    n, d = (9, 6, 1), (2e-9, 3e-9, 1e-9)
    dem = FFTDemag(n, d, torch.float64)
    M = torch.tensor(np.random.default_rng(3).normal(size=(3, 4, 6, 9)) * 8e5)
    H = dem.h_from_M(M)
    for b in range(4):
        torch.testing.assert_close(H[:, b:b + 1], dem.h_from_M(M[:, b:b + 1].contiguous()), rtol=0, atol=1e-9)
    # the input is left untouched (the multiply works in place on the spectrum only)
    assert torch.equal(M, torch.tensor(np.random.default_rng(3).normal(size=(3, 4, 6, 9)) * 8e5))


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the heap setting is for glibc")
def test_small_grids_keep_their_fft_temporaries_in_the_heap():
    """A 64 x 64 float32 film (a 0.2 MB spectrum) already raises glibc's mmap threshold: below a
    4 MB gate a fresh process mapped every temporary afresh, and 256 x 256 float32 took 4.0 ms
    per evaluation instead of 2.5 ms. Checked in a new process (the setting is process-wide)."""
    code = ("import torch; from engine import demag; "
            "demag.FFTDemag((64, 64, 1), (1e-9,) * 3, torch.float32); print(demag._MALLOC_LIMIT)")
    env = {k: v for k, v in os.environ.items() if k != "NMAG_MALLOC_TUNING"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True)
    assert int(out.stdout.split()[-1]) >= 64 << 20
