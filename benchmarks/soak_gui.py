"""Soak test of the desktop app (issue 9): the real window running, resetting, switching demag
methods and loading examples for a long time, printing the resident memory (RSS) every minute
and the event-loop latency (how late a 10 ms QTimer fires).

    xvfb-run -a python benchmarks/soak_gui.py [--minutes 30] [--warmup-minutes 5] [--action-s 20]
                                              [--json benchmarks/results/soak_gui.json]

Target: RSS growth after the warm-up (the first 5 minutes: caches, kernels, VTK pipelines)
under 5 %. The actions cycle: run, switch the demag method (fft -> neural -> neural+probe ->
fft), reset and run, load the next small example (at most --max-cells cells) and run it.
Every action goes through the window's own session, as the toolbar and menus do.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nmag_gui  # noqa: E402,F401
from engine import InitialState, Mesh, Problem, ShapeOp  # noqa: E402

PROBE_MS = 10


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def film(n: int = 64) -> Problem:
    p = Problem(title=f"soak {n}x{n}")
    p.mesh = Mesh((n, n, 1), (3.0, 3.0, 3.0))
    p.geometry = [ShapeOp("rectangle", "add", "permalloy", {"center_nm": [0, 0], "size_nm": [1e6, 1e6]})]
    p.initial = InitialState("vortex", {})
    return p.validate()


def small_examples(max_cells: int):
    """(name, Problem) of the catalog's examples with at most max_cells cells."""
    try:
        from nmag_gui.examples_menu import load_catalog
        out = []
        for entry in load_catalog():
            try:
                p = entry.load()
            except Exception:
                continue
            if int(np.prod(p.mesh.n)) <= max_cells:
                out.append((getattr(entry, "title", getattr(entry, "name", "example")), p, entry))
        return out
    except Exception as e:
        print(f"soak: no examples ({e}); the film only", flush=True)
        return []


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup-minutes", type=float, default=5.0)
    ap.add_argument("--action-s", type=float, default=20.0, help="seconds between two actions")
    ap.add_argument("--report-s", type=float, default=60.0, help="seconds between two RSS lines")
    ap.add_argument("--max-cells", type=int, default=20000)
    ap.add_argument("--json", help="write the series here")
    args = ap.parse_args(argv)

    from PySide6.QtCore import QTimer
    from bench_gui import LatencyProbe   # benchmarks/ is this script's folder
    from PySide6.QtWidgets import QApplication
    from engine.threads import apply_thread_policy
    from nmag_gui.main_window import MainWindow

    apply_thread_policy()
    app = QApplication.instance() or QApplication(["soak_gui"])
    w = MainWindow(problem=film())
    w.confirm_discard = lambda: True
    w.resize(1280, 800)
    w.show()
    examples = small_examples(args.max_cells)
    print(f"soak: {args.minutes} min, action every {args.action_s} s, {len(examples)} small examples, "
          f"pid {os.getpid()}", flush=True)

    probe = LatencyProbe(PROBE_MS)   # the event loop's latency, as bench_gui measures it
    probe.start()
    lateness = probe.lateness

    s = w.session
    demags = ["fft", "neural", "neural+probe"]
    state = {"i": 0, "demag": 0, "example": 0, "errors": 0}

    def act():
        i = state["i"]
        state["i"] += 1
        kind = ("run", "demag", "reset", "example")[i % 4]
        try:
            if kind == "run":
                s.run()
            elif kind == "demag":
                state["demag"] = (state["demag"] + 1) % len(demags)
                p = s.problem.copy()
                p.solver.demag = demags[state["demag"]]
                s.apply_problem(p)
                s.run()
            elif kind == "reset":
                s.pause()
                s.reset()
                s.run()
            elif kind == "example" and examples:
                name, p, entry = examples[state["example"] % len(examples)]
                state["example"] += 1
                s.pause()
                w.load_problem(p.copy())
                s.run()
        except Exception as e:           # an action the window refused: count it, go on
            state["errors"] += 1
            print(f"soak: {kind} failed: {type(e).__name__}: {e}", flush=True)

    actions = QTimer()
    actions.setInterval(int(args.action_s * 1000))
    actions.timeout.connect(act)
    actions.start()
    act()

    t0 = time.perf_counter()
    series = []

    def report():
        minutes = (time.perf_counter() - t0) / 60
        lat = np.asarray(lateness, float)
        lateness.clear()
        row = {"minute": round(minutes, 2), "rss_mb": round(rss_mb(), 1),
               "latency_mean_ms": float(lat.mean()) if lat.size else None,
               "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
               "latency_max_ms": float(lat.max()) if lat.size else None,
               "run_state": s.run_state, "demag": s.problem.solver.demag, "loadavg": os.getloadavg()[0]}
        series.append(row)
        print(f"{row['minute']:6.2f} min  RSS {row['rss_mb']:8.1f} MB  latency mean/p95/max "
              f"{row['latency_mean_ms'] or 0:6.1f} / {row['latency_p95_ms'] or 0:6.1f} / {row['latency_max_ms'] or 0:6.1f} ms  "
              f"{row['run_state']:8s} {row['demag']:13s} load {row['loadavg']:.1f}", flush=True)
        if minutes >= args.minutes:
            app.quit()

    reporter = QTimer()
    reporter.setInterval(int(args.report_s * 1000))
    reporter.timeout.connect(report)
    reporter.start()
    report()
    app.exec()
    s.pause()

    after = [r for r in series if r["minute"] >= args.warmup_minutes]
    growth = None
    if len(after) >= 2:
        growth = (after[-1]["rss_mb"] - after[0]["rss_mb"]) / after[0]["rss_mb"]
        print(f"\nRSS after the {args.warmup_minutes} min warm-up: {after[0]['rss_mb']:.1f} -> {after[-1]['rss_mb']:.1f} MB "
              f"({growth * 100:+.1f} %, target < 5 %); {state['i']} actions, {state['errors']} refused")
    else:
        print("\n(run longer than the warm-up to measure the RSS growth)")
    result = {"series": series, "growth_after_warmup": growth, "actions": state["i"], "errors": state["errors"],
              "minutes": args.minutes, "warmup_minutes": args.warmup_minutes}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    w.close()
    return result


if __name__ == "__main__":
    main()
