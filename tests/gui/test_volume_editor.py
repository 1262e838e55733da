"""The geometry editor for thick samples: a z range per shape, solids from the problem file
shown layer by layer, and the small 3D preview of the whole map."""
import numpy as np
import pytest

from engine import Material, Mesh, Problem, ShapeOp
from engine.errors import ProblemError
from nmag_gui.geometry_editor import GeometryEditor
from nmag_gui.mask_preview import mask_preview
from window_helpers import drag

pytestmark = pytest.mark.gui
NX, NY, NZ, D = 24, 20, 6, 2.0


@pytest.fixture
def editor(qtbot):
    ed = GeometryEditor()
    qtbot.addWidget(ed)
    ed.resize(1100, 760)
    ed.set_materials(["permalloy"])
    ed.set_mesh((NX, NY, NZ), (D, D, D))
    ed.set_region_map(np.full((NZ, NY, NX), -1, dtype=np.int16))
    ed.show()
    qtbot.waitExposed(ed)
    return ed


def test_a_shape_paints_only_its_z_range(qtbot, editor):
    assert editor.z_from_spin.isVisibleTo(editor) and editor.preview_box.isVisibleTo(editor)
    editor.set_z_range(1, 3)
    assert editor.z_range() == (1, 3)
    drag(qtbot, editor, (2, 2), (9, 7))
    rm = editor.region_map()
    assert (rm[1:4, 2:8, 2:10] == 0).all()
    assert (rm[0] == -1).all() and (rm[4:] == -1).all()
    editor.undo_stack.undo()
    assert (editor.region_map() == -1).all()
    with pytest.raises(ProblemError):
        editor.set_z_range(0, NZ)


def test_a_one_layer_range_follows_the_shown_layer(qtbot, editor):
    editor.set_layer(4)
    assert editor.z_range() == (4, 4)
    drag(qtbot, editor, (0, 0), (3, 3))
    assert (editor.region_map()[4, :4, :4] == 0).all() and (editor.region_map()[:4] == -1).all()


def test_solids_of_a_problem_file_and_the_preview(qtbot, editor):
    p = Problem(mesh=Mesh((NX, NY, NZ), (D, D, D)), materials=[Material(name="permalloy")],
                geometry=[ShapeOp("sphere", "add", "permalloy", {"radius_nm": 5.0})])
    p.validate()
    editor.set_region_map(p.regions())
    editor.set_layer(0)
    assert (editor.region_map()[0] == -1).all()             # the sphere misses the bottom layer
    qtbot.waitUntil(lambda: editor.preview_label.pixmap() is not None
                    and not editor.preview_label.pixmap().isNull(), timeout=3000)
    img = mask_preview(p.regions(), (D, D, D), (120, 90), [(255, 0, 0)])
    red = (img[..., 0] > 100) & (img[..., 1] < 60)
    assert 100 < red.sum() < 120 * 90 / 2                   # a ball, not an empty or full frame
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - 60) < 8 and abs(ys.mean() - 45) < 8


def test_film_hides_the_3d_controls(qtbot, editor):
    editor.set_mesh((NX, NY, 1), (D, D, D))
    assert not editor.z_from_spin.isVisibleTo(editor) and not editor.preview_box.isVisibleTo(editor)


def test_import_a_surface_mesh_of_any_format(qtbot, editor, tmp_path):
    import pyvista as pv
    pv.Sphere(radius=1.0, theta_resolution=24, phi_resolution=24).save(tmp_path / "ball.ply")
    pv.Cube(x_length=2, y_length=2, z_length=2).triangulate().save(tmp_path / "box.stl")
    editor.import_surface(tmp_path / "ball.ply")              # scaled to fill the 48 x 40 x 12 nm grid
    ball = editor.region_map() >= 0
    # the ball fills the grid's smallest extent (12 nm high): its cells form a sphere of ~6 nm
    assert ball[:, NY // 2, NX // 2].all() and not ball[:, 0, 0].any()
    assert 0.6 * 4 / 3 * np.pi * 6 ** 3 < ball.sum() * D ** 3 < 1.2 * 4 / 3 * np.pi * 6 ** 3
    editor.undo_stack.undo()
    editor.import_surface(tmp_path / "box.stl")              # a cube: fills 12 x 12 x 12 nm
    assert (editor.region_map() >= 0).sum() == 6 * 6 * 6
    with pytest.raises(ProblemError):
        editor.import_surface(tmp_path / "nothing.ply")
