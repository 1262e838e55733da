"""OVF 2.0 files: the field format of OOMMF, mumax3 and Ubermag.

A file is a text header followed by one data block. Vector fields here have the engine's layout
`(valuedim, nz, ny, nx)` (component first); in the file the values of one cell follow each other
and cells run x fastest, then y, then z, which is the same order as a C-contiguous
`(nz, ny, nx, valuedim)` array.

Units: cell sizes and mesh extents are in metres (`meshunit: m`); times in seconds; the values
are written as given (m is dimensionless; a field in A/m would say so through `valueunits`).

Binary data start with a check value, 1234567.0 as float32 or 123456789012345.0 as float64:
little-endian in OVF 2.0, big-endian in OVF 1.0. The reader accepts both versions, header keys in
any case ("Data binary 4" occurs in real files), text data and scalar fields (valuedim 1).

Example::

    write_ovf("m.ovf", m, (5e-9, 5e-9, 3e-9), t=1e-9)
    m2, meta = read_ovf("m.ovf")      # meta["t"] == 1e-9, meta["n"] == (nx, ny, nz)
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .errors import ProblemError

CHECK4 = 1234567.0
CHECK8 = 123456789012345.0

MODES = {"binary4": "Binary 4", "binary8": "Binary 8", "text": "Text"}

_LENGTH_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "nm": 1e-9}
_FLOAT = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_TIME_RE = re.compile(r"total\s+simulation\s+time\s*:\s*" + _FLOAT, re.I)   # mumax3, OVF 2.0
_TIME_OVF1_RE = re.compile(r"time\s*\(s\)\s*:\s*" + _FLOAT, re.I)            # OOMMF, OVF 1.0


# --------------------------------------------------------------------------- writing
def write_ovf(path, m, cell_m, mode: str = "binary4", title: str = "m", desc: str = "",
              t: float | None = None, valuelabels=("m_x", "m_y", "m_z"),
              valueunits=("1", "1", "1")) -> Path:
    """Write a field as an OVF 2.0 file, atomically (a temporary file, then os.replace).

    m: array (valuedim, nz, ny, nx), or (nz, ny, nx) for a scalar field; a torch tensor is
    copied to the CPU. cell_m: (dx, dy, dz) in metres. mode: "binary4" (float32), "binary8"
    (float64) or "text" (17 significant digits, so float64 values come back exactly).
    t: simulated time in s, written as mumax3 does: `# Desc: Total simulation time: <t> s`.
    desc: free text, one `# Desc:` line per line of text. valuelabels/valueunits: one per
    component (the defaults suit m; for other valuedims the defaults become generic names).
    Returns the path written.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    a = _to_numpy(m)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or 0 in a.shape:
        raise ValueError(f"m must have shape (valuedim, nz, ny, nx) or (nz, ny, nx), not {a.shape}")
    valuedim, nz, ny, nx = a.shape
    dx, dy, dz = (float(c) for c in cell_m)
    if not all(np.isfinite(c) and c > 0 for c in (dx, dy, dz)):
        raise ValueError(f"cell_m must be three positive sizes in metres, not {tuple(cell_m)}")
    valuelabels = _per_component(valuelabels, ("m_x", "m_y", "m_z"), valuedim,
                                 [title] if valuedim == 1 else [f"{title}_{i}" for i in range(valuedim)])
    valueunits = _per_component(valueunits, ("1", "1", "1"), valuedim, ["1"] * valuedim)

    fmt = MODES[mode]
    lines = ["# OOMMF OVF 2.0", "# Segment count: 1", "# Begin: Segment", "# Begin: Header",
             f"# Title: {_one_line(title)}", "# meshtype: rectangular", "# meshunit: m",
             "# xmin: 0", "# ymin: 0", "# zmin: 0",
             f"# xmax: {_num(nx * dx, 15)}", f"# ymax: {_num(ny * dy, 15)}", f"# zmax: {_num(nz * dz, 15)}",
             f"# valuedim: {valuedim}",
             "# valuelabels: " + " ".join(_one_word(s) for s in valuelabels),
             "# valueunits: " + " ".join(_one_word(s) for s in valueunits)]
    if t is not None:
        lines.append(f"# Desc: Total simulation time: {_num(float(t))} s")
    for d in str(desc).splitlines():
        lines.append(f"# Desc: {d}")
    lines += [f"# xbase: {_num(dx / 2)}", f"# ybase: {_num(dy / 2)}", f"# zbase: {_num(dz / 2)}",
              f"# xnodes: {nx}", f"# ynodes: {ny}", f"# znodes: {nz}",
              f"# xstepsize: {_num(dx)}", f"# ystepsize: {_num(dy)}", f"# zstepsize: {_num(dz)}",
              "# End: Header", f"# Begin: Data {fmt}", ""]
    header = "\n".join(lines).encode("ascii", "replace")

    # cells x fastest, the values of one cell together: a C-order (nz, ny, nx, valuedim) array
    cells = np.moveaxis(a, 0, -1)
    if mode == "binary4":
        body = np.float32(CHECK4).astype("<f4").tobytes() + np.ascontiguousarray(cells, "<f4").tobytes()
    elif mode == "binary8":
        body = np.float64(CHECK8).astype("<f8").tobytes() + np.ascontiguousarray(cells, "<f8").tobytes()
    else:
        buf = io.StringIO()
        np.savetxt(buf, cells.reshape(-1, valuedim).astype(np.float64), fmt="%.17g")
        body = buf.getvalue().encode("ascii")
    sep = b"" if body.endswith(b"\n") else b"\n"
    footer = sep + f"# End: Data {fmt}\n# End: Segment\n".encode("ascii")
    return write_atomic(path, header + body + footer)


def _to_numpy(m) -> np.ndarray:
    if hasattr(m, "detach"):          # a torch tensor, without importing torch
        m = m.detach().cpu().numpy()
    return np.asarray(m)


def _per_component(given, default, valuedim, fallback):
    given = [given] if isinstance(given, str) else list(given)
    if len(given) == valuedim:
        return given
    if tuple(given) == default:
        return fallback
    raise ValueError(f"expected {valuedim} value labels/units (one per component), got {given}")


def _num(x: float, digits: int | None = None) -> str:
    """Shortest text that reads back as the same float64 ("5e-09", "0"); with `digits`, rounded
    to that many significant digits first (extents: 3 * 5e-9 is written 1.5e-08)."""
    x = float(x) if digits is None else float(f"{float(x):.{digits}g}")
    return "0" if x == 0 else repr(x)


def _one_line(s) -> str:
    return " ".join(str(s).split()) or "-"


def _one_word(s) -> str:
    return "_".join(str(s).split()) or "-"


# --------------------------------------------------------------------------- reading
def read_ovf(path) -> tuple[np.ndarray, dict]:
    """Read an OVF 2.0 or 1.0 rectangular-mesh file.

    Returns (array, meta). array has shape (valuedim, nz, ny, nx) (so (1, nz, ny, nx) for a
    scalar field); float32 for "Binary 4" data, float64 otherwise. meta holds:
    n = (nx, ny, nz); cell_m = (dx, dy, dz) in metres (converted from meshunit nm/um/mm/cm when
    given so); title; desc (the Desc lines joined by newlines, less a line that only gives the time); t in s (from "Total simulation
    time: <t> s", or OVF 1.0's "Time (s): <t>"; None if absent); valuedim; valuelabels;
    valueunits; meshunit; version (1 or 2); data_format ("binary 4", "binary 8" or "text");
    origin_m = (xmin, ymin, zmin).
    Only the first segment of a multi-segment file is read. A file that is not OVF, a missing
    header key, a wrong check value or truncated data raise ProblemError("ovf file", path, ...).
    """
    path = str(path)
    from .validation import human_bytes, memory_limit
    try:
        size = os.path.getsize(path)
        if size > memory_limit():
            raise ProblemError("ovf file", path, f"an OVF file that fits in memory ({human_bytes(size)} "
                                                 f"on disk, {human_bytes(memory_limit())} available)")
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ProblemError("ovf file", path, "an existing OVF file") from None
    except OSError as e:
        raise ProblemError("ovf file", path, f"a readable OVF file ({e.strerror or e})") from None

    def bad(reason: str) -> ProblemError:
        return ProblemError("ovf file", path, f"an OVF 1.0 or 2.0 file ({reason})")

    pos = 0
    first, pos = _next_line(raw, pos)
    head = first.decode("latin-1").strip().lower()
    if re.fullmatch(r"#\s*oommf\s+ovf\s+2\.0", head):
        version = 2
    elif re.fullmatch(r"#\s*oommf\s*:\s*rectangular\s+mesh\s+v1\.0", head):
        version = 1
    elif re.fullmatch(r"#\s*oommf\s*:\s*irregular\s+mesh\s+v1\.0", head):
        raise bad("irregular meshes are not supported, only rectangular ones")
    else:
        # never quote the line: a problem file can name any file, and an error message (or a
        # sweep's stored failure) must not carry a line of someone's /etc/shadow
        raise bad("its first line is not '# OOMMF OVF 2.0' or '# OOMMF: rectangular mesh v1.0'")

    keys: dict[str, str] = {}
    descs: list[str] = []
    data_format = None
    while pos < len(raw):
        line, pos = _next_line(raw, pos)
        text = line.decode("latin-1")
        if "##" in text:                       # "##" starts a comment anywhere on a line
            text = text[:text.index("##")]
        text = text.strip()
        if not text:
            continue
        if not text.startswith("#"):
            line_no = raw[:pos].count(b"\n")
            raise bad(f"header line {line_no} does not start with '#'")
        key, _, value = text.lstrip("#").partition(":")
        key, value = " ".join(key.split()).lower(), value.strip()
        if key == "begin" and value.lower().split()[:1] == ["data"]:
            data_format = " ".join(value.lower().split()[1:])
            break
        if key == "desc":
            descs.append(value)
        elif key not in ("begin", "end") and key not in keys:
            keys[key] = value
    if data_format is None:
        raise bad("no '# Begin: Data ...' line: the header is incomplete")
    if data_format not in ("binary 4", "binary 8", "text"):
        raise bad(f"unknown data format {data_format!r}; expected 'Binary 4', 'Binary 8' or 'Text'")
    if keys.get("meshtype", "rectangular").lower() != "rectangular":
        raise bad(f"meshtype {keys['meshtype']!r} is not supported, only rectangular")

    def number(k, kind=float):
        if k not in keys:
            raise bad(f"the header has no '{k}' line")
        try:
            v = kind(keys[k]) if kind is float else int(float(keys[k]))
        except ValueError:
            raise bad(f"'{k}: {keys[k]}' is not a number") from None
        return v

    n = tuple(number(f"{c}nodes", int) for c in "xyz")
    if min(n) < 1:
        raise bad(f"the node counts {n} must all be at least 1")
    meshunit = keys.get("meshunit", "m")
    scale = _LENGTH_UNITS.get(meshunit.lower(), 1.0)
    cell_m = tuple(number(f"{c}stepsize") * scale for c in "xyz")
    if not all(np.isfinite(c) and c > 0 for c in cell_m):
        raise bad(f"the step sizes {tuple(keys.get(f'{c}stepsize') for c in 'xyz')} must be finite and positive")
    origin_m = tuple((number(f"{c}min") if f"{c}min" in keys else 0.0) * scale for c in "xyz")
    if not all(np.isfinite(o) for o in origin_m):
        raise bad(f"the mesh origin {origin_m} is not finite")
    valuedim = number("valuedim", int) if version == 2 else 3
    if not 1 <= valuedim <= 64:
        raise bad(f"valuedim {valuedim} must be in 1..64")
    count = n[0] * n[1] * n[2] * valuedim
    # the declared size, against the memory there is, before anything of that size is made
    need = count * 8 * 2       # the values as float64 and their reordered copy
    if need > memory_limit():
        raise bad(f"it declares {n[0]} x {n[1]} x {n[2]} cells x {valuedim} values: "
                  f"{human_bytes(need)} to read, {human_bytes(memory_limit())} available")
    rest = len(raw) - pos
    min_bytes = count * (2 if data_format == "text" else (4 if data_format == "binary 4" else 8))
    if rest < min_bytes:
        raise bad(f"truncated data: {n[0]}x{n[1]}x{n[2]} cells x {valuedim} values need at least "
                  f"{min_bytes} bytes, the file holds {rest}")

    if data_format == "text":
        values = _read_text(raw[pos:], count, bad)
    else:
        size = 4 if data_format == "binary 4" else 8
        endian = "<" if version == 2 else ">"
        dtype = np.dtype(f"{endian}f{size}")
        check = CHECK4 if size == 4 else CHECK8
        if len(raw) - pos < size:
            raise bad("truncated data: the file ends before the binary check value")
        got = float(np.frombuffer(raw, dtype, 1, pos)[0])
        if got != check:
            other = float(np.frombuffer(raw, dtype.newbyteorder(), 1, pos)[0])
            hint = (" (it matches with the other byte order: the version line and the data disagree)"
                    if other == check else "")
            raise bad(f"wrong check value {got!r} at the start of the {data_format} data, expected "
                      f"{check!r} {'little' if version == 2 else 'big'}-endian{hint}")
        pos += size
        if len(raw) - pos < count * size:
            raise bad(f"truncated data: {n[0]}x{n[1]}x{n[2]} cells x {valuedim} values need "
                      f"{count * size} bytes, the file holds {len(raw) - pos}")
        values = np.frombuffer(raw, dtype, count, pos).astype(dtype.newbyteorder("="))
        after, _ = _next_line(raw, pos + count * size)
        after = after.decode("latin-1").strip()
        if after and not re.match(r"#\s*end\s*:\s*data", after, re.I):
            end = re.search(rb"#\s*end\s*:\s*data", raw[pos + count * size:], re.I)
            more = end.start() if end else len(raw) - pos - count * size
            raise bad(f"the data do not end after the {count} values the node counts "
                      f"{n[0]}x{n[1]}x{n[2]} declare ({more} more bytes follow)")

    if not np.isfinite(values).all():
        bad_idx = np.flatnonzero(~np.isfinite(values))
        raise bad(f"{bad_idx.size} NaN or infinite value(s), the first at cell {bad_idx[0] // valuedim}")

    if version == 1 and "valuemultiplier" in keys:
        values = values * float(keys["valuemultiplier"])
    array = np.ascontiguousarray(np.moveaxis(values.reshape(n[2], n[1], n[0], valuedim), -1, 0))

    t = None
    for i, d in enumerate(descs):
        mt = _TIME_RE.search(d) or (_TIME_OVF1_RE.search(d) if version == 1 else None)
        if mt:
            t = float(mt.group(1))
            if mt.group(0).strip() == d.removesuffix("s").strip():   # the line says nothing else
                del descs[i]
            break
    meta = {"n": n, "cell_m": cell_m, "title": keys.get("title", ""), "desc": "\n".join(descs),
            "t": t, "valuedim": valuedim,
            "valuelabels": tuple(keys.get("valuelabels", "").split()),
            "valueunits": tuple(keys.get("valueunits", "").split()),
            "meshunit": meshunit, "version": version, "data_format": data_format,
            "origin_m": origin_m}
    return array, meta


def _next_line(raw: bytes, pos: int) -> tuple[bytes, int]:
    end = raw.find(b"\n", pos)
    if end < 0:
        return raw[pos:].rstrip(b"\r"), len(raw)
    return raw[pos:end].rstrip(b"\r"), end + 1


def _read_text(raw: bytes, count: int, bad) -> np.ndarray:
    words = []
    for line in raw.decode("latin-1").splitlines():
        s = line.strip()
        if s.startswith("#"):
            if re.match(r"#\s*end\s*:\s*data", s, re.I):
                break
            continue
        words.extend(s.split())
    if len(words) < count:
        raise bad(f"truncated data: {count} text values expected, found {len(words)}")
    if len(words) > count:
        raise bad(f"{len(words)} text values where the node counts declare {count}")
    try:
        return np.array(words[:count], dtype=np.float64)
    except ValueError as e:
        raise bad(f"text data that are not numbers ({e})") from None
