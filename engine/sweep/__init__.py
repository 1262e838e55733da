"""Parameter sweeps: many independent runs of one problem, as tasks on Dask.

    sweep_file  the sweep file (TOML, format "nmag-sweep"): parameters, mode, outputs; its points
    scalars     the per-point numbers stored in the index (switching time, final <m>, ...)
    point       the task a worker runs for one point (returns the point's results file as bytes)
    results     the sweep's one HDF5 file, written by the client point by point
    cluster     Dask clients: a loopback LocalCluster by default; remote schedulers need TLS
    runner      sends the points, collects them as they finish, writes them
    cli         `nmag sweep`

Dask (`distributed`) is the scheduler; nmag writes none of its own.
"""
from .sweep_file import Sweep, load_sweep

__all__ = ["Sweep", "load_sweep"]
