"""A linear multiscale U-Net for the demagnetizing field of a one-cell-thick film.

Input  x = M / Ms_ref, (B, 3, ny, nx), zero outside the magnet (the zeros carry the geometry).
Output   H_d / Ms_ref, (B, 3, ny, nx).

Why linear: H_d = -N * M is a linear (convolution) operator of M. A U-Net without biases,
activations or normalisation is a linear operator too, so it can represent the map in form,
scales with Ms by construction (no SLA/tanh output transforms, no Ms_ref bookkeeping beyond a
unit) and trains as a (deep) least-squares problem, fast.

Structure (levels l = 0 .. L, L grows with the grid so that the coarsest grid is about 4x4 and
the receptive field always covers the whole film):
    a_0 = conv_in(x)                    encoder: features at full resolution
    a_l = enc_l(avgpool2(a_{l-1}))      aggregate at coarser and coarser scales
    d_L = a_L
    d_l = dec_l([a_l, up2(d_{l+1}) / 2])   decoder: add the coarse contributions back
    H   = local(x) + conv_out(d_0)
`local` is the exact Newell kernel of the nearest (2R+1)^2 cells (fixed, not learned): the
network learns the rest (the residual), which is smooth beyond the first cells.
Levels >= `shared_from` share their weights: the far-field kernel of a film, ~ t dx dy / r^3,
is self-similar, and in level-l units (grid spacing 2^l, pooled densities) the contribution of a
coarser level is half that of the finer one -- hence the factor 1/2 on every up path. One set
of deep weights therefore serves any depth, i.e. any grid size.

180-degree rotation symmetry (r -> -r, (vx, vy, vz) -> (-vx, -vy, vz)) is built into every
kernel by weight tying: channels carry a parity (+1 even, -1 odd) and each kernel satisfies
W_ba(-k) = s_b s_a W_ba(k). Pooling and nearest up-sampling commute with the rotation when the
padding is symmetric; for grids where it cannot be (odd padding), forward() averages f(x) and
R^-1 f(R x), so the map is exactly equivariant on every grid.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _parity(c: int) -> torch.Tensor:
    """Channel parities of a hidden layer: half even, half odd."""
    p = torch.ones(c)
    p[c // 2:] = -1
    return p


IO_PARITY = torch.tensor([-1.0, -1.0, 1.0])   # (x, y) components flip sign, z does not


class SymConv(nn.Module):
    """A bias-free 'same' convolution whose kernel is equivariant under 180-degree rotation."""

    def __init__(self, cin, cout, k, pin, pout, init_scale=1.0):
        super().__init__()
        self.k = k
        w = torch.randn(cout, cin, k, k) * (init_scale / math.sqrt(cin * k * k))
        self.weight = nn.Parameter(w)
        self.register_buffer("sign", (pout[:, None] * pin[None, :])[:, :, None, None].clone())

    def kernel(self):
        w = self.weight
        return 0.5 * (w + self.sign * torch.flip(w, dims=(2, 3)))

    def forward(self, x):
        return F.conv2d(x, self.kernel(), padding=self.k // 2)


def local_kernel(aspect: float, R: int, r_full: float | None = None) -> np.ndarray:
    """Exact Newell kernel of a film of cells (1, 1, aspect) for offsets |dx|, |dy| <= R, times a
    smooth window (1 up to r_full cells, a cos^2 taper to 0 at R + 0.5), as a conv2d weight
    (3, 3, 2R+1, 2R+1) with H = conv(M) (sign included). The window makes the remainder that the
    network learns, N (1 - w), smooth: near field exact, far field learned (an Ewald-like split)."""
    from ..demag_kernel import demag_tensor_quadrant
    r_full = R / 2 if r_full is None else r_full
    q = demag_tensor_quadrant((R + 1, R + 1, 1), (1.0, 1.0, float(aspect)))
    w = np.zeros((3, 3, 2 * R + 1, 2 * R + 1))
    idx = {"xx": (0, 0), "xy": (0, 1), "yy": (1, 1), "zz": (2, 2)}
    for dy in range(-R, R + 1):
        for dx in range(-R, R + 1):
            r = float(np.hypot(dx, dy))
            win = 1.0 if r <= r_full else (np.cos(0.5 * np.pi * min(1.0, (r - r_full) / (R + 0.5 - r_full))) ** 2)
            for c, (i, j) in idx.items():
                v = q[c][0, abs(dy), abs(dx)]
                if c == "xy":
                    v *= np.sign(dx) * np.sign(dy) if dx and dy else 0.0
                w[i, j, R + dy, R + dx] = -v * win
                w[j, i, R + dy, R + dx] = -v * win
    return w


class FilmUNet(nn.Module):
    """See the module docstring. `channels` gives the widths of levels 0, 1, ..., the last one
    repeated for every deeper (shared) level."""

    def __init__(self, channels=(12, 16, 24, 32), local_radius=2, aspect=1.0, min_coarse=4,
                 min_levels=2, margin=4, bottom=3):
        super().__init__()
        self.config = dict(channels=list(channels), local_radius=local_radius, aspect=float(aspect),
                           min_coarse=min_coarse, min_levels=min_levels, margin=margin, bottom=bottom)
        self.margin = margin
        self.channels = list(channels)
        self.shared_from = len(channels)   # levels >= this reuse the last enc/dec
        self.min_coarse, self.min_levels = min_coarse, min_levels
        C = self.channels
        P = [_parity(c) for c in C]
        self.conv_in = SymConv(3, C[0], 3, IO_PARITY, P[0])
        enc, dec = [], []
        for l in range(1, len(C) + 1):
            cp, c = C[min(l - 1, len(C) - 1)], C[min(l, len(C) - 1)]
            pp, pc = P[min(l - 1, len(C) - 1)], P[min(l, len(C) - 1)]
            enc.append(SymConv(cp, c, 3, pp, pc))
        for l in range(0, len(C)):
            c, cn = C[l], C[min(l + 1, len(C) - 1)]
            pc, pn = P[l], P[min(l + 1, len(C) - 1)]
            dec.append(SymConv(c + cn, c, 3, torch.cat([pc, pn]), pc))
        self.bottom = nn.ModuleList([SymConv(C[-1], C[-1], 3, P[-1], P[-1]) for _ in range(bottom)])
        self.enc = nn.ModuleList(enc)   # enc[l-1] makes level l; the last is shared
        self.dec = nn.ModuleList(dec)   # dec[l] makes level l; the last is shared
        self.conv_out = SymConv(C[0], 3, 3, P[0], IO_PARITY, init_scale=0.1)
        self.local_radius = local_radius
        self.register_buffer("local_w", torch.tensor(local_kernel(aspect, local_radius), dtype=torch.float32))

    # ------------------------------------------------------------------ geometry of the grid
    def levels_for(self, ny: int, nx: int) -> int:
        """Depth for a (padded) grid of ny x nx: the coarsest grid has at most 6 cells along
        its longer side; among such depths, the one that pads least."""
        n = max(nx, ny, 1)
        best = None
        # at least len(channels) - 1 levels: the coarsest level then has the shared width
        for L in range(max(self.min_levels, len(self.channels) - 1), 16):
            c = -(-n // 2 ** L)
            if c > 6:
                continue
            P = c * 2 ** L
            if best is None or P < best[1]:
                best = (L, P)
            if c <= 2:
                break
        return best[0]

    def _enc(self, l):
        return self.enc[min(l, len(self.enc)) - 1]

    def _dec(self, l):
        return self.dec[min(l, len(self.dec) - 1)]

    def _core(self, x, L):
        a = [self.conv_in(x)]
        for l in range(1, L + 1):
            a.append(self._enc(l)(F.avg_pool2d(a[-1], 2)))
        d = a[L]
        for b in self.bottom:   # reach across the whole coarsest grid
            d = b(d)
        for l in range(L - 1, -1, -1):
            B, C, h, w = d.shape   # nearest x2 (faster than F.interpolate on CPU), times 1/2
            up = (d * 0.5)[:, :, :, None, :, None].expand(B, C, h, 2, w, 2).reshape(B, C, 2 * h, 2 * w)
            d = self._dec(l)(torch.cat([a[l], up], dim=1))
        return self.conv_out(d)

    def forward(self, x: torch.Tensor, symmetrize: bool | None = None, far_scale: float = 1.0,
                local_w: torch.Tensor | None = None) -> torch.Tensor:
        """H/Ms_ref for x = M/Ms_ref (B, 3, ny, nx). `local_w` replaces the exact local kernel and
        `far_scale` multiplies the learned part (used for another cell aspect, see NeuralDemag)."""
        ny, nx = x.shape[-2:]
        # a margin of vacuum around the grid: the fine convolutions then see the magnet's edge
        # the same way wherever it lies, also where it touches the grid's border
        L = self.levels_for(ny + 2 * self.margin, nx + 2 * self.margin)
        m = 2 ** L
        Py, Px = -(-(ny + 2 * self.margin) // m) * m, -(-(nx + 2 * self.margin) // m) * m
        py, px = Py - ny, Px - nx
        pad = (px // 2, px - px // 2, py // 2, py - py // 2)
        xp = F.pad(x, pad)
        out = self._core(xp, L)
        if symmetrize is None:
            symmetrize = (px % 2) or (py % 2)
        if symmetrize:
            s = IO_PARITY.to(x)[None, :, None, None]
            xr = F.pad(torch.flip(x, dims=(2, 3)) * s, pad)
            outr = self._core(xr, L)
            # undo the rotation on the padded grid of the rotated input
            outr = torch.flip(outr, dims=(2, 3)) * s
            # the rotated input was padded (left, right) = pad; after flipping, its image sits at
            # offset (right pad) instead of (left pad)
            outr = outr[..., pad[3]:pad[3] + ny, pad[1]:pad[1] + nx]
            out = out[..., pad[2]:pad[2] + ny, pad[0]:pad[0] + nx]
            out = 0.5 * (out + outr)
        else:
            out = out[..., pad[2]:pad[2] + ny, pad[0]:pad[0] + nx]
        lw = self.local_w if local_w is None else local_w
        if far_scale != 1.0:
            out = out * far_scale
        return out + F.conv2d(x, lw.to(x.dtype), padding=self.local_radius)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def macs_per_cell(self) -> float:
        """Multiply-adds per grid cell of one forward pass (asymptotic in the depth)."""
        C = self.channels
        k = 9
        tot = k * 3 * C[0] + k * C[0] * 3 + (2 * self.local_radius + 1) ** 2 * 5
        for l in range(0, 30):
            c = C[min(l, len(C) - 1)]
            cn = C[min(l + 1, len(C) - 1)]
            cp = C[min(l - 1, len(C) - 1)] if l else 0
            f = 4.0 ** -l
            tot += f * (k * (c + cn) * c + (k * cp * c if l else 0))
        return tot
