"""SpinScene: everything VTK of the spin view, on any pyvista plotter (no Qt widgets).

The app gives it the QtInteractor of `SpinView`; a test gives it `pv.Plotter(off_screen=True)`.
The scene owns the actors and their arrays, the colour maps, the overlay and picking:

- the film: one textured quad per layer with an RGBA pixel per cell (nearest-neighbour; alpha 0
  in vacuum). Software OpenGL draws a textured quad in a few ms, the same 65,536 cells as
  polygons in about 30 ms;
- arrows on every k-th cell (a vtkGlyph3D over a point set whose vectors are written in place),
  k chosen so there are at most `arrow_budget` arrows and they are about ARROW_MIN_PX apart;
- the overlay: the same quads a little above the film, coloured by a linear or log10 lookup
  table (values never logged), with its own scale bar, title and a note when it cannot be shown;
- extra layers (the 3D volume view, nmag_gui/volume_scene.py) through `add_layer`.

A layer that draws the grid itself (the volume view of a thick sample) hides the film with
`set_film_visible(False)`: the quads, their overlay quads, the arrows and the ruler are hidden
and `show_frame` does no per-frame work for them (no colouring, no texture upload, no arrow
vectors: about 30 of 48 ms a frame at 64 x 64 x 32). The scene still keeps what hover and the
layers need: the last frame (`cell_info`), the colour mode and arrows switch, the overlay's
values and range (`overlay_state()`), and its scale bar and legends.

Actors are built once per grid (nz, ny, nx, cell size); each frame only writes arrays in place
and asks for one render (`request_render`, which the Qt widget sets to a widget update).

Layer protocol (duck-typed) for `add_layer(layer)`:
    layer.build(scene, shape_zyx, cell_nm, origin_nm)  after the scene (re)built its actors
    layer.update(frame)                                every drawn frame
    layer.set_visible(on)
    layer.remove(scene)                                take its actors out of scene.plotter

Example::

    scene = SpinScene(pv.Plotter(off_screen=True))
    scene.show_frame(frame, cell_nm=(3, 3, 3))
    scene.set_overlay_kind("energy_density")
    scene.plotter.screenshot("view.png")
"""
from __future__ import annotations

import math
import textwrap
import time

import numpy as np
import pyvista as pv
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy

from . import vtk_classes as vtk   # the classes alone: `import vtk` loads all of VTK (0.47 s)
from .overlay import ENERGY_TERMS, overlay_scalars, overlay_title

COLOR_MODES = {"mx": "mx", "my": "my", "mz": "mz", "angle": "in-plane angle"}
# the second colour map over the film (nmag_gui/overlay.py picks the values out of a frame)
OVERLAY_MODES = {"none": "none", "error": "surrogate error", "H_net": "H_net", "H_fft": "H_fft",
                 "energy_density": "energy density (total)"}
OVERLAY_MODES.update({f"energy_density:{t}": f"energy density: {t.replace('_', ' ')}"
                      for t in ENERGY_TERMS})
OVERLAY_CMAP = "viridis"
ARROW_BUDGET = 1500
ARROW_MIN_PX = 14      # arrows closer than this on screen are clutter, and cost draw time
BACKGROUND = "#20242b"


def _textured_quad(plotter, nx: int, ny: int, dx: float, dy: float, z: float):
    """One layer as a quad at height z carrying an RGBA texture with a pixel per cell
    (nearest-neighbour, no lighting). Returns (image, texture, actor); colour a layer by
    writing image.point_data["rgba"] in place."""
    quad = pv.Plane(center=(0.0, 0.0, z), direction=(0, 0, 1),
                    i_size=nx * dx, j_size=ny * dy, i_resolution=1, j_resolution=1)
    image = pv.ImageData(dimensions=(nx, ny, 1))
    image.point_data["rgba"] = np.zeros((nx * ny, 4), np.uint8)
    tex = pv.Texture(image)
    tex.interpolate = False
    tex.SetColorModeToDirectScalars()
    actor = plotter.add_mesh(quad, texture=tex, lighting=False, reset_camera=False)
    return image, tex, actor


def arrow_stride(nx: int, ny: int, budget: int = ARROW_BUDGET) -> int:
    """The smallest k such that an arrow on every k-th cell in x and y gives <= budget arrows."""
    k = 1
    while math.ceil(nx / k) * math.ceil(ny / k) > budget:
        k += 1
    return k


def nice_length(span: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) near a quarter of `span`."""
    target = max(span / 4.0, 1e-9)
    p = 10 ** math.floor(math.log10(target))
    for f in (1, 2, 5, 10):
        if f * p >= target:
            return f * p
    return 10 * p


def hsv_wheel_image(size: int = 128) -> QImage:
    """The in-plane angle legend: a colour wheel (hue = angle of (mx, my), 0 deg = +x,
    counter-clockwise) with the axis names, as a QImage with alpha."""
    img = QImage(size, size, QImage.Format_RGBA8888)
    img.fill(Qt.transparent)
    r_out = size * 0.36
    c = size / 2
    y, x = np.mgrid[0:size, 0:size].astype(float)
    dx, dy = x + 0.5 - c, c - (y + 0.5)
    r = np.hypot(dx, dy)
    hue = (np.degrees(np.arctan2(dy, dx)) + 360.0) % 360.0
    rgba = np.zeros((size, size, 4), np.uint8)
    rgb = _hsv_to_rgb(hue / 360.0)
    inside = r <= r_out
    rgba[..., :3] = (rgb * 255).astype(np.uint8)
    rgba[..., 3] = np.where(inside, 255, 0)
    buf = QImage(rgba.tobytes(), size, size, 4 * size, QImage.Format_RGBA8888).copy()
    painter = QPainter(buf)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(QColor("white")))
    f = QFont()
    f.setPixelSize(max(9, size // 9))
    f.setBold(True)
    painter.setFont(f)
    w = size * 0.14
    painter.drawText(int(c + r_out + 1), int(c - w / 2), int(w), int(w), Qt.AlignCenter, "x")
    painter.drawText(int(c - w / 2), int(c - r_out - w - 1), int(w), int(w), Qt.AlignCenter, "y")
    painter.end()
    return buf


def _hsv_to_rgb(h: np.ndarray) -> np.ndarray:
    """Full-saturation, full-value HSV to RGB for hue h in [0, 1)."""
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    q, t = 1 - f, f
    one, zero = np.ones_like(h), np.zeros_like(h)
    table = [(one, t, zero), (q, one, zero), (zero, one, t), (zero, q, one), (t, zero, one), (one, zero, q)]
    out = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(table):
        sel = i == k
        out[sel, 0], out[sel, 1], out[sel, 2] = r[sel], g[sel], b[sel]
    return out


def _bar_title(title: str) -> str:
    """A scale bar title on two lines (the quantity; the unit and "(log)"), so that it fits
    above a bar at the right edge of the view."""
    # VTK's scalar bar font drops "|": name the quantity instead
    title = title.replace("|H_net - H_fft| / Ms", "error ΔH / Ms").replace("|H_demag|", "H_demag")
    name, _, rest = title.partition(" [")
    if rest:
        return f"{name}\n[{rest}"
    if title.endswith(" (log)"):
        return f"{title[:-6]}\n(log)"
    return title


def _hsv_lookup_table() -> pv.LookupTable:
    lut = pv.LookupTable(cmap="hsv", n_values=360)
    lut.scalar_range = (0.0, 360.0)
    return lut


def _qimage_to_vtk(img: QImage) -> pv.ImageData:
    img = img.convertToFormat(QImage.Format_RGBA8888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, count=w * h * 4).reshape(h, w, 4)
    arr = np.ascontiguousarray(arr[::-1])  # VTK images start at the bottom row
    im = pv.ImageData(dimensions=(w, h, 1))
    im.point_data["rgba"] = arr.reshape(-1, 4)
    return im


class SpinScene:
    """The VTK side of the spin view (see the module docstring). GUI thread only."""

    def __init__(self, plotter, arrow_budget: int = ARROW_BUDGET):
        self.plotter = plotter
        self.arrow_budget = arrow_budget
        self.request_render = self._render_now     # the Qt widget replaces it by a widget update
        self.color_by = "angle"
        self.show_arrows = True
        self.points: pv.PolyData | None = None    # arrow anchors: point array "m"
        self.film_actor = None
        self.arrow_actor = None
        self._glyph = None
        self._layers = []
        self._extra_layers = []
        self._lut_rgba = None
        self._shape = None        # (nz, ny, nx, cell_nm) of the current actors
        self._stride = 1
        self._ruler = None
        self._legend = None
        self._color: np.ndarray | None = None      # the colour scalar per cell, as drawn
        self._last_m: np.ndarray | None = None
        self._render_times: list[float] = []
        self.frames_drawn = 0
        # overlay
        self.overlay_kind = "none"
        self.overlay_log = True
        self._overlay_layers = []
        self._overlay_values: np.ndarray | None = None
        self._overlay_clim = (0.0, 1.0)
        self._overlay_title = ""
        self._overlay_lut = vtk.vtkLookupTable()
        self._overlay_bar = None
        self._overlay_bar_title = None
        self._overlay_note = None
        self._m_bar = None
        self.last_frame = None
        self.film_visible = True      # False while a layer draws the grid (set_film_visible)
        self._overlay_on = False      # an overlay is drawn (on the film, or by a layer)
        self._origin = (0.0, 0.0, 0.0)
        self._cell = (1.0, 1.0, 1.0)
        self._picker = vtk.vtkCellPicker()
        self._picker.SetTolerance(0.0)
        self._picker.PickFromListOn()
        # pixels of the view (the Qt widget keeps this up to date; an off-screen plotter has its own)
        self.screen_size = tuple(int(v) for v in getattr(plotter, "window_size", (800, 600)))
        self.plotter.set_background(BACKGROUND)
        self.plotter.add_axes(color="white", line_width=2, viewport=(0.0, 0.0, 0.12, 0.16))
        self._init_overlay_lut()

    # ------------------------------------------------------------------ frames
    def show_frame(self, frame, cell_nm) -> None:
        """Draw frame.m (3, nz, ny, nx) on a grid of cells cell_nm (dx, dy, dz) in nm."""
        m = frame.m
        nz, ny, nx = m.shape[1:]
        key = (nz, ny, nx, tuple(float(c) for c in cell_nm))
        if key != self._shape:
            self._build_actors(nz, ny, nx, key[3])
        self._last_m = m
        self.last_frame = frame
        if self.film_visible:
            self._update_arrays(m)
        else:
            self._color = None        # computed on demand (color_array) while hidden
        if self.overlay_kind != "none":
            self._update_overlay_from_frame(frame)
        for layer in self._extra_layers:
            layer.update(frame)
        self.render()
        self._count_frame()

    def render(self) -> None:
        """Ask for one render (a widget update: several requests before the paint render once)."""
        self.request_render()

    def _count_frame(self) -> None:
        """One drawn frame for `fps` (an overlay or layer update inside it is not another)."""
        self.frames_drawn += 1
        now = time.perf_counter()
        self._render_times.append(now)
        while self._render_times and now - self._render_times[0] > 1.0:
            self._render_times.pop(0)

    def _render_now(self) -> None:
        self.plotter.render()

    @property
    def fps(self) -> float:
        """Frames drawn per second over the last second (0 when nothing was drawn lately)."""
        now = time.perf_counter()
        times = [t for t in self._render_times if now - t <= 1.0]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(now - times[0], 1e-9)

    @property
    def shape(self):
        """(nz, ny, nx, cell_nm) of the drawn grid, or None before the first frame."""
        return self._shape

    # ------------------------------------------------------------------ extra layers
    def add_layer(self, layer) -> None:
        """Add a layer (see the module docstring); built at once if a grid is drawn."""
        self._extra_layers.append(layer)
        if self._shape is not None:
            nz, ny, nx, cell = self._shape
            layer.build(self, (nz, ny, nx), cell, self._origin)
            if self.last_frame is not None:
                layer.update(self.last_frame)
            self.render()

    def remove_layer(self, layer) -> None:
        if layer in self._extra_layers:
            self._extra_layers.remove(layer)
            layer.remove(self)
            self.render()

    @property
    def layers(self) -> list:
        return list(self._extra_layers)

    # ------------------------------------------------------------------ the film's own pictures
    def set_film_visible(self, on: bool) -> None:
        """Show (True, the default) or hide the film's own pictures: the stacked textured quads,
        their overlay quads, the arrows and the ruler. A layer that draws the grid itself (the
        volume view of a thick sample) hides them; while hidden, `show_frame` skips their
        per-frame colouring, texture uploads and arrow vectors, and `cell_at` finds nothing
        (the layer picks). Kept while hidden: the last frame (hover: `cell_info`), the colour
        mode, the arrows switch, the overlay values and range (`overlay_state`), the legends
        and the overlay's scale bar. Shown again, the pictures are brought up to date at once.
        Stays in force across grid rebuilds until changed."""
        on = bool(on)
        if on == self.film_visible:
            return
        self.film_visible = on
        self._apply_film_visibility()
        if on and self._shape is not None:
            if self._last_m is not None and self._last_m.shape[1:] == tuple(self._shape[:3]):
                self._update_arrays(self._last_m)
            if self.overlay_kind != "none" and self.last_frame is not None \
                    and self.last_frame.m.shape[1:] == tuple(self._shape[:3]):
                self._update_overlay_from_frame(self.last_frame)
        self.render()

    def _apply_film_visibility(self) -> None:
        """The film's actors as `film_visible`, `show_arrows` and the overlay say."""
        on = self.film_visible
        for _img, _tex, actor in self._layers:
            actor.SetVisibility(on)
        for _img, _tex, actor in self._overlay_layers:
            actor.SetVisibility(on and self._overlay_on)
        if self.arrow_actor is not None:
            self.arrow_actor.SetVisibility(on and self.show_arrows)
        if self._ruler is not None:       # a flat ruler at z = 0 would cut through a volume
            self._ruler.SetVisibility(on)

    def film_rgba(self) -> np.ndarray | None:
        """The film's quad colours (nz, ny, nx, 4) uint8 as last written (a copy), or None
        before the first grid. While the film is hidden they are not written."""
        if self._shape is None or not self._layers:
            return None
        nz, ny, nx = self._shape[:3]
        return np.stack([np.array(img.point_data["rgba"]).reshape(ny, nx, 4)
                         for img, _t, _a in self._layers])

    def overlay_state(self):
        """The overlay drawn now as (values (nz, ny, nx) float64, NaN = not drawn; (lo, hi);
        title; log), or None when no overlay is drawn. The array is the scene's own: read it,
        do not write it (a layer colours its cells by it)."""
        if not self._overlay_on or self._overlay_values is None:
            return None
        return self._overlay_values, self._overlay_clim, self._overlay_title, \
            bool(self.overlay_log) and self._overlay_clim[0] > 0

    # ------------------------------------------------------------------ colour, arrows, camera
    def set_color_by(self, mode: str) -> None:
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode {mode!r}: expected one of {', '.join(COLOR_MODES)}")
        self.color_by = mode
        if self.film_actor is not None:
            self._apply_color_mode()
            self._sync_legends()
            if self._last_m is not None and self.film_visible:
                self._update_arrays(self._last_m)
            self._layers_follow()
            self.render()

    def _layers_follow(self) -> None:
        """Tell the extra layers (the volume view) that a view setting changed."""
        for layer in self._extra_layers:
            follow = getattr(layer, "follow_scene", None)
            if follow is not None:
                follow()

    def set_arrows_visible(self, on: bool) -> None:
        self.show_arrows = bool(on)
        if self.arrow_actor is not None:
            self.arrow_actor.SetVisibility(self.show_arrows and self.film_visible)
            self._layers_follow()
            self.render()

    def set_camera(self, preset: str) -> None:
        """'top', 'side', '3d' or 'reset'. A volume view shown instead of the film (thick samples)
        places 'side' itself: it looks from the side its cut-away removed."""
        p = self.plotter
        layer = next((la for la in self._extra_layers if getattr(la, "active", False)
                      and hasattr(la, "set_camera")), None)
        if preset in ("top", "reset"):
            self.fit_top_view()
        elif preset == "side" and layer is not None:
            layer.set_camera("side")
        elif preset == "side":
            # from -y, raised by 20 degrees: exactly edge-on, a film of a few nm is a line
            p.view_xz()
            p.camera.elevation = 20.0
            p.reset_camera()
        elif preset == "3d":
            p.view_isometric()
        else:
            raise ValueError(f"camera preset {preset!r}: expected top, side, 3d or reset")
        self.render()

    # the film's share of the view from the top: left of the colour bars, which take the right
    # fifth (the overlay's bar from 0.80 of the width, the m bar from 0.88), and a little above
    # the centre, leaving the scale ruler room below it
    FIT_WIDTH, FIT_HEIGHT, FIT_CENTRE_X, FIT_CENTRE_Y = 0.74, 0.76, 0.41, 0.50

    def fit_top_view(self) -> None:
        """Look straight down on the film, sized and placed so that all of it lies left of the
        colour bars: a long strip in a small view ran under the bar (1024 x 700 window)."""
        p = self.plotter
        p.view_xy()
        p.reset_camera()
        cam = p.camera
        if self._shape is None or cam.GetParallelProjection():
            return
        nz, ny, nx, cell = self._shape
        fw, fh = nx * cell[0], ny * cell[1]
        W, H = p.renderer.GetSize()
        if W <= 0 or H <= 0:
            W, H = self.screen_size
        aspect = W / max(H, 1)
        seen_h = max(fh / self.FIT_HEIGHT, fw / (self.FIT_WIDTH * aspect))   # world height in view (nm)
        dist = seen_h / (2.0 * math.tan(math.radians(cam.GetViewAngle()) / 2.0))
        fx, fy, fz = cam.GetFocalPoint()
        cx = (0.5 - self.FIT_CENTRE_X) * seen_h * aspect   # the film's centre at FIT_CENTRE_X of the width
        cy = (0.5 - self.FIT_CENTRE_Y) * seen_h
        cam.SetFocalPoint(cx, cy, fz)
        cam.SetPosition(cx, cy, fz + dist)
        cam.SetViewUp(0.0, 1.0, 0.0)
        p.renderer.ResetCameraClippingRange()

    def color_array(self) -> np.ndarray | None:
        """The cell colour scalar as drawn (a copy, x fastest), or None before the first frame.
        While the film is hidden it is computed from the last frame when asked."""
        if self._color is None and self._last_m is not None and not self.film_visible:
            return self._color_scalar(self._last_m).ravel().copy()
        return None if self._color is None else self._color.ravel().copy()

    def arrow_vectors(self) -> np.ndarray | None:
        return None if self.points is None else np.array(self.points.point_data["m"])

    @property
    def arrow_count(self) -> int:
        return 0 if self.points is None else self.points.n_points

    # ------------------------------------------------------------------ the overlay
    def set_overlay_kind(self, kind: str) -> None:
        """Show the overlay `kind` (see OVERLAY_MODES) from now on, computed from each frame."""
        if kind not in OVERLAY_MODES:
            raise ValueError(f"overlay {kind!r}: expected one of {', '.join(OVERLAY_MODES)}")
        self.overlay_kind = kind
        if kind == "none":
            self._hide_overlay()
        elif self.last_frame is not None and self._shape is not None:
            self._update_overlay_from_frame(self.last_frame)
        self._layers_follow()
        self.render()

    def set_overlay_log(self, log: bool) -> None:
        """Logarithmic (True) or linear colour scale for the overlay."""
        self.overlay_log = bool(log)
        if self.overlay_kind != "none" and self.last_frame is not None and self._shape is not None:
            self._update_overlay_from_frame(self.last_frame)
            self._layers_follow()
            self.render()

    def set_overlay(self, values, clim, title: str, log: bool = False) -> None:
        """Draw `values` (nz, ny, nx; NaN = not drawn) over the film with the colour range
        clim = (lo, hi) (lo > 0 when log), a scale bar titled `title`, and a log10 or linear
        lookup table. Needs a frame drawn first (the grid)."""
        if self._shape is None:
            raise ValueError("no grid yet: draw a frame first")
        values = np.asarray(values, dtype=np.float64)
        nz, ny, nx = self._shape[:3]
        if values.shape != (nz, ny, nx):
            raise ValueError(f"overlay of shape {values.shape}, expected (nz, ny, nx) = {(nz, ny, nx)}")
        lo, hi = float(clim[0]), float(clim[1])
        if log and lo <= 0:
            raise ValueError(f"a log colour range needs a positive lower end, not {lo:g}")
        if not hi > lo:
            hi = lo + (abs(lo) * 1e-6 or 1e-12)
        self._overlay_values = values.copy()
        self._overlay_clim, self._overlay_title = (lo, hi), str(title)
        self._overlay_on = True
        lut = self._overlay_lut
        if log:
            lut.SetScaleToLog10()
        else:
            lut.SetScaleToLinear()
        lut.SetTableRange(lo, hi)
        lut.Build()
        if self.film_visible:      # hidden: a layer draws the values (overlay_state), not the quads
            flat = np.ascontiguousarray(values.ravel())
            colors = lut.MapScalars(numpy_to_vtk(flat, deep=0), vtk.VTK_COLOR_MODE_MAP_SCALARS, -1)
            rgba = vtk_to_numpy(colors).reshape(nz, ny, nx, 4).copy()
            rgba[..., 3] = np.where(np.isfinite(values), 255, 0)
            for k, (image, tex, actor) in enumerate(self._overlay_layers):
                image.point_data["rgba"][:] = rgba[k].reshape(-1, 4)
                image.Modified()
                tex.Modified()
                actor.SetVisibility(True)
        self._overlay_bar_title.SetInput(_bar_title(title))
        self._overlay_bar_title.SetVisibility(True)
        self._overlay_bar.SetLabelFormat("%.1e" if log or max(abs(lo), abs(hi)) < 1e-2
                                         or max(abs(lo), abs(hi)) >= 1e4 else "%.3g")
        self._overlay_bar.SetVisibility(True)
        self._overlay_note.SetVisibility(False)
        self._sync_legends()
        self.render()

    def overlay_values(self) -> np.ndarray | None:
        """The overlay values drawn now (a copy, (nz, ny, nx), NaN outside the magnet), or None."""
        return None if self._overlay_values is None else self._overlay_values.copy()

    @property
    def overlay_visible(self) -> bool:
        """An overlay is drawn: on the film's quads, or (film hidden) by a layer from
        overlay_state()."""
        return bool(self._overlay_layers) and self._overlay_on

    def overlay_rgba(self) -> np.ndarray | None:
        """The overlay's colours on the film's quads (nz, ny, nx, 4) uint8 (a copy), or None
        when no overlay is drawn there (none, or the film is hidden)."""
        if not self.overlay_visible or not self.film_visible:
            return None
        nz, ny, nx = self._shape[:3]
        return np.stack([np.array(img.point_data["rgba"]).reshape(ny, nx, 4)
                         for img, _t, _a in self._overlay_layers])

    def overlay_note(self) -> str:
        """The note shown instead of an overlay that cannot be drawn ("" when none)."""
        if self._overlay_note is None or not self._overlay_note.GetVisibility():
            return ""
        return self._overlay_note.GetInput() or ""

    def overlay_bar_boxes(self) -> dict:
        """Display-pixel boxes (x0, y0, x1, y1) of the overlay's title and bar (tests check
        that they do not overlap)."""
        ren = self.plotter.renderer
        w, h = ren.GetSize()
        out = {}
        if self._overlay_bar_title is not None:
            x, y = self._overlay_bar_title.GetPositionCoordinate().GetComputedDisplayValue(ren)
            bb = [0.0] * 4
            self._overlay_bar_title.GetBoundingBox(ren, bb)
            w_t = bb[1] - bb[0]            # right- and bottom-justified at its position
            out["title"] = (x - w_t, y, x, y + (bb[3] - bb[2]))
        if self._overlay_bar is not None:
            x, y = self._overlay_bar.GetPositionCoordinate().GetComputedDisplayValue(ren)
            out["bar"] = (x, y, x + self._overlay_bar.GetWidth() * w, y + self._overlay_bar.GetHeight() * h)
        return out

    # ------------------------------------------------------------------ picking
    def cell_at(self, x: int, y: int):
        """The cell (k, j, i) under the display position (x, y) (VTK pixels, origin bottom
        left), or None off the film."""
        if self._shape is None or not self._layers or not self.film_visible:
            return None
        ren = self.plotter.renderer
        if not self._picker.Pick(x, y, 0, ren):
            return None
        actor = self._picker.GetActor()
        layer = None
        for k, (_img, _tex, a) in enumerate(self._layers):
            if a is actor:
                layer = k
        for k, (_img, _tex, a) in enumerate(self._overlay_layers):
            if a is actor:
                layer = k
        if layer is None:
            return None
        px, py, _pz = self._picker.GetPickPosition()
        nz, ny, nx = self._shape[:3]
        i = int(math.floor((px - self._origin[0]) / self._cell[0]))
        j = int(math.floor((py - self._origin[1]) / self._cell[1]))
        if not (0 <= i < nx and 0 <= j < ny):
            return None
        return layer, j, i

    def cell_info(self, k: int, j: int, i: int) -> str:
        """What hovering shows for cell (k, j, i): m, both demag fields of the last probe (kA/m),
        the error |H_net - H_fft| / Ms and the overlay value."""
        f = self.last_frame
        if f is None:
            return ""
        m = f.m[:, k, j, i]
        lines = [f"cell x={i}, y={j}" + (f", z={k}" if f.m.shape[1] > 1 else "")]
        if not np.any(m):
            return lines[0] + ": vacuum"
        lines.append(f"m = ({m[0]:+.3f}, {m[1]:+.3f}, {m[2]:+.3f})")
        probe = getattr(f, "probe", None)
        if probe is not None:
            for name in ("H_net", "H_fft"):
                h = np.asarray(getattr(probe, name))[:, k, j, i] / 1e3
                lines.append(f"{name} = ({h[0]:+.1f}, {h[1]:+.1f}, {h[2]:+.1f}) kA/m, "
                             f"|{name}| = {np.linalg.norm(h):.1f} kA/m")
        if f.error_map is not None:
            lines.append(f"error |H_net − H_fft| / Ms = {float(f.error_map[k, j, i]):.3g}")
        elif probe is None:
            lines.append("(no probe: demag method 'neural+probe' shows both fields and the error)")
        if self._overlay_values is not None and self.overlay_kind not in ("none", "error"):
            lines.append(f"{self._overlay_title.replace(' (log)', '')}: {self._overlay_values[k, j, i]:.3g}")
        return "\n".join(lines)

    def close(self) -> None:
        for layer in list(self._extra_layers):
            try:
                layer.remove(self)
            except Exception:  # noqa: BLE001 - closing must not fail
                pass
        self._extra_layers = []

    # ------------------------------------------------------------------ actors (once per grid)
    def _build_actors(self, nz, ny, nx, cell_nm):
        p = self.plotter
        p.clear_actors() if hasattr(p, "clear_actors") else p.clear()
        if p.scalar_bars:
            p.remove_scalar_bar()
        if self._legend is not None:
            self._legend.Off()
            self._legend = None
        dx, dy, dz = cell_nm
        origin = (-nx * dx / 2.0, -ny * dy / 2.0, 0.0)
        self._origin, self._cell = origin, (dx, dy, dz)
        self._overlay_values = None
        self._overlay_on = False
        self._color = None
        self._layers = [_textured_quad(p, nx, ny, dx, dy, (k + 1) * dz) for k in range(nz)]
        self.film_actor = self._layers[-1][2]
        # the overlay: the same quads a little above the film, hidden until an overlay is chosen
        self._overlay_layers = []
        for k in range(nz):
            layer = _textured_quad(p, nx, ny, dx, dy, (k + 1.02) * dz)
            layer[2].SetVisibility(False)
            self._overlay_layers.append(layer)
        self._picker.InitializePickList()
        for _img, _tex, a in self._layers + self._overlay_layers:
            self._picker.AddPickList(a)
        self._build_overlay_bar()

        # arrows: anchors on every k-th cell (of every layer), just above the film
        k = max(arrow_stride(nx, ny, max(1, self.arrow_budget // nz)), self._stride_for_screen(nx, ny))
        self._stride = k
        xs = origin[0] + (np.arange(0, nx, k) + 0.5) * dx
        ys = origin[1] + (np.arange(0, ny, k) + 0.5) * dy
        zs = (np.arange(nz) + 0.5) * dz
        Z, Y, X = np.meshgrid(zs, ys, xs, indexing="ij")
        pts = np.column_stack([X.ravel(), Y.ravel(), Z.ravel() + 0.5 * dz + 0.3 * min(dx, dy)])
        points = pv.PolyData(pts.astype(np.float32))
        points.point_data["m"] = np.zeros((points.n_points, 3), np.float32)
        points.point_data.active_vectors_name = "m"
        self.points = points
        glyph = vtk.vtkGlyph3D()
        glyph.SetInputData(points)
        arrow = vtk.vtkArrowSource()
        arrow.SetTipResolution(6)      # 6/3 draws in half the time of 8/6 and looks the same
        arrow.SetShaftResolution(3)    # at the 10-20 px an arrow gets
        arrow.SetTipLength(0.4)
        arrow.SetTipRadius(0.16)
        arrow.SetShaftRadius(0.06)
        tr = vtk.vtkTransform()
        tr.Translate(-0.5, 0.0, 0.0)  # arrows centred on their cell, not starting there
        tf = vtk.vtkTransformFilter()
        tf.SetTransform(tr)
        tf.SetInputConnection(arrow.GetOutputPort())
        glyph.SetSourceConnection(tf.GetOutputPort())
        glyph.SetVectorModeToUseVector()
        glyph.SetScaleModeToScaleByVector()
        glyph.SetScaleFactor(0.9 * k * min(dx, dy))
        glyph.OrientOn()
        glyph.SetColorModeToColorByScale()
        glyph.ScalingOn()
        self._glyph = glyph
        self.arrow_actor = p.add_mesh(glyph, color="#111111", lighting=True, reset_camera=False,
                                      show_scalar_bar=False)
        self.arrow_actor.SetVisibility(self.show_arrows)

        self._add_ruler(nx * dx, ny * dy, origin)
        self._apply_film_visibility()
        self._shape = (nz, ny, nx, tuple(cell_nm))
        self._apply_color_mode()
        self._sync_legends()
        for layer in self._extra_layers:
            layer.build(self, (nz, ny, nx), tuple(cell_nm), origin)
        if any(getattr(la, "active", False) for la in self._extra_layers):
            # a thick sample: from above a corner, on the side the cut-away removed (its slice
            # normals point to +x, +y or +z), so the slice, the isosurface and the surface show;
            # from the top the slice was edge-on and half the magnet was cut away
            p.view_isometric()
            p.reset_camera()
        else:
            self.fit_top_view()

    def _stride_for_screen(self, nx, ny) -> int:
        """Every how many cells an arrow goes so that arrows are about ARROW_MIN_PX apart when
        the film fills the view from the top (about 80 % of its smaller side)."""
        w, h = self.screen_size
        px_per_cell = 0.8 * max(min(w, h), 200) / max(nx, ny)
        return max(1, math.ceil(ARROW_MIN_PX / px_per_cell - 1e-9))

    def _add_ruler(self, lx, ly, origin):
        length = nice_length(lx)
        y = origin[1] - 0.05 * max(lx, ly)     # clear of the film also for a long thin strip
        a = (origin[0], y, 0.0)
        b = (origin[0] + length, y, 0.0)
        self._ruler = self.plotter.add_ruler(a, b, title=f"{length:g} nm", number_labels=2,
                                             show_labels=False, font_size_factor=0.7,
                                             number_minor_ticks=0, tick_length=6,
                                             tick_color="white")
        self._ruler.GetTitleTextProperty().SetColor(1, 1, 1)
        self._ruler.GetLabelTextProperty().SetColor(1, 1, 1)
        self._ruler.GetProperty().SetColor(1, 1, 1)

    def _apply_color_mode(self):
        p = self.plotter
        if self.color_by == "angle":
            self._lut = _hsv_lookup_table()
        else:
            self._lut = pv.LookupTable(cmap="RdBu_r", n_values=256)
            self._lut.scalar_range = (-1.0, 1.0)
        lo, hi = self._lut.scalar_range
        n = self._lut.GetNumberOfTableValues()
        self._lut_rgba = (np.array([self._lut.GetTableValue(i) for i in range(n)]) * 255).astype(np.uint8)
        self._lut_lo, self._lut_scale = lo, (n - 1e-6) / (hi - lo)
        if p.scalar_bars:
            p.remove_scalar_bar()
        self._m_bar = None
        if self._legend is not None:
            self._legend.Off()
            self._legend = None
        if self.color_by == "angle":
            self._legend = self._add_wheel_legend()
        else:
            # a scalar bar needs a mapper: an invisible one that carries the lookup table
            self._bar_mapper = vtk.vtkPolyDataMapper()
            self._bar_mapper.SetLookupTable(self._lut)
            self._bar_mapper.SetScalarRange(lo, hi)
            self._m_bar = p.add_scalar_bar(title=COLOR_MODES[self.color_by] + "\n", mapper=self._bar_mapper,
                                           vertical=True, position_x=0.88, position_y=0.25, width=0.06,
                                           height=0.5, n_labels=5, fmt="%.1f", color="white",
                                           title_font_size=14, label_font_size=12)

    def _init_overlay_lut(self):
        src = pv.LookupTable(cmap=OVERLAY_CMAP, n_values=256)
        lut = self._overlay_lut
        lut.SetNumberOfTableValues(256)
        for i in range(256):
            lut.SetTableValue(i, *src.GetTableValue(i))
        lut.SetNanColor(0.0, 0.0, 0.0, 0.0)
        lut.SetTableRange(0.0, 1.0)
        lut.Build()

    def _build_overlay_bar(self):
        """The overlay's scale bar, its title (a text actor of its own above the bar, so the
        title never runs into the top label) and the note shown when there is nothing to draw."""
        bar = vtk.vtkScalarBarActor()
        bar.SetLookupTable(self._overlay_lut)
        bar.SetOrientationToVertical()
        bar.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        bar.GetPositionCoordinate().SetValue(0.80, 0.14)
        bar.SetWidth(0.18)
        bar.SetHeight(0.60)
        bar.SetNumberOfLabels(5)
        bar.SetBarRatio(0.35)
        bar.SetTitle("")
        bar.UnconstrainedFontSizeOn()
        prop = bar.GetLabelTextProperty()
        prop.SetColor(1, 1, 1)
        prop.SetFontSize(12)
        prop.SetShadow(False)
        prop.SetItalic(False)
        prop.SetBold(False)
        bar.SetVisibility(False)
        self.plotter.add_actor(bar, reset_camera=False, pickable=False)
        self._overlay_bar = bar
        title = vtk.vtkTextActor()
        tp = title.GetTextProperty()
        tp.SetFontSize(13)
        tp.SetBold(True)
        tp.SetColor(1, 1, 1)
        tp.SetJustificationToRight()     # ends at the view's right edge: a long title stays in view
        tp.SetVerticalJustificationToBottom()
        title.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        title.GetPositionCoordinate().SetValue(0.985, 0.79)
        title.SetVisibility(False)
        self.plotter.add_actor(title, reset_camera=False, pickable=False)
        self._overlay_bar_title = title
        note = vtk.vtkTextActor()
        note.GetTextProperty().SetFontSize(14)
        note.GetTextProperty().SetColor(1.0, 0.85, 0.4)
        note.GetTextProperty().SetVerticalJustificationToTop()
        note.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        note.GetPositionCoordinate().SetValue(0.02, 0.97)      # its top line stays in the view
        note.SetVisibility(False)
        self.plotter.add_actor(note, reset_camera=False, pickable=False)
        self._overlay_note = note

    def _sync_legends(self):
        """While an overlay is drawn its scale bar replaces the colour legend of m."""
        on = self.overlay_visible
        if self._m_bar is not None:
            self._m_bar.SetVisibility(not on)
        if self._legend is not None:
            (self._legend.Off if on else self._legend.On)()

    def _hide_overlay(self, note: str = ""):
        self._overlay_on = False
        for _img, _tex, actor in self._overlay_layers:
            actor.SetVisibility(False)
        for actor in (self._overlay_bar, self._overlay_bar_title):
            if actor is not None:
                actor.SetVisibility(False)
        if self._overlay_note is not None:
            # wrapped to the view's width (about 8 px a character at 14 px): never cut off
            width = max(28, int(self.screen_size[0] * 0.9 / 8.5))
            self._overlay_note.SetInput("\n".join(textwrap.wrap(note, width)))
            self._overlay_note.SetVisibility(bool(note))
        self._overlay_values = None
        self._sync_legends()

    def _update_overlay_from_frame(self, frame):
        try:
            values, clim = overlay_scalars(frame, self.overlay_kind, self.overlay_log)
        except ValueError as exc:
            self._hide_overlay(self._why_no_overlay(frame, exc))
            return
        if self.overlay_log and clim[0] <= 0:
            clim = (max(clim[1] * 1e-4, 1e-30), clim[1])
        self.set_overlay(values, clim, overlay_title(self.overlay_kind, self.overlay_log), self.overlay_log)

    def _why_no_overlay(self, frame, exc) -> str:
        """The note for an overlay that cannot be drawn; it does not ask for the demag method
        that is already chosen."""
        name = OVERLAY_MODES[self.overlay_kind]
        if self.overlay_kind in ("error", "H_net", "H_fft") and \
                str(getattr(frame, "demag_method", "")) == "neural+probe":
            return f"{name}: waiting for the first error probe (it runs every few steps: Run or Step)"
        return f"{name}: {exc}"

    def _add_wheel_legend(self):
        from PySide6.QtGui import QGuiApplication
        iren = getattr(self.plotter, "iren", None)
        if iren is None or getattr(iren, "interactor", None) is None or QGuiApplication.instance() is None:
            return None                 # an off-screen plotter, or no Qt to draw the wheel with
        image = _qimage_to_vtk(hsv_wheel_image(128))
        rep = vtk.vtkLogoRepresentation()
        rep.SetImage(image)
        rep.SetPosition(0.84, 0.72)
        rep.SetPosition2(0.15, 0.26)
        rep.GetImageProperty().SetOpacity(1.0)
        widget = vtk.vtkLogoWidget()
        widget.SetInteractor(iren.interactor)
        widget.SetRepresentation(rep)
        widget.ProcessEventsOff()
        widget.On()
        return widget

    # ------------------------------------------------------------------ per frame
    def _color_scalar(self, m: np.ndarray) -> np.ndarray:
        """The colour scalar of each cell (nz, ny, nx): the in-plane angle in degrees or a component."""
        if self.color_by == "angle":
            return np.degrees(np.arctan2(m[1], m[0])) % 360.0  # 0 = +x, as on the wheel
        return m[("mx", "my", "mz").index(self.color_by)]

    def _update_arrays(self, m: np.ndarray):
        """Colour the film's quads and point its arrows (only while the film is shown)."""
        mx, my, mz = m[0], m[1], m[2]
        mask = (mx * mx + my * my + mz * mz) > 0.25
        color = self._color_scalar(m)
        self._color = color
        idx = ((color - self._lut_lo) * self._lut_scale).astype(np.intp)
        np.clip(idx, 0, len(self._lut_rgba) - 1, out=idx)
        rgba = self._lut_rgba[idx]                      # (nz, ny, nx, 4)
        rgba[..., 3] = np.where(mask, 255, 0)
        for k, (image, tex, _actor) in enumerate(self._layers):
            image.point_data["rgba"][:] = rgba[k].reshape(-1, 4)
            image.Modified()
            tex.Modified()
        k = self._stride
        sub = m[:, :, ::k, ::k]
        self.points.point_data["m"][:] = sub.reshape(3, -1).T
        self.points.Modified()
