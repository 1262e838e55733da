"""Training one member at several cell aspects (nmag train --also-data): the sets at another
dz/dx are trained as the member is served there (engine.neural.lean.LeanFilmNet.serve: the
exact near kernel of that cell, the learned part scaled by dz/dx over the trained one)."""
import copy

import pytest
import torch

from engine.neural.data import write_h5
from engine.neural.lean import LeanFilmNet
from engine.neural.train import main_train, served_copies, set_aspect, with_far_target


def test_a_set_at_another_cell_is_trained_as_the_member_is_served_there():
    torch.manual_seed(2)
    net = LeanFilmNet(nz=2, channels=4, stem=4, near_radius=6, aspect=1.0)
    for p in net.parameters():   # a learned part that is not zero
        torch.nn.init.normal_(p, std=0.05)
    M, H = torch.randn(2, 6, 24, 40), torch.randn(2, 6, 24, 40)
    mk = torch.ones(2, 24, 40, dtype=torch.bool)
    kept = with_far_target(net, {(24, 40): (M, H, mk), (24, 40, 4.0): (M, H, mk)})
    served = copy.deepcopy(net).serve(4.0)
    with torch.no_grad():
        near1, near4 = H - kept[(24, 40)][1], H - kept[(24, 40, 4.0)][1]
        assert (near1 - net.near(M)).abs().max() <= 1e-5 * near1.abs().max()
        assert (near4 - served.near(M)).abs().max() <= 1e-5 * near4.abs().max()
        assert (near4 - near1).abs().max() > 0.1 * near1.abs().max()   # another cell, another near field
    # what the training step computes for the dz/dx = 4 set is the served network's error, gradients included
    got = net.combine(-kept[(24, 40, 4.0)][1], net.far(M), set_aspect((24, 40, 4.0), 1.0) / 1.0)
    want = served(M) - H
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert set(served_copies(net, [(24, 40), (8, 8, 4.0), (8, 9, 4.0), (8, 8, 0.5)])) == {4.0, 0.5}


def test_nmag_train_with_a_second_cell(tmp_path):
    a1, a4, nz2 = tmp_path / "a1.h5", tmp_path / "a4.h5", tmp_path / "nz2.h5"
    write_h5(a1, [(12, 12)], [6], seed=6, progress=False)
    write_h5(a4, [(12, 12), (16, 12)], [6, 6], seed=8, aspect=4.0, progress=False)
    args = ["--data", str(a1), "--also-data", str(a4), "--out", str(tmp_path / "run"), "--batch", "3",
            "--val-fraction", "0.34", "--channels", "4", "--no-progress", "--warmup", "1", "--epochs", "1",
            "--local-radius", "3", "--far-loss"]
    res = main_train(args)
    val = res["history"][0]["val_median"]
    assert set(val) == {"12x12", "12x12@4", "16x12@4"}
    from engine.neural.weights import load_weights
    net, meta = load_weights(tmp_path / "run" / "best.pt")
    assert net.config["aspect"] == 1.0 and meta["also_data"] == [str(a4)] and meta["n_train"] == 12
    assert meta["far_loss"] is True
    # `nmag train` from the shell: exit status 0 (it once handed the shell its history dict, which
    # Python prints and exits 1 for, and a script under `set -e` stopped after its first member)
    from engine.cli import main as nmag
    assert nmag(["train", *args[:5], str(tmp_path / "again"), *args[6:]]) == 0
    assert (tmp_path / "again" / "best.pt").exists()
    write_h5(nz2, [(12, 12)], [4], seed=9, progress=False, nz=2)
    with pytest.raises(SystemExit, match="nz = 2 layers"):
        main_train(args[:3] + [str(nz2)] + args[4:])
    with pytest.raises(SystemExit, match="--also-data trains the lean network only"):
        main_train(args + ["--arch", "unet"])
    with pytest.raises(SystemExit, match="--far-loss needs the lean network"):
        main_train(args[:2] + args[4:] + ["--arch", "unet"])
