"""The learned part compiled from C (engine.neural.compiled, kernels/far.c): the same operator as
the torch network for every member of the model card, on odd, small and folded grids; what
NeuralDemag runs where it is built; the torch path where it cannot be (no compiler, turned off);
and a cache folder that others could write is never loaded from."""
import os
import stat
import tempfile
import time
from pathlib import Path

import pytest
import torch

from engine.neural import compiled
from engine.neural.card import ModelCard
from engine.neural.compiled import CompiledFar
from engine.neural.demag import SIDE_BY_SIDE, THREADS, NeuralDemag
from engine.neural.weights import load_weights
from engine.resources import resource_path

needs_library = pytest.mark.skipif(compiled.library() is None, reason=f"no compiled kernel: {compiled.why_not()}")


def _members():
    return [m["file"] for m in ModelCard.load().members]


def _net(file):
    net = load_weights(str(resource_path("neural/" + file)))[0].eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@needs_library
@pytest.mark.parametrize("file", _members())
@pytest.mark.parametrize("ny, nx", [(25, 100), (47, 13), (64, 64), (101, 77)])
def test_the_compiled_learned_part_is_the_networks_operator(file, ny, nx, one_torch_thread):
    net = _net(file)
    net.fold(ny, nx)                              # torch's path folds the coarse levels, the compiled does not
    cf = CompiledFar.build(net, ny, nx)
    assert cf is not None
    # a magnetization with a mean (a far field to speak of: pure noise has almost none, and the
    # 40-cell members leave the learned part a few 1e-4 of such a field on these grids)
    x = 1.0 + torch.randn(1, net.cio, ny, nx, generator=torch.Generator().manual_seed(ny * nx))
    x[..., : ny // 3, : nx // 4] = 0          # a magnet that does not fill the grid
    with torch.no_grad():
        near = net.near(x)
        ref = net(x)
        out = cf(x, near.clone())
        alone = cf.prolonged()
        learned_ref = net.combine(torch.zeros_like(near), net.far(x))    # torch's learned part alone
    scale = float(ref.abs().max())
    learned = float(learned_ref.abs().max())
    assert learned > 2e-4 * scale                 # the learned part is a share of the field (4e-4 at least here)
    # against the learned part's own size, so that a 0.1 % error in it fails
    assert float((alone - learned_ref).abs().max()) < 1e-4 * learned
    assert float((out - ref).abs().max()) < 1e-4 * learned + 1e-6 * scale   # plus float32 rounding of the sum


@needs_library
def test_a_strided_input_and_a_strided_near_field_are_read_as_such(one_torch_thread):
    net = _net(_members()[0])
    ny, nx = 40, 60
    cf = CompiledFar.build(net, ny, nx)
    big = torch.randn(1, 3, ny, 2 * nx, generator=torch.Generator().manual_seed(2))
    x = big[..., ::2]                            # every other column: a view, not a copy
    assert not x.is_contiguous()
    with torch.no_grad():
        near = torch.randn(1, 3, ny + 5, nx + 7)[..., :ny, :nx]
        ref = net.combine(near, net.far(x.contiguous()))
        out = cf(x, near)
    assert out.data_ptr() != near.data_ptr()     # not written into a view of a larger buffer
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@needs_library
def test_neural_demag_runs_the_compiled_part_and_gives_the_networks_field(one_torch_thread):
    nd = NeuralDemag((64, 48, 1), (3e-9, 3e-9, 3e-9))
    assert nd.compiled is not None
    M = torch.randn(3, 1, 48, 64, generator=torch.Generator().manual_seed(4)) * 8e5
    with torch.no_grad():
        ref = nd.net(M[:, 0][None].float())[0][:, None]
    y = nd.h_from_M(M)
    assert torch.allclose(y, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_turned_off_it_is_the_torch_path_and_says_why(monkeypatch, one_torch_thread):
    monkeypatch.setenv("NMAG_NEURAL_KERNEL", "0")
    nd = NeuralDemag((64, 48, 1), (3e-9, 3e-9, 3e-9))
    assert nd.compiled is None and "NMAG_NEURAL_KERNEL" in compiled.why_not()
    M = torch.randn(3, 1, 48, 64, generator=torch.Generator().manual_seed(4)) * 8e5
    with torch.no_grad():
        ref = nd.net(M[:, 0][None].float())[0][:, None]
    assert torch.allclose(nd.h_from_M(M), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """The library built again into a cache folder of this test's own, then forgotten."""
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    compiled.forget()
    yield tmp_path / "cache" / "kernels"
    compiled.forget()


def test_without_a_compiler_the_torch_path_runs(monkeypatch, fresh_library, one_torch_thread):
    monkeypatch.setenv("CC", str(fresh_library.parent / "no-such-compiler"))
    assert compiled.library() is None
    assert "could not build" in compiled.why_not()
    nd = NeuralDemag((64, 48, 1), (3e-9, 3e-9, 3e-9))
    assert nd.compiled is None and nd.fallback is None   # the network, run by torch


@needs_library
def test_the_library_is_built_into_a_private_folder_and_reused(fresh_library):
    lib = compiled.library()
    assert lib is not None
    built = list(fresh_library.glob("far-*.so"))
    assert len(built) == 1
    assert stat.S_IMODE(os.stat(fresh_library).st_mode) & 0o077 == 0
    mtime = built[0].stat().st_mtime_ns
    compiled.forget()
    assert compiled.library() is not None
    assert built[0].stat().st_mtime_ns == mtime        # loaded, not built again


@needs_library
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_cache_others_could_write_is_made_private_and_its_library_built_again(fresh_library):
    assert compiled.library() is not None
    built = next(fresh_library.glob("far-*.so"))
    os.chmod(fresh_library, 0o777)                 # anyone could have put a library here
    os.chmod(built, 0o666)                         # or changed this one
    compiled.forget()
    assert compiled.library() is not None
    assert stat.S_IMODE(os.stat(fresh_library).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(built).st_mode) & 0o022 == 0   # a new file, not the writable one


@needs_library
def test_without_a_usable_cache_folder_it_builds_in_a_temporary_one(monkeypatch, tmp_path):
    (tmp_path / "kernels").write_text("a file where the folder should be")
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path))
    compiled.forget()
    before = set(Path(tempfile.gettempdir()).glob("nmag-kernels-*"))
    try:
        assert compiled.library() is not None     # built in a private temporary folder
    finally:
        compiled.forget()
    assert set(Path(tempfile.gettempdir()).glob("nmag-kernels-*")) == before   # and that removed


@needs_library
@pytest.mark.parametrize("ny, nx", [(1, 60), (60, 1), (3, 3), (2, 203), (5, 48), (49, 6)])
def test_slivers_and_specks_match_the_network(ny, nx, one_torch_thread):
    """Grids narrower than a pooled cell, shorter than MIN_SIDE, or one cell wide: the vacuum
    padding and the crops must agree with torch's to the cell."""
    net = _net(_members()[0])
    cf = CompiledFar.build(net, ny, nx)
    x = torch.randn(1, 3, ny, nx, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = net(x)
        out = cf(x, net.near(x))
    assert float((out - ref).abs().max()) < 1e-5 * float(ref.abs().max())


@needs_library
def test_u0_shared_with_a_helper_thread_gives_the_same_numbers(one_torch_thread):
    from engine.neural.overlap import near_worker
    net = _net(_members()[0])
    ny, nx = 517, 40                               # 130 coarse rows: shared, with an odd remainder
    cf = CompiledFar.build(net, ny, nx)
    x = torch.randn(1, 3, ny, nx, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        near = net.near(x)
        alone = cf(x, near)
        shared = cf(x, near, near_worker())
        ref = net(x)
    assert torch.equal(shared, alone)
    assert float((shared - ref).abs().max()) < 1e-5 * float(ref.abs().max())


@needs_library
@pytest.mark.parametrize("config", [dict(u0_kernel=1), dict(bottom=3), dict(bottom=0, coarsest=5),
                                    dict(coarsest=14, nz=3), dict(nz=4, aspect=2.0)])
def test_other_shapes_of_the_network_match_torch(config, one_torch_thread):
    """Configurations no shipped member has: U_0 1 x 1, odd or no bottom convolutions, other
    coarsest grids, served aspects (far_scale != 1)."""
    from engine.neural.lean import LeanFilmNet
    torch.manual_seed(11)
    net = LeanFilmNet(stem=4, near_radius=3, **config).eval()
    for p in net.parameters():
        p.requires_grad_(False)
        p.normal_(0.0, 0.3)                        # a learned part as large as the near field
    net.serve(net.config["aspect"] * 0.7)
    for ny, nx in [(37, 90), (130, 61)]:
        cf = CompiledFar.build(net, ny, nx)
        assert cf is not None
        x = torch.randn(1, net.cio, ny, nx, generator=torch.Generator().manual_seed(ny))
        with torch.no_grad():
            near, ref = net.near(x), net(x)
            out = cf(x, near)
        assert float((out - ref).abs().max()) < 1e-4 * float((ref - near).abs().max())


@needs_library
def test_inputs_it_cannot_read_are_refused(one_torch_thread):
    net = _net(_members()[0])
    cf = CompiledFar.build(net, 40, 50)
    good = torch.zeros(1, 3, 40, 50)
    for bad in (good.double(), torch.zeros(1, 3, 39, 50), torch.zeros(2, 3, 40, 50)):
        with pytest.raises(ValueError, match="float32 on the CPU of shape"):
            cf(bad, good)
        with pytest.raises(ValueError, match="float32 on the CPU of shape"):
            cf(good, bad)


@needs_library
def test_one_demag_called_from_two_threads_gives_each_its_own_field(one_torch_thread):
    import threading
    nd = NeuralDemag((96, 80, 1), (3e-9, 3e-9, 3e-9))
    Ms = [torch.randn(3, 1, 80, 96, generator=torch.Generator().manual_seed(k)) * 8e5 for k in range(2)]
    refs = [nd.h_from_M(M) for M in Ms]
    wrong = []

    def hammer(k):
        for _ in range(15):
            if not torch.equal(nd.h_from_M(Ms[k]), refs[k]):
                wrong.append(k)
    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_a_compiler_given_with_arguments_is_used(monkeypatch, fresh_library):
    import shutil
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("CC", f"{gcc} -pipe")
    assert compiled.library() is not None, compiled.why_not()


def test_a_library_that_does_not_load_leaves_the_torch_path(monkeypatch, fresh_library, one_torch_thread):
    def broken(lib):
        raise AttributeError("undefined symbol: nm_run")
    monkeypatch.setattr(compiled, "_declare", broken)
    assert compiled.library() is None
    nd = NeuralDemag((64, 48, 1), (3e-9, 3e-9, 3e-9))
    assert nd.compiled is None and nd.learned_part in ("traced", "eager") and nd.compiled_why


@needs_library
def test_a_build_says_so_and_removes_what_killed_builds_left(fresh_library, caplog):
    fresh_library.mkdir(parents=True, mode=0o700)
    old, recent = fresh_library / ".far-0.so.11.tmp", fresh_library / ".far-0.so.12.tmp"
    old.write_bytes(b"half a library")
    recent.write_bytes(b"a build running now")
    os.utime(old, (time.time() - 2 * compiled.STALE_BUILD_S,) * 2)
    with caplog.at_level("INFO", logger="engine.neural.compiled"):
        assert compiled.library() is not None
    assert any("building the network's learned part" in r.getMessage() for r in caplog.records)
    assert not old.exists() and recent.exists()     # another process's build may still be going


@needs_library
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_cache_below_a_folder_others_could_change_is_not_used(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)          # anyone could swap the cache folder for one of theirs
    monkeypatch.setenv("NMAG_CACHE_DIR", str(shared / "cache"))
    compiled.forget()
    try:
        assert compiled.library() is not None     # built in a private temporary folder instead
    finally:
        compiled.forget()
    assert not list((shared / "cache").rglob("far-*.so"))


def _film_state(n, dtype, seed=5):
    """A one-layer State (a disk, so the mask matters) with a random m."""
    from types import SimpleNamespace
    nx, ny, nz = n
    yy, xx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
    mask = (((xx - nx / 2) / (nx / 2)) ** 2 + ((yy - ny / 2) / (ny / 2)) ** 2 < 1)[None]
    m = torch.randn(3, nz, ny, nx, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    m = m / m.norm(dim=0, keepdim=True) * mask
    return SimpleNamespace(m=m, mask=mask, Ms=8e5 * mask.to(dtype))


def _buffered_backends():
    from engine.fft_backends import available_backends
    return [b for b in ("torch", "fftw") if b in available_backends()]


@needs_library
@pytest.mark.parametrize("backend", _buffered_backends())
@pytest.mark.parametrize("threads, n", [(1, (100, 25, 1)), (2, (100, 25, 1)), (2, (40, 520, 1))])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_simulation_writes_m_into_the_near_fields_buffer_and_gets_the_same_field(threads, n, dtype, backend,
                                                                                  monkeypatch):
    # (40, 520): 130 coarse rows, so on two threads U_0 shares its rows with the helper
    monkeypatch.setenv("NMAG_FFT", backend)   # the pipelines with an input buffer of their own
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        nd = NeuralDemag(n, (5e-9, 5e-9, 3e-9), dtype=dtype)
        nd.way = THREADS   # one way, as standard problem 4 runs
        st = _film_state(n, dtype)
        assert nd._buffer_plan(st) is not None   # the path under test is taken
        h = nd.h(st)
        ref = nd.h_from_M(st.Ms * st.m) * st.mask
        assert h.dtype == dtype and h.shape == st.m.shape
        assert torch.equal(h, ref)            # the same operations on the same float32 numbers
        assert torch.equal(nd.h(st), ref)     # and again: nothing left over in the buffers
    finally:
        torch.set_num_threads(before)


@needs_library
def test_a_pipeline_without_a_buffer_of_its_own_takes_the_general_path(monkeypatch, one_torch_thread):
    from engine.fft_backends import available_backends
    if "scipy" not in available_backends():
        pytest.skip("scipy's FFT is not installed")
    monkeypatch.setenv("NMAG_FFT", "scipy")
    nd = NeuralDemag((100, 25, 1), (5e-9, 5e-9, 3e-9), dtype=torch.float64)
    nd.way = THREADS
    st = _film_state((100, 25, 1), torch.float64)
    assert nd._buffer_plan(st) is None
    assert torch.equal(nd.h(st), nd.h_from_M(st.Ms * st.m) * st.mask)


@needs_library
def test_films_it_cannot_write_into_take_the_general_path(one_torch_thread):
    nd = NeuralDemag((32, 32, 2), (3e-9, 3e-9, 3e-9))
    assert nd.fallback is None and nd._buffer_plan(_film_state((32, 32, 2), torch.float64)) is None
    nd = NeuralDemag((32, 32, 1), (3e-9, 3e-9, 3e-9))
    nd.way = SIDE_BY_SIDE   # the near field runs on the worker
    assert nd._buffer_plan(_film_state((32, 32, 1), torch.float64)) is None


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_folders_others_could_change_are_named_and_sticky_ones_are_not(tmp_path):
    shared, sticky = tmp_path / "shared", tmp_path / "sticky"
    for d, mode in ((shared, 0o777), (sticky, 0o1777)):
        (d / "mine").mkdir(parents=True)
        os.chmod(d, mode)
    assert str(shared) in compiled._unsafe_ancestor(shared / "mine" / "kernels")
    assert compiled._unsafe_ancestor(sticky / "mine" / "kernels") is None       # as /tmp
    link = tmp_path / "link"
    link.symlink_to(shared / "mine")                 # the path as written looks safe, the real one is not
    assert str(shared) in compiled._unsafe_ancestor(link / "kernels")


@needs_library
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_cache_reached_through_a_link_below_a_shared_folder_is_not_used(monkeypatch, tmp_path, caplog):
    shared = tmp_path / "shared"
    (shared / "mine").mkdir(parents=True)
    os.chmod(shared, 0o777)
    (tmp_path / "link").symlink_to(shared / "mine")
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "link" / "cache"))
    compiled.forget()
    try:
        with caplog.at_level("INFO", logger="engine.neural.compiled"):
            assert compiled.library() is not None     # built in a private temporary folder instead
    finally:
        compiled.forget()
    assert not list((shared / "mine").rglob("far-*.so"))
    assert any("not cached" in r.getMessage() and str(shared) in r.getMessage() for r in caplog.records)


@needs_library
def test_the_state_path_reads_strided_m_and_refuses_what_it_cannot_read(monkeypatch, one_torch_thread):
    monkeypatch.setenv("NMAG_FFT", "torch")
    nd = NeuralDemag((100, 25, 1), (5e-9, 5e-9, 3e-9), dtype=torch.float64)
    nd.way = THREADS
    st = _film_state((100, 25, 1), torch.float64)
    plan = nd._buffer_plan(st)
    bound = plan.bound
    ref = nd.h_from_M(st.Ms * st.m) * st.mask
    strided = st.m.transpose(2, 3).contiguous().transpose(2, 3)     # the same m, columns outermost
    assert bound.takes_state(strided, st.Ms, st.mask)
    assert torch.equal(bound.field_of_state(strided, st.Ms, st.mask, plan), ref)
    assert not bound.takes_state(st.m.float(), st.Ms, st.mask)        # float32 states: the torch mask
    assert not bound.takes_state(st.m, st.Ms, st.mask.double())
    assert not bound.takes_state(st.m[:, :, :, :50], st.Ms, st.mask)
    assert bound.field_of_state(st.m.float(), st.Ms, st.mask, plan) is None


@needs_library
def test_the_state_program_follows_new_and_edited_inputs(monkeypatch, one_torch_thread):
    # field_of_state keeps its compiled records for one Ms and mask: an Ms or mask replaced by
    # another tensor, values edited in place, and m's layout changing between calls must all be
    # read as they are now, never from what the records held before
    monkeypatch.setenv("NMAG_FFT", "torch")
    n = (100, 25, 1)
    nd = NeuralDemag(n, (5e-9, 5e-9, 3e-9), dtype=torch.float64)
    nd.way = THREADS
    st = _film_state(n, torch.float64)

    def expect():
        return nd.h_from_M(st.Ms * st.m) * st.mask

    assert torch.equal(nd.h(st), expect())
    program = nd._buffer_plan(st).bound._program
    assert program is not None                                    # the path under test is taken
    st.Ms[:, :, :30] *= 0.5                                       # edited in place: same records
    assert torch.equal(nd.h(st), expect())
    assert nd._buffer_plan(st).bound._program is program
    st.Ms = st.Ms * 2.0                                           # another tensor: new records
    assert torch.equal(nd.h(st), expect())
    assert nd._buffer_plan(st).bound._program is not program
    st.mask = st.mask.clone()
    st.mask[:, :5] = False
    assert torch.equal(nd.h(st), expect())
    m = st.m
    st.m = m.transpose(2, 3).contiguous().transpose(2, 3)         # columns outermost, then back
    assert torch.equal(nd.h(st), expect())
    st.m = -m                                                     # a new m with other values
    assert torch.equal(nd.h(st), expect())
    st.m = m.float()                                              # a float32 state: the torch path
    assert torch.equal(nd.h(st), (nd.h_from_M(st.Ms.float() * st.m) * st.mask))


@needs_library
def test_the_state_program_switches_between_shared_and_unshared_rows(monkeypatch):
    # (40, 520): 130 coarse rows, so U_0's rows are shared when a helper is given; one BoundFar
    # called with and without one must rebuild its program each time, never mix the two
    from engine.neural.overlap import near_worker
    monkeypatch.setenv("NMAG_FFT", "torch")
    n = (40, 520, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nd = NeuralDemag(n, (5e-9, 5e-9, 3e-9), dtype=torch.float64)
        nd.way = THREADS
        st = _film_state(n, torch.float64)
        plan = nd._buffer_plan(st)
        ref = nd.h_from_M(st.Ms * st.m) * st.mask
        programs = []
        for helper in (near_worker(), None, near_worker()):
            with nd._evaluating:
                h = plan.bound.field_of_state(st.m, st.Ms, st.mask, plan, helper)
            assert torch.equal(h, ref)
            programs.append(plan.bound._program)
            assert programs[-1].sharing == (helper is not None) and (programs[-1].half is not None) == (helper is not None)
        assert programs[0] is not programs[1] and programs[1] is not programs[2]   # rebuilt at each switch
    finally:
        torch.set_num_threads(before)