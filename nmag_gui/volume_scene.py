"""The inside of a thick magnet, drawn live: outer surface, a slice, an isosurface and cones.

Pure pyvista/VTK (no Qt), so it renders in an off-screen `pv.Plotter` as well as in the app's
QtInteractor. It is a *layer* of `nmag_gui.spin_scene.SpinScene` (duck-typed protocol:
build / update / set_visible / remove), used when the grid has more than one layer of cells.
While it draws a thick grid it hides the scene's own film pictures (`scene.set_film_visible(False)`:
the scene then does no per-frame work for them) and follows the scene only through its public
state (`color_by`, `show_arrows`, `overlay_state()`).

What it draws (nm, the scene's coordinates: x and y centred, z from 0 at the bottom):
- the magnet's **outer surface**: only the cell faces between magnet and vacuum, each coloured
  by its cell (mx, my, mz or the in-plane angle); with a slice, the part in front of the slice
  is cut away so the slice can be seen;
- a **slice**: a plane of any orientation (a pyvista plane widget drags it in the app) drawn
  as the polygons in which it cuts the magnet's cells, one colour per cut cell;
- an **isosurface** of one component (mz = 0 by default: vortex cores, skyrmion tubes, Bloch
  points), contoured every frame on the cell centres and clipped at the magnet's boundary;
- **cones** on a subsample of the magnet's cells (at most `arrow_budget`), either through the
  volume (the cut-away part left out) or only on the slice;
- the **error overlay** of the neural probe (or any (nz, ny, nx) map) on surface and slice.

Cost per frame (measured at 64 x 64 x 32, see benchmarks/bench_gui3d.py): a gather of the
colours of the visible faces and slice polygons (numpy), one flying-edges contour and a clip
(VTK), and the cones' vectors. Geometry (faces, slice polygons, cone anchors) is rebuilt only
when the mask or the plane changes.

Example::

    plotter = pv.Plotter(off_screen=True)
    layer = VolumeLayer()
    layer.build(SimpleNamespace(plotter=plotter), (nz, ny, nx), cell_nm, origin_nm)
    layer.update(frame)                 # anything with .m (3, nz, ny, nx)
    layer.set_slice(normal=(0, 1, 0), origin=(0, 0, 10))
    layer.set_isosurface("mz", 0.0)
    plotter.screenshot("volume.png")
"""
from __future__ import annotations

import math
import time
import traceback

import numpy as np
import pyvista as pv
from vtkmodules.util.numpy_support import vtk_to_numpy

from . import vtk_classes as vtk   # the classes alone: `import vtk` loads all of VTK (0.47 s)

COMPONENTS = ("mx", "my", "mz")
COLOR_MODES = ("mx", "my", "mz", "angle")
ARROW_BUDGET = 1500
SLICE_ARROWS = 250      # cones on a slice: about 16 x 16 stay readable
CAMERAS = ("top", "side", "3d", "slice", "reset")
ISO_COLOR = "#ffd24a"
ARROW_COLOR = "#151515"


def color_values(m: np.ndarray, mode: str) -> np.ndarray:
    """The scalar drawn per cell: a component of m, or the in-plane angle atan2(my, mx) in
    degrees (0..360, 0 = +x). m: (3, ...); returns m.shape[1:]."""
    if mode == "angle":
        return np.degrees(np.arctan2(m[1], m[0])) % 360.0
    return m[COMPONENTS.index(mode)]


def lookup_table(mode: str, log: bool = False, clim=(-1.0, 1.0)) -> pv.LookupTable:
    """Blue-white-red for a component in [-1, 1], a hue circle for the angle, viridis (linear or
    log10) for an overlay (mode "overlay", range clim); NaN is grey."""
    if mode == "angle":
        lut = pv.LookupTable(cmap="hsv", n_values=360)
        lut.scalar_range = (0.0, 360.0)
    elif mode == "overlay":
        lut = pv.LookupTable(cmap="viridis", n_values=256)
        lut.scalar_range = tuple(float(c) for c in clim)
        if log:
            lut.SetScaleToLog10()
    else:
        lut = pv.LookupTable(cmap="RdBu_r", n_values=256)
        lut.scalar_range = (-1.0, 1.0)
    # opaque NaN colour: a table with any transparent entry makes VTK draw the actor in the
    # translucent pass (no depth order: the far side shows through, and it is slower)
    lut.SetNanColor(0.35, 0.35, 0.35, 1.0)
    return lut


def boundary_faces(mask: np.ndarray, cell_nm, origin_nm):
    """The faces between magnet and vacuum (or the grid's edge) of a mask (nz, ny, nx).

    Returns (points (shared grid nodes, float32), faces (5 n,) VTK cell array, cell (n,) flat index of the
    magnet cell each face belongs to, centre (n, 3) of that cell in nm)."""
    nz, ny, nx = mask.shape
    dx, dy, dz = cell_nm
    ox, oy, oz = origin_nm
    padded = np.pad(mask, 1, constant_values=False)
    pts, cells = [], []
    # (axis in zyx order, step): a face is exposed where the neighbour on that side is vacuum
    for axis in range(3):
        for step in (-1, 1):
            nb = np.roll(padded, -step, axis=axis)[1:-1, 1:-1, 1:-1]
            k, j, i = np.nonzero(mask & ~nb)
            if k.size == 0:
                continue
            lo = np.stack([ox + i * dx, oy + j * dy, oz + k * dz], axis=1)   # cell's min corner (x, y, z)
            d = np.array([dx, dy, dz])
            ax = 2 - axis                                                     # zyx axis -> xyz axis
            u, v = [a for a in range(3) if a != ax]
            base = lo.copy()
            if step == 1:
                base[:, ax] += d[ax]
            quad = np.repeat(base[:, None, :], 4, axis=1)
            quad[:, 1, u] += d[u]
            quad[:, 2, u] += d[u]
            quad[:, 2, v] += d[v]
            quad[:, 3, v] += d[v]
            # corners counter-clockwise seen from outside (u x v is +ax, except for ax = y)
            if (step == 1) == (ax == 1):
                quad = quad[:, ::-1]
            pts.append(quad)
            cells.append(np.ravel_multi_index((k, j, i), mask.shape))
    if not pts:
        return np.zeros((0, 3), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    quads = np.concatenate(pts).reshape(-1, 3)
    cell = np.concatenate(cells)
    n = len(cell)
    # faces share their corners (a quarter of the vertices to transform): grid nodes by index
    node = np.rint((quads - np.asarray(origin_nm)) / np.asarray(cell_nm)).astype(np.int64)
    key = (node[:, 2] * (ny + 1) + node[:, 1]) * (nx + 1) + node[:, 0]
    uniq, inverse = np.unique(key, return_inverse=True)
    points = np.zeros((len(uniq), 3))
    points[inverse] = quads
    faces = np.column_stack([np.full(n, 4), inverse.reshape(n, 4)]).ravel()
    centre = cell_centres(cell, mask.shape, cell_nm, origin_nm)
    return points.astype(np.float32), faces.astype(np.int64), cell, centre


def cell_centres(flat: np.ndarray, shape_zyx, cell_nm, origin_nm) -> np.ndarray:
    """Centres (n, 3) in nm of cells given by flat indices into (nz, ny, nx)."""
    k, j, i = np.unravel_index(flat, shape_zyx)
    return np.column_stack([origin_nm[0] + (i + 0.5) * cell_nm[0],
                            origin_nm[1] + (j + 0.5) * cell_nm[1],
                            origin_nm[2] + (k + 0.5) * cell_nm[2]])


def neighbour_fill_index(mask: np.ndarray) -> np.ndarray:
    """Flat index per cell of the cell whose value it takes: itself in the magnet; for a vacuum
    cell touching the magnet (26 neighbours, faces first), a magnet neighbour; else itself."""
    shape = mask.shape
    idx = np.arange(mask.size).reshape(shape)
    src = idx.copy()
    todo = ~mask
    offsets = sorted(((a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
                      if (a, b, c) != (0, 0, 0)), key=lambda o: abs(o[0]) + abs(o[1]) + abs(o[2]))
    for off in offsets:
        dst = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(off, shape))   # cells
        nb = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(off, shape))    # their neighbours
        take = todo[dst] & mask[nb]
        src[dst][take] = idx[nb][take]
        todo[dst] &= ~take
    return src.ravel()


def cells_cut_by_plane(shape_zyx, cell_nm, origin_nm, normal, point) -> np.ndarray:
    """Bool (nz, ny, nx): the cells whose box the plane (normal, point) passes through. The
    independent reference for what the slice must show."""
    nz, ny, nx = shape_zyx
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    xs = origin_nm[0] + np.arange(nx + 1) * cell_nm[0] - point[0]
    ys = origin_nm[1] + np.arange(ny + 1) * cell_nm[1] - point[1]
    zs = origin_nm[2] + np.arange(nz + 1) * cell_nm[2] - point[2]
    lo = np.full(shape_zyx, 0.0)
    hi = np.full(shape_zyx, 0.0)
    for coord, comp, axis in ((xs, n[0], 2), (ys, n[1], 1), (zs, n[2], 0)):
        a, b = coord[:-1] * comp, coord[1:] * comp
        shp = [1, 1, 1]
        shp[axis] = -1
        lo = lo + np.minimum(a, b).reshape(shp)
        hi = hi + np.maximum(a, b).reshape(shp)
    return (lo < 0) & (hi > 0)


def _show_film(scene, on: bool) -> None:
    """Show or hide the film pictures of a SpinScene (anything else only lends a plotter)."""
    if hasattr(scene, "set_film_visible"):
        scene.set_film_visible(on)


class VolumeLayer:
    """The 3D view of a thick sample (see the module docstring). GUI thread only."""

    def __init__(self, arrow_budget: int = ARROW_BUDGET):
        self.arrow_budget = int(arrow_budget)
        self.color_by = "mz"
        self.iso_component = "mz"
        self.iso_value = 0.0
        self.show = {"surface": True, "slice": True, "iso": True, "arrows": True}
        self.cut_away = True            # hide the surface (and cones) in front of the slice
        self.arrows_on_slice = True     # cones only in the cells the slice cuts (else through the volume)
        self.visible = True
        self.plotter = None
        self.scene = None
        self._shape = None
        self._mask = None
        self._m = None
        self._overlay = None            # (flat values, clim, title, log) or None
        self._normal = np.array([0.0, 1.0, 0.0])
        self._point = None
        self._widget = None
        self._actors = {}
        self.timings_ms: dict[str, float] = {}
        self.frames = 0
        self.active = False             # built for a grid of more than one layer
        self.min_layers = 2             # films (nz = 1) keep the scene's own textured quads
        self.on_build = None            # called with this layer after every build (the controls)

    # ------------------------------------------------------------------ layer protocol
    def build(self, scene, shape_zyx, cell_nm, origin_nm) -> None:
        """Make the actors for a grid (nz, ny, nx) of cells cell_nm whose corner is origin_nm."""
        self.disable_slice_widget()
        self.scene = scene
        self.plotter = scene.plotter
        self.active = int(shape_zyx[0]) >= self.min_layers
        if not self.active:
            _show_film(scene, True)      # a film: the scene's own quads draw it
            self._set_multisampling(True)
            self._set_headlight(False)
            self._actors, self._shape, self._mask, self._m, self._overlay = {}, None, None, None, None
            if self.on_build is not None:
                self.on_build(self)
            return
        self._shape = tuple(int(s) for s in shape_zyx)
        self._cell = tuple(float(c) for c in cell_nm)
        _show_film(scene, not self.visible)  # this layer draws the grid: the film's quads rest
        self._set_multisampling(False)
        self._set_headlight(True)
        self._origin = tuple(float(o) for o in origin_nm)
        nz, ny, nx = self._shape
        dx, dy, dz = self._cell
        self._bounds = (self._origin[0], self._origin[0] + nx * dx, self._origin[1],
                        self._origin[1] + ny * dy, self._origin[2], self._origin[2] + nz * dz)
        self._center = np.array([(self._bounds[0] + self._bounds[1]) / 2, (self._bounds[2] + self._bounds[3]) / 2,
                                 (self._bounds[4] + self._bounds[5]) / 2])
        if self._point is None or not self._inside_bounds(self._point):
            # the centre of the middle cell: a plane on cell faces would cut two layers at once
            mid = np.array([nx // 2 + 0.5, ny // 2 + 0.5, nz // 2 + 0.5]) * np.array(self._cell)
            self._point = np.asarray(self._origin) + mid
        self._mask = None
        self._m = None
        self._overlay = None
        p = self.plotter
        self._lut = lookup_table(self.color_by)
        # surface and slice: polydata whose cell scalar "color" is gathered from the cells
        self.surface = pv.PolyData()
        self.slice = pv.PolyData()
        self._surface_cell = np.zeros(0, np.int64)
        self._slice_cell = np.zeros(0, np.int64)
        self._actors = {}
        for name, mesh in (("surface", self.surface), ("slice", self.slice)):
            mapper = vtk.vtkPolyDataMapper()
            mapper.SetInputData(mesh)
            # the surface carries its colours per vertex (each face has its own 4 corners):
            # software OpenGL draws that faster than per-cell colours (a lookup per fragment)
            if name == "surface":
                mapper.SetScalarModeToUsePointFieldData()
            else:
                mapper.SetScalarModeToUseCellFieldData()
            mapper.SelectColorArray("color")
            mapper.SetLookupTable(self._lut)
            mapper.UseLookupTableScalarRangeOn()
            mapper.ScalarVisibilityOn()
            actor = vtk.vtkActor()
            actor.SetMapper(mapper)
            prop = actor.GetProperty()
            prop.SetAmbient(0.35 if name == "surface" else 0.6)
            if name == "surface":     # a closed shell: its inner sides are never seen
                prop.BackfaceCullingOn()
            prop.SetDiffuse(0.65 if name == "surface" else 0.4)
            if name == "slice":   # the slice sits on faces of cells: keep it in front of them
                mapper.SetResolveCoincidentTopologyToPolygonOffset()
                mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(-1.0, -1.0)
            p.add_actor(actor, reset_camera=False, pickable=True)     # hover picks from its own list
            self._actors[name] = actor
        # isosurface: flying edges on the cell centres, clipped where the magnet ends
        self._centres = pv.ImageData(dimensions=(nx, ny, nz), spacing=(dx, dy, dz),
                                     origin=(self._origin[0] + dx / 2, self._origin[1] + dy / 2,
                                             self._origin[2] + dz / 2))
        self._centres.point_data["iso"] = np.zeros(nx * ny * nz, np.float32)
        self._centres.point_data["magnet"] = np.zeros(nx * ny * nz, np.float32)
        self._centres.point_data.active_scalars_name = "iso"
        fe = vtk.vtkFlyingEdges3D()
        fe.SetInputData(self._centres)
        fe.SetInputArrayToProcess(0, 0, 0, vtk.vtkDataObject.FIELD_ASSOCIATION_POINTS, "iso")
        fe.SetValue(0, self.iso_value)
        fe.ComputeNormalsOn()
        fe.ComputeScalarsOff()
        fe.InterpolateAttributesOn()
        active = vtk.vtkAssignAttribute()      # the clip cuts by the active scalars: "magnet"
        active.SetInputConnection(fe.GetOutputPort())
        active.Assign("magnet", vtk.vtkDataSetAttributes.SCALARS, vtk.vtkAssignAttribute.POINT_DATA)
        clip = vtk.vtkClipPolyData()
        clip.SetInputConnection(active.GetOutputPort())
        clip.SetValue(0.5)
        self._contour, self._iso_clip = fe, clip
        iso_mapper = vtk.vtkPolyDataMapper()
        iso_mapper.SetInputConnection(clip.GetOutputPort())
        iso_mapper.ScalarVisibilityOff()
        iso = vtk.vtkActor()
        iso.SetMapper(iso_mapper)
        iso.GetProperty().SetColor(pv.Color(ISO_COLOR).float_rgb)
        iso.GetProperty().SetSpecular(0.3)
        p.add_actor(iso, reset_camera=False, pickable=False)
        self._actors["iso"] = iso
        # cones: a glyph filter that re-runs when the anchors' vectors change
        self.arrows = pv.PolyData(np.zeros((0, 3), np.float32))
        self._arrow_cell = np.zeros(0, np.int64)
        glyph = vtk.vtkGlyph3D()
        glyph.SetInputData(self.arrows)
        cone = vtk.vtkConeSource()
        cone.SetResolution(8)
        cone.SetHeight(1.0)
        cone.SetRadius(0.28)
        glyph.SetSourceConnection(cone.GetOutputPort())
        glyph.SetVectorModeToUseVector()
        glyph.SetScaleModeToDataScalingOff()
        glyph.OrientOn()
        self._glyph = glyph
        g_mapper = vtk.vtkPolyDataMapper()
        g_mapper.SetInputConnection(glyph.GetOutputPort())
        g_mapper.ScalarVisibilityOff()
        cones = vtk.vtkActor()
        cones.SetMapper(g_mapper)
        cones.GetProperty().SetColor(pv.Color(ARROW_COLOR).float_rgb)
        p.add_actor(cones, reset_camera=False, pickable=False)
        self._actors["arrows"] = cones
        self._apply_visibility()
        if getattr(self.plotter, "iren", None) is not None and getattr(scene, "slice_widget", True):
            self.enable_slice_widget(getattr(scene, "on_slice_moved", None))
        if self.on_build is not None:
            self.on_build(self)

    def update(self, frame) -> None:
        """Draw a frame (anything with .m (3, nz, ny, nx)): write the arrays, contour once."""
        if self.plotter is None or not self.active:
            return
        self._follow_scene()
        t0 = time.perf_counter()
        m = np.asarray(frame.m)
        if m.shape[1:] != self._shape:
            raise ValueError(f"frame of shape {m.shape[1:]}, the layer was built for {self._shape}")
        mask = (m[0] * m[0] + m[1] * m[1] + m[2] * m[2]) > 0.25
        if self._mask is None or not np.array_equal(mask, self._mask):
            self._set_mask(mask)
        self._m = m
        t1 = time.perf_counter()
        self._write_colors()
        t2 = time.perf_counter()
        self._write_iso()
        # contour and clip now, not inside the paint: the event loop is then held by two shorter
        # pieces (this update, then the render) instead of one long paint
        if self.visible and self.show["iso"]:
            self._iso_clip.Update()
        t3 = time.perf_counter()
        self._write_arrows()
        if self.visible and self.show["arrows"]:
            self._glyph.Update()
        t4 = time.perf_counter()
        self.timings_ms = {"mask": 1e3 * (t1 - t0), "colors": 1e3 * (t2 - t1), "iso": 1e3 * (t3 - t2),
                           "arrows": 1e3 * (t4 - t3), "total": 1e3 * (t4 - t0)}
        self.frames += 1

    def _set_multisampling(self, on: bool):
        """Software OpenGL spends most of a frame on 8x multisampling (measured: 670 ms against
        170 ms a frame for a 64 x 64 x 32 disk on a loaded 2-core machine): off while a thick
        sample is drawn, the plotter's own setting back for films."""
        rw = getattr(self.plotter, "ren_win", None)
        if rw is None:
            return
        if not on:
            if getattr(self, "_saved_samples", None) is None:
                self._saved_samples = rw.GetMultiSamples()
            rw.SetMultiSamples(0)
        elif getattr(self, "_saved_samples", None) is not None:
            rw.SetMultiSamples(self._saved_samples)
            self._saved_samples = None

    def _set_headlight(self, on: bool):
        """One headlight instead of the plotter's five-light kit while a thick sample is drawn:
        software OpenGL shades every fragment of the surface per light (measured 73 -> 54 ms a
        render at 64 x 64 x 32 on a loaded 2-core machine); the kit comes back for films."""
        ren = getattr(self.plotter, "renderer", None)
        if ren is None:
            return
        saved = getattr(self, "_saved_lights", None)
        if on and saved is None:
            self._saved_lights = list(ren.GetLights())
            ren.RemoveAllLights()
            light = vtk.vtkLight()
            light.SetLightTypeToHeadlight()
            ren.AddLight(light)
        elif not on and saved is not None:
            ren.RemoveAllLights()
            for light in saved:
                ren.AddLight(light)
            self._saved_lights = None

    def _follow_scene(self):
        """Take the colour mode, arrows switch and overlay from the film scene this layer sits
        in (its public state: color_by, show_arrows, overlay_state()). The scene's own film
        pictures stay hidden (set_film_visible(False) at build): it does no work for them."""
        sc = self.scene
        if not hasattr(sc, "overlay_state"):   # a bare holder of a plotter (tests, scripts)
            return
        if sc.color_by != self.color_by and sc.color_by in COLOR_MODES:
            self.set_color_by(sc.color_by)
        if self.show["arrows"] != bool(sc.show_arrows):
            self.set_shown("arrows", bool(sc.show_arrows))
        state = sc.overlay_state()
        if state is not None:
            self.set_overlay(*state)
        elif self._overlay is not None:
            self.set_overlay(None, None)

    def follow_scene(self) -> None:
        """The scene's colour mode, arrows or overlay changed (the user, between frames): take
        them now, not at the next frame (a paused thick sample kept the old colours)."""
        if self.active and self.plotter is not None:
            self._follow_scene()

    def set_visible(self, on: bool) -> None:
        """Show or hide the volume view; hidden, the scene's own film pictures draw the grid."""
        self.visible = bool(on)
        if self.active and self.scene is not None:
            _show_film(self.scene, not self.visible)
        self._apply_visibility()
        if self._widget is not None:
            (self._widget.On if on and self.show["slice"] else self._widget.Off)()

    def remove(self, scene) -> None:
        p = scene.plotter if scene is not None else self.plotter
        self.disable_slice_widget()
        if scene is not None:
            _show_film(scene, True)                # give the film its pictures back
        self._set_multisampling(True)
        self._set_headlight(False)
        self.active = False
        for actor in self._actors.values():
            try:
                p.remove_actor(actor, render=False)
            except Exception:  # noqa: BLE001 - already gone with a cleared plotter
                pass
        self._actors = {}
        self.plotter = None

    # ------------------------------------------------------------------ settings
    def set_color_by(self, mode: str) -> None:
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode {mode!r}: expected one of {', '.join(COLOR_MODES)}")
        self.color_by = mode
        if self.plotter is not None and self._overlay is None:
            self._set_lut(lookup_table(mode))
            self._write_colors()

    def set_isosurface(self, component: str = "mz", value: float = 0.0) -> None:
        """Which component's level set to draw, at which value (-1..1)."""
        if component not in COMPONENTS:
            raise ValueError(f"isosurface of {component!r}: expected one of {', '.join(COMPONENTS)}")
        if not -1.0 <= float(value) <= 1.0:
            raise ValueError(f"isosurface value {value}: expected a number in [-1, 1]")
        self.iso_component, self.iso_value = component, float(value)
        if self.plotter is not None and self.active:
            self._contour.SetValue(0, self.iso_value)
            self._write_iso()

    def set_shown(self, part: str, on: bool) -> None:
        """Show or hide one part: "surface", "slice", "iso" or "arrows"."""
        if part not in self.show:
            raise ValueError(f"part {part!r}: expected one of {', '.join(self.show)}")
        self.show[part] = bool(on)
        if part == "slice" and self._mask is not None:
            self._rebuild_surface()
            self._choose_arrows()
        self._apply_visibility()
        if self._widget is not None and part == "slice":
            (self._widget.On if on else self._widget.Off)()

    def set_arrows_on_slice(self, on: bool) -> None:
        self.arrows_on_slice = bool(on)
        if self._mask is not None:
            self._choose_arrows()
            self._write_arrows()

    def set_cut_away(self, on: bool) -> None:
        self.cut_away = bool(on)
        if self._mask is not None:
            self._rebuild_surface()
            self._choose_arrows()
            self._write_colors()
            self._write_arrows()

    def set_slice(self, normal=None, origin=None) -> None:
        """Move the slice plane (normal: any non-zero vector; origin: a point of it, nm)."""
        if normal is not None:
            n = np.asarray(normal, float)
            if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) == 0:
                raise ValueError(f"slice normal {normal!r}: expected a non-zero 3-vector")
            self._normal = n / np.linalg.norm(n)
        if origin is not None:
            self._point = np.asarray(origin, float)
        if self._mask is not None:
            self._rebuild_slice()
            self._rebuild_surface()
            self._choose_arrows()
            self._write_colors()
            self._write_arrows()

    @property
    def slice_plane(self):
        """(normal, origin) of the slice, nm."""
        return self._normal.copy(), self._point.copy()

    def set_overlay(self, values, clim, title: str = "", log: bool = False) -> None:
        """Colour surface and slice by `values` (nz, ny, nx; NaN not drawn) instead of m, with
        a viridis table over clim (log10 when log). values None: back to m."""
        if values is None:
            self._overlay = None
            if self.plotter is not None:
                self._set_lut(lookup_table(self.color_by))
                self._write_colors()
            return
        v = np.asarray(values, dtype=np.float64)
        if v.shape != self._shape:
            raise ValueError(f"overlay of shape {v.shape}, expected (nz, ny, nx) = {self._shape}")
        lo, hi = float(clim[0]), float(clim[1])
        if log and lo <= 0:
            raise ValueError(f"a log colour range needs a positive lower end, not {lo:g}")
        same_table = self._overlay is not None and self._overlay[1:] == ((lo, hi), str(title), bool(log))
        self._overlay = (v.ravel().copy(), (lo, hi), str(title), bool(log))
        if self.plotter is not None:
            if not same_table:
                self._set_lut(lookup_table("overlay", log, (lo, max(hi, lo * (1 + 1e-6) + 1e-300))))
            self._write_colors()

    @property
    def lut(self):
        """The lookup table of surface and slice now (for a scale bar)."""
        return self._lut

    # ------------------------------------------------------------------ slice widget and cameras
    def enable_slice_widget(self, callback=None) -> None:
        """A pyvista plane widget that moves the slice (needs an interactive plotter)."""
        if self.plotter is None or self._widget is not None:
            return

        def moved(normal, origin):
            try:
                self.set_slice(normal, origin)
                if callback is not None:
                    callback(normal, origin)
            except Exception:  # noqa: BLE001 - a VTK callback that raises can end the process
                traceback.print_exc()

        self._widget = self.plotter.add_plane_widget(
            moved, normal=tuple(self._normal), origin=tuple(self._point), bounds=self._bounds,
            factor=1.05, implicit=True, normal_rotation=True, outline_translation=False,
            origin_translation=True, interaction_event="end", color="white", test_callback=False)

    def disable_slice_widget(self) -> None:
        if self._widget is not None:
            self._widget.Off()
            widgets = getattr(self.plotter, "widgets", None)      # pyvista >= 0.47
            lst = getattr(widgets, "plane_widgets", None) if widgets is not None else None
            if lst is None:
                lst = getattr(self.plotter, "plane_widgets", [])
            if self._widget in lst:
                lst.remove(self._widget)
            self._widget = None

    def set_camera(self, preset: str) -> None:
        """'top', 'side', '3d', 'slice' (look along the slice normal) or 'reset'."""
        p = self.plotter
        if preset not in CAMERAS:
            raise ValueError(f"camera preset {preset!r}: expected one of {', '.join(CAMERAS)}")
        if preset in ("top", "reset"):
            p.view_xy()
        elif preset == "side":
            # from the side the cut-away removed (the slice normal's side: clip keeps the other
            # half), so the slice and the isosurface face the camera; else from -y
            side = np.array([0.0, -1.0, 0.0])
            n = np.asarray(self._normal, float)
            if self.cut_away and self.show["slice"] and max(abs(n[0]), abs(n[1])) > 0.5 * np.linalg.norm(n):
                axis = 0 if abs(n[0]) > abs(n[1]) else 1
                side = np.zeros(3)
                side[axis] = np.sign(n[axis])
            centre = 0.5 * (np.asarray(self._bounds[::2], float) + np.asarray(self._bounds[1::2], float))
            d = float(np.linalg.norm(np.subtract(self._bounds[1::2], self._bounds[::2]))) * 2
            p.camera.focal_point = tuple(centre)
            p.camera.position = tuple(centre + d * side)
            p.camera.up = (0.0, 0.0, 1.0)
            p.camera.elevation = 15.0
        elif preset == "3d":
            p.view_isometric()
        else:
            n = self._normal
            up = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
            d = float(np.linalg.norm(np.subtract(self._bounds[1::2], self._bounds[::2]))) * 2
            p.camera.focal_point = tuple(self._point)
            p.camera.position = tuple(self._point + d * n)
            p.camera.up = tuple(up)
        p.reset_camera()

    # ------------------------------------------------------------------ what is drawn (tests, hover)
    def cell_at(self, x: int, y: int):
        """The cell (k, j, i) under display position (x, y) (VTK pixels, origin bottom left) on
        the surface or the slice, or None (nothing there, or a film)."""
        if not self.active or self.plotter is None:
            return None
        picker = getattr(self, "_picker", None)
        if picker is None:
            picker = self._picker = vtk.vtkCellPicker()
            picker.SetTolerance(0.0)
            picker.PickFromListOn()
        picker.InitializePickList()
        for name in ("slice", "surface"):
            actor = self._actors.get(name)
            if actor is not None and actor.GetVisibility():
                picker.AddPickList(actor)
        if not picker.Pick(x, y, 0, self.plotter.renderer):
            return None
        cid = picker.GetCellId()
        actor = picker.GetActor()
        cells = self._slice_cell if actor is self._actors.get("slice") else self._surface_cell
        if not 0 <= cid < len(cells):
            return None
        k, j, i = np.unravel_index(int(cells[cid]), self._shape)
        return int(k), int(j), int(i)


    def slice_cells(self) -> np.ndarray:
        """Flat indices (into (nz, ny, nx)) of the cells the slice shows."""
        return np.unique(self._slice_cell)

    def surface_cells(self) -> np.ndarray:
        return np.unique(self._surface_cell)

    def surface_colors(self) -> np.ndarray:
        """The scalar drawn on each surface face (as drawn: taken from its first corner)."""
        if not len(self._surface_cell):
            return np.zeros(0)
        first = np.r_[0, np.cumsum(np.bincount(self._surface_vertex))[:-1]]
        return np.asarray(self.surface.point_data["color"])[first]

    def isosurface(self) -> pv.PolyData:
        """The isosurface as drawn now (a copy)."""
        self._iso_clip.Update()
        return pv.wrap(self._iso_clip.GetOutput()).copy()

    @property
    def arrow_count(self) -> int:
        return int(self._arrow_cell.size)

    def arrow_cells(self) -> np.ndarray:
        return self._arrow_cell.copy()

    # ------------------------------------------------------------------ internals
    def _inside_bounds(self, pt) -> bool:
        b = self._bounds
        return all(b[2 * a] <= pt[a] <= b[2 * a + 1] for a in range(3))

    def _apply_visibility(self):
        for name, actor in self._actors.items():
            actor.SetVisibility(self.visible and self.show[name])

    def _set_lut(self, lut):
        self._lut = lut
        for name in ("surface", "slice"):
            if name in self._actors:
                self._actors[name].GetMapper().SetLookupTable(lut)

    def _set_mask(self, mask):
        """A new magnet: everything that depends on where the cells are."""
        self._mask = mask
        flat = mask.ravel()
        self._centres.point_data["magnet"][:] = flat.astype(np.float32)
        # vacuum points next to the magnet take the value of a magnet neighbour, so the contour
        # does not trace the magnet's outline; the clip at magnet = 0.5 ends it at the boundary
        self._fill_from = None if flat.all() or not flat.any() else neighbour_fill_index(mask)
        # all magnet cells as hexahedra, for cutting the slice
        nz, ny, nx = self._shape
        img = pv.ImageData(dimensions=(nx + 1, ny + 1, nz + 1), spacing=self._cell, origin=self._origin)
        img.cell_data["cell_id"] = np.arange(img.n_cells, dtype=np.int64)
        img.cell_data["mask"] = flat.astype(np.uint8)
        self._magnet_cells = img.extract_cells(np.nonzero(flat)[0])
        self._faces_all = boundary_faces(mask, self._cell, self._origin)
        self._rebuild_slice()
        self._rebuild_surface()
        self._choose_arrows()

    def _signed(self, centres):
        return (centres - self._point) @ self._normal

    def _rebuild_surface(self):
        pts, faces, cell, centre = self._faces_all
        n = len(cell)
        full = pv.PolyData(pts, faces) if n else pv.PolyData()
        full.cell_data["cell"] = cell
        if self.cut_away and self.show["slice"] and n:
            # clipped exactly at the plane, so no face of a cut cell hangs in front of the slice
            full = full.clip(normal=tuple(self._normal), origin=tuple(self._point), invert=True)
            if not isinstance(full, pv.PolyData):
                full = full.extract_surface()
        cells = np.asarray(full.cell_data["cell"], np.int64) if full.n_cells else np.zeros(0, np.int64)
        if full.n_cells:
            polys = full.GetPolys()
            conn = vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64)
            offsets = vtk_to_numpy(polys.GetOffsetsArray()).astype(np.int64)
            sizes = np.diff(offsets)
            points = np.asarray(full.points)[conn]              # every face its own corners
            faces = np.insert(np.arange(len(conn)), offsets[:-1], sizes)
            new = pv.PolyData(points, faces)
            self._surface_vertex = np.repeat(np.arange(len(cells)), sizes)
        else:
            new = pv.PolyData()
            self._surface_vertex = np.zeros(0, np.int64)
        new.point_data["color"] = np.zeros(new.n_points, np.float32)
        self.surface.copy_from(new)
        self._surface_cell = cells

    def _rebuild_slice(self):
        if self._magnet_cells.n_cells == 0:
            cut = pv.PolyData()
        else:
            cut = self._magnet_cells.slice(normal=tuple(self._normal), origin=tuple(self._point),
                                           generate_triangles=False)
        ids = np.asarray(cut.cell_data["cell_id"], np.int64) if cut.n_cells else np.zeros(0, np.int64)
        new = pv.PolyData(cut.points, cut.faces) if cut.n_cells else pv.PolyData()
        new.cell_data["color"] = np.zeros(len(ids), np.float32)
        self.slice.copy_from(new)
        self._slice_cell = ids

    def _choose_arrows(self):
        """Anchor cells of the cones: on the slice, or through the volume on a stride that
        keeps within the budget (the cut-away part left out)."""
        if self.arrows_on_slice:
            # a stride k along the two grid axes closest to the plane: about k^2 fewer cones
            cells = np.unique(self._slice_cell)
            kji = np.unravel_index(cells, self._shape)                  # (k, j, i) = (z, y, x)
            across = [a for a in range(3) if a != 2 - int(np.argmax(np.abs(self._normal)))]
            k = 1
            while True:
                keep = np.ones(len(cells), bool)
                for a in across:
                    keep &= kji[a] % k == 0
                if keep.sum() <= min(self.arrow_budget, SLICE_ARROWS) or k > max(self._shape):
                    break
                k += 1
            cells = cells[keep]
            self._arrow_stride = k
        else:
            mask = self._mask.copy()
            nz, ny, nx = self._shape
            k = 1
            while True:
                sub = mask[::k, ::k, ::k]
                if sub.sum() <= self.arrow_budget:
                    break
                k += 1
            sel = np.zeros_like(mask)
            sel[::k, ::k, ::k] = mask[::k, ::k, ::k]
            cells = np.nonzero(sel.ravel())[0]
            if self.cut_away and self.show["slice"] and len(cells):
                cells = cells[self._signed(cell_centres(cells, self._shape, self._cell, self._origin)) <= 0.0]
            self._arrow_stride = k
        self._arrow_cell = cells
        centres = cell_centres(cells, self._shape, self._cell, self._origin)
        if len(cells):
            new = pv.PolyData(centres.astype(np.float32))
            new.point_data["m"] = np.zeros((len(cells), 3), np.float32)
        else:   # a slice that cuts no cell: no cones (pyvista refuses empty named arrays)
            new = pv.PolyData()
            empty = vtk.vtkFloatArray()
            empty.SetName("m")
            empty.SetNumberOfComponents(3)
            new.GetPointData().AddArray(empty)
        new.GetPointData().SetActiveVectors("m")
        self.arrows.copy_from(new)
        self.arrows.GetPointData().SetActiveVectors("m")
        self._glyph.SetScaleFactor(0.85 * self._arrow_stride * min(self._cell))

    def _write_colors(self):
        if self._m is None:
            return
        # only the cells that are drawn: a few per cent of a thick grid
        cells = np.concatenate([self._surface_cell, self._slice_cell])
        if self._overlay is not None:
            values = self._overlay[0][cells]
        else:
            values = color_values(self._m.reshape(3, -1)[:, cells], self.color_by)
        ns = len(self._surface_cell)
        if ns:
            self.surface.point_data["color"][:] = values[:ns][self._surface_vertex]
            self.surface.Modified()
        if len(self._slice_cell):
            self.slice.cell_data["color"][:] = values[ns:]
            self.slice.Modified()

    def _write_iso(self):
        if self._m is None or not self.show["iso"]:
            return
        v = self._m[COMPONENTS.index(self.iso_component)].ravel().astype(np.float32)
        if self._fill_from is not None:
            v = v[self._fill_from]
        self._centres.point_data["iso"][:] = v
        self._centres.Modified()

    def _write_arrows(self):
        if self._m is None or not len(self._arrow_cell):
            return
        flat = self._m.reshape(3, -1)
        self.arrows.point_data["m"][:] = flat[:, self._arrow_cell].T
        self.arrows.Modified()
