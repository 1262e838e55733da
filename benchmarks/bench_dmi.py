"""DMI problems: the torch DMI term alone, and a whole step of the skyrmion disk example scaled
to n x n cells, with the torch terms and with the compiled cell kernel, in the same run.

Why: the torch path is what runs without a C compiler and on a GPU; the cell kernel is what
runs by default on a CPU. The table shows what each costs and the ratio (torch / kernel).
The disk keeps the example's cells (2 x 2 x 1 nm), material and skyrmion, its radius scaled to
the grid. Times are the best of several repetitions after warm-up (one accepted RK45 step is 6
evaluations).

    python benchmarks/bench_dmi.py                       # 64, 256, 512; float32 and float64
    python benchmarks/bench_dmi.py --sizes 64 --json benchmarks/results/dmi.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine.threads  # noqa: E402,F401 - first: the app's OpenMP wait policy, read when torch loads
import torch  # noqa: E402

import bench_engine  # noqa: E402 - beside this file: its timer
from engine import Mesh, Problem, Simulation  # noqa: E402
from engine.dmi import InterfacialDMI  # noqa: E402

EXAMPLE = ROOT / "examples" / "skyrmion_disk.toml"


def best_time(fn):
    """Best wall time of fn() in s after one warm-up call (bench_engine's timer, a second at least)."""
    return bench_engine.best_time(fn, min_total=1.0, max_reps=200)


def disk_problem(n: int, precision: str) -> Problem:
    """The skyrmion disk example on an n x n grid (the disk fills the same share of the grid)."""
    p = Problem.from_toml(EXAMPLE)
    scale = n / p.mesh.n[0]
    p.mesh = Mesh((n, n, 1), p.mesh.cell_nm)
    p.geometry[0].params["radii_nm"] = [r * scale for r in p.geometry[0].params["radii_nm"]]
    p.initial.params["radius_nm"] *= scale
    p.solver.precision = precision
    return p


def simulation(p: Problem, kernel: str) -> Simulation:
    """A Simulation built with NMAG_CELL_KERNEL=kernel ("0": the torch terms; "" the default)."""
    old = os.environ.get("NMAG_CELL_KERNEL")
    os.environ["NMAG_CELL_KERNEL"] = kernel
    try:
        return Simulation(p)
    finally:
        if old is None:
            os.environ.pop("NMAG_CELL_KERNEL")
        else:
            os.environ["NMAG_CELL_KERNEL"] = old


def row(n: int, precision: str) -> dict:
    p = disk_problem(n, precision)
    torch_sim, kernel_sim = simulation(p, "0"), simulation(p, "")
    dmi = next(t for t in torch_sim.terms if isinstance(t, InterfacialDMI))
    out = dict(n=n, precision=precision,
               dmi_h_torch_ms=1e3 * best_time(lambda: dmi.h(torch_sim.state)),
               step_torch_ms=1e3 * best_time(torch_sim.step),
               step_kernel_ms=1e3 * best_time(kernel_sim.step) if kernel_sim.cells is not None else None,
               kernel_why=kernel_sim.cells_why)
    out["torch_over_kernel"] = (out["step_torch_ms"] / out["step_kernel_ms"]) if out["step_kernel_ms"] else None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--precision", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}")
    print(f"{'grid':>9} {'precision':>9} {'DMI h, torch':>13} {'step, torch':>12} {'step, kernel':>13} {'torch/kernel':>13}")
    for n in a.sizes:
        for precision in a.precision:
            r = row(n, precision)
            rows.append(r)
            kern = f"{r['step_kernel_ms']:10.2f} ms" if r["step_kernel_ms"] else f"{'(' + str(r['kernel_why']) + ')':>13}"
            ratio = f"{r['torch_over_kernel']:13.2f}" if r["torch_over_kernel"] else f"{'-':>13}"
            print(f"{n:>4} x {n:<4}{precision:>9} {r['dmi_h_torch_ms']:10.3f} ms {r['step_torch_ms']:9.2f} ms {kern} {ratio}",
                  flush=True)
    if a.json:
        a.json.write_text(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(),
                                          date=time.strftime("%Y-%m-%d %H:%M"), rows=rows), indent=1))
        print("wrote", a.json)


if __name__ == "__main__":
    main()
