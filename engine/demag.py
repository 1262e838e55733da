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
- the transforms come from the fastest backend measured on this shape (torch, scipy.fft or
  pyFFTW; engine.fft_backends), pruned both ways: the forward transforms only the unpadded rows
  along x, the inverse keeps along z, then y, only the rows that survive the crop;
- nothing is copied on the way: on the CPU the spectra are numpy buffers seen by torch, the
  kernel multiplies them in place, and FFTW's unnormalised inverse is folded into the kernel.
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
from .fft_backends import available_backends, choose_backend, describe, make_pipeline, padded_shape
from .spectrum_kernel import spectrum_multiplier


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

    def energy_density(self, state, H=None) -> torch.Tensor:
        """-(mu0/2) Ms m.H_d per cell in J/m^3 (nz, ny, nx); sums (times V) to `energy`."""
        H = self.h(state) if H is None else H
        return -0.5 * MU0 * state.Ms * (state.m * H).sum(0)


_COMPONENTS = ("xx", "xy", "xz", "yy", "yz", "zz")

_MALLOC_LIMIT = 0   # the mmap threshold set so far by keep_large_buffers_in_heap (bytes)


def keep_large_buffers_in_heap(nbytes: int) -> bool:
    """Let glibc reuse freed buffers of about `nbytes` instead of mapping fresh pages each time.

    glibc serves an allocation above its mmap threshold (dynamic, at most 32 MB) with newly
    mapped pages and hands a freed heap top above its trim threshold back to the kernel, so each
    demag evaluation of a large grid page-faults through every temporary the size of the padded
    spectrum (torch allocates them per call; its FFT out= arguments copy rather than reuse).
    Measured on the 2-core CI machine, float64: demag 2.4x slower at 1024 x 1024, 1.5x at 512 x 512;
    float32 at 256 x 256 (a 3.2 MB spectrum) 1.6x.
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

    def __init__(self, n: tuple, d: tuple, dtype=torch.float64, device="cpu", fft: str = "auto"):
        self.n, self.d = tuple(n), tuple(d)
        padded = padded_shape(self.n)
        quadrant = demag_tensor_quadrant(self.n, self.d)
        thin = self.n[2] == 1
        # -N: H = -N * M needs no extra pass
        self._set_kernel({c: -unfold(quadrant[c], PARITY[c], padded) for c in _COMPONENTS
                          if not (thin and c in ("xz", "yz"))},   # zero for a single layer
                         padded, dtype, device, fft)

    def _set_kernel(self, spatial: dict, padded: tuple, dtype, device, fft) -> None:
        """Convolve with the periodic kernel `spatial` ({component: real (Pz, Py, Px) array, H =
        kernel * M}, components xx, xy, yy, zz and, for nz > 1, xz, yz) on the grid padded to
        `padded`: its spectra, the buffers' heap setting and the fastest FFT pipeline."""
        self.padded = tuple(padded)
        self.thin = "xz" not in spatial
        kernel_ft = {}
        for c, full in spatial.items():
            ft = np.fft.rfftn(full)
            # real by symmetry; odd-odd components carry a factor i*i = -1 already in .real
            kernel_ft[c] = torch.tensor(ft.real, dtype=dtype, device=device)
        self.kernel_ft = kernel_ft   # real, unrepeated (for inspection)
        self.dtype, self.device = dtype, device
        # the kernel repeated along a trailing axis of 2, to multiply torch.view_as_real of a
        # complex spectrum as one contiguous elementwise pass (a stride-0 broadcast of a trailing
        # axis of 1 is not vectorised: 3x slower at 1024 x 1024, measured)
        self._kneg_unit = {c: k.unsqueeze(-1).expand(*k.shape, 2).contiguous() for c, k in kernel_ft.items()}
        Pz, Py, Px = self.padded
        spectrum_bytes = 3 * Pz * Py * (Px // 2 + 1) * 2 * torch.finfo(dtype).bits // 8
        # glibc maps anything above 128 kB afresh until its dynamic threshold has grown: at 256^2
        # float32 (a 3.2 MB spectrum) that made the demag 4.0 ms instead of 2.5 ms in a fresh process
        if str(device).startswith("cpu") and spectrum_bytes >= (128 << 10):
            keep_large_buffers_in_heap(spectrum_bytes)
        self._use_pipeline(choose_backend(self.n, self.padded, dtype, device, fft)[0])

    # forward and inverse transforms: delegated to the backend chosen for this shape
    @property
    def backend(self) -> str:
        """Name of the FFT backend in use ("torch", "scipy", "fftw", or "forward+inverse" when
        the two directions come from two backends): see engine.fft_backends."""
        return describe(self._pipe)

    def _kernel(self, pipe) -> dict:
        """-N^ in the pipeline's spectrum layout ("xy": kx and ky swapped), times its scale."""
        k = self._kneg_unit
        if pipe.layout == "xy":
            k = self._kneg_xy = getattr(self, "_kneg_xy", None) or \
                {c: v.transpose(-3, -2).contiguous() for c, v in k.items()}
        return {c: v * pipe.scale if pipe.scale != 1.0 else v for c, v in k.items()}

    def _use_pipeline(self, pipe) -> None:
        self._pipe = pipe
        self._kneg = self._kernel(pipe)
        self._mul = self._compiled_multiply(self._kneg)
        self._general = None

    def _compiled_multiply(self, k: dict):
        """The compiled multiply (engine.spectrum_kernel) with k's real kernels (k not repeated for
        view_as_real); None where it cannot run."""
        return spectrum_multiplier({c: v[..., 0].contiguous() for c, v in k.items()})

    def _general_pipe(self):
        """A pipeline for any leading shape (batches), used when the chosen one is bound to the
        shape of its preallocated buffers (FFTW): scipy where installed, else torch."""
        if self._general is None:
            name = "scipy" if "scipy" in available_backends(self.device) else "torch"
            self._general = make_pipeline(name, self.n, self.padded, self.dtype, self.device)
            self._kneg_general = self._kernel(self._general)
            self._mul_general = self._compiled_multiply(self._kneg_general)
        return self._general

    def _multiply(self, X, k, compiled=None):
        """H^ = -N^ M^, in place on the spectrum X (3, ...): real kernel times complex data. The
        spectrum goes through `compiled`, k's one-pass compiled multiply (engine.spectrum_kernel),
        where it can (not a batch of films); else torch's passes."""
        if compiled is not None and compiled(X):
            return X
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

    def _convolve(self, M: torch.Tensor) -> torch.Tensor:
        """-N * M; may return a view of a buffer that the next call overwrites."""
        pipe = self._pipe
        if not pipe.accepts(M):
            pipe = self._general_pipe()
        if pipe is self._pipe:
            k, mul = self._kneg, self._mul
        else:
            k, mul = self._kneg_general, self._mul_general
        return pipe.inverse(self._multiply(pipe.forward(M.detach()), k, mul))

    def h_from_M(self, M: torch.Tensor) -> torch.Tensor:
        """H_d = -N * M for a magnetization M in A/m, (3, nz, ny, nx) (or a batch along the
        third-last axis for a film); a new tensor of its own."""
        H = self._convolve(M)
        return H.clone() if self._pipe.reuses_output else H

    def input_view(self):
        """The pipeline's own (3, nz, ny, nx) input buffer where it has one (CPU): write M there,
        then convolve_input(); None otherwise."""
        return self._pipe.input_view()

    def convolve_input(self) -> torch.Tensor:
        """-N * (what was written into input_view()): a view of a buffer the next call overwrites."""
        pipe = self._pipe
        return pipe.inverse(self._multiply(pipe.forward(None), self._kneg, self._mul))

    def h(self, state) -> torch.Tensor:
        buf = self.input_view()
        if buf is not None and state.m.device.type == "cpu" and state.m.dtype == self.dtype:
            torch.mul(state.Ms, state.m, out=buf)   # M straight into FFTW's input buffer
            return self.convolve_input() * state.mask
        return self._convolve(state.Ms * state.m) * state.mask


class NoDemag(Demag):
    """No demagnetizing field (for tests and teaching: what shape anisotropy does)."""
    method = "none"

    def h(self, state):
        return state.zeros_vector()
