"""Sweep files: validation before any work, the points, the scalars, sequential runs and resume."""
import math
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ProblemError
from engine.sweep import load_sweep
from engine.sweep.scalars import coercive_field_mT, first_zero_mx_ns, switching_time_ns

FILM = """format = "nmag-problem"
version = 1
title = "tiny film"
[mesh]
n = [16, 16, 1]
cell_nm = [4.0, 4.0, 3.0]
[[materials]]
name = "permalloy"
Ms = 8.0e5
A = 1.3e-11
alpha = 0.1
[[geometry]]
shape = "rectangle"
size_nm = [64.0, 64.0]
material = "permalloy"
[initial]
kind = "uniform"
direction = [1.0, 0.2, 0.0]
[solver]
precision = "float64"
relax_torque = 1e-3
[[stages]]
kind = "relax"
[[stages]]
kind = "run"
duration_ns = 0.06
B_mT = [-60.0, 5.0, 0.0]
[output]
table_every_ps = 5.0
snapshot_every_ps = 15.0
"""


def write_sweep(tmp_path: Path, body: str, head: str = 'format = "nmag-sweep"\nversion = 1\nproblem = "film.toml"\n') -> Path:
    (tmp_path / "film.toml").write_text(FILM)
    p = tmp_path / "s.toml"
    p.write_text(head + body)
    return p


ALPHA_FIELD = """mode = "product"
[[parameters]]
key = "materials[0].alpha"
values = [0.05, 0.2]
[[parameters]]
key = "stages[1].B_mT"
values = [[-60.0, 5.0, 0.0], [-80.0, 5.0, 0.0]]
[outputs]
scalars = ["final_mean_m", "first_zero_mx_ns", "final_energy"]
"""


def test_points_product_and_zip(tmp_path):
    s = load_sweep(write_sweep(tmp_path, ALPHA_FIELD))
    assert len(s) == 4
    assert s.points()[1] == (0.05, [-80.0, 5.0, 0.0])
    p = s.point_problem(3)
    assert p.materials[0].alpha == 0.2 and p.stages[1].params["B_mT"] == [-80.0, 5.0, 0.0]
    z = load_sweep(write_sweep(tmp_path, ALPHA_FIELD.replace('"product"', '"zip"')))
    assert len(z) == 2 and z.points()[1] == (0.2, [-80.0, 5.0, 0.0])


def test_stage_key_the_stage_lacks_is_accepted(tmp_path):
    s = load_sweep(write_sweep(tmp_path, '[[parameters]]\nkey = "stages[0].B_mT"\nvalues = [[0.0, 0.0, 10.0]]\n'))
    assert s.point_problem(0).stages[0].params["B_mT"] == [0.0, 0.0, 10.0]


@pytest.mark.parametrize("body, key, words", [
    ('[[parameters]]\nkey = "materials[0].alhpa"\nvalues = [0.1]\n', "parameters[0].key", "has no 'alhpa'"),
    ('[[parameters]]\nkey = "materials[3].alpha"\nvalues = [0.1]\n', "parameters[0].key", "no [3]"),
    ('[[parameters]]\nkey = "stages[1].colour"\nvalues = [1]\n', "parameters[0].key", "has no 'colour'"),
    ('[[parameters]]\nkey = "materials[0]"\nvalues = [1]\n', "parameters[0].key", "not to a whole table"),
    ('[[parameters]]\nkey = "materials..alpha"\nvalues = [1]\n', "parameters[0].key", "key path"),
    ('[[parameters]]\nkey = "materials[0].alpha"\nvalues = []\n', "parameters[0].values", "non-empty"),
    ('[[parameters]]\nkey = "materials[0].alpha"\nvalues = [0.1, "x"]\n', "parameters[0].values[1]", "one kind"),
    ('parameters = []\n', "parameters", "empty sweep"),
    ('mode = "zip"\n[[parameters]]\nkey = "materials[0].alpha"\nvalues = [0.1, 0.2]\n'
     '[[parameters]]\nkey = "materials[0].Ms"\nvalues = [8e5]\n', "parameters[1].values", "zip"),
    ('mode = "grid"\n[[parameters]]\nkey = "materials[0].alpha"\nvalues = [0.1]\n', "mode", "product"),
    ('[[parameters]]\nkey = "materials[0].alpha"\nvalues = [0.1]\n[outputs]\nscalars = ["coolness"]\n',
     "outputs.scalars[0]", "switching_time_ns"),
])
def test_bad_sweeps_are_refused_naming_the_key(tmp_path, body, key, words):
    with pytest.raises(ProblemError) as e:
        load_sweep(write_sweep(tmp_path, body))
    assert e.value.key == key
    assert words in str(e.value)


def test_a_value_the_problem_refuses_names_the_point(tmp_path):
    body = '[[parameters]]\nkey = "materials[0].alpha"\nvalues = [0.1, 0.2, -0.5]\n'
    with pytest.raises(ProblemError) as e:
        load_sweep(write_sweep(tmp_path, body))
    msg = str(e.value)
    assert msg.startswith("point 2 (materials[0].alpha = -0.5): materials[0].alpha = -0.5 is not allowed")
    assert "[0, 10]" in msg


def test_a_missing_problem_or_format_is_refused(tmp_path):
    with pytest.raises(ProblemError, match="problem file"):
        load_sweep(write_sweep(tmp_path, '[[parameters]]\nkey = "title"\nvalues = ["a"]\n',
                               head='format = "nmag-sweep"\nproblem = "nope.toml"\n'))
    with pytest.raises(ProblemError) as e:
        load_sweep(write_sweep(tmp_path, '[[parameters]]\nkey = "title"\nvalues = ["a"]\n',
                               head='format = "nmag-problem"\nproblem = "film.toml"\n'))
    assert e.value.key == "format"


def test_cli_refuses_a_bad_sweep_with_exit_2(tmp_path, capsys):
    from engine.cli import main
    p = write_sweep(tmp_path, '[[parameters]]\nkey = "mesh.n[0]"\nvalues = [16, 0]\n')
    assert main(["sweep", str(p), "--out", str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err
    assert "nmag: error: point 1 (mesh.n[0] = 0): mesh.n[0] = 0 is not allowed" in err
    assert not (tmp_path / "o.h5").exists()
    assert main(["sweep", str(write_sweep(tmp_path, ALPHA_FIELD)), "--check"]) == 0
    assert "4 points" in capsys.readouterr().out


# ----------------------------------------------------------------------------- scalars
def test_scalars_interpolate_crossings():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0]) * 1e-9
    mx = np.array([1.0, 0.5, -0.5, 0.5, -1.0])        # crossings at 1.5, 2.5, 3 + 1/3 ns
    table = {"t": t, "mx": mx}
    assert first_zero_mx_ns(table) == pytest.approx(1.5)
    assert switching_time_ns(table) == pytest.approx(3 + 1 / 3)
    assert math.isnan(switching_time_ns({"t": t, "mx": np.array([1, -1, 1, -1, 0.5])}))
    assert math.isnan(first_zero_mx_ns({"t": t, "mx": np.ones(5)}))
    loop = {"Bx_mT": np.array([50, 10, -10, -50, -10, 10, 50.0]), "mx": np.array([1, 0.5, -0.5, -1, -0.5, 0.5, 1])}
    assert coercive_field_mT(loop) == pytest.approx(0.0)
    loop["mx"] = np.array([1, 1, 0.2, -1, -1, -0.2, 1])  # crossings at -10 - 40*0.2/1.2 and +10 + 40*0.2/1.2
    assert coercive_field_mT(loop) == pytest.approx(10 + 40 * 0.2 / 1.2)


# ----------------------------------------------------------------------------- runs, in process
def test_sequential_run_resume_and_layout(tmp_path):
    from engine.results import read_results
    from engine.sweep.results import read_point, read_sweep
    from engine.sweep.runner import run_sweep
    s = load_sweep(write_sweep(tmp_path, ALPHA_FIELD.replace('"product"', '"zip"')))
    out = tmp_path / "s.h5"
    stop = run_sweep(s, out, None, should_stop=lambda: True)       # stopped before any point
    assert stop.done == 0
    r = read_sweep(out)
    assert r["status"] == ["pending", "pending"] and r["done"] == []
    with pytest.raises(ProblemError, match="--resume"):
        run_sweep(s, out, None)                                    # never overwrites silently
    prog = run_sweep(s, out, None, resume=True)
    assert (prog.done, prog.failed, prog.skipped) == (2, 0, 0)
    again = run_sweep(s, out, None, resume=True)
    assert (again.done, again.skipped) == (2, 2)                   # nothing re-run
    r = read_sweep(out)
    assert r["status"] == ["done", "done"]
    assert r["parameters"]["materials[0].alpha"].tolist() == [0.05, 0.2]
    assert np.all(np.isfinite(r["scalars"]["first_zero_mx_ns"]))
    # points/<i> has the layout of `nmag run --out`: the same run gives the same numbers
    pt = read_point(out, 1)
    assert pt["problem"].materials[0].alpha == 0.2
    from engine.cli import main
    ref = tmp_path / "ref.h5"
    (tmp_path / "p1.toml").write_text(s.point_problem(1).to_toml())
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["run", str(tmp_path / "p1.toml"), "--out", str(ref), "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    res = read_results(ref)
    assert pt["columns"] == res["columns"]
    np.testing.assert_array_equal(pt["table"]["mx"], res["table"]["mx"])
    np.testing.assert_array_equal(pt["m"], res["m"])
    assert pt["snapshots_m"].shape == res["snapshots_m"].shape
    # a different sweep cannot resume this file
    s2 = load_sweep(write_sweep(tmp_path, ALPHA_FIELD))
    with pytest.raises(ProblemError, match="same sweep"):
        run_sweep(s2, out, None, resume=True)


def test_auto_fft_backend_is_pinned_in_the_client(tmp_path, monkeypatch):
    """Every point travels with one concrete FFT backend (auto measures per process, and two
    backends differ in the last bits), the same for every point of one grid; NMAG_FFT forces it."""
    from engine.fft_backends import is_choice
    from engine.sweep.point import make_task, pin_fft_backend
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NMAG_FFT", raising=False)
    s = load_sweep(write_sweep(tmp_path, ALPHA_FIELD))
    names = {pin_fft_backend(make_task(s, i))["problem"]["solver"]["fft"] for i in range(len(s))}
    assert len(names) == 1
    name = names.pop()
    assert name != "auto" and is_choice(name)
    monkeypatch.setenv("NMAG_FFT", "torch")
    assert pin_fft_backend(make_task(s, 0))["problem"]["solver"]["fft"] == "torch"


def test_a_points_first_build_of_the_compiled_network_comes_back_as_a_note(tmp_path, monkeypatch, capsys):
    # a worker's first build of the compiled learned part takes 2-9 s: its note travels back with
    # the point's result (nmag sweep prints it, the sweep dock shows it)
    from engine.neural import compiled
    from engine.sweep.runner import run_sweep
    if compiled.library() is None:
        pytest.skip(f"no compiled kernel: {compiled.why_not()}")
    body = ('mode = "zip"\n[[parameters]]\nkey = "solver.demag"\nvalues = ["neural", "neural"]\n'
            '[[parameters]]\nkey = "stages[1].duration_ns"\nvalues = [0.005, 0.005]\n')
    sweep = load_sweep(write_sweep(tmp_path, body))
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    compiled.forget()
    try:
        results = []
        run_sweep(sweep, tmp_path / "r.h5", None, on_point=results.append)
    finally:
        compiled.forget()
    assert [r["status"] for r in results] == ["done", "done"]
    assert any(n.startswith("building the network's learned part") for n in results[0]["notes"]), results[0]["notes"]
    assert not results[1]["notes"]                       # built once per process
