"""Neural vs FFT demag: the targets of generation 2, printed and written to benchmarks/results/.

    python benchmarks/bench_neural.py [--sizes 128,256,...] [--threads 1,2] [--frontier] [--errors]
                                      [--omp-wait passive|active] [--device cuda] [--json PATH] [--png PATH]

1. Speed: one evaluation of the shipped network (NeuralDemag, default member: 3 nm cubic cells)
   against the engine's exact FFTDemag (whatever backend it uses), both float32 on a full
   N x N film with a random magnetization, in the SAME process, calls interleaved (fft, net,
   fft, net, ...), minimum over the repeats; one process per size. Target: neural/FFT <= 0.7
   at 256^2, 1024^2, 2048^2 on 1 and 2 threads. Time per cell of the network from 128^2 to
   2048^2: target flat within 1.5x (plot: --png), printed twice: interleaved (each call after
   the exact FFT of the same grid, which leaves the cache full of lines it wrote; the network's
   call writes them back as it evicts them, about 3 ms here whatever the grid, measured in
   docs/neural.md) and alone (column "alone": the network call after call, minimum over the
   repeats, the network's own cost per cell). Column near/fft: the member's exact near field
   alone (computed as the network computes it) against the FFT, the floor under neural/FFT that
   no learned part can go below. Column vs fastest: neural on th threads against the fastest
   exact path that may use th threads (the FFT on any measured count up to th: on two threads a
   small grid's FFT can be slower than on one), the stricter race.
2. --frontier: error against time. For each trained network given by --frontier-models
   NAME=PATH,... (any config: width, near radius, stem): neural/FFT at 256^2, 1024^2, 2048^2
   (1 thread, its own weights run as the app runs a member, at --dz-dx) and its held-out error
   (engine.neural.card_measure, cached beside the weights). --weights PATH times one such file
   in place of the card's member (a candidate before it joins the card).
3. --errors: held-out relative L2 error (median, p90) of every member of the model card on
   fresh textures (engine.neural.card.measure_member), grids 64^2..1024^2.
CUDA (--device cuda): the same timing with the network under bf16 autocast replayed through a
CUDA graph, and the FFT in float32. Kept ready; not measured on this machine (no GPU here).
Threads: each size runs in a fresh process under the app's OpenMP policy (engine.threads, loaded
before torch: idle threads sleep instead of spinning), as `nmag run` and the desktop app run;
--omp-wait active measures under torch's default (idle threads spin) instead. The policy decides
how two threads are best used (engine.neural.demag._choose_way), so it is printed and stored.
The machine these numbers come from is a shared 2-core CPU: absolute times are noisy, the
ratio in the same process is the figure to read.
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
# calls of the network alone (call after call) per size and thread count, at least: each takes
# well under a second, and three (the large grids' interleaved repeats) left 1024^2 10 % high
ALONE_REPEATS = 7
sys.path.insert(0, str(ROOT))


def _timer(device):
    import torch
    if str(device).startswith("cuda"):
        def t(f):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            f()
            torch.cuda.synchronize()
            return time.perf_counter() - t0
    else:
        def t(f):
            t0 = time.perf_counter()
            f()
            return time.perf_counter() - t0
    return t


def cuda_runner(net, x, dtype=None):
    """The network under autocast (bf16) captured in a CUDA graph: per call one replay."""
    import torch
    dtype = dtype or torch.bfloat16
    static_x = x.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        for _ in range(3):
            net(static_x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g), torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        static_y = net(static_x)

    def run(xx):
        static_x.copy_(xx)
        g.replay()
        return static_y
    return run


def served_weights(path, dz_dx):
    """A weights file's network served at dz_dx (its near kernel for that cell, LeanFilmNet.serve),
    ready for NeuralDemag(weights=...), which runs it as it runs a card member."""
    import copy
    from engine.neural.weights import load_weights
    net = copy.deepcopy(load_weights(path)[0]).serve(dz_dx)
    net.config = dict(net.config, aspect=dz_dx)   # served here already: NeuralDemag keeps it as it is
    return net


def worker(n, threads, repeats, device="cpu", model=None, nz=1, dz_dx=1.0):
    """Interleaved timing of FFT and network at one size (n x n x nz, cells 3 x 3 x 3 dz_dx nm):
    the model card's member, or `model` (a weights file, served at dz_dx), each run as the app
    runs a member (NeuralDemag: compiled learned part, near field by FFT, whole or in tiles);
    prints one JSON line."""
    import engine.threads   # noqa: F401 - first: the app's OpenMP wait policy, read when torch loads
    import torch
    from engine.demag import FFTDemag
    from engine.neural.demag import NeuralDemag
    d = (3e-9, 3e-9, 3e-9 * dz_dx)
    fft = FFTDemag((n, n, nz), d, torch.float32, device)
    nd = NeuralDemag((n, n, nz), d, torch.float32, device, weights=served_weights(model, dz_dx) if model else None)
    assert nd.fallback is None, nd.warnings
    run, net, way, learned = nd.h_from_M, nd.net, nd.way, nd.learned_part
    if str(device).startswith("cuda"):
        cr = cuda_runner(net, torch.zeros(1, 3, n, n, device=device))
        run = lambda M: cr(M[:, 0][None])   # noqa: E731
    g = torch.Generator().manual_seed(0)
    M = (torch.randn(3, nz, n, n, generator=g) * 8e5).to(device)
    t = _timer(device)
    out = {"n": n, "nz": nz, "dz_dx": dz_dx, "model": model or "shipped", "times": {},
           # on 2+ threads: each operation over the threads, the near field and the learned part side
           # by side (engine.neural.overlap) or all on one thread (NeuralDemag._choose_way)
           "neural_way": way, "neural_split": way == "side by side",
           # how the learned part ran: "compiled" (engine.neural.compiled), "traced" or "eager" (torch)
           "learned_part": learned}
    for th in threads:
        torch.set_num_threads(th)
        if not str(device).startswith("cuda"):
            # the exact path's backends take their thread count when built (scipy's workers,
            # FFTW's plans): build it for this count, so that each thread count races the
            # fastest exact path for that count (its choice is measured and cached per count)
            fft = FFTDemag((n, n, nz), d, torch.float32, device)
        # the exact near field alone (a fixed, unlearned part of every member): what the network
        # costs with a learned part that took no time, so neural/FFT can never go below near/FFT
        # (on th threads the network may run it on th threads or on one, beside the learned part:
        # the faster way counts)
        x = M.transpose(0, 1).reshape(1, 3 * nz, n, n)

        def near_best():
            best = float("inf")
            for k in sorted({1, th}):
                torch.set_num_threads(k)
                best = min(best, t(lambda: net.near(x)))
            torch.set_num_threads(th)
            return best
        near = near_best if hasattr(net, "near") and not str(device).startswith("cuda") else None
        with torch.no_grad():
            fft.h_from_M(M)
            run(M)
            tf, tn, tr = [], [], []
            for _ in range(repeats):
                tf.append(t(lambda: fft.h_from_M(M)))
                tn.append(t(lambda: run(M)))
                if near is not None:
                    tr.append(near())
        out["times"][str(th)] = {"fft": min(tf), "neural": min(tn), "ratio": min(tn) / min(tf)}
        if tr:
            out["times"][str(th)].update(near=min(tr), near_ratio=min(tr) / min(tf))
        if not str(device).startswith("cuda"):
            # the network alone, call after call (what a simulation's demag term sees when the
            # rest of its step is light): interleaved, each call first writes back the cache
            # lines the exact FFT left dirty, a cost of the FFT's size that lands on the network
            with torch.no_grad():
                run(M)
                out["times"][str(th)]["neural_alone"] = min(t(lambda: run(M)) for _ in range(max(repeats, ALONE_REPEATS)))
    # the fastest exact path allowed th threads: the FFT on any measured count up to th (on two
    # threads a small grid's FFT can be slower than on one)
    for th in threads:
        x = out["times"][str(th)]
        x["fft_fastest"] = min(out["times"][str(k)]["fft"] for k in threads if k <= th)
        x["ratio_vs_fastest"] = x["neural"] / x["fft_fastest"]
    print(json.dumps(out))


def run_one(n, threads, repeats, device="cpu", model=None, nz=1, dz_dx=1.0, omp_wait="passive"):
    """One size in a fresh process, under the OpenMP wait policy `omp_wait` ("passive": the
    app's, engine.threads; "active": torch's default, threads spin between operations)."""
    cmd = [sys.executable, __file__, "--worker", str(n), ",".join(map(str, threads)), str(repeats), device,
           str(model or "-"), str(nz), str(dz_dx)]
    env = dict(os.environ, OMP_WAIT_POLICY=omp_wait.upper())
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def plot(results, path, threads):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
    for method, mk in (("fft", "o"), ("neural", "s"), ("neural_alone", "^")):
        for th, ls in zip(threads, ("-", "--")):
            pts = [(r["n"] ** 2, r["times"][str(th)][method] / r["n"] ** 2 * 1e9) for r in results
                   if method in r["times"][str(th)]]
            if pts:
                x, y = zip(*pts)
                name = {"neural_alone": "neural, call after call"}.get(method, method)
                ax.loglog(x, y, marker=mk, ls=ls, label=f"{name}, {th} thread{'s' if th > 1 else ''}")
    ax.set_xlabel("cells N")
    ax.set_ylabel("time per cell per evaluation (ns)")
    ax.set_title("demag evaluation, float32 (shared 2-core CPU)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def frontier_cache(path, aspects) -> Path:
    """Where a weights file's held-out error at these dz/dx is kept between frontier runs: the
    user's cache folder (engine.fft_backends.cache_dir), named by the file's content, never
    beside the weights (a shipped member's folder is the installed package's resources)."""
    import hashlib
    from engine.fft_backends import cache_dir
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]
    cache = cache_dir() / "frontier" / f"{digest}-{'-'.join(f'{v:g}' for v in aspects)}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    return cache


def frontier(models, threads=(1,), sizes=(256, 1024, 2048), dz_dx=1.0, aspects=None):
    """One row per trained network {name: path}: its config, multiply-adds per cell (learned
    part and direct near field), neural/FFT at each size (films of its nz, cells of dz_dx) and
    its held-out error (engine.neural.card_measure.measure_member: at `aspects`, the dz/dx it is
    served at, else its trained one; cached beside the weights per set of aspects)."""
    import torch
    from engine.neural.card_measure import measure_member
    from engine.neural.weights import load_weights
    rows = []
    for name, path in models.items():
        torch.set_num_threads(1)
        net, meta = load_weights(path)
        row = {"name": name, "config": net.config, "far_macs_per_cell": net.far_macs_per_cell(),
               "near_taps": (2 * net.R + 1) ** 2, "ratio": {}, "train_time_s": meta.get("train_time_s"),
               "dz_dx": dz_dx, "learned_part": None, "held_out_dz_dx": aspects or [net.config.get("aspect", 1.0)]}
        for n in sizes:
            r = run_one(n, threads, 3 if n >= 1024 else 10, model=path, nz=int(net.config.get("nz", 1)), dz_dx=dz_dx)
            row["learned_part"] = r["learned_part"]
            row["ratio"][str(n)] = r["times"][str(threads[0])]["ratio"]
        cache = frontier_cache(path, row["held_out_dz_dx"])
        if cache.exists():   # named by the weights' content: never stale
            ho = json.loads(cache.read_text())
        else:
            ho = measure_member(net, aspects=aspects)
            cache.write_text(json.dumps(ho))
        row.update(held_out=ho["all"], held_out_large=ho["large"], by_dz_dx_large=ho.get("by_dz_dx_large", {}))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def plot_frontier(rows, path):
    """Held-out error on large grids (median, bar to p90) against time (neural/FFT, 1 thread) at
    each measured size, one colour per network."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
    markers = {"256": "o", "1024": "s", "2048": "^"}
    for i, r in enumerate(rows):
        err = r.get("held_out_large") or r["held_out"]
        y, top = 100 * err["median"], 100 * err["p90"]
        for n, x in r["ratio"].items():
            ax.errorbar([x], [y], yerr=[[0], [top - y]], fmt=markers.get(n, "d"), color=f"C{i}", capsize=3,
                        label=r["name"] if n == "256" else None)
    for n, mk in markers.items():
        ax.plot([], [], mk, color="gray", label=f"{n}\u00b2")
    ax.axhline(2.0, color="k", lw=0.8, ls=":", label="target p90 2 %")
    ax.axvline(0.7, color="r", lw=0.8, ls="--", label="target time ratio 0.7")
    ax.set_xlabel("neural / FFT time, 1 thread")
    ax.set_ylabel("held-out error, grids 256\u00b2 and up (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def member_errors():
    import torch
    from engine.neural.card import ModelCard
    from engine.neural.card_measure import measure_member, range_aspects
    from engine.neural.weights import load_weights
    from engine.resources import resource_path
    torch.set_num_threads(1)
    out = {}
    for m in ModelCard.load().members:
        net, _ = load_weights(resource_path("neural/" + m["file"]))
        aspects = range_aspects(*ModelCard.aspect_range(m), m["dz_dx"])   # across the dz/dx it serves
        out[f"nz={m['nz']} dz/dx={m['dz_dx']:g}"] = measure_member(net, seed=4242, aspects=aspects)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128,256,512,1024,2048")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frontier", action="store_true")
    ap.add_argument("--frontier-models", default="", help="NAME=PATH,...: trained weights, one point each")
    ap.add_argument("--frontier-aspects", default="",
                    help="dz/dx values each frontier network's held-out error is measured at (default: its trained one)")
    ap.add_argument("--errors", action="store_true")
    ap.add_argument("--weights", default=None,
                    help="time this weights file (served at --dz-dx) in place of the card's member")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/neural_speed.json"))
    ap.add_argument("--png", default=str(ROOT / "benchmarks/results/neural_speed.png"))
    ap.add_argument("--nz", type=int, default=1,
                    help="layers of the film (the model card's member for nz layers of cubic cells)")
    ap.add_argument("--dz-dx", type=float, default=1.0,
                    help="cell aspect dz/dx (the model card's member that serves it; default cubic cells)")
    ap.add_argument("--omp-wait", choices=("passive", "active"), default="passive",
                    help="OpenMP threads' wait between operations: passive (sleep; the app's policy, "
                         "engine.threads) or active (spin; torch's default)")
    ap.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        n, th, rep, dev, ch, nz, asp = a.worker
        return worker(int(n), [int(t) for t in th.split(",")], int(rep), dev, None if ch == "-" else ch, int(nz), float(asp))
    sizes = [int(s) for s in a.sizes.split(",") if s]
    threads = [int(t) for t in a.threads.split(",")]
    results = []
    print(f"{'N':>6} {'thr':>3} {'fft ms':>10} {'neural ms':>10} {'neural/fft':>10} {'net ns/cell':>11} {'2-thread way':>12} "
          f"{'near/fft':>9} {'vs fastest':>10} {'alone ns/cell':>13}")
    for n in sizes:
        rep = 3 if n >= 1024 else (5 if n >= 512 else 15)
        r = run_one(n, threads, rep, a.device, model=a.weights, nz=a.nz, dz_dx=a.dz_dx, omp_wait=a.omp_wait)
        results.append(r)
        for th in threads:
            x = r["times"][str(th)]
            print(f"{n:>6} {th:>3} {x['fft'] * 1e3:>10.2f} {x['neural'] * 1e3:>10.2f} {x['ratio']:>10.2f} "
                  f"{x['neural'] / n ** 2 * 1e9:>11.2f} {r.get('neural_way', '?') if th > 1 else '-':>12} "
                  f"{x['near_ratio'] if 'near_ratio' in x else float('nan'):>9.2f} {x['ratio_vs_fastest']:>10.2f} "
                  f"{x.get('neural_alone', float('nan')) / n ** 2 * 1e9:>13.2f}", flush=True)
    from benchmarks.machine import describe
    info = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(), machine=describe(),
                load_average=os.getloadavg(), python=platform.python_version(),
                torch=__import__("torch").__version__, device=a.device,
                date=time.strftime("%Y-%m-%d %H:%M"), dtype="float32", nz=a.nz, dz_dx=a.dz_dx,
                omp_wait_policy=a.omp_wait, weights=a.weights,
                results=results)
    targets = {}
    for th in threads:
        targets[f"ratio_{th}thr"] = {str(r["n"]): round(r["times"][str(th)]["ratio"], 3) for r in results
                                     if r["n"] in (256, 1024, 2048)}
        targets[f"ratio_vs_fastest_exact_{th}thr"] = {
            str(r["n"]): round(r["times"][str(th)]["ratio_vs_fastest"], 3) for r in results if r["n"] in (256, 1024, 2048)}
        per = [r["times"][str(th)]["neural"] / r["n"] ** 2 for r in results if 128 <= r["n"] <= 2048]
        if per:
            targets[f"per_cell_spread_{th}thr"] = round(max(per) / min(per), 3)
        alone = [r["times"][str(th)]["neural_alone"] / r["n"] ** 2 for r in results
                 if 128 <= r["n"] <= 2048 and "neural_alone" in r["times"][str(th)]]
        if alone:
            targets[f"per_cell_spread_alone_{th}thr"] = round(max(alone) / min(alone), 3)
        # the floor: neural/FFT with a learned part that took no time (the exact near field alone)
        floor = {str(r["n"]): round(r["times"][str(th)]["near_ratio"], 3) for r in results
                 if r["n"] in (256, 1024, 2048) and "near_ratio" in r["times"][str(th)]}
        if floor:
            targets[f"near_field_floor_{th}thr"] = floor
    info["targets"] = targets
    print("targets (ratio <= 0.7; per-cell spread <= 1.5, interleaved and alone):", json.dumps(targets))
    if a.frontier:
        models = dict(kv.split("=", 1) for kv in a.frontier_models.split(",") if "=" in kv)
        aspects = [float(v) for v in a.frontier_aspects.split(",") if v] or None
        info["frontier"] = frontier(models, dz_dx=a.dz_dx, aspects=aspects)
        plot_frontier(info["frontier"], str(Path(a.png).with_name("neural_frontier.png")))
    if a.errors:
        info["errors"] = member_errors()
        for k, v in info["errors"].items():
            by = v.get("by_dz_dx", {})
            worst = max(by.items(), key=lambda t: t[1]["p90"]) if by else None
            print(f"held-out {k}: median {v['all']['median']:.2%}, p90 {v['all']['p90']:.2%} "
                  f"(targets 1 %, 2 %)" + (f"; worst dz/dx {worst[0]}: median {worst[1]['median']:.2%}, "
                                            f"p90 {worst[1]['p90']:.2%}" if worst else ""))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(info, indent=1))
    if a.png and a.device == "cpu" and results:
        plot(results, a.png, threads)
    return info


if __name__ == "__main__":
    main()
