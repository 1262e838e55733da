"""The engine's notes to the person waiting: its INFO log lines, handed to a callback for a while.

Why: a few steps take seconds without being errors (the first build of the network's compiled
learned part for this CPU: 2-9 s). The engine says so on the standard `logging` loggers under
"engine" (silent unless someone listens, as a library should be); `nmag run` prints them as
"nmag: note:" lines and the desktop app shows them in its Messages tab, each with this.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager


class _ToCallback(logging.Handler):
    def __init__(self, callback):
        super().__init__(logging.INFO)
        self.callback = callback

    def emit(self, record) -> None:
        try:
            self.callback(record.getMessage())
        except Exception:   # noqa: BLE001 - a note must never break the work it describes
            self.handleError(record)


@contextmanager
def notes_to(callback, shown: bool = True):
    """Within the block, every INFO (and louder) message of the engine's loggers goes to
    callback(text); with shown=False nothing is routed."""
    if not shown:
        yield
        return
    logger = logging.getLogger("engine")
    handler, level = _ToCallback(callback), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
