"""The lean network's learned part as compiled C (kernels/far.c), for one float32 sample on the CPU.

Why: on grids up to a few hundred cells a side torch spends most of the learned part's time
between operations, not in them (256^2, one thread: the learned part took 1.65-2.3 ms for 19
million multiply-adds, while its largest convolution alone ran at the CPU's matrix-product rate).
far.c runs the same operator in one pass per level over channels-last buffers allocated once per
grid, with pooling, pixel shuffle, crop, skip addition and the final addition to the near field
fused into the loops that produce them.

How it is built (engine.native holds the build, the cache and their security rules): the first
use compiles far.c with the system's C compiler (`cc`, or $CC) for this CPU (-O3 -march=native)
into the user's cache folder (folder `kernels`, private to the user), under a name that hashes
the source, the compiler, the flags and the CPU; nothing another user could change is loaded.
A build says so on the `engine.neural.compiled` logger (INFO: `nmag run` prints it, the app
shows it), as it takes 2-9 s. No compiler, a failed build, or a result that differs from
torch's network on a test input (NeuralDemag checks): the torch path runs instead
(`why_not()`, NeuralDemag.compiled_why and `nmag run` say why). NMAG_NEURAL_KERNEL=0 turns it
off.

Threads: each call runs on the calling thread only and releases the GIL (ctypes), so the near
field's FFT can run at the same time on the one-thread worker (engine.neural.overlap).
"""
from __future__ import annotations

import ctypes
import logging
import struct
import threading
from pathlib import Path

import numpy as np
import torch

from .. import native

SOURCE = Path(__file__).with_name("kernels") / "far.c"
FLAGS = ("-O3", "-std=c99", "-ffp-contract=fast", "-fPIC", "-shared")
# the shapes far.c has loops for: c = 8 channels; E_1's inputs 3 nz; stem 4 (U_0: 16 x 3 nz outputs)
CHANNELS, INPUTS, STEM = 8, (3, 6, 9, 12), 4
# nm_run's records (far.c): OP_FIELDS 64-bit fields, the first the operation
OP_FIELDS, OP_CONV, OP_DOWN, OP_DECODE, OP_LOAD, OP_POOL, OP_U0_MASKED = 22, 1, 2, 3, 4, 5, 6
# the fewest coarse rows per thread for which finish() shares U_0 with a helper thread (a hand-off
# costs tens of microseconds: 256^2 has 64 rows)
MIN_ROWS_TO_SHARE = 64

_log = logging.getLogger(__name__)


def _ok(code: int) -> None:
    """far.c's status: 0, or a shape it has no loops for (excluded when built)."""
    if code:
        raise RuntimeError("far.c: no loop for this shape")


def _u0_rows(half) -> tuple:
    """nm_u0's coarse row ranges (1-based, inclusive): all of them, and the two halves split
    after row `half` (see CompiledFar.shared_half)."""
    return (1, 1 << 30), (1, half), (None if half is None else half + 1, 1 << 30)


def _begin(near_field) -> None:
    """Start near_field's work on the near-field worker where it has a `begin` (tiles shared by two
    threads, engine.neural.near_fft): the worker transforms its half while this thread runs the
    levels, which read the same input only."""
    begin = getattr(near_field, "begin", None)
    if begin is not None:
        begin()


def _by_rows(fn, helper, half, whole: tuple, first: tuple, second: tuple) -> None:
    """fn(*whole) on this thread; where rows are shared (half is not None), fn(*first) here and
    fn(*second) on `helper`'s thread meanwhile (each call releases the GIL)."""
    if half is None:
        fn(*whole)
        return
    job = helper.submit(fn, *second)
    try:
        fn(*first)
    finally:
        job.result()


# the build, the cache and their rules: engine.native; _declare is looked up at each load (tests
# replace it)
_native = native.NativeLibrary(SOURCE, "far", FLAGS, declare=lambda lib: _declare(lib),
                               env_switch="NMAG_NEURAL_KERNEL", what="the compiled learned part",
                               logger=_log, building="the network's learned part")
_unsafe_ancestor = native.unsafe_ancestor
STALE_BUILD_S = native.STALE_BUILD_S   # a killed build's temporary file is removed after this (s)


def why_not() -> str | None:
    """Why the compiled learned part is not in use (None where it is, or before the first try)."""
    return _native.why_not()


def forget() -> None:
    """Build or load the library again on next use (tests change the compiler and the cache)."""
    _native.forget()


def library():
    """The compiled far.c (a ctypes library), built on first use; None where it cannot be."""
    return _native.library()


def _declare(lib) -> None:
    P, I, F, L = ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_ssize_t
    lib.nm_conv.argtypes = [P, I, I, P, P, I, I, I]
    lib.nm_conv.restype = I
    lib.nm_decode.argtypes = [P, I, P, I, I, F, P, I]
    lib.nm_decode.restype = None
    lib.nm_u0.argtypes = [P, I, P, I, I, I, I, F, P, L, L, L, P, L, L, L, I, I]
    lib.nm_u0.restype = I
    lib.nm_u0_masked.argtypes = [P, I, P, I, I, I, I, F, P, L, L, L, P, L, L, L, P, L, L, I, I]
    lib.nm_u0_masked.restype = I
    lib.nm_load.argtypes = [P, I, L, L, L, P, L, L, P, L, L, L, I, I, I, I, I]
    lib.nm_load.restype = None
    lib.nm_pool.argtypes = [P, L, L, L, I, I, I, I, P, I, I, I, P]
    lib.nm_pool.restype = None
    lib.nm_down.argtypes = [P, I, I, I, I, P, I]
    lib.nm_down.restype = None
    lib.nm_run.argtypes = [P, I]
    lib.nm_run.restype = I


class _Map:
    """A channels-last feature map with a zero border: buffer (h + 2 b, w + 2 b, c) float32."""

    def __init__(self, h: int, w: int, c: int, border: int):
        self.h, self.w, self.c, self.b = h, w, c, border
        self.buf = np.zeros((h + 2 * border, w + 2 * border, c), np.float32)
        self.row = w + 2 * border                    # padded row length, pixels
        self.base = self.buf.ctypes.data

    def at(self, y: int, x: int) -> int:
        """Address of padded pixel (y, x) (the border counts: (b, b) is the interior's corner)."""
        return self.base + ((y * self.row + x) * self.c) * 4

    @property
    def interior(self) -> int:
        return self.at(self.b, self.b)


def _pack(weight: torch.Tensor, shuffled_channels: int = 0) -> np.ndarray:
    """conv2d weight (out, in, k, k) -> [ky][kx][in][out], float32, contiguous. With
    shuffled_channels = c (a convolution before a pixel shuffle by 2 into a channels-last map),
    the outputs c f^2 + i f + j are reordered to (i f + j) c + c, so that each fine pixel's c
    channels lie together."""
    w = weight.detach().float().cpu()
    if shuffled_channels:
        c = shuffled_channels
        f2 = w.shape[0] // c
        w = w[[ch * f2 + ij for ij in range(f2) for ch in range(c)]]
    return np.ascontiguousarray(w.permute(2, 3, 1, 0).numpy())


class CompiledFar:
    """net.combine(near, net.far(x)) for one (1, 3 nz, ny, nx) float32 CPU sample on this grid,
    by far.c. Build with `build()` (None where the library or this network's shape is not
    served). features(x) runs every level but the last; finish(near) adds the last level's
    prolongation to the near field, so the near field may be computed meanwhile elsewhere."""

    def __init__(self, lib, net, ny: int, nx: int):
        self.lib, self.ny, self.nx = lib, int(ny), int(nx)
        c, C, stem = net.c, net.cio, net.stem
        if c != CHANNELS or C not in INPUTS or stem != STEM or net.u0_kernel not in (1, 3) or net.coarsest < 5:
            raise ValueError(f"no compiled loops for channels {c}, inputs {C}, stem {stem}")
        self.C, self.stem, self.scale = C, stem, float(net.far_scale)
        self.w = {n: _pack(getattr(net, n).weight) for n in ("E1", "E", "U0")}
        self.w.update({n: _pack(getattr(net, n).weight, c) for n in ("U1", "U")})
        self.wB = [_pack(b.weight) for b in net.B]
        h, w = net.deep_enough_shape(self.ny, self.nx)   # vacuum up to MIN_SIDE, as torch's path pads
        for _ in range(2 if stem == 4 else 1):
            h, w = (h + 1) // 2, (w + 1) // 2
        self.pooled = _Map(h, w, C, 2)
        self.pool_row = np.zeros(w, np.float32)
        # a_1, a_2, ... down to the coarsest grid (the decoder writes d_l over a_l in place), and
        # the pooled input of each deeper level. The fold NeuralDemag precomputes for torch is not
        # used: here the coarse levels cost less than its matrix product (100 x 25: 28 against 20 us)
        self.levels = [_Map(h + 2, w + 2, c, 1)]
        self.pools = []
        while max(self.levels[-1].h, self.levels[-1].w) > net.coarsest:
            a = self.levels[-1]
            q = _Map((a.h + 1) // 2, (a.w + 1) // 2, c, 2)
            self.pools.append(q)
            self.levels.append(_Map(q.h + 2, q.w + 2, c, 1))
        last = self.levels[-1]
        self.spare = _Map(last.h, last.w, c, 1)
        self.ops = self._plan(net)
        self._busy = threading.Lock()   # one evaluation at a time: the level buffers are shared
        # the fixed addresses each call passes (numpy's .ctypes builds an object per reading)
        K = self.w["U0"].shape[0]
        a = self.levels[0]
        self._ptr = {"ops": self.ops.ctypes.data, "pool_row": self.pool_row.ctypes.data}
        # nm_u0's arguments before its output: U_0's input window, weights and shape
        self._u0_head = (a.at(0, 0) if K == 3 else a.at(1, 1), a.row, self.w["U0"].ctypes.data, K,
                         self.stem ** 2 * self.C, self.ny, self.nx, self.scale)

    @classmethod
    def build(cls, net, ny: int, nx: int):
        """The compiled learned part for this grid, or None (no library, a shape far.c has no
        loops for, a network other than LeanFilmNet)."""
        if not all(hasattr(net, a) for a in ("stem", "u0_kernel", "coarsest", "far_scale", "deep_enough_shape")):
            return None
        lib = library()
        if lib is None:
            return None
        try:
            return cls(lib, net, ny, nx)
        except ValueError:
            return None

    def _plan(self, net) -> np.ndarray:
        """Every level's operations for nm_run, fixed for this grid (the buffers never move)."""
        c, ops = net.c, []
        p, a1 = self.pooled, self.levels[0]
        ops.append((OP_CONV, p.at(0, 0), p.row, self.C, self.w["E1"].ctypes.data, a1.interior, a1.h, a1.w, a1.row))
        for q, prev, a in zip(self.pools, self.levels, self.levels[1:]):
            ops.append((OP_DOWN, prev.interior, prev.row, c, prev.h, prev.w, q.interior, q.row))
            ops.append((OP_CONV, q.at(0, 0), q.row, c, self.w["E"].ctypes.data, a.interior, a.h, a.w, a.row))
        src, dst = self.levels[-1], self.spare
        for wb in self.wB:
            ops.append((OP_CONV, src.at(0, 0), src.row, c, wb.ctypes.data, dst.interior, dst.h, dst.w, dst.row))
            src, dst = dst, src
        self.levels[-1], self.spare = src, dst     # an odd number of bottom convolutions ends in the spare
        for l in range(len(self.levels) - 2, -1, -1):
            a, d = self.levels[l], self.levels[l + 1]
            W = self.w["U1"] if l == 0 else self.w["U"]
            ops.append((OP_DECODE, d.at(0, 0), d.row, W.ctypes.data, a.h, a.w, 500, a.interior, a.row))   # alpha 1/2
        table = np.zeros((len(ops), OP_FIELDS), np.int64)
        for k, op in enumerate(ops):
            table[k, :len(op)] = op
        return table

    def _check(self, name: str, t: torch.Tensor) -> None:
        """far.c reads raw memory: anything but a (1, 3 nz, ny, nx) float32 CPU tensor of this
        grid would be read as garbage or past its end."""
        want = (1, self.C, self.ny, self.nx)
        if t.dtype != torch.float32 or t.device.type != "cpu" or tuple(t.shape) != want:
            raise ValueError(f"CompiledFar: {name} must be float32 on the CPU of shape {want}, "
                             f"got {t.dtype} on {t.device} of shape {tuple(t.shape)}")

    def features(self, x: torch.Tensor) -> None:
        """Every level of the learned part for x (1, 3 nz, ny, nx) float32 on the CPU, into the
        level buffers; finish() then gives the field."""
        self._check("x", x)
        p = self.pooled
        sc, sy, sx = x.stride()[1:]
        self.lib.nm_pool(x.data_ptr(), sc, sy, sx, self.C, self.ny, self.nx, self.stem, p.interior, p.h, p.w, p.row,
                         self._ptr["pool_row"])
        _ok(self.lib.nm_run(self._ptr["ops"], len(self.ops)))

    def shared_half(self, sharing: bool) -> int | None:
        """Where U_0's coarse rows are shared with a helper thread (`sharing`, and a grid of at
        least 2 MIN_ROWS_TO_SHARE coarse rows: a hand-off costs tens of microseconds), the last
        row of the calling thread's half; else None."""
        rows = (self.ny + self.stem - 1) // self.stem
        return rows // 2 if sharing and rows >= 2 * MIN_ROWS_TO_SHARE else None

    def finish(self, near: torch.Tensor, helper=None) -> torch.Tensor:
        """near + far_scale x the learned part's last prolongation, a new (1, 3 nz, ny, nx)
        tensor; near (any strides) is only read, so it may be a view of the near field's FFT
        buffer. With `helper` (an executor with a thread of its own, such as
        engine.neural.overlap.near_worker()) it computes the lower half of the rows meanwhile
        (1024^2, two threads: 10 -> 5 ms)."""
        self._check("near", near)
        out = torch.empty(near.shape, dtype=torch.float32)
        half = self.shared_half(helper is not None)
        _by_rows(lambda a, b: self._u0(out, near, (a, b)), helper, half, *_u0_rows(half))
        return out

    def fuses(self, near_field, helper=None) -> bool:
        """Whether in_tiles can run with near_field: a one-layer film's near field in tiles
        (engine.neural.near_fft.TiledNearFieldFFT) whose first cells fall on the coarse grid
        (tiles a multiple of the stem); tiles on one thread only where U_0's rows would not be
        shared with `helper` (as finish() shares them), shared tiles share U_0 tile by tile."""
        return (self.C == 3 and callable(getattr(near_field, "for_each_tile", None))
                and all(y % self.stem == 0 and x % self.stem == 0 for y, x in near_field.origins)
                and (near_field.shared or self.shared_half(helper is not None) is None))

    def in_tiles(self, x: torch.Tensor, near_field) -> torch.Tensor:
        """The field of x (1, 3, ny, nx) as __call__ gives it, with the near field computed tile by
        tile after the levels (near_field.for_each_tile, gathered from x; shared tiles half on
        the near-field worker) and U_0 added to each tile's near field while that is in the CPU's
        cache (see fuses): a new tensor."""
        self._check("x", x)
        with self._busy:
            self.features(x)
            out = torch.empty((1, self.C, self.ny, self.nx), dtype=torch.float32)
            near_field.for_each_tile(lambda at, field: self.u0_tile(out[0], field, *at), x)
        return out

    def u0_tile(self, dst: torch.Tensor, field: torch.Tensor, y: int, x: int, mask: torch.Tensor | None = None) -> None:
        """U_0's prolongation plus the near field over one tile: field (3, 1, h, w) the tile's near
        field, whose first cell (y, x) (multiples of the stem) is dst's (dst (3, ny, nx), float32;
        with `mask` (ny, nx) bool: float64 and times the mask, as nm_u0_masked). U_0's input is
        the level buffer from the tile's coarse cell on, so its window reads the neighbouring
        tiles' coarse cells as the whole grid's pass does."""
        in0, irow, w, K, CO, _, _, alpha = self._u0_head
        f, d = field[:, 0], dst[:, y:, x:]
        at = in0 + ((y // self.stem) * irow + x // self.stem) * CHANNELS * 4
        head = (at, irow, w, K, CO, f.shape[-2], f.shape[-1], alpha, d.data_ptr(), *d.stride(), f.data_ptr(), *f.stride())
        if mask is None:
            _ok(self.lib.nm_u0(*head, 1, 1 << 30))
        else:
            m = mask[y:, x:]
            _ok(self.lib.nm_u0_masked(*head, m.data_ptr(), *m.stride(), 1, 1 << 30))

    def prolonged(self) -> torch.Tensor:
        """far_scale x the learned part's last prolongation alone, a new (1, 3 nz, ny, nx)
        tensor: what finish() adds to the near field, for a caller that adds it itself."""
        out = torch.empty((1, self.C, self.ny, self.nx), dtype=torch.float32)
        self._u0(out, None)
        return out

    def _u0(self, out: torch.Tensor, near: torch.Tensor | None, rows: tuple = (1, 1 << 30)) -> None:
        src, (nc, ny_, nx_) = (None, (0, 0, 0)) if near is None else (near.data_ptr(), near.stride()[1:])
        _ok(self.lib.nm_u0(*self._u0_head, out.data_ptr(), *out.stride()[1:], src, nc, ny_, nx_, *rows))

    def __call__(self, x: torch.Tensor, near: torch.Tensor, helper=None) -> torch.Tensor:
        """The field: near + the learned part of x (see finish)."""
        with self._busy:
            self.features(x)
            return self.finish(near, helper)

    def levels_then(self, x: torch.Tensor, near_field, helper=None) -> torch.Tensor:
        """The same with the near field computed after the levels: near_field() (begun first where
        it has a `begin`, so that the worker's share of it runs beside the levels)."""
        with self._busy:
            _begin(near_field)
            self.features(x)
            return self.finish(near_field(), helper)

    def bind(self, x: torch.Tensor) -> "BoundFar":
        """This learned part bound to one input buffer x that never moves (see BoundFar)."""
        return BoundFar(self, x)

    def alone(self, x: torch.Tensor) -> torch.Tensor:
        """The learned part of x alone, prolonged to the grid (a new tensor; add the near field)."""
        with self._busy:
            self.features(x)
            return self.prolonged()


class BoundFar:
    """A CompiledFar bound to one input buffer x (1, 3 nz, ny, nx) float32 that never moves (the
    near field's FFT input, engine.neural.demag) and to an output buffer of its own, each checked
    once here: a call passes addresses and strides worked out in advance. On standard problem
    4's 100 x 25 grid the checks and tensor queries of features() and finish() cost as much as
    the compiled work itself. With a helper thread, rows are shared as finish() shares them."""

    def __init__(self, cf: CompiledFar, x: torch.Tensor):
        cf._check("x", x)
        self.cf, self.x = cf, x          # x is kept referenced: its address stays valid
        self.out = torch.empty((1, cf.C, cf.ny, cf.nx), dtype=torch.float32)
        p = cf.pooled
        self._pool = (x.data_ptr(), *x.stride()[1:], cf.C, cf.ny, cf.nx, cf.stem, p.interior, p.h, p.w, p.row,
                      cf._ptr["pool_row"])
        self._run = (cf._ptr["ops"], len(cf.ops))
        self._u0 = (*cf._u0_head, self.out.data_ptr(), *self.out.stride()[1:])
        self._near = (None, None)        # the last near field tensor seen, and its address and strides
        self._program = None             # field_of_state's StateProgram for the last Ms and mask
        self._load = (*x.stride()[1:], cf.C, cf.ny, cf.nx)
        self._field_shape = (cf.C, 1, cf.ny, cf.nx)

    def _levels_then_near(self, near_field) -> tuple:
        """The learned part's levels of what x holds, then near_field() (a (1, 3 nz, ny, nx)
        float32 tensor, any strides; computed here so that it may read x's buffer first): its
        address and strides, checked once per tensor (an FFT pipeline that returns its own
        buffer: once)."""
        cf, lib = self.cf, self.cf.lib
        _begin(near_field)
        lib.nm_pool(*self._pool)
        _ok(lib.nm_run(*self._run))
        near = near_field()
        if near is not self._near[0]:
            cf._check("near", near)
            self._near = (near, (near.data_ptr(), *near.stride()[1:]))
        return self._near[1]

    def __call__(self, near_field, helper=None) -> torch.Tensor:
        """The field of what x holds into self.out (1, 3 nz, ny, nx), overwritten by the next
        call: the levels, near_field(), then U_0 plus it (with `helper` as finish())."""
        cf, lib = self.cf, self.cf.lib
        with cf._busy:
            tiles = getattr(near_field, "for_each_tile", None)   # set where CompiledFar.fuses
            if tiles is not None:
                lib.nm_pool(*self._pool)   # the levels, then each tile's near field and U_0 over it
                _ok(lib.nm_run(*self._run))
                tiles(lambda at, field: cf.u0_tile(self.out[0], field, *at))
                return self.out
            near = self._levels_then_near(near_field)
            half = cf.shared_half(helper is not None)
            _by_rows(lambda a, b: _ok(lib.nm_u0(*self._u0, *near, a, b)), helper, half, *_u0_rows(half))
        return self.out

    def takes_state(self, m: torch.Tensor, Ms: torch.Tensor, mask: torch.Tensor) -> bool:
        """Whether field_of_state can read these: a one-layer film's float64 m (3, 1, ny, nx), Ms
        of its dtype and mask (bool), both (1, ny, nx), on the CPU."""
        shape = self._field_shape
        return (self.cf.C == 3 and m.dtype == torch.float64 and Ms.dtype == torch.float64 and mask.dtype == torch.bool
                and m.shape == shape and Ms.shape == shape[1:] and mask.shape == shape[1:]
                and m.device.type == Ms.device.type == mask.device.type == "cpu")

    def field_of_state(self, m: torch.Tensor, Ms: torch.Tensor, mask: torch.Tensor, near_field,
                       helper=None) -> torch.Tensor | None:
        """H = mask (near + learned part) of M = Ms m as a new float64 (3, 1, ny, nx) tensor, with
        M's float32 copy written into x (the near field's FFT input) and the mask and float64
        written by U_0's pass (nm_load, nm_u0_masked): the two torch operations these replace took
        8 of 40 ms at 1024^2 on two threads. The passes run as StatePrograms, built once per (Ms,
        mask, helper or not): on standard problem 4's 100 x 25 the checks, address queries and
        argument conversions of five separate calls took about 30 of 180 us per evaluation. With
        `helper` (as finish()) the lower half of the rows is loaded and prolonged on its thread.
        None (nothing computed) where takes_state says it cannot read these inputs."""
        prog = self._program
        if prog is None or not prog.serves(m, Ms, mask, helper is not None):
            if not self.takes_state(m, Ms, mask):
                return None
            prog = self._program = StateProgram(self, Ms, mask, helper is not None)
        H = torch.empty(self._field_shape, dtype=torch.float64)
        with self.cf._busy:
            prog.run(m, H, near_field, helper)
        return H


class StateProgram:
    """BoundFar.field_of_state's compiled passes as nm_run records (far.c) for one Ms and mask
    (their addresses are in the records, so both are kept referenced): a call writes only m's
    address and strides and H's address into them, and runs M's load with the levels in one
    call and U_0's masked pass in another, around the near field's FFT. With a helper, the
    load's rows and U_0's coarse rows are shared as finish() shares them."""

    def __init__(self, bound: BoundFar, Ms: torch.Tensor, mask: torch.Tensor, sharing: bool):
        cf, x = bound.cf, bound.x
        # not the BoundFar itself (which keeps this program): no cycle keeps an old Ms alive
        self.cf, self.field_shape = cf, bound._field_shape
        self.Ms, self.mask, self.sharing = Ms, mask, sharing
        self._layout = self._layout_of(Ms, mask)
        self.half = half = cf.shared_half(sharing)
        cut = None if half is None else cf.stem * half
        ss, ks = Ms.stride(), mask.stride()
        alpha = struct.unpack("<I", struct.pack("<f", cf.scale))[0]   # U_0's scale as a float's bits
        H_strides = (cf.ny * cf.nx, cf.nx, 1)   # (c, y, x) of a new contiguous H (3, 1, ny, nx)

        def load(y0, y1):   # m's address and strides (fields 1, 3-5) are written per call
            return (OP_LOAD, 0, 8, 0, 0, 0, Ms.data_ptr(), ss[1], ss[2], x.data_ptr(), *bound._load, y0, y1)

        def u0(rows):       # H's address (field 9) per call, the near field's (13-16) when it moves
            return (OP_U0_MASKED, *cf._u0_head[:7], alpha, 0, *H_strides, 0, 0, 0, 0,
                    mask.data_ptr(), ks[1], ks[2], *rows)

        whole, first, second = _u0_rows(half)
        loads = [load(0, cf.ny)] if half is None else [load(0, cut), load(cut, cf.ny)]
        u0s = [u0(whole)] if half is None else [u0(first), u0(second)]
        records = loads + [(OP_POOL, *bound._pool)] + [tuple(r) for r in cf.ops.tolist()] + u0s
        self.table = np.zeros((len(records), OP_FIELDS), np.int64)
        for k, r in enumerate(records):
            self.table[k, :len(r)] = r
        base, row = self.table.ctypes.data, OP_FIELDS * 8
        self._load_rows = range(len(loads))
        self._u0_rows = range(len(records) - len(u0s), len(records))
        # (address, records) of each call: without sharing, the load and the levels are one call;
        # with it, each half of the load is a call of its own before the levels
        apart = 0 if half is None else len(loads)
        self._loads = tuple((base + k * row, 1) for k in self._load_rows[:apart])
        self._levels = (base + apart * row, len(records) - len(u0s) - apart)
        self._u0s = tuple((base + k * row, 1) for k in self._u0_rows)
        self._m_layout = self._near = None

    @staticmethod
    def _layout_of(Ms: torch.Tensor, mask: torch.Tensor) -> tuple:
        return Ms.data_ptr(), Ms.shape, Ms.stride(), mask.data_ptr(), mask.shape, mask.stride()

    def serves(self, m: torch.Tensor, Ms: torch.Tensor, mask: torch.Tensor, sharing: bool) -> bool:
        """Whether this program reads these (its Ms and mask, where and as they were laid out, and
        an m of the shape and dtype it was checked for) the same way (sharing)."""
        return (Ms is self.Ms and mask is self.mask and sharing == self.sharing and m.dtype is torch.float64
                and m.is_cpu and m.shape == self.field_shape and self._layout_of(Ms, mask) == self._layout)

    def run(self, m: torch.Tensor, H: torch.Tensor, near_field, helper) -> None:
        """H (a new float64 tensor of the field's shape, contiguous) = the field of Ms m."""
        t, lib = self.table, self.cf.lib
        layout = m.stride()
        for k in self._load_rows:
            t[k, 1] = m.data_ptr()
            if layout != self._m_layout:
                t[k, 3:6] = layout[0], layout[2], layout[3]
        self._m_layout = layout
        H_at = H.data_ptr()
        for k in self._u0_rows:
            t[k, 9] = H_at
        begin = getattr(near_field, "begin", None)
        if self._loads:
            _by_rows(lambda a, n: lib.nm_run(a, n), helper, self.half, (), self._loads[0], self._loads[1])
            if begin is not None:
                begin()
            _ok(lib.nm_run(*self._levels))
        elif begin is None:
            _ok(lib.nm_run(*self._levels))   # the load, the pooling and the levels in one call
        else:   # the load is the levels' first record: begin the near field once M is in its buffer
            at, count = self._levels
            _ok(lib.nm_run(at, 1))
            begin()
            _ok(lib.nm_run(at + OP_FIELDS * 8, count - 1))
        tiles = getattr(near_field, "for_each_tile", None)   # set where CompiledFar.fuses
        if tiles is not None:   # each tile's near field, U_0 over it while in cache
            tiles(lambda at, field: self.cf.u0_tile(H[:, 0], field, *at, self.mask[0]))
            return
        near = near_field()
        if near is not self._near:
            self.cf._check("near", near)
            at = (near.data_ptr(), *near.stride()[1:])
            for k in self._u0_rows:
                t[k, 13:17] = at
            self._near = near
        if self.half is None:
            _ok(lib.nm_run(*self._u0s[0]))
        else:
            _by_rows(lambda a, n: _ok(lib.nm_run(a, n)), helper, self.half, (), self._u0s[0], self._u0s[1])
