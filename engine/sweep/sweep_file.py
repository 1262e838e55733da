"""The sweep file: which problem, which keys to vary, over which values, and what to measure.

    format = "nmag-sweep"
    version = 1
    title = "SP4: switching against field angle"     # optional
    problem = "../sp4.toml"                          # relative to this file (.toml or .h5)
    mode = "product"                                 # every combination, or "zip" (i-th with i-th)
    [[parameters]]
    key = "materials[0].alpha"                       # a key path into the problem
    values = [0.01, 0.02, 0.05]
    [outputs]
    scalars = ["final_mean_m", "first_zero_mx_ns"]   # see engine.sweep.scalars.SCALARS

A key path names a key the problem has (`mesh.n[0]`, `field.B_mT`, `solver.demag`,
`geometry[0].radii_nm`, `stages[1].B_mT`); a stage may also be given a key that stages accept
but this one does not set yet (B_mT, alpha, duration_ns, torque, max_steps, ...). Every point is
applied to the problem and validated before any work starts, so a bad point is refused with the
point, the parameter and the engine's own message.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProblemError
from ..problem import Problem, read_toml
from ..validation import _did_you_mean, check_choice, check_keys
from .scalars import SCALARS

FORMAT_NAME = "nmag-sweep"
FORMAT_VERSION = 1
MODES = ("product", "zip")
MAX_POINTS = 100_000
DEFAULT_SCALARS = ("final_mean_m", "final_energy")
# keys a stage accepts (engine.problem.Stage) that a sweep may add to a stage that lacks them
STAGE_KEYS = ("B_mT", "alpha", "duration_ns", "from_mT", "to_mT", "steps", "max_steps", "torque")
_TOP_KEYS = ("format", "version", "title", "problem", "mode", "parameters", "outputs")
_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


@dataclass
class Parameter:
    """One varied key: its path into the problem dict and its values (numbers, equal-length
    lists of numbers, or strings). kind: "number", "vector" or "text"."""
    key: str
    path: tuple
    values: list
    kind: str


@dataclass
class Sweep:
    """A validated sweep. base: the problem as a full dict (Problem.to_dict(), every default
    written out), to which each point's values are applied."""
    title: str
    problem_path: Path
    mode: str
    parameters: list
    scalars: list
    base: dict
    base_dir: str = "."
    region_map: Any = None
    problem_ref: str = ""          # the problem path as written in the sweep file
    _points: list = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ points
    def points(self) -> list:
        """The points, in order: a tuple of values per point, one value per parameter."""
        if not self._points:
            vals = [p.values for p in self.parameters]
            self._points = list(itertools.product(*vals) if self.mode == "product" else zip(*vals))
        return self._points

    def __len__(self) -> int:
        return len(self.points())

    def point_dict(self, i: int) -> dict:
        """Point i's problem as a dict (not validated)."""
        d = copy.deepcopy(self.base)
        for p, v in zip(self.parameters, self.points()[i]):
            _assign(d, p, copy.deepcopy(v))
        return d

    def point_problem(self, i: int) -> Problem:
        """Point i's Problem, validated; a bad value raises ProblemError naming the point."""
        try:
            return Problem.from_dict(self.point_dict(i), base_dir=self.base_dir,
                                     region_map=self.region_map)
        except ProblemError as e:
            raise ProblemError(f"point {i} ({self.describe(i)}): {e.key}", e.value, e.allowed) from None

    def describe(self, i: int) -> str:
        """'materials[0].alpha = 0.02, stages[1].B_mT = [-24.6, 4.3, 0.0]' for point i."""
        return ", ".join(f"{p.key} = {v!r}" for p, v in zip(self.parameters, self.points()[i]))

    def validate_points(self) -> list:
        """Validate every point (before any work); returns their Problems."""
        return [self.point_problem(i) for i in range(len(self))]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """A plain dict of the sweep (stored as the results file's `sweep_json`); `problem_dict`
        is the problem every point starts from, so the file says exactly what was run."""
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "title": self.title,
                "problem": self.problem_ref, "mode": self.mode,
                "parameters": [{"key": p.key, "values": p.values} for p in self.parameters],
                "outputs": {"scalars": list(self.scalars)}, "problem_dict": self.base}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# --------------------------------------------------------------------------- reading
def load_sweep(path) -> Sweep:
    """Read and validate a sweep file, every point included (see the module docstring)."""
    path = Path(path)
    d = read_toml(path, "sweep file")
    return sweep_from_dict(d, base_dir=path.parent)


def sweep_from_dict(d: dict, base_dir=".", problem: Problem | None = None) -> Sweep:
    """A Sweep from a dict as read from TOML. problem: use this Problem instead of reading
    d["problem"] (the GUI sweeps the problem it has open)."""
    from ..results import load_problem
    for k in d:
        if k not in _TOP_KEYS:
            raise ProblemError(k, d[k], "a known sweep key: " + ", ".join(_TOP_KEYS) + _did_you_mean(k, _TOP_KEYS))
    if d.get("format") != FORMAT_NAME:
        raise ProblemError("format", d.get("format"), repr(FORMAT_NAME))
    version = d.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ProblemError("version", version, f"1..{FORMAT_VERSION} (this nmag reads up to {FORMAT_VERSION})")
    mode = check_choice("mode", d.get("mode", "product"), MODES)
    ref = d.get("problem", "")
    if problem is None:
        if not isinstance(ref, str) or not ref:
            raise ProblemError("problem", ref, "the path of a problem file (.toml or .h5), relative to the sweep file")
        ppath = (Path(base_dir) / ref)
        problem = load_problem(ppath)
    else:
        ppath = Path(base_dir) / (ref or "problem.toml")
    title = d.get("title", f"sweep of {problem.title}")
    if not isinstance(title, str):
        raise ProblemError("title", title, "a string")
    scalars = _scalars(d.get("outputs", {}))
    params = d.get("parameters")
    if not isinstance(params, list) or not params:
        raise ProblemError("parameters", params, "at least one [[parameters]] table (key and values): "
                                                  "an empty sweep runs nothing")
    base = problem.to_dict()
    parameters = [_parameter(j, pd, base) for j, pd in enumerate(params)]
    keys = [p.key for p in parameters]
    for j, k in enumerate(keys):
        if k in keys[:j]:
            raise ProblemError(f"parameters[{j}].key", k, "a key not varied by another parameter")
    if mode == "zip":
        n0 = len(parameters[0].values)
        for j, p in enumerate(parameters[1:], 1):
            if len(p.values) != n0:
                raise ProblemError(f"parameters[{j}].values", f"{len(p.values)} values",
                                   f"{n0} values, as many as parameters[0] (mode = 'zip' pairs them)")
    n = point_count(mode, [len(p.values) for p in parameters])
    if n > MAX_POINTS:
        raise ProblemError("parameters", f"{n} points", f"at most {MAX_POINTS:,} points")
    sweep = Sweep(title=title, problem_path=ppath, mode=mode, parameters=parameters,
                  # absolute: a worker started in another folder reads the same files
                  scalars=scalars, base=base, base_dir=str(Path(problem.base_dir).resolve()),
                  region_map=problem.region_map, problem_ref=str(ref))
    sweep.validate_points()
    return sweep


def point_count(mode: str, sizes) -> int:
    """Points of a sweep whose parameters have `sizes` values each: every combination
    ("product") or the i-th with the i-th ("zip", as many as the shortest)."""
    return min(sizes) if mode == "zip" else math.prod(sizes)


def _scalars(outputs) -> list:
    if not isinstance(outputs, dict):
        raise ProblemError("outputs", outputs, "a table with a 'scalars' list")
    check_keys(outputs, "outputs", {"scalars"})
    names = outputs.get("scalars", list(DEFAULT_SCALARS))
    if not isinstance(names, list):
        raise ProblemError("outputs.scalars", names, "a list of names: " + ", ".join(SCALARS))
    for i, s in enumerate(names):
        check_choice(f"outputs.scalars[{i}]", s, tuple(SCALARS))
    if len(set(names)) != len(names):
        raise ProblemError("outputs.scalars", names, "each name once")
    return list(names)


def _parameter(j: int, pd, base: dict) -> Parameter:
    key = f"parameters[{j}]"
    if not isinstance(pd, dict):
        raise ProblemError(key, pd, "a table with key and values")
    for k in pd:
        if k not in ("key", "values"):
            raise ProblemError(f"{key}.{k}", pd[k], "a known key: key, values")
    path = parse_key_path(pd.get("key"), f"{key}.key")
    _check_path(base, path, pd["key"], f"{key}.key")
    values = pd.get("values")
    if not isinstance(values, list) or not values:
        raise ProblemError(f"{key}.values", values, "a non-empty list of values")
    return Parameter(pd["key"], path, values, _kind(values, f"{key}.values"))


def parse_key_path(text, key: str = "key") -> tuple:
    """'materials[0].alpha' -> ('materials', 0, 'alpha'); a malformed path raises ProblemError."""
    allowed = "a key path such as materials[0].alpha, stages[1].B_mT or mesh.n[0]"
    if not isinstance(text, str) or not text:
        raise ProblemError(key, text, allowed)
    out = []
    for part in text.split("."):
        m = _PART.match(part)
        if not m:
            raise ProblemError(key, text, allowed)
        out.append(m.group(1))
        out.extend(int(k) for k in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)


def _check_path(base: dict, path: tuple, text: str, key: str) -> None:
    """The path must name something the problem has (or a stage key a stage accepts)."""
    node, where = base, ""
    for n, part in enumerate(path):
        last = n == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise ProblemError(key, text, f"a key path of the problem: {where or 'it'} has "
                                              f"{size} entries, there is no [{part}]")
            node, where = node[part], f"{where}[{part}]"
            continue
        if not isinstance(node, dict):
            raise ProblemError(key, text, f"a key path of the problem: {where} has no keys")
        if part not in node:
            if last and where.startswith("stages[") and where.count(".") == 0 and part in STAGE_KEYS:
                return
            if last and where == "field.ac":
                return
            keys = sorted(k for k in node if k not in ("format", "version"))
            raise ProblemError(key, text, f"a key path of the problem: {where or 'the problem'} "
                                          f"has no {part!r} (it has {', '.join(keys)})")
        node, where = node[part], f"{where}.{part}" if where else part
    if isinstance(node, (dict,)) or (isinstance(node, list) and node and isinstance(node[0], dict)):
        raise ProblemError(key, text, "a key path to a value (a number, a vector or a name), "
                                      "not to a whole table")


def _kind(values: list, key: str) -> str:
    def kind_of(v):
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            return "number"
        if isinstance(v, str):
            return "text"
        if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return ("vector", len(v))
        return None
    kinds = [kind_of(v) for v in values]
    for i, k in enumerate(kinds):
        if k is None or k != kinds[0]:
            raise ProblemError(f"{key}[{i}]", values[i], "values of one kind: numbers, lists of numbers "
                                                      "of one length, or names (strings)")
    k = kinds[0]
    return k[0] if isinstance(k, tuple) else k


def _assign(d: dict, p: Parameter, value) -> None:
    node = d
    for part in p.path[:-1]:
        node = node[part]
    node[p.path[-1]] = value
