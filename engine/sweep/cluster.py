"""Dask clients for sweeps and training data: local and private unless asked otherwise.

Dask sends pickled functions: whoever can reach a scheduler can run code on every worker. So:

- no scheduler given: a LocalCluster of worker *processes* (one thread each), with the
  scheduler, the workers and the dashboard bound to 127.0.0.1: nothing listens on another
  interface;
- a scheduler on this machine (127.0.0.1, ::1, localhost, inproc://): connect;
- any other address: only with TLS (a `distributed.security.Security`, e.g. from
  `tls_security(ca, cert, key)` or from Dask's configuration), or with insecure=True, which
  prints why that is dangerous. Otherwise ProblemError before anything is connected or sent.
- cluster="slurm" | "pbs" | "sge": a dask-jobqueue cluster configured in Dask's config
  (jobqueue.yaml); see README "Sweeps".

    with open_client(workers=2) as client:
        for i, result in map_as_completed(client, fn, items):
            ...
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import sys

from ..errors import ProblemError

INSECURE_WARNING = (
    "nmag: WARNING: --insecure: connecting to {address} over plain TCP. Dask runs pickled code: "
    "anyone who can reach this scheduler can run any program on every worker and read what is "
    "sent, and the scheduler cannot tell you from them. Use it only on a network you trust "
    "(or use TLS: README, 'Security').")
CLUSTERS = ("slurm", "pbs", "sge")


def free_cores() -> int:
    """Cores this process may use that are not busy (affinity minus the 1-minute load), >= 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, n - busy)


def is_loopback(address: str) -> bool:
    """True for a scheduler address on this machine only: 127.0.0.0/8, ::1, localhost, inproc.
    Host names other than localhost count as remote (they are not resolved)."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    scheme, loc = parse_address(address)
    if scheme == "inproc":
        return True
    try:
        host, _ = parse_host_port(loc)
    except ValueError:
        host = loc
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_security(ca_file: str, cert: str, key: str | None = None):
    """A Security for TLS with this CA and client certificate (and key, if not in the cert)."""
    from distributed.security import Security
    import ssl
    for name, p in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)):
        if p is not None and not os.path.isfile(p):
            raise ProblemError(name, p, "an existing PEM file")
    try:   # load them now: a key that is missing or does not match fails here, by name
        ctx = ssl.create_default_context(cafile=ca_file)
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise ProblemError("--tls-cert", cert, "a PEM certificate with its private key (in the same file or "
                                               f"given by --tls-key) that load together ({e.reason or e})") from None
    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key,
                    require_encryption=True)


def check_scheduler(address: str, security=None, insecure: bool = False, warn=None) -> str:
    """Decide whether we may connect to `address`; returns the address to use (a bare
    host:port becomes tcp:// or tls://). Raises ProblemError, before any connection, for a
    non-loopback plain-TCP address without insecure=True."""
    from distributed.comm import parse_address
    if not isinstance(address, str) or not address.strip():
        raise ProblemError("--scheduler", address, "a scheduler address such as tcp://127.0.0.1:8786")
    address = address.strip()
    has_tls = security is not None and bool(getattr(security, "tls_ca_file", None))
    if "://" not in address:
        address = ("tls://" if has_tls else "tcp://") + address
    try:
        scheme, _ = parse_address(address)
    except ValueError:
        raise ProblemError("--scheduler", address, "a scheduler address such as tcp://127.0.0.1:8786") from None
    if scheme not in ("tcp", "tls"):
        raise ProblemError("--scheduler", address, "a tcp:// or tls:// scheduler address (another process "
                                                   "or machine; inproc:// and others cannot be reached from here)")
    if scheme == "tls" and not has_tls:   # also on loopback: without certificates Dask fails deep inside
        raise ProblemError("--scheduler", address, "a TLS configuration for a tls:// scheduler "
                                                   "(--tls-ca-file, --tls-cert, --tls-key, or Dask's "
                                                   "distributed.comm.tls settings)")
    if is_loopback(address):
        return address
    if scheme == "tls":
        if not has_tls:
            raise ProblemError("--scheduler", address, "a TLS configuration for a tls:// scheduler "
                                                       "(--tls-ca-file, --tls-cert, --tls-key, or Dask's "
                                                       "distributed.comm.tls settings)")
        return address
    if not insecure:
        raise ProblemError("--scheduler", address,
                           "a scheduler on this machine (tcp://127.0.0.1:PORT), a tls:// address with a "
                           "TLS configuration (--tls-ca-file/--tls-cert/--tls-key), or --insecure: a "
                           "plain-TCP scheduler on the network runs code for anyone who can reach it")
    (warn or (lambda s: print(s, file=sys.stderr)))(INSECURE_WARNING.format(address=address))
    return address


def security_from_config():
    """Dask's own TLS configuration (distributed.comm.tls.* in ~/.config/dask), or None."""
    from distributed.security import Security
    s = Security()
    return s if getattr(s, "tls_ca_file", None) else None


# Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers to hand memory back to the OS.
# Setting it also switches off glibc's dynamic mmap threshold, so every torch temporary above
# 128 kB becomes a fresh mmap + page faults: an SP4 step cost 1.5-2.5x the CPU of the same step
# outside Dask (measured). Our workers leave malloc alone, and skip Dask's sampling profiler
# (a stack sample every 10 ms of a loop of small torch calls). Dask's housekeeping timers
# (event-loop tick every 20 ms, memory monitor every 100 ms, system monitor every 500 ms) cost
# an idle worker 2.9 % of a core and the scheduler + client 7.5 % here: 13 % of a 2-core
# machine for 2 workers. Slower timers: 0.55 % and 1.3 % (measured). Points are small data,
# so no spilling to disk.
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                 "distributed.worker.profile.enabled": False,
                 "distributed.admin.tick.interval": "500ms",
                 "distributed.admin.system-monitor.interval": "2s",
                 "distributed.worker.memory.monitor-interval": "1s",
                 "distributed.worker.memory.target": False,
                 "distributed.worker.memory.spill": False}


def local_cluster(workers: int | None = None, dashboard: bool = True):
    """A LocalCluster of `workers` processes (default: free cores), one thread each, everything
    bound to 127.0.0.1 (dashboard on a free loopback port); see WORKER_CONFIG. It speaks TLS with
    throwaway certificates made for this cluster (security=True; they live in this process and
    its workers only): on 127.0.0.1 plain TCP kept the network out but not the machine's other
    users, any of whom could connect to the scheduler and run code in the workers."""
    import dask
    from distributed import LocalCluster
    n = int(workers) if workers else free_cores()
    if n < 1:
        raise ProblemError("--workers", workers, "an integer >= 1")
    with dask.config.set(WORKER_CONFIG):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0" if dashboard else None,
                            worker_dashboard_address=None, protocol="tls://", security=True)


def jobqueue_cluster(kind: str, workers: int | None = None, security=None, scale: bool = True):
    """A dask-jobqueue cluster (Slurm, PBS or SGE) as configured in Dask's jobqueue.yaml,
    scaled to `workers` jobs (default 1). Its scheduler runs here and must be reachable from
    the compute nodes, so it always speaks TLS: `security`, or temporary certificates that
    dask-jobqueue makes and hands to the jobs (set jobqueue.<kind>.shared-temp-directory to a
    folder only you can read). Its dashboard stays on 127.0.0.1 unless the config says otherwise."""
    if kind not in CLUSTERS:
        raise ProblemError("--cluster", kind, "one of " + ", ".join(CLUSTERS))
    try:
        import dask_jobqueue
    except ImportError:
        raise ProblemError("--cluster", kind, "dask-jobqueue installed (pip install dask-jobqueue)") from None
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster,
           "sge": dask_jobqueue.SGECluster}[kind]
    import dask
    opts = dict(dask.config.get(f"jobqueue.{kind}.scheduler-options", {}) or {})
    opts.setdefault("dashboard_address", "127.0.0.1:0")
    cluster = cls(security=security if security is not None else True, scheduler_options=opts)
    if scale:
        cluster.scale(jobs=int(workers or 1))
    return cluster


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None, insecure: bool = False,
                security=None, cluster: str | None = None, dashboard: bool = True, warn=None):
    """A distributed.Client for the work, closed (with any cluster it started) on exit.

    scheduler: address of a running scheduler (see check_scheduler), else a LocalCluster of
    `workers` processes; cluster: "slurm"/"pbs"/"sge" through dask-jobqueue instead.
    security: a distributed.security.Security (TLS); default: Dask's configuration, if any."""
    from distributed import Client
    if scheduler and cluster:
        raise ProblemError("--cluster", cluster, "either --scheduler or --cluster, not both")
    if scheduler:
        security = security or security_from_config()
        address = check_scheduler(scheduler, security, insecure, warn)
        kw = {"security": security} if security is not None else {}
        try:
            client = Client(address, timeout="10s", **kw)
        except OSError as e:
            raise ProblemError("--scheduler", address, f"a running Dask scheduler ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    owner = jobqueue_cluster(cluster, workers, security) if cluster else local_cluster(workers, dashboard)
    client = Client(owner)
    try:
        yield client
    finally:
        client.close()
        owner.close()


def dashboard_link(client) -> str | None:
    """The dashboard's URL, or None when there is none (bokeh missing, or disabled)."""
    try:
        info = client.scheduler_info()
        port = info.get("services", {}).get("dashboard")
        if not port:
            return None
        return client.dashboard_link
    except Exception:
        return None


def map_as_completed(client, fn, items, **submit_kw):
    """Submit fn(item) for every item as its own task and yield (index, result) as they
    finish (any order). A task that raises: the others are cancelled and its exception is
    raised here. fn must be importable on the workers (a module-level function)."""
    from distributed import as_completed
    futures = [client.submit(fn, item, pure=False, **submit_kw) for item in items]
    position = {f.key: i for i, f in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            if fut.status == "error":
                fut.result()            # raises the task's exception with its traceback
            yield position[fut.key], fut.result()
            fut.release()
    finally:
        for f in futures:
            if not f.done():
                f.cancel()
