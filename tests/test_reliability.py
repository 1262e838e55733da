"""Nothing silent, nothing lost (issue 9): every integrator and relax stop at the first sign of
divergence with a message that says what, when and what to try, and keep the last good state;
`nmag run` keeps the record up to it, marks it incomplete and exits 3."""
import math

import h5py
import numpy as np
import pytest
import torch

from engine import InitialState, Material, Mesh, Problem, Simulation, SolverSpec
from engine.cli import EXIT_DIVERGED, main
from engine.errors import ProblemError, SimulationDiverged
from engine.results import read_results, save_project
from engine.solvers import RK45

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(method="rk45", dt_ps=0.1, cell=(3.0, 3.0, 3.0), precision="float64", n=(8, 8, 1), alpha=0.5,
         tolerance=1e-5, demag="none"):
    p = Problem(mesh=Mesh(n, cell), materials=[Material(alpha=alpha)],
                solver=SolverSpec(method=method, dt_ps=dt_ps, precision=precision, demag=demag,
                                  tolerance=tolerance))
    p.initial = InitialState("random", {"seed": 1})
    return Simulation(p)


def assert_last_good(sim, e, t_before=None):
    assert torch.isfinite(sim.m).all(), "the simulation must keep a finite (last good) state"
    assert e.t == sim.t and e.step == sim.steps
    if t_before is not None:
        assert sim.t == t_before
    text = str(e)
    assert "diverged at t =" in text and f"step {e.step}" in text and "try" in text


@pytest.mark.parametrize("method", ["rk45", "rk4", "heun"])
def test_nan_in_the_state_stops_every_integrator_at_once(method):
    sim = make(method)
    sim.run(2e-12)
    t, steps = sim.t, sim.steps
    good = sim.m.clone()
    sim.state.m[0, 0, 3, 3] = float("nan")   # behind the API's back: set_m refuses NaN
    with pytest.raises(SimulationDiverged) as ei:
        sim.run(1e-9)                         # before the fix RK45 crawled at 1e-18 s forever
    e = ei.value
    assert "non-finite m" in e.what and e.t == t and e.step == steps
    assert sim.steps == steps and sim.t == t
    # the bad value is still there (it was the given state), the rest is untouched
    bad = ~torch.isfinite(sim.m)
    assert int(bad.sum()) == 1 and torch.equal(sim.m[~bad], good[~bad])


@pytest.mark.parametrize("method", ["rk4", "heun"])
def test_tiny_float32_cells_overflow_is_caught(method):
    # 0.01 nm cells: the exchange field overflows float32 within one step of 0.1 ps
    sim = make(method, dt_ps=0.1, cell=(0.01, 0.01, 0.01), precision="float32", n=(4, 4, 1))
    with pytest.raises(SimulationDiverged) as ei:
        sim.run(1e-11)
    assert_last_good(sim, ei.value, t_before=0.0)
    assert ei.value.what.startswith(("non-finite", "the total energy rose"))


@pytest.mark.parametrize("method", ["rk4", "heun"])
def test_fixed_step_too_large_raises_the_energy_of_a_damped_run(method):
    sim = make(method, dt_ps=10.0)          # 10 ps: the RK4 run gained 580x its energy
    E0 = sim.energies()["total"]
    with pytest.raises(SimulationDiverged) as ei:
        sim.run(1e-9)
    e = ei.value
    assert "energy rose" in e.what and "dt_ps" in e.hint
    assert_last_good(sim, e)
    # the state kept is one whose energy had not risen
    assert sim.energies()["total"] <= E0 * (1 - 1e-12) + 1e-3 * abs(E0)


@pytest.mark.parametrize("method", ["rk4", "heun"])
def test_a_fine_fixed_step_run_is_not_stopped(method):
    sim = make(method, dt_ps=0.05, n=(4, 4, 1))
    E0 = sim.energies()["total"]
    sim.run(10e-12)                          # 200 steps (20 energy checks) of honest damped dynamics
    assert sim.steps == 200 and sim.t == pytest.approx(10e-12)
    assert sim.energies()["total"] < E0


def test_rk45_step_size_stuck_at_its_floor(monkeypatch):
    # float32 cannot meet a 1e-12 tolerance: the step shrinks to ~1e-16 s and stays there
    monkeypatch.setattr(RK45, "STUCK_STEPS", 20)
    sim = make("rk45", precision="float32", tolerance=1e-12)
    with pytest.raises(SimulationDiverged) as ei:
        sim.run(1e-9)
    assert "step size stuck at its floor" in ei.value.what and "tolerance" in ei.value.hint
    assert_last_good(sim, ei.value)


def test_rk45_non_finite_error_estimate_at_the_floor():
    sim = make("rk45")
    calls = {"n": 0}
    rhs = sim._rhs

    def poisoned(t, m):        # the field goes non-finite for every trial point after the first
        calls["n"] += 1
        out = rhs(t, m)
        return out if calls["n"] == 1 else out * float("inf")
    with pytest.raises(SimulationDiverged) as ei:
        sim.integrator.step(poisoned, 0.0, sim.m, sim.state.mask)
    assert "non-finite error estimate" in ei.value.what


def test_relax_stops_at_a_non_finite_torque_and_keeps_the_last_good_m():
    sim = make("rk45", n=(4, 4, 1))
    count = {"n": 0}
    field = sim.effective_field

    def failing(m=None, t=None):
        count["n"] += 1
        H = field(m, t)
        return H if count["n"] < 5 else H * float("nan")
    sim.effective_field = failing
    with pytest.raises(SimulationDiverged) as ei:
        sim.relax()
    assert "relax" in ei.value.what
    assert torch.isfinite(sim.m).all()
    assert np.allclose(np.linalg.norm(sim.m.numpy(), axis=0), 1.0)


def test_non_finite_initial_state_is_refused_before_any_work():
    p = Problem(mesh=Mesh((4, 4, 1), (3.0, 3.0, 3.0)), solver=SolverSpec(demag="none"))
    m0 = np.zeros((3, 1, 4, 4))
    m0[0] = 1.0
    m0[1, 0, 2, 2] = np.inf
    with pytest.raises(ProblemError, match="NaN or infinite"):
        Simulation(p, m0=m0)
    sim = Simulation(p)
    with pytest.raises(ProblemError, match="NaN or infinite"):
        sim.set_m(m0)


TINY_CELLS = """
title = "tiny float32 cells"
[mesh]
n = [4, 4, 1]
cell_nm = [0.01, 0.01, 0.01]
[initial]
kind = "random"
[solver]
method = "rk4"
dt_ps = 0.1
precision = "float32"
demag = "none"
[[stages]]
kind = "run"
duration_ns = 0.01
[output]
table_every_ps = 0.1
snapshot_every_ps = 0.1
"""


def test_cli_keeps_the_record_up_to_the_last_good_state(tmp_path, capsys):
    prob = tmp_path / "p.toml"
    # a damped run that is fine for 0.5 ps, then the step grows: run 1 is good, run 2 diverges
    prob.write_text(TINY_CELLS.replace("cell_nm = [0.01, 0.01, 0.01]", "cell_nm = [3.0, 3.0, 3.0]")
                    .replace('duration_ns = 0.01', 'duration_ns = 0.0005\n[[stages]]\nkind = "run"\n'
                             'duration_ns = 0.01\nalpha = 0.5')
                    .replace('dt_ps = 0.1', 'dt_ps = 0.05'))
    out = tmp_path / "p.h5"
    assert main(["run", str(prob), "--out", str(out), "--quiet"]) == 0
    assert read_results(out)["complete"] is True
    prob.write_text(TINY_CELLS)
    out2 = tmp_path / "q.h5"
    assert main(["run", str(prob), "--out", str(out2), "--quiet"]) == EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "diverged at t =" in err and "marked incomplete" in err and "try" in err
    res = read_results(out2)
    assert res["complete"] is False and "diverged" in res["incomplete_reason"]
    assert np.isfinite(res["m"]).all() and np.isfinite(res["snapshots_m"]).all()
    for c in res["columns"]:
        assert np.isfinite(res["table"][c]).all(), c
    assert not (tmp_path / "q.h5.part").exists()
    with h5py.File(out2) as f:
        assert f.attrs["complete"] == False  # noqa: E712  (numpy bool)


def test_cli_refuses_a_project_whose_state_holds_nan(tmp_path, capsys):
    p = Problem(mesh=Mesh((4, 4, 1), (3.0, 3.0, 3.0)), solver=SolverSpec(demag="none"))
    proj = tmp_path / "proj.h5"
    m = np.zeros((3, 1, 4, 4), dtype=np.float32)
    m[0] = 1.0
    save_project(proj, p, m=m)
    with h5py.File(proj, "r+") as f:
        f["m"][0, 0, 1, 1] = np.nan
    before = proj.read_bytes()
    assert main(["run", str(proj), "--out", str(tmp_path / "o.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "proj.h5" in err and "NaN" in err
    assert not (tmp_path / "o.h5").exists() and proj.read_bytes() == before


def test_energy_check_tolerance_is_relative_and_documented():
    from engine import simulation
    assert 0 < simulation.ENERGY_RISE_TOL <= 1e-2 and simulation.ENERGY_CHECK_EVERY >= 1
    assert math.isfinite(simulation.ENERGY_RISE_TOL)


def test_thread_policy_counts_free_cores_and_never_spins(monkeypatch):
    import os
    from engine import threads
    monkeypatch.delenv("NMAG_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose_threads(cores=8, load=0.0) == 8
    assert threads.choose_threads(cores=8, load=5.2) == 3
    assert threads.choose_threads(cores=2, load=14.0) == 1        # never below one
    assert threads.choose_threads(cores=8, load=0.0, cells=100 * 25) == 1      # a small grid: one
    assert threads.choose_threads(cores=8, load=0.0, cells=256 * 256) == 8
    monkeypatch.setenv("NMAG_THREADS", "3")
    assert threads.choose_threads(cores=2, load=14.0) == 3        # an explicit count wins
    assert threads.choose_threads(cores=8, load=0.0, cells=100 * 25) == 3      # also on a small grid
    assert os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"    # set on import of engine
    saved = torch.get_num_threads()
    try:
        assert threads.apply_thread_policy(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
