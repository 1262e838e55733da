"""One evaluation of trained weights that are not (yet) a card member, timed as the app runs a
member (NeuralDemag: compiled learned part, near field by FFT), against the exact FFT and the
card's own member for the same film, interleaved in one process, one thread, minimum of repeats.

    python benchmarks/member_speed.py RUN/best.pt [--dz-dx 2] [--sizes 128,256,512,1024] [--json PATH]

bench_neural.py with a weights file times the torch path instead; this is for deciding whether
a candidate member would be faster than the one it would replace (nz = 1 and nz > 1 alike).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    import torch
    from engine.demag import FFTDemag
    from engine.neural.demag import NeuralDemag
    from engine.neural.weights import load_weights
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--dz-dx", type=float, default=1.0)
    ap.add_argument("--sizes", default="128,256,512,1024")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cand, _ = load_weights(a.weights)
    nz = int(cand.config.get("nz", 1))
    served = copy.deepcopy(cand).serve(a.dz_dx)
    served.config = dict(served.config, aspect=a.dz_dx)   # served here already: NeuralDemag keeps it as it is
    rows = []
    print(f"{'N':>5} {'fft ms':>8} {'card/fft':>9} {'cand/fft':>9}  card member (R) / candidate (R)")
    for N in (int(v) for v in a.sizes.split(",")):
        n, d = (N, N, nz), (3e-9, 3e-9, a.dz_dx * 3e-9)
        paths = {"fft": FFTDemag(n, d, torch.float32), "card": NeuralDemag(n, d),
                 "candidate": NeuralDemag(n, d, weights=served)}
        if paths["card"].fallback is not None or paths["candidate"].fallback is not None:
            raise SystemExit(f"member_speed: {N}^2 x {nz} at dz/dx {a.dz_dx:g} is not served")
        M = torch.randn(3, nz, N, N) * 8e5
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(max(5, int(2e7 / (N * N * nz)))):
            for k, p in paths.items():
                t0 = time.perf_counter()
                p.h_from_M(M)
                best[k] = min(best[k], time.perf_counter() - t0)
        row = {"n": N, "fft_ms": best["fft"] * 1e3, "card_ratio": best["card"] / best["fft"],
               "candidate_ratio": best["candidate"] / best["fft"],
               "card_R": paths["card"].net.config.get("near_radius"), "candidate_R": cand.config.get("near_radius"),
               "learned_part": paths["candidate"].learned_part}
        rows.append(row)
        print(f"{N:5d} {row['fft_ms']:8.2f} {row['card_ratio']:9.2f} {row['candidate_ratio']:9.2f}  "
              f"R = {row['card_R']} / R = {row['candidate_R']} ({row['learned_part']})", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"weights": str(a.weights), "dz_dx": a.dz_dx, "nz": nz, "threads": 1,
                                            "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
