"""The thread policy on a busy machine (issue 9): muMAG standard problem 4 run by `nmag run`,
quiet and with busy background processes, with the policy (engine.threads: free cores, passive
OpenMP waits) and without it (threads = all cores, OpenMP spinning: torch's default).

    python benchmarks/bench_threads.py [--duration-ns 0.2] [--busy 2] [--repeat 1]
                                       [--json benchmarks/results/threads.json]

Each configuration is a fresh `python -m engine.cli run` process (the OpenMP settings are read
when torch loads), timed from start to exit. The background load is `--busy` processes spinning
in pure Python. Target: with the policy, the busy time within 2x of the quiet time.
The machine's own load (other jobs) is printed with each row: read the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spinner():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_once(problem: Path, out: Path, env_extra: dict) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NMAG_THREADS",
                                                           "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(problem), "--out", str(out), "--quiet"],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"nmag run failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ns", type=float, default=0.2, help="length of the field stage (SP4 has 1 ns)")
    ap.add_argument("--busy", type=int, default=2, help="busy background processes")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = (ROOT / "examples" / "sp4.toml").read_text().replace("duration_ns = 1.0", f"duration_ns = {args.duration_ns}")
    configs = {
        "policy": {},                                                        # what nmag run does now
        "no policy": {"NMAG_THREADS": str(cores), "OMP_WAIT_POLICY": "ACTIVE"},   # torch's default
    }
    rows = []
    with tempfile.TemporaryDirectory() as d:
        problem = Path(d) / "sp4.toml"
        problem.write_text(text)
        out = Path(d) / "sp4.h5"
        for load in ("quiet", "busy"):
            procs = [spinner() for _ in range(args.busy)] if load == "busy" else []
            try:
                if procs:
                    time.sleep(2.0)
                for name, env in configs.items():
                    times = [run_once(problem, out, env) for _ in range(args.repeat)]
                    rows.append({"load": load, "config": name, "seconds": min(times),
                                 "loadavg": os.getloadavg()[0], "busy_processes": len(procs)})
                    print(f"{load:6s} {name:10s} {min(times):7.1f} s   (load average {os.getloadavg()[0]:.1f})",
                          flush=True)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
    t = {(r["load"], r["config"]): r["seconds"] for r in rows}
    print(f"\nSP4 (relax + {args.duration_ns} ns), {cores} cores, {args.busy} busy background processes")
    print("| config | quiet s | busy s | busy / quiet |")
    print("|---|---|---|---|")
    for name in configs:
        q, b = t[("quiet", name)], t[("busy", name)]
        print(f"| {name} | {q:.1f} | {b:.1f} | {b / q:.2f} |")
    ratio = t[("busy", "policy")] / t[("quiet", "policy")]
    print(f"\npolicy busy/quiet = {ratio:.2f} (target <= 2); policy vs no policy when busy: "
          f"{t[('busy', 'no policy')] / t[('busy', 'policy')]:.2f}x faster")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "cores": cores, "duration_ns": args.duration_ns,
                                               "busy": args.busy, "ratio_policy_busy_over_quiet": ratio}, indent=1))


if __name__ == "__main__":
    main()
