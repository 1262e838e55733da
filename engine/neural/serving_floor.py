"""How far a member may be served from the cell it was trained for, however well it is trained.

A member trained for cells (1, 1, a0) serves cells (1, 1, a) with the exact near kernel of the
new cell out to R columns and its learned part scaled by s = a / a0 (LeanFilmNet.serve,
retargeted_near_kernel). Beyond R that assumes K_a = s K_a0, true only while the film's
thickness nz a is small against R: a column of cells then acts as a dipole sheet whose field
grows with its height. An *oracle* member, exact within R and exactly s times the trained
cell's field beyond R, still misses by (K_a - s K_a0) beyond R; its relative error is the floor
under any member served that way, whatever its training. This module measures it on the
held-out textures (engine.neural.data.make_samples), with labels from FFTDemag in float64.

Why it matters: it tells which (nz, dz/dx) a cubic member can ever serve and where a member
must be trained at the tall cell itself (docs/neural.md, "Large grids, shared bounds and how far
a member can be served").
"""
from __future__ import annotations

import numpy as np
import torch

from .card_measure import rel_err
from .data import Labeller, make_samples
from .lean import near_kernel


def near_residual(M: np.ndarray, nz: int, aspect: float, trained_aspect: float, R: int) -> np.ndarray:
    """conv2d(M, K_a - s K_a0 over the (2R + 1)^2 nearest columns, unwindowed), float64, by
    zero-padded FFT (a direct conv2d of an 81 x 81 kernel needs tens of GB for im2col).
    M (B, 3 nz, ny, nx) layer-major -> the same shape: what the retargeted near kernel adds."""
    s = float(aspect) / float(trained_aspect)
    k = torch.tensor(near_kernel(aspect, nz, R, window=False) - s * near_kernel(trained_aspect, nz, R, window=False))
    x = torch.as_tensor(M, dtype=torch.float64)
    ny, nx = x.shape[-2:]
    P = (ny + 2 * R, nx + 2 * R)
    # conv2d is a correlation: flip the kernel to convolve; the result sits R cells in
    kf = torch.fft.rfft2(torch.flip(k, (-2, -1)), s=P)
    y = torch.fft.irfft2(torch.einsum("oiyx,biyx->boyx", kf, torch.fft.rfft2(x, s=P)), s=P)
    return y[..., R:R + ny, R:R + nx].numpy()


def labels(M: np.ndarray, nz: int, aspect: float) -> np.ndarray:
    """The exact field (float64, H / Ms_ref) of M on films of nz layers of (1, 1, aspect) cells."""
    return Labeller(aspect).layers(np.asarray(M, np.float64), nz)


def oracle_errors(M, mask, nz, aspect, trained_aspect, R, H_a=None, H_a0=None) -> np.ndarray:
    """Per-sample relative L2 error (fractions, over the magnet's cells) of the oracle member:
    exact within R, s x the trained cell's exact field beyond R. H_a, H_a0: the exact fields
    at aspect and at trained_aspect when already computed."""
    s = float(aspect) / float(trained_aspect)
    H_a = labels(M, nz, aspect) if H_a is None else H_a
    H_a0 = labels(M, nz, trained_aspect) if H_a0 is None else H_a0
    oracle = s * H_a0 + near_residual(M, nz, aspect, trained_aspect, R)
    return rel_err(torch.as_tensor(oracle), torch.as_tensor(H_a), torch.as_tensor(mask).bool()).numpy()


def sample_set(nz: int, shape=(256, 256), count=8, seed=4242):
    """Held-out textures for the floor (seed never used in training): M (B, 3 nz, ny, nx), mask."""
    M, _, mask, _ = make_samples(seed, shape[0], shape[1], count, aspect=1.0, llg_fraction=0.0, nz=nz)
    return M, mask
