"""The 3D view in the real window (Xvfb): a thick sample gets the surface, the slice and the
isosurface; the slice shows exactly the cells it cuts; the isosurface moves with the state;
a film keeps the flat view; the 3D examples load from the catalog."""
import numpy as np
import pytest

from engine import InitialState, Material, Mesh, Problem, ShapeOp
from nmag_gui.examples_menu import load_catalog
from nmag_gui.volume_scene import cells_cut_by_plane

pytestmark = pytest.mark.gui


def thick_disk(cx=0.0):
    """A small permalloy disk, 60 nm across and 18 nm thick (6 layers), vortex core at x = cx."""
    p = Problem(title="thick disk")
    p.mesh = Mesh((20, 20, 6), (3.0, 3.0, 3.0))
    p.materials = [Material(name="permalloy")]
    p.geometry = [ShapeOp("cylinder", "add", "permalloy", {"radius_nm": 30.0, "height_nm": 18.0})]
    p.initial = InitialState("vortex", {"core_nm": 6.0, "center_nm": [cx, 0.0]})
    return p.validate()


def iso_x(layer):
    pts = layer.isosurface().points
    assert len(pts) > 0
    return float(pts[:, 0].mean())


def test_slice_shows_the_cells_it_cuts_in_the_window(qtbot, open_main_window):
    w = open_main_window(thick_disk())
    layer, controls = w.view.volume_layer, w.view.volume_controls
    assert layer.active and controls.isVisible()
    assert all(layer._actors[p].GetVisibility() for p in ("surface", "slice", "iso", "arrows"))
    assert not w.view.scene.film_visible             # no stacked quads: the volume draws the grid
    mask = (w.drawn_frame.m ** 2).sum(axis=0) > 0.25
    for axis, normal in (("x", (1, 0, 0)), ("z", (0, 0, 1))):
        controls.set_slice_axis(axis)
        n, point = layer.slice_plane
        np.testing.assert_allclose(n, normal)
        expect = np.nonzero((cells_cut_by_plane(mask.shape, layer._cell, layer._origin, n, point) & mask).ravel())[0]
        np.testing.assert_array_equal(layer.slice_cells(), expect)
    # the slice is coloured by the colour mode of the view (mz here)
    w.view.set_color_by("mz")
    w.view.show_frame(w.drawn_frame, (3.0, 3.0, 3.0))
    np.testing.assert_allclose(layer.slice.cell_data["color"],
                               w.drawn_frame.m[2].ravel()[layer._slice_cell], atol=1e-6)
    controls.look_along_slice()
    cam = np.subtract(w.view.plotter.camera.position, w.view.plotter.camera.focal_point)
    assert abs(abs(cam[2]) - np.linalg.norm(cam)) < 1e-6 * np.linalg.norm(cam)   # along z
    # the picture: the slice's colours are on screen
    img = w.view.plotter.screenshot(return_img=True)
    assert img.std() > 5


def test_isosurface_moves_with_the_state(qtbot, open_main_window):
    w = open_main_window(thick_disk(cx=-12.0))
    layer, controls = w.view.volume_layer, w.view.volume_controls
    controls.iso_spin.setValue(0.5)                      # the core: mz > 1/2
    assert (layer.iso_component, layer.iso_value) == ("mz", 0.5)
    x0 = iso_x(layer)
    assert abs(x0 + 12.0) < 2.0
    first = w.drawn_frame
    w.load_problem(thick_disk(cx=12.0))
    qtbot.waitUntil(lambda: w.drawn_frame is not None and w.drawn_frame is not first
                    and w.drawn_frame.m[2, 0, 10, 14] > 0.5, timeout=15000)
    assert abs(iso_x(layer) - 12.0) < 2.0


def test_a_film_keeps_the_flat_view(qtbot, open_main_window):
    p = thick_disk()
    p.mesh = Mesh((20, 20, 1), (3.0, 3.0, 3.0))
    p.geometry = [ShapeOp("ellipse", "add", "permalloy", {"radii_nm": [30.0, 30.0]})]
    w = open_main_window(p.validate())
    assert not w.view.volume_layer.active and not w.view.volume_controls.isVisible()
    assert w.view.scene.film_visible


def test_3d_examples_are_in_the_catalog_and_load():
    entries = {e.path.name: e for e in load_catalog()}
    for name in ("sp3_flower.toml", "sp3_vortex.toml", "vortex_thick_disk_3d.toml",
                 "skyrmion_tube_3d.toml", "nanowire_wall_3d.toml"):
        assert name in entries, name
        p = entries[name].load()
        assert p.mesh.n[2] >= 8 or name.startswith("sp3")
        assert (p.regions() >= 0).sum() > 0


def test_hover_and_overlay_on_a_thick_sample(qtbot, open_main_window):
    w = open_main_window(thick_disk())
    layer = w.view.volume_layer
    w.view.set_camera("top")
    w.view.show_frame(w.drawn_frame, (3.0, 3.0, 3.0))
    qtbot.wait(300)
    iw = w.view.plotter.interactor
    # the middle of the view from the top: the disk's top layer (the cut-away leaves y < slice)
    cell = layer.cell_at(iw.width() // 2, int(iw.height() * 0.45))
    assert cell is not None and cell[0] == 5            # the top layer of 6
    assert "m = (" in w.view.scene.cell_info(*cell)
    # an overlay chosen in the view's toolbar colours surface and slice by its values
    w.view.set_overlay_kind("energy_density")
    qtbot.waitUntil(lambda: layer._overlay is not None, timeout=15000)
    values = w.view.scene.overlay_values()
    np.testing.assert_allclose(layer.slice.cell_data["color"], values.ravel()[layer._slice_cell], rtol=1e-5)
    w.view.set_overlay_kind("none")
    w.view.show_frame(w.drawn_frame, (3.0, 3.0, 3.0))
    assert layer._overlay is None


def test_an_example_from_the_menu_gets_its_suggested_3d_view(qtbot, open_main_window):
    w = open_main_window(thick_disk())
    entry = [e for e in load_catalog() if e.path.stem == "sp3_vortex"][0]
    w.examples.load_example(entry.load(), entry)            # what the Examples menu calls
    layer = w.view.volume_layer
    qtbot.waitUntil(lambda: layer._shape == (16, 16, 16) and layer.iso_component == "mx", timeout=20000)
    assert layer.iso_value == 0.5 and layer.arrows_on_slice
    np.testing.assert_allclose(layer.slice_plane[0], (1, 0, 0))
    assert w.view.volume_controls.axis_combo.currentText() == "x"


def test_an_example_on_the_grid_of_the_one_before_still_gets_its_suggested_3d_view(qtbot, open_main_window):
    """A reviewer loaded sp3_flower, then sp3_vortex (same 16^3 grid, no rebuild of the
    scene): the slice stayed at y and the isosurface off."""
    w = open_main_window(thick_disk())
    entries = {e.path.stem: e for e in load_catalog()}
    layer, controls = w.view.volume_layer, w.view.volume_controls
    flower, vortex = entries["sp3_flower"], entries["sp3_vortex"]
    assert flower.load().mesh.n == vortex.load().mesh.n
    w.examples.load_example(flower.load(), flower)
    qtbot.waitUntil(lambda: layer._shape == (16, 16, 16) and not layer.show["iso"], timeout=20000)
    assert controls.axis_combo.currentText() == "y"
    w.examples.load_example(vortex.load(), vortex)
    qtbot.waitUntil(lambda: layer.show["iso"] and layer.iso_component == "mx", timeout=20000)
    assert layer.iso_value == 0.5 and controls.part_checks["iso"].isChecked()
    np.testing.assert_allclose(layer.slice_plane[0], (1, 0, 0))
    assert controls.axis_combo.currentText() == "x"
    # and again after the user changed it: loading an example applies its view every time
    controls.set_slice_axis("z")
    w.examples.load_example(vortex.load(), vortex)
    assert controls.axis_combo.currentText() == "x"


def test_the_side_camera_looks_at_the_slice_not_at_the_half_left_uncut(qtbot, open_main_window):
    """A reviewer turned the camera to 'side' on a thick disk and saw the uncut outside."""
    w = open_main_window(thick_disk())
    layer, controls = w.view.volume_layer, w.view.volume_controls
    for axis, k in (("y", 1), ("x", 0)):
        controls.set_slice_axis(axis)
        n, _point = layer.slice_plane
        w.view.set_camera("side")
        cam = np.subtract(w.view.plotter.camera.position, w.view.plotter.camera.focal_point)
        assert cam[k] * n[k] > 0 and cam[2] > 0          # on the side the cut-away removed, raised
    layer.set_shown("slice", False)
    w.view.set_camera("side")
    cam = np.subtract(w.view.plotter.camera.position, w.view.plotter.camera.focal_point)
    assert cam[1] < 0 and abs(cam[0]) < 1e-6 * np.linalg.norm(cam)   # no slice: from -y, as a film


def test_a_slice_beyond_the_magnet_draws_nothing_and_keeps_the_surface(qtbot, open_main_window):
    """A reviewer dragged the plane past the disk: the cones raised, the surface turned one colour."""
    w = open_main_window(thick_disk())
    layer = w.view.volume_layer
    before = layer.surface_colors().copy()
    layer.set_slice((0, 1, 0), (0.0, 31.0, 9.0))     # past the grid's edge (y = 30), where the widget may go
    assert len(layer.slice_cells()) == 0 and layer.arrow_count == 0
    after = layer.surface_colors()
    assert np.ptp(after) > 0.1 * np.ptp(before)       # still coloured by m, not one colour
    layer.set_slice((0, 1, 0), (0.0, 0.0, 9.0))       # and back
    assert len(layer.slice_cells()) > 0 and layer.arrow_count > 0


def test_a_paused_thick_sample_follows_overlay_and_colour_changes_at_once(qtbot, open_main_window):
    w = open_main_window(thick_disk())
    layer = w.view.volume_layer
    w.view.set_overlay_kind("energy_density")       # frames carry energy densities from the next one
    w.act_step.trigger()
    qtbot.waitUntil(lambda: layer._overlay is not None, timeout=15000)
    frames = w.view.frames_drawn
    w.view.set_overlay_kind("none")                  # now paused: no frame comes
    assert layer._overlay is None
    w.view.set_color_by("mx")
    assert layer.color_by == "mx"
    np.testing.assert_allclose(layer.surface_colors(), w.drawn_frame.m[0].ravel()[layer._surface_cell], atol=1e-6)
    assert w.view.frames_drawn == frames                  # no new frame was needed


def test_a_thick_sample_opens_seen_from_above_a_corner_on_the_cut_away_side(qtbot, open_main_window):
    """From the top (as films open) the slice was edge-on and half the magnet cut away."""
    w = open_main_window(thick_disk())
    n, _point = w.view.volume_layer.slice_plane
    cam = np.subtract(w.view.plotter.camera.position, w.view.plotter.camera.focal_point)
    assert np.all(cam > 0) and float(np.dot(cam, n)) > 0     # raised, on the slice normal's side
