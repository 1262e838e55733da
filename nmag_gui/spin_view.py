"""SpinView: the Qt widget around the spin scene (nmag_gui/spin_scene.py).

The widget holds the view's controls (colour, arrows, overlay and its log switch, camera) in a
flow layout that wraps at narrow widths, the pyvistaqt QtInteractor, and hover: a cell picker
run at most 25 times a second while the mouse moves, whose text goes to a tooltip and to
`hovered`. Everything VTK (actors, arrays, lookup tables, overlay, picking) is `self.scene`, a
`SpinScene` that a test can also drive off-screen; extra layers (the 3D volume view) plug into
`view.scene.add_layer(...)`.

Example::

    view = SpinView()
    view.show_frame(frame, cell_nm=(3, 3, 3))
    view.set_color_by("angle")
    view.set_camera("top")
"""
from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QLabel, QMenu, QToolButton, QToolTip,
                               QVBoxLayout, QWidget)
from pyvistaqt import QtInteractor

from .flow_layout import FlowLayout, group
from .spin_scene import (ARROW_BUDGET, BACKGROUND, COLOR_MODES, OVERLAY_MODES, SpinScene,  # noqa: F401
                         arrow_stride, hsv_wheel_image, nice_length)

HOVER_INTERVAL_S = 0.04    # at most 25 picks a second while the mouse moves
CAMERAS = (("Top", "top", "look down the z axis"),
           ("Side", "side", "look along the y axis, from slightly above"),
           ("3D", "3d", "isometric view"),
           ("Reset", "reset", "fit the sample in the view"))


def _select_quietly(combo, index: int) -> None:
    """Show `index` in a combo box without emitting its change signals (the view set it)."""
    if combo.currentIndex() != index:
        combo.blockSignals(True)
        combo.setCurrentIndex(index)
        combo.blockSignals(False)


class SpinView(QWidget):
    """The 3D view of the magnetization with its controls. `scene` does the drawing."""

    colorByChanged = Signal(str)
    overlayChanged = Signal(str, bool)   # kind ("none", "error", ...), log
    hovered = Signal(str)                # the hover text of the cell under the mouse ("" off the film)
    frameDrawn = Signal(object)          # the Frame just drawn (after the render was scheduled)

    def __init__(self, parent=None, arrow_budget: int = ARROW_BUDGET):
        super().__init__(parent)
        self._hover_at = 0.0
        self.hover_text = ""
        self._build_ui(arrow_budget)
        self.scene = SpinScene(self.plotter, arrow_budget)
        self.scene.request_render = self.plotter.interactor.update
        self.plotter.iren.interactor.AddObserver("MouseMoveEvent", self._on_mouse_move)
        # thick samples (nz > 1): outer surface, slice, isosurface, cones (nmag_gui/volume_scene.py)
        from .volume_controls import install_volume_view
        install_volume_view(self)

    # ------------------------------------------------------------------ widgets
    def _build_ui(self, arrow_budget):
        bar = FlowLayout(spacing=8)
        bar.setContentsMargins(4, 2, 4, 2)
        self.color_combo = QComboBox()
        for key, label in COLOR_MODES.items():
            self.color_combo.addItem(label, key)
        self.color_combo.setCurrentIndex(list(COLOR_MODES).index("angle"))
        self.color_combo.setToolTip("Colour the cells by a component of m or by the in-plane angle of (mx, my)")
        self.color_combo.currentIndexChanged.connect(self._on_color_combo)
        self.arrows_check = QCheckBox("Arrows")
        self.arrows_check.setChecked(True)
        self.arrows_check.setToolTip(f"Arrows on a subsample of cells (at most {arrow_budget})")
        self.arrows_check.toggled.connect(self.set_arrows_visible)
        self.overlay_combo = QComboBox()
        for key, label in OVERLAY_MODES.items():
            self.overlay_combo.addItem(label, key)
        self.overlay_combo.setToolTip(
            "A second colour map over the film, with its own scale bar:\n"
            "surrogate error = |H_net − H_fft| / Ms per cell (dimensionless),\n"
            "H_net / H_fft = |demag field| of the network / of the exact FFT (A/m),\n"
            "energy density (J/m³), total or of one term, from the engine.\n"
            "The first three need the demag method 'neural+probe'.")
        self.overlay_combo.currentIndexChanged.connect(self._on_overlay_combo)
        self.log_check = QCheckBox("log")
        self.log_check.setChecked(True)
        self.log_check.setToolTip("Logarithmic colour scale for the overlay (the values are not changed)")
        self.log_check.toggled.connect(self.set_overlay_log)
        self.camera_button = QToolButton()
        self.camera_button.setText("Camera")
        self.camera_button.setPopupMode(QToolButton.InstantPopup)
        menu = QMenu(self.camera_button)
        self.camera_actions = {}
        for label, name, tip in CAMERAS:
            a = menu.addAction(label)
            a.setToolTip(tip)
            a.triggered.connect(lambda _=False, n=name: self.set_camera(n))
            self.camera_actions[name] = a
        self.camera_button.setMenu(menu)
        self.camera_button.setToolTip("Camera presets: top, side, 3D, reset")
        bar.addWidget(group(QLabel("Colour by"), self.color_combo))
        bar.addWidget(self.arrows_check)
        bar.addWidget(group(QLabel("Overlay"), self.overlay_combo, self.log_check))
        bar.addWidget(self.camera_button)
        controls = QWidget()
        controls.setLayout(bar)
        self.controls = controls
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(controls)
        # multi_samples=1: MSAA makes every software-rendered frame about 4 times slower
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=1)
        lay.addWidget(self.plotter.interactor, 1)

    def _on_color_combo(self, _i):
        self.set_color_by(self.color_combo.currentData())

    def _on_overlay_combo(self, _i):
        try:
            self.set_overlay_kind(self.overlay_combo.currentData())
        except Exception as exc:  # noqa: BLE001 - a Qt slot must not raise
            self.hovered.emit(f"Overlay failed: {exc}")

    def resizeEvent(self, event):
        super().resizeEvent(event)
        iw = self.plotter.interactor
        self.scene.screen_size = (max(1, iw.width()), max(1, iw.height()))

    # ------------------------------------------------------------------ public (forwards)
    def show_frame(self, frame, cell_nm) -> None:
        """Draw a Frame on a grid of cells cell_nm (dx, dy, dz) in nm."""
        iw = self.plotter.interactor
        self.scene.screen_size = (max(1, iw.width()), max(1, iw.height()))
        self.scene.show_frame(frame, cell_nm)
        self.frameDrawn.emit(frame)

    def set_color_by(self, mode: str) -> None:
        self.scene.set_color_by(mode)
        _select_quietly(self.color_combo, list(COLOR_MODES).index(mode))
        self.colorByChanged.emit(mode)

    def set_overlay_kind(self, kind: str) -> None:
        """Show the overlay `kind` (see spin_scene.OVERLAY_MODES) from now on."""
        self.scene.set_overlay_kind(kind)
        _select_quietly(self.overlay_combo, list(OVERLAY_MODES).index(kind))
        self.overlayChanged.emit(kind, self.scene.overlay_log)

    def set_overlay_log(self, log: bool) -> None:
        self.scene.set_overlay_log(log)
        if self.log_check.isChecked() != bool(log):
            self.log_check.blockSignals(True)
            self.log_check.setChecked(bool(log))
            self.log_check.blockSignals(False)
        self.overlayChanged.emit(self.scene.overlay_kind, self.scene.overlay_log)

    def set_overlay(self, values, clim, title: str, log: bool = False) -> None:
        self.scene.set_overlay(values, clim, title, log)

    def clear_overlay(self) -> None:
        self.set_overlay_kind("none")

    def set_arrows_visible(self, on: bool) -> None:
        self.scene.set_arrows_visible(on)

    def set_camera(self, preset: str) -> None:
        self.scene.set_camera(preset)

    @property
    def color_by(self) -> str:
        return self.scene.color_by

    @property
    def overlay_kind(self) -> str:
        return self.scene.overlay_kind

    @property
    def overlay_log(self) -> bool:
        return self.scene.overlay_log

    @property
    def overlay_visible(self) -> bool:
        return self.scene.overlay_visible

    def overlay_values(self):
        return self.scene.overlay_values()

    def overlay_rgba(self):
        return self.scene.overlay_rgba()

    def color_array(self):
        return self.scene.color_array()

    def arrow_vectors(self):
        return self.scene.arrow_vectors()

    @property
    def arrow_count(self) -> int:
        return self.scene.arrow_count

    def cell_at(self, x: int, y: int):
        return self.scene.cell_at(x, y)

    def cell_info(self, k: int, j: int, i: int) -> str:
        return self.scene.cell_info(k, j, i)

    @property
    def fps(self) -> float:
        return self.scene.fps

    @property
    def frames_drawn(self) -> int:
        return self.scene.frames_drawn

    # ------------------------------------------------------------------ hover
    def _on_mouse_move(self, iren, _event):
        try:
            now = time.perf_counter()
            if now - self._hover_at < HOVER_INTERVAL_S:
                return
            self._hover_at = now
            x, y = iren.GetEventPosition()
            cell = self.scene.cell_at(x, y)
            if cell is None and self.volume_layer.active:     # a thick sample: surface or slice
                cell = self.volume_layer.cell_at(x, y)
            text = "" if cell is None else self.scene.cell_info(*cell)
            if text != self.hover_text:
                self.hover_text = text
                self.hovered.emit(text)
            if text:
                QToolTip.showText(QCursor.pos(), text, self.plotter.interactor)
            else:
                QToolTip.hideText()
        except Exception:  # noqa: BLE001 - hovering must never take the view down
            pass

    def close(self) -> bool:
        """Close the VTK render window (pyvistaqt needs this before exit)."""
        try:
            self.scene.close()
            self.plotter.close()
        except Exception:  # noqa: BLE001 - closing twice is harmless
            pass
        return super().close()
