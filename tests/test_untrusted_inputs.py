"""Files a problem names, weights files and problem files are data that may be crafted: they
are refused with a message naming the field, without echoing their contents or allocating
what they declare. From a security review (each case was a traceback, a leak or a memory bomb)."""
import json

import pytest
import torch

from engine.cli import main
from engine.neural.weights import WeightsError, load_weights

from test_cli import TINY


def _problem(tmp_path, extra):
    p = tmp_path / "p.toml"
    p.write_text(TINY + extra)
    return p


def test_a_named_file_that_is_not_ovf_is_refused_without_quoting_it(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$verysecrethash:20228:0:99999:7:::\n")
    text = TINY.replace('kind = "uniform"\ndirection = [1.0, 0.2, 0.0]', f'kind = "file"\npath = "{secret}"')
    p = tmp_path / "p.toml"
    p.write_text(text)
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert "initial.path" in err and "verysecret" not in err and "root:" not in err


@pytest.mark.parametrize("make", ["device", "folder", "garbage"])
def test_a_mesh_path_that_is_a_device_a_folder_or_not_a_mesh_is_refused(tmp_path, capsys, make):
    path = tmp_path / "shape.stl"
    if make == "device":
        path.symlink_to("/dev/zero")
    elif make == "folder":
        path.mkdir()
    else:
        path.write_text("solid x\n  facet normal root:secret 0 0\nendsolid\n")
    text = TINY + f'[[geometry]]\nshape = "mesh"\npath = "{path}"\nmaterial = "py"\n'
    p = tmp_path / "p.toml"
    p.write_text(text)
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert "geometry" in err and "Traceback" not in err and "root:secret" not in err


def test_deeply_nested_toml_is_a_one_line_refusal(tmp_path, capsys):
    p = tmp_path / "deep.toml"
    p.write_text("x = " + "[" * 100000 + "]" * 100000 + "\n")
    assert main(["check", str(p)]) == 2
    assert "nested" in capsys.readouterr().err


@pytest.mark.parametrize("config, word", [
    ({"arch": "lean", "channels": 100000}, "channels"),
    ({"arch": "lean", "channels": -5}, "channels"),
    ({"arch": "lean", "aspect": 1e308}, "aspect"),
    ({"arch": "lean", "nz": "3"}, "nz"),
    ({"arch": "unet", "channels": [12, 10 ** 9]}, "channels"),
    ({"arch": "lean", "coarsest": 4}, "coarsest"),   # the encoder would never reach a grid that small
])
def test_a_weights_config_out_of_bounds_is_refused_before_allocating(tmp_path, config, word):
    path = tmp_path / "w.pt"
    torch.save({"format": "nmag-weights", "version": 1, "config": json.dumps(config), "meta": "{}",
                "tensors": {}}, str(path))
    with pytest.raises(WeightsError, match=word):
        load_weights(path)


def test_sweep_problem_files_resolve_from_the_sweep_not_the_workers_folder(tmp_path, monkeypatch):
    from test_sweep_file import ALPHA_FIELD, write_sweep
    from engine.sweep.sweep_file import load_sweep
    s = write_sweep(tmp_path, ALPHA_FIELD)
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep("s.toml")                      # a relative path, as typed
    from pathlib import Path
    assert Path(sweep.base_dir).is_absolute() and Path(sweep.base_dir) == tmp_path.resolve()


def test_huge_values_come_back_short_and_a_huge_title_is_refused(tmp_path, capsys):
    p = tmp_path / "t.toml"
    p.write_text(TINY.replace('title = "tiny film"', 'title = "' + "x" * 2_000_000 + '"'))
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert "title" in err and len(err) < 1000 and "characters" in err


def test_damaged_weights_are_not_called_dangerous(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"x": torch.zeros(3)}, str(path))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightsError, match="not a readable weights file") as e:
        load_weights(path)
    assert "run code" not in str(e.value)


def test_tls_options_without_a_scheduler_and_a_cert_without_its_key_are_named(tmp_path, capsys):
    from test_sweep_file import ALPHA_FIELD, write_sweep
    s = write_sweep(tmp_path, ALPHA_FIELD)
    pem = tmp_path / "c.pem"
    pem.write_text("not a certificate")
    assert main(["sweep", str(s), "--tls-ca-file", str(pem), "--tls-cert", str(pem)]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert main(["sweep", str(s), "--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", str(pem),
                 "--tls-cert", str(pem)]) == 2
    err = capsys.readouterr().err
    assert "--tls" in err and "Traceback" not in err
