"""Standard problem 4 with the neural demag: s-state field error and field-1 switching.

    python benchmarks/bench_neural_sp4.py [--cells 5x5x3,3x3x3] [--duration-ns 0.4] [--json PATH]

For each discretisation: relax the s-state with the exact FFT demag, measure the relative L2
error of the network's field against FFT on it, then run field 1 (mu0 H = (-24.6, 4.3, 0) mT,
alpha 0.02) from that state twice (neural, FFT) and compare the first zero crossing of <mx>.
Discretisations:
- 5x5x3 nm (the problem file's cells, dz/dx = 0.6): OUTSIDE the training (cubic cells); the
  network runs with its exact near field recomputed for dz/dx = 0.6 and its far part scaled.
- 3x3x3 nm cubic cells (167 x 42 cells = 501 x 126 x 3 nm, the nearest cubic grid): inside the
  training; the film is 0.2 % / 0.8 % larger than SP4's, the same for both methods.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Material, Mesh, Problem, ShapeOp, Simulation, SolverSpec  # noqa: E402
from engine.neural.probe import probe  # noqa: E402


def sp4_problem(cell, demag="fft"):
    dx, dy, dz = cell
    n = (int(round(500 / dx)), int(round(125 / dy)), 1)
    return Problem(title="SP4", mesh=Mesh(n, (dx, dy, dz)), materials=[Material("permalloy", 8e5, 1.3e-11, 0.02)],
                   geometry=[ShapeOp("rectangle", "add", "permalloy", {"center_nm": [0, 0], "size_nm": [1e9, 1e9]})],
                   solver=SolverSpec(method="rk45", tolerance=1e-5, precision="float64", demag=demag,
                                     relax_torque=1e-5))


def first_crossing(t, x):
    t, x = np.asarray(t), np.asarray(x)
    i = np.nonzero((x[:-1] > 0) & (x[1:] <= 0))[0]
    if not len(i):
        return float("nan")
    i = i[0]
    return float(t[i] - x[i] * (t[i + 1] - t[i]) / (x[i + 1] - x[i]))


def s_state(cell):
    from engine.initial_states import initial_m
    pb = sp4_problem(cell)
    pb.initial.kind, pb.initial.params = "s_state", {}
    sim = Simulation(pb)
    # damped relaxation: the BB relaxer to a tight torque
    sim.relax(torque=1e-5, max_steps=20000)
    return sim


def run_field1(cell, m0, demag, duration_ns, sample_ps=2.0):
    pb = sp4_problem(cell, demag)
    pb.field.B_mT = (-24.6, 4.3, 0.0)
    sim = Simulation(pb, m0=m0)
    ts, mx = [0.0], [sim.mean_m()[0]]
    t0 = time.perf_counter()
    steps = int(round(duration_ns * 1000 / sample_ps))
    for k in range(steps):
        sim.run(sample_ps * 1e-12)
        ts.append(sim.t)
        mx.append(sim.mean_m()[0])
    return np.array(ts), np.array(mx), time.perf_counter() - t0, sim


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", default="5x5x3,3x3x3")
    ap.add_argument("--duration-ns", type=float, default=0.3)
    ap.add_argument("--json", default="benchmarks/results/neural_sp4.json")
    a = ap.parse_args(argv)
    results = []
    for c in a.cells.split(","):
        cell = tuple(float(v) for v in c.split("x"))
        t0 = time.perf_counter()
        sim = s_state(cell)
        m0 = sim.m.detach().cpu().numpy()
        pr = probe(sim.state)
        r = dict(cell_nm=cell, n=list(sim.state.n), dz_dx=cell[2] / cell[0], s_state_rel_l2=pr.rel_l2,
                 s_state_max_err_over_Ms=pr.max_error, s_state_mean_m=sim.mean_m().tolist(),
                 relax_s=time.perf_counter() - t0)
        print(f"cells {c}: s-state rel L2 {pr.rel_l2:.4%}  max |dH|/Ms {pr.max_error:.4f}", flush=True)
        out = {}
        for demag in ("fft", "neural"):
            t, mx, wall, _ = run_field1(cell, m0, demag, a.duration_ns)
            out[demag] = (t, mx)
            r[f"{demag}_wall_s"] = wall
            r[f"{demag}_t_zero_ns"] = first_crossing(t, mx) * 1e9
            print(f"  {demag}: <mx> first zero at {r[f'{demag}_t_zero_ns']:.4f} ns  ({wall:.1f} s)", flush=True)
        r["t_zero_rel_diff"] = abs(r["neural_t_zero_ns"] - r["fft_t_zero_ns"]) / r["fft_t_zero_ns"]
        r["max_abs_dmx"] = float(np.max(np.abs(out["neural"][1] - out["fft"][1])))
        print(f"  zero-crossing difference {r['t_zero_rel_diff']:.2%}, max |d<mx>| {r['max_abs_dmx']:.4f}", flush=True)
        results.append(r)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
