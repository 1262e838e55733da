"""The cell-local part of an LLG evaluation as one compiled C pass (kernels/cells.c): small grids, and DMI.

Why: on grids below fused.MIN_CELLS (where torch.compile's fused loops do not pay), an
evaluation of the effective field and the torque outside the demag was about twenty torch calls
of a few microseconds each around a few hundred nanoseconds of arithmetic: on standard problem 4
(100 x 25 cells) about 200 of the 450 us an evaluation took, the same for the exact FFT and the
network. cells.c does the exchange stencil, the applied field, uniaxial anisotropy, the sum with
the other terms' field and the Landau-Lifshitz torque in one call.

What it takes over: the Exchange, Zeeman, UniaxialAnisotropy, CubicAnisotropy and InterfacialDMI
terms of a Simulation: every term but the demag, which (FFT or network) enters as one field, as
would any term added later that cells.c does not know. DMI problems use it on every grid size:
torch.compile does not fuse the DMI term (the skyrmion disk example scaled, a step, torch /
this kernel: 1.65-1.71 at 64^2, 1.03-1.08 at 256^2, 0.99-1.09 at 512^2 on one thread, and
1.12-2.04 from 128^2 up on two, where this pass splits its rows among the threads:
benchmarks/bench_dmi.py).

The numbers are the torch terms' formulas; cells.c is built without floating-point contraction
and sums DMI's ghost cells term by term, while torch's DMI folds them into per-cell weights and
its kernels fuse some multiply-adds (addcmul), so the two agree to rounding (about 1e-16
relative in float64), not bit for bit. Before a kernel is
used it is checked against the torch terms on a random state of the problem's own grid and
materials; a difference beyond rounding, no C compiler, a failed build, a GPU state, or a grid
of fused.MIN_CELLS cells or more without DMI keeps the torch path (`Simulation.cells_why` says
why). NMAG_CELL_KERNEL=0 turns it off, =1 uses it on every grid size.

Build and cache: engine.native (the user's cache folder, private, keyed on source, compiler,
flags and CPU). Runs on the calling thread, releasing the GIL; on grids of THREADED_CELLS cells
or more it splits the rows among as many threads as torch uses (the engine's thread policy,
engine.threads), started and joined within the call, so the result is the same bits.
"""
from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch

from . import native
from .anisotropy import CubicAnisotropy, UniaxialAnisotropy
from .dmi import InterfacialDMI
from .exchange import Exchange
from . import fused
from .fused import MIN_CELLS
from .llg import llg_prefactors, llg_rhs
from .zeeman import Zeeman

SOURCE = Path(__file__).with_name("kernels") / "cells.c"
FLAGS = ("-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-pthread")
# grids of at least this many cells share a pass among torch's threads (cells.c splits the rows).
# Below it, starting a thread costs more than half a pass saves. The pass alone, two threads
# against one: 64^2 float32 0.072 -> 0.109 ms (slower); 128^2 0.27 -> 0.21 ms; 256^2 1.2 -> 0.86 ms;
# 512^2 5.7 -> 3.0 ms.
THREADED_CELLS = 16384
ENV = "NMAG_CELL_KERNEL"
# the fields of cells.c's table (its enum R_*), in order
(R_DTYPE, R_NZ, R_NY, R_NX, R_M, R_HIN, R_HOUT, R_OUT, R_CXP, R_CXM, R_CYP, R_CYM, R_CZP, R_CZM,
 R_MASK, R_HAPP, R_HX, R_HY, R_HZ, R_KU, R_KUAXIS, R_PREF, R_PREF_ALPHA, R_PRECESSION,
 R_DMI, R_DMI_EX, R_DMI_D2A, R_DX, R_DY, R_KC, R_KC_AXIS1, R_KC_AXIS2, R_KC_AXIS3, R_THREADS,
 R_FIELDS) = range(35)
# nm_stage's table (cells.c: S_*, OP_*)
S_DTYPE, S_N, S_OP, S_OUT, S_M, S_MASK, S_COUNT, S_TERMS = range(8)
S_MAX_TERMS = 8
OP_SUM, OP_MAX_NORM, OP_NORMALIZE = 1, 2, 3
_DTYPES = {torch.float64: 0, torch.float32: 1}
# bond coefficient fields by (dim of a (3, nz, ny, nx) tensor, up or down): Exchange.axes' layout
_BOND_FIELD = {(-1, 0): R_CXP, (-1, 1): R_CXM, (-2, 0): R_CYP, (-2, 1): R_CYM, (-3, 0): R_CZP, (-3, 1): R_CZM}

_log = logging.getLogger(__name__)


def _declare(lib) -> None:
    lib.nm_cells.argtypes = [ctypes.c_void_p]
    lib.nm_cells.restype = ctypes.c_int
    lib.nm_cells_fields.argtypes = []
    lib.nm_cells_fields.restype = ctypes.c_int
    lib.nm_stage.argtypes = [ctypes.c_void_p]
    lib.nm_stage.restype = ctypes.c_int
    lib.nm_stage_fields.argtypes = []
    lib.nm_stage_fields.restype = ctypes.c_int
    if lib.nm_cells_fields() != R_FIELDS or lib.nm_stage_fields() != S_TERMS + 2 * S_MAX_TERMS:
        raise AttributeError("cells.c's tables have another layout than cell_kernel.py's")


_LIBRARY = native.NativeLibrary(SOURCE, "cells", FLAGS, declare=lambda lib: _declare(lib), env_switch=ENV,
                                what="the LLG cell kernel", logger=_log)


def library():
    """The compiled cells.c (ctypes), built on first use; None where it cannot be."""
    return _LIBRARY.library()


def library_why_not() -> str | None:
    """Why the compiled library is not in use (None where it is, or before the first try)."""
    return _LIBRARY.why_not()


def forget() -> None:
    """Build or load the library again on next use (tests)."""
    _LIBRARY.forget()


def wanted(cells: int, dmi: bool = False) -> bool:
    """Whether a grid of this many cells gets the kernel: NMAG_CELL_KERNEL=0 never, =1 always,
    else below fused.MIN_CELLS (above it torch.compile's fused loops run; at 256^2 float32 the
    two are even), or on any grid with DMI (which torch.compile does not fuse: the skyrmion disk
    at 256^2 float32 on two threads 50 -> 32 ms a step; even on one), unless NMAG_COMPILE=1 asks for
    torch.compile's loops on every grid."""
    v = _switch()
    return v != "off" and (v == "on" or (cells < MIN_CELLS or dmi) and fused.mode() != "on")


def _switch() -> str:
    """NMAG_CELL_KERNEL as "off" (0, off, false, no), "on" (1, on, true, yes) or "auto", the words
    NMAG_COMPILE takes."""
    v = os.environ.get(ENV, "").strip().lower()
    return "off" if v in ("0", "off", "false", "no") else "on" if v in ("1", "on", "true", "yes") else "auto"


def _full_coefficient(c: torch.Tensor, dim: int, down: bool, shape: tuple) -> torch.Tensor:
    """A bond's coefficients, narrowed by Exchange to the cells that have that neighbour, back on
    the whole grid (zero where there is none), as cells.c reads them."""
    full = torch.zeros(shape, dtype=c.dtype, device=c.device)
    n = shape[dim] - 1
    full.narrow(dim, 1 if down else 0, n).copy_(c)
    return full


class CellKernel:
    """Exchange, the applied field, anisotropy, DMI and the torque of one State in one call.

    Built by `for_terms` from a Simulation's terms (in their order); `rhs(state)` gives dm/dt in
    1/s and `field(state)` the effective field in A/m, at state.m and state.t, like
    llg_rhs(m, sum of the terms' h) and that sum."""

    def __init__(self, lib, state, terms):
        self._lib = lib
        self.terms = list(terms)
        self.exchange = next(t for t in terms if isinstance(t, Exchange))
        self.zeeman = next((t for t in terms if isinstance(t, Zeeman)), None)
        self.uniaxial = next((t for t in terms if isinstance(t, UniaxialAnisotropy)), None)
        self.cubic = next((t for t in terms if isinstance(t, CubicAnisotropy)), None)
        self.dmi = next((t for t in terms if isinstance(t, InterfacialDMI)), None)
        taken = (self.exchange, self.zeeman, self.uniaxial, self.cubic, self.dmi)
        self.others = [t for t in terms if not any(t is k for k in taken)]
        self.dtype, self.shape = state.dtype, tuple(state.m.shape)
        nz, ny, nx = self.shape[1:]
        self._cells = nz * ny * nx
        rec = np.zeros(R_FIELDS, np.int64)
        rec[[R_DTYPE, R_NZ, R_NY, R_NX, R_THREADS]] = _DTYPES[state.dtype], nz, ny, nx, 1
        keep = []   # every tensor whose address is in the table, kept alive with it

        def put(field, t):
            t = t.to(self.dtype).contiguous()
            keep.append(t)
            rec[field] = t.data_ptr()

        for dim, up, down in self.exchange.axes:
            for which, c in enumerate((up, down)):
                if c is not None:
                    put(_BOND_FIELD[(dim, which)], _full_coefficient(c, dim, bool(which), self.shape[1:]))
        mask = state.mask.to(torch.uint8).contiguous()
        keep.append(mask)
        rec[R_MASK] = mask.data_ptr()
        rec[R_HAPP] = int(self.zeeman is not None)
        if self.uniaxial is not None:
            put(R_KU, self.uniaxial.pref.expand(self.shape[1:]))
            put(R_KUAXIS, state.Ku_axis.expand(self.shape))
        if self.cubic is not None:
            put(R_KC, self.cubic.pref.expand(self.shape[1:]))
            for field, axis in zip((R_KC_AXIS1, R_KC_AXIS2, R_KC_AXIS3),
                                   (state.Kc_axis1, state.Kc_axis2, state.Kc_axis3)):
                put(field, axis.expand(self.shape))
        if self.dmi is not None:
            put(R_DMI, self.dmi.pref.expand(self.shape[1:]))
            put(R_DMI_EX, self.dmi.ex_pref.expand(self.shape[1:]))
            put(R_DMI_D2A, self.dmi.D_over_2A.expand(self.shape[1:]))
        rec.view(np.float64)[[R_DX, R_DY]] = state.d[0], state.d[1]
        self._rec, self._recf, self._keep = rec, rec.view(np.float64), keep
        self._address = rec.ctypes.data
        self._alpha = None
        # one table per kernel: a run and its twin, or a helper thread, calling at once must not
        # rewrite the addresses cells.c's threads are reading (found in review: a segfault)
        self._lock = threading.Lock()

    @classmethod
    def for_terms(cls, state, terms) -> tuple:
        """(a kernel for these terms of this state, None), or (None, why the torch path runs)."""
        why = cls._why_not(state, terms)
        if why is not None:
            return None, why
        kernel = cls(library(), state, terms)
        why = kernel._differs_from_torch(state)
        if why is not None:
            _log.warning("the LLG cell kernel is not used: %s", why)
            return None, why
        return kernel, None

    @staticmethod
    def _why_not(state, terms) -> str | None:
        if _switch() == "off":
            return f"turned off by {ENV}={os.environ.get(ENV, '').strip()}"
        if not wanted(state.m[0].numel(), dmi=any(isinstance(t, InterfacialDMI) for t in terms)):
            if fused.mode() == "on":
                return "NMAG_COMPILE=1 asks for torch.compile's loops on every grid"
            return (f"the grid has {state.m[0].numel()} cells (the kernel serves fewer than {MIN_CELLS}, "
                    "or DMI problems)")
        if state.m.device.type != "cpu" or state.dtype not in _DTYPES:
            return "not a float32 or float64 CPU state"
        if not any(isinstance(t, Exchange) for t in terms):
            return "no exchange term"
        if library() is None:
            return library_why_not() or "the compiled library is missing"
        return None

    def _differs_from_torch(self, state) -> str | None:
        """Why the kernel's dm/dt and field on a random state of this grid are not the torch
        terms' (beyond rounding: 1e-12 of the largest value in float64, 1e-5 in float32), or None."""
        g = torch.Generator().manual_seed(1)
        m = torch.randn(self.shape, generator=g, dtype=torch.float64).to(self.dtype)
        m = m * (state.mask / (m * m).sum(0).sqrt().clamp_min(1e-30))
        other = torch.randn(self.shape, generator=g, dtype=torch.float64).to(self.dtype) * 1e5
        saved = state.m
        state.m = m
        try:   # the other terms (the demag) enter as a given field: not evaluated here
            H = other + self.exchange.h(state)
            for term in (self.zeeman, self.uniaxial, self.cubic, self.dmi):
                if term is not None:
                    H = H + term.h(state)
            want = (H, llg_rhs(m, H, state.alpha), llg_rhs(m, H, state.alpha, precession=False))
            got = [torch.empty_like(m) for _ in want]
            self._run(state, got[0], None, True, other)
            self._run(state, None, got[1], True, other)
            self._run(state, None, got[2], False, other)
        finally:
            state.m = saved
        tol = 1e-12 if self.dtype == torch.float64 else 1e-5
        for name, w, g in zip(("field", "torque", "damping torque"), want, got):
            scale = float(w.abs().max())
            if not torch.allclose(g, w, rtol=0, atol=tol * scale + 1e-300):
                return f"its {name} differs from the torch terms' on a test state"
        return None

    # ------------------------------------------------------------------ evaluation
    def _other_field(self, state) -> torch.Tensor | None:
        """The sum of the terms the kernel does not take (the demag first), as a contiguous
        tensor of the state's dtype; None where there are none."""
        H = None
        for term in self.others:
            h = term.h(state)
            H = h if H is None else H + h
        if H is not None and (H.dtype is not self.dtype or not H.is_contiguous() or H.shape != self.shape):
            # as torch's sum would take it: another dtype, a strided or a broadcast field (cells.c
            # reads 3 x cells values)
            H = H.to(self.dtype).expand(self.shape).contiguous()
        return H

    def _serves(self, m) -> bool:
        return m.dtype is self.dtype and m.is_contiguous() and not m.requires_grad and \
            tuple(m.shape) == self.shape and m.device.type == "cpu"

    def _run(self, state, hout, out, precession: bool, H):
        """cells.c on state.m with the other terms' field H (or None): the effective field into
        hout and/or dm/dt into out (each a contiguous tensor like m, or None)."""
        with self._lock:
            self._run_locked(state, hout, out, precession, H)

    def _run_locked(self, state, hout, out, precession: bool, H):
        m, rec = state.m, self._rec
        if self.zeeman is not None:
            self._recf[R_HX:R_HZ + 1] = self.zeeman.H_vector(state.t)
        if out is not None and state.alpha is not self._alpha:
            pref, pref_alpha = llg_prefactors(state.alpha)
            grid = self.shape[1:]   # a scalar or broadcast alpha expanded: cells.c reads every cell's
            pref = pref.to(self.dtype).expand(grid).contiguous()
            pref_alpha = pref_alpha.to(self.dtype).expand(grid).contiguous()
            self._prefactors = (state.alpha, pref, pref_alpha)   # kept alive with their addresses
            rec[R_PREF], rec[R_PREF_ALPHA] = pref.data_ptr(), pref_alpha.data_ptr()
            self._alpha = state.alpha
        rec[R_M] = m.data_ptr()
        rec[R_HIN] = 0 if H is None else H.data_ptr()
        rec[R_HOUT] = 0 if hout is None else hout.data_ptr()
        rec[R_OUT] = 0 if out is None else out.data_ptr()
        rec[R_PRECESSION] = int(precession)
        if self._cells >= THREADED_CELLS:   # smaller grids keep the one thread set at build
            rec[R_THREADS] = torch.get_num_threads()
        self._lib.nm_cells(self._address)
        rec[R_M] = rec[R_HIN] = rec[R_HOUT] = rec[R_OUT] = 0   # no address outlives its call

    def rhs(self, state, precession: bool = True) -> torch.Tensor:
        """dm/dt in 1/s at state.m, state.t (precession=False: the damping term only)."""
        m = state.m
        if not self._serves(m):
            return llg_rhs(m, self._torch_field(state), state.alpha, precession)
        out = torch.empty_like(m)
        self._run(state, None, out, precession, self._other_field(state))
        return out

    def field(self, state) -> torch.Tensor:
        """The effective field in A/m at state.m, state.t."""
        if not self._serves(state.m):
            return self._torch_field(state)
        H = torch.empty_like(state.m)
        self._run(state, H, None, True, self._other_field(state))
        return H

    def _torch_field(self, state) -> torch.Tensor:
        H = self.terms[0].h(state)
        for term in self.terms[1:]:
            H = H + term.h(state)
        return H


# ---------------------------------------------------------------------- a Runge-Kutta step's arithmetic
# Each call below costs a few microseconds of Python around the C pass (SP4: 8 calls a step): one
# table per thread, filled field by field, and the cheapest checks that keep the C pass in bounds.
_TABLES = threading.local()


def _table():
    """This thread's nm_stage table (as int64 and float64 views) and its address."""
    t = getattr(_TABLES, "t", None)
    if t is None:
        table = np.zeros(S_TERMS + 2 * S_MAX_TERMS, np.int64)
        t = _TABLES.t = (table, table.view(np.float64), table.ctypes.data)
    return t


def _stage_library(first: torch.Tensor, others):
    """The library where nm_stage serves these arrays (contiguous CPU arrays of one float dtype and
    one size, without grad, on a grid the kernel serves), else None."""
    if not first.is_cpu or first.dtype not in _DTYPES or not first.is_contiguous() or first.requires_grad:
        return None
    n, dtype = first.numel(), first.dtype
    if not wanted(n // 3):
        return None
    for t in others:
        if t.dtype is not dtype or t.numel() != n or not t.is_contiguous() or t.requires_grad or not t.is_cpu:
            return None
    lib = _LIBRARY.loaded
    return lib if lib is not None else library()


def _stage(lib, op: int, first, out: int, m, mask, h, ks) -> None:
    table, as_float, address = _table()
    count = len(ks)
    table[S_DTYPE] = _DTYPES[first.dtype]
    table[S_N] = first.numel()
    table[S_OP] = op
    table[S_OUT] = out
    table[S_M] = 0 if m is None else m.data_ptr()
    table[S_MASK] = 0 if mask is None else mask.data_ptr()
    table[S_COUNT] = count
    for j in range(count):
        as_float[S_TERMS + j] = h[j]
        table[S_TERMS + count + j] = ks[j].data_ptr()
    code = lib.nm_stage(address)
    table[S_OUT] = table[S_M] = 0   # no address outlives its call
    if code:
        raise RuntimeError(f"cells.c's nm_stage refused its table (code {code})")


def stage_sum(m, h, ks) -> torch.Tensor | None:
    """m + sum_j h_j k_j (m None: without it) as a new array, summed in order as torch's
    out.add_(k, alpha=h) sums it (the same numbers, measured); None where the compiled kernel does
    not serve these arrays."""
    if not ks or len(ks) > S_MAX_TERMS:
        return None
    lib = _stage_library(ks[0], ks[1:] if m is None else (m, *ks[1:]))
    if lib is None:
        return None
    out = torch.empty_like(ks[0])
    _stage(lib, OP_SUM, ks[0], out.data_ptr(), m, None, h, ks)
    return out


def max_norm_of_sum(h, ks) -> float | None:
    """max over cells of |sum_j h_j k_j| for (3, ...) arrays k_j (NaN where any value is);
    None where the compiled kernel does not serve them."""
    if not ks or len(ks) > S_MAX_TERMS:
        return None
    lib = _stage_library(ks[0], ks[1:])
    if lib is None:
        return None
    result = np.zeros(1, np.float64)
    _stage(lib, OP_MAX_NORM, ks[0], result.ctypes.data, None, None, h, ks)
    return float(result[0])


def normalized(m, mask) -> torch.Tensor | None:
    """m / |m| in the magnet (mask a bool array of the cells), 0 outside, as engine.state.normalize;
    None where the compiled kernel does not serve them."""
    if mask.dtype is not torch.bool or mask.numel() * 3 != m.numel() or not mask.is_contiguous() or \
            not mask.is_cpu:
        return None
    lib = _stage_library(m, ())
    if lib is None:
        return None
    out = torch.empty_like(m)
    _stage(lib, OP_NORMALIZE, m, out.data_ptr(), m, mask, (), ())
    return out
