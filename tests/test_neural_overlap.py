"""The network's near field and learned part side by side on two threads (engine.neural.overlap):
the same numbers as one after the other, the thread counts left as they were, and a choice
NeuralDemag makes by timing both ways (or as NMAG_NEURAL_SPLIT forces it)."""
import multiprocessing
from types import SimpleNamespace

import pytest
import torch

from engine.neural import overlap
from engine.neural import demag as neural_demag
from engine.neural.demag import ONE_THREAD, SIDE_BY_SIDE, THREADS, NeuralDemag

D = (3e-9, 3e-9, 3e-9)


def _field(nd, M, split):
    nd.way = SIDE_BY_SIDE if split else THREADS
    return nd.h_from_M(M)


@pytest.mark.parametrize("kernel", ["", "0"])   # the learned part compiled where it can be, and torch's
@pytest.mark.parametrize("n", [(64, 48, 1), (40, 24, 2), (100, 25, 1)])
def test_split_gives_the_same_field_and_keeps_the_thread_counts(n, kernel, monkeypatch, two_threads):
    monkeypatch.setenv("NMAG_NEURAL_KERNEL", kernel)
    nd = NeuralDemag(n, D if n[:2] != (100, 25) else (5e-9, 5e-9, 3e-9))
    assert nd.fallback is None
    M = torch.randn(3, n[2], n[1], n[0], generator=torch.Generator().manual_seed(3)) * 8e5
    y_seq, y_split = _field(nd, M, False), _field(nd, M, True)
    assert torch.allclose(y_split, y_seq, rtol=1e-5, atol=1e-5 * float(y_seq.abs().max()))
    assert float(y_seq.abs().max()) > 1e3                     # a field, not zeros
    assert torch.get_num_threads() == 2 and overlap.worker_threads() == 1


def test_split_runs_the_eager_learned_part_where_none_was_traced(monkeypatch, two_threads):
    # without the compiled learned part, grids over 512^2 are not traced (NeuralDemag._traced_far):
    # NeuralDemag keeps net.far as its learned part, and side by side runs that
    monkeypatch.setenv("NMAG_NEURAL_KERNEL", "0")
    nd = NeuralDemag((64, 48, 1), D)
    assert nd.compiled is None
    M = torch.randn(3, 1, 48, 64, generator=torch.Generator().manual_seed(4)) * 8e5
    y_seq = _field(nd, M, False)
    nd._far = nd.net.far
    y_split = _field(nd, M, True)
    assert torch.allclose(y_split, y_seq, rtol=1e-5, atol=1e-5 * float(y_seq.abs().max()))


def test_split_restores_the_callers_threads_when_the_learned_part_fails(two_threads):
    nd = NeuralDemag((32, 32, 1), D)

    def broken(x):
        raise RuntimeError("learned part failed")
    with pytest.raises(RuntimeError, match="learned part failed"):
        overlap.split_forward(nd.net, broken, torch.zeros(1, 3, 32, 32))
    assert torch.get_num_threads() == 2


def test_the_choice_is_timed_on_two_threads_only(monkeypatch, two_threads):
    monkeypatch.delenv("NMAG_NEURAL_SPLIT", raising=False)
    nd = NeuralDemag((64, 64, 1), D)
    times = nd.way_times_s
    assert set(times) == {"threads", "side by side", "one thread"} and all(t > 0 for t in times.values())
    fastest = min(times, key=times.get)
    assert nd.way == (fastest if times[fastest] < 0.95 * times["threads"] else "threads")
    assert nd.split == (nd.way == "side by side") and nd.one_thread == (nd.way == "one thread")
    torch.set_num_threads(1)
    nd1 = NeuralDemag((64, 64, 1), D)
    assert nd1.way == "threads" and nd1.split is False and nd1.way_times_s is None
    torch.set_num_threads(2)   # beyond SPLIT_MAX_CELLS: not timed, each operation split
    monkeypatch.setattr(neural_demag, "SPLIT_MAX_CELLS", 64 * 64)
    big = NeuralDemag((80, 64, 1), D)
    assert big.way == "threads" and big.way_times_s is None
    assert NeuralDemag((64, 64, 1), D).way_times_s is not None
    monkeypatch.undo()
    monkeypatch.setenv("NMAG_NEURAL_SPLIT", "1")
    assert NeuralDemag((64, 64, 1), D).split is True
    monkeypatch.setenv("NMAG_NEURAL_SPLIT", "0")
    torch.set_num_threads(2)
    assert NeuralDemag((64, 64, 1), D).way == "threads"


def test_one_thread_way_gives_the_same_field_and_leaves_the_threads(monkeypatch, two_threads):
    """ONE_THREAD runs h and h_from_M on one thread (the near field's one-thread FFT and no
    worker) and gives the caller back its two threads; the field is the one of two threads."""
    monkeypatch.setenv("NMAG_NEURAL_SPLIT", "0")
    nd = NeuralDemag((96, 64, 1), D)
    g = torch.Generator().manual_seed(3)
    M = torch.randn(3, 1, 64, 96, generator=g) * 8e5
    H2 = nd.h_from_M(M)
    nd.way = ONE_THREAD
    calls = []
    run = nd._run
    monkeypatch.setattr(nd, "_run", lambda x: calls.append(torch.get_num_threads()) or run(x))
    H1 = nd.h_from_M(M)
    assert calls == [1] and torch.get_num_threads() == 2
    torch.testing.assert_close(H1, H2, rtol=1e-5, atol=1e-6 * float(H2.abs().max()))
    m = (M / M.norm(dim=0, keepdim=True)).double()
    state = SimpleNamespace(m=m, Ms=torch.full((1, 64, 96), 8e5, dtype=torch.float64),
                            mask=torch.ones(1, 64, 96, dtype=torch.bool))
    Hs = nd.h(state)
    assert torch.get_num_threads() == 2 and 1 in nd._buffer_plans   # the one-thread way's plan
    ref = nd.h_from_M(8e5 * m)
    torch.testing.assert_close(Hs, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()))


def _child(queue):
    # one thread: GNU OpenMP cannot start threads in a child forked after the parent used
    # them (torch itself hangs there, with or without this worker)
    torch.set_num_threads(1)
    nd = NeuralDemag((32, 32, 1), D)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 8e5
    with torch.no_grad():
        same = torch.allclose(overlap.split_forward(nd.net, nd._far, x), nd.net(x), rtol=1e-5, atol=1.0)
    queue.put((same, overlap.worker_threads()))


def test_a_forked_child_starts_its_own_worker(two_threads):
    overlap.near_worker()           # the parent's worker exists before the fork, not in the child
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(queue,))
    p.start()
    p.join(60)
    assert p.exitcode == 0, "the forked child hung or failed"
    assert queue.get(timeout=5) == (True, 1)
