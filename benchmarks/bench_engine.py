"""Engine speed: the demag field and one full LLG step, ours and (where installed) magnum.np's.

For each grid (n x n x 1 from 64 to 1024, and 128 x 128 x 8) and precision (float32, float64):
- demag: one H_d evaluation (FFTDemag.h), kernel built beforehand (its build time is reported);
- RK45 step: one accepted Dormand-Prince step of the full Simulation (exchange + demag +
  Zeeman), FSAL, so 6 effective-field evaluations; RK4 step: 4 evaluations;
- throughput as mumax3 reports it: cells x torque evaluations per second.
The peer runs in the same process, so it shares the allocator settings engine.demag makes
(glibc keeps large freed buffers: both codes gain, at 1024^2 by 2-3x); --malloc-default
measures both with glibc's defaults instead. Where `import magnumnp` works (pip install magnumnp; GPL, used here only as a peer to time,
nothing of it is copied), the same run times its DemagField.h and one RKF45 step (6 evaluations,
same terms: demag + exchange + external) on the same grids, and prints our speed as a ratio
(> 1: we are faster). Times are the best of several repetitions after warm-up (the least
disturbed by other processes); torch's thread count is reported.

    python benchmarks/bench_engine.py                 # the whole table
    python benchmarks/bench_engine.py --quick         # small grids, fewer repetitions
    python benchmarks/bench_engine.py --sizes 256 512 --json benchmarks/results/engine.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine.threads  # noqa: E402,F401 - first: the app's OpenMP wait policy (idle threads sleep), read when torch loads
import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine import Material, Mesh, Problem, Simulation, SolverSpec  # noqa: E402
from engine import fused  # noqa: E402
from engine.demag import FFTDemag  # noqa: E402
from engine.demag_kernel import demag_tensor_quadrant  # noqa: E402

CELL_NM = (4.0, 4.0, 4.0)    # mumax3's benchmark cells
PERMALLOY = dict(Ms=8e5, A=1.3e-11, alpha=0.02)
DT = 1e-14                   # the step timed: small enough that RK45 accepts it at once


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def best_time(fn, min_reps=3, min_total=0.6, max_reps=50):
    """Best time of fn() in s (wall clock, or this process's CPU time with --clock cpu), after one
    warm-up call, over at least min_reps calls and at least min_total seconds."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_total and len(times) < max_reps):
        t0 = _clock()
        fn()
        times.append(_clock() - t0)
    return min(times)


def grids(sizes, with_3d=True):
    out = [(s, s, 1) for s in sizes]
    if with_3d:
        out.append((128, 128, 8))
    return out


# --------------------------------------------------------------------------------- ours
class _DemagState:
    def __init__(self, m, mask, Ms):
        self.m, self.mask, self.Ms = m, mask, Ms


def ours_demag(n, dtype, reps):
    nx, ny, nz = n
    d = tuple(c * 1e-9 for c in CELL_NM)
    demag_tensor_quadrant.cache_clear()
    t0 = time.perf_counter()
    dem = FFTDemag(n, d, dtype)
    t_kernel = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    m = torch.tensor(rng.normal(size=(3, nz, ny, nx)), dtype=dtype)
    m /= torch.linalg.vector_norm(m, dim=0)
    mask = torch.ones((nz, ny, nx), dtype=torch.bool)
    st = _DemagState(m, mask, torch.full((nz, ny, nx), PERMALLOY["Ms"], dtype=dtype))
    t = best_time(lambda: dem.h(st), **reps)
    return t, t_kernel, dem.backend


def demag_breakdown(n, dtype, reps):
    """Where a demag's time goes (ms): our pipeline's forward, kernel multiply and inverse, and
    the same three components through torch's full padded rfftn + irfftn (the transforms a code
    without pruning or backend choice pays: what magnum.np calls). The ratio a demag could reach
    against that peer if our multiply were free is bounded by peer demag / (forward + inverse)."""
    nx, ny, nz = n
    dem = FFTDemag(n, tuple(c * 1e-9 for c in CELL_NM), dtype)
    pipe = dem._pipe
    M = torch.rand((3, nz, ny, nx), dtype=dtype)
    t_f = best_time(lambda: pipe.forward(M), **reps)
    X = pipe.forward(M)
    t_m = best_time(lambda: dem._multiply(X, dem._kneg), **reps)
    t_i = best_time(lambda: pipe.inverse(pipe.forward(M)), **reps) - t_f
    dims = tuple(d for d, k in ((-3, nz), (-2, ny), (-1, nx)) if k > 1)
    size = tuple(2 * k for k in (nz, ny, nx) if k > 1)
    Xf = torch.fft.rfftn(M, s=size, dim=dims)
    t_tf = best_time(lambda: torch.fft.rfftn(M, s=size, dim=dims), **reps)
    t_ti = best_time(lambda: torch.fft.irfftn(Xf, s=size, dim=dims), **reps)
    return {"forward_ms": 1e3 * t_f, "multiply_ms": 1e3 * t_m, "inverse_ms": 1e3 * max(t_i, 0.0),
            "torch_full_rfftn_ms": 1e3 * t_tf, "torch_full_irfftn_ms": 1e3 * t_ti, "backend": dem.backend}


def ours_step(n, dtype, method, reps):
    p = Problem(mesh=Mesh(tuple(n), CELL_NM), materials=[Material(**PERMALLOY)],
                solver=SolverSpec(method=method, precision="float64" if dtype == torch.float64 else "float32",
                                  dt_ps=DT * 1e12, max_dt_ps=DT * 1e12, tolerance=1e-1, demag="fft"))
    p.initial.kind, p.initial.params = "random", {"seed": 1}
    p.field.B_mT = (1.0, 2.0, 3.0)
    sim = Simulation(p)
    sim.step()  # fills RK45's first-same-as-last derivative; starts the kernels' compiles (engine.fused)
    fused.wait_all()
    sim.step()
    rejected = getattr(sim.integrator, "rejected", 0)
    t = best_time(sim.step, **reps)
    assert getattr(sim.integrator, "rejected", 0) == rejected, "a timed RK45 step was rejected"
    return t


# --------------------------------------------------------------------------------- magnum.np
def import_magnumnp():
    """magnum.np, or None. Its import sets torch's default dtype and device: restored here."""
    saved = torch.get_default_dtype()
    try:
        import logging as _logging
        _logging.disable(_logging.CRITICAL)
        import magnumnp as mnp
    except Exception:   # not installed, or failing to import: the peer is optional
        return None
    finally:
        torch.set_default_dtype(saved)
        torch.set_default_device("cpu")
    return mnp


def magnum_setup(mnp, n, dtype):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        mesh = mnp.Mesh(tuple(n), tuple(c * 1e-9 for c in CELL_NM))
        state = mnp.State(mesh)
        state.material = dict(PERMALLOY)
        rng = np.random.default_rng(0)
        m = torch.tensor(rng.normal(size=tuple(n) + (3,)), dtype=dtype)
        state.m = m / torch.linalg.vector_norm(m, dim=-1, keepdim=True)
        demag = mnp.DemagField()
        exchange = mnp.ExchangeField()
        external = mnp.ExternalField(torch.tensor([1.0, 2.0, 3.0], dtype=dtype) * 1e-3 / (4e-7 * np.pi))
        t0 = time.perf_counter()
        demag.h(state)
        t_kernel = time.perf_counter() - t0
        llg = mnp.LLGSolver([demag, exchange, external])
    finally:
        torch.set_default_dtype(saved)
    return state, demag, llg, t_kernel


def magnum_times(mnp, n, dtype, reps):
    saved = torch.get_default_dtype()
    state, demag, llg, t_kernel = magnum_setup(mnp, n, dtype)
    torch.set_default_dtype(dtype)
    try:
        t_demag = best_time(lambda: demag.h(state), **reps)
        solver = llg._solver
        solver._dt = DT
        # one RKF45 attempt: 6 effective-field evaluations (what one accepted step costs)
        t_step = best_time(lambda: solver._try_step(state.t, state.m, state=state), **reps)
    finally:
        torch.set_default_dtype(saved)
    return t_demag, t_step, t_kernel


# --------------------------------------------------------------------------------- targets
TARGETS = "demag >= 2.5x magnum.np at 512^2, 1024^2, 2048^2; RK45 step >= 2x; >= 6e6 cell-evaluations/s at 1024^2 float32"


def print_targets(rows):
    """The issue's targets, met or missed, from this run's rows."""
    print(f"# targets: {TARGETS}")
    for r in rows:
        if r["grid"][2] != 1 or r["grid"][0] < 512:
            continue
        grid = f"{r['grid'][0]}^2 {r['precision']}"
        if "ratio_demag" in r:
            print(f"#   {grid}: demag {r['ratio_demag']:.2f}x ({'met' if r['ratio_demag'] >= 2.5 else 'MISSED'}), "
                  f"RK45 step {r['ratio_rk45_step']:.2f}x ({'met' if r['ratio_rk45_step'] >= 2 else 'MISSED'})")
        if r["grid"][0] == 1024 and r["precision"] == "float32":
            ev = r["rk45_cell_evals_per_s"]
            print(f"#   1024^2 float32: {ev / 1e6:.1f}e6 cell-evaluations/s ({'met' if ev >= 6e6 else 'MISSED'})")


def print_breakdown(rows):
    """Our demag's parts against the full transforms, and the ratio's bound (see demag_breakdown)."""
    print("# demag parts, ms: ours forward / multiply / inverse (backend) | torch full rfftn / irfftn "
          "| peer demag / (our forward + inverse): the demag ratio's bound")
    for r in rows:
        b = r.get("breakdown")
        if not b:
            continue
        bound = (f"{r['peer_demag_s'] * 1e3 / (b['forward_ms'] + b['inverse_ms']):.2f}x"
                 if "peer_demag_s" in r else "-")
        print(f"#   {'x'.join(map(str, r['grid'])):>12} {r['precision']}: {b['forward_ms']:.1f} / {b['multiply_ms']:.1f} / "
              f"{b['inverse_ms']:.1f} ({b['backend']}) | {b['torch_full_rfftn_ms']:.1f} / {b['torch_full_irfftn_ms']:.1f} | {bound}")


# --------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="n for n x n x 1 grids (default 64..2048)")
    ap.add_argument("--no-3d", action="store_true", help="leave out the 128 x 128 x 8 grid")
    ap.add_argument("--quick", action="store_true", help="64 to 256 and fewer repetitions")
    ap.add_argument("--precision", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--no-peer", action="store_true", help="do not time magnum.np even if installed")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before timing")
    ap.add_argument("--malloc-default", action="store_true",
                    help="keep glibc's default allocator thresholds (NMAG_MALLOC_TUNING=0, see engine.demag)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the demag's parts (forward, multiply, inverse) and torch's full padded "
                         "transforms: the limit of the demag ratio")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                    help="wall (default) or cpu: the process's CPU time, which other jobs on a busy machine "
                         "disturb far less than the wall clock (one thread: the two agree on a quiet machine)")
    args = ap.parse_args(argv)
    global _clock
    _clock = CLOCK[args.clock]
    if args.malloc_default:
        os.environ["NMAG_MALLOC_TUNING"] = "0"

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or ([64, 128, 256] if args.quick else [64, 128, 256, 512, 1024, 2048])
    reps = dict(min_reps=2, min_total=0.2) if args.quick else dict(min_reps=3, min_total=0.6)
    mnp = None if args.no_peer else import_magnumnp()
    peer = None
    if mnp is not None:
        peer = f"magnum.np {mnp.__version__}"
    threads = torch.get_num_threads()
    malloc = "glibc defaults" if args.malloc_default else "engine.demag heap tuning (shared by the peer)"
    print(f"# torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"peer: {peer or 'magnum.np not installed'}; allocator: {malloc}")
    print("# times: best of several after warm-up; Mcell-ev/s = 1e6 cells x torque evaluations per second "
          "(RK45 step = 6 evaluations, RK4 = 4); ratio = peer time / our time (> 1: we are faster)")
    head = (f"{'grid':>14} {'prec':>7} {'fft':>5} | {'demag ms':>9} {'RK45 ms':>9} {'Mcell-ev/s':>10} {'RK4 ms':>9} "
            f"{'Mcell-ev/s':>10} | {'peer demag':>10} {'peer RKF45':>10} {'ratio demag':>11} {'ratio step':>10}")
    print(head)
    print("-" * len(head))
    rows = []
    for n in grids(sizes, not args.no_3d):
        cells = n[0] * n[1] * n[2]
        for prec in args.precision:
            dtype = torch.float64 if prec == "float64" else torch.float32
            t_dem, t_kernel, backend = ours_demag(n, dtype, reps)
            t45 = ours_step(n, dtype, "rk45", reps)
            t4 = ours_step(n, dtype, "rk4", reps)
            row = {"grid": list(n), "cells": cells, "precision": prec, "threads": threads, "fft_backend": backend,
                   "demag_s": t_dem, "kernel_build_s": t_kernel, "rk45_step_s": t45, "rk4_step_s": t4,
                   "rk45_cell_evals_per_s": cells * 6 / t45, "rk4_cell_evals_per_s": cells * 4 / t4}
            if mnp is not None:
                try:
                    pd, ps, pk = magnum_times(mnp, n, dtype, reps)
                    row.update({"peer": peer, "peer_demag_s": pd, "peer_rkf45_step_s": ps, "peer_kernel_build_s": pk,
                                "peer_cell_evals_per_s": cells * 6 / ps,
                                "ratio_demag": pd / t_dem, "ratio_rk45_step": ps / t45})
                except Exception as e:  # report and go on: the peer is optional
                    row["peer_error"] = f"{type(e).__name__}: {e}"
            if args.breakdown:
                row["breakdown"] = demag_breakdown(n, dtype, reps)
            rows.append(row)
            grid = "x".join(str(k) for k in n)
            peer_txt = (f"{row['peer_demag_s'] * 1e3:10.2f} {row['peer_rkf45_step_s'] * 1e3:10.2f} "
                        f"{row['ratio_demag']:10.2f}x {row['ratio_rk45_step']:9.2f}x") if "peer_demag_s" in row else \
                f"{'-':>10} {'-':>10} {'-':>11} {'-':>10}"
            print(f"{grid:>14} {prec:>7} {backend:>5} | {t_dem * 1e3:9.2f} {t45 * 1e3:9.2f} {row['rk45_cell_evals_per_s'] / 1e6:10.1f} "
                  f"{t4 * 1e3:9.2f} {row['rk4_cell_evals_per_s'] / 1e6:10.1f} | {peer_txt}", flush=True)
    print_targets(rows)
    if args.breakdown:
        print_breakdown(rows)
    compiled = {name: sorted(set(kinds.values())) for name, kinds in fused.status().items() if kinds}
    print(f"# compiled kernels (engine.fused, NMAG_COMPILE={fused.mode()}): "
          + (", ".join(f"{k} {'/'.join(v)}" for k, v in compiled.items()) or "none used"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "threads": threads, "cpus": os.cpu_count(),
                "machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
                "peer": peer, "cell_nm": CELL_NM, "dt_s": DT, "allocator": malloc, "compiled_kernels": compiled,
                "timing": f"best of >= 3 repetitions after one warm-up call, {args.clock} clock",
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
        print(f"# wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
