"""Interfacial Dzyaloshinskii-Moriya interaction (thin films, C_nv symmetry, normal +z).

Following Rohart & Thiaville, Phys. Rev. B 88, 184422 (2013):
energy density e = D [mz div m - (m.grad) mz], field
H = (2 D / (mu0 Ms)) (d mz/dx, d mz/dy, -d mx/dx - d my/dy),
and at a free surface with outward normal n the boundary condition dm/dn = (D / 2A)(z x n) x m
(it replaces the exchange's Neumann condition). We impose it with ghost cells, as mumax3 does:
a missing in-plane neighbour is m_ghost = m + d (D/2A)(z x n) x m. The ghost enters the central
differences of the DMI field and adds the exchange boundary term 2A/(mu0 Ms d^2)(m_ghost - m);
both are collected here so the exchange term stays a pure Neumann stencil. D > 0 favours
counter-clockwise Neel rotation in the convention above.
"""
import torch

from .constants import MU0
from .neighbours import shift


def _zcross_n_cross_m(n_xy, m):
    """(z x n) x m for an in-plane unit normal n = (nx, ny, 0)."""
    nx, ny = n_xy
    zxn = torch.tensor([-ny, nx, 0.0], dtype=m.dtype, device=m.device)
    a = zxn[:, None, None, None]
    return torch.stack((a[1] * m[2] - a[2] * m[1], a[2] * m[0] - a[0] * m[2], a[0] * m[1] - a[1] * m[0]))


class InterfacialDMI:
    name = "dmi"

    def __init__(self, state):
        Ms, A, D = state.Ms, state.A, state.D * state.mask
        safe = torch.where(Ms > 0, Ms, torch.ones_like(Ms))
        self.pref = torch.where(Ms > 0, 2 * D / (MU0 * safe), torch.zeros_like(Ms))
        self.ex_pref = torch.where(Ms > 0, 2 * A / (MU0 * safe), torch.zeros_like(Ms))
        safeA = torch.where(A > 0, A, torch.ones_like(A))
        self.D_over_2A = torch.where(A > 0, D / (2 * safeA), torch.zeros_like(A))
        self.mask = state.mask
        self.has_neighbour = {}
        for axis in ("x", "y"):
            for s in (1, -1):
                self.has_neighbour[(axis, s)] = shift(state.mask.to(state.dtype), axis, s) > 0

    def _neighbour_or_ghost(self, state, axis, s):
        """m at i+s along axis, or the boundary-condition ghost where that cell is empty."""
        m = state.m
        d = state.d[0] if axis == "x" else state.d[1]
        normal = (float(s), 0.0) if axis == "x" else (0.0, float(s))
        ghost = m + d * self.D_over_2A * _zcross_n_cross_m(normal, m)
        has = self.has_neighbour[(axis, s)]
        return torch.where(has, shift(m, axis, s), ghost), ghost, has

    def h(self, state):
        m = state.m
        H = torch.zeros_like(m)
        boundary = torch.zeros_like(m)
        for axis, comp, d in (("x", 0, state.d[0]), ("y", 1, state.d[1])):
            if (state.n[0] if axis == "x" else state.n[1]) == 1:
                continue
            plus, gp, hp = self._neighbour_or_ghost(state, axis, 1)
            minus, gm, hm = self._neighbour_or_ghost(state, axis, -1)
            deriv = (plus - minus) / (2 * d)
            H[2] -= deriv[comp]
            H[comp] += deriv[2]
            boundary += torch.where(hp, torch.zeros_like(m), gp - m) / d ** 2
            boundary += torch.where(hm, torch.zeros_like(m), gm - m) / d ** 2
        return (self.pref * H + self.ex_pref * boundary) * self.mask

    def energy(self, state, H=None):
        return state.energy_from_field(self.h(state) if H is None else H, 0.5)

    def energy_density(self, state, H=None) -> torch.Tensor:
        """-(mu0/2) Ms m.H per cell in J/m^3 (nz, ny, nx); sums to `energy`."""
        H = self.h(state) if H is None else H
        return -0.5 * MU0 * state.Ms * (state.m * H).sum(0) * state.mask
