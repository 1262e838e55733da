"""C sources built with the system's C compiler into a private per-user cache, loaded by ctypes.

Why: some hot loops (the neural demag's learned part, engine.neural.compiled and kernels/far.c)
run several times faster as a small C library than through torch. Shipping binaries would tie
the package to one platform and one CPU, so such a library is compiled on first use, for this
CPU, and kept between runs. This module holds what any such library needs (NativeLibrary); the
library's module only declares its functions' types.

Rules (a loaded library runs as our code, so nothing another user could change is ever loaded):
- the compiler is $CC (split as a shell would), else cc, gcc or clang on the PATH; the flags are
  tried with -march=native first, then without;
- the file is named by a hash of the source, the compiler's command, the flags and the CPU (model
  and feature flags), so a home shared by different machines never loads a library built for
  another, and a changed source is built again;
- it is built into the user's cache folder (engine.fft_backends.cache_dir(), folder `kernels`),
  which must be a folder of this user that no one else may write (one of ours that others could
  write is made private first) and must not lie below a folder through which someone else could
  rename or replace it (unsafe_ancestor); otherwise it is built in a private temporary folder of
  this process, removed once the library is loaded (said on the log, as every process then builds
  again), or not at all where even that folder is unsafe;
- a cached file that is not ours, not a plain file, or writable by our group or others is removed
  and built again, never loaded;
- a build writes a temporary file and renames it into place (processes may build at once);
  temporary files older than STALE_BUILD_S are left from killed builds and removed;
- no compiler, a failed build or a library that does not load: library() gives None and
  why_not() says why (the caller runs its slower path). Setting the library's environment switch
  to 0 turns it off.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

# a build's temporary file older than this is left from a build that was killed (the compiler's
# own limit is 120 s): removed when the next build starts
STALE_BUILD_S = 600
# the compiler's time limit, seconds
COMPILE_TIMEOUT_S = 120


def _cpu_id() -> str:
    """What -march=native depends on: the CPU's model and feature flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
        keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part")]
        return "\n".join(dict.fromkeys(keep))
    except OSError:
        return platform.machine() + platform.processor()


def _ours_and_private(path: Path, folder: bool) -> bool:
    """Whether path is a folder (or file) of this user that no one else may write (a library
    loaded from it runs as our code)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    kind_ok = path.is_dir() if folder else path.is_file() and not path.is_symlink()
    return kind_ok and (not hasattr(os, "getuid") or st.st_uid == os.getuid()) and not st.st_mode & 0o022


def _private_dir(path: Path) -> bool:
    """The same for a folder; a folder of ours that others may write is made private first
    (mkdir's mode can only take bits away, so such bits were set by hand or by the file system)."""
    try:
        if path.is_dir() and not path.is_symlink() and hasattr(os, "getuid") and path.stat().st_uid == os.getuid():
            os.chmod(path, 0o700)
    except OSError:
        pass
    return _ours_and_private(path, folder=True)


def _trusted_owners() -> set:
    """root, this user and the kernel's overflow user ("nobody": how a rootless container shows
    the host's root-owned folders)."""
    owners = {0, os.getuid()}
    try:
        owners.add(int(Path("/proc/sys/kernel/overflowuid").read_text()))
    except (OSError, ValueError):
        owners.add(65534)
    return owners


def _private_group(gid: int) -> bool:
    """Whether gid is this user's own group (a user private group, as umask 002 systems give:
    named as the user, no other members)."""
    try:
        import grp
        import pwd
        g = grp.getgrgid(gid)
        return g.gr_name == pwd.getpwuid(os.getuid()).pw_name and not g.gr_mem
    except (ImportError, KeyError):
        return False


def unsafe_ancestor(path: Path) -> str | None:
    """The first folder above `path` (symbolic links followed: the folders the path really goes
    through) through which someone else could rename or replace it, with why; None where there
    is none. Safe: owned by root or us, writable by others only with the sticky bit (/tmp), and
    by its group only where that is our private group."""
    if not hasattr(os, "getuid"):
        return None
    owners = _trusted_owners()
    for p in path.resolve().parents:
        try:
            st = p.stat()
        except OSError as e:
            return f"{p} ({e.strerror})"
        sticky = st.st_mode & 0o1000
        if st.st_uid not in owners:
            return f"{p} (owned by user {st.st_uid})"
        if st.st_mode & 0o002 and not sticky:
            return f"{p} (anyone may write to it)"
        if st.st_mode & 0o020 and not sticky and not _private_group(st.st_gid):
            return f"{p} (group {st.st_gid} may write to it)"
    return None


def kernel_dir(what: str, logger: logging.Logger) -> tuple[Path | None, bool]:
    """The folder to build into and load from, and whether it is a temporary one of this process
    (the user's cache folder is missing, not writable, writable by others, or below a folder
    others could change: said on `logger` about `what`, as every process then builds again);
    None where no folder is safe."""
    from .fft_backends import cache_dir
    d = cache_dir() / "kernels"
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        pass
    if not _private_dir(d):
        why = f"{d} is not a private folder of this user"
    else:
        above = unsafe_ancestor(d)
        if above is None:
            return d, False
        why = f"{d} lies below {above}"
    logger.info("%s is not cached: %s; it is built in a temporary folder in every "
                "process (set NMAG_CACHE_DIR to a private folder)", what, why)
    tmp = Path(tempfile.mkdtemp(prefix="nmag-kernels-"))   # private (0700), this process only
    if unsafe_ancestor(tmp) is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        return None, True
    return tmp, True


def compiler() -> list | None:
    """The C compiler's command: $CC (split as a shell would: "ccache gcc" works), else cc, gcc
    or clang on the PATH."""
    env = os.environ.get("CC", "").strip()
    if env:
        try:
            return shlex.split(env) or None
        except ValueError:
            return None
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    return [found] if found else None


def _remove_stale_builds(folder: Path, name: str) -> None:
    """Temporary files of `name`'s builds that were killed (older than STALE_BUILD_S)."""
    for f in folder.glob(f".{name}-*.tmp"):
        try:
            if time.time() - f.lstat().st_mtime > STALE_BUILD_S:
                f.unlink()
        except OSError:
            pass


def _compile(cc: list, source: Path, out: Path, flags: tuple, name: str, building: str,
             logger: logging.Logger) -> bool:
    """Build `source` into `out` (through a temporary file renamed into place); whether it worked."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    _remove_stale_builds(out.parent, name)
    logger.info("building %s for this CPU with %s (a few seconds)", building, " ".join(cc))
    try:
        r = subprocess.run([*cc, *flags, str(source), "-o", str(tmp)], capture_output=True,
                           timeout=COMPILE_TIMEOUT_S)
        if r.returncode != 0 or not tmp.exists():
            return False
        os.replace(tmp, out)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        tmp.unlink(missing_ok=True)


class NativeLibrary:
    """One C source as a ctypes library, built on first use (see the module's rules).

    source: the C file; name: the built file's prefix (`<name>-<hash>.so`); flags: the compiler's
    flags (tried with -march=native first); declare(lib): sets the functions' argtypes/restype
    (AttributeError or OSError: the library is not used, and removed); env_switch: the environment
    variable that, set to 0, turns it off; what: a phrase for the log and why_not(), e.g. "the
    compiled learned part"; logger: where builds and uncached folders are said (INFO);
    building: the phrase in the build's log line ("building <building> for this CPU"), default
    `what`."""

    def __init__(self, source: Path, name: str, flags: tuple, declare: Callable[[ctypes.CDLL], None],
                 env_switch: str, what: str, logger: logging.Logger, building: str | None = None):
        self.source, self.name, self.flags = Path(source), name, tuple(flags)
        self.declare, self.env_switch, self.what, self.logger = declare, env_switch, what, logger
        self.building = what if building is None else building
        self._lock = threading.Lock()
        self._lib = None
        self._why = None
        self._tried = False

    def off(self) -> bool:
        """Whether the environment switch turns it off."""
        return os.environ.get(self.env_switch, "").strip() == "0"

    def why_not(self) -> str | None:
        """Why the library is not in use (None where it is, or before the first try)."""
        if self.off():
            return f"turned off by {self.env_switch}=0"
        return self._why

    def forget(self) -> None:
        """Build or load the library again on next use (tests change the compiler and the cache)."""
        with self._lock:
            self._lib, self._why, self._tried = None, None, False

    @property
    def loaded(self):
        """The library where it was loaded already, else None: no lock and no environment lookup,
        for calls made thousands of times a second (the caller checks env_switch itself)."""
        return self._lib if self._tried else None

    def library(self):
        """The ctypes library, built on first use; None where it cannot be (see why_not())."""
        if self.off():
            return None
        with self._lock:
            if self._tried:
                return self._lib
            self._tried = True
            try:
                self._lib, self._why = self._build_and_load()
            # the caller's slower path, saying why (RuntimeError: Path.home() where there is no home)
            except (OSError, AttributeError, ValueError, RuntimeError) as e:
                self._lib, self._why = None, f"{self.what} could not be loaded ({type(e).__name__}: {e})"
            return self._lib

    def _build_and_load(self):
        """(library, None), or (None, why)."""
        if not self.source.exists():
            return None, f"{self.source} is missing from the installation"
        cc = compiler()
        if not cc:
            return None, "no C compiler found (cc, gcc, clang or $CC)"
        src, cpu = self.source.read_bytes(), _cpu_id().encode()
        folder, temporary = kernel_dir(self.what, self.logger)
        if folder is None:
            return None, "no folder to build it in that only this user can change (see the log)"
        try:
            for flags in (self.flags + ("-march=native",), self.flags):
                key = hashlib.sha256(b"\0".join([src, " ".join(cc).encode(), " ".join(flags).encode(), cpu]))
                path = folder / f"{self.name}-{key.hexdigest()[:20]}.so"
                if path.exists() and not _ours_and_private(path, folder=False):
                    path.unlink()    # not a file we built, or writable by others: never loaded
                if not path.exists() and not _compile(cc, self.source, path, flags, self.name,
                                                      self.building, self.logger):
                    continue
                try:
                    lib = ctypes.CDLL(str(path))
                    self.declare(lib)
                except (OSError, AttributeError):
                    path.unlink(missing_ok=True)   # broken or from an older source: built again next time
                    continue
                return lib, None
        finally:
            if temporary:   # a loaded library stays mapped after its file is gone
                shutil.rmtree(folder, ignore_errors=True)
        return None, f"{' '.join(cc)} could not build {self.source.name}"
