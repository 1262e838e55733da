"""A lean linear multi-level network for the demagnetizing field of a film (generation 2).

Input  x = M / Ms_ref, (B, 3 nz, ny, nx), zero outside the magnet; the nz layers ride as
channels (layer-major: channel 3 l + i is component i of layer l), as in the published
two-layer film. Output H_d / Ms_ref, same shape.

Why this shape: H_d = -N * M is linear and translation invariant, its kernel is singular near
by and smooth far away. So the full-resolution work is only the *exact* near field (the Newell
tensor of the actual cell (1, 1, dz/dx) for the nearest (2R + 1)^2 columns (R = near_radius, by
member in the model card) and every pair of layers, windowed so the remainder is smooth: 1 up to
r = near_full, a cos^2 taper to 0 at R + 1/2), and every learned convolution runs on a grid
pooled by `stem` (2, or 4 for the generation-2b members) or coarser:

    p_1 = avgpool_stem(x);     a_1 = E_1(p_1)                      (3 nz -> c channels)
    a_l = E(avgpool2(a_{l-1}))                   l = 2 .. L        (weights shared, c -> c)
    d_L = B(a_L)                                  a few 3x3 convs on the coarsest (<= 6 cells) grid
    d_l = a_l + 1/2 crop(shuffle(U_l(d_{l+1})))  l = L-1 .. 1      (U shared from l = 2)
    H   = near(x) + crop(shuffle(U_0(d_1)))       U_0: c -> stem^2 * 3 nz, pixel shuffle to full res

Every convolution is without bias or activation (3 x 3; U_0 3 x 3 or 1 x 1), so the whole map
is linear in M (it scales with Ms by construction) and costs O(N): the learned part 510
multiply-adds per cell for stem 2, c = 8, and 290 for stem 4 (far_macs_per_cell()). The near
field is a short convolution that inference computes by FFT over the grid padded by R
(engine.neural.near_fft: exact, about a quarter of the exact FFT demag's transform size, the same
cost for any R), so a wide exact near field is cheap and lets the learned part start on the
coarser grid. Each level adds a vacuum halo of one coarse cell (convolutions with padding 2 on
the pooled grid), so fields spread into the space around the magnet and come back, as open
boundaries require, without padding the grid to a power of two. Shared weights from level 2
down with the 1/2 per level carry the self-similar far field (~ t dx dy / r^3) to any depth,
so one set of weights serves any grid size.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# the shortest longer side of a grid the learned part runs on (LeanFilmNet._deep_enough): a side of
# 41 or more gives the four levels that every training grid had (40 gives three)
MIN_SIDE = 48

COMPONENT_INDEX = {"xx": (0, 0), "xy": (0, 1), "xz": (0, 2), "yy": (1, 1), "yz": (1, 2), "zz": (2, 2)}


def near_kernel(aspect: float, nz: int = 1, R: int = 2, r_full: float = 1.0, window: bool = True) -> np.ndarray:
    """Exact Newell kernel of cells (1, 1, aspect) for lateral offsets |dx|, |dy| <= R and every
    pair of the nz layers, as a conv2d weight (3 nz, 3 nz, 2R+1, 2R+1) with H = conv(M), sign
    included. With `window`, a smooth window (1 up to r_full, cos^2 taper to 0 at R + 0.5)
    leaves the network a smooth remainder (an Ewald-like split)."""
    from ..demag_kernel import PARITY, demag_tensor_quadrant
    q = demag_tensor_quadrant((R + 1, R + 1, nz), (1.0, 1.0, float(aspect)))
    C, K = 3 * nz, 2 * R + 1
    w = np.zeros((C, C, K, K))
    # conv2d reads the source at target + (k - R): target - source = R - k (whole arrays: a
    # loop over the taps took 10 ms a kernel, four kernels for a served member)
    ky, kx = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
    ox, oy = R - kx, R - ky
    win = np.ones((K, K))
    if window:
        for a in range(K):
            for b in range(K):
                r = math.hypot(ox[a, b], oy[a, b])
                if r > r_full:
                    win[a, b] = math.cos(0.5 * math.pi * min(1.0, (r - r_full) / (R + 0.5 - r_full))) ** 2
    sx, sy = np.sign(ox), np.sign(oy)
    for lo in range(nz):
        for li in range(nz):
            oz = lo - li                      # target minus source, in layers
            for c, (i, j) in COMPONENT_INDEX.items():
                px, py, pz = PARITY[c]
                s = (sx if px < 0 else 1) * (sy if py < 0 else 1) * (np.sign(oz) if pz < 0 else 1)
                v = -q[c][abs(oz)][np.abs(oy), np.abs(ox)] * s * win
                w[3 * lo + i, 3 * li + j] = v
                w[3 * lo + j, 3 * li + i] = v
    return w


def retargeted_near_kernel(aspect: float, trained_aspect: float, nz: int = 1, R: int = 2,
                           r_full: float = 1.0) -> np.ndarray:
    """The near kernel that lets a network trained for cells (1, 1, trained_aspect) serve cells
    (1, 1, aspect), with its learned far part scaled by s = aspect / trained_aspect.

    Why it works: beyond a few cells a column of nz cells acts as a dipole sheet, whose field
    grows with the cell's height, so the learned remainder (1 - W) K_a0 times s is K_a's
    remainder up to terms that fall off faster than 1 / r^3 with the lateral distance r. Within
    the (2R + 1)^2 support this kernel is exact for K_a:
        near = K_a - s (1 - W) K_a0,   so   near + s * learned ~ K_a.
    At aspect == trained_aspect it is the windowed kernel W K_a0 itself. What is left is
    (K_a - s K_a0) beyond R, measured on held-out textures for each member's dz/dx range."""
    s = float(aspect) / float(trained_aspect)
    exact = near_kernel(aspect, nz, R, window=False)
    k0 = near_kernel(trained_aspect, nz, R, window=False)
    return exact - s * (k0 - near_kernel(trained_aspect, nz, R, r_full))


def _conv(cin, cout, scale=1.0):
    c = nn.Conv2d(cin, cout, 3, bias=False)
    nn.init.normal_(c.weight, std=scale / math.sqrt(9 * cin))
    return c


def layered_from_one_layer(state: dict, nz: int) -> dict:
    """The learned weights of a one-layer member (a state_dict) laid out for a film of nz layers
    of the same cell: E_1 reads the sum of the layers and U_0 gives every layer the same far
    field. Beyond the exact near part (R >= 20 cells) the kernel between two layers at a lateral
    distance r differs from the in-layer one by about (layer offset / r)^2, so this is the
    layered film's far field to that order: a start for training, not a served member
    (measured: docs/neural.md, "One member per nz from the one-layer member")."""
    out = dict(state)
    e1, u0 = state["E1.weight"], state["U0.weight"]
    if e1.shape[1] != 3 or u0.shape[0] % 3:
        raise ValueError(f"layered_from_one_layer: E_1 reads {e1.shape[1]} channels, a one-layer member reads 3")
    out["E1.weight"] = e1.repeat(1, nz, 1, 1)
    # U_0's outputs are (channel, stem x stem position) for pixel_shuffle, channel 3 l + i for
    # component i of layer l: the one-layer block repeated for every layer
    out["U0.weight"] = u0.repeat(nz, 1, 1, 1)
    return out


class LeanFilmNet(nn.Module):
    """See the module docstring. config: nz layers, cell aspect dz/dx, width c, near radius,
    number of bottom convolutions, the coarsest grid's side; `stem` (2 or 4): the pooling before
    the first learned convolution, so the learned work starts on a grid of 1/stem^2 of the cells,
    and U_0 prolongs by pixel shuffle over stem x stem cells; `u0_kernel` (3 or 1): U_0's size;
    `near_full`: the radius (cells) up to which the near field is the whole kernel (the window
    tapers from there to R + 1/2). Older weights carry none of the last three: 2, 3, 1.0."""

    def __init__(self, nz: int = 1, aspect: float = 1.0, channels: int = 8, near_radius: int = 2,
                 bottom: int = 2, coarsest: int = 6, stem: int = 2, u0_kernel: int = 3, near_full: float = 1.0):
        super().__init__()
        if stem not in (2, 4) or u0_kernel not in (1, 3):
            raise ValueError(f"LeanFilmNet: stem {stem} (allowed 2, 4), u0_kernel {u0_kernel} (allowed 1, 3)")
        self.config = dict(arch="lean", nz=int(nz), aspect=float(aspect), channels=int(channels),
                           near_radius=int(near_radius), bottom=int(bottom), coarsest=int(coarsest))
        if (stem, u0_kernel, near_full) != (2, 3, 1.0):   # older configs stay as they were
            self.config.update(stem=int(stem), u0_kernel=int(u0_kernel), near_full=float(near_full))
        c, C = int(channels), 3 * int(nz)
        self.nz, self.c, self.cio, self.R, self.coarsest = int(nz), c, C, int(near_radius), int(coarsest)
        self.stem, self.u0_kernel, self.near_full = int(stem), int(u0_kernel), float(near_full)
        self.E1 = _conv(C, c)
        self.E = _conv(c, c)
        self.B = nn.ModuleList([_conv(c, c) for _ in range(bottom)])
        self.U1 = _conv(c, 4 * c)
        self.U = _conv(c, 4 * c)
        self.U0 = nn.Conv2d(c, self.stem ** 2 * C, self.u0_kernel, bias=False)
        nn.init.normal_(self.U0.weight, std=0.01 / math.sqrt(self.u0_kernel ** 2 * c))   # starts near the exact near field alone
        # computed from the config (exact for the cell), so not stored with the learned weights
        self._folds = {}   # (ny, nx) -> (level index, dense map), see fold()
        self.register_buffer("near_w", torch.tensor(near_kernel(aspect, nz, self.R, self.near_full), dtype=torch.float32),
                             persistent=False)
        self.served_aspect, self.far_scale = float(aspect), 1.0
        # near field by FFT, built per grid (see near()): (ny, nx, threads) -> near_fft.near_field_fft's choice for one
        # sample, ("batch", ny, nx) -> BatchedNearFFT; rebuilt after serve() and never copied
        self._near_fft = {}

    def __getstate__(self):
        """Copies (copy.deepcopy, pickling) leave the FFT caches behind: FFTW plans cannot be
        copied, and a copy rebuilds them on its first call."""
        state = dict(super().__getstate__())
        state["_near_fft"] = {}
        return state

    def serve(self, aspect: float) -> "LeanFilmNet":
        """Serve cells of dz/dx = aspect with weights trained for config["aspect"]: the exact
        near kernel of the new cell (retargeted_near_kernel) and the learned part scaled by
        aspect / trained aspect. Which aspects a member may serve, and how well, is the model
        card's business (its dz/dx ranges, measured on held-out textures)."""
        a0 = self.config["aspect"]
        w = retargeted_near_kernel(aspect, a0, self.nz, self.R, self.near_full)
        self.near_w = torch.tensor(w, dtype=self.near_w.dtype, device=self.near_w.device)
        self._near_fft = {}
        self.served_aspect, self.far_scale = float(aspect), float(aspect) / a0
        return self

    # ------------------------------------------------------------------ the operator
    @staticmethod
    def _down(a):
        """2x2 average pooling (rows, then columns: measured here several times faster than
        avg_pool2d on CPU); an odd side gets one vacuum cell first."""
        h, w = a.shape[-2:]
        if (h | w) & 1:
            a = F.pad(a, (0, w & 1, 0, h & 1))
        r = a[..., ::2, :] + a[..., 1::2, :]
        return (r[..., ::2] + r[..., 1::2]).mul_(0.25)

    @staticmethod
    def _up(d, n, f=2):
        """Pixel shuffle by f to the finer grid and crop to its n = (h, w) cells (the halo of the
        coarser level is one coarse cell = f fine cells on each side)."""
        u = F.pixel_shuffle(d, f)
        return u[..., f:f + n[0], f:f + n[1]]

    @staticmethod
    def _add_up(a, u, alpha=1.0, f=2):
        """a + alpha * _up(u, a's grid, f); the same numbers either way. Without autograd, added
        through strided views, with no shuffled copy of u: in place when a is contiguous, else
        into a new tensor in the same pass (the near field by FFT is a cropped view: copying it
        first, then shuffling u, took 9 ms of 53 at 1024^2, against 4 ms this way). Sides that
        f does not divide get their last fine rows and columns from a shuffle of one coarse row
        or column; on small grids (fewer than 65,536 cells) such sides take the shuffled copy,
        two operations instead of five (standard problem 4's 100 x 25 grid: 60 us per call)."""
        B, C, h, w = a.shape
        if torch.is_grad_enabled() or ((h % f or w % f) and h * w < 65536):
            return torch.add(a, LeanFilmNet._up(u, (h, w), f), alpha=alpha)
        out = a if a.is_contiguous() else torch.empty((B, C, h, w), dtype=a.dtype, device=a.device)
        H, W = h // f, w // f            # whole coarse cells
        hm, wm = H * f, W * f
        if H and W:
            uc = u[:, :, 1:1 + H, 1:1 + W].reshape(B, C, f, f, H, W).permute(0, 1, 4, 2, 5, 3)
            torch.add(a[..., :hm, :wm].view(B, C, H, f, W, f), uc, alpha=alpha,
                      out=out[..., :hm, :wm].view(B, C, H, f, W, f))
        if hm < h:    # the last fine rows: one coarse row, shuffled
            rows = F.pixel_shuffle(u[:, :, 1 + H:2 + H, 1:], f)[..., :h - hm, :w]
            torch.add(a[..., hm:, :], rows, alpha=alpha, out=out[..., hm:, :])
        if wm < w and hm:    # the last fine columns of the rows above
            cols = F.pixel_shuffle(u[:, :, 1:1 + H, 1 + W:2 + W], f)[..., :w - wm]
            torch.add(a[..., :hm, wm:], cols, alpha=alpha, out=out[..., :hm, wm:])
        return out

    @staticmethod
    def _deep_enough(x):
        """x padded with vacuum (zeros, after its last row or column) to MIN_SIDE cells along its
        longer side when it is shorter: the number of levels follows the longer side, and a grid
        of 40 cells or fewer a side has fewer levels than any grid the members were trained on
        (64^2 and 40 x 160 have four or more), which measured 4-30 % for uniform states on 24^2 to
        40^2 squares against 0.8-1 % with the padding. Vacuum leaves the exact field unchanged,
        so this is the same network on a grid it knows, not a correction; the prolongation's
        crop (_up, _add_up) brings the output back to the grid."""
        h, w = x.shape[-2:]
        H, W = LeanFilmNet.deep_enough_shape(h, w)
        return x if (H, W) == (h, w) else F.pad(x, (0, W - w, 0, H - h))

    @staticmethod
    def deep_enough_shape(h: int, w: int) -> tuple:
        """The grid (rows, columns) that _deep_enough pads an (h, w) grid to."""
        if max(h, w) >= MIN_SIDE:
            return h, w
        return (h, MIN_SIDE) if w >= h else (MIN_SIDE, w)

    def _stem(self, x):
        """The first learned level: x pooled to 1/stem of its side, then E_1."""
        p = self._down(self._deep_enough(x))
        if self.stem == 4:
            p = self._down(p)
        return F.conv2d(p, self.E1.weight, padding=2)

    def _encode_from(self, a):
        """Encoder levels below a[-1] (appended in place) down to the coarsest grid."""
        while max(a[-1].shape[-2:]) > self.coarsest:
            a.append(F.conv2d(self._down(a[-1]), self.E.weight, padding=2))
        return a

    def _decode(self, a, d, start, stop=0, offset=0):
        """Decoder from d (at level index start + 1) back to level index stop; a[l] is level
        index l + offset (level l + offset + 1)."""
        for l in range(start, stop - 1, -1):
            W = self.U1.weight if l + offset == 0 else self.U.weight
            d = self._add_up(a[l], F.conv2d(d, W, padding=1), 0.5)
        return d

    def _bottom(self, d):
        for b in self.B:
            d = F.conv2d(d, b.weight, padding=1)
        return d

    def far(self, x):
        """The learned part before its last pixel shuffle: (B, 4 x 3 nz, ceil(ny/2) + 2, ...);
        forward() adds _up() of it to the near field."""
        a = [self._stem(x)]
        # int(): under torch.jit.trace the sizes are traced values, which never matched the
        # cache's keys, so NeuralDemag's traced graph ran every level (SP4's grid: 233 us against
        # 162 us with the fold); the trace is kept for its own grid only, so baking it in is right
        fold = self._folds.get((int(x.shape[-2]), int(x.shape[-1]))) if not self.training else None
        if fold is not None:
            # levels below index k as one precomputed linear map (exact refactoring, see fold())
            k, D = fold
            while len(a) <= k:
                a.append(F.conv2d(self._down(a[-1]), self.E.weight, padding=2))
            ak = a[k]
            d = torch.mm(ak.reshape(ak.shape[0], -1), D.to(ak.dtype)).reshape(ak.shape)
            d = self._decode(a, d, k - 1)
        else:
            self._encode_from(a)
            d = self._decode(a, self._bottom(a[-1]), len(a) - 2)
        return F.conv2d(d, self.U0.weight, padding=self.u0_kernel // 2)

    @torch.no_grad()
    def fold(self, ny: int, nx: int, max_values: int = 512) -> int | None:
        """For a (ny, nx) grid, precompute the map from the features of the shallowest level
        (index >= 1) holding at most max_values numbers to that level's decoder output: all
        deeper levels in one matrix product. The network stays the same linear operator (to
        float rounding); on small grids (standard problem 4: 100 x 25) it saves most of the
        small per-level operations. The matrix (max_values^2 floats, 1 MB) stays in the cache:
        at 100 x 25, 512 values took the learned part 336 -> 250 us against 1024 (a 3.2 MB matrix
        read from memory per call). Returns the level index, or None when no level fits."""
        a = [self._stem(torch.zeros(1, self.cio, ny, nx, dtype=self.E.weight.dtype, device=self.E.weight.device))]
        self._encode_from(a)
        k = next((i for i in range(1, len(a) - 1) if a[i][0].numel() <= max_values), None)
        if k is None:
            return None
        c, h, w = a[k].shape[1:]
        N = c * h * w
        basis = torch.eye(N, dtype=a[k].dtype, device=a[k].device).reshape(N, c, h, w)
        sub = self._encode_from([basis])
        out = self._decode(sub, self._bottom(sub[-1]), len(sub) - 2, stop=0, offset=k) if len(sub) > 1 else self._bottom(basis)
        # _decode with stop = 0 ends at sub[0]: the level-k output with its skip a_k included
        self._folds[(ny, nx)] = (k, out.reshape(N, N).contiguous())
        return k

    def near(self, x, fresh: bool = True):
        """The exact near field at full resolution. Without autograd, for one float32 CPU
        sample, by FFT over the grid padded by R (engine.neural.near_fft: measured here 2.5x
        faster than the direct convolution at 256^2 and 1024^2, and its cost does not grow
        with R; fresh=False may return a view of its buffer, overwritten by the next call);
        batches on the CPU (training) by a batched torch.fft; else (a GPU, R <= 2) the direct
        convolution."""
        from . import near_fft
        ny, nx = x.shape[-2:]
        if not torch.is_grad_enabled() and x.device.type == "cpu" and x.shape[0] == 1 and x.dtype == torch.float32:
            key = (ny, nx, torch.get_num_threads())   # the pipelines take their thread count when built
            return self._near_fft_for(key, near_fft.near_field_fft, ny, nx)(x, fresh)
        if self.R >= 3 and x.device.type == "cpu":
            # batches (training, held-out measurement): by torch.fft; the near kernel is fixed and
            # x is data, so no gradient flows through this part
            return self._near_fft_for(("batch", ny, nx), near_fft.BatchedNearFFT, ny, nx)(x.detach())
        return F.conv2d(x, self.near_w.to(x.dtype), padding=self.R)

    def _near_fft_for(self, key, kind, ny, nx):
        """The near-field FFT of `kind` for an (ny, nx) grid, cached under `key`, built from
        near_w on first use."""
        nf = self._near_fft.get(key)
        if nf is None:
            nf = self._near_fft[key] = kind(self.near_w, ny, nx)
        return nf

    def forward(self, x, far=None):
        """H / Ms_ref of x = M / Ms_ref; `far` replaces self.far (NeuralDemag passes a traced
        copy of it: the near field's FFT runs outside torch and cannot be traced)."""
        return self.combine(self.near(x), (far or self.far)(x))

    def combine(self, near, far_out, far_scale=None):
        """The field from the near field and the learned part's output (forward's last step; the
        two branches may be computed apart, engine.neural.overlap). far_scale: the learned part's
        factor when not the served one (training at several cells, engine.neural.train)."""
        return self._add_up(near, far_out, self.far_scale if far_scale is None else far_scale, self.stem)

    # ------------------------------------------------------------------ bookkeeping
    def n_params(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters())

    def macs_per_cell(self) -> float:
        """Multiply-adds per grid cell of one evaluation (asymptotic in the grid size)."""
        return (2 * self.R + 1) ** 2 * self.cio ** 2 + self.far_macs_per_cell()   # + the direct near field

    def far_macs_per_cell(self) -> float:
        """The learned part's multiply-adds per grid cell (the near field by FFT costs instead
        about a quarter of the exact FFT demag, whatever R)."""
        c, C, k = self.c, self.cio, 9
        f1 = 1.0 / self.stem ** 2                    # cells of level 1 per grid cell
        tot = k * C * c * f1 + k * c * c * f1 / 3    # encoder: E_1, then E on the levels below
        tot += self.u0_kernel ** 2 * c * C           # U_0: stem^2 C outputs per level-1 cell
        tot += k * c * 4 * c * f1 / 3                # U_1, U on the levels below level 1
        return tot
