"""The "Surrogate error" dock: the error probe's plots and the model card's warnings, fed by
the Session (frames, problem changes); it polls nothing."""
from __future__ import annotations

import traceback

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QDockWidget

from .error_view import SurrogateErrorPanel
from .model_card import expected_error_text, load_model_card, outside_model_card


class SurrogateDock(QDockWidget):
    """SurrogateErrorPanel in a dock, subscribed to a Session."""

    def __init__(self, session, parent=None, card=None):
        super().__init__("Surrogate", parent)
        self.setToolTip("Surrogate error: the neural demag field against the exact FFT field")
        self.setObjectName("surrogate_error_dock")
        self.session = session
        self.card = card if card is not None else load_model_card()
        self.panel = SurrogateErrorPanel(card=self.card)
        self.setWidget(self.panel)
        self._frame_hook = None           # e.g. the movie recorder: called with each frame
        session.frameArrived.connect(self.on_frame)
        session.problemChanged.connect(self.on_problem)
        session.gridChanged.connect(self.on_grid)
        self.check_card(session.problem)

    @Slot(object)
    def on_frame(self, frame) -> None:
        try:
            self.panel.add_frame(frame)
        except Exception as exc:  # noqa: BLE001 - a slot must not raise into Qt
            traceback.print_exc()
            self.session.message.emit(f"Surrogate error panel: {exc}", True)

    @Slot(object)
    def on_problem(self, problem) -> None:
        self.check_card(problem)

    @Slot(object)
    def on_grid(self, _problem) -> None:
        self.panel.reset()               # the old probe belongs to the old grid

    def check_card(self, problem) -> list[str]:
        """The model card's warnings for `problem` (only with a neural demag method)."""
        warnings, expected = [], ""
        if problem is not None and str(problem.solver.demag).startswith("neural"):
            warnings = outside_model_card(problem, self.card)
            expected = "" if warnings else expected_error_text(problem, self.card)
        self.panel.set_warnings(warnings)
        self.panel.set_expected(expected)
        if problem is not None:
            if getattr(self, "_method", None) not in (None, problem.solver.demag):
                self.panel.reset()       # the probes shown belong to the method before
            self._method = problem.solver.demag
            self.panel.set_method(problem.solver.demag, problem.solver.probe_every)
        return warnings
