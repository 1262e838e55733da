"""NeuralMAG Studio's desktop app (PySide6 + pyvistaqt), a thin layer on `engine`.

Widgets edit the problem description (`geometry_editor`, `panels`); `worker` owns the engine on
its own thread and emits frames; `spin_view` and `plots` turn frames into pictures;
`main_window` ties them together and `app.main` starts it.
"""
import sys as _sys


def _pin_singletons() -> None:
    """Work around a reference-count bug of shiboken6 6.12.0 on Python < 3.12.

    There, every PySide6 call that returns None (setText, update, processEvents, qWait, ...)
    or a bool (Signal.emit) drops one reference to None / True / False that it never took.
    A running window makes thousands of such calls a second, and within seconds CPython aborts
    with "Fatal Python error: none_dealloc: deallocating None". Python 3.12 made these objects
    immortal; here we give them a reference count so large (2**40) that the leak cannot reach
    zero in any session. Remove this when the installed PySide6 is fixed.
    """
    if _sys.version_info >= (3, 12) or getattr(_sys, "_nmag_singletons_pinned", False):
        return
    try:
        from importlib.metadata import version
        if not version("shiboken6").startswith("6.12."):
            return
    except Exception:  # noqa: BLE001 - not installed the usual way: pin anyway, it is harmless
        pass
    import ctypes
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    _sys._nmag_singletons_pinned = True


_pin_singletons()
