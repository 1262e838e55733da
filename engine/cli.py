"""The engine's commands (headless), reached through `nmag` (the entry point in nmag_cli, above
the engine and the app) or as `python -m engine.cli`:

    nmag run PROBLEM --out R.h5   run a problem file (.toml) or a saved project (.h5) headless
    nmag check PROBLEM            validate a problem file and print what it describes
    nmag train ...                train the neural demag (see `nmag train --help`)
    nmag sweep SWEEP --out S.h5   run a parameter sweep on Dask (see `nmag sweep --help`)

Exit codes of `nmag run` (also in `nmag run --help`): see EXIT_CODES. A result file is
written to R.h5.part and renamed when the run finished (or diverged: then it is kept up to the
last good state and marked incomplete), so nothing half-written is left; a .part left by a
killed run is removed by the next run with the same --out.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import threads  # noqa: F401  (OMP_WAIT_POLICY=PASSIVE before torch loads)
from .errors import OutputError, ProblemError, SimulationDiverged

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_WRITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = f"""exit codes:
  {EXIT_OK}    done: the result file is complete
  {EXIT_FAILED}    failed while running (an unexpected error); no result written, an earlier one intact
  {EXIT_BAD_INPUT}    bad problem, file or arguments: refused before any work, nothing written
  {EXIT_DIVERGED}    the simulation diverged (NaN, step size at its floor, energy rising in a damped
       run): the result holds everything up to the last good state, marked incomplete
       (root attribute complete = False, incomplete_reason)
  {EXIT_WRITE}    the result could not be written (disk full, no permission): the run stopped,
       no .part left, an earlier result intact
  {EXIT_INTERRUPTED}  interrupted (Ctrl+C, SIGTERM or SIGHUP): no result written, an earlier one intact"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nmag", description="NeuralMAG Studio: micromagnetics with FFT or neural demag.")
    sub = ap.add_subparsers(dest="command")
    r = sub.add_parser("run", help="run a problem headless", epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("problem", help="problem file (.toml) or project/results file (.h5)")
    r.add_argument("--out", help="result file (.h5); default: PROBLEM's name with .h5 (or _result.h5)")
    r.add_argument("--csv", action="store_true", help="also write the table as CSV beside the result")
    r.add_argument("--demag", choices=["fft", "neural", "neural+probe", "none"], help="override the demag method")
    r.add_argument("--precision", choices=["float32", "float64"], help="override the precision")
    r.add_argument("--device", help="override the device (cpu, cuda)")
    r.add_argument("--threads", type=int, help="torch threads (default: the cores free to this process; "
                   "one for a grid under 256 x 256 cells, where a second thread costs more than it gives)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    c = sub.add_parser("check", help="validate a problem file: every check `nmag run` makes before it starts")
    c.add_argument("problem")
    sub.add_parser("train", help="train the neural demag surrogate", add_help=False)
    from .sweep.cli import add_parser as add_sweep_parser  # engine/sweep owns its options
    add_sweep_parser(sub)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .neural.train import main_train
        main_train(argv[1:])   # its result (the history) is for scripts and tests; the shell gets 0
        return 0
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
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
    from .preflight import check_runnable
    src = Path(args.problem)
    p = _load(src)
    info = check_runnable(p, _saved_state(src))
    n_mag = info["magnetic"]
    print(f"{p.title}: {p.mesh.n[0]} x {p.mesh.n[1]} x {p.mesh.n[2]} cells of "
          f"{' x '.join(f'{c:g}' for c in p.mesh.cell_nm)} nm, {n_mag} magnetic, "
          f"{len(p.materials)} material(s), {len(p.stages)} stage(s), demag {p.solver.demag}: ok")
    _warn_output_size(p, src.parent)
    if p.solver.demag.startswith("neural"):
        from .neural.card import ModelCard
        from .neural.compiled import library, why_not
        outside = ModelCard.load().outside(tuple(p.mesh.n), tuple(p.mesh.cell_nm))
        for reason in outside:
            print(f"nmag: warning: neural demag outside the model card ({reason}): the run would use "
                  f"the exact FFT demag instead", file=sys.stderr)
        if not outside and library() is None:
            print(f"nmag: note: the neural demag's learned part would run on torch, up to 2x slower per "
                  f"evaluation: {why_not()}", file=sys.stderr)
    from . import cell_kernel
    cells = int(p.mesh.n[0]) * int(p.mesh.n[1]) * int(p.mesh.n[2])
    if str(p.solver.device) == "cpu" and cell_kernel.wanted(cells, dmi=any(mm.D != 0 for mm in p.materials)) \
            and cell_kernel.library() is None:
        _note_cells_on_torch("would run", cell_kernel.library_why_not())
    if not p.stages:
        print(f"nmag: note: {src.name} has no [[stages]]: `nmag run` only relaxes it", file=sys.stderr)
    return 0


def _run(args) -> int:
    from .results import ResultWriter, write_table_csv, read_results
    from .simulation import Simulation
    from .stages import run_stages
    from .threads import apply_thread_policy
    from .preflight import check_runnable
    from .notes import notes_to

    src = Path(args.problem)
    out = Path(args.out) if args.out else src.with_name(src.stem + ("_result.h5" if src.suffix == ".h5" else ".h5"))
    problem = _load(src, args)
    _check_outputs(src, problem, out, args.csv)
    m0 = _saved_state(src)
    check_runnable(problem, m0)
    _check_threads(args.threads)
    _warn_output_size(problem, out.parent)
    _remove_stale_part(out)     # only now: a refused run changes nothing
    if not problem.stages:
        print(f"nmag: note: {src.name} has no [[stages]]: it only relaxes", file=sys.stderr)
    if m0 is not None:
        print(f"nmag: note: starting from the state saved in {src.name}, at t = 0 with every stage "
              f"from the first", file=sys.stderr)
    nx, ny, nz = problem.mesh.n
    apply_thread_policy(args.threads, cells=int(nx) * int(ny) * int(nz))
    bar = None
    diverged = None
    t0 = time.time()
    with _signals_as_interrupt() as signals:
        try:
            import warnings
            with warnings.catch_warnings(), notes_to(lambda text: print(f"nmag: note: {text}", file=sys.stderr),
                                                     shown=not args.quiet):
                # the model card's warning is said once, as nmag's own line, below
                warnings.filterwarnings("ignore", message="neural demag: outside the model card")
                sim = Simulation(problem, m0=m0)
            for w in getattr(sim.demag, "warnings", []):
                print(f"nmag: warning: {w}", file=sys.stderr)
            if not args.quiet and sys.stderr.isatty():
                from tqdm import tqdm
                bar = tqdm(total=1000 * max(1, len(problem.stages)), unit="‰",
                           bar_format="{l_bar}{bar}| {postfix}", file=sys.stderr)

            def progress(i, frac, text):
                if bar is not None:
                    bar.n = int(1000 * (i + min(frac, 1.0)))
                    bar.set_postfix_str(f"stage {i + 1}: {text}", refresh=False)
                    bar.refresh()

            with ResultWriter(out, problem, sim.regions, sim.demag_in_use) as writer:
                try:
                    summary = run_stages(sim, problem, writer, progress, should_stop=signals.raise_if_received)
                except SimulationDiverged as e:
                    diverged, summary = e, getattr(e, "summary", None)
                    writer.mark_incomplete(str(e))
                writer.set_final_state(sim.m, sim.t)
        except KeyboardInterrupt:
            _close(bar)
            print(f"\nnmag: interrupted; no result written{_intact(out)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except ProblemError:
            _close(bar)
            raise
        except OutputError as e:
            _close(bar)
            print(f"nmag: error: {e.strerror or e}{_intact(out)}", file=sys.stderr)
            return EXIT_WRITE
        except MemoryError:
            _close(bar)
            print(f"nmag: error while running: out of memory (grid {' x '.join(map(str, problem.mesh.n))}); "
                  f"try a smaller grid or float32; no result written{_intact(out)}", file=sys.stderr)
            return EXIT_FAILED
        except Exception as e:  # a failure while running: say so, leave no half-written file
            _close(bar)
            print(f"nmag: error while running: {type(e).__name__}: {e}; no result written{_intact(out)}",
                  file=sys.stderr)
            return EXIT_FAILED
        _close(bar)
    if args.csv:
        try:
            res = read_results(out)
            import numpy as np
            cols = res["columns"]
            write_table_csv(out.with_suffix(".csv"), cols, np.column_stack([res["table"][c] for c in cols]))
        except OSError as e:
            print(f"nmag: error: could not write {out.with_suffix('.csv')}: {e.strerror or e} "
                  f"(the result {out} is complete)", file=sys.stderr)
            return EXIT_WRITE
    if diverged is not None:
        print(f"nmag: error: {diverged}\nnmag: the result up to the last good state (t = "
              f"{sim.t * 1e9:.6g} ns) is in {out}, marked incomplete", file=sys.stderr)
        return EXIT_DIVERGED
    mx, my, mz = summary["mean_m"]
    relax_iterations = sum(s.get("steps", 0) for s in summary["stages"] if s["kind"] in ("relax", "sweep"))
    relaxed = f" (+ {relax_iterations} relax iterations)" if relax_iterations else ""
    print(f"{problem.title}: {summary['steps']} steps{relaxed} to t = {summary['t'] * 1e9:.4f} ns in "
          f"{time.time() - t0:.1f} s, <m> = ({mx:.5f}, {my:.5f}, {mz:.5f}), demag {_demag_said(sim)} -> {out}")
    for text in summary.get("warnings", []):
        print(f"nmag: warning: {text}", file=sys.stderr)
    if _cells_on_torch(sim):
        _note_cells_on_torch("ran", sim.cells_why)
    return EXIT_OK


def _note_cells_on_torch(verb: str, why: str | None) -> None:
    """The note `nmag check` ("would run") and `nmag run` ("ran") give where the compiled cell
    kernel could have served the grid but cannot."""
    print(f"nmag: note: the exchange, anisotropy, DMI and torque {verb} on torch, slower on this grid "
          f"(standard problem 4: 1.5x a step): {why}", file=sys.stderr)


def _cells_on_torch(sim) -> bool:
    """Whether the compiled cell kernel would have served this grid but could not (no compiler, a
    failed build or check), as opposed to not wanted (a large grid, NMAG_CELL_KERNEL=0, a GPU)."""
    from .cell_kernel import library, wanted
    from .dmi import InterfacialDMI
    st = sim.state
    return sim.cells is None and st.m.device.type == "cpu" and \
        wanted(st.m[0].numel(), dmi=any(isinstance(t, InterfacialDMI) for t in sim.terms)) and \
        (library() is None or "differs" in (sim.cells_why or ""))


def _demag_said(sim) -> str:
    """The demag that ran, and what was asked where they differ (a neural problem outside the
    model card runs the exact FFT)."""
    asked = sim.problem.solver.demag
    if sim.demag_in_use != asked:
        return f"{sim.demag_in_use} (asked: {asked}, outside the model card)"
    if getattr(sim.demag, "learned_part", None) not in (None, "compiled"):   # the slower torch path: say why
        return f"{asked} (learned part on torch: {sim.demag.compiled_why})"
    return asked


def _warn_output_size(problem, folder: Path) -> None:
    """Say when the output could outgrow the free disk in `folder` (engine.preflight)."""
    from .preflight import output_warning
    too_big = output_warning(problem, folder)
    if too_big:
        print(f"nmag: warning: {too_big}", file=sys.stderr)


def _close(bar):
    if bar is not None:
        bar.close()


def _intact(out: Path) -> str:
    return f" ({out} as it was)" if out.exists() else ""


class _signals_as_interrupt:
    """SIGTERM and SIGHUP (and any of `names`) raise KeyboardInterrupt (like Ctrl+C) while the
    run is on, so the same clean-up runs: the .part removed, an earlier result left as it was.

    A handler that raises can land inside a finalizer (a weakref callback), where Python
    ignores the exception and the run would go on to its end; so the signal is also kept,
    and `raise_if_received` (polled between steps) raises it again. `nmag sweep` takes SIGINT
    this way too: a Ctrl+C that landed in Dask's futures' finalizers was lost, and the sweep ran
    to its end (seen once in CI)."""

    def __init__(self, names=("SIGTERM", "SIGHUP")):
        self.names = tuple(names)

    def __enter__(self):
        import signal
        self._saved = {}
        self.received = None

        def handler(signum, frame):
            self.received = signum
            raise KeyboardInterrupt(f"signal {signum}")
        for name in self.names:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                self._saved[sig] = signal.signal(sig, handler)
            except ValueError:      # not the main thread: leave the signals alone
                pass
        return self

    def raise_if_received(self) -> bool:
        """For run_stages' should_stop: raise KeyboardInterrupt once a signal came (False else)."""
        if self.received is not None:
            raise KeyboardInterrupt(f"signal {self.received}")
        return False

    def __exit__(self, *exc):
        import signal
        for sig, h in self._saved.items():
            signal.signal(sig, h)
        return False


def _remove_stale_part(out: Path) -> None:
    """A `<out>.part` left by a killed run (kill -9, power cut) is removed before this run
    (_check_outputs has made sure it is one nmag wrote)."""
    part = Path(str(out) + ".part")
    if part.is_file():
        try:
            part.unlink()
            print(f"nmag: removed {part.name}, left by an interrupted run", file=sys.stderr)
        except OSError:
            pass


def input_paths(src: Path, problem) -> dict:
    """Every file the run reads, resolved: {path: what it is}."""
    inputs = {src.resolve(): "the problem file"}
    base = Path(problem.base_dir)
    if problem.initial.kind == "file" and isinstance(problem.initial.params.get("path"), str):
        inputs[(base / problem.initial.params["path"]).resolve()] = "the initial-state file"
    for i, g in enumerate(problem.geometry or []):
        path = g.params.get("path") if isinstance(g.params, dict) else None
        if isinstance(path, str) and path:
            inputs[(base / path).resolve()] = f"the file of geometry[{i}]"
    return inputs


def check_output_path(out: Path, suffix_text: str, formats=("nmag-results",)) -> None:
    """An output path's own checks, shared by `nmag run` and `nmag sweep`: an .h5 name, in a
    folder that exists, and a `<out>.part` beside it (the file being written) that is either
    free or an HDF5 file of one of `formats` left by an interrupted run, never a user's file."""
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ProblemError("--out", str(out), suffix_text)
    if not out.parent.is_dir():
        raise ProblemError("--out", str(out), f"a path in an existing folder ({out.parent} does not exist)")
    part = Path(str(out) + ".part")
    if part.exists():   # a killed writer can leave it unreadable: that one is nmag's too
        if hdf5_format(part, unreadable="unreadable") not in tuple(formats) + ("unreadable",):
            raise ProblemError("--out", str(out), f"a path whose {part.name} is free: that file is not one "
                                                  "nmag left while writing, and writing would replace it")


def hdf5_format(path: Path, unreadable=None):
    """The `format` attribute of the HDF5 file at `path` ("nmag-results", "nmag-project", ...),
    None where it is not an HDF5 file or has none, `unreadable` where it cannot be opened."""
    import h5py
    if not path.is_file() or not h5py.is_hdf5(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
    except Exception:   # noqa: BLE001 - damaged
        return unreadable
    return fmt.decode() if isinstance(fmt, bytes) else fmt


def refuse_input_or_folder(path: Path, key: str, inputs: dict) -> None:
    """An output path must be none of `inputs` ({resolved path: what it is}) and no folder."""
    what = inputs.get(path.resolve())
    if what:
        raise ProblemError(key, str(path), f"a path that is not {what} (it would be overwritten)")
    if path.is_dir():
        raise ProblemError(key, str(path), "a file path, not a folder")


def _check_threads(threads) -> None:
    """--threads: 1 to 4 x the cores this process may use (more only oversubscribes)."""
    if threads is None:
        return
    from .threads import usable_cores
    hi = 4 * usable_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= hi:
        raise ProblemError("--threads", threads, f"an integer in [1, {hi}] (4 x the {usable_cores()} usable cores)")


def _check_outputs(src: Path, problem, out: Path, csv: bool) -> None:
    """Refuse an --out (or its CSV) that is an input, or an existing file of another kind:
    nothing the run reads and nothing it did not write itself is ever replaced."""
    import h5py
    check_output_path(out, "a result path ending in .h5 (the result is an HDF5 file)")
    inputs = input_paths(src, problem)
    targets = [(out, "--out")] + ([(out.with_suffix(".csv"), "--csv file")] if csv else [])
    for path, key in targets:
        refuse_input_or_folder(path, key, inputs)
    if out.exists():
        if not h5py.is_hdf5(out):
            raise ProblemError("--out", str(out), "a new path or an earlier nmag result (this file is not "
                                                  "HDF5 and would be replaced)")
        fmt = hdf5_format(out)
        if fmt != "nmag-results":
            raise ProblemError("--out", str(out), f"a new path or an earlier nmag result (this HDF5 file is "
                                                  f"{'an nmag project' if fmt == 'nmag-project' else 'not an nmag result'}"
                                                  f" and would be replaced)")
    csv_path = out.with_suffix(".csv")
    if csv and csv_path.exists():
        with open(csv_path, "rb") as fh:
            head = fh.read(10)
        if head != b"# columns:":
            raise ProblemError("--csv file", str(csv_path), "a new path or a CSV table written by nmag "
                                                            "(this file is something else and would be replaced)")


def _saved_state(src: Path):
    """The state saved in a project file, to continue from it (None for TOML problems, or a
    project saved without a state). A damaged or wrong-shape state is refused (ProblemError),
    as open_project refuses it: never silently restarted from the initial state."""
    if src.suffix.lower() not in (".h5", ".hdf5"):
        return None
    from .results import open_project
    return open_project(src).m


if __name__ == "__main__":
    code = main()
    __import__("gc").freeze()   # no last collection over torch's objects at exit (nmag_cli.console_main)
    sys.exit(code)
