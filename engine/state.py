"""Engine state: the grid, per-cell material tensors in SI units, the magnetization and time.

Built from a Problem once; field terms read it, solvers advance `m` and `t`. Per-cell arrays
are torch tensors (nz, ny, nx); vectors (3, nz, ny, nx). Cells outside the magnet have Ms = 0,
m = 0 and take no part in any term.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .constants import MU0


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


@dataclass
class State:
    n: tuple                  # (nx, ny, nz)
    d: tuple                  # (dx, dy, dz) in m
    regions: np.ndarray       # int16 (nz, ny, nx), -1 vacuum
    mask: torch.Tensor        # bool (nz, ny, nx)
    Ms: torch.Tensor          # A/m
    A: torch.Tensor           # J/m
    alpha: torch.Tensor       # 1
    Ku: torch.Tensor          # J/m^3
    Ku_axis: torch.Tensor     # (3, ...) unit
    Kc1: torch.Tensor         # J/m^3
    Kc_axis1: torch.Tensor    # (3, ...) unit
    Kc_axis2: torch.Tensor
    Kc_axis3: torch.Tensor
    D: torch.Tensor           # J/m^2 (interfacial DMI)
    m: torch.Tensor           # (3, nz, ny, nx)
    t: float = 0.0            # s
    dtype: torch.dtype = torch.float64
    device: str = "cpu"

    @property
    def cell_volume(self) -> float:
        return self.d[0] * self.d[1] * self.d[2]

    @property
    def shape(self) -> tuple:
        return (self.n[2], self.n[1], self.n[0])

    @classmethod
    def from_problem(cls, problem, regions: np.ndarray, m0: np.ndarray) -> "State":
        """Per-cell tensors from the problem's materials painted by the region map."""
        dtype = torch.float64 if problem.solver.precision == "float64" else torch.float32
        device = problem.solver.device
        shape = regions.shape
        mats = problem.materials

        def scalar(name):
            table = np.array([getattr(mm, name) for mm in mats] + [0.0])  # index -1 -> 0
            return torch.tensor(table[regions], dtype=dtype, device=device)

        def vector(name):
            table = np.array([_unit(getattr(mm, name)) for mm in mats] + [np.zeros(3)])
            arr = np.moveaxis(table[regions], -1, 0)
            return torch.tensor(np.ascontiguousarray(arr), dtype=dtype, device=device)

        mask = torch.tensor(regions >= 0, device=device)
        a3 = np.array([np.cross(_unit(mm.Kc_axis1), _unit(mm.Kc_axis2)) for mm in mats] + [np.zeros(3)])
        st = cls(n=tuple(problem.mesh.n), d=tuple(problem.mesh.cell_m), regions=regions, mask=mask,
                 Ms=scalar("Ms") * mask, A=scalar("A"), alpha=scalar("alpha"),
                 Ku=scalar("Ku"), Ku_axis=vector("Ku_axis"), Kc1=scalar("Kc1"),
                 Kc_axis1=vector("Kc_axis1"), Kc_axis2=vector("Kc_axis2"),
                 Kc_axis3=torch.tensor(np.ascontiguousarray(np.moveaxis(a3[regions], -1, 0)),
                                       dtype=dtype, device=device),
                 D=scalar("D"), m=torch.tensor(m0, dtype=dtype, device=device),
                 dtype=dtype, device=device)
        st.m = normalize(st.m, st.mask)
        return st

    def zeros_vector(self) -> torch.Tensor:
        return torch.zeros((3,) + self.shape, dtype=self.dtype, device=self.device)

    def energy_from_field(self, H: torch.Tensor, factor: float = 0.5) -> float:
        """-factor * mu0 * sum(Ms m.H) V in J (factor 1/2 for terms quadratic in m)."""
        return float(-factor * MU0 * self.cell_volume * (self.Ms * (self.m * H).sum(0)).sum())


def vector_length(v: torch.Tensor) -> torch.Tensor:
    """|v| per cell of a (3, ...) field. Written out: torch.linalg.vector_norm over dim 0 was
    90x slower here (5.6 ms against 0.06 ms for 256 x 256 cells, torch 2.13 CPU)."""
    x, y, z = v.unbind(0)
    return (x * x + y * y + z * z).sqrt()


def normalize(m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unit vectors inside the magnet, zero outside."""
    return m * (mask / vector_length(m).clamp_min(1e-30))
