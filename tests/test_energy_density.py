"""Energy densities of every field term (engine side of the GUI's 'energy density' overlay).

Each term's density, summed over the cells and times the cell volume, must give the term's own
energy; the exchange density of a helix must tend to A k^2 (analytic), the uniaxial density of
a uniform state to -Ku (m.u)^2, the Zeeman density to -mu0 Ms m.H.
"""
import math

import numpy as np
import pytest

from engine import InitialState, Material, Mesh, Problem, ShapeOp, Simulation
from engine.constants import MU0


def _problem(n=(16, 8, 1), **mat):
    p = Problem(title="density")
    p.mesh = Mesh(n, (2.0, 2.0, 2.0))
    p.materials = [Material(name="m", **mat)]
    p.geometry = [ShapeOp("rectangle", "add", "m", {"center_nm": [0, 0],
                                                    "size_nm": [n[0] * 2.0, n[1] * 2.0]})]
    p.initial = InitialState("random", {"seed": 3})
    p.field.B_mT = (12.0, -5.0, 30.0)
    return p.validate()


def test_every_term_density_sums_to_its_energy():
    p = _problem(Ku=4e4, Ku_axis=(0.0, 0.0, 1.0), D=1e-3, Kc1=2e4)
    sim = Simulation(p)
    dens = sim.energy_density()
    energies = sim.energies()
    V = float(np.prod(p.mesh.cell_m))
    assert set(dens) == set(energies)            # every term (5 of them here) and "total"
    assert len(dens) >= 6
    for name, e in dens.items():
        assert e.shape == sim.mask.shape
        assert np.all(e[~sim.mask] == 0.0)
        assert e.sum() * V == pytest.approx(energies[name], rel=1e-6, abs=1e-30), name


def test_exchange_density_of_a_helix_is_A_k_squared():
    A, n, d = 13e-12, 64, 2e-9
    p = _problem(n=(n, 4, 1), A=A)
    sim = Simulation(p)
    k = 2 * math.pi / (32 * d)                   # one turn every 32 cells
    x = (np.arange(n) + 0.5) * d
    m = np.zeros((3, 1, 4, n))
    m[0] = np.cos(k * x)
    m[1] = np.sin(k * x)
    sim.set_m(m)
    e = sim.energy_density()["exchange"]
    interior = e[0, :, 1:-1]
    expected = 2 * A * (1 - math.cos(k * d)) / d ** 2      # the stencil's exact value
    assert np.allclose(interior, expected, rtol=1e-5)   # float32 state
    assert expected == pytest.approx(A * k * k, rel=0.005)  # -> A k^2 ((kd)^2/12 = 0.3 % here)


def test_anisotropy_and_zeeman_densities_of_a_uniform_state():
    Ms, Ku = 8e5, 5e4
    p = _problem(Ms=Ms, Ku=Ku, Ku_axis=(1.0, 0.0, 0.0))
    sim = Simulation(p)
    m = np.zeros((3,) + sim.mask.shape)
    m[0] = 0.6
    m[2] = 0.8
    sim.set_m(m)
    dens = sim.energy_density()
    assert np.allclose(dens["anisotropy"], -Ku * 0.36)
    H = np.array(p.field.B_mT) * 1e-3 / MU0
    assert np.allclose(dens["zeeman"], -MU0 * Ms * (0.6 * H[0] + 0.8 * H[2]))
