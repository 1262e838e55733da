"""The neural demag (engine.neural, generation 2): the exact near field, the lean network's
shapes and linearity, the model card's limits (warning + exact FFT outside), the shipped weights
against the exact FFT field on held-out textures, safe weights files, the probe, training end to
end, and NeuralDemag inside a Simulation."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from engine import Material, Mesh, Problem, Simulation, SolverSpec
from engine.demag import FFTDemag
from engine.neural.card import ModelCard, member_key
from engine.neural.data import MS_REF, load_h5, make_samples, write_h5
from engine.neural.demag import NeuralDemag
from engine.neural.lean import LeanFilmNet, near_kernel
from engine.neural.probe import probe
from engine.neural.weights import WeightsError, load_weights, save_weights
from engine.resources import resource_path


# Held-out limits for the small in-test sets (16 fresh 64 x 64 textures, seed 987654). The shipped
# one-layer member (session 25: exact part out to 16 cells, a 1 x 1 U0, trained at dz/dx 1 and 4)
# gives on them median / p90 0.100 % / 0.228 % (dz/dx = 1), 0.063 % / 0.167 % (0.6), 0.082 % /
# 0.201 % (0.8), 0.036 % / 0.109 % (0.35), and for tall cells 0.183 % / 0.327 % (2), 0.284 % /
# 0.401 % (3), 0.384 % / 0.499 % (4); the 256^2 pair 0.20 % and 0.26 %. (Session 24's member, out
# to 24 cells with a 3 x 3 U0: 0.043 % / 0.117 % at 1, 0.189 % / 0.290 % at 4.) The model card
# states its numbers on 54 held-out samples up to 1024^2 per measured dz/dx.
# The limits leave about 1.4x over the worst for retraining noise: a regression guard; the
# targets themselves (median 1 %, p90 2 %) are checked by the card's measurement.
MEDIAN_LIMIT, P90_LIMIT = 0.0014, 0.0032
TALL_MEDIAN_LIMIT, TALL_P90_LIMIT = 0.0054, 0.0070
# four layers: the 40-cell member to dz/dx 3.2 (at 4 session 24's measured 1.26 / 2.43 % on large
# grids), a 56-cell member for tall cells from 3.2 to 4
FOUR_LAYERS_TOP, TALL_FOUR_LAYERS = 3.2, (3.2, 4.0)


def rel_l2(a, b):
    return float(np.sqrt(((a - b) ** 2).sum() / (b ** 2).sum()))


@pytest.fixture(scope="module")
def shipped():
    return NeuralDemag((64, 64, 1), (3e-9, 3e-9, 3e-9))


@pytest.mark.parametrize("nz,aspect", [(1, 1.0), (1, 0.6), (2, 0.6), (3, 2.0)])
def test_near_field_is_the_exact_newell_kernel(nz, aspect):
    """Unwindowed, the near stencil reproduces the FFT field of point sources at offsets <= 2
    in every layer pair: the near field is exact for any cell and layer count."""
    n = 9
    M = torch.zeros(3, nz, n, n, dtype=torch.float64)
    M[:, 0, 4, 4] = torch.tensor([1.0, 0.3, -0.7])
    M[:, nz - 1, 4, 5] += torch.tensor([0.2, 1.0, 0.5])
    H = FFTDemag((n, n, nz), (1e-9, 1e-9, aspect * 1e-9), torch.float64).h_from_M(M)
    w = torch.tensor(near_kernel(aspect, nz, 2, window=False))
    x = M.transpose(0, 1).reshape(1, 3 * nz, n, n)
    Hn = torch.nn.functional.conv2d(x, w, padding=2).reshape(nz, 3, n, n).transpose(0, 1)
    # cells whose every source lies within 2 columns
    assert torch.allclose(Hn[..., 3:6, 3:7], H[..., 3:6, 3:7], atol=1e-12)


@pytest.mark.parametrize("ny,nx", [(33, 47), (7, 5), (25, 100), (1, 9)])
def test_lean_net_runs_on_odd_grids(ny, nx):
    torch.manual_seed(0)
    for nz in (1, 2):
        net = LeanFilmNet(nz=nz, channels=4)
        y = net(torch.randn(2, 3 * nz, ny, nx))
        assert y.shape == (2, 3 * nz, ny, nx) and torch.isfinite(y).all()


@pytest.mark.parametrize("nz,aspect", [(1, 1.0), (1, 2.0), (2, 4.0), (3, 4.0), (4, 1.0)])
def test_small_grids_uniform_states(nz, aspect):
    """Uniform in-plane states on squares of 24 to 40 cells (the app's hysteresis example is 40 x
    40): before the learned part ran such grids with fewer levels than any training grid, 4-30 %
    (the hysteresis example 9 %); with the vacuum padding of LeanFilmNet._deep_enough they are
    served like a 48^2 grid (0.8-1 % measured). Against the exact FFT of the same grid."""
    for n in (24, 40):
        grid, d = (n, n, nz), (3e-9, 3e-9, 3e-9 * aspect)
        nd = NeuralDemag(grid, d)
        assert nd.fallback is None
        m = torch.zeros(3, nz, n, n, dtype=torch.float64)
        m[0], m[1] = 1.0, 0.1
        r = probe(m.numpy(), 8e5, grid, d, nd)
        assert r.rel_l2 < 0.02, (n, r.rel_l2)


def test_small_grid_padding_is_vacuum_only():
    """The padding adds empty cells after the grid: the same as running the network on a larger
    grid holding the magnet in its corner, and no change at all to grids of 48 cells or more
    along their longer side (every training and held-out grid)."""
    torch.manual_seed(1)
    net = LeanFilmNet(nz=2, channels=4, stem=4, near_radius=4)
    x = torch.randn(1, 6, 30, 21)
    with torch.no_grad():
        y = net(x)
        big = net(torch.nn.functional.pad(x, (0, 48 - 21, 0, 60 - 30)))
    assert torch.allclose(y, big[..., :30, :21], atol=1e-5 * float(y.abs().max()))
    assert LeanFilmNet._deep_enough(torch.zeros(1, 3, 20, 48)).shape[-2:] == (20, 48)
    assert LeanFilmNet._deep_enough(torch.zeros(1, 3, 40, 17)).shape[-2:] == (48, 17)


def test_linear_in_M(shipped):
    """The network is linear: the field scales with Ms and adds up by construction."""
    x, z = torch.randn(3, 1, 24, 40) * 8e5, torch.randn(3, 1, 24, 40) * 8e5
    h = shipped.h_from_M
    assert torch.allclose(h(2.5 * x + z), 2.5 * h(x) + h(z), rtol=1e-4, atol=1e-3 * float(h(x).abs().max()))


def test_network_field_is_local_in_the_near_field_and_cheap():
    net = LeanFilmNet(channels=8)
    assert net.macs_per_cell() < 800 and net.n_params() < 10000


def test_card_members_and_limits():
    """The shipped family: one member per number of layers, each for dz/dx 0.25 to 4 (four layers
    to FOUR_LAYERS_TOP, and a member for tall four-layer cells above). One layer: a 16-cell exact
    part and a 1 x 1 U0, for cubic cells, standard problem 4 and the tall examples alike; two to
    four layers: 40-cell exact parts; tall four layers: 56 cells."""
    card = ModelCard.load()
    (one,) = [m for m in card.members if m["nz"] == 1]
    assert one["near_radius"] == 16 and one["u0_kernel"] == 1 and ModelCard.aspect_range(one) == (0.25, 4.0)
    assert one["default"]
    assert card.default_member()["file"] == one["file"]
    # the examples' one-layer films: SP4's cells (dz/dx 0.6), cubes, the tall square and vortex
    for cell in [(3e-9, 3e-9, 3e-9), (5e-9, 5e-9, 3e-9), (2e-9, 2e-9, 1e-9), (4e-9, 4e-9, 5e-9), (5e-9, 5e-9, 10e-9),
                 (3.125e-9, 3.125e-9, 9e-9), (1e-9, 1e-9, 4e-9), (4e-9, 4e-9, 1e-9)]:
        assert card.member_for((64, 64, 1), cell)["file"] == one["file"], cell
    for nz, top in ((2, 4.0), (3, 4.0), (4, FOUR_LAYERS_TOP)):
        (m,) = [m for m in card.members if m["nz"] == nz and m["near_radius"] == 40]
        assert ModelCard.aspect_range(m) == (0.25, top)
        for a in (0.25, 0.6, 1.0, 1.5, 2.88):
            assert card.member_for((64, 64, nz), (1e-9, 1e-9, a * 1e-9))["file"] == m["file"], (nz, a)
    assert len([m for m in card.members if m["nz"] in (1, 2, 3)]) == 3
    (tall,) = [m for m in card.members if m["nz"] == 4 and m["near_radius"] == 56]
    assert ModelCard.aspect_range(tall) == TALL_FOUR_LAYERS and tall["dz_dx"] == 4.0
    for a in (3.3, 3.6, 4.0):
        assert card.member_for((64, 64, 4), (1e-9, 1e-9, a * 1e-9))["file"] == tall["file"], a
    for n, d, word in [((64, 64, 1), (2.5e-9, 2.5e-9, 20e-9), "dz/dx"),        # the "network fails" example
                       ((64, 64, 5), (3e-9, 3e-9, 3e-9), "layers"),            # nz = 1 to 4 are members
                       ((64, 64, 2), (2.5e-9, 2.5e-9, 12.5e-9), "dz/dx"),      # two layers of dz/dx 5
                       ((64, 64, 4), (3e-9, 3e-9, 13.5e-9), "dz/dx"),          # four layers of dz/dx 4.5
                       ((64, 64, 1), (3e-9, 4e-9, 3e-9), "square"),
                       ((64, 64, 3), (5e-9, 5e-9, 1e-9), "dz/dx"),            # below the thinnest range
                       ((64, 64, 1), (5e-9, 5e-9, 1e-9), "dz/dx")]:
        assert card.member_for(n, d) is None
        assert any(word in r for r in card.outside(n, d)), card.outside(n, d)
    (why,) = card.outside((64, 64, 1), (2.5e-9, 2.5e-9, 20e-9))
    assert "for nz = 1 serve dz/dx = 0.25 to 4 only" in why, why


def test_outside_the_card_warns_and_gives_the_exact_fft_field():
    n, d = (20, 10, 1), (3e-9, 3e-9, 30e-9)
    with pytest.warns(UserWarning, match="exact FFT"):
        nd = NeuralDemag(n, d, torch.float64)
    assert nd.fallback is not None and any("dz/dx" in w for w in nd.warnings)
    M = torch.randn(3, 1, 10, 20, dtype=torch.float64) * 8e5
    assert torch.equal(nd.h_from_M(M), FFTDemag(n, d, torch.float64).h_from_M(M))
    with pytest.warns(UserWarning, match="layer"):
        nd = NeuralDemag((8, 8, 5), (3e-9, 3e-9, 3e-9))
    assert nd.fallback is not None


def test_inside_the_card_no_warning_and_no_fallback(recwarn):
    for n, d in [((32, 32, 1), (3e-9, 3e-9, 3e-9)), ((100, 25, 1), (5e-9, 5e-9, 3e-9))]:
        nd = NeuralDemag(n, d)
        assert nd.fallback is None and not nd.warnings
    assert not [w for w in recwarn.list if "neural" in str(w.message)]


def test_shipped_weights_and_model_card():
    card = json.loads(resource_path("neural/model_card.json").read_text())
    for key in ("architecture", "members", "valid", "validation"):
        assert key in card
    for m in card["members"]:
        assert resource_path("neural/" + m["file"]).stat().st_size < 1e6
        net, _ = load_weights(resource_path("neural/" + m["file"]))
        assert net.config["aspect"] == m["dz_dx"] and net.config["nz"] == m["nz"]


def held_out_errors(shape, count, seed, d=(3e-9, 3e-9, 3e-9)):
    M, H, mask, _ = make_samples(seed, shape[0], shape[1], count, aspect=d[2] / d[0], llg_fraction=0.0)
    nd = NeuralDemag((shape[1], shape[0], 1), d)
    assert nd.fallback is None
    errs = []
    for i in range(count):
        Mt = torch.tensor(M[i] * MS_REF, dtype=torch.float32)[:, None]
        Hn = nd.h_from_M(Mt)[:, 0].numpy() / MS_REF
        mk = mask[i].astype(bool)
        errs.append(rel_l2(Hn[:, mk], H[i][:, mk]))
    return np.array(errs)


@pytest.mark.parametrize("d", [(3e-9, 3e-9, 3e-9), (5e-9, 5e-9, 3e-9), (5e-9, 5e-9, 4e-9), (4e-9, 4e-9, 1.4e-9),
                               (3e-9, 3e-9, 6e-9), (3e-9, 3e-9, 9e-9), (3e-9, 3e-9, 12e-9)])
def test_shipped_weights_on_a_small_held_out_set(d):
    """Fresh textures (a seed never used in training), labelled by the exact FFT: the error the
    model card states, within sampling noise."""
    errs = held_out_errors((64, 64), 16, seed=987654, d=d)
    median, p90 = (MEDIAN_LIMIT, P90_LIMIT) if d[2] / d[0] < 1.25 else (TALL_MEDIAN_LIMIT, TALL_P90_LIMIT)
    assert np.median(errs) <= median and np.percentile(errs, 90) <= p90, errs


def test_shipped_weights_on_256x256():
    errs = held_out_errors((256, 256), 2, seed=424242)
    assert np.median(errs) <= P90_LIMIT, errs


def test_probe_matches_a_direct_computation(shipped):
    n, d = (48, 40, 1), (3e-9, 3e-9, 3e-9)
    yy, xx = np.mgrid[:40, :48]
    mask = ((yy - 20) ** 2 + (xx - 24) ** 2 < 18 ** 2)[None]
    phi = np.arctan2(yy - 20, xx - 24)
    m = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])[:, None] * mask
    Ms = 8e5
    pr = probe(m, Ms, n, d, NeuralDemag(n, d))
    M = torch.tensor(m * Ms)
    H_fft = (FFTDemag(n, d).h_from_M(M) * torch.tensor(mask)).numpy()
    nd = NeuralDemag(n, d)
    H_net = (nd.h_from_M(M.float()).double() * torch.tensor(mask)).numpy()
    np.testing.assert_allclose(pr.H_fft, H_fft, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(pr.H_net, H_net, rtol=1e-5, atol=1e-2)
    direct_map = np.linalg.norm(H_net - H_fft, axis=0) / Ms * mask
    np.testing.assert_allclose(pr.error_map, direct_map, atol=1e-7)
    assert pr.error_map.shape == (1, 40, 48)
    assert abs(pr.rel_l2 - rel_l2(H_net[:, mask], H_fft[:, mask])) < 1e-6
    assert pr.error_map[~mask].max() == 0


# ------------------------------------------------------------------ safe weights (issue 14)
class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_file(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    net = LeanFilmNet(channels=4)
    torch.save({"format": "nmag-weights", "version": 1, "config": json.dumps(net.config), "meta": "{}",
                "tensors": net.state_dict(), "payload": _Evil(marker)}, path)
    assert not marker.exists()
    return path, marker


def test_weights_round_trip_without_pickle(tmp_path):
    net = LeanFilmNet(nz=2, aspect=0.6, channels=4)
    save_weights(net, tmp_path / "w.pt", {"note": "x"})
    net2, meta = load_weights(tmp_path / "w.pt")
    assert meta == {"note": "x"} and net2.config == net.config
    x = torch.randn(1, 6, 12, 10)
    assert torch.equal(net(x), net2(x))


def test_a_weights_file_that_runs_code_is_refused(tmp_path):
    path, marker = _evil_file(tmp_path)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(path)
    with pytest.raises(WeightsError, match="refused"):
        NeuralDemag((16, 16, 1), (3e-9, 3e-9, 3e-9), weights=path)
    assert not marker.exists()
    # control: the unsafe way would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_nmag_train_init_refuses_a_weights_file_that_runs_code(tmp_path, capsys):
    from engine.cli import main
    path, marker = _evil_file(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(tmp_path / "none.h5"), "--out", str(tmp_path / "run"), "--init", str(path)])
    assert "refused" in str(e.value.code)
    assert not marker.exists()


def test_one_training_epoch_end_to_end(tmp_path):
    from engine.neural.train import main_train
    path = tmp_path / "tiny.h5"
    write_h5(path, [(16, 16), (24, 16)], [24, 8], seed=5, progress=False, llg_fraction=0.0)
    assert set(load_h5(path)) == {(16, 16), (24, 16)}
    args = ["--data", str(path), "--out", str(tmp_path / "run"), "--batch", "8", "--lr", "3e-3",
            "--val-fraction", "0.25", "--channels", "4", "--no-progress", "--warmup", "1"]
    res = main_train(args + ["--epochs", "3"])
    h = res["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    for f in ("checkpoint.pt", "model.pt", "best.pt", "learning_curve.png", "learning_curve.json"):
        assert (tmp_path / "run" / f).exists()
    load_weights(tmp_path / "run" / "best.pt")
    # resume continues from the checkpoint (read safely too)
    res2 = main_train(args + ["--epochs", "4", "--resume"])
    assert len(res2["history"]) == 4
    # a fine-tune may widen the exact near field: the learned weights carry over, the near
    # kernel is the exact one of the new radius
    main_train(args + ["--epochs", "1", "--init", str(tmp_path / "run" / "best.pt"), "--local-radius", "3",
                       "--out", str(tmp_path / "wider")])
    net0, _ = load_weights(tmp_path / "run" / "best.pt")
    net3, meta3 = load_weights(tmp_path / "wider" / "best.pt")
    assert net0.config["near_radius"] == 2 and net3.config["near_radius"] == 3 and meta3["init"]
    assert net3.near_w.shape[-1] == 7
    from engine.neural.lean import near_kernel
    assert torch.allclose(net3.near_w, torch.tensor(near_kernel(1.0, 1, 3), dtype=torch.float32))
    # ... or start a member for another cell aspect: the learned part begins scaled by the ratio
    # of the heights (a column's far field; LeanFilmNet.serve), the near kernel is that cell's
    thin = tmp_path / "thin.h5"
    write_h5(thin, [(16, 16)], [8], seed=7, aspect=0.5, progress=False, llg_fraction=0.0)
    main_train(["--data", str(thin), "--out", str(tmp_path / "thin"), "--batch", "4", "--lr", "0",
                "--val-fraction", "0.25", "--no-progress", "--warmup", "1", "--epochs", "1",
                "--init", str(tmp_path / "run" / "best.pt")])
    net05, _ = load_weights(tmp_path / "thin" / "best.pt")
    assert net05.config["aspect"] == 0.5 and net05.config["channels"] == 4
    torch.testing.assert_close(net05.U0.weight, 0.5 * net0.U0.weight)
    torch.testing.assert_close(net05.E.weight, net0.E.weight)
    assert torch.allclose(net05.near_w, torch.tensor(near_kernel(0.5, 1, 2), dtype=torch.float32))
    # ... or move the learned work to the quarter-resolution grid (--stem 4) with a wider exact
    # near field: the shared deeper weights carry over, U_0 (another shape) starts afresh
    main_train(args + ["--epochs", "1", "--init", str(tmp_path / "run" / "best.pt"), "--stem", "4",
                       "--local-radius", "6", "--near-full", "2", "--u0-kernel", "1", "--out", str(tmp_path / "s4")])
    net4, _ = load_weights(tmp_path / "s4" / "best.pt")
    assert (net4.stem, net4.u0_kernel, net4.near_full, net4.R) == (4, 1, 2.0, 6)
    assert net4.U0.weight.shape == (16 * 3, 4, 1, 1)
    assert torch.allclose(net4.near_w, torch.tensor(near_kernel(1.0, 1, 6, 2.0), dtype=torch.float32))


def small_problem(demag, probe_every=10):
    return Problem(mesh=Mesh((32, 32, 1), (3.0, 3.0, 3.0)), materials=[Material()],
                   solver=SolverSpec(method="rk45", precision="float32", demag=demag, probe_every=probe_every))


def test_neural_demag_plugs_into_simulation():
    pb = small_problem("neural")
    pb.initial.kind, pb.initial.params = "vortex", {"chirality": 1, "polarity": 1, "core_nm": 8.0,
                                                      "center_nm": [0, 0]}
    sim = Simulation(pb)
    assert type(sim.demag).__name__ == "NeuralDemag" and not sim.demag.warnings
    for _ in range(5):
        sim.step()
    assert np.isfinite(sim.mean_m()).all()
    sim_fft = Simulation(small_problem("fft"), m0=None)
    sim_fft.set_m(sim.m.numpy())
    # the card's named state "vortex/square 32x32" (about 3 %)
    assert rel_l2(sim.fields()["demag"].numpy(), sim_fft.fields()["demag"].numpy()) < 0.05


def test_probe_hook_in_simulation_frames():
    sim = Simulation(small_problem("neural+probe", probe_every=2))
    for _ in range(4):
        sim.step()
    fr = sim.frame()
    assert fr.error_map is not None and fr.error_map.shape == (1, 32, 32)
    assert 0 <= fr.error_rel_l2 < 0.08   # in-plane uniform 32x32: about 5 % on the card


def test_twin_run_tracks_the_fft_run():
    from engine.neural.twin import twin_run
    pb = small_problem("fft")
    pb.initial.kind, pb.initial.params = "vortex", {"core_nm": 8.0}
    pb.field.B_mT = (10.0, 0.0, 0.0)
    r = twin_run(pb, 20e-12, 10e-12)
    assert list(r["t"]) == pytest.approx([0.0, 10e-12, 20e-12])
    assert r["max_dm"][0] < 1e-6                       # same start
    assert np.abs(r["mean_neural"] - r["mean_fft"]).max() < 0.01
    assert r["max_dm"].max() < 0.05


def test_a_twin_run_goes_on_from_the_time_it_starts_at():
    """The GUI twins a paused run at its time t0: a field pulse that ended before t0 stays off."""
    from engine.neural.twin import twin_run
    pb = small_problem("fft")
    pb.field.ac = {"kind": "pulse", "amplitude_mT": [0.0, 50.0, 0.0], "start_ns": 0.0, "width_ns": 0.05}
    pb.validate()
    later = twin_run(pb, 10e-12, 10e-12, t0=0.1e-9)
    assert list(later["t"]) == pytest.approx([0.1e-9, 0.11e-9])
    early = twin_run(pb, 10e-12, 10e-12)                       # inside the pulse: m moves more
    moved = lambda r: np.abs(r["mean_fft"][-1] - r["mean_fft"][0]).max()   # noqa: E731
    assert moved(early) > 3 * moved(later)


def test_card_measured_block_refreshes_without_touching_the_members(tmp_path):
    """Re-running a benchmark updates the card's measured block alone (card_measure --keep
    --extra, no --model): every member and its held-out errors stay as they were."""
    from engine.neural.card_measure import refresh_measured
    card_json, card_md, extra = tmp_path / "card.json", tmp_path / "card.md", tmp_path / "extra.json"
    shipped = json.loads(resource_path("neural/model_card.json").read_text())
    card_json.write_text(json.dumps(shipped))
    extra.write_text(json.dumps({"speed_date": "2099-01-01 00:00", "speed_targets": {"ratio_1thr": {"256": 0.5}}}))
    card = refresh_measured(card_json, card_md, extra)
    again = json.loads(card_json.read_text())
    assert again["members"] == shipped["members"] and again["valid"] == shipped["valid"]
    assert again["measured"]["speed_date"] == "2099-01-01 00:00" == card["measured"]["speed_date"]
    assert "2099-01-01 00:00" in card_md.read_text()
    with pytest.raises(SystemExit, match="no such file"):
        refresh_measured(card_json, card_md, tmp_path / "missing.json")


def test_card_remeasure_with_a_new_member_keeps_one_member_per_film(tmp_path, monkeypatch):
    """--remeasure --model NEW@LO:HI: NEW replaces the shipped member of its own nz, dz/dx and
    near radius (the card once listed both, the old one re-measured first). Measurement and writing stubbed:
    this is about which members the card holds."""
    from engine.neural import card_measure, weights
    shipped = json.loads(resource_path("neural/model_card.json").read_text())
    old = next(m for m in shipped["members"] if m["nz"] == 3)
    net, meta = load_weights(resource_path("neural/" + old["file"]))
    new_pt = tmp_path / "new.pt"
    save_weights(net, new_pt, {k: v for k, v in meta.items() if k != "history"})
    measured = []
    monkeypatch.setattr(card_measure, "measure_range",
                        lambda net, lo, hi, cache=None, source=None: measured.append((int(net.config["nz"]), lo, hi))
                        or (old["held_out"], old["named_states_rel_l2_percent"]))
    monkeypatch.setattr(weights, "save_weights", lambda *a, **k: None)
    written = {}
    monkeypatch.setattr(card_measure, "write_card", lambda card, *a: written.update(card=card))
    card_measure.main_card(["--remeasure", "--cache-dir", str(tmp_path / "cache"), "--model", f"{new_pt}@1.5:4"])
    films = [member_key(m) for m in written["card"]["members"]]
    assert len(films) == len(set(films)) == len(shipped["members"])
    got = next(m for m in written["card"]["members"] if member_key(m) == member_key(old))
    assert got["dz_dx_range"] == [1.5, 4.0]
    assert (3, 1.5, 4.0) in measured and (3, *old["dz_dx_range"]) not in measured   # the replaced one: not measured


def test_card_reports_large_grids_apart():
    """A member's held-out errors pooled over every grid are mostly 64^2 and 128^2 samples; the
    card also judges its large grids (256^2 and up) on their own, in the JSON and the Markdown."""
    from engine.neural.card_measure import _met, build_card, card_markdown
    from engine.neural.lean import LeanFilmNet
    s = lambda med, p90: {"median": med, "mean": med, "p90": p90, "max": p90, "count": 14}  # noqa: E731
    held = {"64x64": s(0.002, 0.004), "256x256": s(0.012, 0.02), "all": s(0.004, 0.009), "large": s(0.011, 0.019),
            "by_dz_dx": {"1": s(0.003, 0.006), "4": s(0.006, 0.012)},
            "by_dz_dx_large": {"1": s(0.008, 0.015), "4": s(0.013, 0.024)}}
    m = {"file": "x.pt", "nz": 1, "dz_dx": 1.0, "dz_dx_range": [1.0, 4.0], "default": True, "channels": 8,
         "n_params": 1, "macs_per_column": 1.0, "held_out": held, "named_states_rel_l2_percent": {}, "training": {}}
    assert _met(m) == "met"
    verdict = _met(m, large=True)
    assert verdict.startswith("missed: median 1.10% > 1%") and "at 1 of 2 measured dz/dx" in verdict
    assert "p90 at 4 2.40% > 2%" in verdict
    assert _met(dict(m, held_out={k: v for k, v in held.items() if "large" not in k}), large=True) == ""
    card = build_card([m], LeanFilmNet(), {})
    assert card["validation"]["targets_met_large_grids"]["nz=1 dz/dx=1"] == verdict
    assert set(card["validation"]["median_rel_l2"]) == {"nz=1 dz/dx=1 64x64", "nz=1 dz/dx=1 256x256"}
    md = card_markdown(card)
    assert "| nz=1 dz/dx=1 | 4 | 1.30% | 2.40% |" in md and verdict in md


def test_a_member_trained_at_two_cells_is_measured_only_where_it_serves():
    """A member trained at dz/dx 1 and 4 may serve a range away from its reference dz/dx 1 (say
    1.26 to 4, as session 23's tall one-layer member did): the range is measured at both ends and
    between, not at 1 outside it; and the card records both cells a member was trained at (read
    from its validation's "NYxNX@dz/dx" keys)."""
    from engine.neural.card_measure import range_aspects, trained_aspects
    got = range_aspects(1.26, 4.0, 1.0)
    assert got[0] == 1.26 and got[-1] == 4.0 and 1.0 not in got and len(got) == 4
    assert 1.0 in range_aspects(0.25, 1.26, 1.0)
    assert trained_aspects(1.0, [{"val_median": {"64x64": 0.01, "512x512@4": 0.02, "40x160@4": 0.01}}]) == [1.0, 4.0]
    assert trained_aspects(1.0, []) == [1.0]
    shipped = {m["file"]: m for m in ModelCard.load().members}
    tall = "lean_nz4_dzdx4_R56.pt"   # tall four layers: trained at dz/dx 4 and 3.2
    assert shipped.pop(tall)["trained_dz_dx"] == [3.2, 4.0]
    assert all(m["trained_dz_dx"] == [1.0, 4.0] for m in shipped.values())


def test_the_frontier_is_a_table_in_the_card():
    """bench_neural.py --frontier's rows (via card_measured.py) become the card's frontier table:
    each network's time against the FFT per size and its held-out error, worst large-grid dz/dx
    named; no frontier, no section."""
    from engine.neural.card_measure import frontier_markdown
    assert frontier_markdown({}) == [] and frontier_markdown({"frontier": []}) == []
    stats = lambda med, p90: {"median": med, "p90": p90, "max": 2 * p90, "count": 14}   # noqa: E731
    rows = [{"name": "R 24", "config": {"near_radius": 24}, "far_macs_per_cell": 289.5,
             "ratio": {"2048": 0.33, "256": 0.68, "1024": 0.47}, "held_out_dz_dx": [0.25, 1, 4],
             "held_out": stats(0.001, 0.004), "held_out_large": stats(0.002, 0.008),
             "by_dz_dx_large": {"0.25": stats(0.001, 0.002), "4": stats(0.004, 0.0129), "1": stats(0.001, 0.005)}}]
    md = frontier_markdown({"frontier": rows, "frontier_date": "2026-12-04 22:00"})
    assert "2026-12-04 22:00" in md[1] and "neural_frontier.png" in md[1]
    assert md[2].index("256²") < md[2].index("1024²") < md[2].index("2048²")   # sizes in order
    assert md[-1] == ("| R 24 | 24 | 290 | 0.68 | 0.47 | 0.33 | 0.25, 1, 4 | 0.10% / 0.40% | 0.20% / 0.80% "
                      "| 4: 0.40% / 1.29% |")
