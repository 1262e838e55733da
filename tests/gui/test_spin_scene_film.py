"""The spin scene's own film pictures in the real view (Xvfb): under a thick grid the volume
layer draws and the stacked film quads are hidden and left alone per frame (hover still names
the right cell); a film (nz = 1) still colours its quads every frame."""
from types import SimpleNamespace

import numpy as np
import pytest

from engine.frame import Frame

pytestmark = pytest.mark.gui

CELL = (3.0, 3.0, 3.0)


def vortex_frame(nx, ny, nz, cx=0.0, t=0.0):
    """A disk (diameter nx cells) holding a vortex whose core sits at x = cx nm."""
    x = (np.arange(nx) + 0.5 - nx / 2) * CELL[0]
    y = (np.arange(ny) + 0.5 - ny / 2) * CELL[1]
    X, Y = np.meshgrid(x, y)
    disk = X ** 2 + Y ** 2 <= (0.5 * nx * CELL[0]) ** 2
    r = np.hypot(X - cx, Y)
    mz = np.clip(2 * np.exp(-(r / 6.0) ** 2) - 0.2, -1, 1)
    phi = np.arctan2(Y, X - cx)
    ip = np.sqrt(1 - mz ** 2)
    m2 = np.stack([-np.sin(phi) * ip, np.cos(phi) * ip, mz]) * disk
    m = np.repeat(m2[:, None], nz, axis=1).astype(np.float32)
    return Frame(t=t, steps=int(t * 1e12), dt=1e-13, m=m, mean_m=m.reshape(3, -1).mean(1),
                 energies={}, max_torque=float("nan"), demag_method="fft")


@pytest.fixture
def view(qtbot):
    from nmag_gui.spin_view import SpinView
    v = SpinView()
    qtbot.addWidget(v)
    v.resize(700, 600)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.close()


def test_thick_grid_leaves_the_film_quads_alone_and_hover_names_the_cell(qtbot, view):
    scene = view.scene
    view.show_frame(vortex_frame(20, 20, 6, cx=-9.0), CELL)
    assert view.volume_layer.active and not scene.film_visible
    before = scene.film_rgba()
    calls = []
    real = scene._update_arrays
    scene._update_arrays = lambda m: (calls.append(1), real(m))
    second = vortex_frame(20, 20, 6, cx=9.0, t=1e-12)
    for k in range(3):
        view.show_frame(second if k % 2 == 0 else vortex_frame(20, 20, 6, cx=0.0, t=2e-12), CELL)
    assert calls == []                                      # no per-frame work on the quads
    np.testing.assert_array_equal(scene.film_rgba(), before)
    assert scene.cell_at(350, 300) is None                  # the hidden quads are not picked
    # the colour scalar is still there (computed when asked) and follows the last frame
    m = scene.last_frame.m
    np.testing.assert_allclose(scene.color_array(), (np.degrees(np.arctan2(m[1], m[0])) % 360).ravel())
    # hover, the way the view does it on a mouse move: the volume's top cell under the pointer
    view.set_camera("top")
    view.show_frame(second, CELL)
    qtbot.wait(200)
    iw = view.plotter.interactor
    x, y = iw.width() // 2, int(iw.height() * 0.45)
    cell = view.volume_layer.cell_at(x, y)
    assert cell is not None and cell[0] == 5                # the top layer of 6
    view._hover_at = 0.0
    view._on_mouse_move(SimpleNamespace(GetEventPosition=lambda: (x, y)), None)
    k, j, i = cell
    mm = second.m[:, k, j, i]
    assert f"cell x={i}, y={j}, z={k}" in view.hover_text
    assert f"m = ({mm[0]:+.3f}, {mm[1]:+.3f}, {mm[2]:+.3f})" in view.hover_text
    # back to a film: the quads are shown and coloured again
    film = vortex_frame(20, 20, 1, cx=9.0)
    view.show_frame(film, CELL)
    assert scene.film_visible and not view.volume_layer.active
    assert scene.film_rgba()[0, 10, 10, 3] == 255


def test_a_film_colours_its_quads_every_frame(qtbot, view):
    scene = view.scene
    first = vortex_frame(32, 32, 1, cx=-12.0)
    view.show_frame(first, CELL)
    assert scene.film_visible and not view.volume_layer.active
    rgba0 = scene.film_rgba()
    second = vortex_frame(32, 32, 1, cx=12.0, t=1e-12)
    view.show_frame(second, CELL)
    rgba1 = scene.film_rgba()
    assert not np.array_equal(rgba0, rgba1)
    # the quad's pixel is the colour of the cell's in-plane angle, vacuum transparent
    m = second.m
    angle = np.degrees(np.arctan2(m[1], m[0])) % 360.0
    np.testing.assert_allclose(scene.color_array(), angle.ravel())
    inside = (m ** 2).sum(axis=0) > 0.25
    np.testing.assert_array_equal(rgba1[..., 3] == 255, inside)
    # the arrows point along m of their cells
    assert scene.arrow_count > 0 and np.abs(scene.arrow_vectors()).sum() > 0
    # and hovering the film names the cell under the pointer
    view.set_camera("top")
    qtbot.wait(200)
    ren = view.plotter.renderer                  # where the film's centre is drawn (the top view
    ren.SetWorldPoint(0.0, 0.0, CELL[2], 1.0)    # keeps the film left of the colour bars)
    ren.WorldToDisplay()
    px, py, _ = ren.GetDisplayPoint()
    cell = scene.cell_at(int(round(px)), int(round(py)))
    assert cell is not None and cell[0] == 0 and abs(cell[1] - 16) <= 1 and abs(cell[2] - 16) <= 1


def test_the_overlay_title_stays_inside_a_narrow_view(qtbot, view):
    """A long overlay title (|energy density| ...) ends at the view's right edge, above its bar."""
    view.resize(520, 420)
    qtbot.wait(100)
    first = vortex_frame(32, 32, 1)
    view.show_frame(first, CELL)
    values = np.where((first.m ** 2).sum(axis=0) > 0.25, 1e5, np.nan)
    view.set_overlay(values, (1e3, 1e6), "|energy density| [J/m³] (log)", log=True)
    view.plotter.render()
    boxes = view.scene.overlay_bar_boxes()
    width = view.plotter.renderer.GetSize()[0]
    x0, y0, x1, _y1 = boxes["title"]
    assert 0 <= x0 < x1 <= width and x1 - x0 > 20
    assert y0 >= boxes["bar"][3] - 1                       # above the bar


def test_a_long_strip_seen_from_the_top_ends_left_of_the_colour_bars(qtbot, view):
    """A 1000 x 100 nm strip in a small view ran under the m colour bar (1024 x 700 window)."""
    view.resize(440, 345)
    qtbot.wait(100)
    nx, ny = 200, 20
    m = np.zeros((3, 1, ny, nx), np.float32)
    m[0] = 1.0
    frame = Frame(t=0.0, steps=0, dt=1e-13, m=m, mean_m=m.reshape(3, -1).mean(1), energies={},
                  max_torque=float("nan"), demag_method="fft")
    view.show_frame(frame, (5.0, 5.0, 5.0))
    for preset in ("top", "reset"):
        view.set_camera(preset)
        ren = view.plotter.renderer
        W, H = ren.GetSize()
        xs, ys = [], []
        for x in (-500.0, 500.0):
            for y in (-50.0, 50.0):
                ren.SetWorldPoint(x, y, 5.0, 1.0)
                ren.WorldToDisplay()
                px, py, _ = ren.GetDisplayPoint()
                xs.append(px / W)
                ys.append(py / H)
        assert min(xs) > 0.0 and max(xs) < 0.80          # the overlay's bar starts at 0.80, m's at 0.88
        assert min(ys) > 0.0 and max(ys) < 1.0
        assert max(xs) - min(xs) > 0.6                   # and the strip still fills the view


def test_the_views_load_only_the_vtk_modules_they_use():
    # `import vtk` loads every VTK module: 0.47 s more of the app's start than pyvista needs
    import subprocess
    import sys
    code = "import sys, nmag_gui.main_window; print('vtk' in sys.modules, 'vtkmodules.all' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"], out.stdout
