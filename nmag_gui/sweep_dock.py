"""The "Sweep" dock: vary one or two keys of the current problem, run the points on Dask (a
local cluster on 127.0.0.1, a scheduler address, or one after another in this process) and
watch them arrive as a plot: a scalar against one parameter, or a coloured map for two.
Clicking a point emits `pointSelected(index, problem, m, t)` with that point's problem, final
m (3, nz, ny, nx) and its time t (s), which the window loads into the 3D view.

The sweep itself is engine.sweep (the same file format and results file as `nmag sweep`); it
runs on a QThread, so the window never waits for it. Results go to one HDF5 file (the
"Results" field)."""
from __future__ import annotations

import math
import os
import tempfile
import time
import traceback

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from engine.errors import ProblemError

QUANTITIES = {  # label -> (scalar name, component or None, unit)
    "switching time": ("switching_time_ns", None, "ns"),
    "first <mx> = 0": ("first_zero_mx_ns", None, "ns"),
    "final <mx>": ("final_mean_m", 0, ""),
    "final <my>": ("final_mean_m", 1, ""),
    "final <mz>": ("final_mean_m", 2, ""),
    "final energy": ("final_energy", None, "J"),
    "coercive field": ("coercive_field_mT", None, "mT"),
}
TARGETS = ("local cluster", "scheduler", "this process")
NO_STAGES = ("This problem has no stages: a sweep runs each point's [[stages]] (run for a time, "
             "relax, sweep a field), so every point would end at t = 0 with nothing to plot. Add "
             "stages to the problem file, or load an example that has them.")


def parse_values(text: str, key: str = "values") -> list:
    """'0.01, 0.02, 0.05' or 'start:stop:count' (evenly spaced, both ends) -> list of floats."""
    t = text.strip()
    if not t:
        raise ProblemError(key, text, "numbers separated by commas, or start:stop:count")
    try:
        if ":" in t:
            a, b, n = (s.strip() for s in t.split(":"))
            n = int(n)
            if not 1 <= n <= 10000:
                raise ValueError
            vals = np.linspace(float(a), float(b), n).tolist()
        else:
            vals = [float(s) for s in t.replace(";", ",").split(",") if s.strip()]
    except ValueError:
        raise ProblemError(key, text, "numbers separated by commas, or start:stop:count (count 1..10000)") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise ProblemError(key, text, "finite numbers")
    return vals


def suggested_keys(problem) -> list:
    """Key paths worth sweeping in this problem (numbers only)."""
    keys = []
    for i, _ in enumerate(problem.materials):
        keys += [f"materials[{i}].{k}" for k in ("alpha", "Ms", "A", "Ku", "D")]
    for k, s in enumerate(problem.stages):
        for name in ("B_mT", "from_mT", "to_mT"):
            if name in s.params:
                keys += [f"stages[{k}].{name}[{c}]" for c in range(3)]
        if "duration_ns" in s.params:
            keys.append(f"stages[{k}].duration_ns")
    keys += [f"field.B_mT[{c}]" for c in range(3)]
    keys += [f"geometry[{g}].{p}[{c}]" for g, op in enumerate(problem.geometry)
             for p in ("size_nm", "radii_nm") if p in op.params for c in range(2)]
    keys += ["mesh.cell_nm[2]"]
    return keys


class SweepRunner(QObject):
    """Runs one sweep on its QThread; reports with signals (queued to the GUI thread)."""
    pointDone = Signal(dict)        # index, status, message, scalars, wall_s (no file bytes)
    progress = Signal(object)       # engine.sweep.runner.Progress
    finished = Signal(str)          # "" when it ended normally, else the error (one line)
    started = Signal(str)           # where it runs (scheduler address, dashboard)

    def __init__(self, sweep, out: str, target: str, scheduler: str = "", workers: int = 1):
        super().__init__()
        self.sweep, self.out, self.target = sweep, out, target
        self.scheduler, self.workers = scheduler, workers
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    @Slot()
    def run(self) -> None:
        from engine.sweep.cluster import dashboard_link, open_client
        from engine.sweep.runner import run_sweep
        kw = dict(overwrite=True, should_stop=lambda: self._stop,
                  on_point=lambda r: self.pointDone.emit({k: v for k, v in r.items() if k != "h5"}),
                  on_progress=self.progress.emit)
        try:
            if self.target == "this process":
                self.started.emit("this process, one point after another")
                run_sweep(self.sweep, self.out, None, **kw)
            else:
                sched = self.scheduler if self.target == "scheduler" else None
                with open_client(scheduler=sched, workers=self.workers) as client:
                    self.started.emit(f"{client.scheduler.address}, dashboard {dashboard_link(client) or 'none'}")
                    run_sweep(self.sweep, self.out, client, **kw)
            self.finished.emit("")
        except ProblemError as e:
            self.finished.emit(str(e))
        except Exception as e:  # noqa: BLE001 - reported in the dock, never a traceback dialog
            traceback.print_exc()
            self.finished.emit(f"{type(e).__name__}: {e}")


class SweepDock(QDockWidget):
    """The dock (see the module docstring). session: the window's Session (its problem is the
    one swept; the dock follows problemChanged); or pass problem= for a standalone dock."""
    pointSelected = Signal(int, object, object, float)  # index, Problem, final m (3, nz, ny, nx), its t (s)
    sweepFinished = Signal(str)                     # "" or the error

    def __init__(self, session=None, parent=None, problem=None):
        super().__init__("Sweep", parent)
        self.setObjectName("sweep_dock")
        self.setToolTip("Parameter sweep: run many points of this problem on Dask and plot them")
        self.session = session
        self.problem = problem if problem is not None else session.problem
        self.sweep, self.out = None, ""
        self.results: dict = {}          # index -> result dict (scalars, status, ...)
        self._noted: set = set()         # the workers' notes already shown (each once)
        self._thread, self._runner = None, None
        self._build()
        self.set_problem(self.problem)
        if session is not None:
            session.problemChanged.connect(self.set_problem)

    # ------------------------------------------------------------------ widgets
    def _build(self):
        w = QWidget()
        lay = QVBoxLayout(w)
        form = QFormLayout()
        self.key1 = QComboBox(editable=True)
        self.values1 = QLineEdit("0.01, 0.02, 0.05")
        self.values1.setToolTip("numbers separated by commas, or start:stop:count")
        self.use2 = QCheckBox("second parameter")
        self.key2 = QComboBox(editable=True)
        self.values2 = QLineEdit("")
        self.values2.setPlaceholderText("start:stop:count")
        for x in (self.key2, self.values2):
            x.setEnabled(False)
        self.use2.toggled.connect(self.key2.setEnabled)
        self.use2.toggled.connect(self.values2.setEnabled)
        self.quantity = QComboBox()
        self.quantity.addItems(list(QUANTITIES))
        self.quantity.currentTextChanged.connect(lambda _: self.redraw())
        self.target = QComboBox()
        self.target.addItems(list(TARGETS))
        self.scheduler = QLineEdit()
        self.scheduler.setPlaceholderText("tcp://127.0.0.1:8786 (another machine: TLS, see README)")
        self.workers = QSpinBox()
        self.workers.setRange(1, 256)
        self.workers.setValue(max(1, (os.cpu_count() or 2)))
        self.target.currentTextChanged.connect(self._target_changed)
        self.outfile = QLineEdit(os.path.join(tempfile.gettempdir(), f"nmag_sweep_{int(time.time())}.h5"))
        form.addRow("Parameter", self.key1)
        form.addRow("Values", self.values1)
        form.addRow(self.use2)
        form.addRow("Parameter 2", self.key2)
        form.addRow("Values 2", self.values2)
        form.addRow("Plot", self.quantity)
        form.addRow("Run on", self.target)
        form.addRow("Workers", self.workers)
        form.addRow("Scheduler", self.scheduler)
        form.addRow("Results", self.outfile)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.run_button = QPushButton("Run sweep")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.run_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(180)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)   # values are already in ns, mT, ...
        self.scatter = pg.ScatterPlotItem(size=10, hoverable=True)
        self.scatter.sigClicked.connect(self._on_clicked)
        self.line = self.plot.plot([], [], pen=pg.mkPen(width=1))
        self.plot.addItem(self.scatter)
        self.colour_note = QLabel("")
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.colour_note)
        self.setWidget(w)
        self._target_changed(self.target.currentText())

    def _target_changed(self, text):
        self.scheduler.setEnabled(text == "scheduler")
        self.workers.setEnabled(text == "local cluster")

    @Slot(object)
    def set_problem(self, problem) -> None:
        """Follow the window's problem (the keys offered change with it)."""
        self.problem = problem
        for box in (self.key1, self.key2):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(suggested_keys(problem))
            if current:
                box.setCurrentText(current)
            box.blockSignals(False)
        if not self.key1.currentText():
            self.key1.setCurrentText("materials[0].alpha")

    # ------------------------------------------------------------------ running
    def build_sweep(self):
        """The Sweep the fields describe, validated point by point (ProblemError if not)."""
        from engine.sweep.sweep_file import sweep_from_dict
        from engine.sweep.scalars import SCALARS
        params = [{"key": self.key1.currentText().strip(), "values": parse_values(self.values1.text(), "Values")}]
        if self.use2.isChecked():
            params.append({"key": self.key2.currentText().strip(),
                           "values": parse_values(self.values2.text(), "Values 2")})
        d = {"format": "nmag-sweep", "version": 1, "mode": "product", "title": f"sweep of {self.problem.title}",
             "parameters": params, "outputs": {"scalars": list(SCALARS)}}
        return sweep_from_dict(d, base_dir=self.problem.base_dir, problem=self.problem)

    @Slot()
    def start(self) -> bool:
        """Validate and launch; a bad field is shown in the dock (nothing runs)."""
        if self._thread is not None:
            return False
        if not getattr(self.problem, "stages", None):
            # each point runs the problem's stages: without any, every point ended at once at
            # t = 0 and the plot stayed empty
            self._say(NO_STAGES, error=True)
            return False
        try:
            self.sweep = self.build_sweep()
            out = self.outfile.text().strip()
            if not out:
                raise ProblemError("Results", out, "a file name (.h5)")
            if self.target.currentText() == "scheduler":
                from engine.sweep.cluster import check_scheduler, security_from_config
                check_scheduler(self.scheduler.text(), security_from_config(), insecure=False)
        except ProblemError as e:
            self._say(str(e), error=True)
            return False
        self.out = out
        self.results = {}
        self.redraw()
        self._runner = SweepRunner(self.sweep, out, self.target.currentText(), self.scheduler.text().strip(),
                                   self.workers.value())
        self._thread = QThread(self)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._runner.pointDone.connect(self.on_point)
        self._runner.progress.connect(self.on_progress)
        self._runner.started.connect(lambda where: self._say(f"{len(self.sweep)} points on {where}"))
        self._runner.finished.connect(self.on_finished)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._say(f"starting {len(self.sweep)} points ...")
        self._thread.start()
        return True

    @Slot()
    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
            self._say("stopping after the points that are running ...")

    def is_running(self) -> bool:
        return self._thread is not None

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop a running sweep and wait for its thread (the window closes): what finished is
        in the results file; a point running in this process finishes first."""
        if self._thread is None:
            return
        self._runner.stop()
        self._thread.quit()
        self._thread.wait(timeout_ms)

    @Slot(dict)
    def on_point(self, result: dict) -> None:
        from engine.notes import as_sentence
        self.results[int(result["index"])] = result
        for text in result.get("notes") or ():   # a worker's first build of the compiled network
            if text not in self._noted and self.session is not None:
                self.session.message.emit(f"Sweep: {as_sentence(text)}", False)
            self._noted.add(text)
        self.redraw()

    @Slot(object)
    def on_progress(self, p) -> None:
        eta = "" if p.eta_s is None else f", about {p.eta_s:.0f} s left"
        self._say(f"{p.done}/{p.total} done, {p.running} running, {p.failed} failed{eta}")

    @Slot(str)
    def on_finished(self, error: str) -> None:
        self._thread.quit()
        self._thread.wait()
        self._thread, self._runner = None, None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        failed = sum(r["status"] != "done" for r in self.results.values())
        if error:
            self._say(error, error=True)
        else:
            self._say(f"{len(self.results)} points in {self.out}" + (f", {failed} failed" if failed else ""))
        self.sweepFinished.emit(error)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #e05050;" if error else "")

    # ------------------------------------------------------------------ plot
    def value_of(self, result: dict) -> float:
        name, comp, _ = QUANTITIES[self.quantity.currentText()]
        v = result["scalars"].get(name, math.nan)
        v = v[comp] if comp is not None else v
        return float(v) if v is not None else math.nan

    def redraw(self) -> None:
        """Points so far: value against parameter 1, or a coloured map over both parameters."""
        if self.sweep is None:
            return
        label, (_, _, unit) = self.quantity.currentText(), QUANTITIES[self.quantity.currentText()]
        pts = self.sweep.points()
        idx = sorted(i for i, r in self.results.items() if r["status"] == "done")
        vals = np.array([self.value_of(self.results[i]) for i in idx])
        keys = [p.key for p in self.sweep.parameters]
        self.plot.setLabel("bottom", keys[0])
        if len(keys) == 1:
            self.plot.setLabel("left", f"{label} ({unit})" if unit else label)
            xs = np.array([pts[i][0] for i in idx], dtype=float)
            ok = np.isfinite(vals)
            self.scatter.setData(x=xs[ok], y=vals[ok], data=np.array(idx)[ok], symbol="o",
                                 brush=pg.mkBrush(80, 160, 255))
            order = np.argsort(xs[ok])
            self.line.setData(xs[ok][order], vals[ok][order])
            self.colour_note.setText("")
            return
        self.plot.setLabel("left", keys[1])
        self.line.setData([], [])
        xs = np.array([pts[i][0] for i in idx], dtype=float)
        ys = np.array([pts[i][1] for i in idx], dtype=float)
        ok = np.isfinite(vals)
        cmap = pg.colormap.get("viridis")
        if ok.any():
            lo, hi = float(vals[ok].min()), float(vals[ok].max())
            span = hi - lo or 1.0
            brushes = [pg.mkBrush(cmap.map((v - lo) / span, mode="qcolor")) if np.isfinite(v)
                       else pg.mkBrush(120, 120, 120) for v in vals]
            self.colour_note.setText(f"colour: {label} from {lo:.4g} (dark) to {hi:.4g} (yellow) {unit}")
        else:
            brushes = [pg.mkBrush(120, 120, 120)] * len(vals)
        self.scatter.setData(x=xs, y=ys, data=np.array(idx), symbol="s", size=18, brush=brushes)

    def _on_clicked(self, _item, spots, *_):
        if len(spots):
            self.select_point(int(spots[0].data()))

    def select_point(self, i: int) -> None:
        """Read point i's problem and final m from the results file and emit pointSelected."""
        from engine.sweep.results import read_point
        try:
            r = read_point(self.out, i)
        except (ProblemError, OSError) as e:
            self._say(str(e), error=True)
            return
        self._say(f"point {i}: {self.sweep.describe(i)}")
        self.pointSelected.emit(i, r["problem"], r["m"], float(r["t"] or 0.0))
