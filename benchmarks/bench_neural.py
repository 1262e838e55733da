"""Neural vs FFT demag: time per evaluation from 64x64 to 2048x2048, one and two threads.

    python benchmarks/bench_neural.py [--sizes 64,128,...] [--quick] [--json PATH] [--png PATH]

Each (method, size) runs in its own subprocess so that its peak memory (max RSS above the
process's baseline after imports and set-up of the other method's nothing) can be read. Both
methods run in float32 (the app's default precision) on a full N x N film of 3 nm cubic cells
with a random magnetization; the FFT is the engine's exact FFTDemag (pruned, real kernel).
Set-up (the FFT's kernel, the network's weights) is timed separately and not counted per call.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(method, n, threads, repeats):
    import resource

    import torch
    sys.path.insert(0, str(ROOT))
    from engine.demag import FFTDemag
    from engine.neural.demag import NeuralDemag
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    d = (3e-9, 3e-9, 3e-9)
    t0 = time.perf_counter()
    impl = FFTDemag((n, n, 1), d, torch.float32) if method == "fft" else NeuralDemag((n, n, 1), d, torch.float32)
    setup = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)
    M = torch.randn(3, 1, n, n, generator=g) * 8e5
    out = {"method": method, "n": n, "setup_s": setup, "times": {}}
    for th in threads:
        torch.set_num_threads(th)
        with torch.inference_mode():
            impl.h_from_M(M)   # warm-up
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                impl.h_from_M(M)
                ts.append(time.perf_counter() - t0)
        out["times"][str(th)] = min(ts)
    out["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0
    print(json.dumps(out))


def run_one(method, n, threads, repeats):
    cmd = [sys.executable, __file__, "--worker", method, str(n), ",".join(map(str, threads)), str(repeats)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def plot(results, path, threads):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
    for method, mk in (("fft", "o"), ("neural", "s")):
        for th, ls in zip(threads, ("-", "--")):
            pts = [(r["n"] ** 2, r["times"][str(th)] / r["n"] ** 2 * 1e9) for r in results if r["method"] == method]
            if pts:
                x, y = zip(*pts)
                ax.loglog(x, y, marker=mk, ls=ls, label=f"{method}, {th} thread{'s' if th > 1 else ''}")
    ax.set_xlabel("cells N")
    ax.set_ylabel("time per cell per evaluation (ns)")
    ax.set_title("demag evaluation on this CPU (float32)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,128,256,512,1024,2048")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="sizes 64..512, fewer repeats")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/neural_speed.json"))
    ap.add_argument("--png", default=str(ROOT / "benchmarks/results/neural_speed.png"))
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        m, n, th, rep = a.worker
        return worker(m, int(n), [int(t) for t in th.split(",")], int(rep))
    sizes = [64, 128, 256, 512] if a.quick else [int(s) for s in a.sizes.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    results = []
    hdr = f"{'N':>6} {'thr':>3} {'fft ms':>10} {'neural ms':>10} {'neural/fft':>10} {'fft MB':>8} {'neural MB':>9}"
    print(hdr)
    for n in sizes:
        rep = 2 if n >= 1024 else (3 if a.quick or n >= 512 else 7)
        rf = run_one("fft", n, threads, rep)
        rn = run_one("neural", n, threads, rep)
        results += [rf, rn]
        for th in threads:
            tf, tn = rf["times"][str(th)], rn["times"][str(th)]
            print(f"{n:>6} {th:>3} {tf * 1e3:>10.2f} {tn * 1e3:>10.2f} {tn / tf:>10.2f} "
                  f"{rf['peak_mb']:>8.0f} {rn['peak_mb']:>9.0f}", flush=True)
    info = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                python=platform.python_version(), torch=__import__("torch").__version__,
                date=time.strftime("%Y-%m-%d %H:%M"), dtype="float32", results=results)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(info, indent=1))
    if a.png:
        plot(results, a.png, threads)
    return info


if __name__ == "__main__":
    main()
