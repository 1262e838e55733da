"""Zeeman field: a static applied field plus an optional time-dependent part.

The problem gives mu0*H in mT; here H is in A/m. e = -mu0 Ms m.H_ext (J per cell volume).
Time dependence (t in s): sine  B(t) = B0 + A sin(2 pi f t + phase);
pulse B(t) = B0 + A for start <= t < start + width; ramp B(t) = B0 + (B1 - B0) min(t/T, 1).
"""
import math

import numpy as np
import torch

from .constants import MU0, MT, NS


class AppliedField:
    """B(t) in mT as numpy (3,), from a FieldSpec-like (B_mT, ac dict)."""

    def __init__(self, B_mT, ac=None):
        self.B0 = np.asarray(B_mT, dtype=float)
        self.ac = dict(ac or {"kind": "none"})

    def B_mT(self, t: float) -> np.ndarray:
        a = self.ac
        kind = a.get("kind", "none")
        if kind == "sine":
            f = a["frequency_GHz"] * 1e9
            return self.B0 + np.asarray(a["amplitude_mT"]) * math.sin(2 * math.pi * f * t + math.radians(a.get("phase_deg", 0.0)))
        if kind == "pulse":
            t0, w = a.get("start_ns", 0.0) * NS, a["width_ns"] * NS
            return self.B0 + (np.asarray(a["amplitude_mT"]) if t0 <= t < t0 + w else 0.0)
        if kind == "ramp":
            T = a["duration_ns"] * NS
            return self.B0 + (np.asarray(a["to_mT"]) - self.B0) * min(t / T, 1.0)
        return self.B0

    def is_static(self) -> bool:
        return self.ac.get("kind", "none") == "none"


class Zeeman:
    name = "zeeman"

    def __init__(self, state, applied: AppliedField):
        self.applied = applied
        self._vector = (None, None)   # (the last H's bytes, dtype and device; it as a (3, 1, 1, 1) tensor)

    def H_vector(self, t: float) -> np.ndarray:
        """Applied H in A/m at time t."""
        return self.applied.B_mT(t) * MT / MU0

    def h(self, state, t=None):
        Hv = self.H_vector(state.t if t is None else t)
        key = (Hv.tobytes(), state.dtype, state.device)
        if key != self._vector[0]:   # a static field is made a tensor once, not on every call (SP4: 28 -> 10 us)
            self._vector = (key, torch.tensor(Hv, dtype=state.dtype, device=state.device)[:, None, None, None])
        return self._vector[1] * state.mask

    def energy(self, state, H=None):
        return state.energy_from_field(self.h(state) if H is None else H, 1.0)

    def energy_density(self, state, H=None) -> torch.Tensor:
        """-mu0 Ms m.H per cell in J/m^3 (nz, ny, nx)."""
        H = self.h(state) if H is None else H
        return -MU0 * state.Ms * (state.m * H).sum(0) * state.mask
