"""Material presets read from resources/materials.toml (each with its literature source)."""
from __future__ import annotations

import functools

from .errors import ProblemError
from .resources import resource_path
from .toml_file import read_toml


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    return read_toml(resource_path("materials.toml"), "materials presets")


def preset_names() -> list[str]:
    return list(_table())


def preset_info(name: str) -> dict:
    """Description and source of a preset, as text for tooltips and the docs."""
    t = _table()[name]
    return {"description": t.get("description", ""), "source": t.get("source", "")}


def preset_values(name: str, fields, key: str = "preset") -> dict:
    """The preset's values for the given Material field names (engine.problem.preset builds the
    Material from them); unknown names raise ProblemError."""
    t = _table()
    if name not in t:
        raise ProblemError(key, name, "one of the presets " + ", ".join(t))
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in t[name].items() if k in fields}

