"""Shifted copies of cell arrays, the building block of the finite-difference stencils.

`shift(a, axis, s)` returns b with b[i] = a[i + s] along a spatial axis of a (..., nz, ny, nx)
array, and zeros where i + s falls outside the grid. Spatial axes are named "x", "y", "z".
"""
import torch

AXIS = {"x": -1, "y": -2, "z": -3}


def shift(a: torch.Tensor, axis: str, s: int) -> torch.Tensor:
    """The part of a that stays on the grid, moved by -s and zero-padded back to a's shape: one
    pass, and a form torch.compile turns into masked loads (engine.exchange compiles it)."""
    dim = AXIS[axis]
    n = a.shape[dim]
    k = min(abs(s), n)
    pad = [0, 0] * (-dim)
    pad[2 * (-dim - 1) + (1 if s > 0 else 0)] = k
    return torch.nn.functional.pad(a.narrow(dim, k if s > 0 else 0, n - k), pad)
