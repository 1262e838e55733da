"""The floor under serving a member at another cell aspect (engine.neural.serving_floor): an
oracle member, exact within R and a / a0 times the trained cell's exact field beyond R, checked
against the Newell tensor by FFTDemag."""
import numpy as np
import torch
import torch.nn.functional as F

from engine.neural.lean import near_kernel
from engine.neural.serving_floor import labels, near_residual, oracle_errors, sample_set


def test_near_residual_is_the_direct_convolution():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((2, 6, 20, 24))
    R, a, a0 = 3, 2.5, 1.0
    k = near_kernel(a, 2, R, window=False) - a / a0 * near_kernel(a0, 2, R, window=False)
    ref = F.conv2d(torch.tensor(M), torch.tensor(k), padding=R).numpy()
    np.testing.assert_allclose(near_residual(M, 2, a, a0, R), ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_the_oracle_is_exact_at_the_trained_aspect():
    M, mask = sample_set(2, (48, 48), 3)
    assert oracle_errors(M, mask, 2, 1.6, 1.6, R=4).max() < 1e-12


def test_the_floor_falls_with_R_and_grows_with_the_thickness():
    """A column of nz cells of height a is a dipole sheet only far beyond its thickness nz a."""
    M, mask = sample_set(2, (64, 64), 4)
    H4, H1 = labels(M, 2, 4.0), labels(M, 2, 1.0)
    floors = [np.median(oracle_errors(M, mask, 2, 4.0, 1.0, R, H4, H1)) for R in (2, 8, 24)]
    assert floors[0] > floors[1] > floors[2] > 0
    assert floors[0] > 0.01   # two layers of dz/dx 4 from cubic cells with a 5 x 5 exact part: far off
    thin = np.median(oracle_errors(*sample_set(1, (64, 64), 4), 1, 4.0, 1.0, 8))
    thick = np.median(oracle_errors(*sample_set(3, (64, 64), 4), 3, 4.0, 1.0, 8))
    assert thick > 2 * thin
