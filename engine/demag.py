"""The demagnetizing field: an interface and its exact implementation by FFT convolution.

Any demag implementation (FFT here, the neural surrogate in engine.neural) is a `Demag`: it
maps the state to H_d in A/m. The Simulation picks one by name; nothing else changes.

FFTDemag convolves M = Ms m with the Newell tensor (engine.demag_kernel) on a zero-padded grid
(open boundaries: each axis of length n > 1 padded to 2n; nz = 1 is not padded or transformed
along z). Speed-ups over a plain rfftn/irfftn of the padded grid:
- the kernel's Fourier transform is real (every component is even, or odd along exactly two
  axes), so it is stored as real arrays, negated (H = -N M needs no extra pass), and multiplies
  the real view of the complex spectra in place with fused multiply-adds (no stack, one
  temporary for a thin film);
- the forward transform is one multi-dimensional rfftn: MKL runs a 2D/3D transform faster than
  torch's chain of 1D calls along strided axes, even with the zero rows it then transforms
  (measured here 1.6x at 512 x 512 and up to 2.5x at 1024 x 1024 on the forward half);
- the inverse is pruned: the inverse FFT along z, then y, keeps only the rows that survive the
  crop, so the last (real) inverse along x runs on the unpadded rows only.
For nz = 1 only the last two axes are transformed, so a batch may ride along the third-last
axis (engine.neural.data relies on this).
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

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

_MALLOC_LIMIT = 0   # the mmap threshold set so far by keep_large_buffers_in_heap (bytes)


def keep_large_buffers_in_heap(nbytes: int) -> bool:
    """Let glibc reuse freed buffers of about `nbytes` instead of mapping fresh pages each time.

    glibc serves an allocation above its mmap threshold (dynamic, at most 32 MB) with newly
    mapped pages and hands a freed heap top above its trim threshold back to the kernel, so each
    demag evaluation of a large grid page-faults through every temporary the size of the padded
    spectrum (torch allocates them per call; its FFT out= arguments copy rather than reuse).
    Measured on the 2-core CI machine, float64: demag 2.4x slower at 1024 x 1024, 1.5x at 512 x 512.
    Raising both thresholds (mallopt M_MMAP_THRESHOLD to 4x the spectrum, 64 MB .. 1 GB, and
    M_TRIM_THRESHOLD to twice that) keeps those pages in the heap. Process-wide, only ever
    raised, Linux/glibc and CPU only; NMAG_MALLOC_TUNING=0 turns it off. Returns True if set.
    """
    global _MALLOC_LIMIT
    if os.environ.get("NMAG_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    limit = int(min(max(4 * nbytes, 64 << 20), 1 << 30))
    if limit <= _MALLOC_LIMIT:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(limit)) == 1
        ok = ok and libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(min(2 * limit, 2 ** 31 - 1))) == 1
    except (OSError, AttributeError):
        return False
    if ok:
        _MALLOC_LIMIT = limit
    return ok


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
        # -N with a trailing axis of 1, to multiply torch.view_as_real of a complex spectrum
        self._kneg = {c: (-k).unsqueeze(-1).contiguous() for c, k in kernel_ft.items()}
        Pz, Py, Px = self.padded
        self._fdims = tuple(d for d, P in ((-3, Pz), (-2, Py)) if P > 1) + (-1,)
        self._fsize = tuple(P for P in (Pz, Py) if P > 1) + (Px,)
        spectrum_bytes = 3 * Pz * Py * (Px // 2 + 1) * 2 * torch.finfo(dtype).bits // 8
        if str(device).startswith("cpu") and spectrum_bytes >= (4 << 20):
            keep_large_buffers_in_heap(spectrum_bytes)

    # forward and inverse transforms
    def _forward(self, M):
        """Spectrum of M zero-padded to self.padded: one multi-dimensional real FFT."""
        return torch.fft.rfftn(M, s=self._fsize, dim=self._fdims)

    def _inverse(self, X):
        """Inverse of _forward cropped to the grid; each step keeps only the rows it needs."""
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        if Pz > 1:
            X = torch.fft.ifft(X, dim=-3)[..., :nz, :, :]
        if Py > 1:
            X = torch.fft.ifft(X, dim=-2)[..., :ny, :]
        return torch.fft.irfft(X, n=Px, dim=-1)[..., :nx]

    def _multiply(self, X):
        """H^ = -N^ M^, in place on the spectrum X (3, ...): real kernel times complex data."""
        k = self._kneg
        Mx, My, Mz = torch.view_as_real(X).unbind(0)
        if self.thin:
            t = Mx * k["xy"]
            Mx.mul_(k["xx"]).addcmul_(My, k["xy"])   # Hx = -Nxx Mx - Nxy My
            My.mul_(k["yy"]).add_(t)                 # Hy = -Nxy Mx - Nyy My
            Mz.mul_(k["zz"])                         # Hz = -Nzz Mz
        else:
            hx = Mx * k["xx"]
            hx.addcmul_(My, k["xy"]).addcmul_(Mz, k["xz"])
            hy = Mx * k["xy"]
            hy.addcmul_(My, k["yy"]).addcmul_(Mz, k["yz"])
            Mz.mul_(k["zz"]).addcmul_(Mx, k["xz"]).addcmul_(My, k["yz"])
            Mx.copy_(hx)
            My.copy_(hy)
        return X

    def h_from_M(self, M: torch.Tensor) -> torch.Tensor:
        """H_d = -N * M for a magnetization M in A/m, (3, nz, ny, nx)."""
        return self._inverse(self._multiply(self._forward(M)))

    def h(self, state) -> torch.Tensor:
        return self.h_from_M(state.Ms * state.m) * state.mask


class NoDemag(Demag):
    """No demagnetizing field (for tests and teaching: what shape anisotropy does)."""
    method = "none"

    def h(self, state):
        return state.zeros_vector()
