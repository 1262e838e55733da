"""Twin runs: a neural and an FFT Simulation of one problem from the same start, stepped side by
side and sampled together: t, <m>_neural(t), <m>_fft(t) and the max over cells of |m_net - m_fft|.
Used by the GUI's Twin run dock and the tests; above the Simulation (the error probe is
engine.neural.probe, below NeuralDemag)."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..simulation import Simulation


def twin_run(problem, duration_s: float, sample_every_s: float, m0=None, callback=None,
             t0: float = 0.0) -> dict:
    """Step a neural and an FFT Simulation of `problem` from the same start: m0 (default: the
    problem's initial state) at time t0 (s; the applied field's time dependence goes on from
    there, as in the run it is twinned with), for duration_s, sampled every sample_every_s.

    Returns dict t (S,) in s from t0, mean_neural (S, 3), mean_fft (S, 3), max_dm (S,) = max
    over cells of |m_net - m_fft|, and the wall time of each run (s)."""
    sims, start = {}, float(t0)
    for method in ("neural", "fft"):
        pb = problem.copy()
        pb.solver.demag = method
        sims[method] = Simulation(pb, m0=m0)
        sims[method].state.t = start
    if m0 is None:
        sims["neural"].set_m(sims["fft"].m.detach().cpu().numpy())
    out = {"t": [start], "mean_neural": [sims["neural"].mean_m()], "mean_fft": [sims["fft"].mean_m()],
           "max_dm": [float((sims["neural"].m - sims["fft"].m.to(sims["neural"].m.dtype)).norm(dim=0).max())]}
    wall = {"neural": 0.0, "fft": 0.0}
    k = 0
    while out["t"][-1] - start < duration_s * (1 - 1e-9):
        k += 1
        target = start + min(k * sample_every_s, duration_s)
        for method, sim in sims.items():
            t0 = time.perf_counter()
            sim.run(target - sim.t)
            wall[method] += time.perf_counter() - t0
        out["t"].append(target)
        out["mean_neural"].append(sims["neural"].mean_m())
        out["mean_fft"].append(sims["fft"].mean_m())
        dm = sims["neural"].m.to(torch.float64) - sims["fft"].m.to(torch.float64)
        out["max_dm"].append(float(dm.norm(dim=0).max()))
        if callback is not None and callback(out):
            break
    res = {k: np.asarray(v) for k, v in out.items()}
    res["wall_s"] = wall
    return res
