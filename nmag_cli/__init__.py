"""The `nmag` command: the one entry point above both packages.

    nmag                          open the desktop app
    nmag gui [PROJECT.h5]         open the desktop app (optionally a project or problem file)
    nmag run | check | train | sweep ...   the headless engine commands (engine.cli)

It lives here so that the engine never names the app (engine.cli knows only its own commands)
and the app never owns the command line.
"""
from __future__ import annotations

import gc
import sys

GUI_HELP = """
app:
  nmag                      open the desktop app
  nmag gui [PROJECT]        open the desktop app with a project (.h5) or problem (.toml)
"""


def console_main() -> int:
    """The installed `nmag` command: main(), then the process ends at once if a compile is still
    running in the background (engine.fused.exit_now_if_compiling: shutting down beside it could
    abort with status 134 after the work was done). main() itself never ends the process, so
    tests and scripts can call it. Before returning, the objects alive by then are frozen out of
    the garbage collector (gc.freeze): the interpreter's last collection at exit would otherwise
    walk the ~170,000 objects that torch and the engine leave, 0.3 s of every command (measured
    here, import and exit paired: 1.98 against 2.27 s). Objects in reference cycles are then not
    finalised at exit: the commands close their files themselves before this."""
    try:
        code = main()
    except KeyboardInterrupt:      # Ctrl+C before a command's own handler is in place (imports)
        print("\nnmag: interrupted; nothing written", file=sys.stderr)
        return 130
    if "engine.fused" in sys.modules:
        sys.modules["engine.fused"].exit_now_if_compiling(code)
    gc.freeze()
    return code


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "gui":
        return _gui(argv[1:2])
    from engine.cli import main as engine_main
    if argv[0] in ("-h", "--help"):
        from engine.cli import _parser
        _parser().print_help()
        print(GUI_HELP)
        return 0
    return engine_main(argv)


def _gui(args) -> int:
    import os
    if args and not os.path.exists(args[0]):
        print(f"nmag: error: {args[0]}: no such file (a project .h5 or a problem .toml)", file=sys.stderr)
        return 2
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        print("nmag: no display for the desktop app (DISPLAY and WAYLAND_DISPLAY are unset); run it in a "
              "desktop session, under xvfb-run, or use the headless commands (nmag run --help)", file=sys.stderr)
        return 1
    try:
        from nmag_gui.app import main as app_main
    except ImportError as e:
        print(f"nmag: the desktop app is not available ({e}); install with pip install -e .", file=sys.stderr)
        return 1
    return app_main(args)


if __name__ == "__main__":
    sys.exit(console_main())
