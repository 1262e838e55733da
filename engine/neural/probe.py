"""Error probe of the neural demag against the exact FFT field, and twin runs.

probe(state_or_m, Ms, n, d, net) -> ProbeResult: both fields (A/m), the per-cell error map
|H_net - H_fft| / Ms (0 outside the magnet) and the relative L2 error over the magnet's cells,
sqrt(sum |H_net - H_fft|^2 / sum |H_fft|^2). Used by the GUI's overlay (through NeuralDemag's
after_step hook) and by the tests.

Twin runs (a neural and an FFT Simulation side by side) are engine.neural.twin, above the
Simulation; this module sits below NeuralDemag, which calls it every probe_every steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..state import vector_length


@dataclass
class ProbeResult:
    t: float
    H_net: np.ndarray       # (3, nz, ny, nx) A/m
    H_fft: np.ndarray       # (3, nz, ny, nx) A/m
    error_map: np.ndarray   # (nz, ny, nx): |H_net - H_fft| / Ms, 0 outside the magnet
    rel_l2: float           # over the magnet's cells
    max_error: float        # max of error_map


def probe(state_or_m, Ms=None, n=None, d=None, net=None) -> ProbeResult:
    """Compare the network's field with the exact one for one magnetization.

    state_or_m: an engine State (its m, Ms, n, d, t are used), or m as an array (3, nz, ny, nx)
    with Ms a scalar or a per-cell array (nz, ny, nx) in A/m, n = (nx, ny, nz), d in m.
    net: a NeuralDemag for this grid (anything with h_from_M(M) and exact())."""
    if not (hasattr(net, "h_from_M") and hasattr(net, "exact")):
        raise TypeError("probe needs the NeuralDemag to compare (engine.neural.demag.NeuralDemag(n, d))")
    t = 0.0
    if hasattr(state_or_m, "m") and hasattr(state_or_m, "Ms"):
        st = state_or_m
        m = st.m.detach().to(torch.float64).cpu()
        Ms_t = st.Ms.detach().to(torch.float64).cpu()
        n, d, t = st.n, st.d, float(st.t)
    else:
        m = torch.as_tensor(np.asarray(state_or_m), dtype=torch.float64)
        Ms_t = torch.as_tensor(np.asarray(Ms, dtype=float), dtype=torch.float64)
        if Ms_t.ndim == 0:
            mask = vector_length(m) > 0
            Ms_t = Ms_t * mask
    Ms_t = Ms_t.expand(m.shape[1:])
    mask = Ms_t > 0
    M = Ms_t * m
    H_net = net.h_from_M(M.to(net.dtype).to(net.device)).detach().to(torch.float64).cpu() * mask
    H_fft = net.exact().h_from_M(M.to(net.device)).detach().cpu() * mask
    diff = vector_length(H_net - H_fft)
    err = torch.where(mask, diff / Ms_t.clamp_min(1e-300), torch.zeros_like(diff))
    den = float((H_fft ** 2).sum())
    rel = float(np.sqrt(float((diff ** 2).sum()) / den)) if den > 0 else 0.0
    return ProbeResult(t=t, H_net=H_net.numpy(), H_fft=H_fft.numpy(), error_map=err.numpy(),
                       rel_l2=rel, max_error=float(err.max()) if err.numel() else 0.0)
