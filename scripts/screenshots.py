"""Render the README's pictures of the app to docs/ (needs a display: `xvfb-run -a`).

    xvfb-run -a python scripts/screenshots.py              # everything
    xvfb-run -a python scripts/screenshots.py --only main overlay sp4

- docs/window_1024x700.png, docs/window_1920x1080.png: the whole window at the smallest and a
  common screen size (the vortex-disk example run for 0.2 ns).
- docs/screenshot.png: the main window with the vortex-disk example run for 0.4 ns.
- docs/screenshot_error_overlay.png: the same disk with the demag method "neural+probe" and the
  overlay "surrogate error" (log scale), the "Surrogate error" dock in front.
- docs/example_<name>.png: each example of the Examples menu, loaded through the menu's callback
  and run with "Run stages" to a fixed point (simulated time, or the whole sweep), so the
  pictures do not depend on the machine's speed (only a wall-time limit cuts a run short).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import InitialState, Material, Mesh, Problem, ShapeOp  # noqa: E402


def vortex_disk() -> Problem:
    p = Problem(title="vortex disk in 10 mT")
    p.mesh = Mesh((64, 64, 1), (3.0, 3.0, 3.0))
    p.materials = [Material(name="permalloy", alpha=0.05)]
    p.geometry = [ShapeOp("ellipse", "add", "permalloy", {"center_nm": [0, 0], "radii_nm": [96, 96]})]
    p.initial = InitialState("vortex", {})
    p.field.B_mT = (10.0, 0.0, 0.0)
    p.output.table_every_ps = 2.0
    return p.validate()


# simulated time (ns) to reach with "Run stages" (after their relax stages); None: to the end
EXAMPLE_NS = {"sp4": 0.2, "vortex_disk": 0.6, "skyrmion_disk": None, "domain_wall_strip": 0.6,
              "hysteresis_square": None, "network_fails": 0.15}
# the view and the dock in front for each picture
EXAMPLE_DOCK = {"hysteresis_square": "loop", "network_fails": "error"}


def wait(seconds):
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def wait_until(cond, timeout, step=0.1) -> bool:
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            return False
        wait(step)
    return True


def grab(w, out: Path) -> Path:
    from nmag_gui.worker import IDLE
    w.pause()
    wait_until(lambda: w.run_state == IDLE, 30)
    wait(0.8)
    w.plots.refresh()
    wait(0.4)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = w.grab()
    if not image.save(str(out)):
        raise SystemExit(f"could not write {out}")
    f = w.latest_frame
    print(f"wrote {out} ({image.width()}x{image.height()}), t = {f.t * 1e9:.3f} ns, "
          f"<m> = ({f.mean_m[0]:.3f}, {f.mean_m[1]:.3f}, {f.mean_m[2]:.3f}), rows = {len(w.table_rows)}"
          + (f"; last message: {w.last_error}" if w.last_error else ""))
    return out


def run_to(w, ns: float, timeout: float) -> None:
    w.run()
    wait_until(lambda: w.latest_frame is not None and w.latest_frame.t >= ns * 1e-9
               or w.last_error is not None, timeout)


def shot_main(w, docs: Path, timeout: float):
    """The vortex-disk example, loaded through the Examples menu's callback, run for 0.4 ns,
    with its explanation in front (the error docks stay empty without a probe)."""
    from nmag_gui.examples_menu import load_catalog
    entry = [e for e in load_catalog() if e.path.stem == "vortex_disk"][0]
    w.examples.load_example(entry.load(), entry)
    w.view.set_color_by("angle")
    w.bottom_tabs.setCurrentIndex(0)
    w.examples.info_dock.raise_()
    wait(1.0)
    run_to(w, 0.4, timeout)
    return grab(w, docs / "screenshot.png")


def shot_overlay(w, docs: Path, timeout: float):
    p = vortex_disk()
    p.title = "vortex disk, neural demag with the error probe"
    p.solver.demag = "neural+probe"
    p.solver.probe_every = 5
    w.load_problem(p)
    w.view.set_color_by("angle")
    w.view.set_overlay_log(True)
    w.view.set_overlay_kind("error")
    w.error_panel.reset()
    w.examples.clear()
    w.surrogate_dock.raise_()
    wait(1.0)
    run_to(w, 0.3, timeout)
    return grab(w, docs / "screenshot_error_overlay.png")


def shot_size(w, size, docs: Path, timeout: float):
    """The whole window at a given size (the layout check of issue 10): the vortex-disk example
    run for 0.2 ns, the energy-density overlay on, the Example dock in front."""
    from nmag_gui.examples_menu import load_catalog
    entry = [e for e in load_catalog() if e.path.stem == "vortex_disk"][0]
    w.resize(*size)
    wait(0.5)
    w.examples.load_example(entry.load(), entry)
    w.view.set_overlay_kind("none")
    w.examples.info_dock.raise_()
    w.bottom_tabs.setCurrentIndex(0)
    wait(1.0)
    run_to(w, 0.2, timeout)
    out = grab(w, docs / f"window_{size[0]}x{size[1]}.png")
    w.resize(1800, 1060)
    return out


def shot_example(w, entry, docs: Path, timeout: float):
    from nmag_gui.worker import IDLE
    name = entry.path.stem
    w.examples.load_example(entry.load(), entry)        # what the Examples menu calls
    dock = EXAMPLE_DOCK.get(name, "info")
    {"loop": w.examples.loop_dock, "error": w.surrogate_dock,
     "info": w.examples.info_dock}[dock].raise_()
    wait(1.0)
    ns = EXAMPLE_NS.get(name)
    w.run_stages()
    wait_until(lambda: w.run_state != IDLE, 10)      # the worker has started the stages
    if ns is None:
        wait_until(lambda: w.run_state == IDLE or w.last_error is not None, timeout)
    else:
        wait_until(lambda: (w.latest_frame is not None and w.latest_frame.t >= ns * 1e-9)
                   or w.run_state == IDLE or w.last_error is not None, timeout)
    return grab(w, docs / f"example_{name}.png")


def main(argv=None) -> list[Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    ap.add_argument("--only", nargs="*", help="1024x700, 1920x1080, main, overlay and/or example names (e.g. sp4)")
    ap.add_argument("--timeout", type=float, default=60.0, help="wall-time limit of each run (s)")
    args = ap.parse_args(argv)

    from PySide6.QtWidgets import QApplication
    from nmag_gui.examples_menu import load_catalog
    from nmag_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["screenshots"])
    docs = Path(args.docs)
    w = MainWindow(problem=vortex_disk())
    w.confirm_discard = lambda: True
    w.resize(1800, 1060)
    w.show()
    wait(1.0)
    want = set(args.only or [])
    out = []
    try:
        for size in ((1024, 700), (1920, 1080)):
            if not want or f"{size[0]}x{size[1]}" in want:
                out.append(shot_size(w, size, docs, args.timeout))
        if not want or "main" in want:
            out.append(shot_main(w, docs, args.timeout))
        if not want or "overlay" in want:
            out.append(shot_overlay(w, docs, args.timeout))
        for entry in load_catalog():
            if not want or entry.path.stem in want:
                w.session.last_error = None
                out.append(shot_example(w, entry, docs, args.timeout))
    finally:
        w.shutdown()
        w.close()
        app.processEvents()
    return out


if __name__ == "__main__":
    main()
