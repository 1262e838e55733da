"""Every defect a new user hit (issue 10, and the GUI side of issue 9), each in the real window
(Xvfb), each failing without its fix.

Run: python -m pytest tests/gui/test_new_user_defects.py -q
"""
from __future__ import annotations

import json
import os
import resource
import stat
import time

import h5py
import numpy as np
import pytest

pytest.importorskip("pytestqt")
import nmag_gui  # noqa: F401,E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QLabel, QScrollArea, QTabBar, QToolButton  # noqa: E402

from engine import Problem  # noqa: E402
from nmag_gui.examples_menu import load_catalog  # noqa: E402
from nmag_gui.worker import IDLE, SimulationDiverged  # noqa: E402

from window_helpers import settle as _settle, tilted_sample  # noqa: E402

pytestmark = pytest.mark.gui

TIMEOUT_MS = 20000


def small_disk(n: int = 32) -> Problem:
    return tilted_sample("small disk", "ellipse", {"center_nm": [0, 0], "radii_nm": [40, 40]}, n,
                         snapshot_every_ps=1.0)


@pytest.fixture
def window(open_main_window):
    return open_main_window(small_disk(), size=(1100, 750), timeout_ms=TIMEOUT_MS)


def settle(qtbot, w, ms: int = 150):
    _settle(qtbot, w, ms, TIMEOUT_MS)


def run_steps(qtbot, w, steps: int):
    start = w.latest_frame.steps if w.latest_frame is not None else 0
    w.run()
    qtbot.waitUntil(lambda: w.latest_frame is not None and w.latest_frame.steps >= start + steps,
                    timeout=TIMEOUT_MS)
    w.pause()
    settle(qtbot, w)


def type_into(qtbot, edit, text: str):
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key_Return)


# --------------------------------------------------------------------------- 1. saved projects
def test_saved_project_has_one_table_every_energy_and_the_right_problem(qtbot, window, tmp_path):
    w = window
    w.new_project()
    qtbot.waitUntil(lambda: w.drawn_frame is not None and w.problem.title == "untitled", timeout=TIMEOUT_MS)
    # draw, preset, field: three edits before Run, each of which restarted the simulation
    w.editor.set_tool("rectangle")
    w.editor.fill_layer()
    mats = w.panels["materials"]
    mats.preset_combo.setCurrentIndex(mats.preset_combo.findData("CoFeB"))
    type_into(qtbot, w.panels["field"].field_widget("B_mT[2]"), "50")
    qtbot.waitUntil(lambda: w.problem.field.B_mT[2] == 50.0 and w.latest_frame is not None
                    and w.latest_frame.generation == w.sim_thread.generation, timeout=TIMEOUT_MS)
    settle(qtbot, w)
    run_steps(qtbot, w, 10)
    path = tmp_path / "cofeb.h5"
    w.session.project_path = path                      # File > Save (Ctrl+S) saves there, no dialog
    w.act_save.trigger()
    qtbot.waitUntil(lambda: path.exists() and not w.dirty, timeout=TIMEOUT_MS)
    with h5py.File(path, "r") as f:
        problem = json.loads(f.attrs["problem_json"])
        cols = [c.decode() if isinstance(c, bytes) else c for c in f["table"].attrs["columns"]]
        table = f["table"][()]
        snap_t = f["snapshots/t"][()]
    t = table[:, cols.index("t")]
    assert np.count_nonzero(t == 0.0) == 1 and np.all(np.diff(t) > 0)    # no leftover rows
    assert np.count_nonzero(snap_t == 0.0) == 1 and np.all(np.diff(snap_t) > 0)
    for term in ("exchange", "demag", "zeeman", "anisotropy", "dmi"):
        assert f"E_{term}" in cols, cols
    parts = sum(table[:, cols.index(f"E_{k}")] for k in ("exchange", "demag", "zeeman", "anisotropy", "dmi"))
    assert np.allclose(table[:, cols.index("E_total")], parts, rtol=1e-6)
    assert problem["materials"][0]["name"] == "CoFeB" and problem["materials"][0]["Ms"] == 1.1e6
    assert problem["field"]["B_mT"][2] == 50.0
    # reopened, the plots start at the first saved row, not at (0, 0)
    w.new_project()
    assert w.open_project(path)
    qtbot.waitUntil(lambda: len(w.plots.m_series) == len(t), timeout=TIMEOUT_MS)
    w.plots.refresh()
    assert np.allclose(w.plots.m_series.y["mx"], table[:, cols.index("mx")])
    assert abs(w.plots.m_series.y["mz"][0]) > 0 or abs(w.plots.m_series.y["mx"][0]) > 0


# --------------------------------------------------------------------------- 2. grid change
def test_grid_change_keeps_the_size_clears_plots_and_drops_the_old_grid(qtbot, window):
    w = window
    run_steps(qtbot, w, 6)
    cells_before = int((np.linalg.norm(w.latest_frame.m, axis=0) > 0).sum())
    assert len(w.table_rows) > 2 and len(w.plots.m_series) > 2
    w.surrogate_dock.panel.rel.append(0.5)                    # as if a probe had been seen
    type_into(qtbot, w.editor.mesh_panel.field_widget("nx"), "64")
    qtbot.waitUntil(lambda: w.drawn_frame is not None and w.drawn_frame.m.shape[3] == 64, timeout=TIMEOUT_MS)
    settle(qtbot, w)
    cells_after = int((np.linalg.norm(w.latest_frame.m, axis=0) > 0).sum())
    assert cells_after == cells_before                        # was 2x: stretched over 64 cells
    assert w.view.scene.shape[:3] == (1, 32, 64)
    assert all(r["t"] >= 0 for r in w.table_rows) and len(w.table_rows) <= 2   # the table started again
    assert len(w.plots.m_series) <= 2
    assert w.surrogate_dock.panel.rel == []                  # the old probe belonged to the old grid


# --------------------------------------------------------------------------- 3. invalid fields
@pytest.mark.parametrize("key,text", [("Ms", "-5"), ("A", "abc")])
def test_invalid_field_blocks_run_with_a_message(qtbot, window, key, text):
    w = window
    edit = w.panels["materials"].field_widget(key)
    type_into(qtbot, edit, text)
    steps = w.latest_frame.steps
    w.session.last_error = None
    w.toggle_run()                                            # Space / the Run button
    qtbot.wait(300)
    assert w.run_state == IDLE and w.latest_frame.steps == steps
    assert w.last_error is not None and "Not run" in w.last_error and key in w.last_error
    assert not w.banner.isHidden()


# --------------------------------------------------------------------------- 4. examples menu
def test_examples_menu_asks_before_discarding_unsaved_work(qtbot, window):
    w = window
    run_steps(qtbot, w, 3)
    assert w.dirty
    asked = []
    w.confirm_discard = lambda: asked.append(1) or False      # the user says Cancel
    entry = load_catalog()[0]
    [a for a in w.examples_menu.actions() if a.text() == entry.title][0].trigger()
    assert asked and w.problem.title == "small disk" and w.dirty
    w.confirm_discard = lambda: True


# --------------------------------------------------------------------------- 5. layout
def _clipped_labels(widget) -> list[str]:
    """Visible labels narrower than their text needs (squashed to 'Colour in', 'Arr')."""
    out = []
    for lbl in widget.findChildren(QLabel):
        if lbl.isVisible() and lbl.text() and not lbl.wordWrap() and "<" not in lbl.text():
            if lbl.width() + 1 < lbl.fontMetrics().horizontalAdvance(lbl.text()):
                out.append(lbl.text())
    return out


@pytest.mark.parametrize("size", [(1024, 700), (2560, 1440)])
def test_layout_is_usable_from_1024x700_to_2560x1440(qtbot, window, size):
    w = window
    w.resize(*size)
    qtbot.wait(400)
    # the view's controls keep their labels whole (they wrap to a second row instead)
    assert _clipped_labels(w.view.controls) == []
    for cb in (w.view.color_combo, w.view.overlay_combo):
        assert cb.width() >= cb.minimumSizeHint().width()
    # every settings tab scrolls: the grid boxes and Bz can be reached
    for i in range(w.tabs.count()):
        assert isinstance(w.tabs.widget(i), QScrollArea), w.tabs.tabText(i)
    w.tabs.setCurrentIndex([w.tabs.tabText(i) for i in range(w.tabs.count())].index("Field"))
    bz = w.panels["field"].field_widget("B_mT[2]")
    scroll = w.tabs.currentWidget()
    scroll.ensureWidgetVisible(bz)
    qtbot.wait(100)
    top_left = bz.mapTo(scroll.viewport(), bz.rect().topLeft())
    assert 0 <= top_left.y() <= scroll.viewport().height() - bz.height()
    # the right docks' tabs show their whole titles
    bars = [b for b in w.findChildren(QTabBar) if b.parent() is w and b.isVisible()]
    assert bars
    for bar in bars:
        assert bar.elideMode() == Qt.ElideNone
        assert bar.sizeHint().width() <= bar.width() + 2, [bar.tabText(i) for i in range(bar.count())]
    assert w.surrogate_dock.width() >= 250 and w.left_dock.width() >= 260
    # the geometry editor's tools wrap: Subtract is a visible button, not in an overflow menu
    w.tabs.setCurrentIndex(0)
    qtbot.wait(200)
    sub = [b for b in w.editor.tool_buttons.findChildren(QToolButton)
           if b.defaultAction() is w.editor._mode_actions["subtract"]][0]
    viewport = w.tabs.currentWidget().viewport()
    right = sub.mapTo(viewport, sub.rect().topRight()).x()
    assert sub.isVisible() and right <= viewport.width()
    assert w.bottom_dock.height() >= (180 if size[1] < 800 else 400)    # not 100 px of plots
    assert w.width() <= size[0] + 1 and w.height() <= size[1] + 1
    _assert_settings_fit_the_dock(qtbot, w)
    _assert_plots_fit_their_widgets(qtbot, w)


def test_five_right_dock_tabs_fit_at_1024_once_the_loop_dock_shows(qtbot, window):
    """With the Loop dock (a loop example) the right docks have five tabs: 'Loop' was
    scrolled out of the 310 px tab bar at 1024 px."""
    w = window
    w.resize(1024, 700)
    qtbot.wait(300)
    entry = [e for e in load_catalog() if e.path.stem == "hysteresis_square"][0]
    w.examples.load_example(entry.load(), entry)
    qtbot.waitUntil(lambda: w.examples.loop_dock.isVisible(), timeout=TIMEOUT_MS)
    qtbot.wait(300)
    bars = [b for b in w.findChildren(QTabBar) if b.parent() is w and b.isVisible() and b.count() == 5]
    assert bars
    for bar in bars:
        assert bar.sizeHint().width() <= bar.width() + 2, [bar.tabText(i) for i in range(bar.count())]
    w.new_project()                                   # the Loop dock goes: four tabs, 310 px again
    qtbot.waitUntil(lambda: not w.examples.loop_dock.isVisible(), timeout=TIMEOUT_MS)
    qtbot.wait(300)
    assert w.surrogate_dock.width() <= 320


def _assert_settings_fit_the_dock(qtbot, w):
    """Every settings tab fits the dock's width (no sideways scrolling) and every number box
    shows its whole value: at 1024 px the Solver fields looked empty (their right-aligned
    text was past the dock's edge) and Ms read '14000'."""
    from PySide6.QtWidgets import QLineEdit
    for i in range(w.tabs.count()):
        w.tabs.setCurrentIndex(i)
        qtbot.wait(150)
        scroll = w.tabs.currentWidget()
        viewport = scroll.viewport()
        panel = scroll.widget()
        name = w.tabs.tabText(i)
        assert not scroll.horizontalScrollBar().isVisible(), name
        assert panel.width() <= viewport.width(), name
        for e in panel.findChildren(QLineEdit):
            if not e.isVisible() or not e.text():
                continue
            right = e.mapTo(viewport, e.rect().topRight()).x()
            assert right <= viewport.width(), (name, e.objectName())
            room = e.width() - 8                                     # frame and text margins
            assert e.fontMetrics().horizontalAdvance(e.text()) <= room, (name, e.objectName(), e.text())
    w.tabs.setCurrentIndex(0)


def _assert_plots_fit_their_widgets(qtbot, w):
    """The live plots stay inside their widgets with every legend entry shown: the energy
    legend, drawn as the plot's title, made that plot 331 px wide in a 347 px widget whose
    drawing area was 288, so the curves and 'total' ran off the right edge."""
    plots = w.plots
    plots.clear()
    terms = ("exchange", "demag", "zeeman", "anisotropy", "dmi", "total")
    for k in range(20):
        plots.append(k * 1e-12, [1.0, 0.0, 0.0], {t: (j + 1) * 1e-18 * (1 + 0.01 * k) for j, t in enumerate(terms)})
    plots.refresh()
    qtbot.wait(300)
    for legend, plot in ((plots.m_legend, plots.m_plot), (plots.e_legend, plots.e_plot)):
        item = plot.getPlotItem()
        assert item.width() <= plot.viewport().width() + 1
        assert item.vb.mapRectToView(item.vb.boundingRect()).right() >= plots._t_range[1] - 1e-9
        assert legend.width() <= plot.width() + 1
        assert legend.heightForWidth(legend.width()) <= legend.height()      # no line cut off
    text = plots.e_legend.text()
    assert all(t in text for t in terms)
    # the two plots get the same width, whatever their legends hold
    assert abs(plots.m_plot.width() - plots.e_plot.width()) <= 2


# --------------------------------------------------------------------------- 6. twin run
def test_twin_run_does_not_grow_the_window(qtbot, window, monkeypatch):
    import engine.neural.twin as probe_mod

    def fake_twin_run(problem, duration_s, every_s, m0=None, callback=None, t0=0.0):
        out = {"t": [], "mean_neural": [], "mean_fft": [], "max_dm": []}
        for k in range(4):
            out["t"].append(k * every_s)
            out["mean_neural"].append(np.array([1.0, 0.0, 0.0]))
            out["mean_fft"].append(np.array([1.0, 0.01 * k, 0.0]))
            out["max_dm"].append(0.02 * k)
            if callback(out):
                break
        return {k: np.asarray(v) for k, v in out.items()}

    monkeypatch.setattr(probe_mod, "twin_run", fake_twin_run)
    w = window
    w.resize(1600, 1000)
    qtbot.wait(300)
    before = w.size()
    w.act_twin.trigger()
    qtbot.waitUntil(lambda: not w.twin_dock.running, timeout=10000)
    qtbot.wait(300)
    assert w.size() == before                                  # was 1600 -> 1702 px
    d = w.twin_dock.panel.mean_difference()
    assert len(d) == 4 and d[0] == 0 and np.all(np.diff(d) > 0)


# --------------------------------------------------------------------------- 7. small things
def test_one_pause_button_and_paused_status(qtbot, window):
    w = window
    tb = w.findChild(type(w.addToolBar("probe")), "simulation_toolbar")
    texts = [a.text() for a in tb.actions() if a.isVisible() and not a.isSeparator()]
    w.run()
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=TIMEOUT_MS)
    texts = [a.text() for a in tb.actions() if a.isVisible() and not a.isSeparator()]
    assert texts.count("Pause") == 1                          # Run relabels itself; no second one
    w.pause()
    settle(qtbot, w)
    assert w.lbl_state.text() == "paused"                     # was "idle"
    w.reset()
    settle(qtbot, w)
    assert w.lbl_state.text() == "idle"


def test_hover_text_has_its_own_place_in_the_status_bar(qtbot, window):
    w = window
    w.view.hovered.emit("cell x=3, y=4\nm = (+1.000, +0.000, +0.000)")
    assert "cell x=3" in w.lbl_hover.text() and w.lbl_state.isVisible()
    assert w.lbl_hover.geometry().right() <= w.lbl_state.geometry().left()


def test_vortex_gyration_is_visible_on_the_mean_m_axis(qtbot, window):
    w = window
    plots = w.plots
    plots.clear()
    t = np.linspace(0, 1e-9, 50)
    for ti in t:
        plots.append(ti, [0.08 * np.sin(2e10 * ti), 0.08 * np.cos(2e10 * ti), 0.01], {})
    plots.refresh()
    qtbot.wait(200)
    lo, hi = plots.m_plot.getViewBox().viewRange()[1]
    assert hi - lo < 0.5                                      # was fixed at -1.15 .. 1.6
    assert plots.m_plot.plotItem.legend is None               # no legend box over the curves


def test_field_sweep_fills_the_time_plots_and_counts_steps(qtbot, window):
    w = window
    entry = [e for e in load_catalog() if e.path.stem == "hysteresis_square"][0]
    w.examples.load_example(entry.load(), entry)
    qtbot.waitUntil(lambda: w.problem.title == entry.load().title and w.drawn_frame is not None,
                    timeout=TIMEOUT_MS)
    rates = []
    w.session.frameArrived.connect(lambda f: rates.append(f.steps_per_s))
    w.run_stages()
    qtbot.waitUntil(lambda: len(w.table_rows) >= 6, timeout=60000)
    w.pause()
    settle(qtbot, w)
    w.plots.refresh()
    assert len(w.plots.m_series) >= 5                          # was empty: t stands still in a sweep
    assert max(rates) > 0                                      # was 0.0 steps/s


def test_run_pressed_as_an_example_loads_starts_the_run(qtbot, window, monkeypatch):
    from engine.simulation import Simulation
    w = window
    entry = [e for e in load_catalog() if e.path.stem == "vortex_disk"][0]
    real_init = Simulation.__init__

    def slow_init(self, *args, **kwargs):        # building a simulation takes a while (kernels)
        time.sleep(0.5)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Simulation, "__init__", slow_init)
    w.reset()                                    # the worker is busy building ...
    w.examples.load_example(entry.load(), entry)  # ... when the example's pause and reset queue up
    w.run()                                      # Run pressed before the worker built the example
    qtbot.waitUntil(lambda: w.latest_frame is not None and w.latest_frame.steps >= 3, timeout=TIMEOUT_MS)
    w.pause()
    settle(qtbot, w)


def test_new_clears_the_example_text(qtbot, window):
    w = window
    entry = load_catalog()[0]
    w.examples.load_example(entry.load(), entry)
    assert entry.title in w.examples.info_panel.text()
    w.new_project()
    assert entry.title not in w.examples.info_panel.text()
    # nor its suggested view: a reviewer's fresh project still showed the error overlay's note
    w.view.set_overlay_kind("error")
    w.view.set_color_by("mz")
    w.new_project()
    assert w.view.scene.overlay_kind == "none" and w.view.scene.color_by == "angle"


def test_the_surrogate_dock_forgets_the_probes_of_another_method(qtbot, window):
    from types import SimpleNamespace
    w = window
    panel = w.surrogate_dock.panel
    p = w.session.problem.copy()
    p.solver.demag = "neural+probe"
    w.surrogate_dock.check_card(p)
    m = np.ones((3, 1, 4, 4), np.float32)
    assert panel.add_frame(SimpleNamespace(t=1e-12, m=m, error_map=np.full((1, 4, 4), 1e-3), error_rel_l2=0.004))
    assert panel.rel
    w.surrogate_dock.check_card(p)                 # an edit with the same method keeps them
    assert panel.rel
    p.solver.demag = "fft"
    w.surrogate_dock.check_card(p)
    assert not panel.rel and panel.last_error_map is None


def test_exported_csv_is_readable_by_others_and_has_every_column(qtbot, window, tmp_path):
    w = window
    run_steps(qtbot, w, 3)
    path = w.exports.export_csv_to(tmp_path / "t.csv")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_umask()          # 0644, was 0600
    header = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")][0]
    assert "E_total" in header and "E_demag" in header


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


def test_idle_window_uses_little_cpu(qtbot, window):
    w = window
    settle(qtbot, w, 500)
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    qtbot.wait(2000)
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
    share = cpu / (time.perf_counter() - wall)
    # a guard: the issue saw 9 %; on this machine the old window measured 0.01-0.02 % as well
    assert share < 0.05, f"idle window used {100 * share:.1f} % of a core"


def test_overlay_scale_bar_title_clears_the_bar_and_the_probe_note_is_whole(qtbot, window):
    w = window
    w.view.set_overlay_kind("energy_density")
    qtbot.waitUntil(lambda: w.view.overlay_visible, timeout=TIMEOUT_MS)
    w.view.plotter.render()
    boxes = w.view.scene.overlay_bar_boxes()
    assert boxes["title"][1] >= boxes["bar"][3] - 1            # the title sits above the bar
    w.view.set_overlay_kind("error")
    note = w.view.scene.overlay_note()
    assert note and all(len(line) <= 200 for line in note.splitlines())


# --------------------------------------------------------------------------- issue 9, GUI side
def test_divergence_pauses_the_run_says_why_and_keeps_the_last_good_frame(qtbot, window, monkeypatch):
    from engine.simulation import Simulation
    w = window
    run_steps(qtbot, w, 3)
    good = w.latest_frame
    real_step = Simulation.step

    def diverging_step(self):
        if self.steps >= good.steps + 4:
            try:
                raise SimulationDiverged("non-finite m", self.t, self.steps, "a smaller time step")
            except TypeError:                   # an engine without the typed fields
                raise SimulationDiverged("non-finite m") from None
        return real_step(self)

    monkeypatch.setattr(Simulation, "step", diverging_step)
    w.session.last_error = None
    w.run()
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=TIMEOUT_MS)
    settle(qtbot, w)
    assert w.run_state == IDLE and w.lbl_state.text() == "paused"
    assert "non-finite m" in w.last_error and not w.banner.isHidden()
    assert any("non-finite m" in m for m in w.messages)
    assert w.bottom_tabs.currentWidget() is w.message_list
    assert w.drawn_frame.steps == good.steps + 4 and np.isfinite(w.drawn_frame.m).all()


def test_refused_edit_leaves_engine_and_window_as_they_were(qtbot, window, monkeypatch):
    from engine.simulation import Simulation
    w = window
    run_steps(qtbot, w, 3)

    def refuse(self, problem):
        raise RuntimeError("device 'cuda' is not available on this machine")

    monkeypatch.setattr(Simulation, "update_problem", refuse)
    before = w.problem.field.B_mT
    type_into(qtbot, w.panels["field"].field_widget("B_mT[0]"), "25")
    qtbot.waitUntil(lambda: w.last_error is not None and "Not applied" in w.last_error, timeout=TIMEOUT_MS)
    assert w.problem.field.B_mT == before                      # the window went back ...
    assert w.panels["field"].field_widget("B_mT[0]").text() in ("0", "0.0")   # ... and shows it
    monkeypatch.undo()
    type_into(qtbot, w.panels["field"].field_widget("B_mT[0]"), "30")      # later edits still work
    qtbot.waitUntil(lambda: w.problem.field.B_mT[0] == 30.0, timeout=TIMEOUT_MS)
    settle(qtbot, w)
    run_steps(qtbot, w, 2)
    assert np.isfinite(w.latest_frame.m).all()


def test_choosing_cuda_on_a_cpu_machine_mid_run_changes_nothing(qtbot, window):
    """Issue 9: the device box said cuda, sim.problem went to cuda, the state stayed on the CPU
    and every later edit failed. Now the choice is refused, the box shows the CPU again, and
    the run and later edits go on."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    w = window
    w.run()
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=TIMEOUT_MS)
    combo = w.panels["solver"].device_combo
    w.session.last_error = None
    combo.setCurrentIndex(combo.findData("cuda"))
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=TIMEOUT_MS)
    assert "cuda" in w.last_error.lower()
    qtbot.waitUntil(lambda: combo.currentData() == "cpu", timeout=TIMEOUT_MS)    # shown as it runs
    assert w.problem.solver.device == "cpu"
    w.pause()
    settle(qtbot, w)
    type_into(qtbot, w.panels["field"].field_widget("B_mT[1]"), "12")
    qtbot.waitUntil(lambda: w.problem.field.B_mT[1] == 12.0, timeout=TIMEOUT_MS)
    run_steps(qtbot, w, 2)
    assert np.isfinite(w.latest_frame.m).all()


def test_the_surrogate_dock_promises_no_probe_outside_the_model_card(qtbot, window):
    w = window
    p = w.session.problem.copy()
    p.solver.demag = "neural+probe"
    p.mesh.cell_nm = (p.mesh.cell_nm[0], p.mesh.cell_nm[1], 8 * p.mesh.cell_nm[0])   # dz/dx = 8
    w.surrogate_dock.check_card(p)
    text = w.surrogate_dock.panel.status.text()
    assert "No probes" in text and "press Run" not in text
    p.mesh.cell_nm = (p.mesh.cell_nm[0], p.mesh.cell_nm[1], p.mesh.cell_nm[0])          # inside again
    w.surrogate_dock.check_card(p)
    assert "press Run or Step" in w.surrogate_dock.panel.status.text()
