"""Render the pictures of the 3D examples to docs/ (needs a display: `xvfb-run -a`).

    xvfb-run -a python scripts/screenshots_3d.py [--only sp3_vortex ...] [--cache DIR]

Each example is loaded through the Examples menu's own callback, its stages are run headless
by the engine (engine.stages.run_stages, the same code "Run stages" runs) and the snapshot at a
fixed simulated time is put into the window; the catalog's suggested 3D view (slice,
isosurface, cones) is applied and the window is grabbed to docs/example_<name>.png. Runs are
cached in --cache (npz: t, m of every snapshot) so a second call only draws.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# example stem -> (simulated time of the picture in ns, or None for the last snapshot; camera)
SHOTS = {
    "sp3_flower": (None, "3d"),
    "sp3_vortex": (None, "3d"),
    "vortex_thick_disk_3d": (0.1, "3d"),     # the core at its most bent
    "skyrmion_tube_3d": (0.0, "3d"),
    "nanowire_wall_3d": (0.5, "3d"),
}


def wait(seconds):
    from PySide6.QtWidgets import QApplication
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def snapshots(entry, cache: Path):
    """(t (n,), m (n, 3, nz, ny, nx)) of the example's stages, from the cache or computed."""
    f = cache / f"{entry.path.stem}_snaps.npz"
    if f.exists():
        d = np.load(f)
        return d["t"], d["m"]
    import torch
    from engine import Simulation
    from engine.stages import run_stages
    torch.set_num_threads(1)

    class Recorder:
        def __init__(self):
            self.snaps = []

        def add_row(self, row):
            pass

        def add_snapshot(self, t, m):
            self.snaps.append((t, np.asarray(m.detach().cpu().numpy() if hasattr(m, "detach") else m,
                                             dtype=np.float32).copy()))

    p = entry.load()
    rec = Recorder()
    t0 = time.perf_counter()
    run_stages(Simulation(p), p, rec)
    print(f"  ran {entry.path.name} in {time.perf_counter() - t0:.0f} s")
    t = np.array([s[0] for s in rec.snaps])
    m = np.stack([s[1] for s in rec.snaps])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(f, t=t, m=m)
    return t, m


def shot(w, entry, docs: Path, cache: Path) -> Path:
    t_ns, camera = SHOTS[entry.path.stem]
    t, m = snapshots(entry, cache)
    # the last snapshot nearest the time: after a relax stage (several snapshots at one t)
    d = np.abs(t - (t[-1] if t_ns is None else t_ns * 1e-9))
    i = int(np.flatnonzero(d == d.min())[-1])
    w.examples.load_example(entry.load(), entry)          # what the Examples menu calls
    wait(1.0)
    w.load_problem(entry.load(), m=m[i], t=float(t[i]))
    w.examples.info_panel.show_entry(entry)               # loading a state keeps the example's text
    w.examples.info_dock.show()
    w.examples.info_dock.raise_()
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        wait(0.2)
        f = w.drawn_frame
        if f is not None and abs(f.t - t[i]) < 1e-15 and w.view.volume_layer.active:
            break
    applied = w.view.volume_controls.suggest(entry.path)
    w.view.set_color_by(entry.view)
    w.view.set_camera(camera)
    w.view.plotter.camera.zoom(1.35)          # the plane widget's box is larger than the sample
    w.view.volume_controls._render()
    wait(1.5)
    out = docs / f"example_{entry.path.stem}.png"
    image = w.grab()
    if not image.save(str(out)):
        raise SystemExit(f"could not write {out}")
    mm = w.drawn_frame.mean_m
    print(f"wrote {out} ({image.width()}x{image.height()}), t = {t[i] * 1e9:.3f} ns, "
          f"<m> = ({mm[0]:.3f}, {mm[1]:.3f}, {mm[2]:.3f}), 3D view {applied}")
    return out


def main(argv=None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="example names (file stems)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "neuralmag-studio" / "states3d"))
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    args = ap.parse_args(argv)
    from PySide6.QtWidgets import QApplication
    from nmag_gui.examples_menu import load_catalog
    from nmag_gui.main_window import MainWindow
    app = QApplication.instance() or QApplication(["screenshots_3d"])
    w = MainWindow()
    w.confirm_discard = lambda: True
    w.resize(1600, 1000)
    w.show()
    wait(2.0)
    out = []
    try:
        for entry in load_catalog():
            if entry.path.stem in SHOTS and (not args.only or entry.path.stem in args.only):
                out.append(shot(w, entry, Path(args.docs), Path(args.cache)))
    finally:
        w.shutdown()
        w.close()
        app.processEvents()
    return out


if __name__ == "__main__":
    main()
