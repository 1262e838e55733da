"""The Sweep dock standalone (pytest-qt, under Xvfb): a bad value is refused in the dock, a
sweep runs off the GUI thread and its points arrive in the plot (one parameter: a curve; two:
a coloured map), clicking a point gives that point's problem and final m."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui


@pytest.fixture
def problem(tmp_path):
    try:
        import tomllib
    except ImportError:
        import tomli as tomllib
    from engine.problem import Problem
    from test_sweep_file import FILM
    return Problem.from_dict(tomllib.loads(FILM), base_dir=tmp_path)


def _dock(qtbot, problem, tmp_path):
    from nmag_gui.sweep_dock import SweepDock
    dock = SweepDock(problem=problem)
    qtbot.addWidget(dock)
    dock.resize(360, 640)
    dock.show()
    dock.target.setCurrentText("this process")
    dock.outfile.setText(str(tmp_path / "dock.h5"))
    return dock


def test_bad_values_are_refused_in_the_dock(qtbot, problem, tmp_path):
    dock = _dock(qtbot, problem, tmp_path)
    dock.key1.setCurrentText("materials[0].alpha")
    dock.values1.setText("0.1, -1")
    assert dock.start() is False and not dock.is_running()
    assert dock.status.text().startswith("point 1 (materials[0].alpha = -1.0)")
    dock.values1.setText("0.1, x")
    assert dock.start() is False
    assert "Values" in dock.status.text()
    dock.target.setCurrentText("scheduler")
    dock.values1.setText("0.1")
    dock.scheduler.setText("tcp://192.0.2.10:8786")
    assert dock.start() is False and "--scheduler" in dock.status.text()
    assert not (tmp_path / "dock.h5").exists()


def test_a_problem_without_stages_is_refused_with_a_reason(qtbot, problem, tmp_path):
    """A sweep of a problem without [[stages]] finished at once, every point at t = 0, and
    the plot stayed empty: it is refused, as 'Run stages' refuses it."""
    problem.stages = []
    dock = _dock(qtbot, problem, tmp_path)
    dock.key1.setCurrentText("materials[0].alpha")
    dock.values1.setText("0.1, 0.2")
    assert dock.start() is False and not dock.is_running()
    assert dock.status.text().startswith("This problem has no stages")
    assert "t = 0" in dock.status.text() and dock.run_button.isEnabled()
    assert not (tmp_path / "dock.h5").exists()


def test_points_arrive_live_and_a_click_gives_the_final_state(qtbot, problem, tmp_path):
    dock = _dock(qtbot, problem, tmp_path)
    dock.key1.setCurrentText("stages[1].B_mT[0]")
    dock.values1.setText("-80:-60:2")
    dock.use2.setChecked(True)
    dock.key2.setCurrentText("materials[0].alpha")
    dock.values2.setText("0.1")
    arrived = []
    dock.scatter.sigPlotChanged.connect(lambda *_: arrived.append(len(dock.scatter.points())))
    with qtbot.waitSignal(dock.sweepFinished, timeout=120_000) as finished:
        assert dock.start() is True
        assert dock.is_running() and not dock.run_button.isEnabled()
    assert finished.args == [""]
    assert sorted(dock.results) == [0, 1]
    assert arrived and arrived[0] <= 2                      # drawn as the points came in
    assert len(dock.scatter.points()) == 2
    assert "colour" in dock.colour_note.text()                # two parameters: a coloured map
    spot = dock.scatter.points()[1]
    with qtbot.waitSignal(dock.pointSelected, timeout=10_000) as sel:
        dock._on_clicked(dock.scatter, [spot])
    i, p, m, t = sel.args
    assert t == pytest.approx(0.06e-9, rel=1e-6)         # relax, then a 0.06 ns run
    assert i == int(spot.data())
    assert p.stages[1].params["B_mT"][0] == dock.sweep.points()[i][0]
    assert m.shape == (3, 1, 16, 16) and np.isfinite(m).all()
    # another quantity recolours the map from the same results
    dock.quantity.setCurrentText("final <mx>")
    mx = sorted(r["scalars"]["final_mean_m"][0] for r in dock.results.values())
    assert f"from {mx[0]:.4g} (dark) to {mx[1]:.4g} (yellow)" in dock.colour_note.text()
    xs, ys = dock.scatter.getData()
    assert sorted(xs) == [-80.0, -60.0] and list(ys) == [0.1, 0.1]


def test_one_parameter_plots_the_value_against_it(qtbot, problem, tmp_path):
    dock = _dock(qtbot, problem, tmp_path)
    dock.key1.setCurrentText("materials[0].alpha")
    dock.values1.setText("0.05, 0.2")
    dock.quantity.setCurrentText("first <mx> = 0")
    with qtbot.waitSignal(dock.sweepFinished, timeout=120_000):
        assert dock.start()
    xs, ys = dock.scatter.getData()
    want = [dock.results[i]["scalars"]["first_zero_mx_ns"] for i in (0, 1)]
    assert list(xs) == [0.05, 0.2] and np.allclose(ys, want) and np.all(np.isfinite(ys))
    assert dock.colour_note.text() == ""


def test_the_window_has_the_dock_and_a_clicked_point_loads_its_state(qtbot, problem, tmp_path):
    from nmag_gui.main_window import MainWindow
    w = MainWindow(problem=problem)
    w.confirm_discard = lambda: True
    w.resize(1100, 750)
    w.show()
    qtbot.waitExposed(w)
    try:
        dock = w.sweep_dock
        assert dock in w.right_docks and dock.problem is w.session.problem
        dock.target.setCurrentText("this process")
        dock.outfile.setText(str(tmp_path / "win.h5"))
        dock.key1.setCurrentText("materials[0].alpha")
        dock.values1.setText("0.3")
        with qtbot.waitSignal(dock.sweepFinished, timeout=120_000):
            assert dock.start()
        from engine.sweep.results import read_point
        want = read_point(tmp_path / "win.h5", 0)["m"]
        with qtbot.waitSignal(w.session.problemChanged, timeout=10_000):
            dock.select_point(0)
        assert w.session.problem.materials[0].alpha == 0.3
        qtbot.waitUntil(lambda: w.session.latest_frame is not None
                        and np.allclose(w.session.latest_frame.m, want, atol=1e-6), timeout=20_000)
        assert w.session.latest_frame.t == pytest.approx(0.06e-9, rel=1e-6)
    finally:
        w.shutdown()
        w.close()


def test_a_workers_note_is_said_once_in_the_messages(qtbot, problem):
    # a worker's first build of the compiled network (2-9 s) comes back with its point
    from nmag_gui.session import Session
    from nmag_gui.sweep_dock import SweepDock
    session = Session(problem)
    try:
        dock = SweepDock(session=session)
        qtbot.addWidget(dock)
        said = []
        session.message.connect(lambda text, error: said.append(text))
        note = "building the network's learned part for this CPU with cc (a few seconds)"
        for i in range(2):
            dock.on_point({"index": i, "status": "done", "notes": [note], "scalars": {}, "wall_s": 0.0})
    finally:
        session.shutdown()
    assert said == ["Sweep: Building the network's learned part for this CPU with cc (a few seconds)"]
