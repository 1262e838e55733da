"""Shapes of the sample and their rasterisation to a region map (nz, ny, nx).

Coordinates are in nm with the origin at the centre of the grid (x, y and z); a cell belongs
to a shape when its centre lies inside. Shapes combine by the order of `ShapeOp`s: "add"
paints the shape's cells with its material (union), "subtract" empties them (difference),
"intersect" empties every cell outside (intersection).

Flat shapes (rectangle, ellipse, polygon, ring, image) are drawn in the xy plane and extruded
over the whole thickness, over `layers = [k0, k1]` (cell indices, k0 <= k < k1) or over
`z_nm = [z0, z1]` (cells whose centre has z0 <= z <= z1). Solid shapes: cuboid, cylinder (a
disk of any height, along x, y or z), sphere, ellipsoid, and a closed surface mesh (STL or
OBJ, voxelised by `engine.mesh_import`).

Parameters by shape (every length in nm):

| shape | keys |
|---|---|
| rectangle | center_nm [x, y], size_nm [w, h] |
| ellipse | center_nm, radii_nm [rx, ry] |
| ring | center_nm, outer_nm, inner_nm |
| polygon | points_nm [[x, y], ...] |
| image | path, threshold (0..1, darker is magnet) |
| cuboid | center_nm [x, y, z], size_nm [w, h, d] |
| cylinder | center_nm [x, y, z], radius_nm, height_nm, axis ("x", "y" or "z") |
| sphere | center_nm [x, y, z], radius_nm |
| ellipsoid | center_nm [x, y, z], radii_nm [rx, ry, rz] |
| mesh | path (.stl, .obj), scale (file units to nm), offset_nm [3], center (true: the mesh's box centre goes to offset_nm) |

The flat shapes also take `layers` or `z_nm`. An unknown key is refused with the nearest
known one suggested.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ProblemError
from .validation import check_keys


@dataclass
class Rectangle:
    center: tuple
    size: tuple

    def contains(self, x, y):
        return (np.abs(x - self.center[0]) <= self.size[0] / 2) & (np.abs(y - self.center[1]) <= self.size[1] / 2)


@dataclass
class Ellipse:
    center: tuple
    radii: tuple

    def contains(self, x, y):
        return ((x - self.center[0]) / self.radii[0]) ** 2 + ((y - self.center[1]) / self.radii[1]) ** 2 <= 1.0


@dataclass
class Ring:
    center: tuple
    outer: float
    inner: float

    def contains(self, x, y):
        r2 = (x - self.center[0]) ** 2 + (y - self.center[1]) ** 2
        return (r2 <= self.outer ** 2) & (r2 >= self.inner ** 2)


@dataclass
class Polygon:
    """A simple polygon given by its vertices (nm); even-odd rule, so any vertex order works."""
    points: tuple

    def contains(self, x, y):
        pts = np.asarray(self.points, dtype=float)
        inside = np.zeros(np.broadcast(x, y).shape, dtype=bool)
        xj, yj = pts[-1]
        for xi, yi in pts:
            crosses = (yi > y) != (yj > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = (xj - xi) * (y - yi) / (yj - yi) + xi
            inside ^= crosses & (x < xc)
            xj, yj = xi, yi
        return inside


class ImageMask:
    """A PNG (or any image Qt/imageio reads) stretched over the grid: dark pixels are magnet."""

    def __init__(self, path: str | Path, threshold: float = 0.5, key="geometry.path"):
        import imageio.v3 as iio
        from .validation import check_image_size
        check_image_size(key, path)      # declared size against memory, before decoding (issue 14)
        try:
            img = np.asarray(iio.imread(path), dtype=float)
        except Exception as e:  # any reader failure is the user's file
            raise ProblemError(key, str(path), f"a readable image file ({e})") from None
        if img.ndim == 3:
            if img.shape[2] == 4:   # transparent counts as background (white)
                a = img[..., 3:4] / 255.0
                img = img[..., :3] * a + 255.0 * (1 - a)
            img = img[..., :3].mean(axis=2)
        self.dark = img / max(img.max(), 1.0) < threshold  # (rows top->bottom, cols)

    def cell_mask(self, nx, ny):
        rows, cols = self.dark.shape
        iy = ((np.arange(ny) + 0.5) / ny * rows).astype(int)
        ix = ((np.arange(nx) + 0.5) / nx * cols).astype(int)
        return self.dark[::-1][iy][:, ix]  # image top is +y


# --------------------------------------------------------------------------- solid shapes
@dataclass
class Cuboid:
    center: tuple
    size: tuple

    def contains3(self, x, y, z):
        c, s = self.center, self.size
        return ((np.abs(x - c[0]) <= s[0] / 2) & (np.abs(y - c[1]) <= s[1] / 2)
                & (np.abs(z - c[2]) <= s[2] / 2))


@dataclass
class Cylinder:
    """A circular cylinder (a disk when short) of radius and height, its axis along x, y or z."""
    center: tuple
    radius: float
    height: float
    axis: str = "z"

    def contains3(self, x, y, z):
        u = {"x": 0, "y": 1, "z": 2}[self.axis]
        rel = (x - self.center[0], y - self.center[1], z - self.center[2])
        a, b = [rel[i] for i in range(3) if i != u]
        return (a * a + b * b <= self.radius ** 2) & (np.abs(rel[u]) <= self.height / 2)


@dataclass
class Ellipsoid:
    center: tuple
    radii: tuple

    def contains3(self, x, y, z):
        c, r = self.center, self.radii
        return (((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2) <= 1.0


def Sphere(center, radius) -> Ellipsoid:
    """A sphere: an ellipsoid with three equal radii."""
    return Ellipsoid(tuple(center), (radius, radius, radius))


class SurfaceMesh:
    """A closed triangle surface (nm, already placed); cells inside by ray parity."""

    def __init__(self, triangles: np.ndarray):
        self.triangles = np.asarray(triangles, dtype=np.float64)

    def cell_mask3(self, mesh) -> np.ndarray:
        from .mesh_import import voxelize
        x, y, z = cell_centers3_nm(mesh)
        return voxelize(self.triangles, x, y, z)


SOLID_SHAPES = ("cuboid", "cylinder", "sphere", "ellipsoid", "mesh")
FLAT_SHAPES = ("rectangle", "ellipse", "ring", "polygon", "image")
_Z_KEYS = ("layers", "z_nm")
SHAPE_KEYS = {
    "rectangle": ("center_nm", "size_nm") + _Z_KEYS,
    "ellipse": ("center_nm", "radii_nm") + _Z_KEYS,
    "ring": ("center_nm", "outer_nm", "inner_nm") + _Z_KEYS,
    "polygon": ("points_nm",) + _Z_KEYS,
    "image": ("path", "threshold") + _Z_KEYS,
    "cuboid": ("center_nm", "size_nm"),
    "cylinder": ("center_nm", "radius_nm", "height_nm", "axis"),
    "sphere": ("center_nm", "radius_nm"),
    "ellipsoid": ("center_nm", "radii_nm"),
    "mesh": ("path", "scale", "offset_nm", "center"),
}


def shape_from_op(op, key="geometry"):
    """Build the shape object of a ShapeOp, checking its parameters (unknown keys refused)."""
    from .validation import check_vector, check_number, check_choice
    p = op.params
    if op.shape in SHAPE_KEYS:
        check_keys(p, key, SHAPE_KEYS[op.shape])     # unknown keys: nearest known one suggested
    if op.shape in FLAT_SHAPES:
        _check_z_range(p, key)
    if op.shape == "rectangle":
        return Rectangle(check_vector(f"{key}.center_nm", p.get("center_nm", [0, 0]), 2),
                         check_vector(f"{key}.size_nm", p.get("size_nm"), 2, 0.0))
    if op.shape == "ellipse":
        return Ellipse(check_vector(f"{key}.center_nm", p.get("center_nm", [0, 0]), 2),
                       check_vector(f"{key}.radii_nm", p.get("radii_nm"), 2, 1e-6))
    if op.shape == "ring":
        outer = check_number(f"{key}.outer_nm", p.get("outer_nm"), 0.0, lo_open=True)
        inner = check_number(f"{key}.inner_nm", p.get("inner_nm", 0.0), 0.0, outer)
        return Ring(check_vector(f"{key}.center_nm", p.get("center_nm", [0, 0]), 2), outer, inner)
    if op.shape == "polygon":
        pts = p.get("points_nm")
        if not isinstance(pts, (list, tuple)) or len(pts) < 3:
            raise ProblemError(f"{key}.points_nm", pts, "a list of at least 3 [x, y] points")
        return Polygon(tuple(check_vector(f"{key}.points_nm[{i}]", q, 2) for i, q in enumerate(pts)))
    if op.shape == "image":
        path = p.get("path")
        if not isinstance(path, str):
            raise ProblemError(f"{key}.path", path, "the path of an image file")
        thr = check_number(f"{key}.threshold", p.get("threshold", 0.5), 0.0, 1.0)
        base = Path(p.get("_base_dir", "."))
        return ImageMask(base / path, thr, f"{key}.path")
    center3 = lambda: check_vector(f"{key}.center_nm", p.get("center_nm", [0, 0, 0]), 3)  # noqa: E731
    if op.shape == "cuboid":
        return Cuboid(center3(), check_vector(f"{key}.size_nm", p.get("size_nm"), 3, 0.0))
    if op.shape == "cylinder":
        r = check_number(f"{key}.radius_nm", p.get("radius_nm"), 0.0, lo_open=True)
        h = check_number(f"{key}.height_nm", p.get("height_nm"), 0.0, lo_open=True)
        return Cylinder(center3(), r, h, check_choice(f"{key}.axis", p.get("axis", "z"), ("x", "y", "z")))
    if op.shape == "sphere":
        return Sphere(center3(), check_number(f"{key}.radius_nm", p.get("radius_nm"), 0.0, lo_open=True))
    if op.shape == "ellipsoid":
        return Ellipsoid(center3(), check_vector(f"{key}.radii_nm", p.get("radii_nm"), 3, 1e-6))
    if op.shape == "mesh":
        from .mesh_import import place_triangles, read_surface
        path = p.get("path")
        if not isinstance(path, str):
            raise ProblemError(f"{key}.path", path, "the path of an .stl or .obj file")
        scale = check_number(f"{key}.scale", p.get("scale", 1.0), 0.0, 1e9, lo_open=True)
        offset = check_vector(f"{key}.offset_nm", p.get("offset_nm", [0, 0, 0]), 3)
        center = p.get("center", True)
        if not isinstance(center, bool):
            raise ProblemError(f"{key}.center", center, "true or false")
        tris = read_surface(Path(p.get("_base_dir", ".")) / path, f"{key}.path")
        return SurfaceMesh(place_triangles(tris, scale, offset, center))
    raise ProblemError(f"{key}.shape", op.shape, "a known shape")


def _check_z_range(p: dict, key: str) -> None:
    from .validation import check_number, check_vector
    if "layers" in p and "z_nm" in p:
        raise ProblemError(f"{key}.z_nm", p["z_nm"], "either layers or z_nm, not both")
    if "layers" in p:
        v = p["layers"]
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise ProblemError(f"{key}.layers", v, "[k0, k1]: layers k0 <= k < k1")
        k0 = check_number(f"{key}.layers[0]", v[0], 0, 4096, integer=True)
        check_number(f"{key}.layers[1]", v[1], k0, 4096, integer=True)
    if "z_nm" in p:
        z0, z1 = check_vector(f"{key}.z_nm", p["z_nm"], 2)
        if z1 < z0:
            raise ProblemError(f"{key}.z_nm", p["z_nm"], "[z0, z1] with z0 <= z1 (nm, 0 = middle of the grid)")


def cell_centers_nm(mesh):
    """x (nx,) and y (ny,) of cell centres in nm, origin at the grid centre."""
    nx, ny, _ = mesh.n
    dx, dy, _ = mesh.cell_nm
    x = (np.arange(nx) + 0.5 - nx / 2) * dx
    y = (np.arange(ny) + 0.5 - ny / 2) * dy
    return x, y


def cell_centers3_nm(mesh):
    """x (nx,), y (ny,), z (nz,) of cell centres in nm, origin at the centre of the grid."""
    x, y = cell_centers_nm(mesh)
    nz, dz = mesh.n[2], mesh.cell_nm[2]
    return x, y, (np.arange(nz) + 0.5 - nz / 2) * dz


def shape_mask(shape, mesh) -> np.ndarray:
    """Boolean (ny, nx) of the cells whose centre lies in a flat shape (the top view of a solid)."""
    nx, ny, _ = mesh.n
    if isinstance(shape, ImageMask):
        return shape.cell_mask(nx, ny)
    if not hasattr(shape, "contains"):
        return shape_mask3(shape, mesh).any(axis=0)
    x, y = cell_centers_nm(mesh)
    X, Y = np.meshgrid(x, y)  # (ny, nx)
    return np.asarray(shape.contains(X, Y), dtype=bool)


def z_range_layers(params: dict, mesh) -> np.ndarray:
    """Bool (nz,): the layers a flat shape fills (all; `layers` [k0, k1); or `z_nm` [z0, z1])."""
    nz = mesh.n[2]
    on = np.zeros(nz, dtype=bool)
    if "z_nm" in params:
        z0, z1 = params["z_nm"]
        z = cell_centers3_nm(mesh)[2]
        on[(z >= z0 - 1e-9) & (z <= z1 + 1e-9)] = True
    else:
        k0, k1 = params.get("layers", [0, nz])
        on[int(k0):int(k1)] = True
    return on


def shape_mask3(shape, mesh, params: dict | None = None) -> np.ndarray:
    """Boolean (nz, ny, nx) of the cells whose centre lies in the shape; a flat shape is
    extruded over the z range in `params` (see z_range_layers)."""
    nx, ny, nz = mesh.n
    if isinstance(shape, SurfaceMesh):
        return shape.cell_mask3(mesh)
    if hasattr(shape, "contains3"):
        x, y, z = cell_centers3_nm(mesh)
        Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
        return np.asarray(shape.contains3(X, Y, Z), dtype=bool)
    flat = shape_mask(shape, mesh)
    layers = z_range_layers(params or {}, mesh)
    return flat[None, :, :] & layers[:, None, None]


def apply_op(regions: np.ndarray, op, mesh, material_index: int, key="geometry") -> None:
    """Apply one ShapeOp to a region map (nz, ny, nx) in place."""
    if op.shape in ("image", "mesh"):
        op.params.setdefault("_base_dir", ".")
    inside = shape_mask3(shape_from_op(op, key), mesh, op.params)
    if op.op == "add":
        regions[inside] = material_index
    elif op.op == "subtract":
        regions[inside] = -1
    elif op.op == "intersect":
        regions[~inside] = -1


def rasterize(problem) -> np.ndarray:
    """The region map (nz, ny, nx) int16 of a problem's geometry list (-1 = vacuum)."""
    regions = np.full(problem.mesh.shape_zyx, -1, dtype=np.int16)
    for i, op in enumerate(problem.geometry):
        if op.shape in ("image", "mesh"):
            op.params["_base_dir"] = problem.base_dir
        idx = problem.material_index(op.material) if op.op == "add" else -1
        try:
            apply_op(regions, op, problem.mesh, idx, f"geometry[{i}]")
        finally:
            op.params.pop("_base_dir", None)
    return regions
