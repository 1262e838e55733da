"""Compiled per-cell kernels (engine.fused): the same numbers as the eager code, a silent eager
fallback when compiling fails, and nothing compiled when turned off. Compiling costs seconds,
so these tests use few kernels and tiny grids (NMAG_COMPILE=1 compiles at every size)."""
import numpy as np
import pytest
import torch

from engine import Material, Mesh, Problem, Simulation, SolverSpec
from engine import fused
from engine.exchange import Exchange
from engine.llg import llg_rhs
from engine.state import State


def _probe_kernel(x):
    return x * x + 1


@pytest.fixture
def compile_everything(monkeypatch, one_torch_thread):
    """Kernels compile at every size, and the call that starts a compile waits for it."""
    monkeypatch.setenv("NMAG_COMPILE", "1")
    monkeypatch.setenv("NMAG_COMPILE_WAIT", "1")


@pytest.fixture
def compiling(compile_everything):
    """As above, where torch.compile can run at all: without a C++ compiler on the machine the
    compiled-equality tests are skipped, saying why (the fallback test still runs)."""
    probe = fused.Fused(_probe_kernel)
    probe(torch.ones(3, 1, 4, 5, dtype=torch.float64))
    (state,) = fused.status()["_probe_kernel"].values() or ("not started",)
    if state != "ready":
        pytest.skip(f"torch.compile cannot run here: {state}")


def _ready(kernel) -> bool:
    return any(s == "ready" for s in fused.status()[kernel].values())


def test_compiled_torque_equals_the_eager_one(compiling, monkeypatch):
    g = torch.Generator().manual_seed(1)
    m = torch.randn((3, 1, 12, 10), generator=g, dtype=torch.float64)
    H = torch.randn((3, 1, 12, 10), generator=g, dtype=torch.float64) * 1e5
    alpha = torch.rand((1, 12, 10), generator=g, dtype=torch.float64)
    llg_rhs(m, H, alpha)                      # compiles (and waits)
    assert _ready("_torque"), fused.status()
    got = llg_rhs(m, H, alpha)                # the compiled kernel
    monkeypatch.setenv("NMAG_COMPILE", "0")
    want = llg_rhs(m, H, alpha)               # the eager one
    assert float((got - want).abs().max() / want.abs().max()) < 1e-14


def test_compiled_exchange_equals_the_eager_one_across_regions_and_layers(compiling):
    """Three layers, two materials and vacuum: the compiled stencil's zero coefficients past an
    edge or a hole must give the eager code's Neumann boundaries exactly."""
    p = Problem.from_dict({
        "mesh": {"n": [14, 9, 3], "cell_nm": [2, 3, 4]},
        "materials": [{"name": "a", "Ms": 8e5, "A": 1.3e-11}, {"name": "b", "Ms": 4e5, "A": 0.5e-11}],
        "geometry": [{"shape": "ellipse", "center_nm": [14, 13.5], "radii_nm": [13, 12.5], "material": "a"},
                     {"shape": "rectangle", "center_nm": [8, 13.5], "size_nm": [8, 10], "material": "b"}],
        "solver": {"precision": "float64"}})
    regions = p.regions()
    m0 = np.random.default_rng(2).normal(size=(3,) + regions.shape)
    st = State.from_problem(p, regions, m0)
    ex = Exchange(st)
    assert ex._full is not None
    ex.h(st)                                   # compiles (and waits)
    assert _ready("_exchange_field"), fused.status()
    got = ex.h(st)
    full, ex._full = ex._full, None
    want = ex.h(st)
    ex._full = full
    assert float((got - want).abs().max() / want.abs().max()) < 1e-14


def test_an_rk45_run_gives_the_same_m_with_and_without_compiled_kernels(compiling, monkeypatch):
    """Torque, exchange and the Dormand-Prince stage sums compiled."""
    def run():
        p = Problem(mesh=Mesh((20, 12, 1), (4.0, 4.0, 4.0)), materials=[Material(Ms=8e5, A=1.3e-11, alpha=0.1)],
                    solver=SolverSpec(method="rk45", precision="float64", tolerance=1e-6))
        p.initial.kind, p.initial.params = "random", {"seed": 3}
        p.field.B_mT = (20.0, 5.0, 0.0)
        sim = Simulation(p)
        for _ in range(4):
            sim.step()
        return sim.m.clone(), sim.t

    m_c, t_c = run()
    for kernel in ("_torque", "_exchange_field", "_stage"):
        assert _ready(kernel), (kernel, fused.status())
    monkeypatch.setenv("NMAG_COMPILE", "0")
    m_e, t_e = run()
    assert t_c == pytest.approx(t_e, rel=1e-12)
    assert float((m_c - m_e).abs().max()) < 1e-10   # rounding order differs: ~1e-12 after 4 steps


def test_a_compile_that_fails_leaves_the_eager_code_silently(compile_everything, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("no C++ compiler here")
    monkeypatch.setattr(torch, "compile", boom)

    def twice(x):
        return 2 * x
    kernel = fused.Fused(twice)
    x = torch.arange(6.0).reshape(3, 1, 1, 2)
    assert torch.equal(kernel(x), 2 * x)      # the compile failed in the background
    assert torch.equal(kernel(x), 2 * x)      # and stays eager
    (state,) = fused.status()["twice"].values()
    assert state.startswith("failed: RuntimeError: no C++ compiler here")


def test_off_compiles_nothing_and_auto_waits_for_a_large_grid(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda *a, **k: calls.append(1))

    def thrice(x):
        return 3 * x
    kernel = fused.Fused(thrice, min_cells=1000)
    monkeypatch.setenv("NMAG_COMPILE", "0")
    kernel(torch.ones(3, 1, 40, 40))
    monkeypatch.setenv("NMAG_COMPILE", "auto")
    kernel(torch.ones(3, 1, 10, 10))          # 100 cells: below min_cells
    assert fused.status()["thrice"] == {} and calls == []
    assert kernel.wanted(1600) and not kernel.wanted(100)


def test_the_nmag_command_ends_at_once_while_a_compile_runs(tmp_path):
    # shutting down beside a running compile could abort (status 134) after the work was done;
    # the installed command leaves with its own exit code instead, and main() never exits
    import subprocess
    import sys
    code = ("import sys, engine.fused as f, nmag_cli\n"
            "f.busy = lambda: True\n"
            "nmag_cli.main = lambda argv=None: 2\n"
            "nmag_cli.console_main()\n"
            "print('returned')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "returned" not in r.stdout
    code = code.replace("lambda: True", "lambda: False")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "returned" in r.stdout


def test_at_exit_drops_the_compiles_still_queued(monkeypatch):
    q = __import__("queue").Queue()
    q.put(("kernel", "kind", []))
    monkeypatch.setattr(fused, "_QUEUE", q)
    monkeypatch.setattr(fused, "_WORKER", [])
    fused._at_exit(timeout_s=1.0)
    assert q.unfinished_tasks == 0 and q.empty()
