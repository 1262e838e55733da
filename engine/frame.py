"""Frame: an immutable copy of what a view needs from one moment of a simulation.

Frames cross the thread boundary between the simulation worker and the GUI, so every array in
one is a private copy (never a view of the engine's tensors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    t: float                      # simulated time, s
    steps: int                    # integrator steps so far
    dt: float                     # last step, s
    m: np.ndarray                 # float32 (3, nz, ny, nx), unit vectors, 0 outside the magnet
    mean_m: np.ndarray            # (3,), average over the magnet
    energies: dict                # term name -> energy, J
    max_torque: float             # max |m x H_eff| / Ms, dimensionless
    demag_method: str             # "fft", "neural", ...
    error_map: np.ndarray | None = None   # |H_net - H_fft| / Ms per cell (nz, ny, nx), when probed
    error_rel_l2: float | None = None     # ||H_net - H_fft|| / ||H_fft|| over the magnet
    extra: dict = field(default_factory=dict)  # optional arrays (e.g. demag fields) by name
