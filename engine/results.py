"""HDF5 results and projects, and the CSV table.

Two kinds of HDF5 file share one layout (h5py, no other dependency):

- a **results** file (`format = "nmag-results"`), written by `ResultWriter` while `nmag run`
  works through a problem file;
- a **project** file (`format = "nmag-project"`), what the GUI saves and opens: the problem,
  its (painted) region map, the current m and t, the table and the snapshots.

Layout (both kinds; every part but the root attributes and `regions` is optional)::

    /                 attrs: format, format_version (1), problem_json (json of
                      Problem.to_dict()), created (ISO 8601, UTC), nmag_version; projects: t (s);
                      optional demag_in_use (the demag method that ran, e.g. "fft" where a
                      "neural" problem was outside the network's model card); optional
                      warnings (JSON list of sentences, e.g. a relax that hit its step limit)
    /regions          int16 (nz, ny, nx): -1 vacuum, k = problem.materials[k]
    /table            float64 (rows, cols), resizable; attrs columns (names), units
    /snapshots/t      float64 (n,), s
    /snapshots/m      float32 (n, 3, nz, ny, nx), chunked, gzip
    /m                (3, nz, ny, nx), the final or current state (float32 or float64 as
                      given); attr t (s)

Units: t in s, m dimensionless (unit vectors, 0 in vacuum), energies in J, the problem in its
own units (nm, mT, ns, ps; see engine.problem). Files are never left half-written: writers
work on `<path>.part` and rename it over `<path>` only when everything is in.

Files are read as untrusted: only objects stored in the file itself (no soft or external links,
external storage or virtual datasets), sizes (arrays, chunks, attributes) checked against
bounds and the memory before reading, m and snapshots checked to be unit vectors or 0.

Example::

    with ResultWriter("run.h5", problem, sim.regions) as out:
        out.add_row(sim.table_row())
        out.add_snapshot(sim.t, sim.m)
        out.set_final_state(sim.m, sim.t)
    res = read_results("run.h5")       # res["table"]["mx"], res["snapshots_m"], ...
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from .atomic import write_atomic
from .errors import OutputError, ProblemError
from .problem import Problem
from .validation import human_bytes, memory_limit

RESULTS_FORMAT = "nmag-results"
PROJECT_FORMAT = "nmag-project"
FORMAT_VERSION = 1

_MAX_PROBLEM_JSON = 16 << 20   # bytes: a problem description is a few kB
_MAX_ATTR_BYTES = 4 << 20      # any other attribute: a word, a sentence or a list of names
_MAX_CHUNK_BYTES = 64 << 20    # a chunk is read (and decompressed) whole; nmag writes ~1 MiB ones
_UNIT_TOL = 1e-3               # |m| of a stored state: 1 (magnetic) or 0 (vacuum), within this
_CHUNK_BYTES = 1 << 20        # about 1 MiB per chunk: h5py's advice for compressed data
_TABLE_CHUNK_ROWS = 256


def column_unit(name: str) -> str:
    """The SI unit of a table column, from its name (t, dt -> s; mx.. -> 1; E_* -> J; *_mT -> mT)."""
    if name in ("t", "dt") or name.endswith("_s"):
        return "s"
    if name.startswith("E_") or name.endswith("_J"):
        return "J"
    if name.endswith("_mT"):
        return "mT"
    if name.endswith("_A_per_m"):
        return "A/m"
    if name in ("mx", "my", "mz", "max_torque", "step", "steps") or name.startswith("m_"):
        return "1"
    return ""


def nmag_version() -> str:
    """The running nmag's version (engine.__version__, else the installed package's), or "unknown"."""
    import engine
    v = getattr(engine, "__version__", None)
    if v:
        return str(v)
    try:
        from importlib.metadata import version
        return version("neuralmag-studio")
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------- writing
class ResultWriter:
    """Write a results file as a run goes; a context manager.

    Everything goes to `path + ".part"`; a clean exit (or `close()`) renames it to `path`, an
    exception (or `abort()`) deletes it, so a crashed run leaves no half-written results.
    A run that stopped early but whose record is worth keeping (a diverged simulation) calls
    `mark_incomplete(reason)` before closing: the root attribute `complete` is then False and
    `incomplete_reason` says why (finished runs have complete = True).

    Write errors (disk full, I/O errors) are checked after every write (the file is flushed, and
    the free space is compared with a snapshot's size before writing it): the first one deletes
    the .part and raises `OutputError`; `path` itself is never touched.

    problem: the Problem that was run (stored as JSON). regions: int (nz, ny, nx) region map.
    demag_in_use: the demag method that ran (Simulation.demag_in_use), stored where it differs
    from what the problem asks: "fft" when the neural demag was outside its model card.
    """

    format_name = RESULTS_FORMAT

    def __init__(self, path, problem: Problem, regions, demag_in_use: str | None = None):
        self.path = Path(path)
        self.part = Path(str(path) + ".part")
        regions = np.asarray(regions)
        if regions.ndim != 3:
            raise ValueError(f"regions must be a (nz, ny, nx) array, not shape {regions.shape}")
        self.shape_zyx = tuple(regions.shape)
        self.columns: list[str] | None = None
        self._incomplete = None
        self._failed = False
        self._open = {}
        try:
            self._file = h5py.File(self.part, "w")
        except (OSError, RuntimeError) as e:
            self._file = None
            raise OutputError(e.errno or errno.EIO, f"cannot create {self.part}: {_reason(e)}") from None
        try:
            a = self._file.attrs
            a["format"] = self.format_name
            a["format_version"] = FORMAT_VERSION
            a["problem_json"] = json.dumps(problem.to_dict())
            if demag_in_use is not None:   # what ran: "fft" where the neural demag fell back
                a["demag_in_use"] = str(demag_in_use)
            a["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            a["nmag_version"] = nmag_version()
            d = self._file.create_dataset("regions", data=regions.astype(np.int16),
                                          **_compressed(regions.shape, 2))
            d.attrs["meaning"] = "-1 vacuum, k = problem.materials[k]"
            self._file.flush()
        except (OSError, RuntimeError) as e:
            self._fail(e)
        except BaseException:
            self.abort()
            raise

    # -------------------------------------------------------------- context manager
    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    @property
    def closed(self) -> bool:
        return self._file is None

    # -------------------------------------------------------------- content
    def add_row(self, row: dict) -> None:
        """Append one table row {name: number}; the first row fixes the columns and their order.

        Later rows must have the same names (in any order). Units come from the names
        (see `column_unit`)."""
        if self.columns is not None and set(row) != set(self.columns):
            raise ValueError(f"table row has columns {sorted(row)}, the table has {sorted(self.columns)}")
        try:
            if self.columns is None:
                self._create_table(list(row))
            self._append_rows(np.array([[float(row[c]) for c in self.columns]], dtype=np.float64))
            self._file.flush()
        except (OSError, RuntimeError) as e:
            self._fail(e)

    def add_snapshot(self, t: float, m) -> None:
        """Append m (3, nz, ny, nx) at time t (s) to /snapshots (stored as float32)."""
        a = self._field(m, "snapshot m")
        self._check_space(a.size * 4)
        try:
            self._write_snapshot(t, a)
            self._file.flush()
        except (OSError, RuntimeError) as e:
            self._fail(e)

    def _write_snapshot(self, t, a):
        g = self._file.require_group("snapshots")
        if "m" not in g:
            g.create_dataset("m", shape=(0,) + a.shape, maxshape=(None,) + a.shape, dtype=np.float32,
                             **_compressed((1,) + a.shape, 4))
            ds_t = g.create_dataset("t", shape=(0,), maxshape=(None,), dtype=np.float64,
                                    chunks=(_TABLE_CHUNK_ROWS,))
            ds_t.attrs["units"] = "s"
        dm, dt = self._dataset("snapshots/m"), self._dataset("snapshots/t")
        n = dm.shape[0]
        dm.resize(n + 1, axis=0)
        dm[n] = a.astype(np.float32)
        dt.resize(n + 1, axis=0)
        dt[n] = float(t)

    def set_final_state(self, m, t: float) -> None:
        """Store m (3, nz, ny, nx) as /m with attribute t (s); float64 stays float64, other
        dtypes are stored as float32. A second call replaces the first."""
        a = self._field(m, "final m")
        a = a.astype(np.float64 if a.dtype == np.float64 else np.float32)
        self._check_space(a.nbytes)
        try:
            if "m" in self._file:
                self._open.pop("m", None)
                del self._file["m"]
            d = self._file.create_dataset("m", data=a, **_compressed(a.shape, a.dtype.itemsize))
            d.attrs["t"] = float(t)
            d.attrs["units"] = "1"
            self._file.flush()
        except (OSError, RuntimeError) as e:
            self._fail(e)

    def mark_incomplete(self, reason: str) -> None:
        """Keep this record although the run stopped early: `complete` = False, and why."""
        self._incomplete = str(reason)

    def add_warning(self, text: str) -> None:
        """Something the reader of this result should know (a relax that stopped at its step
        limit): stored in the root attribute `warnings` (a JSON list of sentences)."""
        self._warnings = getattr(self, "_warnings", []) + [str(text)]

    # -------------------------------------------------------------- finish
    def close(self) -> None:
        """Finish: close the HDF5 file and rename `<path>.part` to `<path>`."""
        if self._file is None:
            return
        try:
            self._file.attrs["complete"] = self._incomplete is None
            if getattr(self, "_warnings", None):
                self._file.attrs["warnings"] = json.dumps(self._warnings)
            if self._incomplete is not None:
                self._file.attrs["incomplete_reason"] = self._incomplete
            self._open.clear()
            self._file.close()
            self._file = None
            os.replace(self.part, self.path)
        except (OSError, RuntimeError) as e:
            self._fail(e)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Give up: close and delete `<path>.part`; `<path>` is not touched."""
        if self._file is not None and self._failed:
            _discard_writes(self._file)
        self._open.clear()
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
            self._file = None
        try:
            os.unlink(self.part)
        except FileNotFoundError:
            pass
        except OSError:
            pass

    def _fail(self, e: BaseException):
        """A write failed: drop the .part and raise OutputError with the reason."""
        self._failed = True
        self.abort()
        code = getattr(e, "errno", None) or (errno.ENOSPC if "No space left" in str(e) else errno.EIO)
        raise OutputError(code, f"could not write {self.path}: {_reason(e)}; the run was stopped "
                                f"and {self.path.name + '.part'} removed") from None

    def _check_space(self, nbytes: int) -> None:
        """Refuse to write `nbytes` more when the disk has less free (with 1 MB to spare)."""
        try:
            free = shutil.disk_usage(self.part.parent).free
        except OSError:
            return
        if free < nbytes + (64 << 10):
            self._fail(OSError(errno.ENOSPC, f"No space left on device ({free} bytes free, "
                                             f"{nbytes} to write)"))

    # -------------------------------------------------------------- helpers
    def _create_table(self, columns: list[str]) -> None:
        if not columns:
            raise ValueError("a table row needs at least one column")
        self.columns = [str(c) for c in columns]
        ncols = len(self.columns)
        d = self._file.create_dataset("table", shape=(0, ncols), maxshape=(None, ncols),
                                      dtype=np.float64, chunks=(_TABLE_CHUNK_ROWS, ncols))
        d.attrs.create("columns", self.columns, dtype=h5py.string_dtype())
        d.attrs.create("units", [column_unit(c) for c in self.columns], dtype=h5py.string_dtype())

    def _dataset(self, name: str):
        """An open handle of /name, kept while the file is open: a handle closed after each
        write makes HDF5 flush its chunks in a destructor, where a write error (a full disk)
        is only printed and ignored; kept open, the error comes out of the explicit flush."""
        d = self._open.get(name)
        if d is None:
            d = self._open[name] = self._file[name]
        return d

    def _append_rows(self, rows: np.ndarray) -> None:
        d = self._dataset("table")
        n = d.shape[0]
        d.resize(n + rows.shape[0], axis=0)
        d[n:] = rows

    def _field(self, m, what: str) -> np.ndarray:
        if self._file is None:
            raise ValueError(f"{self.path} is closed")
        if hasattr(m, "detach"):          # a torch tensor, without importing torch
            m = m.detach().cpu().numpy()
        a = np.asarray(m)
        if a.shape != (3,) + self.shape_zyx:
            raise ValueError(f"{what} must have shape {(3,) + self.shape_zyx}, not {a.shape}")
        return a


def _discard_writes(f) -> None:
    """After a write error (a full disk) the abandoned .part would still be written to when it
    is closed (cached chunks, metadata), fail again, and leave HDF5 in a state that crashed the
    interpreter at exit (a segfault). Point its file descriptor at /dev/null so the close
    succeeds; the .part is deleted next anyway."""
    try:
        fd = f.id.get_vfd_handle()
        if isinstance(fd, int) and fd > 2:
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
    except Exception:
        pass


def _reason(e: BaseException) -> str:
    """The short reason of an OS/HDF5 error: 'No space left on device' rather than HDF5's
    whole message."""
    code = getattr(e, "errno", None)
    if code:
        return os.strerror(code)
    text = str(e)
    if "errno = 28" in text or "No space left" in text:
        return "No space left on device"
    return text.splitlines()[0][:200] if text else type(e).__name__


class _ProjectWriter(ResultWriter):
    format_name = PROJECT_FORMAT


def _compressed(chunk_of: tuple, itemsize: int) -> dict:
    """Chunked gzip settings for an array whose natural chunk is `chunk_of`: the leading axes
    are halved until a chunk holds about 1 MiB, so big grids still compress in small pieces."""
    chunk = [max(1, int(c)) for c in chunk_of]
    for axis in range(len(chunk)):
        while chunk[axis] > 1 and int(np.prod(chunk)) * itemsize > _CHUNK_BYTES:
            chunk[axis] = (chunk[axis] + 1) // 2
    return {"chunks": tuple(chunk), "compression": "gzip", "compression_opts": 4, "shuffle": True}


def save_project(path, problem: Problem, m=None, t: float = 0.0, table_rows=None,
                 snapshots=None) -> Path:
    """Save a GUI project atomically (`<path>.part`, then os.replace).

    problem: validated first (a copy), so a saved project always opens again; its region map
    (problem.regions(): the painted map or the rasterised geometry) goes to /regions.
    m: the current state (3, nz, ny, nx) or None; t: its time in s.
    table_rows: a list of row dicts, or a dict column -> 1-D array (as `Project.table`).
    snapshots: a list of (t, m) pairs (as `Project.snapshots`).
    """
    problem = problem.copy().validate()
    regions = problem.regions()
    with _ProjectWriter(path, problem, regions) as out:
        out._file.attrs["t"] = float(t)
        if table_rows is not None and len(table_rows) > 0:
            if isinstance(table_rows, dict):
                columns = list(table_rows)
                rows = np.column_stack([np.asarray(table_rows[c], dtype=np.float64).ravel()
                                        for c in columns])
                if rows.shape[0] > 0:
                    out._create_table(columns)
                    out._append_rows(rows)
            else:
                for row in table_rows:
                    out.add_row(row)
        for ts, ms in snapshots or ():
            out.add_snapshot(ts, ms)
        if m is not None:
            out.set_final_state(m, t)
    return Path(path)


# --------------------------------------------------------------------------- reading
@dataclass
class Project:
    """An opened project (or results) file. problem.region_map holds the stored region map.
    m: (3, nz, ny, nx) or None; t in s; table: column -> 1-D array; snapshots: [(t, m)]."""
    problem: Problem
    m: np.ndarray | None = None
    t: float = 0.0
    table: dict = field(default_factory=dict)
    columns: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    path: str = ""
    nmag_version: str = ""
    created: str = ""
    complete: bool = True          # False: a run that stopped early (see incomplete_reason)
    incomplete_reason: str = ""


def read_results(path) -> dict:
    """Read a results file (a project file is accepted too).

    Returns dict(problem (region_map set from /regions), regions int16 (nz, ny, nx),
    table {column: 1-D float64 array}, columns [names], snapshots_t (n,) s,
    snapshots_m (n, 3, nz, ny, nx) float32, m (3, nz, ny, nx) or None, t (s) or None,
    nmag_version, created). Errors: ProblemError("results file", path, ...)."""
    return _read(path, "results file", "an nmag results file", RESULTS_FORMAT)


def open_project(path) -> Project:
    """Open a project file saved by `save_project` (a results file opens as a project too).
    Errors (missing, not HDF5, damaged, written by a newer nmag): ProblemError("project file", ...)."""
    r = _read(path, "project file", "an nmag project", PROJECT_FORMAT)
    t = r["t"] if r["t"] is not None else 0.0
    snaps = [(float(ts), ms) for ts, ms in zip(r["snapshots_t"], r["snapshots_m"])]
    return Project(problem=r["problem"], m=r["m"], t=float(t), table=r["table"],
                   columns=r["columns"], snapshots=snaps, path=str(path),
                   nmag_version=r["nmag_version"], created=r["created"],
                   complete=r["complete"], incomplete_reason=r["incomplete_reason"])


def load_problem(path) -> Problem:
    """The Problem in a .toml problem file or an .h5 project/results file (`nmag run FILE`).

    From HDF5 the problem comes with region_map set to the stored region map, so a painted
    geometry runs as painted. Anything that is not HDF5 is read as TOML."""
    p = Path(path)
    if not p.is_file():
        raise ProblemError("problem file", str(p), "an existing .toml problem file or .h5 project")
    if p.suffix.lower() == ".toml" and h5py.is_hdf5(p):
        raise ProblemError("problem file", str(p), "a TOML problem file (this is an HDF5 file: "
                                                   "name it .h5 to run it as a project)")
    if p.suffix.lower() in (".h5", ".hdf5") or (p.suffix.lower() != ".toml" and h5py.is_hdf5(p)):
        return _read(p, "project file", "an nmag project or results file", PROJECT_FORMAT,
                     arrays=False)["problem"]
    return Problem.from_toml(p)


def _warnings_attr(value) -> list:
    """The `warnings` attribute's value as a list of sentences ([] where absent or not a JSON list)."""
    try:
        w = json.loads(_text(value) or "[]")
    except (TypeError, ValueError):
        return []
    return [str(x) for x in w] if isinstance(w, list) else []


class _Unreadable(Exception):
    """Why a file cannot be read as a project/results file (internal)."""


def _read(path, key: str, expected: str, preferred_format: str, arrays: bool = True) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ProblemError(key, str(path), f"an existing file: {expected}")
    if not h5py.is_hdf5(path):
        raise ProblemError(key, str(path), f"{expected} (this is not an HDF5 file)")
    try:
        with h5py.File(path, "r") as f:
            return _contents(f, path, arrays, preferred_format)
    except _Unreadable as e:
        raise ProblemError(key, str(path), f"{expected} ({e})") from None
    except ProblemError as e:
        raise ProblemError(key, str(path), f"{expected} (its problem description is invalid: {e})") from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ProblemError(key, str(path), f"{expected} (the file is damaged: {e})") from None


def _contents(f: h5py.File, path: Path, arrays: bool, preferred_format: str) -> dict:
    fmt = _text(_attr(f, "format"))
    if fmt is None:
        raise _Unreadable("it has no 'format' attribute: it was not written by nmag")
    if fmt not in (RESULTS_FORMAT, PROJECT_FORMAT):
        raise _Unreadable(f"its format is {fmt!r}, not {preferred_format!r}")
    version = _attr(f, "format_version")
    if version is None:
        raise _Unreadable("it has no 'format_version' attribute")
    version = int(version)
    writer = _text(_attr(f, "nmag_version")) or "unknown"
    if version > FORMAT_VERSION:
        raise _Unreadable(f"it has format_version {version}, this nmag reads format_version "
                          f"{FORMAT_VERSION} or older: it was written by a newer nmag "
                          f"(version {writer}); update nmag to open it")
    if version < 1:
        raise _Unreadable(f"format_version {version} is not a valid version")
    pj = _text(_attr(f, "problem_json", limit=_MAX_PROBLEM_JSON, what="a problem description"))
    if pj is None:
        raise _Unreadable("it has no 'problem_json' attribute")
    if _member(f, "regions") is None:
        raise _Unreadable("it has no 'regions' dataset")
    try:
        d = json.loads(pj)
    except json.JSONDecodeError as e:
        raise _Unreadable(f"problem_json is not valid JSON: {e}") from None
    # sizes first: the grid the description declares, checked before anything is read
    shape_zyx = _declared_grid(d)
    _check_dataset(f, "regions", shape_zyx, "i")
    raw = f["regions"][...]
    if raw.size and (raw.min() < -1 or raw.max() > np.iinfo(np.int16).max):   # not wrapped by the cast
        raise _Unreadable(f"/regions holds values {raw.min()}..{raw.max()}, not -1 (vacuum) or a "
                          f"material number")
    regions = np.asarray(raw, dtype=np.int16)
    problem = Problem.from_dict(d, base_dir=path.parent, region_map=regions)
    out = {"problem": problem, "regions": regions, "format": fmt, "format_version": version,
           "nmag_version": writer, "created": _text(_attr(f, "created")) or "",
           "demag_in_use": _text(_attr(f, "demag_in_use")) or problem.solver.demag,
           "complete": _flag(f, "complete", default=True),
           "warnings": _warnings_attr(_attr(f, "warnings")),
           "incomplete_reason": _text(_attr(f, "incomplete_reason")) or ""}
    if not arrays:
        return out
    field_shape = (3,) + regions.shape

    # everything this file would have us allocate, against the memory there is
    need = 0
    for name in ("table", "snapshots/m", "snapshots/t", "m"):
        ds = _member(f, name)
        if ds is not None:
            if not isinstance(ds, h5py.Dataset):
                raise _Unreadable(f"/{name} is not a dataset")
            need += int(np.prod(ds.shape, dtype=np.float64)) * max(ds.dtype.itemsize, 4)
    limit = memory_limit()
    if need > limit:
        raise _Unreadable(f"its datasets declare {human_bytes(need)} to read, more than the "
                          f"{human_bytes(limit)} of memory available")

    columns, table = [], {}
    d_table = _member(f, "table")
    if d_table is not None:
        columns = [_text(c) for c in _attr(d_table, "columns", default=[])]
        if len(d_table.shape) != 2 or d_table.shape[1] != len(columns):
            raise _Unreadable(f"/table has shape {d_table.shape} but {len(columns)} column names")
        rows = np.asarray(d_table[...], dtype=np.float64)
        table = {c: rows[:, i].copy() for i, c in enumerate(columns)}

    snaps_t = np.zeros(0, dtype=np.float64)
    snaps_m = np.zeros((0,) + field_shape, dtype=np.float32)
    g = _member(f, "snapshots")
    if g is not None:
        if not isinstance(g, h5py.Group):
            raise _Unreadable("/snapshots is not a group")
        g_t, g_m = _member(f, "snapshots/t"), _member(f, "snapshots/m")
        if g_t is None or g_m is None:
            raise _Unreadable("/snapshots needs both t and m")
        if g_m.shape[1:] != field_shape or g_m.shape[0] != g_t.shape[0] or len(g_t.shape) != 1:
            raise _Unreadable(f"/snapshots hold m {g_m.shape} and t {g_t.shape}, "
                              f"expected (n,) + {field_shape} and (n,)")
        snaps_t = np.asarray(g_t[...], dtype=np.float64)
        snaps_m = g_m[...]
        if not np.isfinite(snaps_m).all() or not np.isfinite(snaps_t).all():
            raise _Unreadable("/snapshots hold NaN or infinite values")
        for k in range(snaps_m.shape[0]):
            _check_unit(snaps_m[k], f"/snapshots/m[{k}]")

    m, t = None, None
    d_m = _member(f, "m")
    if d_m is not None:
        _check_dataset(f, "m", field_shape, "f")
        m = d_m[...]
        if not np.isfinite(m).all():
            raise _Unreadable(f"/m holds {int((~np.isfinite(m)).sum())} NaN or infinite value(s)")
        _check_unit(m, "/m")
        t_m = _attr(d_m, "t")
        if t_m is not None:
            t = float(t_m)
    t_root = _attr(f, "t")
    if t_root is not None:
        t = float(t_root)
    if t is not None and not np.isfinite(t):
        raise _Unreadable(f"its time t = {t} is not finite")
    out.update(table=table, columns=columns, snapshots_t=snaps_t, snapshots_m=snaps_m, m=m, t=t)
    return out


def _member(g, name: str):
    """g[name] ("m", "snapshots/t") or None where absent: only objects stored in this file.

    A soft or external link, a dataset whose data lives in another file (external storage) or
    a virtual dataset would pull other files' bytes into the project (and a re-save would keep
    them); nmag writes none of these, so they are refused, link by link, before any is followed.
    A chunk larger than the bound is refused too: HDF5 reads a chunk whole, so a small dataset
    with one giant (compressed) chunk would cost its declared chunk in memory."""
    obj = g
    for part in name.split("/"):
        if not isinstance(obj, h5py.Group):
            raise _Unreadable(f"{obj.name} is not a group")
        link = obj.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            kind = {h5py.SoftLink: "a soft link", h5py.ExternalLink: "an external link"}.get(
                type(link), "a user-defined link")
            raise _Unreadable(f"/{name} is {kind}, not an object stored in the file: nmag writes "
                              f"no links, and following one could read another file")
        obj = obj[part]
    if isinstance(obj, h5py.Dataset):
        _check_storage(obj, name)
    return obj


def _check_storage(ds, name: str) -> None:
    """A dataset's data must be in the file itself, in chunks of a sane size (see _member)."""
    if ds.is_virtual:
        raise _Unreadable(f"/{name} is a virtual dataset (its data would come from other files); "
                          f"nmag writes none")
    if ds.external:
        files = ", ".join(str(e[0]) for e in ds.external[:3])
        raise _Unreadable(f"/{name} keeps its data in external storage ({files}), not in the file; "
                          f"nmag writes none")
    if ds.chunks:
        chunk = int(np.prod(ds.chunks, dtype=np.float64)) * ds.dtype.itemsize
        own = int(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize
        bound = max(_MAX_CHUNK_BYTES, -(-own // (1 << 20)) << 20)     # own size, up to a MiB
        if chunk > bound:
            raise _Unreadable(f"/{name} is stored in chunks of {human_bytes(chunk)}, more than "
                              f"{human_bytes(bound)} (nmag writes chunks of about "
                              f"{human_bytes(_CHUNK_BYTES)}); reading one would need all of it")


def _attr(obj, name: str, default=None, limit: int = _MAX_ATTR_BYTES, what: str = "such an attribute"):
    """obj.attrs[name] (default where absent), its size checked before it is read: a crafted
    file could hold hundreds of MB in an attribute that is otherwise a word.

    HDF5 says the size of fixed-size values before reading them; a variable-length string is
    stored as a reference (16 bytes) and measured only once read (then bounded by the file's
    own size, since attributes are never compressed), before anything parses it."""
    if name not in obj.attrs:
        return default
    where = "its" if obj.name == "/" else f"{obj.name}'s"
    try:
        size = obj.attrs.get_id(name).get_storage_size()
    except Exception:
        size = 0
    if size > limit:
        raise _Unreadable(f"{where} {name!r} attribute holds {human_bytes(size)}, more than "
                          f"{what} can need ({human_bytes(limit)})")
    value = obj.attrs[name]
    items = value.ravel().tolist() if isinstance(value, np.ndarray) and value.dtype.kind == "O" else [value]
    text = sum(len(v) for v in items if isinstance(v, (str, bytes)))
    if text > limit:
        raise _Unreadable(f"{where} {name!r} attribute holds {human_bytes(text)} of text, more than "
                          f"{what} can need ({human_bytes(limit)})")
    return value


def _flag(obj, name: str, default: bool) -> bool:
    """A boolean attribute, read strictly: True/False or 1/0. The text "False" would be true
    in Python, so any other value is refused rather than guessed."""
    v = _attr(obj, name)
    if v is None:
        return default
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and int(v) in (0, 1):
        return bool(int(v))
    raise _Unreadable(f"its {name!r} attribute is {_text(v)!r} ({type(v).__name__}), not a boolean "
                      f"(True/False or 1/0)")


def _check_unit(m: np.ndarray, name: str) -> None:
    """m (3, ...) must hold what nmag stores: unit vectors, or zeros in vacuum (|m| within
    _UNIT_TOL of 1 or 0); anything else would run (and re-save) as a state that is no
    magnetisation."""
    n = np.sqrt(np.einsum("i...,i...->...", m, m, dtype=np.float64))
    bad = ~((np.abs(n - 1.0) <= _UNIT_TOL) | (n <= _UNIT_TOL))
    if bad.any():
        worst = float(n[bad].flat[np.argmax(np.abs(n[bad] - 1.0))])
        raise _Unreadable(f"{name} holds {int(bad.sum())} vector(s) whose length is neither 1 nor 0 "
                          f"(within {_UNIT_TOL:g}; e.g. {worst:.6g}): not a magnetisation nmag wrote")


def _declared_grid(d) -> tuple:
    """(nz, ny, nx) of the mesh a problem description declares, checked (at most 4096 per axis
    and 2^24 cells) before any array of that size is read."""
    from .problem import Mesh
    mesh = d.get("mesh") if isinstance(d, dict) else None
    if not isinstance(mesh, dict):
        raise _Unreadable("problem_json has no mesh table")
    try:
        m = Mesh(n=mesh.get("n"), cell_nm=mesh.get("cell_nm", (1.0, 1.0, 1.0)))
        m.validate()
    except ProblemError as e:
        raise _Unreadable(f"its problem description declares a grid that is not allowed: {e}") from None
    except TypeError as e:
        raise _Unreadable(f"its mesh is malformed ({e})") from None
    return m.shape_zyx


def _check_dataset(f, name: str, shape: tuple, kinds: str) -> None:
    """/name must be a dataset of exactly `shape` and of a dtype kind in `kinds` ("f", "i")."""
    ds = _member(f, name)
    if not isinstance(ds, h5py.Dataset):
        raise _Unreadable(f"/{name} is not a dataset")
    if tuple(ds.shape) != tuple(shape):
        raise _Unreadable(f"/{name} has shape {tuple(ds.shape)}, expected {tuple(shape)}")
    kind = ds.dtype.kind
    if kind not in kinds and not (kinds == "i" and kind == "u"):
        raise _Unreadable(f"/{name} holds {ds.dtype} values, expected "
                          f"{'floats' if kinds == 'f' else 'integers'}")


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v.item())
    return str(v)


# --------------------------------------------------------------------------- CSV
def write_table_csv(path, columns, rows_array, units=None) -> Path:
    """Write a table as CSV, atomically: one comment line with the units, the column names,
    then one row per line (shortest text that reads back as the same float64).

    rows_array: (rows, len(columns)). units: one per column, by default from the names.
    Read back with numpy.genfromtxt(path, delimiter=",", names=True, skip_header=1) (the first
    line is the "# columns: name [unit]" comment)."""
    columns = [str(c) for c in columns]
    rows = np.asarray(rows_array, dtype=np.float64)
    if rows.ndim == 1:
        rows = rows.reshape(-1, len(columns)) if rows.size else rows.reshape(0, len(columns))
    if rows.ndim != 2 or rows.shape[1] != len(columns):
        raise ValueError(f"rows_array must have shape (rows, {len(columns)}), not {rows.shape}")
    units = [column_unit(c) for c in columns] if units is None else [str(u) for u in units]
    lines = ["# columns: " + ", ".join(f"{c} [{u or '-'}]" for c, u in zip(columns, units)),
             ",".join(columns)]
    lines += [",".join(repr(float(v)) for v in row) for row in rows]
    return write_atomic(path, "\n".join(lines) + "\n")
