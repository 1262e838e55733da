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

The field is linear in m, ghosts included: along x, (z x n) x m = s (mz, 0, -mx) for n = (s, 0),
and along y s (0, mz, -my). So every mask, ghost and prefactor folds, once, into a few per-cell
weight arrays, and `h` is about twenty in-place multiply-adds on views (64^2: 780 -> 110 us,
512^2: 43 -> 1.1 ms on one thread). tests/test_terms.py keeps the plain ghost-cell form as the
reference it is checked against.
"""
import torch

from .constants import MU0
from .neighbours import shift


def _below(a, dim, n):
    """Cells 0 .. n-2 along dim (those with a neighbour above)."""
    return a.narrow(dim, 0, n - 1)


def _above(a, dim, n):
    """Cells 1 .. n-1 along dim (those with a neighbour below)."""
    return a.narrow(dim, 1, n - 1)


class InterfacialDMI:
    name = "dmi"

    def __init__(self, state):
        Ms, A, D = state.Ms, state.A, state.D * state.mask
        safe = torch.where(Ms > 0, Ms, torch.ones_like(Ms))
        # per cell, in A/m per unit gradient of m (1/m): 2D/(mu0 Ms) and 2A/(mu0 Ms); D/2A in 1/m
        self.pref = torch.where(Ms > 0, 2 * D / (MU0 * safe), torch.zeros_like(Ms))
        self.ex_pref = torch.where(Ms > 0, 2 * A / (MU0 * safe), torch.zeros_like(Ms))
        safeA = torch.where(A > 0, A, torch.ones_like(A))
        self.D_over_2A = torch.where(A > 0, D / (2 * safeA), torch.zeros_like(A))
        self.mask = state.mask
        self.has_neighbour = {}
        for axis in ("x", "y"):
            for s in (1, -1):
                self.has_neighbour[(axis, s)] = shift(state.mask.to(state.dtype), axis, s) > 0
        self._axes, self._zz = self._stencil_weights(state)

    def _stencil_weights(self, state):
        """The weights of H = sum over in-plane axes of (neighbour terms + local terms).

        For an axis with spacing d, component c (0 for x, 1 for y), P = pref/(2d), has-neighbour
        flags h+ and h- (0 or 1) and k = D/2A, the central difference with ghosts and the
        exchange's ghost term give
            H_c += P (h+ mz[i+1] - h- mz[i-1]) + L mz - P C m_c
            H_z -= P (h+ m_c[i+1] - h- m_c[i-1]) + L m_c + P C mz
        with L = (P + ex_pref k / d)(h- - h+) and C = (2 - h+ - h-) d k."""
        shape = state.m.shape[1:]
        dt = state.dtype
        mask = self.mask.to(dt).expand(shape)
        pref = (self.pref * mask).expand(shape)
        exk = (self.ex_pref * self.D_over_2A * mask).expand(shape)
        kappa = self.D_over_2A.expand(shape)
        zz = torch.zeros(shape, dtype=dt, device=state.m.device)
        axes = []
        for axis, comp, d, n_axis in (("x", 0, state.d[0], state.n[0]), ("y", 1, state.d[1], state.n[1])):
            if n_axis == 1:
                continue
            hp = self.has_neighbour[(axis, 1)].to(dt)
            hm = self.has_neighbour[(axis, -1)].to(dt)
            P = pref / (2 * d)
            L = (P + exk / d) * (hm - hp)
            PC = P * (2 - hp - hm) * d * kappa
            dim = -1 if axis == "x" else -2
            w_up = _below(P * hp, dim, n_axis).contiguous()
            w_down = _above(-P * hm, dim, n_axis).contiguous()
            axes.append((comp, dim, n_axis, w_up, w_down, L.contiguous(), (-PC).contiguous()))
            zz -= PC
        return axes, zz

    def h(self, state):
        """H_DMI in A/m, shape (3, nz, ny, nx), zero outside the magnet."""
        m = state.m
        if m.requires_grad and torch.is_grad_enabled():
            return self._h_differentiable(m)
        mz = m[2]
        H = torch.empty_like(m)
        Hz = H[2]
        torch.mul(self._zz, mz, out=Hz)
        H[0].zero_()
        H[1].zero_()
        for comp, dim, n, w_up, w_down, L, mPC in self._axes:
            mc, Hc = m[comp], H[comp]
            Hc.addcmul_(L, mz).addcmul_(mPC, mc)
            Hz.addcmul_(L, mc, value=-1.0)
            _below(Hc, dim, n).addcmul_(w_up, _above(mz, dim, n))
            _above(Hc, dim, n).addcmul_(w_down, _below(mz, dim, n))
            _below(Hz, dim, n).addcmul_(w_up, _above(mc, dim, n), value=-1.0)
            _above(Hz, dim, n).addcmul_(w_down, _below(mc, dim, n), value=-1.0)
        return H

    def _h_differentiable(self, m):
        """The same stencil without in-place writes, for an m that autograd follows (in-place
        writes into views of a new tensor cannot be differentiated)."""
        mz = m[2]
        H = [torch.zeros_like(mz), torch.zeros_like(mz), self._zz * mz]
        for comp, dim, n, w_up, w_down, L, mPC in self._axes:
            mc = m[comp]
            pad_up = [0, 0] * (-dim)
            pad_up[2 * (-dim - 1) + 1] = 1           # w_up covers cells 0 .. n-2: zero at n-1
            pad_down = [0, 0] * (-dim)
            pad_down[2 * (-dim - 1)] = 1             # w_down covers cells 1 .. n-1: zero at 0
            up = torch.nn.functional.pad(w_up, pad_up)
            down = torch.nn.functional.pad(w_down, pad_down)
            axis = "x" if dim == -1 else "y"
            H[comp] = H[comp] + L * mz + mPC * mc + up * shift(mz, axis, 1) + down * shift(mz, axis, -1)
            H[2] = H[2] - L * mc - up * shift(mc, axis, 1) - down * shift(mc, axis, -1)
        return torch.stack(H)

    def energy(self, state, H=None):
        return state.energy_from_field(self.h(state) if H is None else H, 0.5)

    def energy_density(self, state, H=None) -> torch.Tensor:
        """-(mu0/2) Ms m.H per cell in J/m^3 (nz, ny, nx); sums to `energy`."""
        H = self.h(state) if H is None else H
        return -0.5 * MU0 * state.Ms * (state.m * H).sum(0) * state.mask
