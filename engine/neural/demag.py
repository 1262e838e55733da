"""NeuralDemag: the lean film network behind the engine's Demag interface (method "neural").

The model card (resources/neural/model_card.json) lists a small family of trained networks,
each for one kind of film (number of layers nz, a range of cell aspects dz/dx, square cells
dx = dy); the constructor picks the member that matches the grid and, for a dz/dx other than its
trained one, serves it with the exact near kernel of the actual cell (LeanFilmNet.serve). Inside
the card the network's field is used as it is: no approximate corrections. Outside it (another
dz/dx, nz, dx != dy, or a weights file made for another cell) the constructor warns
(warnings.warn and `self.warnings`, for the GUI's log) and the field is the exact FFT one: never
a rough guess.

The network is linear in M, so H = net(M) directly in A/m (no Ms scaling); it runs in float32
whatever the state's precision (its error, ~1 %, is far above float32 rounding). Per call on
small grids nothing is rebuilt: weights are fixed tensors, the input is a view of M (nz = 1),
and the thread count is torch's current one (never raised here). On two or more threads the
near field and the learned part may run side by side, one thread each (engine.neural.overlap),
or the grid in two parts, one per thread (engine.neural.two_parts), where that was timed faster
for the grid (_choose_way).

With probe_every > 0 the Simulation's after_step hook computes the exact FFT field beside the
network's every probe_every steps and stores `last_probe` (engine.neural.probe.ProbeResult).
"""
from __future__ import annotations

import copy
import functools
import threading

import torch

from ..demag import Demag, FFTDemag
from ..errors import warn_at_caller
from ..threads import torch_threads
from ..resources import resource_path
from .overlap import near_worker, split_compiled, split_forward
from .card import ASPECT_TOLERANCE, DEFAULT_CARD, ModelCard, load_card   # noqa: F401 - load_card re-exported
from .weights import load_weights


@functools.lru_cache(maxsize=8)
def _load(path: str):
    return load_weights(path)


def _default_weights_path():
    """The default member's file (for callers that want 'the shipped network')."""
    card = ModelCard.load()
    m = card.default_member()
    return str(resource_path("neural/" + m["file"])) if m else None


# the largest grid on which the two branches may run side by side (_choose_way times the ways
# up to it): at 2048^2 splitting each operation won (two threads, passive OpenMP waits: 147-177
# against 167-197 ms per evaluation), and timing a grid that large takes seconds
SPLIT_MAX_CELLS = 1024 * 1024

# how an evaluation uses two or more threads (NeuralDemag._choose_way)
THREADS, SIDE_BY_SIDE, ONE_THREAD = "threads", "side by side", "one thread"
TWO_PARTS = "two parts"   # engine.neural.two_parts: the grid cut in two, one part per thread

# the largest grid the two-parts way is timed on: above it the near field's tiles, shared with
# the worker, are the way (whole-part boxes leave the cache)
TWO_PARTS_MAX_CELLS = 640 * 640


def _sizes_as_constants(graph) -> None:
    """Fold a trace's size arithmetic into constants, in place. A trace records every reading of a
    tensor's shape and the integer arithmetic on it (pooling's odd-side test, the strided
    addition's block counts) as some hundred scalar operations that run on every call; the trace
    is kept for one grid, whose sizes it recorded, so they are constants (128^2: the learned part
    380 -> 340 us, the same numbers). Private torch passes: where they fail the trace stays as it
    was."""
    try:
        torch._C._jit_pass_peephole(graph, False)   # aten::size of a tensor of recorded shape -> constant
        torch._C._jit_pass_constant_propagation(graph)
        torch._C._jit_pass_dce(graph)
    except Exception:   # noqa: BLE001 - an optimisation only
        pass


class _BufferPlan:
    """For one grid and thread count: the near field's FFT (engine.neural.near_fft) whose input
    buffer h writes M into, that buffer as the network's (1, 3, ny, nx) input, and the compiled
    learned part bound to it (engine.neural.compiled.BoundFar); `shares_u0`: on two or more
    threads a grid with enough rows shares U_0's (and for float64 states M's loading) with the
    near-field worker (engine.neural.overlap.near_worker; CompiledFar.shared_half)."""

    def __init__(self, near, compiled, threads: int):
        self.near, self.buf = near, near.input_view()        # (3, 1, ny, nx) float32, padded rows
        self.x = self.buf.transpose(0, 1)
        self.shares_u0 = compiled.shared_half(threads > 1) is not None
        self.bound = compiled.bind(self.x)
        self._H = self._view = None
        if compiled.fuses(near, self.helper()):   # tiles: U_0 over each tile's near field, after the levels
            self.for_each_tile = near.for_each_tile
        elif getattr(near, "shared", False):   # tiles shared with the worker: its half starts before the levels
            self.begin = near.begin

    def helper(self):
        """The near-field worker where U_0's rows are shared with it (engine.neural.overlap), else None."""
        return near_worker() if self.shares_u0 else None

    def __call__(self) -> torch.Tensor:
        """The near field of what the buffer holds, as a (1, 3, ny, nx) view; the same view object
        while the pipeline returns the same buffer (FFTW), so BoundFar checks it once. (The plan
        is the near field's callable for BoundFar, with a `begin` where the near field has one.)"""
        H = self.near.convolve_input()
        if H is not self._H:
            self._H, self._view = H, H.transpose(0, 1)
        return self._view


class _NearAfterLevels:
    """The near field of x by shared tiles (near_fft.TiledNearFieldFFT) for CompiledFar.levels_then:
    begin() writes x in and starts the worker's half; the call does this thread's half."""

    def __init__(self, near, x):
        self.near, self.x = near, x

    def begin(self) -> None:
        self.near.begin(self.x)

    def __call__(self) -> torch.Tensor:
        return self.near.channels(self.near.convolve_input())


class NeuralDemag(Demag):
    """Demag field of a film by the lean network. See the module docstring."""
    name = "demag"
    method = "neural"

    def __init__(self, n, d, dtype=torch.float32, device="cpu", probe_every=0, weights=None, fft="auto"):
        self.n, self.d = tuple(int(v) for v in n), tuple(float(v) for v in d)
        self.fft = fft   # the exact FFT's backend (solver.fft) for the fallback and the probe
        self.dtype, self.device = dtype, device
        self.net_dtype = torch.float32 if dtype in (torch.float32, torch.float64) else dtype
        self.probe_every = int(probe_every or 0)
        self.card = ModelCard.load()
        self.warnings: list[str] = []
        self.fallback = None
        self.net, self.meta, self.member = None, {}, None
        # how two or more threads are used (see _choose_way): THREADS, SIDE_BY_SIDE, ONE_THREAD or
        # TWO_PARTS; way_times_s: the timings it chose by
        self.way, self.way_times_s = THREADS, None
        self._two_parts = None   # engine.neural.two_parts.TwoParts where _choose_way built one
        self.compiled = None   # the learned part as compiled C, see _compiled_far
        self.compiled_why = None   # why it is not, where it is not
        # how the learned part runs: "compiled", "traced" or "eager" (torch); None where the
        # exact FFT runs instead (outside the card)
        self.learned_part = None
        # one evaluation at a time: the near field's FFT buffers and the compiled part's level
        # buffers belong to this instance (two threads calling at once got wrong fields)
        self._evaluating = threading.Lock()
        self._buffer_plans = {}   # torch threads -> the _BufferPlan h writes M through, or None
        nx, ny, nz = self.n
        dx, dy, dz = self.d
        self.aspect = dz / dx
        if isinstance(weights, torch.nn.Module):
            net, self.weights = weights, "<in memory>"
        elif weights is not None:
            self.weights = str(weights)
            net, self.meta = _load(self.weights)
        else:
            self.member = self.card.member_for(self.n, self.d)
            net = None
            if self.member is not None:
                self.weights = str(resource_path("neural/" + self.member["file"]))
                net, self.meta = _load(self.weights)
            else:
                self.weights = None
        reasons = self.card.outside(self.n, self.d) if weights is None else []
        if net is not None:
            cfg = getattr(net, "config", {})
            t_nz, t_aspect = int(cfg.get("nz", 1)), float(cfg.get("aspect", 1.0))
            if nz != t_nz:
                reasons.append(f"the network is for films of {t_nz} layer(s), this grid has nz = {nz}")
            # the card's member serves its measured dz/dx range; weights handed in, their own dz/dx
            serves_range = self.member is not None and hasattr(net, "serve")
            lo, hi = ModelCard.aspect_range(self.member) if serves_range else (t_aspect, t_aspect)
            if not lo * (1 - ASPECT_TOLERANCE) <= self.aspect <= hi * (1 + ASPECT_TOLERANCE):
                reasons.append(f"the network was trained for cells with dz/dx = {t_aspect:g}, this grid has "
                               f"dz/dx = {self.aspect:.4g}")
            if abs(dx - dy) > 1e-6 * dx:
                reasons.append(f"the network knows square cells only (dx = dy), this grid has dx = {dx * 1e9:g} nm, "
                               f"dy = {dy * 1e9:g} nm")
        if reasons or net is None:
            if not reasons:
                reasons = ["no network in the model card matches this grid"]
            self._warn("neural demag: outside the model card (" + "; ".join(dict.fromkeys(reasons))
                       + "): using the exact FFT demag instead")
            self.fallback = FFTDemag(self.n, self.d, dtype, device, fft=fft)
        else:
            net = copy.deepcopy(net)   # own copy: .to(device) and serve() must not change a shared module
            if hasattr(net, "serve") and self.aspect != float(net.config.get("aspect", 1.0)):
                net.serve(self.aspect)   # inside the member's range: exact near kernel of this cell
            self.net = net.to(device=device, dtype=self.net_dtype).eval()
            for p in self.net.parameters():
                p.requires_grad_(False)
            # the learned part as run here: compiled where a C compiler is (engine.neural.compiled),
            # else traced where that worked, else eager; the whole network with it, one way
            # (_run) or with the near field beside it (_run_split, engine.neural.overlap)
            self.compiled = self._compiled_far(self.net)
            traced = None
            if self.compiled is None:
                if hasattr(self.net, "fold"):
                    self.net.fold(ny, nx)   # the coarse levels as one matrix product (exact)
                traced = self._traced_far(self.net)
            self._far = traced if traced is not None else getattr(self.net, "far", None)
            self.learned_part = "compiled" if self.compiled is not None else "traced" if traced is not None else "eager"
            if self.compiled is not None:
                self._run = self._run_compiled
                self._run_split = functools.partial(split_compiled, self.net, self.compiled)
            else:
                self._run = functools.partial(self.net.forward, far=traced) if traced is not None else self.net
                self._run_split = lambda x: split_forward(self.net, self._far, x)
            self.way = self._choose_way()
        self._steps = 0
        self._fft = None
        self.last_probe = None

    @property
    def split(self) -> bool:
        """Side by side: the near field on the worker, the learned part here (engine.neural.overlap)."""
        return self.way == SIDE_BY_SIDE

    @property
    def in_two_parts(self) -> bool:
        """The grid in two parts, one per thread (engine.neural.two_parts)."""
        return self.way == TWO_PARTS and self._two_parts is not None

    @property
    def one_thread(self) -> bool:
        """The whole evaluation on one thread, however many the caller has."""
        return self.way == ONE_THREAD

    def _compiled_far(self, net):
        """The learned part compiled for this grid (engine.neural.compiled.CompiledFar), checked
        against the eager network on a random input; None where it is not built (no compiler, a
        shape it has no loops for, NMAG_NEURAL_KERNEL=0, not float32 on the CPU) or differs."""
        if str(self.device) != "cpu" or self.net_dtype != torch.float32:
            self.compiled_why = f"it serves float32 on the CPU, this network runs {self.net_dtype} on {self.device}"
            return None
        from .compiled import CompiledFar, why_not
        nx, ny, nz = self.n
        cf = CompiledFar.build(net, ny, nx)
        if cf is None:
            self.compiled_why = why_not() or "no compiled loops for this network's shape"
            return None
        x = torch.randn(1, 3 * nz, ny, nx, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            y0, y1 = net(x), cf(x, net.near(x))
        if not torch.allclose(y0, y1, rtol=1e-5, atol=1e-6 * float(y0.abs().max())):
            self.compiled_why = "its field differed from torch's network on a test input"
            return None
        return cf

    def _run_compiled(self, x):
        """One way, the compiled learned part after the near field (on the process's threads);
        on two or more threads U_0 shares its rows with the near-field worker."""
        helper = near_worker() if torch.get_num_threads() > 1 else None
        nx, ny, _ = self.n
        near = self.net._near_fft.get((ny, nx, torch.get_num_threads()))
        if self.compiled.fuses(near, helper):   # tiles: U_0 over each tile's near field, after the levels
            return self.compiled.in_tiles(x, near)
        if getattr(near, "shared", False) and x.shape[0] == 1:
            # tiles shared with the worker: its half begins, then the levels run here beside it
            return self.compiled.levels_then(x, _NearAfterLevels(near, x), helper)
        return self.compiled(x, self.net.near(x, fresh=False), helper)   # finish() only reads the near field

    def _traced_far(self, net):
        """The network's learned part traced for this grid (torch.jit: fewer Python-level
        calls per evaluation, which is what costs on small grids such as standard problem 4's
        100 x 25), checked against the eager network on an input other than the tracing one (a
        value computed outside torch, such as the near field's FFT, would be frozen into a trace:
        that is why only `far` is traced); None where tracing fails or differs."""
        nx, ny, nz = self.n
        if ny * nx > 512 * 512 or str(self.device) != "cpu" or not hasattr(net, "far"):
            return None
        try:
            import warnings as _w
            g = torch.Generator().manual_seed(0)
            x, x2 = (torch.randn(1, 3 * nz, ny, nx, dtype=self.net_dtype, generator=g) for _ in range(2))
            with torch.no_grad(), _w.catch_warnings():
                _w.simplefilter("ignore")
                far = torch.jit.trace_module(net, {"far": x}, check_trace=False).far
                _sizes_as_constants(far.graph)
                run = functools.partial(net.forward, far=far)
                y0, y1 = net(x2), run(x2)
            if torch.allclose(y0, y1, rtol=1e-5, atol=1e-6 * float(y0.abs().max())):
                return far
        except Exception:   # noqa: BLE001 - tracing is an optimisation only
            pass
        return None

    def _choose_way(self, repeats: int | None = None) -> str:
        """How this grid uses two or more threads, timed here: THREADS (each operation split over
        them), SIDE_BY_SIDE (the near field and the learned part on one thread each,
        engine.neural.overlap), ONE_THREAD (the whole evaluation on one, the others idle) or
        TWO_PARTS (one-layer films up to TWO_PARTS_MAX_CELLS: the grid cut in two, one part's near
        field on the worker beside the levels, engine.neural.two_parts).
        Each way three times in blocks (two warm-up calls, then `repeats` timed ones: 3 up to
        256^2 cells, else 2), best of all; another way than THREADS is kept when 5 % faster. (With
        two blocks each, one benchmark run of four, in a slow spell of this shared host (the FFT
        at 1.5x its usual time), kept THREADS at 256^2: 0.75 of the FFT, where the other three
        chose two parts at 0.54-0.57.) Each call comes after a little elementwise work on the
        process's threads, as in a simulation: with spinning OpenMP waits (torch's default) that
        work leaves a thread spinning on the other core, which the side-by-side worker then competes with (256^2, two threads, an FFT
        between calls: 5.4 against 4.0 ms), while with passive waits (engine.threads, the app's
        policy) it is each operation split over two threads that pays, by waking the other
        thread every time (256^2: 7.8 against 2.3 ms; 1024^2: 47 against 42 ms). Timed back to
        back with nothing between, the first case looked the other way round. One thread: at
        256^2 side by side took 1.13-1.32 ms and one thread 1.13 (2026-12-05), the two threads'
        FFTs scaling poorly on this 2-core machine; the exact FFT is raced the same way (its
        fastest thread count). Only with two or more threads, float32 on the CPU, up to
        SPLIT_MAX_CELLS; NMAG_NEURAL_SPLIT=0/1 forces THREADS / SIDE_BY_SIDE."""
        import os
        import time
        forced = os.environ.get("NMAG_NEURAL_SPLIT", "").strip()
        nx, ny, nz = self.n
        runnable = self._far is not None or self.compiled is not None
        if forced in ("0", "1"):
            return SIDE_BY_SIDE if forced == "1" and str(self.device) == "cpu" and runnable else THREADS
        if (torch.get_num_threads() < 2 or str(self.device) != "cpu" or not runnable
                or ny * nx > SPLIT_MAX_CELLS or self.net_dtype != torch.float32):
            return THREADS
        if repeats is None:
            repeats = 3 if ny * nx <= 256 * 256 else 2
        x = torch.randn(1, 3 * nz, ny, nx, generator=torch.Generator().manual_seed(0))
        scratch = torch.empty_like(x)

        def one_thread():
            with torch_threads(1):
                return self._run(x)
        runs = {THREADS: lambda: self._run(x), SIDE_BY_SIDE: lambda: self._run_split(x), ONE_THREAD: one_thread}
        if ny * nx <= TWO_PARTS_MAX_CELLS:
            from .two_parts import TwoParts
            self._two_parts = TwoParts.build(self.compiled, self.net.near_w, ny, nx)
            if self._two_parts is not None:
                runs[TWO_PARTS] = lambda: self._two_parts(x)
        best = dict.fromkeys(runs, float("inf"))
        with torch.no_grad():
            # in blocks, warmed up each time: alternating call by call measured the cost of
            # switching between the ways' FFT buffers (256^2: 2.3 against 1.35 ms)
            for way in tuple(runs) * 3:
                for i in range(2 + repeats):
                    torch.mul(x, 1.0, out=scratch)     # the simulation's work between calls
                    t0 = time.perf_counter()
                    runs[way]()
                    if i >= 2:
                        best[way] = min(best[way], time.perf_counter() - t0)
        self.way_times_s = best
        fastest = min(best, key=best.get)
        return fastest if best[fastest] < 0.95 * best[THREADS] else THREADS

    def _warn(self, msg):
        self.warnings.append(msg)
        warn_at_caller(msg)

    # ------------------------------------------------------------------ the field
    def h_from_M(self, M: torch.Tensor) -> torch.Tensor:
        """H_d in A/m for M in A/m, (3, nz, ny, nx)."""
        if self.fallback is not None:
            return self.fallback.h_from_M(M.to(self.fallback.dtype)).to(M.dtype)
        if self.one_thread and torch.get_num_threads() > 1:
            with torch_threads(1):
                return self.h_from_M(M)
        nz, ny, nx = M.shape[1:]
        with torch.no_grad(), self._evaluating:
            x = M.to(self.net_dtype)
            # layers as channels, layer-major: (3, nz, ny, nx) -> (1, 3 nz, ny, nx)
            x = x[:, 0][None] if nz == 1 else x.transpose(0, 1).reshape(1, 3 * nz, ny, nx)
            # the traced graph is for this grid; any other shape runs the eager network
            if (ny, nx) != (self.n[1], self.n[0]):
                y = self.net(x)
            elif self.split and torch.get_num_threads() > 1:
                y = self._run_split(x)
            elif self.in_two_parts and torch.get_num_threads() > 1:
                y = self._two_parts(x)
            else:
                y = self._run(x)
            y = y[0][:, None] if nz == 1 else y[0].reshape(nz, 3, ny, nx).transpose(0, 1)
            return y.to(M.dtype)

    def h(self, state) -> torch.Tensor:
        if self.one_thread and torch.get_num_threads() > 1:
            with torch_threads(1):
                return self.h(state)
        if self.in_two_parts and torch.get_num_threads() > 1:
            with self._evaluating:
                H = self._two_parts.field_of_state(state.m, state.Ms, state.mask)
            if H is not None:
                return H
        plan = self._buffer_plan(state)
        if plan is not None:
            with self._evaluating:   # C passes and the near field's FFT on buffers that never need grad
                H = plan.bound.field_of_state(state.m, state.Ms, state.mask, plan, plan.helper())
            if H is not None:
                return H
            return self._h_through_buffer(state, plan)
        return self.h_from_M(state.Ms * state.m) * state.mask

    def _buffer_plan(self, state):
        """What h needs to write M straight into the near field's FFT input buffer, for this
        thread count (_BufferPlan): one layer, the compiled learned part, one way (not side by
        side, which goes through h_from_M, nor two parts, which has a state path of its own), a
        CPU state of this grid and an FFT pipeline with a buffer of its own (FFTW, torch); else
        None."""
        nx, ny, nz = self.n
        if (self.compiled is None or nz != 1 or self.split or self.in_two_parts or not state.m.is_cpu
                or state.m.shape[1:] != (nz, ny, nx)):
            return None
        threads = torch.get_num_threads()
        plan = self._buffer_plans.get(threads, False)
        if plan is False:   # the same near-field FFT (whole grid or tiles) the network's near() uses
            from .near_fft import near_field_fft
            near = self.net._near_fft_for((ny, nx, threads), near_field_fft, ny, nx)
            plan = self._buffer_plans[threads] = _BufferPlan(near, self.compiled, threads) \
                if near.input_view() is not None else None
        return plan

    def _h_through_buffer(self, state, plan) -> torch.Tensor:
        """h for one layer without h_from_M's copies: M goes into the near field's FFT input
        buffer as float32 in one pass; the compiled learned part reads it there, the near field
        is transformed in place, and the last prolongation adds it and the mask gives the state's
        dtype. The same numbers as h_from_M (a test checks). On standard problem 4's 100 x 25
        (one thread, interleaved in one process) about 70 us of 240 per call went to h_from_M's
        copies, per-call checks and two torch operations around the compiled part; the exact
        FFT's h took 195 us. Used for states the compiled passes do not read themselves (h
        tries BoundFar.field_of_state first: float64 ones)."""
        with torch.no_grad(), self._evaluating:
            torch.mul(state.Ms, state.m, out=plan.buf)
            H = plan.bound(plan, plan.helper())
            out = torch.empty(state.m.shape, dtype=torch.promote_types(state.Ms.dtype, state.m.dtype))
            return torch.mul(H.transpose(0, 1), state.mask, out=out)

    # ------------------------------------------------------------------ probe hook
    def exact(self) -> FFTDemag:
        if self._fft is None:
            self._fft = FFTDemag(self.n, self.d, torch.float64, self.device, fft=self.fft)
        return self._fft

    def after_step(self, state) -> None:
        self._steps += 1
        if self.fallback is not None:
            return   # the exact FFT runs: no network to check (its float32 noise is not an error)
        if self.probe_every > 0 and self._steps % self.probe_every == 0:
            from .probe import probe
            self.last_probe = probe(state, None, self.n, self.d, self)
