"""Helpers for tests that drive the real main window."""


def settle(qtbot, w, ms: int = 150, timeout_ms: int = 15000):
    """Wait until the worker is idle and the frames it sent have arrived and been drawn."""
    from nmag_gui.worker import IDLE
    qtbot.waitUntil(lambda: w.run_state == IDLE, timeout=timeout_ms)
    qtbot.wait(ms)
    qtbot.waitUntil(lambda: w.drawn_frame is w.latest_frame, timeout=timeout_ms)
