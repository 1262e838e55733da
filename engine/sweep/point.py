"""One sweep point, run where Dask puts it: the task function and what it sends back.

`run_point(task)` runs the point's problem exactly as `nmag run --out` does (its stages, the
same ResultWriter), on one torch thread (a worker is one core; one thread also makes a point's
numbers independent of the machine's core count), and returns a plain dict:

    index     the point's number
    status    "done" or "failed"
    message   "" or the error, one line ("SimulationDiverged: ...")
    h5        the point's results file as bytes (None when failed): the client copies it into
              points/<index>/ of the sweep file; the worker writes nothing that stays
    scalars   {name: value} (engine.sweep.scalars), NaN where a failed point has none
    wall_s    seconds the point took on the worker
    worker    "host:pid" that ran it
"""
from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np


class _Recorder:
    """Forwards rows and snapshots to the result writer and keeps the rows for the scalars."""

    def __init__(self, writer):
        self.writer, self.rows = writer, []

    def add_row(self, row):
        self.rows.append(dict(row))
        self.writer.add_row(row)

    def add_snapshot(self, t, m):
        self.writer.add_snapshot(t, m)

    def table(self) -> dict:
        return {c: np.array([r[c] for r in self.rows], dtype=np.float64) for c in self.rows[0]}


def make_task(sweep, i: int) -> dict:
    """The picklable description of point i that travels to a worker."""
    return {"index": i, "problem": sweep.point_dict(i), "base_dir": sweep.base_dir,
            "region_map": sweep.region_map, "scalars": list(sweep.scalars)}


def pin_fft_backend(task: dict) -> dict:
    """Resolve the point's FFT backend "auto" here, in the client, at the workers' one thread, and
    write the name into the task, so every worker computes with the same transforms as every
    other and as a sequential run: auto measures per process, and two backends differ in the
    last bits, which a switching run grows to 1e-3 in m. Points of one grid share one choice
    (cached on disk); NMAG_FFT still forces one."""
    solver = task["problem"].setdefault("solver", {})
    if solver.get("fft", "auto") != "auto":
        return task
    import torch
    from ..fft_backends import resolved_backend
    from ..problem import Problem
    try:
        p = Problem.from_dict(task["problem"], base_dir=task["base_dir"], region_map=task["region_map"])
    except Exception:   # the worker reports it as the point's failure
        return task
    if p.solver.device != "cpu":
        return task
    dtype = torch.float64 if p.solver.precision == "float64" else torch.float32
    solver["fft"] = resolved_backend(tuple(p.mesh.n), dtype, "cpu", "auto", threads=1)
    return task


def failed_scalars(names) -> dict:
    from .scalars import SCALARS
    return {n: ([math.nan] * SCALARS[n][1] if SCALARS[n][1] > 1 else math.nan) for n in names}


def run_point(task: dict) -> dict:
    """Run one point (see the module docstring). Never raises for a failing simulation: the
    failure comes back as status "failed" with its message, so the other points go on."""
    import torch
    from ..problem import Problem
    from ..results import ResultWriter
    from ..simulation import Simulation
    from ..stages import run_stages
    from .scalars import measure

    from ..notes import notes_to

    t0 = time.perf_counter()
    out = {"index": task["index"], "status": "done", "message": "", "h5": None,
           "scalars": failed_scalars(task["scalars"]), "wall_s": 0.0,
           "worker": f"{socket.gethostname()}:{os.getpid()}", "notes": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problem = Problem.from_dict(task["problem"], base_dir=task["base_dir"],
                                    region_map=task["region_map"])
        with notes_to(out["notes"].append):   # a first build of the compiled network on this worker (2-9 s)
            sim = Simulation(problem)
        with tempfile.TemporaryDirectory(prefix="nmag-point-") as tmp:
            path = Path(tmp) / "point.h5"
            with ResultWriter(path, problem, sim.regions, sim.demag_in_use) as writer:
                rec = _Recorder(writer)
                run_stages(sim, problem, rec)
                writer.set_final_state(sim.m, sim.t)
            out["h5"] = path.read_bytes()
        out["scalars"] = measure(task["scalars"], rec.table())
    except Exception as e:  # the point failed: say why, the sweep goes on
        out["status"] = "failed"
        out["message"] = f"{type(e).__name__}: {e}".replace("\n", " ")[:2000]
        out["h5"] = None
    finally:
        torch.set_num_threads(threads)
    out["wall_s"] = time.perf_counter() - t0
    return out
