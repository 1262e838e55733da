"""Run a sweep: every point a Dask task; the client writes each point as it finishes.

    from engine.sweep import load_sweep
    from engine.sweep.cluster import open_client
    from engine.sweep.runner import run_sweep
    sweep = load_sweep("examples/sweeps/sp4_field_angle.toml")
    with open_client(workers=2) as client:
        summary = run_sweep(sweep, "angle.h5", client)

Faults: a worker that dies mid-point is Dask's business (the scheduler hands the point to
another worker; a point that kills workers again and again ends as failed, "KilledWorker");
a point whose simulation raises comes back failed with its message; Ctrl+C (KeyboardInterrupt)
cancels what is left and leaves the file valid for --resume.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from .point import failed_scalars, make_task, pin_fft_backend, run_point
from .results import SweepWriter


@dataclass
class Progress:
    """Counts for a progress bar. done counts finished points (failed included), skipped the
    ones a resumed file already had; eta_s is None until a point finished in this run."""
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    skipped: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    wall_s: list = field(default_factory=list)


def _result_of(future, i: int, names) -> dict:
    """The point's result dict; a task that ended in error (e.g. KilledWorker) becomes failed."""
    if future.status == "finished":
        return future.result()
    try:
        exc = future.exception()
        msg = f"{type(exc).__name__}: {exc}"
    except Exception as e:  # cancelled or lost
        msg = f"{type(e).__name__}: {e}"
    return {"index": i, "status": "failed", "message": msg.replace("\n", " ")[:2000], "h5": None,
            "scalars": failed_scalars(names), "wall_s": 0.0, "worker": ""}


def _running(client, keys: set) -> int:
    try:
        return sum(1 for ks in client.processing().values() for k in ks if k in keys)
    except Exception:
        return 0


def run_sweep(sweep, out, client=None, resume: bool = False, overwrite: bool = False,
              on_progress=None, on_point=None, should_stop=None, poll_s: float = 1.0) -> Progress:
    """Run every point of `sweep` not yet in `out` and write each as it finishes.

    client: a distributed.Client (engine.sweep.cluster.open_client); None runs the points one
    after another in this process (the reference the tests and the benchmark compare with).
    on_progress(Progress) after every change; on_point(result dict) after a point is written;
    should_stop() -> True stops early (what is written stays; resume later)."""
    writer = SweepWriter(out, sweep, resume=resume, overwrite=overwrite)
    have = writer.finished() if resume else set()
    todo = [i for i in range(len(sweep)) if i not in have]
    prog = Progress(total=len(sweep), done=len(have), skipped=len(have))
    t0 = time.perf_counter()

    def finish(result):
        writer.write_point(result)
        prog.done += 1
        prog.failed += result["status"] != "done"
        prog.wall_s.append(result.get("wall_s", 0.0))
        if on_point is not None:
            on_point(result)

    def report():
        prog.elapsed_s = time.perf_counter() - t0
        new = prog.done - prog.skipped
        prog.eta_s = prog.elapsed_s / new * (prog.total - prog.done) if new else None
        if on_progress is not None:
            on_progress(prog)

    report()
    if client is None:
        for i in todo:
            if should_stop is not None and should_stop():
                break
            prog.running = 1
            finish(run_point(pin_fft_backend(make_task(sweep, i))))
            prog.running = 0
            report()
        return prog

    from distributed import wait
    tag = uuid.uuid4().hex[:8]
    futures = {client.submit(run_point, pin_fft_backend(make_task(sweep, i)), key=f"nmag-point-{i}-{tag}",
                             pure=False): i
               for i in todo}
    keys = {f.key for f in futures}
    pending = set(futures)
    try:
        while pending:
            try:
                finished, pending = wait(pending, timeout=poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            for fut in finished:
                finish(_result_of(fut, futures[fut], sweep.scalars))
                fut.release()
            prog.running = _running(client, keys) if pending else 0
            report()
            if should_stop is not None and should_stop():
                break
    finally:
        for fut in pending:
            fut.cancel()
    return prog
