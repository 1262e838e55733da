"""Sweep speed-up: 8 short standard-problem-4 points on a local Dask cluster of 2 worker
processes against the same 8 points one after another in this process.

    python benchmarks/bench_sweep.py [--points 8] [--workers 2] [--duration-ns 0.1]
                                     [--json benchmarks/results/sweep.json]

Prints a table: wall time of each way, speed-up (sequential / Dask), the cluster's start-up,
and the per-point overhead of going through Dask:

    overhead per point = (Dask wall x workers - sum of the points' own run times) / points

(time a worker is not running a point: sending the task, importing on first use, sending the
result back, writing it). CPU seconds used by this process and by the workers are printed
too: on a shared machine they tell whether the workers got their cores. Both ways write the
same sweep results file format, one point at a time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# one FFT backend in every process (the automatic choice times them per process and may differ
# between the workers and this one, and with it the last bits): a like-for-like comparison
os.environ.setdefault("NMAG_FFT", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sp4_sweep(points: int, duration_ns: float, folder: Path) -> Path:
    """A sweep of SP4 with `points` field angles around field 1 (25 mT, 160..200 degrees)."""
    angles = [160 + 40 * k / max(1, points - 1) for k in range(points)]
    vals = ", ".join(f"[{25 * math.cos(math.radians(a)):.4f}, {25 * math.sin(math.radians(a)):.4f}, 0.0]"
                     for a in angles)
    p = folder / "bench_sp4.toml"
    p.write_text(f'format = "nmag-sweep"\nversion = 1\nproblem = "{ROOT / "examples" / "sp4.toml"}"\n'
                 f'[[parameters]]\nkey = "stages[1].B_mT"\nvalues = [{vals}]\n'
                 f'[[parameters]]\nkey = "stages[1].duration_ns"\nvalues = [{duration_ns}]\n'
                 '[outputs]\nscalars = ["final_mean_m", "first_zero_mx_ns"]\n')
    return p


def _warm_up(sweep_path: str) -> None:
    """Run on each worker (client.run): one tiny point, so imports and the demag kernel are
    not timed, as for the sequential side."""
    import torch
    from engine.sweep import load_sweep
    from engine.sweep.point import make_task, run_point
    torch.set_num_threads(1)
    run_point(make_task(load_sweep(sweep_path), 0))


def _cpu(pids) -> float:
    import psutil
    total = 0.0
    for pid in pids:
        try:
            c = psutil.Process(pid).cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration-ns", type=float, default=0.1)
    ap.add_argument("--json", help="write the numbers here")
    a = ap.parse_args(argv)

    import numpy as np
    import torch
    from engine.sweep import load_sweep
    from engine.sweep.cluster import open_client
    from engine.sweep.results import read_sweep
    from engine.sweep.runner import run_sweep
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        sweep = load_sweep(sp4_sweep(a.points, a.duration_ns, tmp))
        load0 = os.getloadavg()[0]

        # one after another, in this process (after one warm-up point, so imports and the
        # demag kernel cache do not count against it)
        warm = sp4_sweep(1, 0.01, tmp)
        warm = warm.rename(tmp / "bench_warm.toml")
        run_sweep(load_sweep(warm), tmp / "warm.h5", None)
        c0, t0 = time.process_time(), time.perf_counter()
        seq = run_sweep(sweep, tmp / "seq.h5", None)
        t_seq, cpu_seq = time.perf_counter() - t0, time.process_time() - c0

        # Dask: a LocalCluster of `workers` processes, one thread each, on 127.0.0.1
        t0 = time.perf_counter()
        with open_client(workers=a.workers) as client:
            client.wait_for_workers(a.workers, timeout=120)
            t_start = time.perf_counter() - t0
            # the same warm-up point on every worker (imports, demag kernel), as this process had
            t0 = time.perf_counter()
            client.run(_warm_up, str(tmp / "bench_warm.toml"))
            t_warm = time.perf_counter() - t0
            pids = list(client.run(os.getpid).values())
            cw0 = _cpu(pids)
            t0 = time.perf_counter()
            par = run_sweep(sweep, tmp / "dask.h5", client)
            t_dask = time.perf_counter() - t0
            cpu_workers = _cpu(pids) - cw0
        load1 = os.getloadavg()[0]
        same = all(np.array_equal(read_sweep(tmp / "seq.h5")["scalars"][k],
                                  read_sweep(tmp / "dask.h5")["scalars"][k], equal_nan=True)
                   for k in sweep.scalars)

    n = a.points
    speedup = t_seq / t_dask
    overhead = (t_dask * a.workers - sum(par.wall_s)) / n
    seq_overhead = (t_seq - sum(seq.wall_s)) / n
    rows = [
        ("points", n), ("workers", a.workers), ("SP4 run per point (ns)", a.duration_ns),
        ("one after another: wall s", round(t_seq, 2)),
        ("one after another: CPU s", round(cpu_seq, 2)),
        ("Dask: wall s (cluster already up)", round(t_dask, 2)),
        ("Dask: worker CPU s", round(cpu_workers, 2)),
        ("Dask: cluster start-up s", round(t_start, 2)),
        ("Dask: worker warm-up s (one 0.01 ns point each)", round(t_warm, 2)),
        ("speed-up (sequential / Dask)", round(speedup, 2)),
        ("speed-up including start-up and warm-up", round(t_seq / (t_dask + t_start + t_warm), 2)),
        ("mean point run s (sequential / on workers)", f"{np.mean(seq.wall_s):.2f} / {np.mean(par.wall_s):.2f}"),
        ("overhead per point s (Dask)", round(overhead, 3)),
        ("overhead per point s (sequential: writing)", round(seq_overhead, 3)),
        ("scalars identical in both", same),
        ("FFT backend (NMAG_FFT)", os.environ.get("NMAG_FFT")),
        ("load average before / after", f"{load0:.1f} / {load1:.1f}"),
    ]
    w = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    print(f"target: speed-up >= 1.8 on 2 cores: {'met' if speedup >= 1.8 else 'NOT met'} "
          f"(machine shared with other jobs: load average {load0:.1f})")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({k: v for k, v in rows} | {
            "wall_s_points_sequential": seq.wall_s, "wall_s_points_dask": par.wall_s,
            "cpu_count": os.cpu_count()}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
