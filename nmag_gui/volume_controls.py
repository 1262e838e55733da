"""The controls of the 3D volume view, and how it is put into a SpinView.

`install_volume_view(view)` adds a `volume_scene.VolumeLayer` to `view.scene` (it draws only
for grids of more than one layer; films keep the textured quads) and a row of controls under
the view's toolbar, shown only while a thick sample is drawn: which parts to draw (surface,
slice, isosurface, cones), the slice's normal (x, y or z; the plane widget in the view drags
and turns it), cones on the slice only, the isosurface's component and level, and a camera
that looks along the slice normal.

Example::

    layer, controls = install_volume_view(window.view)
    controls.set_slice_axis("x")
"""
from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QPushButton, QWidget

from .flow_layout import FlowLayout, group
from .volume_scene import COMPONENTS, VolumeLayer

AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


class VolumeControls(QWidget):
    """One row of controls for a VolumeLayer; `render` is called after every change."""

    def __init__(self, layer: VolumeLayer, render, parent=None):
        super().__init__(parent)
        self.layer, self._render = layer, render
        row = FlowLayout(spacing=8)          # wraps in a narrow window, like the view's toolbar
        row.setContentsMargins(4, 0, 4, 2)
        self.setLayout(row)
        parts = [QLabel("3D:")]
        self.part_checks = {}
        for part, text, tip in (("surface", "Surface", "The magnet's outer faces"),
                                ("slice", "Slice", "A plane through the sample showing the cells it cuts; "
                                                   "drag or turn it with the plane widget"),
                                ("iso", "Isosurface", "Where the chosen component equals the level"),
                                ("arrows", "Cones", "3D arrows on a subsample of cells")):
            cb = QCheckBox(text)
            cb.setToolTip(tip)
            cb.setChecked(layer.show[part])
            cb.toggled.connect(lambda on, p=part: self._guard(self._set_part, p, on))
            parts.append(cb)
            self.part_checks[part] = cb
        row.addWidget(group(*parts))
        self.axis_combo = QComboBox()
        self.axis_combo.addItems(list(AXES))
        self.axis_combo.setCurrentText("y")
        self.axis_combo.setToolTip("Normal of the slice (through its current point)")
        self.axis_combo.currentTextChanged.connect(lambda a: self._guard(self.set_slice_axis, a))

        self.on_slice_check = QCheckBox("cones on slice")
        self.on_slice_check.setChecked(layer.arrows_on_slice)
        self.on_slice_check.setToolTip("Cones only in the cells the slice cuts (else through the volume)")
        self.on_slice_check.toggled.connect(lambda on: self._guard(self._set_on_slice, on))
        row.addWidget(group(QLabel("slice normal"), self.axis_combo, self.on_slice_check))
        self.iso_combo = QComboBox()
        self.iso_combo.addItems(list(COMPONENTS))
        self.iso_combo.setCurrentText(layer.iso_component)
        self.iso_combo.setToolTip("Component of m whose level set is drawn")
        self.iso_spin = QDoubleSpinBox()
        self.iso_spin.setRange(-1.0, 1.0)
        self.iso_spin.setSingleStep(0.1)
        self.iso_spin.setDecimals(2)
        self.iso_spin.setValue(layer.iso_value)
        self.iso_spin.setToolTip("Level of the isosurface (mz = 0 shows vortex cores, skyrmion tubes, Bloch points)")
        self.iso_combo.currentTextChanged.connect(lambda _t: self._guard(self._set_iso))
        self.iso_spin.valueChanged.connect(lambda _v: self._guard(self._set_iso))
        row.addWidget(group(QLabel("isosurface"), self.iso_combo, QLabel("="), self.iso_spin))
        self.along_button = QPushButton("Along slice")
        self.along_button.setToolTip("Look at the slice face on (along its normal)")
        self.along_button.clicked.connect(lambda: self._guard(self.look_along_slice))
        row.addWidget(self.along_button)
        self.status = ""
        self.suggested_for = None       # the example whose suggested 3D view was applied

    # ---------------------------------------------------------------- commands (tests use them)
    def set_slice_axis(self, axis: str) -> None:
        if axis not in AXES:
            raise ValueError(f"slice axis {axis!r}: expected x, y or z")
        if self.axis_combo.currentText() != axis:
            self.axis_combo.blockSignals(True)
            self.axis_combo.setCurrentText(axis)
            self.axis_combo.blockSignals(False)
        self.layer.set_slice(normal=AXES[axis])
        self._sync_widget()
        self._render()

    def suggest(self, example_path) -> dict:
        """Apply the 3D view an example's catalog entry suggests (optional keys `slice` = "x",
        "y" or "z", `isosurface` = "mx"|"my"|"mz"|"none", `iso_value` = 0.0, `cones_on_slice`).
        Returns what was applied; entries without these keys change nothing."""
        from pathlib import Path
        from engine.problem import read_toml
        path = Path(example_path)
        try:
            entries = read_toml(path.parent / "catalog.toml", "examples catalog").get("example", [])
        except Exception:  # noqa: BLE001 - no catalog: nothing to suggest
            return {}
        entry = next((e for e in entries if e.get("file") == path.name), {})
        done = {}
        if entry.get("slice") in AXES:
            self.set_slice_axis(entry["slice"])
            done["slice"] = entry["slice"]
        if entry.get("isosurface") == "none":
            self.part_checks["iso"].setChecked(False)
            done["isosurface"] = "none"
        elif entry.get("isosurface") in COMPONENTS:
            self.part_checks["iso"].setChecked(True)
            self.iso_combo.blockSignals(True)
            self.iso_spin.blockSignals(True)
            self.iso_combo.setCurrentText(entry["isosurface"])
            self.iso_spin.setValue(float(entry.get("iso_value", 0.0)))
            self.iso_combo.blockSignals(False)
            self.iso_spin.blockSignals(False)
            self.layer.set_isosurface(entry["isosurface"], float(entry.get("iso_value", 0.0)))
            done["isosurface"] = (entry["isosurface"], float(entry.get("iso_value", 0.0)))
        if isinstance(entry.get("cones_on_slice"), bool):
            self.on_slice_check.setChecked(entry["cones_on_slice"])
            done["cones_on_slice"] = entry["cones_on_slice"]
        self._suggested_camera = entry.get("camera")
        self._render()
        return done

    def look_along_slice(self) -> None:
        self.layer.set_camera("slice")
        self._render()

    # ---------------------------------------------------------------- slots
    def _set_part(self, part, on):
        self.layer.set_shown(part, on)
        self._render()

    def _set_on_slice(self, on):
        self.layer.set_arrows_on_slice(on)
        self._render()

    def _set_iso(self):
        self.layer.set_isosurface(self.iso_combo.currentText(), self.iso_spin.value())
        self._render()

    def _sync_widget(self):
        w = self.layer._widget
        if w is not None:
            normal, origin = self.layer.slice_plane
            target = w.GetRepresentation() if hasattr(w, "GetRepresentation") else w
            target.SetNormal(*normal)
            target.SetOrigin(*origin)

    def _guard(self, fn, *args):
        """A Qt slot must never raise: show the reason instead."""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.status = str(e)
            self.setToolTip(f"Last error: {e}")
        return None


def install_volume_view(view):
    """Add the volume layer and its controls to a SpinView (see the module docstring).
    Returns (layer, controls); the controls show only while a thick sample is drawn."""
    layer = VolumeLayer()
    controls = VolumeControls(layer, view.scene.render)
    controls.setVisible(False)
    view.layout().insertWidget(1, controls)

    def on_build(lay):
        controls.setVisible(lay.active)
        # an example loaded from the Examples menu: apply its suggested 3D view once
        examples = getattr(view.window(), "examples", None)
        entry = getattr(examples, "entry", None)
        if lay.active and entry is not None and entry is not controls.suggested_for:
            controls.suggested_for = entry
            controls.suggest(entry.path)

    layer.on_build = on_build
    view.scene.add_layer(layer)
    view.volume_layer, view.volume_controls = layer, controls
    return layer, controls
