"""Initial magnetization textures. Each returns m as a numpy array (3, nz, ny, nx) of unit
vectors (zero where the mask is empty). Positions are in nm, origin at the grid centre.

kinds and params:
- uniform {direction: [3]}
- random {seed: int}
- vortex {chirality: +1 (counter-clockwise) or -1, polarity: +1 or -1, core_nm: radius, center_nm}
- s_state {}: the muMAG SP4 start, (1, 0.1, 0) tilted at the short edges (relax it afterwards)
- skyrmion {radius_nm, polarity: +1 (core up) or -1, center_nm, wall_nm, helicity: "neel"|"bloch"}
- domain_wall {axis: "x"|"y", position_nm, width_nm, wall: "head_to_head"|"bloch"|"neel"}
- file {path}: an OVF file with the same grid
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ProblemError


INITIAL_KEYS = {"uniform": {"direction"}, "random": {"seed"},
                "vortex": {"chirality", "polarity", "core_nm", "center_nm"}, "s_state": set(),
                "skyrmion": {"radius_nm", "wall_nm", "polarity", "helicity", "center_nm"},
                "domain_wall": {"axis", "position_nm", "width_nm", "wall"}, "file": {"path"}}


def validate_initial(kind: str, p: dict, key: str = "initial") -> None:
    """Check the params of an initial state of `kind` in place (defaults filled in); an unknown
    key is refused with the nearest known one suggested."""
    from .validation import check_vector, check_number, check_choice, check_keys
    if kind in INITIAL_KEYS:
        check_keys(p, key, INITIAL_KEYS[kind] | {"kind"})
    if kind == "uniform":
        p["direction"] = list(check_vector(f"{key}.direction", p.get("direction", [1, 0, 0]), 3, nonzero=True))
    elif kind == "random":
        p["seed"] = check_number(f"{key}.seed", p.get("seed", 0), 0, 2 ** 31, integer=True)
    elif kind == "vortex":
        p["chirality"] = check_choice(f"{key}.chirality", p.get("chirality", 1), (1, -1))
        p["polarity"] = check_choice(f"{key}.polarity", p.get("polarity", 1), (1, -1))
        p["core_nm"] = check_number(f"{key}.core_nm", p.get("core_nm", 10.0), 0.1, 1e5)
        p["center_nm"] = list(check_vector(f"{key}.center_nm", p.get("center_nm", [0, 0]), 2))
    elif kind == "skyrmion":
        p["radius_nm"] = check_number(f"{key}.radius_nm", p.get("radius_nm", 20.0), 0.1, 1e5)
        p["wall_nm"] = check_number(f"{key}.wall_nm", p.get("wall_nm", 5.0), 0.01, 1e5)
        p["polarity"] = check_choice(f"{key}.polarity", p.get("polarity", -1), (1, -1))
        p["helicity"] = check_choice(f"{key}.helicity", p.get("helicity", "neel"), ("neel", "bloch"))
        p["center_nm"] = list(check_vector(f"{key}.center_nm", p.get("center_nm", [0, 0]), 2))
    elif kind == "domain_wall":
        p["axis"] = check_choice(f"{key}.axis", p.get("axis", "x"), ("x", "y"))
        p["position_nm"] = check_number(f"{key}.position_nm", p.get("position_nm", 0.0))
        p["width_nm"] = check_number(f"{key}.width_nm", p.get("width_nm", 10.0), 0.01, 1e5)
        p["wall"] = check_choice(f"{key}.wall", p.get("wall", "head_to_head"), ("head_to_head", "bloch", "neel"))
    elif kind == "file":
        if not isinstance(p.get("path"), str):
            raise ProblemError(f"{key}.path", p.get("path"), "the path of an OVF file")
    elif kind == "s_state":
        pass


def _coords(mesh):
    nx, ny, nz = mesh.n
    dx, dy, dz = mesh.cell_nm
    x = (np.arange(nx) + 0.5 - nx / 2) * dx
    y = (np.arange(ny) + 0.5 - ny / 2) * dy
    Y, X = np.meshgrid(y, x, indexing="ij")  # (ny, nx)
    return np.broadcast_to(X, (nz, ny, nx)), np.broadcast_to(Y, (nz, ny, nx))


def initial_m(kind: str, p: dict, mesh, mask: np.ndarray, base_dir: str | Path = ".") -> np.ndarray:
    """The initial m (3, nz, ny, nx) float64 for a mask (nz, ny, nx)."""
    nx, ny, nz = mesh.n
    shape = (nz, ny, nx)
    X, Y = _coords(mesh)
    if kind == "uniform":
        d = np.asarray(p.get("direction", [1, 0, 0]), dtype=float)
        m = np.broadcast_to(d[:, None, None, None], (3,) + shape).copy()
    elif kind == "random":
        rng = np.random.default_rng(int(p.get("seed", 0)))
        m = rng.normal(size=(3,) + shape)
    elif kind == "vortex":
        cx, cy = p.get("center_nm", [0, 0])
        xr, yr = X - cx, Y - cy
        r = np.hypot(xr, yr)
        rc = float(p.get("core_nm", 10.0))
        c = int(p.get("chirality", 1))
        mz = int(p.get("polarity", 1)) * np.exp(-(r / rc) ** 2)
        inplane = np.sqrt(np.clip(1 - mz ** 2, 0, 1))
        phi = np.arctan2(yr, xr)
        m = np.stack([-c * np.sin(phi) * inplane, c * np.cos(phi) * inplane, mz])
    elif kind == "s_state":
        m = np.zeros((3,) + shape)
        m[0] = 1.0
        m[1] = 0.1
        edge = max(1, nx // 10)
        m[1, :, :, :edge] = 1.0
        m[1, :, :, -edge:] = 1.0
    elif kind == "skyrmion":
        cx, cy = p.get("center_nm", [0, 0])
        xr, yr = X - cx, Y - cy
        r = np.hypot(xr, yr)
        R, w = float(p.get("radius_nm", 20.0)), float(p.get("wall_nm", 5.0))
        pol = int(p.get("polarity", -1))
        # theta: pi at the centre (core opposite to background), 0 far away; a 360-degree wall profile
        theta = 2 * np.arctan(np.exp(-(r - R) / w)) if R > 0 else np.zeros_like(r)
        theta = np.where(r < 1e-12, np.pi, theta)
        phi = np.arctan2(yr, xr) + (np.pi / 2 if p.get("helicity", "neel") == "bloch" else 0.0)
        # core points along pol, background along -pol
        m = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), -pol * np.cos(theta)])
    elif kind == "domain_wall":
        u = X if p.get("axis", "x") == "x" else Y
        s = (u - float(p.get("position_nm", 0.0))) / float(p.get("width_nm", 10.0))
        theta = 2 * np.arctan(np.exp(s))  # 0 -> pi across the wall
        along = 0 if p.get("axis", "x") == "x" else 1
        across = 1 - along
        m = np.zeros((3,) + shape)
        kind_w = p.get("wall", "head_to_head")
        if kind_w == "head_to_head":   # in-plane, +u | -u, rotating through the in-plane normal
            m[along] = np.cos(theta)
            m[across] = np.sin(theta)
        elif kind_w == "bloch":       # out-of-plane domains, wall rotates through the in-plane normal
            m[2] = np.cos(theta)
            m[across] = np.sin(theta)
        else:                         # neel: out-of-plane domains, rotates through the wall normal
            m[2] = np.cos(theta)
            m[along] = np.sin(theta)
    elif kind == "file":
        from .ovf import read_ovf
        path = Path(base_dir) / p["path"]
        if not path.is_file():
            raise ProblemError("initial.path", str(path), "an existing OVF file")
        try:
            arr, _meta = read_ovf(path)
        except ProblemError as e:
            raise ProblemError("initial.path", str(path), e.allowed) from None
        if arr.shape != (3,) + shape:
            raise ProblemError("initial.path", str(path), f"an OVF file of {nx} x {ny} x {nz} cells (got {arr.shape[1:][::-1]})")
        m = arr.astype(float)
    else:
        raise ProblemError("initial.kind", kind, "a known initial state")
    m = np.asarray(m, dtype=float)
    n = np.linalg.norm(m, axis=0)
    n[n == 0] = 1.0
    m = m / n * mask[None]
    return m
