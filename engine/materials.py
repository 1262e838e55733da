"""Material presets read from resources/materials.toml (each with its literature source)."""
from __future__ import annotations

import functools

from .errors import ProblemError
from .problem import Material
from .resources import resource_path


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    from .problem import read_toml
    return read_toml(resource_path("materials.toml"), "materials presets")


def preset_names() -> list[str]:
    return list(_table())


def preset_info(name: str) -> dict:
    """Description and source of a preset, as text for tooltips and the docs."""
    t = _table()[name]
    return {"description": t.get("description", ""), "source": t.get("source", "")}


def preset(name: str, key: str = "preset") -> Material:
    """A fresh Material with the preset's values (unknown names raise ProblemError)."""
    t = _table()
    if name not in t:
        raise ProblemError(key, name, "one of the presets " + ", ".join(t))
    fields = Material.__dataclass_fields__
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in t[name].items() if k in fields}
    return Material(name=name, **values)
