"""Magnetocrystalline anisotropy, uniaxial and cubic.

Uniaxial: e = -Ku (m.u)^2, H = (2 Ku / (mu0 Ms)) (m.u) u.
Cubic: e = Kc1 (a1^2 a2^2 + a2^2 a3^2 + a3^2 a1^2), a_i = m.c_i along the crystal axes c_i;
H = -(2 Kc1 / (mu0 Ms)) sum_i a_i (a_j^2 + a_k^2) c_i.
Energies in J (density times cell volume, summed).
"""
import torch

from .constants import MU0


def _inv_mu0_Ms(Ms):
    return torch.where(Ms > 0, 1.0 / (MU0 * torch.where(Ms > 0, Ms, torch.ones_like(Ms))), torch.zeros_like(Ms))


class UniaxialAnisotropy:
    name = "anisotropy"

    def __init__(self, state):
        self.pref = 2 * state.Ku * _inv_mu0_Ms(state.Ms)

    def h(self, state):
        u = state.Ku_axis
        return self.pref * (state.m * u).sum(0) * u

    def energy(self, state, H=None):
        return float(self.energy_density(state).sum() * state.cell_volume)

    def energy_density(self, state, H=None) -> torch.Tensor:
        """-Ku (m.u)^2 per cell in J/m^3 (nz, ny, nx), 0 in vacuum."""
        mu = (state.m * state.Ku_axis).sum(0)
        return -(state.Ku * mu * mu * state.mask)


class CubicAnisotropy:
    name = "cubic_anisotropy"

    def __init__(self, state):
        self.pref = -2 * state.Kc1 * _inv_mu0_Ms(state.Ms)

    def _projections(self, state):
        m = state.m
        return [(m * c).sum(0) for c in (state.Kc_axis1, state.Kc_axis2, state.Kc_axis3)]

    def h(self, state):
        a1, a2, a3 = self._projections(state)
        c1, c2, c3 = state.Kc_axis1, state.Kc_axis2, state.Kc_axis3
        H = (a1 * (a2 ** 2 + a3 ** 2)) * c1 + (a2 * (a1 ** 2 + a3 ** 2)) * c2 + (a3 * (a1 ** 2 + a2 ** 2)) * c3
        return self.pref * H

    def energy(self, state, H=None):
        return float(self.energy_density(state).sum() * state.cell_volume)

    def energy_density(self, state, H=None) -> torch.Tensor:
        """Kc1 (a1^2 a2^2 + a2^2 a3^2 + a3^2 a1^2) per cell in J/m^3 (nz, ny, nx)."""
        a1, a2, a3 = self._projections(state)
        return state.Kc1 * (a1 ** 2 * a2 ** 2 + a2 ** 2 * a3 ** 2 + a3 ** 2 * a1 ** 2) * state.mask
