"""Part 2 of the app in one call: `install_part2(window)` adds the surrogate's error, the
examples with their explanations, themes, help and export to an existing QMainWindow.

What it adds
------------
- **Examples** menu (examples/catalog.toml). Choosing one loads the problem (through
  `window.load_problem`), shows its explanation in the "Example" dock, sets the suggested
  colouring, and for a sweep opens the "Loop" dock (<mx> against B).
- **View > Theme**: Dark / Light (default: the desktop's colour scheme).
- **Help > Shortcuts and how-to…** (F1) and **Help > Model card…**.
- **File > Export**: state as OVF 2.0…, table as CSV…, screenshot as PNG…, Record movie…
  (MP4 or GIF; the same action stops and writes it, with a progress dialog).
- **Simulation > Twin run (neural vs FFT)**: runs `engine.neural.probe.twin_run` on its own
  thread from the current state and plots it live in the "Twin run" dock.
- Docks "Surrogate error" (`SurrogateErrorPanel`) and "Twin run" (`TwinRunPanel`).
- A 100 ms GUI-thread timer (`Part2.poll`) that reads the window's newest frame: it feeds the
  error panel, the loop plot, the outside-the-model-card warnings and the movie recorder (which
  grabs the image the view has already rendered; the simulation thread never waits for it).

What it expects from the window (each is optional: a missing one disables the actions that
need it, with a tooltip saying what is missing; nothing raises)
--------------------------------------------------------------------------------------------
- ``window.latest_frame`` or ``window.drawn_frame``: the newest engine Frame (or None). Read
  on the GUI thread only. Needed by: OVF export, the error panel, movie frames.
- ``window.spin_view.plotter`` or ``window.view.plotter``: the pyvista QtInteractor of the 3D
  view. Needed by: screenshot, movie, theme background.
- ``window.table_rows``: list of dicts (t, mx, my, mz, E_*, and Bx_mT... when known). Needed by:
  CSV export, the loop plot.
- ``window.problem``: the current engine Problem. Needed by: OVF export (cell size), model-card
  warnings, twin run.
- ``window.load_problem(problem)``: called when an example is chosen. Without it the example's
  explanation is still shown and the problem kept as ``window.part2.example_problem``.
- optional ``window.view.set_color_by(mode)`` (or spin_view's), to apply the suggested colouring,
  and ``set_overlay(values, clim, title, log)`` on the view, to show `overlay.overlay_scalars`
  (see nmag_gui/overlay.py); used when present.
- optional ``window.show_message(text, error=False)``: where messages go (else the status bar).

Everything lives on ``window.part2`` (a `Part2` object): its docks, panels, actions, and
methods that export to a given path without dialogs (used by the tests).
"""
from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QMainWindow, QMenu

from . import theme
from .error_view import (ModelCardDialog, SurrogateErrorPanel, TwinRunPanel, load_model_card,
                         outside_model_card)
from .examples_menu import ExampleInfoPanel, HysteresisLoopPanel, build_examples_menu
from .export import MovieRecorder, export_ovf, export_table_csv, finish_with_progress, save_screenshot
from .help_dialog import HelpDialog

POLL_MS = 100
TWIN_DURATION_NS = 0.5
TWIN_SAMPLE_PS = 10.0


# --------------------------------------------------------------------------- window access
def window_frame(window):
    """The newest Frame the window has (latest_frame, else drawn_frame), or None."""
    for name in ("latest_frame", "drawn_frame"):
        f = getattr(window, name, None)
        if f is not None:
            return f
    return None


def window_view(window):
    for name in ("spin_view", "view"):
        v = getattr(window, name, None)
        if v is not None and getattr(v, "plotter", None) is not None:
            return v
    return None


def window_plotter(window):
    v = window_view(window)
    return None if v is None else v.plotter


def find_menu(window: QMainWindow, title: str) -> QMenu:
    """The menu bar's menu called `title` (ignoring '&'), created at the end if missing."""
    bar = window.menuBar()
    want = title.replace("&", "").lower()
    for act in bar.actions():
        m = act.menu()
        if m is not None and act.text().replace("&", "").lower() == want:
            return m
    return bar.addMenu(title)


# --------------------------------------------------------------------------- twin run thread
class _TwinWorker(QObject):
    sample = Signal(float, object, object, float)
    finished = Signal(str)

    def __init__(self, problem, m0, duration_s, every_s):
        super().__init__()
        self.problem, self.m0, self.duration_s, self.every_s = problem, m0, duration_s, every_s
        self.stop_requested = False
        self._sent = 0

    @Slot()
    def run(self):
        try:
            from engine.neural.probe import twin_run

            def callback(out):
                for i in range(self._sent, len(out["t"])):
                    self.sample.emit(float(out["t"][i]), np.array(out["mean_neural"][i], float),
                                     np.array(out["mean_fft"][i], float), float(out["max_dm"][i]))
                self._sent = len(out["t"])
                return self.stop_requested

            res = twin_run(self.problem, self.duration_s, self.every_s, m0=self.m0, callback=callback)
            if self._sent == 0:      # no callback happened (duration shorter than one sample)
                callback({k: list(res[k]) for k in ("t", "mean_neural", "mean_fft", "max_dm")})
            self.finished.emit("")
        except Exception as exc:   # reported on the GUI thread
            traceback.print_exc()
            self.finished.emit(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- the controller
class Part2(QObject):
    """Everything install_part2 adds; reachable as window.part2."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self.window = window
        self.card = load_model_card()
        self.recorder: MovieRecorder | None = None
        self.example = None
        self.example_problem = None
        self._last_frame_id = None
        self._last_rows = 0
        self._problem_key = None
        self._twin_thread: QThread | None = None
        self._twin_worker: _TwinWorker | None = None

        # panels and docks
        self.error_panel = SurrogateErrorPanel(card=self.card)
        self.twin_panel = TwinRunPanel()
        self.info_panel = ExampleInfoPanel()
        self.loop_panel = HysteresisLoopPanel("Bx_mT", "mx")
        self.error_dock = self._dock("Surrogate error", "part2_error_dock", self.error_panel, Qt.RightDockWidgetArea)
        self.twin_dock = self._dock("Twin run", "part2_twin_dock", self.twin_panel, Qt.RightDockWidgetArea)
        self.info_dock = self._dock("Example", "part2_example_dock", self.info_panel, Qt.RightDockWidgetArea)
        self.loop_dock = self._dock("Loop", "part2_loop_dock", self.loop_panel, Qt.RightDockWidgetArea)
        window.tabifyDockWidget(self.error_dock, self.twin_dock)
        window.tabifyDockWidget(self.twin_dock, self.info_dock)
        window.tabifyDockWidget(self.info_dock, self.loop_dock)
        self.loop_dock.hide()
        self.error_dock.raise_()

        self._build_menus()
        plotter = window_plotter(window)
        if plotter is not None:
            theme.register_plotter(plotter)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        window.installEventFilter(self)       # closing the window stops a twin run first

    def eventFilter(self, obj, event):
        if obj is self.window and event.type() == QEvent.Close:
            try:
                self.stop_twin_run()
            except Exception:
                traceback.print_exc()
        return False

    def _dock(self, title, name, widget, area) -> QDockWidget:
        d = QDockWidget(title, self.window)
        d.setObjectName(name)
        d.setWidget(widget)
        self.window.addDockWidget(area, d)
        return d

    # ---- menus
    def _action(self, menu, text, slot, needs=(), tip="", shortcut=None) -> QAction:
        act = QAction(text, self.window)
        act.triggered.connect(lambda _=False: self._guard(slot))
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        missing = [n for n in needs if not self._has(n)]
        if missing:
            act.setEnabled(False)
            act.setToolTip(f"Not available: the main window has no {', '.join(missing)}")
        else:
            act.setToolTip(tip or text)
        act.setStatusTip(act.toolTip())
        menu.addAction(act)
        menu.setToolTipsVisible(True)
        return act

    def _has(self, need: str) -> bool:
        w = self.window
        if need == "frame":
            return hasattr(w, "latest_frame") or hasattr(w, "drawn_frame")
        if need == "plotter":
            return window_plotter(w) is not None
        return hasattr(w, need)

    def _build_menus(self):
        w = self.window
        self.examples_menu = build_examples_menu(w, self.load_example)
        bar = w.menuBar()
        help_menu = None
        for act in bar.actions():
            if act.menu() is not None and act.text().replace("&", "").lower() == "help":
                help_menu = act
        if help_menu is not None:
            bar.insertMenu(help_menu, self.examples_menu)
        else:
            bar.addMenu(self.examples_menu)

        file_menu = find_menu(w, "&File")
        self.export_menu = QMenu("&Export", w)
        self.export_menu.setToolTipsVisible(True)
        first = file_menu.actions()[-1] if file_menu.actions() else None
        if first is not None and first.text().replace("&", "").lower() == "quit":
            file_menu.insertMenu(first, self.export_menu)
            file_menu.insertSeparator(first)
        else:
            file_menu.addMenu(self.export_menu)
        self.act_export_ovf = self._action(self.export_menu, "State as OVF 2.0…", self.export_ovf_dialog,
                                           ("frame", "problem"), "Write the current m as an OVF 2.0 file (binary, float32)")
        self.act_export_csv = self._action(self.export_menu, "Table as CSV…", self.export_csv_dialog,
                                           ("table_rows",), "Write the recorded table (t in s, energies in J) as CSV")
        self.act_screenshot = self._action(self.export_menu, "Screenshot as PNG…", self.screenshot_dialog,
                                           ("plotter",), "Save a PNG of the 3D view")
        self.act_movie = self._action(self.export_menu, "Record movie…", self.toggle_movie_dialog,
                                      ("plotter",), "Record the 3D view while it runs (MP4 or GIF); choose again to stop")

        view_menu = find_menu(w, "&View")
        theme_menu = view_menu.addMenu("Theme")
        self.theme_group = QActionGroup(self)
        self.theme_actions = {}
        for name in theme.THEMES:
            a = QAction(name.capitalize(), self.window, checkable=True)
            a.setToolTip(f"The {name} colour theme (window, plots and 3D background)")
            a.triggered.connect(lambda _=False, n=name: self._guard(lambda: self.set_theme(n)))
            self.theme_group.addAction(a)
            theme_menu.addAction(a)
            self.theme_actions[name] = a
        view_menu.addSeparator()
        for dock in (self.error_dock, self.twin_dock, self.info_dock, self.loop_dock):
            view_menu.addAction(dock.toggleViewAction())

        sim_menu = find_menu(w, "&Simulation")
        sim_menu.addSeparator()
        self.act_twin = self._action(sim_menu, "Twin run (neural vs FFT)", self.toggle_twin_run, ("problem",),
                                     f"Step a neural and an FFT copy of the current state side by side for "
                                     f"{TWIN_DURATION_NS:g} ns and plot how far they drift apart")

        help_m = find_menu(w, "&Help")
        self.act_help = self._action(help_m, "Shortcuts and how-to…", self.show_help, (),
                                     "Keyboard shortcuts and a short how-to", QKeySequence.HelpContents)
        self.act_card = self._action(help_m, "Model card…", self.show_model_card, (),
                                     "What the neural demag network was trained on")

    # ---- errors never escape a slot
    def _guard(self, fn):
        try:
            fn()
        except Exception as exc:
            traceback.print_exc()
            self.message(f"{type(exc).__name__}: {exc}", error=True)

    def message(self, text: str, error: bool = False) -> None:
        show = getattr(self.window, "show_message", None)
        if callable(show):
            try:
                show(text, error=error)
                return
            except TypeError:
                show(text)
                return
        self.window.statusBar().showMessage(text, 8000)

    # ---- examples
    def load_example(self, problem, entry) -> None:
        self.example, self.example_problem = entry, problem
        self.info_panel.show_entry(entry)
        self.info_dock.show()
        self.info_dock.raise_()
        self.error_panel.reset()
        self.twin_panel.reset()
        self.loop_panel.set_rows([])
        self._last_rows = 0
        load = getattr(self.window, "load_problem", None)
        if callable(load):
            load(problem)
        else:
            self.message(f"Example {entry.title}: the window cannot load problems (no load_problem)")
        view = window_view(self.window)
        if view is not None and hasattr(view, "set_color_by"):
            try:
                view.set_color_by(entry.view)
            except ValueError:
                pass
        if view is not None and hasattr(view, "set_overlay_kind"):
            try:
                view.set_overlay_kind(entry.overlay or "none")    # the example's suggestion
            except ValueError:
                pass
        if entry.plot == "loop":
            self.loop_panel.x_name, self.loop_panel.y_name = entry.plot_x, entry.plot_y
            self.loop_dock.show()
        self._check_card(problem)

    def start_loop(self, first_row: int = 0) -> None:
        """Start the loop plot afresh from table row `first_row` (a stages run begins)."""
        self.loop_panel.set_rows([])
        self._last_rows = int(first_row)

    def _check_card(self, problem) -> list[str]:
        warnings = []
        if problem is not None and str(problem.solver.demag).startswith("neural"):
            warnings = outside_model_card(problem, self.card)
        self.error_panel.set_warnings(warnings)
        return warnings

    # ---- the poll timer (GUI thread)
    @Slot()
    def poll(self):
        try:
            self._poll()
        except Exception as exc:
            traceback.print_exc()
            self.message(f"Part 2 update failed: {type(exc).__name__}: {exc}", error=True)

    def _poll(self):
        w = self.window
        problem = getattr(w, "problem", None)
        if problem is not None:
            key = (id(problem), problem.solver.demag, tuple(problem.mesh.n), tuple(problem.mesh.cell_nm))
            if key != self._problem_key:
                self._problem_key = key
                self._check_card(problem)
        frame = window_frame(w)
        if frame is not None and id(frame) != self._last_frame_id:
            self._last_frame_id = id(frame)
            self.error_panel.add_frame(frame)
            if self.recorder is not None:
                self.recorder.add_frame()
        rows = getattr(w, "table_rows", None)
        if self.loop_dock.isVisible() and rows is not None and len(rows) != self._last_rows:
            if len(rows) < self._last_rows:
                self.loop_panel.set_rows([])
                self._last_rows = 0
            for row in rows[self._last_rows:]:
                row = dict(row)
                if self.loop_panel.x_name not in row and problem is not None:
                    comp = "xyz".index(self.loop_panel.x_name[1]) if self.loop_panel.x_name[:1] == "B" else 0
                    row[self.loop_panel.x_name] = float(problem.field.B_mT[comp])
                self.loop_panel.add_row(row)
            self._last_rows = len(rows)

    # ---- export without dialogs
    def export_ovf_to(self, path) -> Path:
        frame = window_frame(self.window)
        problem = getattr(self.window, "problem", None)
        if frame is None:
            raise ValueError("there is no state to export yet: run or step once")
        if problem is None:
            raise ValueError("the window has no problem: the cell size is unknown")
        return export_ovf(path, frame, problem.mesh.cell_m)

    def export_csv_to(self, path) -> Path:
        rows = getattr(self.window, "table_rows", None)
        if not rows:
            raise ValueError("the table is empty: run the simulation first")
        return export_table_csv(path, None, rows)

    def screenshot_to(self, path):
        plotter = window_plotter(self.window)
        if plotter is None:
            raise ValueError("the window has no 3D view")
        return save_screenshot(plotter, path)

    def start_movie(self, path, fps: float = 20.0) -> MovieRecorder:
        plotter = window_plotter(self.window)
        if plotter is None:
            raise ValueError("the window has no 3D view")
        if self.recorder is not None:
            raise ValueError("a movie is already being recorded")
        self.recorder = MovieRecorder(plotter, path, fps=fps)
        self.act_movie.setText("Stop recording and save movie")
        self.message(f"Recording {Path(path).name}: every frame the view draws is kept")
        return self.recorder

    def stop_movie(self, progress: bool = True) -> Path | None:
        rec, self.recorder = self.recorder, None
        self.act_movie.setText("Record movie…")
        if rec is None:
            return None
        path = finish_with_progress(rec, self.window) if progress else rec.close()
        dropped = f" ({rec.frames_dropped} dropped while the encoder was busy)" if rec.frames_dropped else ""
        self.message(f"Movie written: {path} with {rec.frames_written} frames{dropped}")
        return path

    # ---- dialogs
    def _save_name(self, caption, filt, suffix):
        path, _ = QFileDialog.getSaveFileName(self.window, caption, "", filt)
        if not path:
            return None
        p = Path(path)
        if p.suffix.lower() not in suffix:
            p = p.with_suffix(suffix[0])
        return p

    def export_ovf_dialog(self):
        p = self._save_name("Export the state as OVF 2.0", "OVF files (*.ovf)", (".ovf",))
        if p:
            self.message(f"Wrote {self.export_ovf_to(p)}")

    def export_csv_dialog(self):
        p = self._save_name("Export the table as CSV", "CSV files (*.csv)", (".csv",))
        if p:
            self.message(f"Wrote {self.export_csv_to(p)}")

    def screenshot_dialog(self):
        p = self._save_name("Save a screenshot of the 3D view", "PNG images (*.png)", (".png",))
        if p:
            self.screenshot_to(p)
            self.message(f"Wrote {p}")

    def toggle_movie_dialog(self):
        if self.recorder is not None:
            self.stop_movie()
            return
        p = self._save_name("Record a movie of the 3D view", "MP4 video (*.mp4);;GIF animation (*.gif)",
                            (".mp4", ".gif"))
        if p:
            self.start_movie(p)

    def set_theme(self, name: str):
        theme.apply_theme(QApplication.instance(), name, self.window)
        self.theme_actions[name].setChecked(True)

    def show_help(self):
        HelpDialog(self.window).exec()

    def show_model_card(self):
        ModelCardDialog(self.window, self.card).exec()

    # ---- twin run
    def toggle_twin_run(self):
        if self._twin_thread is not None:
            self._twin_worker.stop_requested = True
            self.message("Stopping the twin run after its current sample")
            return
        problem = getattr(self.window, "problem", None)
        if problem is None:
            raise ValueError("the window has no problem to run")
        frame = window_frame(self.window)
        m0 = None if frame is None else np.array(frame.m, dtype=np.float64)
        self.twin_panel.reset()
        self.twin_dock.show()
        self.twin_dock.raise_()
        self._twin_thread = QThread(self)
        self._twin_worker = _TwinWorker(problem.copy(), m0, TWIN_DURATION_NS * 1e-9, TWIN_SAMPLE_PS * 1e-12)
        self._twin_worker.moveToThread(self._twin_thread)
        self._twin_worker.sample.connect(self._on_twin_sample)
        self._twin_worker.finished.connect(self._on_twin_finished)
        self._twin_thread.started.connect(self._twin_worker.run)
        self._twin_thread.start()
        self.act_twin.setText("Stop twin run")

    @Slot(float, object, object, float)
    def _on_twin_sample(self, t, a, b, d):
        self.twin_panel.add_twin(t, a, b, d)

    @Slot(str)
    def _on_twin_finished(self, error: str):
        self.stop_twin_run()
        if error:
            self.message(f"Twin run failed: {error}", error=True)

    def stop_twin_run(self, timeout_ms: int = 30000):
        if self._twin_thread is None:
            return
        self._twin_worker.stop_requested = True
        self._twin_thread.quit()
        self._twin_thread.wait(timeout_ms)
        self._twin_thread, self._twin_worker = None, None
        self.act_twin.setText("Twin run (neural vs FFT)")

    def shutdown(self):
        """Stop the timer, a twin run and a recording (call before the window closes)."""
        self.timer.stop()
        self.stop_twin_run()
        if self.recorder is not None:
            rec, self.recorder = self.recorder, None
            try:
                rec.close()
            except Exception:
                traceback.print_exc()


def install_part2(window: QMainWindow) -> Part2:
    """Add part 2 to `window` (see the module docstring); returns the Part2, also window.part2.
    Applies the desktop's default theme. Installing twice returns the first Part2."""
    existing = getattr(window, "part2", None)
    if isinstance(existing, Part2):
        return existing
    part2 = Part2(window)
    window.part2 = part2
    app = QApplication.instance()
    app.aboutToQuit.connect(part2.shutdown)
    name = theme.default_theme_name(app)
    try:
        theme.apply_theme(app, name, window)
        part2.theme_actions[name].setChecked(True)
    except Exception:
        traceback.print_exc()
    return part2
