"""Checks of user input, each raising `ProblemError(key, value, allowed)` on the first bad value.

Small pure functions used by the problem description, the geometry, the initial states, the
file readers and the CLI's pre-flight. `check_keys` refuses a key the table does not know and
suggests the nearest known one (a typo such as `directon` or `strat_ns` is never silently
ignored). `available_memory` and `check_memory` compare an allocation with what the machine
can give before it is made.
"""
from __future__ import annotations

import difflib
import math
import os

import numpy as np

from .errors import ProblemError


# --------------------------------------------------------------------------- values
def check_number(key: str, value, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, integer: bool = False) -> float:
    """Return `value` as a float (or int) if it is a finite number in [lo, hi], else raise."""
    rng = _range_text(lo, hi, lo_open, integer)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProblemError(key, value, rng)
    if integer:
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise ProblemError(key, value, rng)
    v = int(value) if integer else float(value)
    if not math.isfinite(v):
        raise ProblemError(key, value, rng)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ProblemError(key, value, rng)
    if hi is not None and v > hi:
        raise ProblemError(key, value, rng)
    return v


def _range_text(lo, hi, lo_open, integer) -> str:
    kind = "an integer" if integer else "a number"
    if lo is not None and hi is not None:
        return f"{kind} in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{kind} {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{kind} <= {hi:g}"
    return f"a finite {kind}"


def check_vector(key: str, value, n: int = 3, lo=None, hi=None, nonzero=False) -> tuple:
    """Return a tuple of n checked numbers."""
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != n:
        raise ProblemError(key, value, f"a list of {n} numbers")
    out = tuple(check_number(f"{key}[{i}]", v, lo, hi) for i, v in enumerate(value))
    if nonzero and all(v == 0 for v in out):
        raise ProblemError(key, value, "a vector that is not zero")
    return out


def check_choice(key: str, value, choices) -> str:
    """Return `value` if it is one of `choices`; else raise, suggesting the nearest choice."""
    try:
        ok = value in choices
    except TypeError:      # an unhashable value (a list or table) in a set of choices
        ok = False
    if not ok:
        raise ProblemError(key, value, "one of " + ", ".join(repr(c) for c in choices)
                           + _did_you_mean(value, [c for c in choices if isinstance(c, str)]))
    return value


def check_keys(table: dict, key: str, allowed) -> None:
    """Refuse the first key of `table` not in `allowed`, naming `key.name` and suggesting the
    nearest allowed key (difflib). Keys starting with "_" are internal and ignored.

        check_keys({"directon": [1, 0, 0]}, "initial", {"kind", "direction"})
        -> ProblemError: initial.directon = [1, 0, 0] is not allowed: expected a known key:
           direction, kind (did you mean 'direction'?)
    """
    if not isinstance(table, dict):
        raise ProblemError(key, table, "a table of keys")
    allowed = sorted(set(allowed))
    for k in table:
        if isinstance(k, str) and k.startswith("_"):
            continue
        if k not in allowed:
            raise ProblemError(f"{key}.{k}", table[k],
                               "a known key: " + ", ".join(allowed) + _did_you_mean(k, allowed))


def _did_you_mean(word, candidates) -> str:
    if not isinstance(word, str) or not candidates:
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), [c.lower() for c in candidates], n=1, cutoff=0.6)
        close = [c for c in candidates if c.lower() in close][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_finite_array(key: str, value, a) -> None:
    """Refuse an array holding NaN or infinity, saying how many values and where the first is."""
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ProblemError(key, value, f"finite values only (it holds {int(bad.sum())} NaN or "
                                       f"infinite value(s), the first at index {first})")


# --------------------------------------------------------------------------- memory
def available_memory() -> int:
    """Bytes this process can still allocate: MemAvailable of /proc/meminfo, capped by a cgroup
    (v2 or v1) memory limit less its usage. Falls back to 8 GiB where neither can be read."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path) as fh:
                text = fh.read().strip()
            if text == "max":
                continue
            limit = int(text)
            if limit >= 1 << 60:
                continue
            with open(usage_path) as fh:
                usage = int(fh.read().strip())
            room = max(0, limit - usage)
            avail = room if avail is None else min(avail, room)
        except (OSError, ValueError):
            continue
    return avail if avail is not None else 8 << 30


def _override_available():
    """NMAG_MEMORY_LIMIT (bytes) lowers the memory the checks assume: for tests and shared machines."""
    v = os.environ.get("NMAG_MEMORY_LIMIT")
    try:
        return int(float(v)) if v else None
    except ValueError:
        return None


def memory_limit() -> int:
    """The bytes the engine allows itself: the available memory, or NMAG_MEMORY_LIMIT if lower."""
    avail = available_memory()
    o = _override_available()
    return min(avail, o) if o is not None else avail


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_memory(key: str, value, needed_bytes: float, what: str) -> None:
    """Refuse an allocation of `needed_bytes` (what it is for in `what`) larger than the memory
    available, with both numbers in the message."""
    limit = memory_limit()
    if needed_bytes > limit:
        raise ProblemError(key, value, f"{what} that fits in memory: it needs about "
                                       f"{human_bytes(needed_bytes)}, {human_bytes(limit)} is available")


# --------------------------------------------------------------------------- run-time resources
def check_device(key: str, device) -> None:
    """Refuse a torch device this machine does not have ("cuda" without CUDA, "cuda:3" of two)."""
    if device == "cpu":
        return
    import torch
    if not torch.cuda.is_available():
        raise ProblemError(key, device, "'cpu' (torch sees no CUDA device on this machine)")
    idx = 0
    if isinstance(device, str) and ":" in device:
        try:
            idx = int(device.split(":", 1)[1])
        except ValueError:
            raise ProblemError(key, device, "'cpu', 'cuda' or 'cuda:N'") from None
    if idx >= torch.cuda.device_count():
        raise ProblemError(key, device, f"'cpu' or a CUDA device 0..{torch.cuda.device_count() - 1}")


# bytes per cell at the peak of building a simulation and stepping it (measured with
# ru_maxrss on torch 2.13 CPU, FFT demag, RK45: 840 B/cell for 512 x 512 float32, 1370 float64,
# 2450 for a 128 x 128 x 8 float64 block), rounded up
_BYTES_PER_CELL = {"float32": 1000, "float64": 1600}


def estimate_simulation_bytes(problem) -> int:
    """About how many bytes a Simulation of `problem` needs at its peak (state, integrator
    stages, demag kernel and FFT buffers). Several layers pad along z (x 2); the neural
    surrogate keeps full-resolution activations (x 2)."""
    nx, ny, nz = problem.mesh.n
    per = _BYTES_PER_CELL.get(problem.solver.precision, 1600)
    if nz > 1:
        per *= 2
    if str(problem.solver.demag).startswith("neural"):
        per *= 2
    return int(nx) * int(ny) * int(nz) * per


def check_simulation_memory(problem) -> None:
    """Refuse a problem whose simulation would not fit in the memory available (before any
    allocation), naming the grid and both numbers. On CUDA the device's free memory counts."""
    need = estimate_simulation_bytes(problem)
    nx, ny, nz = problem.mesh.n
    what = f"a grid ({nx} x {ny} x {nz} cells, {problem.solver.precision}, demag {problem.solver.demag})"
    dev = problem.solver.device
    if isinstance(dev, str) and dev.startswith("cuda"):
        import torch
        try:
            free, _total = torch.cuda.mem_get_info(torch.device(dev))
        except Exception:
            return
        if need > free:
            raise ProblemError("mesh.n", list(problem.mesh.n),
                               f"{what} that fits in GPU memory: it needs about {human_bytes(need)}, "
                               f"{human_bytes(free)} is free on {dev}")
        return
    check_memory("mesh.n", list(problem.mesh.n), need, what)


MAX_IMAGE_PIXELS = 1 << 28     # 268 M pixels: 16384 x 16384; an image mask needs far fewer


def check_image_size(key: str, path) -> None:
    """Refuse an image mask whose declared size (read from its header, nothing decoded) exceeds
    MAX_IMAGE_PIXELS or, decoded as floats, the memory available: a decompression bomb (a tiny
    PNG that claims 100000 x 100000 pixels) never reaches the decoder. Unreadable headers are
    left to the reader, which reports them."""
    from pathlib import Path
    path = Path(path)
    if not path.is_file():
        raise ProblemError(key, str(path), "an existing image file")
    shape = None
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
            shape = (h, w, len(im.getbands()))
    except Exception as e:
        if type(e).__name__ == "DecompressionBombError":   # PIL's own limit, before decoding
            raise ProblemError(key, str(path), f"an image of at most {MAX_IMAGE_PIXELS:,} pixels (this one "
                                               f"is a decompression bomb: {e})") from None
        try:
            import imageio.v3 as iio
            props = iio.improps(path)
            shape = tuple(props.shape)
        except Exception:
            return
    pixels = int(np.prod(shape[:2], dtype=np.float64))
    channels = int(shape[2]) if len(shape) > 2 else 1
    if pixels > MAX_IMAGE_PIXELS:
        raise ProblemError(key, str(path), f"an image of at most {MAX_IMAGE_PIXELS:,} pixels (this one declares "
                                           f"{shape[1]} x {shape[0]} = {pixels:,})")
    check_memory(key, str(path), pixels * channels * 8 * 3, f"an image ({shape[1]} x {shape[0]} pixels)")
