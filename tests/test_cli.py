"""The `nmag` command: runs problem files headless, and refuses bad ones clearly."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.results import read_results

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = """
title = "tiny film"
[mesh]
n = [16, 8, 1]
cell_nm = [5.0, 5.0, 3.0]
[[materials]]
name = "py"
preset = "permalloy"
[initial]
kind = "uniform"
direction = [1.0, 0.2, 0.0]
[solver]
method = "rk45"
[[stages]]
kind = "relax"
[[stages]]
kind = "run"
duration_ns = 0.02
B_mT = [-30.0, 0.0, 0.0]
[output]
table_every_ps = 5.0
snapshot_every_ps = 10.0
"""


def test_run_writes_table_snapshots_and_csv(tmp_path, capsys):
    prob = tmp_path / "tiny.toml"
    prob.write_text(TINY)
    out = tmp_path / "tiny.h5"
    assert main(["run", str(prob), "--out", str(out), "--csv", "--quiet"]) == 0
    res = read_results(out)
    t = res["table"]["t"]
    # initial row, relaxed row, then one row every 5 ps up to 20 ps
    assert t[-1] == pytest.approx(20e-12, rel=1e-9)
    assert np.all(np.diff(t) >= 0)
    assert res["snapshots_m"].shape[1:] == (3, 1, 8, 16)
    assert res["table"]["mx"][-1] < res["table"]["mx"][1]  # the reversed field pulls mx down
    assert (tmp_path / "tiny.csv").exists()
    summary = capsys.readouterr().out
    assert "tiny film" in summary and "steps" in summary


def test_bad_problem_names_key_value_and_range(tmp_path, capsys):
    prob = tmp_path / "bad.toml"
    prob.write_text(TINY.replace('preset = "permalloy"', 'Ms = -5.0'))
    out = tmp_path / "bad.h5"
    assert main(["run", str(prob), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "materials[0].Ms" in err and "-5.0" in err and "[0, 1e+07]" in err
    assert not out.exists() and not Path(str(out) + ".part").exists()


def test_unknown_key_and_broken_toml_are_refused(tmp_path, capsys):
    prob = tmp_path / "typo.toml"
    prob.write_text(TINY.replace("[solver]", "[solver]\nmethd = 'rk4'"))
    assert main(["check", str(prob)]) == 2
    assert "solver.methd" in capsys.readouterr().err
    prob.write_text("[mesh\n")
    assert main(["check", str(prob)]) == 2
    assert "valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["sp4.toml", "vortex_disk.toml", "skyrmion_disk.toml", "hysteresis_square.toml"])
def test_examples_are_valid(name, capsys):
    assert main(["check", str(EXAMPLES / name)]) == 0
    assert "ok" in capsys.readouterr().out


def test_engine_imports_no_qt():
    code = "import sys, engine, engine.cli, engine.simulation; " \
           "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyvista', 'vtk', 'nmag_gui'))]; " \
           "assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_engine_never_names_the_app():
    """The `nmag` entry point (nmag_cli) sits above both packages; no engine module names nmag_gui."""
    from pathlib import Path
    import engine
    root = Path(engine.__file__).parent
    assert [p.name for p in root.rglob("*.py") if "nmag_gui" in p.read_text()] == []


def test_nmag_entry_point_passes_engine_commands_on(capsys):
    import nmag_cli
    assert nmag_cli.main(["check", "examples/sp4.toml"]) == 0
    assert nmag_cli.main(["--help"]) == 0
    assert "nmag gui" in capsys.readouterr().out


def test_the_nmag_command_freezes_its_objects_before_exit():
    # the interpreter's last collection at exit walked every object torch left (0.3 s of each
    # command): console_main freezes them out of the collector once the work is done
    import subprocess
    import sys
    code = ("import gc, nmag_cli\n"
            "nmag_cli.main = lambda argv=None: (gc.collect(), 3)[1]\n"
            "before = gc.get_freeze_count()\n"
            "code = nmag_cli.console_main()\n"
            "print(before, gc.get_freeze_count() > 1000, code)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["0", "True", "3"], r.stdout + r.stderr


def test_run_says_when_the_cell_kernel_cannot_be_built(tmp_path, capsys, monkeypatch):
    from engine import cell_kernel
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))   # nothing built there
    monkeypatch.setenv("CC", "/nonexistent/cc")
    cell_kernel.forget()
    try:
        prob = tmp_path / "tiny.toml"
        prob.write_text(TINY)
        assert main(["run", str(prob), "--out", str(tmp_path / "a.h5")]) == 0
        err = capsys.readouterr().err
        assert "nmag: note: the exchange, anisotropy, DMI and torque ran on torch" in err
        assert "could not build cells.c" in err
        assert main(["check", str(prob)]) == 0
        assert "would run on torch, slower on this grid" in capsys.readouterr().err
        monkeypatch.delenv("CC")
        cell_kernel.forget()
        assert main(["run", str(prob), "--out", str(tmp_path / "b.h5"), "--quiet"]) == 0
        assert "ran on torch" not in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        cell_kernel.forget()


def test_run_says_when_it_builds_the_compiled_network(tmp_path, capsys, monkeypatch):
    from engine.neural import compiled
    if compiled.library() is None:
        pytest.skip(f"no compiled kernel: {compiled.why_not()}")
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))   # nothing built yet
    compiled.forget()
    try:
        prob = tmp_path / "tiny.toml"
        prob.write_text(TINY.replace('method = "rk45"', 'method = "rk45"\ndemag = "neural"')
                        .replace("n = [16, 8, 1]", "n = [32, 32, 1]").replace("cell_nm = [5.0, 5.0, 3.0]", "cell_nm = [3.0, 3.0, 3.0]"))
        assert main(["run", str(prob), "--out", str(tmp_path / "a.h5")]) == 0
        assert "nmag: note: building the network's learned part" in capsys.readouterr().err
        assert main(["run", str(prob), "--out", str(tmp_path / "b.h5")]) == 0   # built: no note
        assert "building" not in capsys.readouterr().err
        compiled.forget()                    # built again (its cache is gone from the process), quietly
        assert main(["run", str(prob), "--out", str(tmp_path / "c.h5"), "--quiet"]) == 0
        assert "nmag: note" not in capsys.readouterr().err
    finally:
        compiled.forget()
