"""The problem description: validation messages, TOML round trip, and the geometry's
rasterisation to cell masks (rectangle, ellipse, ring, polygon, image, and their combinations)."""
import math

import numpy as np
import pytest

from engine import Material, Mesh, Problem, ProblemError, ShapeOp


def assert_error_names(err: ProblemError, key: str, value_text: str, allowed_text: str):
    msg = str(err)
    assert err.key == key
    assert key in msg, msg
    assert value_text in msg, msg
    assert allowed_text in msg, msg


def base_dict(**over):
    d = {"mesh": {"n": [8, 8, 1], "cell_nm": [2.0, 2.0, 2.0]},
         "materials": [{"name": "py", "Ms": 8e5, "A": 1.3e-11}]}
    d.update(over)
    return d


# ----------------------------------------------------------------------------- validation
def test_negative_Ms_names_key_value_and_range():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(materials=[{"name": "py", "Ms": -8e5}]))
    assert_error_names(e.value, "materials[0].Ms", "-800000.0", "[0, 1e+07]")
    assert e.value.value == -8e5


def test_string_Ms_names_key_value_and_range():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(materials=[{"name": "py", "Ms": "lots"}]))
    assert_error_names(e.value, "materials[0].Ms", "'lots'", "a number in [0, 1e+07]")


def test_Ms_of_second_material_is_located_by_index():
    bad = Problem(materials=[Material(name="a"), Material(name="b", Ms=float("nan"))])
    with pytest.raises(ProblemError) as e:
        bad.validate()
    assert_error_names(e.value, "materials[1].Ms", "nan", "[0, 1e+07]")


def test_unknown_top_level_key_is_named_with_the_known_ones():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(meshh={"n": [1, 1, 1]}))
    assert_error_names(e.value, "meshh", "{'n': [1, 1, 1]}", "a known top-level key")
    assert "mesh" in e.value.allowed and "materials" in e.value.allowed


def test_unknown_material_key_is_named():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(materials=[{"name": "py", "Mss": 8e5}]))
    assert_error_names(e.value, "materials[0].Mss", "800000.0", "a known key")
    assert "Ms" in e.value.allowed


def test_unknown_solver_key_is_named():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(solver={"methd": "rk4"}))
    assert_error_names(e.value, "solver.methd", "'rk4'", "a known key")


def test_bad_shape_name_lists_the_shapes():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(geometry=[{"shape": "hexagon", "size_nm": [4, 4]}]))
    assert_error_names(e.value, "geometry[0].shape", "'hexagon'", "one of 'rectangle', 'ellipse'")


def test_geometry_naming_a_missing_material_lists_the_materials():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(geometry=[{"shape": "rectangle", "size_nm": [4, 4], "material": "unobtainium"}]))
    assert_error_names(e.value, "geometry[0].material", "'unobtainium'", "one of the materials: py")


def test_material_without_a_name_is_refused():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(materials=[{"name": "", "Ms": 8e5}]))
    assert_error_names(e.value, "materials[0].name", "''", "a non-empty name")


def test_bad_solver_choice_and_mesh_size():
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(solver={"method": "euler"}))
    assert_error_names(e.value, "solver.method", "'euler'", "one of 'rk45', 'rk4', 'heun'")
    with pytest.raises(ProblemError) as e:
        Problem.from_dict(base_dict(mesh={"n": [8, 0, 1], "cell_nm": [1, 1, 1]}))
    assert_error_names(e.value, "mesh.n[1]", "0", "an integer in [1, 4096]")


def test_problem_error_is_a_value_error_with_a_readable_message():
    err = ProblemError("materials[0].Ms", -1.0, "a number in [0, 1e+07]")
    assert isinstance(err, ValueError)
    assert str(err) == "materials[0].Ms = -1.0 is not allowed: expected a number in [0, 1e+07]"


# ----------------------------------------------------------------------------- TOML
def test_toml_round_trip_keeps_everything(tmp_path):
    d = base_dict(
        title="round trip",
        materials=[{"name": "py", "Ms": 8e5, "A": 1.3e-11, "alpha": 0.02},
                   {"name": "cofeb", "Ms": 1.1e6, "A": 1.5e-11, "Ku": 8e5, "Ku_axis": [0, 0, 1], "D": 1e-3}],
        geometry=[{"shape": "rectangle", "size_nm": [12, 10], "center_nm": [0, 0], "material": "py"},
                  {"shape": "ellipse", "radii_nm": [4, 3], "center_nm": [1, 0], "material": "cofeb"},
                  {"shape": "ring", "outer_nm": 3, "inner_nm": 1, "op": "subtract"}],
        initial={"kind": "vortex", "chirality": -1, "polarity": 1},
        field={"B_mT": [1.0, 2.0, 3.0], "ac": {"kind": "sine", "amplitude_mT": [0, 0, 5], "frequency_GHz": 3.0}},
        solver={"method": "rk4", "dt_ps": 0.05, "precision": "float64", "demag": "fft"},
        stages=[{"kind": "relax", "torque": 1e-5}, {"kind": "run", "duration_ns": 1.5, "B_mT": [0, 0, 10]}],
        output={"table_every_ps": 5.0, "snapshot_every_ps": 50.0})
    p = Problem.from_dict(d)
    path = tmp_path / "p.toml"
    path.write_text(p.to_toml())
    q = Problem.from_toml(path)
    assert q.to_dict() == p.to_dict()
    assert q.materials[1].Ku == 8e5 and q.materials[1].Ku_axis == (0, 0, 1)
    assert q.solver.method == "rk4" and q.stages[1].params["duration_ns"] == 1.5
    np.testing.assert_array_equal(q.regions(), p.regions())


def test_toml_syntax_error_and_missing_file_are_problem_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mesh\nn = [1, 2")
    with pytest.raises(ProblemError) as e:
        Problem.from_toml(bad)
    assert e.value.key == "problem file" and "valid TOML" in str(e.value)
    with pytest.raises(ProblemError) as e:
        Problem.from_toml(tmp_path / "nope.toml")
    assert "an existing TOML file" in str(e.value)


# ----------------------------------------------------------------------------- geometry
def cells(geometry, n=(20, 20, 1), cell_nm=(1.0, 1.0, 1.0), base_dir="."):
    p = Problem(mesh=Mesh(n, cell_nm), materials=[Material(name="py")], geometry=geometry, base_dir=str(base_dir))
    p.validate()
    return p.regions()


def rect(size, center=(0, 0), op="add"):
    return ShapeOp("rectangle", op, "py", {"center_nm": list(center), "size_nm": list(size)})


def test_rectangle_cell_count():
    r = cells([rect((10, 6))])
    assert (r >= 0).sum() == 60
    # centred on the grid: cell centres at +-0.5 .. +-4.5 nm in x
    assert (r[0, 7:13, 5:15] == 0).all()


def test_ellipse_and_disk_cell_counts():
    disk = cells([ShapeOp("ellipse", "add", "py", {"center_nm": [0, 0], "radii_nm": [8, 8]})])
    # lattice points (i + 1/2, j + 1/2) within radius 8: counted independently
    c = np.arange(-9.5, 10)
    expect = int(((c[:, None] ** 2 + c[None, :] ** 2) <= 64).sum())
    assert (disk >= 0).sum() == expect
    assert abs(expect - math.pi * 64) < 0.05 * math.pi * 64
    ell = cells([ShapeOp("ellipse", "add", "py", {"center_nm": [0, 0], "radii_nm": [9, 3]})])
    expect = int((((c[None, :] / 9) ** 2 + (c[:, None] / 3) ** 2) <= 1).sum())
    assert (ell >= 0).sum() == expect
    # wider along x than along y
    assert (ell[0] >= 0).any(axis=0).sum() > (ell[0] >= 0).any(axis=1).sum()


def test_ring_cell_count():
    ring = cells([ShapeOp("ring", "add", "py", {"center_nm": [0, 0], "outer_nm": 9, "inner_nm": 5})])
    c = np.arange(-9.5, 10)
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    assert (ring >= 0).sum() == int(((r2 <= 81) & (r2 >= 25)).sum())
    assert ring[0, 10, 10] == -1     # the hole
    assert abs((ring >= 0).sum() - math.pi * (81 - 25)) < 0.1 * math.pi * 56


def test_polygon_cell_counts():
    tri = cells([ShapeOp("polygon", "add", "py", {"points_nm": [[0, 0], [10.2, 0], [0, 10.2]]})])
    # centres (i + 1/2, j + 1/2), i, j >= 0 with i + j + 1 < 10.2: i + j <= 9
    assert (tri >= 0).sum() == 55
    # a polygon tracing a rectangle gives the rectangle, whatever the vertex order
    poly = cells([ShapeOp("polygon", "add", "py", {"points_nm": [[-5, -3], [-5, 3], [5, 3], [5, -3]]})])
    np.testing.assert_array_equal(poly, cells([rect((10, 6))]))


def test_union_difference_intersection_cell_counts():
    a, b = rect((10, 6)), rect((6, 10))
    assert (cells([a, b]) >= 0).sum() == 60 + 60 - 36
    assert (cells([a, rect((2, 2), op="subtract")]) >= 0).sum() == 60 - 4
    assert (cells([a, rect((6, 10), op="intersect")]) >= 0).sum() == 36
    # a ring made by difference equals the ring shape
    diff = cells([ShapeOp("ellipse", "add", "py", {"radii_nm": [9, 9]}),
                  ShapeOp("ellipse", "subtract", "", {"radii_nm": [4.99, 4.99]})])
    ring = cells([ShapeOp("ring", "add", "py", {"outer_nm": 9, "inner_nm": 5})])
    np.testing.assert_array_equal(diff, ring)


def test_two_materials_paint_their_regions():
    p = Problem(mesh=Mesh((20, 20, 1), (1.0, 1.0, 1.0)), materials=[Material(name="a"), Material(name="b")],
                geometry=[rect((10, 6)), ShapeOp("rectangle", "add", "b", {"center_nm": [0, 0], "size_nm": [2, 2]})])
    p.geometry[0].material = "a"
    r = p.validate().regions()
    assert (r == 1).sum() == 4 and (r == 0).sum() == 56 and r.dtype == np.int16


def _write_mask_png(path):
    iio = pytest.importorskip("imageio.v3")
    img = np.full((20, 40), 255, np.uint8)   # rows top -> bottom, 40 columns
    img[:10, :20] = 0                        # dark top-left quadrant
    iio.imwrite(path, img)


def test_image_mask_from_png(tmp_path):
    _write_mask_png(tmp_path / "mask.png")
    r = cells([ShapeOp("image", "add", "py", {"path": str(tmp_path / "mask.png"), "threshold": 0.5})],
              n=(20, 10, 1))
    assert (r >= 0).sum() == 50
    # image top is +y (high row index of the cell arrays), image left is -x
    assert (r[0, 5:, :10] == 0).all()
    assert (r[0, :5, :] == -1).all() and (r[0, :, 10:] == -1).all()


def test_image_path_is_resolved_relative_to_the_problem_file(tmp_path, monkeypatch):
    _write_mask_png(tmp_path / "mask.png")
    (tmp_path / "p.toml").write_text(
        '[mesh]\nn = [20, 10, 1]\ncell_nm = [1.0, 1.0, 1.0]\n'
        '[[geometry]]\nshape = "image"\npath = "mask.png"\n')
    monkeypatch.chdir(tmp_path.parent)
    p = Problem.from_toml(tmp_path / "p.toml")
    assert (p.regions() >= 0).sum() == 50


def test_missing_image_is_a_problem_error(tmp_path):
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("image", "add", "py", {"path": "nothing.png"})], base_dir=tmp_path)
    assert e.value.key == "geometry[0].path" and "nothing.png" in str(e.value)


def test_check_keys_names_the_key_and_suggests_the_nearest():
    from engine.validation import check_keys
    from engine.errors import ProblemError
    check_keys({"kind": "vortex", "core_nm": 5, "_base_dir": "."}, "initial", {"kind", "core_nm"})   # "_" keys are internal
    with pytest.raises(ProblemError) as ei:
        check_keys({"kind": "pulse", "strat_ns": 0.1}, "field.ac", {"kind", "start_ns", "width_ns"})
    e = ei.value
    assert e.key == "field.ac.strat_ns" and e.value == 0.1
    assert "did you mean 'start_ns'?" in str(e) and "start_ns, width_ns" in str(e)
    with pytest.raises(ProblemError) as ei:
        check_keys({"zzz": 1}, "solver", {"method", "tolerance"})
    assert "did you mean" not in str(ei.value)                 # nothing close: no guess


def test_unknown_keys_in_kind_tables_are_refused_through_the_api():
    from engine import InitialState, Problem, Stage
    from engine.errors import ProblemError
    p = Problem()
    p.initial = InitialState("vortex", {"core_nm": 5.0, "direction": [1, 0, 0]})   # left over from "uniform"
    with pytest.raises(ProblemError, match="initial.direction"):
        p.validate()
    p = Problem()
    p.stages = [Stage("run", {"duration_ns": 0.1, "torque": 1e-3})]                 # torque belongs to relax
    with pytest.raises(ProblemError, match=r"stages\[0\].torque"):
        p.validate()
