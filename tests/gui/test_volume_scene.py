"""The volume layer on an off-screen pyvista plotter (no Qt): the slice shows exactly the
cells the plane cuts, the isosurface follows the state, the surface is the magnet's outside,
cones stay within their budget, the overlay recolours surface and slice."""
from types import SimpleNamespace

import numpy as np
import pytest
import pyvista as pv

from nmag_gui.volume_scene import VolumeLayer, boundary_faces, cells_cut_by_plane, neighbour_fill_index

CELL = (2.0, 2.0, 2.0)


def grid(nx=20, ny=16, nz=8):
    origin = (-nx * CELL[0] / 2, -ny * CELL[1] / 2, 0.0)
    x = origin[0] + (np.arange(nx) + 0.5) * CELL[0]
    y = origin[1] + (np.arange(ny) + 0.5) * CELL[1]
    Y, X = np.meshgrid(y, x, indexing="ij")
    return (nz, ny, nx), origin, X, Y


def vortex(X, Y, nz, cx=0.0, core=4.0, radius=None):
    """A vortex whose core (mz > 0) sits at x = cx, through all nz layers; a disk when radius."""
    r = np.hypot(X - cx, Y)
    phi = np.arctan2(Y, X - cx)
    mz = np.exp(-(r / core) ** 2)
    ip = np.sqrt(1 - mz ** 2)
    m = np.stack([-np.sin(phi) * ip, np.cos(phi) * ip, mz])
    m = np.repeat(m[:, None], nz, axis=1)
    if radius is not None:
        m = m * (np.hypot(X, Y) <= radius)[None, None]
    return m


@pytest.fixture
def plotter():
    p = pv.Plotter(off_screen=True, window_size=(320, 240))
    yield p
    p.close()


def built(plotter, shape, origin, m):
    layer = VolumeLayer(arrow_budget=200)
    layer.build(SimpleNamespace(plotter=plotter), shape, CELL, origin)
    layer.update(SimpleNamespace(m=m))
    return layer


@pytest.mark.parametrize("normal, shift", [((0, 1, 0), (0, 1.0, 0)), ((1, 0.3, 0.2), (1.3, -0.7, 0.4)),
                                           ((0, 0, 1), (0, 0, 0.9))])
def test_slice_shows_exactly_the_cells_it_cuts(plotter, normal, shift):
    shape, origin, X, Y = grid()
    m = vortex(X, Y, shape[0], radius=14.0)
    layer = built(plotter, shape, origin, m)
    point = np.array([0.0, 0.0, shape[0] * CELL[2] / 2]) + shift
    layer.set_slice(normal, point)
    mask = (m ** 2).sum(axis=0) > 0.25
    expect = np.nonzero((cells_cut_by_plane(shape, CELL, origin, normal, point) & mask).ravel())[0]
    np.testing.assert_array_equal(layer.slice_cells(), expect)
    # each slice polygon carries its cell's colour (mz here)
    drawn = np.asarray(layer.slice.cell_data["color"])
    np.testing.assert_allclose(drawn, m[2].ravel()[layer._slice_cell], atol=1e-6)


def test_isosurface_moves_with_the_state(plotter):
    shape, origin, X, Y = grid(24, 16, 8)
    layer = built(plotter, shape, origin, vortex(X, Y, shape[0], cx=-8.0))
    layer.set_isosurface("mz", 0.5)
    iso = layer.isosurface()
    assert iso.n_points > 0
    x0 = iso.points[:, 0].mean()
    assert abs(x0 - (-8.0)) < 1.0
    # through the whole thickness and not beyond the magnet
    assert iso.points[:, 2].min() >= 0 and iso.points[:, 2].max() <= shape[0] * CELL[2] + 1e-6
    assert iso.points[:, 2].max() - iso.points[:, 2].min() > (shape[0] - 1) * CELL[2] - 1e-6
    layer.update(SimpleNamespace(m=vortex(X, Y, shape[0], cx=10.0)))
    x1 = layer.isosurface().points[:, 0].mean()
    assert abs(x1 - 10.0) < 1.0
    # the radius of the tube where mz = 1/2: r = core * sqrt(ln 2)
    r = np.hypot(layer.isosurface().points[:, 0] - 10.0, layer.isosurface().points[:, 1])
    assert abs(np.median(r) - 4.0 * np.sqrt(np.log(2))) < 0.5


def test_isosurface_does_not_trace_the_magnets_outline(plotter):
    shape, origin, X, Y = grid(20, 20, 6)
    # a skyrmion tube: up around a down core; vacuum (m = 0) lies below the level 0.5 too
    theta = np.pi * np.exp(-(np.hypot(X, Y) / 4.0) ** 2)
    m = np.stack([np.sin(theta), 0 * theta, np.cos(theta)])
    m = np.repeat(m[:, None], shape[0], axis=1) * (np.hypot(X, Y) <= 16.0)[None, None]
    layer = built(plotter, shape, origin, m)
    layer.set_isosurface("mz", 0.5)
    pts = layer.isosurface().points
    assert len(pts) and np.hypot(pts[:, 0], pts[:, 1]).max() < 5.0   # only the tube, not the rim


def test_surface_is_the_outside_of_the_magnet(plotter):
    shape, origin, X, Y = grid(10, 8, 6)
    m = np.zeros((3,) + shape)
    m[0, 1:5, 2:7, 3:9] = 1.0                               # a 6 x 5 x 4 block of cells
    layer = built(plotter, shape, origin, m)
    layer.set_shown("slice", False)                         # nothing cut away
    assert layer.surface.n_cells == 2 * (6 * 5 + 5 * 4 + 6 * 4)
    assert np.isclose(layer.surface.area, 2 * (12 * 10 + 10 * 8 + 12 * 8))
    # the interior cells have no face drawn
    assert not np.isin(np.ravel_multi_index((2, 4, 5), shape), layer.surface_cells())


def test_cut_away_shows_nothing_in_front_of_the_slice(plotter):
    shape, origin, X, Y = grid()
    layer = built(plotter, shape, origin, vortex(X, Y, shape[0], radius=14.0))
    normal, point = layer.slice_plane
    assert ((layer.surface.points - point) @ normal).max() < 1e-6
    layer.set_arrows_on_slice(False)
    anchors = layer.arrows.points
    assert 0 < layer.arrow_count <= 200 and ((anchors - point) @ normal).max() <= 1e-6
    layer.set_arrows_on_slice(True)
    assert set(layer.arrow_cells()) <= set(layer.slice_cells())


def test_overlay_recolours_surface_and_slice(plotter):
    shape, origin, X, Y = grid()
    layer = built(plotter, shape, origin, vortex(X, Y, shape[0], radius=14.0))
    err = np.random.default_rng(1).uniform(1e-4, 1e-2, shape)
    layer.set_overlay(err, (1e-4, 1e-2), "error", log=True)
    np.testing.assert_allclose(layer.slice.cell_data["color"], err.ravel()[layer._slice_cell], rtol=1e-6)
    np.testing.assert_allclose(layer.surface_colors(), err.ravel()[layer._surface_cell], rtol=1e-6)
    assert layer.lut.GetScale() == 1                     # VTK_SCALE_LOG10
    layer.set_overlay(None, None)
    assert layer.lut.GetScale() == 0


def test_bad_settings_are_refused(plotter):
    shape, origin, X, Y = grid()
    layer = built(plotter, shape, origin, vortex(X, Y, shape[0]))
    with pytest.raises(ValueError, match="isosurface value"):
        layer.set_isosurface("mz", 2.0)
    with pytest.raises(ValueError, match="slice normal"):
        layer.set_slice((0, 0, 0))
    with pytest.raises(ValueError, match="overlay of shape"):
        layer.set_overlay(np.zeros((2, 2, 2)), (0, 1))


def test_boundary_faces_and_fill_index_helpers():
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    pts, faces, cell, centre = boundary_faces(mask, (1, 1, 1), (0, 0, 0))
    assert len(cell) == 6 and (cell == 13).all()
    assert np.allclose(centre, 1.5)
    src = neighbour_fill_index(mask)
    assert (src == 13).sum() == 27                           # every neighbour copies the one cell


def test_a_film_is_left_to_the_flat_view(plotter):
    shape, origin, X, Y = grid(16, 16, 1)
    layer = VolumeLayer()
    layer.build(SimpleNamespace(plotter=plotter), shape, CELL, origin)
    layer.update(SimpleNamespace(m=vortex(X, Y, 1)))
    assert not layer.active
    assert not plotter.renderer.actors                      # nothing added for one layer


def test_surface_faces_point_outwards():
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3, 1:4, 1:5] = True
    pts, faces, cell, centre = boundary_faces(mask, (1.0, 2.0, 3.0), (0, 0, 0))
    q = pts[faces.reshape(-1, 5)[:, 1:]]
    normal = np.cross(q[:, 1] - q[:, 0], q[:, 2] - q[:, 0])
    assert ((normal * (q.mean(axis=1) - centre)).sum(axis=1) > 0).all()   # back faces can be culled
