"""One evaluation of a one-layer network in two parts of the grid, one per thread (NeuralDemag's
way TWO_PARTS, for two or more threads on grids up to demag.TWO_PARTS_MAX_CELLS, 640^2).

Why: on this 2-core machine waking the other thread costs about 0.1 ms, and the other ways
leave a thread idle. Side by side (engine.neural.overlap) puts the exact near field, about four
fifths of the work, on the worker and the learned part on this thread, which then waits; each
operation split over two threads wakes the other one for every operation. Here the grid is cut
in two along its longer side. The worker computes the larger part's near field (a box of its
own, gathered straight from x) while this thread runs the learned part's levels; then each
thread adds U_0 over its own part's cells while that part's near field is still in its cache
(CompiledFar.u0_tile), this thread after the smaller part's near field. One hand-off and one
wait per call. Measured here (two threads, one layer, the shipped 16-cell member; each call
after the exact FFT as in a simulation; medians of 15, ms, 2026-12-05, a noisy host):

| grid | two parts (worker's share 9/16) | side by side | each operation split | one thread |
|---|---|---|---|---|
| 256^2 | 1.46-2.19 | 1.95-3.06 | 2.29-3.35 | 2.22-2.45 |
| 512^2 | 4.64-4.91 | 6.61-6.71 | 5.73-7.42 | 7.75-8.35 |
| 128^2 | 0.66-0.70 | 0.67-0.70 | 0.64-0.66 | 0.56-0.59 |

Shares of 1/2, 9/16, 5/8 and 11/16 were tried at 256^2 (medians 1.68-2.42, 1.46-2.19,
1.67-1.96, 1.88-2.99) and 1/2, 9/16, 5/8 at 512^2 (4.97-5.06, 4.64-4.91, 4.87-4.97): the
worker's part is larger because this thread also runs the levels. NeuralDemag times this way
beside the others and keeps the fastest (_choose_way).
"""
from __future__ import annotations

import threading

import torch

from ..threads import torch_threads
from .near_fft import convolve_gathered, halo_gather, tile_box
from .overlap import near_worker, on_worker

WORKER_SHARE = 9 / 16   # the worker's part of the longer side (see the module docstring)
MIN_PART = 32           # cells along the cut side: each part at least this long


class _Part:
    """One part of the grid, cells [start, stop) along the cut axis: its near field by FFT over a
    box of its own (the part plus R cells of halo on every side, zero outside the grid), built
    for one thread, the part's cells gathered straight from the input into the box's input."""

    def __init__(self, weight: torch.Tensor, ny: int, nx: int, start: int, stop: int, along_y: bool,
                 fft: str = "auto"):
        R = (weight.shape[-1] - 1) // 2
        self.R, self.along_y = R, along_y
        self.origin = (start, 0) if along_y else (0, start)
        h, w = (stop - start, nx) if along_y else (ny, stop - start)
        self.shape = (h, w)
        with torch_threads(1):   # the box's pipeline takes its thread count when built
            self.box = tile_box(weight, h + 2 * R, w + 2 * R, torch.float32, fft)
        inp = self.box.input_view()
        self.ready = inp is not None
        # the grid's cells this box reads (the part and its halo, cut at the grid's edge) and
        # where they go in the box's input; the rest of the input is zeroed every call (an
        # FFT pipeline may overwrite its input)
        self.gather = halo_gather(inp, *self.origin, R, ny, nx) if self.ready else None

    def field(self, comps: torch.Tensor) -> torch.Tensor:
        """The part's near field of comps (3, 1, ny, nx): (3, 1, h, w), a view of the box's
        output that its next call overwrites."""
        H = convolve_gathered(self.box, self.gather, comps)
        R, (h, w) = self.R, self.shape
        return H[..., R:R + h, R:R + w]


class TwoParts:
    """The network's field of a (1, 3, ny, nx) float32 input in two parts (see the module
    docstring): `compiled` the learned part (engine.neural.compiled.CompiledFar) of a one-layer
    member with near kernel `weight`. Build with `build()`."""

    def __init__(self, compiled, weight: torch.Tensor, ny: int, nx: int, share: float = WORKER_SHARE,
                 fft: str = "auto"):
        self.compiled, self.ny, self.nx = compiled, int(ny), int(nx)
        along_y = self.ny >= self.nx
        n, step = (self.ny if along_y else self.nx), compiled.stem   # parts start on the coarse grid
        cut = min(n - MIN_PART, max(MIN_PART, round(n * share / step) * step))
        cut -= cut % step
        self.cut, self.along_y = cut, along_y
        self.first = _Part(weight, self.ny, self.nx, 0, cut, along_y, fft)    # the worker's
        self.second = _Part(weight, self.ny, self.nx, cut, n, along_y, fft)   # this thread's
        self._x = None   # field_of_state's float32 copy of M, made on first use

    @classmethod
    def build(cls, compiled, weight: torch.Tensor, ny: int, nx: int, fft: str = "auto"):
        """A TwoParts for this grid, or None where it does not serve: no compiled learned part, a
        layered member (U_0 tile by tile is for one layer), a longer side under 2 MIN_PART cells,
        or an FFT pipeline without an input buffer of its own."""
        if compiled is None or compiled.C != 3 or max(int(ny), int(nx)) < 2 * MIN_PART + compiled.stem:
            return None
        tp = cls(compiled, weight, ny, nx, fft=fft)
        return tp if tp.first.ready and tp.second.ready else None

    @property
    def backend(self) -> str:
        side = "rows" if self.along_y else "columns"
        return f"two parts cut at {side} {self.cut} (worker 0-{self.cut}, caller the rest)"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The field of x (1, 3, ny, nx) float32 (any strides), a new tensor: the same numbers as
        CompiledFar(x, net.near(x)) to float rounding."""
        self.compiled._check("x", x)
        out = torch.empty((1, 3, self.ny, self.nx), dtype=torch.float32)
        self._evaluate(x, out[0])
        return out

    def field_of_state(self, m: torch.Tensor, Ms: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """mask x the field of M = Ms m, a new float64 (3, 1, ny, nx) tensor, for a one-layer
        film's float64 state on the CPU (m (3, 1, ny, nx); Ms and mask (1, ny, nx)); None for
        any other. M's float32 copy is written by one compiled pass (far.c's nm_load) and U_0's
        passes write the float64 field times the mask: the products and conversions around an
        evaluation of M (h_from_M's way) took about as long as the evaluation itself at 512^2 in
        a simulation (8-10 ms per call there against 4.6 alone)."""
        shape = (3, 1, self.ny, self.nx)
        if not (m.dtype == Ms.dtype == torch.float64 and mask.dtype == torch.bool and tuple(m.shape) == shape
                and tuple(Ms.shape) == tuple(mask.shape) == shape[1:]
                and m.device.type == Ms.device.type == mask.device.type == "cpu"):
            return None
        if self._x is None:
            self._x = torch.empty((1, 3, self.ny, self.nx), dtype=torch.float32)
        x = self._x
        self.compiled.lib.nm_load(m.data_ptr(), 8, m.stride(0), m.stride(2), m.stride(3), Ms.data_ptr(),
                                  Ms.stride(1), Ms.stride(2), x.data_ptr(), *x.stride()[1:], 3, self.ny, self.nx,
                                  0, self.ny)
        H = torch.empty(shape, dtype=torch.float64)
        self._evaluate(x, H[:, 0], mask[0])
        return H

    def _evaluate(self, x: torch.Tensor, out: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """The field of x into out (3, ny, nx): float32, or with `mask` (ny, nx) float64 times it."""
        cf = self.compiled
        comps = x[0].unsqueeze(1)   # (3, 1, ny, nx): components first, one layer
        with torch.no_grad(), cf._busy:
            if on_worker():   # never wait on itself: both parts here
                cf.features(x)
                for part in (self.first, self.second):
                    cf.u0_tile(out, part.field(comps), *part.origin, mask)
                return
            levels = threading.Event()
            job = near_worker().submit(self._first_part, comps, out, mask, levels)
            try:
                try:
                    cf.features(x)
                finally:
                    levels.set()   # even on an error: the worker must not wait for ever
                with torch_threads(1):
                    cf.u0_tile(out, self.second.field(comps), *self.second.origin, mask)
            finally:
                job.result()

    def _first_part(self, comps, out, mask, levels: threading.Event) -> None:
        """On the worker: the first part's near field, then (once the levels are done) U_0 over it."""
        with torch.no_grad():
            field = self.first.field(comps)
            levels.wait()
            self.compiled.u0_tile(out, field, *self.first.origin, mask)
