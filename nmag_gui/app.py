"""Start the desktop app: `main()` or `main(["project.h5"])` (what `nmag gui` calls)."""
from __future__ import annotations

import argparse
import sys


def app_environment() -> None:
    """Settings of the engine that differ in the desktop app, unless the user set them.

    NMAG_COMPILE=0: no background torch.compile of the fused kernels (engine.fused). On grids of
    256^2 and more a run's first steps start that compile in a thread of this process, and
    inductor then held the GIL for up to a second at a time: the window froze for 1034 ms on
    a 256^2 film (a timer ticking every 5 ms on the GUI thread; without the compile at most
    112 ms). The eager kernels cost the LLG arithmetic about 2x at 1024^2, a small share of a
    live run whose pace the view sets; `nmag run` and sweeps keep compiling. Set NMAG_COMPILE=auto
    to compile in the app too."""
    import os
    os.environ.setdefault("NMAG_COMPILE", "0")


def main(argv=None) -> int:
    """Create the QApplication and the main window; open PROJECT.h5 when given. Returns the
    exit code of the event loop."""
    parser = argparse.ArgumentParser(prog="nmag gui", description="NeuralMAG Studio, the desktop app")
    parser.add_argument("project", nargs="?", help="a project file (.h5) to open")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    app_environment()

    from PySide6.QtWidgets import QApplication
    from .main_window import APP_NAME, MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "nmag"])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("NeuralMAG")
    window = MainWindow()
    if args.project:
        window.open_project(args.project)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
