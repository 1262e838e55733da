"""The engine's notes to the person waiting: its INFO log lines, handed to a callback for a while.

Why: a few steps take seconds without being errors (the first build of the network's compiled
learned part for this CPU: 2-9 s). The engine says so on the standard `logging` loggers under
"engine" (silent unless someone listens, as a library should be); `nmag run` prints them as
"nmag: note:" lines and the desktop app shows them in its Messages tab, each with this.

A block hears only what its own thread logs (the app builds simulations on more than one thread:
the engine's and a twin run's), and while any block is open the engine's notes stop at its
handlers instead of also reaching the root logger's (a script's logging.basicConfig would print
each twice). Blocks on several threads may open and close in any order.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

_LOGGER = "engine"
_lock = threading.Lock()
_open = 0                 # blocks open now, on any thread
_saved = None             # the logger's (level, propagate) before the first of them


class _ToCallback(logging.Handler):
    def __init__(self, callback):
        super().__init__(logging.INFO)
        self.callback = callback
        self.thread = threading.get_ident()

    def emit(self, record) -> None:
        if record.thread != self.thread:
            return
        try:
            self.callback(record.getMessage())
        except Exception:   # noqa: BLE001 - a note must never break the work it describes
            self.handleError(record)


def as_sentence(text: str) -> str:
    """A note (a log line, which starts in lower case) as the app shows it: a capital first letter."""
    return text[:1].upper() + text[1:]


@contextmanager
def notes_to(callback, shown: bool = True):
    """Within the block, every INFO (and louder) message that this thread logs on the engine's
    loggers goes to callback(text); with shown=False nothing is routed."""
    global _open, _saved
    if not shown:
        yield
        return
    logger = logging.getLogger(_LOGGER)
    handler = _ToCallback(callback)
    with _lock:
        if _open == 0:
            _saved = (logger.level, logger.propagate)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.propagate = False
        _open += 1
        logger.addHandler(handler)
    try:
        yield
    finally:
        with _lock:
            logger.removeHandler(handler)
            _open -= 1
            if _open == 0:
                logger.setLevel(_saved[0])
                logger.propagate = _saved[1]
