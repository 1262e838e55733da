"""A member serving a range of cell aspects dz/dx (engine.neural.lean.retargeted_near_kernel,
LeanFilmNet.serve, the model card's dz_dx_range).

The physics checked here: beyond the exact near field, a column's field grows with its height
(a dipole sheet), so the remainder of the kernel for cells (1, 1, a0) scaled by a / a0 is the
remainder for cells (1, 1, a) up to terms that fall off faster with distance. The checks use the
exact remainder in place of a network, against engine.demag.FFTDemag (Newell tensor)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.demag import FFTDemag
from engine.neural.card import ModelCard
from engine.neural.lean import LeanFilmNet, near_kernel, retargeted_near_kernel


@pytest.mark.parametrize("nz", [1, 2])
def test_retargeted_kernel_at_the_trained_aspect_is_the_windowed_one(nz):
    for R in (2, 4):
        np.testing.assert_allclose(retargeted_near_kernel(0.8, 0.8, nz, R), near_kernel(0.8, nz, R),
                                   rtol=0, atol=1e-14)


def _field(M, a, a0, R, n):
    """H / Ms from the retargeted near kernel (radius R) plus a / a0 times the exact remainder of
    the a0 kernel over the whole grid (what a perfect member trained at a0 would learn)."""
    big = n - 1
    rem0 = near_kernel(a0, 1, big, window=False) - np.pad(near_kernel(a0, 1, R), [(0, 0), (0, 0)] + [(big - R,) * 2] * 2)
    w = np.pad(retargeted_near_kernel(a, a0, 1, R), [(0, 0), (0, 0)] + [(big - R,) * 2] * 2) + a / a0 * rem0
    return F.conv2d(M, torch.tensor(w), padding=big)


def _exact(M, a, n):
    fft = FFTDemag((n, n, 1), (1e-9, 1e-9, a * 1e-9), torch.float64)
    return fft.h_from_M(M[0][:, None])[:, 0][None]


def _texture(n, seed=3):
    g = torch.Generator().manual_seed(seed)
    m = F.avg_pool2d(torch.randn(1, 3, n + 8, n + 8, generator=g, dtype=torch.float64), 9, 1)
    return m / m.norm(dim=1, keepdim=True)


def test_retargeting_with_the_exact_remainder_is_exact_when_the_near_field_spans_the_grid():
    n = 12
    M = _texture(n)
    for a in (0.3, 2.5):
        got = _field(M, a, 1.0, n - 1, n)
        np.testing.assert_allclose(got.numpy(), _exact(M, a, n).numpy(), atol=1e-10)


def test_retargeting_error_is_small_inside_a_range_and_large_far_outside():
    """With a 9 x 9 near field on a 48 x 48 film, the scaled remainder of cubic cells serves
    thinner cells to better than 1 % (what beyond R is not a dipole sheet is small) but not cells
    four times taller: why each member has a range, measured on the model card."""
    n = 48
    M = _texture(n)

    def err(a):
        ref = _exact(M, a, n)
        return float((_field(M, a, 1.0, 4, n) - ref).norm() / ref.norm())

    assert err(1.0) < 1e-10
    assert err(0.25) < 0.01 and err(0.6) < 0.01 and err(1.25) < 0.01
    assert err(4.0) > 0.02


def test_serve_rebuilds_the_near_kernel_and_scales_the_learned_part():
    torch.manual_seed(0)
    net = LeanFilmNet(aspect=1.0, near_radius=2).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        far = net._up(net.far(x), (32, 32))
        served = net.serve(0.5)
        y = served(x)
        ref = F.conv2d(x, torch.tensor(retargeted_near_kernel(0.5, 1.0, 1, 2), dtype=torch.float32), padding=2) + 0.5 * far
    assert served.config["aspect"] == 1.0 and served.served_aspect == 0.5 and served.far_scale == 0.5
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)


RANGED = {"members": [{"file": "thin.pt", "nz": 1, "dz_dx": 1.0, "dz_dx_range": [0.25, 1.4]},
                      {"file": "tall.pt", "nz": 1, "dz_dx": 2.0, "dz_dx_range": [1.4, 2.8]},
                      {"file": "two.pt", "nz": 2, "dz_dx": 1.0}]}


def test_card_ranges_pick_a_member_and_say_why_outside():
    card = ModelCard(RANGED)
    pick = lambda a, nz=1: (card.member_for((64, 64, nz), (1.0, 1.0, a)) or {}).get("file")  # noqa: E731
    assert pick(0.25) == "thin.pt" and pick(0.6) == "thin.pt" and pick(1.0) == "thin.pt"
    assert pick(1.4) == "tall.pt"          # a shared bound: the member trained for taller cells
    assert pick(2.8) == "tall.pt" and pick(3.0) is None and pick(0.2) is None
    assert pick(1.0, 2) == "two.pt" and pick(0.5, 2) is None
    (why,) = card.outside((64, 64, 1), (1.0, 1.0, 3.0))
    assert "dz/dx = 3" in why and "serve dz/dx = 0.25 to 2.8 only" in why, why   # ranges that meet: one span
    (why,) = card.outside((64, 64, 2), (1.0, 1.0, 0.5))
    assert "serve dz/dx = 1 only" in why, why


def _with_large_grid_errors(at_bound_thin, at_bound_tall):
    """RANGED with each one-layer member's large-grid (median, p90) measured at the bound 1.4."""
    card = {"members": [dict(m) for m in RANGED["members"]]}
    for m, (med, p90) in zip(card["members"], (at_bound_thin, at_bound_tall)):
        m["held_out"] = {"by_dz_dx_large": {"1.4": {"median": med, "p90": p90}, f"{m['dz_dx']:g}": {"median": 0.001, "p90": 0.002}}}
    return ModelCard(card)


def test_a_shared_bound_goes_to_the_member_measured_better_there():
    """Which member transfers better to a shared bound was a rule of thumb (the one trained for
    taller cells); on large grids it depends on the pair (engine.neural.serving_floor), so where
    both were measured there the card's numbers decide: the larger of median / 1 % and p90 / 2 %."""
    pick = lambda card, a: card.member_for((64, 64, 1), (1.0, 1.0, a))["file"]  # noqa: E731
    assert pick(_with_large_grid_errors((0.006, 0.011), (0.012, 0.018)), 1.4) == "thin.pt"
    assert pick(_with_large_grid_errors((0.006, 0.025), (0.009, 0.018)), 1.4) == "tall.pt"   # p90 decides
    assert pick(_with_large_grid_errors((0.012, 0.018), (0.006, 0.011)), 1.4) == "tall.pt"
    # inside one range nothing changes, and a card without measurements keeps the rule
    assert pick(_with_large_grid_errors((0.006, 0.011), (0.012, 0.018)), 2.0) == "tall.pt"
    assert pick(ModelCard(RANGED), 1.4) == "tall.pt"


def test_neural_demag_serves_an_aspect_inside_a_shipped_range(recwarn):
    from engine.neural.demag import NeuralDemag
    card = ModelCard.load()
    spans = [(m, ModelCard.aspect_range(m)) for m in card.members if m.get("nz", 1) == 1]
    m, (lo, hi) = max(spans, key=lambda t: t[1][1] / t[1][0])
    if hi / lo < 1.01:
        pytest.skip("no shipped member serves a range of dz/dx")
    a = float(np.sqrt(lo * hi)) if abs(np.sqrt(lo * hi) - m["dz_dx"]) > 0.05 else lo
    nd = NeuralDemag((40, 24, 1), (2e-9, 2e-9, a * 2e-9))
    assert nd.fallback is None and not nd.warnings and nd.member["file"] == m["file"]
    assert nd.net.served_aspect == pytest.approx(a) and nd.net.far_scale == pytest.approx(a / m["dz_dx"])
    assert not [w for w in recwarn.list if "neural" in str(w.message)]
    beyond = 1.5 * max(h for _, (_, h) in spans)
    with pytest.warns(UserWarning, match="outside the model card"):
        assert NeuralDemag((40, 24, 1), (2e-9, 2e-9, beyond * 2e-9)).fallback is not None


def test_as_served_takes_at_each_measured_aspect_the_member_that_serves_it():
    """The card's as-served view: at a shared bound only the member NeuralDemag picks counts
    (the other's miss there is not what a user gets), and the verdict per nz says where the
    targets are missed."""
    from engine.neural.card_measure import served_validation
    card = _with_large_grid_errors((0.012, 0.025), (0.006, 0.011))   # the thin member misses at 1.4
    rows = card.as_served()
    assert [(a, m["file"]) for a, m, _ in rows[1]] == [(1.0, "thin.pt"), (1.4, "tall.pt"), (2.0, "tall.pt")]
    assert 2 not in rows                        # nz = 2 was never measured on large grids
    for m in card.members:
        for s in m.get("held_out", {}).get("by_dz_dx_large", {}).values():
            s["count"] = 14
    v = served_validation(card.members)
    assert v["as_served_large_grids"]["nz=1"]["1.4"]["member"] == "tall.pt"
    assert v["targets_met_as_served_large_grids"] == {"nz=1": "met at all 3 measured dz/dx"}
    card.members[1]["held_out"]["by_dz_dx_large"]["2"] = {"median": 0.013, "p90": 0.015, "count": 14}
    v = served_validation(card.members)
    assert v["targets_met_as_served_large_grids"]["nz=1"] == "missed at 1 of 3 measured dz/dx: 2: median 1.30%"


def test_expected_error_is_the_serving_members_number_at_the_nearest_measured_aspect():
    """Before a run the GUI says what the card expects on this film: the member that serves
    it, at the measured dz/dx nearest the grid's, on large grids for a large grid."""
    card = _with_large_grid_errors((0.006, 0.011), (0.012, 0.018))
    for m in card.members[:2]:                  # the one-layer members; two.pt has no numbers
        m["held_out"]["by_dz_dx"] = {"1.4": {"median": 0.004, "p90": 0.008},
                                                   f"{m['dz_dx']:g}": {"median": 0.002, "p90": 0.003}}
    big = card.expected_error((512, 512, 1), (1.0, 1.0, 1.3))        # served by thin.pt; 1.4 is nearest
    assert big == {"member": "thin.pt", "dz_dx": 1.4, "large": True, "median": 0.006, "p90": 0.011}
    small = card.expected_error((64, 64, 1), (1.0, 1.0, 2.5))         # tall.pt, nearest its own 2
    assert small["member"] == "tall.pt" and small["dz_dx"] == 2.0 and not small["large"] and small["median"] == 0.002
    assert card.expected_error((64, 64, 1), (1.0, 1.0, 3.5)) is None  # outside the card
    assert card.expected_error((64, 64, 2), (1.0, 1.0, 1.0)) is None  # a member without numbers
