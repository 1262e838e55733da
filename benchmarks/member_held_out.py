"""Held-out error of trained members (not only shipped ones) at the dz/dx the card measures.

    python benchmarks/member_held_out.py RUN/best.pt [...] [--aspects 0.25,0.63,1,1.587,4]
                                         [--out-dir DIR] [--name NAME ...] [--no-uniform]

For each member: the model card's held-out measurement (engine.neural.card_measure.measure_member:
fresh textures, seed 777, grids 64^2 to 1024^2, each dz/dx served through LeanFilmNet.serve) and
a uniform-state probe: uniformly magnetised 512^2 squares along z and x at dz/dx 1 and 4, where
the whole far field is one smooth number per layer. A member whose learned part never learned
the far Hz (as the 40-cell one-layer members trained without --far-loss) shows its exact near
field alone there. Relative L2 over the magnet's cells against FFTDemag (float64), in %.
Writes DIR/NAME.held_out.json (the card's per-grid / by_dz_dx / large blocks, plus "uniform").
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CARD_ASPECTS = (0.25, 0.63, 1.0, 1.587, 4.0)


def uniform_probe(net, n=512, aspects=(1.0, 4.0)) -> dict:
    """{"mz@1": %, "mx@1": %, ...}: the member on uniform n x n squares of its own nz."""
    import numpy as np
    import torch
    from engine.neural.card_measure import rel_err, served_at
    from engine.neural.data import Labeller

    nz = int(net.config.get("nz", 1))
    out = {}
    for a in aspects:
        served = served_at(net, a)
        lab = Labeller(a)
        for axis, name in ((2, "mz"), (0, "mx")):
            M = np.zeros((1, 3 * nz, n, n))
            M[:, axis::3] = 1.0
            H = lab(M) if nz == 1 else lab.layers(M, nz)
            with torch.no_grad():
                pred = served(torch.tensor(M, dtype=torch.float32))
            e = rel_err(pred.double(), torch.tensor(H), torch.ones(1, n, n, dtype=torch.bool))
            out[f"{name}@{a:g}"] = round(float(e[0]) * 100, 3)
    return out


def main(argv=None):
    import torch
    from engine.neural.card_measure import measure_member
    from engine.neural.weights import load_weights

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="weights (model.pt / best.pt of nmag train)")
    ap.add_argument("--aspects", default=",".join(f"{a:g}" for a in CARD_ASPECTS),
                    help="dz/dx values the member is served at (comma separated)")
    ap.add_argument("--name", action="append", default=[], help="output name per model (default: its folder)")
    ap.add_argument("--out-dir", default=".", help="where NAME.held_out.json goes")
    ap.add_argument("--no-uniform", action="store_true", help="skip the uniform-state probe")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    aspects = [float(v) for v in a.aspects.split(",")]
    names = a.name + [Path(m).parent.name or Path(m).stem for m in a.models[len(a.name):]]
    print(f"{'member':<12} {'pooled %':>12} " + " ".join(f"{'@' + format(v, 'g'):>12}" for v in aspects)
          + f" {'1024^2':>12} {'large @4':>12}  uniform (mz@1 mx@1 mz@4 mx@4 %)")
    for path, name in zip(a.models, names):
        net, _ = load_weights(path)
        t0 = time.time()
        res = measure_member(net, aspects=aspects)
        if not a.no_uniform:
            res["uniform"] = uniform_probe(net)
        res["measure_s"] = round(time.time() - t0, 1)
        Path(a.out_dir, f"{name}.held_out.json").write_text(json.dumps(res, indent=1))

        def mp(s):
            return f"{s['median'] * 100:.2f}/{s['p90'] * 100:.2f}" if s else "-"
        by, large = res.get("by_dz_dx", {}), res.get("by_dz_dx_large", {})
        print(f"{name:<12} {mp(res['all']):>12} " + " ".join(f"{mp(by.get(f'{v:g}')):>12}" for v in aspects)
              + f" {mp(res.get('1024x1024')):>12} {mp(large.get('4')):>12}  "
              + " ".join(str(v) for v in res.get("uniform", {}).values()), flush=True)


if __name__ == "__main__":
    main()
