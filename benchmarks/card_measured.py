"""Collect the neural benchmarks' results into the model card's "measured" block.

    python benchmarks/card_measured.py [--out PATH] [--repeat PATH ...]

Reads benchmarks/results/neural_speed.json (bench_neural.py: one-layer cubic member, 1 and 2
threads), neural_speed_nz*.json (layered members), neural_speed_dzdx2.json / _dzdx4.json (tall cells),
neural_sp4.json (bench_neural_sp4.py), neural_frontier.json (--frontier) and
neural_serving_floor.json (neural_serving_floor.py), each where present,
and writes the JSON that `python -m engine.neural.card_measure --extra PATH` puts into
resources/neural/model_card.json. --repeat adds the targets of further bench_neural.py runs
(same machine, same window) so the card shows the spread, not one lucky run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _read(name):
    p = RESULTS / name if not Path(name).is_absolute() else Path(name)
    return json.loads(p.read_text()) if p.exists() else None


def _ratios(run, threads):
    """{n: neural/FFT} of one bench_neural.py run at a thread count."""
    return {str(r["n"]): round(r["times"][str(threads)]["ratio"], 3)
            for r in run["results"] if str(threads) in r["times"]}


def collect(repeats=()) -> dict:
    out = {}
    speed = _read("neural_speed.json")
    if speed:
        out["speed_targets"] = speed["targets"]
        out["speed_load_average"] = speed["load_average"]
        out["speed_date"] = speed["date"]
        out["speed_per_size_ms"] = {
            str(r["n"]): {t: {"fft": round(v["fft"] * 1e3, 2), "neural": round(v["neural"] * 1e3, 2),
                              "ratio": round(v["ratio"], 3)} for t, v in r["times"].items()}
            for r in speed["results"]}
        out["speed_repeats"] = [dict(run["targets"], date=run["date"]) for run in map(_read, repeats)]
    for path in sorted(RESULTS.glob("neural_speed_nz*.json")):   # layered members: nz2, nz3_dzdx4, nz4, ...
        run, key = _read(path), "speed_" + path.stem.removeprefix("neural_speed_")
        out[key] = {"date": run["date"], **{f"ratio_{t}thr": r for t in (1, 2) if (r := _ratios(run, t))}}
    tall_runs = {a: run for a in (2, 4) if (run := _read(f"neural_speed_dzdx{a}.json"))}
    if tall_runs:
        out["speed_tall_cells_1thr"] = {**{f"dz/dx {a}": _ratios(run, 1) for a, run in tall_runs.items()},
                                        "date": max(run["date"] for run in tall_runs.values())}
    sp4 = _read("neural_sp4.json")
    if sp4:
        out["sp4"] = {k: sp4[k] for k in ("date", "fft_wall_s", "neural_wall_s", "wall_ratio", "wall_ratio_paired",
                                          "wall_ratio_paired_median", "cpu_ratio_paired_median",
                                          "steps", "fft_t_zero_ns", "neural_t_zero_ns", "t_zero_rel_diff", "targets",
                                          "load_average") if k in sp4}
        if "dz_variants" in sp4:   # nearby films: how much of the ratio is the trajectory's luck
            out["sp4"]["dz_variants"] = {dz: {k: v[k] for k in ("wall_ratio_paired", "steps")}
                                         for dz, v in sp4["dz_variants"].items()}
    floor = _read("neural_serving_floor.json")   # benchmarks/neural_serving_floor.py
    if floor:
        out["serving_floor"] = {"date": floor["date"], "shapes": floor["shapes"],
                                "rows": [[r["case"], r["nz"], r["trained_dz_dx"], r["served_dz_dx"], r["near_radius"],
                                          round(r["median"], 5), round(r["p90"], 5)] for r in floor["rows"]],
                                "columns": ["case", "nz", "trained dz/dx", "served dz/dx", "R", "median", "p90"]}
    frontier = _read("neural_frontier.json")
    if frontier and "frontier" in frontier:
        out["frontier"], out["frontier_date"] = frontier["frontier"], frontier["date"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python benchmarks/card_measured.py")
    ap.add_argument("--out", default=str(RESULTS / "card_measured.json"))
    ap.add_argument("--repeat", action="append", default=[], help="a further bench_neural.py JSON (its targets)")
    a = ap.parse_args(argv)
    data = collect(a.repeat)
    Path(a.out).write_text(json.dumps(data, indent=1))
    print(f"{a.out}: " + ", ".join(data))


if __name__ == "__main__":
    main()
