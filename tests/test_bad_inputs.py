"""A corpus of bad inputs (issue 9): problem files and OVF files in tests/data/bad/ (written by
its make_corpus.py), HDF5 projects built here. Each must be refused by `nmag run` and by
`nmag check` with exit code 2 and one line naming the key or the file, leaving no output and no
input changed. In-process (engine.cli.main), so the whole corpus takes seconds."""
import json
import shutil
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine import Mesh, Problem, SolverSpec
from engine.cli import EXIT_BAD_INPUT, main
from engine.errors import ProblemError
from engine.ovf import read_ovf
from engine.problem import read_toml
from engine.results import open_project, save_project

BAD = Path(__file__).resolve().parent / "data" / "bad"
EXPECT = read_toml(BAD / "expect.toml", "expect")
TOML_CASES = sorted(k for k in EXPECT if k.endswith(".toml"))
OVF_CASES = sorted(k for k in EXPECT if k.endswith(".ovf"))


# --------------------------------------------------------------------------- HDF5 cases
def _project(path, **kw):
    p = Problem(mesh=Mesh((8, 8, 1), (5.0, 5.0, 3.0)), solver=SolverSpec(demag="none"))
    m = np.zeros((3, 1, 8, 8), np.float32)
    m[0] = 1.0
    save_project(path, p, m=m, table_rows=[{"t": 0.0, "mx": 1.0}], snapshots=[(0.0, m)], **kw)
    return path


def _edit(fn):
    def build(path):
        _project(path)
        with h5py.File(path, "r+") as f:
            fn(f)
        return path
    return build


def _replace(name, data, **kw):
    def fn(f):
        del f[name]
        f.create_dataset(name, data=data, **kw)
    return fn


def _json_edit(change):
    def fn(f):
        d = json.loads(f.attrs["problem_json"])
        change(d)
        f.attrs["problem_json"] = json.dumps(d)
    return fn


def _huge_regions(f):
    del f["regions"]
    f.create_dataset("regions", shape=(1, 10 ** 6, 10 ** 6), dtype=np.int16, chunks=(1, 256, 256),
                     compression="gzip")          # a decompression bomb: declared, never written


def _not_hdf5(path):
    path.write_text("not an HDF5 file\n")
    return path


H5_CASES = {
    "not_hdf5.h5": (_not_hdf5, "not an HDF5 file"),
    "no_format.h5": (_edit(lambda f: f.attrs.__delitem__("format")), "no 'format' attribute"),
    "foreign_format.h5": (_edit(lambda f: f.attrs.__setitem__("format", "mumax")), "'mumax'"),
    "future_version.h5": (_edit(lambda f: f.attrs.__setitem__("format_version", 99)), "format_version 99"),
    "no_problem_json.h5": (_edit(lambda f: f.attrs.__delitem__("problem_json")), "problem_json"),
    "broken_json.h5": (_edit(lambda f: f.attrs.__setitem__("problem_json", "{not json")), "not valid JSON"),
    "invalid_problem.h5": (_edit(_json_edit(lambda d: d["materials"][0].__setitem__("Ms", -1.0))), "materials[0].Ms"),
    "no_regions.h5": (_edit(lambda f: f.__delitem__("regions")), "no 'regions'"),
    "regions_wrong_shape.h5": (_edit(_replace("regions", np.zeros((1, 8, 9), np.int16))), "/regions has shape"),
    "regions_float.h5": (_edit(_replace("regions", np.zeros((1, 8, 8), np.float32))), "expected integers"),
    "regions_million_squared.h5": (_edit(_huge_regions), "/regions has shape (1, 1000000, 1000000)"),
    "mesh_million_squared.h5": (_edit(lambda f: (_json_edit(lambda d: d["mesh"].__setitem__("n", [10 ** 6, 10 ** 6, 1]))(f),
                                                 _huge_regions(f))), "mesh.n[0] = 1000000"),
    "m_wrong_shape.h5": (_edit(_replace("m", np.ones((3, 1, 8, 7), np.float32))), "/m has shape"),
    "m_nan.h5": (_edit(_replace("m", np.full((3, 1, 8, 8), np.nan, np.float32))), "NaN"),
    "m_integers.h5": (_edit(_replace("m", np.ones((3, 1, 8, 8), np.int32))), "expected floats"),
    "time_nan.h5": (_edit(lambda f: f.attrs.__setitem__("t", np.nan)), "not finite"),
    "snapshots_mismatch.h5": (_edit(_replace("snapshots/t", np.zeros(3))), "/snapshots hold"),
    "snapshots_nan.h5": (_edit(_replace("snapshots/m", np.full((1, 3, 1, 8, 8), np.inf, np.float32))), "NaN or infinite"),
    "table_declared_huge.h5": (_edit(lambda f: (f.__delitem__("table"),
                                                f.create_dataset("table", shape=(10 ** 11, 2), maxshape=(None, 2),
                                                                 dtype=np.float64, chunks=(4096, 2)),
                                                f["table"].attrs.__setitem__("columns", ["t", "mx"]))),
                               "more than the"),
    "project_named.toml": (_project, "HDF5 file"),
}


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _prepare(name, tmp_path) -> tuple[Path, str, bool]:
    """Copy the corpus to tmp_path/in and return (the file to run, the expected text, whether
    the file's name must be in the message)."""
    work = tmp_path / "in"
    shutil.copytree(BAD, work, ignore=shutil.ignore_patterns("make_corpus.py", "expect.toml", "__pycache__"))
    if name in H5_CASES:
        build, expected = H5_CASES[name]
        return build(work / name), expected, True
    if name in OVF_CASES:
        text = (work / "initial_ovf_nan.toml").read_text().replace("nan_value.ovf", name)
        prob = work / f"uses_{name}.toml"
        prob.write_text(text)
        return prob, EXPECT[name], True
    return work / name, EXPECT[name], False


ALL = TOML_CASES + OVF_CASES + sorted(H5_CASES)


def test_the_corpus_is_big_enough():
    assert len(TOML_CASES) >= 60 and len(OVF_CASES) >= 15 and len(H5_CASES) >= 15
    assert len(ALL) >= 60


@pytest.mark.parametrize("name", ALL)
def test_bad_input_is_refused_cleanly(name, tmp_path, capsys):
    path, expected, names_file = _prepare(name, tmp_path)
    work = path.parent
    before = _snapshot(work)
    out = tmp_path / "out.h5"
    for argv in (["run", str(path), "--out", str(out), "--quiet", "--csv"], ["check", str(path)]):
        code = main(argv)
        cap = capsys.readouterr()
        err = cap.err.strip()
        assert code == EXIT_BAD_INPUT, f"{argv[0]} {name}: exit {code}, stderr {err!r}, stdout {cap.out!r}"
        assert len(err.splitlines()) == 1 and err.startswith("nmag: error: "), err
        assert "Traceback" not in err
        assert expected in err, f"{name}: {expected!r} not in {err!r}"
        if names_file:
            assert path.name in err or name in err, err
    assert not out.exists() and not Path(str(out) + ".part").exists() and not out.with_suffix(".csv").exists()
    assert _snapshot(work) == before, "an input was changed or an output left beside it"


# --------------------------------------------------------------------------- issue 14: bounded readers
def test_an_ovf_declaring_a_million_squared_grid_is_refused_before_allocating():
    tracemalloc.start()
    try:
        with pytest.raises(ProblemError) as ei:
            read_ovf(BAD / "million_squared.ovf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "1000000 x 1000000" in str(ei.value) and "available" in str(ei.value)
    assert peak < 20e6, f"{peak / 1e6:.1f} MB allocated before refusing"


def test_a_project_declaring_a_million_squared_grid_is_refused_before_allocating(tmp_path):
    for name in ("regions_million_squared.h5", "mesh_million_squared.h5"):
        path = H5_CASES[name][0](tmp_path / name)
        assert path.stat().st_size < 1e6           # the declared 2 TB are not in the file
        tracemalloc.start()
        try:
            with pytest.raises(ProblemError) as ei:
                open_project(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert "1000000" in str(ei.value)
        assert peak < 20e6, f"{name}: {peak / 1e6:.1f} MB allocated before refusing"


def test_an_image_bomb_is_refused_before_decoding():
    from engine.geometry import ImageMask
    tracemalloc.start()
    try:
        with pytest.raises(ProblemError, match="decompression bomb|at most"):
            ImageMask(BAD / "bomb.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6


def test_the_memory_estimate_refuses_a_grid_with_the_numbers(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NMAG_MEMORY_LIMIT", str(200e6))     # as if 200 MB were free
    prob = tmp_path / "big.toml"
    prob.write_text((BAD / "ms_negative.toml").read_text().replace("Ms = -5.0", "Ms = 8e5")
                    .replace("n = [8, 8, 1]", "n = [1024, 1024, 1]"))
    assert main(["check", str(prob)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "mesh.n" in err and "needs about 1.0 GB" in err and "200.0 MB is available" in err
    with pytest.raises(ProblemError, match="needs about"):
        from engine import Simulation
        Simulation(Problem.from_toml(prob))


def test_cuda_without_cuda_is_refused(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    prob = tmp_path / "p.toml"
    prob.write_text((BAD / "solver_device_tpu.toml").read_text().replace('device = "tpu"', 'device = "cuda"'))
    assert main(["run", str(prob), "--out", str(tmp_path / "o.h5"), "--quiet"]) == EXIT_BAD_INPUT
    assert "solver.device" in capsys.readouterr().err
    assert main(["run", str(prob).replace("p.toml", "p.toml"), "--device", "cpu", "--out", str(tmp_path / "o.h5"),
                 "--quiet"]) == 0
