"""File > Export: the state as OVF 2.0, the table as CSV (every column), a PNG of the 3D view
and a movie of it (MP4 or GIF). The movie recorder takes one image per frame the view draws
(the view's frameDrawn signal), never the simulation thread's time.

The `*_to(path)` methods export without dialogs (tests, scripts)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog

from .export import MovieRecorder, export_ovf, export_table_csv, finish_with_progress, save_screenshot


class Exports(QObject):
    """Export actions of one window (its session and its view)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.view = window.view
        self.recorder: MovieRecorder | None = None
        self.view.frameDrawn.connect(self._on_frame_drawn)

    # ---- without dialogs
    def export_ovf_to(self, path) -> Path:
        frame = self.session.latest_frame
        if frame is None:
            raise ValueError("there is no state to export yet: run or step once")
        return export_ovf(path, frame, self.session.problem.mesh.cell_m)

    def export_csv_to(self, path) -> Path:
        rows = self.session.table_rows
        if not rows:
            raise ValueError("the table is empty: run the simulation first")
        return export_table_csv(path, None, rows)

    def screenshot_to(self, path):
        return save_screenshot(self.view.plotter, path)

    def start_movie(self, path, fps: float = 20.0) -> MovieRecorder:
        if self.recorder is not None:
            raise ValueError("a movie is already being recorded")
        self.recorder = MovieRecorder(self.view.plotter, path, fps=fps)
        self.window.act_movie.setText("Stop recording and save movie")
        self.session.message.emit(f"Recording {Path(path).name}: every frame the view draws is kept", False)
        return self.recorder

    def stop_movie(self, progress: bool = True) -> Path | None:
        rec, self.recorder = self.recorder, None
        self.window.act_movie.setText("Record movie…")
        if rec is None:
            return None
        path = finish_with_progress(rec, self.window) if progress else rec.close()
        if not rec.frames_written or path is None or not Path(path).exists():
            self.session.message.emit("Movie: no frame was drawn while recording (run the simulation while "
                                      "it records), so no file was written", True)
            return None
        dropped = f" ({rec.frames_dropped} dropped while the encoder was busy)" if rec.frames_dropped else ""
        self.session.message.emit(f"Movie written: {path} with {rec.frames_written} frames{dropped}", False)
        return path

    @Slot(object)
    def _on_frame_drawn(self, _frame) -> None:
        if self.recorder is not None:
            self.recorder.add_frame()

    # ---- dialogs
    def _save_name(self, caption, filt, suffix):
        path, chosen = QFileDialog.getSaveFileName(self.window, caption, "", filt)
        if not path:
            return None
        p = Path(path)
        if p.suffix.lower() not in suffix:
            # the filter the user picked decides ("GIF animation (*.gif)" -> .gif), else the first
            picked = next((s for s in suffix if f"*{s}" in (chosen or "")), suffix[0])
            p = p.with_suffix(picked)
        return p

    def export_ovf_dialog(self):
        p = self._save_name("Export the state as OVF 2.0", "OVF files (*.ovf)", (".ovf",))
        if p:
            self.session.message.emit(f"Wrote {self.export_ovf_to(p)}", False)

    def export_csv_dialog(self):
        p = self._save_name("Export the table as CSV", "CSV files (*.csv)", (".csv",))
        if p:
            self.session.message.emit(f"Wrote {self.export_csv_to(p)}", False)

    def screenshot_dialog(self):
        p = self._save_name("Save a screenshot of the 3D view", "PNG images (*.png)", (".png",))
        if p:
            self.screenshot_to(p)
            self.session.message.emit(f"Wrote {p}", False)

    def toggle_movie_dialog(self):
        if self.recorder is not None:
            self.stop_movie()
            return
        p = self._save_name("Record a movie of the 3D view", "MP4 video (*.mp4);;GIF animation (*.gif)",
                            (".mp4", ".gif"))
        if p:
            self.start_movie(p)

    def shutdown(self):
        if self.recorder is not None:
            rec, self.recorder = self.recorder, None
            try:
                rec.close()
            except Exception:  # noqa: BLE001
                import traceback
                traceback.print_exc()
