"""Shared helpers for tests that drive the real main window."""
from contextlib import contextmanager

import pytest


@pytest.fixture
def open_main_window(qtbot):
    """open_main_window(problem, size, timeout_ms) -> a shown MainWindow with its first frame
    drawn; closed cleanly (worker stopped, thread joined, VTK closed) after the test."""
    from nmag_gui.main_window import MainWindow
    opened = []

    def open_(problem=None, size=(1100, 750), timeout_ms=15000):
        w = MainWindow(problem=problem)
        opened.append(w)
        w.confirm_discard = lambda: True
        w.resize(*size)
        w.show()
        qtbot.waitExposed(w)
        qtbot.waitUntil(lambda: w.drawn_frame is not None, timeout=timeout_ms)
        return w

    yield open_
    for w in opened:
        w.shutdown()
        w.close()
        assert not w.sim_thread.thread.isRunning()


@pytest.fixture
def empty_kernel_cache(monkeypatch, tmp_path):
    """A cache folder with no compiled learned part in it, so the next neural demag builds one
    (and says so); skipped where no library can be built here."""
    from engine.neural import compiled
    if compiled.library() is None:
        pytest.skip(f"no compiled kernel: {compiled.why_not()}")
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    compiled.forget()
    yield
    compiled.forget()
