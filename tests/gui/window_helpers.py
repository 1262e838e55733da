"""Helpers for tests that drive the real main window."""


def settle(qtbot, w, ms: int = 150, timeout_ms: int = 15000):
    """Wait until the worker is idle and the frames it sent have arrived and been drawn."""
    from nmag_gui.worker import IDLE
    qtbot.waitUntil(lambda: w.run_state == IDLE, timeout=timeout_ms)
    qtbot.wait(ms)
    qtbot.waitUntil(lambda: w.drawn_frame is w.latest_frame, timeout=timeout_ms)


def tilted_sample(title: str, shape: str, params: dict, n: int = 32, snapshot_every_ps: float = 2.0):
    """An n x n x 1 permalloy sample of 3 nm cells (one `shape` of the editor with `params`),
    alpha 0.5, tilted out of plane so that m moves at once; a table row every 0.5 ps."""
    from engine import InitialState, Material, Mesh, Problem, ShapeOp
    p = Problem(title=title)
    p.mesh = Mesh((n, n, 1), (3.0, 3.0, 3.0))
    p.materials = [Material(name="permalloy", alpha=0.5)]
    p.geometry = [ShapeOp(shape, "add", "permalloy", params)]
    p.initial = InitialState("uniform", {"direction": [1.0, 0.6, 0.5]})
    p.output.table_every_ps = 0.5
    p.output.snapshot_every_ps = snapshot_every_ps
    return p.validate()


def drag(qtbot, ed, c0, c1):
    """Press on cell c0 of a GeometryEditor, move to cell c1 and release there."""
    from PySide6.QtCore import Qt
    a, b = ed.cell_to_widget(*c0), ed.cell_to_widget(*c1)
    qtbot.mousePress(ed.canvas, Qt.LeftButton, pos=a)
    qtbot.mouseMove(ed.canvas, b)
    qtbot.mouseRelease(ed.canvas, Qt.LeftButton, pos=b)
