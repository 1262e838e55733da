"""Plot the two example sweeps from their results files (the README's pictures).

    nmag sweep examples/sweeps/sp4_field_angle.toml --out sp4_angle.h5
    nmag sweep examples/sweeps/disk_loops.toml --out disk_loops.h5
    python examples/sweeps/plot_sweeps.py sp4_angle.h5 disk_loops.h5 --out docs

Writes sweep_sp4_field_angle.png and sweep_disk_loops.png. Reads only the sweep results files
(engine.sweep.results), the way any analysis script would, also while a sweep still runs.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from engine.sweep.results import read_point, read_sweep  # noqa: E402


def plot_sp4(path, out: Path) -> Path:
    r = read_sweep(path)
    B = np.asarray(r["parameters"]["stages[1].B_mT"])
    angle = np.degrees(np.arctan2(B[:, 1], B[:, 0])) % 360
    done = np.array([s == "done" for s in r["status"]])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, label, mk in (("first_zero_mx_ns", "first <mx> = 0", "o"),
                            ("switching_time_ns", "switched for good", "s")):
        a.plot(angle[done], r["scalars"][name][done], mk + "-", label=label)
    a.set_xlabel("field angle from +x (degrees)")
    a.set_ylabel("time (ns)")
    a.set_title("SP4, |B| = 25 mT: switching time against field angle", fontsize=10)
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    for i in np.flatnonzero(done):
        p = read_point(path, int(i))
        b.plot(p["table"]["t"] * 1e9, p["table"]["mx"], lw=1, label=f"{angle[i]:.0f} deg")
    b.set_xlabel("t (ns)")
    b.set_ylabel("<mx>")
    b.set_title("<mx>(t) of every point (points/<i>/table)", fontsize=10)
    b.legend(fontsize=7, ncol=2)
    b.grid(alpha=0.3)
    fig.tight_layout()
    dst = out / "sweep_sp4_field_angle.png"
    fig.savefig(dst, dpi=110)
    plt.close(fig)
    return dst


def plot_disks(path, out: Path) -> Path:
    r = read_sweep(path)
    radii = np.asarray(r["parameters"]["geometry[0].radii_nm"])
    length = 2 * radii[:, 0]
    done = np.array([s == "done" for s in r["status"]])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(length[done], r["scalars"]["coercive_field_mT"][done], "o-")
    a.set_xlabel("long diameter (nm), ellipse 2:1, 10 nm thick")
    a.set_ylabel("coercive field (mT)")
    a.set_title("Permalloy elliptical disks: coercive field against size", fontsize=10)
    a.grid(alpha=0.3)
    for i in np.flatnonzero(done):
        p = read_point(path, int(i))
        b.plot(p["table"]["Bx_mT"], p["table"]["mx"], lw=1, label=f"{length[i]:.0f} nm")
    b.set_xlabel("Bx (mT)")
    b.set_ylabel("<mx>")
    b.set_title("the loops (points/<i>/table)", fontsize=10)
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    fig.tight_layout()
    dst = out / "sweep_disk_loops.png"
    fig.savefig(dst, dpi=110)
    plt.close(fig)
    return dst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sp4", help="results of sp4_field_angle.toml")
    ap.add_argument("disks", help="results of disk_loops.toml")
    ap.add_argument("--out", default="docs")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in (plot_sp4(a.sp4, out), plot_disks(a.disks, out)):
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
