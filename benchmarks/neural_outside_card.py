"""What the network would do outside its model card: each one-layer member forced onto the
"where the network fails" example (examples/network_fails.toml: cells of dz/dx = 8, outside every
member's range), served there as inside a range (exact near kernel of the 8:1 cell, learned part
scaled by the heights), against the exact FFT field of the starting state.

    python benchmarks/neural_outside_card.py [--problem examples/network_fails.toml] [--json out.json]

Prints one row per member: relative L2 error of H_d over the magnet's cells. The app never does
this (outside the card it warns and uses the FFT); the numbers say why.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def forced_errors(problem_path):
    import numpy as np
    import torch
    from engine import Problem, Simulation
    from engine.demag import FFTDemag
    from engine.neural.card import ModelCard
    from engine.neural.weights import load_weights
    from engine.resources import resource_path
    p = Problem.from_toml(problem_path)
    p.solver.demag = "fft"
    state = Simulation(p).state
    m = state.m.detach().cpu().numpy()
    Ms = float(state.Ms.max())
    n = tuple(int(v) for v in p.mesh.n)
    d = tuple(v * 1e-9 for v in p.mesh.cell_nm)
    aspect = d[2] / d[0]
    M = torch.tensor(m * Ms)
    H_fft = FFTDemag(n, d, torch.float64).h_from_M(M)
    inside = torch.tensor(np.linalg.norm(m, axis=0) > 0)
    rows = []
    for member in ModelCard.load().members:
        if int(member.get("nz", 1)) != 1 or n[2] != 1:
            continue
        net, _ = load_weights(resource_path("neural/" + member["file"]))
        net = copy.deepcopy(net).serve(aspect).eval()
        with torch.no_grad():
            H = net(M[:, 0][None].float())[0][:, None].double()
        err = float((H - H_fft)[:, inside].norm() / H_fft[:, inside].norm())
        rows.append({"member": member["file"], "trained_dz_dx": member["dz_dx"], "forced_dz_dx": aspect,
                     "rel_l2": err})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default=str(ROOT / "examples/network_fails.toml"))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    rows = forced_errors(a.problem)
    print(f"{'member':<22} {'trained dz/dx':>13} {'forced dz/dx':>12} {'rel L2 of H_d':>14}")
    for r in rows:
        print(f"{r['member']:<22} {r['trained_dz_dx']:>13g} {r['forced_dz_dx']:>12g} {100 * r['rel_l2']:>13.1f}%")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
