"""Make the surrogate's error visible: plots of the error probe, the model card, twin runs.

- `SurrogateErrorPanel`: the global relative error ||H_net - H_fft|| / ||H_fft|| against time
  (log axis), a histogram of the per-cell error |H_net - H_fft| / Ms of the last probe
  (log-spaced bins), the model card's summary and a "Model card…" button. Feed it Frames with
  `add_frame(frame)`; frames without a probe are ignored, and a probe that several frames
  carry is counted once.
- `TwinRunPanel`: <m>(t) of a neural and an FFT run from the same start, and how far they
  drift apart (|<m>_neural - <m>_fft| and max over cells of |m_neural - m_fft|).
- `ModelCardDialog`: the shipped model card (resources/neural/model_card.json), or a note
  that none is shipped.
- `outside_model_card(problem, card)`: the reasons a problem lies outside the card, as
  sentences for the user (no Qt; tolerant of cards that lack a key).

Units: t in ns on the axes; errors dimensionless.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path  # noqa: F401

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton,
                               QTextBrowser, QVBoxLayout, QWidget)

from engine.neural.card import ModelCard, member_label, span_text, trained_text

from .model_card import (_lookup, card_path, load_model_card, model_card_summary,  # noqa: F401
                         outside_model_card)

HIST_BINS = 40
HIST_DECADES = 6          # the histogram spans at most this many decades below the largest error
MAX_POINTS = 20000        # points kept on a time plot (older ones are thinned)


def _plain_axes(plot) -> None:
    """No automatic SI prefixes ("x0.001") on the axes: the labels carry the units."""
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)


def _decade_axis():
    """A log axis that labels 1, 2 and 5 times the powers of ten when the range is short, and
    only the powers of ten otherwise (pyqtgraph labels 2..9 too, which overlap)."""
    import pyqtgraph as pg

    class DecadeAxis(pg.AxisItem):
        def tickStrings(self, values, scale, spacing):
            if not self.logMode:
                return super().tickStrings(values, scale, spacing)
            lo, hi = self.range
            keep = (1.0,) if hi - lo >= 1.5 else (1.0, 2.0, 5.0)
            out = []
            for v in values:
                mant = 10.0 ** (v - math.floor(v + 1e-9))
                ok = any(abs(mant - k) < 1e-6 * k for k in keep)
                out.append(f"{10.0 ** v:.3g}" if ok else "")
            return out

    return DecadeAxis("bottom")


class ModelCardDialog(QDialog):
    """The model card of the shipped network, readable, with the raw JSON below it."""

    def __init__(self, parent=None, card=None, path=None):
        super().__init__(parent)
        self.setWindowTitle("Model card of the neural demag")
        path = Path(path) if path is not None else card_path()
        self.card = card if card is not None else load_model_card(path)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        if not self.card:
            self.browser.setHtml(f"<p>No model card is shipped: <tt>{html.escape(str(path))}</tt> "
                                 "was not found.</p><p>Without one, nothing says on which cell sizes, "
                                 "thicknesses and grids the network was trained; use the error probe "
                                 "(demag method <b>neural + error probe</b>) to see how far its field is "
                                 "from the exact one.</p>")
        else:
            self.browser.setHtml(self._html(self.card, path))
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)
        self._fit_to_tables()

    def _fit_to_tables(self) -> None:
        """Open wide enough for the members' table (at 560 px it scrolled sideways and a
        header broke inside a word, 'traine d at'), within the screen; taller too."""
        from PySide6.QtGui import QTextDocument
        width, height = 560, 480
        if self.card:
            doc = QTextDocument()
            doc.setDefaultFont(self.browser.font())
            doc.setDocumentMargin(self.browser.document().documentMargin())
            doc.setHtml(self._members(self.card))         # the served table wraps its long cells
            doc.setTextWidth(4000)                       # no wrapping forced: the tables' own width
            scroll = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
            margins = self.layout().contentsMargins()
            frame = 2 * self.browser.frameWidth()
            width = max(width, int(doc.idealWidth()) + scroll + frame + margins.left() + margins.right() + 24)
            height = 640
        self._resize_within_screen(width, height)

    def _resize_within_screen(self, width: int, height: int) -> None:
        from PySide6.QtGui import QGuiApplication
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            avail = screen.availableGeometry()
            width, height = min(width, int(0.95 * avail.width())), min(height, int(0.9 * avail.height()))
        self.resize(width, height)

    def showEvent(self, event):
        super().showEvent(event)
        if not getattr(self, "_widened", False):
            self._widened = True
            from PySide6.QtCore import QTimer
            QTimer.singleShot(0, self._widen_to_content)

    def _widen_to_content(self) -> None:
        """The shown document may need a few pixels more (its other tables, the style's fonts
        and margins): widen once by what would scroll sideways."""
        extra = self.browser.horizontalScrollBar().maximum()
        if 0 < extra < 400:
            self._resize_within_screen(self.width() + extra + 4, self.height())

    @staticmethod
    def _html(card: dict, path: Path) -> str:
        def rows(d, depth=0):
            out = []
            for k, v in d.items():
                pad = "&nbsp;" * 4 * depth
                if isinstance(v, dict):
                    out.append(f"<tr><td colspan=2>{pad}<b>{html.escape(str(k))}</b></td></tr>")
                    out += rows(v, depth + 1)
                else:
                    text = json.dumps(v) if not isinstance(v, str) else v
                    if len(text) > 300:
                        text = text[:300] + " …"
                    out.append(f"<tr><td>{pad}{html.escape(str(k))}</td><td>{html.escape(text)}</td></tr>")
            return out
        return (f"<p>{model_card_summary(card)}</p>{ModelCardDialog._members(card)}{ModelCardDialog._served(card)}"
                f"<table cellspacing=2>{''.join(rows({k: v for k, v in card.items() if k != 'members'}))}</table>"
                f"<p style='color:gray'>{html.escape(str(path))}</p>")

    @staticmethod
    def _members(card: dict) -> str:
        """One row per member: the films it serves and its held-out error (what a user asks
        first: will my grid get the network, and how wrong is it)."""
        members = sorted((m for m in card.get("members", []) if isinstance(m, dict) and "dz_dx" in m),
                         key=lambda m: (int(m.get("nz", 1)), *ModelCard.aspect_range(m)))
        if not members:
            return ""
        head = ("<tr><th>layers nz</th><th>dz/dx served</th><th>trained at</th><th>exact part (cells)</th>"
                "<th>held-out median</th>"
                "<th>p90</th><th>targets (1 %, 2 %)</th><th>on 256² and up: median</th><th>p90</th>"
                "<th>targets there</th></tr>")
        body = []
        pct = (lambda v: f"{100 * v:.2f} %" if isinstance(v, (int, float)) else "?")
        validation = card.get("validation", {})
        for m in members:
            ho = (m.get("held_out") or {}).get("all", {})
            # large grids apart: pooled with 64^2 and 128^2 their larger errors disappear
            large = (m.get("held_out") or {}).get("large")
            met = validation.get("targets_met", {}).get(member_label(m), "")
            met_large = validation.get("targets_met_large_grids", {}).get(member_label(m), "")
            large_cells = (f"<td>{pct(large.get('median'))}</td><td>{pct(large.get('p90'))}</td>"
                           f"<td>{html.escape(str(met_large))}</td>") if large else "<td colspan=3>not measured</td>"
            body.append(f"<tr><td>{int(m.get('nz', 1))}</td><td>{span_text(*ModelCard.aspect_range(m))}</td>"
                        f"<td>{html.escape(trained_text(m))}</td><td>{m.get('near_radius', '–')}</td>"
                        f"<td>{pct(ho.get('median'))}</td><td>{pct(ho.get('p90'))}</td>"
                        f"<td>{html.escape(str(met))}</td>{large_cells}</tr>")
        return (f"<p><b>Which films get the network</b> (square cells dx = dy; anything else gets the exact "
                f"FFT field and a warning)</p><table border=1 cellspacing=0 cellpadding=3>{head}{''.join(body)}"
                f"</table>")

    @staticmethod
    def _served(card: dict) -> str:
        """Per number of layers, the large-grid error at each measured dz/dx of the member that
        serves it there, and the verdict: what a user's film gets (at a shared bound only the
        member picked there counts)."""
        validation = card.get("validation", {})
        served = validation.get("as_served_large_grids") or {}
        if not served:
            return ""
        verdicts = validation.get("targets_met_as_served_large_grids", {})
        body = []
        for nz, rows in served.items():
            cells = ", ".join(f"{html.escape(str(a))}: {100 * r['median']:.2f} / {100 * r['p90']:.2f} %"
                              for a, r in rows.items())
            body.append(f"<tr><td>{html.escape(nz.split('=')[-1])}</td><td>{cells}</td>"
                        f"<td>{html.escape(str(verdicts.get(nz, '')))}</td></tr>")
        return ("<p><b>As served, on 256² and up</b> (at each measured dz/dx, median / p90 of the member "
                "that serves it)</p><table border=1 cellspacing=0 cellpadding=3><tr><th>layers nz</th>"
                f"<th>dz/dx: median / p90</th><th>targets (1 %, 2 %)</th></tr>{''.join(body)}</table>")


# --------------------------------------------------------------------------- error probe panel
def log_histogram(values, bins: int = HIST_BINS, decades: float = HIST_DECADES):
    """Counts of the positive finite values in log-spaced bins. Returns (edges, counts, zeros):
    edges (bins + 1,), counts (bins,), zeros = how many values were 0 (or below the lowest edge).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    pos = v[v > 0]
    if pos.size == 0:
        return np.array([1e-6, 1.0]), np.array([0]), int(v.size)
    top = float(pos.max())
    lo = max(float(pos.min()), top * 10.0 ** -decades)
    if lo >= top:
        lo = top / 10.0
    edges = np.logspace(np.log10(lo), np.log10(top), bins + 1)
    edges[-1] = np.nextafter(top, np.inf)
    counts, _ = np.histogram(pos, edges)
    return edges, counts, int(v.size - counts.sum())


class SurrogateErrorPanel(QWidget):
    """Live view of the error probe (see the module docstring). add_frame(frame) is a slot for
    the GUI thread; reset() starts over (a new problem)."""

    def __init__(self, parent=None, card=None):
        super().__init__(parent)
        import pyqtgraph as pg
        self.card = card if card is not None else load_model_card()
        self.t_ns: list[float] = []
        self.rel: list[float] = []
        self._last_key = None
        self.last_error_map: np.ndarray | None = None
        self.demag, self.probe_every = "", 0     # set_method: the problem's demag method
        self.outside_card = False                # set_warnings: no network runs, so no probes

        self.status = QLabel()
        self.status.setTextFormat(Qt.RichText)
        self.status.setWordWrap(True)

        self.rel_plot = pg.PlotWidget()     # linear in %: the error of one run seldom spans decades
        self.rel_plot.showGrid(x=True, y=True, alpha=0.3)
        _plain_axes(self.rel_plot)
        self.rel_plot.setLabel("bottom", "t (ns)")
        self.rel_plot.setLabel("left", "relative error (%)")
        self.rel_plot.setTitle("global relative error", size="9pt")
        self.rel_plot.setToolTip("Relative L2 error of the network's demag field against the exact "
                                 "FFT field over the magnet, at each probe, in per cent (right-click: log scale)")
        self.rel_curve = self.rel_plot.plot([], [], pen=pg.mkPen((220, 80, 40), width=2),
                                            symbol="o", symbolSize=4, symbolBrush=(220, 80, 40))

        self.hist_plot = pg.PlotWidget(axisItems={"bottom": _decade_axis()})
        self.hist_plot.setLogMode(x=True)
        self.hist_plot.showGrid(x=True, y=True, alpha=0.3)
        _plain_axes(self.hist_plot)
        self.hist_plot.setLabel("bottom", "|H_net − H_fft| / Ms per cell")
        self.hist_plot.setLabel("left", "cells")
        self.hist_plot.setTitle("per-cell error, last probe", size="9pt")
        self.hist_plot.setToolTip("How many magnet cells have each error |H_net − H_fft| / Ms "
                                  "(dimensionless; log-spaced bins)")
        self.hist_curve = self.hist_plot.plot([], [], stepMode="center", fillLevel=0,
                                              brush=(40, 120, 220, 150), pen=pg.mkPen((40, 120, 220), width=1))

        self.card_label = QLabel(model_card_summary(self.card))
        self.card_label.setTextFormat(Qt.RichText)
        self.card_label.setWordWrap(True)
        self.card_button = QPushButton("Model card…")
        self.card_button.setToolTip("What the network was trained on, its size and its validation errors")
        self.card_button.clicked.connect(self.show_model_card)
        card_row = QHBoxLayout()
        card_row.addWidget(self.card_label, 1)
        card_row.addWidget(self.card_button, 0, Qt.AlignTop)

        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setTextFormat(Qt.RichText)
        self.warning_label.hide()
        self.expected_label = QLabel()     # the card's held-out error for this film, before any probe
        self.expected_label.setWordWrap(True)
        self.expected_label.setStyleSheet("color: gray")
        self.expected_label.hide()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.status)
        lay.addWidget(self.warning_label)
        lay.addWidget(self.expected_label)
        lay.addWidget(self.rel_plot, 1)
        lay.addWidget(self.hist_plot, 1)
        lay.addLayout(card_row)
        self._show_status(None)

    # ---- input
    def add_frame(self, frame) -> bool:
        """Take the probe a Frame carries (error_map, error_rel_l2). Returns True when it was a
        new probe. The point is plotted at the frame's time (the first frame after the probe)."""
        emap = getattr(frame, "error_map", None)
        rel = getattr(frame, "error_rel_l2", None)
        if emap is None or rel is None:
            return False
        emap = np.asarray(emap)
        key = (float(rel), float(np.nanmax(emap)) if emap.size else 0.0, emap.shape)
        if key == self._last_key:
            return False
        self._last_key = key
        self.t_ns.append(float(frame.t) * 1e9)
        self.rel.append(max(float(rel), 1e-12))     # log axis: no zeros
        if len(self.t_ns) > MAX_POINTS:
            self.t_ns, self.rel = self.t_ns[::2], self.rel[::2]
        self.rel_curve.setData(self.t_ns, 100.0 * np.asarray(self.rel))
        mask = np.einsum("c...,c...->...", frame.m, frame.m) > 0 if getattr(frame, "m", None) is not None \
            else np.ones(emap.shape, bool)
        self.last_error_map = emap
        edges, counts, zeros = log_histogram(emap[mask])
        self.hist_curve.setData(edges, counts)

        self._show_status(frame, emap[mask], zeros)
        return True

    def set_warnings(self, warnings: list[str]) -> None:
        """Show why the problem lies outside the model card (empty: hide)."""
        self.outside_card = bool(warnings)
        if not self.rel:
            self._show_status(None)
        if warnings:
            items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
            self.warning_label.setText(f"<span style='color:#d08000'><b>Outside the model card:</b></span>"
                                       f"<ul style='margin:0'>{items}</ul>")
            self.warning_label.show()
        else:
            self.warning_label.hide()

    def set_method(self, demag: str, probe_every: int) -> None:
        """The problem's demag method and probe interval (steps), for what the status says
        before the first probe."""
        self.demag, self.probe_every = str(demag), int(probe_every)
        if not self.rel:
            self._show_status(None)

    def set_expected(self, text: str) -> None:
        """Show what the model card expects of the network on this film ('': hide)."""
        self.expected_label.setText(text)
        self.expected_label.setVisible(bool(text))

    def reset(self) -> None:
        self.t_ns, self.rel, self._last_key, self.last_error_map = [], [], None, None
        self.rel_curve.setData([], [])
        self.hist_curve.setData([], [])
        self._show_status(None)

    def show_model_card(self) -> None:
        ModelCardDialog(self, self.card).exec()

    def _show_status(self, frame, cells=None, zeros=0):
        if frame is None:
            if self.outside_card and self.demag.startswith("neural"):
                self.status.setText("<i>No probes:</i> outside the model card the exact FFT demag runs, "
                                    "so there is no network error to measure.")
            elif self.demag == "neural+probe":
                self.status.setText(f"<i>No probe yet.</i> Every {self.probe_every} steps the exact FFT field "
                                    "is computed beside the network's: press Run or Step.")
            else:
                self.status.setText("<i>No probe yet.</i> Choose the demag method <b>neural + error probe</b>: "
                                    "every k-th step the exact FFT field is computed beside the network's.")
            return
        med = float(np.median(cells)) if cells is not None and cells.size else 0.0
        mx = float(np.max(cells)) if cells is not None and cells.size else 0.0
        self.status.setText(f"Probe {len(self.rel)} at t = {frame.t * 1e9:.4g} ns: relative error "
                            f"<b>{100 * self.rel[-1]:.3g} %</b>; per cell median {med:.2g}, max {mx:.2g} "
                            f"(of Ms)" + (f"; {zeros} cell(s) below the histogram's range" if zeros else ""))


# --------------------------------------------------------------------------- twin runs
class TwinRunPanel(QWidget):
    """<m>(t) of a neural and an FFT run from the same start, and their drift.

    add_twin(t, mean_neural, mean_fft, max_diff): t in s; means (3,); max_diff = max over cells
    of |m_neural - m_fft| (dimensionless). Solid lines: neural; dashed: FFT."""

    COLOURS = ((220, 60, 60), (60, 170, 60), (60, 100, 230))

    def __init__(self, parent=None):
        super().__init__(parent)
        import pyqtgraph as pg
        self.t_ns: list[float] = []
        self.neural: list[np.ndarray] = []
        self.fft: list[np.ndarray] = []
        self.max_diff: list[float] = []

        self.m_plot = pg.PlotWidget()
        self.m_plot.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.m_plot.showGrid(x=True, y=True, alpha=0.3)
        _plain_axes(self.m_plot)
        self.m_plot.setLabel("bottom", "t (ns)")
        self.m_plot.setLabel("left", "⟨m⟩")
        self.m_plot.setTitle("twin run: neural (solid) and FFT (dashed)", size="9pt")
        self.m_plot.setToolTip("Average magnetization of both runs, started from the same state")
        self.curves_neural, self.curves_fft = [], []
        for i, c in enumerate("xyz"):
            col = self.COLOURS[i]
            self.curves_neural.append(self.m_plot.plot([], [], pen=pg.mkPen(col, width=2),
                                                       name=f"⟨m{c}⟩"))
            self.curves_fft.append(self.m_plot.plot([], [], pen=pg.mkPen(col, width=2, style=Qt.DashLine)))
        self.d_plot = pg.PlotWidget()
        self.d_plot.addLegend(offset=(5, 5), labelTextSize="8pt")
        self.d_plot.showGrid(x=True, y=True, alpha=0.3)
        _plain_axes(self.d_plot)
        self.d_plot.setLabel("bottom", "t (ns)")
        self.d_plot.setLabel("left", "difference")
        self.d_plot.setTitle("how far they drift apart", size="9pt")
        self.d_plot.setToolTip("|<m>_neural − <m>_FFT| and the largest per-cell |m_neural − m_FFT| "
                               "(dimensionless, 0 to 2)")
        self.mean_curve = self.d_plot.plot([], [], pen=pg.mkPen((200, 120, 0), width=2), name="|Δ⟨m⟩|")
        self.max_curve = self.d_plot.plot([], [], pen=pg.mkPen((120, 60, 200), width=2), name="max cell |Δm|")
        self.label = QLabel("<i>No twin run yet.</i>")
        self.label.setTextFormat(Qt.RichText)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.label)
        lay.addWidget(self.m_plot, 1)
        lay.addWidget(self.d_plot, 1)

    def last_t_ns(self) -> float:
        """The time of the last sample (ns), 0 before any."""
        return self.t_ns[-1] if self.t_ns else 0.0

    def add_twin(self, t, mean_neural, mean_fft, max_diff) -> None:
        a, b = np.asarray(mean_neural, float).reshape(3), np.asarray(mean_fft, float).reshape(3)
        self.t_ns.append(float(t) * 1e9)
        self.neural.append(a)
        self.fft.append(b)
        self.max_diff.append(float(max_diff))
        N, F = np.array(self.neural), np.array(self.fft)
        for i in range(3):
            self.curves_neural[i].setData(self.t_ns, N[:, i])
            self.curves_fft[i].setData(self.t_ns, F[:, i])
        dmean = np.linalg.norm(N - F, axis=1)
        self.mean_curve.setData(self.t_ns, dmean)
        self.max_curve.setData(self.t_ns, self.max_diff)
        self.label.setText(f"t = {self.t_ns[-1]:.4g} ns: |Δ&lt;m&gt;| = {dmean[-1]:.3g}, "
                           f"max cell |Δm| = {self.max_diff[-1]:.3g}")

    def mean_difference(self) -> np.ndarray:
        """|<m>_neural - <m>_fft| at each sample."""
        if not self.t_ns:
            return np.zeros(0)
        return np.linalg.norm(np.array(self.neural) - np.array(self.fft), axis=1)

    def reset(self) -> None:
        self.t_ns, self.neural, self.fft, self.max_diff = [], [], [], []
        for c in self.curves_neural + self.curves_fft + [self.mean_curve, self.max_curve]:
            c.setData([], [])
        self.label.setText("<i>No twin run yet.</i>")
