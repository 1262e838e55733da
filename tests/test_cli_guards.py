"""`nmag run`, `nmag sweep`, `nmag check` and `nmag train` guard the user's files and say what
ran; found by a new user's pass through the command line. In-process (engine.cli.main)."""
import json

import h5py
import pytest

from engine.cli import main
from engine.results import read_results

from test_cli import TINY
from test_sweep_file import ALPHA_FIELD, write_sweep


def _tiny(tmp_path, text=TINY):
    p = tmp_path / "tiny.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("target", ["film.toml", "s.toml", "res.txt", "nodir/x.h5"])
def test_sweep_never_writes_over_its_inputs_or_outside_a_folder(tmp_path, capsys, target):
    s = write_sweep(tmp_path, ALPHA_FIELD)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main(["sweep", str(s), "--out", str(tmp_path / target), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_sweep_overwrite_takes_only_an_earlier_sweeps_results(tmp_path, capsys):
    s = write_sweep(tmp_path, ALPHA_FIELD)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something else"
    assert main(["sweep", str(s), "--out", str(other), "--overwrite"]) == 2
    assert "not one" in capsys.readouterr().err
    assert h5py.File(other, "r").attrs["format"] == "something else"


def test_run_keeps_a_users_part_file_and_refuses_before_touching_it(tmp_path, capsys):
    p = _tiny(tmp_path)
    notes = tmp_path / "notes.h5.part"
    notes.write_text("my notes")
    assert main(["run", str(p), "--out", str(tmp_path / "notes.h5"), "--quiet"]) == 2
    assert notes.read_text() == "my notes" and "notes.h5.part" in capsys.readouterr().err
    bad = _tiny(tmp_path, TINY.replace('preset = "permalloy"', 'preset = "permalloy"\nMs = -1.0'))
    stale = tmp_path / "tiny.h5.part"
    with h5py.File(stale, "w") as f:           # what a killed nmag run leaves
        f.attrs["format"] = "nmag-results"
    assert main(["run", str(bad), "--quiet"]) == 2        # refused: nothing removed either
    assert stale.exists()
    assert main(["run", str(_tiny(tmp_path)), "--quiet"]) == 0
    assert not stale.exists() and (tmp_path / "tiny.h5").exists()


def test_run_into_a_missing_folder_is_refused_before_any_work(tmp_path, capsys):
    assert main(["run", str(_tiny(tmp_path)), "--out", str(tmp_path / "nodir" / "r.h5"), "--quiet"]) == 2
    assert "existing folder" in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "-3", "100000"])
def test_threads_out_of_range_are_refused(tmp_path, capsys, n):
    assert main(["run", str(_tiny(tmp_path)), "--threads", n, "--quiet"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert not (tmp_path / "tiny.h5").exists()


def test_a_relax_stopped_at_its_step_limit_is_said_and_recorded(tmp_path, capsys):
    text = TINY.replace('kind = "relax"\n', 'kind = "relax"\nmax_steps = 3\ntorque = 1e-9\n', 1)
    assert main(["run", str(_tiny(tmp_path, text)), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "step limit" in err and "not relaxed" in err
    res = read_results(tmp_path / "tiny.h5")
    assert res["complete"] and any("step limit" in w for w in res["warnings"])
    assert main(["run", str(_tiny(tmp_path)), "--quiet"]) == 0
    assert read_results(tmp_path / "tiny.h5")["warnings"] == []


def test_a_neural_run_outside_the_card_warns_once_and_says_fft_ran(tmp_path, capsys):
    text = TINY.replace("n = [16, 8, 1]", "n = [16, 8, 5]").replace('method = "rk45"', 'method = "rk45"\ndemag = "neural"')
    text = text.replace("duration_ns = 0.02", "duration_ns = 0.002")
    p = _tiny(tmp_path, text)
    assert main(["check", str(p)]) == 0
    assert "outside the model card" in capsys.readouterr().err
    assert main(["run", str(p), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.err.count("outside the model card") == 1 and "UserWarning" not in cap.err
    assert "demag fft (asked: neural" in cap.out
    assert read_results(tmp_path / "tiny.h5")["demag_in_use"] == "fft"


@pytest.mark.parametrize("kernel", ["", "0"])
def test_a_neural_run_says_when_its_learned_part_runs_on_torch_and_why(tmp_path, capsys, monkeypatch, kernel):
    from engine.neural import compiled
    monkeypatch.setenv("NMAG_NEURAL_KERNEL", kernel)
    text = TINY.replace('method = "rk45"', 'method = "rk45"\ndemag = "neural"').replace("duration_ns = 0.02", "duration_ns = 0.002")
    assert main(["check", str(_tiny(tmp_path, text))]) == 0
    err = capsys.readouterr().err
    assert main(["run", str(_tiny(tmp_path, text)), "--quiet"]) == 0
    out = capsys.readouterr().out
    if kernel == "0":
        assert "learned part would run on torch" in err and "NMAG_NEURAL_KERNEL=0" in err
        assert "demag neural (learned part on torch: turned off by NMAG_NEURAL_KERNEL=0)" in out
    elif compiled.library() is not None:
        assert "learned part" not in err
        assert "demag neural ->" in out


@pytest.mark.parametrize("make", ["missing", "results", "text"])
def test_train_refuses_what_is_not_a_data_set_before_making_its_folder(tmp_path, make):
    data = tmp_path / "d.h5"
    if make == "results":
        assert main(["run", str(_tiny(tmp_path)), "--out", str(data), "--quiet"]) == 0
    elif make == "text":
        data.write_text("not hdf5")
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(data), "--out", str(tmp_path / "run")])
    assert "--data" in str(e.value) and not (tmp_path / "run").exists()


def test_the_app_without_a_display_or_with_a_missing_file_says_so(monkeypatch, capsys, tmp_path):
    import nmag_cli
    assert nmag_cli.main(["gui", str(tmp_path / "nothere.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert nmag_cli.main([]) == 1
    assert "no display" in capsys.readouterr().err


def test_a_missing_mesh_table_and_a_boolean_version_are_named(tmp_path, capsys):
    no_mesh = TINY.replace("[mesh]\nn = [16, 8, 1]\ncell_nm = [5.0, 5.0, 3.0]\n", "")
    assert main(["check", str(_tiny(tmp_path, no_mesh))]) == 2
    assert "[mesh] table" in capsys.readouterr().err
    assert main(["check", str(_tiny(tmp_path, "version = true\n" + TINY))]) == 2
    assert "version = True" in capsys.readouterr().err


def test_an_output_larger_than_the_free_disk_is_warned_about_by_check(tmp_path, capsys):
    from engine.preflight import estimated_output
    from engine.problem import Problem
    big = TINY.replace("duration_ns = 0.02", "duration_ns = 1000.0").replace("snapshot_every_ps = 10.0",
                                                                            "snapshot_every_ps = 0.001")
    p = _tiny(tmp_path, big)
    est = estimated_output(Problem.from_toml(p))
    assert est["snapshots"] == 1 + 1 + 1_000_000_000 + 1    # start, relax, every 1 fs for 1000 ns
    assert est["bytes"] > 3 * 16 * 8 * 4 * 1e9
    assert main(["check", str(p)]) == 0
    assert "may need up to" in capsys.readouterr().err
    assert main(["check", str(_tiny(tmp_path))]) == 0
    assert "may need up to" not in capsys.readouterr().err


@pytest.mark.parametrize("body, suggestion", [
    (ALPHA_FIELD.replace('mode = "product"', 'mode = "prodcut"'), "did you mean 'product'"),
    (ALPHA_FIELD.replace('"first_zero_mx_ns"', '"first_zero_mx_n"'), "did you mean 'first_zero_mx_ns'"),
    (ALPHA_FIELD.replace("[[parameters]]", "[[paramters]]", 1), "did you mean 'parameters'"),
])
def test_sweep_typos_get_a_suggestion(tmp_path, capsys, body, suggestion):
    assert main(["sweep", str(write_sweep(tmp_path, body)), "--check"]) == 2
    assert suggestion in capsys.readouterr().err


def test_sweep_check_reads_the_files_the_points_name(tmp_path, capsys):
    s = write_sweep(tmp_path, ALPHA_FIELD)
    film = tmp_path / "film.toml"
    film.write_text(film.read_text().replace('kind = "uniform"\ndirection = [1.0, 0.2, 0.0]',
                                             'kind = "file"\npath = "missing.ovf"'))
    assert main(["sweep", str(s), "--check"]) == 2
    assert "point 0" in capsys.readouterr().err
