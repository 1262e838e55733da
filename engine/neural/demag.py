"""NeuralDemag: the film U-Net behind the engine's Demag interface (method "neural").

H_d = Ms_ref * net(Ms m / Ms_ref) on a one-cell-thick film. The shipped weights
(resources/neural/unet_film.pt) and their model card (resources/neural/model_card.json) are
read from disk; nothing is downloaded. Outside the model card's validity (nz > 1, dx != dy,
another dz/dx) the constructor warns (warnings.warn and `self.warnings`, for the GUI's log):
- nz > 1: the network is for single-layer films; the exact FFT field is used instead.
- dz/dx other than the trained one: the network's field is multiplied by s = (dz/dx) /
  (dz/dx)_trained (a thin film's far field scales with the cell volume) and the exact difference
  of the kernels near by, K_a - s K_1 over the nearest 17 x 17 cells, is added. Approximate.
- dx != dy: not represented; the result is only a rough approximation.

With probe_every > 0 the Simulation's after_step hook computes the exact FFT field beside the
network's every probe_every steps and stores `last_probe` (engine.neural.probe.ProbeResult).
"""
from __future__ import annotations

import copy
import functools
import json
import warnings

import numpy as np
import torch

from ..demag import Demag, FFTDemag
from ..resources import resource_path
from .data import MS_REF
from .unet import FilmUNet, load_model, local_kernel

DEFAULT_WEIGHTS = "neural/unet_film.pt"
DEFAULT_CARD = "neural/model_card.json"
NEAR_CORRECTION_RADIUS = 8   # cells: exact near-field difference for another dz/dx


@functools.lru_cache(maxsize=4)
def _load(path: str):
    return load_model(path)


def load_card(path=None) -> dict:
    p = resource_path(DEFAULT_CARD) if path is None else path
    try:
        return json.loads(open(p).read())
    except FileNotFoundError:
        return {}


class NeuralDemag(Demag):
    """Demag field of a film by the U-Net surrogate. See the module docstring."""
    name = "demag"
    method = "neural"

    def __init__(self, n, d, dtype=torch.float32, device="cpu", probe_every=0, weights=None):
        self.n, self.d = tuple(n), tuple(float(v) for v in d)
        self.dtype, self.device = dtype, device
        # the network itself runs in float32 whatever the state's precision: its error (~1 %)
        # is far above float32 rounding, and float64 convolutions are several times slower
        self.net_dtype = torch.float32 if dtype in (torch.float32, torch.float64) else dtype
        self.probe_every = int(probe_every or 0)
        self.weights = str(weights or resource_path(DEFAULT_WEIGHTS))
        if isinstance(weights, FilmUNet):
            self.net, self.meta = weights, {}
            self.weights = "<in memory>"
        else:
            net, self.meta = _load(self.weights)
            self.net = copy.deepcopy(net)   # own copy: .to(device) must not move a shared module
        self.net = self.net.to(device=device, dtype=self.net_dtype).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.card = load_card()
        self.warnings: list[str] = []
        self.fallback = None
        nx, ny, nz = self.n
        dx, dy, dz = self.d
        trained = float(self.net.config.get("aspect", 1.0))
        aspect = dz / dx
        self.aspect = aspect
        self.far_scale, self.near_corr = 1.0, None
        if nz > 1:
            self._warn(f"neural demag: the network is for single-layer films (nz = 1), this grid has "
                       f"nz = {nz}; using the exact FFT demag instead")
            self.fallback = FFTDemag(self.n, self.d, dtype, device)
        if abs(dx - dy) > 1e-6 * dx:
            self._warn(f"neural demag: trained for square cells (dx = dy); this grid has dx = {dx * 1e9:g} nm, "
                       f"dy = {dy * 1e9:g} nm: the field is a rough approximation")
        if abs(aspect - trained) > 1e-3 * trained:
            rng = self.card.get("valid", {}).get("dz_dx_validated", [trained, trained])
            # the learned operator approximates the kernel K_1 of the trained cell; a film's
            # kernel at other dz/dx is ~ (dz/dx / trained) K_1 far away (the dipole field scales
            # with the cell volume) and differs near by; that near difference is exact here:
            # H = s net(M) + (K_a - s K_1)|_{|offset| <= R} * M
            self.far_scale = aspect / trained
            R = NEAR_CORRECTION_RADIUS
            kd = local_kernel(aspect, R, r_full=1e9) - self.far_scale * local_kernel(trained, R, r_full=1e9)
            self.near_corr = torch.tensor(kd, dtype=self.net_dtype, device=device)
            msg = (f"neural demag: trained for cells with dz/dx = {trained:g}; this grid has dz/dx = {aspect:.3g}. "
                   f"Using the network scaled by {self.far_scale:.3g} plus the exact near-field difference "
                   f"({2 * R + 1}x{2 * R + 1} cells): an approximation")
            if not (rng[0] - 1e-9 <= aspect <= rng[1] + 1e-9):
                msg += " (outside the validated range: check with the error probe)"
            self._warn(msg)
        self._steps = 0
        self._fft = None
        self.last_probe = None

    def _warn(self, msg):
        self.warnings.append(msg)
        warnings.warn(msg, stacklevel=3)

    # ------------------------------------------------------------------ the field
    @torch.no_grad()
    def h_from_M(self, M: torch.Tensor) -> torch.Tensor:
        """H_d in A/m for M in A/m, (3, nz, ny, nx) (nz = 1)."""
        if self.fallback is not None:
            return self.fallback.h_from_M(M.to(self.fallback.dtype)).to(M.dtype)
        x = (M[:, 0] / MS_REF).to(self.net_dtype)[None]
        y = self.net(x)
        if self.near_corr is not None:
            R = self.near_corr.shape[-1] // 2
            y = self.far_scale * y + torch.nn.functional.conv2d(x, self.near_corr, padding=R)
        return (y[0] * MS_REF)[:, None].to(M.dtype)

    def h(self, state) -> torch.Tensor:
        return self.h_from_M(state.Ms * state.m) * state.mask

    # ------------------------------------------------------------------ probe hook
    def exact(self) -> FFTDemag:
        if self._fft is None:
            self._fft = FFTDemag(self.n, self.d, torch.float64, self.device)
        return self._fft

    def after_step(self, state) -> None:
        self._steps += 1
        if self.probe_every > 0 and self._steps % self.probe_every == 0:
            from .probe import probe
            self.last_probe = probe(state, None, self.n, self.d, self)
