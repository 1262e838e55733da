"""Standard problem 4 end to end: `nmag run examples/sp4.toml` against magnum.np's own run of the
same problem (benchmarks/peers/magnumnp_sp4.py: relax, then 1 ns), as whole processes, back to
back, A B A B, one thread each (OMP_NUM_THREADS=1).

Each run's wall time and CPU time (user + sys of the child process, from getrusage) are recorded;
the ratio peer / ours is taken pair by pair and its median printed (> 1: we are faster). On a busy
shared machine the CPU-time ratio is the trustworthy one (other jobs stretch the wall clock of
whichever process they happen to meet); on a quiet one the two agree. The first zero of <mx>
is printed for both, so a fast wrong answer cannot pass unnoticed.

    python benchmarks/bench_sp4.py [--pairs 3] [--json benchmarks/results/sp4_vs_magnumnp.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = 2.0


def timed(cmd, env) -> tuple[float, float, int]:
    """(wall s, CPU s of the child, exit code) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, rc


def first_zero_ns(t, mx) -> float:
    i = np.nonzero((mx[:-1] > 0) & (mx[1:] <= 0))[0]
    if not len(i):
        return float("nan")
    i = i[0]
    return float((t[i] + (t[i + 1] - t[i]) * mx[i] / (mx[i] - mx[i + 1])) * 1e9)


def ours_first_zero(path) -> float:
    import h5py
    with h5py.File(path, "r") as f:
        tab = f["table"][()]
        names = list(tab.dtype.names) if tab.dtype.names else [c.decode() if isinstance(c, bytes) else c
                                                                 for c in f["table"].attrs["columns"]]
        cols = {n: (tab[n] if tab.dtype.names else tab[:, names.index(n)]) for n in ("t", "mx")}
    return first_zero_ns(np.asarray(cols["t"]), np.asarray(cols["mx"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    tmp = Path(tempfile.mkdtemp(prefix="bench_sp4_"))
    ours_out, peer_out = tmp / "ours.h5", tmp / "peer.tsv"
    ours = [sys.executable, "-m", "engine.cli", "run", "examples/sp4.toml", "--out", str(ours_out)]
    peer = [sys.executable, "benchmarks/peers/magnumnp_sp4.py", "--out", str(peer_out)]
    try:
        import magnumnp  # noqa: F401
        have_peer = True
    except Exception:
        have_peer = False
    runs = []
    print(f"# SP4 (100 x 25 x 1, relax + 1 ns), one thread each, {args.pairs} pairs A B A B; ratio = peer / ours")
    print(f"{'pair':>4} | {'ours wall':>9} {'ours cpu':>9} | {'peer wall':>9} {'peer cpu':>9} | {'wall ratio':>10} {'cpu ratio':>9}")
    for k in range(args.pairs):
        ow, oc, orc = timed(ours, env)
        if orc != 0:
            raise SystemExit(f"nmag run failed (exit {orc})")
        row = {"ours_wall_s": ow, "ours_cpu_s": oc}
        if have_peer:
            pw, pc, prc = timed(peer, env)
            if prc == 0:
                row.update(peer_wall_s=pw, peer_cpu_s=pc, wall_ratio=pw / ow, cpu_ratio=pc / oc)
        runs.append(row)
        print(f"{k:>4} | {ow:9.2f} {oc:9.2f} | {row.get('peer_wall_s', float('nan')):9.2f} "
              f"{row.get('peer_cpu_s', float('nan')):9.2f} | {row.get('wall_ratio', float('nan')):9.2f}x "
              f"{row.get('cpu_ratio', float('nan')):8.2f}x", flush=True)
    summary = {"ours_first_zero_mx_ns": ours_first_zero(ours_out)}
    if have_peer and all("cpu_ratio" in r for r in runs):
        d = np.loadtxt(peer_out)
        summary.update(peer_first_zero_mx_ns=first_zero_ns(d[:, 0], d[:, 1]),
                       median_wall_ratio=statistics.median(r["wall_ratio"] for r in runs),
                       median_cpu_ratio=statistics.median(r["cpu_ratio"] for r in runs))
        print(f"# median ratio: wall {summary['median_wall_ratio']:.2f}x, CPU {summary['median_cpu_ratio']:.2f}x "
              f"(target >= {TARGET}x: {'met' if summary['median_cpu_ratio'] >= TARGET else 'MISSED'} on CPU time)")
        print(f"# first zero of <mx>: ours {summary['ours_first_zero_mx_ns']:.4f} ns, "
              f"magnum.np {summary['peer_first_zero_mx_ns']:.4f} ns")
    else:
        print("# magnum.np not installed: ours only")
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                "load_average": os.getloadavg(), "threads": 1}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "runs": runs, "summary": summary}, indent=1))
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
