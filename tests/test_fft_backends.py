"""The exact demag's FFT backends: each equals the others to float error, the choice is measured,
cached per shape and can be forced, and the physics checks hold with every backend."""
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import Problem, Simulation
from engine.demag import FFTDemag
from engine.errors import ProblemError
from engine import fft_backends as fb

ROOT = Path(__file__).resolve().parents[1]

HERE = fb.available_backends("cpu")
OPTIONAL = [b for b in ("scipy", "fftw") if b in HERE]
# every backend in every spectrum layout it can keep (a film's "xy": kx first, ky last)
LAYOUTED = OPTIONAL + ["torch@xy"] + (["scipy@yx"] if "scipy" in HERE else [])


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test measures into its own cache folder and sees no NMAG_FFT from outside."""
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NMAG_FFT", raising=False)
    return tmp_path / "cache"


def _random_M(n, dtype, seed=0):
    nx, ny, nz = n
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((3, nz, ny, nx), generator=g, dtype=torch.float64) - 0.5).to(dtype) * 8e5


GRIDS = [(16, 8, 1), (13, 7, 1), (12, 10, 3), (9, 1, 1), (1, 9, 4), (5, 6, 2), (40, 24, 1)]


@pytest.mark.parametrize("backend", LAYOUTED)
@pytest.mark.parametrize("n", GRIDS, ids=lambda n: "x".join(map(str, n)))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_backend_equals_torch_to_float_error(backend, n, dtype):
    d = (2e-9, 3e-9, 1.5e-9)
    if backend.endswith("@xy") and not fb.transposable(fb.padded_shape(n)):
        with pytest.raises(fb.BackendUnavailable, match="films of one layer"):
            FFTDemag(n, d, dtype, fft=backend)
        return
    M = _random_M(n, dtype)
    ref = FFTDemag(n, d, dtype, fft="torch").h_from_M(M)
    dem = FFTDemag(n, d, dtype, fft=backend)
    assert dem.backend == backend if fb.transposable(fb.padded_shape(n)) else dem.backend.split("@")[0] == backend.split("@")[0]
    got = dem.h_from_M(M)
    eps = 1e-13 if dtype == torch.float64 else 2e-6
    assert float((got - ref).abs().max() / ref.abs().max()) < eps


@pytest.mark.parametrize("backend", OPTIONAL + ["torch@xy"])
def test_repeated_calls_do_not_share_results(backend):
    """Buffer-reusing backends must not hand out a buffer the next call overwrites."""
    n, d = (10, 6, 1), (1e-9, 1e-9, 1e-9)
    dem = FFTDemag(n, d, torch.float64, fft=backend)
    H1 = dem.h_from_M(_random_M(n, torch.float64, 1))
    keep = H1.clone()
    dem.h_from_M(_random_M(n, torch.float64, 2))
    assert torch.equal(H1, keep)


@pytest.mark.parametrize("backend", LAYOUTED + ["torch"])
def test_field_of_a_state_written_into_the_input_buffer_equals_h_from_M(backend):
    """h(state) writes Ms m straight into a pipeline's padded input buffer (input_view) and
    transforms it in place; twice, so a buffer left dirty by the first call would show."""
    from types import SimpleNamespace
    n, d = (13, 7, 1), (1e-9, 2e-9, 1e-9)
    dem = FFTDemag(n, d, torch.float64, fft=backend)
    mask = (torch.rand((1, 1, 7, 13), generator=torch.Generator().manual_seed(3)) > 0.3).double()
    for seed in (1, 2):
        m = _random_M(n, torch.float64, seed) / 8e5
        state = SimpleNamespace(m=m, Ms=8e5 * mask, mask=mask)
        torch.testing.assert_close(dem.h(state), dem.h_from_M(8e5 * mask * m) * mask, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", OPTIONAL + ["torch@xy"])
def test_batched_film_falls_back_to_a_general_pipeline(backend):
    """A batch along the third-last axis (the data generator's use) gives each member's field."""
    n, d = (12, 8, 1), (1e-9, 1e-9, 2e-9)
    dem = FFTDemag(n, d, torch.float64, fft=backend)
    M = torch.stack([_random_M(n, torch.float64, s)[:, 0] for s in range(3)], dim=1)
    H = dem.h_from_M(M)
    for b in range(3):
        one = dem.h_from_M(M[:, b:b + 1].contiguous())
        torch.testing.assert_close(H[:, b:b + 1], one, rtol=0, atol=1e-9)


def test_auto_measures_once_then_reads_the_cache(private_cache):
    n, d = (24, 16, 1), (1e-9, 1e-9, 1e-9)
    dem = FFTDemag(n, d, torch.float32)
    data = json.loads((private_cache / "fft_backends.json").read_text())
    key = fb.shape_key(n, torch.float32, torch.get_num_threads())
    fwd, inv = data[key]["forward"], data[key]["inverse"]
    assert dem.backend == (fwd if fwd == inv else f"{fwd}+{inv}")
    padded = fb.padded_shape(n)
    assert set(data[key]["forward_ms"]) == set(data[key]["inverse_ms"]) == set(fb.candidates(HERE, padded))
    # the fastest forward + inverse of one layout was kept
    layout = lambda name: fb.make_pipeline(name, n, padded, torch.float32).layout  # noqa: E731
    f_ms, i_ms = data[key]["forward_ms"], data[key]["inverse_ms"]
    best = min(f_ms[f] + i_ms[i] for f in f_ms for i in i_ms if layout(f) == layout(i))
    assert f_ms[fwd] + i_ms[inv] == best and layout(fwd) == layout(inv) == data[key]["layout"]
    # a planted choice is obeyed: proof that the cache is read, not re-measured
    data[key]["forward"], data[key]["inverse"] = "torch", HERE[-1]
    (private_cache / "fft_backends.json").write_text(json.dumps(data))
    pipe, how = fb.choose_backend(n, padded, torch.float32)
    planted = fb.describe(fb._pair("torch", HERE[-1], {}, n, padded, torch.float32, "cpu", 1))
    assert how == "cached" and fb.describe(pipe) == planted


@pytest.mark.skipif("scipy" not in HERE, reason="scipy not installed")
def test_a_pair_keeps_one_spectrum_layout():
    """A film's scipy keeps the spectrum transposed (xy), FFTW cannot: a pair's name says which
    layout both directions keep, and a pair of two layouts is refused."""
    n, padded, dt = (16, 8, 1), (1, 16, 32), torch.float64
    pair = lambda f, i: fb.describe(fb._pair(f, i, {}, n, padded, dt, "cpu", 1))  # noqa: E731
    assert pair("scipy", "scipy") == "scipy"
    assert pair("torch", "scipy") == "torch@xy+scipy"
    assert pair("scipy", "torch") == "scipy@yx+torch"
    if "fftw" in HERE:
        assert pair("fftw", "scipy") == "fftw+scipy@yx"
    with pytest.raises(fb.BackendUnavailable, match="do not pair"):
        pair("torch@xy", "scipy@yx")
    assert fb.is_choice("torch@xy+scipy") and not fb.is_choice("fftw@xy") and not fb.is_choice("torch@zx")
    # what a sweep pins rebuilds the same pipeline, layout included
    forced = fb.make_pipeline("torch@xy", n, padded, dt)
    assert fb.describe(forced) == "torch@xy"
    assert fb.describe(fb.choose_backend(n, padded, dt, force=fb.describe(forced))[0]) == "torch@xy"
    # a 3D grid has one layout: scipy's default there is yx
    assert fb.describe(fb._pair("torch", "scipy", {}, (8, 8, 2), (4, 16, 16), dt, "cpu", 1)) == "torch+scipy"


@pytest.mark.parametrize("fwd", HERE)
@pytest.mark.parametrize("inv", HERE)
def test_every_forward_inverse_pair_equals_torch(fwd, inv):
    """Auto may pair the fastest forward of one backend with the fastest inverse of another."""
    n, d, dtype = (14, 9, 2), (2e-9, 1e-9, 3e-9), torch.float64
    padded = (4, 18, 28)
    pipe = fb._pair(fwd, inv, {}, n, padded, dtype, "cpu", 1)
    dem = FFTDemag(n, d, dtype, fft="torch")
    ref = dem.h_from_M(_random_M(n, dtype))
    dem._use_pipeline(pipe)
    got = dem.h_from_M(_random_M(n, dtype))
    assert float((got - ref).abs().max() / ref.abs().max()) < 1e-13


def test_a_damaged_cache_is_measured_again(private_cache):
    private_cache.mkdir(parents=True)
    (private_cache / "fft_backends.json").write_text("{ not json")
    pipe, how = fb.choose_backend((8, 8, 1), (1, 16, 16), torch.float64)
    assert how in ("measured", "only") and pipe.name in HERE


def test_environment_forces_a_backend(monkeypatch):
    monkeypatch.setenv("NMAG_FFT", "torch")
    assert FFTDemag((8, 8, 1), (1e-9,) * 3, torch.float64).backend == "torch"


def test_problem_file_forces_a_backend_and_refuses_unknown_ones():
    p = Problem.from_dict({"mesh": {"n": [16, 8, 1], "cell_nm": [2, 2, 2]},
                           "solver": {"fft": "torch"}})
    assert Simulation(p).demag.backend == "torch"
    with pytest.raises(ProblemError, match="solver.fft"):
        Problem.from_dict({"mesh": {"n": [16, 8, 1], "cell_nm": [2, 2, 2]}, "solver": {"fft": "mkl"}})


def test_missing_optional_backend_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(fb, "available_backends", lambda device="cpu": ("torch",))
    with pytest.raises(ProblemError, match="solver.fft.*pip install pyfftw"):
        Problem.from_dict({"mesh": {"n": [8, 8, 1], "cell_nm": [2, 2, 2]}, "solver": {"fft": "fftw"}})


def test_pyfftw_comes_without_its_scipy_and_dask_interfaces():
    # they took 0.4 s of every start; both stay importable afterwards (scipy and dask are
    # dependencies; pyfftw is in the test extra)
    import subprocess
    import sys
    code = ("import sys, engine.fft_backends as fb; have = fb.available_backends(); "
            "print(' '.join(have), 'scipy' in sys.modules, 'dask' in sys.modules); "
            "import scipy.fft, dask.array; print('imported later')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first = out.stdout.split("\n")[0].split()
    assert first[-2:] == ["False", "False"], out.stdout     # neither scipy nor dask loaded
    assert "imported later" in out.stdout


def _python_with(tmp_path, packages: dict, code: str):
    """Run code in a fresh interpreter with these stand-in packages first on its path:
    {"pyfftw/__init__.py": "raise ValueError(...)"}; returns the completed process."""
    import subprocess
    import sys
    for rel, text in packages.items():
        f = tmp_path / "fake" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]),
           "NMAG_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)


def test_a_broken_pyfftw_is_left_out_and_tried_once(tmp_path):
    # installed but failing to load (a numpy it was not built for raises ValueError): the engine
    # still imports, runs without FFTW, and never blocks scipy's and dask's imports again
    code = textwrap.dedent("""
        import builtins, sys
        import engine.fft_backends as fb
        assert "fftw" not in fb.available_backends()
        tried, real_import = [], builtins.__import__
        def counting(name, *args, **kw):
            if name == "pyfftw":
                tried.append(name)
            return real_import(name, *args, **kw)
        builtins.__import__ = counting
        fb.available_backends(), fb.available_backends()
        builtins.__import__ = real_import
        print("pyfftw imports after the first:", len(tried))
        from engine.demag import FFTDemag
        FFTDemag((8, 8, 1), (2e-9, 2e-9, 2e-9))
        print("ok")
        """)
    out = _python_with(tmp_path, {"pyfftw/__init__.py": "raise ValueError('numpy.dtype size changed')\n"}, code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pyfftw imports after the first: 0" in out.stdout and "ok" in out.stdout


def test_a_scipy_fft_that_is_found_but_does_not_import_is_skipped(tmp_path):
    # found by find_spec, broken on import: the automatic choice measures the others
    code = textwrap.dedent("""
        import engine.fft_backends as fb
        from engine.demag import FFTDemag
        d = FFTDemag((16, 8, 1), (2e-9, 2e-9, 2e-9))
        print("scipy listed:", "scipy" in fb.available_backends(), "chosen:", d.backend)
        """)
    out = _python_with(tmp_path, {"scipy/__init__.py": "",
                                  "scipy/fft/__init__.py": "raise ImportError('built for another numpy')\n"}, code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "scipy listed: True" in out.stdout and "scipy" not in out.stdout.split("chosen:")[1]


@pytest.mark.parametrize("backend", OPTIONAL)
def test_uniform_prism_average_field_matches_aharoni_with_every_backend(backend):
    """Physics with each backend: the mean H of a uniformly magnetized 10 x 6 x 3 prism of cubes
    equals -N_Aharoni Ms (published closed form; engine.demag's own test checks the formula)."""
    from test_demag import aharoni_factors
    n, d = (10, 6, 3), (1e-9, 1e-9, 1e-9)
    Ms = 8e5
    dem = FFTDemag(n, d, torch.float64, fft=backend)
    for axis in range(3):
        M = torch.zeros((3, 3, 6, 10), dtype=torch.float64)
        M[axis] = Ms
        H = dem.h_from_M(M)
        N = aharoni_factors(10.0, 6.0, 3.0)[axis]
        assert abs(-float(H[axis].mean()) / Ms - N) < 2e-6


@pytest.mark.skipif("scipy" not in HERE, reason="scipy not installed")
def test_problem_file_forces_a_forward_inverse_pair():
    p = Problem.from_dict({"mesh": {"n": [16, 8, 1], "cell_nm": [2, 2, 2]}, "solver": {"fft": "torch+scipy"}})
    assert Simulation(p).demag.backend == "torch@xy+scipy"   # scipy's film layout, kept by both
    for bad in ("torch+mkl", "torch@zx", "fftw@xy"):
        with pytest.raises(ProblemError, match="solver.fft"):
            Problem.from_dict({"mesh": {"n": [8, 8, 1], "cell_nm": [2, 2, 2]}, "solver": {"fft": bad}})
    with pytest.raises(ProblemError, match="solver.fft.*films of one layer"):
        Problem.from_dict({"mesh": {"n": [8, 8, 2], "cell_nm": [2, 2, 2]}, "solver": {"fft": "torch@xy"}})


@pytest.mark.skipif("fftw" not in HERE, reason="pyFFTW not installed")
def test_fftw_plans_made_in_several_threads_at_once_are_right():
    """FFTW's planner is global state: the app builds solvers in its engine thread and in
    others (probe, twin run). Plans made by four threads at once give torch's numbers."""
    import threading
    grids = [(24, 16, 1), (20, 12, 2), (18, 18, 1), (30, 10, 1)]
    d = (2e-9, 2e-9, 2e-9)
    errors, out = [], {}

    def build(n):
        try:
            dem = FFTDemag(n, d, torch.float64, fft="fftw")
            out[n] = dem.h_from_M(_random_M(n, torch.float64))
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(n,)) for n in grids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for n in grids:
        ref = FFTDemag(n, d, torch.float64, fft="torch").h_from_M(_random_M(n, torch.float64))
        assert torch.allclose(out[n], ref, rtol=1e-12, atol=1e-9 * float(ref.abs().max()))


@pytest.mark.skipif("scipy" not in HERE, reason="one backend: nothing is measured to choose by")
def test_fastest_padding_follows_the_measured_times(private_cache):
    """Of paddings that give the same convolution, the one whose chosen forward + inverse measured
    fastest; a forced backend measures nothing and keeps the first."""
    n, dt = (40, 24, 1), torch.float32
    paddings = [(1, 30, 45), (1, 32, 48)]
    first = fb.fastest_padding(n, paddings, dt, threads=1)
    data = json.loads((private_cache / "fft_backends.json").read_text())
    keys = [fb.shape_key(n, dt, 1, p) for p in paddings]
    assert all(k in data for k in keys)
    total = [data[k]["forward_ms"][data[k]["forward"]] + data[k]["inverse_ms"][data[k]["inverse"]] for k in keys]
    assert first == paddings[total.index(min(total))]
    # planted times decide, both ways round
    for slow in (0, 1):
        for i, k in enumerate(keys):
            data[k]["forward_ms"] = {name: (9.0 if i == slow else 1.0) for name in data[k]["forward_ms"]}
        (private_cache / "fft_backends.json").write_text(json.dumps(data))
        assert fb.fastest_padding(n, paddings, dt, threads=1) == paddings[1 - slow]
    assert fb.fastest_padding(n, paddings, dt, force="torch", threads=1) == paddings[0]


@pytest.mark.skipif("fftw" not in HERE, reason="pyFFTW not installed")
def test_fftw_wisdom_is_written_only_when_planning_added_to_it(monkeypatch, tmp_path):
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fb, "_WISDOM_LOADED", False)
    monkeypatch.setattr(fb, "_WISDOM_ON_DISK", None)
    writes = []
    real = fb.write_atomic
    monkeypatch.setattr(fb, "write_atomic", lambda path, text: (writes.append(path.name), real(path, text)))
    n = (36, 20, 1)
    fb.make_pipeline("fftw", n, fb.padded_shape(n), torch.float64)
    assert writes.count("fftw_wisdom.json") == 1            # a new shape: planned and saved
    fb.make_pipeline("fftw", n, fb.padded_shape(n), torch.float64)
    assert writes.count("fftw_wisdom.json") == 1            # planned from wisdom: nothing new to save
    assert json.loads((tmp_path / "fftw_wisdom.json").read_text())


@pytest.mark.skipif("scipy" not in HERE, reason="scipy not installed")
def test_a_padding_already_measured_is_chosen_without_building_its_pipelines(monkeypatch, tmp_path):
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NMAG_FFT", raising=False)
    n, pads = (30, 20, 1), [(1, 30, 40), (1, 32, 48)]
    first = fb.fastest_padding(n, pads, torch.float32, threads=1)      # measures both
    built = []
    monkeypatch.setattr(fb, "make_pipeline", lambda *a, **k: built.append(a) or (_ for _ in ()).throw(AssertionError))
    assert fb.fastest_padding(n, pads, torch.float32, threads=1) == first and built == []


def test_the_choice_file_is_parsed_again_only_when_it_changed(monkeypatch, tmp_path):
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path))
    assert fb._CHOICES.read() == {}
    fb._CHOICES.write({"a": {"forward": "torch"}})
    first = fb._CHOICES.read()
    assert first == {"a": {"forward": "torch"}}
    first["b"] = {}                                      # a caller's edit stays its own
    parsed = []
    real_loads = fb.json.loads
    monkeypatch.setattr(fb.json, "loads", lambda text: parsed.append(1) or real_loads(text))
    assert fb._CHOICES.read() == {"a": {"forward": "torch"}} and not parsed   # unchanged: not parsed
    fb._CHOICES.write({"a": {"forward": "fftw"}})        # another process (or this one) wrote it
    assert fb._CHOICES.read() == {"a": {"forward": "fftw"}} and parsed == [1]
    # a rewrite of the same size within one timestamp tick (as on a coarse-clock file system)
    path = tmp_path / "fft_backends.json"
    before = path.stat()
    path.write_text(path.read_text().replace("fftw", "ffte"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert fb._CHOICES.read() == {"a": {"forward": "ffte"}}
    path.write_text("not json")
    assert fb._CHOICES.read() == {}
