"""Render the main window with a running vortex to docs/screenshot.png.

A permalloy disk (192 nm, 3 nm cells) starts in a vortex; a 10 mT in-plane field pushes the
core sideways and it gyrates towards its new place. The run goes to a fixed simulated time
(0.4 ns, so the picture does not depend on the machine's speed), then the window is grabbed. Needs a display: `xvfb-run -a python scripts/screenshot.py`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nmag_gui  # noqa: E402,F401 - first (see nmag_gui._pin_singletons)
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


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--ns", type=float, default=0.4, help="simulated time to run before the grab")
    ap.add_argument("--timeout", type=float, default=120.0, help="wall-time limit of the run (s)")
    ap.add_argument("--color-by", default="angle", choices=["angle", "mx", "my", "mz"])
    args = ap.parse_args(argv)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication
    from nmag_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["screenshot"])
    w = MainWindow(problem=vortex_disk())
    w.confirm_discard = lambda: True
    w.resize(1440, 900)
    w.show()
    w.view.set_color_by(args.color_by)

    def wait(seconds):
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    wait(1.0)
    w.run()
    t0 = time.perf_counter()
    while (w.latest_frame is None or w.latest_frame.t < args.ns * 1e-9) and \
            time.perf_counter() - t0 < args.timeout and w.last_error is None:
        wait(0.1)
    w.pause()
    wait(1.0)
    w.plots.refresh()
    wait(0.3)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = w.grab()
    if not image.save(str(out)):
        raise SystemExit(f"could not write {out}")
    f = w.latest_frame
    print(f"wrote {out} ({image.width()}x{image.height()}), t = {f.t * 1e9:.3f} ns, "
          f"<m> = ({f.mean_m[0]:.3f}, {f.mean_m[1]:.3f}, {f.mean_m[2]:.3f})")
    w.shutdown()
    w.close()
    return out


if __name__ == "__main__":
    main()
