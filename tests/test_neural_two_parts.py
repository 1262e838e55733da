"""The network's evaluation in two parts of the grid, one per thread (engine.neural.two_parts):
the same field as the whole evaluation on one thread, for M and for a simulation's state, cut
along either side, on the worker itself, after an error, and only where it serves."""
from types import SimpleNamespace

import pytest
import torch

from engine.neural import overlap
from engine.neural.demag import ONE_THREAD, THREADS, TWO_PARTS, NeuralDemag
from engine.neural.two_parts import MIN_PART, TwoParts

D = (3e-9, 3e-9, 3e-9)


def _state(n, seed=5):
    nx, ny, _ = n
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(3, 1, ny, nx, dtype=torch.float64, generator=g)
    m /= m.norm(dim=0, keepdim=True)
    mask = torch.rand(1, ny, nx, generator=g) > 0.25           # holes: the mask must be applied
    Ms = torch.full((1, ny, nx), 8e5, dtype=torch.float64) * mask
    return SimpleNamespace(m=m, Ms=Ms, mask=mask)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


@pytest.mark.parametrize("n, side", [((96, 160, 1), "rows"), ((160, 72, 1), "columns")])
def test_two_parts_give_the_whole_evaluations_field(n, side, two_threads):
    nd = NeuralDemag(n, D)
    assert nd.fallback is None and nd.compiled is not None
    tp = nd._two_parts
    assert tp is not None and side in tp.backend
    longer = max(n[:2])
    assert tp.cut % nd.compiled.stem == 0 and MIN_PART <= tp.cut <= longer - MIN_PART
    assert tp.cut > longer // 2                                  # the worker's part is the larger
    st = _state(n)
    M = st.Ms * st.m
    nd.way = ONE_THREAD
    H1, Hs1 = nd.h_from_M(M), nd.h(st)
    nd.way = TWO_PARTS
    H2, Hs2 = nd.h_from_M(M), nd.h(st)
    assert float(H1.abs().max()) > 1e3                           # a field, not zeros
    _close(H2, H1)
    _close(Hs2, Hs1)
    assert Hs2.dtype == torch.float64 and bool((Hs2[:, :, ~st.mask[0]] == 0).all())
    assert torch.get_num_threads() == 2 and overlap.worker_threads() == 1


def test_two_parts_on_the_worker_itself_do_not_wait_on_it(two_threads):
    nd = NeuralDemag((96, 96, 1), D)
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(2)) * 8e5
    here = nd._two_parts(x)
    there = overlap.near_worker().submit(nd._two_parts, x).result(timeout=60)
    _close(there, here)


def test_the_worker_waits_for_the_levels_before_adding_them(monkeypatch, two_threads):
    """Slow levels (the worker's near field long done): U_0 over the worker's part must still be
    this input's, not the previous input's left in the level buffers."""
    import time
    nd = NeuralDemag((96, 96, 1), D)
    tp, g = nd._two_parts, torch.Generator().manual_seed(4)
    x1, x2 = (torch.randn(1, 3, 96, 96, generator=g) * 8e5 for _ in range(2))
    want = tp(x2)
    tp(x1)                                  # the level buffers now hold x1's levels
    features = nd.compiled.features

    def slow(x):
        time.sleep(0.05)
        features(x)
    monkeypatch.setattr(nd.compiled, "features", slow)
    _close(tp(x2), want)


def test_an_error_in_the_levels_reaches_the_caller_and_leaves_it_usable(monkeypatch, two_threads):
    nd = NeuralDemag((96, 96, 1), D)
    tp = nd._two_parts
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(3)) * 8e5
    good = tp(x)

    def broken(_):
        raise RuntimeError("levels failed")
    monkeypatch.setattr(nd.compiled, "features", broken)
    with pytest.raises(RuntimeError, match="levels failed"):
        tp(x)
    monkeypatch.undo()
    assert torch.get_num_threads() == 2
    _close(tp(x), good)


def test_two_parts_only_where_they_serve(monkeypatch, two_threads):
    monkeypatch.delenv("NMAG_NEURAL_SPLIT", raising=False)
    nd = NeuralDemag((96, 96, 1), D)
    assert set(nd.way_times_s) == {THREADS, "side by side", ONE_THREAD, TWO_PARTS}
    assert NeuralDemag((64, 48, 1), D)._two_parts is None       # too short to cut (2 MIN_PART + a stem)
    layered = NeuralDemag((96, 96, 2), D)
    assert layered.fallback is None and layered._two_parts is None   # U_0 tile by tile is for one layer
    assert TWO_PARTS not in (layered.way_times_s or {})
    assert TwoParts.build(None, nd.net.near_w, 96, 96) is None  # no compiled learned part
    torch.set_num_threads(1)
    one = NeuralDemag((96, 96, 1), D)                            # one thread: nothing to share
    assert one._two_parts is None and one.way == THREADS
