"""Numbers measured on one run's table, stored per point in the sweep's index.

Each function takes the table as {column: 1-D array} (t in s, mx/my/mz, E_total in J,
Bx_mT...) and returns a float (NaN when the run never shows the feature) or a vector:

    final_mean_m        (mx, my, mz) of the last row
    first_zero_mx_ns    t (ns) where <mx> first changes sign from its first row (linear
                        interpolation): the SP4 "first zero crossing"
    switching_time_ns   t (ns) from which <mx> keeps the opposite sign to the end of the run
                        (its last sign change); NaN if the final <mx> has the starting sign
    final_energy        E_total of the last row (J)
    coercive_field_mT   mean |Bx| (mT) where <mx> changes sign, interpolated between rows:
                        for a loop (sweep stages down and up) the coercive field
"""
from __future__ import annotations

import math

import numpy as np

NS = 1e-9


def _crossings(x: np.ndarray, y: np.ndarray) -> list:
    """Values of x where y changes sign (strictly) between consecutive rows, interpolated."""
    out = []
    for k in range(len(y) - 1):
        a, b = y[k], y[k + 1]
        if a == 0 and k == 0:
            continue
        if (a > 0 > b) or (a < 0 < b) or (b == 0 and a != 0):
            w = a / (a - b)
            out.append(float(x[k] + w * (x[k + 1] - x[k])))
    return out


def final_mean_m(table) -> list:
    return [float(table[c][-1]) for c in ("mx", "my", "mz")]


def first_zero_mx_ns(table) -> float:
    c = _crossings(np.asarray(table["t"]), np.asarray(table["mx"]))
    return c[0] / NS if c else math.nan


def switching_time_ns(table) -> float:
    mx = np.asarray(table["mx"])
    if len(mx) < 2 or np.sign(mx[-1]) == np.sign(mx[0]) or mx[-1] == 0:
        return math.nan
    c = _crossings(np.asarray(table["t"]), mx)
    return c[-1] / NS if c else math.nan


def final_energy(table) -> float:
    return float(table["E_total"][-1])


def coercive_field_mT(table) -> float:
    c = _crossings(np.asarray(table["Bx_mT"]), np.asarray(table["mx"]))
    return float(np.mean(np.abs(c))) if c else math.nan


SCALARS = {
    "final_mean_m": (final_mean_m, 3, "1"),
    "first_zero_mx_ns": (first_zero_mx_ns, 1, "ns"),
    "switching_time_ns": (switching_time_ns, 1, "ns"),
    "final_energy": (final_energy, 1, "J"),
    "coercive_field_mT": (coercive_field_mT, 1, "mT"),
}
"""name -> (function(table), length, unit)"""


def measure(names, table) -> dict:
    """{name: value} for the given scalar names; a value that cannot be measured is NaN."""
    out = {}
    for n in names:
        fn, size, _ = SCALARS[n]
        try:
            out[n] = fn(table)
        except (KeyError, IndexError, ValueError):
            out[n] = [math.nan] * size if size > 1 else math.nan
    return out
