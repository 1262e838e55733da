"""How the 3D view keeps up with a thick sample: view frames per second, time per frame (the
layer's numpy/VTK update and the render), and the event-loop latency (how late a 10 ms QTimer
fires), with outer surface + slice + isosurface + cones shown.

Run under a display (Xvfb on a headless machine):

    xvfb-run -a python benchmarks/bench_gui3d.py [--seconds 8] [--grid 64 64 32]

Stored frames (a vortex whose core circles and tilts through a disk of the given grid) go to
the SpinView the way the app's frame timer sends them: a feeder offers a frame every 15 ms and
the latest one is drawn (frames are dropped, never queued) by the app's rule (--drawer app,
MainWindow._on_frame): a single-shot timer started when a frame arrives, due 33 ms after the
last draw, at once when that has passed. --drawer periodic is the rule of the first version of
this benchmark, a 33 ms periodic QTimer: a draw cycle longer than 33 ms then waits for the next
tick (Qt skips missed ones), so it caps the rate at 15, 10, ... fps. Phases:
  volume     the thick sample with every part of the 3D view shown (target: 15 fps, p95 < 50 ms)
  film       a 256 x 256 x 1 film in the same view with the volume layer installed
  film-only  the same film in a view without the volume layer (today's view: the peer)
  idle       nothing drawn (the machine's own latency)
Before the view phases, the worker's side ("frames"): bytes a frame copies and the time to
make it, for the grid and the film, by the path before issue 11 item 4 (Simulation.frame():
m, the probe's error map copied every frame, H_net and H_fft copied every probe) and by the
worker's make_frame (m, float32; the error map and H fields once per probe, H only when an
overlay draws it). A grid the network does not cover (or no network) gets a synthetic probe
(float32 arrays of the engine's shapes) so that the probe's copies are counted; said in the JSON.
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


def frame_problem(nx, ny, nz, demag):
    """A permalloy disk (nz > 1: a cylinder through the grid) or square film (nz = 1) of 3 nm
    cells starting from a vortex, with the demag method `demag`."""
    from engine import InitialState, Material, Mesh, Problem, ShapeOp
    p = Problem(title=f"frames {nx}x{ny}x{nz}")
    p.mesh = Mesh((nx, ny, nz), (3.0, 3.0, 3.0))
    p.materials = [Material(name="permalloy")]
    if nz > 1:
        p.geometry = [ShapeOp("cylinder", "add", "permalloy",
                              {"radius_nm": 1.5 * min(nx, ny), "height_nm": 3.0 * nz})]
    else:
        p.geometry = [ShapeOp("rectangle", "add", "permalloy", {"center_nm": [0, 0], "size_nm": [1e6, 1e6]})]
    p.initial = InitialState("vortex", {})
    p.solver.demag = demag
    return p.validate()


def frame_costs(grids, repeats: int = 15) -> dict:
    """Bytes copied and milliseconds per frame on the worker's side, before and after (see the
    module docstring), min and median over `repeats` frames each, A and B interleaved."""
    import warnings
    from types import SimpleNamespace
    from nmag_gui.worker import SimulationWorker
    out = {}
    for nx, ny, nz in grids:
        w = SimulationWorker()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # outside the model card: the exact FFT
            try:
                w.reset(frame_problem(nx, ny, nz, "neural+probe"), 1)
            except Exception:  # noqa: BLE001 - no network here
                pass
            if w.sim is None:
                w.reset(frame_problem(nx, ny, nz, "fft"), 1)
        sim = w.sim
        for _ in range(sim.problem.solver.probe_every if sim.problem.solver.demag == "neural+probe" else 1):
            sim.step()
        probe = getattr(sim.demag, "last_probe", None)
        synthetic = probe is None
        if synthetic:
            z = np.zeros((3, nz, ny, nx), np.float32)
            sim.demag.last_probe = SimpleNamespace(H_net=z + 1, H_fft=z + 2, error_map=z[0] + 0.1,
                                                   rel_l2=0.01, t=sim.t)
            probe = sim.demag.last_probe
        w.needs = frozenset({"error_map"})        # the app's default (the surrogate dock)

        def old_frame(new_probe):
            f = sim.frame(with_energies=False)   # m and the error map, copied every frame
            if new_probe:                         # the old worker's per-probe copy of both fields
                np.array(probe.H_net, dtype=np.float32, copy=True)
                np.array(probe.H_fft, dtype=np.float32, copy=True)
            return f

        def new_frame(new_probe):
            if new_probe:
                w._error_ref = w._probe_ref = None
            return w.make_frame(with_energies=False)

        times = {"before": [], "after": [], "before_probe": [], "after_probe": []}
        for _ in range(repeats):
            for key, fn in (("before", old_frame), ("after", new_frame)):
                for probe_key, new_probe in ((key, False), (key + "_probe", True)):
                    t0 = time.perf_counter()
                    fn(new_probe)
                    times[probe_key].append(1e3 * (time.perf_counter() - t0))
        m_bytes = 3 * nx * ny * nz * 4
        H_bytes = 2 * m_bytes
        e_bytes = nx * ny * nz * 4
        out[f"{nx}x{ny}x{nz}"] = {
            "demag": sim.problem.solver.demag, "synthetic_probe": synthetic,
            "bytes_per_frame": {"before": m_bytes + e_bytes, "after": m_bytes},
            "bytes_per_probe_extra": {"before": H_bytes, "after": e_bytes,
                                      "after_with_H_overlay": e_bytes + H_bytes},
            "make_frame_ms": {k: {"min": float(np.min(v)), "median": float(np.median(v))}
                              for k, v in times.items()},
        }
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--grid", type=int, nargs=3, default=[64, 64, 32], metavar=("NX", "NY", "NZ"))
    ap.add_argument("--film", type=int, default=256)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gui3d.json"))
    ap.add_argument("--no-frames", action="store_true", help="skip the worker-side frame costs")
    ap.add_argument("--drawer", choices=("app", "periodic"), default="app",
                    help="when frames are drawn: the app's rule (default) or a 33 ms periodic timer")
    args = ap.parse_args(argv)
    frames = {} if args.no_frames else frame_costs([tuple(args.grid), (args.film, args.film, 1)])

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
    state = {"drawn_at": 0.0, "phase": None, "frames": [], "i": 0, "latest": None, "view": None, "cell": None,
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
            if args.drawer == "app" and not drawer.isActive():
                # MainWindow._on_frame: one draw at most every DRAW_MS after the last one
                wait = DRAW_MS - 1e3 * (time.perf_counter() - state["drawn_at"])
                drawer.start(int(max(0.0, wait)))

    def draw():                       # the GUI's frame timer: draw the latest, drop the rest
        f, state["latest"] = state["latest"], None
        if f is None or state["view"] is None:
            return
        t0 = time.perf_counter()
        state["view"].show_frame(f, state["cell"])
        state["drawn_at"] = time.perf_counter()
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
    drawer.setSingleShot(args.drawer == "app")
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
        if args.drawer == "periodic":
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
    res = {"grid": [nx, ny, nz], "film": [args.film, args.film, 1], "drawer": args.drawer, "phases": results,
           "frames": frames,
           "view_px": [views["with_volume"].plotter.interactor.width(),
                       views["with_volume"].plotter.interactor.height()],
           "load_average": list(os.getloadavg()),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for v in views.values():
        v.close()
    print(f"3D view benchmark: {nx}x{ny}x{nz} disk (surface + slice + isosurface + cones) and a "
          f"{args.film}x{args.film} film; view {res['view_px'][0]}x{res['view_px'][1]} px; drawer {args.drawer}; "
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
    for grid, r in frames.items():
        b, ms = r["bytes_per_frame"], r["make_frame_ms"]
        print(f"  worker frame {grid} ({r['demag']}{', synthetic probe' if r['synthetic_probe'] else ''}): "
              f"{b['before'] / 1e6:.2f} -> {b['after'] / 1e6:.2f} MB copied per frame, "
              f"+{r['bytes_per_probe_extra']['before'] / 1e6:.2f} -> +{r['bytes_per_probe_extra']['after'] / 1e6:.2f} MB "
              f"per probe; make frame ms (median) {ms['before']['median']:.2f} -> {ms['after']['median']:.2f}, "
              f"with a new probe {ms['before_probe']['median']:.2f} -> {ms['after_probe']['median']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
