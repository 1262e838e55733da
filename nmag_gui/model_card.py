"""The model card of the shipped neural demag network, as the GUI uses it: load it, summarise
it, and say why a problem lies outside it.

Every GUI use of the card goes through this module, so when the engine's card API changes
(engine/neural: one ModelCard for the engine and the GUI) only this module changes. When the
engine offers `engine.neural.card.ModelCard` with `load()` and `check(problem)`, `load_model_card`
and `outside_model_card` use it; until then they read resources/neural/model_card.json here.
No Qt in this module.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path


def _engine_card():
    """engine.neural.card.ModelCard when the engine has it (else None)."""
    try:
        from engine.neural.card import ModelCard
        return ModelCard
    except Exception:  # noqa: BLE001 - an engine without the shared card
        return None


def card_path() -> Path:
    from engine.resources import resource_path
    return resource_path("neural/model_card.json")


def load_model_card(path=None) -> dict | None:
    """The model card as a dict, or None when the file is missing or unreadable."""
    p = Path(path) if path is not None else card_path()
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _lookup(card: dict, *names):
    """The first of `names` found in the card, at its top level or in one of its sections
    ("valid", "validity", "training", "trained_on", "data", "validation", "architecture"))."""
    if not isinstance(card, dict):
        return None
    places = [card] + [card[k] for k in ("valid", "validity", "training", "trained_on", "data",
                                         "validation", "architecture")
                       if isinstance(card.get(k), dict)]
    for name in names:
        for place in places:
            if place.get(name) is not None:
                return place[name]
    return None


def _as_range(v):
    """A card value as (lo, hi): a number is an exact trained value, a pair or
    {"min", "max"} a range. None when it is neither."""
    try:
        if isinstance(v, dict):
            lo, hi = v.get("min", -math.inf), v.get("max", math.inf)
            return float(lo), float(hi)
        if isinstance(v, (list, tuple)) and len(v) == 2:
            return float(v[0]), float(v[1])
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v), float(v)
    except (TypeError, ValueError):
        return None
    return None


def _fmt(r, unit=""):
    lo, hi = r
    u = f" {unit}" if unit else ""
    if lo == hi:
        return f"{lo:g}{u}"
    if math.isinf(hi):
        return f"at least {lo:g}{u}"
    if math.isinf(lo):
        return f"at most {hi:g}{u}"
    return f"{lo:g} to {hi:g}{u}"


def _inside(v, r, rel=1e-3):
    lo, hi = r
    tol = rel * max(abs(lo), abs(hi), 1e-30) if lo == hi else 1e-9 * max(abs(hi), 1.0) if math.isfinite(hi) else 0
    return lo - tol <= v <= hi + tol


def outside_model_card(problem, card) -> list[str]:
    engine_card = _engine_card()
    if engine_card is not None and hasattr(engine_card, "check") and card:
        try:
            return list(engine_card(card).check(problem))
        except Exception:  # noqa: BLE001 - fall back to the rules below
            pass
    return _outside_model_card(problem, card)


def _outside_model_card(problem, card) -> list[str]:
    """Why `problem` lies outside what the network was trained or validated for.

    Checks, where the card says something about them: cell size dx (nm), square cells
    (dx = dy), film thickness (nm), the cell aspect dz/dx, the number of layers (nz; the
    network is for single-layer films unless the card says otherwise) and the grid size
    (largest of nx, ny; also against the receptive field). Keys are looked up tolerantly (see
    `_lookup`); a card without a key gives no warning about it. An empty or missing card gives
    one warning. Returns sentences a user can read; empty when all is inside.
    """
    if not card:
        return ["No model card is shipped with the network, so nothing says where it is valid: "
                "use the error probe."]
    nx, ny, nz = (int(v) for v in problem.mesh.n)
    dx, dy, dz = (float(v) for v in problem.mesh.cell_nm)
    out = []
    r = _as_range(_lookup(card, "cell_nm", "dx_nm", "cell_size_nm", "cell_nm_range"))
    if r is not None and not _inside(dx, r):
        out.append(f"Cell size dx = {dx:g} nm lies outside the trained {_fmt(r, 'nm')}.")
    if abs(dx - dy) > 1e-6 * dx and _lookup(card, "square_cells", "dx_eq_dy") is not False:
        out.append(f"Cells are not square (dx = {dx:g} nm, dy = {dy:g} nm); the network knows only dx = dy.")
    r = _as_range(_lookup(card, "thickness_nm", "dz_nm", "film_thickness_nm"))
    if r is not None and not _inside(dz * nz, r):
        out.append(f"Film thickness {dz * nz:g} nm lies outside the trained {_fmt(r, 'nm')}.")
    r = _as_range(_lookup(card, "dz_dx_validated", "dz_dx", "aspect_dz_dx", "aspect", "dz_over_dx"))
    if r is not None and not _inside(dz / dx, r):
        out.append(f"Cell aspect dz/dx = {dz / dx:.3g} lies outside the validated {_fmt(r)}; "
                   "the demag field depends on the cells' shape.")
    r = _as_range(_lookup(card, "nz", "layers", "nz_max"))
    if r is None:
        r = (1.0, 1.0)
    if not _inside(nz, r):
        out.append(f"{nz} layers: the network is for films of {_fmt(r)} layer(s) (nz).")
    r = _as_range(_lookup(card, "grid", "grid_cells", "grid_sizes", "grid_range", "train_grids"))
    if r is None:
        sizes = _lookup(card, "grid", "grid_cells", "grid_sizes", "train_grids")
        if isinstance(sizes, (list, tuple)) and sizes and all(isinstance(s, (int, float)) for s in sizes):
            r = (float(min(sizes)), float(max(sizes)))
    big = max(nx, ny)
    if r is not None and not _inside(big, (r[0], r[1]), rel=0):
        out.append(f"Grid of {nx} × {ny} cells: trained on {_fmt(r)} cells a side.")
    rf = _lookup(card, "receptive_field_cells", "receptive_field")
    if isinstance(rf, (int, float)) and big > rf:
        out.append(f"The grid ({big} cells a side) is larger than the network's receptive field "
                   f"({rf:g} cells): the far field of distant cells is cut off.")
    return out


def expected_error_text(problem, card) -> str:
    """One sentence: the card's held-out error for the member that will serve `problem` (at
    the measured dz/dx nearest the problem's; over large grids for a large grid), or '' where
    the card has no such numbers or the problem lies outside it."""
    engine_card = _engine_card()
    if engine_card is None or not card or not hasattr(engine_card, "expected_error"):
        return ""
    try:
        e = engine_card(card).expected_error(tuple(int(v) for v in problem.mesh.n),
                                              tuple(float(v) for v in problem.mesh.cell_nm))
    except Exception:  # noqa: BLE001 - a card without the numbers: say nothing
        return ""
    if not e:
        return ""
    where = "grids of 256² cells and up" if e["large"] else "grids of 64² to 1024² cells"
    return (f"Expected error of the network here: median {100 * e['median']:.2f} %, p90 {100 * e['p90']:.2f} % "
            f"(model card: {e['member']} on fresh films at dz/dx {e['dz_dx']:g}, {where}). "
            "The error probe measures this run's.")


def model_card_summary(card) -> str:
    """Two or three lines of rich text about the card (architecture, training, validation)."""
    if not card:
        return "<i>No model card is shipped</i> (resources/neural/model_card.json is missing)."
    bits = []
    name = _lookup(card, "name", "model", "architecture")
    if isinstance(name, dict):
        name = name.get("name") or name.get("kind")
    if name:
        bits.append(f"<b>{html.escape(str(name))}</b>")
    params = _lookup(card, "n_params", "parameters", "parameter_count", "n_parameters")
    if isinstance(params, (int, float)):
        bits.append(f"{int(params):,} weights")
    aspect = _as_range(_lookup(card, "dz_dx_validated", "dz_dx", "aspect_dz_dx", "aspect"))
    if aspect:
        bits.append(f"validated for dz/dx {_fmt(aspect)}")
    cell = _as_range(_lookup(card, "cell_nm", "dx_nm", "cell_size_nm"))
    if cell:
        bits.append(f"cells {_fmt(cell, 'nm')}")
    err = _lookup(card, "median_rel_l2", "val_median_rel_l2", "validation_rel_l2", "val_rel_l2")
    if isinstance(err, dict):          # one median per validation set
        vals = [float(v) for v in err.values() if isinstance(v, (int, float))]
        if vals:
            lo, hi = min(vals), max(vals)
            bits.append(f"validation median rel. L2 {100 * lo:.2g}" + (f"–{100 * hi:.2g}" if hi > lo else "")
                        + f" % on {len(vals)} sets")
    elif isinstance(err, (int, float)):
        bits.append(f"validation rel. L2 {100 * err:.2g} %")
    return "Model card: " + (", ".join(bits) if bits else "present (see details)") + "."


