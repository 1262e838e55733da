"""NeuralMAG Studio engine: finite-difference micromagnetics (LLG) with FFT or neural demag.

Headless: torch, numpy and h5py only. Start with `Problem` and `Simulation`.
"""
from . import threads  # noqa: F401  (first: OMP_WAIT_POLICY=PASSIVE before torch loads OpenMP)
from .errors import ProblemError, SimulationDiverged
from .problem import (FieldSpec, InitialState, Material, Mesh, Output, Problem, ShapeOp,
                      SolverSpec, Stage)
from .simulation import Simulation

__version__ = "0.1.0"
__all__ = ["Problem", "Simulation", "ProblemError", "SimulationDiverged", "Mesh", "Material", "ShapeOp", "InitialState",
           "FieldSpec", "SolverSpec", "Stage", "Output", "__version__"]
