"""How many threads torch may use: the cores actually free to this process, never spin-waiting.

On a shared machine OpenMP's default (one thread per core, spinning while it waits for work)
fights every other job: `nmag run examples/sp4.toml` took 142-174 s with two busy background
processes on 2 cores and 10 s with one thread. The policy here:

- count the cores this process may run on (os.sched_getaffinity, so taskset and cgroup cpusets
  count), less the load the other processes put on them (the 1-minute load average less what
  this process itself adds), at least 1;
- OMP_WAIT_POLICY=PASSIVE (idle threads sleep instead of spinning) unless the user set it; it
  only takes effect when set before torch loads its OpenMP runtime, so importing this module
  sets it, and the CLI imports it before torch;
- a grid of fewer than SMALL_GRID_CELLS cells gets one thread: with passive waits every
  operation split over two threads wakes the other one, and a small grid's operations are too
  short to pay for that (an LLG evaluation with the exact FFT demag, float64, ms on one / two
  threads: 100 x 25 0.62 / 0.64-0.91, 128^2 2.7 / 4.9, 256^2 9.0 / 9.2, 512^2 55 / 36; with
  the neural demag, float32: 128^2 2.7 / 4.8, 192^2 3.5 / 9.9, 256^2 5.4 / 5.7, 384^2 10.5 /
  8.7, although the network alone is faster on two threads from 128^2 up (its two branches side
  by side); `nmag run examples/sp4.toml` 6.4-7.9 s on one thread against 9.4-12.5 s on two);
- an explicit OMP_NUM_THREADS or NMAG_THREADS wins over the estimate.

Measured and not adopted: GOMP_SPINCOUNT=10000 (threads spin briefly, then sleep; it overrides the
passive policy in GNU OpenMP) took a two-thread LLG evaluation (exact FFT demag, float32) at
128^2 from 3.2-4.9 to 1.6-1.9 ms (one thread: 1.3-1.8), at 256^2 from 5.1-7.2 to 4.5-4.7 and at
512^2 from 17-21 to 19-20 ms, but beside two busy processes on the two cores it took 256^2
from 8.4-12.6 to 15-19 ms (512^2 even; torch's default spinning: 47-102 ms there). The policy
is for shared machines, so it stays passive. A user of a quiet machine can set it.

The CLI calls `apply_thread_policy()` once it knows the grid; the desktop app sets its engine
thread's count with `threads_for_grid` each time it builds a simulation.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")     # Intel OpenMP: sleep at once when idle


def usable_cores() -> int:
    """The cores this process may be scheduled on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores(own_load: float = 0.0) -> float:
    """The 1-minute load average less `own_load` (the runnable threads this process adds)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    return max(0.0, load - own_load)


# the smallest grid (cells) given more than one thread: 256^2, where one and two threads measured even
SMALL_GRID_CELLS = 256 * 256


def threads_for_grid(cells: int, available: int) -> int:
    """Of `available` threads, how many a grid of `cells` cells should use: 1 under
    SMALL_GRID_CELLS (see the module docstring), else all of them."""
    return 1 if int(cells) < SMALL_GRID_CELLS else max(1, int(available))


def choose_threads(cores: int | None = None, load: float | None = None, cells: int | None = None) -> int:
    """Threads for torch: NMAG_THREADS or OMP_NUM_THREADS if set; else 1 for a grid of fewer
    than SMALL_GRID_CELLS `cells` (when given); else the usable cores less the busy ones,
    rounded down, at least 1."""
    for var in ("NMAG_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v:
            try:
                n = int(v)
            except ValueError:
                n = 0
            if n >= 1:
                return n
            import warnings
            warnings.warn(f"{var}={v!r} is not a whole number of threads >= 1: ignored", stacklevel=2)
    cores = usable_cores() if cores is None else cores
    load = busy_cores() if load is None else load
    free = max(1, min(cores, int(cores - load + 0.5)))
    return free if cells is None else threads_for_grid(cells, free)


def apply_thread_policy(n: int | None = None, cells: int | None = None) -> int:
    """Set torch's intra-op threads to `n` (default: choose_threads(cells=cells), `cells` the
    grid's cell count where known) and its inter-op threads to 1 where still possible. Returns
    the thread count."""
    import torch
    n = choose_threads(cells=cells) if n is None else max(1, int(n))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:      # only allowed before any parallel work started
        pass
    return n


@contextmanager
def torch_threads(n: int):
    """The calling thread's torch thread count at n within the block, restored afterwards, even on
    errors (torch's count is per OS thread; imported here lazily: this module loads before torch)."""
    import torch
    own = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(own)
