"""The exact demag's spectrum multiply for one-layer films as one compiled C pass (kernels/spectrum.c).

Why: FFTDemag._multiply is six elementwise torch passes over the spectrum, with the real kernel
stored twice over so that torch.view_as_real can multiply it. Measured here (one thread,
float32), that was 494 us of a 2.06 ms evaluation at 256^2 and 12.0 of 72 ms at 1024^2; one pass
over the spectrum and the real kernels took 184 us and 3.9 ms. The neural demag's exact near
field (engine.neural.near_fft) is an FFTDemag too and gets the same pass.

Used where the spectrum is a contiguous CPU tensor (3, ...) of complex64/complex128 whose
planes match the kernels' (a one-layer film, not a batch), else the torch passes run (the same
formulas; results agree to rounding). Build and cache: engine.native (the user's private cache
folder); no compiler or a failed build: the torch passes, silently. NMAG_SPECTRUM_KERNEL=0
turns it off. Runs on the calling thread, releasing the GIL.
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
_FUNCTIONS = {torch.complex64: "nm_film_multiply_f32", torch.complex128: "nm_film_multiply_f64"}

_log = logging.getLogger(__name__)


def _declare(lib) -> None:
    for name in _FUNCTIONS.values():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_ssize_t]
        fn.restype = None


_LIBRARY = native.NativeLibrary(SOURCE, "spectrum", FLAGS, declare=_declare, env_switch=ENV,
                                what="the spectrum multiply", logger=_log)


def why_not() -> str | None:
    """Why the compiled multiply is not in use (None where it is, or before the first try)."""
    return _LIBRARY.why_not()


def forget() -> None:
    """Build or load the library again on next use (tests)."""
    _LIBRARY.forget()


def film_multiply(X: torch.Tensor, k: dict) -> bool:
    """H^ = -N^ M^ in place on a film's spectrum X (3, ...) with the real kernels k ("xx", "xy",
    "yy", "zz", each shaped like one of X's components) by spectrum.c; False (X untouched) where
    it cannot: another dtype or device, a batch, non-contiguous tensors, no library."""
    fn_name = _FUNCTIONS.get(X.dtype)
    if fn_name is None or X.device.type != "cpu" or not X.is_contiguous() or X.shape[0] != 3:
        return False
    kx = (k["xx"], k["xy"], k["yy"], k["zz"])
    n = X[0].numel()
    real = torch.float32 if X.dtype == torch.complex64 else torch.float64
    if any(t.numel() != n or t.dtype != real or not t.is_contiguous() or t.device.type != "cpu" for t in kx):
        return False
    lib = _LIBRARY.library()
    if lib is None:
        return False
    getattr(lib, fn_name)(X.data_ptr(), *(t.data_ptr() for t in kx), n)
    return True
