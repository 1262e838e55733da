"""Live plots: <mx>, <my>, <mz> and each energy term against simulated time (ns).

Points are appended from frames (against t) or from table rows (against the row number, for a
field sweep, where t stands still). To keep drawing cheap on long runs, the stored series are
decimated (every other point dropped) whenever they reach `max_points`, so the whole history
stays visible at half the resolution. The curves are redrawn by `refresh()`, not per point.

The legends are labels above the plots, in the curves' colours: a legend box inside the plot
covered the curves, and a legend drawn as the plot's title did not wrap, so a long one (five
energy terms) made the plot wider than its widget and cut it off on the right. The labels wrap
between entries, so each plot always fits its widget. The <m> axis follows the data (with at
least 0.02 of range), so a small gyration of <m> is visible.

Example::

    plots = LivePlots()
    plots.append(frame.t, frame.mean_m, frame.energies)
    plots.refresh()
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

MAX_POINTS = 4000
M_COLORS = {"mx": "#e4572e", "my": "#4caf50", "mz": "#3d8bfd"}
E_COLORS = ["#f4a261", "#2a9d8f", "#c77dff", "#e9c46a", "#8ab17d", "#ef476f"]


def _round_up(x: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= x (x > 0)."""
    p = 10 ** np.floor(np.log10(x))
    for f in (1, 2, 5, 10):
        if f * p >= x * (1 - 1e-12):
            return float(f * p)
    return float(10 * p)


def _legend_title(items) -> str:
    """Rich text naming the curves in their colours (the legend, clear of the data). An entry
    never breaks inside; the text wraps between entries. A colour of None is the text colour
    (it follows the theme)."""
    def entry(name, c):
        name = name.replace(" ", "&nbsp;")
        if c is None:
            return f"<span style='white-space:nowrap'>■&nbsp;{name}</span>"
        c = c if isinstance(c, str) else pg.mkColor(c).name()
        return f"<span style='color:{c}; white-space:nowrap'>■&nbsp;{name}</span>"
    return "&nbsp;&nbsp; ".join(entry(name, c) for name, c in items)


def _legend_label() -> QLabel:
    """The legend above a plot: centred, wrapping between entries, never wider than the plot."""
    label = QLabel()
    label.setTextFormat(Qt.RichText)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignHCenter | Qt.AlignBottom)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)   # no minimum width of its own
    label.setContentsMargins(4, 2, 4, 0)
    label.setAutoFillBackground(True)                 # the palette's Base: the plots' background
    label.setBackgroundRole(QPalette.Base)
    return label


class Series:
    """A growing (t, y...) table with a point cap: at `max_points` every other row is dropped."""

    def __init__(self, max_points: int = MAX_POINTS):
        self.max_points = max_points
        self.t = np.empty(0)
        self.y: dict[str, np.ndarray] = {}
        self._buf_t: list[float] = []
        self._buf_y: dict[str, list[float]] = {}

    def append(self, t: float, values: dict) -> None:
        self._buf_t.append(t)
        keys = list(self.y) + [k for k in self._buf_y if k not in self.y]
        keys += [k for k in values if k not in keys]          # first-seen order, for the legend
        for k in keys:
            self._buf_y.setdefault(k, [np.nan] * (len(self._buf_t) - 1)).append(float(values.get(k, np.nan)))

    def flush(self) -> bool:
        """Move buffered points into the arrays; decimate past the cap. True when anything changed."""
        if not self._buf_t:
            return False
        n_old = len(self.t)
        self.t = np.concatenate([self.t, self._buf_t])
        for k, vals in self._buf_y.items():
            old = self.y.get(k, np.full(n_old, np.nan))
            self.y[k] = np.concatenate([old, vals])
        for k in self.y:
            if len(self.y[k]) < len(self.t):
                self.y[k] = np.concatenate([self.y[k], np.full(len(self.t) - len(self.y[k]), np.nan)])
        self._buf_t, self._buf_y = [], {}
        while len(self.t) > self.max_points:
            last_t = self.t[-1]
            keep = np.zeros(len(self.t), bool)
            keep[::2] = True
            keep[-1] = True           # the newest point always stays
            self.t = self.t[keep]
            self.y = {k: v[keep] for k, v in self.y.items()}
            assert self.t[-1] == last_t
        return True

    def clear(self) -> None:
        self.__init__(self.max_points)

    def __len__(self) -> int:
        return len(self.t) + len(self._buf_t)


class LivePlots(QWidget):
    """Two pyqtgraph plots side by side: the average magnetization and the energies (J)."""

    def __init__(self, parent=None, max_points: int = MAX_POINTS):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False)
        self.m_series = Series(max_points)
        self.e_series = Series(max_points)
        self._last_t = None
        lay = QGridLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setVerticalSpacing(0)
        self.m_plot = pg.PlotWidget()
        self.m_plot.setLabel("bottom", "t (ns)")
        self.m_plot.setLabel("left", "&lt;m&gt;")
        self.m_plot.showGrid(x=True, y=True, alpha=0.25)
        self.m_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.m_plot.getAxis("left").enableAutoSIPrefix(False)     # <m> reads 0.04, not 40 (x0.001)
        self.m_plot.enableAutoRange(axis="y")
        self.m_plot.setLimits(minYRange=0.02)        # noise is not magnified without end
        self.m_curves = {k: self.m_plot.plot([], [], pen=pg.mkPen(c, width=2), name=k)
                         for k, c in M_COLORS.items()}
        self.m_legend = _legend_label()
        self.m_legend.setText(_legend_title([(f"&lt;{k}&gt;", c) for k, c in M_COLORS.items()]))
        self.e_plot = pg.PlotWidget()
        self.e_plot.setLabel("bottom", "t (ns)")
        self.e_plot.setLabel("left", "E", units="J")
        self.e_plot.showGrid(x=True, y=True, alpha=0.25)
        self.e_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.e_legend = _legend_label()
        self.e_legend.setText("&nbsp;")          # keeps its line: both plots start at the same height
        self.x_axis = "t"
        self._row_index = 0
        self.e_curves: dict[str, pg.PlotDataItem] = {}
        self._e_range = None
        self._t_range = None
        for plot in (self.m_plot, self.e_plot):
            # draw at most about one point per pixel column: long runs stay cheap to paint
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        # legends in one row (as tall as the taller one: the two plots stay level), the plots
        # under them, each column half the width
        for col, (legend, plot) in enumerate(((self.m_legend, self.m_plot), (self.e_legend, self.e_plot))):
            lay.addWidget(legend, 0, col)
            lay.addWidget(plot, 1, col)
            # a plot never asks for more width than its half: the legend wraps instead
            plot.setMinimumWidth(0)
            plot.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Expanding)
            lay.setColumnStretch(col, 1)
        lay.setRowStretch(1, 1)

    def set_x_axis(self, kind: str) -> None:
        """'t' (simulated time, ns) or 'row' (table row number: a field sweep). Clears."""
        if kind not in ("t", "row"):
            raise ValueError(f"x axis {kind!r}: expected 't' or 'row'")
        self.x_axis = kind
        self.clear()
        label = "t (ns)" if kind == "t" else "table row (field sweep)"
        for plot in (self.m_plot, self.e_plot):
            plot.setLabel("bottom", label)

    def append_row(self, row: dict) -> None:
        """Add a table row: against its t, or its number when the x axis is 'row'."""
        mean = [row.get(c, np.nan) for c in ("mx", "my", "mz")]
        energies = {k[2:]: v for k, v in row.items() if k.startswith("E_")}
        if self.x_axis == "row":
            self._append_x(float(self._row_index), mean, energies)
            self._row_index += 1
        else:
            self.append(float(row.get("t", np.nan)), mean, energies)

    def append(self, t_s: float, mean_m, energies: dict) -> None:
        """Add one point: t in s, mean_m (3,), energies name -> J (empty during relax)."""
        t_ns = t_s * 1e9
        if len(self.m_series) and t_ns == self._last_t:
            return                   # the same moment again (a repeated frame): one point is enough
        self._append_x(t_ns, mean_m, energies)

    def _append_x(self, x: float, mean_m, energies: dict) -> None:
        self._last_t = x
        self.m_series.append(x, {"mx": mean_m[0], "my": mean_m[1], "mz": mean_m[2]})
        if energies:
            self.e_series.append(x, {k: v for k, v in energies.items()})

    def refresh(self) -> None:
        """Redraw curves that got new points."""
        if self.m_series.flush():
            for k, curve in self.m_curves.items():
                curve.setData(self.m_series.t, self.m_series.y[k])
            if len(self.m_series.t):
                self._fit_time_range(float(self.m_series.t[0]), float(self.m_series.t[-1]))
        if self.e_series.flush():
            for k, y in self.e_series.y.items():
                curve = self.e_curves.get(k)
                if curve is None:
                    n_terms = sum(1 for name in self.e_curves if name != "total")
                    # the total in the theme's text colour (nmag_gui.theme recolours it on a switch)
                    color = pg.getConfigOption("foreground") if k == "total" else E_COLORS[n_terms % len(E_COLORS)]
                    width = 2
                    curve = self.e_plot.plot([], [], pen=pg.mkPen(color, width=width), name=k)
                    curve.legend_colour = None if k == "total" else color     # None: the text colour
                    self.e_curves[k] = curve
                    self.e_legend.setText(_legend_title([(n, c.legend_colour) for n, c in self.e_curves.items()]))
                curve.setData(self.e_series.t, y, connect="finite")
            finite = np.concatenate([v[np.isfinite(v)] for v in self.e_series.y.values()] or [np.zeros(0)])
            if finite.size:
                self._fit_energy_range(float(finite.min()), float(finite.max()))

    def _fit_time_range(self, t0: float, t1: float) -> None:
        """Grow the time axis in steps (to a round end about 1.5 times the data) rather than on
        every refresh: a changed axis is re-laid out and re-rendered, which cost more than the
        curves themselves."""
        cur = self._t_range
        if cur is not None and cur[0] <= t0 and t1 <= cur[1]:
            return
        # at least 10 ps (or one table row): a fresh window's single point at t = 0 made an
        # axis of 1e-6 ns that read '5e-07 ... 1.5e-06'
        span = max(t1 - t0, 0.01 if self.x_axis == "t" else 1.0)
        end = t0 + _round_up(1.5 * span)
        self._t_range = (t0, end)
        for plot in (self.m_plot, self.e_plot):
            plot.setXRange(t0, end, padding=0.02)

    def _fit_energy_range(self, lo: float, hi: float) -> None:
        """Set the energy axis range, with a margin. Only when the data leave the range or fill
        less than half of it: each change re-lays out the axis."""
        cur = self._e_range
        if cur is not None:
            span_cur = cur[1] - cur[0]
            inside = lo >= cur[0] and hi <= cur[1]
            if inside and (hi - lo) > 0.4 * span_cur:
                return
        span = max(hi - lo, 1e-3 * max(abs(hi), abs(lo)), 1e-30)
        self._e_range = (lo - 0.1 * span, hi + 0.1 * span)
        self.e_plot.setYRange(*self._e_range, padding=0)

    def clear(self) -> None:
        self._last_t = None
        self._row_index = 0
        self._e_range = None
        self._t_range = None
        self.m_series.clear()
        self.e_series.clear()
        for c in self.m_curves.values():
            c.setData([], [])
        for c in self.e_curves.values():
            self.e_plot.removeItem(c)
        self.e_curves = {}
        self.e_legend.setText("&nbsp;")

    def load_table(self, table: dict) -> None:
        """Show a recorded table (column -> array; t in s, mx.., E_<term> in J)."""
        self.clear()
        t = np.asarray(table.get("t", []), float)
        names = [c for c in table if c.startswith("E_")]
        for i in range(len(t)):
            mean = [table.get(c, np.zeros(len(t)))[i] for c in ("mx", "my", "mz")]
            energies = {c[2:]: table[c][i] for c in names}
            self.append(t[i], mean, energies)
        self.refresh()
