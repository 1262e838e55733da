"""How the 3D view keeps up with a thick sample: view frames per second, time per frame (the
layer's numpy/VTK update and the render), and the event-loop latency (how late a 10 ms QTimer
fires), with outer surface + slice + isosurface + cones shown.

Run under a display (Xvfb on a headless machine):

    xvfb-run -a python benchmarks/bench_gui3d.py [--seconds 8] [--grid 64 64 32]

Stored frames (a vortex whose core circles and tilts through a disk of the given grid) go to
the SpinView the way the app's frame timer sends them: a feeder offers a frame every 15 ms, a
33 ms GUI timer draws the latest one (frames are dropped, never queued). Phases:
  volume     the thick sample with every part of the 3D view shown (target: 15 fps, p95 < 50 ms)
  film       a 256 x 256 x 1 film in the same view with the volume layer installed
  film-only  the same film in a view without the volume layer (today's view: the peer)
  idle       nothing drawn (the machine's own latency)
Prints a table and writes benchmarks/results/gui3d.json. The render of software OpenGL is CPU
work: on a shared machine the load average printed with the table matters.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_gui import stats  # noqa: E402  (the film benchmark's summary: n, mean, p50, p95, max)

PROBE_MS = 10
DRAW_MS = 33


def vortex_frames(nx, ny, nz, n_frames=12, cell=3.0):
    """Frames of a disk-shaped sample holding a vortex whose core circles the centre and leans
    (top and bottom shifted apart), so the isosurface and slice change every frame."""
    from engine.frame import Frame
    x = (np.arange(nx) + 0.5 - nx / 2) * cell
    y = (np.arange(ny) + 0.5 - ny / 2) * cell
    z = (np.arange(nz) + 0.5 - nz / 2) / nz
    Z, Y, X = np.meshgrid(z, y, x, indexing="ij")
    R = 0.5 * min(nx, ny) * cell
    disk = (X ** 2 + Y ** 2) <= R ** 2
    frames = []
    for k in range(n_frames):
        a = 2 * np.pi * k / n_frames
        cx = 0.2 * R * np.cos(a) + 0.15 * R * Z
        cy = 0.2 * R * np.sin(a)
        r = np.hypot(X - cx, Y - cy)
        phi = np.arctan2(Y - cy, X - cx)
        mz = 2 * np.exp(-(r / (0.15 * R)) ** 2) - 0.2
        mz = np.clip(mz, -1, 1)
        ip = np.sqrt(1 - mz ** 2)
        m = np.stack([-np.sin(phi) * ip, np.cos(phi) * ip, mz]) * disk[None]
        m = m.astype(np.float32)
        frames.append(Frame(t=k * 1e-12, steps=k, dt=1e-12, m=m, mean_m=m.reshape(3, -1).mean(1),
                            energies={}, max_torque=float("nan"), demag_method="fft"))
    return frames


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--grid", type=int, nargs=3, default=[64, 64, 32], metavar=("NX", "NY", "NZ"))
    ap.add_argument("--film", type=int, default=256)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gui3d.json"))
    args = ap.parse_args(argv)

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication
    from nmag_gui.spin_view import SpinView

    app = QApplication.instance() or QApplication(["bench_gui3d"])
    views = {"with_volume": SpinView(), "plain": SpinView()}
    plain = views["plain"]
    plain.scene.remove_layer(plain.volume_layer)      # today's film view: no volume layer at all
    for v in views.values():
        v.resize(1000, 700)
    nx, ny, nz = args.grid
    data = {"volume": (vortex_frames(nx, ny, nz), (3.0, 3.0, 3.0), "with_volume"),
            "film": (vortex_frames(args.film, args.film, 1), (3.0, 3.0, 3.0), "with_volume"),
            "film-only": (vortex_frames(args.film, args.film, 1), (3.0, 3.0, 3.0), "plain")}

    render_ms: list[float] = []
    update_ms: list[float] = []
    layer_ms: list[float] = []
    lateness: list[float] = []
    clock = QElapsedTimer()
    state = {"phase": None, "frames": [], "i": 0, "latest": None, "view": None, "cell": None,
             "last_probe": None, "t0": 0.0}

    def timed_paint_of(view):
        interactor = view.plotter.interactor
        original = interactor.paintEvent

        def paint(ev):
            t0 = time.perf_counter()
            original(ev)
            if state["view"] is view:
                render_ms.append((time.perf_counter() - t0) * 1e3)
        interactor.paintEvent = paint

    for v in views.values():
        timed_paint_of(v)

    def feed():                       # the worker's side: a new frame every 15 ms
        if state["frames"]:
            state["latest"] = state["frames"][state["i"] % len(state["frames"])]
            state["i"] += 1

    def draw():                       # the GUI's frame timer: draw the latest, drop the rest
        f, state["latest"] = state["latest"], None
        if f is None or state["view"] is None:
            return
        t0 = time.perf_counter()
        state["view"].show_frame(f, state["cell"])
        update_ms.append((time.perf_counter() - t0) * 1e3)
        layer = getattr(state["view"], "volume_layer", None)
        if layer is not None and layer.active:
            layer_ms.append(layer.timings_ms.get("total", 0.0))

    def on_probe():
        now = clock.nsecsElapsed() / 1e6
        if state["last_probe"] is not None:
            lateness.append(max(0.0, now - state["last_probe"] - PROBE_MS))
        state["last_probe"] = now

    feeder, drawer, probe = QTimer(), QTimer(), QTimer()
    feeder.setInterval(15)
    drawer.setInterval(DRAW_MS)
    probe.setInterval(PROBE_MS)
    feeder.timeout.connect(feed)
    drawer.timeout.connect(draw)
    probe.timeout.connect(on_probe)
    results: dict = {}

    def setup(name):
        for v in views.values():
            v.hide()
        if name == "idle":
            state["view"], state["frames"] = None, []
            return
        frames, cell, which = data[name]
        view = views[which]
        view.show()
        state.update(view=view, frames=frames, cell=cell, i=0, latest=None)
        view.show_frame(frames[0], cell)        # build the actors before timing
        view.set_color_by("angle")
        view.set_camera("3d")
        if name == "volume":
            layer = view.volume_layer
            for part in ("surface", "slice", "iso", "arrows"):
                layer.set_shown(part, True)
            layer.set_isosurface("mz", 0.5)

    def begin(name):
        render_ms.clear()
        update_ms.clear()
        layer_ms.clear()
        lateness.clear()
        state["phase"], state["t0"], state["last_probe"] = name, time.perf_counter(), None
        clock.start()
        probe.start()
        feeder.start()
        drawer.start()

    def end(name):
        dur = time.perf_counter() - state["t0"]
        for t in (probe, feeder, drawer):
            t.stop()
        results[name] = {"seconds": dur, "renders_per_s": len(render_ms) / dur,
                         "frames_drawn_per_s": len(update_ms) / dur,
                         "show_frame_ms": stats(update_ms), "volume_layer_ms": stats(layer_ms),
                         "render_ms": stats(render_ms), "event_loop_latency_ms": stats(lateness)}

    schedule = []
    for name in ("volume", "film", "film-only", "idle"):
        secs = args.seconds if name != "idle" else 2.0
        schedule += [(300, lambda n=name: setup(n)), (1500, lambda n=name: begin(n)),
                     (int(secs * 1000), lambda n=name: end(n))]
    schedule.append((200, app.quit))

    def run_schedule(i=0):
        if i < len(schedule):
            delay, action = schedule[i]
            QTimer.singleShot(delay, lambda: (action(), run_schedule(i + 1)))

    run_schedule()
    app.exec()
    layer = views["with_volume"].volume_layer
    res = {"grid": [nx, ny, nz], "film": [args.film, args.film, 1], "phases": results,
           "view_px": [views["with_volume"].plotter.interactor.width(),
                       views["with_volume"].plotter.interactor.height()],
           "load_average": list(os.getloadavg()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for v in views.values():
        v.close()
    print(f"3D view benchmark: {nx}x{ny}x{nz} disk (surface + slice + isosurface + cones) and a "
          f"{args.film}x{args.film} film; view {res['view_px'][0]}x{res['view_px'][1]} px; "
          f"load average {res['load_average'][0]:.1f} on {os.cpu_count()} cores")
    print(f"  {'phase':<10} {'fps drawn':>9} {'show_frame ms mean/p95':>23} {'render ms mean/p95':>19} "
          f"{'latency ms mean/p95/max':>24}")
    for name, r in results.items():
        s, d, lat = r["show_frame_ms"], r["render_ms"], r["event_loop_latency_ms"]
        print(f"  {name:<10} {r['renders_per_s']:>9.1f} {s.get('mean', 0):>11.1f}/{s.get('p95', 0):<11.1f} "
              f"{d.get('mean', 0):>9.1f}/{d.get('p95', 0):<9.1f} "
              f"{lat.get('mean', 0):>8.1f}/{lat.get('p95', 0):.1f}/{lat.get('max', 0):.1f}")
    if "volume" in results:
        print(f"  volume layer per frame (numpy + contour), mean: {results['volume']['volume_layer_ms'].get('mean', 0):.1f} ms;"
              f" last split: " + ", ".join(f"{k} {v:.1f}" for k, v in layer.timings_ms.items()))
    if "film" in results and "film-only" in results and results["film-only"]["renders_per_s"] > 0:
        print(f"  film with / without the volume layer installed: "
              f"{results['film']['renders_per_s'] / results['film-only']['renders_per_s']:.2f} x the fps")
    print("  targets: volume >= 15 fps and latency p95 < 50 ms; film no slower than film-only")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
