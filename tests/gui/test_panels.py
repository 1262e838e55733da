"""The problem panels check every typed value with the engine's own rules."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit

from engine.problem import Problem
from nmag_gui.panels import (FieldPanel, InitialStatePanel, MaterialsPanel, MeshPanel,
                             SolverPanel)

pytestmark = pytest.mark.gui

PANELS = (MeshPanel, MaterialsPanel, FieldPanel, InitialStatePanel, SolverPanel)


def make(qtbot, cls, problem=None):
    panel = cls()
    qtbot.addWidget(panel)
    panel.set_problem(problem or Problem())
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def retype(qtbot, edit, text):
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key_Delete)
    qtbot.keyClicks(edit, text)


@pytest.mark.parametrize("cls", PANELS)
def test_round_trip_keeps_a_valid_problem(qtbot, cls):
    p = Problem()
    panel = make(qtbot, cls, p)
    assert panel.is_valid() and panel.error_label.text() == ""
    q = Problem()
    panel.apply_to(q)
    q.validate()
    assert q.to_dict() == p.to_dict()


@pytest.mark.parametrize("cls", PANELS)
def test_every_control_has_a_tooltip(qtbot, cls):
    panel = make(qtbot, cls)
    for w in panel.findChildren(QLineEdit) + panel.findChildren(QComboBox):
        assert w.toolTip(), w.objectName()


@pytest.mark.parametrize("text", ["-5", "abc"])
def test_invalid_Ms_names_Ms_and_its_range_and_keeps_the_old_value(qtbot, text):
    p = Problem()
    panel = make(qtbot, MaterialsPanel, p)
    edit = panel.field_widget("Ms")
    retype(qtbot, edit, text)
    msg = panel.error_label.text()
    assert "Ms" in msg and "[0, 1e+07]" in msg
    assert "border" in edit.styleSheet()
    assert not panel.is_valid()
    panel.apply_to(p)
    assert p.materials[0].Ms == 8.0e5
    retype(qtbot, edit, "1.2e6")
    assert panel.is_valid() and panel.error_label.text() == "" and edit.styleSheet() == ""
    panel.apply_to(p)
    assert p.materials[0].Ms == 1.2e6


def test_valid_edit_emits_changed(qtbot):
    panel = make(qtbot, MaterialsPanel)
    with qtbot.waitSignal(panel.changed):
        retype(qtbot, panel.field_widget("alpha"), "0.5")
    p = Problem()
    panel.apply_to(p)
    assert p.materials[0].alpha == 0.5


def test_preset_selection_fills_values(qtbot):
    panel = make(qtbot, MaterialsPanel)
    with qtbot.waitSignal(panel.changed):
        panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("CoFeB"))
    assert float(panel.field_widget("Ms").text()) == 1.1e6
    assert float(panel.field_widget("Ku").text()) == 8.3e5
    assert float(panel.field_widget("D").text()) == 1.5e-3
    p = Problem()
    panel.apply_to(p)
    assert p.materials[0].name == "CoFeB" and p.materials[0].Ku == 8.3e5
    assert "Ikeda" in panel.preset_combo.itemData(panel.preset_combo.findData("CoFeB"), Qt.ToolTipRole)


def test_cubic_axes_must_be_perpendicular(qtbot):
    panel = make(qtbot, MaterialsPanel)
    retype(qtbot, panel.field_widget("Kc_axis2[0]"), "1")
    assert "Kc_axis2" in panel.error_label.text() and "perpendicular" in panel.error_label.text()


def test_add_rename_remove_materials(qtbot):
    panel = make(qtbot, MaterialsPanel)
    panel.add_material()
    assert panel.names() == ["permalloy", "material 2"]
    assert panel.field_widget("name").text() == "material 2"
    retype(qtbot, panel.field_widget("name"), "permalloy")      # taken
    assert "not used by another material" in panel.error_label.text()
    retype(qtbot, panel.field_widget("name"), "free layer")
    assert panel.names() == ["permalloy", "free layer"]
    with qtbot.waitSignal(panel.materialRemoved) as sig:
        panel.remove_material(0)
    assert sig.args == [0] and panel.names() == ["free layer"]
    assert not panel.remove_button.isEnabled()


def test_mesh_limits_and_commit_on_enter(qtbot):
    p = Problem()
    panel = make(qtbot, MeshPanel, p)
    retype(qtbot, panel.field_widget("nx"), "0")
    assert "mesh.n[0]" in panel.error_label.text() and "[1, 4096]" in panel.error_label.text()
    retype(qtbot, panel.field_widget("nx"), "128")
    panel.apply_to(p)
    assert p.mesh.n[0] == 64                      # not stored before Enter
    with qtbot.waitSignal(panel.changed):
        qtbot.keyClick(panel.field_widget("nx"), Qt.Key_Return)
    panel.apply_to(p)
    assert p.mesh.n == (128, 64, 1)
    retype(qtbot, panel.field_widget("ny"), "4096")
    retype(qtbot, panel.field_widget("nz"), "4096")
    assert "16,777,216" in panel.error_label.text()


def test_field_vector_and_angles_stay_consistent(qtbot):
    p = Problem()
    panel = make(qtbot, FieldPanel, p)
    retype(qtbot, panel.field_widget("B_mT[2]"), "100")
    assert float(panel.field_widget("B_magnitude_mT").text()) == 100
    assert float(panel.field_widget("B_theta_deg").text()) == 0
    panel.polar_button.setChecked(True)
    retype(qtbot, panel.field_widget("B_theta_deg"), "90")
    retype(qtbot, panel.field_widget("B_phi_deg"), "90")
    panel.apply_to(p)
    assert p.field.B_mT == pytest.approx((0.0, 100.0, 0.0), abs=1e-9)
    assert float(panel.field_widget("B_mT[1]").text()) == 100
    retype(qtbot, panel.field_widget("B_theta_deg"), "200")
    assert "B_theta_deg" in panel.error_label.text() and "[0, 180]" in panel.error_label.text()


def test_field_time_dependent_parts(qtbot):
    p = Problem()
    panel = make(qtbot, FieldPanel, p)
    combo = panel.choice_widget("ac.kind")
    combo.setCurrentIndex(combo.findData("sine"))
    retype(qtbot, panel.field_widget("frequency_GHz"), "5")
    retype(qtbot, panel.field_widget("amplitude_mT[0]"), "2")
    panel.apply_to(p)
    assert p.field.ac == {"kind": "sine", "amplitude_mT": [2.0, 0.0, 1.0],
                          "frequency_GHz": 5.0, "phase_deg": 0.0}
    combo.setCurrentIndex(combo.findData("pulse"))
    retype(qtbot, panel.field_widget("width_ns"), "0")
    assert "width_ns" in panel.error_label.text() and "(0, 1e+06]" in panel.error_label.text()
    panel.apply_to(p)
    assert p.field.ac["kind"] == "pulse" and p.field.ac["width_ns"] == 0.1
    p.validate()


def test_initial_state_params(qtbot):
    p = Problem()
    panel = make(qtbot, InitialStatePanel, p)
    kind = panel.choice_widget("kind")
    kind.setCurrentIndex(kind.findData("vortex"))
    retype(qtbot, panel.field_widget("core_nm"), "0")
    assert "core_nm" in panel.error_label.text()
    retype(qtbot, panel.field_widget("core_nm"), "15")
    ch = panel.choice_widget("chirality")
    ch.setCurrentIndex(ch.findData(-1))
    panel.apply_to(p)
    assert p.initial.kind == "vortex"
    assert p.initial.params["core_nm"] == 15 and p.initial.params["chirality"] == -1
    p.validate()


def test_solver_fields_follow_the_method(qtbot):
    p = Problem()
    panel = make(qtbot, SolverPanel, p)
    assert panel.field_widget("tolerance").isEnabled()
    assert not panel.field_widget("probe_every").isEnabled()
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("heun"))
    assert not panel.field_widget("tolerance").isEnabled()
    panel.demag_combo.setCurrentIndex(panel.demag_combo.findData("neural+probe"))
    retype(qtbot, panel.field_widget("probe_every"), "2.5")
    assert "an integer" in panel.error_label.text()
    retype(qtbot, panel.field_widget("probe_every"), "5")
    retype(qtbot, panel.field_widget("dt_ps"), "0.05")
    panel.apply_to(p)
    assert (p.solver.method, p.solver.demag, p.solver.probe_every, p.solver.dt_ps) == \
        ("heun", "neural+probe", 5, 0.05)
    p.validate()
