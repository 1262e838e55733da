"""The app's pieces on their own: examples, the surrogate's error, overlays, export, the model
card, and the spin scene off-screen.

Runs in a real X display (Xvfb via pytest-xvfb):
    python -m pytest tests/gui/test_app_pieces.py -q
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
import nmag_gui  # noqa: F401,E402
import pyvista as pv  # noqa: E402
from PySide6.QtWidgets import QMainWindow  # noqa: E402
import dataclasses  # noqa: E402

from engine import Problem, Simulation  # noqa: E402
from engine.frame import Frame  # noqa: E402
from engine.ovf import read_ovf  # noqa: E402
from nmag_gui.error_view import SurrogateErrorPanel, TwinRunPanel, log_histogram  # noqa: E402
from nmag_gui.model_card import load_model_card, outside_model_card  # noqa: E402
from nmag_gui.examples_menu import ExampleInfoPanel, load_catalog  # noqa: E402
from nmag_gui.export import MovieRecorder, export_ovf, export_table_csv, save_screenshot  # noqa: E402
from nmag_gui.overlay import overlay_scalars, overlay_title  # noqa: E402

pytestmark = pytest.mark.gui

def _neural_loads() -> bool:
    """A shipped network serves a 3 nm cubic film with the current code (else its tests skip,
    and a neural example steps with the FFT demag; the network's own tests report why)."""
    try:
        import warnings
        from engine.neural.demag import NeuralDemag
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = NeuralDemag((16, 16, 1), (3e-9, 3e-9, 3e-9))
        return getattr(d, "fallback", None) is None
    except Exception:
        return False


_NEURAL = _neural_loads()


def neural_available() -> bool:
    return _NEURAL


def small_problem(demag="fft", n=24, cell=(4.0, 4.0, 4.0)) -> Problem:
    p = Problem.from_toml(load_catalog()[0].path)       # sp4, made small
    p.mesh.n = (n, n, 1)
    p.mesh.cell_nm = cell
    p.geometry[0].params["size_nm"] = [n * cell[0] * 0.75, n * cell[1] * 0.75]
    p.solver.demag = demag
    p.solver.precision = "float32"
    p.solver.probe_every = 2
    return p.validate()


def fake_frame(m, error_map=None, rel=None, t=1e-10) -> Frame:
    return Frame(t=t, steps=1, dt=1e-13, m=m, mean_m=np.zeros(3), energies={}, max_torque=0.0,
                 demag_method="neural+probe", error_map=error_map, error_rel_l2=rel)


def film_m(nz=1, ny=8, nx=10):
    m = np.zeros((3, nz, ny, nx), np.float32)
    m[0, :, 1:-1, 2:-2] = 1.0                 # magnet in the middle, vacuum around
    return m


# --------------------------------------------------------------------------- examples
@pytest.mark.parametrize("entry", load_catalog(), ids=lambda e: e.path.stem)
def test_every_catalog_example_loads_and_steps(entry):
    problem = entry.load()
    assert entry.title and len(entry.explanation.split(".")) >= 3
    if problem.solver.demag.startswith("neural") and not neural_available():
        problem.solver.demag = "fft"          # the network is not shipped in this checkout
    sim = Simulation(problem)
    m0 = sim.m.clone()
    for _ in range(3):
        assert sim.step() > 0
    m = sim.m.cpu().numpy()
    assert np.isfinite(m).all()
    assert np.allclose(np.linalg.norm(m, axis=0)[sim.mask], 1.0, atol=1e-5)
    assert sim.steps == 3 and sim.t > 0
    assert m0.shape == sim.m.shape


def test_example_info_panel_shows_title_and_explanation(qtbot):
    panel = ExampleInfoPanel()
    qtbot.addWidget(panel)
    entry = [e for e in load_catalog() if e.path.stem == "domain_wall_strip"][0]
    panel.show_entry(entry)
    assert entry.title in panel.text() and "90 m/s" in panel.text()


def test_hysteresis_example_is_plotted_as_a_loop():
    entry = [e for e in load_catalog() if e.path.stem == "hysteresis_square"][0]
    assert (entry.plot, entry.plot_x, entry.plot_y) == ("loop", "Bx_mT", "mx")


def test_loop_plot_names_its_y_axis_and_reads_plain_numbers(qtbot):
    """The Loop dock's y axis had no name ('<mx>' was taken for an HTML tag) and read
    900 .. -300 (x0.001)."""
    from nmag_gui.examples_menu import HysteresisLoopPanel
    panel = HysteresisLoopPanel("Bx_mT", "mx")
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.show()
    qtbot.waitExposed(panel)
    b = np.linspace(100, -100, 21)
    panel.set_rows([{"Bx_mT": x, "mx": y} for x, y in zip(b, np.linspace(0.95, -0.3, 21))])
    panel.plot.getPlotItem().vb.autoRange()
    qtbot.wait(50)
    left, bottom = panel.plot.getAxis("left"), panel.plot.getAxis("bottom")
    assert left.label.toPlainText().strip() == "⟨mx⟩"
    assert bottom.label.toPlainText().strip() == "Bx (mT)"
    for axis in (left, bottom):
        assert not axis.autoSIPrefix and axis.autoSIPrefixScale == 1.0
    lo, hi = panel.plot.getPlotItem().vb.viewRange()[1]
    assert lo < -0.25 and 0.9 < hi < 1.1


def test_loop_plot_draws_a_frame_of_rows_once_and_a_long_run_as_a_line(qtbot):
    """A plain run of the hysteresis example sent a table row every few steps, and the loop
    panel redrew the whole curve for every row: O(n^2) on the GUI thread, the window (and a GUI
    test) stuck in pyqtgraph's scatter update. Rows now go in per frame and are drawn at most
    every LOOP_REDRAW_MS; past LOOP_SYMBOLS_UP_TO points the curve is a line without dots."""
    from nmag_gui.examples_menu import LOOP_SYMBOLS_UP_TO, HysteresisLoopPanel
    panel = HysteresisLoopPanel("Bx_mT", "mx")
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    draws = []
    real = panel.curve.setData
    panel.curve.setData = lambda *a, **k: (draws.append(len(a[0])), real(*a, **k))
    for frame in range(20):                       # 20 frames of 10 rows each, as fast as they come
        panel.add_rows([{"Bx_mT": 20.0, "mx": 0.01 * (10 * frame + i), "t": 0.0} for i in range(10)])
    qtbot.waitUntil(lambda: bool(draws) and draws[-1] == 200, timeout=2000)
    assert len(draws) <= 3, draws                 # one redraw for all of them, not 200
    assert panel.curve.opts["symbol"] == "o"
    panel.add_rows([{"Bx_mT": 20.0, "mx": 0.0}] * LOOP_SYMBOLS_UP_TO + [{"t": 1.0}])   # no mx: not a point
    qtbot.waitUntil(lambda: draws[-1] == 200 + LOOP_SYMBOLS_UP_TO, timeout=2000)
    assert panel.curve.opts["symbol"] is None and len(panel.xs) == 200 + LOOP_SYMBOLS_UP_TO
    panel.set_rows([{"Bx_mT": 1.0, "mx": 1.0}])  # a new run: redrawn at once, dots again
    assert draws[-1] == 1 and panel.curve.opts["symbol"] == "o"


def test_live_plots_time_axis_of_a_single_point_reads_in_picoseconds(qtbot):
    """A fresh window (one point at t = 0) showed a time axis '5e-07 ... 1.5e-06' ns."""
    from nmag_gui.plots import LivePlots
    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.append(0.0, [1.0, 0.0, 0.0], {"exchange": 1e-18, "total": 1e-18})
    plots.refresh()
    t0, t1 = plots._t_range
    assert t0 == 0.0 and 0.01 <= t1 <= 0.1
    plots.set_x_axis("row")                   # a field sweep: table rows, at least one row wide
    plots.append_row({"t": 0.0, "mx": 1.0, "my": 0.0, "mz": 0.0})
    plots.refresh()
    assert plots._t_range[1] >= 1.0


# --------------------------------------------------------------------------- overlays
def test_error_overlay_is_finite_nonnegative_and_equals_the_map_inside_the_magnet():
    m = film_m()
    rng = np.random.default_rng(1)
    emap = rng.random((1, 8, 10)) * 1e-2
    values, (lo, hi) = overlay_scalars(fake_frame(m, emap, 0.01), "error", log=False)
    inside = np.linalg.norm(m, axis=0) > 0
    assert np.array_equal(values[inside], emap[inside])
    assert np.isnan(values[~inside]).all()
    assert (values[inside] >= 0).all() and np.isfinite(values[inside]).all()
    assert 0 <= lo < hi
    _, (llo, lhi) = overlay_scalars(fake_frame(m, emap, 0.01), "error", log=True)
    assert 0 < llo < lhi


def test_overlay_without_probe_says_what_is_missing():
    with pytest.raises(ValueError, match="error probe"):
        overlay_scalars(fake_frame(film_m()), "error", log=False)


@pytest.mark.skipif(not neural_available(), reason="the shipped network is missing or does not load")
def test_error_overlay_equals_the_engines_probe_for_the_same_state():
    sim = Simulation(small_problem("neural+probe"))
    for _ in range(2):
        sim.step()
    frame = sim.frame()
    probe = sim.demag.last_probe
    values, _ = overlay_scalars(frame, "error", log=True)
    assert np.array_equal(values[sim.mask], probe.error_map[sim.mask].astype(np.float64))
    assert np.isfinite(values[sim.mask]).all() and (values[sim.mask] >= 0).all()


def test_energy_density_overlay_draws_the_engines_densities():
    p = small_problem()
    sim = Simulation(p)
    frame = dataclasses.replace(sim.frame(), energy_density=sim.energy_density())
    mask = sim.mask
    total, (lo, hi) = overlay_scalars(frame, "energy_density", log=False)
    assert np.allclose(total[mask], sim.energy_density()["total"][mask])     # signed, as the engine's
    assert np.isnan(total[~mask]).all() and lo < hi
    exch, _ = overlay_scalars(frame, "energy_density:exchange", log=True)
    assert np.allclose(exch[mask], np.abs(sim.energy_density()["exchange"][mask]))
    assert overlay_title("energy_density:exchange", True) == "|energy density| exchange [J/m³] (log)"
    with pytest.raises(ValueError, match="no dmi term"):
        overlay_scalars(frame, "energy_density:dmi")
    with pytest.raises(ValueError, match="no energy density"):
        overlay_scalars(sim.frame(), "energy_density")


# --------------------------------------------------------------------------- the model card
def test_outside_model_card_warns_for_a_bad_aspect_and_layers():
    """The GUI asks the engine's model card (engine.neural.card) through nmag_gui/model_card.py."""
    card = load_model_card()
    thick = Problem.from_toml([e for e in load_catalog() if e.path.stem == "network_fails"][0].path)
    text = " ".join(outside_model_card(thick, card))
    assert "dz/dx = 8" in text
    assert outside_model_card(small_problem(), card) == []
    assert len(outside_model_card(small_problem(), {})) == 1          # no card: one warning
    layered = small_problem()
    layered.mesh.n = (24, 24, 5)   # five layers: outside the card (it has members for nz = 1 to 4)
    assert any("layers" in w for w in outside_model_card(layered, card))


def test_model_card_dialog_lists_which_films_get_the_network(qtbot):
    from nmag_gui.error_view import ModelCardDialog
    card = {"members": [{"file": "a.pt", "nz": 1, "dz_dx": 1.0, "dz_dx_range": [0.25, 1.4],
                         "held_out": {"all": {"median": 0.0096, "p90": 0.0188}, "large": {"median": 0.0131, "p90": 0.0199}}},
                        {"file": "b.pt", "nz": 2, "dz_dx": 1.0, "held_out": {"all": {"median": 0.02, "p90": 0.03}}}],
            "validation": {"targets_met": {"nz=1 dz/dx=1": "met", "nz=2 dz/dx=1": "missed: median 2.00% > 1% (2.0x)"},
                           "targets_met_large_grids": {"nz=1 dz/dx=1": "missed: median 1.31% > 1% (1.31x)"}}}
    dlg = ModelCardDialog(None, card)
    qtbot.addWidget(dlg)
    text = dlg.browser.toPlainText()
    assert "0.25 to 1.4" in text and "0.96 %" in text and "1.88 %" in text and "met" in text
    assert "missed: median 2.00%" in text
    # the large grids apart: their own numbers and verdict, or 'not measured'
    assert "256² and up" in text and "1.31 %" in text and "1.99 %" in text and "missed: median 1.31%" in text
    assert "not measured" in text
    assert "As served" not in text          # a card without the as-served block shows none


def test_model_card_dialog_opens_wide_enough_for_its_table(qtbot):
    """At 560 x 480 the shipped card's table scrolled sideways and 'trained at' broke as
    'traine d at'."""
    from nmag_gui.error_view import ModelCardDialog
    dlg = ModelCardDialog(None, load_model_card())
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    qtbot.wait(100)
    assert dlg.width() > 560
    avail = dlg.screen().availableGeometry().width()      # pytest-xvfb's screen is 800 px wide
    assert dlg.browser.horizontalScrollBar().maximum() == 0 or dlg.width() >= int(0.95 * avail)


def test_surrogate_panel_says_what_error_the_card_expects_for_this_film(qtbot):
    from nmag_gui.model_card import expected_error_text
    card = load_model_card()
    inside = small_problem("neural", n=300, cell=(3.0, 3.0, 3.0))     # one layer of cubes, a large grid
    text = expected_error_text(inside, card)
    m = next(m for m in card["members"] if m.get("default"))      # the one-layer member of cubic cells
    s = m["held_out"]["by_dz_dx_large"]["1"]
    assert f"median {100 * s['median']:.2f} %" in text and "256² cells and up" in text and m["file"] in text
    assert "256²" not in expected_error_text(small_problem("neural", cell=(3.0, 3.0, 3.0)), card)
    outside = small_problem("neural", cell=(3.0, 3.0, 30.0))
    assert expected_error_text(outside, card) == ""
    panel = SurrogateErrorPanel(card=card)
    qtbot.addWidget(panel)
    panel.show()
    panel.set_expected(text)
    assert panel.expected_label.isVisible() and "Expected error" in panel.expected_label.text()
    panel.set_expected("")
    assert not panel.expected_label.isVisible()
    assert "Choose the demag method" in panel.status.text()
    panel.set_method("neural+probe", 7)                    # already chosen: say when the first probe comes
    assert "Every 7 steps" in panel.status.text() and "Choose" not in panel.status.text()


def test_model_card_dialog_shows_what_each_film_gets_as_served(qtbot):
    from nmag_gui.error_view import ModelCardDialog
    card = load_model_card()
    dlg = ModelCardDialog(None, card)
    qtbot.addWidget(dlg)
    text = dlg.browser.toPlainText()
    served = card["validation"]["as_served_large_grids"]
    assert "As served, on 256² and up" in text and set(served) == {"nz=1", "nz=2", "nz=3", "nz=4"}
    for nz, verdict in card["validation"]["targets_met_as_served_large_grids"].items():
        assert verdict in text
        a, r = next(iter(served[nz].items()))
        assert f"{a}: {100 * r['median']:.2f} / {100 * r['p90']:.2f} %" in text


def test_error_panel_counts_each_probe_once_and_histograms_cells(qtbot):
    panel = SurrogateErrorPanel(card={})
    qtbot.addWidget(panel)
    m = film_m()
    emap = np.full((1, 8, 10), 1e-3)
    assert panel.add_frame(fake_frame(m, emap, 0.02, t=1e-10))
    assert not panel.add_frame(fake_frame(m, emap, 0.02, t=2e-10))      # the same probe again
    assert panel.add_frame(fake_frame(m, emap * 2, 0.03, t=3e-10))
    assert panel.rel == [0.02, 0.03]
    assert not panel.add_frame(fake_frame(m))                          # no probe
    edges, counts, zeros = log_histogram(np.r_[np.logspace(-5, -1, 50), 0.0])
    assert counts.sum() == 50 and zeros == 1 and np.all(np.diff(np.log(edges)) > 0)


def test_twin_panel_difference_starts_at_zero_and_grows(qtbot):
    panel = TwinRunPanel()
    qtbot.addWidget(panel)
    for k in range(5):
        a = np.array([1.0, 0.0, 0.0])
        panel.add_twin(k * 1e-11, a, a + [0, 0.01 * k, 0], 0.02 * k)
    d = panel.mean_difference()
    assert d[0] == 0 and np.all(np.diff(d) > 0)


@pytest.mark.skipif(not neural_available(), reason="the shipped network is missing or does not load")
def test_twin_run_difference_starts_at_zero_and_grows():
    from engine.neural.twin import twin_run
    res = twin_run(small_problem("neural", n=16), 20e-12, 5e-12)
    assert res["max_dm"][0] == 0 and res["max_dm"][-1] > res["max_dm"][0]


@pytest.mark.skipif(not neural_available(), reason="the shipped network is missing or does not load")
def test_the_twin_runs_first_build_of_the_compiled_network_is_said(qtbot, empty_kernel_cache):
    # the twin run builds its own neural demag on its thread: a first build (2-9 s) says so
    from nmag_gui.twin_run import TwinWorker
    w = TwinWorker(small_problem("neural", n=32), None, 5e-12, 5e-12)
    said, done = [], []
    w.note.connect(said.append)
    w.finished.connect(done.append)
    w.run()        # on this thread: what the dock's QThread runs
    assert done == [""]
    assert any(s.startswith("Building the network's learned part") for s in said), said


# --------------------------------------------------------------------------- export
def test_exported_ovf_rereads_to_the_same_state(tmp_path):
    p = small_problem()
    sim = Simulation(p)
    sim.step()
    frame = sim.frame()
    path = export_ovf(tmp_path / "m.ovf", frame, p.mesh.cell_m)
    m, meta = read_ovf(path)
    assert np.array_equal(m, frame.m) and meta["t"] == frame.t
    assert np.allclose(meta["cell_m"], p.mesh.cell_m)


def test_exported_csv_has_every_row(tmp_path):
    rows = [{"t": 1e-12 * i, "mx": 0.1 * i, "E_total": -1e-18} for i in range(4)]
    path = export_table_csv(tmp_path / "t.csv", None, rows)
    data = np.genfromtxt(path, delimiter=",", names=True, skip_header=1)
    assert data.shape == (4,) and np.allclose(data["mx"], [0, 0.1, 0.2, 0.3])


def _scene():
    pl = pv.Plotter(off_screen=True, window_size=(200, 160))
    pl.add_mesh(pv.Cube(), scalars=np.arange(6), show_scalar_bar=False)
    pl.show(auto_close=False)
    return pl


def test_short_gif_has_the_expected_frame_count(tmp_path):
    import imageio.v3 as iio
    pl = _scene()
    try:
        rec = MovieRecorder(pl, tmp_path / "run.gif", fps=10)
        for _ in range(6):
            pl.camera.azimuth += 25            # distinct frames (Pillow merges identical ones)
            pl.render()
            assert rec.add_frame()
        rec.close()
    finally:
        pl.close()
    frames = iio.imread(tmp_path / "run.gif", index=None)
    assert frames.shape[0] == 6 and rec.frames_dropped == 0


def test_screenshot_of_the_3d_view_is_not_blank(qtbot, tmp_path):
    from pyvistaqt import QtInteractor
    w = QMainWindow()
    qtbot.addWidget(w)
    plotter = QtInteractor(w)
    w.setCentralWidget(plotter.interactor)
    w.resize(320, 240)
    w.show()
    try:
        plotter.add_mesh(pv.Sphere(), color="orange")
        plotter.render()
        img = save_screenshot(plotter, tmp_path / "view.png")
    finally:
        plotter.close()
    assert img.var() > 0 and (tmp_path / "view.png").stat().st_size > 0


# --------------------------------------------------------------------------- the scene off-screen
def test_spin_scene_draws_a_frame_off_screen_with_overlay_and_an_extra_layer(qapp):
    from nmag_gui.spin_scene import SpinScene
    p = small_problem()
    sim = Simulation(p)
    frame = dataclasses.replace(sim.frame(), energy_density=sim.energy_density())
    pl = pv.Plotter(off_screen=True, window_size=(320, 240))
    calls = []

    class Layer:
        def build(self, scene, shape, cell, origin):
            calls.append(("build", shape))

        def update(self, f):
            calls.append(("update", f.t))

        def set_visible(self, on):
            pass

        def remove(self, scene):
            calls.append(("remove",))

    try:
        scene = SpinScene(pl)
        layer = Layer()
        scene.add_layer(layer)
        scene.show_frame(frame, p.mesh.cell_nm)
        assert calls[:2] == [("build", p.mesh.shape_zyx), ("update", frame.t)]
        colors = scene.color_array().reshape(p.mesh.shape_zyx)
        m = frame.m
        expect = np.degrees(np.arctan2(m[1], m[0])) % 360.0
        assert np.allclose(colors[sim.mask], expect[sim.mask])
        scene.set_overlay_kind("energy_density")
        assert scene.overlay_visible
        assert np.allclose(scene.overlay_values()[sim.mask], np.abs(frame.energy_density["total"][sim.mask]))
        scene.set_overlay_kind("error")                 # no probe: a note, no overlay
        assert not scene.overlay_visible and "probe" in scene.overlay_note()
        pl.render()
        img = pl.screenshot(None, return_img=True)
        assert img.var() > 0
        scene.remove_layer(layer)
        assert calls[-1] == ("remove",)
    finally:
        pl.close()


def test_probe_note_does_not_ask_for_the_method_already_chosen(qapp):
    from nmag_gui.spin_scene import SpinScene
    p = small_problem()
    sim = Simulation(p)
    pl = pv.Plotter(off_screen=True, window_size=(320, 240))
    try:
        scene = SpinScene(pl)
        scene.set_overlay_kind("error")
        scene.show_frame(dataclasses.replace(sim.frame(), demag_method="neural+probe"), p.mesh.cell_nm)
        note = scene.overlay_note().replace("\n", " ")
        assert "waiting for the first error probe" in note and "choose" not in note
        scene.show_frame(sim.frame(), p.mesh.cell_nm)                       # fft: say what to choose
        assert "neural + error" in scene.overlay_note().replace("\n", " ")
        # the note is wrapped to the view's width (it was cut off at the right)
        assert max(len(line) for line in scene.overlay_note().splitlines()) <= 34   # 320 px wide
    finally:
        pl.close()


# --------------------------------------------------------------------------- the theme
def test_theme_switches_the_palette_and_a_repeat_leaves_it_alone(qtbot):
    """Dark and light reach the application's palette; applying the theme already in place
    changes nothing (it would re-polish every widget, closed windows' too)."""
    from PySide6.QtWidgets import QApplication
    from nmag_gui import theme
    app = QApplication.instance()
    try:
        theme.apply_theme(app, "dark")
        assert app.palette() == theme.palette("dark")
        assert app.style().objectName().lower() == "fusion"
        seen = []

        class Probe(QMainWindow):
            def changeEvent(self, e):          # style and palette changes arrive here
                seen.append(e.type())
                super().changeEvent(e)

        probe = Probe()
        qtbot.addWidget(probe)
        qtbot.wait(20)
        seen.clear()
        theme.apply_theme(app, "dark")                  # already in place: no palette change sent
        qtbot.wait(20)
        assert not seen
        theme.apply_theme(app, "light")
        assert app.palette() == theme.palette("light")
    finally:
        theme.apply_theme(app, "light")


def test_the_error_overlay_of_an_fft_frame_says_no_network_runs():
    from types import SimpleNamespace
    from nmag_gui.overlay import overlay_scalars
    m = np.zeros((3, 1, 4, 4), np.float32)
    m[0] = 1.0
    frame = SimpleNamespace(m=m, error_map=None, demag_method="fft", probe=None, energy_density=None)
    with pytest.raises(ValueError, match="exact FFT runs"):
        overlay_scalars(frame, "error")


def test_the_app_runs_the_eager_kernels_unless_told_otherwise(monkeypatch):
    # torch.compile's background compile held the GIL for up to a second: the window froze
    from engine import fused
    from nmag_gui.app import app_environment
    monkeypatch.delenv("NMAG_COMPILE", raising=False)
    app_environment()
    assert fused.mode() == "off"
    monkeypatch.setenv("NMAG_COMPILE", "auto")
    app_environment()
    assert fused.mode() == "auto"
