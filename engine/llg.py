"""The Landau-Lifshitz-Gilbert equation in Landau-Lifshitz form (SI):

dm/dt = -gamma / (1 + alpha^2) [ m x H + alpha m x (m x H) ],   |m| = 1,

with gamma = 2.211e5 m/(A s) and H the effective field in A/m. Cells outside the magnet
(m = 0) have zero torque.
"""
import torch

from .constants import GAMMA
from .state import vector_length


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product of two (3, ...) vector fields."""
    return torch.stack((a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]))


def llg_rhs(m: torch.Tensor, H: torch.Tensor, alpha: torch.Tensor, precession: bool = True) -> torch.Tensor:
    """dm/dt in 1/s. With precession=False only the damping term is kept (for relaxing)."""
    mxH = cross(m, H)
    damping = cross(m, mxH)
    pref = -GAMMA / (1 + alpha * alpha)
    if precession:
        return pref * (mxH + alpha * damping)
    return pref * alpha * damping


def max_torque(m: torch.Tensor, H: torch.Tensor, Ms: torch.Tensor) -> float:
    """max over cells of |m x H| / Ms (dimensionless: the torque in units of Ms)."""
    t = vector_length(cross(m, H))
    safe = torch.where(Ms > 0, Ms, torch.ones_like(Ms))
    return float((t / safe * (Ms > 0)).max())
