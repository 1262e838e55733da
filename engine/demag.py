"""The demagnetizing field: an interface and its exact implementation by FFT convolution.

Any demag implementation (FFT here, the neural surrogate in engine.neural) is a `Demag`: it
maps the state to H_d in A/m. The Simulation picks one by name; nothing else changes.

FFTDemag convolves M = Ms m with the Newell tensor (engine.demag_kernel) on a zero-padded grid
(open boundaries: each axis of length n > 1 padded to 2n; nz = 1 is not padded or transformed
along z). Speed-ups over a plain rfftn/irfftn of the padded grid:
- the kernel's Fourier transform is real (every component is even, or odd along exactly two
  axes), so it is stored as real arrays: half the memory and half the multiply cost;
- the transforms are pruned: the forward real FFT along x runs on the unpadded rows only (the
  padded rows are zeros) and the inverse along y keeps only the rows that are cropped out.
"""
from __future__ import annotations

import numpy as np
import torch

from .constants import MU0
from .demag_kernel import PARITY, demag_tensor_quadrant, unfold


class Demag:
    """Interface of a demag implementation."""
    name = "demag"
    method = "base"

    def h(self, state) -> torch.Tensor:
        """H_d in A/m, (3, nz, ny, nx)."""
        raise NotImplementedError

    def energy(self, state, H=None) -> float:
        """E_d = -(mu0/2) sum Ms m.H_d V, in J."""
        return state.energy_from_field(self.h(state) if H is None else H, 0.5)


_COMPONENTS = ("xx", "xy", "xz", "yy", "yz", "zz")


class FFTDemag(Demag):
    """Exact (to float error) demag of a finite grid with open boundaries."""
    method = "fft"

    def __init__(self, n: tuple, d: tuple, dtype=torch.float64, device="cpu"):
        self.n, self.d = tuple(n), tuple(d)
        nx, ny, nz = self.n
        self.thin = nz == 1
        self.padded = (2 * nz if nz > 1 else 1, 2 * ny if ny > 1 else 1, 2 * nx if nx > 1 else 1)
        quadrant = demag_tensor_quadrant(self.n, self.d)
        kernel_ft = {}
        for c in _COMPONENTS:
            if self.thin and c in ("xz", "yz"):
                continue  # zero for a single layer
            full = unfold(quadrant[c], PARITY[c], self.padded)
            ft = np.fft.rfftn(full)
            # real by symmetry; odd-odd components carry a factor i*i = -1 already in .real
            kernel_ft[c] = torch.tensor(ft.real, dtype=dtype, device=device)
        self.kernel_ft = kernel_ft
        self.dtype, self.device = dtype, device

    # forward and inverse transforms, pruned for the zero padding
    def _forward(self, M):
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        X = torch.fft.rfft(M, n=Px, dim=-1)
        if Py > 1:
            X = torch.fft.fft(X, n=Py, dim=-2)
        if Pz > 1:
            X = torch.fft.fft(X, n=Pz, dim=-3)
        return X

    def _inverse(self, X):
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        if Pz > 1:
            X = torch.fft.ifft(X, dim=-3)[..., :nz, :, :]
        if Py > 1:
            X = torch.fft.ifft(X, dim=-2)[..., :ny, :]
        return torch.fft.irfft(X, n=Px, dim=-1)[..., :nx]

    def h_from_M(self, M: torch.Tensor) -> torch.Tensor:
        """H_d = -N * M for a magnetization M in A/m, (3, nz, ny, nx)."""
        Mx, My, Mz = self._forward(M).unbind(0)
        k = self.kernel_ft
        if self.thin:
            Hx = k["xx"] * Mx + k["xy"] * My
            Hy = k["xy"] * Mx + k["yy"] * My
            Hz = k["zz"] * Mz
        else:
            Hx = k["xx"] * Mx + k["xy"] * My + k["xz"] * Mz
            Hy = k["xy"] * Mx + k["yy"] * My + k["yz"] * Mz
            Hz = k["xz"] * Mx + k["yz"] * My + k["zz"] * Mz
        return -self._inverse(torch.stack((Hx, Hy, Hz)))

    def h(self, state) -> torch.Tensor:
        return self.h_from_M(state.Ms * state.m) * state.mask


class NoDemag(Demag):
    """No demagnetizing field (for tests and teaching: what shape anisotropy does)."""
    method = "none"

    def h(self, state):
        return state.zeros_vector()
