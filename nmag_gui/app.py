"""Start the desktop app: `main()` or `main(["project.h5"])` (what `nmag gui` calls)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    """Create the QApplication and the main window; open PROJECT.h5 when given. Returns the
    exit code of the event loop."""
    parser = argparse.ArgumentParser(prog="nmag gui", description="NeuralMAG Studio, the desktop app")
    parser.add_argument("project", nargs="?", help="a project file (.h5) to open")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))

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
