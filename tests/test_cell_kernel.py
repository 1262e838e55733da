"""The compiled cell kernel (engine/kernels/cells.c) against the torch terms it stands in for.

The kernel must give the torch path's numbers to rounding on every kind of problem it serves:
several materials (the exchange's harmonic mean at interfaces), vacuum cells, layers, rows
longer than its chunk, uniaxial anisotropy, interfacial DMI with its boundary condition at grid
edges and vacuum, cubic anisotropy with any axes, the demag it leaves to torch, a time-dependent applied field, float32 and float64; and the Runge-Kutta arithmetic
(stage sums, the error norm, normalisation) must match the torch forms, NaN included."""
import math
import sys
import threading

import numpy as np
import pytest
import torch

from engine import Material, Mesh, Problem, Simulation, SolverSpec
from engine import cell_kernel
from engine.cell_kernel import CellKernel, max_norm_of_sum, normalized, stage_sum
from engine.threads import torch_threads
from engine.llg import llg_rhs
from engine.solvers import RK45, combine
from engine.state import normalize, vector_length

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(cell_kernel.library() is None,
                                 reason=f"no compiled cell kernel: {cell_kernel.library_why_not()}")]


def problem(n, cell_nm=(4.0, 4.0, 3.0), materials=None, region_map=None, precision="float64", demag="fft",
            B_mT=(10.0, -20.0, 5.0), ac=None):
    p = Problem(mesh=Mesh(tuple(n), tuple(cell_nm)), materials=materials or [Material()],
                solver=SolverSpec(precision=precision, demag=demag), region_map=region_map)
    p.field.B_mT = tuple(B_mT)
    if ac is not None:
        p.field.ac = ac
    return p


def random_m(shape, seed=0):
    g = np.random.default_rng(seed)
    m = g.normal(size=(3,) + tuple(shape))
    return m / np.linalg.norm(m, axis=0)


def start_and_join(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def torch_field(sim):
    H = sim.terms[0].h(sim.state)
    for term in sim.terms[1:]:
        H = H + term.h(sim.state)
    return H


def two_regions(n):
    """Region 0 and 1 side by side in x, a vacuum hole in the middle row: interfaces and holes."""
    nx, ny, nz = n
    rm = np.zeros((nz, ny, nx), np.int16)
    rm[:, :, nx // 2:] = 1
    rm[:, ny // 2, nx // 3: nx // 3 + 2] = -1
    return rm


def disk_with_hole(n):
    """A disk (region 0, its right half region 1) with a vacuum hole: DMI's ghost cells at every
    kind of edge."""
    nx, ny, nz = n
    y, x = np.mgrid[0:ny, 0:nx]
    r = np.hypot(x - (nx - 1) / 2, y - (ny - 1) / 2)
    rm = np.where(r < min(nx, ny) / 2 - 0.5, 0, -1).astype(np.int16)
    rm[(rm == 0) & (x > nx // 2)] = 1
    rm[(r < 2.5)] = -1
    return np.broadcast_to(rm, (nz, ny, nx)).copy()


CASES = {
    "sp4 film": dict(n=(100, 25, 1), cell_nm=(5.0, 5.0, 3.0)),
    "two materials, a hole, three layers, uniaxial": dict(
        n=(17, 9, 3), region_map=two_regions((17, 9, 3)),
        materials=[Material(name="a", Ku=5e5, Ku_axis=(0.3, 0.2, 1.0)),
                   Material(name="b", Ms=1.1e6, A=2e-11, alpha=0.3, Ku=-1e5, Ku_axis=(1.0, 0.0, 0.0))]),
    "rows longer than a chunk": dict(n=(300, 3, 2)),
    "one cell wide in x": dict(n=(1, 12, 4)),
    "cubic, uniaxial and DMI together": dict(
        n=(20, 10, 1), materials=[Material(Kc1=-3e3, D=1e-3, Ku=1e4)]),
    "cubic with rotated axes, two materials, layers": dict(
        n=(13, 11, 3), region_map=two_regions((13, 11, 3)),
        materials=[Material(name="a", Kc1=4.8e4, Kc_axis1=(1.0, 1.0, 0.0), Kc_axis2=(-1.0, 1.0, 0.3)),
                   Material(name="b", Ms=4.8e5, Kc1=-6e3, Kc_axis1=(0.0, 0.0, 1.0), Kc_axis2=(1.0, 0.0, 0.0))]),
    "DMI disk with vacuum around it and inside, two materials, two layers": dict(
        n=(23, 19, 2), cell_nm=(2.0, 2.5, 1.0), region_map=disk_with_hole((23, 19, 2)),
        materials=[Material(name="a", Ms=5.8e5, A=1.5e-11, Ku=8e5, D=3e-3),
                   Material(name="b", Ms=9e5, A=1e-11, D=-1.5e-3)]),
    "DMI, one cell along y": dict(n=(30, 1, 1), materials=[Material(D=2e-3)]),
    "DMI, one cell along x": dict(n=(1, 30, 2), materials=[Material(D=2e-3)]),
    "DMI where A = 0 in one region": dict(
        n=(12, 8, 1), region_map=two_regions((12, 8, 1)),
        materials=[Material(name="a", D=2e-3), Material(name="b", A=0.0, D=1e-3)]),
    "no demag, sine field": dict(n=(16, 16, 1), demag="none",
                                 ac={"kind": "sine", "amplitude_mT": [5.0, 0.0, 1.0], "frequency_GHz": 3.0}),
    "no exchange anywhere": dict(n=(8, 8, 1), materials=[Material(A=0.0, Ku=2e5)]),
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_field_and_torque_are_the_torch_terms(case, precision):
    p = problem(precision=precision, **CASES[case])
    sim = Simulation(p, m0=random_m(p.mesh.shape_zyx, seed=len(case)))
    assert sim.cells is not None, sim.cells_why
    st = sim.state
    st.t = 0.37e-9   # a time-dependent field is read at the state's time
    want_H = torch_field(sim)
    tol = 1e-13 if precision == "float64" else 2e-6
    for got, want in ((sim.cells.field(st), want_H),
                      (sim.cells.rhs(st), llg_rhs(st.m, want_H, st.alpha)),
                      (sim.cells.rhs(st, precession=False), llg_rhs(st.m, want_H, st.alpha, precession=False))):
        assert got.dtype == want.dtype and got.shape == want.shape
        scale = float(want.abs().max())
        assert scale > 0
        assert float((got - want).abs().max()) <= tol * scale
    # inside the magnet only: vacuum cells have no field from the kernel's terms and no torque
    outside = ~st.mask
    if bool(outside.any()):
        assert float(sim.cells.rhs(st)[:, outside].abs().max()) == 0.0


def test_a_simulation_uses_it_and_steps_as_the_torch_path_does(monkeypatch):
    """A short damped run with the kernel and without: the same trajectory to rounding."""
    p = problem(n=(24, 12, 1), materials=[Material(alpha=0.5, Ku=1e4)])
    m0 = random_m(p.mesh.shape_zyx, seed=3)
    fast = Simulation(p, m0=m0)
    assert fast.cells is not None
    monkeypatch.setenv("NMAG_CELL_KERNEL", "0")
    slow = Simulation(p, m0=m0)
    assert slow.cells is None and slow.cells_why == "turned off by NMAG_CELL_KERNEL=0"
    assert stage_sum(slow.m, [1.0], [slow.m]) is None        # the RK arithmetic is off as well
    slow.run(5e-11)
    monkeypatch.delenv("NMAG_CELL_KERNEL")
    fast.run(5e-11)
    assert fast.steps == slow.steps
    assert float((fast.m - slow.m).abs().max()) < 1e-10
    r_fast, r_slow = fast.relax(), slow.relax()
    assert r_fast["converged"] and r_slow["converged"]
    # two minimisations that stop at the torque tolerance: the same minimum's energy, m along its soft mode
    e_fast, e_slow = fast.energies()["total"], slow.energies()["total"]
    assert e_fast == pytest.approx(e_slow, rel=1e-8)
    assert float((fast.m - slow.m).abs().max()) < 1e-3


def test_alpha_and_field_edits_reach_the_kernel():
    p = problem(n=(10, 6, 1))
    sim = Simulation(p, m0=random_m(p.mesh.shape_zyx, seed=5))
    before = sim.cells.rhs(sim.state)
    sim.set_alpha(0.7)
    sim.set_applied_field((-50.0, 30.0, 0.0))
    st = sim.state
    want = llg_rhs(st.m, torch_field(sim), st.alpha)
    got = sim.cells.rhs(st)
    assert float((got - want).abs().max()) <= 1e-13 * float(want.abs().max())
    assert float((got - before).abs().max()) > 1e-3 * float(want.abs().max())


def test_a_kernel_that_disagrees_with_torch_is_not_used(monkeypatch):
    real_run = CellKernel._run

    def wrong(self, state, hout, out, precession, H):
        real_run(self, state, hout, out, precession, H)
        (out if out is not None else hout).mul_(1 + 1e-9)

    monkeypatch.setattr(CellKernel, "_run", wrong)
    sim = Simulation(problem(n=(8, 4, 1)))
    assert sim.cells is None
    assert "differs from the torch terms'" in sim.cells_why


def test_large_grids_and_gpu_like_inputs_keep_the_torch_path(monkeypatch):
    shape = (3, 1, 256, 256)                                   # fused.MIN_CELLS cells: torch.compile's range
    m = torch.randn(shape, dtype=torch.float64)
    assert stage_sum(m, [0.5], [m]) is None
    monkeypatch.setenv("NMAG_CELL_KERNEL", "1")
    assert stage_sum(m, [0.5], [m]) is not None                  # =1: every size
    small = torch.randn((3, 1, 4, 5), dtype=torch.float64)
    assert stage_sum(small, [0.5], [small.transpose(2, 3).contiguous().transpose(2, 3)]) is None   # not contiguous
    assert stage_sum(small, [0.5], [small.float()]) is None      # mixed dtypes
    assert stage_sum(small, [0.5], [small[:, :, :2]]) is None    # another size
    assert stage_sum(small, [0.5], [small.clone().requires_grad_()]) is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_runge_kutta_arithmetic_is_the_torch_forms(dtype, monkeypatch):
    g = torch.Generator().manual_seed(2)
    shape = (3, 2, 7, 300)                                     # more values than a chunk, not a multiple of it
    m = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    ks = [torch.randn(shape, generator=g, dtype=torch.float64).to(dtype) for _ in range(7)]
    mask = torch.rand(shape[1:], generator=g) > 0.2
    dt = 1.3e-13
    coefficients = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    fast = combine(m, dt, coefficients, ks)
    fast_err = float(vector_length(combine(None, dt, coefficients, ks)).max())
    fast_unit = normalized(m, mask)
    monkeypatch.setenv("NMAG_CELL_KERNEL", "0")
    slow = combine(m, dt, coefficients, ks)
    slow_err = float(vector_length(combine(None, dt, coefficients, ks)).max())
    monkeypatch.delenv("NMAG_CELL_KERNEL")
    tol = 1e-15 if dtype == torch.float64 else 1e-6
    assert float((fast - slow).abs().max()) <= tol * float(slow.abs().max())
    assert abs(fast_err - slow_err) <= tol * slow_err
    nonzero = [(c * dt, k) for c, k in zip(coefficients, ks) if c]
    assert max_norm_of_sum([h for h, _ in nonzero], [k for _, k in nonzero]) == pytest.approx(slow_err, rel=tol)
    assert torch.equal(fast_unit == 0, ~mask.expand(shape))
    assert float((fast_unit - normalize(m, mask)).abs().max()) <= 4 * tol


def test_non_finite_values_propagate_as_in_torch():
    m = torch.randn((3, 1, 5, 6), dtype=torch.float64)
    k = torch.randn_like(m)
    k[1, 0, 2, 3] = math.nan
    assert math.isnan(max_norm_of_sum([1e-13], [k]))
    k[1, 0, 2, 3] = math.inf
    assert max_norm_of_sum([1e-13], [k]) == math.inf
    bad = m.clone()
    bad[0, 0, 1, 1] = math.nan
    out = normalized(bad, torch.ones((1, 5, 6), dtype=torch.bool))
    assert math.isnan(float(out[0, 0, 1, 1])) and math.isnan(float(out[2, 0, 1, 1]))
    assert torch.isfinite(out[:, 0, 0, 0]).all()


def test_a_diverging_step_still_stops_with_the_kernel():
    """The solvers' health checks see the kernel's NaN as they saw torch's."""
    from engine.errors import SimulationDiverged
    p = problem(n=(6, 4, 1))
    sim = Simulation(p, m0=random_m(p.mesh.shape_zyx, seed=1))
    assert sim.cells is not None
    sim.zeeman.H_vector = lambda t: np.array([math.nan, 0.0, 0.0])
    with pytest.raises(SimulationDiverged):
        sim.integrator.step(sim._rhs, 0.0, sim.state.m, sim.state.mask)
    assert isinstance(sim.integrator, RK45)


def test_dmi_problems_use_it_on_large_grids_too():
    """torch.compile does not fuse the DMI term: there the kernel serves grids of any size."""
    p = problem(n=(256, 256, 1), cell_nm=(2.0, 2.0, 1.0), materials=[Material(D=2e-3, Ku=5e5)], demag="none")
    sim = Simulation(p)
    assert sim.cells is not None, sim.cells_why
    p = problem(n=(256, 256, 1), cell_nm=(2.0, 2.0, 1.0), demag="none")
    sim = Simulation(p)
    assert sim.cells is None and "65536 cells" in sim.cells_why


def test_a_broadcast_field_and_a_scalar_alpha_are_taken_as_torch_takes_them():
    """cells.c reads every cell's value: a term whose field broadcasts, or an alpha of one value,
    must reach it expanded (found in review: it read past a 3-value buffer)."""
    p = problem(n=(9, 7, 1), demag="none")
    sim = Simulation(p, m0=random_m(p.mesh.shape_zyx, seed=8))

    class Uniform:
        name = "uniform"

        def h(self, state):
            return torch.tensor([1e4, -2e4, 3e4], dtype=state.dtype)[:, None, None, None]

    sim.terms.append(Uniform())
    sim.cells, _ = CellKernel.for_terms(sim.state, sim.terms)
    assert sim.cells is not None
    st = sim.state
    st.alpha = torch.tensor(0.3, dtype=st.dtype)
    want = llg_rhs(st.m, torch_field(sim), st.alpha)
    got = sim.cells.rhs(st)
    assert float((got - want).abs().max()) <= 1e-13 * float(want.abs().max())


def test_prefactors_asked_for_on_two_threads_are_each_threads_own():
    """The app evaluates a run and its twin on two threads: llg_prefactors must never hand one the
    other's arrays (the cell kernel would read the wrong damping, or past a smaller grid's)."""
    from engine.llg import llg_prefactors
    alphas = [torch.full(shape, 0.1 * (k + 1), dtype=torch.float64) for k, shape in enumerate(((1, 4, 5), (1, 9, 11)))]
    wrong = []

    def ask(alpha):
        for _ in range(3000):
            alpha = alpha.clone()   # a new tensor each time: no slot holds it yet
            pref, _ = llg_prefactors(alpha)
            if pref.shape != alpha.shape:
                wrong.append(pref.shape)

    threads = [threading.Thread(target=ask, args=(a,)) for a in alphas]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads often, as a busy app's do at the worst moments
    try:
        start_and_join(threads)
    finally:
        sys.setswitchinterval(interval)
    assert not wrong


def test_update_problem_builds_a_new_kernel():
    p = problem(n=(10, 6, 1), materials=[Material(Ku=1e4)])
    sim = Simulation(p, m0=random_m(p.mesh.shape_zyx, seed=2))
    first = sim.cells
    q = p.copy()
    q.materials[0].Ku = 3e5
    q.materials[0].D = 1e-3
    sim.update_problem(q)
    assert sim.cells is not None and sim.cells is not first and sim.cells.dmi is not None
    st = sim.state
    want = llg_rhs(st.m, torch_field(sim), st.alpha)
    assert float((sim.cells.rhs(st) - want).abs().max()) <= 1e-13 * float(want.abs().max())


@pytest.mark.parametrize("word", ["0", "off", "False", "no"])
def test_the_switch_takes_the_words_nmag_compile_takes(word, monkeypatch):
    monkeypatch.setenv("NMAG_CELL_KERNEL", word)
    sim = Simulation(problem(n=(6, 4, 1)))
    assert sim.cells is None and sim.cells_why == f"turned off by NMAG_CELL_KERNEL={word}"


def test_torch_compile_everywhere_and_no_compiler_keep_the_torch_path(monkeypatch, tmp_path):
    monkeypatch.setenv("NMAG_COMPILE", "1")
    sim = Simulation(problem(n=(6, 4, 1)))
    assert sim.cells is None and "NMAG_COMPILE=1" in sim.cells_why
    monkeypatch.delenv("NMAG_COMPILE")
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path))    # nothing built there yet
    monkeypatch.setenv("CC", "/nonexistent/cc")
    cell_kernel.forget()
    try:
        sim = Simulation(problem(n=(6, 4, 1)))
        assert sim.cells is None and "could not build" in sim.cells_why
        sim.run(2e-12)                                           # and it runs, on torch
        assert stage_sum(sim.m, [1.0], [sim.m]) is None
    finally:
        monkeypatch.undo()
        cell_kernel.forget()
    assert cell_kernel.library() is not None


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_threads_sharing_the_rows_give_the_same_bits(precision):
    """cells.c splits a large grid's rows among torch's threads: every cell's arithmetic is the
    same whoever does it, so 1, 2 and 3 threads (uneven shares, two layers) agree bit for bit."""
    n = (190, 97, 2)   # 36860 cells: over THREADED_CELLS; 194 rows split unevenly in three
    assert n[0] * n[1] * n[2] >= cell_kernel.THREADED_CELLS
    mats = [Material(name="a", D=2e-3, Ku=4e5, Ku_axis=(0, 0, 1)), Material(name="b", A=0.8e-11, D=-1e-3)]
    sim = Simulation(problem(n, materials=mats, region_map=disk_with_hole(n), precision=precision, demag="none"),
                     m0=random_m(n[::-1], seed=5))
    assert sim.cells is not None, sim.cells_why
    got = {}
    for threads in (1, 2, 3):
        with torch_threads(threads):
            got[threads] = (sim.cells.field(sim.state), sim.cells.rhs(sim.state))
    for threads in (2, 3):
        for a, b in zip(got[1], got[threads]):
            assert torch.equal(a, b)
    assert float(got[1][0].abs().max()) > 1e4


def test_more_threads_than_rows_give_the_same_field():
    """A grid of 9 rows asked for 16 threads (cells.c clamps to one thread a row)."""
    n = (4096, 3, 3)
    sim = Simulation(problem(n, materials=[Material(D=1e-3)], demag="none"), m0=random_m(n[::-1], seed=6))
    assert sim.cells is not None, sim.cells_why
    want = sim.cells.field(sim.state)
    with torch_threads(16):
        got = sim.cells.field(sim.state)
    assert torch.equal(got, want)


def test_two_python_threads_calling_one_kernel_get_their_own_fields():
    """A run and its twin (or a helper thread) may call one kernel at once: its table of
    addresses is held for a whole call, so neither reads the other's arrays (found in review:
    with the rows split among threads, unguarded calls crashed the process every time)."""
    import copy
    n = (190, 97, 2)
    mats = [Material(name="a", D=2e-3, Ku=4e5, Ku_axis=(0, 0, 1)), Material(name="b", A=0.8e-11, D=-1e-3)]
    sim = Simulation(problem(n, materials=mats, region_map=disk_with_hole(n), demag="none"),
                     m0=random_m(n[::-1], seed=5))
    assert sim.cells is not None, sim.cells_why
    states = []
    for seed in (5, 6):
        st = copy.copy(sim.state)
        st.m = sim.state.m.new_tensor(random_m(n[::-1], seed=seed)) * sim.state.mask
        states.append(st)
    want = [sim.cells.field(st) for st in states]
    wrong, errors = [0, 0], []

    def work(i):
        try:
            for _ in range(60):
                wrong[i] += not torch.equal(sim.cells.field(states[i]), want[i])
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    with torch_threads(2):
        start_and_join([threading.Thread(target=work, args=(i,)) for i in (0, 1)])
    assert not errors and wrong == [0, 0]
