"""The exact demag's spectrum multiply as one compiled C pass (kernels/spectrum.c), films and layers.

Why: FFTDemag._multiply is six elementwise torch passes over the spectrum, with the real kernel
stored twice over so that torch.view_as_real can multiply it. Measured here (one thread,
float32), that was 494 us of a 2.06 ms evaluation at 256^2 and 12.0 of 72 ms at 1024^2; one pass
over the spectrum and the real kernels took 184 us and 3.9 ms. A layered grid's multiply (six
kernels, the full symmetric tensor) was eleven passes and two copies. The neural demag's exact
near field (engine.neural.near_fft) is an FFTDemag too and gets the same pass.

Used where the spectrum is a contiguous CPU tensor (3, ...) of complex64/complex128 with as many
numbers per component as the kernels (not a batch of films), else the torch passes run (the
same formulas; results agree to rounding). Build and cache: engine.native (the user's private cache
folder); no compiler or a failed build: the torch passes, silently. NMAG_SPECTRUM_KERNEL=0
turns it off for demags built after it is set. Runs on the calling thread, releasing the GIL.
"""
from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import torch

from . import native

SOURCE = Path(__file__).with_name("kernels") / "spectrum.c"
FLAGS = ("-O3", "-std=c99", "-ffp-contract=off", "-fPIC", "-shared")
ENV = "NMAG_SPECTRUM_KERNEL"
# the kernels each pass reads, in its argument order, and its C function by spectrum dtype
FILM, LAYERED = ("xx", "xy", "yy", "zz"), ("xx", "xy", "xz", "yy", "yz", "zz")
_FUNCTIONS = {FILM: {torch.complex64: "nm_film_multiply_f32", torch.complex128: "nm_film_multiply_f64"},
              LAYERED: {torch.complex64: "nm_layered_multiply_f32", torch.complex128: "nm_layered_multiply_f64"}}

_log = logging.getLogger(__name__)


def _declare(lib) -> None:
    for components, names in _FUNCTIONS.items():
        for name in names.values():
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_void_p] * (1 + len(components)) + [ctypes.c_ssize_t]
            fn.restype = None


_LIBRARY = native.NativeLibrary(SOURCE, "spectrum", FLAGS, declare=_declare, env_switch=ENV,
                                what="the spectrum multiply", logger=_log)


def library():
    """The compiled spectrum.c (a ctypes library), built on first use; None where it cannot be."""
    return _LIBRARY.library()


def why_not() -> str | None:
    """Why the compiled multiply is not in use (None where it is, or before the first try)."""
    return _LIBRARY.why_not()


def forget() -> None:
    """Build or load the library again on next use (tests)."""
    _LIBRARY.forget()


class SpectrumMultiply:
    """spectrum.c's pass bound to one set of real kernels (checked once here: each call is on the
    hot path, standard problem 4 makes thousands a second, and checking the kernels and finding
    the library each time took about 6 of 12 us there). Calling it on a spectrum X does
    H^ = -N^ M^ in place and says True, or leaves X untouched and says False where it cannot:
    another dtype or device, a batch (more numbers than the kernels), a non-contiguous X."""

    def __init__(self, fn, k: dict, components: tuple, dtype):
        self._kernels = tuple(k[c] for c in components)   # kept: their addresses are passed
        self._ptrs = tuple(t.data_ptr() for t in self._kernels)
        self._fn, self._dtype, self._n = fn, dtype, self._kernels[0].numel()

    def __call__(self, X: torch.Tensor) -> bool:
        if X.dtype != self._dtype or X.numel() != 3 * self._n or X.device.type != "cpu" or not X.is_contiguous():
            return False
        self._fn(X.data_ptr(), *self._ptrs, self._n)
        return True


def spectrum_multiplier(k: dict) -> SpectrumMultiply | None:
    """The compiled multiply for the real kernels k (-N^: "xx", "xy", "yy", "zz" for a film, and
    "xz", "yz" too for layers; each shaped like one component of its spectrum, float32 or
    float64), or None where it cannot run: kernels it has no loop for (another dtype or device,
    non-contiguous, unequal sizes), no library, NMAG_SPECTRUM_KERNEL=0."""
    components = LAYERED if "xz" in k else FILM
    kx = [k[c] for c in components]
    dtype = {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(kx[0].dtype)
    if dtype is None or any(t.dtype != kx[0].dtype or t.numel() != kx[0].numel() or not t.is_contiguous()
                            or t.device.type != "cpu" for t in kx):
        return None
    lib = library()
    return None if lib is None else SpectrumMultiply(getattr(lib, _FUNCTIONS[components][dtype]), k, components, dtype)
