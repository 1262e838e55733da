"""The Examples menu: ready problems with a short explanation a teacher would show.

The list lives in `examples/catalog.toml` (see that file for its keys). `load_catalog()` reads it
without Qt; `build_examples_menu(parent, on_load)` turns it into a QMenu whose entries load the
problem file and call `on_load(problem, entry)`; `ExampleInfoPanel` shows an entry's title and
explanation; `HysteresisLoopPanel` plots one table column against another (the loop of an
example whose catalog entry says `plot = "loop"`).

Example::

    menu = build_examples_menu(window, lambda problem, entry: window.load_problem(problem))
    window.menuBar().addMenu(menu)
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu, QMessageBox, QScrollArea, QVBoxLayout, QWidget

from engine.errors import ProblemError
from engine.problem import Problem, read_toml

CATALOG_FORMAT = "nmag-examples"
VIEWS = ("mx", "my", "mz", "angle")
PLOTS = ("time", "loop")


def examples_dir() -> Path:
    """The examples folder: beside the packages in a checkout."""
    return Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class ExampleEntry:
    """One example of the catalog. path: the problem file; view: suggested colouring
    ("mx", "my", "mz", "angle"); overlay: a suggested second colour map or ""; plot: "time"
    or "loop" (then plot_x against plot_y, table column names)."""
    path: Path
    title: str
    explanation: str
    view: str = "mz"
    overlay: str = ""
    plot: str = "time"
    plot_x: str = "Bx_mT"
    plot_y: str = "mx"

    def load(self) -> Problem:
        return Problem.from_toml(self.path)


def load_catalog(path=None) -> list[ExampleEntry]:
    """Read examples/catalog.toml. Raises ProblemError naming the bad key."""
    path = Path(path) if path is not None else examples_dir() / "catalog.toml"
    d = read_toml(path, "examples catalog")
    if d.get("format") != CATALOG_FORMAT:
        raise ProblemError("format", d.get("format"), repr(CATALOG_FORMAT))
    out = []
    for i, e in enumerate(d.get("example", [])):
        key = f"example[{i}]"
        for k in ("file", "title", "explanation"):
            if not isinstance(e.get(k), str) or not e[k].strip():
                raise ProblemError(f"{key}.{k}", e.get(k), "a non-empty string")
        view = e.get("view", "mz")
        if view not in VIEWS:
            raise ProblemError(f"{key}.view", view, "one of " + ", ".join(VIEWS))
        plot = e.get("plot", "time")
        if plot not in PLOTS:
            raise ProblemError(f"{key}.plot", plot, "one of " + ", ".join(PLOTS))
        out.append(ExampleEntry(path=path.parent / e["file"], title=e["title"].strip(),
                                explanation=e["explanation"].strip(), view=view,
                                overlay=e.get("overlay", ""), plot=plot,
                                plot_x=e.get("plot_x", "Bx_mT"), plot_y=e.get("plot_y", "mx")))
    return out


def explanation_html(entry: ExampleEntry) -> str:
    """Title and explanation as rich text (blank lines in the catalog start new paragraphs)."""
    paras = [" ".join(p.split()) for p in entry.explanation.split("\n\n") if p.strip()]
    hints = [f"Suggested view: colour by <b>{html.escape(_view_name(entry.view))}</b>"]
    if entry.overlay:
        hints.append(f"overlay <b>{html.escape(entry.overlay)}</b>")
    if entry.plot == "loop":
        hints.append(f"plot {html.escape(entry.plot_y)} against {html.escape(entry.plot_x)}")
    body = "".join(f"<p>{p}</p>" for p in paras)
    return (f"<h3 style='margin-bottom:4px'>{html.escape(entry.title)}</h3>{body}"
            f"<p style='color:gray'><i>{'; '.join(hints)}.</i> "
            f"<span style='color:gray'>File: {html.escape(entry.path.name)}</span></p>")


def _view_name(view: str) -> str:
    return {"angle": "in-plane angle"}.get(view, view)


def build_examples_menu(parent, on_load, catalog=None) -> QMenu:
    """A QMenu "Examples" with one action per catalog entry. Choosing one reads the problem
    file and calls on_load(problem, entry); a file that does not load shows the reason in a
    message box (never a traceback). catalog: a list of ExampleEntry (default: load_catalog())."""
    menu = QMenu("&Examples", parent)
    try:
        entries = load_catalog() if catalog is None else list(catalog)
    except ProblemError as e:
        act = menu.addAction("(no examples: catalog not readable)")
        act.setEnabled(False)
        act.setToolTip(str(e))
        return menu
    for entry in entries:
        act = QAction(entry.title, menu)
        act.setToolTip(f"Load {entry.path.name}: {entry.title}")
        act.setStatusTip(f"Load the example problem {entry.path.name}")
        act.setData(str(entry.path))
        act.triggered.connect(lambda _=False, e=entry: _load(parent, e, on_load))
        menu.addAction(act)
    menu.setToolTipsVisible(True)
    return menu


def _load(parent, entry: ExampleEntry, on_load):
    try:
        problem = entry.load()
    except ProblemError as e:
        QMessageBox.warning(parent, "Example", f"The example {entry.path.name} could not be loaded:\n{e}")
        return
    try:
        on_load(problem, entry)
    except Exception as e:   # a Qt slot that raises can take the process down: report instead
        QMessageBox.warning(parent, "Example", f"Loading {entry.title} failed: {e}")


class ExampleInfoPanel(QWidget):
    """Title and explanation of the loaded example, as rich text that wraps and scrolls."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setTextFormat(Qt.RichText)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.label.setMargin(8)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)
        self.entry: ExampleEntry | None = None
        self.clear()

    def show_entry(self, entry: ExampleEntry) -> None:
        self.entry = entry
        self.label.setText(explanation_html(entry))

    def clear(self) -> None:
        self.entry = None
        self.label.setText("<p style='color:gray'>Choose a problem from the <b>Examples</b> menu "
                           "to read what it shows.</p>")

    def text(self) -> str:
        return self.label.text()


# the loop's points are dots up to this many; beyond (a long plain run) the line alone, which
# pyqtgraph draws in a fraction of the time of thousands of symbols
LOOP_SYMBOLS_UP_TO = 400
LOOP_REDRAW_MS = 100      # new rows are drawn at most this often (ms)


class HysteresisLoopPanel(QWidget):
    """One table column against another, joined in the order recorded (a loop for a sweep).

    add_rows(rows) appends table row dicts (the engine's table_row()) and redraws once, at most
    every LOOP_REDRAW_MS: redrawing the whole curve for every row of every frame made a long
    plain run O(n^2) on the GUI thread until the window froze. set_rows(rows) replaces all.
    """

    def __init__(self, x: str = "Bx_mT", y: str = "mx", parent=None):
        super().__init__(parent)
        import pyqtgraph as pg
        self.x_name, self.y_name = x, y
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", _axis_label(x))
        self.plot.setLabel("left", _axis_label(y))
        for side in ("bottom", "left"):      # <mx> reads -0.3 .. 0.95, not 900 .. -300 (x0.001)
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.curve = self.plot.plot([], [], pen=pg.mkPen((40, 120, 220), width=2), symbol="o",
                                    symbolSize=5, symbolBrush=(40, 120, 220))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(LOOP_REDRAW_MS)
        self._redraw.timeout.connect(self._draw)

    def _take(self, rows) -> None:
        for r in rows:
            if self.x_name in r and self.y_name in r:
                self.xs.append(float(r[self.x_name]))
                self.ys.append(float(r[self.y_name]))

    def add_rows(self, rows) -> None:
        n = len(self.xs)
        self._take(rows)
        if len(self.xs) != n and not self._redraw.isActive():
            self._redraw.start()

    def set_rows(self, rows) -> None:
        self.xs, self.ys = [], []
        self._take(rows)
        self._redraw.stop()
        self._draw()

    def _draw(self) -> None:
        self.curve.setData(self.xs, self.ys, symbol="o" if len(self.xs) <= LOOP_SYMBOLS_UP_TO else None)


def _axis_label(name: str) -> str:
    """An axis title for a table column. pyqtgraph draws it as rich text: '<mx>' was taken for
    an HTML tag and the axis had no name, so the mean is written with angle brackets ⟨mx⟩ and
    anything else is escaped."""
    if name.endswith("_mT"):
        return f"{html.escape(name[:-3])} (mT)"
    if name in ("mx", "my", "mz"):
        return f"⟨{name}⟩"
    return html.escape(name)
