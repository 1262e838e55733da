"""Work through a problem's stages (relax, run, sweep), recording the table and snapshots.

Used by `nmag run` and by scripts. The recorder is anything with add_row(dict) and
add_snapshot(t, m) (engine.results.ResultWriter, or a list-backed one for tests). `progress`
is called with (stage index, fraction of that stage done in [0, 1], text).
"""
from __future__ import annotations

import numpy as np

from .constants import NS, PS
from .errors import SimulationDiverged
from .problem import Stage


class MemoryRecorder:
    """Keeps rows and snapshots in lists (for scripts and tests)."""

    def __init__(self):
        self.rows, self.snapshots = [], []

    def add_row(self, row):
        self.rows.append(dict(row))

    def add_snapshot(self, t, m):
        self.snapshots.append((t, np.asarray(m.detach().cpu() if hasattr(m, "detach") else m).copy()))

    def column(self, name):
        return np.array([r[name] for r in self.rows])


def default_stages():
    """What `nmag run` does for a problem without stages (a GUI project): relax."""
    return [Stage("relax", {})]


def run_stages(sim, problem, recorder, progress=None, should_stop=None, relax_callback=None,
               step_callback=None) -> dict:
    """Run every stage of `problem` on `sim`. Returns a summary dict.

    should_stop(): polled between steps (and relax iterations); True ends the run early.
    relax_callback(m, k, torque): called at every iteration of a relax or sweep stage with the
    relaxing m (a live view can show it); returning True stops that relax.
    step_callback(sim): called after every step of a run stage (a live view).

    A diverging simulation (SimulationDiverged) ends the run: the last good state (the
    simulation keeps it) is recorded as a last table row and snapshot, and the exception is
    re-raised with the summary so far in its `summary` attribute and the stage index in `stage`."""
    summary = {"stages": []}
    try:
        _run_all(sim, problem, recorder, progress, should_stop, relax_callback, step_callback, summary)
    except SimulationDiverged as e:
        if bool(sim.m.isfinite().all()):
            recorder.add_row(sim.table_row())
            recorder.add_snapshot(sim.t, sim.m)
        e.stage = summary.get("current_stage", 0)
        summary["t"], summary["steps"] = sim.t, sim.steps
        summary["mean_m"] = sim.mean_m().tolist()
        e.summary = summary
        raise
    summary.pop("current_stage", None)
    return summary


def _warn(summary, recorder, text: str) -> None:
    """A result to be read with care: in the summary's warnings, and in the file where the
    recorder keeps them (ResultWriter.add_warning)."""
    summary.setdefault("warnings", []).append(text)
    add = getattr(recorder, "add_warning", None)
    if add is not None:
        add(text)


def _run_all(sim, problem, recorder, progress, should_stop, relax_callback, step_callback, summary):

    def step_cb(s):
        if step_callback is not None:
            step_callback(s)
        return should_stop is not None and should_stop()

    def relax_cb(m, k, tq):
        if relax_callback is not None and relax_callback(m, k, tq):
            return True
        return should_stop is not None and should_stop()

    stages = problem.stages or default_stages()
    every_row = problem.output.table_every_ps * PS
    every_snap = problem.output.snapshot_every_ps * PS
    recorder.add_row(sim.table_row())
    recorder.add_snapshot(sim.t, sim.m)
    for i, stage in enumerate(stages):
        summary["current_stage"] = i
        p = stage.params
        report = (lambda f, text, i=i: progress(i, f, text)) if progress else (lambda f, text: None)
        if "B_mT" in p:
            sim.set_applied_field(p["B_mT"], sim.problem.field.ac)
        if "alpha" in p:
            sim.set_alpha(p["alpha"])
        if stage.kind == "relax":
            limit = p.get("max_steps", 100000)
            info = sim.relax(torque=p.get("torque"), max_steps=limit, callback=relax_cb)
            if not info["converged"] and info["steps"] >= limit:
                _warn(summary, recorder, f"stage {i + 1} (relax) stopped at its step limit "
                      f"(max_steps = {limit}) with max torque {info['max_torque']:.3g}, above "
                      f"{p.get('torque', sim.problem.solver.relax_torque):g}: the state is not relaxed")
            recorder.add_row(sim.table_row())
            recorder.add_snapshot(sim.t, sim.m)
            report(1.0, f"relaxed in {info['steps']} steps, torque {info['max_torque']:.2e}")
            summary["stages"].append({"kind": "relax", **info})
        elif stage.kind == "run":
            duration = p["duration_ns"] * NS
            t0 = sim.t
            end = t0 + duration
            next_row, next_snap = t0 + every_row, t0 + every_snap
            steps0 = sim.steps
            while sim.t < end * (1 - 1e-12):
                target = min(next_row, next_snap, end)
                sim.run(target - sim.t, callback=step_cb)
                if sim.t >= next_row * (1 - 1e-9) or sim.t >= end * (1 - 1e-12):
                    recorder.add_row(sim.table_row())
                    next_row += every_row
                if sim.t >= next_snap * (1 - 1e-9):
                    recorder.add_snapshot(sim.t, sim.m)
                    next_snap += every_snap
                report((sim.t - t0) / duration, f"t = {sim.t / NS:.4f} ns")
                if should_stop is not None and should_stop():
                    break
            summary["stages"].append({"kind": "run", "steps": sim.steps - steps0, "t_end": sim.t})
        elif stage.kind == "sweep":
            fields = np.linspace(p["from_mT"], p["to_mT"], p["steps"])
            limit, unrelaxed, iterations = p.get("max_steps", 20000), [], 0
            for k, B in enumerate(fields):
                sim.set_applied_field(B, {"kind": "none"})
                info = sim.relax(torque=p.get("torque"), max_steps=limit, callback=relax_cb)
                iterations += info["steps"]
                if not info["converged"] and info["steps"] >= limit:
                    unrelaxed.append(k)
                recorder.add_row(sim.table_row())
                recorder.add_snapshot(sim.t, sim.m)
                report((k + 1) / len(fields), f"B = {np.round(B, 3).tolist()} mT")
                if should_stop is not None and should_stop():
                    break
            summary["stages"].append({"kind": "sweep", "points": len(fields), "steps": iterations})
            if unrelaxed:
                _warn(summary, recorder, f"stage {i + 1} (sweep): {len(unrelaxed)} of {len(fields)} fields "
                      f"stopped at the step limit (max_steps = {limit}) before the torque tolerance, the "
                      f"first at B = {np.round(fields[unrelaxed[0]], 3).tolist()} mT: those points are not relaxed")
        if should_stop is not None and should_stop():
            break
    summary["t"] = sim.t
    summary["steps"] = sim.steps
    summary["mean_m"] = sim.mean_m().tolist()
