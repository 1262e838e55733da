"""Session: the one owner of what the app is working on, and the signals that say it changed.

The Session owns the Problem the engine runs, the simulation thread (whose worker owns the
engine's `Simulation`), the run state, the recorded table and snapshots, the latest Frame, the
project path and the dirty flag. Widgets never keep copies of these and never poll: they
connect to the signals below with bound methods and read the Session when told.

All signals are emitted on the GUI thread (the worker's signals arrive here queued).

    problemChanged(Problem)  the engine accepted a new problem (edit, example, open, new, a
                             failed edit rolled back: the panels show it again)
    gridChanged(Problem)     another grid, cell size or region map: per-cell views start over
    frameArrived(Frame)      the newest frame of the current run (frames of an older run are
                             dropped; so are frames the GUI had no time to take: latest wins,
                             their table rows still arrive, with the next one)
    rowsAdded(list)          table rows (dicts) just appended to `table_rows`
    tableReset()             the table was cleared or replaced (reset, open, new, grid change)
    runStateChanged(str)     "idle", "running", "relaxing" or "stages"
    dirtyChanged(bool)
    message(str, bool)       text for the user, True when it is an error
    diverged(str)            the engine stopped a diverging run: the run is paused and the last
                             good frame is the latest one

Frames carry m (float32) and only the optional arrays some view asked for: `want(owner, fields)`
(fields from worker.FRAME_FIELDS; the union over owners goes to the worker), or for the spin
view's overlay `want_overlay(kind)`.

Engine and window change together or not at all: `apply_problem` sends the new Problem to the
worker; when the worker refuses it (a bad device, a rebuild that fails) the Session returns to
the last problem the engine accepted, emits problemChanged with it (the panels show it again)
and reports the error; a reset that fails also gives back the table it had cleared.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from engine import Problem, ProblemError
from engine import results

from .worker import DEFAULT_FRAME_NEEDS, IDLE, SimulationThread, frame_needs, geometry_changed

MAX_SNAPSHOTS = 64


def table_columns(rows) -> list[str]:
    """Every column of the rows, in first-seen order (rows recorded before a term was added
    lack its energy: they are written as NaN, the column is never dropped)."""
    cols: list[str] = []
    seen = set()
    for row in rows:
        for k in row:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    return cols


def table_as_columns(rows) -> dict:
    """rows (list of dict) -> column -> float64 array, NaN where a row lacks the column."""
    cols = table_columns(rows)
    return {c: np.array([float(r.get(c, np.nan)) for r in rows], dtype=np.float64) for c in cols}


class Session(QObject):
    """One problem, one simulation thread, one table. See the module docstring."""

    problemChanged = Signal(object)
    gridChanged = Signal(object)
    frameArrived = Signal(object)
    rowsAdded = Signal(list)
    tableReset = Signal()
    runStateChanged = Signal(str)
    dirtyChanged = Signal(bool)
    message = Signal(str, bool)
    diverged = Signal(str)

    def __init__(self, problem: Problem, parent=None):
        super().__init__(parent)
        self.problem: Problem = problem.copy().validate()
        self._accepted: Problem = self.problem        # the last problem the engine took
        self.project_path: Path | None = None
        self.dirty = False
        self.run_state = IDLE
        self.table_rows: list[dict] = []
        self.snapshots: list[tuple] = []
        self.latest_frame = None
        self.frames_received = 0
        self.advanced = False         # the state is more than the initial state of the problem
        self.last_error: str | None = None
        self._saved_key = None        # (t, steps) of the state last saved or opened
        self._backup = None           # (table, snapshots, latest frame) while a reset is pending
        self._closed = False
        self._needs: dict[str, frozenset] = {"session": DEFAULT_FRAME_NEEDS}

        self.sim_thread = SimulationThread(self)
        w = self.sim_thread.worker
        w.frameWaiting.connect(self._on_frame_waiting)
        w.stateChanged.connect(self._on_state)
        w.error.connect(self._on_error)
        w.message.connect(self._on_worker_message)
        w.applied.connect(self._on_applied)
        w.applyFailed.connect(self._on_apply_failed)
        w.diverged.connect(self._on_diverged)

    # ================================================================== state
    @property
    def paused(self) -> bool:
        """Idle with a state advanced past the problem's initial state."""
        return self.run_state == IDLE and self.advanced

    @property
    def status_text(self) -> str:
        return "paused" if self.paused else self.run_state

    def set_dirty(self, dirty: bool) -> None:
        dirty = bool(dirty)
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirtyChanged.emit(dirty)

    # ================================================================== problem
    def start(self, problem: Problem | None = None) -> None:
        """Build the simulation of `problem` (default: the current one) at t = 0."""
        if problem is not None:
            self.problem = problem.copy().validate()
        self._reset_to(self.problem)

    def apply_problem(self, problem: Problem) -> None:
        """An edit: the engine takes `problem` between steps (m and t kept) or, when nothing was
        computed yet, starts again from its initial state. Validated here once."""
        problem = problem.validate()
        old = self.problem
        self.problem = problem
        self.set_dirty(True)
        grid = geometry_changed(old, problem)
        if self.advanced or self.run_state != IDLE:
            if grid:
                # a new grid: the table, the latest frame and frames still queued from the old
                # grid go (the worker rebuilds under a new generation)
                self._backup = (self.table_rows, self.snapshots, self.latest_frame, self.advanced)
                self.table_rows, self.snapshots, self.latest_frame = [], [], None
                self.tableReset.emit()
            self.sim_thread.apply_problem(problem, new_generation=grid)
        else:
            self._reset_to(problem)
        if grid:
            self.gridChanged.emit(problem)
        self.problemChanged.emit(problem)

    def load(self, problem: Problem, m=None, t: float = 0.0, table=None, snapshots=None,
             path=None) -> None:
        """Replace everything: a new problem (example, new project) or an opened project."""
        old = self.problem
        problem = problem.copy().validate()
        self.problem = problem
        self.project_path = None if path is None else Path(path)
        self.table_rows = [] if table is None else [dict(r) for r in table]
        self.snapshots = [] if snapshots is None else list(snapshots)
        self._backup = None
        self.latest_frame = None
        self.tableReset.emit()
        if self.table_rows:
            self.rowsAdded.emit(list(self.table_rows))
        if m is None:
            self.advanced = False
            self.sim_thread.reset(problem)
        else:
            self.advanced = True
            self.sim_thread.load(problem, m, t, 0)
        self._saved_key = ("pending", float(t))
        self.runStateChanged.emit(self.run_state)
        if geometry_changed(old, problem):
            self.gridChanged.emit(problem)
        self.problemChanged.emit(problem)
        self.set_dirty(False)

    def _reset_to(self, problem: Problem) -> None:
        self._backup = (self.table_rows, self.snapshots, self.latest_frame, self.advanced)
        self.table_rows, self.snapshots = [], []
        self.latest_frame = None
        self.advanced = False
        self.tableReset.emit()
        self.sim_thread.reset(problem)
        self.runStateChanged.emit(self.run_state)        # "paused" becomes "idle"

    # ================================================================== commands
    def run(self) -> None:
        self.advanced = True
        self.sim_thread.run()

    def pause(self) -> None:
        self.sim_thread.pause()

    def step(self) -> None:
        if self.run_state != IDLE:
            return
        self.advanced = True
        self.sim_thread.step()

    def relax(self) -> None:
        if self.run_state != IDLE:
            return
        self.advanced = True
        self.sim_thread.relax()

    def run_stages(self) -> bool:
        if self.run_state != IDLE or not self.problem.stages:
            return False
        self.advanced = True
        self.sim_thread.run_stages()
        return True

    def reset(self) -> None:
        """Back to the problem's initial state at t = 0 (the table starts again)."""
        self._reset_to(self.problem)

    def want(self, owner: str, fields) -> None:
        """`owner` (any name: a view, a dock) needs these optional frame fields from now on
        (worker.FRAME_FIELDS: "error_map", "probe_fields", "energy_density"; m is always
        there). Frames carry the union over all owners; an empty set withdraws the owner's."""
        self._needs[str(owner)] = frame_needs(fields)
        self.sim_thread.set_frame_needs(frozenset().union(*self._needs.values()))

    @property
    def frame_needs(self) -> frozenset:
        """The optional fields frames carry now (the union of what owners asked for)."""
        return self.sim_thread.frame_needs

    def want_overlay(self, kind: str) -> None:
        """The spin view's overlay `kind` (spin_scene.OVERLAY_MODES) decides what it needs:
        the error map for "error", both probe fields for "H_net"/"H_fft" (hover shows them
        too while they come), the energy densities for "energy_density[:term]"."""
        if kind == "error":
            fields = {"error_map"}
        elif kind in ("H_net", "H_fft"):
            fields = {"error_map", "probe_fields"}
        elif kind.startswith("energy_density"):
            fields = {"energy_density"}
        else:
            fields = set()
        self.want("overlay", fields)

    def want_energy_density(self, on: bool) -> None:
        """Frames carry the engine's energy densities (per term and total) while `on`."""
        self.want("energy_density", {"energy_density"} if on else set())

    # ================================================================== files
    def save(self, path) -> Path:
        """Save the problem, the current m and t, the whole table (every column) and the
        snapshots (atomic: engine.results writes a .part file and renames it)."""
        frame = self.latest_frame
        m, t = (frame.m, frame.t) if frame is not None else (None, 0.0)
        table = table_as_columns(self.table_rows) if self.table_rows else None
        out = results.save_project(path, self.problem, m=m, t=t, table_rows=table,
                                   snapshots=self.snapshots or None)
        self.project_path = Path(path)
        self._saved_key = (frame.t, frame.steps) if frame is not None else None
        self.set_dirty(False)
        return out

    def open(self, path) -> bool:
        """Open a project file. A damaged or newer file is reported; returns False."""
        try:
            proj = results.open_project(path)
        except ProblemError as exc:
            self._error(str(exc))
            return False
        cols = list(proj.table)
        n = len(proj.table[cols[0]]) if cols else 0
        rows = [{c: float(proj.table[c][i]) for c in cols} for i in range(n)]
        self.pause()
        self.load(proj.problem, m=proj.m, t=proj.t, table=rows, snapshots=proj.snapshots, path=path)
        self.set_dirty(False)
        return True

    # ================================================================== worker signals
    @Slot()
    def _on_frame_waiting(self) -> None:
        """The worker's mailbox has a frame: take the newest (older ones were dropped)."""
        frame = self.sim_thread.take_frame()
        if frame is not None:
            self._on_frame(frame)

    @Slot(object)
    def _on_frame(self, frame) -> None:
        if frame.generation != self.sim_thread.generation:
            return            # queued before the last reset or open: from a run that is gone
        self._backup = None
        self.latest_frame = frame
        self.frames_received += 1
        if self._saved_key is not None and self._saved_key[0] == "pending":
            self._saved_key = (frame.t, frame.steps)
        rows = [dict(r) for r in frame.rows]
        if rows:
            self.table_rows.extend(rows)
        if frame.snapshots:
            self.snapshots.extend(frame.snapshots)
            while len(self.snapshots) > MAX_SNAPSHOTS:
                self.snapshots = self.snapshots[::2]      # the whole run at half the rate
        if self.advanced and not self.dirty and self._saved_key != (frame.t, frame.steps):
            self.set_dirty(True)
        if rows:
            self.rowsAdded.emit(rows)
        self.frameArrived.emit(frame)

    @Slot(str)
    def _on_state(self, state: str) -> None:
        self.run_state = state
        self.runStateChanged.emit(state)

    @Slot(str)
    def _on_error(self, text: str) -> None:
        self.run_state = self.sim_thread.state
        self.runStateChanged.emit(self.run_state)
        self._error(f"Simulation stopped: {text}")

    @Slot(str)
    def _on_worker_message(self, text: str) -> None:
        self.message.emit(text, False)

    @Slot(object, bool)
    def _on_applied(self, problem, rebuilt: bool) -> None:
        self._accepted = problem

    @Slot(str, int)
    def _on_apply_failed(self, text: str, generation: int) -> None:
        """The worker kept its simulation: the window goes back to the problem it runs."""
        self.sim_thread.generation = generation
        old = self._accepted
        grid = geometry_changed(self.problem, old)
        self.problem = old
        if self._backup is not None:
            self.table_rows, self.snapshots, self.latest_frame, self.advanced = self._backup
            self._backup = None
            self.tableReset.emit()
            if self.table_rows:
                self.rowsAdded.emit(list(self.table_rows))
        if grid:
            self.gridChanged.emit(old)
        self.problemChanged.emit(old)
        self._error(f"Not applied, the simulation keeps the previous settings: {text}")

    @Slot(str)
    def _on_diverged(self, text: str) -> None:
        self.run_state = self.sim_thread.state
        self.runStateChanged.emit(self.run_state)
        self.last_error = text
        self.message.emit(f"Run paused: {text}", True)
        self.diverged.emit(text)

    def _error(self, text: str) -> None:
        self.last_error = text
        self.message.emit(text, True)

    # ================================================================== closing
    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self.sim_thread.stop()
