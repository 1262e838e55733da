"""Frames from the simulation worker carry only what the views asked for, as float32, and the
GUI gets the newest one: frames it had no time to take are dropped (latest wins) without
losing the table rows they carried."""
import dataclasses
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from engine import InitialState, Material, Mesh, Problem, ShapeOp
from nmag_gui.worker import FrameMailbox, SimulationWorker, frame_nbytes

pytestmark = pytest.mark.gui


def small_film(n=16, table_every_ps=0.05):
    p = Problem(title="frames")
    p.mesh = Mesh((n, n, 1), (3.0, 3.0, 3.0))
    p.materials = [Material(name="permalloy")]
    p.geometry = [ShapeOp("rectangle", "add", "permalloy", {"center_nm": [0, 0], "size_nm": [1e6, 1e6]})]
    p.initial = InitialState("vortex", {})
    p.output.table_every_ps = table_every_ps
    return p.validate()


def fake_probe(shape, seed):
    """What the engine's probe leaves in demag.last_probe (float64 arrays, as numpy gives)."""
    rng = np.random.default_rng(seed)
    return SimpleNamespace(H_net=rng.normal(size=(3,) + shape), H_fft=rng.normal(size=(3,) + shape),
                           error_map=rng.random(shape), rel_l2=0.01 * seed, t=0.0)


def test_a_frame_carries_only_the_requested_arrays_as_float32(qtbot):
    w = SimulationWorker()
    w.reset(small_film(), 1)                       # a slot, called here: builds and posts a frame
    first = w.mailbox.take()
    assert first is not None and first.m.dtype == np.float32 and first.generation == 1
    shape = tuple(first.m.shape[1:])
    w.sim.demag.last_probe = fake_probe(shape, 1)

    w.needs = frozenset()                          # the plain film view: m only
    w.emit_frame()
    f = w.mailbox.take()
    assert f.m.dtype == np.float32 and f.m.shape == (3,) + shape
    assert f.error_map is None and f.probe is None and f.energy_density is None
    assert f.error_rel_l2 == pytest.approx(0.01)   # the scalar is always there
    assert w.last_frame_bytes == f.m.nbytes        # what crossing the thread copied

    w.needs = frozenset({"error_map"})             # the error overlay / the surrogate dock
    w.emit_frame()
    f1 = w.mailbox.take()
    w.emit_frame()
    f2 = w.mailbox.take()
    assert f1.error_map.dtype == np.float32 and f1.probe is None and f1.energy_density is None
    np.testing.assert_allclose(f1.error_map, w.sim.demag.last_probe.error_map, rtol=1e-6)
    assert f2.error_map is f1.error_map            # one copy per probe, shared by its frames
    assert frame_nbytes(f2, f1) == f2.m.nbytes
    w.sim.demag.last_probe = fake_probe(shape, 2)  # a new probe: a new copy
    w.emit_frame()
    assert w.mailbox.take().error_map is not f1.error_map

    w.needs = frozenset({"probe_fields", "energy_density"})    # H overlay + energy density
    w.emit_frame()
    f = w.mailbox.take()
    assert f.error_map is None
    assert f.probe.H_net.dtype == np.float32 and f.probe.H_fft.dtype == np.float32
    assert f.probe.H_net.shape == (3,) + shape
    assert set(f.energy_density) >= {"total", "exchange"}
    assert all(v.dtype == np.float32 and v.shape == shape for v in f.energy_density.values())


def test_the_session_asks_for_what_the_overlay_draws(qtbot):
    from nmag_gui.session import Session
    s = Session(small_film())
    try:
        assert s.frame_needs == {"error_map"}                   # the surrogate dock's histogram
        s.want_overlay("H_net")
        assert s.frame_needs == {"error_map", "probe_fields"}
        s.want_overlay("energy_density:exchange")
        assert s.frame_needs == {"error_map", "energy_density"}
        s.want_overlay("none")
        assert s.frame_needs == {"error_map"}
        with pytest.raises(ValueError, match="frame fields"):
            s.want("view", {"velocity"})
    finally:
        s.shutdown()


def test_mailbox_keeps_the_newest_frame_and_the_rows_of_those_it_drops():
    box = FrameMailbox()
    F = dataclasses.make_dataclass("F", ["t", "generation", "rows", "snapshots", ("energies", dict, dataclasses.field(default_factory=dict))])
    assert box.put(F(1, 1, ({"t": 1},), ())) is True         # empty: tell the GUI
    assert box.put(F(2, 1, ({"t": 2},), ())) is False        # still waiting: replaced, no signal
    got = box.take()
    assert got.t == 2 and got.rows == ({"t": 1}, {"t": 2})   # the dropped frame's rows ride on
    box.put(F(3, 1, ({"t": 3},), ()))
    assert box.put(F(4, 2, ({"t": 4},), ())) is False        # another run: its rows not merged
    got = box.take()
    assert got.t == 4 and got.rows == ({"t": 4},) and box.dropped == 2
    assert box.take() is None


def test_frames_are_dropped_when_the_gui_is_slow_and_no_row_is_lost(qtbot):
    from nmag_gui.session import Session
    s = Session(small_film(table_every_ps=0.001))      # shorter than a step: a row every step
    try:
        s.start()
        qtbot.waitUntil(lambda: s.latest_frame is not None, timeout=15000)
        s.run()
        qtbot.waitUntil(lambda: s.frames_received >= 3, timeout=15000)
        box = s.sim_thread.worker.mailbox
        received, dropped, put = s.frames_received, box.dropped, box.put_count
        time.sleep(0.6)                                      # the GUI thread is busy: no events
        made = box.put_count - put
        assert made >= 4                                     # the worker kept making frames
        rows_before = len(s.table_rows)
        QApplication.processEvents()                         # one pass of the event loop
        # what waited was one notification and one frame, not a queue of them; that frame
        # brought the table rows of every frame dropped meanwhile (a row per step here)
        assert s.frames_received - received <= 3
        assert box.dropped - dropped >= made - 3
        assert len(s.table_rows) - rows_before >= made
        s.pause()
        qtbot.waitUntil(lambda: s.run_state == "idle", timeout=15000)
        qtbot.wait(100)
        # every table row the worker recorded arrived, in order: one at t = 0 and one per step
        t = np.array([r["t"] for r in s.table_rows])
        assert len(t) > 20 and np.all(np.diff(t) > 0)
        assert len(t) == s.latest_frame.steps + 1
    finally:
        s.shutdown()


def test_energies_dropped_with_a_frame_are_measured_again_soon(qtbot):
    from nmag_gui.worker import ENERGY_SECONDS
    w = SimulationWorker()
    w.reset(small_film(), 1)
    w.mailbox.take()
    w.emit_frame()                                   # with energies, the GUI has not taken it
    assert w.mailbox.put_count == 2 and time.perf_counter() - w._energies_at < 0.5 * ENERGY_SECONDS
    w._emit_frame(with_energies=False)               # replaces it: the energies went with it
    assert w.mailbox.dropped_energies
    assert time.perf_counter() - w._energies_at >= 0.75 * ENERGY_SECONDS   # due in 0.05 s
    w.emit_frame()                                   # the second try, also not taken in time
    w._emit_frame(with_energies=False)
    assert w.mailbox.dropped_energies
    assert time.perf_counter() - w._energies_at < 0.5 * ENERGY_SECONDS    # no third try
    assert not w.mailbox.take().energies


def test_the_engine_thread_takes_one_thread_for_a_small_grid(qtbot):
    # with passive OpenMP waits a second thread makes a small grid slower (engine.threads)
    import torch
    before = torch.get_num_threads()
    try:
        w = SimulationWorker()
        w.max_threads = 2
        w.reset(small_film(16), 1)                  # the slot, called here: this is its thread
        assert w.threads == 1 and torch.get_num_threads() == 1
        w.reset(small_film(256), 2)
        assert w.threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_neural_problem_outside_the_card_says_so_in_messages_and_frames(qtbot):
    # a new user saw "demag: neural" while the exact FFT ran, and nothing in the Messages tab
    import warnings
    p = small_film(16)
    p.mesh = Mesh((16, 16, 5), (3.0, 3.0, 3.0))    # five layers: outside the model card
    p.solver.demag = "neural"
    p = p.validate()
    w = SimulationWorker()
    said = []
    w.message.connect(said.append)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w.reset(p, 1)
    assert [s for s in said if "outside the model card" in s and "exact FFT" in s]
    assert w.mailbox.take().demag_method == "fft"
    n = len(said)
    w.apply_problem(p.copy(), 2)
    assert len(said) == n                           # the same demag: said once


def test_a_first_build_of_the_compiled_network_is_said_in_the_messages(qtbot, empty_kernel_cache):
    # the build takes 2-9 s on first use: the Messages tab says what the wait is
    p = small_film(32)
    p.solver.demag = "neural"
    w = SimulationWorker()
    said = []
    w.message.connect(said.append)
    w.reset(p, 1)
    assert w.sim.demag.learned_part == "compiled"
    assert any(s.startswith("Building the network's learned part") for s in said), said
