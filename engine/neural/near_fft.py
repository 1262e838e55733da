"""The lean network's exact near field by FFT over a grid padded by R cells, not doubled.

The near field is a convolution with a kernel of (2R + 1)^2 columns (LeanFilmNet.near_w, the
Newell tensor of the cell, windowed). As a direct convolution it costs (2R + 1)^2 x (3 nz)^2
multiply-adds per cell (729 for R = 4, one layer) and was half of the network's time. Its support
is short, so a circular convolution over a box only R cells longer than the grid along x and y
is exact (the wrap-around reads R zero cells), and along z 2 nz - 1 planes hold every layer
offset. That box has about a quarter of the cells of FFTDemag's doubled one, and the cost no
longer grows with R. The box is the faster (measured, cached) of the smallest 5-smooth and
3-smooth lengths (near_paddings). The transforms are the engine's own (engine.fft_backends:
the fastest of torch, scipy, FFTW, measured per shape and cached), so this path and the exact
FFT it races use the same machinery. Exact to float rounding (checked against the direct
convolution in tests).

Large grids go in tiles (overlap-save, TiledNearFieldFFT): one box of a few hundred cells a side,
transformed once per tile, whose spectra stay in the CPU's cache, so the near field's cost per
cell stops growing with the grid (an FFT over the whole grid is O(N log N) and leaves the cache
from about 512^2; measured here, one thread: R = 10 at 1024^2 27 -> 20 ms, at 2048^2 126 -> 78
ms; R = 24, the shipped one-layer member, 29 -> 25 and 123 -> 95 ms). Each tile reads R cells of
its neighbours on each side, so its box is the tile plus 2R: worth it for short kernels only
(R = 40 at 1024^2: tiles 31 ms against 27). On two threads one whole-grid FFT splits each
transform across both cores (R = 24 at 1024^2: 16 ms whole against 25 in tiles on one thread), so
there the tiles may also be shared: half on this thread, half on the near-field worker
(engine.neural.overlap), each with a box of its own. near_field_fft chooses by measuring each way
once per grid (cached).
"""
from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
import torch

from ..atomic import JsonObjectFile
from ..demag import FFTDemag
from ..fft_backends import cache_dir, fastest_padding, measuring
from ..timing import best_in_turns, clock_for, whole_call
from .lean import COMPONENT_INDEX
from ..threads import torch_threads
from .overlap import near_worker, on_worker


def near_padded_shape(nz: int, ny: int, nx: int, R: int, smooth: int = 5) -> tuple:
    """(Pz, Py, Px): each lateral axis at least R cells longer, rounded up to a length whose
    prime factors are at most `smooth` (5: scipy's next_fast_len for real transforms; 3: powers
    of 2 and 3 only, often faster for torch's FFT); 2 nz - 1 layer planes (offsets -(nz-1) ..
    nz-1) for nz > 1."""
    return (2 * nz - 1 if nz > 1 else 1, *(smooth_length(n + R, smooth) for n in (ny, nx)))


def smooth_length(n: int, smooth: int = 5) -> int:
    """The smallest length >= n whose prime factors are at most `smooth` (2, 3 or 5): for 5, what
    scipy.fft.next_fast_len(n, real=True) gives, without importing scipy.fft (0.2-0.5 s)."""
    lengths = [1]
    for p in (q for q in (2, 3, 5) if q <= smooth):   # every product of them below 2 n (a power of 2 is)
        lengths = [k * p ** e for k in lengths for e in range(n.bit_length() + 1) if k * p ** e < 2 * max(n, 1)]
    return min(k for k in lengths if k >= n)


# how much longer than the smallest 5-smooth box (along each axis) a 3-smooth or a power-of-two box
# may be and still be measured: on standard problem 4's 100 x 25 grid with R = 24 the near field
# took 82 us in a 64 x 128 box, 100 us in 54 x 128 and 116 us in 50 x 125 (FFTW, measured here)
NEAR_SLACK = {3: 1.15, 2: 1.35}


def near_paddings(nz: int, ny: int, nx: int, R: int) -> list:
    """The paddings NearFieldFFT chooses from (fft_backends.fastest_padding): the smallest 5-smooth
    box at least R cells longer than the grid (R = 0: a tile's box, whose input already holds its
    halo), and the smallest 3-smooth and power-of-two ones where at most NEAR_SLACK longer along
    each axis."""
    five = near_padded_shape(nz, ny, nx, R)
    out = [five]
    for smooth, slack in NEAR_SLACK.items():
        box = near_padded_shape(nz, ny, nx, R, smooth=smooth)
        if box not in out and all(b <= slack * f for b, f in zip(box[1:], five[1:])):
            out.append(box)
    return out


def periodic_kernel(weight: np.ndarray, padded: tuple) -> dict:
    """{component: (Pz, Py, Px) array} of a conv2d weight (3 nz, 3 nz, 2R+1, 2R+1) whose output
    is H = conv(M): the tap at lateral offset (target - source) (R - ky, R - kx) and layer offset
    lo - li, placed periodically (the conv's symmetric tensor gives each pair i, j once)."""
    C, _, K, _ = weight.shape
    nz, R = C // 3, (K - 1) // 2
    Pz, Py, Px = padded
    ky, kx = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
    rows, cols = (R - ky) % Py, (R - kx) % Px
    out = {}
    for c, (i, j) in COMPONENT_INDEX.items():
        if nz == 1 and c in ("xz", "yz"):
            continue   # zero in one layer
        k = np.zeros(padded)
        for lo in range(nz):
            for li in range(nz):
                k[(lo - li) % Pz, rows, cols] = weight[3 * lo + i, 3 * li + j]
        out[c] = k
    return out


class NearFieldFFT(FFTDemag):
    """conv2d(x, weight, padding=R) for one (1, 3 nz, ny, nx) input, by FFT (see the module
    docstring). Built once per grid shape and weight; float32 on the CPU."""
    method = "near-fft"

    def __init__(self, weight: torch.Tensor, ny: int, nx: int, dtype=torch.float32, fft: str = "auto",
                 padded: tuple | None = None):
        """padded: the box (Pz, Py, Px) where already chosen (near_field_fft; a tile's box)."""
        w = weight.detach().cpu().double().numpy()
        nz, R = w.shape[0] // 3, (w.shape[-1] - 1) // 2
        self.n, self.d, self.R = (int(nx), int(ny), nz), (1.0, 1.0, 1.0), R
        padded = padded or fastest_padding(self.n, near_paddings(nz, int(ny), int(nx), R), dtype, "cpu", fft)
        self._set_kernel(periodic_kernel(w, padded), padded, dtype, "cpu", fft)

    def __call__(self, x: torch.Tensor, fresh: bool = True) -> torch.Tensor:
        """x (1, 3 nz, ny, nx), layer-major channels -> the near field, same shape: a new tensor,
        or with fresh=False possibly a view of a buffer that the next call overwrites (for a
        caller that only reads it at once: the compiled learned part adds it, and a copy of it
        cost 60 us at 256^2)."""
        nx, ny, nz = self.n
        # (3, nz, ny, nx), components first; the pipeline copies it into its padded input buffer
        H = self._convolve(x[0].view(nz, 3, ny, nx).transpose(0, 1))
        out = H.transpose(0, 1).reshape(1, 3 * nz, ny, nx)
        if fresh and out.data_ptr() == H.data_ptr() and getattr(self._pipe, "reuses_output", False):
            out = out.clone()   # a view of a buffer the next call overwrites
        return out


# tiles are tried on grids of at least this many cells (a smaller grid's whole box stays in the
# cache), in boxes of about TILE_BOXES cells a side whose tiles are at least TILE_MIN_PER_R x R
# (the halo, 2R, is the overhead: R = 40 lost to the whole grid at every size and layer count
# measured, so its members are not measured at all), and taken where they measured at most
# TILE_GAIN of the whole grid's time (a margin for the noise of a shared machine)
TILE_MIN_CELLS = 384 * 384
# on two or more threads, tiles shared by two threads are tried from this many cells (also the grid
# cut in two halves): the whole grid's FFT split over two threads gains little below 512^2 (256^2:
# the exact FFT took 2.9-3.1 ms on two threads against 1.75-2.0 on one)
SHARED_MIN_CELLS = 160 * 160
TILE_BOXES = (192, 288, 384)
TILE_MIN_PER_R = 8
TILE_GAIN = 0.95
# every tile starts on a multiple of this many cells: the compiled learned part's U_0 prolongs
# from a grid this much coarser and adds the near field tile by tile where tiles start on its
# cells (engine.neural.compiled.CompiledFar.fuses)
TILE_ALIGN = 4
CHOICE_FILE = "near_tiles.json"   # in engine.fft_backends.cache_dir(), beside the FFT choices
_CHOICES = JsonObjectFile(lambda: cache_dir() / CHOICE_FILE)


def halves(ny: int, nx: int, R: int) -> list:
    """The grid cut in two along its longer side, [(Ty, Tx)], where each half is at least
    TILE_MIN_PER_R x R cells long (for two threads, one half each); else []."""
    if ny >= nx:
        tile = (-(-ny // 2), nx)
    else:
        tile = (ny, -(-nx // 2))
    return [tile] if min(tile) >= max(TILE_MIN_PER_R * R, 32) and tile != (ny, nx) else []


def tilings(ny: int, nx: int, R: int) -> list:
    """Tile shapes (Ty, Tx) worth measuring: for each box side B in TILE_BOXES, tiles of at most
    B - 2R cells, as equal as the grid allows in multiples of TILE_ALIGN (an axis no longer than
    that stays whole)."""
    out = []
    for B in TILE_BOXES:
        T0 = B - 2 * R
        if T0 < max(TILE_MIN_PER_R * R, 32):
            continue
        tile = tuple(_tile_length(n, T0) for n in (ny, nx))
        if tile != (ny, nx) and tile not in out:
            out.append(tile)
    return out


def _tile_length(n: int, most: int) -> int:
    """Tiles of at most `most` cells along an axis of n, as few and as equal as possible with
    every tile's first cell a multiple of TILE_ALIGN; n itself where one tile holds it."""
    if n <= most:
        return n
    k = -(-n // most)
    while True:
        t = -(-n // k)
        t += -t % TILE_ALIGN
        if t <= most:
            return t
        k += 1


def _choice_key(nz, ny, nx, R, dtype) -> str:
    return f"{nx}x{ny}x{nz}:R={R}:{str(dtype).replace('torch.', '')}:threads={torch.get_num_threads()}"


def near_field_fft(weight: torch.Tensor, ny: int, nx: int, dtype=torch.float32, fft: str = "auto"):
    """The near field's FFT for this grid: over the whole grid (NearFieldFFT) or in tiles
    (TiledNearFieldFFT; on two or more threads also tiles shared by two threads), whichever
    measured faster here, whole included (each way built and timed in turns on a random field
    once per grid, kernel radius, precision and thread count; the choice is cached in
    CHOICE_FILE). Where nothing is measured (a forced backend, torch alone) or the grid is small:
    the whole grid."""
    nz, R = weight.shape[0] // 3, (weight.shape[-1] - 1) // 2
    ny, nx = int(ny), int(nx)
    threads = torch.get_num_threads()
    tiled = tilings(ny, nx, R)
    tiles = tiled if ny * nx >= TILE_MIN_CELLS else []
    shared = []
    if threads > 1 and ny * nx >= SHARED_MIN_CELLS:
        shared = tiled + [t for t in halves(ny, nx, R) if t not in tiled]
    if not (tiles or shared) or not measuring(fft):
        return NearFieldFFT(weight, ny, nx, dtype, fft)
    key = _choice_key(nz, ny, nx, R, dtype)
    known = _CHOICES.read().get(key, {})
    tile, is_shared = known.get("tile", ""), bool(known.get("shared"))
    listed = isinstance(tile, list) and tuple(tile) in (shared if is_shared else tiles)
    # a record from before shared tiles were a way (no "shared") is measured again on several threads
    if (threads == 1 or "shared" in known) and (tile is None or listed):
        return NearFieldFFT(weight, ny, nx, dtype, fft) if tile is None else \
            TiledNearFieldFFT(weight, ny, nx, tile, dtype, fft, shared=is_shared)
    ways = {"whole": NearFieldFFT(weight, ny, nx, dtype, fft)}
    ways.update({f"{Ty}x{Tx}": TiledNearFieldFFT(weight, ny, nx, (Ty, Tx), dtype, fft) for Ty, Tx in tiles})
    ways.update({f"{Ty}x{Tx} shared": TiledNearFieldFFT(weight, ny, nx, (Ty, Tx), dtype, fft, shared=True)
                 for Ty, Tx in shared})
    x = torch.rand((1, 3 * nz, ny, nx), dtype=dtype)
    clock = clock_for(threads)
    for w in ways.values():
        w(x, fresh=False)   # warm-up
    times = {k: t for k, (t,) in best_in_turns({k: whole_call(lambda w=w: w(x, fresh=False), clock)
                                                 for k, w in ways.items()}, budget_s=1.0).items()}
    name = min(times, key=times.get)
    if times[name] > TILE_GAIN * times["whole"]:
        name = "whole"
    way = ways[name]
    choices = _CHOICES.read()   # another process may have written meanwhile
    choices[key] = {"tile": None if name == "whole" else list(way.tile), "shared": name.endswith("shared"),
                    "ms": {k: round(v * 1e3, 3) for k, v in times.items()},
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    _CHOICES.write(choices)
    return way


def tile_box(weight: torch.Tensor, Gy: int, Gx: int, dtype=torch.float32, fft: str = "auto",
             padded: tuple | None = None) -> NearFieldFFT:
    """The NearFieldFFT of one tile's box of Gy x Gx cells (the tile and its halo, already in the
    box: padded by nothing more), over `padded` or the fastest measured box for it. Its pipeline
    takes the caller's thread count."""
    nz = weight.shape[0] // 3
    return NearFieldFFT(weight, Gy, Gx, dtype, fft, padded=padded or fastest_padding(
        (Gx, Gy, nz), near_paddings(nz, Gy, Gx, 0), dtype, "cpu", fft))


def convolve_gathered(box: NearFieldFFT, gather: tuple, source: torch.Tensor) -> torch.Tensor:
    """box's near field of one tile: its input filled as halo_gather's `gather` says from source
    (3, nz, ny, nx), then transformed (a view of the box's output, overwritten by its next call)."""
    zeros, into, (ys, ye, xs, xe) = gather
    for z in zeros:
        z.zero_()
    into.copy_(source[:, :, ys:ye, xs:xe])
    return box.convolve_input()


def halo_gather(inp: torch.Tensor, y: int, x: int, R: int, ny: int, nx: int) -> tuple:
    """How a box's FFT input inp (..., Gy, Gx) is filled for the tile whose first cell is the
    grid's (y, x), the box starting R cells before it: (the parts of inp outside the grid, to
    zero; the part inside, a view to copy the grid's cells into; those cells' rows and columns
    (ys, ye, xs, xe) in the (ny, nx) grid)."""
    Gy, Gx = inp.shape[-2:]
    ys, ye, xs, xe = max(0, y - R), min(ny, y - R + Gy), max(0, x - R), min(nx, x - R + Gx)
    oy, ox, hy, hx = ys - (y - R), xs - (x - R), ye - ys, xe - xs
    zeros = [v for v, empty in ((inp[..., :oy, :], oy == 0), (inp[..., oy + hy:, :], oy + hy == Gy),
                                (inp[..., oy:oy + hy, :ox], ox == 0),
                                (inp[..., oy:oy + hy, ox + hx:], ox + hx == Gx)) if not empty]
    return zeros, inp[..., oy:oy + hy, ox:ox + hx], (ys, ye, xs, xe)


class TiledNearFieldFFT:
    """NearFieldFFT's convolution by overlap-save tiles (see the module docstring): M is written
    into a zero-bordered source buffer (input_view); each tile's box, the tile plus R cells of
    its neighbours on each side, goes through one NearFieldFFT of that box (padded by nothing
    more: the wrap-around only reaches the halo, which is cut off), and the tile's cells of the
    result go into one output buffer, the same tensor every call."""
    method = "near-fft-tiles"

    def __init__(self, weight: torch.Tensor, ny: int, nx: int, tile: tuple, dtype=torch.float32,
                 fft: str = "auto", padded: tuple | None = None, shared: bool = False):
        """shared: the tiles split between this thread and the near-field worker
        (engine.neural.overlap), each with a box of its own whose transforms run on one thread:
        for two or more threads, where one whole-grid FFT on both cores is the other way."""
        nz, R = weight.shape[0] // 3, (weight.shape[-1] - 1) // 2
        (Ty, Tx), ny, nx = (int(t) for t in tile), int(ny), int(nx)
        self.n, self.R, self.tile, self.shared = (nx, ny, nz), R, (Ty, Tx), bool(shared)
        Gy, Gx = Ty + 2 * R, Tx + 2 * R
        with torch_threads(1) if shared else nullcontext():   # the boxes' pipelines take their thread count when built
            self.box = tile_box(weight, Gy, Gx, dtype, fft, padded)
            self.helper_box = NearFieldFFT(weight, Gy, Gx, dtype, fft, padded=self.box.padded) if shared else None
        self.padded = self.box.padded
        ky, kx = -(-ny // Ty), -(-nx // Tx)
        self.tiles = (ky, kx)
        self.src = torch.zeros((3, nz, ky * Ty + 2 * R, kx * Tx + 2 * R), dtype=dtype)   # borders stay zero
        self._in = self.src[:, :, R:R + ny, R:R + nx]
        self.out = torch.empty((3, nz, ny, nx), dtype=dtype)
        # (the tile's box in src, where its cells go in out (cut at the grid's edge)): views, built once
        self._origins = [(y, x) for y in range(0, ny, Ty) for x in range(0, nx, Tx)]
        self._jobs = [(self.src[:, :, y:y + Gy, x:x + Gx], self.out[:, :, y:y + Ty, x:x + Tx]) for y, x in self._origins]
        self._gathers = {}   # per box (id): each tile's copy from the grid straight into its FFT input
        half = (len(self._jobs) + 1) // 2
        self._halves = (self._jobs[:half], self._jobs[half:])
        self._pending = None   # the worker's half, begun (begin) and not yet waited for

    @property
    def origins(self) -> list:
        """Each tile's first cell (y, x), in the order each_tile yields them."""
        return list(self._origins)

    @property
    def backend(self) -> str:
        ky, kx = self.tiles
        return (f"{self.box.backend} in {ky} x {kx} tiles of {self.tile[0]} x {self.tile[1]}"
                + (", shared by two threads" if self.shared else ""))

    def input_view(self) -> torch.Tensor:
        """The (3, nz, ny, nx) interior of the source buffer: write M here, then convolve_input()."""
        return self._in

    def begin(self, x: torch.Tensor | None = None) -> None:
        """Shared tiles: start the worker's half of the near field of x (1, 3 nz, ny, nx), or of
        what input_view() holds, so that this thread may do other work that only reads the input
        (the learned part's levels) before convolve_input() does its own half and waits. Without
        sharing (or on the worker itself) it only writes x in."""
        if self._pending is not None:   # begun and never finished (an error between): stale, and it reads the input
            job, self._pending = self._pending, None
            job.result()
        if x is not None:
            nx, ny, nz = self.n
            self._in.copy_(x[0].view(nz, 3, ny, nx).transpose(0, 1))
        if self.helper_box is not None and not on_worker():
            self._pending = near_worker().submit(self._convolve_tiles, self.helper_box, self._halves[1])

    def convolve_input(self) -> torch.Tensor:
        """The near field of what input_view() holds, (3, nz, ny, nx): the output buffer, the same
        tensor every call, overwritten by the next. Shared: the second half of the tiles on the
        near-field worker meanwhile (begun here unless begin() did; on the worker itself, all of
        them here)."""
        if self.helper_box is None or on_worker():
            self._convolve_tiles(self.box, self._jobs)
            return self.out
        if self._pending is None:
            self.begin()
        job, self._pending = self._pending, None
        try:
            with torch_threads(1):
                self._convolve_tiles(self.box, self._halves[0])
        finally:
            job.result()
        return self.out

    def channels(self, H: torch.Tensor) -> torch.Tensor:
        """convolve_input()'s (3, nz, ny, nx) result as the network's (1, 3 nz, ny, nx) view."""
        nx, ny, nz = self.n
        return H.transpose(0, 1).reshape(1, 3 * nz, ny, nx)

    def _convolve_tiles(self, box, jobs) -> None:
        R = self.R
        for window, dest in jobs:
            h, w = dest.shape[-2:]
            dest.copy_(box._convolve(window)[:, :, R:R + h, R:R + w])

    def each_tile(self, x: torch.Tensor | None = None):
        """The near field tile by tile, for a caller that uses each tile's field at once, while it
        is in the CPU's cache (the compiled learned part adds its last level to it:
        CompiledFar.in_tiles): yields ((y, x), field), the tile's first cell and its (3, nz, h, w)
        near field, a view of the box's FFT output that the next tile overwrites. With x (1, 3 nz,
        ny, nx), each box is gathered straight from x into the box's FFT input (zero where the
        halo leaves the grid; a pipeline without an input buffer of its own copies x into the
        source buffer first); without, the boxes are read from what input_view() holds. All tiles
        on this thread (shared tiles too: for_each_tile shares them).

        Why: the whole near field written into one buffer and read back by U_0 made the grid's
        near field travel through memory twice more, and the copy of x into the source buffer
        once more; at 512^2 on one thread (the near field about 13 MB, more than this CPU's
        cache holds) the evaluation took 10.7 ms against 9.5 gathered and fused (medians of 21,
        each after the exact FFT, 2026-12-05)."""
        yield from self._fields(self.box, range(len(self._jobs)), x)

    def for_each_tile(self, use, x: torch.Tensor | None = None) -> None:
        """use((y, x), field) for every tile, as each_tile yields them. Shared tiles: the second
        half on the near-field worker (its own box, one thread) while this thread does the first
        half on one thread, so `use` must be safe to run on two threads at once for different
        tiles (U_0 over a tile writes that tile's cells only)."""
        every = range(len(self._jobs))
        if self.helper_box is None or on_worker():
            for origin, field in self._fields(self.box, every, x):
                use(origin, field)
            return
        if self._pending is not None:   # a begun half never finished: it reads the source buffer
            job, self._pending = self._pending, None
            job.result()
        half = (len(self._jobs) + 1) // 2
        source = None if x is None else self._components(x)
        if source is not None and (self._gather_plan(self.box) is None or self._gather_plan(self.helper_box) is None):
            self._in.copy_(source)      # a pipeline without an input buffer: both halves read src
            x = None

        def second():
            for origin, field in self._fields(self.helper_box, every[half:], x):
                use(origin, field)
        job = near_worker().submit(second)
        try:
            with torch_threads(1):
                for origin, field in self._fields(self.box, every[:half], x):
                    use(origin, field)
        finally:
            job.result()

    def _fields(self, box, indices, x):
        """((y, x), field) of the tiles `indices` through `box` (see each_tile)."""
        R = self.R
        gathers = None
        if x is not None:
            gathers = self._gather_plan(box)
            source = self._components(x)
            if gathers is None:
                self._in.copy_(source)
        for k in indices:
            (y, x0), (window, dest) = self._origins[k], self._jobs[k]
            h, w = dest.shape[-2:]
            if gathers is None:
                H = box._convolve(window)
            else:
                H = convolve_gathered(box, gathers[k], source)
            yield (y, x0), H[:, :, R:R + h, R:R + w]

    def _components(self, x: torch.Tensor) -> torch.Tensor:
        """x (1, 3 nz, ny, nx), layer-major channels, as (3, nz, ny, nx), components first (a view)."""
        nx, ny, nz = self.n
        return x[0].view(nz, 3, ny, nx).transpose(0, 1)

    def _gather_plan(self, box) -> list | None:
        """Per tile (the parts of `box`'s FFT input outside the grid, to zero; the part inside;
        the grid's rows and columns it takes), built once per box; None where the box's pipeline
        has no input buffer of its own (scipy)."""
        if id(box) not in self._gathers:
            inp = box.input_view()
            if inp is None:
                self._gathers[id(box)] = None
                return None
            nx, ny, _ = self.n
            self._gathers[id(box)] = [halo_gather(inp, y, x, self.R, ny, nx) for y, x in self._origins]
        return self._gathers[id(box)]

    def __call__(self, x: torch.Tensor, fresh: bool = True) -> torch.Tensor:
        """As NearFieldFFT.__call__: x (1, 3 nz, ny, nx), layer-major channels."""
        if self.shared:
            self.begin(x)
            H = self.convolve_input()
        else:   # each box gathered from x: no copy of x into the source buffer
            for (y, x0), field in self.each_tile(x):
                self.out[:, :, y:y + field.shape[-2], x0:x0 + field.shape[-1]].copy_(field)
            H = self.out
        out = self.channels(H)
        return out.clone() if fresh and out.data_ptr() == H.data_ptr() else out


class BatchedNearFFT:
    """The same near field for a batch (B, 3 nz, ny, nx) by torch.fft (any device; what training
    and batched evaluation use): the layers stay channels, so their coupling is a 3 nz x 3 nz
    matrix per frequency and only x and y are transformed, over the grid padded by R. The direct
    convolution costs (2R + 1)^2 (3 nz)^2 multiply-adds per column (23,409 for nz = 3, R = 8)."""

    def __init__(self, weight: torch.Tensor, ny: int, nx: int):
        C, _, K, _ = weight.shape
        R = (K - 1) // 2
        self.n, self.R = (int(ny), int(nx)), R
        _, Py, Px = near_padded_shape(1, int(ny), int(nx), R)
        self.P = (Py, Px)
        k = torch.zeros(C, C, Py, Px, dtype=torch.float64, device=weight.device)
        rows = (R - torch.arange(K, device=weight.device)) % Py
        cols = (R - torch.arange(K, device=weight.device)) % Px
        k[:, :, rows[:, None], cols[None, :]] = weight.double()
        self.spectrum = torch.fft.rfft2(k).to(torch.complex64)    # (C out, C in, Py, Px // 2 + 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        X = torch.fft.rfft2(x.float(), s=self.P)                              # (B, C, Py, Kx)
        Y = torch.einsum("oiyx,biyx->boyx", self.spectrum, X)
        return torch.fft.irfft2(Y, s=self.P)[..., :self.n[0], :self.n[1]].to(x.dtype)
