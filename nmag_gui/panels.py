"""Panels that edit the parts of an `engine.problem.Problem`, in the problem's (user) units.

Every panel follows one contract, so the main window can treat them alike:

- `set_problem(problem)` fills the widgets from the problem (emits nothing);
- `apply_to(problem)` writes the panel's values into a problem (never raises: the values
  it holds were validated when they were typed);
- `changed` (Signal) fires after each accepted edit;
- `is_valid()` is False while some field shows text the engine rejects;
- `field_widget(key)` gives the QLineEdit of a number (keys are the engine's names, a vector
  component is `name[i]`), `choice_widget(key)` the QComboBox of a choice, and `error_label`
  holds the message of the latest rejected value (empty when every field is valid).

Validation is the engine's, never a copy of its rules: a panel keeps a private *model* (a
deep copy of its part of the problem), and each keystroke is tried on a copy of the model
and checked with the engine's own `validate`/`check_number`. A rejected value leaves the
model at its last valid value and shows the `ProblemError` message: the short "expected ..."
in red under the field (with a red border), the whole message in `error_label`.
"""
from __future__ import annotations

import copy
import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QRadioButton, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)

from engine import materials as presets
from .flow_layout import FlowLayout
from engine.problem import preset
from engine.errors import ProblemError
from engine.initial_states import validate_initial
from engine.problem import (PRECISIONS, FieldSpec, Material, Mesh,
                            SolverSpec, check_number)

# ----------------------------------------------------------------------------- shared look
#: Region colours, k -> REGION_COLORS[k % len]; shared by the geometry editor and the
#: materials list so a material and its painted cells have the same colour.
REGION_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                 "#edc948", "#76b7b2", "#ff9da7", "#9c755f", "#bab0ac")
VACUUM_COLOR = "#3b3e43"
ERROR_COLOR = "#d64545"
_ERROR_BORDER = f"QLineEdit {{ border: 1px solid {ERROR_COLOR}; border-radius: 2px; padding: 1px 2px; }}"


def region_color(k: int) -> QColor:
    """Colour of region k (material index); vacuum (k < 0) is dark grey."""
    return QColor(VACUUM_COLOR if k < 0 else REGION_COLORS[k % len(REGION_COLORS)])


def swatch_icon(k: int, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(region_color(k))
    return QIcon(pm)


def _fmt(v) -> str:
    """A number as the user would type it (no float noise, no needless digits)."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return f"{float(v):.10g}"


def _parse(text: str, integer: bool = False):
    """The typed text as a number, or the stripped text itself so that the engine's check
    reports it verbatim ("abc" -> "Ms = 'abc' is not allowed: expected ...")."""
    s = text.strip()
    try:
        v = float(s)
    except ValueError:
        return s
    if integer and math.isfinite(v) and v.is_integer():
        return int(v)
    return v


class _Field:
    """One number input: its line edit, the hint label under it, and how a value reaches the
    model (`commit(model_copy, value)` sets it and runs the engine's check, raising on error)."""

    def __init__(self, key, edit, hint, commit, getter, integer, live):
        self.key, self.edit, self.hint = key, edit, hint
        self.commit, self.getter = commit, getter
        self.integer, self.live = integer, live


class ProblemPanel(QWidget):
    """Base of the panels: the model, the number fields and their validation display."""

    changed = Signal()

    def __init__(self, model, parent=None):
        super().__init__(parent)
        self._model = model
        self._fields: dict[str, _Field] = {}
        self._combos: dict[str, QComboBox] = {}
        self._errors: dict[str, tuple] = {}   # key -> (message, short), in the order they appeared
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {ERROR_COLOR};")
        self.error_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error_label.setVisible(False)

    # -------------------------------------------------------------------- public contract
    def field_widget(self, key: str) -> QLineEdit:
        """The QLineEdit of a number (engine key, vector component as `name[i]`)."""
        return self._fields[key].edit

    def choice_widget(self, key: str) -> QComboBox:
        return self._combos[key]

    def is_valid(self) -> bool:
        return not self._errors

    def error_messages(self) -> list[str]:
        """The message of every field shown in red (key, value and allowed range), oldest first."""
        return [msg for msg, _short in self._errors.values()]

    def keys(self) -> list[str]:
        return list(self._fields)

    # -------------------------------------------------------------------- building blocks
    def _number(self, key, getter, commit, tip, integer=False, live=True, hint=None) -> QLineEdit:
        """Create the line edit for one number. getter(model) -> value; commit(model, value)
        sets and validates (raising ProblemError). `live` stores on each keystroke, else on
        Enter or focus loss (the text is still checked as it is typed)."""
        edit = QLineEdit()
        edit.setObjectName(key)
        edit.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        edit.setMinimumWidth(70)
        if hint is None:
            hint = self._hint_label()
        f = _Field(key, edit, hint, commit, getter, integer, live)
        self._fields[key] = f
        allowed = self._allowed(f)
        edit.setToolTip(f"{tip}\nAllowed: {allowed}." if allowed else tip)
        edit.textEdited.connect(lambda _t, k=key: self._on_text(k, final=False))
        edit.editingFinished.connect(lambda k=key: self._on_text(k, final=True))
        return edit

    def _vector(self, key, n, getter, setter, tip, labels=("x", "y", "z"), live=True) -> QWidget:
        """n line edits for a vector `key` (components `key[i]`) sharing one hint line."""
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(1)
        row = QHBoxLayout()
        row.setSpacing(4)
        hint = self._hint_label()
        for i in range(n):
            def commit(m, val, i=i):
                vec = list(getter(m))
                vec[i] = val
                setter(m, vec)
            e = self._number(f"{key}[{i}]", lambda m, i=i: getter(m)[i], commit,
                             f"{tip} — {labels[i]} component", live=live, hint=hint)
            e.setMinimumWidth(44)        # three of them and a label fit a 280 px dock
            e.setPlaceholderText(labels[i])
            row.addWidget(e)
        v.addLayout(row)
        v.addWidget(hint)
        return box

    def _with_hint(self, edit: QLineEdit) -> QWidget:
        """A line edit with its hint label under it (for a form row)."""
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(1)
        v.addWidget(edit)
        v.addWidget(self._fields[edit.objectName()].hint)
        return box

    def _choice(self, key, items, getter, commit, tip) -> QComboBox:
        """A combo box of (label, value) items; commit(model, value) as for numbers."""
        cb = QComboBox()
        cb.setObjectName(key)
        cb.setToolTip(tip)
        _narrow_combo(cb)
        for label, value in items:
            cb.addItem(label, value)
        self._combos[key] = cb
        cb.currentIndexChanged.connect(lambda _i, k=key, c=commit: self._on_choice(k, c))
        cb._getter = getter
        return cb

    @staticmethod
    def _hint_label() -> QLabel:
        h = QLabel("")
        h.setWordWrap(True)
        h.setStyleSheet(f"color: {ERROR_COLOR}; font-size: 8pt;")
        h.setVisible(False)
        return h

    @staticmethod
    def _label(text, tip) -> QLabel:
        lab = QLabel(text)
        lab.setToolTip(tip)
        return lab

    def _allowed(self, f: _Field) -> str:
        """What the engine allows for a field, asked from the engine itself (a NaN is refused
        by every numeric check, with the allowed range in the message)."""
        try:
            f.commit(copy.deepcopy(self._model), float("nan"))
        except ProblemError as e:
            return e.allowed
        except Exception:
            return ""
        return ""

    # -------------------------------------------------------------------- edits
    def _on_text(self, key, final):
        try:
            self._try_edit(key, final)
        except Exception as e:  # a slot never raises; show what went wrong instead
            self._set_error(key, f"{key}: {e}", str(e))

    def _try_edit(self, key, final):
        f = self._fields[key]
        if not f.edit.isEnabled():
            return
        value = _parse(f.edit.text(), f.integer)
        cand = copy.deepcopy(self._model)
        try:
            f.commit(cand, value)
        except ProblemError as e:
            self._set_error(key, str(e), "expected " + e.allowed)
            return
        self._clear_error(key)
        if (f.live or final) and cand != self._model:
            self._model = cand
            self._stored(key)
            self.changed.emit()

    def _on_choice(self, key, commit):
        try:
            cb = self._combos[key]
            cand = copy.deepcopy(self._model)
            commit(cand, cb.currentData())
            if cand != self._model:
                self._model = cand
                self._stored(key)
                self.changed.emit()
        except ProblemError as e:
            self._set_error(key, str(e), "expected " + e.allowed)
        except Exception as e:
            self._set_error(key, f"{key}: {e}", str(e))

    def _stored(self, key):
        """Hook: the model took a new value for `key` (refresh dependent widgets)."""

    # -------------------------------------------------------------------- error display
    def _set_error(self, key, message, short):
        self._errors.pop(key, None)
        self._errors[key] = (message, short)
        f = self._fields.get(key)
        if f is not None:
            f.edit.setStyleSheet(_ERROR_BORDER)
            f.hint.setText(short)
            f.hint.setVisible(True)
        self._show_errors()

    def _clear_error(self, key):
        self._errors.pop(key, None)
        f = self._fields.get(key)
        if f is not None:
            f.edit.setStyleSheet("")
            # the hint may be shared (vector): keep it if a sibling still has an error
            sib = [k for k, g in self._fields.items() if g.hint is f.hint and k in self._errors]
            if sib:
                f.hint.setText(self._errors[sib[-1]][1])
            else:
                f.hint.setText("")
                f.hint.setVisible(False)
        self._show_errors()

    def _show_errors(self):
        msg = next(reversed(self._errors.values()))[0] if self._errors else ""
        self.error_label.setText(msg)
        self.error_label.setVisible(bool(msg))

    def _fill(self):
        """Write the model into every field and forget all errors."""
        for key, f in self._fields.items():
            try:
                f.edit.setText(_fmt(f.getter(self._model)))
            except Exception:
                f.edit.setText("")
            f.edit.setStyleSheet("")
            f.hint.setText("")
            f.hint.setVisible(False)
        for key, cb in self._combos.items():
            cb.blockSignals(True)
            i = cb.findData(cb._getter(self._model))
            if i >= 0:
                cb.setCurrentIndex(i)
            cb.blockSignals(False)
        self._errors.clear()
        self._show_errors()


def _wrapped(label: QLabel) -> QLabel:
    label.setWordWrap(True)
    return label


def _narrow_combo(cb: QComboBox, chars: int = 8) -> None:
    """Let a combo box shrink below its longest item (the shown text is cut, the list still
    shows every item whole): a long item ('RK45 (Dormand–Prince, adaptive)') made its panel
    wider than the dock at 1024 px, and the number fields beside it ran off the right edge."""
    cb.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    cb.setMinimumContentsLength(chars)


def _fit_stack(stack: QStackedWidget, index: int):
    """Show page `index` and size the stack to it (not to its largest page)."""
    for i in range(stack.count()):
        # a hidden page asks for no room, neither height nor width: the widest page (a
        # sentence, a vector row) made the panel wider than the dock at 1024 px
        policy = QSizePolicy.Preferred if i == index else QSizePolicy.Ignored
        stack.widget(i).setSizePolicy(policy, policy)
    stack.setCurrentIndex(index)
    stack.updateGeometry()       # the parent layout gives it its size (adjustSize left a page wider than the panel)


def _form() -> QFormLayout:
    f = QFormLayout()
    f.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
    f.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    f.setHorizontalSpacing(8)
    f.setVerticalSpacing(4)
    return f


# ============================================================================= mesh
class MeshPanel(ProblemPanel):
    """The grid: nx, ny, nz cells of dx, dy, dz nm. A value is stored when the user presses
    Enter or leaves the field (a grid change redraws the geometry, so not on every key)."""

    def __init__(self, parent=None):
        super().__init__(Mesh(), parent)
        form = _form()
        tips = {"nx": "number of cells along x", "ny": "number of cells along y",
                "nz": "number of cells along z (layers)"}
        for i, a in enumerate("xyz"):
            def commit(m, v, i=i):
                n = list(m.n)
                n[i] = v
                m.n = tuple(n)
                m.validate("mesh")
            e = self._number(f"n{a}", lambda m, i=i: m.n[i], commit,
                             f"n{a}: {tips['n' + a]}", integer=True, live=False)
            form.addRow(self._label(f"n{a} (cells)", e.toolTip()), self._with_hint(e))
        for i, a in enumerate("xyz"):
            def commit(m, v, i=i):
                c = list(m.cell_nm)
                c[i] = v
                m.cell_nm = tuple(c)
                m.validate("mesh")
            e = self._number(f"d{a}", lambda m, i=i: m.cell_nm[i], commit,
                             f"d{a}: cell size along {a} in nm", live=False)
            form.addRow(self._label(f"d{a} (nm)", e.toolTip()), self._with_hint(e))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(mid);")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addWidget(self.summary)
        lay.addWidget(self.error_label)
        self._fill()

    def set_mesh(self, n, cell_nm):
        """Show a grid (n = (nx, ny, nz) cells, cell_nm = (dx, dy, dz) nm); emits nothing."""
        self._model = Mesh(tuple(int(v) for v in n), tuple(float(v) for v in cell_nm))
        self._fill()

    def mesh(self) -> Mesh:
        return copy.deepcopy(self._model)

    def set_problem(self, problem):
        self.set_mesh(problem.mesh.n, problem.mesh.cell_nm)

    def apply_to(self, problem):
        problem.mesh = copy.deepcopy(self._model)

    def _fill(self):
        super()._fill()
        self._update_summary()

    def _stored(self, key):
        self._update_summary()

    def _update_summary(self):
        m = self._model
        ext = [n * d for n, d in zip(m.n, m.cell_nm)]
        self.summary.setText(f"{m.n[0] * m.n[1] * m.n[2]:,} cells, "
                             f"{ext[0]:g} × {ext[1]:g} × {ext[2]:g} nm")


# ============================================================================= materials
def _validate_materials(mats):
    """The engine's material rules: each Material.validate, and names not used twice (the
    check Problem.validate makes, with the same key and message)."""
    names = []
    for i, m in enumerate(mats):
        m.validate(f"materials[{i}]")
        if m.name in names:
            raise ProblemError(f"materials[{i}].name", m.name, "a name not used by another material")
        names.append(m.name)


class MaterialsPanel(ProblemPanel):
    """The list of materials and every constant of the selected one (SI units).

    Region k of the geometry is `materials[k]`: removing a material emits `materialRemoved(k)`
    before `changed`, so the owner can remap the region map (GeometryEditor.remove_region).
    """

    materialRemoved = Signal(int)

    _SCALARS = (  # key, label, tooltip
        ("Ms", "Ms (A/m)", "Saturation magnetisation Ms, in A/m"),
        ("A", "A (J/m)", "Exchange stiffness A, in J/m"),
        ("alpha", "α (damping)", "Gilbert damping α (dimensionless)"),
        ("Ku", "Ku (J/m³)", "Uniaxial anisotropy constant Ku, in J/m³ (> 0: easy axis, < 0: easy plane)"),
        ("Kc1", "Kc1 (J/m³)", "First cubic anisotropy constant Kc1, in J/m³"),
        ("D", "D (J/m²)", "Interfacial DMI constant D, in J/m²"),
    )

    def __init__(self, parent=None):
        super().__init__([Material()], parent)
        self._current = 0
        # list and its buttons
        self.list = QListWidget()
        self.list.setToolTip("Materials; region k of the geometry uses material k (its colour)")
        self.list.setMaximumHeight(110)
        self.list.currentRowChanged.connect(self._on_row)
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add a material (permalloy values, a new name)")
        self.add_button.clicked.connect(self._safe(self.add_material))
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected material; its cells become vacuum")
        self.remove_button.clicked.connect(self._safe(lambda: self.remove_material(self._current)))
        self.preset_combo = QComboBox()
        _narrow_combo(self.preset_combo)
        self.preset_combo.addItem("Apply preset…", None)
        self.preset_combo.setItemData(0, "Fill the selected material with a preset's values", Qt.ToolTipRole)
        for name in presets.preset_names():
            info = presets.preset_info(name)
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1,
                                          f"{info['description']}\nSource: {info['source']}", Qt.ToolTipRole)
        self.preset_combo.setToolTip("Fill the selected material with a preset's values (SI units)")
        self.preset_combo.currentIndexChanged.connect(self._on_preset)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)

        # the constants of the selected material
        def attr(name):
            def commit(mats, v):
                setattr(mats[self._current], name, v)
                _validate_materials(mats)
            return (lambda mats: getattr(mats[self._current], name)), commit

        name_edit = self._name_field()
        ed = {}
        for key, label, tip in self._SCALARS:
            g, c = attr(key)
            ed[key] = (label, self._number(key, g, c, tip))

        def vec(name, tip):
            def setter(mats, v):
                setattr(mats[self._current], name, tuple(v))
                _validate_materials(mats)
            return self._vector(name, 3, lambda mats: getattr(mats[self._current], name), setter, tip)

        general = QGroupBox("Magnetisation and exchange")
        f = _form()
        f.addRow(self._label("Name", name_edit.toolTip()), self._with_hint(name_edit))
        for k in ("Ms", "A", "alpha"):
            f.addRow(self._label(ed[k][0], ed[k][1].toolTip()), self._with_hint(ed[k][1]))
        general.setLayout(f)
        uni = QGroupBox("Uniaxial anisotropy")
        f = _form()
        f.addRow(self._label(ed["Ku"][0], ed["Ku"][1].toolTip()), self._with_hint(ed["Ku"][1]))
        f.addRow(self._label("Axis", "Easy axis (x, y, z); need not be unit length"),
                 vec("Ku_axis", "Uniaxial easy axis (any length, not zero)"))
        uni.setLayout(f)
        cub = QGroupBox("Cubic anisotropy")
        f = _form()
        f.addRow(self._label(ed["Kc1"][0], ed["Kc1"][1].toolTip()), self._with_hint(ed["Kc1"][1]))
        f.addRow(self._label("Axis 1", "First cubic axis (x, y, z)"),
                 vec("Kc_axis1", "First cubic axis (any length, not zero)"))
        f.addRow(self._label("Axis 2", "Second cubic axis, perpendicular to axis 1"),
                 vec("Kc_axis2", "Second cubic axis, perpendicular to axis 1"))
        cub.setLayout(f)
        dmi = QGroupBox("Interfacial DMI")
        f = _form()
        f.addRow(self._label(ed["D"][0], ed["D"][1].toolTip()), self._with_hint(ed["D"][1]))
        dmi.setLayout(f)

        for g in (general, uni, cub, dmi):   # one label column width across the groups
            form = g.layout()
            for row in range(form.rowCount()):
                item = form.itemAt(row, QFormLayout.LabelRole)
                if item is not None and item.widget() is not None:
                    item.widget().setMinimumWidth(72)
                    item.widget().setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.list)
        lay.addLayout(buttons)
        prow = QHBoxLayout()
        prow.addWidget(QLabel("Preset"))
        prow.addWidget(self.preset_combo, 1)
        lay.addLayout(prow)
        for g in (general, uni, cub, dmi):
            lay.addWidget(g)
        lay.addWidget(self.error_label)
        lay.addStretch(1)
        self._rebuild_list()
        self._fill()

    def _name_field(self) -> QLineEdit:
        def commit(mats, v):
            mats[self._current].name = v if isinstance(v, str) else _fmt(v)
            _validate_materials(mats)
        e = self._number("name", lambda mats: mats[self._current].name, commit,
                         "Material name (unique); regions and problem files refer to it")
        e.setAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        return e

    @staticmethod
    def _safe(fn):
        def slot(*_a):
            try:
                fn()
            except Exception as e:  # never raise from a slot
                print(f"MaterialsPanel: {e}")
        return slot

    # -------------------------------------------------------------------- contract
    def set_problem(self, problem):
        self._model = copy.deepcopy(list(problem.materials)) or [Material()]
        self._current = min(self._current, len(self._model) - 1)
        self._rebuild_list()
        self._fill()

    def apply_to(self, problem):
        problem.materials = copy.deepcopy(self._model)

    def names(self) -> list[str]:
        return [m.name for m in self._model]

    def current_index(self) -> int:
        return self._current

    def set_current_index(self, k: int):
        self.list.setCurrentRow(int(k))

    # -------------------------------------------------------------------- list edits
    def add_material(self):
        names = self.names()
        i = len(names) + 1
        while f"material {i}" in names:
            i += 1
        self._model.append(Material(name=f"material {i}"))
        self._rebuild_list()
        self.list.setCurrentRow(len(self._model) - 1)
        self.changed.emit()

    def remove_material(self, k: int):
        if len(self._model) <= 1 or not 0 <= k < len(self._model):
            return
        del self._model[k]
        self._current = min(k, len(self._model) - 1)
        self._rebuild_list()
        self._fill()
        self.materialRemoved.emit(k)
        self.changed.emit()

    def apply_preset(self, name: str):
        """Fill the selected material with a preset's constants. The material takes the
        preset's name when its own is a preset name or "material N" and the name is free."""
        p = preset(name)
        cur = self._model[self._current]
        others = [m.name for i, m in enumerate(self._model) if i != self._current]
        generic = cur.name in presets.preset_names() or cur.name.startswith("material")
        p.name = name if (generic and name not in others) else cur.name
        cand = copy.deepcopy(self._model)
        cand[self._current] = p
        _validate_materials(cand)
        self._model = cand
        self._rebuild_list()
        self._fill()
        self.changed.emit()

    def _on_preset(self, index):
        name = self.preset_combo.itemData(index)
        if name is None:
            return
        try:
            self.apply_preset(name)
        except ProblemError as e:
            self.error_label.setText(str(e))
            self.error_label.setVisible(True)
        except Exception as e:
            print(f"MaterialsPanel: {e}")
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(0)
        self.preset_combo.blockSignals(False)

    def _on_row(self, row):
        if 0 <= row < len(self._model) and row != self._current:
            self._current = row
            self._fill()

    def _rebuild_list(self):
        self.list.blockSignals(True)
        self.list.clear()
        for k, m in enumerate(self._model):
            it = QListWidgetItem(swatch_icon(k), f"{k}: {m.name}")
            it.setToolTip(f"Region {k}: {m.name}, Ms = {m.Ms:g} A/m")
            self.list.addItem(it)
        self.list.setCurrentRow(self._current)
        self.list.blockSignals(False)
        self.remove_button.setEnabled(len(self._model) > 1)

    def _stored(self, key):
        if key == "name":
            it = self.list.item(self._current)
            if it is not None:
                it.setText(f"{self._current}: {self._model[self._current].name}")


# ============================================================================= field
_AC_DEFAULTS = {
    "sine": {"amplitude_mT": [0.0, 0.0, 1.0], "frequency_GHz": 10.0, "phase_deg": 0.0},
    "pulse": {"amplitude_mT": [0.0, 0.0, 10.0], "start_ns": 0.0, "width_ns": 0.1},
    "ramp": {"to_mT": [0.0, 0.0, 100.0], "duration_ns": 1.0},
}


def _polar_of(b):
    """(|B|, polar angle from +z, azimuth from +x) in (mT, deg, deg) of a vector in mT."""
    bx, by, bz = (float(v) for v in b)
    mag = math.sqrt(bx * bx + by * by + bz * bz)
    if mag == 0.0:
        return 0.0, 0.0, 0.0
    theta = math.degrees(math.acos(max(-1.0, min(1.0, bz / mag))))
    phi = math.degrees(math.atan2(by, bx)) if (bx or by) else 0.0
    return mag, theta, phi


def _vector_of(mag, theta, phi):
    """The vector (mT) of |B|, polar and azimuth angles (deg); float noise below 1e-12 |B| is zeroed."""
    t, p = math.radians(theta), math.radians(phi)
    v = [mag * math.sin(t) * math.cos(p), mag * math.sin(t) * math.sin(p), mag * math.cos(t)]
    return [0.0 if abs(c) < 1e-12 * max(mag, 1e-300) else float(f"{c:.12g}") for c in v]


class FieldPanel(ProblemPanel):
    """Applied field: the static B in mT (vector or magnitude + angles, kept consistent) and
    the time-dependent part of engine.problem.FieldSpec.ac (none, sine, pulse, ramp)."""

    def __init__(self, parent=None):
        model = {"B": [0.0, 0.0, 0.0], "polar": [0.0, 0.0, 0.0], "kind": "none",
                 **copy.deepcopy(_AC_DEFAULTS)}
        super().__init__(model, parent)

        # static part: two representations of one vector
        self.cartesian_button = QRadioButton("Vector (x, y, z)")
        self.polar_button = QRadioButton("Magnitude and angles")
        for b, tip in ((self.cartesian_button, "Enter B as components Bx, By, Bz in mT"),
                       (self.polar_button, "Enter B as |B| in mT, polar angle θ from +z and azimuth φ from +x in degrees")):
            b.setToolTip(tip)
        grp = QButtonGroup(self)
        grp.addButton(self.cartesian_button)
        grp.addButton(self.polar_button)
        self.cartesian_button.setChecked(True)
        self.cartesian_button.toggled.connect(self._on_representation)
        self.static_stack = QStackedWidget()
        cart = QWidget()
        f = _form()
        f.setContentsMargins(0, 0, 0, 0)
        f.addRow(self._label("B (mT)", "Static applied field μ0H in mT"),
                 self._vector("B_mT", 3, lambda m: m["B"], self._set_cartesian, "Static field B in mT"))
        cart.setLayout(f)
        pol = QWidget()
        f = _form()
        f.setContentsMargins(0, 0, 0, 0)
        for key, i, label, tip, lo, hi in (
                ("B_magnitude_mT", 0, "|B| (mT)", "Magnitude of the static field in mT", 0.0, 1e5 * math.sqrt(3)),
                ("B_theta_deg", 1, "θ (deg)", "Polar angle of B from +z in degrees", 0.0, 180.0),
                ("B_phi_deg", 2, "φ (deg)", "Azimuth of B from +x towards +y in degrees", -360.0, 360.0)):
            def commit(m, v, i=i, key=key, lo=lo, hi=hi):
                pol_ = list(m["polar"])
                pol_[i] = check_number(f"field.{key}", v, lo, hi)
                self._set_polar(m, pol_)
            e = self._number(key, lambda m, i=i: m["polar"][i], commit, tip)
            f.addRow(self._label(label, tip), self._with_hint(e))
        pol.setLayout(f)
        self.static_stack.addWidget(cart)
        self.static_stack.addWidget(pol)

        static = QGroupBox("Static field")
        sv = QVBoxLayout(static)
        rb = FlowLayout(spacing=8)        # the two choices wrap to two rows in a narrow dock
        rb.addWidget(self.cartesian_button)
        rb.addWidget(self.polar_button)
        sv.addLayout(rb)
        sv.addWidget(self.static_stack)

        # time-dependent part
        kinds = [("none", "none"), ("sine: B_ac sin(2πft + φ)", "sine"),
                 ("pulse: B_ac for t in [start, start + width)", "pulse"),
                 ("ramp: linear from B to B_end", "ramp")]
        self.ac_combo = self._choice("ac.kind", kinds, lambda m: m["kind"], self._set_kind,
                                     "Time-dependent part added to the static field")
        self.ac_stack = QStackedWidget()
        self.ac_stack.addWidget(QLabel("No time-dependent field."))
        self._ac_pages = {"none": 0}
        for kind, rows in (
                ("sine", (("amplitude_mT", "Amplitude (mT)", "Amplitude vector of the sine in mT"),
                          ("frequency_GHz", "Frequency (GHz)", "Frequency f in GHz"),
                          ("phase_deg", "Phase (deg)", "Phase φ in degrees"))),
                ("pulse", (("amplitude_mT", "Amplitude (mT)", "Field added during the pulse, in mT"),
                           ("start_ns", "Start (ns)", "Start time of the pulse in ns"),
                           ("width_ns", "Width (ns)", "Duration of the pulse in ns"))),
                ("ramp", (("to_mT", "B_end (mT)", "Field at the end of the ramp, in mT"),
                          ("duration_ns", "Duration (ns)", "Ramp duration in ns; B stays at B_end afterwards")))):
            page = QWidget()
            f = _form()
            f.setContentsMargins(0, 0, 0, 0)
            for pk, label, tip in rows:
                if pk.endswith("_mT"):
                    w = self._vector(f"{kind}.{pk}", 3, lambda m, k=kind, p=pk: m[k][p],
                                     lambda m, v, k=kind, p=pk: self._set_ac(m, k, p, v), tip)
                else:
                    e = self._number(f"{kind}.{pk}", lambda m, k=kind, p=pk: m[k][p],
                                     lambda m, v, k=kind, p=pk: self._set_ac(m, k, p, v), tip)
                    w = self._with_hint(e)
                f.addRow(self._label(label, tip), w)
            page.setLayout(f)
            self._ac_pages[kind] = self.ac_stack.addWidget(page)
        ac = QGroupBox("Time-dependent field")
        av = QVBoxLayout(ac)
        kf = _form()
        kf.setContentsMargins(0, 0, 0, 0)
        kf.addRow(self._label("Kind", self.ac_combo.toolTip()), self.ac_combo)
        av.addLayout(kf)
        av.addWidget(self.ac_stack)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(static)
        lay.addWidget(ac)
        lay.addWidget(self.error_label)
        lay.addStretch(1)
        self._fill()

    # keys of the time-dependent fields are "<kind>.<param>", e.g. "sine.frequency_GHz";
    # field_widget also accepts the bare engine name of the shown kind ("frequency_GHz").
    def field_widget(self, key):
        if key not in self._fields:
            key = f"{self._model['kind']}.{key}"
        return super().field_widget(key)

    # -------------------------------------------------------------------- model updates
    @staticmethod
    def _validate(m, kind=None):
        kind = kind or m["kind"]
        ac = {"kind": kind, **(copy.deepcopy(m[kind]) if kind != "none" else {})}
        FieldSpec(tuple(m["B"]), ac).validate("field")

    def _set_cartesian(self, m, vec):
        m["B"] = list(vec)
        self._validate(m, "none")
        m["B"] = [float(v) for v in m["B"]]
        m["polar"] = list(_polar_of(m["B"]))

    def _set_polar(self, m, pol):
        m["polar"] = list(pol)
        m["B"] = _vector_of(*pol)
        self._validate(m, "none")

    def _set_ac(self, m, kind, param, value):
        m[kind][param] = value
        ac = {"kind": kind, **copy.deepcopy(m[kind])}
        spec = FieldSpec(tuple(m["B"]), ac)
        spec.validate("field")
        m[kind] = {k: v for k, v in spec.ac.items() if k != "kind"}

    def _set_kind(self, m, kind):
        m["kind"] = kind
        if kind != "none":
            self._validate(m, kind)

    def _stored(self, key):
        # keep the other representation of B in step (not the field being typed in)
        if key.startswith("B_mT"):
            self._refresh(("B_magnitude_mT", "B_theta_deg", "B_phi_deg"))
        elif key.startswith("B_"):
            self._refresh(tuple(f"B_mT[{i}]" for i in range(3)))
        if key == "ac.kind":
            _fit_stack(self.ac_stack, self._ac_pages[self._model["kind"]])

    def _refresh(self, keys):
        for k in keys:
            f = self._fields[k]
            f.edit.setText(_fmt(f.getter(self._model)))
            self._clear_error(k)

    def _on_representation(self, cartesian):
        _fit_stack(self.static_stack, 0 if cartesian else 1)

    def _fill(self):
        super()._fill()
        _fit_stack(self.ac_stack, self._ac_pages[self._model["kind"]])
        _fit_stack(self.static_stack, self.static_stack.currentIndex())

    # -------------------------------------------------------------------- contract
    def set_problem(self, problem):
        f = problem.field
        m = {"B": [float(v) for v in f.B_mT], "kind": f.ac.get("kind", "none"),
             **copy.deepcopy(_AC_DEFAULTS)}
        m["polar"] = list(_polar_of(m["B"]))
        if m["kind"] in _AC_DEFAULTS:
            m[m["kind"]].update({k: copy.deepcopy(v) for k, v in f.ac.items() if k != "kind"})
        self._model = m
        self._fill()

    def apply_to(self, problem):
        m = self._model
        ac = {"kind": m["kind"]}
        if m["kind"] != "none":
            ac.update(copy.deepcopy(m[m["kind"]]))
        problem.field = FieldSpec(tuple(float(v) for v in m["B"]), ac)


# ============================================================================= initial state
_INITIAL_DEFAULTS = {
    "uniform": {"direction": [1.0, 0.0, 0.0]},
    "random": {"seed": 0},
    "vortex": {"chirality": 1, "polarity": 1, "core_nm": 10.0, "center_nm": [0.0, 0.0]},
    "s_state": {},
    "skyrmion": {"radius_nm": 20.0, "wall_nm": 5.0, "polarity": -1, "helicity": "neel",
                 "center_nm": [0.0, 0.0]},
    "domain_wall": {"axis": "x", "position_nm": 0.0, "width_nm": 10.0, "wall": "head_to_head"},
    "file": {"path": ""},
}


class InitialStatePanel(ProblemPanel):
    """The starting magnetization: a kind and its parameters (engine.initial_states)."""

    _KINDS = (("uniform", "uniform"), ("random", "random"), ("vortex", "vortex"),
              ("S-state (muMAG SP4)", "s_state"), ("skyrmion", "skyrmion"),
              ("domain wall", "domain_wall"), ("from OVF file", "file"))

    def __init__(self, parent=None):
        super().__init__({"kind": "uniform", **copy.deepcopy(_INITIAL_DEFAULTS)}, parent)
        self.kind_combo = self._choice("kind", self._KINDS, lambda m: m["kind"], self._set_kind,
                                       "Initial magnetization texture")
        self.stack = QStackedWidget()
        self._pages = {}
        num, vec, ch = self._param_number, self._param_vector, self._param_choice
        pages = {
            "uniform": [("Direction", vec("uniform", "direction", 3, "Direction of m (any length, not zero)"))],
            "random": [("Seed", num("random", "seed", "Seed of the random generator", integer=True))],
            "vortex": [("Chirality", ch("vortex", "chirality", (("+1 counter-clockwise", 1), ("−1 clockwise", -1)),
                                        "Sense of rotation of the in-plane curl")),
                       ("Polarity", ch("vortex", "polarity", (("+1 core up (+z)", 1), ("−1 core down (−z)", -1)),
                                       "Direction of the core magnetization")),
                       ("Core radius (nm)", num("vortex", "core_nm", "Core radius in nm")),
                       ("Centre (nm)", vec("vortex", "center_nm", 2, "Core centre (x, y) in nm, origin at the grid centre"))],
            "s_state": [("", _wrapped(QLabel("The muMAG standard problem 4 start: m ≈ (1, 0.1, 0), "
                                             "tilted along +y at the short edges. Relax it first.")))],
            "skyrmion": [("Radius (nm)", num("skyrmion", "radius_nm", "Skyrmion radius in nm")),
                         ("Wall width (nm)", num("skyrmion", "wall_nm", "Width of the skyrmion wall in nm")),
                         ("Polarity", ch("skyrmion", "polarity", (("−1 core down (−z)", -1), ("+1 core up (+z)", 1)),
                                         "Direction of the core magnetization")),
                         ("Helicity", ch("skyrmion", "helicity", (("Néel (interfacial DMI)", "neel"), ("Bloch (bulk DMI)", "bloch")),
                                         "Néel or Bloch rotation of the wall")),
                         ("Centre (nm)", vec("skyrmion", "center_nm", 2, "Skyrmion centre (x, y) in nm, origin at the grid centre"))],
            "domain_wall": [("Normal axis", ch("domain_wall", "axis", (("x", "x"), ("y", "y")),
                                               "The wall is perpendicular to this axis")),
                            ("Position (nm)", num("domain_wall", "position_nm", "Wall position along the axis in nm, origin at the grid centre")),
                            ("Width (nm)", num("domain_wall", "width_nm", "Wall width parameter in nm")),
                            ("Type", ch("domain_wall", "wall", (("head-to-head (in plane)", "head_to_head"),
                                                                ("Bloch (out of plane)", "bloch"),
                                                                ("Néel (out of plane)", "neel")),
                                        "Domain and wall type"))],
            "file": [("OVF file", self._path_row())],
        }
        for kind, rows in pages.items():
            page = QWidget()
            f = _form()
            f.setContentsMargins(0, 0, 0, 0)
            for label, w in rows:
                if label:
                    f.addRow(self._label(label, w.toolTip()), w)
                else:
                    f.addRow(w)
            page.setLayout(f)
            self._pages[kind] = self.stack.addWidget(page)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = _form()
        top.addRow(self._label("Kind", self.kind_combo.toolTip()), self.kind_combo)
        lay.addLayout(top)
        lay.addWidget(self.stack)
        lay.addWidget(self.error_label)
        lay.addStretch(1)
        self._fill()

    # keys are "<kind>.<param>" ("vortex.core_nm"); field_widget also takes the bare param
    # name of the kind shown ("core_nm", "center_nm[0]").
    def field_widget(self, key):
        if key not in self._fields:
            key = f"{self._model['kind']}.{key}"
        return super().field_widget(key)

    def choice_widget(self, key):
        if key not in self._combos:
            key = f"{self._model['kind']}.{key}"
        return super().choice_widget(key)

    @staticmethod
    def _commit_param(m, kind, param, value):
        m[kind][param] = value
        validate_initial(kind, m[kind], "initial")

    def _param_number(self, kind, param, tip, integer=False):
        e = self._number(f"{kind}.{param}", lambda m: m[kind][param],
                         lambda m, v: self._commit_param(m, kind, param, v), tip, integer=integer)
        return self._with_hint(e)

    def _param_vector(self, kind, param, n, tip):
        labels = ("x", "y", "z")
        w = self._vector(f"{kind}.{param}", n, lambda m: m[kind][param],
                         lambda m, v: self._commit_param(m, kind, param, list(v)), tip, labels)
        w.setToolTip(tip)
        return w

    def _param_choice(self, kind, param, items, tip):
        return self._choice(f"{kind}.{param}", items, lambda m: m[kind][param],
                            lambda m, v: self._commit_param(m, kind, param, v), tip)

    def _path_row(self) -> QWidget:
        self.path_edit = QLineEdit()
        self.path_edit.setToolTip("OVF 2.0 file of m on the same grid (a path relative to the problem file)")
        self.path_edit.editingFinished.connect(self._on_path)
        browse = QPushButton("Browse…")
        browse.setToolTip(self.path_edit.toolTip())
        browse.clicked.connect(self._browse)
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.path_edit, 1)
        h.addWidget(browse)
        w.setToolTip(self.path_edit.toolTip())
        return w

    def _on_path(self):
        try:
            cand = copy.deepcopy(self._model)
            self._commit_param(cand, "file", "path", self.path_edit.text().strip())
            if cand != self._model:
                self._model = cand
                self.changed.emit()
        except Exception as e:
            self.error_label.setText(str(e))
            self.error_label.setVisible(True)

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Initial magnetization", "", "OVF files (*.ovf);;All files (*)")
        if path:
            self.path_edit.setText(path)
            self._on_path()

    def _set_kind(self, m, kind):
        m["kind"] = kind
        validate_initial(kind, m[kind], "initial")

    def is_valid(self) -> bool:
        """Also False for "from OVF file" until a path is given."""
        m = self._model
        return super().is_valid() and (m["kind"] != "file" or bool(m["file"].get("path")))

    def _stored(self, key):
        if key == "kind":
            _fit_stack(self.stack, self._pages[self._model["kind"]])

    def _fill(self):
        super()._fill()
        self.path_edit.setText(self._model["file"].get("path", ""))
        _fit_stack(self.stack, self._pages[self._model["kind"]])

    def set_problem(self, problem):
        kind = problem.initial.kind
        m = {"kind": kind, **copy.deepcopy(_INITIAL_DEFAULTS)}
        if kind in m:
            m[kind].update(copy.deepcopy(problem.initial.params))
        self._model = m
        self._fill()

    def apply_to(self, problem):
        from engine.problem import InitialState
        kind = self._model["kind"]
        problem.initial = InitialState(kind, copy.deepcopy(self._model[kind]))


# ============================================================================= solver
class SolverPanel(ProblemPanel):
    """Time integrator, its tolerance and step (ps), precision, device, demag method, the
    neural-demag probe interval and the torque at which relaxation stops."""

    def __init__(self, parent=None):
        super().__init__(SolverSpec(), parent)

        def setter(attr):
            def commit(s, v):
                setattr(s, attr, v)
                s.validate("solver")
            return commit

        get = lambda attr: (lambda s: getattr(s, attr))  # noqa: E731
        self.method_combo = self._choice(
            "method", (("RK45 (Dormand–Prince, adaptive)", "rk45"), ("RK4 (fixed step)", "rk4"),
                       ("Heun (fixed step)", "heun")), get("method"), setter("method"),
            "Time integrator of the LLG equation")
        rows = [("Method", self.method_combo)]
        for key, label, tip, integer in (
                ("tolerance", "Tolerance", "RK45 error tolerance on m per step (dimensionless)", False),
                ("dt_ps", "Step dt (ps)", "Fixed time step of RK4/Heun, first try of RK45, in ps", False),
                ("max_dt_ps", "Max step (ps)", "Largest step RK45 may take, in ps", False)):
            rows.append((label, self._with_hint(self._number(key, get(key), setter(key), tip, integer))))
        self.precision_combo = self._choice(
            "precision", [(p, p) for p in PRECISIONS], get("precision"), setter("precision"),
            "Floating-point precision of the state and the fields")
        self.device_combo = self._choice(
            "device", (("CPU", "cpu"), ("CUDA GPU", "cuda")), get("device"), setter("device"),
            "Where the computation runs (torch device)")
        self.demag_combo = self._choice(
            "demag", (("FFT (Newell tensor, exact)", "fft"), ("neural (multi-level network)", "neural"),
                      ("neural + FFT error probe", "neural+probe"), ("none", "none")),
            get("demag"), setter("demag"), "How the demagnetising field is computed")
        rows += [("Precision", self.precision_combo), ("Device", self.device_combo),
                 ("Demag", self.demag_combo)]
        rows.append(("Probe every (steps)", self._with_hint(self._number(
            "probe_every", get("probe_every"), setter("probe_every"),
            "Steps between FFT checks of the neural demag field (neural + probe)", integer=True))))
        rows.append(("Relax torque", self._with_hint(self._number(
            "relax_torque", get("relax_torque"), setter("relax_torque"),
            "Relaxation stops when max |m × H_eff| / Ms falls below this (dimensionless)"))))
        form = _form()
        for label, w in rows:
            form.addRow(self._label(label, w.toolTip() or self._tip_of(w)), w)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addWidget(self.error_label)
        lay.addStretch(1)
        self._fill()

    @staticmethod
    def _tip_of(w):
        e = w.findChild(QLineEdit)
        return e.toolTip() if e is not None else ""

    def _stored(self, key):
        self._update_enabled()

    def _fill(self):
        super()._fill()
        self._update_enabled()

    def _update_enabled(self):
        s = self._model
        for key in ("tolerance", "max_dt_ps"):
            self._fields[key].edit.setEnabled(s.method == "rk45")
        self._fields["probe_every"].edit.setEnabled(s.demag == "neural+probe")

    def set_problem(self, problem):
        self._model = copy.deepcopy(problem.solver)
        cb = self.device_combo
        if cb.findData(self._model.device) < 0:   # e.g. "cuda:1" from a problem file
            cb.blockSignals(True)
            cb.addItem(self._model.device, self._model.device)
            cb.blockSignals(False)
        self._fill()

    def apply_to(self, problem):
        problem.solver = copy.deepcopy(self._model)
