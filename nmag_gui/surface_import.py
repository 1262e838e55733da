"""Surface meshes for the geometry editor: any file pyvista reads (STL, OBJ, PLY, VTK, VTP, ...)
as triangles, fitted into the grid and voxelised by the engine's ray parity.

STL and OBJ go through the engine's own reader (engine.mesh_import, no pyvista), so the editor
and a problem file with `shape = "mesh"` agree on the cells; other formats are read here, in the
GUI layer, where pyvista is allowed.

Example::

    inside = surface_cells("part.ply", mesh, fit=True)    # bool (nz, ny, nx)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import ProblemError
from engine.geometry import cell_centers3_nm
from engine.mesh_import import SURFACE_SUFFIXES, place_triangles, read_surface, voxelize

FILE_FILTER = "Surface meshes (*.stl *.obj *.ply *.vtk *.vtp *.vtu);;All files (*)"


def read_any_surface(path, key: str = "surface mesh") -> np.ndarray:
    """Triangles (n, 3, 3) of a surface file: STL/OBJ by the engine, others through pyvista."""
    path = Path(path)
    if path.suffix.lower() in SURFACE_SUFFIXES:
        return read_surface(path, key)
    import pyvista as pv
    try:
        data = pv.read(str(path))
    except FileNotFoundError:
        raise ProblemError(key, str(path), "an existing surface file") from None
    except Exception as e:  # noqa: BLE001 - any reader failure is the user's file
        raise ProblemError(key, str(path), f"a surface file pyvista can read ({e})") from None
    if isinstance(data, pv.MultiBlock):
        data = data.combine()
    if not isinstance(data, pv.PolyData):
        import warnings
        with warnings.catch_warnings():    # pyvista announces a new default for this filter
            warnings.simplefilter("ignore")
            data = data.extract_surface()
    surf = data.triangulate()
    if surf.n_cells == 0:
        raise ProblemError(key, str(path), "a file with a closed surface (no faces found)")
    faces = np.asarray(surf.faces).reshape(-1, 4)[:, 1:]
    return np.asarray(surf.points, dtype=np.float64)[faces]


def fit_scale(tris: np.ndarray, mesh, margin: float = 0.98) -> float:
    """The scale that makes the mesh's bounding box fill the grid (keeping its proportions)."""
    ext = np.ptp(tris.reshape(-1, 3), axis=0)
    box = np.asarray(mesh.n, float) * np.asarray(mesh.cell_nm, float)
    ratios = [box[a] / ext[a] for a in range(3) if ext[a] > 0]
    return margin * min(ratios) if ratios else 1.0


def surface_cells(path, mesh, fit: bool = True, scale: float = 1.0) -> np.ndarray:
    """Bool (nz, ny, nx): the cells inside the surface in `path`, centred on the grid; with
    fit the mesh is scaled to fill the grid, else its coordinates are nm times `scale`."""
    tris = read_any_surface(path)
    s = fit_scale(tris, mesh) if fit else float(scale)
    x, y, z = cell_centers3_nm(mesh)
    return voxelize(place_triangles(tris, s, (0.0, 0.0, 0.0), center=True), x, y, z)
