"""Local field terms (exchange, anisotropy, Zeeman, DMI) against analytic energies, and fields
against the energies' gradients. All in float64 on small grids."""
import math

import numpy as np
import pytest
import torch

from engine import Material, Mesh, Problem, ShapeOp, Simulation, SolverSpec
from engine.anisotropy import CubicAnisotropy, UniaxialAnisotropy
from engine.constants import MU0
from engine.dmi import InterfacialDMI
from engine.exchange import Exchange
from engine.zeeman import AppliedField, Zeeman


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_sim(n, cell_nm, materials=None, region_map=None, B_mT=(0.0, 0.0, 0.0), m0=None, demag="none"):
    p = Problem(mesh=Mesh(tuple(n), tuple(cell_nm)), materials=materials or [Material()],
                solver=SolverSpec(precision="float64", demag=demag), region_map=region_map)
    p.field.B_mT = tuple(B_mT)
    return Simulation(p, m0=m0)


def cell_energy_density(state, H):
    """-(1/2) mu0 Ms m.H per cell (J/m^3): the local energy density of a term quadratic in m."""
    return (-0.5 * MU0 * state.Ms * (state.m * H).sum(0)).numpy()


def uniform(n, direction):
    nx, ny, nz = n
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    return np.broadcast_to(d[:, None, None, None], (3, nz, ny, nx)).copy()


# ----------------------------------------------------------------------------- exchange
def helix(n, cell, k, axis):
    nx, ny, nz = n
    pos = (np.arange(n[axis]) + 0.5) * cell[axis]
    phase = k * pos
    shape = [1, 1, 1]
    shape[2 - axis] = n[axis]  # (nz, ny, nx)
    phi = np.broadcast_to(phase.reshape(shape), (nz, ny, nx))
    return np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)])


@pytest.mark.parametrize("axis", [0, 1], ids=["along_x", "along_y"])
def test_helix_exchange_energy_is_exact_discrete_value_per_bond(axis):
    A = 1.3e-11
    n = [1, 1, 1]
    n[axis] = 64
    cell_nm = (1.0, 2.0, 3.0)
    cell = tuple(c * 1e-9 for c in cell_nm)
    k = 2 * math.pi / (32 * cell[axis])          # 32 cells per turn
    sim = make_sim(n, cell_nm, [Material(A=A)], m0=helix(n, cell, k, axis))
    E = sim.energies()["exchange"]
    V = cell[0] * cell[1] * cell[2]
    bonds = n[axis] - 1                          # open chain, Neumann ends
    per_bond = 2 * A * (1 - math.cos(k * cell[axis])) / cell[axis] ** 2
    assert E == pytest.approx(per_bond * V * bonds, rel=1e-12)


def test_helix_exchange_energy_tends_to_A_k_squared():
    A = 1.3e-11
    n, cell_nm = (128, 1, 1), (0.5, 1.0, 1.0)
    cell = tuple(c * 1e-9 for c in cell_nm)
    k = 2 * math.pi / 20e-9                      # 40 cells per turn
    sim = make_sim(n, cell_nm, [Material(A=A)], m0=helix(n, cell, k, 0))
    V = cell[0] * cell[1] * cell[2]
    density = sim.energies()["exchange"] / (V * (n[0] - 1))
    # the discrete value differs from A k^2 by (k dx)^2 / 12 = 2e-3 here
    assert density == pytest.approx(A * k * k, rel=3e-3)


def test_exchange_uses_harmonic_mean_of_A_across_a_region_interface():
    A1, A2 = 1.0e-11, 3.0e-11
    n, cell_nm = (8, 1, 1), (2.0, 2.0, 2.0)
    dx = 2e-9
    regions = np.zeros((1, 1, 8), np.int16)
    regions[..., 4:] = 1
    mats = [Material(name="a", A=A1), Material(name="b", A=A2)]
    # uniform on each side, a 30-degree twist across the interface bond only
    m0 = np.zeros((3, 1, 1, 8))
    m0[0, ..., :4] = 1.0
    m0[0, ..., 4:] = math.cos(math.radians(30))
    m0[1, ..., 4:] = math.sin(math.radians(30))
    sim = make_sim(n, cell_nm, mats, region_map=regions, m0=m0)
    A_h = 2 * A1 * A2 / (A1 + A2)
    V = dx ** 3
    dm2 = 2 * (1 - math.cos(math.radians(30)))
    assert sim.energies()["exchange"] == pytest.approx(V * A_h * dm2 / dx ** 2, rel=1e-12)
    H = sim.fields()["exchange"].numpy()
    Ms = 8e5
    expect3 = 2 * A_h / (MU0 * Ms * dx ** 2) * (m0[:, 0, 0, 4] - m0[:, 0, 0, 3])
    np.testing.assert_allclose(H[:, 0, 0, 3], expect3, rtol=1e-12)
    assert np.abs(H[:, 0, 0, :3]).max() == 0 and np.abs(H[:, 0, 0, 5:]).max() == 0


def test_exchange_field_is_minus_energy_gradient():
    n, cell_nm = (5, 4, 2), (2.0, 3.0, 1.5)
    rng = np.random.default_rng(3)
    sim = make_sim(n, cell_nm, [Material(A=1.3e-11)], m0=rng.normal(size=(3, 2, 4, 5)))
    _check_field_is_minus_gradient(sim, Exchange(sim.state))


# ----------------------------------------------------------------------------- anisotropy
def test_uniaxial_energy_of_tilted_uniform_state():
    Ku = 4.5e5
    axis = (1.0, 1.0, 2.0)
    n, cell_nm = (6, 5, 2), (2.0, 2.0, 1.0)
    mdir = (math.sin(0.7) * math.cos(0.3), math.sin(0.7) * math.sin(0.3), math.cos(0.7))
    sim = make_sim(n, cell_nm, [Material(Ku=Ku, Ku_axis=axis)], m0=uniform(n, mdir))
    u = np.asarray(axis) / np.linalg.norm(axis)
    V = 2e-9 * 2e-9 * 1e-9 * 60
    expect = -Ku * V * float(np.dot(mdir, u)) ** 2
    assert sim.energies()["anisotropy"] == pytest.approx(expect, rel=1e-12)
    H = sim.fields()["anisotropy"].numpy()[:, 0, 0, 0]
    np.testing.assert_allclose(H, 2 * Ku / (MU0 * 8e5) * np.dot(mdir, u) * u, rtol=1e-12)


def test_uniaxial_field_is_minus_energy_gradient():
    n = (4, 3, 1)
    rng = np.random.default_rng(4)
    sim = make_sim(n, (2.0, 2.0, 2.0), [Material(Ku=3e5, Ku_axis=(0.2, -1.0, 0.5))], m0=rng.normal(size=(3, 1, 3, 4)))
    _check_field_is_minus_gradient(sim, UniaxialAnisotropy(sim.state))


def test_cubic_energy_of_body_diagonal_and_rotated_axes():
    Kc1 = -2.0e4
    n, cell_nm = (3, 2, 1), (2.0, 2.0, 2.0)
    V = 8e-27 * 6
    sim = make_sim(n, cell_nm, [Material(Kc1=Kc1)], m0=uniform(n, (1, 1, 1)))
    assert sim.energies()["cubic_anisotropy"] == pytest.approx(Kc1 / 3 * V, rel=1e-12)
    # axes rotated 45 degrees about z: m along x is then halfway between two easy axes
    mat = Material(Kc1=Kc1, Kc_axis1=(1, 1, 0), Kc_axis2=(-1, 1, 0))
    sim = make_sim(n, cell_nm, [mat], m0=uniform(n, (1, 0, 0)))
    assert sim.energies()["cubic_anisotropy"] == pytest.approx(Kc1 / 4 * V, rel=1e-12)
    sim = make_sim(n, cell_nm, [mat], m0=uniform(n, (1, 1, 0)))
    assert abs(sim.energies()["cubic_anisotropy"]) < 1e-12 * abs(Kc1) * V


def test_cubic_field_is_minus_energy_gradient():
    n = (4, 3, 1)
    rng = np.random.default_rng(5)
    mat = Material(Kc1=5e4, Kc_axis1=(1.0, 0.3, 0.0), Kc_axis2=(-0.3, 1.0, 0.4))
    sim = make_sim(n, (2.0, 2.0, 2.0), [mat], m0=rng.normal(size=(3, 1, 3, 4)))
    _check_field_is_minus_gradient(sim, CubicAnisotropy(sim.state))


def _check_field_is_minus_gradient(sim, term, eps=1e-6):
    """H_c(i) = -(1/(mu0 Ms V)) dE/dm_c(i), by central differences on m (not renormalised)."""
    st = sim.state
    H = term.h(st).numpy()
    V = st.cell_volume
    Ms = st.Ms.numpy()
    m0 = st.m.clone()
    nz, ny, nx = st.shape
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(12):
        c, z, y, x = rng.integers(3), rng.integers(nz), rng.integers(ny), rng.integers(nx)
        Es = []
        for sgn in (1, -1):
            m = m0.clone()
            m[c, z, y, x] += sgn * eps
            st.m = m
            Es.append(term.energy(st))
        st.m = m0
        grad = (Es[0] - Es[1]) / (2 * eps)
        expect = -grad / (MU0 * Ms[z, y, x] * V)
        scale = np.abs(H).max()
        assert H[c, z, y, x] == pytest.approx(expect, abs=1e-6 * scale)
        checked += 1
    assert checked == 12


# ----------------------------------------------------------------------------- Zeeman
def test_zeeman_energy_is_minus_mu0_Ms_V_m_dot_H():
    n, cell_nm = (4, 4, 1), (5.0, 5.0, 3.0)
    B = (10.0, -20.0, 5.0)
    mdir = np.array([0.3, 0.4, -0.2])
    sim = make_sim(n, cell_nm, [Material(Ms=6e5)], B_mT=B, m0=uniform(n, mdir))
    H = np.asarray(B) * 1e-3 / MU0
    V = 75e-27 * 16
    expect = -MU0 * 6e5 * V * float(mdir @ H) / np.linalg.norm(mdir)
    assert sim.energies()["zeeman"] == pytest.approx(expect, rel=1e-12)


def test_zeeman_time_dependence_sine_pulse_ramp():
    B0 = np.array([1.0, 2.0, 3.0])
    sine = AppliedField(B0, {"kind": "sine", "amplitude_mT": [10.0, 0, 0], "frequency_GHz": 2.0, "phase_deg": 30.0})
    t = 0.1e-9
    np.testing.assert_allclose(sine.B_mT(t), B0 + [10 * math.sin(2 * math.pi * 2e9 * t + math.pi / 6), 0, 0])
    np.testing.assert_allclose(sine.B_mT(0.0), B0 + [5.0, 0, 0])
    pulse = AppliedField(B0, {"kind": "pulse", "amplitude_mT": [0, 0, 50.0], "start_ns": 1.0, "width_ns": 0.5})
    np.testing.assert_allclose(pulse.B_mT(0.99e-9), B0)
    np.testing.assert_allclose(pulse.B_mT(1.0e-9), B0 + [0, 0, 50])
    np.testing.assert_allclose(pulse.B_mT(1.49e-9), B0 + [0, 0, 50])
    np.testing.assert_allclose(pulse.B_mT(1.501e-9), B0)
    ramp = AppliedField(B0, {"kind": "ramp", "to_mT": [-99.0, 2.0, 3.0], "duration_ns": 2.0})
    np.testing.assert_allclose(ramp.B_mT(0.0), B0)
    np.testing.assert_allclose(ramp.B_mT(0.5e-9), [1 - 25.0, 2, 3])
    np.testing.assert_allclose(ramp.B_mT(2e-9), [-99, 2, 3])
    np.testing.assert_allclose(ramp.B_mT(5e-9), [-99, 2, 3])
    assert AppliedField(B0).is_static() and not ramp.is_static()


def test_zeeman_field_follows_the_time_dependence_in_A_per_m():
    n = (2, 2, 1)
    ac = {"kind": "sine", "amplitude_mT": [0, 4.0, 0], "frequency_GHz": 1.0, "phase_deg": 0.0}
    sim = make_sim(n, (2.0, 2.0, 2.0), m0=uniform(n, (1, 0, 0)))
    sim.set_applied_field((1.0, 0.0, 0.0), ac)
    z = Zeeman(sim.state, AppliedField((1.0, 0.0, 0.0), ac))
    H = z.h(sim.state, t=0.25e-9).numpy()[:, 0, 0, 0]
    np.testing.assert_allclose(H, np.array([1.0, 4.0, 0.0]) * 1e-3 / MU0, rtol=1e-12)



def test_zeeman_field_is_the_applied_one_now_after_every_change():
    # the field's vector is kept as a tensor between calls: it must follow a new applied field,
    # the time, an edited mask and another dtype
    n = (3, 2, 1)
    ac = {"kind": "pulse", "amplitude_mT": [0, 0, 7.0], "start_ns": 1.0, "width_ns": 1.0}
    sim = make_sim(n, (2.0, 2.0, 2.0), m0=uniform(n, (1, 0, 0)))
    z = Zeeman(sim.state, AppliedField((1.0, 0.0, 0.0), ac))
    st = sim.state

    def at(t=None):
        return z.h(st, t=t)[:, 0, 0, 0].numpy() * MU0 / 1e-3   # mT

    np.testing.assert_allclose(at(0.0), [1, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(at(1.5e-9), [1, 0, 7], rtol=1e-12)
    np.testing.assert_allclose(at(0.0), [1, 0, 0], rtol=1e-12)
    z.applied = AppliedField((0.0, -3.0, 0.0))
    np.testing.assert_allclose(at(), [0, -3, 0], rtol=1e-12)
    st.mask[0, 0, 0] = False
    assert torch.equal(z.h(st)[:, 0, 0, 0], torch.zeros(3, dtype=st.dtype))
    z.h(st).add_(1.0)                                   # a caller's in-place change stays its own
    np.testing.assert_allclose(z.h(st)[:, 0, 0, 1].numpy() * MU0 / 1e-3, [0, -3, 0], rtol=1e-12)
    st.dtype = torch.float32
    assert z.h(st).dtype == torch.float32


def test_all_finite_is_exact_where_a_sum_overflows():
    from engine.solvers import all_finite
    x = torch.ones(3, 1, 4, 4, dtype=torch.float64)
    assert all_finite(x)
    big = torch.full((3, 1, 4, 4), 1e308, dtype=torch.float64)   # every value finite, their sum is not
    assert all_finite(big) and all_finite(big.float().clamp(max=3e38))
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = x.clone()
        y[1, 0, 2, 3] = bad
        assert not all_finite(y)
    y = x.clone()
    y[0, 0, 0, 0], y[2, 0, 3, 3] = float("inf"), -float("inf")   # the sum is NaN
    assert not all_finite(y)
    assert all_finite(torch.ones(4, dtype=torch.complex64)) and all_finite(x.clone().requires_grad_())
    assert not all_finite(torch.tensor([1 + 0j, complex(float("inf"), 0)]))


# ----------------------------------------------------------------------------- DMI
def test_neel_cycloid_interior_dmi_energy_density_is_D_sin_k_dx_over_dx():
    D, A = 3e-3, 1.5e-11
    nx, dx = 64, 1e-9
    k = 2 * math.pi / 24e-9
    x = (np.arange(nx) + 0.5) * dx
    m0 = np.zeros((3, 1, 1, nx))
    m0[0, 0, 0] = np.sin(k * x)
    m0[2, 0, 0] = np.cos(k * x)
    sim = make_sim((nx, 1, 1), (1.0, 1.0, 1.0), [Material(Ms=1e6, A=A, D=D)], m0=m0)
    e = cell_energy_density(sim.state, InterfacialDMI(sim.state).h(sim.state))[0, 0]
    interior = e[1:-1]
    np.testing.assert_allclose(interior, D * math.sin(k * dx) / dx, rtol=1e-10)
    # and that tends to the continuum D k
    assert interior.mean() == pytest.approx(D * k, rel=(k * dx) ** 2 / 6 * 1.01)
    # a uniform y-cycloid of the same pitch has the same density
    m0y = np.zeros((3, 1, nx, 1))
    m0y[1, 0, :, 0] = np.sin(k * x)
    m0y[2, 0, :, 0] = np.cos(k * x)
    sim = make_sim((1, nx, 1), (1.0, 1.0, 1.0), [Material(Ms=1e6, A=A, D=D)], m0=m0y)
    ey = cell_energy_density(sim.state, InterfacialDMI(sim.state).h(sim.state))[0, :, 0]
    np.testing.assert_allclose(ey[1:-1], D * math.sin(k * dx) / dx, rtol=1e-10)


def test_dmi_edge_canting_of_perpendicular_strip_matches_rohart_thiaville():
    """1D strip, perpendicular anisotropy, no demag. The DMI boundary condition
    d(theta)/dx = D/(2A) and the bulk profile tan(theta/2) = exp(-(x - x0)/Delta), for which
    |d theta/dx| = sin(theta)/Delta, give sin(theta_edge) = D Delta / (2A), Delta = sqrt(A/K)
    (Rohart & Thiaville, PRB 88, 184422, 2013)."""
    A, Ku, Ms = 1.5e-11, 8e5, 1e6
    Delta = math.sqrt(A / Ku)                        # 4.33 nm
    D = 0.6 * A / Delta                              # sin(theta_edge) = 0.3, below D_c = 4 sqrt(AK)/pi
    dx_nm = 0.25
    nx = 320                                         # 80 nm = 18 Delta
    sim = make_sim((nx, 1, 1), (dx_nm, 1.0, 1.0), [Material(Ms=Ms, A=A, D=D, Ku=Ku, Ku_axis=(0, 0, 1))],
                   m0=uniform((nx, 1, 1), (0.01, 0, 1)))
    res = sim.relax(torque=1e-8, max_steps=200000)
    assert res["converged"]
    m = sim.m.numpy()[:, 0, 0]
    expect = D * Delta / (2 * A)
    theta = np.arctan2(np.hypot(m[0], m[1]), m[2])
    for edge, inner in ((0, 1), (-1, -2)):
        # the outermost cell centre sits half a cell inside the edge: extrapolate theta there
        theta_edge = theta[edge] + 0.5 * (theta[edge] - theta[inner])
        assert math.sin(theta_edge) == pytest.approx(expect, rel=0.01)
        # even without extrapolation the edge cell is within a few %
        assert math.sin(theta[edge]) == pytest.approx(expect, rel=0.04)
    # the canting is a Neel (x) rotation, opposite at the two ends, and dies out in the middle
    assert abs(m[1]).max() < 1e-6
    assert m[0, 0] * m[0, -1] < 0
    assert abs(m[0, nx // 2]) < 1e-4


def ghost_cell_dmi_field(state, term):
    """The DMI field in its plain ghost-cell form (the module docstring of engine.dmi, written
    out term by term): the reference the engine's folded stencil must reproduce."""
    from engine.neighbours import shift
    m = state.m
    H = torch.zeros_like(m)
    boundary = torch.zeros_like(m)
    for axis, comp, d, n in (("x", 0, state.d[0], state.n[0]), ("y", 1, state.d[1], state.n[1])):
        if n == 1:
            continue
        nbr = {}
        for s in (1, -1):
            normal = (s, 0.0) if axis == "x" else (0.0, s)
            zxn = torch.tensor([-normal[1], normal[0], 0.0], dtype=m.dtype)[:, None, None, None]
            ghost = m + d * term.D_over_2A * torch.cross(zxn.expand_as(m), m, dim=0)
            has = shift(state.mask.to(m.dtype), axis, s) > 0
            nbr[s] = torch.where(has, shift(m, axis, s), ghost)
            boundary += torch.where(has, torch.zeros_like(m), ghost - m) / d ** 2
        deriv = (nbr[1] - nbr[-1]) / (2 * d)
        H[2] -= deriv[comp]
        H[comp] += deriv[2]
    return (term.pref * H + term.ex_pref * boundary) * state.mask


@pytest.mark.parametrize("n", [(24, 18, 1), (17, 12, 2), (30, 1, 1), (1, 30, 2), (9, 9, 3)])
def test_dmi_folded_stencil_equals_the_ghost_cell_form(n):
    """Two materials of opposite D (one with A = 0, so no ghost tilt there), a vacuum hole and
    vacuum around a disk, non-square cells, one cell along an axis, several layers."""
    nx, ny, nz = n
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot((xx - nx / 2 + 0.5) / max(nx / 2, 1), (yy - ny / 2 + 0.5) / max(ny / 2, 1))
    reg = np.where(r < 0.9, 0, -1)
    reg[(xx >= nx // 2) & (reg == 0)] = 1
    reg[r < 0.25] = -1
    reg = np.broadcast_to(reg, (nz, ny, nx)).copy()
    assert (reg >= 0).sum() > 4 and (reg == 1).any()
    mats = [Material(name="a", D=3e-3, A=1.5e-11, Ms=1e6), Material(name="b", D=-2e-3, A=0.0, Ms=6e5)]
    m0 = np.random.default_rng(sum(n)).normal(size=(3, nz, ny, nx))
    sim = make_sim(n, (2.0, 1.5, 1.0), mats, region_map=reg, m0=m0)
    term = InterfacialDMI(sim.state)
    got, want = term.h(sim.state), ghost_cell_dmi_field(sim.state, term)
    assert float(want.abs().max()) > 1e4                      # a real field, A/m
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13 * float(want.abs().max()))


def test_dmi_field_is_minus_energy_gradient_away_from_edges():
    """Interior cells: H = -dE/dm / (mu0 Ms V). At free edges the field carries the ghost-cell
    boundary condition (as mumax3 does), which is not the gradient of -(1/2) mu0 Ms V m.H there."""
    rng = np.random.default_rng(6)
    sim = make_sim((6, 5, 1), (2.0, 2.0, 2.0), [Material(A=1.5e-11, D=3e-3, Ms=1e6)], m0=rng.normal(size=(3, 1, 5, 6)))
    st = sim.state
    term = InterfacialDMI(st)
    H = term.h(st).numpy()
    m0 = st.m.clone()
    eps = 1e-6
    for c in range(3):
        for y in range(1, 4):
            for x in range(1, 5):
                Es = []
                for sgn in (1, -1):
                    m = m0.clone()
                    m[c, 0, y, x] += sgn * eps
                    st.m = m
                    Es.append(term.energy(st))
                st.m = m0
                expect = -(Es[0] - Es[1]) / (2 * eps) / (MU0 * 1e6 * st.cell_volume)
                assert H[c, 0, y, x] == pytest.approx(expect, abs=1e-6 * np.abs(H).max())


def test_dmi_field_follows_autograd_where_m_does():
    """An m that autograd follows takes the out-of-place form of the stencil: the same field,
    and a gradient that finite differences confirm (the field is linear in m)."""
    n = (7, 6, 2)
    reg = np.zeros((2, 6, 7), int)
    reg[:, 2, 3] = -1
    sim = make_sim(n, (2.0, 1.5, 1.0), [Material(D=3e-3, A=1.5e-11, Ms=1e6)], region_map=reg,
                   m0=np.random.default_rng(4).normal(size=(3, 2, 6, 7)))
    st = sim.state
    term = InterfacialDMI(st)
    want = term.h(st)
    m = st.m.clone().requires_grad_()
    st.m = m
    got = term.h(st)
    assert got.requires_grad
    torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-12 * float(want.abs().max()))

    def field_of(mm):
        st.m = mm
        return term.h(st) / 1e5
    assert torch.autograd.gradcheck(field_of, (m,), eps=1e-6, atol=1e-6)
