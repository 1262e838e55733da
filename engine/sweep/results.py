"""The sweep's results file: one HDF5 file, written only by the client, one point at a time.

Layout::

    /                 attrs: format ("nmag-sweep-results"), format_version (1), sweep_json
                      (engine.sweep.sweep_file.Sweep.to_json(): the sweep and the problem every
                      point starts from), created, nmag_version, scalar_units (JSON)
    /index            one row per point (compound): point, one column per parameter (named by
                      its key path: float64, float64 vector, or text), status ("pending",
                      "done", "failed"), wall_s, one column per scalar, message, worker
    /points/<i>/      point i's complete result in the layout of `nmag run --out`
                      (engine.results): attrs format, problem_json, ...; regions, table,
                      snapshots/t, snapshots/m, m. Only for finished points.

A point is written atomically: into points/<i>.part, renamed to points/<i>, then its index row
is set, with Ctrl+C held back until that is done. The file is closed between points, so other
programs can read it while the sweep runs (`read_sweep`), and a stopped sweep is continued
with `--resume`: a point counts as finished when its index row says "done" or "failed" and (for
"done") points/<i> exists. Failed points are tried again on resume.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from ..errors import ProblemError
from .scalars import SCALARS

SWEEP_RESULTS_FORMAT = "nmag-sweep-results"
FORMAT_VERSION = 1
LOCK_WAIT_S = 60.0       # how long the writer waits for a reader that holds the file
_STR = h5py.string_dtype()


def index_dtype(sweep) -> np.dtype:
    """The compound dtype of /index for this sweep."""
    fields = [("point", np.int32)]
    for p in sweep.parameters:
        if p.kind == "number":
            fields.append((p.key, np.float64))
        elif p.kind == "vector":
            fields.append((p.key, np.float64, (len(p.values[0]),)))
        else:
            fields.append((p.key, _STR))
    fields += [("status", _STR), ("wall_s", np.float64)]
    for s in sweep.scalars:
        size = SCALARS[s][1]
        fields.append((s, np.float64, (size,)) if size > 1 else (s, np.float64))
    fields += [("message", _STR), ("worker", _STR)]
    return np.dtype(fields)


@contextlib.contextmanager
def hold_interrupts():
    """Hold Ctrl+C (SIGINT) back while a point is written; re-raise it afterwards. Only in the
    main thread (signal handlers cannot be set elsewhere; the GUI writes from its own thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda s, f: caught.append(s))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if caught:
            raise KeyboardInterrupt


def _open(path, mode: str, wait_s: float = LOCK_WAIT_S) -> h5py.File:
    """h5py.File, retrying while another program holds the HDF5 lock (a reader)."""
    t_end = time.monotonic() + wait_s
    while True:
        try:
            return h5py.File(path, mode)
        except (BlockingIOError, OSError) as e:
            locked = "lock" in str(e).lower() or isinstance(e, BlockingIOError)
            if not locked or time.monotonic() > t_end:
                raise
            time.sleep(0.1)


class SweepWriter:
    """Creates (or reopens with resume=True) the sweep results file and writes points into it.

    A new sweep refuses an existing file (that would lose its points) unless overwrite=True;
    resume refuses a file made from a different sweep or problem."""

    def __init__(self, path, sweep, resume: bool = False, overwrite: bool = False):
        from ..results import nmag_version
        self.path = Path(path)
        self.sweep = sweep
        self.dtype = index_dtype(sweep)
        self.n = len(sweep)
        if self.path.exists() and resume:
            self._check_resumable()
            return
        if self.path.exists() and not overwrite:
            raise ProblemError("--out", str(self.path), "a new file (it exists: --resume continues it, "
                                                        "--overwrite replaces it)")
        part = Path(str(self.path) + ".part")
        rows = np.zeros(self.n, dtype=self.dtype)
        for i, vals in enumerate(sweep.points()):
            rows[i]["point"] = i
            for p, v in zip(sweep.parameters, vals):
                rows[i][p.key] = v
            for s in sweep.scalars:
                rows[i][s] = np.nan
            rows[i]["status"] = "pending"
            rows[i]["message"] = ""
            rows[i]["worker"] = ""
        with h5py.File(part, "w") as f:
            a = f.attrs
            a["format"] = SWEEP_RESULTS_FORMAT
            a["format_version"] = FORMAT_VERSION
            a["sweep_json"] = sweep.to_json()
            a["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            a["nmag_version"] = nmag_version()
            a["scalar_units"] = json.dumps({s: SCALARS[s][2] for s in sweep.scalars})
            f.create_dataset("index", data=rows)
            f.create_group("points")
        os.replace(part, self.path)

    def _check_resumable(self) -> None:
        try:
            with _open(self.path, "a") as f:
                if f.attrs.get("format") != SWEEP_RESULTS_FORMAT:
                    raise ProblemError("--resume", str(self.path), "a sweep results file written by nmag sweep")
                old = json.loads(f.attrs["sweep_json"])
                if old != json.loads(self.sweep.to_json()):
                    raise ProblemError("--resume", str(self.path),
                                       "a results file of this same sweep (it was made from a different "
                                       "sweep file or problem; use another --out or --overwrite)")
                if f["index"].dtype != self.dtype or f["index"].shape[0] != self.n:
                    raise ProblemError("--resume", str(self.path), "a results file of this same sweep (its index differs)")
                for name in list(f["points"]):
                    if name.endswith(".part"):          # a write cut short: never counted
                        del f["points"][name]
        except OSError as e:
            raise ProblemError("--resume", str(self.path), f"a readable sweep results file ({e})") from None

    def finished(self) -> set:
        """Indices of the points already done (their results are in the file)."""
        with _open(self.path, "r") as f:
            status = f["index"]["status"]
            have = set(f["points"])
        return {i for i, s in enumerate(status) if _text(s) == "done" and str(i) in have}

    def write_point(self, result: dict) -> None:
        """Store one point's result (as returned by engine.sweep.point.run_point), atomically."""
        i = int(result["index"])
        with hold_interrupts(), _open(self.path, "a") as f:
            pts = f["points"]
            tmp = f"{i}.part"
            for name in (tmp, str(i)):
                if name in pts:
                    del pts[name]
            if result.get("h5"):
                g = pts.create_group(tmp)
                with h5py.File(io.BytesIO(result["h5"]), "r") as src:
                    for k, v in src.attrs.items():
                        g.attrs[k] = v
                    for name in src:
                        src.copy(src[name], g, name=name)
                g.attrs["wall_s"] = float(result.get("wall_s", 0.0))
                g.attrs["worker"] = str(result.get("worker", ""))
                pts.move(tmp, str(i))
            ds = f["index"]
            row = ds[i]
            row["status"] = result["status"]
            row["wall_s"] = float(result.get("wall_s", 0.0))
            for s in self.sweep.scalars:
                row[s] = result["scalars"].get(s, np.nan)
            row["message"] = str(result.get("message", ""))
            row["worker"] = str(result.get("worker", ""))
            ds[i] = row
            f.flush()


# --------------------------------------------------------------------------- reading
_KEY = "sweep results file"
_EXPECTED = "a file written by nmag sweep"


def read_sweep(path) -> dict:
    """Read the index of a sweep results file (also while the sweep runs).

    Returns dict(sweep (the sweep_json dict), index (structured array), status [str],
    parameters {key: array}, scalars {name: array}, scalar_units {name: unit},
    done [point numbers]). Errors: ProblemError("sweep results file", path, ...): the index
    is checked against the sweep's own point count and the memory before it is read."""
    from ..results import _Unreadable
    path = _existing(path)
    try:
        with _open(path, "r") as f:
            sweep, units, index, have = _read_index(f)
    except _Unreadable as e:
        raise ProblemError(_KEY, str(path), f"{_EXPECTED} ({e})") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        raise ProblemError(_KEY, str(path), f"{_EXPECTED} (the file is damaged: {e})") from None
    status = [_text(s) for s in index["status"]]
    keys = [p["key"] for p in sweep["parameters"]]
    params = {k: (np.array([_text(v) for v in index[k]]) if index.dtype[k].kind == "O" else index[k])
              for k in keys}
    scalars = {s: index[s] for s in sweep["outputs"]["scalars"]}
    done = [i for i, s in enumerate(status) if s == "done" and str(i) in have]
    return {"sweep": sweep, "index": index, "status": status, "parameters": params,
            "scalars": scalars, "scalar_units": units, "done": done}


def _read_index(f):
    """(sweep dict, scalar units, index rows, point names) of an open sweep results file;
    everything checked before the index is read (a small gzip'd file can declare 50 million
    rows)."""
    from ..results import _MAX_PROBLEM_JSON, _Unreadable, _attr, _member
    from ..validation import human_bytes, memory_limit
    fmt = _text(_attr(f, "format"))
    if fmt != SWEEP_RESULTS_FORMAT:
        raise _Unreadable(f"its format is {fmt!r}, not {SWEEP_RESULTS_FORMAT!r}")
    text = _text(_attr(f, "sweep_json", limit=_MAX_PROBLEM_JSON, what="a sweep description"))
    if text is None:
        raise _Unreadable("it has no 'sweep_json' attribute")
    try:
        sweep = json.loads(text)
        units = json.loads(_text(_attr(f, "scalar_units")) or "{}")
    except json.JSONDecodeError as e:
        raise _Unreadable(f"its sweep_json or scalar_units is not valid JSON: {e}") from None
    if not isinstance(units, dict):
        raise _Unreadable("its scalar_units is not a JSON table")
    n = _declared_points(sweep)
    index = _member(f, "index")
    if not isinstance(index, h5py.Dataset):
        raise _Unreadable("it has no /index dataset")
    if index.ndim != 1 or index.shape[0] != n:
        raise _Unreadable(f"/index has shape {index.shape}, but its sweep has {n} point(s)")
    names = index.dtype.names or ()
    want = ["point", "status"] + [p["key"] for p in sweep["parameters"]] + list(sweep["outputs"]["scalars"])
    missing = [k for k in want if k not in names]
    if missing:
        raise _Unreadable(f"/index has no column {missing[0]!r}")
    need, limit = n * max(index.dtype.itemsize, 1), memory_limit()
    if need > limit:
        raise _Unreadable(f"/index declares {human_bytes(need)} to read, more than the "
                          f"{human_bytes(limit)} of memory available")
    points = _member(f, "points")
    if not isinstance(points, h5py.Group):
        raise _Unreadable("it has no /points group")
    return sweep, units, index[...], set(points)


def _declared_points(sweep) -> int:
    """The number of points a sweep_json declares (as engine.sweep.sweep_file counts them),
    at most MAX_POINTS; its parameters and scalars are checked to be what read_sweep uses."""
    from ..results import _Unreadable
    from .sweep_file import MAX_POINTS, MODES, point_count
    params = sweep.get("parameters") if isinstance(sweep, dict) else None
    if (not isinstance(params, list) or not params
            or not all(isinstance(p, dict) and isinstance(p.get("key"), str)
                       and isinstance(p.get("values"), list) and p["values"] for p in params)):
        raise _Unreadable("its sweep_json has no 'parameters' list (a key and values each)")
    outputs = sweep.get("outputs")
    scalars = outputs.get("scalars") if isinstance(outputs, dict) else None
    if not isinstance(scalars, list) or not all(isinstance(s, str) for s in scalars):
        raise _Unreadable("its sweep_json has no 'outputs.scalars' list")
    mode = sweep.get("mode", "product")
    if mode not in MODES:
        raise _Unreadable(f"its sweep_json has mode {mode!r}, not 'product' or 'zip'")
    n = point_count(mode, [len(p["values"]) for p in params])
    if n > MAX_POINTS:
        raise _Unreadable(f"its sweep_json declares {n:,} points, more than a sweep may have "
                          f"({MAX_POINTS:,})")
    return n


def read_point(path, i: int) -> dict:
    """Point i's result, the same dict as engine.results.read_results gives for `nmag run --out`
    (read by the same reader, with the same checks). Errors: ProblemError, naming the file."""
    from ..results import RESULTS_FORMAT, _contents, _member, _Unreadable  # the one reader of that layout
    path = _existing(path)
    try:
        i = int(i)
    except (TypeError, ValueError):
        raise ProblemError("point", i, f"a point number of {path}") from None
    try:
        with _open(path, "r") as f:
            g = _member(f, f"points/{i}") if i >= 0 else None
            if isinstance(g, h5py.Group):
                return _contents(g, path, True, RESULTS_FORMAT)
            if g is not None:
                raise _Unreadable(f"/points/{i} is not a group")
    except _Unreadable as e:
        raise ProblemError(_KEY, str(path), f"{_EXPECTED} (point {i}: {e})") from None
    except ProblemError as e:
        raise ProblemError(_KEY, str(path), f"{_EXPECTED} (point {i}: its problem description "
                                            f"is invalid: {e})") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        raise ProblemError(_KEY, str(path), f"{_EXPECTED} (point {i}: the file is damaged: {e})") from None
    raise ProblemError("point", i, f"a finished point of {path}")


def _existing(path) -> Path:
    """path, which must be an HDF5 file (else ProblemError naming it, not a raw OSError)."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        raise ProblemError(_KEY, str(path), "an existing HDF5 file written by nmag sweep")
    return path


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if v is None or isinstance(v, str) else str(v)
