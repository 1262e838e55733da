"""The main window in a real X display (Xvfb via pytest-xvfb): run, watch, pause, step, save,
reopen, close while running, and a failure inside the simulation thread.

Run: PYTHONPATH=. python -m pytest tests/gui/test_main_window.py -q
"""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
import nmag_gui  # noqa: F401,E402
from engine import Material, Problem, results  # noqa: E402
from engine.simulation import Simulation  # noqa: E402
from nmag_gui.main_window import MainWindow  # noqa: E402
from nmag_gui.worker import IDLE  # noqa: E402

from window_helpers import settle as _settle, tilted_sample  # noqa: E402

pytestmark = pytest.mark.gui

TIMEOUT_MS = 15000


def small_film(n: int = 32) -> Problem:
    """A 96 nm square permalloy film, 3 nm cells, tilted out of plane so that m moves at once."""
    return tilted_sample("test film", "rectangle", {"center_nm": [0, 0], "size_nm": [1e6, 1e6]}, n)


@pytest.fixture
def window(open_main_window):
    return open_main_window(small_film(), size=(1100, 750), timeout_ms=TIMEOUT_MS)


def settle(qtbot, w, ms: int = 150):
    _settle(qtbot, w, ms, TIMEOUT_MS)


def test_app_opens_with_view_editor_plots_and_status(window):
    w = window
    assert w.view.arrow_count > 0
    assert w.view.color_array().shape == (32 * 32,)
    tabs = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert "Geometry" in tabs
    assert w.lbl_demag.text() == "demag: fft"
    assert not w.dirty


def test_run_draws_new_arrays_and_mean_m_moves(qtbot, window):
    w = window
    first = w.drawn_frame
    colors0, arrows0 = w.view.color_array(), w.view.arrow_vectors()
    w.run()
    qtbot.waitUntil(lambda: w.drawn_frame is not None and w.drawn_frame.steps >= 15, timeout=TIMEOUT_MS)
    w.pause()
    settle(qtbot, w)
    last = w.drawn_frame
    assert last.t > first.t
    assert not np.allclose(w.view.color_array(), colors0)
    assert not np.allclose(w.view.arrow_vectors(), arrows0)
    assert np.linalg.norm(last.mean_m - first.mean_m) > 1e-3
    # what is drawn is the frame's state: the in-plane angle of every cell
    m = last.m
    angle = np.degrees(np.arctan2(m[1], m[0])).ravel() % 360.0
    assert np.allclose(w.view.color_array(), angle, atol=1e-3)
    assert len(w.plots.m_series) >= 2
    assert len(w.table_rows) >= 2
    assert "steps/s" in w.lbl_rate.text() and w.lbl_time.text().startswith("t = ")
    assert w.dirty


def test_pause_then_single_step_advances_one_step(qtbot, window):
    w = window
    w.run()
    qtbot.waitUntil(lambda: w.drawn_frame.steps >= 3, timeout=TIMEOUT_MS)
    w.pause()
    settle(qtbot, w)
    before = w.latest_frame
    qtbot.wait(200)
    assert w.latest_frame is before              # paused: nothing moves
    w.step()
    qtbot.waitUntil(lambda: w.latest_frame.steps == before.steps + 1, timeout=TIMEOUT_MS)
    after = w.latest_frame
    assert after.t - before.t == pytest.approx(after.dt, rel=1e-9)
    assert after.t > before.t


def test_reset_while_running_starts_a_clean_table(qtbot, window):
    w = window
    w.run()
    qtbot.waitUntil(lambda: w.drawn_frame.steps >= 5, timeout=TIMEOUT_MS)
    w.reset()
    qtbot.waitUntil(lambda: w.latest_frame is not None and w.latest_frame.steps == 0, timeout=TIMEOUT_MS)
    settle(qtbot, w)
    assert w.run_state == IDLE
    assert w.latest_frame.t == 0.0
    assert [r["t"] for r in w.table_rows] == [0.0]      # no rows of the old run slipped in
    assert len(w.plots.m_series) <= 1


def test_save_and_reopen_keeps_every_array(qtbot, window, tmp_path):
    w = window
    # two materials and a painted map with a vacuum hole
    p = small_film()
    p.materials.append(Material(name="cobalt", Ms=1.4e6, A=3e-11, alpha=0.5))
    regions = np.zeros(p.mesh.shape_zyx, np.int16)
    regions[:, :, 16:] = 1
    regions[:, 12:20, 12:20] = -1
    p.region_map = regions
    w.load_problem(p)
    qtbot.waitUntil(lambda: w.drawn_frame is not None, timeout=TIMEOUT_MS)
    for _ in range(4):
        n = w.latest_frame.steps
        w.step()
        qtbot.waitUntil(lambda: w.latest_frame.steps == n + 1, timeout=TIMEOUT_MS)
    settle(qtbot, w)
    assert len(w.table_rows) >= 2
    path = tmp_path / "film.h5"
    w.save_project(path)
    assert not w.dirty
    saved_m, saved_t = w.latest_frame.m.copy(), w.latest_frame.t
    saved_rows = [dict(r) for r in w.table_rows]

    proj = results.open_project(path)
    assert np.array_equal(proj.problem.region_map, regions)
    assert np.allclose(proj.m, saved_m, atol=0)
    assert proj.t == saved_t
    assert [m.name for m in proj.problem.materials] == ["permalloy", "cobalt"]
    for col in saved_rows[0]:
        assert np.allclose(proj.table[col], [r[col] for r in saved_rows], rtol=0, atol=0)
    assert len(proj.snapshots) == len(w.snapshots)
    for (ta, ma), (tb, mb) in zip(proj.snapshots, w.snapshots):
        assert ta == tb and np.array_equal(ma, mb)

    # open it again in the window: editor, state, table and plots come back
    w.new_project()
    qtbot.waitUntil(lambda: w.drawn_frame is not None and w.drawn_frame.m.shape[2] == 64, timeout=TIMEOUT_MS)
    assert w.open_project(path)
    qtbot.waitUntil(lambda: w.drawn_frame is not None and w.drawn_frame.t == saved_t, timeout=TIMEOUT_MS)
    assert np.array_equal(w.editor.region_map(), regions)
    assert np.allclose(w.latest_frame.m, saved_m, atol=1e-6)
    assert [r["t"] for r in w.table_rows] == [r["t"] for r in saved_rows]
    assert len(w.plots.m_series) == len(saved_rows)
    assert not w.dirty
    assert w.windowTitle().startswith("film.h5")


def test_keyboard_shortcuts_step_run_and_pause(qtbot, window):
    from PySide6.QtCore import Qt
    w = window
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=TIMEOUT_MS)
    w.view.setFocus()
    n = w.latest_frame.steps
    qtbot.keyClick(w.view, Qt.Key_S)
    qtbot.waitUntil(lambda: w.latest_frame.steps == n + 1, timeout=TIMEOUT_MS)
    qtbot.keyClick(w.view, Qt.Key_Space)
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=TIMEOUT_MS)
    qtbot.keyClick(w.view, Qt.Key_Space)
    qtbot.waitUntil(lambda: w.run_state == IDLE, timeout=TIMEOUT_MS)
    assert w.latest_frame.steps > n + 1 or w.latest_frame.steps == n + 1


def test_parameter_edit_during_a_run_reaches_the_engine(qtbot, window):
    w = window
    w.run()
    qtbot.waitUntil(lambda: w.drawn_frame.steps >= 2, timeout=TIMEOUT_MS)
    edit = w.panels["materials"].field_widget("Ms")
    edit.selectAll()
    qtbot.keyClicks(edit, "6e5")
    qtbot.keyClick(edit, "\r")
    qtbot.waitUntil(lambda: w.problem.materials[0].Ms == 6e5, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.sim_thread.worker.sim.problem.materials[0].Ms == 6e5, timeout=TIMEOUT_MS)
    assert w.run_state == "running"           # applied between steps, the run goes on
    w.pause()
    settle(qtbot, w)
    assert w.last_error is None


def test_opening_a_damaged_file_shows_a_message(window, tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert not window.open_project(bad)
    assert "project file" in window.last_error
    assert window.banner.isVisible()


def test_close_while_running_stops_the_thread_without_hanging(qtbot):
    w = MainWindow(problem=small_film())
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.drawn_frame is not None, timeout=TIMEOUT_MS)
    w.run()
    qtbot.waitUntil(lambda: w.drawn_frame.steps >= 3, timeout=TIMEOUT_MS)
    assert w.dirty
    asked = []
    w.confirm_discard = lambda: asked.append(1) or False    # "Cancel": the window stays
    w.close()
    assert asked and w.isVisible() and w.sim_thread.thread.isRunning()
    w.confirm_discard = lambda: asked.append(2) or True     # "Discard"
    t0 = time.perf_counter()
    w.close()
    assert time.perf_counter() - t0 < 5.0
    assert asked == [1, 2]
    assert not w.isVisible()
    assert not w.sim_thread.thread.isRunning()


def test_error_in_the_worker_is_shown_and_stops_the_run(qtbot, window, monkeypatch):
    w = window
    regions = w.editor.region_map()
    problem = w.problem.copy()

    def broken_step(self):
        raise RuntimeError("the integrator exploded")

    monkeypatch.setattr(Simulation, "step", broken_step)
    w.run()
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=TIMEOUT_MS)
    assert "the integrator exploded" in w.last_error
    qtbot.waitUntil(lambda: w.run_state == IDLE, timeout=TIMEOUT_MS)
    assert w.banner.isVisible()
    assert any("exploded" in m for m in w.messages)
    # drawing and settings are kept, and the app still works
    assert np.array_equal(w.editor.region_map(), regions)
    assert w.problem.to_dict() == problem.to_dict()
    monkeypatch.undo()
    n = w.latest_frame.steps
    w.step()
    qtbot.waitUntil(lambda: w.latest_frame.steps == n + 1, timeout=TIMEOUT_MS)


def test_pause_right_after_run_stages_is_not_lost(qtbot, window):
    """A pause sent before the worker has begun a long command must still stop it."""
    from engine.problem import Stage
    w = window
    p = w.problem.copy()
    p.stages = [Stage("run", {"duration_ns": 100.0})]   # hours of work at this speed
    w.load_problem(p)
    settle(qtbot, w)
    w.run_stages()
    w.pause()
    qtbot.waitUntil(lambda: w.run_state == IDLE and w.sim_thread.state == IDLE, timeout=TIMEOUT_MS)
    qtbot.wait(300)
    assert w.sim_thread.state == IDLE
    assert w.sim_thread.worker.sim.t < 1e-9
