"""The lean network's near field by FFT over a grid padded by R (engine.neural.near_fft) and the
coarse-stem variant of the network (stem 4): both are the same linear operator as the direct
convolution / the autograd path, to float32 rounding, on odd grids, two layers and served aspects."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine import fft_backends as fb
from engine.neural.card import ModelCard
from engine.neural.demag import THREADS
from engine.neural.lean import LeanFilmNet, retargeted_near_kernel
from engine.neural.near_fft import NearFieldFFT, near_padded_shape, near_paddings, smooth_length
from engine.neural.weights import load_weights
from engine.resources import resource_path


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("nz,R,ny,nx", [(1, 4, 64, 64), (1, 8, 25, 100), (1, 2, 33, 47), (2, 4, 40, 24),
                                        (3, 3, 17, 31), (1, 4, 1, 40)])
def test_near_field_by_fft_is_the_direct_convolution(nz, R, ny, nx):
    """Circular convolution over a box only R cells longer (2 nz - 1 layer planes) is exact:
    every layer pair and every component, including the xz and yz couplings of layered films."""
    torch.manual_seed(1)
    w = torch.tensor(retargeted_near_kernel(0.7, 1.0, nz, R), dtype=torch.float32)
    x = torch.randn(1, 3 * nz, ny, nx)
    nf = NearFieldFFT(w, ny, nx)
    assert nf.padded[0] == (2 * nz - 1 if nz > 1 else 1) and nf.padded[1] >= ny + R
    ref = F.conv2d(x.double(), w.double(), padding=R).float()
    assert rel(nf(x), ref) < 1e-5
    again = nf(2 * x)   # buffers reused across calls; an earlier result is not overwritten
    assert rel(again, 2 * ref) < 1e-5


def test_smooth_lengths_are_the_smallest_with_small_prime_factors():
    def smooth(k, p):
        for q in (2, 3, 5):
            while q <= p and k % q == 0:
                k //= q
        return k == 1
    for n in range(1, 700):
        for p in (3, 5):
            want = next(k for k in range(n, 4 * n + 2) if smooth(k, p))
            assert smooth_length(n, p) == want, (n, p)
    assert smooth_length(1025) == 1080 and smooth_length(1025, 3) == 1152


def test_padded_shape_and_its_own_backend_choice():
    Pz, Py, Px = near_padded_shape(1, 1024, 512, 4)
    assert Pz == 1 and 1028 <= Py <= 1.06 * 1028 and 516 <= Px <= 1.06 * 516   # a fast length, a few cells over
    assert near_padded_shape(2, 1, 40, 8) == (3, 9, near_padded_shape(1, 1, 40, 8)[2])
    n = (64, 64, 1)
    assert fb.shape_key(n, torch.float32, 1) == fb.shape_key(n, torch.float32, 1, fb.padded_shape(n))
    assert fb.shape_key(n, torch.float32, 1, (1, 70, 70)) != fb.shape_key(n, torch.float32, 1)


@pytest.mark.parametrize("member", ["lean_nz1_dzdx1_R16.pt", "lean_nz2_dzdx1_R40.pt", "lean_nz3_dzdx1_R40.pt"])
def test_shipped_member_without_autograd_equals_the_autograd_path(member):
    """Inference (near field by FFT, in-place prolongation) and training (direct convolution,
    autograd) compute the same field, also after serve() changes the near kernel."""
    net, _ = load_weights(resource_path("neural/" + member))
    torch.manual_seed(2)
    for ny, nx in ((25, 100), (37, 64)):
        x = torch.randn(1, net.cio, ny, nx)
        with torch.no_grad():
            fast = net(x)
        assert rel(fast, net(x).detach()) < 1e-5
    import copy
    twin = copy.deepcopy(net)   # a copy of a network that has run (FFTW plans are not copied)
    with torch.no_grad():
        assert rel(twin(x), net(x)) < 1e-6
    a = net.config["aspect"] * 0.8
    net.serve(a)
    with torch.no_grad():
        fast = net(x)
    assert rel(fast, net(x).detach()) < 1e-5


@pytest.mark.parametrize("u0", [1, 3])
@pytest.mark.parametrize("ny,nx", [(64, 64), (25, 100), (33, 47), (7, 5)])
def test_stem4_network_is_one_linear_operator_on_any_grid(u0, ny, nx):
    torch.manual_seed(3)
    net = LeanFilmNet(stem=4, u0_kernel=u0, near_radius=6, near_full=2.0)
    x = torch.randn(1, 3, ny, nx)
    y = net(x).detach()
    assert y.shape == x.shape and torch.isfinite(y).all()
    with torch.no_grad():
        assert rel(net(x), y) < 1e-5
        assert rel(net(2 * x) + net(x), 3 * y) < 1e-5
        if net.fold(ny, nx) is not None:   # the folded deep levels are the same operator
            assert rel(net(x), y) < 1e-5
    # the learned part of a stem-4 network is far cheaper per cell than the stem-2 one
    assert net.far_macs_per_cell() < (0.25 if u0 == 1 else 0.6) * LeanFilmNet().far_macs_per_cell()


def test_old_configs_are_unchanged(tmp_path):
    """A network of the defaults writes no new config keys, so weights written before the stem
    option (generation 2) load with their own config."""
    from engine.neural.weights import save_weights
    save_weights(LeanFilmNet(nz=2, near_radius=4), tmp_path / "gen2.pt", {})
    net, _ = load_weights(tmp_path / "gen2.pt")
    assert not {"stem", "u0_kernel", "near_full"} & set(net.config)
    assert net.stem == 2 and net.u0_kernel == 3 and net.near_full == 1.0
    old, _ = load_weights(Path(__file__).parent / "data" / "gen2_nz2.pt")   # a real generation-2 file
    assert "stem" not in old.config and old.stem == 2 and old.R == 4 and old.config["nz"] == 2
    with torch.no_grad():
        assert old(torch.randn(1, 6, 20, 24)).shape == (1, 6, 20, 24)
    with pytest.raises(ValueError, match="stem 3"):
        LeanFilmNet(stem=3)


@pytest.mark.parametrize("nz,R", [(1, 8), (2, 4), (3, 3)])
def test_batched_near_field_by_fft_is_the_direct_convolution(nz, R):
    """Batches (training, held-out measurement) take the near field by torch.fft with the layers
    as channels: the same numbers as the direct convolution, for every layer pair."""
    torch.manual_seed(4)
    net = LeanFilmNet(nz=nz, near_radius=R, stem=4)
    x = torch.randn(3, 3 * nz, 29, 40)
    ref = F.conv2d(x.double(), net.near_w.double(), padding=R).float()
    assert rel(net.near(x), ref) < 1e-5
    y = net(x)   # with autograd: the learned part trains, the near part is data
    y.sum().backward()
    assert net.U0.weight.grad is not None and net.near_w.grad is None


@pytest.mark.parametrize("f", [2, 4])
@pytest.mark.parametrize("ny,nx", [(25, 100), (64, 64), (7, 9), (3, 5), (1, 1), (33, 2), (257, 255), (301, 256)])
def test_adding_the_coarse_field_without_a_shuffled_copy_is_exact(f, ny, nx):
    """forward() adds the learned part, shuffled up by the stem, to the near field through strided
    views (in place, or into a new tensor when the near field is a cropped view of an FFT buffer);
    sides the stem does not divide take their last rows and columns apart. Same numbers as the
    autograd path's pixel shuffle."""
    torch.manual_seed(2)
    u = torch.randn(1, 3 * f * f, -(-ny // f) + 2, -(-nx // f) + 2)
    a = torch.randn(1, 3, ny + 3, nx + 5)[..., 1:1 + ny, 2:2 + nx]    # a cropped, non-contiguous view
    ref = a + 0.5 * LeanFilmNet._up(u, (ny, nx), f)
    with torch.no_grad():
        into_new = LeanFilmNet._add_up(a, u, 0.5, f)
        in_place = LeanFilmNet._add_up(a.contiguous(), u, 0.5, f)
    assert torch.equal(into_new, ref) and torch.equal(in_place, ref)
    assert into_new.is_contiguous() and not a.is_contiguous()


def test_near_field_paddings_are_short_boxes_of_small_factors():
    """NearFieldFFT chooses between the smallest 5-smooth, 3-smooth and power-of-two boxes at
    least R longer, the latter two where not much longer (each exact: the wrap-around reads zeros)."""
    five, *rest = near_paddings(1, 256, 256, 10)
    assert five == (1, 270, 270) and rest == [(1, 288, 288)]            # 512: far too long
    assert near_paddings(3, 100, 25, 10)[0] == (5, 120, 36)
    assert near_paddings(1, 25, 100, 24) == [(1, 50, 125), (1, 54, 128), (1, 64, 128)]   # SP4's grid, R = 24
    for _, Py, Px in near_paddings(1, 1000, 37, 10):
        assert Py >= 1010 and Px >= 47
        for L in (Py, Px):
            for p in (2, 3, 5):
                while L % p == 0:
                    L //= p
            assert L == 1


def test_traced_network_of_a_small_grid_runs_its_folded_levels(monkeypatch):
    """Without the compiled learned part, NeuralDemag traces it per grid; on standard problem
    4's 100 x 25 grid the trace must take the fold (one matrix product for the deep levels), not
    every level again (a cache lookup by traced sizes missed it: 233 us against 162 us per
    call). Same field."""
    import collections
    from engine.neural.demag import NeuralDemag
    monkeypatch.setenv("NMAG_NEURAL_KERNEL", "0")
    nd = NeuralDemag((100, 25, 1), (5e-9, 5e-9, 3e-9), torch.float64)
    far = nd._run.keywords["far"]
    kinds = collections.Counter(n.kind() for n in far.inlined_graph.nodes())
    assert kinds["aten::mm"] == 1
    # the grid's sizes are constants of its trace: no shape reads or integer arithmetic per call
    assert kinds["aten::size"] == kinds["aten::Int"] == kinds["aten::floor_divide"] == 0, kinds
    x = torch.randn(1, 3, 25, 100, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        nd.net._folds.clear()
        assert rel(far(x), nd.net.far(x)) < 1e-5   # against every level run eagerly


# ----------------------------------------------------------------------------- tiles (overlap-save)
from engine.neural import near_fft as nfft   # noqa: E402


@pytest.mark.parametrize("nz,R,ny,nx,tile,shared", [(1, 4, 100, 70, (32, 30), False), (1, 10, 97, 131, (40, 64), False),
                                                    (2, 3, 45, 61, (20, 61), False), (3, 2, 33, 50, (33, 17), False),
                                                    (1, 4, 100, 70, (32, 30), True), (2, 3, 45, 61, (20, 20), True)])
def test_near_field_in_tiles_is_the_direct_convolution(nz, R, ny, nx, tile, shared):
    """Tiles that do not divide the grid, an axis left whole, layered films, tiles shared with the
    near-field worker: each tile's box holds its R-cell halo, so the circular convolution's
    wrap-around never reaches a kept cell."""
    torch.manual_seed(2)
    w = torch.tensor(retargeted_near_kernel(0.7, 1.0, nz, R), dtype=torch.float32)
    x = torch.randn(1, 3 * nz, ny, nx)
    own = torch.get_num_threads()
    nf = nfft.TiledNearFieldFFT(w, ny, nx, tile, shared=shared)
    assert torch.get_num_threads() == own and (nf.helper_box is not None) == shared
    assert nf.tiles == (-(-ny // tile[0]), -(-nx // tile[1]))
    ref = F.conv2d(x.double(), w.double(), padding=R).float()
    first = nf(x)
    assert rel(first, ref) < 1e-5
    assert rel(nf(2 * x), 2 * ref) < 1e-5 and rel(first, ref) < 1e-5   # fresh: not overwritten
    # the buffered path the network's h takes: M written into input_view, one output tensor
    nf.input_view().copy_(x[0].view(nz, 3, ny, nx).transpose(0, 1))
    out = nf.convolve_input()
    assert out is nf.convolve_input()
    assert rel(out.transpose(0, 1).reshape(1, 3 * nz, ny, nx), ref) < 1e-5


def test_halves_cut_the_longer_side_where_each_half_is_long_enough():
    assert nfft.halves(256, 256, 16) == [(128, 256)]
    assert nfft.halves(100, 300, 10) == [(100, 150)]
    assert nfft.halves(25, 100, 16) == []          # standard problem 4: halves of 25 rows are too short
    assert nfft.halves(200, 200, 16) == []         # 100 < 8 R


def test_tilings_keep_a_halo_budget_and_leave_short_axes_whole():
    # tiles as equal as the grid allows, each starting on a multiple of TILE_ALIGN (4) cells
    assert nfft.tilings(1024, 1024, 10) == [(172, 172), (256, 256), (344, 344)]
    assert nfft.tilings(1024, 1024, 24) == [(208, 208), (256, 256)]   # only boxes whose tiles are >= 8 R
    assert nfft.tilings(1024, 1024, 40) == []                    # a halo of 80 cells: never measured
    assert nfft.tilings(2000, 100, 10) == [(168, 100), (252, 100), (336, 100)]
    assert nfft.tilings(100, 100, 10) == []                       # fits one box of each size
    for n, R in ((1000, 10), (2048, 16), (517, 12), (1030, 16)):
        for (Ty, Tx), B in zip(nfft.tilings(n, n, R), nfft.TILE_BOXES):
            assert Ty == Tx <= B - 2 * R and Ty % nfft.TILE_ALIGN == 0 and -(-n // Ty) * Ty >= n
    # 2048 in boxes of 192: 13 tiles of 158 would do, 160 keeps every tile's start on the coarse grid
    assert nfft._tile_length(2048, 160) == 160 and nfft._tile_length(500, 171) == 168
    assert nfft._tile_length(150, 171) == 150                      # one tile: the axis stays whole


@pytest.fixture
def tile_cache(tmp_path, monkeypatch):
    """Tiles tried on small grids, in small boxes, measured into a private cache."""
    monkeypatch.setenv("NMAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NMAG_FFT", raising=False)
    monkeypatch.setattr(nfft, "TILE_MIN_CELLS", 64 * 64)
    monkeypatch.setattr(nfft, "SHARED_MIN_CELLS", 48 * 48)
    monkeypatch.setattr(nfft, "TILE_BOXES", (48, 64))
    return tmp_path / "cache" / nfft.CHOICE_FILE


@pytest.mark.skipif("scipy" not in fb.available_backends(), reason="one backend: nothing is measured")
def test_whole_or_tiles_is_measured_once_and_the_cached_choice_decides(tile_cache, one_torch_thread):
    import json
    w = torch.tensor(retargeted_near_kernel(1.0, 1.0, 1, 4), dtype=torch.float32)
    first = nfft.near_field_fft(w, 96, 80)
    data = json.loads(tile_cache.read_text())
    (key, rec), = data.items()
    assert key == "80x96x1:R=4:float32:threads=1"
    assert set(rec["ms"]) == {"whole"} | {f"{a}x{b}" for a, b in nfft.tilings(96, 80, 4)}
    fastest = min(rec["ms"], key=rec["ms"].get)
    tiled = fastest != "whole" and rec["ms"][fastest] <= nfft.TILE_GAIN * rec["ms"]["whole"]
    assert isinstance(first, nfft.TiledNearFieldFFT) == tiled
    # planted choices decide without measuring again, both ways round
    for planted, kind in ((list(nfft.tilings(96, 80, 4)[0]), nfft.TiledNearFieldFFT), (None, nfft.NearFieldFFT)):
        rec["tile"] = planted
        tile_cache.write_text(json.dumps(data))
        assert type(nfft.near_field_fft(w, 96, 80)) is kind
    # a choice no longer among the tilings (other boxes) is measured again
    rec["tile"] = [7, 7]
    tile_cache.write_text(json.dumps(data))
    nfft.near_field_fft(w, 96, 80)
    assert json.loads(tile_cache.read_text())[key]["tile"] != [7, 7]


@pytest.mark.skipif("scipy" not in fb.available_backends(), reason="one backend: nothing is measured")
def test_two_threads_also_measure_tiles_shared_with_the_worker(tile_cache, monkeypatch):
    import json
    w = torch.tensor(retargeted_near_kernel(1.0, 1.0, 1, 4), dtype=torch.float32)
    own = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first = nfft.near_field_fft(w, 96, 80)
        rec = json.loads(tile_cache.read_text())["80x96x1:R=4:float32:threads=2"]
        tiles = [f"{a}x{b}" for a, b in nfft.tilings(96, 80, 4)]
        cut = [f"{a}x{b}" for a, b in nfft.halves(96, 80, 4)]
        assert cut == ["48x80"] and cut[0] not in tiles
        assert set(rec["ms"]) == {"whole"} | set(tiles) | {t + " shared" for t in tiles + cut}
        assert getattr(first, "shared", False) == rec["shared"]
        # a record written before shared tiles were a way is measured again on two threads
        data = {"80x96x1:R=4:float32:threads=2": {"tile": None, "ms": {}}}
        tile_cache.write_text(json.dumps(data))
        nfft.near_field_fft(w, 96, 80)
        assert "shared" in json.loads(tile_cache.read_text())["80x96x1:R=4:float32:threads=2"]
        # and a planted shared choice decides
        tile_cache.write_text(json.dumps({"80x96x1:R=4:float32:threads=2": {"tile": list(nfft.tilings(96, 80, 4)[0]),
                                                                            "shared": True}}))
        got = nfft.near_field_fft(w, 96, 80)
        assert isinstance(got, nfft.TiledNearFieldFFT) and got.shared and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(own)


def test_small_grids_and_forced_backends_take_the_whole_grid(tile_cache, monkeypatch, one_torch_thread):
    w = torch.tensor(retargeted_near_kernel(1.0, 1.0, 1, 4), dtype=torch.float32)
    assert type(nfft.near_field_fft(w, 40, 40)) is nfft.NearFieldFFT           # below TILE_MIN_CELLS
    assert type(nfft.near_field_fft(w, 96, 80, fft="torch")) is nfft.NearFieldFFT
    monkeypatch.setenv("NMAG_FFT", "torch")
    assert type(nfft.near_field_fft(w, 96, 80)) is nfft.NearFieldFFT
    assert not tile_cache.exists()                                          # nothing was measured


def test_the_network_served_through_tiles_gives_the_same_field(tile_cache, monkeypatch, one_torch_thread):
    """NeuralDemag's buffered h (M written into the tiled near field's source buffer, the compiled
    learned part reading it there) and its near() against the whole grid's near field."""
    import json
    from engine.neural.demag import NeuralDemag
    n, R = (150, 200, 1), ModelCard.load().default_member()["near_radius"]
    monkeypatch.setattr(nfft, "TILE_BOXES", (2 * R + 8 * R,))   # tiles of at least 8 R cells
    tile = list(nfft.tilings(200, 150, R)[0])
    tile_cache.parent.mkdir(parents=True)
    tile_cache.write_text(json.dumps({f"150x200x1:R={R}:float32:threads=1": {"tile": tile}}))
    nd = NeuralDemag(n, (3e-9, 3e-9, 3e-9), dtype=torch.float64)
    nd.way = THREADS
    assert nd.member["near_radius"] == R
    g = torch.Generator().manual_seed(3)
    m = torch.randn(3, 1, 200, 150, dtype=torch.float64, generator=g)
    mask = torch.ones(1, 200, 150, dtype=torch.bool)
    mask[:, :30, :40] = False
    from types import SimpleNamespace
    st = SimpleNamespace(m=m / m.norm(dim=0, keepdim=True) * mask, mask=mask, Ms=8e5 * mask.double())
    h = nd.h(st)
    near = nd.net._near_fft[(200, 150, 1)]
    assert isinstance(near, nfft.TiledNearFieldFFT) and near.tile == tuple(tile)
    whole = nfft.NearFieldFFT(nd.net.near_w, 200, 150)
    nd.net._near_fft[(200, 150, 1)] = whole        # the same network with the whole grid's near field
    nd._buffer_plans.clear()
    ref = nd.h(st)
    assert float((h - ref).norm() / ref.norm()) < 1e-6


@pytest.mark.parametrize("tile", [(64, 48), (200, 52)])
def test_the_learned_part_added_tile_by_tile_gives_the_same_field(tile_cache, monkeypatch, one_torch_thread, tile):
    """Tiles starting on the coarse grid (multiples of 4; the last tiles cut by the grid's edge,
    an axis left whole): each tile's near field gathered straight from M (zero where the halo
    leaves the grid) and U_0 added over it (CompiledFar.in_tiles, BoundFar, StateProgram's masked
    pass) give h_from_M's and h's field of the whole grid's near field, call after call."""
    import json
    from types import SimpleNamespace
    from engine.neural import compiled
    from engine.neural.demag import NeuralDemag
    n, R = (150, 200, 1), ModelCard.load().default_member()["near_radius"]
    tile_cache.parent.mkdir(parents=True)
    tile_cache.write_text(json.dumps({f"150x200x1:R={R}:float32:threads=1": {"tile": list(tile)}}))
    monkeypatch.setattr(nfft, "tilings", lambda ny, nx, R: [tile])
    tiles_done = []
    real = compiled.CompiledFar.u0_tile
    monkeypatch.setattr(compiled.CompiledFar, "u0_tile", lambda self, *a, **k: tiles_done.append(a[2:4]) or real(self, *a, **k))
    nd = NeuralDemag(n, (3e-9, 3e-9, 3e-9), dtype=torch.float64)
    nd.way = THREADS
    if nd.compiled is None:
        pytest.skip(f"no compiled learned part here: {nd.compiled_why}")
    g = torch.Generator().manual_seed(7)
    mask = torch.ones(1, 200, 150, dtype=torch.bool)
    mask[:, :30, :40] = False
    states = []
    for _ in range(2):
        m = torch.randn(3, 1, 200, 150, dtype=torch.float64, generator=g)
        states.append(SimpleNamespace(m=m / m.norm(dim=0, keepdim=True) * mask, mask=mask, Ms=8e5 * mask.double()))
    got = [nd.h(st) for st in states]                                     # StateProgram, float64
    got32 = [nd.h(SimpleNamespace(m=st.m.float(), mask=st.mask, Ms=st.Ms.float())) for st in states]   # BoundFar
    got_M = [nd.h_from_M(st.Ms * st.m) for st in states]                 # CompiledFar.in_tiles
    near = nd.net._near_fft[(200, 150, 1)]
    assert isinstance(near, nfft.TiledNearFieldFFT) and near.tile == tile and nd.compiled.fuses(near)
    origins = sorted({(y, x) for y in range(0, 200, tile[0]) for x in range(0, 150, tile[1])})
    assert sorted(set(tiles_done)) == origins and len(tiles_done) == 6 * len(origins)
    nd.net._near_fft[(200, 150, 1)] = nfft.NearFieldFFT(nd.net.near_w, 200, 150)
    nd._buffer_plans.clear()
    for st, h, h32, hM in zip(states, got, got32, got_M):
        ref = nd.h(st)
        assert float((h - ref).norm() / ref.norm()) < 1e-6
        assert float((h32.double() - ref).norm() / ref.norm()) < 1e-5
        assert float((hM * st.mask - ref).norm() / ref.norm()) < 1e-6
        assert float((hM - nd.h_from_M(st.Ms * st.m)).norm() / ref.norm()) < 1e-6   # outside the mask too


def test_tiles_off_the_coarse_grid_or_layered_are_not_fused():
    """U_0 reads the level buffer from a tile's coarse cell: tiles starting between coarse cells
    (a cut at 75) or several layers (each component's layers are not one channel stride apart)
    keep the whole grid's U_0 pass; tiles shared with the worker share U_0 tile by tile."""
    from engine.neural.demag import NeuralDemag
    d = (3e-9, 3e-9, 3e-9)
    nd = NeuralDemag((150, 200, 1), d, dtype=torch.float32)
    if nd.compiled is None:
        pytest.skip(f"no compiled learned part here: {nd.compiled_why}")
    w, cf = nd.net.near_w, nd.compiled
    assert cf.fuses(nfft.TiledNearFieldFFT(w, 200, 150, (64, 48)))
    assert cf.fuses(nfft.TiledNearFieldFFT(w, 200, 150, (52, 150)))        # x left whole
    assert not cf.fuses(nfft.TiledNearFieldFFT(w, 200, 150, (200, 75)))    # the second tile starts at x = 75
    assert cf.fuses(nfft.TiledNearFieldFFT(w, 200, 150, (64, 48), shared=True))
    assert not cf.fuses(nfft.TiledNearFieldFFT(w, 200, 150, (100, 75), shared=True))
    assert not cf.fuses(nfft.NearFieldFFT(w, 200, 150))
    two = NeuralDemag((150, 200, 2), d, dtype=torch.float32)
    if two.compiled is not None and two.fallback is None:
        assert not two.compiled.fuses(nfft.TiledNearFieldFFT(two.net.near_w, 200, 150, (64, 48)))


@pytest.mark.parametrize("tile", [[100, 75], [100, 76]])
def test_the_network_through_tiles_shared_with_the_worker_gives_the_same_field(tile_cache, monkeypatch, tile):
    """On two threads with shared tiles: tiles off the coarse grid (x cut at 75) begin the
    worker's half of the near field before the learned part's levels (BoundFar, the state path,
    and CompiledFar.levels_then, h_from_M's); tiles on it (76) run the levels first, then half
    of the tiles with U_0 over each on the worker and half here (for_each_tile). Either way the
    same field as the whole grid's near field, in the state path and in h_from_M, call after call."""
    import json
    from types import SimpleNamespace
    from engine.neural import compiled
    from engine.neural.demag import NeuralDemag
    n, R = (150, 200, 1), ModelCard.load().default_member()["near_radius"]
    monkeypatch.setattr(nfft, "tilings", lambda ny, nx, R: [tuple(tile)])
    fused = tile[1] % 4 == 0
    on_threads = []
    real_u0 = compiled.CompiledFar.u0_tile
    monkeypatch.setattr(compiled.CompiledFar, "u0_tile",
                        lambda self, *a, **k: on_threads.append(nfft.on_worker()) or real_u0(self, *a, **k))
    tile_cache.parent.mkdir(parents=True)
    tile_cache.write_text(json.dumps({f"150x200x1:R={R}:float32:threads=2": {"tile": tile, "shared": True}}))
    begun = []
    real_begin = nfft.TiledNearFieldFFT.begin
    monkeypatch.setattr(nfft.TiledNearFieldFFT, "begin", lambda self, x=None: begun.append(x is None) or real_begin(self, x))
    own = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        nd = NeuralDemag(n, (3e-9, 3e-9, 3e-9), dtype=torch.float64)
        nd.way = THREADS
        begun.clear()
        on_threads.clear()
        g = torch.Generator().manual_seed(5)
        mask = torch.ones(1, 200, 150, dtype=torch.bool)
        mask[:, 150:, 100:] = False
        states = []
        for _ in range(2):
            m = torch.randn(3, 1, 200, 150, dtype=torch.float64, generator=g)
            states.append(SimpleNamespace(m=m / m.norm(dim=0, keepdim=True) * mask, mask=mask, Ms=8e5 * mask.double()))
        got = [nd.h(st) for st in states]
        assert begun == ([] if fused else [True, True])     # the state path began the worker's half itself
        got_M = [nd.h_from_M(st.Ms * st.m) for st in states]
        assert begun[2:] == ([] if fused else [False, False])   # h_from_M's levels_then: begun with x
        near = nd.net._near_fft[(200, 150, 2)]
        assert isinstance(near, nfft.TiledNearFieldFFT) and near.shared and near._pending is None
        # fused: 2 x 2 tiles, U_0 over the first two here and the other two on the worker, 4 calls
        assert sorted(on_threads) == ([False] * 8 + [True] * 8 if fused else [])
        nd.net._near_fft[(200, 150, 2)] = nfft.NearFieldFFT(nd.net.near_w, 200, 150)
        nd._buffer_plans.clear()
        for st, h, hM in zip(states, got, got_M):
            ref = nd.h(st)
            assert float((h - ref).norm() / ref.norm()) < 1e-6
            assert float((hM * st.mask - ref).norm() / ref.norm()) < 1e-6
    finally:
        torch.set_num_threads(own)
