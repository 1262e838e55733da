"""Closed surface meshes (STL, OBJ) read and voxelised onto the grid, in numpy only.

Why here and not through pyvista: the engine never imports pyvista or Qt, and a problem file
that names `shape = "mesh"` must run headless (`nmag run`). Other formats (PLY, VTK) are
converted by the GUI layer, which may use pyvista, into an STL that this module reads.

Voxelisation is by ray parity: a cell belongs to the solid when a ray from its centre crosses
the surface an odd number of times. Rays are cast along x, y and z and the three votes are
combined by majority, so a small hole or a doubled face in a mesh that is not quite watertight
changes one vote, not the answer. The ray origins are shifted by a tiny irrational fraction of
a cell so that rays do not run exactly through edges or vertices of a mesh whose vertices sit
on round numbers (a cube's face diagonal would otherwise count twice).

Units: the file's coordinates are taken as nm, times `scale`, then shifted (see
`place_triangles`).

Example::

    tris = read_surface("part.stl")               # (n, 3, 3) float64, nm
    inside = voxelize(tris, xc, yc, zc)           # bool (nz, ny, nx) for cell centres xc, yc, zc
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .errors import ProblemError

SURFACE_SUFFIXES = (".stl", ".obj")
MAX_TRIANGLES = 2_000_000
MAX_SURFACE_BYTES = 256 * 2 ** 20   # a binary STL of MAX_TRIANGLES is 100 MB; ASCII about 2.5x that
# ray origins are moved by these fractions of a cell (irrational, so no mesh lines hit them)
_JITTER = (np.sqrt(2.0) * 1e-4, np.sqrt(3.0) * 1e-4, np.sqrt(5.0) * 1e-4)


# --------------------------------------------------------------------------- reading
def read_surface(path, key: str = "geometry.path") -> np.ndarray:
    """The triangles of an STL (ASCII or binary) or OBJ file, float64 (n, 3, 3). A file that is
    missing, unreadable or holds no triangles raises ProblemError(key, path, ...)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SURFACE_SUFFIXES:
        raise ProblemError(key, str(path), "an .stl or .obj surface file (convert PLY/VTK in the app)")
    if not path.exists():
        raise ProblemError(key, str(path), "an existing surface file")
    if not path.is_file():   # a device (/dev/zero), a FIFO or a folder: never read
        raise ProblemError(key, str(path), "a regular surface file (this is not a plain file)")
    size = path.stat().st_size
    if size > MAX_SURFACE_BYTES:
        raise ProblemError(key, str(path), f"a surface file of at most {MAX_SURFACE_BYTES // 2**20} MiB "
                                           f"(this one has {size // 2**20} MiB)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ProblemError(key, str(path), f"a readable surface file ({e.strerror})") from None
    try:
        tris = _read_stl(data) if suffix == ".stl" else _read_obj(data.decode("utf-8", "replace"))
    except (ValueError, IndexError, struct.error):
        # the parser's message would quote the file's text: say where it failed, not what it read
        raise ProblemError(key, str(path), f"a valid {suffix[1:].upper()} file (it could not be read "
                                           f"as one)") from None
    if len(tris) == 0:
        raise ProblemError(key, str(path), "a surface file with at least one triangle")
    if len(tris) > MAX_TRIANGLES:
        raise ProblemError(key, str(path), f"at most {MAX_TRIANGLES:,} triangles (got {len(tris):,})")
    if not np.isfinite(tris).all():
        raise ProblemError(key, str(path), "finite vertex coordinates")
    return tris


def _read_stl(data: bytes) -> np.ndarray:
    if len(data) >= 84:
        n = struct.unpack_from("<I", data, 80)[0]
        if len(data) == 84 + 50 * n:   # binary: the size says so (ASCII files may start with "solid" too)
            rec = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
            return np.frombuffer(data, rec, count=n, offset=84)["v"].astype(np.float64)
    text = data.decode("ascii", "replace")
    if not text.lstrip().lower().startswith("solid"):
        raise ValueError("neither binary STL (size does not match the triangle count) nor ASCII STL")
    verts = [line.split()[1:4] for line in text.splitlines() if line.strip().lower().startswith("vertex")]
    if len(verts) % 3:
        raise ValueError(f"{len(verts)} vertices, not a multiple of 3")
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3, 3)


def _read_obj(text: str) -> np.ndarray:
    verts, faces = [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            verts.append([float(v) for v in parts[1:4]])
        elif parts[0] == "f":
            idx = []
            for tok in parts[1:]:
                i = int(tok.split("/")[0])
                idx.append(i - 1 if i > 0 else len(verts) + i)   # 1-based; negative counts back
            for a in range(1, len(idx) - 1):                      # a polygon as a fan of triangles
                faces.append((idx[0], idx[a], idx[a + 1]))
    if not faces:
        return np.zeros((0, 3, 3))
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.intp)
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError("a face names a vertex that does not exist")
    return v[f]


def write_stl(path, triangles: np.ndarray) -> None:
    """Write triangles (n, 3, 3) as a binary STL (normals from the vertex order)."""
    t = np.asarray(triangles, dtype=np.float64)
    nrm = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    ln = np.linalg.norm(nrm, axis=1, keepdims=True)
    nrm = nrm / np.where(ln > 0, ln, 1.0)
    rec = np.zeros(len(t), np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")]))
    rec["normal"], rec["v"] = nrm, t
    with open(path, "wb") as fh:
        fh.write(b"nmag binary STL".ljust(80, b" "))
        fh.write(struct.pack("<I", len(t)))
        fh.write(rec.tobytes())


def place_triangles(tris: np.ndarray, scale: float = 1.0, offset_nm=(0.0, 0.0, 0.0),
                    center: bool = True) -> np.ndarray:
    """File coordinates (nm) times `scale`; with center=True the bounding box's centre is moved
    to offset_nm (the grid's centre when offset is 0), else offset_nm is simply added."""
    t = np.asarray(tris, dtype=np.float64) * float(scale)
    if center:
        flat = t.reshape(-1, 3)
        t = t - 0.5 * (flat.min(axis=0) + flat.max(axis=0))
    return t + np.asarray(offset_nm, dtype=np.float64)


# --------------------------------------------------------------------------- voxelising
def voxelize(tris: np.ndarray, xc: np.ndarray, yc: np.ndarray, zc: np.ndarray) -> np.ndarray:
    """Bool (nz, ny, nx): which cell centres (xc (nx,), yc (ny,), zc (nz,), nm, increasing and
    evenly spaced) lie inside the closed surface `tris` (n, 3, 3). Majority of three ray-parity
    votes (rays along x, y and z)."""
    tris = np.asarray(tris, dtype=np.float64)
    axes = (np.asarray(xc, float), np.asarray(yc, float), np.asarray(zc, float))
    votes = np.zeros((len(zc), len(yc), len(xc)), np.int8)
    for ray in (2, 0, 1):
        votes += _parity_along(tris, axes, ray)
    return votes >= 2


def _parity_along(tris, axes, ray: int) -> np.ndarray:
    """Ray parity with rays along axis `ray` (0 = x, 1 = y, 2 = z), as (nz, ny, nx) int8."""
    a, b = [ax for ax in (0, 1, 2) if ax != ray]           # the two axes across the ray
    ca, cb, cr = axes[a], axes[b], axes[ray]
    da = ca[1] - ca[0] if len(ca) > 1 else 1.0
    db = cb[1] - cb[0] if len(cb) > 1 else 1.0
    pa = ca + _JITTER[a] * da                                # ray positions, nudged off mesh lines
    pb = cb + _JITTER[b] * db
    A, B, R = tris[:, :, a], tris[:, :, b], tris[:, :, ray]  # (n, 3) each
    # candidate rays of each triangle: those inside its bounding box across the ray
    ia0 = np.searchsorted(pa, A.min(axis=1), "left")
    ia1 = np.searchsorted(pa, A.max(axis=1), "right")
    ib0 = np.searchsorted(pb, B.min(axis=1), "left")
    ib1 = np.searchsorted(pb, B.max(axis=1), "right")
    na, nb = np.maximum(ia1 - ia0, 0), np.maximum(ib1 - ib0, 0)
    counts = na * nb
    keep = counts > 0
    crossings = np.zeros((len(pb), len(pa), len(cr) + 1), np.int32)   # (b, a, ray cells + 1)
    if keep.any():
        t_idx = np.repeat(np.nonzero(keep)[0], counts[keep])
        start = np.repeat(np.cumsum(counts[keep]) - counts[keep], counts[keep])
        local = np.arange(len(t_idx)) - start
        ja = ia0[t_idx] + local % na[t_idx]
        jb = ib0[t_idx] + local // na[t_idx]
        px, py = pa[ja], pb[jb]
        ax, ay, az = A[t_idx, 0], B[t_idx, 0], R[t_idx, 0]
        bx, by, bz = A[t_idx, 1], B[t_idx, 1], R[t_idx, 1]
        cx, cy, cz = A[t_idx, 2], B[t_idx, 2], R[t_idx, 2]
        # barycentric weights of the ray's foot in the triangle's projection
        det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        ok = np.abs(det) > 1e-300
        det = np.where(ok, det, 1.0)
        w0 = ((by - cy) * (px - cx) + (cx - bx) * (py - cy)) / det
        w1 = ((cy - ay) * (px - cx) + (ax - cx) * (py - cy)) / det
        w2 = 1.0 - w0 - w1
        hit = ok & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        zhit = w0 * az + w1 * bz + w2 * cz
        # a hit at height zhit is below every cell centre from index k on: count it there
        k = np.searchsorted(cr, zhit[hit], "left")
        np.add.at(crossings, (jb[hit], ja[hit], k), 1)
    below = np.cumsum(crossings[:, :, :-1], axis=2)            # hits below each cell centre
    inside = (below & 1).astype(np.int8)                       # (b, a, ray)
    # back to (z, y, x): inside is indexed [b, a, ray] with a < b among the other axes
    order = {ray: 2, a: 1, b: 0}
    return np.transpose(inside, (order[2], order[1], order[0]))
