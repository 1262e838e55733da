"""Frame: an immutable copy of what a view needs from one moment of a simulation.

Frames cross the thread boundary between the simulation worker and the GUI, so every array in
one is a private copy (never a view of the engine's tensors). Every field is typed and named:
a consumer reads `frame.probe.H_net`, `frame.rows`, `frame.energy_density["total"]`, never a
loose dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ProbeFields:
    """Both demag fields of the surrogate's last error probe (copies)."""
    H_net: np.ndarray             # float32 (3, nz, ny, nx), A/m: the network's demag field
    H_fft: np.ndarray             # float32 (3, nz, ny, nx), A/m: the exact FFT demag field
    t: float                      # simulated time of the probe, s


@dataclass(frozen=True)
class Frame:
    t: float                      # simulated time, s
    steps: int                    # integrator steps so far
    dt: float                     # last step, s
    m: np.ndarray                 # float32 (3, nz, ny, nx), unit vectors, 0 outside the magnet
    mean_m: np.ndarray            # (3,), average over the magnet
    energies: dict                # term name -> energy, J (empty when not measured)
    max_torque: float             # max |m x H_eff| / Ms, dimensionless (NaN when not measured)
    demag_method: str             # "fft", "neural", ...
    error_map: np.ndarray | None = None   # |H_net - H_fft| / Ms per cell (nz, ny, nx), when probed
    error_rel_l2: float | None = None     # ||H_net - H_fft|| / ||H_fft|| over the magnet
    probe: ProbeFields | None = None      # the demag fields of the last probe, when probed
    rows: tuple = ()                      # table rows (dicts) recorded since the previous frame
    snapshots: tuple = ()                 # (t, m float32) snapshots since the previous frame
    generation: int = 0                   # which reset/load of the simulation this frame is from
    steps_per_s: float = 0.0              # measured integrator steps per wall-clock second
    energy_density: dict | None = None    # term name (and "total") -> (nz, ny, nx) float32, J/m^3
