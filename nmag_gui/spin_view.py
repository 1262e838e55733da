"""SpinView: the live 3D picture of m, drawn by VTK through a pyvistaqt QtInteractor.

The film is an ImageData with one coloured cell per simulation cell; vacuum cells are cut away
by a threshold on a mask array. A second layer shows arrows on every k-th cell, with k chosen so
there are at most `arrow_budget` arrows (software rendering draws about 1,000 arrows in 30 ms;
one arrow per cell of a 256x256 film would take a quarter of a second per frame).

Actors are created once per grid; each frame only writes into their arrays in place
(`cell_data[...][:] = ...`, Modified()) and renders. Only the GUI thread calls into this class.

Overlay: a second colour map drawn over the film (one more textured quad per layer, created with
the film), with its own scale bar and a linear or logarithmic lookup table (the values are never
logged: a log10 vtkLookupTable maps them). The toolbar's "Overlay" box picks what it shows (the
surrogate's error |H_net - H_fft| / Ms, either demag field, the energy density), computed from
each frame by `overlay.overlay_scalars`; `set_overlay(values, clim, title, log)` shows any
(nz, ny, nx) map directly. Hovering over a cell shows its m, both demag fields of the last probe
and the error (a cell picker on the film's quads; `cell_info(k, j, i)` is the text).

Example::

    view = SpinView()
    view.show_frame(frame, cell_nm=(3, 3, 3))
    view.set_color_by("angle")
    view.set_camera("top")
"""
from __future__ import annotations

import math
import textwrap
import time

import numpy as np
import pyvista as pv
import vtk
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QCursor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QToolTip,
                               QVBoxLayout, QWidget)
from pyvistaqt import QtInteractor
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy

from .overlay import overlay_scalars, overlay_title

COLOR_MODES = {"mx": "mx", "my": "my", "mz": "mz", "angle": "in-plane angle"}
# the second colour map over the film (nmag_gui/overlay.py computes the values)
OVERLAY_MODES = {"none": "none", "error": "surrogate error", "H_net": "H_net", "H_fft": "H_fft",
                 "energy_density": "energy density"}
OVERLAY_CMAP = "viridis"
HOVER_INTERVAL_S = 0.04    # at most 25 picks a second while the mouse moves
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


def _select_quietly(combo, index: int) -> None:
    """Show `index` in a combo box without emitting its change signals (the view set it)."""
    if combo.currentIndex() != index:
        combo.blockSignals(True)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)


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


class SpinView(QWidget):
    """The 3D view of the magnetization, with its controls (colour, arrows, camera).

    show_frame(frame, cell_nm) draws a Frame; the first frame of a grid builds the actors, later
    ones update their arrays. `fps` is the measured rate of rendered frames."""

    colorByChanged = Signal(str)
    overlayChanged = Signal(str, bool)   # kind ("none", "error", ...), log
    hovered = Signal(str)                # the hover text of the cell under the mouse ("" off the film)

    def __init__(self, parent=None, arrow_budget: int = ARROW_BUDGET):
        super().__init__(parent)
        self.arrow_budget = arrow_budget
        self.color_by = "angle"
        self.show_arrows = True
        self.grid: pv.ImageData | None = None     # the film: cell arrays "color", "mask"
        self.points: pv.PolyData | None = None    # arrow anchors: point array "m"
        self.film_actor = None
        self.arrow_actor = None
        self._glyph = None
        self._layers = []
        self._lut_rgba = None
        self._shape = None        # (nz, ny, nx, cell_nm) of the current actors
        self._stride = 1
        self._ruler = None
        self._legend = None
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
        self._overlay_note = None
        self._m_bar = None
        self._last_frame = None
        self._origin = (0.0, 0.0, 0.0)
        self._cell = (1.0, 1.0, 1.0)
        self._picker = vtk.vtkCellPicker()
        self._picker.SetTolerance(0.0)
        self._picker.PickFromListOn()
        self._hover_at = 0.0
        self.hover_text = ""
        self._build_ui()
        self._init_overlay_lut()
        self.plotter.iren.interactor.AddObserver("MouseMoveEvent", self._on_mouse_move)

    # ------------------------------------------------------------------ widgets
    def _build_ui(self):
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(QLabel("Colour by"))
        self.color_combo = QComboBox()
        for key, label in COLOR_MODES.items():
            self.color_combo.addItem(label, key)
        self.color_combo.setCurrentIndex(list(COLOR_MODES).index(self.color_by))
        self.color_combo.setToolTip("Colour the cells by a component of m or by the in-plane angle of (mx, my)")
        self.color_combo.currentIndexChanged.connect(self._on_color_combo)
        bar.addWidget(self.color_combo)
        self.arrows_check = QCheckBox("Arrows")
        self.arrows_check.setChecked(True)
        self.arrows_check.setToolTip(f"Arrows on a subsample of cells (at most {self.arrow_budget})")
        self.arrows_check.toggled.connect(self.set_arrows_visible)
        bar.addWidget(self.arrows_check)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Overlay"))
        self.overlay_combo = QComboBox()
        for key, label in OVERLAY_MODES.items():
            self.overlay_combo.addItem(label, key)
        self.overlay_combo.setToolTip(
            "A second colour map over the film, with its own scale bar:\n"
            "surrogate error = |H_net − H_fft| / Ms per cell (dimensionless),\n"
            "H_net / H_fft = |demag field| of the network / of the exact FFT (A/m),\n"
            "energy density (J/m³). The first three need the demag method 'neural+probe'.")
        self.overlay_combo.currentIndexChanged.connect(self._on_overlay_combo)
        for combo in (self.color_combo, self.overlay_combo):    # a narrow view stays possible
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(9)
        bar.addWidget(self.overlay_combo)
        self.log_check = QCheckBox("log")
        self.log_check.setChecked(self.overlay_log)
        self.log_check.setToolTip("Logarithmic colour scale for the overlay (the values are not changed)")
        self.log_check.toggled.connect(self.set_overlay_log)
        bar.addWidget(self.log_check)
        bar.addStretch(1)
        bar.addWidget(QLabel("Camera"))
        for name, tip in (("Top", "look down the z axis"), ("Side", "look along the y axis, from slightly above"),
                          ("3D", "isometric view"), ("Reset", "fit the sample in the view")):
            b = QPushButton(name)
            b.setToolTip(tip)
            b.setFixedWidth(46)
            b.clicked.connect(lambda _=False, n=name.lower(): self.set_camera(n))
            bar.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        # multi_samples=1: MSAA makes every software-rendered frame about 4 times slower
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=1)
        self.plotter.set_background(BACKGROUND)
        self.plotter.add_axes(color="white", line_width=2, viewport=(0.0, 0.0, 0.12, 0.16))
        lay.addWidget(self.plotter.interactor, 1)

    def _on_color_combo(self, _i):
        self.set_color_by(self.color_combo.currentData())

    def _on_overlay_combo(self, _i):
        try:
            self.set_overlay_kind(self.overlay_combo.currentData())
        except Exception as exc:  # noqa: BLE001 - a Qt slot must not raise
            self.hovered.emit(f"Overlay failed: {exc}")

    # ------------------------------------------------------------------ public
    def show_frame(self, frame, cell_nm) -> None:
        """Draw frame.m (3, nz, ny, nx) on a grid of cells cell_nm (dx, dy, dz) in nm."""
        m = frame.m
        nz, ny, nx = m.shape[1:]
        key = (nz, ny, nx, tuple(float(c) for c in cell_nm))
        if key != self._shape:
            self._build_actors(nz, ny, nx, key[3])
        self._last_m = m
        self._last_frame = frame
        self._update_arrays(m)
        if self.overlay_kind != "none":
            self._update_overlay_from_frame(frame)
        self._render()

    def set_color_by(self, mode: str) -> None:
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode {mode!r}: expected one of {', '.join(COLOR_MODES)}")
        self.color_by = mode
        _select_quietly(self.color_combo, list(COLOR_MODES).index(mode))
        if self.film_actor is not None:
            self._apply_color_mode()
            if self._last_m is not None:
                self._update_arrays(self._last_m)
            self._render()
        self.colorByChanged.emit(mode)

    # ---- the overlay
    def set_overlay_kind(self, kind: str) -> None:
        """Show the overlay `kind` ("none", "error", "H_net", "H_fft", "energy_density") from
        now on, computed from each frame (the current one at once)."""
        if kind not in OVERLAY_MODES:
            raise ValueError(f"overlay {kind!r}: expected one of {', '.join(OVERLAY_MODES)}")
        self.overlay_kind = kind
        _select_quietly(self.overlay_combo, list(OVERLAY_MODES).index(kind))
        if kind == "none":
            self._hide_overlay()
        elif self._last_frame is not None and self.grid is not None:
            self._update_overlay_from_frame(self._last_frame)
        self._render()
        self.overlayChanged.emit(kind, self.overlay_log)

    def set_overlay_log(self, log: bool) -> None:
        """Logarithmic (True) or linear colour scale for the overlay."""
        self.overlay_log = bool(log)
        if self.log_check.isChecked() != self.overlay_log:
            self.log_check.blockSignals(True)
            self.log_check.setChecked(self.overlay_log)
            self.log_check.blockSignals(False)
        if self.overlay_kind != "none" and self._last_frame is not None and self.grid is not None:
            self._update_overlay_from_frame(self._last_frame)
            self._render()
        self.overlayChanged.emit(self.overlay_kind, self.overlay_log)

    def set_overlay(self, values, clim, title: str, log: bool = False) -> None:
        """Draw `values` (nz, ny, nx; NaN = not drawn) over the film with the colour range
        clim = (lo, hi) (lo > 0 when log), a scale bar titled `title`, and a log10 or linear
        lookup table. GUI thread only; needs a frame drawn first (the grid)."""
        if self.grid is None:
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
        self.grid.cell_data["overlay"][:] = values.ravel()
        self.grid.Modified()
        lut = self._overlay_lut
        if log:
            lut.SetScaleToLog10()
        else:
            lut.SetScaleToLinear()
        lut.SetTableRange(lo, hi)
        lut.Build()
        flat = np.ascontiguousarray(values.ravel())
        colors = lut.MapScalars(numpy_to_vtk(flat, deep=0), vtk.VTK_COLOR_MODE_MAP_SCALARS, -1)
        rgba = vtk_to_numpy(colors).reshape(nz, ny, nx, 4).copy()
        rgba[..., 3] = np.where(np.isfinite(values), 255, 0)
        for k, (image, tex, actor) in enumerate(self._overlay_layers):
            image.point_data["rgba"][:] = rgba[k].reshape(-1, 4)
            image.Modified()
            tex.Modified()
            actor.SetVisibility(True)
        self._overlay_bar.SetTitle(_bar_title(title))
        self._overlay_bar.SetLabelFormat("%.1e" if log or hi < 1e-2 or hi >= 1e4 else "%.3g")
        self._overlay_bar.SetVisibility(True)
        self._overlay_note.SetVisibility(False)
        self._sync_legends()
        self._render()

    def clear_overlay(self) -> None:
        """No overlay (the same as choosing "none")."""
        self.set_overlay_kind("none")

    def overlay_values(self) -> np.ndarray | None:
        """The overlay values drawn now (a copy, (nz, ny, nx), NaN outside the magnet), or None."""
        return None if self._overlay_values is None else self._overlay_values.copy()

    @property
    def overlay_visible(self) -> bool:
        return bool(self._overlay_layers) and bool(self._overlay_layers[0][2].GetVisibility())

    def overlay_rgba(self) -> np.ndarray | None:
        """The overlay's colours as drawn (nz, ny, nx, 4) uint8 (a copy), or None when hidden."""
        if not self.overlay_visible:
            return None
        nz, ny, nx = self._shape[:3]
        return np.stack([np.array(img.point_data["rgba"]).reshape(ny, nx, 4)
                         for img, _t, _a in self._overlay_layers])

    # ---- hover
    def cell_at(self, x: int, y: int):
        """The cell (k, j, i) under the display position (x, y) (VTK pixels, origin bottom
        left), or None off the film."""
        if self.grid is None or not self._layers:
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
        f = self._last_frame
        if f is None:
            return ""
        m = f.m[:, k, j, i]
        lines = [f"cell x={i}, y={j}" + (f", z={k}" if f.m.shape[1] > 1 else "")]
        if not np.any(m):
            return lines[0] + ": vacuum"
        lines.append(f"m = ({m[0]:+.3f}, {m[1]:+.3f}, {m[2]:+.3f})")
        extra = getattr(f, "extra", None) or {}
        for name in ("H_net", "H_fft"):
            H = extra.get(name)
            if H is not None:
                h = np.asarray(H)[:, k, j, i] / 1e3
                lines.append(f"{name} = ({h[0]:+.1f}, {h[1]:+.1f}, {h[2]:+.1f}) kA/m, "
                             f"|{name}| = {np.linalg.norm(h):.1f} kA/m")
        if f.error_map is not None:
            lines.append(f"error |H_net − H_fft| / Ms = {float(f.error_map[k, j, i]):.3g}")
        elif extra.get("H_net") is None:
            lines.append("(no probe: demag method 'neural+probe' shows both fields and the error)")
        if self._overlay_values is not None and self.overlay_kind not in ("none", "error"):
            lines.append(f"{self._overlay_title.replace(' (log)', '')}: {self._overlay_values[k, j, i]:.3g}")
        return "\n".join(lines)

    def _on_mouse_move(self, iren, _event):
        try:
            now = time.perf_counter()
            if now - self._hover_at < HOVER_INTERVAL_S:
                return
            self._hover_at = now
            x, y = iren.GetEventPosition()
            cell = self.cell_at(x, y)
            text = "" if cell is None else self.cell_info(*cell)
            if text != self.hover_text:
                self.hover_text = text
                self.hovered.emit(text)
            if text:
                QToolTip.showText(QCursor.pos(), text, self.plotter.interactor)
            else:
                QToolTip.hideText()
        except Exception:  # noqa: BLE001 - hovering must never take the view down
            pass

    def set_arrows_visible(self, on: bool) -> None:
        self.show_arrows = bool(on)
        if self.arrow_actor is not None:
            self.arrow_actor.SetVisibility(self.show_arrows)
            self._render()

    def set_camera(self, preset: str) -> None:
        """'top', 'side', '3d' or 'reset'."""
        p = self.plotter
        if preset == "top":
            p.view_xy()
        elif preset == "side":
            # from -y, raised by 20 degrees: exactly edge-on, a film of a few nm is a line
            p.view_xz()
            p.camera.elevation = 20.0
            p.reset_camera()
        elif preset == "3d":
            p.view_isometric()
        elif preset == "reset":
            p.view_xy()
            p.reset_camera()
        else:
            raise ValueError(f"camera preset {preset!r}: expected top, side, 3d or reset")
        self._render()

    def color_array(self) -> np.ndarray | None:
        """The cell colour array as drawn (a copy), or None before the first frame."""
        return None if self.grid is None else np.array(self.grid.cell_data["color"])

    def arrow_vectors(self) -> np.ndarray | None:
        return None if self.points is None else np.array(self.points.point_data["m"])

    @property
    def arrow_count(self) -> int:
        return 0 if self.points is None else self.points.n_points

    def close(self) -> bool:
        """Close the VTK render window (pyvistaqt needs this before exit)."""
        try:
            self.plotter.close()
        except Exception:  # noqa: BLE001 - closing twice is harmless
            pass
        return super().close()

    # ------------------------------------------------------------------ actors (once per grid)
    def _build_actors(self, nz, ny, nx, cell_nm):
        p = self.plotter
        p.clear_actors() if hasattr(p, "clear_actors") else p.clear()
        if p.scalar_bars:
            p.remove_scalar_bar()
        dx, dy, dz = cell_nm
        origin = (-nx * dx / 2.0, -ny * dy / 2.0, 0.0)
        # The model: one ImageData, a cell per simulation cell, with the colour scalar and the
        # magnet mask as cell arrays (what the tests and the probe overlay read).
        grid = pv.ImageData(dimensions=(nx + 1, ny + 1, nz + 1), spacing=(dx, dy, dz), origin=origin)
        grid.cell_data["color"] = np.zeros(grid.n_cells, np.float32)
        grid.cell_data["mask"] = np.zeros(grid.n_cells, np.float32)
        grid.cell_data["overlay"] = np.full(grid.n_cells, np.nan)
        grid.cell_data.active_scalars_name = "color"
        self.grid = grid
        self._origin, self._cell = origin, (dx, dy, dz)
        self._overlay_values = None
        # The picture: each layer is one quad textured by an RGBA image with a pixel per cell
        # (nearest-neighbour, so cells stay sharp; alpha 0 in vacuum). Software OpenGL draws a
        # textured quad in a few ms, the same 65,536 cells as polygons in about 30 ms.
        self._layers = []
        for k in range(nz):
            self._layers.append(_textured_quad(p, nx, ny, dx, dy, (k + 1) * dz))
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
        self._shape = (nz, ny, nx, tuple(cell_nm))
        self._apply_color_mode()
        self._sync_legends()
        p.view_xy()
        p.reset_camera()

    def _stride_for_screen(self, nx, ny) -> int:
        """Every how many cells an arrow goes so that arrows are about ARROW_MIN_PX apart when
        the film fills the view from the top (about 80 % of its smaller side)."""
        w = self.plotter.interactor.width()
        h = self.plotter.interactor.height()
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
        """The overlay's scale bar and its 'waiting for a probe' note (once per grid, hidden)."""
        bar = vtk.vtkScalarBarActor()
        bar.SetLookupTable(self._overlay_lut)
        bar.SetOrientationToVertical()
        bar.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        bar.GetPositionCoordinate().SetValue(0.78, 0.16)
        bar.SetWidth(0.2)
        bar.SetHeight(0.64)
        bar.SetNumberOfLabels(5)
        bar.SetBarRatio(0.35)
        bar.UnconstrainedFontSizeOn()
        for prop, size in ((bar.GetTitleTextProperty(), 13), (bar.GetLabelTextProperty(), 12)):
            prop.SetColor(1, 1, 1)
            prop.SetFontSize(size)
            prop.SetShadow(False)
            prop.SetItalic(False)
            prop.SetBold(prop is bar.GetTitleTextProperty())
        bar.GetTitleTextProperty().SetJustificationToLeft()
        bar.SetVisibility(False)
        self.plotter.add_actor(bar, reset_camera=False, pickable=False)
        self._overlay_bar = bar
        note = vtk.vtkTextActor()
        note.GetTextProperty().SetFontSize(14)
        note.GetTextProperty().SetColor(1.0, 0.85, 0.4)
        note.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
        note.GetPositionCoordinate().SetValue(0.02, 0.93)
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
        for _img, _tex, actor in self._overlay_layers:
            actor.SetVisibility(False)
        if self._overlay_bar is not None:
            self._overlay_bar.SetVisibility(False)
        if self._overlay_note is not None:
            self._overlay_note.SetInput("\n".join(textwrap.wrap(note, 56)))
            self._overlay_note.SetVisibility(bool(note))
        self._overlay_values = None
        if self.grid is not None:
            self.grid.cell_data["overlay"][:] = np.nan
        self._sync_legends()

    def _update_overlay_from_frame(self, frame):
        extra = getattr(frame, "extra", None) or {}
        try:
            values, clim = overlay_scalars(frame, self.overlay_kind, self.overlay_log,
                                           cell_m=extra.get("cell_m"), A=extra.get("A"))
        except ValueError as exc:
            self._hide_overlay(f"{OVERLAY_MODES[self.overlay_kind]}: {exc}")
            return
        self.set_overlay(values, clim, overlay_title(self.overlay_kind, self.overlay_log), self.overlay_log)

    def _add_wheel_legend(self):
        image = _qimage_to_vtk(hsv_wheel_image(128))
        rep = vtk.vtkLogoRepresentation()
        rep.SetImage(image)
        rep.SetPosition(0.84, 0.72)
        rep.SetPosition2(0.15, 0.26)
        rep.GetImageProperty().SetOpacity(1.0)
        widget = vtk.vtkLogoWidget()
        widget.SetInteractor(self.plotter.iren.interactor)
        widget.SetRepresentation(rep)
        widget.ProcessEventsOff()
        widget.On()
        return widget

    # ------------------------------------------------------------------ per frame
    def _update_arrays(self, m: np.ndarray):
        mx, my, mz = m[0], m[1], m[2]
        mask = (mx * mx + my * my + mz * mz) > 0.25
        if self.color_by == "angle":
            color = np.degrees(np.arctan2(my, mx)) % 360.0  # 0 = +x, as on the wheel
        else:
            color = {"mx": mx, "my": my, "mz": mz}[self.color_by]
        # cell order of ImageData is x fastest, then y, then z: the same as m[c].ravel()
        self.grid.cell_data["color"][:] = color.ravel()
        self.grid.cell_data["mask"][:] = mask.ravel()
        self.grid.Modified()
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

    def _render(self):
        # Schedule one Qt paint, which renders once. plotter.render() rendered now and then
        # again in the widget's paintEvent: twice the cost (34 ms instead of 20 ms a frame).
        self.plotter.interactor.update()
        self.frames_drawn += 1
        now = time.perf_counter()
        self._render_times.append(now)
        while self._render_times and now - self._render_times[0] > 1.0:
            self._render_times.pop(0)

    @property
    def fps(self) -> float:
        """Frames drawn per second over the last second (0 when nothing was drawn lately)."""
        now = time.perf_counter()
        times = [t for t in self._render_times if now - t <= 1.0]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(now - times[0], 1e-9)
