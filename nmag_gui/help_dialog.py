"""Help > Shortcuts (F1): the keyboard shortcuts and a short how-to."""
from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

# (keys, what they do): the shortcuts the main window and part 2 install
SHORTCUTS = (
    ("Space", "Run / pause the simulation"),
    ("S", "One step"),
    ("R", "Reset to the initial state"),
    ("Ctrl+R", "Run the problem's stages (relax, run, field sweep)"),
    ("Ctrl+S", "Save the project (.h5)"),
    ("Ctrl+O", "Open a saved project or results file (.h5)"),
    ("Ctrl+Z", "Undo a drawing or parameter edit"),
    ("Ctrl+Shift+Z", "Redo"),
    ("F1", "This help"),
)

HOW_TO = """
<h3>How to</h3>
<ol>
<li><b>Draw the sample</b> in the geometry editor (top view): rectangle, ellipse, polygon, ring,
brush; add or subtract; paint regions, each with its own material. Or pick a ready problem from
the <b>Examples</b> menu: each comes with a short explanation.</li>
<li><b>Set it up</b>: materials (SI units), the applied field in mT, the initial state, the
solver and the demag method. Hover over a control to see its unit and range.</li>
<li><b>Run</b> (Space), watch the spins and the plots; pause, step (S), reset (R) or relax.</li>
<li><b>See the surrogate's error</b>: choose the demag method <i>neural + error probe</i>.
Every k-th step the exact FFT field is computed beside the network's: the error panel plots the
global relative error against time and the per-cell error histogram, and the view can colour
the cells by the error map. A <b>twin run</b> steps an FFT copy beside the neural run and shows
how far their &lt;m&gt;(t) drift apart. The <b>model card</b> (Help menu) says what the
network was trained on; the app warns when a problem lies outside it.</li>
<li><b>Share</b> (File &gt; Export): the state as OVF 2.0, the table as CSV, a PNG of the 3D
view, or a movie (MP4 or GIF) recorded while it runs.</li>
</ol>
"""


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>"
                   for k, v in SHORTCUTS)
    return f"<h3>Keyboard shortcuts</h3><table cellspacing=3>{rows}</table>"


class HelpDialog(QDialog):
    """Shortcuts and how-to, in one scrollable page."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("NeuralMAG Studio: help")
        self.resize(520, 560)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(shortcuts_html() + HOW_TO)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)
