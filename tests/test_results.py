"""HDF5 results and projects (engine.results): round trips, atomic writing, clear errors."""
import json

import h5py
import numpy as np
import pytest

from engine.errors import ProblemError
from engine.problem import Material, Problem
from engine.results import (ResultWriter, load_problem, open_project, read_results, save_project,
                            write_table_csv)

SHAPE = (2, 4, 8)       # (nz, ny, nx)


@pytest.fixture
def problem():
    p = Problem(title="film")
    p.mesh.n = (8, 4, 2)
    p.mesh.cell_nm = (5.0, 5.0, 3.0)
    p.field.B_mT = (-24.6, 4.3, 0.0)
    return p.validate()


@pytest.fixture
def two_material_problem(problem):
    """A painted region map: permalloy on the left, cobalt on the right, a vacuum notch."""
    p = problem.copy()
    p.materials = [Material(), Material(name="cobalt", Ms=1.4e6, A=3e-11, Ku=5e5, alpha=0.01)]
    regions = np.zeros(SHAPE, dtype=np.int16)
    regions[:, :, 4:] = 1
    regions[:, 0, :2] = -1
    p.region_map = regions
    return p.validate()


def _m(seed=0):
    m = np.random.default_rng(seed).normal(size=(3,) + SHAPE)
    return m / np.linalg.norm(m, axis=0)


def _rows(n=5):
    return [{"t": i * 1e-11, "mx": 1.0 - 0.1 * i, "my": 0.1 * i, "mz": 0.0,
             "E_exchange": 1e-19 * i, "E_total": -1e-18 + 1e-20 * i} for i in range(n)]


def _write_results(path, problem, n_snap=3):
    rows, snaps = _rows(), [(i * 1e-10, _m(i)) for i in range(n_snap)]
    with ResultWriter(path, problem, problem.regions()) as out:
        for row in rows:
            out.add_row(row)
        for t, m in snaps:
            out.add_snapshot(t, m)
        out.set_final_state(_m(99), 4.2e-10)
    return rows, snaps


# --------------------------------------------------------------------------- results
def test_results_round_trip_every_array_and_the_problem(tmp_path, problem):
    path = tmp_path / "run.h5"
    rows, snaps = _write_results(path, problem)
    res = read_results(path)

    assert res["problem"].to_dict() == problem.to_dict()
    np.testing.assert_array_equal(res["problem"].region_map, problem.regions())
    assert res["regions"].dtype == np.int16
    np.testing.assert_array_equal(res["regions"], problem.regions())
    assert res["columns"] == ["t", "mx", "my", "mz", "E_exchange", "E_total"]
    for c in res["columns"]:
        np.testing.assert_array_equal(res["table"][c], [r[c] for r in rows])
    np.testing.assert_array_equal(res["snapshots_t"], [t for t, _ in snaps])
    assert res["snapshots_m"].shape == (3, 3) + SHAPE and res["snapshots_m"].dtype == np.float32
    np.testing.assert_array_equal(res["snapshots_m"], np.stack([m for _, m in snaps]).astype(np.float32))
    np.testing.assert_array_equal(res["m"], _m(99))      # float64 kept as float64
    assert res["t"] == 4.2e-10


def test_results_file_layout(tmp_path, problem):
    path = tmp_path / "run.h5"
    _write_results(path, problem)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "nmag-results"
        assert f.attrs["format_version"] == 1
        assert json.loads(f.attrs["problem_json"]) == problem.to_dict()
        assert f.attrs["created"] and f.attrs["nmag_version"]
        assert f["regions"].dtype == np.int16 and f["regions"].shape == SHAPE
        table = f["table"]
        assert table.dtype == np.float64 and table.shape == (5, 6)
        assert table.maxshape == (None, 6) and table.chunks is not None
        assert list(table.attrs["columns"]) == ["t", "mx", "my", "mz", "E_exchange", "E_total"]
        assert list(table.attrs["units"]) == ["s", "1", "1", "1", "J", "J"]
        sm = f["snapshots/m"]
        assert sm.shape == (3, 3) + SHAPE and sm.dtype == np.float32
        assert sm.chunks is not None and sm.compression == "gzip"
        assert f["snapshots/t"].shape == (3,)
        assert f["m"].attrs["t"] == 4.2e-10


def test_writer_works_on_a_part_file_until_it_closes(tmp_path, problem):
    path = tmp_path / "run.h5"
    with ResultWriter(path, problem, problem.regions()) as out:
        out.add_row(_rows(1)[0])
        assert not path.exists() and (tmp_path / "run.h5.part").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_no_file_is_left_when_the_run_fails(tmp_path, problem):
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="solver blew up"):
        with ResultWriter(path, problem, problem.regions()) as out:
            out.add_row(_rows(1)[0])
            out.add_snapshot(0.0, _m())
            raise RuntimeError("solver blew up")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_leaves_an_earlier_result_alone(tmp_path, problem):
    path = tmp_path / "run.h5"
    _write_results(path, problem)
    with pytest.raises(KeyboardInterrupt):
        with ResultWriter(path, problem, problem.regions()):
            raise KeyboardInterrupt
    assert read_results(path)["table"]["mx"].shape == (5,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_rows_with_other_columns_and_fields_of_the_wrong_shape_are_refused(tmp_path, problem):
    with pytest.raises(ValueError):
        with ResultWriter(tmp_path / "run.h5", problem, problem.regions()) as out:
            out.add_row({"t": 0.0, "mx": 1.0})
            out.add_row({"t": 1.0, "my": 1.0})
    with pytest.raises(ValueError, match="shape"):
        with ResultWriter(tmp_path / "run.h5", problem, problem.regions()) as out:
            out.add_snapshot(0.0, np.zeros((3, 1, 4, 8)))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- projects
def test_project_round_trip_with_two_materials(tmp_path, two_material_problem):
    p = two_material_problem
    path = tmp_path / "proj.h5"
    m = _m(5).astype(np.float32)
    snaps = [(0.0, _m(6)), (1e-10, _m(7))]
    save_project(path, p, m=m, t=3.5e-10, table_rows=_rows(), snapshots=snaps)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["proj.h5"]

    proj = open_project(path)
    assert proj.problem.to_dict() == p.to_dict()
    assert [mat.name for mat in proj.problem.materials] == ["permalloy", "cobalt"]
    assert proj.problem.materials[1].Ku == 5e5
    assert proj.problem.region_map.dtype == np.int16
    np.testing.assert_array_equal(proj.problem.region_map, p.region_map)
    np.testing.assert_array_equal(proj.m, m)
    assert proj.t == 3.5e-10
    assert proj.columns == list(_rows()[0])
    np.testing.assert_array_equal(proj.table["E_total"], [r["E_total"] for r in _rows()])
    assert [t for t, _ in proj.snapshots] == [0.0, 1e-10]
    np.testing.assert_array_equal(proj.snapshots[1][1], snaps[1][1].astype(np.float32))
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "nmag-project" and f.attrs["format_version"] == 1
        np.testing.assert_array_equal(f["regions"][...], p.region_map)


def test_opened_project_saves_again_unchanged(tmp_path, two_material_problem):
    save_project(tmp_path / "a.h5", two_material_problem, m=_m(1), t=1e-9, table_rows=_rows(),
                 snapshots=[(0.0, _m(2))])
    a = open_project(tmp_path / "a.h5")
    save_project(tmp_path / "b.h5", a.problem, m=a.m, t=a.t, table_rows=a.table, snapshots=a.snapshots)
    b = open_project(tmp_path / "b.h5")
    assert b.problem.to_dict() == a.problem.to_dict()
    np.testing.assert_array_equal(b.problem.region_map, a.problem.region_map)
    np.testing.assert_array_equal(b.m, a.m)
    assert b.t == a.t and b.columns == a.columns
    for c in a.columns:
        np.testing.assert_array_equal(b.table[c], a.table[c])
    np.testing.assert_array_equal(b.snapshots[0][1], a.snapshots[0][1])


def test_project_without_state_or_table(tmp_path, problem):
    save_project(tmp_path / "p.h5", problem)
    proj = open_project(tmp_path / "p.h5")
    assert proj.m is None and proj.t == 0.0
    assert proj.table == {} and proj.columns == [] and proj.snapshots == []
    np.testing.assert_array_equal(proj.problem.region_map, problem.regions())


def test_an_invalid_problem_is_not_saved(tmp_path, problem):
    bad = problem.copy()
    bad.materials[0].Ms = -1.0
    with pytest.raises(ProblemError, match="Ms"):
        save_project(tmp_path / "p.h5", bad)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- errors
def test_newer_format_version_says_a_newer_nmag_wrote_it(tmp_path, problem):
    path = tmp_path / "p.h5"
    save_project(path, problem)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
        f.attrs["nmag_version"] = "9.1.0"
    with pytest.raises(ProblemError) as e:
        open_project(path)
    msg = str(e.value)
    assert e.value.key == "project file"
    assert "newer nmag" in msg and "format_version 2" in msg and "9.1.0" in msg


def test_a_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "p.h5"
    path.write_bytes(b"this is not a project\n" * 10)
    with pytest.raises(ProblemError, match=r"an nmag project \(this is not an HDF5 file\)"):
        open_project(path)


def test_a_truncated_project_is_reported_as_damaged(tmp_path, problem):
    path = tmp_path / "p.h5"
    save_project(path, problem, m=_m(), snapshots=[(0.0, _m(1))])
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ProblemError, match=r"an nmag project \(the file is damaged"):
        open_project(path)


def test_missing_keys_are_named(tmp_path, problem):
    path = tmp_path / "p.h5"
    save_project(path, problem)
    with h5py.File(path, "a") as f:
        del f.attrs["problem_json"]
    with pytest.raises(ProblemError, match="problem_json"):
        open_project(path)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ProblemError, match="not written by nmag"):
        open_project(tmp_path / "other.h5")


def test_missing_project_file(tmp_path):
    with pytest.raises(ProblemError, match="an existing file"):
        open_project(tmp_path / "nothing.h5")


# --------------------------------------------------------------------------- load_problem
def test_load_problem_reads_toml_projects_and_results(tmp_path, problem, two_material_problem):
    toml = tmp_path / "p.toml"
    toml.write_text(problem.to_toml())
    assert load_problem(toml).to_dict() == problem.to_dict()

    save_project(tmp_path / "proj.h5", two_material_problem, m=_m())
    from_project = load_problem(tmp_path / "proj.h5")
    assert from_project.to_dict() == two_material_problem.to_dict()
    np.testing.assert_array_equal(from_project.region_map, two_material_problem.region_map)

    _write_results(tmp_path / "run.h5", problem)
    assert load_problem(tmp_path / "run.h5").to_dict() == problem.to_dict()


def test_load_problem_errors(tmp_path):
    with pytest.raises(ProblemError, match="an existing"):
        load_problem(tmp_path / "nothing.toml")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(ProblemError, match="not an HDF5 file"):
        load_problem(tmp_path / "bad.h5")


# --------------------------------------------------------------------------- CSV
def test_table_csv_reads_back_exactly(tmp_path):
    columns = ["t", "mx", "my", "mz", "E_total"]
    rows = np.array([[0.0, 0.1, 0.2, 0.3, -1.234567890123e-18], [1e-12, 1 / 3, 2 / 3, 0.0, np.nan]])
    write_table_csv(tmp_path / "table.csv", columns, rows)
    text = (tmp_path / "table.csv").read_text().splitlines()
    assert text[0] == "# columns: t [s], mx [1], my [1], mz [1], E_total [J]"
    assert text[1] == "t,mx,my,mz,E_total"
    back = np.loadtxt(tmp_path / "table.csv", delimiter=",", skiprows=2)
    np.testing.assert_array_equal(back, rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_atomic_writes_get_the_mode_of_any_new_file(tmp_path):
    """mkstemp makes 0600 files; an exported CSV or problem file must be readable by the group
    and others like any file the user makes (0666 less the umask)."""
    import os
    from engine.atomic import write_atomic
    old = os.umask(0o022)
    try:
        p = write_atomic(tmp_path / "a.csv", "t,mx\n0,1\n")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644
