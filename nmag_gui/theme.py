"""Dark and light themes: a Qt palette, the matching VTK background and pyqtgraph colours.

The default follows the desktop (`QStyleHints.colorScheme()`, Qt 6.5+); `apply_theme(app,
name)` switches at run time: the Fusion style with our palette, the background of every open
pyvista plotter that was registered with `register_plotter`, and the pyqtgraph plots.

Example::

    apply_theme(app, default_theme_name(app))     # "dark" or "light"
"""
from __future__ import annotations

import weakref

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("dark", "light")

# VTK backgrounds (RGB 0..1): a gradient bottom and top, calm enough for coloured spins. The
# light theme's is a lighter slate, not white: the view's labels, ruler and scale bars are white
# (on a near-white background they could not be read).
VTK_BACKGROUND = {"dark": ((0.10, 0.11, 0.13), (0.20, 0.22, 0.26)),
                  "light": ((0.19, 0.21, 0.25), (0.36, 0.40, 0.47))}
# pyqtgraph legends: a translucent box in the plot's own colour
LEGEND_BRUSH = {"dark": (30, 31, 34, 200), "light": (255, 255, 255, 215)}
# pyqtgraph: plot background and foreground (axes, text)
PLOT_COLOURS = {"dark": ("#1e1f22", "#d0d0d0"), "light": ("#ffffff", "#303030")}

_plotters: "weakref.WeakSet" = weakref.WeakSet()
current_theme = "light"


def default_theme_name(app=None) -> str:
    """"dark" when the desktop asks for a dark colour scheme, else "light"."""
    app = app or QApplication.instance()
    try:
        scheme = app.styleHints().colorScheme()
        return "dark" if scheme == Qt.ColorScheme.Dark else "light"
    except AttributeError:      # Qt before 6.5
        return "light"


def palette(name: str) -> QPalette:
    """The QPalette of a theme."""
    if name not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {name!r}")
    p = QPalette()
    if name == "dark":
        base, window, text = QColor(30, 31, 34), QColor(43, 45, 49), QColor(223, 225, 229)
        button, highlight, link = QColor(53, 56, 61), QColor(64, 128, 220), QColor(110, 170, 255)
        disabled = QColor(120, 122, 128)
        alt = QColor(38, 40, 44)
        tip_base, tip_text = QColor(60, 63, 68), text
    else:
        base, window, text = QColor(255, 255, 255), QColor(239, 240, 242), QColor(25, 27, 30)
        button, highlight, link = QColor(229, 231, 235), QColor(38, 110, 210), QColor(20, 90, 200)
        disabled = QColor(150, 152, 158)
        alt = QColor(246, 247, 249)
        tip_base, tip_text = QColor(255, 255, 225), QColor(20, 20, 20)
    roles = {QPalette.Window: window, QPalette.WindowText: text, QPalette.Base: base,
             QPalette.AlternateBase: alt, QPalette.ToolTipBase: tip_base, QPalette.ToolTipText: tip_text,
             QPalette.Text: text, QPalette.Button: button, QPalette.ButtonText: text,
             QPalette.BrightText: QColor(255, 80, 80), QPalette.Highlight: highlight,
             QPalette.HighlightedText: QColor(255, 255, 255), QPalette.Link: link,
             QPalette.PlaceholderText: disabled}
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.Text, QPalette.WindowText, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, disabled)
    return p


def register_plotter(plotter) -> None:
    """Let apply_theme recolour this pyvista plotter's background (weakly held)."""
    _plotters.add(plotter)
    set_plotter_background(plotter, current_theme)


def set_plotter_background(plotter, name: str) -> None:
    bottom, top = VTK_BACKGROUND[name]
    try:
        plotter.set_background(bottom, top=top)
    except Exception:            # a closed plotter: nothing to recolour
        pass


def apply_theme(app, name: str, window=None) -> None:
    """Switch the app to the "dark" or "light" theme (GUI thread). Plots are recoloured inside
    `window` only: app.allWidgets() also lists widgets of closed windows awaiting deletion,
    and touching those crashed the process (seen in the test suite)."""
    global current_theme
    pal = palette(name)
    # each of these re-polishes every widget of the application, including those of closed
    # windows awaiting deletion: a new window with the theme already in place skips them
    # (the full test suite crashed once in setStyle when the next window opened)
    if app.style().objectName().lower() != "fusion":
        app.setStyle("Fusion")
    if app.palette() != pal:
        app.setPalette(pal)
    current_theme = name
    for plotter in list(_plotters):
        set_plotter_background(plotter, name)
    if window is not None:
        _recolour_plots(window, name)


def _recolour_plots(window, name: str) -> None:
    try:
        import pyqtgraph as pg
    except ImportError:
        return
    bg, fg = PLOT_COLOURS[name]
    pg.setConfigOption("background", bg)
    pg.setConfigOption("foreground", fg)
    for w in window.findChildren(pg.PlotWidget):
        w.setBackground(bg)
        item = w.getPlotItem()
        for axis in ("left", "bottom", "right", "top"):
            ax = item.getAxis(axis)
            ax.setPen(fg)
            ax.setTextPen(fg)
        item.titleLabel.item.setDefaultTextColor(QColor(fg))
        for curve in item.listDataItems():
            if curve.name() == "total":          # drawn in the text colour (nmag_gui.plots)
                curve.setPen(pg.mkPen(fg, width=2))
        legend = item.legend
        if legend is not None:
            legend.setBrush(pg.mkBrush(*LEGEND_BRUSH[name]))
            legend.setPen(pg.mkPen(fg, width=0.5))
            legend.opts["labelTextColor"] = pg.mkColor(fg)
            for _sample, label in legend.items:
                label.setText(label.text, color=fg)
