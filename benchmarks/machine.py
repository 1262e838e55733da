"""Which machine a benchmark ran on, for its JSON: the CPU as the kernel reports it and its caches.

Ratios in the same process are what the benchmarks compare, but their size depends on the host:
sessions 25 and 26 ran on two hosts that both call themselves "Intel(R) Xeon(R) Processor" with
2 cores, where the exact FFT at 256^2 took 1.7 ms on one and 3.0-4.4 ms on the other. The CPU
family / model / stepping and the cache sizes tell such hosts apart in the records.
"""
from __future__ import annotations

import os
from pathlib import Path

CPUINFO_KEYS = {"model name": "model_name", "cpu family": "family", "model": "model", "stepping": "stepping",
                "cpu MHz": "mhz"}


def cpu_info(text: str) -> dict:
    """The first processor's CPUINFO_KEYS from /proc/cpuinfo's text."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            break   # the first processor's block ends here
        key, _, value = line.partition(":")
        name = CPUINFO_KEYS.get(key.strip())
        if name and name not in out:
            out[name] = value.strip()
    return out


def caches(cpu_dir: Path) -> dict:
    """{"L1d": "48K", "L1i": ..., "L2": ..., "L3": ...} of one CPU's sysfs cache folder."""
    out = {}
    for index in sorted(cpu_dir.glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        out[f"L{level}{suffix}"] = size
    return out


def describe() -> dict:
    """This machine, as far as Linux says (empty fields elsewhere)."""
    info = {"cores": os.cpu_count()}
    try:
        info.update(cpu_info(Path("/proc/cpuinfo").read_text()))
    except OSError:
        pass
    info["caches"] = caches(Path("/sys/devices/system/cpu/cpu0/cache"))
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return info


if __name__ == "__main__":
    import json
    print(json.dumps(describe(), indent=1))
