"""Scalar overlays for the 3D view: the surrogate's error, either demag field, the energy density.

The spin view shows one of these as a second colour map with its own scale bar. This module is
pure numpy (no Qt, no VTK) so that a test can check exactly what the view is given.

Every overlay is a float64 array (nz, ny, nx): finite and non-negative inside the magnet, NaN
outside it (the view leaves NaN cells transparent or grey). The values are never changed by the
log switch: `log` only changes the colour range (a positive lower end, so a logarithmic lookup
table has something to work with); cells below it are drawn in the lowest colour.

Kinds and units:

- ``"error"``: |H_net - H_fft| / Ms per cell, dimensionless (the error probe's map).
- ``"H_net"``, ``"H_fft"``: |H_demag| of the network or of the exact FFT, in A/m.
- ``"energy_density"``: J/m^3. The engine's own per-cell density when a frame carries one
  (``frame.extra["energy_density"]``); otherwise the exchange energy density
  A |grad m|^2 computed here from m (needs the cell size and A, see `overlay_scalars`).

Example::

    values, (lo, hi) = overlay_scalars(frame, "error", log=True)
    title = overlay_title("error", log=True)       # "|H_net - H_fft| / Ms (log)"
"""
from __future__ import annotations

import numpy as np

KINDS = ("error", "H_net", "H_fft", "energy_density")

TITLES = {"error": ("|H_net - H_fft| / Ms", ""),
          "H_net": ("|H_demag| network", "A/m"),
          "H_fft": ("|H_demag| FFT", "A/m"),
          "energy_density": ("energy density", "J/m³")}

# names a frame's extra dict (or a probe) may use for the two demag fields (3, nz, ny, nx), A/m
_FIELD_NAMES = {"H_net": ("H_net", "H_demag_net", "h_net", "H_neural"),
                "H_fft": ("H_fft", "H_demag_fft", "h_fft", "H_exact")}

LOG_DECADES = 4.0   # a log colour range spans at most this many decades below its top


def magnet_mask(frame_or_m) -> np.ndarray:
    """Cells inside the magnet: where |m| > 0 (m is zero in vacuum). bool (nz, ny, nx)."""
    m = frame_or_m.m if hasattr(frame_or_m, "m") else frame_or_m
    m = np.asarray(m)
    return np.einsum("c...,c...->...", m, m) > 0.0


def overlay_title(kind: str, log: bool = False) -> str:
    """The scale bar's title: the quantity, its unit and "(log)" when the range is logarithmic."""
    name, unit = TITLES[_check_kind(kind)]
    return name + (f" [{unit}]" if unit else "") + (" (log)" if log else "")


def available_overlays(frame) -> list[str]:
    """The kinds `overlay_scalars` can compute for this frame (without extra arguments for
    the energy density, which is always possible given a cell size and A)."""
    out = []
    if getattr(frame, "error_map", None) is not None:
        out.append("error")
    for kind in ("H_net", "H_fft"):
        if _find_field(frame, kind) is not None:
            out.append(kind)
    out.append("energy_density")
    return out


def overlay_scalars(frame, kind: str, log: bool = False, *, cell_m=None, A=None):
    """The overlay `kind` of a Frame, and a colour range for it.

    frame: an engine Frame (uses .m, .error_map, .extra). cell_m: (dx, dy, dz) in m and A:
    exchange stiffness in J/m (a number or an (nz, ny, nx) array), both needed only for the
    energy density when the frame carries none (they may also come in frame.extra as "cell_m"
    and "A"). Returns (values, (lo, hi)): values float64 (nz, ny, nx), finite and >= 0 inside
    the magnet, NaN outside; (lo, hi) with 0 <= lo < hi, and lo > 0 when log is true.
    Raises ValueError naming what is missing when the frame cannot give this overlay.
    """
    kind = _check_kind(kind)
    mask = magnet_mask(frame)
    if kind == "error":
        raw = getattr(frame, "error_map", None)
        if raw is None:
            raise ValueError("no error map in this frame: choose the demag method "
                             "'neural + error probe' and wait for the next probe")
        raw = np.asarray(raw, dtype=np.float64)
    elif kind in ("H_net", "H_fft"):
        H = _find_field(frame, kind)
        if H is None:
            raise ValueError(f"this frame carries no {kind} field: it comes with the error probe "
                             "(demag method 'neural + error probe')")
        H = np.asarray(H, dtype=np.float64)
        raw = np.sqrt(np.einsum("c...,c...->...", H, H))
    else:
        extra = getattr(frame, "extra", None) or {}
        if extra.get("energy_density") is not None:
            raw = np.asarray(extra["energy_density"], dtype=np.float64)
        else:
            cell_m = cell_m if cell_m is not None else extra.get("cell_m")
            A = A if A is not None else extra.get("A")
            if cell_m is None or A is None:
                raise ValueError("the energy density needs the cell size (cell_m) and the "
                                 "exchange stiffness A of the problem")
            raw = exchange_energy_density(frame.m, cell_m, A)
    raw = np.asarray(raw, dtype=np.float64)
    if raw.shape != mask.shape:
        raise ValueError(f"the {kind} array has shape {raw.shape}, expected (nz, ny, nx) = {mask.shape}")
    values = np.full(mask.shape, np.nan)
    inside = raw[mask]
    values[mask] = np.abs(np.nan_to_num(inside, nan=0.0, posinf=0.0, neginf=0.0))
    return values, colour_range(values, log)


def colour_range(values: np.ndarray, log: bool = False) -> tuple[float, float]:
    """A colour range for non-negative values with NaN outside the magnet.

    Linear: (0, top), top the 99.5th percentile (one hot cell does not wash out the rest).
    Log: (top / 10^LOG_DECADES or the smallest positive value if larger, top). Always lo < hi.
    """
    v = values[np.isfinite(values)]
    top = float(np.percentile(v, 99.5)) if v.size else 0.0
    if v.size and top <= 0.0:
        top = float(v.max())
    if top <= 0.0:
        return (1e-12, 1.0) if log else (0.0, 1.0)
    if not log:
        return 0.0, top
    pos = v[v > 0]
    lo = max(float(pos.min()), top * 10.0 ** -LOG_DECADES)
    if lo >= top:
        lo = top / 10.0
    return lo, top


def exchange_energy_density(m, cell_m, A) -> np.ndarray:
    """Exchange energy density A |grad m|^2 per cell in J/m^3, float64 (nz, ny, nx).

    Each bond between two magnet cells i, j a distance d apart holds A |m_j - m_i|^2 / d^2;
    half of it is given to each cell (so a uniform gradient gives exactly A |grad m|^2).
    Bonds to vacuum count nothing (free boundary). A: number or (nz, ny, nx) array in J/m; on
    a bond between two materials the harmonic mean is used, as the engine's exchange does.
    """
    m = np.asarray(m, dtype=np.float64)
    mask = magnet_mask(m)
    A = np.broadcast_to(np.asarray(A, dtype=np.float64), mask.shape)
    e = np.zeros(mask.shape)
    d_by_axis = {3: float(cell_m[0]), 2: float(cell_m[1]), 1: float(cell_m[2])}   # x, y, z
    for axis, d in d_by_axis.items():
        n = m.shape[axis]
        if n < 2:
            continue
        a = [slice(None)] * 4
        b = [slice(None)] * 4
        a[axis], b[axis] = slice(0, n - 1), slice(1, n)
        dm = m[tuple(b)] - m[tuple(a)]
        sa, sb = tuple(a[1:]), tuple(b[1:])
        both = mask[sa] & mask[sb]
        Ai, Aj = A[sa], A[sb]
        with np.errstate(divide="ignore", invalid="ignore"):
            Ab = np.where(Ai + Aj > 0, 2 * Ai * Aj / (Ai + Aj), 0.0)
        bond = np.where(both, Ab * np.einsum("c...,c...->...", dm, dm) / d ** 2, 0.0)
        e[sa] += 0.5 * bond
        e[sb] += 0.5 * bond
    return e


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"overlay kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _find_field(frame, kind):
    extra = getattr(frame, "extra", None) or {}
    for name in _FIELD_NAMES[kind]:
        if extra.get(name) is not None:
            return extra[name]
        if getattr(frame, name, None) is not None:   # a probe result has the fields as attributes
            return getattr(frame, name)
    return None
