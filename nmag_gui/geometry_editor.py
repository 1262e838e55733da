"""The geometry editor: a top view of the grid where the user paints the region map.

The region map is an int16 array (nz, ny, nx): -1 is vacuum, k is `problem.materials[k]`.
Shapes are built from the engine's shape classes (in nm, origin at the grid centre, +y up on
screen) and turned into cells by `engine.geometry.shape_mask`, so the editor and the engine
agree exactly on which cells a shape covers. Gestures snap to the grid:

- rectangle, ellipse: drag from one cell to another; the shape fills (ellipse: is inscribed
  in) the box of cells between them, both included;
- ring: press on the centre cell, drag to a cell on the outer edge; the inner radius is
  `ring_ratio` times the outer one;
- polygon: click grid nodes (cell corners), close with a double click or Enter (Backspace
  drops the last point, Escape cancels);
- brush / eraser: cells within `brush_radius` cells of the cell under the pointer (the
  brush paints the current region, or empties cells in subtract mode; a stroke is one step).

Every edit is one `QUndoStack` command holding the changed cells (Ctrl+Z, Ctrl+Shift+Z or
Ctrl+Y). Wheel zooms about the pointer, the middle or right button pans.

Embedding (the main window):
    editor = GeometryEditor()
    editor.set_problem(problem)            # mesh, material names, region map
    editor.regionsChanged.connect(...)     # then editor.apply_to(problem)
    materials_panel.materialRemoved.connect(editor.remove_region)
`editor.mesh_panel` (a panels.MeshPanel) edits the grid; such an edit is undoable and
resamples the map (nearest cell), and emits `meshChanged` then `regionsChanged`.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QAction, QActionGroup, QColor, QIcon, QImage, QKeySequence, QPainter,
                           QPainterPath, QPen, QPixmap, QPolygonF, QUndoCommand, QUndoStack)
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFrame,
                               QGroupBox, QHBoxLayout, QLabel, QMessageBox, QSizePolicy, QSpinBox,
                               QToolBar, QToolButton, QVBoxLayout, QWidget)

from engine.errors import ProblemError
from engine.geometry import Ellipse, ImageMask, Polygon, Rectangle, Ring, shape_mask
from engine.problem import Mesh

from .flow_layout import FlowLayout
from .flow_layout import group as flow_group
from .mask_preview import mask_preview
from .panels import MeshPanel, REGION_COLORS, VACUUM_COLOR, region_color, swatch_icon

TOOLS = ("rectangle", "ellipse", "polygon", "ring", "brush", "eraser")
MODES = ("add", "subtract")
_BACKGROUND = QColor("#1d1f22")
_GRID_MIN_PX = 7.0          # draw grid lines when a cell is at least this many pixels wide


def _lut() -> np.ndarray:
    """uint32 0xFFRRGGBB per region index + 1 (index 0 is vacuum), cycling the palette."""
    cols = [VACUUM_COLOR] + list(REGION_COLORS)
    return np.array([QColor(c).rgb() & 0xFFFFFFFF for c in cols], dtype=np.uint32)


_LUT = _lut()


def _to_qimage(argb: np.ndarray, fmt=QImage.Format_RGB32) -> QImage:
    """A QImage owning a copy of a (rows, cols) uint32 array (row 0 at the top)."""
    a = np.ascontiguousarray(argb, dtype=np.uint32)
    h, w = a.shape
    return QImage(a.data, w, h, 4 * w, fmt).copy()


def resample_regions(regions: np.ndarray, shape_zyx) -> np.ndarray:
    """Nearest-cell resampling of a region map to another grid (the picture is stretched
    over the new grid, as ImageMask does), so refining the grid keeps the drawing."""
    idx = [((np.arange(n) + 0.5) / n * o).astype(int) for n, o in zip(shape_zyx, regions.shape)]
    return np.ascontiguousarray(regions[np.ix_(*idx)], dtype=np.int16)


def resample_regions_physical(regions: np.ndarray, old_mesh, new_mesh) -> np.ndarray:
    """The region map on a new grid, keeping the drawing's physical size and place in x and y
    (coordinates in nm from the centre of the grid): a cell of the new grid takes the region of
    the old cell under its centre, vacuum (-1) outside the old grid. So 64 -> 128 cells of the
    same size adds empty room around the drawing, and halving the cell size with twice the
    cells refines it. Layers (z) are stretched over the new nz (a film stays a film)."""
    onx, ony, onz = old_mesh.n
    odx, ody, _ = old_mesh.cell_nm
    nnx, nny, nnz = new_mesh.n
    ndx, ndy, _ = new_mesh.cell_nm
    x = (np.arange(nnx) + 0.5 - nnx / 2.0) * ndx          # new cell centres, nm
    y = (np.arange(nny) + 0.5 - nny / 2.0) * ndy
    ix = np.floor(x / odx + onx / 2.0).astype(int)
    iy = np.floor(y / ody + ony / 2.0).astype(int)
    iz = ((np.arange(nnz) + 0.5) / nnz * onz).astype(int)
    okx, oky = (ix >= 0) & (ix < onx), (iy >= 0) & (iy < ony)
    out = regions[np.ix_(iz, np.clip(iy, 0, ony - 1), np.clip(ix, 0, onx - 1))].astype(np.int16)
    out[:, ~oky, :] = -1
    out[:, :, ~okx] = -1
    return np.ascontiguousarray(out)


# ============================================================================= undo commands
class RegionEdit(QUndoCommand):
    """One edit of the map, stored as the changed cells (flat indices, old and new values)."""

    def __init__(self, editor, index, old, new, text):
        super().__init__(text)
        self._editor, self._index, self._old, self._new = editor, index, old, new

    def redo(self):
        self._editor._map.flat[self._index] = self._new
        self._editor._map_changed()

    def undo(self):
        self._editor._map.flat[self._index] = self._old
        self._editor._map_changed()


class MeshEdit(QUndoCommand):
    """A grid change: whole maps before and after (the shape changes)."""

    def __init__(self, editor, old_mesh, old_map, new_mesh, new_map):
        super().__init__("Change grid")
        self._editor = editor
        self._old, self._new = (old_mesh, old_map), (new_mesh, new_map)

    def redo(self):
        self._editor._install_mesh(*self._new)

    def undo(self):
        self._editor._install_mesh(*self._old)


# ============================================================================= canvas
class RegionCanvas(QWidget):
    """Paints one layer of the region map and forwards pointer gestures (in nm) to the editor.

    The view is a scale (pixels per nm) and the nm point shown at the widget centre; it fits
    the grid to the widget until the user zooms or pans.
    """

    def __init__(self, editor):
        super().__init__(editor)
        self._ed = editor
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMinimumSize(360, 300)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setCursor(Qt.CrossCursor)
        self._image: QImage | None = None
        self._overlay: QImage | None = None
        self._outline = None           # engine shape (or list of nm points) to outline
        self._scale = 1.0              # pixels per nm
        self._center = (0.0, 0.0)      # nm at the widget centre
        self._fit = True
        self._pan_from = None
        self._hover = None             # nm position under the pointer

    # ---------------------------------------------------------------- view transform
    def _extent(self):
        m = self._ed._mesh
        return m.n[0] * m.cell_nm[0], m.n[1] * m.cell_nm[1]

    def fit(self):
        """Show the whole grid with a small margin."""
        lx, ly = self._extent()
        w, h = max(self.width(), 1), max(self.height(), 1)
        self._scale = 0.94 * min(w / lx, h / ly)
        self._center = (0.0, 0.0)
        self._fit = True
        self.update()

    def nm_to_widget(self, x, y) -> QPointF:
        return QPointF(self.width() / 2 + (x - self._center[0]) * self._scale,
                       self.height() / 2 - (y - self._center[1]) * self._scale)

    def widget_to_nm(self, p) -> tuple:
        return (self._center[0] + (p.x() - self.width() / 2) / self._scale,
                self._center[1] - (p.y() - self.height() / 2) / self._scale)

    def cell_px(self) -> tuple:
        m = self._ed._mesh
        return m.cell_nm[0] * self._scale, m.cell_nm[1] * self._scale

    def resizeEvent(self, ev):
        if self._fit:
            self.fit()
        super().resizeEvent(ev)

    # ---------------------------------------------------------------- content
    def set_layer(self, layer: np.ndarray):
        """Show a (ny, nx) layer of region indices."""
        idx = np.where(layer < 0, 0, 1 + np.mod(layer, len(REGION_COLORS)))
        self._image = _to_qimage(_LUT[idx[::-1]])
        self.update()

    def set_preview(self, mask2d, color: QColor | None, outline):
        """Tint the cells a gesture would change and outline its shape (None clears)."""
        if mask2d is None:
            self._overlay = None
        else:
            c = QColor(color)
            argb = np.uint32((140 << 24) | (c.red() << 16) | (c.green() << 8) | c.blue())
            self._overlay = _to_qimage(np.where(mask2d[::-1], argb, np.uint32(0)),
                                       QImage.Format_ARGB32)
        self._outline = outline
        self.update()

    # ---------------------------------------------------------------- painting
    def paintEvent(self, ev):
        p = QPainter(self)
        p.fillRect(self.rect(), _BACKGROUND)
        if self._image is None:
            return
        m = self._ed._mesh
        nx, ny = m.n[0], m.n[1]
        lx, ly = self._extent()
        top_left = self.nm_to_widget(-lx / 2, ly / 2)
        cw, ch = self.cell_px()
        # only the visible cells: keeps huge zooms of big grids cheap
        i0 = max(0, int(math.floor(-top_left.x() / cw)))
        i1 = min(nx, int(math.ceil((self.width() - top_left.x()) / cw)))
        j0 = max(0, int(math.floor(-top_left.y() / ch)))          # image rows from the top
        j1 = min(ny, int(math.ceil((self.height() - top_left.y()) / ch)))
        if i1 > i0 and j1 > j0:
            src = QRectF(i0, j0, i1 - i0, j1 - j0)
            dst = QRectF(top_left.x() + i0 * cw, top_left.y() + j0 * ch, (i1 - i0) * cw, (j1 - j0) * ch)
            p.drawImage(dst, self._image, src)
            if self._overlay is not None:
                p.drawImage(dst, self._overlay, src)
            if cw >= _GRID_MIN_PX and ch >= _GRID_MIN_PX:
                p.setPen(QPen(QColor(0, 0, 0, 90), 0))
                for i in range(i0, i1 + 1):
                    x = top_left.x() + i * cw
                    p.drawLine(QPointF(x, dst.top()), QPointF(x, dst.bottom()))
                for j in range(j0, j1 + 1):
                    y = top_left.y() + j * ch
                    p.drawLine(QPointF(dst.left(), y), QPointF(dst.right(), y))
        p.setRenderHint(QPainter.Antialiasing, True)
        p.setPen(QPen(QColor("#8c939d"), 1))
        p.setBrush(Qt.NoBrush)
        p.drawRect(QRectF(top_left.x(), top_left.y(), nx * cw, ny * ch))
        self._paint_outline(p)
        self._paint_brush(p)
        self._paint_scale_bar(p)

    def _paint_outline(self, p):
        o = self._outline
        if o is None:
            return
        p.setPen(QPen(QColor(255, 255, 255, 230), 1.2, Qt.DashLine))
        p.setBrush(Qt.NoBrush)
        s = self._scale
        if isinstance(o, Rectangle):
            c = self.nm_to_widget(o.center[0] - o.size[0] / 2, o.center[1] + o.size[1] / 2)
            p.drawRect(QRectF(c.x(), c.y(), o.size[0] * s, o.size[1] * s))
        elif isinstance(o, Ellipse):
            p.drawEllipse(self.nm_to_widget(*o.center), o.radii[0] * s, o.radii[1] * s)
        elif isinstance(o, Ring):
            c = self.nm_to_widget(*o.center)
            p.drawEllipse(c, o.outer * s, o.outer * s)
            if o.inner > 0:
                p.drawEllipse(c, o.inner * s, o.inner * s)
        elif isinstance(o, (list, tuple)):   # an open polygon: its points, the last one live
            pts = [self.nm_to_widget(x, y) for x, y in o]
            p.drawPolyline(QPolygonF(pts))
            p.setPen(QPen(QColor("#ffffff"), 1))
            p.setBrush(QColor(255, 255, 255, 200))
            for q in pts[:-1]:
                p.drawEllipse(q, 2.5, 2.5)

    def _paint_brush(self, p):
        ed = self._ed
        if self._hover is None or ed._tool not in ("brush", "eraser"):
            return
        cell = ed._cell_at(*self._hover)
        cx, cy = ed._cell_center(*cell)
        r = max(ed.brush_radius, 0.5)
        dx, dy = ed._mesh.cell_nm[:2]
        p.setPen(QPen(QColor(255, 255, 255, 200), 1))
        p.setBrush(Qt.NoBrush)
        p.drawEllipse(self.nm_to_widget(cx, cy), (r + 0.5) * dx * self._scale, (r + 0.5) * dy * self._scale)

    def _paint_scale_bar(self, p):
        """A 1-2-5 scale bar of about 100 px, bottom left, with the axes' directions."""
        target = 100.0 / self._scale
        e = 10 ** math.floor(math.log10(target))
        length = min((k * e for k in (1, 2, 5, 10)), key=lambda v: abs(v - target))
        px = length * self._scale
        x0, y0 = 14.0, self.height() - 16.0
        p.setPen(QPen(QColor("#e6e6e6"), 2))
        p.drawLine(QPointF(x0, y0), QPointF(x0 + px, y0))
        p.drawLine(QPointF(x0, y0 - 4), QPointF(x0, y0 + 4))
        p.drawLine(QPointF(x0 + px, y0 - 4), QPointF(x0 + px, y0 + 4))
        p.drawText(QPointF(x0 + px / 2 - 14, y0 - 7), f"{length:g} nm")
        # axes: x to the right, y up
        ax, ay = self.width() - 58.0, self.height() - 16.0
        p.setPen(QPen(QColor("#e6e6e6"), 1.5))
        p.drawLine(QPointF(ax, ay), QPointF(ax + 26, ay))
        p.drawLine(QPointF(ax, ay), QPointF(ax, ay - 26))
        p.drawText(QPointF(ax + 30, ay + 4), "x")
        p.drawText(QPointF(ax - 3, ay - 30), "y")

    # ---------------------------------------------------------------- input
    def mousePressEvent(self, ev):
        if ev.button() in (Qt.MiddleButton, Qt.RightButton):
            self._pan_from = (ev.position(), self._center)
            self.setCursor(Qt.ClosedHandCursor)
            return
        if ev.button() == Qt.LeftButton:
            self._ed._guard(self._ed._press, *self.widget_to_nm(ev.position()), ev.modifiers())

    def mouseMoveEvent(self, ev):
        pos = ev.position()
        if self._pan_from is not None:
            start, c = self._pan_from
            d = pos - start
            self._center = (c[0] - d.x() / self._scale, c[1] + d.y() / self._scale)
            self._fit = False
            self.update()
            return
        self._hover = self.widget_to_nm(pos)
        self._ed._guard(self._ed._move, *self._hover, bool(ev.buttons() & Qt.LeftButton))
        self.update()

    def mouseReleaseEvent(self, ev):
        if self._pan_from is not None and ev.button() in (Qt.MiddleButton, Qt.RightButton):
            self._pan_from = None
            self.setCursor(Qt.CrossCursor)
            return
        if ev.button() == Qt.LeftButton:
            self._ed._guard(self._ed._release, *self.widget_to_nm(ev.position()))

    def mouseDoubleClickEvent(self, ev):
        if ev.button() == Qt.LeftButton:
            self._ed._guard(self._ed._double_click, *self.widget_to_nm(ev.position()))

    def leaveEvent(self, ev):
        self._hover = None
        self._ed._guard(self._ed._hover_left)
        self.update()

    def wheelEvent(self, ev):
        steps = ev.angleDelta().y() / 120.0
        if not steps:
            return
        pos = ev.position()
        x, y = self.widget_to_nm(pos)
        lx, ly = self._extent()
        fit_scale = 0.94 * min(self.width() / lx, self.height() / ly)
        max_scale = 120.0 / min(self._ed._mesh.cell_nm[:2])      # a cell at most ~120 px
        self._scale = min(max(self._scale * 1.25 ** steps, 0.5 * fit_scale), max(max_scale, fit_scale))
        # keep the point under the pointer where it is
        self._center = (x - (pos.x() - self.width() / 2) / self._scale,
                        y + (pos.y() - self.height() / 2) / self._scale)
        self._fit = False
        self.update()

    def keyPressEvent(self, ev):
        if not self._ed._guard(self._ed._key, ev.key()):
            super().keyPressEvent(ev)


# ============================================================================= icons
def _tool_icon(name: str) -> QIcon:
    """Small line-art icons drawn here (no image resources to ship)."""
    pm = QPixmap(40, 40)
    pm.fill(Qt.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.Antialiasing, True)
    ink = QColor("#5b8fd1")
    p.setPen(QPen(ink, 3))
    p.setBrush(QColor(91, 143, 209, 70))
    if name == "rectangle":
        p.drawRect(6, 10, 28, 20)
    elif name == "ellipse":
        p.drawEllipse(4, 9, 32, 22)
    elif name == "polygon":
        p.drawPolygon(QPolygonF([QPointF(6, 30), QPointF(12, 7), QPointF(34, 12),
                                 QPointF(28, 33)]))
    elif name == "ring":
        path = QPainterPath()
        path.addEllipse(QPointF(20, 20), 15, 15)
        path.addEllipse(QPointF(20, 20), 7, 7)
        p.drawPath(path)
    elif name == "brush":
        p.setBrush(ink)
        p.drawEllipse(QPointF(20, 20), 9, 9)
    elif name == "eraser":
        p.setBrush(QColor("#d9d9d9"))
        p.setPen(QPen(QColor("#909090"), 3))
        p.translate(20, 20)
        p.rotate(-35)
        p.drawRect(-14, -8, 28, 16)
    elif name in ("add", "subtract"):
        p.setPen(QPen(QColor("#59a14f") if name == "add" else QColor("#e15759"), 5))
        p.drawLine(8, 20, 32, 20)
        if name == "add":
            p.drawLine(20, 8, 20, 32)
    p.end()
    return QIcon(pm)


# ============================================================================= the editor
class GeometryEditor(QWidget):
    """Paints the region map of a problem. See the module docstring for the gestures.

    Signals: `regionsChanged()` after every change of the map (edits, undo/redo, set_*),
    `meshChanged()` after a grid change made in `mesh_panel` (or its undo).
    """

    regionsChanged = Signal()
    meshChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._mesh = Mesh((64, 64, 1), (3.0, 3.0, 3.0))
        self._map = np.zeros((1, 64, 64), dtype=np.int16)
        self._names: list[str] = ["permalloy"]
        self._tool = "rectangle"
        self._mode = "add"
        self._region = 0
        self._layer = 0
        self.brush_radius = 2          # cells
        self.ring_ratio = 0.5          # inner / outer radius
        self._drag = None              # (start cell, current cell) of a shape drag
        self._poly: list[tuple] = []   # polygon nodes (i, j)
        self._stroke = None            # brush stroke: (map before, last cell, value)

        self.undo_stack = QUndoStack(self)
        self.canvas = RegionCanvas(self)
        self.mesh_panel = MeshPanel()
        self.mesh_panel.changed.connect(lambda: self._guard(self._on_mesh_panel))
        self._build_ui()
        self.set_mesh((64, 64, 1), (3.0, 3.0, 3.0))

    # ================================================================ public API
    def set_mesh(self, n, cell_nm):
        """Use a grid of n = (nx, ny, nz) cells of cell_nm = (dx, dy, dz) nm.

        When n changes the map is reset to a full film of region 0 (the engine's default
        geometry) and the undo history is cleared; when only the cell size changes the map
        and the history are kept. Emits regionsChanged.
        """
        mesh = Mesh(tuple(int(v) for v in n), tuple(float(v) for v in cell_nm))
        mesh.validate("mesh")
        if mesh.n != self._mesh.n or self._map.shape != mesh.shape_zyx:
            self.undo_stack.clear()
            regions = np.zeros(mesh.shape_zyx, dtype=np.int16)
        else:
            regions = self._map
        self._install_mesh(mesh, regions, emit_mesh=False)

    def set_region_map(self, arr):
        """Show a region map (nz, ny, nx) of the current grid (a (ny, nx) array is taken as
        one layer); clears the undo history. Raises ProblemError for a wrong shape or values."""
        a = np.asarray(arr)
        if a.ndim == 2:
            a = a[None]
        if a.shape != self._mesh.shape_zyx:
            raise ProblemError("region_map", f"shape {a.shape}", f"shape (nz, ny, nx) = {self._mesh.shape_zyx}")
        if a.size and a.min() < -1:
            raise ProblemError("region_map", f"value {a.min()}", "-1 (vacuum) or a material index >= 0")
        self._abort_gesture()
        self.undo_stack.clear()
        self._map = np.ascontiguousarray(a, dtype=np.int16).copy()
        self._map_changed()

    def region_map(self) -> np.ndarray:
        """A copy of the region map, int16 (nz, ny, nx)."""
        return self._map.copy()

    def mesh(self) -> Mesh:
        return Mesh(self._mesh.n, self._mesh.cell_nm)

    def set_materials(self, names):
        """Names of the materials; region k is names[k] (colours follow the index)."""
        self._names = [str(n) for n in names] or ["material"]
        cb = self.region_combo
        cb.blockSignals(True)
        cb.clear()
        for k, name in enumerate(self._names):
            cb.addItem(swatch_icon(k), f"{k}: {name}", k)
        self._region = min(self._region, len(self._names) - 1)
        cb.setCurrentIndex(self._region)
        cb.blockSignals(False)
        self._update_legend()

    def set_tool(self, name: str):
        if name not in TOOLS:
            raise ValueError(f"tool {name!r}: expected one of {', '.join(TOOLS)}")
        self._abort_gesture()
        self._tool = name
        self._tool_actions[name].setChecked(True)
        self.brush_spin.setEnabled(name in ("brush", "eraser"))
        self.ring_spin.setEnabled(name == "ring")
        self.canvas.update()

    def tool(self) -> str:
        return self._tool

    def set_mode(self, mode: str):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected 'add' or 'subtract'")
        self._mode = mode
        self._mode_actions[mode].setChecked(True)

    def mode(self) -> str:
        return self._mode

    def set_current_region(self, k: int):
        k = int(k)
        if not 0 <= k < len(self._names):
            raise ValueError(f"region {k}: expected 0..{len(self._names) - 1}")
        self._region = k
        self.region_combo.setCurrentIndex(k)

    def current_region(self) -> int:
        return self._region

    def set_layer(self, k: int):
        """Show (and edit) layer k of a multi-layer grid."""
        self.layer_spin.setValue(int(k))

    def set_all_layers(self, on: bool):
        """Edits apply to every layer (True) or only to the shown one."""
        self.all_layers_check.setChecked(bool(on))

    def set_brush_radius(self, r: int):
        self.brush_spin.setValue(int(r))

    def set_problem(self, problem):
        """Show a problem's grid, material names and regions (rasterised from its geometry
        when it has no painted map). May raise ProblemError from the geometry."""
        regions = problem.regions()
        self.mesh_panel.set_problem(problem)
        self.set_materials([m.name for m in problem.materials])
        self.set_mesh(problem.mesh.n, problem.mesh.cell_nm)
        self.set_region_map(regions)

    def apply_to(self, problem):
        """Write the grid and the painted map into a problem (the map overrides its geometry)."""
        problem.mesh = self.mesh()
        problem.region_map = self.region_map()

    def remove_region(self, k: int):
        """Material k was removed: its cells become vacuum and higher indices move down one.
        Not undoable (the material list changed under the history), so the history is cleared."""
        self._abort_gesture()
        m = self._map
        m[m == k] = -1
        m[m > k] -= 1
        self.undo_stack.clear()
        self._map_changed()

    def import_mask(self, path, threshold: float = 0.5):
        """Apply a PNG mask (dark = magnet, stretched over the grid) with the current mode and
        region. Raises ProblemError for an unreadable file."""
        mask = ImageMask(path, threshold).cell_mask(self._mesh.n[0], self._mesh.n[1])
        self._commit(mask, self._value(), f"Import mask ({self._mode})")

    def import_surface(self, path, fit: bool = True):
        """Paint the cells inside a closed surface mesh (STL, OBJ, PLY, VTK, ...; voxelised by
        ray parity) with the current mode and region, in all layers, as one undo step. With
        fit the mesh is scaled to fill the grid, else its coordinates are taken as nm."""
        from .surface_import import surface_cells
        inside = surface_cells(path, self._mesh, fit=fit)
        new = self._map.copy()
        new[inside] = self._value()
        self._push(new, f"Import mesh ({self._mode})")

    def fill_layer(self):
        """Paint every cell of the target layer(s) with the current region (add) or vacuum."""
        self._commit(np.ones(self._mesh.n[1::-1], dtype=bool), self._value(), "Fill")

    def clear_layer(self):
        self._commit(np.ones(self._mesh.n[1::-1], dtype=bool), -1, "Clear")

    # ---------------------------------------------------------------- coordinates (tests, tools)
    def cell_to_widget(self, ix: int, iy: int) -> QPoint:
        """Canvas position of the centre of cell (ix, iy); iy = 0 is the bottom row."""
        return self.canvas.nm_to_widget(*self._cell_center(ix, iy)).toPoint()

    def node_to_widget(self, i: int, j: int) -> QPoint:
        """Canvas position of grid node (i, j): the corner shared by cells (i-1..i, j-1..j)."""
        return self.canvas.nm_to_widget(*self._node_nm(i, j)).toPoint()

    def widget_to_nm(self, pos) -> tuple:
        return self.canvas.widget_to_nm(QPointF(pos))

    # ================================================================ UI
    def _build_ui(self):
        tb = QToolBar("Geometry tools")
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.toolbar = tb
        group = QActionGroup(self)
        self._tool_actions = {}
        keys = {"rectangle": "R", "ellipse": "E", "polygon": "P", "ring": "O", "brush": "B", "eraser": "X"}
        tips = {"rectangle": "Rectangle: drag from one corner cell to the opposite one",
                "ellipse": "Ellipse: drag its bounding box of cells",
                "polygon": "Polygon: click the corners, double-click or Enter to close, Esc cancels",
                "ring": "Ring: press on the centre, drag to the outer radius; inner = ratio × outer",
                "brush": "Brush: paint cells within the brush radius",
                "eraser": "Eraser: empty cells within the brush radius"}
        for name in TOOLS:
            a = QAction(_tool_icon(name), name.capitalize(), self)
            a.setCheckable(True)
            a.setShortcut(QKeySequence(keys[name]))
            a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            a.setToolTip(f"{tips[name]} ({keys[name]})")
            a.triggered.connect(lambda _c=False, n=name: self._guard(self.set_tool, n))
            group.addAction(a)
            tb.addAction(a)
            self._tool_actions[name] = a
        self._tool_actions["rectangle"].setChecked(True)
        tb.addSeparator()
        mg = QActionGroup(self)
        self._mode_actions = {}
        for mode, tip in (("add", "Shapes paint the current region"),
                          ("subtract", "Shapes cut the sample: their cells become vacuum")):
            a = QAction(_tool_icon(mode), mode.capitalize(), self)
            a.setCheckable(True)
            a.setToolTip(tip)
            a.triggered.connect(lambda _c=False, m=mode: self._guard(self.set_mode, m))
            mg.addAction(a)
            tb.addAction(a)
            self._mode_actions[mode] = a
        self._mode_actions["add"].setChecked(True)
        tb.addSeparator()
        for text, tip, slot in (("Fill", "Fill the layer with the current region", self.fill_layer),
                                ("Clear", "Empty the layer (all vacuum)", self.clear_layer),
                                ("Import mask…", "Apply a PNG mask (dark = magnet) stretched over the grid",
                                 self._import_dialog),
                                ("Import mesh…", "Fill the inside of a closed surface mesh (STL, OBJ, PLY, VTK) "
                                 "scaled to the grid, in every layer", self._import_surface_dialog)):
            a = QAction(text, self)
            a.setToolTip(tip)
            a.triggered.connect(lambda _c=False, s=slot: self._guard(s))
            tb.addAction(a)
        tb.addSeparator()
        # own actions (not createUndoAction): a fixed label, the step named in the tooltip
        undo = QAction("Undo", self)
        undo.setShortcut(QKeySequence.Undo)
        undo.triggered.connect(self.undo_stack.undo)
        self.undo_stack.canUndoChanged.connect(undo.setEnabled)
        self.undo_stack.undoTextChanged.connect(lambda t: undo.setToolTip(f"Undo {t} (Ctrl+Z)"))
        redo = QAction("Redo", self)
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        redo.triggered.connect(self.undo_stack.redo)
        self.undo_stack.canRedoChanged.connect(redo.setEnabled)
        self.undo_stack.redoTextChanged.connect(lambda t: redo.setToolTip(f"Redo {t} (Ctrl+Shift+Z, Ctrl+Y)"))
        for a in (undo, redo):
            a.setEnabled(False)
            a.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            self.addAction(a)
            tb.addAction(a)
        self.undo_action, self.redo_action = undo, redo
        fit = QAction("Fit", self)
        fit.setToolTip("Show the whole grid (F)")
        fit.setShortcut(QKeySequence("F"))
        fit.setShortcutContext(Qt.WidgetWithChildrenShortcut)
        fit.triggered.connect(lambda: self.canvas.fit())
        tb.addAction(fit)
        for a in self._tool_actions.values():
            self.addAction(a)
        self.addAction(fit)

        # options row
        self.region_combo = QComboBox()
        self.region_combo.setToolTip("Region (material) that shapes and the brush paint")
        self.region_combo.setMinimumWidth(150)
        self.region_combo.currentIndexChanged.connect(self._on_region_combo)
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(0, 200)
        self.brush_spin.setValue(self.brush_radius)
        self.brush_spin.setSuffix(" cells")
        self.brush_spin.setToolTip("Brush and eraser radius in cells (0: one cell)")
        self.brush_spin.valueChanged.connect(lambda v: setattr(self, "brush_radius", int(v)))
        self.ring_spin = QDoubleSpinBox()
        self.ring_spin.setRange(0.0, 0.95)
        self.ring_spin.setSingleStep(0.05)
        self.ring_spin.setValue(self.ring_ratio)
        self.ring_spin.setToolTip("Ring: inner radius / outer radius (0 gives a disc)")
        self.ring_spin.valueChanged.connect(lambda v: setattr(self, "ring_ratio", float(v)))
        self.layer_spin = QSpinBox()
        self.layer_spin.setToolTip("Layer (z index, 0 = bottom) shown and edited")
        self.layer_spin.valueChanged.connect(lambda v: self._guard(self._on_layer, v))
        self.all_layers_check = QCheckBox("All layers")
        self.all_layers_check.setToolTip("Edits apply to every layer, not only the one shown")
        self.layer_label = QLabel("Layer")
        # z range of the next shape (layers, both included): follows the shown layer until set
        self.z_label = QLabel("z from")
        self.z_from_spin, self.z_to_spin = QSpinBox(), QSpinBox()
        for w, tip in ((self.z_from_spin, "First layer (z index) a shape or brush paints"),
                       (self.z_to_spin, "Last layer (z index) a shape or brush paints")):
            w.setToolTip(tip + "; 'All layers' overrides")
            w.valueChanged.connect(lambda _v: self._update_z_hint())
        self.z_to_label = QLabel("to")
        # the options and the tools wrap to more rows in a narrow dock (nothing hides in an
        # overflow menu, nothing is cut off at 1024 x 700)
        opts = FlowLayout(spacing=10)
        opts.setContentsMargins(4, 0, 4, 0)
        for ws in ((QLabel("Region"), self.region_combo), (QLabel("Brush radius"), self.brush_spin),
                   (QLabel("Ring inner/outer"), self.ring_spin),
                   (self.layer_label, self.layer_spin, self.all_layers_check),
                   (self.z_label, self.z_from_spin, self.z_to_label, self.z_to_spin)):
            opts.addWidget(flow_group(*ws))
        opts_w = QWidget()
        opts_w.setLayout(opts)
        tools = FlowLayout(spacing=2)
        tools.setContentsMargins(2, 2, 2, 2)
        for a in tb.actions():
            if a.isSeparator():
                continue
            b = QToolButton()
            b.setDefaultAction(a)
            b.setAutoRaise(True)
            b.setIconSize(QSize(18, 18))
            b.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
            tools.addWidget(b)
        tools_w = QWidget()
        tools_w.setLayout(tools)
        self.tool_buttons = tools_w
        self.brush_spin.setEnabled(False)
        self.ring_spin.setEnabled(False)

        # side: grid and legend
        grid_box = QGroupBox("Grid")
        gv = QVBoxLayout(grid_box)
        gv.addWidget(self.mesh_panel)
        legend_box = QGroupBox("Regions")
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.legend.setToolTip("Cells per region, over all layers")
        lv = QVBoxLayout(legend_box)
        lv.addWidget(self.legend)
        # a small 3D picture of the whole map (thick samples only; numpy-drawn, no GL context)
        self.preview_box = QGroupBox("3D preview")
        self.preview_label = QLabel()
        self.preview_label.setAlignment(Qt.AlignCenter)
        self.preview_label.setToolTip("The sample seen from the front right and above (all layers)")
        QVBoxLayout(self.preview_box).addWidget(self.preview_label)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(120)
        self._preview_timer.timeout.connect(lambda: self._guard(self._draw_3d_preview))
        side = QVBoxLayout()
        side.addWidget(grid_box)
        side.addWidget(self.preview_box)
        side.addWidget(legend_box)
        side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setFixedWidth(250)
        self._side_w = side_w

        self.status = QLabel(" ")
        self.status.setStyleSheet("color: palette(dark); padding: 2px 4px;")
        # canvas beside the grid boxes when there is room, above them in a narrow dock
        middle = QBoxLayout(QBoxLayout.LeftToRight)
        middle.addWidget(self.canvas, 1)
        middle.addWidget(side_w)
        self._middle = middle
        self.canvas.setMinimumSize(220, 220)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(tools_w)
        lay.addWidget(opts_w)
        lay.addLayout(middle, 1)
        lay.addWidget(self.status)
        self.set_materials(self._names)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        wide = self.width() >= 560
        direction = QBoxLayout.LeftToRight if wide else QBoxLayout.TopToBottom
        if self._middle.direction() != direction:
            self._middle.setDirection(direction)
            if wide:
                self._side_w.setFixedWidth(250)
            else:
                self._side_w.setMinimumWidth(0)
                self._side_w.setMaximumWidth(16777215)

    @staticmethod
    def _sep() -> QWidget:
        s = QFrame()
        s.setFrameShape(QFrame.VLine)
        s.setFrameShadow(QFrame.Sunken)
        return s

    def _guard(self, fn, *args):
        """Run a slot body and return its result; report instead of raising (a Qt slot must
        never raise)."""
        try:
            return fn(*args)
        except ProblemError as e:
            QMessageBox.warning(self, "Geometry", str(e))
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.status.setText(f"Error: {e}")
        return None

    def _on_region_combo(self, i):
        if i >= 0:
            self._region = i

    def _on_layer(self, v):
        if self.z_from_spin.value() == self.z_to_spin.value() == self._layer:
            self.set_z_range(int(v), int(v))      # a one-layer range follows the shown layer
        self._layer = int(v)
        self.canvas.set_layer(self._map[self._layer])
        self._update_preview()

    def _import_surface_dialog(self):
        from .surface_import import FILE_FILTER
        path, _ = QFileDialog.getOpenFileName(self, "Import surface mesh", "", FILE_FILTER)
        if path:
            self.import_surface(path)

    def _import_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Import mask", "", "Images (*.png *.bmp *.jpg *.gif);;All files (*)")
        if path:
            self.import_mask(path)

    # ================================================================ state changes
    def _install_mesh(self, mesh, regions, emit_mesh=True):
        self._abort_gesture()
        self._mesh = Mesh(mesh.n, mesh.cell_nm)
        self._map = np.ascontiguousarray(regions, dtype=np.int16).copy()
        self.mesh_panel.set_mesh(mesh.n, mesh.cell_nm)
        nz = mesh.n[2]
        self.layer_spin.blockSignals(True)
        self.layer_spin.setRange(0, nz - 1)
        self._layer = min(self._layer, nz - 1)
        self.layer_spin.setValue(self._layer)
        self.layer_spin.blockSignals(False)
        for w in (self.z_from_spin, self.z_to_spin):
            w.blockSignals(True)
            w.setRange(0, nz - 1)
            w.setValue(self._layer)
            w.blockSignals(False)
        for w in (self.layer_label, self.layer_spin, self.all_layers_check, self.z_label,
                  self.z_from_spin, self.z_to_label, self.z_to_spin, self.preview_box):
            w.setVisible(nz > 1)
        self.canvas.fit()
        self._map_changed()
        if emit_mesh:
            self.meshChanged.emit()

    def _on_mesh_panel(self):
        new = self.mesh_panel.mesh()
        if new.n == self._mesh.n and new.cell_nm == self._mesh.cell_nm:
            return
        new_map = resample_regions_physical(self._map, self._mesh, new)   # same size in nm
        self.undo_stack.push(MeshEdit(self, self.mesh(), self._map.copy(), new, new_map))

    def _map_changed(self):
        self.canvas.set_layer(self._map[self._layer])
        self._update_legend()
        if self._mesh.n[2] > 1:
            self._preview_timer.start()
        self.regionsChanged.emit()

    def _update_legend(self):
        counts = np.bincount(self._map.ravel().astype(np.int64) + 1)
        rows = []
        for k in range(-1, max(len(self._names), len(counts) - 1)):
            n = int(counts[k + 1]) if k + 1 < len(counts) else 0
            if k >= len(self._names) and n == 0:
                continue
            name = "vacuum" if k < 0 else (self._names[k] if k < len(self._names) else f"region {k} (no material)")
            rows.append(f"<tr><td><span style='color:{region_color(k).name()}'>&#9632;</span></td>"
                        f"<td>{name}</td><td align='right'>&nbsp;{n:,}</td></tr>")
        self.legend.setText("<table cellspacing='2'>" + "".join(rows) + "</table>")

    # ================================================================ geometry helpers
    def _cell_center(self, ix, iy):
        (nx, ny, _), (dx, dy, _) = self._mesh.n, self._mesh.cell_nm
        return (ix + 0.5 - nx / 2) * dx, (iy + 0.5 - ny / 2) * dy

    def _node_nm(self, i, j):
        (nx, ny, _), (dx, dy, _) = self._mesh.n, self._mesh.cell_nm
        return (i - nx / 2) * dx, (j - ny / 2) * dy

    def _cell_at(self, x, y):
        (nx, ny, _), (dx, dy, _) = self._mesh.n, self._mesh.cell_nm
        return int(math.floor(x / dx + nx / 2)), int(math.floor(y / dy + ny / 2))

    def _node_at(self, x, y):
        (nx, ny, _), (dx, dy, _) = self._mesh.n, self._mesh.cell_nm
        return int(round(x / dx + nx / 2)), int(round(y / dy + ny / 2))

    def _value(self):
        return self._region if self._mode == "add" else -1

    def _layers(self):
        if self.all_layers_check.isChecked() or self._mesh.n[2] == 1:
            return range(self._mesh.n[2])
        k0, k1 = sorted((self.z_from_spin.value(), self.z_to_spin.value()))
        return range(k0, k1 + 1)

    def set_z_range(self, k0: int, k1: int):
        """Shapes and the brush paint layers k0..k1 (z indices, both included) unless 'All
        layers' is checked. A one-layer range follows the layer shown."""
        nz = self._mesh.n[2]
        for k in (k0, k1):
            if not 0 <= int(k) < nz:
                raise ProblemError("z range", int(k), f"a layer index in 0..{nz - 1}")
        self.z_from_spin.setValue(int(k0))
        self.z_to_spin.setValue(int(k1))

    def z_range(self) -> tuple:
        """(first, last) layer the next edit paints (all layers when 'All layers' is checked)."""
        ks = list(self._layers())
        return ks[0], ks[-1]

    def _update_z_hint(self):
        k0, k1 = sorted((self.z_from_spin.value(), self.z_to_spin.value()))
        dz, nz = self._mesh.cell_nm[2], self._mesh.n[2]
        z0, z1 = (k0 - nz / 2) * dz, (k1 + 1 - nz / 2) * dz
        self.z_to_spin.setToolTip(f"Last layer (z index) a shape or brush paints; now layers {k0}..{k1}, "
                                  f"z = {z0:g}..{z1:g} nm from the middle of the grid")

    def _draw_3d_preview(self):
        colors = [QColor(c).getRgb()[:3] for c in REGION_COLORS]
        rgba = mask_preview(self._map, self._mesh.cell_nm, (230, 170), colors)
        h, w = rgba.shape[:2]
        img = QImage(rgba.tobytes(), w, h, 4 * w, QImage.Format_RGBA8888).copy()
        self.preview_label.setPixmap(QPixmap.fromImage(img))

    def shape_of_drag(self, c0, c1):
        """The engine shape of a drag from cell c0 to cell c1 with the current tool (nm)."""
        dx, dy = self._mesh.cell_nm[:2]
        if self._tool == "ring":
            cx, cy = self._cell_center(*c0)
            ex, ey = self._cell_center(*c1)
            outer = math.hypot(ex - cx, ey - cy) + 0.5 * min(dx, dy)
            return Ring((cx, cy), outer, self.ring_ratio * outer)
        x0, y0 = self._node_nm(min(c0[0], c1[0]), min(c0[1], c1[1]))
        x1, y1 = self._node_nm(max(c0[0], c1[0]) + 1, max(c0[1], c1[1]) + 1)
        center, half = ((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) / 2, (y1 - y0) / 2)
        if self._tool == "ellipse":
            return Ellipse(center, half)
        return Rectangle(center, (2 * half[0], 2 * half[1]))

    def polygon_shape(self, nodes) -> Polygon:
        return Polygon(tuple(self._node_nm(i, j) for i, j in nodes))

    # ================================================================ edits
    def _commit(self, mask2d, value, text):
        """Set the cells of mask2d (ny, nx) on the target layers to value, as one undo step."""
        new = self._map.copy()
        for k in self._layers():
            new[k][mask2d] = value
        self._push(new, text)

    def _push(self, new, text):
        index = np.flatnonzero(new != self._map)
        if index.size == 0:
            return
        self.undo_stack.push(RegionEdit(self, index, self._map.flat[index].copy(),
                                        new.flat[index].copy(), text))

    def _describe(self, what):
        who = self._names[self._region] if self._mode == "add" and self._region < len(self._names) else "vacuum"
        return f"{what} ({self._mode}, {who})"

    # ---------------------------------------------------------------- gestures
    def _press(self, x, y, modifiers=None):
        self.canvas.setFocus()
        cell = self._cell_at(x, y)
        if self._tool in ("rectangle", "ellipse", "ring"):
            self._drag = (cell, cell)
        elif self._tool == "polygon":
            node = self._node_at(x, y)
            if not self._poly or node != self._poly[-1]:
                self._poly.append(node)
        else:
            value = self._region if (self._tool == "brush" and self._mode == "add") else -1
            self._stroke = (self._map.copy(), cell, value)
            self._stamp(cell, value)
        self._update_preview(x, y)

    def _move(self, x, y, dragging):
        cell = self._cell_at(x, y)
        self._show_status(cell, x, y)
        if self._drag is not None and dragging:
            self._drag = (self._drag[0], cell)
        elif self._stroke is not None and dragging:
            before, last, value = self._stroke
            n = max(abs(cell[0] - last[0]), abs(cell[1] - last[1]))
            for t in range(1, n + 1):   # every cell on the way: no gaps in a fast stroke
                self._stamp((round(last[0] + (cell[0] - last[0]) * t / n),
                             round(last[1] + (cell[1] - last[1]) * t / n)), value)
            self._stroke = (before, cell, value)
        self._update_preview(x, y)

    def _release(self, x, y):
        if self._drag is not None:
            c0, _ = self._drag
            c1 = self._cell_at(x, y)
            self._drag = None
            self.canvas.set_preview(None, None, None)
            shape = self.shape_of_drag(c0, c1)
            self._commit(shape_mask(shape, self._mesh), self._value(), self._describe(self._tool.capitalize()))
        elif self._stroke is not None:
            before, _, value = self._stroke
            self._stroke = None
            new = self._map.copy()
            self._map[...] = before      # the command applies the stroke (and undoes it)
            self._push(new, self._describe("Brush" if self._tool == "brush" else "Eraser"))
            self.canvas.set_layer(self._map[self._layer])

    def _double_click(self, x, y):
        if self._tool == "polygon":
            node = self._node_at(x, y)
            if not self._poly or node != self._poly[-1]:
                self._poly.append(node)
            self._close_polygon()

    def _key(self, key) -> bool:
        """Polygon keys; returns False when the key is not ours."""
        if self._tool != "polygon" and key != Qt.Key_Escape:
            return False
        if key in (Qt.Key_Return, Qt.Key_Enter):
            self._close_polygon()
        elif key == Qt.Key_Escape:
            self._abort_gesture()
        elif key == Qt.Key_Backspace and self._poly:
            self._poly.pop()
            self._update_preview()
        else:
            return False
        return True

    def _close_polygon(self):
        nodes = list(dict.fromkeys(self._poly))   # drop repeats, keep order
        self._poly = []
        self.canvas.set_preview(None, None, None)
        if len(nodes) >= 3:
            shape = self.polygon_shape(nodes)
            self._commit(shape_mask(shape, self._mesh), self._value(), self._describe("Polygon"))

    def _abort_gesture(self):
        if self._stroke is not None:
            self._map[...] = self._stroke[0]
            self.canvas.set_layer(self._map[self._layer])
        self._drag, self._stroke, self._poly = None, None, []
        self.canvas.set_preview(None, None, None)

    def _hover_left(self):
        self.status.setText(self._grid_text())
        if self._tool == "polygon" and self._poly:
            self._update_preview()

    def _stamp(self, cell, value):
        """Paint the cells within brush_radius cells of `cell` (a disc in cell units)."""
        r = int(self.brush_radius)
        nx, ny = self._mesh.n[0], self._mesh.n[1]
        d = np.arange(-r, r + 1)
        disc = d[:, None] ** 2 + d[None, :] ** 2 <= r * r          # [dj + r, di + r]
        x0, y0 = cell[0] - r, cell[1] - r
        cx0, cx1 = max(x0, 0), min(cell[0] + r + 1, nx)
        cy0, cy1 = max(y0, 0), min(cell[1] + r + 1, ny)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        sub = disc[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        for k in self._layers():
            self._map[k, cy0:cy1, cx0:cx1][sub] = value
        self.canvas.set_layer(self._map[self._layer])

    def _update_preview(self, x=None, y=None):
        """Show the cells the gesture in progress would change (what shape_mask says)."""
        color = region_color(self._region) if self._mode == "add" else QColor("#ff4040")
        if self._drag is not None:
            shape = self.shape_of_drag(*self._drag)
            self.canvas.set_preview(shape_mask(shape, self._mesh), color, shape)
        elif self._tool == "polygon" and self._poly:
            nodes = list(self._poly)
            if x is not None:
                nodes.append(self._node_at(x, y))
            nodes = list(dict.fromkeys(nodes))
            pts = [self._node_nm(i, j) for i, j in nodes]
            mask = shape_mask(self.polygon_shape(nodes), self._mesh) if len(nodes) >= 3 else None
            self.canvas.set_preview(mask, color, pts)
        else:
            self.canvas.set_preview(None, None, None)

    def _show_status(self, cell, x, y):
        ix, iy = cell
        nx, ny = self._mesh.n[0], self._mesh.n[1]
        text = f"x = {x:.1f} nm, y = {y:.1f} nm"
        if 0 <= ix < nx and 0 <= iy < ny:
            k = int(self._map[self._layer, iy, ix])
            name = "vacuum" if k < 0 else (self._names[k] if k < len(self._names) else f"region {k}")
            text = f"cell ({ix}, {iy})   {text}   {name}"
        self.status.setText(f"{text}      {self._grid_text()}")

    def _grid_text(self):
        (nx, ny, nz), (dx, dy, dz) = self._mesh.n, self._mesh.cell_nm
        return f"grid {nx} × {ny} × {nz} cells of {dx:g} × {dy:g} × {dz:g} nm"
