"""The one exception the engine raises for bad user input.

It names the key, the value and what is allowed, so the CLI and the GUI can show it verbatim.
"""


class ProblemError(ValueError):
    """A problem description (TOML key, GUI field or API argument) holds a value that is not allowed."""

    def __init__(self, key: str, value, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 200:   # a crafted 15 MB title must not come back as 15 MB of message
            shown = shown[:160] + f"... ({len(shown):,} characters)"
        super().__init__(f"{key} = {shown} is not allowed: expected {allowed}")


class SimulationDiverged(RuntimeError):
    """The integration (or the relaxation) became unphysical and was stopped.

    what: what went wrong ("non-finite m", "non-finite error estimate", "step size stuck at its
    floor", "energy rose in a damped run", ...); t: simulated time of the last good state (s);
    step: the step count of the last good state; hint: what to try. The simulation that raised
    it still holds that last good state."""

    def __init__(self, what: str, t: float = 0.0, step: int = 0, hint: str = ""):
        self.what = what
        self.t = float(t)
        self.step = int(step)
        self.hint = hint
        super().__init__(what)

    def __str__(self) -> str:
        text = f"simulation diverged at t = {self.t * 1e9:.6g} ns, step {self.step}: {self.what}"
        return text + (f"; try {self.hint}" if self.hint else "")


class OutputError(OSError):
    """A result could not be written (disk full, no permission, ...); the earlier file is intact."""


def warn_at_caller(message: str, category=UserWarning) -> None:
    """warnings.warn, attributed to the first frame outside the engine package: the user's line
    that built the Simulation, not the engine's internals (Python 3.11 has no
    skip_file_prefixes)."""
    import os
    import sys
    import warnings
    root = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(root):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
