"""The network's two branches side by side on two cores: the exact near field on a one-thread
worker while the calling thread runs the learned part.

Why: on two threads torch splits every operation across both cores. That pays on large grids
but not for the many small operations of a 128^2 or 256^2 evaluation, where each operation
waits for a sleeping thread to wake (measured here, one layer, 2 cores, ms per evaluation:
128^2 0.98 split by operation against 0.75 on one thread). The near field (a few FFTs) and the
learned part (small convolutions) are independent and about equally long on such grids, so
running them at once, each on one thread, uses both cores without splitting any operation.
Which way wins depends on how idle OpenMP threads wait. With passive waits (engine.threads: the
app's and the CLI's policy) splitting each operation wakes the other thread every time, and side
by side won from 128^2 to 512^2 by far (256^2: 2.3-3.0 against 7.8-8.0 ms) and was even at
1024^2; with spinning waits (torch's default) a thread left spinning by the previous operation
takes the worker's core (256^2 with an FFT between calls: 5.4 against 4.0 ms). So NeuralDemag
times both ways once per grid up to 1024^2 cells (demag.SPLIT_MAX_CELLS), each call after a
little elementwise work as in a simulation, and keeps the faster (like the FFT backends).

Threads: torch's thread count is per OS thread under OpenMP, and a thread takes the process's
count on its first parallel operation. The worker sets its own to 1 before any, then the
caller's count is set back, so the worker stays at 1 and the caller keeps its own. During a
split call the caller runs with one thread fewer; it is restored afterwards, even on errors.
A forked child (multiprocessing) starts a worker of its own.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from ..threads import torch_threads

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


WORKER_NAME = "nmag-near"


def _one_thread() -> None:
    torch.get_num_threads()     # this thread's first use: torch initialises its count here
    torch.set_num_threads(1)


def _forget_pool() -> None:
    global _pool
    _pool = None               # the worker thread does not exist in a forked child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def near_worker() -> ThreadPoolExecutor:
    """The process's one-thread worker for near fields (started on first use)."""
    global _pool
    with _lock:
        if _pool is None:
            own = torch.get_num_threads()
            pool = ThreadPoolExecutor(1, thread_name_prefix=WORKER_NAME, initializer=_one_thread)
            pool.submit(int).result()      # the worker is up and at one thread
            torch.set_num_threads(own)     # set_num_threads there also set the process's default
            _pool = pool
        return _pool


def on_worker() -> bool:
    """Whether the calling thread is the near-field worker (which must never wait on itself)."""
    return threading.current_thread().name.startswith(WORKER_NAME)


def _near_without_grad(net, x, fresh=True):
    with torch.no_grad():      # grad mode is per thread; near()'s FFT path wants it off
        return net.near(x, fresh)


def split_forward(net, far, x: torch.Tensor) -> torch.Tensor:
    """net.forward(x, far) with net.near(x) on the worker and far(x) here, on one thread fewer
    than the caller's count (at least 1). The same numbers as net.forward (a test checks)."""
    job = near_worker().submit(_near_without_grad, net, x)
    with torch_threads(max(1, torch.get_num_threads() - 1)):
        f = far(x)
        return net.combine(job.result(), f)


def split_compiled(net, compiled, x: torch.Tensor) -> torch.Tensor:
    """The same with the learned part compiled (engine.neural.compiled.CompiledFar): all of it,
    its last prolongation included, runs here on this thread alone with the GIL released while
    the worker computes the near field; then one addition (256^2: 1.9 -> 1.4 ms against adding
    the last level into the near field once it is there)."""
    # the near field as a view of its FFT buffer: read once by the addition, before the next call
    job = near_worker().submit(_near_without_grad, net, x, False)
    return compiled.alone(x).add_(job.result())


def worker_threads() -> int:
    """The worker's torch thread count (1; for tests and diagnostics)."""
    return near_worker().submit(torch.get_num_threads).result()
