"""Solid shapes on the grid: cell counts against analytic volumes (within the discretisation
error of counting cell centres), flat shapes extruded over a z range, the shape operations in
3D, and surface meshes (STL ASCII/binary, OBJ) voxelised by ray parity."""
import math
from pathlib import Path

import numpy as np
import pytest

from engine import Material, Mesh, Problem, ProblemError, ShapeOp
from engine.mesh_import import read_surface, voxelize, write_stl


def cells(geometry, n=(24, 24, 24), cell_nm=(1.0, 1.0, 1.0), base_dir="."):
    p = Problem(mesh=Mesh(n, cell_nm), materials=[Material(name="py")], geometry=geometry,
                base_dir=str(base_dir))
    p.validate()
    return p.regions() >= 0


def lattice(n, cell=1.0):
    """Cell centres (z, y, x) of an n^3 grid centred on the origin."""
    c = (np.arange(n) + 0.5 - n / 2) * cell
    return np.meshgrid(c, c, c, indexing="ij")


# ----------------------------------------------------------------------------- solids
def test_sphere_volume_matches_analytic_within_discretisation():
    inside = cells([ShapeOp("sphere", "add", "py", {"radius_nm": 10.0})])
    Z, Y, X = lattice(24)
    assert inside.sum() == ((X ** 2 + Y ** 2 + Z ** 2) <= 100).sum()   # centres counted exactly
    v = 4 / 3 * math.pi * 10 ** 3
    assert abs(inside.sum() - v) / v < 0.02          # surface error ~ area * cell / volume
    # symmetric about the centre of the grid
    np.testing.assert_array_equal(inside, inside[::-1, ::-1, ::-1])


def test_cylinder_along_z_x_and_disk_volumes():
    disk = cells([ShapeOp("cylinder", "add", "py", {"radius_nm": 9.0, "height_nm": 8.0})])
    v = math.pi * 81 * 8
    assert abs(disk.sum() - v) / v < 0.03
    assert disk.any(axis=(1, 2)).sum() == 8           # eight layers of 1 nm
    wire = cells([ShapeOp("cylinder", "add", "py", {"radius_nm": 5.0, "height_nm": 20.0, "axis": "x"})])
    assert wire.any(axis=(0, 1)).sum() == 20          # 20 nm long along x
    assert wire.any(axis=(0, 2)).sum() == 10          # 10 nm across in y
    v = math.pi * 25 * 20
    assert abs(wire.sum() - v) / v < 0.05


def test_cuboid_and_ellipsoid_volumes():
    box = cells([ShapeOp("cuboid", "add", "py", {"center_nm": [2, 0, -3], "size_nm": [10, 6, 4]})])
    assert box.sum() == 240
    zs, ys, xs = np.nonzero(box)
    assert (xs.min(), xs.max()) == (9, 18) and (zs.min(), zs.max()) == (7, 10)
    ell = cells([ShapeOp("ellipsoid", "add", "py", {"radii_nm": [11, 7, 5]})])
    v = 4 / 3 * math.pi * 11 * 7 * 5
    assert abs(ell.sum() - v) / v < 0.04
    assert ell.any(axis=(0, 1)).sum() == 22 and ell.any(axis=(1, 2)).sum() == 10


def test_flat_shape_extruded_over_z_range_in_nm_and_layers():
    n, cell = (20, 20, 10), (1.0, 1.0, 2.0)                # z centres -9, -7, ..., 9 nm
    ext = cells([ShapeOp("ellipse", "add", "py", {"radii_nm": [8, 8], "z_nm": [-4.0, 4.0]})], n, cell)
    assert ext.any(axis=(1, 2)).tolist() == [False] * 3 + [True] * 4 + [False] * 3
    full = cells([ShapeOp("ellipse", "add", "py", {"radii_nm": [8, 8]})], n, cell)
    np.testing.assert_array_equal(ext[3:7], full[3:7])
    lay = cells([ShapeOp("ellipse", "add", "py", {"radii_nm": [8, 8], "layers": [3, 7]})], n, cell)
    np.testing.assert_array_equal(lay, ext)


def test_operations_in_3d_hollow_sphere_and_capped_cylinder():
    shell = cells([ShapeOp("sphere", "add", "py", {"radius_nm": 10.0}),
                   ShapeOp("sphere", "subtract", "", {"radius_nm": 6.0})])
    Z, Y, X = lattice(24)
    r2 = X ** 2 + Y ** 2 + Z ** 2
    assert shell.sum() == ((r2 <= 100) & ~(r2 <= 36)).sum()
    assert not shell[12, 12, 12]
    cap = cells([ShapeOp("sphere", "add", "py", {"radius_nm": 10.0}),
                 ShapeOp("cuboid", "intersect", "", {"size_nm": [30, 30, 10], "center_nm": [0, 0, 5]})])
    assert cap.sum() == ((r2 <= 100) & (Z >= 0)).sum()
    # union of a disk and a sphere on top: a mushroom
    both = cells([ShapeOp("cylinder", "add", "py", {"radius_nm": 4.0, "height_nm": 24.0}),
                  ShapeOp("sphere", "add", "py", {"radius_nm": 10.0})])
    assert both.sum() == ((r2 <= 100) | ((X ** 2 + Y ** 2) <= 16)).sum()


# ----------------------------------------------------------------------------- parameters
def test_unknown_shape_key_is_refused_with_the_nearest_suggested():
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("sphere", "add", "py", {"radius": 5.0})])
    assert e.value.key == "geometry[0].radius"
    assert "radius_nm" in str(e.value) and "did you mean" in str(e.value)
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("cylinder", "add", "py", {"radius_nm": 5.0, "height_nm": 3, "axis": "w"})])
    assert e.value.key == "geometry[0].axis" and "'x'" in str(e.value)
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("ellipse", "add", "py", {"radii_nm": [5, 5], "z_nm": [4, -4]})])
    assert e.value.key == "geometry[0].z_nm"
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("sphere", "add", "py", {"radius_nm": -1})])
    assert e.value.key == "geometry[0].radius_nm" and "> 0" in str(e.value)
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("cuboid", "add", "py", {"size_nm": [1, 2]})])
    assert e.value.key == "geometry[0].size_nm" and "3 numbers" in str(e.value)


def test_solid_shapes_round_trip_through_toml(tmp_path):
    p = Problem(mesh=Mesh((16, 16, 8), (2.0, 2.0, 2.0)), materials=[Material(name="py")],
                geometry=[ShapeOp("cylinder", "add", "py", {"radius_nm": 12.0, "height_nm": 10.0}),
                          ShapeOp("rectangle", "subtract", "", {"size_nm": [4, 4], "z_nm": [0, 8]})])
    p.validate()
    f = tmp_path / "p.toml"
    f.write_text(p.to_toml())
    q = Problem.from_toml(f)
    np.testing.assert_array_equal(q.regions(), p.regions())
    assert q.geometry[1].params["z_nm"] == [0, 8]


# ----------------------------------------------------------------------------- surface meshes
def cube_triangles(h):
    """A closed cube [-h, h]^3 as 12 outward triangles."""
    v = np.array([[x, y, z] for z in (-h, h) for y in (-h, h) for x in (-h, h)], float)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    return np.array([v[[a, b, c]] for a, b, c, d in quads] + [v[[a, c, d]] for a, b, c, d in quads])


def icosphere(radius, levels=3):
    """A triangulated sphere (an icosahedron subdivided `levels` times, vertices on the sphere)."""
    t = (1 + 5 ** 0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t),
         (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
         (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
         (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    tris = np.array([[v[i] for i in face] for face in f], float)
    tris /= np.linalg.norm(tris, axis=2, keepdims=True)
    for _ in range(levels):
        a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
        ab, bc, ca = [(p + q) / np.linalg.norm(p + q, axis=1, keepdims=True) for p, q in ((a, b), (b, c), (c, a))]
        tris = np.concatenate([np.stack(s, 1) for s in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return tris * radius


def polyhedron_volume(tris):
    return abs(np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum()) / 6


def test_binary_stl_cube_voxelises_to_the_exact_cells(tmp_path):
    write_stl(tmp_path / "cube.stl", cube_triangles(5.0))
    inside = cells([ShapeOp("mesh", "add", "py", {"path": "cube.stl"})], (20, 20, 20), base_dir=tmp_path)
    assert inside.sum() == 1000
    assert inside[5:15, 5:15, 5:15].all()
    # placed off-centre: center = false keeps the file's coordinates, offset moves them
    moved = cells([ShapeOp("mesh", "add", "py", {"path": "cube.stl", "center": False,
                                                 "offset_nm": [3.0, 0.0, -2.0], "scale": 0.8})],
                  (20, 20, 20), base_dir=tmp_path)
    zs, ys, xs = np.nonzero(moved)
    assert moved.sum() == 8 ** 3 and (xs.min(), zs.min()) == (9, 4)


def test_ascii_stl_and_obj_sphere_voxelise_to_the_sphere(tmp_path):
    tris = icosphere(9.0, levels=3)                          # 1280 triangles
    lines = ["solid ball"]
    for t in tris:
        lines += ["facet normal 0 0 0", " outer loop"] + [f"  vertex {x:.9g} {y:.9g} {z:.9g}" for x, y, z in t]
        lines += [" endloop", "endfacet"]
    (tmp_path / "ball.stl").write_text("\n".join(lines + ["endsolid ball"]))
    verts, index = np.unique(tris.reshape(-1, 3).round(9), axis=0, return_inverse=True)
    obj = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    obj += ["f " + " ".join(str(i + 1) for i in face) for face in index.reshape(-1, 3)]
    (tmp_path / "ball.obj").write_text("# sphere\n" + "\n".join(obj))
    np.testing.assert_allclose(read_surface(tmp_path / "ball.stl"), tris, atol=1e-6)
    analytic = cells([ShapeOp("sphere", "add", "py", {"radius_nm": 9.0})], (22, 22, 22))
    vol = polyhedron_volume(tris)
    for name in ("ball.stl", "ball.obj"):
        inside = cells([ShapeOp("mesh", "add", "py", {"path": name})], (22, 22, 22), base_dir=tmp_path)
        assert abs(inside.sum() - vol) / vol < 0.03, (name, inside.sum(), vol)
        # only cells within a cell of the surface may differ from the analytic sphere
        assert (inside != analytic).sum() < 0.03 * analytic.sum()
        assert not (inside & ~analytic).any()              # the polyhedron lies inside the sphere


def test_voxelize_majority_vote_survives_a_missing_triangle():
    tris = cube_triangles(4.0)
    c = np.arange(12) + 0.5 - 6
    full = voxelize(tris, c, c, c)
    holed = voxelize(tris[1:], c, c, c)                     # one triangle of a face is gone
    assert full.sum() == 512
    np.testing.assert_array_equal(holed, full)


def test_bad_surface_files_are_refused_with_a_message(tmp_path):
    (tmp_path / "junk.stl").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("mesh", "add", "py", {"path": "junk.stl"})], (4, 4, 4), base_dir=tmp_path)
    assert e.value.key == "geometry[0].path" and "valid STL" in str(e.value)
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("mesh", "add", "py", {"path": "none.obj"})], (4, 4, 4), base_dir=tmp_path)
    assert "an existing surface file" in str(e.value)
    with pytest.raises(ProblemError) as e:
        cells([ShapeOp("mesh", "add", "py", {"path": "part.ply"})], (4, 4, 4), base_dir=tmp_path)
    assert ".stl or .obj" in str(e.value)


def test_the_engine_voxelises_without_pyvista_or_qt(tmp_path):
    import subprocess
    import sys
    write_stl(tmp_path / "cube.stl", cube_triangles(2.0))
    code = ("import sys; from engine import Problem, Mesh, Material, ShapeOp; "
            "p = Problem(mesh=Mesh((8, 8, 8), (1.0, 1.0, 1.0)), materials=[Material(name='py')], "
            f"geometry=[ShapeOp('mesh', 'add', 'py', {{'path': 'cube.stl'}})], base_dir={str(tmp_path)!r}); "
            "p.validate(); assert (p.regions() >= 0).sum() == 64; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pyvista', 'vtk', 'vtkmodules', 'PySide6')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[1]))
