"""The geometry editor paints exactly the cells the engine's shapes cover, and undoes it."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.geometry import Ellipse, ImageMask, Polygon, Rectangle, Ring, shape_mask
from engine.problem import Mesh, Problem
from nmag_gui.geometry_editor import GeometryEditor
from window_helpers import drag

pytestmark = pytest.mark.gui

NX, NY, D = 40, 30, 2.0
MESH = Mesh((NX, NY, 1), (D, D, D))


@pytest.fixture
def editor(qtbot):
    ed = GeometryEditor()
    qtbot.addWidget(ed)
    ed.resize(1100, 760)
    ed.set_materials(["permalloy", "CoFeB"])
    ed.set_mesh((NX, NY, 1), (D, D, D))
    ed.set_region_map(np.full((1, NY, NX), -1, dtype=np.int16))
    ed.show()
    qtbot.waitExposed(ed)
    return ed


def node_nm(i, j):
    return (i - NX / 2) * D, (j - NY / 2) * D


def cell_nm(i, j):
    return (i + 0.5 - NX / 2) * D, (j + 0.5 - NY / 2) * D


def painted(mask, k=0):
    return np.where(mask, k, -1).astype(np.int16)[None]


def test_cells_are_big_enough_to_click(editor):
    a, b = editor.cell_to_widget(0, 0), editor.cell_to_widget(1, 1)
    assert b.x() - a.x() >= 8 and a.y() - b.y() >= 8   # +y is up on screen


def test_rectangle_drag_paints_the_box_of_cells(qtbot, editor):
    drag(qtbot, editor, (5, 4), (14, 11))
    (x0, y0), (x1, y1) = node_nm(5, 4), node_nm(15, 12)
    expected = shape_mask(Rectangle(((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0, y1 - y0)), MESH)
    assert expected.sum() == 10 * 8
    assert expected[4:12, 5:15].all()
    np.testing.assert_array_equal(editor.region_map(), painted(expected))


def test_rectangle_drag_backwards_is_the_same_rectangle(qtbot, editor):
    drag(qtbot, editor, (14, 11), (5, 4))
    assert (editor.region_map()[0] == 0).sum() == 80
    assert (editor.region_map()[0, 4:12, 5:15] == 0).all()


def test_ellipse_matches_engine_shape_mask(qtbot, editor):
    editor.set_tool("ellipse")
    drag(qtbot, editor, (10, 5), (29, 24))
    (x0, y0), (x1, y1) = node_nm(10, 5), node_nm(30, 25)
    expected = shape_mask(Ellipse(((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) / 2, (y1 - y0) / 2)), MESH)
    assert 250 < expected.sum() < 400          # about pi * 10 * 10 cells
    np.testing.assert_array_equal(editor.region_map(), painted(expected))


def test_ring_matches_engine_shape_mask(qtbot, editor):
    editor.set_tool("ring")
    editor.ring_ratio = 0.5
    drag(qtbot, editor, (20, 15), (28, 15))
    outer = 8 * D + 0.5 * D
    expected = shape_mask(Ring(cell_nm(20, 15), outer, 0.5 * outer), MESH)
    np.testing.assert_array_equal(editor.region_map(), painted(expected))
    assert editor.region_map()[0, 15, 20] == -1          # the hole


def test_polygon_clicked_on_nodes_matches_engine_shape_mask(qtbot, editor):
    editor.set_tool("polygon")
    nodes = [(4, 3), (34, 6), (26, 27), (8, 20)]
    for n in nodes[:-1]:
        qtbot.mouseClick(editor.canvas, Qt.LeftButton, pos=editor.node_to_widget(*n))
    assert (editor.region_map() == -1).all()             # nothing until it is closed
    qtbot.mouseDClick(editor.canvas, Qt.LeftButton, pos=editor.node_to_widget(*nodes[-1]))
    expected = shape_mask(Polygon(tuple(node_nm(*n) for n in nodes)), MESH)
    assert expected.sum() > 300
    np.testing.assert_array_equal(editor.region_map(), painted(expected))
    assert editor.undo_stack.count() == 1


def test_polygon_closes_with_enter(qtbot, editor):
    editor.set_tool("polygon")
    nodes = [(2, 2), (20, 2), (2, 20)]
    for n in nodes:
        qtbot.mouseClick(editor.canvas, Qt.LeftButton, pos=editor.node_to_widget(*n))
    qtbot.keyClick(editor.canvas, Qt.Key_Return)
    expected = shape_mask(Polygon(tuple(node_nm(*n) for n in nodes)), MESH)
    np.testing.assert_array_equal(editor.region_map(), painted(expected))


def test_subtract_mode_empties_the_shape(qtbot, editor):
    editor.fill_layer()
    editor.set_mode("subtract")
    drag(qtbot, editor, (0, 0), (9, 9))
    rm = editor.region_map()[0]
    assert (rm[:10, :10] == -1).all()
    assert (rm == 0).sum() == NX * NY - 100


def test_undo_and_redo_restore_the_maps(qtbot, editor):
    start = editor.region_map()
    drag(qtbot, editor, (2, 2), (10, 10))
    after_rect = editor.region_map()
    editor.set_tool("ellipse")
    editor.set_current_region(1)
    drag(qtbot, editor, (8, 8), (30, 25))
    after_ellipse = editor.region_map()
    assert editor.undo_stack.count() == 2
    editor.undo_stack.undo()
    np.testing.assert_array_equal(editor.region_map(), after_rect)
    editor.undo_stack.undo()
    np.testing.assert_array_equal(editor.region_map(), start)
    editor.undo_stack.redo()
    editor.undo_stack.redo()
    np.testing.assert_array_equal(editor.region_map(), after_ellipse)


def test_keyboard_undo_redo(qtbot, editor):
    drag(qtbot, editor, (2, 2), (10, 10))
    painted_map = editor.region_map()
    editor.canvas.setFocus()
    editor.activateWindow()
    qtbot.waitUntil(lambda: editor.canvas.hasFocus())
    qtbot.keyClick(editor.canvas, Qt.Key_Z, Qt.ControlModifier)
    assert (editor.region_map() == -1).all()
    qtbot.keyClick(editor.canvas, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    np.testing.assert_array_equal(editor.region_map(), painted_map)
    qtbot.keyClick(editor.canvas, Qt.Key_Z, Qt.ControlModifier)
    qtbot.keyClick(editor.canvas, Qt.Key_Y, Qt.ControlModifier)
    np.testing.assert_array_equal(editor.region_map(), painted_map)


def test_brush_paints_a_second_region_in_one_undo_step(qtbot, editor):
    editor.fill_layer()                              # region 0 everywhere
    editor.set_tool("brush")
    editor.set_brush_radius(2)
    editor.set_current_region(1)
    with qtbot.waitSignal(editor.regionsChanged):
        drag(qtbot, editor, (10, 15), (25, 15))
    rm = editor.region_map()[0]
    yy, xx = np.mgrid[0:NY, 0:NX]
    expected = np.zeros((NY, NX), bool)
    for cx in range(10, 26):
        expected |= (xx - cx) ** 2 + (yy - 15) ** 2 <= 4
    np.testing.assert_array_equal(rm == 1, expected)
    assert (rm[~expected] == 0).all()
    editor.undo_stack.undo()
    assert (editor.region_map() == 0).all()


def test_eraser_empties_cells(qtbot, editor):
    editor.fill_layer()
    editor.set_tool("eraser")
    editor.set_brush_radius(0)
    qtbot.mouseClick(editor.canvas, Qt.LeftButton, pos=editor.cell_to_widget(7, 3))
    rm = editor.region_map()[0]
    assert rm[3, 7] == -1 and (rm == -1).sum() == 1


def test_layers_edit_one_or_all(qtbot, editor):
    editor.set_mesh((NX, NY, 3), (D, D, D))
    editor.set_region_map(np.full((3, NY, NX), -1, dtype=np.int16))
    assert editor.layer_spin.isVisibleTo(editor)
    editor.set_layer(1)
    drag(qtbot, editor, (0, 0), (4, 4))
    rm = editor.region_map()
    assert (rm[1, :5, :5] == 0).all() and (rm[0] == -1).all() and (rm[2] == -1).all()
    editor.set_all_layers(True)
    drag(qtbot, editor, (10, 10), (12, 12))
    assert (editor.region_map()[:, 10:13, 10:13] == 0).all()


def test_import_png_mask(tmp_path, editor):
    import imageio.v3 as iio
    img = np.full((60, 80), 255, np.uint8)
    img[10:30, 20:60] = 0                        # a dark bar in the upper half
    path = tmp_path / "mask.png"
    iio.imwrite(path, img)
    editor.import_mask(str(path))
    expected = ImageMask(path).cell_mask(NX, NY)
    assert expected.sum() > 0
    np.testing.assert_array_equal(editor.region_map(), painted(expected))


def test_grid_change_in_mesh_panel_keeps_the_physical_size_and_undoes(qtbot, editor):
    drag(qtbot, editor, (0, 0), (19, 29))            # left half: 40 nm of the 80 nm grid
    with qtbot.waitSignal(editor.meshChanged):
        edit = editor.mesh_panel.field_widget("nx")
        edit.selectAll()
        qtbot.keyClicks(edit, "80")
        qtbot.keyClick(edit, Qt.Key_Return)
    rm = editor.region_map()
    assert rm.shape == (1, NY, 80)
    # the grid grew by 20 cells on each side; the drawing kept its 40 nm (it was stretched
    # to 80 nm before: nx 64 -> 4096 gave 64 times the cells)
    assert (rm[0, :, 20:40] == 0).all()
    assert (rm[0, :, :20] == -1).all() and (rm[0, :, 40:] == -1).all()
    assert (rm == 0).sum() == 20 * NY
    editor.undo_stack.undo()
    assert editor.region_map().shape == (1, NY, NX)
    assert editor.mesh().n == (NX, NY, 1)
    assert editor.mesh_panel.field_widget("nx").text() == str(NX)


def test_problem_round_trip_and_material_removal(editor):
    p = Problem()
    p.mesh = Mesh((NX, NY, 1), (D, D, D))
    editor.set_problem(p)                          # full film of permalloy
    assert (editor.region_map() == 0).all()
    editor.set_materials(["a", "b", "c"])
    editor.set_current_region(2)
    editor.set_tool("rectangle")
    editor.fill_layer()
    editor.remove_region(1)
    assert (editor.region_map() == 1).all()        # c moved down to index 1
    q = Problem()
    editor.apply_to(q)
    assert q.mesh.n == (NX, NY, 1) and q.region_map.shape == (1, NY, NX)


def test_bad_inputs_are_reported_not_crashed(editor):
    with pytest.raises(ValueError):
        editor.set_tool("lasso")
    with pytest.raises(Exception, match="region_map"):
        editor.set_region_map(np.zeros((1, 3, 3)))
