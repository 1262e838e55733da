"""Physical constants in SI units (the values mumax3, OOMMF and magnum.np use)."""
import math

MU0 = 4e-7 * math.pi
"""Vacuum permeability mu0 in T m/A (classic value)."""

GAMMA = 2.211e5
"""Gyromagnetic ratio times mu0, |gamma_e| mu0, in m/(A s)."""

NM = 1e-9
MT = 1e-3
NS = 1e-9
PS = 1e-12


def mT_to_A_per_m(b_mT):
    """Convert an induction mu0*H given in millitesla to H in A/m."""
    return b_mT * MT / MU0
