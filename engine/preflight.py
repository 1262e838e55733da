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
