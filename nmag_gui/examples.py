"""Examples: the Examples menu, the "Example" dock with the chosen example's explanation and the
"Loop" dock (one table column against another, e.g. <mx> against Bx for a field sweep).

Choosing an example asks before unsaved work is dropped (as New and Open do), loads the
problem into the Session, shows its explanation and applies the suggested colouring and
overlay. The loop plot subscribes to the Session's table (rowsAdded, tableReset).
"""
from __future__ import annotations

import traceback

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QDockWidget, QSizePolicy

from .examples_menu import ExampleInfoPanel, HysteresisLoopPanel, _axis_label, build_examples_menu


class Examples(QObject):
    """The examples' menu and docks for one window. window: the MainWindow (its session,
    view, confirm_discard and add_dock)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.entry = None
        self.info_panel = ExampleInfoPanel()
        self.loop_panel = HysteresisLoopPanel("Bx_mT", "mx")
        for panel in (self.info_panel, self.loop_panel):
            panel.setMinimumSize(200, 160)
            panel.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
        self.info_dock = QDockWidget("Example", window)
        self.info_dock.setObjectName("example_dock")
        self.info_dock.setWidget(self.info_panel)
        self.loop_dock = QDockWidget("Loop", window)
        self.loop_dock.setObjectName("loop_dock")
        self.loop_dock.setWidget(self.loop_panel)
        self.menu = build_examples_menu(window, self.load_example)
        self.session.rowsAdded.connect(self._on_rows)
        self.session.tableReset.connect(self._on_table_reset)
        self._tracking = True

    # ---- examples
    def load_example(self, problem, entry) -> bool:
        """Load an example (asks first when there is unsaved work). False when cancelled."""
        w = self.window
        if self.session.dirty and not w.confirm_discard():
            return False
        self.session.pause()
        self.entry = entry
        self.info_panel.show_entry(entry)
        self.info_dock.show()
        self.info_dock.raise_()
        w.load_problem(problem)
        view = w.view
        try:
            view.set_color_by(entry.view)
        except ValueError:
            pass
        try:
            view.set_overlay_kind(entry.overlay or "none")    # the example's suggestion
        except ValueError:
            pass
        self._suggest_3d_view(view, entry)
        if entry.plot == "loop":
            self.loop_panel.x_name, self.loop_panel.y_name = entry.plot_x, entry.plot_y
            self.loop_panel.plot.setLabel("bottom", _axis_label(entry.plot_x))
            self.loop_panel.plot.setLabel("left", _axis_label(entry.plot_y))
            self.loop_dock.show()
        else:
            self.loop_dock.hide()
        self._resize_docks()
        return True

    def _resize_docks(self) -> None:
        """The Loop dock's tab came or went: the right docks get room for their tabs."""
        size_docks = getattr(self.window, "_size_docks", None)
        if size_docks is not None:
            QTimer.singleShot(0, self.window, size_docks)     # not after the window is gone

    @staticmethod
    def _suggest_3d_view(view, entry) -> None:
        """Apply the example's suggested 3D view (slice normal, isosurface, cones) now, on
        every load: the volume layer keeps these settings through a rebuild, and its own
        hook (volume_controls.install_volume_view's on_build) ran only when the grid changed,
        so an example on the grid of the one before kept the old slice and isosurface."""
        controls = getattr(view, "volume_controls", None)
        if controls is None:
            return
        controls.suggested_for = entry       # the rebuild that may follow applies nothing twice
        try:
            controls.suggest(entry.path)
        except Exception:  # noqa: BLE001 - a suggestion is cosmetic: never fail the load
            traceback.print_exc()

    def clear(self) -> None:
        """No example (New): the explanation and the loop go."""
        self.entry = None
        self.info_panel.clear()
        self.loop_panel.set_rows([])
        self.loop_dock.hide()
        self._resize_docks()

    def start_loop(self) -> None:
        """A stages run begins: the loop plot shows its rows only."""
        self.loop_panel.set_rows([])

    # ---- the table
    @Slot(list)
    def _on_rows(self, rows) -> None:
        try:
            self.loop_panel.add_rows(rows)
        except Exception:  # noqa: BLE001 - a slot must not raise into Qt
            traceback.print_exc()

    @Slot()
    def _on_table_reset(self) -> None:
        self.loop_panel.set_rows(self.session.table_rows)

