"""LLG dynamics and the integrators: Larmor precession, |m| = 1, energy decay with damping,
convergence order of the fixed-step schemes, and the relaxer's stopping rule."""
import math

import numpy as np
import pytest
import torch

from engine import Material, Mesh, Problem, Simulation, SolverSpec
from engine.constants import GAMMA, MU0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_sim(n=(1, 1, 1), cell_nm=(5.0, 5.0, 3.0), material=None, method="rk45", dt_ps=0.1,
             tolerance=1e-7, max_dt_ps=1.0, demag="none", B_mT=(0.0, 0.0, 0.0), m0=None, direction=(1, 0, 0)):
    p = Problem(mesh=Mesh(tuple(n), tuple(cell_nm)), materials=[material or Material()],
                solver=SolverSpec(method=method, dt_ps=dt_ps, tolerance=tolerance, max_dt_ps=max_dt_ps,
                                  precision="float64", demag=demag))
    p.field.B_mT = tuple(B_mT)
    p.initial.params = {"direction": list(direction)}
    return Simulation(p, m0=m0)


def zero_crossings(t, x):
    """Times where x changes sign, by linear interpolation."""
    t, x = np.asarray(t), np.asarray(x)
    i = np.nonzero(np.sign(x[:-1]) * np.sign(x[1:]) < 0)[0]
    return t[i] - x[i] * (t[i + 1] - t[i]) / (x[i + 1] - x[i])


@pytest.mark.parametrize("method", ["rk45", "rk4", "heun"])
def test_undamped_precession_at_larmor_frequency(method):
    dt_ps = {"rk45": 0.1, "rk4": 0.5, "heun": 0.2}[method]
    B = 0.2  # T, along z
    f_larmor = GAMMA * (B / MU0) / (2 * math.pi)   # 5.6 GHz: 28.0 GHz per tesla
    assert f_larmor / B == pytest.approx(28.0e9, rel=2e-3)
    # a uniform 4x4 film without demag precesses like a single macrospin
    sim = make_sim(n=(4, 4, 1), material=Material(alpha=0.0), method=method, dt_ps=dt_ps,
                   B_mT=(0.0, 0.0, B * 1e3), direction=(1, 0, 0.2))
    ts, mx, my = [0.0], [sim.mean_m()[0]], [sim.mean_m()[1]]

    def record(s):
        mm = s.mean_m()
        ts.append(s.t), mx.append(mm[0]), my.append(mm[1])
    sim.run(4.2 / f_larmor, callback=record)
    crossings = zero_crossings(ts, mx)
    assert len(crossings) >= 8
    period = 2 * (crossings[-1] - crossings[0]) / (len(crossings) - 1)
    assert period == pytest.approx(1 / f_larmor, rel=1e-4)
    # counter-clockwise about +H (dm/dt = -gamma m x H): my turns positive first
    assert my[np.argmax(np.abs(my) > 0.1)] > 0
    # no damping: mz and |m| do not change
    assert sim.mean_m()[2] == pytest.approx(0.2 / math.hypot(1, 0.2), abs=1e-6)
    norm = np.linalg.norm(sim.m.numpy(), axis=0)
    assert np.abs(norm - 1).max() < 1e-12


def test_damped_dynamics_keep_unit_length_and_energy_falls_monotonically():
    """Random start, exchange and demag, alpha = 0.5, no field: E(t) never rises and |m| = 1."""
    n = (24, 16, 1)
    rng = np.random.default_rng(7)
    m0 = rng.normal(size=(3, 1, 16, 24))
    sim = make_sim(n=n, material=Material(alpha=0.5), demag="fft", tolerance=1e-5, max_dt_ps=10.0, m0=m0)
    E = [sim.energies()["total"]]
    for _ in range(80):
        sim.step()
        E.append(sim.energies()["total"])
        norm = np.linalg.norm(sim.m.numpy(), axis=0)
        assert np.abs(norm - 1).max() < 1e-12
    E = np.asarray(E)
    assert np.all(np.diff(E) <= 1e-12 * np.abs(E).max())
    assert E[-1] < 0.2 * E[0]   # a real decay happened, not a stall


def _macrospin_final_m(method, dt_ps, T=0.05e-9):
    """A single cell with tilted anisotropy, an oblique field and damping: nonlinear dynamics."""
    mat = Material(Ms=8e5, alpha=0.1, Ku=2e5, Ku_axis=(0.3, 0.2, 1.0))
    sim = make_sim(material=mat, method=method, dt_ps=dt_ps, B_mT=(50.0, -80.0, 20.0), direction=(1.0, 0.3, 0.1))
    sim.run(T)
    assert sim.t == pytest.approx(T, rel=1e-12)
    return sim.m.numpy()[:, 0, 0, 0]


@pytest.mark.parametrize("method,order", [("rk4", 4), ("heun", 2)])
def test_fixed_step_schemes_converge_at_their_order(method, order):
    dts = [0.4, 0.2, 0.1, 0.05] if method == "rk4" else [0.1, 0.05, 0.025, 0.0125]
    ms = [_macrospin_final_m(method, dt) for dt in dts]
    diffs = [np.linalg.norm(ms[i] - ms[i + 1]) for i in range(len(ms) - 1)]
    ratios = [diffs[i] / diffs[i + 1] for i in range(len(diffs) - 1)]
    # halving dt divides the error by 2^order
    for r in ratios:
        assert 2 ** order * 0.8 < r < 2 ** order * 1.25, (diffs, ratios)
    # and they converge to the adaptive RK45 answer
    ref = _macrospin_final_m("rk45", 0.1)
    assert np.linalg.norm(ms[-1] - ref) < 2 * diffs[-1] + 1e-9


def test_rk45_error_control_tightens_with_tolerance():
    ref = _macrospin_final_m("rk4", 0.01)
    errs = []
    for tol in (1e-4, 1e-6):
        mat = Material(Ms=8e5, alpha=0.1, Ku=2e5, Ku_axis=(0.3, 0.2, 1.0))
        sim = make_sim(material=mat, tolerance=tol, max_dt_ps=10.0, B_mT=(50.0, -80.0, 20.0), direction=(1.0, 0.3, 0.1))
        sim.run(0.05e-9)
        errs.append(np.linalg.norm(sim.m.numpy()[:, 0, 0, 0] - ref))
    assert errs[1] < errs[0] / 10
    assert errs[1] < 1e-5


@pytest.mark.parametrize("tol", [1e-4, 1e-6])
def test_relax_reaches_the_torque_tolerance(tol):
    sim = make_sim(n=(32, 8, 1), material=Material(), demag="fft", direction=(1, 0.1, 0))
    E0 = sim.energies()["total"]
    res = sim.relax(torque=tol)
    assert res["converged"]
    assert res["max_torque"] <= tol
    # the reported torque is the simulation's own max |m x H| / Ms
    assert sim.max_torque() == pytest.approx(res["max_torque"], rel=1e-6)
    assert sim.energies()["total"] < E0
    norm = np.linalg.norm(sim.m.numpy(), axis=0)
    assert np.abs(norm - 1).max() < 1e-12
