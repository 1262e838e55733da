"""C libraries built into the private per-user cache and loaded by ctypes (engine.native): built
once and loaded from the cache after, named by their source, turned off by their switch, None
with a reason without a compiler, and a cached file others could write is never loaded."""
import ctypes
import logging
import os
import stat
import time

import pytest

from engine import native

needs_compiler = pytest.mark.skipif(native.compiler() is None, reason="no C compiler")
FLAGS = ("-O2", "-std=c99", "-fPIC", "-shared")
_log = logging.getLogger("engine.test_native")


def _declare(lib) -> None:
    lib.nm_answer.argtypes = []
    lib.nm_answer.restype = ctypes.c_int


def _library(source, **kw) -> native.NativeLibrary:
    args = dict(name="nmtest", flags=FLAGS, declare=_declare, env_switch="NMAG_TEST_NATIVE",
                what="the test library", logger=_log)
    args.update(kw)
    return native.NativeLibrary(source, **args)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """A cache folder of this test's own; its `kernels` folder (where libraries go)."""
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NMAG_TEST_NATIVE", raising=False)
    return tmp_path / "cache" / "kernels"


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "answer.c"
    src.write_text("int nm_answer(void) { return 42; }\n")
    return src


def _count_compiles(monkeypatch) -> list:
    calls = []
    real = native._compile

    def counted(*a, **k):
        calls.append(a)
        return real(*a, **k)
    monkeypatch.setattr(native, "_compile", counted)
    return calls


@needs_compiler
def test_it_builds_loads_and_says_so(cache, source, caplog):
    nl = _library(source, building="the answer")
    with caplog.at_level("INFO", logger=_log.name):
        lib = nl.library()
    assert lib is not None, nl.why_not()
    assert lib.nm_answer() == 42 and nl.why_not() is None
    assert nl.library() is lib                          # cached in the process
    built = list(cache.glob("nmtest-*.so"))
    assert len(built) == 1
    assert stat.S_IMODE(os.stat(cache).st_mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(built[0]).st_mode) & 0o022 == 0
    assert any("building the answer for this CPU" in r.getMessage() for r in caplog.records)


@needs_compiler
def test_a_second_library_of_the_same_source_loads_the_cached_file(cache, source, monkeypatch):
    assert _library(source).library() is not None

    def no_compiling(*a, **k):
        raise AssertionError("compiled again")
    monkeypatch.setattr(native, "_compile", no_compiling)
    lib = _library(source).library()
    assert lib is not None and lib.nm_answer() == 42


@needs_compiler
def test_forget_loads_again_from_the_cache(cache, source, monkeypatch):
    nl = _library(source)
    assert nl.library() is not None
    calls = _count_compiles(monkeypatch)
    nl.forget()
    assert nl.library() is not None and not calls


@needs_compiler
def test_a_changed_source_is_a_new_file(cache, source):
    assert _library(source).library() is not None
    first = {p.name for p in cache.glob("nmtest-*.so")}
    source.write_text("int nm_answer(void) { return 43; }\n")
    lib = _library(source).library()
    assert lib is not None and lib.nm_answer() == 43
    after = {p.name for p in cache.glob("nmtest-*.so")}
    assert len(after) == 2 and first < after


def test_the_switch_turns_it_off(cache, source, monkeypatch):
    monkeypatch.setenv("NMAG_TEST_NATIVE", "0")
    nl = _library(source)
    assert nl.library() is None
    assert nl.why_not() == "turned off by NMAG_TEST_NATIVE=0"
    assert not cache.exists()                           # nothing built or even looked for


def test_a_compiler_that_is_not_there_gives_none_and_says_why(cache, source, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    nl = _library(source)
    assert nl.library() is None
    assert "could not build answer.c" in nl.why_not()


def test_no_compiler_at_all_gives_none_and_says_why(cache, source, monkeypatch, tmp_path):
    monkeypatch.delenv("CC", raising=False)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    nl = _library(source)
    assert nl.library() is None
    assert "no C compiler" in nl.why_not()


def test_a_missing_source_gives_none_and_says_why(cache, tmp_path):
    nl = _library(tmp_path / "gone.c")
    assert nl.library() is None and "missing" in nl.why_not()


@needs_compiler
def test_a_library_that_does_not_declare_is_not_used(cache, source):
    def broken(lib):
        raise AttributeError("undefined symbol: nm_question")
    nl = _library(source, declare=broken)
    assert nl.library() is None and "could not build" in nl.why_not()
    assert not list(cache.glob("nmtest-*.so"))          # removed: built again next time


@needs_compiler
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_cached_file_others_could_write_is_built_again_not_loaded(cache, source, monkeypatch, mode):
    assert _library(source).library() is not None
    built = next(cache.glob("nmtest-*.so"))
    os.chmod(built, mode)
    calls = _count_compiles(monkeypatch)
    lib = _library(source).library()
    assert lib is not None and lib.nm_answer() == 42
    assert len(calls) == 1                              # built again
    assert stat.S_IMODE(os.stat(built).st_mode) & 0o022 == 0   # a new file, not the writable one


@needs_compiler
def test_a_build_removes_its_own_stale_temporary_files_only(cache, source):
    cache.mkdir(parents=True, mode=0o700)
    old, recent = cache / ".nmtest-0.so.11.tmp", cache / ".nmtest-0.so.12.tmp"
    other = cache / ".far-0.so.13.tmp"                  # another library's: not this one's to remove
    for f in (old, recent, other):
        f.write_bytes(b"half a library")
    for f in (old, other):
        os.utime(f, (time.time() - 2 * native.STALE_BUILD_S,) * 2)
    assert _library(source).library() is not None
    assert not old.exists() and recent.exists() and other.exists()
