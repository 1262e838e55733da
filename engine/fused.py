"""Fused per-cell arithmetic: kernels compiled by torch.compile, with a silent eager fallback.

Why: outside the FFTs, an LLG evaluation is a few dozen passes over grid-sized arrays (cross
products, prefactors, the exchange stencil, the Runge-Kutta stage sums), each one a separate
torch call that reads and writes the whole grid. torch.compile (inductor: C++ on the CPU, Triton
on a GPU) fuses such a function into one loop. Measured here, one thread, 1024 x 1024 float32:
the LLG torque 12.8 -> 3.0 ms, float64 30 -> 7 ms; at 2048^2 float32 the torque 47-54 -> 11-13
ms, the exchange field 82-89 -> 33-37 ms, a 5-term stage sum 38-43 -> 20-24 ms. Not every
fusion pays: a fused sum-and-max (the RK45 error norm) compiled 2x slower than the plain passes
and is not used.

How, so that nobody ever waits for a compiler or sees it fail:
- `@fused(eager=...)` wraps a function in a `Fused`, which runs the eager form until a compiled
  version of the function for that kind of input is ready. The first call on a grid of at least MIN_CELLS cells starts the compile in
  a background thread, on small copies of the arguments (compiling costs ~10 s cold, ~2 s from
  inductor's disk cache); shapes are symbolic (dynamic=True), so one compile serves every grid
  size of that kind (dtype, device, and which axes are 1).
- The compiled version is checked against the eager one on those copies before it is used; any
  failure (no C++ compiler, an unsupported torch, a mismatch) leaves the eager code in place
  for good, silently (`status()` says why).
- Calls go through torch._dynamo.run: prior compiled code where its guards hold, the eager
  code otherwise; the calling thread never compiles.
NMAG_COMPILE=0 turns it off, =1 compiles for every grid size (the tests use that to check the
compiled kernels against the eager ones), =auto (default) for grids of MIN_CELLS cells or more:
below that the per-call overhead of the compiled path eats the gain.
"""
from __future__ import annotations

import atexit
import os
import queue
import sys
import threading

import torch

MIN_CELLS = 65536          # 256 x 256: where fusing pays (measured llg 0.37 -> 0.19 ms there)
_SMALL = {-1: 13, -2: 11, -3: 5}   # stand-in sizes for the warm-up copies, by axis from the right
_LOCK = threading.Lock()
_KERNELS = []


def mode() -> str:
    """"off", "on" (every size) or "auto" (grids of at least MIN_CELLS cells), from NMAG_COMPILE."""
    v = os.environ.get("NMAG_COMPILE", "auto").strip().lower()
    return {"0": "off", "off": "off", "false": "off", "1": "on", "on": "on", "true": "on"}.get(v, "auto")


def _kind(args) -> tuple:
    """What a compiled version is specialised on: dtype and device of the first tensor, and which
    axes of each tensor are 1 (torch.compile specialises sizes 0 and 1; the rest are symbolic)."""
    first = next(a for a in args if isinstance(a, torch.Tensor))
    return (first.dtype, first.device.type) + tuple(
        tuple(s == 1 for s in a.shape) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args)


def _small_copy(a):
    """A small contiguous tensor standing in for `a` in the warm-up: sizes 1 kept, the vector
    axis (4th from the right) kept, the grid axes replaced by distinct small sizes, so that the
    compiled code guards on none of the real sizes and none are tied to each other."""
    if not isinstance(a, torch.Tensor) or a.dim() == 0:
        return a.clone() if isinstance(a, torch.Tensor) else a
    shape = [s if s == 1 or -a.dim() + i < -3 else _SMALL[-a.dim() + i] for i, s in enumerate(a.shape)]
    return torch.randn(shape, dtype=a.dtype, device=a.device) if a.is_floating_point() else \
        torch.zeros(shape, dtype=a.dtype, device=a.device)


class Fused:
    """A function of tensors run eagerly until its compiled version for the input's kind is ready.
    `fn` is what gets compiled (plain arithmetic on whole arrays, which inductor fuses); `eager`,
    the same numbers computed well without a compiler (in place, fewer temporaries), runs until
    then; by default fn itself."""

    def __init__(self, fn, eager=None, min_cells=MIN_CELLS):
        self.fn = fn
        self.eager = eager or fn
        self.min_cells = min_cells
        self._state = {}   # kind -> "compiling" | "ready" | "failed: why"
        self._runner = None
        self._compiled = None
        with _LOCK:
            _KERNELS.append(self)

    def __call__(self, *args):
        run = self.compiled_for(args)
        return run(*args) if run is not None else self.eager(*args)

    def wanted(self, cells: int) -> bool:
        """Whether a grid of this many cells gets the compiled version (NMAG_COMPILE, MIN_CELLS)."""
        m = mode()
        return m == "on" or (m == "auto" and cells >= self.min_cells)

    def compiled_for(self, args):
        """The compiled version for these arguments when it is ready, else None (and, on a grid
        that wants it, its compile starts in the background)."""
        if not self.wanted(max(a.numel() for a in args if isinstance(a, torch.Tensor)) // 3):
            return None   # (cheap: small grids pay nothing more than this test)
        kind = _kind(args)
        state = self._state.get(kind)
        if state == "ready":
            return self._runner
        if state is None:
            self._start(kind, args)
        return None

    def _start(self, kind, args):
        with _LOCK:
            if kind in self._state:
                return
            self._state[kind] = "compiling"
        _QUEUE.put((self, kind, [_small_copy(a) for a in args]))
        _ensure_worker()
        if mode() == "on" and os.environ.get("NMAG_COMPILE_WAIT", "0") == "1":
            _QUEUE.join()   # tests: the next call takes the compiled path

    def _compile(self, kind, small):
        try:
            with _LOCK:
                import torch._inductor.config as icfg
                icfg.compile_threads = 1   # compile in this thread: no pool of worker processes
                cfg = torch._dynamo.config   # one compiled version per kind: a kernel has several
                for name in ("recompile_limit", "cache_size_limit"):
                    if hasattr(cfg, name):
                        setattr(cfg, name, max(getattr(cfg, name), 64))
                if self._compiled is None:
                    self._compiled = torch.compile(self.fn, dynamic=True)
                    self._runner = torch._dynamo.run(self.fn)
            want = self.eager(*[a.clone() if isinstance(a, torch.Tensor) else a for a in small])
            got = self._compiled(*small)
            wants, gots = (want, got) if isinstance(want, tuple) else ((want,), (got,))
            for w, g in zip(wants, gots):
                tol = 1e-5 if w.dtype == torch.float32 else 1e-12
                if not torch.allclose(w, g, rtol=tol, atol=tol * float(w.abs().max() + 1e-300)):
                    raise ArithmeticError("the compiled kernel differs from the eager one")
            self._state[kind] = "ready"
        except Exception as e:   # noqa: BLE001 - compiling is an optimisation only
            self._state[kind] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"



def fused(eager=None, *, min_cells=MIN_CELLS):
    """Decorator of the function to compile: `@fused(eager=in_place_version)`; see Fused."""
    return lambda fn: Fused(fn, eager, min_cells)


def status() -> dict:
    """{kernel name: {kind: state}}: what has been compiled, is compiling, or failed and why."""
    return {k.fn.__name__: {str(kind): s for kind, s in k._state.items()} for k in _KERNELS}


def busy() -> bool:
    """Whether a compile is queued or running."""
    return _QUEUE.unfinished_tasks > 0


def wait_all() -> None:
    """Block until every compile asked for so far has finished (tests, benchmarks)."""
    _QUEUE.join()


def exit_now_if_compiling(code: int) -> None:
    """End the process at once with `code` when a compile is still queued or running; else
    return. Why: interpreter shutdown while the compiler's thread is inside torch aborted the
    process (std::terminate, exit status 134) in 1 of 4 `nmag run`s of a short 256^2 problem, after
    the result was complete (none in 6 with NMAG_COMPILE=0). For an entry point whose work is
    finished and flushed (the `nmag` command, which also opens the app); the compile itself is
    only an optimisation. Anything else that exits gets _at_exit."""
    if busy():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:   # noqa: BLE001 - a closed stream has nothing left to say
                pass
        os._exit(int(code))


def _at_exit(timeout_s: float = 60.0) -> None:
    """At interpreter exit (scripts that import the engine): drop the compiles still queued and
    wait up to timeout_s for the running one, so that shutdown never meets it inside torch."""
    try:
        while True:
            _QUEUE.get_nowait()
            _QUEUE.task_done()
    except queue.Empty:
        pass
    if _WORKER and _WORKER[0].is_alive() and busy():
        done = threading.Event()
        threading.Thread(target=lambda: (_QUEUE.join(), done.set()), daemon=True).start()
        done.wait(timeout_s)


atexit.register(_at_exit)


# one background thread compiles, one kernel at a time (a burst of parallel compiles would
# take both cores of a small machine from the simulation that asked for them)
_QUEUE = queue.Queue()
_WORKER = []


def _ensure_worker():
    with _LOCK:
        if not _WORKER or not _WORKER[0].is_alive():
            t = threading.Thread(target=_work, name="engine.fused compiler", daemon=True)
            _WORKER[:] = [t]
            t.start()


def _work():
    while True:
        kernel, kind, small = _QUEUE.get()
        try:
            kernel._compile(kind, small)
        finally:
            _QUEUE.task_done()
