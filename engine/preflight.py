"""Every check `nmag run` makes before it starts (and `nmag check` makes alone), without building
the simulation. Above engine.validation (which knows values, not problems) and engine.initial_states."""
from __future__ import annotations

import numpy as np

from .errors import ProblemError
from .initial_states import initial_m
from .validation import check_device, check_finite_array, check_simulation_memory


def check_runnable(problem, m0=None) -> dict:
    """Every check `nmag run` makes before it starts, without building the simulation: the
    problem's values, the device, the memory, at least one magnetic cell (a region whose
    material has Ms > 0), the initial state (an OVF file is read: it must exist, match the
    grid and hold finite values) or the saved state `m0`. Returns {"regions", "magnetic"}.
    Raises ProblemError on the first failure."""
    problem.validate()
    check_device("solver.device", problem.solver.device)
    check_simulation_memory(problem)
    regions = problem.regions()
    Ms = np.array([m.Ms for m in problem.materials] + [0.0])
    magnetic = int((Ms[regions] > 0).sum())
    if magnetic == 0:
        n_cells = int((regions >= 0).sum())
        why = "the geometry covers no cell" if n_cells == 0 else \
            f"the {n_cells} cell(s) of the geometry all have Ms = 0"
        raise ProblemError("geometry", f"{magnetic} magnetic cells",
                           f"at least one magnetic cell (Ms > 0): {why}")
    if m0 is not None:
        a = np.asarray(m0)
        if a.shape != (3,) + problem.mesh.shape_zyx:
            raise ProblemError("m", f"shape {a.shape}", f"shape (3, nz, ny, nx) = {(3,) + problem.mesh.shape_zyx}")
        check_finite_array("m", f"an array of shape {a.shape}", a)
    elif problem.initial.kind == "file":
        initial_m("file", problem.initial.params, problem.mesh, regions >= 0, problem.base_dir)
    return {"regions": regions, "magnetic": magnetic}


def estimated_output(problem) -> dict:
    """What a run of `problem` writes, before compression: {"snapshots", "rows", "bytes"}.
    One snapshot (3 x cells float32) at the start, after each relax and each sweep field, and
    every output.snapshot_every_ps of a run stage; a table row likewise every table_every_ps
    (about 20 float64 columns). An upper bound: gzip shrinks smooth states several times."""
    nx, ny, nz = (int(v) for v in problem.mesh.n)
    snaps = rows = 1
    for st in problem.stages or [None]:
        kind = st.kind if st is not None else "relax"
        p = st.params if st is not None else {}
        if kind == "relax":
            snaps, rows = snaps + 1, rows + 1
        elif kind == "sweep":
            snaps, rows = snaps + int(p["steps"]), rows + int(p["steps"])
        else:
            span_ps = float(p["duration_ns"]) * 1e3
            snaps += int(span_ps / problem.output.snapshot_every_ps) + 1
            rows += int(span_ps / problem.output.table_every_ps) + 1
    nbytes = snaps * 3 * nx * ny * nz * 4 + rows * 20 * 8
    return {"snapshots": snaps, "rows": rows, "bytes": nbytes}


def output_warning(problem, folder) -> str:
    """A sentence when the estimated output (estimated_output) exceeds the free space in
    `folder`, else "". A warning, not a refusal: compression usually saves several times, and
    a run that does fill the disk stops, says so and keeps what was written."""
    import shutil
    from .validation import human_bytes
    est = estimated_output(problem)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    if est["bytes"] <= free:
        return ""
    return (f"the result may need up to {human_bytes(est['bytes'])} ({est['snapshots']} snapshots of m before "
            f"compression; output.snapshot_every_ps = {problem.output.snapshot_every_ps:g}) and {folder} has "
            f"{human_bytes(free)} free: a larger output.snapshot_every_ps writes fewer")
