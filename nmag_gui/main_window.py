"""MainWindow: the desktop app around one Problem and one simulation thread.

Left: the geometry editor and the settings panels, which edit the problem description. Centre:
the 3D spin view. Bottom: live plots and the message list. Every edit builds a new Problem and
sends it to the worker, which applies it between steps. Frames come back by a queued signal to
`on_frame`, which only keeps the latest one (and records the table row); a 33 ms timer draws it
if it is new, so a slow view drops frames instead of queueing them.

Nothing here raises into Qt: slots catch their exceptions and show them in the window (the status
bar, a banner over the view and the Messages tab), never as a traceback dialog.

Part 2 (nmag_gui/part2.py: examples, the surrogate's error panels, twin run, export, themes,
help) is installed at the end of __init__ (`install_part2=False` leaves it out) and lives on
`window.part2`. "Run stages" works through the problem's [[stages]] (relax, run, sweep) on the
simulation thread, so a hysteresis example traces its loop live.
"""
from __future__ import annotations

import functools
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QHBoxLayout, QLabel, QListWidget,
                               QMainWindow, QMessageBox, QPushButton, QScrollArea, QStyle, QTabWidget,
                               QToolButton, QVBoxLayout, QWidget)

from engine import InitialState, Mesh, Problem, ProblemError, ShapeOp
from engine import results

from .plots import LivePlots
from .spin_view import SpinView
from .worker import IDLE, RELAXING, RUNNING, SimulationThread

FRAME_INTERVAL_MS = 33
PLOT_INTERVAL_S = 0.25     # the plots redraw at most 4 times a second: they are slower than the view
MAX_SNAPSHOTS = 64
APP_NAME = "NeuralMAG Studio"


def default_problem() -> Problem:
    """What a new project starts with: a 150 nm permalloy disk, 3 nm cells, in a vortex state."""
    p = Problem(title="untitled")
    p.mesh = Mesh((64, 64, 1), (3.0, 3.0, 3.0))
    p.geometry = [ShapeOp("ellipse", "add", "permalloy", {"center_nm": [0, 0], "radii_nm": [75, 75]})]
    p.initial = InitialState("vortex", {})
    return p.validate()


def guarded(fn):
    """Run a slot; show any exception in the window instead of letting it reach Qt."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except ProblemError as exc:
            self.show_error(str(exc))
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.show_error(f"{type(exc).__name__}: {exc}")
    return wrapper


class MessageBanner(QWidget):
    """A non-modal error line over the view, with a close button."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.setStyleSheet("background: #7a1f1f; color: white;")
        self.setAutoFillBackground(True)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()


class MainWindow(QMainWindow):
    """The app window. `confirm_discard()` asks before unsaved work is dropped (tests replace it)."""

    def __init__(self, problem: Problem | None = None, parent=None, install_part2: bool = True):
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1400, 900)
        self.problem = (problem or default_problem()).copy()
        self.project_path: Path | None = None
        self.dirty = False
        self.confirm_discard = self._ask_discard
        self.run_state = IDLE
        self.messages: list[str] = []
        self.last_error: str | None = None
        self.latest_frame = None          # the newest frame received
        self.drawn_frame = None           # the newest frame drawn
        self.frames_received = 0
        self.table_rows: list[dict] = []  # recorded at problem.output.table_every_ps
        self.snapshots: list[tuple] = []  # (t, m) at problem.output.snapshot_every_ps
        self._lock = threading.Lock()
        self._frame_new = False
        self._sim_cell_nm = tuple(self.problem.mesh.cell_nm)
        self._advanced = False            # the state is more than the initial state of the problem
        self._loading = False
        self._saved_key = None            # (t, steps) of the state last saved or opened
        self._closed = False
        self._plots_drawn_at = 0.0
        self._status_at = 0.0

        self.sim_thread = SimulationThread(self)
        w = self.sim_thread.worker
        w.frameReady.connect(self.on_frame)
        w.stateChanged.connect(self.on_state_changed)
        w.error.connect(self.on_worker_error)
        w.message.connect(self.on_worker_message)
        w.rebuilt.connect(self.on_rebuilt)

        self._build_central()
        self._build_docks()
        self._build_actions()
        self._build_status_bar()

        self.frame_timer = QTimer(self)
        self.frame_timer.setInterval(FRAME_INTERVAL_MS)
        self.frame_timer.timeout.connect(self._draw_latest)
        self.frame_timer.start()

        self.load_problem(self.problem)
        self._set_dirty(False)
        self.part2 = None
        if install_part2:
            self._install_part2()

    def _install_part2(self):
        """Examples, the surrogate's error, export, themes and help (nmag_gui.part2). Imported
        here, not at the top: part2 must stay importable on its own, without this module."""
        try:
            from .part2 import install_part2
            install_part2(self)
        except Exception as exc:  # noqa: BLE001 - the app still runs without part 2
            traceback.print_exc()
            self.show_error(f"Part 2 (examples, error view, export) unavailable: {exc}")
            return
        # right docks take the full height; the live plots stay under the view, readable
        self.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)
        self.setCorner(Qt.TopRightCorner, Qt.RightDockWidgetArea)
        self.resizeDocks([self.part2.error_dock], [400], Qt.Horizontal)
        self.resizeDocks([self.bottom_dock], [270], Qt.Vertical)

    def showEvent(self, event):
        super().showEvent(event)
        if not getattr(self, "_docks_sized", False):
            self._docks_sized = True
            QTimer.singleShot(0, self._size_docks)

    def _size_docks(self):
        """Sizes given before the first show are only hints: set them again once laid out."""
        try:
            docks = [self.left_dock] + ([self.part2.error_dock] if self.part2 is not None else [])
            widths = [min(420, self.width() // 4), min(360, self.width() // 4)][:len(docks)]
            self.resizeDocks(docks, widths, Qt.Horizontal)
            self.resizeDocks([self.bottom_dock], [max(240, self.height() * 3 // 10)], Qt.Vertical)
        except Exception:  # noqa: BLE001 - sizes are cosmetic
            traceback.print_exc()

    # ================================================================== building
    def _build_central(self):
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.banner = MessageBanner()
        self.view = SpinView()
        self.spin_view = self.view          # the name part 2 looks for first
        self.view.hovered.connect(self._on_hover)
        lay.addWidget(self.banner)
        lay.addWidget(self.view, 1)
        self.setCentralWidget(central)

    def _build_docks(self):
        self.tabs = QTabWidget()
        self.editor = None
        self.panels: dict = {}
        try:
            from .geometry_editor import GeometryEditor
            self.editor = GeometryEditor()
            self.tabs.addTab(self.editor, "Geometry")
            self.editor.regionsChanged.connect(self._on_edit)
            if hasattr(self.editor, "meshChanged"):
                self.editor.meshChanged.connect(self._on_edit)
        except Exception as exc:  # noqa: BLE001 - the app still runs without the editor
            traceback.print_exc()
            self.tabs.addTab(QLabel(f"Geometry editor unavailable:\n{exc}"), "Geometry")
        try:
            from . import panels as P
            specs = [("materials", "MaterialsPanel", "Materials"), ("field", "FieldPanel", "Field"),
                     ("initial", "InitialStatePanel", "Initial state"), ("solver", "SolverPanel", "Solver")]
            if self.editor is None or not hasattr(self.editor, "mesh_panel"):
                specs.insert(0, ("mesh", "MeshPanel", "Mesh"))
            for key, cls, title in specs:
                panel = getattr(P, cls)()
                self.panels[key] = panel
                panel.changed.connect(self._on_edit)
                scroll = QScrollArea()
                scroll.setWidgetResizable(True)
                scroll.setWidget(panel)
                self.tabs.addTab(scroll, title)
            mat = self.panels.get("materials")
            if mat is not None and hasattr(mat, "materialRemoved"):
                mat.materialRemoved.connect(self._on_material_removed)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.tabs.addTab(QLabel(f"Settings panels unavailable:\n{exc}"), "Settings")
        left = QDockWidget("Sample and settings", self)
        left.setObjectName("settings_dock")
        left.setWidget(self.tabs)
        left.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.LeftDockWidgetArea, left)
        self.left_dock = left

        self.plots = LivePlots()
        self.message_list = QListWidget()
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.plots, "Plots")
        self.bottom_tabs.addTab(self.message_list, "Messages")
        bottom = QDockWidget("Live plots", self)
        bottom.setObjectName("plots_dock")
        bottom.setWidget(self.bottom_tabs)
        bottom.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.BottomDockWidgetArea, bottom)
        self.bottom_dock = bottom
        self.resizeDocks([left], [440], Qt.Horizontal)
        self.resizeDocks([bottom], [270], Qt.Vertical)

    def _action(self, text, slot, shortcut=None, tip="", icon=None):
        a = QAction(text, self)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WindowShortcut)
        a.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    def _build_actions(self):
        self.act_new = self._action("New", self.new_project, QKeySequence.New, "Start a new project", QStyle.SP_FileIcon)
        self.act_open = self._action("Open…", self.open_dialog, QKeySequence.Open, "Open a project (.h5)", QStyle.SP_DialogOpenButton)
        self.act_save = self._action("Save", self.save, QKeySequence.Save, "Save the project", QStyle.SP_DialogSaveButton)
        self.act_save_as = self._action("Save As…", self.save_as_dialog, QKeySequence.SaveAs,
                                        "Save the project under a new name")
        self.act_quit = self._action("Quit", self.close, QKeySequence.Quit, "Close the app")
        self.act_run = self._action("Run", self.toggle_run, "Space", "Run the simulation (Space again pauses)",
                                    QStyle.SP_MediaPlay)
        self.act_pause = self._action("Pause", self.pause, None, "Pause after the current step", QStyle.SP_MediaPause)
        self.act_step = self._action("Step", self.step, "S", "One integrator step", QStyle.SP_MediaSkipForward)
        self.act_reset = self._action("Reset", self.reset, "R", "Back to the initial state, t = 0",
                                      QStyle.SP_BrowserReload)
        self.act_relax = self._action("Relax", self.relax, None, "Minimise the energy (no time evolution)",
                                      QStyle.SP_ArrowDown)
        self.act_stages = self._action("Run stages", self.run_stages, "Ctrl+R",
                                       "Work through the problem's stages (relax, run, field sweep) from the "
                                       "current state; Space or Pause stops them", QStyle.SP_MediaSeekForward)

        fm = self.menuBar().addMenu("&File")
        for a in (self.act_new, self.act_open, self.act_save, self.act_save_as):
            fm.addAction(a)
        fm.addSeparator()
        fm.addAction(self.act_quit)
        sm = self.menuBar().addMenu("&Simulation")
        for a in (self.act_run, self.act_pause, self.act_step, self.act_reset, self.act_relax, self.act_stages):
            sm.addAction(a)
        vm = self.menuBar().addMenu("&View")
        for name in ("top", "side", "3d", "reset"):
            a = QAction(f"Camera: {name}", self)
            a.triggered.connect(lambda _=False, n=name: self._guarded_camera(n))
            vm.addAction(a)

        tb = self.addToolBar("Simulation")
        tb.setObjectName("simulation_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for a in (self.act_new, self.act_open, self.act_save):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_run, self.act_pause, self.act_step, self.act_reset, self.act_relax, self.act_stages):
            tb.addAction(a)
        self._update_actions()

    def _build_status_bar(self):
        sb = self.statusBar()
        self.lbl_state = QLabel("idle")
        self.lbl_time = QLabel("t = 0 ns")
        self.lbl_rate = QLabel("0 steps/s")
        self.lbl_fps = QLabel("0 fps")
        self.lbl_demag = QLabel("demag: fft")
        # Fixed sizes (width and height): setText on a label whose size may change invalidates
        # the main window's layout, and that relayout took 50-100 ms a frame here.
        height = self.fontMetrics().height() + 6
        for lbl, width in ((self.lbl_state, 70), (self.lbl_time, 130), (self.lbl_rate, 120),
                           (self.lbl_fps, 60), (self.lbl_demag, 150)):
            lbl.setFixedSize(width, height)
            sb.addPermanentWidget(lbl)

    # ================================================================== problem and edits
    @guarded
    def load_problem(self, problem: Problem, m=None, t: float = 0.0, table=None, snapshots=None):
        """Show `problem` in the editor and panels and (re)build the simulation from it; with m
        the simulation starts from that state at time t (an opened project)."""
        problem = problem.copy().validate()
        self._loading = True
        try:
            if self.editor is not None:
                if hasattr(self.editor, "set_problem"):
                    self.editor.set_problem(problem)
                else:
                    self.editor.set_materials([mm.name for mm in problem.materials])
                    self.editor.set_mesh(problem.mesh.n, problem.mesh.cell_nm)
                    self.editor.set_region_map(problem.regions())
            for panel in self.panels.values():
                panel.set_problem(problem)
        finally:
            self._loading = False
        self.problem = problem
        self.table_rows = [] if table is None else list(table)
        self.snapshots = [] if snapshots is None else list(snapshots)
        if hasattr(self, "act_stages"):
            self.act_stages.setEnabled(self.run_state == IDLE and bool(problem.stages))
        self.plots.clear()
        for row in self.table_rows:
            self.plots.append(row.get("t", 0.0), [row.get(c, np.nan) for c in ("mx", "my", "mz")],
                              {k[2:]: v for k, v in row.items() if k.startswith("E_")})
        self.plots.refresh()
        with self._lock:
            self.latest_frame, self._frame_new = None, False
        self.drawn_frame = None
        if m is None:
            self._advanced = False
            self.sim_thread.reset(problem)
        else:
            self._advanced = True
            self.sim_thread.load(problem, m, t, 0)
        self._saved_key = ("pending", float(t))
        self._update_title()

    def current_problem(self) -> Problem:
        """The problem as the editor and panels show it now (validated), or raise ProblemError."""
        p = self.problem.copy()
        if self.editor is not None:
            if hasattr(self.editor, "apply_to"):
                self.editor.apply_to(p)
            else:
                p.region_map = self.editor.region_map()
        for key, panel in self.panels.items():
            if not panel.is_valid():
                raise ProblemError(key, "(see the marked field)", "valid values in every field")
            panel.apply_to(p)
        if p.region_map is not None and np.asarray(p.region_map).shape != p.mesh.shape_zyx:
            raise ProblemError("region_map", f"shape {np.asarray(p.region_map).shape}",
                               f"the grid's shape {p.mesh.shape_zyx}")
        return p.validate()

    @guarded
    def _on_edit(self, *_args):
        if self._loading:
            return
        mat = self.panels.get("materials")
        if self.editor is not None and mat is not None and hasattr(mat, "names"):
            names = list(mat.names())
            if names != [m.name for m in self.problem.materials]:
                self.editor.set_materials(names)      # region k is drawn as material k
        try:
            p = self.current_problem()
        except ProblemError as exc:
            self.statusBar().showMessage(f"Not applied: {exc}", 8000)
            return
        self.problem = p
        self._set_dirty(True)
        if self._advanced or self.run_state != IDLE:
            self.sim_thread.apply_problem(p)   # between steps; m and t are kept
        else:
            self.sim_thread.reset(p)           # nothing computed yet: show the new initial state

    @guarded
    def _on_material_removed(self, k: int):
        if self.editor is not None and hasattr(self.editor, "remove_region"):
            self.editor.remove_region(k)

    # ================================================================== commands
    @guarded
    def toggle_run(self, *_):
        if self.run_state == IDLE:
            self.run()
        else:
            self.pause()

    @guarded
    def run(self, *_):
        self._advanced = True
        self.sim_thread.run()

    @guarded
    def pause(self, *_):
        self.sim_thread.pause()

    @guarded
    def step(self, *_):
        if self.run_state != IDLE:
            return
        self._advanced = True
        self.sim_thread.step()

    @guarded
    def relax(self, *_):
        if self.run_state != IDLE:
            return
        self._advanced = True
        self.sim_thread.relax()

    @guarded
    def run_stages(self, *_):
        """Run the problem's stages on the simulation thread (rows and frames come live)."""
        if self.run_state != IDLE:
            return
        if not self.problem.stages:
            self.show_message("This problem has no stages: Run steps it in time, Relax minimises "
                              "the energy.")
            return
        self._advanced = True
        if self.part2 is not None:
            self.part2.start_loop(len(self.table_rows))   # the loop plot shows this run's rows
        self.sim_thread.run_stages()

    @guarded
    def reset(self, *_):
        p = self.current_problem()
        self.problem = p
        self.table_rows, self.snapshots = [], []
        self.plots.clear()
        self._advanced = False
        with self._lock:
            self.latest_frame, self._frame_new = None, False
        self.sim_thread.reset(p)

    def _guarded_camera(self, name):
        try:
            self.view.set_camera(name)
        except Exception as exc:  # noqa: BLE001
            self.show_error(str(exc))

    # ================================================================== frames (GUI thread)
    @Slot(object)
    def on_frame(self, frame):
        """Every frame lands here (queued from the worker). Keep the latest; record the table."""
        try:
            if frame.extra.get("generation", self.sim_thread.generation) != self.sim_thread.generation:
                return            # queued before the last reset or open: from a run that is gone
            with self._lock:
                self.latest_frame = frame
                self._frame_new = True
            self.frames_received += 1
            if self._saved_key is not None and self._saved_key[0] == "pending":
                self._saved_key = (frame.t, frame.steps)
            self._record(frame)
            if self.dirty is False and self._saved_key != (frame.t, frame.steps) and self._advanced:
                self._set_dirty(True)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.show_error(f"{type(exc).__name__}: {exc}")

    def _record(self, frame):
        """Keep the table rows and snapshots the worker recorded; plot <m> of every frame and
        the energies of the frames that carry them."""
        rows = frame.extra.get("rows", ())
        for row in rows:
            if self.table_rows and set(row) != set(self.table_rows[-1]):
                row = {k: row.get(k, np.nan) for k in self.table_rows[-1]}   # one column set
            self.table_rows.append(row)
        self.snapshots.extend(frame.extra.get("snapshots", ()))
        while len(self.snapshots) > MAX_SNAPSHOTS:
            self.snapshots = self.snapshots[::2]      # keep the whole run at half the rate
        self.plots.append(frame.t, frame.mean_m, frame.energies)

    @Slot()
    def _draw_latest(self):
        """The 33 ms timer: draw the latest frame if it is new (older ones were dropped)."""
        try:
            with self._lock:
                frame = self.latest_frame if self._frame_new else None
                self._frame_new = False
            now = time.perf_counter()
            if frame is None and now - self._status_at > 0.5:
                self._status_at = now
                self.lbl_fps.setText(f"{self.view.fps:.0f} fps")
            if frame is not None:
                cell = self._sim_cell_nm
                self.view.show_frame(frame, cell)
                self.drawn_frame = frame
                now = time.perf_counter()
                if now - self._plots_drawn_at >= PLOT_INTERVAL_S:
                    self._plots_drawn_at = now
                    self.plots.refresh()
                self._update_status(frame)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.show_error(f"Drawing failed: {type(exc).__name__}: {exc}")

    def _update_status(self, frame):
        self.lbl_time.setText(f"t = {frame.t * 1e9:.4f} ns")
        if self.run_state == IDLE:
            self.lbl_rate.setText("– steps/s")
        else:
            self.lbl_rate.setText(f"{frame.extra.get('steps_per_s', 0.0):.1f} steps/s")
        self.lbl_fps.setText(f"{self.view.fps:.0f} fps")
        self.lbl_demag.setText(f"demag: {frame.demag_method}")

    # ================================================================== worker signals
    @Slot(str)
    def on_state_changed(self, state: str):
        self.run_state = state
        self.lbl_state.setText(state)
        if state == IDLE:
            self.lbl_rate.setText("– steps/s")
        self._update_actions()

    @Slot(str)
    def on_worker_error(self, text: str):
        self.run_state = self.sim_thread.state
        self._update_actions()
        self.show_error(f"Simulation stopped: {text}")

    @Slot(str)
    def on_worker_message(self, text: str):
        self.show_message(text)

    @Slot(object)
    def on_rebuilt(self, problem):
        self._sim_cell_nm = tuple(problem.mesh.cell_nm)

    @Slot(str)
    def _on_hover(self, text: str):
        if text:
            self.statusBar().showMessage(text.replace("\n", "   ·   "), 4000)
        else:
            self.statusBar().clearMessage()

    # ================================================================== messages
    def show_error(self, text: str) -> None:
        self.last_error = text
        self.banner.show_message(text)
        self.show_message(text, error=True)

    def show_message(self, text: str, error: bool = False) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.messages.append(text)
        self.message_list.addItem(f"{stamp}  {'⚠ ' if error else ''}{text}")
        self.message_list.scrollToBottom()
        self.statusBar().showMessage(text, 10000)

    # ================================================================== files
    def _set_dirty(self, dirty: bool):
        self.dirty = bool(dirty)
        self._update_title()

    def _update_title(self):
        name = self.project_path.name if self.project_path else "untitled"
        self.setWindowTitle(f"{name}{' *' if self.dirty else ''} — {APP_NAME}")

    @guarded
    def save(self, *_):
        if self.project_path is None:
            self.save_as_dialog()
        else:
            self.save_project(self.project_path)

    @guarded
    def save_as_dialog(self, *_):
        path, _f = QFileDialog.getSaveFileName(self, "Save project", str(self.project_path or "project.h5"),
                                               "nmag projects (*.h5)")
        if path:
            if not path.lower().endswith((".h5", ".hdf5")):
                path += ".h5"
            self.save_project(path)

    def save_project(self, path) -> Path:
        """Save the problem (with the painted region map), the current m and t, the table and
        the snapshots (atomic: engine.results writes a .part file and renames it)."""
        problem = self.current_problem()
        frame = self.latest_frame
        m, t = (frame.m, frame.t) if frame is not None else (None, 0.0)
        out = results.save_project(path, problem, m=m, t=t, table_rows=self.table_rows or None,
                                   snapshots=self.snapshots or None)
        self.project_path = Path(path)
        self._saved_key = (frame.t, frame.steps) if frame is not None else None
        self._set_dirty(False)
        self.show_message(f"Saved {path}")
        return out

    @guarded
    def open_dialog(self, *_):
        if self.dirty and not self.confirm_discard():
            return
        path, _f = QFileDialog.getOpenFileName(self, "Open project", "", "nmag projects (*.h5 *.hdf5)")
        if path:
            self.open_project(path)

    def open_project(self, path) -> bool:
        """Open a project file. A damaged or newer file is reported in the window; returns False."""
        try:
            proj = results.open_project(path)
        except ProblemError as exc:
            self.show_error(str(exc))
            return False
        rows = []
        cols = list(proj.table)
        n = len(proj.table[cols[0]]) if cols else 0
        for i in range(n):
            rows.append({c: float(proj.table[c][i]) for c in cols})
        self.pause()
        self.load_problem(proj.problem, m=proj.m, t=proj.t, table=rows, snapshots=proj.snapshots)
        self.project_path = Path(path)
        self._set_dirty(False)
        self.show_message(f"Opened {path}")
        return True

    @guarded
    def new_project(self, *_):
        if self.dirty and not self.confirm_discard():
            return
        self.pause()
        self.project_path = None
        self.load_problem(default_problem())
        self._set_dirty(False)

    def _ask_discard(self) -> bool:
        answer = QMessageBox.question(self, APP_NAME, "The project has unsaved changes. Discard them?",
                                      QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Discard

    # ================================================================== closing
    def _update_actions(self):
        idle = self.run_state == IDLE
        self.act_run.setText("Run" if idle else "Pause")
        self.act_pause.setEnabled(not idle)
        self.act_step.setEnabled(idle)
        self.act_relax.setEnabled(idle)
        self.act_stages.setEnabled(idle and bool(getattr(self.problem, "stages", None)))

    def shutdown(self) -> None:
        """Stop the simulation thread (flag, quit, wait) and close the VTK window. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.frame_timer.stop()
        if self.part2 is not None:
            self.part2.shutdown()     # its timer, a twin run, a movie being recorded
        self.sim_thread.stop()
        self.view.close()

    def closeEvent(self, event):
        try:
            if self.dirty and not self._closed and not self.confirm_discard():
                event.ignore()
                return
            self.shutdown()
        except Exception:  # noqa: BLE001 - never keep the window open because of a failure here
            traceback.print_exc()
        event.accept()
