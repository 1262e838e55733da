"""`nmag sweep SWEEP.toml --out S.h5`: run a parameter sweep on Dask.

Exit codes (as `nmag run`): 0 every point done, 1 some points failed (the file holds the
others and each failure's message), 2 bad sweep or arguments (nothing run), 130 interrupted
(the file is valid: run again with --resume).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ProblemError


def add_parser(sub) -> argparse.ArgumentParser:
    """Register `sweep` on the nmag subparsers."""
    s = sub.add_parser("sweep", help="run a parameter sweep (every point a Dask task)",
                       description="Run every point of a sweep file as a Dask task; results go to one HDF5 "
                                   "file, point by point. Default: a local cluster on 127.0.0.1.")
    add_arguments(s)
    return s


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("sweep", help="sweep file (.toml, format = \"nmag-sweep\")")
    s.add_argument("--out", help="results file (.h5); default: the sweep file's name with .h5")
    s.add_argument("--workers", type=int, help="local worker processes (default: free cores); "
                                               "with --cluster, the number of jobs")
    s.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://127.0.0.1:8786; "
                                       "another machine needs TLS or --insecure)")
    s.add_argument("--cluster", choices=["slurm", "pbs", "sge"],
                   help="start workers as batch jobs through dask-jobqueue (configured in jobqueue.yaml)")
    s.add_argument("--tls-ca-file", help="TLS: the CA certificate (PEM) the scheduler's certificate is signed by")
    s.add_argument("--tls-cert", help="TLS: this client's certificate (PEM)")
    s.add_argument("--tls-key", help="TLS: this client's private key (PEM), if not in --tls-cert")
    s.add_argument("--insecure", action="store_true",
                   help="allow a plain-TCP scheduler on another machine (dangerous: anyone who can reach "
                        "it can run code on the workers)")
    s.add_argument("--resume", action="store_true", help="continue a stopped sweep in --out, skipping finished points")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.add_argument("--check", action="store_true", help="validate the sweep and list its points; run nothing")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_sweep_output(src: Path, sweep, out: Path) -> None:
    """--out as `nmag run` checks it, before any worker starts: an .h5 path in an existing
    folder, never one of the sweep's inputs (the sweep file, its problem file, the files that
    problem reads), and an existing file only if it is a sweep's results (which --resume or
    --overwrite may then take)."""
    from ..cli import input_paths, check_output_path, hdf5_format, refuse_input_or_folder
    from .results import SWEEP_RESULTS_FORMAT
    check_output_path(out, "a results path ending in .h5 (the sweep's results are an HDF5 file)",
                      formats=(SWEEP_RESULTS_FORMAT,))
    # the problem file and what it reads (as nmag run counts them), and the sweep file itself
    inputs = input_paths(Path(sweep.problem_path), sweep.point_problem(0))
    inputs[src.resolve()] = "the sweep file"
    refuse_input_or_folder(out, "--out", inputs)
    if out.exists():
        if hdf5_format(out) != SWEEP_RESULTS_FORMAT:
            raise ProblemError("--out", str(out), "a new path or an earlier sweep's results (this file is not "
                                                  "one, and --resume or --overwrite would replace it)")


def main_sweep(args) -> int:
    """Run `nmag sweep` with parsed args; ProblemError propagates (the caller prints it, exit 2)."""
    from .cluster import dashboard_link, open_client, tls_security
    from ..cli import _signals_as_interrupt
    from .runner import run_sweep
    from .sweep_file import load_sweep

    if args.workers is not None and args.workers < 1:
        raise ProblemError("--workers", args.workers, "an integer >= 1")
    if args.scheduler and args.cluster:
        raise ProblemError("--cluster", args.cluster, "either --scheduler or --cluster, not both")
    security = None
    if (args.tls_ca_file or args.tls_cert or args.tls_key) and not (args.scheduler or args.cluster):
        raise ProblemError("--tls-cert" if args.tls_cert else "--tls-ca-file", args.tls_cert or args.tls_ca_file,
                           "TLS options together with --scheduler (or --cluster): a local sweep makes its own "
                           "certificates")
    if args.tls_ca_file or args.tls_cert or args.tls_key:
        if not (args.tls_ca_file and args.tls_cert):
            raise ProblemError("--tls-cert" if args.tls_ca_file else "--tls-ca-file", None,
                               "both --tls-ca-file and --tls-cert (and --tls-key unless the cert holds it)")
        security = tls_security(args.tls_ca_file, args.tls_cert, args.tls_key)
    src = Path(args.sweep)
    sweep = load_sweep(src)
    out = Path(args.out) if args.out else src.with_suffix(".h5")
    if args.check:
        # what nmag check makes of a problem (files it names exist and fit, memory), for the
        # points that differ in a file they name, or the first point
        from ..preflight import check_runnable
        file_keys = [p.key for p in sweep.parameters if p.key.endswith("path")]
        for i in (range(len(sweep)) if file_keys else range(min(1, len(sweep)))):
            try:
                check_runnable(sweep.point_problem(i))
            except ProblemError as e:
                if e.key.startswith("point "):
                    raise
                raise ProblemError(f"point {i} ({sweep.describe(i)}): {e.key}", e.value, e.allowed) from None
        print(f"{sweep.title}: {len(sweep)} points ({sweep.mode} of "
              f"{', '.join(p.key for p in sweep.parameters)}), every point valid: ok")
        for i in range(len(sweep)):
            print(f"  {i}: {sweep.describe(i)}")
        return 0
    _check_sweep_output(src, sweep, out)
    if out.exists() and not (args.resume or args.overwrite):
        raise ProblemError("--out", str(out), "a new file (it exists: --resume continues it, --overwrite replaces it)")

    bar = None
    with open_client(scheduler=args.scheduler, workers=args.workers, insecure=args.insecure,
                     security=security, cluster=args.cluster) as client:
        link = dashboard_link(client)
        nworkers = len(client.scheduler_info().get("workers", {}))
        print(f"nmag sweep: {len(sweep)} points on {client.scheduler.address} ({nworkers} workers); "
              f"dashboard: {link or 'none (pip install bokeh)'}", file=sys.stderr)
        if not args.quiet:
            from tqdm import tqdm
            bar = tqdm(total=len(sweep), unit="pt", file=sys.stderr, dynamic_ncols=True,
                       disable=not sys.stderr.isatty())

        def progress(p):
            if bar is not None:
                bar.n = p.done
                bar.set_postfix_str(f"running {p.running}, failed {p.failed}", refresh=False)
                bar.refresh()

        said = set()

        def notes(result):   # what a worker's engine noted while building (each text once)
            for text in result.get("notes") or ():
                if text not in said and not args.quiet:
                    print(f"nmag sweep: note ({result.get('worker', '?')}): {text}", file=sys.stderr)
                said.add(text)

        try:
            with _signals_as_interrupt(("SIGINT", "SIGTERM", "SIGHUP")) as signals:
                prog = run_sweep(sweep, out, client, resume=args.resume, overwrite=args.overwrite,
                                 on_progress=progress, on_point=notes, should_stop=signals.raise_if_received)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            print(f"\nnmag sweep: interrupted; the finished points are in {out}: "
                  f"run again with --resume to continue", file=sys.stderr)
            return 130
        finally:
            if bar is not None:
                bar.close()
    mean = sum(prog.wall_s) / len(prog.wall_s) if prog.wall_s else 0.0
    print(f"{sweep.title}: {prog.done - prog.failed}/{prog.total} points done, {prog.failed} failed, "
          f"{prog.skipped} already in the file; {prog.elapsed_s:.1f} s ({mean:.2f} s per point on a worker) -> {out}")
    if prog.failed:
        from .results import _text, read_sweep
        r = read_sweep(out)
        for i, s in enumerate(r["status"]):
            if s == "failed":
                print(f"  point {i} failed: {_text(r['index'][i]['message'])}", file=sys.stderr)
        return 1
    return 0
