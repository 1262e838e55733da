"""Network weights without pickle: tensors plus a plain JSON config.

A weights file is a torch.save of a dict of plain data only:
    {"format": "nmag-weights", "version": 1, "config": "<JSON>", "meta": "<JSON>",
     "tensors": {name: tensor}}
and is read with torch.load(weights_only=True), which rebuilds tensors and plain containers
and refuses anything else (no classes are constructed, no code runs). A file that needs more
(an old pickled checkpoint with objects in it, or a crafted file) is refused with WeightsError,
a one-line message naming the file. Used by NeuralDemag, `nmag train --init` and resume.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

FORMAT = "nmag-weights"
VERSION = 1


class WeightsError(ValueError):
    """A weights file that cannot be read safely or is not a network's weights."""


def safe_load(path, what="weights file") -> dict:
    """torch.load with weights_only=True; anything it refuses becomes a WeightsError."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"{what} {path}: no such file") from None
    except Exception as e:   # UnpicklingError and whatever a malformed file raises
        reason = _refusal_reason(e)
        if not reason:   # not a refusal of something unsafe: a damaged, empty or foreign file
            raise WeightsError(f"{what} {path}: not a readable weights file (damaged, empty, or not "
                               f"written by torch.save)") from None
        raise WeightsError(f"{what} {path}: refused, it holds more than tensors and plain data "
                           f"(loading it could run code){reason}") from None


def _refusal_reason(e: Exception) -> str:
    """What torch refused, without its advice to load the file unsafely ("re-running torch.load
    with weights_only set to False"): the unsupported global or the unpickler's own error."""
    import re
    text = str(e)
    m = (re.search(r"(unsupported GLOBAL \S+)", text) or re.search(r"Unsupported global: (GLOBAL \S+)", text)
         or re.search(r"WeightsUnpickler error: (Unsupported [^\n]+)", text))
    return ": it asks for " + m.group(1).strip()[:160] if m else ""


def save_weights(net, path, meta: dict | None = None) -> Path:
    """Write a network's learned tensors and its JSON config (and JSON metadata)."""
    path = Path(path)
    persistent = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save({"format": FORMAT, "version": VERSION, "config": json.dumps(net.config),
                "meta": json.dumps(meta or {}, default=str), "tensors": persistent}, str(path))
    return path


# what a config may ask for (a file is data, and data may be crafted: 100,000 channels asked
# torch for 360 GB): integers (lo, hi), or ("number", lo, hi). coarsest >= 5: a level of side s
# has a coarser one of side ceil(s / 2) + 2, which stays at 5 from 5 or 6, so a smaller bound
# never ends the encoder's loop
CONFIG_BOUNDS = {
    "nz": (1, 8), "channels": (1, 64), "near_radius": (0, 64), "bottom": (0, 8), "coarsest": (5, 64),
    "stem": (2, 4), "u0_kernel": (1, 3), "near_full": ("number", 0.0, 64.0), "aspect": ("number", 0.01, 100.0),
    "local_radius": (0, 64), "min_coarse": (1, 64), "min_levels": (1, 16), "margin": (0, 64),
}


def _check_config_values(arch: str, cfg: dict) -> None:
    """Every value of a weights config in its bounds (CONFIG_BOUNDS), else WeightsError."""
    import math
    for k, v in cfg.items():
        if arch == "unet" and k == "channels":
            ok = isinstance(v, (list, tuple)) and 1 <= len(v) <= 8 and all(
                isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 256 for c in v)
            if not ok:
                raise WeightsError(f"weights config: channels = {str(v)[:80]} (allowed: 1 to 8 integers in [1, 256])")
            continue
        b = CONFIG_BOUNDS.get(k)
        if b is None:
            continue
        if b[0] == "number":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and b[1] <= v <= b[2]
            rng = f"a number in [{b[1]:g}, {b[2]:g}]"
        else:
            ok = isinstance(v, int) and not isinstance(v, bool) and b[0] <= v <= b[1]
            rng = f"an integer in [{b[0]}, {b[1]}]"
        if not ok:
            raise WeightsError(f"weights config: {k} = {str(v)[:80]} (allowed: {rng})")


def build_net(config: dict):
    """The network a config describes (arch "lean": LeanFilmNet, "unet": the first FilmUNet)."""
    import inspect
    cfg = dict(config)
    arch = cfg.pop("arch", "unet")
    if arch == "lean":
        from .lean import LeanFilmNet as cls
    elif arch == "unet":
        from .unet import FilmUNet as cls
    else:
        raise WeightsError(f"weights config: unknown arch {arch!r} (allowed: lean, unet)")
    known = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise WeightsError(f"weights config: unknown key(s) {', '.join(map(repr, unknown))} for arch "
                           f"{arch!r} (allowed: {', '.join(known)})")
    _check_config_values(arch, cfg)
    try:
        return cls(**cfg)
    except (TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"weights config: {str(e).splitlines()[0][:200]}") from None


def read_weights(path) -> tuple[dict, dict, dict]:
    """(config, meta, tensors) of a weights file, checked for shape and types."""
    d = safe_load(path)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise WeightsError(f"weights file {path}: not an {FORMAT} file (format = "
                           f"{d.get('format') if isinstance(d, dict) else type(d).__name__!r})")
    try:
        config, meta = json.loads(d["config"]), json.loads(d.get("meta") or "{}")
        tensors = d["tensors"]
        assert isinstance(config, dict) and isinstance(tensors, dict)
        assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    except Exception:
        raise WeightsError(f"weights file {path}: malformed (expected JSON config and a dict of tensors)") from None
    return config, meta, tensors


def load_weights(path):
    """(network in eval mode, meta dict) from a weights file; never unpickles objects."""
    config, meta, tensors = read_weights(path)
    net = build_net(config)
    try:
        net.load_state_dict(tensors)
    except RuntimeError as e:
        raise WeightsError(f"weights file {path}: tensors do not fit the config: {str(e).splitlines()[0]}") from None
    net.eval()
    return net, meta
