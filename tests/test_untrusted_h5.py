"""Project, results and sweep files from elsewhere are untrusted: the readers
(engine.results.open_project / read_results / load_problem, engine.sweep.results.read_sweep /
read_point) refuse with a ProblemError naming the file, never follow a link or external storage
out of the file, and check sizes before they allocate. nmag's own files still read back."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine import Mesh, Problem, SolverSpec
from engine.errors import ProblemError
from engine.results import ResultWriter, load_problem, open_project, read_results, save_project
from engine.sweep.results import SweepWriter, read_point, read_sweep
from engine.sweep.sweep_file import MAX_POINTS, sweep_from_dict

SHAPE = (1, 4, 4)


def _problem():
    return Problem(mesh=Mesh((4, 4, 1), (3.0, 3.0, 3.0)), solver=SolverSpec(demag="none"))


def _m(seed=0, vacuum=False):
    m = np.random.default_rng(seed).normal(size=(3,) + SHAPE)
    m /= np.linalg.norm(m, axis=0)
    if vacuum:
        m[:, 0, 0, :2] = 0.0
    return m.astype(np.float32)


def _project(path):
    save_project(path, _problem(), m=_m(1, vacuum=True), t=2e-10,
                 table_rows=[{"t": 0.0, "mx": 1.0}, {"t": 1e-10, "mx": 0.5}],
                 snapshots=[(0.0, _m(2)), (1e-10, _m(3, vacuum=True))])
    return path


def _results(path, incomplete=False):
    with ResultWriter(path, _problem(), _problem().regions()) as out:
        out.add_row({"t": 0.0, "mx": 1.0})
        out.add_snapshot(0.0, _m(4))
        out.set_final_state(_m(5).astype(np.float64), 1e-10)
        if incomplete:
            out.mark_incomplete("diverged")
    return path


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def _edit_latest(path, fn):
    """As _edit, in a copy written with the latest file format: only that holds attributes over
    64 kB (as a crafted file may)."""
    with h5py.File(path, "r") as src, h5py.File(str(path) + ".new", "w", libver="latest") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        for name in src:
            src.copy(src[name], f, name=name)
        fn(f)
    Path(str(path) + ".new").replace(path)
    return path


def _refused(fn, path, *words):
    with pytest.raises(ProblemError) as ei:
        fn(path)
    text = str(ei.value)
    assert Path(path).name in text, text
    for w in words:
        assert w in text, text
    return text


# --------------------------------------------------------------------------- nmag's own files
def test_nmag_own_project_and_results_read_back(tmp_path):
    proj = open_project(_project(tmp_path / "p.h5"))
    assert proj.m.shape == (3,) + SHAPE and len(proj.snapshots) == 2 and proj.complete
    assert proj.table["mx"].tolist() == [1.0, 0.5] and proj.t == 2e-10
    res = read_results(_results(tmp_path / "r.h5", incomplete=True))
    assert res["m"].dtype == np.float64 and res["complete"] is False
    assert res["incomplete_reason"] == "diverged"
    assert load_problem(tmp_path / "r.h5").mesh.n == (4, 4, 1)
    # a re-save of what was opened opens again
    save_project(tmp_path / "q.h5", proj.problem, m=proj.m, t=proj.t, table_rows=proj.table,
                 snapshots=proj.snapshots)
    assert np.array_equal(open_project(tmp_path / "q.h5").m, proj.m)


def test_a_complete_attribute_stored_as_an_integer_still_reads(tmp_path):
    path = _edit(_project(tmp_path / "p.h5"), lambda f: f.attrs.__setitem__("complete", np.int64(0)))
    assert open_project(path).complete is False


# --------------------------------------------------------------------------- 1: links and external data
def _external_m(f):
    del f["m"]
    f.create_dataset("m", shape=(3,) + SHAPE, dtype="<f4",
                     external=[(str(Path(f.file.filename).parent / "secret.bin"), 0, 3 * 16 * 4)])


def _external_regions(f):
    del f["regions"]
    f.create_dataset("regions", shape=SHAPE, dtype="<i2",
                     external=[(str(Path(f.file.filename).parent / "secret.bin"), 0, 16 * 2)])


def _external_link(f):
    del f["m"]
    f["m"] = h5py.ExternalLink(str(Path(f.file.filename).parent / "other.h5"), "/m")


def _soft_link(f):
    f.move("m", "m_stored")
    f["m"] = h5py.SoftLink("/m_stored")


def _soft_link_group(f):
    f.move("snapshots", "snaps")
    f["snapshots"] = h5py.SoftLink("/snaps")


def _virtual(f):
    del f["m"]
    layout = h5py.VirtualLayout(shape=(3,) + SHAPE, dtype="f4")
    layout[...] = h5py.VirtualSource(str(Path(f.file.filename).parent / "other.h5"), "m", shape=(3,) + SHAPE)
    f.create_virtual_dataset("m", layout, fillvalue=0)


LINKS = {"external_m": (_external_m, "external storage"),
         "external_regions": (_external_regions, "external storage"),
         "external_link": (_external_link, "an external link"),
         "soft_link": (_soft_link, "a soft link"),
         "soft_link_group": (_soft_link_group, "a soft link"),
         "virtual": (_virtual, "a virtual dataset")}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_data_from_outside_the_file_is_refused(tmp_path, case):
    build, words = LINKS[case]
    # another file's bytes: zeros and ones make a valid m, so only the link check can refuse it
    (tmp_path / "secret.bin").write_bytes(np.zeros(64, np.float32).tobytes())
    _project(tmp_path / "other.h5")
    path = _edit(_project(tmp_path / f"{case}.h5"), build)
    for fn in (open_project, read_results):
        _refused(fn, path, words)
    if case == "external_regions":
        _refused(load_problem, path, words)


def test_a_sweep_point_with_external_data_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.zeros(64, np.float32).tobytes())
    out = _sweep_file(tmp_path)
    _edit(out, lambda f: _external_m(f["points/0"]))
    _refused(lambda p: read_point(p, 0), out, "point 0", "external storage")
    assert read_point(out, 1)["m"] is not None


def test_a_sweep_point_that_is_a_link_is_refused(tmp_path):
    out = _sweep_file(tmp_path)
    _project(tmp_path / "other.h5")

    def link(f):
        del f["points/0"]
        f["points/0"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
    _edit(out, link)
    _refused(lambda p: read_point(p, 0), out, "an external link")


# --------------------------------------------------------------------------- 1: value ranges
def _replace_m(values):
    def edit(f):
        del f["m"]
        f["m"] = values
    return edit


M_CASES = {"inf": np.full((3,) + SHAPE, np.inf, np.float32),
           "huge": np.full((3,) + SHAPE, 1e30, np.float64),
           "length_2": np.concatenate([np.full((1,) + SHAPE, 2.0), np.zeros((2,) + SHAPE)]).astype(np.float32),
           "length_half": np.concatenate([np.full((1,) + SHAPE, 0.5), np.zeros((2,) + SHAPE)]).astype(np.float32)}


@pytest.mark.parametrize("case", sorted(M_CASES))
def test_a_state_that_is_no_magnetisation_is_refused(tmp_path, case):
    path = _edit(_project(tmp_path / "p.h5"), _replace_m(M_CASES[case]))
    _refused(open_project, path, "/m")


def test_a_snapshot_that_is_no_magnetisation_is_refused(tmp_path):
    def edit(f):
        f["snapshots/m"][1, 0] = 3.0
    path = _edit(_project(tmp_path / "p.h5"), edit)
    _refused(open_project, path, "/snapshots/m[1]", "neither 1 nor 0")


def test_regions_out_of_range_are_not_wrapped(tmp_path):
    def edit(f):
        del f["regions"]
        f["regions"] = np.full(SHAPE, 65536 + 0, np.int64)     # int16 would read it as 0
    _refused(open_project, _edit(_project(tmp_path / "p.h5"), edit), "/regions holds values 65536")


# --------------------------------------------------------------------------- 2: memory bombs
def test_a_giant_chunk_is_refused_before_it_is_read(tmp_path):
    def edit(f):
        del f["m"]
        d = f.create_dataset("m", shape=(3,) + SHAPE, maxshape=(None,) + SHAPE, dtype="f8",
                             chunks=(1_100_000,) + SHAPE, compression="gzip")   # 140 MB a chunk
        d[...] = _m(0)
    path = _edit(_project(tmp_path / "p.h5"), edit)
    assert path.stat().st_size < 2 << 20
    _refused(open_project, path, "/m is stored in chunks of")


def test_a_table_chunk_bigger_than_its_data_but_small_is_fine(tmp_path):
    def edit(f):
        rows = f["table"][...]
        cols = f["table"].attrs["columns"]
        del f["table"]
        d = f.create_dataset("table", data=rows, maxshape=(None, 2), chunks=(4096, 2))
        d.attrs["columns"] = cols
    assert open_project(_edit(_project(tmp_path / "p.h5"), edit)).table["mx"].tolist() == [1.0, 0.5]


@pytest.mark.parametrize("name", ["warnings", "incomplete_reason", "created"])
def test_a_huge_text_attribute_is_refused(tmp_path, name):
    path = _edit(_project(tmp_path / "p.h5"), lambda f: f.attrs.__setitem__(name, "x" * (6 << 20)))
    _refused(open_project, path, repr(name), "more than")


def test_a_huge_fixed_size_attribute_is_refused_unread(tmp_path, monkeypatch):
    import engine.results as results
    path = _edit_latest(_project(tmp_path / "p.h5"),
                        lambda f: f.attrs.__setitem__("nmag_version", np.zeros(1 << 20)))   # 8 MB
    read = []
    monkeypatch.setattr(h5py.AttributeManager, "__getitem__",
                        lambda self, k, orig=h5py.AttributeManager.__getitem__: read.append(k) or orig(self, k))
    _refused(open_project, path, "'nmag_version'", "more than")
    assert "nmag_version" not in read
    assert results._MAX_ATTR_BYTES < 8 << 20


def test_a_huge_column_list_on_the_table_is_refused(tmp_path):
    def edit(f):
        rows = f["table"][...]
        del f["table"]
        f["table"] = rows           # a new object: in the latest format, as a crafted one may be
        f["table"].attrs["columns"] = np.array(["c" * 64] * 100_000, dtype="S64")   # 6.4 MB
    path = _edit_latest(_project(tmp_path / "p.h5"), edit)
    _refused(open_project, path, "/table's 'columns' attribute")


# --------------------------------------------------------------------------- 4: strict booleans
@pytest.mark.parametrize("value", ["False", "True", b"0", np.int64(2), np.array([True, False]), 0.0])
def test_a_complete_attribute_that_is_no_boolean_is_refused(tmp_path, value):
    path = _edit(_results(tmp_path / "r.h5"), lambda f: f.attrs.__setitem__("complete", value))
    for fn in (open_project, read_results, load_problem):
        _refused(fn, path, "'complete' attribute", "not a boolean")


# --------------------------------------------------------------------------- 3: sweep files
def _sweep(tmp_path):
    d = {"format": "nmag-sweep", "version": 1, "problem": "p.toml",
         "parameters": [{"key": "materials[0].alpha", "values": [0.1, 0.2]}],
         "outputs": {"scalars": ["final_mean_m"]}}
    return sweep_from_dict(d, base_dir=tmp_path, problem=_problem())


def _sweep_file(tmp_path):
    s = _sweep(tmp_path)
    out = tmp_path / "s.h5"
    w = SweepWriter(out, s)
    for i in range(len(s)):
        h5 = _results(tmp_path / f"pt{i}.h5").read_bytes()
        w.write_point({"index": i, "status": "done", "h5": h5, "wall_s": 0.1, "worker": "here",
                       "scalars": {"final_mean_m": np.array([1.0, 0.0, 0.0])}, "message": ""})
    return out


def test_nmag_own_sweep_file_reads_back(tmp_path):
    out = _sweep_file(tmp_path)
    r = read_sweep(out)
    assert r["status"] == ["done", "done"] and r["done"] == [0, 1]
    assert r["parameters"]["materials[0].alpha"].tolist() == [0.1, 0.2]
    p = read_point(out, 1)
    assert p["m"].shape == (3,) + SHAPE and p["complete"] is True
    with pytest.raises(ProblemError, match="a finished point"):
        read_point(out, 5)


def test_an_index_that_declares_more_rows_than_the_sweep_has_points_is_refused(tmp_path):
    out = _sweep_file(tmp_path)

    def edit(f):
        dt = f["index"].dtype
        del f["index"]
        f.create_dataset("index", shape=(200_000,), dtype=dt, chunks=(4096,), compression="gzip")
    _edit(out, edit)
    assert out.stat().st_size < 2 << 20
    _refused(read_sweep, out, "/index has shape (200000,)", "2 point(s)")


def test_a_sweep_json_that_declares_too_many_points_is_refused(tmp_path):
    out = _sweep_file(tmp_path)

    def edit(f):
        d = json.loads(f.attrs["sweep_json"])
        d["parameters"] = [{"key": "materials[0].alpha", "values": list(range(400))},
                           {"key": "materials[0].Ms", "values": list(range(400))}]
        f.attrs["sweep_json"] = json.dumps(d)
    _refused(read_sweep, _edit(out, edit), f"{MAX_POINTS:,}")


def test_an_index_too_big_for_memory_is_refused(tmp_path, monkeypatch):
    out = _sweep_file(tmp_path)
    monkeypatch.setenv("NMAG_MEMORY_LIMIT", "100")
    _refused(read_sweep, out, "/index declares", "memory")


@pytest.mark.parametrize("sweep_json", ["{}", "[]", '{"parameters": [{"key": 1}]}', "{not json",
                                        '{"parameters": [{"key": "a", "values": [1]}], "outputs": {}}'])
def test_a_malformed_sweep_json_is_a_problem_error(tmp_path, sweep_json):
    out = _edit(_sweep_file(tmp_path), lambda f: f.attrs.__setitem__("sweep_json", sweep_json))
    _refused(read_sweep, out, "sweep_json")


def test_an_index_without_a_needed_column_is_refused(tmp_path):
    def edit(f):
        rows = f["index"][...]
        keep = [n for n in rows.dtype.names if n != "status"]
        del f["index"]
        f["index"] = rows[keep]
    _refused(read_sweep, _edit(_sweep_file(tmp_path), edit), "no column 'status'")


def test_a_missing_sweep_file_is_a_problem_error(tmp_path):
    _refused(lambda p: read_point(p, 0), tmp_path / "nothing.h5", "an existing HDF5 file")
    _refused(read_sweep, tmp_path / "nothing.h5", "an existing HDF5 file")
    (tmp_path / "text.h5").write_text("not hdf5")
    _refused(lambda p: read_point(p, 0), tmp_path / "text.h5", "an existing HDF5 file")


def test_a_damaged_point_is_a_problem_error_naming_the_file(tmp_path):
    out = _edit(_sweep_file(tmp_path), lambda f: f["points/0"].attrs.__setitem__("complete", "False"))
    _refused(lambda p: read_point(p, 0), out, "point 0", "not a boolean")
