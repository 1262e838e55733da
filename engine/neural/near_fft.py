"""The lean network's exact near field by FFT over a grid padded by R cells, not doubled.

The near field is a convolution with a kernel of (2R + 1)^2 columns (LeanFilmNet.near_w, the
Newell tensor of the cell, windowed). As a direct convolution it costs (2R + 1)^2 x (3 nz)^2
multiply-adds per cell (729 for R = 4, one layer) and was half of the network's time. Its support
is short, so a circular convolution over a box only R cells longer than the grid along x and y
is exact (the wrap-around reads R zero cells), and along z 2 nz - 1 planes hold every layer
offset. That box has about a quarter of the cells of FFTDemag's doubled one, and the cost no
longer grows with R. The box is the faster (measured, cached) of the smallest 5-smooth and
3-smooth lengths (near_paddings). The transforms are the engine's own (engine.fft_backends:
the fastest of torch, scipy, FFTW, measured per shape and cached), so this path and the exact
FFT it races use the same machinery. Exact to float rounding (checked against the direct
convolution in tests).
"""
from __future__ import annotations

import numpy as np
import torch

from ..demag import FFTDemag
from ..fft_backends import fastest_padding
from .lean import COMPONENT_INDEX


def near_padded_shape(nz: int, ny: int, nx: int, R: int, smooth: int = 5) -> tuple:
    """(Pz, Py, Px): each lateral axis at least R cells longer, rounded up to a length whose
    prime factors are at most `smooth` (5: scipy's next_fast_len for real transforms; 3: powers
    of 2 and 3 only, often faster for torch's FFT); 2 nz - 1 layer planes (offsets -(nz-1) ..
    nz-1) for nz > 1."""
    return (2 * nz - 1 if nz > 1 else 1, *(smooth_length(n + R, smooth) for n in (ny, nx)))


def smooth_length(n: int, smooth: int = 5) -> int:
    """The smallest length >= n whose prime factors are at most `smooth` (2, 3 or 5): for 5, what
    scipy.fft.next_fast_len(n, real=True) gives, without importing scipy.fft (0.2-0.5 s)."""
    lengths = [1]
    for p in (q for q in (2, 3, 5) if q <= smooth):   # every product of them below 2 n (a power of 2 is)
        lengths = [k * p ** e for k in lengths for e in range(n.bit_length() + 1) if k * p ** e < 2 * max(n, 1)]
    return min(k for k in lengths if k >= n)


def near_paddings(nz: int, ny: int, nx: int, R: int) -> list:
    """The paddings NearFieldFFT chooses from (fft_backends.fastest_padding): the smallest 5-smooth
    and 3-smooth boxes, the second where at most 15 % more cells along each axis."""
    five, three = near_padded_shape(nz, ny, nx, R), near_padded_shape(nz, ny, nx, R, smooth=3)
    return [five] + ([three] if all(t <= 1.15 * f for t, f in zip(three[1:], five[1:])) else [])


def periodic_kernel(weight: np.ndarray, padded: tuple) -> dict:
    """{component: (Pz, Py, Px) array} of a conv2d weight (3 nz, 3 nz, 2R+1, 2R+1) whose output
    is H = conv(M): the tap at lateral offset (target - source) (R - ky, R - kx) and layer offset
    lo - li, placed periodically (the conv's symmetric tensor gives each pair i, j once)."""
    C, _, K, _ = weight.shape
    nz, R = C // 3, (K - 1) // 2
    Pz, Py, Px = padded
    ky, kx = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
    rows, cols = (R - ky) % Py, (R - kx) % Px
    out = {}
    for c, (i, j) in COMPONENT_INDEX.items():
        if nz == 1 and c in ("xz", "yz"):
            continue   # zero in one layer
        k = np.zeros(padded)
        for lo in range(nz):
            for li in range(nz):
                k[(lo - li) % Pz, rows, cols] = weight[3 * lo + i, 3 * li + j]
        out[c] = k
    return out


class NearFieldFFT(FFTDemag):
    """conv2d(x, weight, padding=R) for one (1, 3 nz, ny, nx) input, by FFT (see the module
    docstring). Built once per grid shape and weight; float32 on the CPU."""
    method = "near-fft"

    def __init__(self, weight: torch.Tensor, ny: int, nx: int, dtype=torch.float32, fft: str = "auto"):
        w = weight.detach().cpu().double().numpy()
        nz, R = w.shape[0] // 3, (w.shape[-1] - 1) // 2
        self.n, self.d, self.R = (int(nx), int(ny), nz), (1.0, 1.0, 1.0), R
        padded = fastest_padding(self.n, near_paddings(nz, int(ny), int(nx), R), dtype, "cpu", fft)
        self._set_kernel(periodic_kernel(w, padded), padded, dtype, "cpu", fft)

    def __call__(self, x: torch.Tensor, fresh: bool = True) -> torch.Tensor:
        """x (1, 3 nz, ny, nx), layer-major channels -> the near field, same shape: a new tensor,
        or with fresh=False possibly a view of a buffer that the next call overwrites (for a
        caller that only reads it at once: the compiled learned part adds it, and a copy of it
        cost 60 us at 256^2)."""
        nx, ny, nz = self.n
        # (3, nz, ny, nx), components first; the pipeline copies it into its padded input buffer
        H = self._convolve(x[0].view(nz, 3, ny, nx).transpose(0, 1))
        out = H.transpose(0, 1).reshape(1, 3 * nz, ny, nx)
        if fresh and out.data_ptr() == H.data_ptr() and getattr(self._pipe, "reuses_output", False):
            out = out.clone()   # a view of a buffer the next call overwrites
        return out


class BatchedNearFFT:
    """The same near field for a batch (B, 3 nz, ny, nx) by torch.fft (any device; what training
    and batched evaluation use): the layers stay channels, so their coupling is a 3 nz x 3 nz
    matrix per frequency and only x and y are transformed, over the grid padded by R. The direct
    convolution costs (2R + 1)^2 (3 nz)^2 multiply-adds per column (23,409 for nz = 3, R = 8)."""

    def __init__(self, weight: torch.Tensor, ny: int, nx: int):
        C, _, K, _ = weight.shape
        R = (K - 1) // 2
        self.n, self.R = (int(ny), int(nx)), R
        _, Py, Px = near_padded_shape(1, int(ny), int(nx), R)
        self.P = (Py, Px)
        k = torch.zeros(C, C, Py, Px, dtype=torch.float64, device=weight.device)
        rows = (R - torch.arange(K, device=weight.device)) % Py
        cols = (R - torch.arange(K, device=weight.device)) % Px
        k[:, :, rows[:, None], cols[None, :]] = weight.double()
        self.spectrum = torch.fft.rfft2(k).to(torch.complex64)    # (C out, C in, Py, Px // 2 + 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        X = torch.fft.rfft2(x.float(), s=self.P)                              # (B, C, Py, Kx)
        Y = torch.einsum("oiyx,biyx->boyx", self.spectrum, X)
        return torch.fft.irfft2(Y, s=self.P)[..., :self.n[0], :self.n[1]].to(x.dtype)
