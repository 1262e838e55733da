"""The neural demag (engine.neural): the network's shape handling and symmetry, the shipped
weights against the exact FFT field on held-out textures, the probe, training end to end, and
NeuralDemag inside a Simulation."""
import json

import numpy as np
import pytest
import torch

from engine import Material, Mesh, Problem, Simulation, SolverSpec
from engine.demag import FFTDemag
from engine.neural.data import MS_REF, load_h5, make_samples, write_h5
from engine.neural.demag import NeuralDemag
from engine.neural.probe import probe
from engine.neural.unet import FilmUNet
from engine.resources import resource_path

ROT = torch.tensor([-1.0, -1.0, 1.0])[None, :, None, None]   # components under a 180-degree rotation


def rel_l2(a, b):
    return float(np.sqrt(((a - b) ** 2).sum() / (b ** 2).sum()))


@pytest.fixture(scope="module")
def shipped():
    return NeuralDemag((64, 64, 1), (3e-9, 3e-9, 3e-9))


@pytest.mark.parametrize("ny,nx", [(33, 47), (7, 5), (64, 20), (1, 9)])
def test_net_runs_on_odd_grids_and_masks(ny, nx):
    torch.manual_seed(0)
    net = FilmUNet()
    x = torch.randn(2, 3, ny, nx)
    yy, xx = np.mgrid[:ny, :nx]
    mask = torch.tensor(((yy - ny / 2) ** 2 / (ny / 2 + 0.5) ** 2 + (xx - nx / 2) ** 2 / (nx / 2 + 0.5) ** 2) <= 1)
    y = net(x * mask)
    assert y.shape == (2, 3, ny, nx)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("ny,nx", [(40, 30), (33, 21)])
def test_rotation_by_180_degrees_rotates_the_field(shipped, ny, nx):
    """f(R x) = R f(x): r -> -r with (mx, my, mz) -> (-mx, -my, mz), on even and odd grids."""
    net = shipped.net
    torch.manual_seed(1)
    x = torch.randn(1, 3, ny, nx)
    y = net(x)
    yr = net(torch.flip(x, dims=(2, 3)) * ROT)
    assert torch.allclose(torch.flip(yr, dims=(2, 3)) * ROT, y, atol=1e-5 * float(y.abs().max()))


def test_linear_in_M(shipped):
    """The network is linear: the field scales with Ms by construction."""
    x = torch.randn(1, 3, 24, 24)
    assert torch.allclose(shipped.net(2.5 * x), 2.5 * shipped.net(x), rtol=1e-4, atol=1e-5)


def test_shipped_weights_and_model_card():
    card = json.loads(resource_path("neural/model_card.json").read_text())
    assert resource_path("neural/unet_film.pt").stat().st_size < 5e6
    for key in ("architecture", "n_params", "training", "validation", "valid", "git_commit"):
        assert key in card


def held_out_errors(shape, count, seed):
    M, H, mask, _ = make_samples(seed, shape[0], shape[1], count, llg_fraction=0.0)
    nd = NeuralDemag((shape[1], shape[0], 1), (3e-9, 3e-9, 3e-9))
    errs = []
    for i in range(count):
        Mt = torch.tensor(M[i] * MS_REF, dtype=torch.float32)[:, None]
        Hn = nd.h_from_M(Mt)[:, 0].numpy() / MS_REF
        mk = mask[i].astype(bool)
        errs.append(rel_l2(Hn[:, mk], H[i][:, mk]))
    return np.array(errs)


def test_shipped_weights_meet_the_target_on_held_out_64x64():
    errs = held_out_errors((64, 64), 24, seed=987654)   # seeds never used in training
    assert np.median(errs) <= 0.02, errs


def test_shipped_weights_meet_the_target_on_256x256():
    errs = held_out_errors((256, 256), 2, seed=424242)
    assert np.median(errs) <= 0.02, errs


def test_probe_matches_a_direct_computation(shipped):
    n, d = (48, 40, 1), (3e-9, 3e-9, 3e-9)
    yy, xx = np.mgrid[:40, :48]
    mask = ((yy - 20) ** 2 + (xx - 24) ** 2 < 18 ** 2)[None]
    phi = np.arctan2(yy - 20, xx - 24)
    m = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])[:, None] * mask
    Ms = 8e5
    pr = probe(m, Ms, n, d)
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


def test_one_training_epoch_end_to_end(tmp_path):
    from engine.neural.train import main_train
    path = tmp_path / "tiny.h5"
    write_h5(path, [(16, 16), (24, 16)], [24, 8], seed=5, progress=False, llg_fraction=0.0)
    assert set(load_h5(path)) == {(16, 16), (24, 16)}
    res = main_train(["--data", str(path), "--out", str(tmp_path / "run"), "--epochs", "3", "--batch", "8",
                      "--lr", "3e-3", "--val-fraction", "0.25", "--channels", "4,6", "--no-progress"])
    h = res["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    for f in ("checkpoint.pt", "model.pt", "learning_curve.png", "learning_curve.json"):
        assert (tmp_path / "run" / f).exists()
    # resume continues from the checkpoint
    res2 = main_train(["--data", str(path), "--out", str(tmp_path / "run"), "--epochs", "4", "--batch", "8",
                       "--val-fraction", "0.25", "--channels", "4,6", "--no-progress", "--resume"])
    assert len(res2["history"]) == 4


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
    assert rel_l2(sim.fields()["demag"].numpy(), sim_fft.fields()["demag"].numpy()) < 0.03


def test_probe_hook_in_simulation_frames():
    sim = Simulation(small_problem("neural+probe", probe_every=2))
    for _ in range(4):
        sim.step()
    fr = sim.frame()
    assert fr.error_map is not None and fr.error_map.shape == (1, 32, 32)
    assert 0 <= fr.error_rel_l2 < 0.05


def test_warns_outside_the_model_card():
    with pytest.warns(UserWarning):
        nd = NeuralDemag((20, 10, 1), (5e-9, 5e-9, 3e-9))
    assert any("dz/dx" in w for w in nd.warnings)
    with pytest.warns(UserWarning):
        nd = NeuralDemag((8, 8, 2), (3e-9, 3e-9, 3e-9))
    assert any("nz" in w for w in nd.warnings)


def test_twin_run_tracks_the_fft_run():
    from engine.neural.probe import twin_run
    pb = small_problem("fft")
    pb.initial.kind, pb.initial.params = "vortex", {"core_nm": 8.0}
    pb.field.B_mT = (10.0, 0.0, 0.0)
    r = twin_run(pb, 20e-12, 10e-12)
    assert list(r["t"]) == pytest.approx([0.0, 10e-12, 20e-12])
    assert r["max_dm"][0] < 1e-6                       # same start
    assert np.abs(r["mean_neural"] - r["mean_fft"]).max() < 0.01
    assert r["max_dm"].max() < 0.05
