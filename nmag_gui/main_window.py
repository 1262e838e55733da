"""MainWindow: the layout and the actions of the app; the state lives in its Session.

Left: the geometry editor and the settings panels (each in a scroll area, so every box stays
reachable at 1024 x 700). Centre: the error banner and the 3D spin view. Bottom: live plots and
the message list. Right: the Surrogate error, Twin run, Example and Loop docks, tabbed.

The window owns no simulation state: `self.session` (nmag_gui/session.py) holds the Problem,
the run state, the table, the snapshots, the latest frame and the dirty flag, and says when
they change. The window subscribes like every dock: a frame that arrives schedules one draw
(frames that arrive meanwhile replace it: a slow view drops frames instead of queueing them);
nothing polls, so an idle window does no work.

Nothing here raises into Qt: slots catch their exceptions and show them in the window (the
status bar, a banner over the view and the Messages tab), never as a traceback dialog.
"""
from __future__ import annotations

import functools
import time
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QHBoxLayout, QLabel,
                               QListWidget, QMainWindow, QMenu, QMessageBox, QScrollArea, QStyle,
                               QTabBar, QTabWidget, QToolButton, QVBoxLayout, QWidget)

from engine import InitialState, Mesh, Problem, ProblemError, ShapeOp

from . import theme
from .plots import LivePlots
from .session import Session
from .spin_view import SpinView
from .worker import IDLE

FRAME_INTERVAL_MS = 33     # at most about 30 drawn frames a second
PLOT_INTERVAL_S = 0.25     # the plots redraw at most 4 times a second: they are slower than the view
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


def _scrolled(widget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.NoFrame)
    scroll.setWidget(widget)
    return scroll


class MainWindow(QMainWindow):
    """The app window. `confirm_discard()` asks before unsaved work is dropped (tests replace it)."""

    def __init__(self, problem: Problem | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.resize(1400, 900)
        self.setDockOptions(QMainWindow.AnimatedDocks | QMainWindow.AllowTabbedDocks)
        self.session = Session(problem or default_problem(), self)
        self.confirm_discard = self._ask_discard
        self.messages: list[str] = []
        self.drawn_frame = None           # the newest frame drawn
        self._pending = None              # the newest frame not drawn yet
        self._drawn_at = 0.0
        self._plots_drawn_at = 0.0
        self._loading = False             # filling the editor and panels from the session
        self._own_edit = False            # the session's problemChanged comes from our own edit
        self._closed = False
        self._sized_for = None
        self._plot_rows = False           # the time plots show table rows (a field sweep)

        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.timeout.connect(self._draw_pending)
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.timeout.connect(self._refresh_plots)

        self._build_central()
        self._build_docks()
        self._build_parts()
        self._build_actions()
        self._build_status_bar()
        self._connect_session()

        self._show_problem(self.session.problem)
        self.session.start()
        self._update_title()
        theme_name = theme.default_theme_name(QApplication.instance())
        try:
            self.set_theme(theme_name)
        except Exception:  # noqa: BLE001 - a theme is cosmetic
            traceback.print_exc()

    # ================================================================== compatibility views
    # (read-only views of the session's state, for scripts and tests)
    problem = property(lambda self: self.session.problem)
    table_rows = property(lambda self: self.session.table_rows)
    snapshots = property(lambda self: self.session.snapshots)
    latest_frame = property(lambda self: self.session.latest_frame)
    run_state = property(lambda self: self.session.run_state)
    dirty = property(lambda self: self.session.dirty)
    project_path = property(lambda self: self.session.project_path)
    last_error = property(lambda self: self.session.last_error)
    sim_thread = property(lambda self: self.session.sim_thread)

    # ================================================================== building
    def _build_central(self):
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.banner = MessageBanner()
        self.view = SpinView()
        self.spin_view = self.view
        self.view.hovered.connect(self._on_hover)
        self.view.overlayChanged.connect(self._on_overlay_changed)
        lay.addWidget(self.banner)
        lay.addWidget(self.view, 1)
        self.setCentralWidget(central)

    def _build_docks(self):
        self.tabs = QTabWidget()
        self.tabs.setUsesScrollButtons(True)
        self.tabs.tabBar().setElideMode(Qt.ElideNone)
        self.editor = None
        self.panels: dict = {}
        try:
            from .geometry_editor import GeometryEditor
            self.editor = GeometryEditor()
            self.tabs.addTab(_scrolled(self.editor), "Geometry")
            self.editor.regionsChanged.connect(self._on_edit)
            self.editor.meshChanged.connect(self._on_edit)
        except Exception as exc:  # noqa: BLE001 - the app still runs without the editor
            traceback.print_exc()
            self.tabs.addTab(QLabel(f"Geometry editor unavailable:\n{exc}"), "Geometry")
        from . import panels as P
        specs = [("materials", "MaterialsPanel", "Materials"), ("field", "FieldPanel", "Field"),
                 ("initial", "InitialStatePanel", "Initial state"), ("solver", "SolverPanel", "Solver")]
        if self.editor is None:
            specs.insert(0, ("mesh", "MeshPanel", "Mesh"))
        for key, cls, title in specs:
            panel = getattr(P, cls)()
            self.panels[key] = panel
            panel.changed.connect(self._on_edit)
            self.tabs.addTab(_scrolled(panel), title)
        mat = self.panels.get("materials")
        if mat is not None:
            mat.materialRemoved.connect(self._on_material_removed)
        left = QDockWidget("Sample and settings", self)
        left.setObjectName("settings_dock")
        left.setWidget(self.tabs)
        left.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        left.setMinimumWidth(260)
        self.addDockWidget(Qt.LeftDockWidgetArea, left)
        self.left_dock = left

        self.plots = LivePlots()
        self.message_list = QListWidget()
        self.message_list.setWordWrap(True)
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.plots, "Plots")
        self.bottom_tabs.addTab(self.message_list, "Messages")
        bottom = QDockWidget("Live plots", self)
        bottom.setObjectName("plots_dock")
        bottom.setWidget(self.bottom_tabs)
        bottom.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.BottomDockWidgetArea, bottom)
        self.bottom_dock = bottom
        # right docks take the full height; the live plots stay under the view
        self.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)
        self.setCorner(Qt.TopRightCorner, Qt.RightDockWidgetArea)

    def _build_parts(self):
        """The docks and controllers that subscribe to the session."""
        from .examples import Examples
        from .exports import Exports
        from .surrogate_dock import SurrogateDock
        from .sweep_dock import SweepDock
        from .twin_run import TwinRunDock
        self.surrogate_dock = SurrogateDock(self.session, self)
        self.error_panel = self.surrogate_dock.panel
        self.twin_dock = TwinRunDock(self.session, self)
        self.twin_dock.runningChanged.connect(self._on_twin_running)
        self.examples = Examples(self)
        self.exports = Exports(self)
        self.right_docks: list[QDockWidget] = []
        self.sweep_dock = SweepDock(self.session, self)     # parameter sweeps on Dask (engine.sweep)
        self.sweep_dock.pointSelected.connect(self._load_sweep_point)
        for dock in (self.surrogate_dock, self.twin_dock, self.examples.info_dock, self.examples.loop_dock,
                     self.sweep_dock):
            self.add_dock(dock)
        self.examples.loop_dock.hide()
        self.surrogate_dock.raise_()

    def _load_sweep_point(self, _index, problem, m, t) -> None:
        """A point clicked in the Sweep dock: its problem and final state into the window."""
        if self.session.dirty and not self.confirm_discard():
            return
        self.session.load(problem, m=m, t=t)

    def add_dock(self, dock: QDockWidget, area=Qt.RightDockWidgetArea) -> QDockWidget:
        """Add a dock that subscribes to the session (see nmag_gui/session.py); right docks
        are tabbed together and get a toggle in the View menu."""
        dock.setMinimumWidth(220)
        self.addDockWidget(area, dock)
        if area == Qt.RightDockWidgetArea:
            if self.right_docks:
                self.tabifyDockWidget(self.right_docks[-1], dock)
            self.right_docks.append(dock)
        if hasattr(self, "view_menu"):
            self.view_menu.addAction(dock.toggleViewAction())
        QTimer.singleShot(0, self._legible_dock_tabs)
        return dock

    def _legible_dock_tabs(self):
        """Dock tabs show their whole title (scroll buttons when they do not fit)."""
        for bar in self.findChildren(QTabBar):
            if bar.parent() is self:
                bar.setElideMode(Qt.ElideNone)
                bar.setUsesScrollButtons(True)

    def _action(self, text, slot, shortcut=None, tip="", icon=None, menu=None):
        a = QAction(text, self)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WindowShortcut)
        a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
        a.setStatusTip(tip)
        a.triggered.connect(lambda _=False: slot())
        if menu is not None:
            menu.addAction(a)
        return a

    def _build_actions(self):
        S = QStyle
        self.act_new = self._action("New", self.new_project, QKeySequence.New, "Start a new project", S.SP_FileIcon)
        self.act_open = self._action("Open…", self.open_dialog, QKeySequence.Open, "Open a project (.h5)",
                                     S.SP_DialogOpenButton)
        self.act_save = self._action("Save", self.save, QKeySequence.Save, "Save the project", S.SP_DialogSaveButton)
        self.act_save_as = self._action("Save As…", self.save_as_dialog, QKeySequence.SaveAs,
                                        "Save the project under a new name")
        self.act_quit = self._action("Quit", self.close, QKeySequence.Quit, "Close the app")
        self.act_run = self._action("Run", self.toggle_run, "Space", "Run the simulation (Space again pauses)",
                                    S.SP_MediaPlay)
        self.act_pause = self._action("Pause", self.pause, None, "Pause after the current step", S.SP_MediaPause)
        self.act_step = self._action("Step", self.step, "S", "One integrator step", S.SP_MediaSkipForward)
        self.act_reset = self._action("Reset", self.reset, "R", "Back to the initial state, t = 0", S.SP_BrowserReload)
        self.act_relax = self._action("Relax", self.relax, None, "Minimise the energy (no time evolution)",
                                      S.SP_ArrowDown)
        self.act_stages = self._action("Run stages", self.run_stages, "Ctrl+R",
                                       "Work through the problem's stages (relax, run, field sweep) from the "
                                       "current state; Space or Pause stops them", S.SP_MediaSeekForward)
        ex = self.exports
        self.act_export_ovf = self._action("State as OVF 2.0…", ex.export_ovf_dialog, None,
                                           "Write the current m as an OVF 2.0 file (binary, float32)")
        self.act_export_csv = self._action("Table as CSV…", ex.export_csv_dialog, None,
                                           "Write the recorded table (t in s, energies in J) as CSV")
        self.act_screenshot = self._action("Screenshot as PNG…", ex.screenshot_dialog, None,
                                           "Save a PNG of the 3D view")
        self.act_movie = self._action("Record movie…", ex.toggle_movie_dialog, None,
                                      "Record the 3D view while it runs (MP4 or GIF); choose again to stop")
        self.act_twin = self._action("Twin run (neural vs FFT)", self.twin_dock.toggle, None,
                                     "Step a neural and an FFT copy of the current state side by side and plot "
                                     "how far they drift apart")
        self.act_help = self._action("Shortcuts and how-to…", self.show_help, QKeySequence.HelpContents,
                                     "Keyboard shortcuts and a short how-to")
        self.act_card = self._action("Model card…", self.show_model_card, None,
                                     "What the neural demag network was trained on")

        bar = self.menuBar()
        fm = bar.addMenu("&File")
        for a in (self.act_new, self.act_open, self.act_save, self.act_save_as):
            fm.addAction(a)
        self.export_menu = QMenu("&Export", self)
        self.export_menu.setToolTipsVisible(True)
        for a in (self.act_export_ovf, self.act_export_csv, self.act_screenshot, self.act_movie):
            self.export_menu.addAction(a)
        fm.addMenu(self.export_menu)
        fm.addSeparator()
        fm.addAction(self.act_quit)
        sm = bar.addMenu("&Simulation")
        for a in (self.act_run, self.act_pause, self.act_step, self.act_reset, self.act_relax, self.act_stages):
            sm.addAction(a)
        sm.addSeparator()
        sm.addAction(self.act_twin)
        self.examples_menu = self.examples.menu
        bar.addMenu(self.examples_menu)
        vm = bar.addMenu("&View")
        self.view_menu = vm
        for label, name, _tip in (("Top", "top", ""), ("Side", "side", ""), ("3D", "3d", ""), ("Reset", "reset", "")):
            self._action(f"Camera: {label}", functools.partial(self._guarded_camera, name), None,
                         f"Camera preset {label}", menu=vm)
        theme_menu = vm.addMenu("Theme")
        self.theme_group = QActionGroup(self)
        self.theme_actions = {}
        for name in theme.THEMES:
            a = QAction(name.capitalize(), self, checkable=True)
            a.setToolTip(f"The {name} colour theme (window, plots and 3D background)")
            a.triggered.connect(lambda _=False, n=name: self._guard(self.set_theme, n))
            self.theme_group.addAction(a)
            theme_menu.addAction(a)
            self.theme_actions[name] = a
        vm.addSeparator()
        for dock in (self.left_dock, self.bottom_dock, *self.right_docks):
            vm.addAction(dock.toggleViewAction())
        hm = bar.addMenu("&Help")
        hm.addAction(self.act_help)
        hm.addAction(self.act_card)

        tb = self.addToolBar("Simulation")
        tb.setObjectName("simulation_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for a in (self.act_new, self.act_open, self.act_save):
            tb.addAction(a)
        tb.addSeparator()
        # one Run/Pause button (it relabels itself); Pause alone lives in the menu
        for a in (self.act_run, self.act_step, self.act_reset, self.act_relax, self.act_stages):
            tb.addAction(a)
        self._update_actions()

    def _build_status_bar(self):
        sb = self.statusBar()
        # hover text has a label of its own, left of the run state, elided to its width
        self.lbl_hover = QLabel("")
        self.lbl_hover.setMinimumWidth(10)
        sb.addWidget(self.lbl_hover, 1)
        self.lbl_state = QLabel("idle")
        self.lbl_time = QLabel("t = 0 ns")
        self.lbl_rate = QLabel("– steps/s")
        self.lbl_fps = QLabel("0 fps")
        self.lbl_demag = QLabel("demag: fft")
        # Fixed sizes: setText on a label whose size may change invalidates the main window's
        # layout, and that relayout took 50-100 ms a frame here.
        height = self.fontMetrics().height() + 6
        for lbl, width in ((self.lbl_state, 80), (self.lbl_time, 130), (self.lbl_rate, 120),
                           (self.lbl_fps, 60), (self.lbl_demag, 170)):
            lbl.setFixedSize(width, height)
            sb.addPermanentWidget(lbl)

    def _connect_session(self):
        s = self.session
        s.problemChanged.connect(self._on_problem_changed)
        s.gridChanged.connect(self._on_grid_changed)
        s.frameArrived.connect(self._on_frame)
        s.rowsAdded.connect(self._on_rows)
        s.tableReset.connect(self._on_table_reset)
        s.runStateChanged.connect(self._on_run_state)
        s.dirtyChanged.connect(lambda _d: self._update_title())
        s.message.connect(self._on_session_message)
        s.diverged.connect(self._on_diverged)

    # ================================================================== sizes
    def showEvent(self, event):
        super().showEvent(event)
        QTimer.singleShot(0, self._size_docks)
        QTimer.singleShot(0, self._legible_dock_tabs)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.isVisible():
            QTimer.singleShot(0, self._size_docks)

    def _size_docks(self):
        """Dock sizes follow the window's size (a quarter of the width each side, about 30 %
        of the height for the plots) whenever the window is resized, not when a dock is
        dragged. Sizes given before the first show are only hints: they are set again here."""
        try:
            shown = [d for d in getattr(self, "right_docks", []) if not d.isHidden()]
            key = (self.width(), self.height(), len(shown))
            if key == self._sized_for:
                return
            self._sized_for = key
            w, h = key[:2]
            # 280 px at 1024: the settings panels (a label, three vector boxes) fit without
            # scrolling sideways, so every number field shows its value
            left = int(min(480, max(280, 0.25 * w)))
            right = int(min(520, max(310, 0.24 * w)))
            if shown:
                # the right docks' tabs fit whole: four do at 310 px; a fifth (the Loop dock of
                # a loop example, which calls this again when it shows) needs about 350 px
                probe = QTabBar()
                probe.setElideMode(Qt.ElideNone)
                for dock in shown:
                    probe.addTab(dock.windowTitle())
                right = max(right, min(probe.sizeHint().width() + 6, int(0.36 * w)))
                probe.deleteLater()
            docks = [self.left_dock] + ([self.right_docks[0]] if self.right_docks else [])
            self.resizeDocks(docks, [left, right][:len(docks)], Qt.Horizontal)
            self.resizeDocks([self.bottom_dock], [int(max(180, 0.3 * h))], Qt.Vertical)
        except Exception:  # noqa: BLE001 - sizes are cosmetic
            traceback.print_exc()

    # ================================================================== problem and edits
    @guarded
    def load_problem(self, problem: Problem, m=None, t: float = 0.0, table=None, snapshots=None):
        """Make `problem` the session's problem (a new one, an example, an opened project):
        the editor and panels show it, the simulation is rebuilt from it; with m the
        simulation starts from that state at time t."""
        self.session.load(problem, m=m, t=t, table=table, snapshots=snapshots)

    def _show_problem(self, problem: Problem) -> None:
        """Fill the editor and the panels from `problem` (no edit signals while doing it)."""
        self._loading = True
        try:
            if self.editor is not None:
                self.editor.set_problem(problem)
            for panel in self.panels.values():
                panel.set_problem(problem)
        finally:
            self._loading = False
        self._update_actions()

    def invalid_fields(self) -> list[str]:
        """The messages of every field shown in red (empty when all are valid)."""
        out = []
        for panel in self.panels.values():
            out += panel.error_messages()
        return out

    def current_problem(self) -> Problem:
        """The problem as the editor and panels show it now (validated), or raise ProblemError."""
        bad = self.invalid_fields()
        if bad:
            raise ProblemError("settings", bad[0], "a valid value in every field shown in red")
        p = self.session.problem.copy()
        if self.editor is not None:
            self.editor.apply_to(p)
        for panel in self.panels.values():
            panel.apply_to(p)
        if p.region_map is not None and np.asarray(p.region_map).shape != p.mesh.shape_zyx:
            raise ProblemError("region_map", f"shape {np.asarray(p.region_map).shape}",
                               f"the grid's shape {p.mesh.shape_zyx}")
        return p

    @guarded
    def _on_edit(self, *_args):
        if self._loading:
            return
        mat = self.panels.get("materials")
        if self.editor is not None and mat is not None:
            names = list(mat.names())
            if names != [m.name for m in self.session.problem.materials]:
                self.editor.set_materials(names)      # region k is drawn as material k
        try:
            p = self.current_problem()
        except ProblemError as exc:
            if self.invalid_fields():
                # a field shown in red: the user is typing; nothing changes until it is valid
                self.lbl_hover.setText(f"Not applied: {exc}")
                return
            # a combination the engine refuses (a choice, a shape): the window shows again what
            # the engine runs, and says why
            self._show_problem(self.session.problem)
            self.show_error(f"Not applied, the simulation keeps the previous settings: {exc}")
            return
        self._own_edit = True
        try:
            self.session.apply_problem(p)
        finally:
            self._own_edit = False

    @guarded
    def _on_material_removed(self, k: int):
        if self.editor is not None:
            self.editor.remove_region(k)

    @Slot(object)
    def _on_problem_changed(self, problem):
        if not self._own_edit:
            self._show_problem(problem)
        self._update_actions()

    @Slot(object)
    def _on_grid_changed(self, _problem):
        self._pending = None          # a frame of the old grid is not drawn any more

    # ================================================================== commands
    def _block_if_invalid(self, what: str) -> bool:
        """Refuse `what` while a field is invalid, saying which (True when refused)."""
        bad = self.invalid_fields()
        if bad:
            self.show_error(f"Not {what}: a field is invalid: {bad[0]}")
            return True
        return False

    @guarded
    def toggle_run(self, *_):
        if self.session.run_state == IDLE:
            self.run()
        else:
            self.pause()

    @guarded
    def run(self, *_):
        if self._block_if_invalid("run"):
            return
        self._set_plot_rows(False)
        self.session.run()

    @guarded
    def pause(self, *_):
        self.session.pause()

    @guarded
    def step(self, *_):
        if self._block_if_invalid("stepped"):
            return
        self.session.step()

    @guarded
    def relax(self, *_):
        if self._block_if_invalid("relaxed"):
            return
        self.session.relax()

    @guarded
    def run_stages(self, *_):
        """Run the problem's stages on the simulation thread (rows and frames come live)."""
        if self.session.run_state != IDLE or self._block_if_invalid("run"):
            return
        if not self.session.problem.stages:
            self.show_message("This problem has no stages: Run steps it in time, Relax minimises "
                              "the energy.")
            return
        sweep = any(getattr(st, "kind", "") == "sweep" for st in self.session.problem.stages)
        self._set_plot_rows(sweep)
        self.examples.start_loop()
        self.session.run_stages()

    @guarded
    def reset(self, *_):
        if self._block_if_invalid("reset"):
            return
        self._set_plot_rows(False)
        self.session.reset()

    def _guarded_camera(self, name):
        try:
            self.view.set_camera(name)
        except Exception as exc:  # noqa: BLE001
            self.show_error(str(exc))

    # ================================================================== frames
    @Slot(object)
    def _on_frame(self, frame):
        """Keep the newest frame and schedule one draw (at most one per FRAME_INTERVAL_MS)."""
        self._pending = frame
        if not self._plot_rows:
            self.plots.append(frame.t, frame.mean_m, frame.energies)
            self._schedule_plots()
        if not self._draw_timer.isActive():
            wait = FRAME_INTERVAL_MS - 1e3 * (time.perf_counter() - self._drawn_at)
            self._draw_timer.start(int(max(0.0, wait)))

    @Slot()
    def _draw_pending(self):
        frame, self._pending = self._pending, None
        if frame is None:
            return
        try:
            self.view.show_frame(frame, tuple(self.session.problem.mesh.cell_nm)
                                 if frame.m.shape[1:] == self.session.problem.mesh.shape_zyx
                                 else self._cell_of(frame))
            self.drawn_frame = frame
            self._drawn_at = time.perf_counter()
            self._update_status(frame)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.show_error(f"Drawing failed: {type(exc).__name__}: {exc}")

    def _cell_of(self, frame):
        """The cell size of a frame whose grid is not the session's problem's (a rolled-back
        edit): the engine's accepted problem."""
        return tuple(self.session._accepted.mesh.cell_nm)

    def _schedule_plots(self):
        if not self._plot_timer.isActive():
            wait = PLOT_INTERVAL_S - (time.perf_counter() - self._plots_drawn_at)
            self._plot_timer.start(int(max(0.0, 1e3 * wait)))

    @Slot()
    def _refresh_plots(self):
        self._plots_drawn_at = time.perf_counter()
        try:
            self.plots.refresh()
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    def _set_plot_rows(self, on: bool) -> None:
        """The time plots show table rows against their number (a field sweep, where the time
        stands still) instead of live frames against t."""
        if on != self._plot_rows:
            self._plot_rows = on
            self.plots.set_x_axis("row" if on else "t")
            self._on_table_reset()

    @Slot(list)
    def _on_rows(self, rows):
        if self._plot_rows:
            for row in rows:
                self.plots.append_row(row)
            self._schedule_plots()

    @Slot()
    def _on_table_reset(self):
        """The table was cleared or replaced: the plots start again from it (and a state not
        of the new run is not "drawn" any more: the next frame replaces it)."""
        if self.session.latest_frame is None:
            self.drawn_frame, self._pending = None, None
        self.plots.clear()
        for row in self.session.table_rows:
            self.plots.append_row(row)
        self.plots.refresh()

    def _update_status(self, frame):
        s = self.session
        self.lbl_time.setText(f"t = {frame.t * 1e9:.4f} ns")
        running = s.run_state != IDLE
        self.lbl_rate.setText(f"{frame.steps_per_s:.1f} steps/s" if running else "– steps/s")
        self.lbl_fps.setText(f"{self.view.fps:.0f} fps")
        asked = s.problem.solver.demag
        # a neural problem outside the model card runs the exact FFT: say so where the method shows
        fell_back = frame.demag_method == "fft" and asked.startswith("neural")
        text = "demag: fft (fallback)" if fell_back else f"demag: {frame.demag_method}"
        if text != self.lbl_demag.text():
            self.lbl_demag.setText(text)
            self.lbl_demag.setToolTip(f"{asked} is outside the network's model card: the exact FFT demag runs "
                                      "(the Messages tab says why)" if fell_back else "")

    @Slot(str, bool)
    def _on_overlay_changed(self, kind: str, _log: bool):
        self.session.want_overlay(kind)      # frames carry only the arrays the overlay draws

    # ================================================================== session signals
    @Slot(str)
    def _on_run_state(self, _state: str):
        self.lbl_state.setText(self.session.status_text)
        if self.session.run_state == IDLE:
            self.lbl_rate.setText("– steps/s")
        self._update_actions()

    @Slot(str, bool)
    def _on_session_message(self, text: str, error: bool):
        if error:
            self.show_error(text)
        else:
            self.show_message(text)

    @Slot(str)
    def _on_diverged(self, _text: str):
        self.lbl_state.setText("paused")
        self.bottom_tabs.setCurrentWidget(self.message_list)

    @Slot(bool)
    def _on_twin_running(self, running: bool):
        self.act_twin.setText("Stop twin run" if running else "Twin run (neural vs FFT)")

    @Slot(str)
    def _on_hover(self, text: str):
        text = text.replace("\n", "   ·   ")
        self.lbl_hover.setToolTip(text)
        self.lbl_hover.setText(self.lbl_hover.fontMetrics().elidedText(text, Qt.ElideRight,
                                                                       max(10, self.lbl_hover.width())))

    # ================================================================== messages
    def show_error(self, text: str) -> None:
        self.session.last_error = text
        self.banner.show_message(text)
        self.show_message(text, error=True)

    def show_message(self, text: str, error: bool = False) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.messages.append(text)
        self.message_list.addItem(f"{stamp}  {'⚠ ' if error else ''}{text}")
        self.message_list.scrollToBottom()
        self.statusBar().showMessage(text, 10000)

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.show_error(f"{type(exc).__name__}: {exc}")
        return None

    # ================================================================== files
    def _update_title(self):
        path = self.session.project_path
        name = path.name if path else "untitled"
        self.setWindowTitle(f"{name}{' *' if self.session.dirty else ''} — {APP_NAME}")

    @guarded
    def save(self, *_):
        if self.session.project_path is None:
            self.save_as_dialog()
        else:
            self.save_project(self.session.project_path)

    @guarded
    def save_as_dialog(self, *_):
        start = str(self.session.project_path or "project.h5")
        path, _f = QFileDialog.getSaveFileName(self, "Save project", start, "nmag projects (*.h5)")
        if path:
            if not path.lower().endswith((".h5", ".hdf5")):
                path += ".h5"
            self.save_project(path)

    def save_project(self, path) -> Path:
        """Save the session's problem, state, table and snapshots (atomic)."""
        out = self.session.save(path)
        self._update_title()
        self.show_message(f"Saved {path}")
        return out

    @guarded
    def open_dialog(self, *_):
        if self.session.dirty and not self.confirm_discard():
            return
        path, _f = QFileDialog.getOpenFileName(self, "Open project", "", "nmag projects (*.h5 *.hdf5)")
        if path:
            self.open_project(path)

    def open_project(self, path) -> bool:
        """Open a project file. A damaged or newer file is reported in the window; returns False."""
        self._set_plot_rows(False)
        ok = self.session.open(path)
        if ok:
            self.examples.clear()
            self._update_title()
            self.show_message(f"Opened {path}")
        return ok

    @guarded
    def new_project(self, *_):
        if self.session.dirty and not self.confirm_discard():
            return
        self.session.pause()
        self._set_plot_rows(False)
        self.examples.clear()
        self.view.set_overlay_kind("none")      # an example's suggested view does not carry over
        self.view.set_color_by("angle")
        self.session.load(default_problem())
        self._update_title()

    def _ask_discard(self) -> bool:
        answer = QMessageBox.question(self, APP_NAME, "The project has unsaved changes. Discard them?",
                                      QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Discard

    # ================================================================== theme and help
    def set_theme(self, name: str):
        theme.apply_theme(QApplication.instance(), name, self)
        theme.register_plotter(self.view.plotter)
        theme.set_plotter_background(self.view.plotter, name)
        self.theme_actions[name].setChecked(True)

    def show_help(self):
        from .help_dialog import HelpDialog
        HelpDialog(self).exec()

    def show_model_card(self):
        from .error_view import ModelCardDialog
        ModelCardDialog(self, self.surrogate_dock.card).exec()

    # ================================================================== actions and closing
    def _update_actions(self):
        idle = self.session.run_state == IDLE
        self.act_run.setText("Run" if idle else "Pause")
        self.act_run.setIcon(self.style().standardIcon(QStyle.SP_MediaPlay if idle else QStyle.SP_MediaPause))
        self.act_pause.setEnabled(not idle)
        self.act_step.setEnabled(idle)
        self.act_relax.setEnabled(idle)
        self.act_stages.setEnabled(idle and bool(self.session.problem.stages))
        self.lbl_state.setText(self.session.status_text) if hasattr(self, "lbl_state") else None

    def shutdown(self) -> None:
        """Stop the twin run, a recording and the simulation thread; close the VTK window.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._draw_timer.stop()
        self._plot_timer.stop()
        for fn in (self.twin_dock.stop, self.sweep_dock.shutdown, self.exports.shutdown, self.session.shutdown,
                   self.view.close):
            try:
                fn()
            except Exception:  # noqa: BLE001 - closing goes on
                traceback.print_exc()

    def closeEvent(self, event):
        try:
            if self.session.dirty and not self._closed and not self.confirm_discard():
                event.ignore()
                return
            self.shutdown()
        except Exception:  # noqa: BLE001 - never keep the window open because of a failure here
            traceback.print_exc()
        event.accept()
