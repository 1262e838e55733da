"""Stage-3 fine-tuning data: relaxed in-plane states in long thin rectangles (what SP4's s-state is).

    python -m engine.neural.strips --out data/neural/train_sp4ft.h5 [--seed 11] [--per 40] \
        [--mix data/neural/train.h5:0.4,data/neural/train2.h5:1.0] [--mix-seed 5]

Grids of 80..200 x 20..50 cells (aspect 2.7:1 to 5:1, 3 nm cubic cells, permalloy); the magnet
fills the grid (60 %) or a rectangle of 70..100 % of it. Start states: s (30 %), c (25 %), flower
(15 %), near-uniform along the long axis (10 %), smooth random in-plane (20 %), each with noise,
+-x; a random in-plane field of ~5 mT in half of them. Each start is relaxed (engine relax,
FFT demag, torque 1e-4); 40 % also give a partly relaxed LLG snapshot (alpha 0.5, 3..40 ps).
Labels: exact FFT in float64. A share of the earlier stages' data is appended (--mix) so the
fine-tune does not forget; deterministic by seed.
"""
from __future__ import annotations

import argparse
import time

import h5py
import numpy as np
import torch

from .data import CELL_NM, MS_REF, Labeller, _smooth_noise, _unit

SHAPES = [(20, 80), (24, 120), (28, 140), (32, 112), (36, 180), (40, 200), (42, 168), (44, 132), (50, 200),
          (26, 104)]

def init_state(rng, ny, nx, mask, kind):
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    ys, xs = np.nonzero(mask); y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    L = x1 - x0 + 1; W = y1 - y0 + 1
    u = (xx - x0) / L; v = (yy - (y0 + y1) / 2) / W
    m = np.zeros((3, ny, nx)); m[0] = 1.0
    e = rng.uniform(0.08, 0.25)   # end region fraction
    left, right = u < e, u > 1 - e
    a = rng.uniform(0.5, 1.5)
    if kind == "s":
        m[1] = np.where(left, a, 0) + np.where(right, a, 0)
    elif kind == "c":
        m[1] = np.where(left, a, 0) - np.where(right, a, 0)
    elif kind == "flower":
        m[1] = np.where(left | right, a * 2 * v, 0) * np.where(left, -1, 1)
    elif kind == "uniform":
        ang = rng.uniform(-0.4, 0.4); m[0], m[1] = np.cos(ang), np.sin(ang)
    else:   # random smooth in-plane
        m = _smooth_noise(rng, ny, nx, rng.uniform(3, 12)); m[2] *= 0.1
    if rng.random() < 0.5:
        m[0] *= -1
    m[:2] += 0.05 * rng.normal(size=(2, ny, nx))
    m[2] = 0.02 * rng.normal(size=(ny, nx))
    return _unit(m) * mask[None]

def samples(rng, ny, nx, count):
    from .. import Problem, Simulation
    from ..problem import FieldSpec, InitialState, Mesh, SolverSpec
    out = []
    while len(out) < count:
        mask = np.zeros((ny, nx), bool)
        if rng.random() < 0.6:
            mask[:] = True
        else:
            h = rng.integers(int(0.7 * ny), ny + 1); w = rng.integers(int(0.7 * nx), nx + 1)
            y0 = rng.integers(0, ny - h + 1); x0 = rng.integers(0, nx - w + 1)
            mask[y0:y0 + h, x0:x0 + w] = True
        kind = rng.choice(["s", "c", "flower", "uniform", "smooth"], p=[0.3, 0.25, 0.15, 0.1, 0.2])
        B = tuple(float(v) for v in list(rng.normal(size=2) * (5 if rng.random() < 0.5 else 0)) + [0.0])
        pb = Problem(mesh=Mesh(n=(nx, ny, 1), cell_nm=(CELL_NM,) * 3),
                     region_map=np.where(mask, 0, -1).astype(np.int16)[None],
                     initial=InitialState("uniform", {"direction": [1, 0, 0]}),
                     field=FieldSpec(B_mT=B),
                     solver=SolverSpec(method="rk45", precision="float32", tolerance=1e-3))
        pb.materials[0].alpha = 0.5
        m0 = init_state(rng, ny, nx, mask, kind)
        sim = Simulation(pb, m0=m0[:, None])
        if rng.random() < 0.4:   # a partly relaxed LLG snapshot
            sim.run(rng.uniform(3, 40) * 1e-12)
            out.append((sim.m.detach().cpu().numpy()[:, 0].astype(np.float64), mask, f"llg-{kind}"))
        sim.relax(torque=1e-4, max_steps=4000)
        out.append((sim.m.detach().cpu().numpy()[:, 0].astype(np.float64), mask, f"relaxed-{kind}"))
    return out[:count]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m engine.neural.strips")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--per", type=int, default=40, help="samples per strip grid")
    ap.add_argument("--mix", default="data/neural/train.h5:0.4,data/neural/train2.h5:1.0",
                    help="PATH:FRACTION,... of earlier data appended (shapes not already present)")
    ap.add_argument("--mix-seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    lab = Labeller(1.0)
    t0 = time.time()
    with h5py.File(a.out, "w") as f:
        f.attrs["seed"] = a.seed
        f.attrs["aspect_dz_dx"] = 1.0
        f.attrs["ms_ref"] = MS_REF
        f.attrs["label"] = "engine.demag.FFTDemag float64, cell (1, 1, aspect), H/Ms_ref"
        f.attrs["content"] = f"engine.neural.strips: relaxed/LLG in-plane states in long rectangles + mix {a.mix}"
        for ny, nx in SHAPES:
            rng = np.random.default_rng([a.seed, ny, nx])
            S = samples(rng, ny, nx, a.per)
            M = np.stack([s[0] * s[1][None] for s in S])
            mk = np.stack([s[1] for s in S])
            H = lab(M)
            g = f.create_group(f"s{ny}x{nx}")
            g.create_dataset("M", data=M.astype(np.float32))
            g.create_dataset("H", data=H.astype(np.float32))
            g.create_dataset("mask", data=mk.astype(np.uint8))
            g.create_dataset("kind", data=np.array([s[2] for s in S], dtype="S32"))
            print(ny, nx, f"{time.time() - t0:.0f}s", flush=True)
        rng = np.random.default_rng(a.mix_seed)
        for item in filter(None, a.mix.split(",")):
            path, keep = item.rsplit(":", 1)
            with h5py.File(path, "r") as s:
                for name, g in s.items():
                    if name in f:
                        continue
                    n = len(g["M"])
                    idx = np.sort(rng.choice(n, int(float(keep) * n), replace=False))
                    h = f.create_group(name)
                    for d in ("M", "H", "mask"):
                        h.create_dataset(d, data=g[d][...][idx])
                    print(path, name, len(idx), flush=True)
        f.attrs["generation_s"] = time.time() - t0
    print("wrote", a.out)


if __name__ == "__main__":
    main()
