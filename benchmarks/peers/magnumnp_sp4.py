"""muMAG standard problem 4 (field 1) with magnum.np, as its documentation shows a user running it:
relax with LLGSolver.relax (alpha = 1), then 1 ns under (-24.6, 4.3, 0) mT with RKF45 steps of
10 ps, logging t and <m> every 10 ps. Written for benchmarks/bench_sp4.py as a peer to time;
magnum.np (GPL) is optional and nothing of it is copied into the project.

    python benchmarks/peers/magnumnp_sp4.py [--out log.tsv] [--precision float64]
"""
import argparse
import logging
import sys

import numpy as np
import torch


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="write t (s), mx, my, mz here (tab separated)")
    ap.add_argument("--precision", default="float64", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    logging.disable(logging.CRITICAL)
    import magnumnp as mnp
    torch.set_default_device("cpu")
    torch.set_default_dtype(torch.float64 if args.precision == "float64" else torch.float32)
    mesh = mnp.Mesh((100, 25, 1), (5e-9, 5e-9, 3e-9))
    state = mnp.State(mesh)
    state.material = {"Ms": 8e5, "A": 1.3e-11, "alpha": 0.02}
    m = torch.zeros(mesh.n + (3,))
    m[..., 0] = np.cos(0.1)
    m[..., 1] = np.sin(0.1)
    state.m = m
    demag, exchange = mnp.DemagField(), mnp.ExchangeField()
    llg = mnp.LLGSolver([demag, exchange])
    llg.relax(state)
    field = torch.zeros(mesh.n + (3,))
    field[..., 0] = -24.6e-3 / (4e-7 * np.pi)
    field[..., 1] = 4.3e-3 / (4e-7 * np.pi)
    llg = mnp.LLGSolver([demag, exchange, mnp.ExternalField(field)])
    rows = []
    for k in range(101):
        rows.append([float(state.t)] + [float(c) for c in state.m.mean(dim=(0, 1, 2))])
        if k < 100:
            llg.step(state, 1e-11)
    if args.out:
        np.savetxt(args.out, np.array(rows), delimiter="\t", header="t_s\tmx\tmy\tmz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
