"""muMAG standard problem 3: the edge length at which the flower and the vortex state of a cube
have the same energy.

A cube of edge L with uniaxial anisotropy Ku = 0.1 Km along z (Km = mu0 Ms^2 / 2); lengths in
exchange lengths l_ex = sqrt(A / Km). Each state is relaxed at several L on an n^3 grid and its
energy density (in Km) recorded; the crossing is where the two lines meet (linear
interpolation between the scanned sizes). Published: L = 8.47 l_ex (Rave, Fabian & Hubert,
JMMM 190, 332 (1998)); with finite differences on 10^3 cells 8.407, on 20^3 8.453.

Starts: the flower from m = +z; the vortex curls around x (perpendicular to the easy axis, as
the relaxed SP3 vortex does; a vortex started with its core along z unwinds into the flower).

    python benchmarks/sp3_scan.py [--n 10] [--L 8.0 8.4 8.8] [--out benchmarks/results/sp3.json]

Prints a table (L, energy densities, <mz>, <mz^2>) and the crossing; writes JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import InitialState, Material, Mesh, Problem, ShapeOp, Simulation, SolverSpec  # noqa: E402
from engine.constants import MU0  # noqa: E402

MS = 8.0e5          # A/m (any Ms gives the same numbers in units of Km and l_ex)
A_EX = 1.3e-11      # J/m
KM = MU0 * MS ** 2 / 2
L_EX_NM = math.sqrt(A_EX / KM) * 1e9          # 5.686 nm for these constants
PUBLISHED = {"continuum": 8.47, 10: 8.407, 20: 8.453}


def sp3_problem(L_lex: float, n: int, state: str = "flower", precision: str = "float64") -> Problem:
    """The SP3 cube of edge L_lex exchange lengths on n^3 cells. state: "flower" (start +z) or
    "vortex" (start: a vortex about x, see vortex_about_x; the problem records it as uniform
    along +y, the vortex's mean direction, and the caller sets m)."""
    L = L_lex * L_EX_NM
    p = Problem(title=f"muMAG SP3, L = {L_lex:g} l_ex ({state})")
    p.mesh = Mesh((n, n, n), (L / n,) * 3)
    p.materials = [Material(name="sp3", Ms=MS, A=A_EX, alpha=0.5, Ku=0.1 * KM, Ku_axis=(0.0, 0.0, 1.0))]
    p.geometry = [ShapeOp("cuboid", "add", "sp3", {"size_nm": [L, L, L]})]
    p.initial = InitialState("uniform", {"direction": [0.0, 0.0, 1.0] if state == "flower" else [0.0, 1.0, 0.0]})
    p.solver = SolverSpec(precision=precision, relax_torque=1e-6)
    return p.validate()


def vortex_about_x(mesh, chirality: int = 1, core_frac: float = 0.15) -> np.ndarray:
    """A vortex whose core runs along x through the cube's centre (3, nz, ny, nx): m circles
    in the yz plane, and the core (radius core_frac * L) points along +x."""
    nx, ny, nz = mesh.n
    dx, dy, dz = mesh.cell_nm
    y = (np.arange(ny) + 0.5 - ny / 2) * dy
    z = (np.arange(nz) + 0.5 - nz / 2) * dz
    Z, Y = np.meshgrid(z, y, indexing="ij")                 # (nz, ny)
    r = np.hypot(Y, Z)
    rc = core_frac * nx * dx
    mx = np.exp(-(r / rc) ** 2)
    inplane = np.sqrt(np.clip(1 - mx ** 2, 0, 1))
    phi = np.arctan2(Z, Y)
    m = np.stack([mx, -chirality * np.sin(phi) * inplane, chirality * np.cos(phi) * inplane])
    return np.ascontiguousarray(np.broadcast_to(m[:, :, :, None], (3, nz, ny, nx)))


def relaxed_state(L_lex: float, n: int, state: str, max_steps: int = 20000) -> dict:
    """Relax one state; its energy density in Km, <m>, <mz^2> and the relax statistics."""
    sim = Simulation(sp3_problem(L_lex, n, state))
    if state == "vortex":
        sim.set_m(vortex_about_x(sim.problem.mesh))
    t0 = time.perf_counter()
    info = sim.relax(max_steps=max_steps)
    seconds = time.perf_counter() - t0
    E = sim.energies()
    vol = (L_lex * L_EX_NM * 1e-9) ** 3
    m = sim.m.detach().cpu().numpy()
    mask = sim.mask
    return {"L_lex": L_lex, "state": state, "e_total": E["total"] / (KM * vol),
            "e": {k: v / (KM * vol) for k, v in E.items()}, "mean_m": sim.mean_m().tolist(),
            "mz2": float((m[2][mask] ** 2).mean()), "steps": info["steps"],
            "converged": bool(info["converged"]), "seconds": seconds}


def crossing(rows: list[dict]) -> float | None:
    """L (l_ex) where e_vortex - e_flower changes sign, by linear interpolation; None if not."""
    by_L = {}
    for r in rows:
        by_L.setdefault(r["L_lex"], {})[r["state"]] = r["e_total"]
    Ls = sorted(L for L, d in by_L.items() if len(d) == 2)
    d = [by_L[L]["vortex"] - by_L[L]["flower"] for L in Ls]
    for (L0, d0), (L1, d1) in zip(zip(Ls, d), zip(Ls[1:], d[1:])):
        if d0 == 0:
            return L0
        if d0 * d1 < 0:
            return L0 + (L1 - L0) * d0 / (d0 - d1)
    return None


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="cells per edge")
    ap.add_argument("--L", type=float, nargs="+", default=[8.0, 8.4, 8.8], help="edge lengths in l_ex")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sp3.json"))
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    rows = []
    print(f"SP3 on {args.n}^3 cells, l_ex = {L_EX_NM:.3f} nm")
    print(f"{'L/l_ex':>7} {'state':>7} {'e/Km':>9} {'<mx>':>7} {'<my>':>7} {'<mz>':>7} {'<mz^2>':>7} {'steps':>6} {'s':>6}")
    for L in args.L:
        for state in ("flower", "vortex"):
            r = relaxed_state(L, args.n, state)
            rows.append(r)
            mx, my, mz = r["mean_m"]
            print(f"{L:7.3f} {state:>7} {r['e_total']:9.5f} {mx:7.3f} {my:7.3f} {mz:7.3f} {r['mz2']:7.3f} "
                  f"{r['steps']:6d} {r['seconds']:6.1f}" + ("" if r["converged"] else "  (not converged)"))
    Lc = crossing(rows)
    ref = PUBLISHED.get(args.n)
    print(f"crossing: {Lc:.3f} l_ex" if Lc is not None else "crossing: not inside the scanned range",
          f"(published {ref} on {args.n}^3 cells, {PUBLISHED['continuum']} extrapolated)" if ref else
          f"(published {PUBLISHED['continuum']} extrapolated)")
    out = {"n": args.n, "l_ex_nm": L_EX_NM, "rows": rows, "crossing_lex": Lc, "published": ref,
           "published_continuum": PUBLISHED["continuum"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
