"""Shifted copies of cell arrays, the building block of the finite-difference stencils.

`shift(a, axis, s)` returns b with b[i] = a[i + s] along a spatial axis of a (..., nz, ny, nx)
array, and zeros where i + s falls outside the grid. Spatial axes are named "x", "y", "z".
"""
import torch

AXIS = {"x": -1, "y": -2, "z": -3}


def shift(a: torch.Tensor, axis: str, s: int) -> torch.Tensor:
    dim = AXIS[axis]
    n = a.shape[dim]
    out = torch.zeros_like(a)
    if n <= 1:
        return out
    if s > 0:
        out.narrow(dim, 0, n - s).copy_(a.narrow(dim, s, n - s))
    else:
        out.narrow(dim, -s, n + s).copy_(a.narrow(dim, 0, n + s))
    return out
