"""Shapes of the sample and their rasterisation to a region map.

Coordinates are in nm with the origin at the centre of the grid's xy extent; a cell belongs
to a shape when its centre lies inside. Shapes combine by the order of `ShapeOp`s: "add"
paints the shape's cells with its material (union), "subtract" empties them (difference),
"intersect" empties every cell outside (intersection).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ProblemError


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


def shape_from_op(op, key="geometry"):
    """Build the shape object of a ShapeOp, checking its parameters."""
    from .problem import check_vector, check_number
    p = op.params
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
    raise ProblemError(f"{key}.shape", op.shape, "a known shape")


def cell_centers_nm(mesh):
    """x (nx,) and y (ny,) of cell centres in nm, origin at the grid centre."""
    nx, ny, _ = mesh.n
    dx, dy, _ = mesh.cell_nm
    x = (np.arange(nx) + 0.5 - nx / 2) * dx
    y = (np.arange(ny) + 0.5 - ny / 2) * dy
    return x, y


def shape_mask(shape, mesh) -> np.ndarray:
    """Boolean (ny, nx) of the cells whose centre lies in the shape."""
    nx, ny, _ = mesh.n
    if isinstance(shape, ImageMask):
        return shape.cell_mask(nx, ny)
    x, y = cell_centers_nm(mesh)
    X, Y = np.meshgrid(x, y)  # (ny, nx)
    return np.asarray(shape.contains(X, Y), dtype=bool)


def apply_op(regions: np.ndarray, op, mesh, material_index: int, key="geometry") -> None:
    """Apply one ShapeOp to a region map (nz, ny, nx) in place."""
    if op.shape == "image":
        op.params.setdefault("_base_dir", ".")
    inside2d = shape_mask(shape_from_op(op, key), mesh)
    nz = mesh.n[2]
    k0, k1 = op.params.get("layers", [0, nz])
    inside = np.zeros(regions.shape, dtype=bool)
    inside[k0:k1] = inside2d[None]
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
        if op.shape == "image":
            op.params["_base_dir"] = problem.base_dir
        idx = problem.material_index(op.material) if op.op == "add" else -1
        apply_op(regions, op, problem.mesh, idx, f"geometry[{i}]")
        op.params.pop("_base_dir", None)
    return regions
