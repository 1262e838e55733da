"""The "Twin run" dock: a neural and an FFT copy of the current state stepped side by side
(`engine.neural.twin.twin_run`) on a thread of their own, plotted live as they drift apart.

The twin worker owns its own engine objects on its QThread (the same pattern as the simulation
worker: a QObject moved to a QThread, queued signals back, a cooperative stop flag, never
terminated), so the app keeps one thread pattern for both.
"""
from __future__ import annotations

import traceback

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QSizePolicy

from .error_view import TwinRunPanel

TWIN_DURATION_NS = 0.5
TWIN_SAMPLE_PS = 10.0


class TwinWorker(QObject):
    """Runs twin_run on the thread it was moved to; samples go out as they are computed."""

    sample = Signal(float, object, object, float)
    finished = Signal(str)
    note = Signal(str)   # the engine's notes while it builds (a first build of the compiled network: 2-9 s)

    def __init__(self, problem, m0, duration_s, every_s, t0=0.0):
        super().__init__()
        self.problem, self.m0, self.duration_s, self.every_s = problem, m0, duration_s, every_s
        self.t0 = float(t0)
        self.stop_requested = False
        self._sent = 0

    @Slot()
    def run(self):
        try:
            from engine.neural.twin import twin_run

            def callback(out):
                for i in range(self._sent, len(out["t"])):
                    self.sample.emit(float(out["t"][i]), np.array(out["mean_neural"][i], float),
                                     np.array(out["mean_fft"][i], float), float(out["max_dm"][i]))
                self._sent = len(out["t"])
                return self.stop_requested

            from engine.notes import as_sentence, notes_to
            with notes_to(lambda text: self.note.emit(as_sentence(text))):
                res = twin_run(self.problem, self.duration_s, self.every_s, m0=self.m0, callback=callback,
                               t0=self.t0)
            if self._sent == 0:      # no callback happened (duration shorter than one sample)
                callback({k: list(res[k]) for k in ("t", "mean_neural", "mean_fft", "max_dm")})
            self.finished.emit("")
        except Exception as exc:   # reported on the GUI thread
            traceback.print_exc()
            self.finished.emit(f"{type(exc).__name__}: {exc}")


class TwinRunDock(QDockWidget):
    """The twin run's dock and its thread. `toggle()` starts or stops a run from the Session's
    current problem and state; `runningChanged(bool)` lets the menu action relabel itself."""

    runningChanged = Signal(bool)

    def __init__(self, session, parent=None):
        super().__init__("Twin run", parent)
        self.setObjectName("twin_run_dock")
        self.session = session
        self.panel = TwinRunPanel()
        # showing the dock must never grow the window: the plots take what the dock has
        self.panel.setMinimumSize(200, 160)
        self.panel.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.setWidget(self.panel)
        self._thread: QThread | None = None
        self._worker: TwinWorker | None = None
        session.problemChanged.connect(self._on_problem)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def toggle(self) -> None:
        if self._thread is not None:
            self._worker.stop_requested = True
            self.session.message.emit("Stopping the twin run after its current sample", False)
            return
        self.start()

    def start(self) -> None:
        s = self.session
        frame = s.latest_frame
        m0 = None if frame is None else np.array(frame.m, dtype=np.float64)
        t0 = 0.0 if frame is None else float(frame.t)    # the field goes on from the run's time
        self.panel.reset()
        self.show()
        self.raise_()
        self._thread = QThread(self)
        self._worker = TwinWorker(s.problem.copy(), m0, TWIN_DURATION_NS * 1e-9, TWIN_SAMPLE_PS * 1e-12, t0)
        self._worker.moveToThread(self._thread)
        self._worker.sample.connect(self._on_sample)
        self._worker.finished.connect(self._on_finished)
        self._worker.note.connect(self._on_note)
        self._thread.started.connect(self._worker.run)
        self._thread.start()
        self.runningChanged.emit(True)

    @Slot(float, object, object, float)
    def _on_sample(self, t, a, b, d):
        self.panel.add_twin(t, a, b, d)

    @Slot(str)
    def _on_note(self, text: str):
        self.session.message.emit(f"Twin run: {text}", False)

    @Slot(str)
    def _on_finished(self, error: str):
        stopped = self._worker is not None and self._worker.stop_requested
        self.stop()
        if error:
            self.session.message.emit(f"Twin run failed: {error}", True)
        else:
            self.session.message.emit(f"Twin run {'stopped' if stopped else 'done'}: neural and FFT copies "
                                      f"compared up to t = {self.panel.last_t_ns():.4g} ns", False)

    @Slot(object)
    def _on_problem(self, _problem):
        if self._thread is None:
            self.panel.reset()

    def stop(self, timeout_ms: int = 30000) -> None:
        if self._thread is None:
            return
        self._worker.stop_requested = True
        self._thread.quit()
        self._thread.wait(timeout_ms)
        self._thread, self._worker = None, None
        self.runningChanged.emit(False)
