"""Neural demag for films of several layers (issue 8, "the films the app draws"): training data
for nz > 1 labelled by the exact FFT of the real nz-layer grid, the symmetry augmentation on every
layer, the loss's in-plane part on every layer, training of an nz = 2 network, the model card's
nz = 2 member (chosen for its grids, warning + exact FFT for nz = 3) and its held-out error."""
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.demag import FFTDemag
from engine.neural.card import ModelCard
from engine.neural.data import Labeller, load_h5, make_samples, write_h5
from engine.neural.train import flip_layers, rel_err, split_loss, transform, transform_mask

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "neural"


def projections(a):
    """Four fixed random projections of an array (float64): they move with any real change of
    the data but not with the last bits that another CPU's FFT or SIMD path gives."""
    a = np.asarray(a, dtype=np.float64).ravel()
    return np.random.default_rng(12345).standard_normal((4, a.size)) @ a


# make_samples(seed, ny, nx, count, aspect, llg_fraction) as engine/neural/data.py computed it at
# commit 8b29e8f (before the nz option), projected as above: one-layer data must not change with
# the multi-layer generator beside it. (A sha256 of the arrays stood here first; it held on one
# machine only: the same code gives other last bits on another CPU, checked 2026-12-02 by running
# 8b29e8f's generator there, which matched today's to every bit.)
ONE_LAYER_REFERENCE = [
    ((5, 32, 48, 6, 1.0, 0.0),
     dict(M=(9.733024701339e+01, 1.033403768581e+02, 6.806973396817e+01, 4.430247606601e+01),
          H=(-4.986146771671e+01, -5.264910790012e+01, -3.562945694286e+01, -2.510954667919e+00),
          mask=(9.172540336340e+00, 1.696830501267e+02, -1.140004195430e+02, 1.011524037669e+02)),
     ["skyrmion/full", "smooth/ellipse", "smooth3d/polygon", "domains/ellipse", "wall/full", "wall/ellipse+holes"]),
    ((7, 40, 40, 5, 0.6, None),
     dict(M=(-2.964364274974e+01, 4.127548705597e+01, 1.572423694175e+02, 1.161267496027e+02),
          H=(-1.406905164418e+01, -2.925804418267e+01, -2.973641085005e+01, -4.288381996537e+01),
          mask=(-1.347566206735e+01, 1.559132148844e+02, 9.549154756488e+00, 3.340286939412e+01)),
     ["vortex/full", "skyrmion/rectangle", "domains/full", "uniform/ellipse", "smooth/rectangle"]),
]


@pytest.mark.parametrize("args,expected,kinds", ONE_LAYER_REFERENCE)
def test_one_layer_data_unchanged(args, expected, kinds):
    seed, ny, nx, count, aspect, llg = args
    M, H, mask, got_kinds = make_samples(seed, ny, nx, count, aspect=aspect, llg_fraction=llg)
    assert list(got_kinds) == kinds
    for name, arr in (("M", M), ("H", H), ("mask", mask)):
        np.testing.assert_allclose(projections(arr), expected[name], rtol=1e-6, atol=1e-6, err_msg=name)


def fft_field(M, nz, aspect):
    """Exact field of one sample (3 nz, ny, nx), layer-major, by FFTDemag of the (nx, ny, nz) grid."""
    ny, nx = M.shape[-2:]
    f = FFTDemag((nx, ny, nz), (1e-9, 1e-9, aspect * 1e-9), torch.float64)
    Mt = torch.tensor(M, dtype=torch.float64).reshape(nz, 3, ny, nx).transpose(0, 1)
    return f.h_from_M(Mt).transpose(0, 1).reshape(3 * nz, ny, nx).numpy()


@pytest.mark.parametrize("nz,aspect", [(2, 1.0), (3, 0.6)])
def test_layered_data_is_the_exact_fft_field(nz, aspect):
    M, H, mk, kinds = make_samples(11, 20, 28, 12, aspect=aspect, nz=nz)
    assert M.shape == H.shape == (12, 3 * nz, 20, 28) and mk.shape == (12, nz, 20, 28)
    for b in range(12):
        ref = fft_field(M[b], nz, aspect)
        assert np.abs(H[b] - ref).max() <= 1e-6 * np.abs(ref).max(), kinds[b]
        # M is zero outside each layer's mask (an empty layer is empty)
        assert not M[b].reshape(nz, 3, 20, 28)[~np.broadcast_to(mk[b].astype(bool)[:, None], (nz, 3, 20, 28))].any()
    # deterministic by seed
    M2, H2, mk2, kinds2 = make_samples(11, 20, 28, 12, aspect=aspect, nz=nz)
    assert list(kinds2) == list(kinds) and all(np.array_equal(a, b) for a, b in ((M, M2), (H, H2), (mk, mk2)))


def test_layered_textures_vary_through_the_thickness():
    """Most samples are one texture in every layer, some vary from layer to layer."""
    M, _, _, kinds = make_samples(3, 24, 24, 60, nz=2)
    same = [np.allclose(m[:3], m[3:]) for m in M]
    assert 0.2 < np.mean(same) < 0.8, kinds
    modes = {k.split("/")[2].split("+")[0] for k in kinds}
    assert {"same", "twist", "shift", "saf"} <= modes, modes


def test_layered_data_file_records_nz(tmp_path):
    import h5py
    path = tmp_path / "nz2.h5"
    write_h5(path, [(16, 16), (12, 20)], [5, 3], seed=4, progress=False, nz=2)
    with h5py.File(path) as f:
        assert int(f.attrs["nz"]) == 2
    sets = load_h5(path)
    M, H, mk = sets[(12, 20)]
    assert M.shape == (3, 6, 12, 20) and mk.shape == (3, 2, 12, 20) and mk.dtype == bool


def all_symmetries():
    return [(k, mir) for k in range(4) for mir in (False, True)]


@pytest.mark.parametrize("nz", [1, 2])
def test_symmetry_augmentation_is_exact_on_every_layer(nz):
    """Rotating and mirroring a sample (every layer's vectors with the points) gives the exact
    field of the rotated sample; for nz > 1 so does the z mirror (layers reversed, z negated)."""
    M, H, _, _ = make_samples(9, 18, 26, 3, aspect=0.7, nz=nz, llg_fraction=0.0)
    M, H = torch.tensor(M, dtype=torch.float64), torch.tensor(H, dtype=torch.float64)
    lab = Labeller(0.7)
    label = (lambda x: lab(x.numpy())) if nz == 1 else (lambda x: lab.layers(x.numpy(), nz))
    for k, mir in all_symmetries():
        Mt, Ht = transform(M, k, mir), transform(H, k, mir)
        assert np.abs(label(Mt) - Ht.numpy()).max() <= 1e-6 * float(H.abs().max()), (k, mir)
    if nz > 1:
        assert np.abs(label(flip_layers(M)) - flip_layers(H).numpy()).max() <= 1e-6 * float(H.abs().max())


def test_transform_turns_every_layer_the_same_way():
    """A +90 degree turn: an x-vector at (x, y) = (2, -2) from the centre goes to a y-vector at
    (2, 2), in each layer; masks of layers turn with them."""
    P = torch.zeros(1, 9, 9, 9)
    for l in range(3):
        P[0, 3 * l, 2, 6] = 1.0          # row 2 (y = -2), column 6 (x = 2)
    assert sorted(transform(P, 1, False)[0].nonzero().tolist()) == [[1, 6, 6], [4, 6, 6], [7, 6, 6]]
    mk = torch.zeros(1, 3, 9, 9, dtype=torch.bool)
    mk[0, :, 2, 6] = True
    assert transform_mask(mk, 1, False)[0].nonzero().tolist() == [[0, 6, 6], [1, 6, 6], [2, 6, 6]]


def test_loss_in_plane_part_covers_every_layer():
    torch.manual_seed(0)
    H = torch.randn(2, 6, 8, 8)
    mk = torch.ones(2, 2, 8, 8, dtype=torch.bool)
    for c, in_plane in [(0, True), (1, True), (3, True), (4, True), (2, False), (5, False)]:
        P = H.clone()
        P[:, c] += 0.1
        whole = rel_err(P, H, mk) ** 2
        assert torch.allclose(split_loss(P, H, mk) > whole * 1.5, torch.tensor(in_plane)), c
    # an empty layer (mask false) does not count
    mk[:, 1] = False
    P = H.clone()
    P[:, 3:] += 1.0
    assert torch.allclose(rel_err(P, H, mk), torch.zeros(2))


@pytest.mark.parametrize("layers, mask_layers", [(1, 0), (3, 0), (3, 3), (2, 1)])
def test_loss_and_error_equal_their_per_channel_definitions(layers, mask_layers):
    """component_sums broadcasts the mask and sums per component; the definitions weight every
    channel (3 l + i: component i of layer l) by its layer's mask and sum channel by channel."""
    g = torch.Generator().manual_seed(layers * 10 + mask_layers)
    B, ny, nx = 3, 9, 7
    P = torch.randn(B, 3 * layers, ny, nx, generator=g, dtype=torch.float64)
    H = torch.randn(B, 3 * layers, ny, nx, generator=g, dtype=torch.float64)
    shape = (B, ny, nx) if mask_layers == 0 else (B, mask_layers, ny, nx)
    mk = torch.rand(shape, generator=g) > 0.4
    w = mk[:, None] if mask_layers == 0 else mk.repeat_interleave(3 * layers // mask_layers, dim=1)
    w = w.to(P.dtype).expand_as(P)
    d2 = ((P - H) ** 2 * w).sum(dim=(2, 3))                          # (B, channels)
    t2 = (H ** 2 * w).sum(dim=(2, 3))
    xy = torch.arange(3 * layers) % 3 != 2
    whole = d2.sum(1) / t2.sum(1)
    loss = whole + d2[:, xy].sum(1) / (t2[:, xy].sum(1) + 0.01 * t2.sum(1))
    torch.testing.assert_close(rel_err(P, H, mk), whole.sqrt(), rtol=1e-12, atol=0)
    torch.testing.assert_close(split_loss(P, H, mk), loss, rtol=1e-12, atol=0)
    # --far-loss: the error against the far field alone, H - near, as a third term
    near = torch.randn(B, 3 * layers, ny, nx, generator=g, dtype=torch.float64)
    f2 = ((H - near) ** 2 * w).sum(dim=(2, 3))
    torch.testing.assert_close(split_loss(P, H, mk, near=near), loss + d2.sum(1) / (f2.sum(1) + 0.01 * t2.sum(1)),
                               rtol=1e-12, atol=0)


def test_far_loss_weighs_the_learned_part_of_hz():
    """A uniform out-of-plane film: H_z is the local -Mz within a few per cent, and the far part
    of it is the learned part's job. A prediction that leaves that part out is 2 % off: the
    whole-field loss barely sees it (4e-4); the far-field term, whose denominator is the far
    field's norm plus 1 % of the whole field's, weighs it about 100 times more."""
    mk = torch.ones(1, 16, 16, dtype=torch.bool)
    near = torch.zeros(1, 3, 16, 16)
    near[:, 2] = -0.98
    H = near.clone()
    H[:, 2] -= 0.02                   # the far field beyond the exact part
    pred = near.clone()               # a learned part with no zz far field
    plain = split_loss(pred, H, mk)
    far = split_loss(pred, H, mk, near=near)
    assert float(plain) == pytest.approx(0.02 ** 2, rel=1e-3)
    assert float(far - plain) == pytest.approx(0.02 ** 2 / (0.02 ** 2 + 0.01), rel=1e-3)
    assert float(far - plain) > 50 * float(plain)


def test_training_an_nz2_network(tmp_path):
    from engine.neural.train import main_train
    from engine.neural.weights import load_weights, save_weights
    from engine.neural.lean import LeanFilmNet
    path = tmp_path / "nz2.h5"
    write_h5(path, [(12, 12)], [6], seed=6, progress=False, nz=2)
    args = ["--data", str(path), "--out", str(tmp_path / "run"), "--batch", "3", "--lr", "3e-3",
            "--val-fraction", "0.34", "--channels", "4", "--no-progress", "--warmup", "1", "--epochs", "1"]
    res = main_train(args)
    assert len(res["history"]) == 1
    net, meta = load_weights(tmp_path / "run" / "best.pt")
    assert net.config["nz"] == 2 and meta["nz"] == 2
    assert net(torch.zeros(1, 6, 12, 12)).shape == (1, 6, 12, 12)
    # a one-layer network starts a two-layer one with its deeper levels (c features whatever
    # the layer count), E_1 reading the sum of the layers and U_0 the same far field for each
    one = LeanFilmNet(nz=1, channels=4)
    save_weights(one, tmp_path / "nz1.pt", {})
    main_train(args + ["--init", str(tmp_path / "nz1.pt"), "--lr", "0", "--out", str(tmp_path / "from1")])
    net2, _ = load_weights(tmp_path / "from1" / "best.pt")
    assert net2.config["nz"] == 2 and net2.E1.weight.shape[1] == 6 and net2.U0.weight.shape[0] == 4 * 6
    torch.testing.assert_close(net2.E.weight, one.E.weight)
    torch.testing.assert_close(net2.U.weight, one.U.weight)
    torch.testing.assert_close(net2.E1.weight, one.E1.weight.repeat(1, 2, 1, 1))
    # from a layered network of another nz, E_1 and U_0 (their channels count the layers) start afresh
    save_weights(net2, tmp_path / "nz2.pt", {})
    path3 = tmp_path / "nz3.h5"
    write_h5(path3, [(12, 12)], [6], seed=7, progress=False, nz=3)
    main_train(args[2:] + ["--data", str(path3), "--init", str(tmp_path / "nz2.pt"), "--lr", "0",
                           "--out", str(tmp_path / "from2")])
    net3, _ = load_weights(tmp_path / "from2" / "best.pt")
    assert net3.E1.weight.shape[1] == 9 and not torch.equal(net3.E1.weight[:, :6], net2.E1.weight)
    torch.testing.assert_close(net3.E.weight, one.E.weight)


def test_layered_start_from_one_layer_is_that_member_on_the_summed_layers():
    """layered_from_one_layer: every layer's learned part is the one-layer member's learned part
    of the sum of the layers (the layered far field to leading order in the layer offset)."""
    from engine.neural.lean import LeanFilmNet, layered_from_one_layer
    torch.manual_seed(3)
    one = LeanFilmNet(nz=1, channels=4, stem=4, near_radius=5)
    for p in one.parameters():
        torch.nn.init.normal_(p, std=0.1)
    three = LeanFilmNet(nz=3, channels=4, stem=4, near_radius=5)
    three.load_state_dict(layered_from_one_layer(one.state_dict(), 3))
    x = torch.randn(2, 9, 40, 56)
    with torch.no_grad():
        want = one.far(x[:, 0:3] + x[:, 3:6] + x[:, 6:9])
        got = three.far(x)
    f2 = 16   # stem^2 outputs per component
    for layer in range(3):
        torch.testing.assert_close(got[:, layer * 3 * f2:(layer + 1) * 3 * f2], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one-layer member reads 3"):
        layered_from_one_layer(three.state_dict(), 2)


def test_layered_start_from_the_shipped_one_layer_member_is_near_the_exact_field():
    """The start is a good one: the shipped cubic one-layer member laid out for two layers of
    cubic cells is within a few per cent of the exact FFT field on fresh two-layer textures
    (the layer offset, 1 cell, is small against its exact part's radius), where E_1 and U_0
    afresh leave the learned part's whole share of the field."""
    from engine.neural.lean import layered_from_one_layer
    from engine.neural.weights import build_net, load_weights
    from engine.neural.card_measure import rel_err as card_rel_err
    one, _ = load_weights(RESOURCES / "lean_nz1_dzdx1_R16.pt")
    two = build_net(dict(one.config, nz=2))
    two.load_state_dict(layered_from_one_layer(one.state_dict(), 2))
    fresh = build_net(dict(one.config, nz=2))
    M, H, mk, _ = make_samples(4243, 96, 96, 6, aspect=1.0, llg_fraction=0.0, nz=2)
    with torch.no_grad():
        e = card_rel_err(two(torch.tensor(M)), torch.tensor(H), torch.tensor(mk).bool()).numpy()
        e0 = card_rel_err(fresh(torch.tensor(M)), torch.tensor(H), torch.tensor(mk).bool()).numpy()
    # measured: median 0.70 % (its exact part ends at 16 cells; session 24's 24-cell member: 0.30 %,
    # session 23's 10-cell member: 2.8 %), afresh 12.7 %
    assert np.median(e) < 0.01 and np.median(e0) > 5 * np.median(e), (e, e0)


CARD = {"members": [{"file": "a.pt", "nz": 1, "dz_dx": 1.0}, {"file": "b.pt", "nz": 1, "dz_dx": 0.6},
                    {"file": "c.pt", "nz": 2, "dz_dx": 1.0}]}


def test_card_sentences_with_a_two_layer_member():
    card = ModelCard(CARD)
    d1 = (3e-9, 3e-9, 3e-9)
    assert card.member_for((64, 64, 2), d1)["file"] == "c.pt"
    assert card.member_for((64, 64, 1), d1)["file"] == "a.pt"
    assert card.outside((64, 64, 3), d1) == ["3 layers: the networks are for films of nz = 1, 2"]
    (why,) = card.outside((64, 64, 2), (5e-9, 5e-9, 3e-9))
    assert "dz/dx = 0.6" in why and "for nz = 2" in why and "dz/dx = 1 only" in why, why
    (why,) = card.outside((64, 64, 1), (3e-9, 3e-9, 9e-9))
    assert "for nz = 1" in why and "dz/dx = 0.6, 1 only" in why, why


# ------------------------------------------------------------------ the shipped two-layer member
# Held-out bounds for the shipped layered members on 12 fresh 64 x 64 textures (seed 987655,
# never used in training), through NeuralDemag as the app runs it, at dz/dx across each member's
# range. The one-hour family (one member per nz, exact part out to 40 cells, trained at dz/dx 1
# and 4; session 24's run of scripts/one_hour_family.sh) measured on this set, median / p90 %: two
# layers 0.02 / 0.06 (0.25), 0.06 / 0.13 (1), 0.09 / 0.17 (1.6), 0.20 / 0.25 (4); three layers
# 0.05 / 0.11 (0.5), 0.10 / 0.15 (1), 0.15 / 0.19 (1.6), 0.33 / 0.42 (4); session 23's run of the
# same recipe within 0.01 of these. Four layers, session 27's run (the 40-cell member 11 minutes,
# then the tall 56-cell member 9 minutes from it): 0.04 / 0.12 (0.25), 0.12 / 0.22 (1), 0.17 / 0.27
# (1.6), 0.35 / 0.39 (3.2, the end of the 40-cell member's range), 0.39 / 0.48 (4, the tall
# member). The members before them (sessions 6-13) measured medians of 0.17-0.75 % at cubic cells
# on the same set.
# The model card (resources/neural/model_card.md) states each member's error on 54 held-out samples
# per dz/dx up to 1024 x 1024 against issue 8's targets (median 1 %, p90 2 %). The bounds leave
# about 1.4x for weights retrained within sampling noise: regression guards, not the targets.
LAYERED_LIMITS = {(2, 0.25): (0.0003, 0.0009), (2, 1.0): (0.0009, 0.002), (2, 1.6): (0.0013, 0.0024),
                  (2, 4.0): (0.0029, 0.0042), (3, 0.5): (0.0008, 0.0016), (3, 1.0): (0.0013, 0.0022),
                  (3, 1.6): (0.0022, 0.0028), (3, 4.0): (0.0047, 0.0064), (4, 0.25): (0.0006, 0.0016),
                  (4, 1.0): (0.0017, 0.0031), (4, 1.6): (0.0024, 0.0038), (4, 3.2): (0.0048, 0.0054),
                  (4, 4.0): (0.0054, 0.0066)}


def test_neural_demag_picks_the_layered_members_and_falls_back_for_five(recwarn):
    from engine.neural.demag import NeuralDemag
    d = (3e-9, 3e-9, 3e-9)
    nd = NeuralDemag((40, 24, 2), d)
    assert nd.fallback is None and not nd.warnings
    # one member per layer count, trained on cubic and dz/dx 4 cells, serving dz/dx 0.25 to 4
    assert nd.member["nz"] == 2 and nd.member["dz_dx_range"] == [0.25, 4.0] and nd.net.config["nz"] == 2
    assert not [w for w in recwarn.list if "neural" in str(w.message)]
    M = torch.randn(3, 2, 24, 40) * 8e5
    assert nd.h_from_M(M).shape == (3, 2, 24, 40)
    for nz in (3, 4):
        ndz = NeuralDemag((20, 12, nz), d)
        assert ndz.fallback is None and ndz.member["nz"] == nz and ndz.net.config["nz"] == nz
        assert ndz.h_from_M(torch.randn(3, nz, 12, 20) * 8e5).shape == (3, nz, 12, 20)
    with pytest.warns(UserWarning, match="5 layers"):
        nd5 = NeuralDemag((16, 16, 5), d, torch.float64)
    assert nd5.fallback is not None
    M5 = torch.randn(3, 5, 16, 16, dtype=torch.float64) * 8e5
    assert torch.equal(nd5.h_from_M(M5), FFTDemag((16, 16, 5), d, torch.float64).h_from_M(M5))
    assert NeuralDemag((20, 10, 2), (5e-9, 5e-9, 3e-9)).fallback is None   # two layers of SP4's cells
    for nz, dz in [(2, 6e-9), (4, 1.5e-9), (4, 4.5e-9), (3, 4.5e-9), (3, 2.4e-9), (3, 12e-9), (4, 9e-9)]:
        top = 3.2 if nz == 4 else 4.0   # dz/dx 0.5 to 4 (four layers to 3.2, then the tall member)
        assert NeuralDemag((20, 10, nz), (3e-9, 3e-9, dz)).member["dz_dx_range"] == [0.25, top], (nz, dz)
    tall = NeuralDemag((20, 10, 4), (3e-9, 3e-9, 12e-9))   # dz/dx 4: the 56-cell tall member
    assert tall.fallback is None and tall.member["dz_dx_range"] == [3.2, 4.0] and tall.net.R == 56
    with pytest.warns(UserWarning, match="nz = 4 serve dz/dx = 0.25 to 4 only"):            # taller than both
        assert NeuralDemag((20, 10, 4), (3e-9, 3e-9, 13.5e-9)).fallback is not None


def layered_held_out_errors(nz, aspect=1.0, seed=987655, ny=64, nx=64, count=12):
    """Relative L2 errors of the shipped nz-layer member on fresh two-to-four-layer textures
    (a seed never used in training) of cells with dz/dx = aspect, through NeuralDemag as the app
    runs it."""
    from engine.neural.data import MS_REF
    from engine.neural.demag import NeuralDemag
    M, H, mk, kinds = make_samples(seed, ny, nx, count, aspect=aspect, nz=nz)
    nd = NeuralDemag((nx, ny, nz), (3e-9, 3e-9, aspect * 3e-9))
    assert nd.fallback is None
    errs = []
    for i in range(count):
        Mt = torch.tensor(M[i] * MS_REF).reshape(nz, 3, ny, nx).transpose(0, 1)   # (3, nz, ny, nx)
        Hn = nd.h_from_M(Mt).transpose(0, 1).reshape(3 * nz, ny, nx).numpy() / MS_REF
        w = np.repeat(mk[i].astype(bool), 3, axis=0)                             # each layer's cells
        errs.append(np.sqrt(((Hn - H[i]) ** 2)[w].sum() / (H[i] ** 2)[w].sum()))
    return np.array(errs), kinds


@pytest.mark.parametrize("nz,aspect", sorted(LAYERED_LIMITS))
def test_shipped_layered_members_on_a_small_held_out_set(nz, aspect):
    """Each layered member at its trained dz/dx (1) and served to flatter and taller cells across
    its range (exact near kernel of the cell, learned part scaled)."""
    errs, kinds = layered_held_out_errors(nz, aspect)
    median_limit, p90_limit = LAYERED_LIMITS[nz, aspect]
    assert np.median(errs) <= median_limit and np.percentile(errs, 90) <= p90_limit, (errs, kinds)


def sequential_transform(x, k, mirror):
    """transform() as written before it turned the vectors in one gather: a turn at a time."""
    B, C, ny, nx = x.shape
    x = x.reshape(B, C // 3, 3, ny, nx)
    for _ in range(k % 4):
        x = torch.rot90(x, 1, dims=(4, 3))
        x = torch.stack([-x[:, :, 1], x[:, :, 0], x[:, :, 2]], dim=2)
    if mirror:
        x = torch.flip(x, dims=(4,))
        x = torch.stack([-x[:, :, 0], x[:, :, 1], x[:, :, 2]], dim=2)
    return x.reshape(B, C, x.shape[-2], x.shape[-1])


@pytest.mark.parametrize("nz", [1, 3])
def test_transform_in_one_gather_equals_turn_by_turn(nz):
    x = torch.randn(2, 3 * nz, 7, 11)
    for k, mir in all_symmetries():
        assert torch.equal(transform(x, k, mir), sequential_transform(x, k, mir)), (k, mir)


@pytest.mark.parametrize("nz", [1, 2])
def test_kept_far_target_turns_with_the_sample(nz):
    """Training keeps each sample's far target F = H - near once, with the sums of squares the
    loss needs (with_far_target), and turns F with M. That is exact: the near field of the
    turned sample is the turned near field for every symmetry of the square, for the z mirror
    (nz > 1) and for in-plane-only samples (nz = 1); and the loss from F and the kept sums is
    split_loss of the network's own forward against H, far term and gradients included."""
    from engine.neural.lean import LeanFilmNet
    from engine.neural.train import _square_sums, loss_from_sums, mask_weight, with_far_target
    torch.manual_seed(1)
    net = LeanFilmNet(nz=nz, near_radius=6, stem=4, aspect=0.7)
    M, H = torch.randn(3, 3 * nz, 20, 28), torch.randn(3, 3 * nz, 20, 28)
    mk = torch.rand(3, 20, 28) > 0.3
    kept = with_far_target(net, {(20, 28): (M, H, mk)})[(20, 28)]
    assert len(kept) == 4 and kept[0] is M and kept[2] is mk
    F, sums = kept[1], kept[3]
    near = H - F
    tol = 1e-5 * float(near.abs().max())
    with torch.no_grad():
        for k, mir in all_symmetries():
            assert (net.near(transform(M, k, mir)) - transform(near, k, mir)).abs().max() <= tol, (k, mir)
        if nz > 1:
            assert (net.near(flip_layers(M)) - flip_layers(near)).abs().max() <= tol
        else:
            Mi, Ni = M.clone(), near.clone()
            Mi[:, 2] = 0
            Ni[:, 2] = 0
            assert (net.near(Mi) - Ni).abs().max() <= tol
    for p in net.parameters():   # a learned part that is not zero
        torch.nn.init.normal_(p, std=0.05)
    k, mir = 1, True
    Mt, Ft, Ht, mt = transform(M, k, mir), transform(F, k, mir), transform(H, k, mir), transform_mask(mk, k, mir)
    err = net.combine(-Ft, net.far(Mt))
    d2 = _square_sums(err, mask_weight(mt, err))   # turned: 28 x 20
    got = loss_from_sums(d2, sums[:, 0].float(), sums[:, 1].float()).sum()
    want = split_loss(net(Mt), Ht, mt, near=Ht - Ft).sum()
    g1 = torch.autograd.grad(got, net.U0.weight)[0]
    g2 = torch.autograd.grad(want, net.U0.weight)[0]
    assert abs(float((got - want).detach())) <= 1e-5 * float(want.detach())
    assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-6 * float(g2.abs().max()))
    assert float((want - split_loss(net(Mt), Ht, mt).sum()).detach()) > 0.1 * float(want.detach())   # the far term counts
