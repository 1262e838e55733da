"""Share results: the state as OVF 2.0, the table as CSV, a PNG of the 3D view, a movie of a run.

Files are written through the engine's own writers (`engine.ovf.write_ovf`,
`engine.results.write_table_csv`), so what the app exports is what `nmag run` writes.

Movies: `MovieRecorder` is driven from the GUI thread, by the same timer that renders frames. Its
`add_frame()` only reads the image the view has already rendered (no re-render) and hands it to
an encoder thread through a bounded queue; when the encoder falls behind, frames are dropped
and counted, never queued without bound, so neither the GUI nor the simulation thread waits
for the encoder. MP4 goes through imageio-ffmpeg (frames stream to ffmpeg as they come); GIF
through imageio's Pillow plugin, which encodes when the recording is closed (Pillow merges
identical consecutive frames into one longer one, so a paused run costs no frames).

Example::

    export_ovf("m.ovf", frame, problem.mesh.cell_m)
    rec = MovieRecorder(window.spin_view.plotter, "run.mp4", fps=20)
    ...                      # in the render timer, after plotter.render():
    rec.add_frame()
    rec.close()              # or finish_with_progress(rec, parent) for a progress dialog
"""
from __future__ import annotations

import queue
import threading
import os
from pathlib import Path

import numpy as np

from engine.ovf import write_ovf
from engine.results import write_table_csv

MOVIE_SUFFIXES = (".mp4", ".gif")


def _usual_mode(path) -> Path:
    """Give an exported file the mode any new file gets (0666 less the umask, 0644 usually):
    the atomic writer's temporary file is created 0600, and an export is for others to read."""
    path = Path(path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


# --------------------------------------------------------------------------- state and table
def export_ovf(path, frame_or_m, cell_m, t: float | None = None, mode: str = "binary4") -> Path:
    """Write m as an OVF 2.0 file (binary4 by default).

    frame_or_m: an engine Frame (its m and t are used) or an array (3, nz, ny, nx).
    cell_m: (dx, dy, dz) in metres. t: simulated time in s (default: the frame's).
    """
    if hasattr(frame_or_m, "m"):
        m = frame_or_m.m
        if t is None:
            t = getattr(frame_or_m, "t", None)
    else:
        m = frame_or_m
    m = np.asarray(m)
    if m.ndim != 4 or m.shape[0] != 3:
        raise ValueError(f"m must have shape (3, nz, ny, nx), not {m.shape}")
    return _usual_mode(write_ovf(path, m, tuple(cell_m), mode=mode, title="m", t=t,
                                 desc="exported by NeuralMAG Studio"))


def export_table_csv(path, columns, rows) -> Path:
    """Write the recorded table as CSV with a units comment line (engine.results format).

    rows: a list of dicts (the engine's table_row(); missing entries become NaN) or an array
    (rows, len(columns)). columns: the names to write; None takes the first dict's keys.
    """
    rows = list(rows) if not isinstance(rows, np.ndarray) else rows
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        if columns is None:           # every column of every row (first-seen order)
            columns = list(dict.fromkeys(k for r in rows for k in r))
        data = np.array([[float(r.get(c, np.nan)) for c in columns] for r in rows], dtype=np.float64)
    else:
        if columns is None:
            raise ValueError("columns are needed when rows is an array")
        data = np.asarray(rows, dtype=np.float64).reshape(-1, len(columns))
    return _usual_mode(write_table_csv(path, list(columns), data))


# --------------------------------------------------------------------------- screenshot
def grab_image(plotter) -> np.ndarray:
    """The image the plotter has rendered, uint8 (height, width, 3), without rendering again."""
    try:
        img = np.asarray(plotter.image)
    except AttributeError:          # an off-screen Plotter before its first show(): render once
        img = np.asarray(plotter.screenshot(None, return_img=True))
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img, dtype=np.uint8)


def save_screenshot(plotter, path) -> np.ndarray:
    """Render the plotter once and save a PNG of it. Returns the image (h, w, 3) uint8."""
    path = Path(path)
    img = plotter.screenshot(None, return_img=True)
    img = np.ascontiguousarray(np.asarray(img)[..., :3], dtype=np.uint8)
    import imageio.v3 as iio
    iio.imwrite(path, img)
    return img


# --------------------------------------------------------------------------- movies
class MovieRecorder:
    """Record the frames a pyvista plotter shows into an MP4 or GIF.

    plotter: a pyvista Plotter or pyvistaqt QtInteractor (GUI thread only). path: ends in .mp4
    or .gif. fps: frames per second of the movie. queue_frames: how many grabbed frames may
    wait for the encoder before new ones are dropped.

    Every frame is cropped or padded to the first frame's size (a resized window does not break
    the movie) and to even width and height (H.264 needs them).
    """

    def __init__(self, plotter, path, fps: float = 20.0, queue_frames: int = 64):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in MOVIE_SUFFIXES:
            raise ValueError(f"a movie must end in {' or '.join(MOVIE_SUFFIXES)}, not {self.path.name!r}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, not {fps!r}")
        self.plotter = plotter
        self.fps = float(fps)
        self.kind = suffix[1:]
        self.frames_grabbed = 0
        self.frames_written = 0
        self.frames_dropped = 0
        self.error: BaseException | None = None
        self._size = None
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_frames)))
        self._closed = False
        self._thread = threading.Thread(target=self._encode, name="movie-encoder", daemon=True)
        self._thread.start()

    # ---- GUI thread
    def add_frame(self, image: np.ndarray | None = None) -> bool:
        """Grab the plotter's current image (or take `image`, (h, w, 3) uint8) and queue it.
        Returns False when the frame was dropped (encoder behind, or recorder closed)."""
        if self._closed:
            return False
        img = grab_image(self.plotter) if image is None else np.asarray(image, dtype=np.uint8)[..., :3]
        img = self._fit(img)
        self.frames_grabbed += 1
        try:
            self._queue.put_nowait(img)
        except queue.Full:
            self.frames_dropped += 1
            return False
        return True

    def pending(self) -> int:
        """Frames grabbed and not yet handed to the encoder."""
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> Path:
        """Finish the movie: let the encoder drain the queue and write the file. Blocks the caller
        until done (use `finish_with_progress` in the GUI). Raises the encoder's error, if any."""
        self._stop()
        self._thread.join(timeout)
        if self.error is not None:
            raise RuntimeError(f"the movie {self.path.name} could not be written: {self.error}") from self.error
        return self.path

    def is_finished(self) -> bool:
        return self._closed and not self._thread.is_alive()

    def _stop(self):
        if not self._closed:
            self._closed = True
            self._queue.put(None)          # may wait for a slot: the encoder is draining

    def _fit(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if self._size is None:
            self._size = (h - h % 2, w - w % 2)
        H, W = self._size
        out = np.zeros((H, W, 3), np.uint8)
        hh, ww = min(h, H), min(w, W)
        out[:hh, :ww] = img[:hh, :ww]
        return out

    # ---- encoder thread
    def _encode(self):
        writer = None
        try:
            while True:
                img = self._queue.get()
                if img is None:
                    break
                if writer is None:
                    writer = self._open_writer()
                writer.append_data(img)
                self.frames_written += 1
        except BaseException as e:   # reported by close(); keep draining so add_frame never blocks
            self.error = e
            while self._queue.get() is not None:
                pass
        finally:
            if writer is not None:
                try:
                    writer.close()
                except BaseException as e:
                    self.error = self.error or e

    def _open_writer(self):
        import imageio.v2 as imageio
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "mp4":
            return imageio.get_writer(self.path, format="FFMPEG", mode="I", fps=self.fps,
                                      codec="libx264", quality=7, pixelformat="yuv420p",
                                      macro_block_size=2)
        # GIF: duration per frame in ms; loop forever. Pillow merges identical consecutive
        # frames into one longer frame (the playing time stays right; the count drops).
        return imageio.get_writer(self.path, format="GIF", mode="I",
                                  duration=1000.0 / self.fps, loop=0, optimize=False)


def finish_with_progress(recorder: MovieRecorder, parent=None) -> Path:
    """Close a recorder while a QProgressDialog shows the frames left to encode (GUI thread).
    The event loop keeps running meanwhile; the dialog cannot cancel an encode half-way."""
    from PySide6.QtCore import QEventLoop, QThread
    from PySide6.QtWidgets import QApplication, QProgressDialog

    total = max(1, recorder.frames_grabbed - recorder.frames_dropped)
    dlg = QProgressDialog(f"Writing {recorder.path.name}…", None, 0, total, parent)
    dlg.setWindowTitle("Movie")
    dlg.setMinimumDuration(300)
    dlg.setAutoClose(True)
    recorder._stop()
    while recorder._thread.is_alive():
        done = recorder.frames_written
        if done >= total:                  # frames in; the file itself is being written
            dlg.setRange(0, 0)
        else:
            dlg.setValue(done)
        QApplication.processEvents(QEventLoop.AllEvents, 50)
        QThread.msleep(20)
    dlg.setRange(0, 1)
    dlg.setValue(1)
    dlg.close()
    return recorder.close()
