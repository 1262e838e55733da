"""The `nmag` command.

    nmag                          open the desktop app
    nmag gui [PROJECT.h5]         open the desktop app (optionally a project)
    nmag run PROBLEM --out R.h5   run a problem file (.toml) or a saved project (.h5) headless
    nmag check PROBLEM            validate a problem file and print what it describes
    nmag train ...                train the neural demag (see `nmag train --help`)
    nmag sweep SWEEP --out S.h5   run a parameter sweep on Dask (see `nmag sweep --help`)

Exit codes: 0 done, 1 failed while running, 2 bad problem or arguments. A result file is
written to R.h5.part and renamed only when the run finished, so nothing half-written is left.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from .errors import ProblemError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nmag", description="NeuralMAG Studio: micromagnetics with FFT or neural demag.")
    sub = ap.add_subparsers(dest="command")
    g = sub.add_parser("gui", help="open the desktop app")
    g.add_argument("project", nargs="?", help="a project (.h5) or problem (.toml) to open")
    r = sub.add_parser("run", help="run a problem headless")
    r.add_argument("problem", help="problem file (.toml) or project/results file (.h5)")
    r.add_argument("--out", help="result file (.h5); default: PROBLEM's name with .h5 (or _result.h5)")
    r.add_argument("--csv", action="store_true", help="also write the table as CSV beside the result")
    r.add_argument("--demag", choices=["fft", "neural", "neural+probe", "none"], help="override the demag method")
    r.add_argument("--precision", choices=["float32", "float64"], help="override the precision")
    r.add_argument("--device", help="override the device (cpu, cuda)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    c = sub.add_parser("check", help="validate a problem file")
    c.add_argument("problem")
    sub.add_parser("train", help="train the neural demag surrogate", add_help=False)
    from .sweep.cli import add_parser as add_sweep_parser  # engine/sweep owns its options
    add_sweep_parser(sub)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .neural.train import main_train
        return main_train(argv[1:]) or 0
    args = _parser().parse_args(argv)
    if args.command in (None, "gui"):
        return _gui(getattr(args, "project", None))
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            from .sweep.cli import main_sweep
            return main_sweep(args)
    except ProblemError as e:
        print(f"nmag: error: {e}", file=sys.stderr)
        return 2
    return 0


def _gui(project) -> int:
    try:
        app = importlib.import_module("nmag_gui.app")  # by name: the engine never imports Qt itself
    except ImportError as e:
        print(f"nmag: the desktop app is not available ({e}); install with pip install -e .", file=sys.stderr)
        return 1
    return app.main([project] if project else [])


def _load(path, args=None):
    from .results import load_problem
    problem = load_problem(path)
    if args is not None:
        if args.demag:
            problem.solver.demag = args.demag
        if args.precision:
            problem.solver.precision = args.precision
        if args.device:
            problem.solver.device = args.device
        problem.validate()
    return problem


def _check(args) -> int:
    p = _load(args.problem)
    regions = p.regions()
    n_mag = int((regions >= 0).sum())
    print(f"{p.title}: {p.mesh.n[0]} x {p.mesh.n[1]} x {p.mesh.n[2]} cells of "
          f"{' x '.join(f'{c:g}' for c in p.mesh.cell_nm)} nm, {n_mag} magnetic, "
          f"{len(p.materials)} material(s), {len(p.stages)} stage(s), demag {p.solver.demag}: ok")
    return 0


def _run(args) -> int:
    from .results import ResultWriter, write_table_csv, read_results
    from .simulation import Simulation
    from .stages import run_stages

    src = Path(args.problem)
    problem = _load(src, args)
    out = Path(args.out) if args.out else src.with_name(src.stem + ("_result.h5" if src.suffix == ".h5" else ".h5"))
    sim = Simulation(problem, m0=_saved_state(src))
    for w in getattr(sim.demag, "warnings", []):
        print(f"nmag: warning: {w}", file=sys.stderr)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=1000 * max(1, len(problem.stages)), unit="‰", bar_format="{l_bar}{bar}| {postfix}",
                   file=sys.stderr)

    def progress(i, frac, text):
        if bar is not None:
            bar.n = int(1000 * (i + min(frac, 1.0)))
            bar.set_postfix_str(f"stage {i + 1}: {text}", refresh=False)
            bar.refresh()

    t0 = time.time()
    try:
        with ResultWriter(out, problem, sim.regions) as writer:
            summary = run_stages(sim, problem, writer, progress)
            writer.set_final_state(sim.m, sim.t)
    except KeyboardInterrupt:
        print("\nnmag: interrupted; no result written", file=sys.stderr)
        return 1
    except ProblemError:
        raise
    except Exception as e:  # a failure while running: say so, leave no half-written file
        print(f"nmag: error while running: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if args.csv:
        res = read_results(out)
        import numpy as np
        cols = res["columns"]
        write_table_csv(out.with_suffix(".csv"), cols, np.column_stack([res["table"][c] for c in cols]))
    mx, my, mz = summary["mean_m"]
    relax_iterations = sum(s["steps"] for s in summary["stages"] if s["kind"] == "relax")
    relaxed = f" (+ {relax_iterations} relax iterations)" if relax_iterations else ""
    print(f"{problem.title}: {summary['steps']} steps{relaxed} to t = {summary['t'] * 1e9:.4f} ns in "
          f"{time.time() - t0:.1f} s, <m> = ({mx:.5f}, {my:.5f}, {mz:.5f}), demag {problem.solver.demag} -> {out}")
    return 0


def _saved_state(src: Path):
    """The state saved in a project file, to continue from it (None for TOML problems)."""
    if src.suffix.lower() not in (".h5", ".hdf5"):
        return None
    from .results import open_project
    try:
        return open_project(src).m
    except ProblemError:
        return None


if __name__ == "__main__":
    sys.exit(main())
