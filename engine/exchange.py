"""Exchange field, 6-neighbour stencil.

H_i = (2 / (mu0 Ms_i)) sum_j A_ij (m_j - m_i) / d_j^2, where A_ij is the harmonic mean of the
two cells' A (mumax3's default across region interfaces) and a missing or empty neighbour
contributes nothing (Neumann, dm/dn = 0, at free surfaces). Energy: sum over bonds of
V A_ij |m_j - m_i|^2 / d^2 = -(mu0/2) sum V Ms m.H (J); for a helix of wave number k it tends
to A k^2 per unit volume.
"""
import torch

from .constants import MU0
from .fused import fused
from .neighbours import AXIS, shift

_BONDS = (("x", 1), ("x", -1), ("y", 1), ("y", -1), ("z", 1), ("z", -1))


@fused()
def _exchange_field(m, cxp, cxm, cyp, cym, czp, czm):
    """sum over bonds of c (m_neighbour - m), for the compiler: full-size coefficients that are
    zero where a cell has no neighbour on that side, None for a bond direction no cell has. One
    fused loop (see engine.fused; a zero-padded shift compiles 5x faster than torch.roll's
    wrap-around, measured here)."""
    H = None
    for c, (axis, s) in zip((cxp, cxm, cyp, cym, czp, czm), _BONDS):
        if c is not None:
            term = c * (shift(m, axis, s) - m)
            H = term if H is None else H + term
    return torch.zeros_like(m) if H is None else H


def harmonic_mean(a, b):
    s = a + b
    return torch.where(s > 0, 2 * a * b / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))


class Exchange:
    name = "exchange"

    def __init__(self, state):
        Ms = state.Ms
        prefactor = torch.where(Ms > 0, 2.0 / (MU0 * torch.where(Ms > 0, Ms, torch.ones_like(Ms))),
                                torch.zeros_like(Ms))
        # H_i = sum_b c_b,i (m_(i+b) - m_i) with c = prefactor A_ij / d^2, accumulated over the
        # overlapping slices of each bond (no shifted copies, no zero fill, no final multiply);
        # the difference is formed first so that a uniform state gives exactly zero. Per axis
        # with a bond: (dim, c of the bond up, c of the bond down; each narrowed to the cells that
        # have that neighbour, None where none has), so one difference of neighbours serves both
        by_axis = {}      # dim -> [c up, c down]
        full = {}         # (axis, s) -> c on the whole grid, for the compiled form
        A = state.A * state.mask
        for axis, d in zip(("x", "y", "z"), state.d):
            for s in (1, -1):
                Aij = harmonic_mean(A, shift(A, axis, s))
                if Aij.abs().max() > 0:
                    c = prefactor * Aij / d ** 2
                    dim, n = AXIS[axis], Ms.shape[AXIS[axis]]
                    by_axis.setdefault(dim, [None, None])[0 if s > 0 else 1] = \
                        c.narrow(dim, max(0, -s), n - abs(s)).contiguous()
                    full[(axis, s)] = c
        # (dim, c up, c down) per axis with a bond: also what engine.cell_kernel reads
        self.axes = tuple((dim, up, down) for dim, (up, down) in by_axis.items())
        # kept only where the compiled form may run (each is one more grid-sized array)
        self._full = tuple(full.get(b) for b in _BONDS) if _exchange_field.wanted(Ms.numel()) else None

    def h(self, state) -> torch.Tensor:
        m = state.m
        if self._full is not None:
            run = _exchange_field.compiled_for((m,) + self._full)
            if run is not None:
                return run(m, *self._full)
        H = torch.zeros_like(m)
        for dim, c_up, c_down in self.axes:
            # the difference D = m_(i+1) - m_i once per axis: the bond up adds c D at i, the bond
            # down c (-D) at i + 1 (the same numbers as forming m_i - m_(i+1): a sign is exact)
            n = m.shape[dim] - 1
            D = m.narrow(dim, 1, n) - m.narrow(dim, 0, n)
            if c_up is not None:
                H.narrow(dim, 0, n).addcmul_(D, c_up)
            if c_down is not None:
                H.narrow(dim, 1, n).addcmul_(D, c_down, value=-1)
        return H

    def energy(self, state, H=None) -> float:
        return state.energy_from_field(self.h(state) if H is None else H, 0.5)

    def energy_density(self, state, H=None) -> torch.Tensor:
        """-(mu0/2) Ms m.H per cell in J/m^3 (nz, ny, nx): 2 A (1 - cos(k d)) / d^2 per bond
        direction for a helix, -> A k^2; sums (times the cell volume) to `energy`."""
        H = self.h(state) if H is None else H
        return -0.5 * MU0 * state.Ms * (state.m * H).sum(0) * state.mask
