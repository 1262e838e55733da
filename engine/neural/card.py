"""The model card: which films the shipped networks serve, and how well (engine and GUI).

resources/neural/model_card.json lists a small family of networks ("members"), one per kind of
film: {"file", "nz", "dz_dx", "square_cells"} and, where measured, "dz_dx_range": [lo, hi], the
cell aspects the member serves through LeanFilmNet.serve (exact near kernel of the actual cell,
learned part scaled by dz/dx over the trained one); a member without a range serves its own dz/dx
only. `ModelCard` answers, for a grid, which member serves it and, if none, why it lies outside
(the GUI's model card dialog and warnings use `ModelCard(card).check(problem)`; NeuralDemag uses
`member_for` and `outside`).

Measuring and shipping members (held-out errors, the card JSON and Markdown) is
engine.neural.card_measure, above the network and the probe: this module stays plain data.
"""
from __future__ import annotations

import json
import math
from pathlib import Path


from ..resources import resource_path

DEFAULT_CARD = "neural/model_card.json"
ASPECT_TOLERANCE = 1e-3     # relative: a member serves dz/dx within this of its own
TARGET_MEDIAN, TARGET_P90 = 0.01, 0.02    # issue 8's error targets (relative L2 of H_d)
TARGETS = (("median", TARGET_MEDIAN), ("p90", TARGET_P90))
# "large grids": 256^2 cells and up, where the far field weighs most; the card reports them apart
LARGE_CELLS = 256 * 256


def load_card(path=None) -> dict:
    """The card as a dict ({} when the file is missing)."""
    p = resource_path(DEFAULT_CARD) if path is None else Path(path)
    try:
        return json.loads(Path(p).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def target_ratio(s) -> float:
    """How far held-out stats are from the targets: max(median / 1 %, p90 / 2 %); above 1 misses."""
    return max(s[k] / t for k, t in TARGETS)


def member_label(m) -> str:
    """A member's name in the card's tables and keys: "nz=1 dz/dx=1 R=10" (nz, the dz/dx it
    was trained for, and the radius in cells of its exact near part, which tells two members
    trained at the same cell apart), or "nz=1 dz/dx=0.6" for a member that does not give R."""
    r = f" R={int(m['near_radius'])}" if m.get("near_radius") is not None else ""
    return f"nz={int(m.get('nz', 1))} dz/dx={float(m['dz_dx']):g}{r}"


def member_key(m) -> tuple:
    """What tells members apart: (nz, trained dz/dx, near radius)."""
    return int(m.get("nz", 1)), float(m["dz_dx"]), int(m.get("near_radius", 2))


def trained_text(m) -> str:
    """The cell aspects a member was trained on: "1, 4" (nmag train --also-data), or its dz/dx."""
    aspects = m.get("trained_dz_dx") or [m["dz_dx"]]
    return ", ".join(f"{float(a):g}" for a in aspects)


def span_text(lo: float, hi: float) -> str:
    """A dz/dx range as people read it: "0.25 to 0.6", or one number when it is a point."""
    return f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"


class ModelCard:
    """A model card dict with the questions the engine and the GUI ask of it."""

    def __init__(self, card: dict | None):
        self.card = card or {}

    @classmethod
    def load(cls, path=None) -> "ModelCard":
        return cls(load_card(path))

    @property
    def members(self) -> list[dict]:
        return list(self.card.get("members", []))

    def default_member(self):
        ms = self.members
        return next((m for m in ms if m.get("default")), ms[0] if ms else None)

    def member_for(self, n, d):
        """The member serving a grid of n = (nx, ny, nz) cells of d = (dx, dy, dz) (any length
        unit), or None."""
        return None if self.outside(n, d) else self._match(n, d)

    @staticmethod
    def aspect_range(m) -> tuple[float, float]:
        """The dz/dx a member serves (its own dz/dx when the card gives no range)."""
        lo, hi = m.get("dz_dx_range") or (m["dz_dx"], m["dz_dx"])
        return float(lo), float(hi)

    @staticmethod
    def stats_at(m, aspect: float, key: str = "by_dz_dx_large"):
        """m's held-out stats measured at this dz/dx ("by_dz_dx_large": grids of 256^2 and up,
        "by_dz_dx": all grids), or None where it was not measured there."""
        for k, s in m.get("held_out", {}).get(key, {}).items():
            if abs(float(k) - aspect) <= 2e-3 * aspect:   # the card keys dz/dx to 3 digits
                return s
        return None

    @classmethod
    def measured_score(cls, m, aspect: float):
        """How far m's held-out error on large grids, measured at this dz/dx, is from the
        targets: max(median / 1 %, p90 / 2 %), lower is better; None where not measured."""
        s = cls.stats_at(m, aspect)
        return None if s is None else target_ratio(s)

    def as_served(self, key: str = "by_dz_dx_large") -> dict:
        """What a user gets: for each nz, every dz/dx at which some member was measured, with
        the member NeuralDemag picks there and that member's stats at that dz/dx (the per-member
        verdicts also count a member at a shared bound where the other one serves).
        {nz: [(dz/dx, member, stats), ...]} in increasing dz/dx."""
        aspects = {}
        for m in self.members:
            for k in m.get("held_out", {}).get(key, {}):
                aspects.setdefault(int(m.get("nz", 1)), set()).add(round(float(k), 3))
        out = {}
        for nz, found in sorted(aspects.items()):
            rows = []
            for a in sorted(found):
                m = self._match((1, 1, nz), (1.0, 1.0, a))
                s = self.stats_at(m, a, key) if m is not None else None
                if s is not None:
                    rows.append((a, m, s))
            out[nz] = rows
        return out

    def _match(self, n, d):
        """The member of this nz whose range holds dz/dx. At a shared bound, the one measured
        better there on large grids (measured_score) when both were; else the one trained for
        taller cells, then the one trained nearest in log dz/dx."""
        nz = int(n[2])
        dx, dy, dz = (float(v) for v in d)
        a = dz / dx
        fits = []
        for m in self.members:
            lo, hi = self.aspect_range(m)
            if int(m.get("nz", 1)) == nz and lo * (1 - ASPECT_TOLERANCE) <= a <= hi * (1 + ASPECT_TOLERANCE):
                fits.append((a > float(m["dz_dx"]) * (1 + ASPECT_TOLERANCE), abs(math.log(a / float(m["dz_dx"]))), m))
        if not fits:
            return None
        scores = [self.measured_score(f[2], a) for f in fits]
        if len(fits) > 1 and None not in scores:
            return fits[scores.index(min(scores))][2]
        return min(fits, key=lambda t: t[:2])[2]

    def expected_error(self, n, d):
        """What to expect of the network on this grid before running it: the serving member's
        held-out error measured at the dz/dx nearest this grid's (in log), over large grids
        (LARGE_CELLS and up) for a grid that large, else over all grids. A statistic of fresh
        textures, not this problem's error (the error probe measures that). A dict (member,
        dz_dx measured, large, median, p90, fractions) or None outside the card or unmeasured."""
        m = self.member_for(n, d)
        if m is None:
            return None
        large = int(n[0]) * int(n[1]) >= LARGE_CELLS
        ho = m.get("held_out") or {}
        by = ho.get("by_dz_dx_large" if large else "by_dz_dx") or {}
        if by:
            a = float(d[2]) / float(d[0])
            k = min(by, key=lambda k: abs(math.log(float(k) / a)))
            s, at = by[k], float(k)
        else:   # a member measured at its own dz/dx only
            s, at = ho.get("large" if large else "all"), float(m["dz_dx"])
        if not s:
            return None
        return {"member": m["file"], "dz_dx": at, "large": large, "median": float(s["median"]), "p90": float(s["p90"])}

    def outside(self, n, d) -> list[str]:
        """Why a grid lies outside the card (sentences); empty when a member serves it."""
        if not self.members:
            return ["no model card is shipped with the network, so nothing says where it is valid"]
        nx, ny, nz = (int(v) for v in n)
        dx, dy, dz = (float(v) for v in d)
        out = []
        if abs(dx - dy) > 1e-6 * dx:
            # d comes in any length unit (m from the engine, nm from the GUI): say the ratio
            out.append(f"cells are not square (dy/dx = {dy / dx:.4g}); the networks know dx = dy only")
        nzs = sorted({int(m.get("nz", 1)) for m in self.members})
        if nz not in nzs:
            out.append(f"{nz} layers: the networks are for films of nz = {', '.join(map(str, nzs))}")
        elif self._match(n, d) is None:
            ok = []   # the ranges of this nz's members, those that meet joined: "0.25 to 4", not "0.25 to 1.26, 1.26 to 4"
            for lo, hi in sorted(self.aspect_range(m) for m in self.members if int(m.get("nz", 1)) == nz):
                if ok and lo <= ok[-1][1] * (1 + ASPECT_TOLERANCE):
                    ok[-1] = (ok[-1][0], max(ok[-1][1], hi))
                else:
                    ok.append((lo, hi))
            spans = ", ".join(span_text(lo, hi) for lo, hi in ok)
            out.append(f"cell aspect dz/dx = {dz / dx:.4g}: the networks for nz = {nz} serve dz/dx = {spans} "
                       f"only (within {ASPECT_TOLERANCE:.1%})")
        return out

    def check(self, problem) -> list[str]:
        """The GUI's question: reasons (sentences) a problem lies outside the card."""
        n = tuple(int(v) for v in problem.mesh.n)
        d = tuple(float(v) for v in problem.mesh.cell_nm)
        return [r[0].upper() + r[1:] + "; the exact FFT field is used instead." for r in self.outside(n, d)]


# ------------------------------------------------------------------ measuring a network
