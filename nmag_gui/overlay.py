"""Scalar overlays for the 3D view: the surrogate's error, either demag field, energy densities.

The spin view shows one of these as a second colour map with its own scale bar. This module is
pure numpy (no Qt, no VTK) so that a test can check exactly what the view is given. It computes
no physics: every value comes from the engine through typed Frame fields.

Every overlay is a float64 array (nz, ny, nx), finite inside the magnet, NaN outside it (the
view leaves NaN cells transparent). The values are never changed by the log switch: `log` only
changes the colour range (a positive lower end, so a logarithmic lookup table has something to
work with); cells below it are drawn in the lowest colour.

Kinds and units:

- ``"error"``: |H_net - H_fft| / Ms per cell, dimensionless (`frame.error_map`).
- ``"H_net"``, ``"H_fft"``: |H_demag| of the network or of the exact FFT, in A/m
  (`frame.probe.H_net`, `frame.probe.H_fft`).
- ``"energy_density"``: the total energy density in J/m^3 (`frame.energy_density["total"]`,
  computed by the engine's terms); ``"energy_density:<term>"`` one term's density (exchange,
  demag, zeeman, anisotropy, cubic_anisotropy, dmi). Densities are signed: the linear scale
  shows them as they are, the log scale shows |e|.

Example::

    values, (lo, hi) = overlay_scalars(frame, "error", log=True)
    title = overlay_title("error", log=True)       # "|H_net - H_fft| / Ms (log)"
"""
from __future__ import annotations

import numpy as np

KINDS = ("error", "H_net", "H_fft", "energy_density")
ENERGY_TERMS = ("exchange", "demag", "zeeman", "anisotropy", "cubic_anisotropy", "dmi")

TITLES = {"error": ("|H_net - H_fft| / Ms", ""),
          "H_net": ("|H_demag| network", "A/m"),
          "H_fft": ("|H_demag| FFT", "A/m"),
          "energy_density": ("energy density", "J/m³")}

LOG_DECADES = 4.0   # a log colour range spans at most this many decades below its top


def energy_term(kind: str) -> str | None:
    """'total' for "energy_density", the term for "energy_density:<term>", else None."""
    if kind == "energy_density":
        return "total"
    if kind.startswith("energy_density:"):
        return kind.split(":", 1)[1]
    return None


def magnet_mask(frame_or_m) -> np.ndarray:
    """Cells inside the magnet: where |m| > 0 (m is zero in vacuum). bool (nz, ny, nx)."""
    m = frame_or_m.m if hasattr(frame_or_m, "m") else frame_or_m
    m = np.asarray(m)
    return np.einsum("c...,c...->...", m, m) > 0.0


def overlay_title(kind: str, log: bool = False) -> str:
    """The scale bar's title: the quantity, its unit and "(log)" when the range is logarithmic."""
    term = energy_term(_check_kind(kind))
    if term is not None:
        name = ("|energy density|" if log else "energy density") + ("" if term == "total" else f" {term}")
        return f"{name} [J/m³]" + (" (log)" if log else "")
    name, unit = TITLES[kind]
    return name + (f" [{unit}]" if unit else "") + (" (log)" if log else "")


def available_overlays(frame) -> list[str]:
    """The kinds `overlay_scalars` can compute for this frame."""
    out = []
    if getattr(frame, "error_map", None) is not None:
        out.append("error")
    if getattr(frame, "probe", None) is not None:
        out += ["H_net", "H_fft"]
    dens = getattr(frame, "energy_density", None) or {}
    if "total" in dens:
        out.append("energy_density")
    out += [f"energy_density:{t}" for t in dens if t != "total"]
    return out


def overlay_scalars(frame, kind: str, log: bool = False):
    """The overlay `kind` of a Frame, and a colour range for it.

    Returns (values, (lo, hi)): values float64 (nz, ny, nx), finite inside the magnet, NaN
    outside (>= 0 except for energy densities on a linear scale); lo < hi, lo > 0 when log.
    Raises ValueError saying what is missing when the frame cannot give this overlay.
    """
    kind = _check_kind(kind)
    mask = magnet_mask(frame)
    term = energy_term(kind)
    signed = False
    if kind == "error":
        raw = getattr(frame, "error_map", None)
        if raw is None and getattr(frame, "demag_method", "") == "fft":
            raise ValueError("none: the exact FFT runs (demag 'neural + error probe', inside the "
                             "model card, shows one)")
        if raw is None:
            raise ValueError("no error map in this frame: choose the demag method "
                             "'neural + error probe' and wait for the next probe")
    elif kind in ("H_net", "H_fft"):
        probe = getattr(frame, "probe", None)
        if probe is None:
            raise ValueError(f"this frame carries no {kind} field: it comes with the error probe "
                             "(demag method 'neural + error probe')")
        H = np.asarray(getattr(probe, kind), dtype=np.float64)
        raw = np.sqrt(np.einsum("c...,c...->...", H, H))
    else:
        dens = getattr(frame, "energy_density", None)
        if dens is None:
            raise ValueError("this frame carries no energy density yet (the next frame will)")
        if term not in dens:
            raise ValueError(f"this problem has no {term} term (it has "
                             f"{', '.join(k for k in dens if k != 'total')})")
        raw = dens[term]
        signed = not log
    raw = np.asarray(raw, dtype=np.float64)
    if raw.shape != mask.shape:
        raise ValueError(f"the {kind} array has shape {raw.shape}, expected (nz, ny, nx) = {mask.shape}")
    values = np.full(mask.shape, np.nan)
    inside = np.nan_to_num(raw[mask], nan=0.0, posinf=0.0, neginf=0.0)
    values[mask] = inside if signed else np.abs(inside)
    return values, (signed_range(values) if signed else colour_range(values, log))


def signed_range(values: np.ndarray) -> tuple[float, float]:
    """A linear colour range for signed values: the 0.5th to 99.5th percentile (lo < hi)."""
    v = values[np.isfinite(values)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(v, [0.5, 99.5]))
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        hi = lo + (abs(lo) * 1e-6 or 1e-12)
    return lo, hi


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


def _check_kind(kind: str) -> str:
    if kind in KINDS or (kind.startswith("energy_density:") and energy_term(kind) in ENERGY_TERMS):
        return kind
    raise ValueError(f"overlay kind must be one of {', '.join(KINDS)} or energy_density:<term> "
                     f"(<term> one of {', '.join(ENERGY_TERMS)}), not {kind!r}")
