"""The floor under serving a member at another cell aspect (engine.neural.serving_floor).

    python benchmarks/neural_serving_floor.py [--shapes 256x256:8,512x512:4] [--json PATH]

For every member of the model card, at both ends of the dz/dx range it serves: the error of
an oracle member (exact within the member's near radius R, exactly dz/dx / trained dz/dx times
the trained cell's field beyond R), i.e. the part of the member's held-out error that no
training can remove. Then the same for cubic-trained members with a 40-cell exact part (what a
family trained from scratch in about an hour would use) served up to dz/dx 4, and for members
trained at dz/dx 2. Relative L2 over the magnet's cells, median and p90 over fresh textures
(seed 4242), labels from FFTDemag in float64. The targets for a member's whole error are 1 %
and 2 %: a floor near them leaves the learned part nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    import numpy as np
    import torch
    from engine.neural.card import ModelCard
    from engine.neural.serving_floor import labels, oracle_errors, sample_set
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="256x256:8,512x512:4", help="NYxNX:COUNT,... textures per grid")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/neural_serving_floor.json"))
    a = ap.parse_args(argv)
    shapes = [(tuple(int(v) for v in s.split(":")[0].split("x")), int(s.split(":")[1])) for s in a.shapes.split(",")]

    cases = []   # (label, nz, trained aspect, served aspect, R)
    for m in ModelCard.load().members:
        lo, hi = m["dz_dx_range"]
        for served in sorted({lo, hi} - {m["dz_dx"]}):
            cases.append((f"card {m['file']}", m["nz"], m["dz_dx"], served, m["near_radius"]))
    for nz in (1, 2, 3, 4):
        for a0, served in ((1.0, 1.6), (1.0, 4.0), (2.0, 4.0), (2.0, 0.25), (4.0, 1.0)):
            cases.append(("R = 40", nz, a0, served, 40))

    sets = {nz: [sample_set(nz, shape, count) for shape, count in shapes] for nz in {c[1] for c in cases}}
    fields = {}   # (nz, set index, aspect) -> exact field

    def exact(nz, i, aspect):
        key = (nz, i, aspect)
        if key not in fields:
            fields[key] = labels(sets[nz][i][0], nz, aspect)
        return fields[key]

    rows = []
    print(f"{'case':<24} {'nz':>2} {'trained':>7} {'served':>6} {'R':>3} {'median %':>9} {'p90 %':>7}")
    t0 = time.time()
    for label, nz, a0, served, R in cases:
        e = np.concatenate([oracle_errors(M, mask, nz, served, a0, R, exact(nz, i, served), exact(nz, i, a0))
                            for i, (M, mask) in enumerate(sets[nz])])
        row = dict(case=label, nz=nz, trained_dz_dx=a0, served_dz_dx=served, near_radius=R,
                   median=float(np.median(e)), p90=float(np.percentile(e, 90)), count=int(e.size))
        rows.append(row)
        print(f"{label:<24} {nz:>2} {a0:>7g} {served:>6g} {R:>3} {100 * row['median']:>9.3f} {100 * row['p90']:>7.3f}",
              flush=True)
    info = dict(date=time.strftime("%Y-%m-%d %H:%M"), shapes=[f"{s[0]}x{s[1]}:{c}" for s, c in shapes], seed=4242,
                rows=rows, seconds=round(time.time() - t0, 1))
    if a.json:
        Path(a.json).write_text(json.dumps(info, indent=1))
    return info


if __name__ == "__main__":
    main()
