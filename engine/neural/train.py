"""Training of the film networks (`nmag train ...` calls main_train(argv)).

    nmag train --data data/neural/train_a1.h5 --out runs/a1 --epochs 40 --batch-cells 65536 --threads 1

Loss (per sample, averaged over the batch): the squared relative L2 error over the magnet's
cells (the error measure we report) plus that of the in-plane components alone (split_loss), and with
--far-loss that against the far field alone (the learned part's own target).
30 % of the batches are made in-plane only by zeroing Mz and Hz (exact for one layer only; films of
nz > 1 layers read nz from the data set, train LeanFilmNet(nz) and are mirrored z -> -z at random
instead). Adam with a cosine learning-rate schedule. Each batch holds
samples of one grid shape; a batch is randomly rotated by 90/180/270 degrees and/or mirrored,
with the vector components transformed to match (the operator of a square-cell film has the
symmetry of the square). A checkpoint is written every epoch (resume with --resume), the best
model by validation error is kept, and the learning curve is written as PNG and JSON.

Several cell aspects at once (--also-data): data sets of the same nz at other dz/dx are trained
with the member served at their cell (the exact near kernel of that cell, the learned part scaled
by dz/dx over the member's, as LeanFilmNet.serve does). The learned part is one operator either
way; a tall cell weighs its far field more, so its loss asks that operator for the accuracy a
tall or many-layer film needs when served by scaling.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from .data import MS_REF, load_h5
from .weights import build_net, load_weights, safe_load, save_weights


# ------------------------------------------------------------------ symmetries of the square
def _vector_map(k: int, mirror: bool) -> tuple[list[int], list[float]]:
    """(perm, sign) with new component i = sign[i] * old component perm[i]: the vector part of
    transform(), k turns by +90 degrees ((x, y) -> (-y, x)) then the mirror x -> -x."""
    perm, sign = [0, 1, 2], [1.0, 1.0, 1.0]
    for _ in range(k % 4):
        perm, sign = [perm[1], perm[0], perm[2]], [-sign[1], sign[0], sign[2]]
    if mirror:
        sign = [-sign[0], sign[1], sign[2]]
    return perm, sign


def transform(x: torch.Tensor, k: int, mirror: bool) -> torch.Tensor:
    """Rotate a (B, 3 nz, ny, nx) vector field (nz layers, layer-major: channel 3 l + i is
    component i of layer l) by k*90 degrees (counter-clockwise in the x-y plane, y up the rows),
    then optionally mirror x -> -x; every layer's vectors transform with the points.
    r -> R r with R = rot(+90): (x, y) -> (-y, x) (x the column, y the row index): the array's
    new [i', j'] = old[nx-1-j', i'], torch.rot90 from the column towards the row axis. The points
    turn in one rot90 and the vectors in one signed gather of the components (a training step
    made 2-6 copies of each field this way before, one per turn)."""
    # (Before 2026-12-02 the points turned one way and the vectors the other: harmless for one layer,
    # where -Mxy -> -Hxy is itself exact, but wrong for nz > 1, where the layers couple x, y to z.)
    B, C, ny, nx = x.shape
    x = x.reshape(B, C // 3, 3, ny, nx)
    if k % 4:
        x = torch.rot90(x, k % 4, dims=(4, 3))
    if mirror:
        x = torch.flip(x, dims=(4,))
    perm, sign = _vector_map(k, mirror)
    if perm != [0, 1, 2] or sign != [1.0, 1.0, 1.0]:
        x = x[:, :, perm].mul_(torch.tensor(sign, dtype=x.dtype, device=x.device).view(1, 1, 3, 1, 1))
    return x.reshape(B, C, x.shape[-2], x.shape[-1])


def flip_layers(x: torch.Tensor) -> torch.Tensor:
    """Mirror z -> -z of a (B, 3 nz, ny, nx) field: the layer order reverses and z components
    change sign (an exact symmetry of the demag operator, the augmentation for nz > 1)."""
    B, C, ny, nx = x.shape
    x = torch.flip(x.reshape(B, C // 3, 3, ny, nx), dims=(1,))
    return torch.stack([x[:, :, 0], x[:, :, 1], -x[:, :, 2]], dim=2).reshape(B, C, ny, nx)


def transform_mask(mask: torch.Tensor, k: int, mirror: bool) -> torch.Tensor:
    """The same transform for a (B, ny, nx) or (B, nz, ny, nx) cell array."""
    mask = torch.rot90(mask, k % 4, dims=(-1, -2))     # the same turn as transform's
    return torch.flip(mask, dims=(-1,)) if mirror else mask


def _square_sums(x, w):
    """(B, 3): the squares of a (B, 3 nz, ny, nx) field summed per vector component over the
    layers and the cells, weighted by w (B, nz or 1, 1, ny, nx)."""
    B, C, ny, nx = x.shape
    x = x.reshape(B, C // 3, 3, ny, nx)
    return (x * x * w).sum(dim=(1, 3, 4))


def mask_weight(mask, x):
    """A (B, ny, nx) or (B, nz, ny, nx) cell mask as _square_sums' weight for the (B, 3 nz, ny, nx)
    field x: x's dtype, shaped (B, nz or 1, 1, ny, nx) to broadcast over the components."""
    B, ny, nx = x.shape[0], x.shape[-2], x.shape[-1]
    return torch.as_tensor(mask).to(x.dtype).reshape(B, -1, 1, ny, nx)


def component_sums(pred, target, mask):
    """Per sample and vector component (x, y, z, summed over the layers): the squared error and
    the squared target over the magnet's cells, two (B, 3) tensors. A (B, ny, nx) mask serves
    every layer, a (B, nz, ny, nx) one each layer its own; the mask broadcasts over the
    components instead of being copied per channel, and the in-plane part is picked from these
    small sums, not from field-sized copies (the loss and its backward 2-3x faster)."""
    w = mask_weight(mask, pred)
    return _square_sums(pred - target, w), _square_sums(target, w)


def rel_err(pred, target, mask):
    """Per-sample relative L2 error over mask cells: (B,)."""
    d2, t2 = component_sums(pred, target, mask)
    return torch.sqrt(d2.sum(1) / t2.sum(1).clamp_min(1e-30))


def split_loss(pred, target, mask, eps=0.01, with_rel=False, near=None):
    """Squared relative error of the whole field plus that of its in-plane part (B,). The
    in-plane part (x and y of every layer) has as denominator its own norm plus eps times the
    whole field's, so a small in-plane field (flux-closed and in-plane states, where the large
    local Hz does not dominate) is fitted as well. With `near` (the exact near field of the
    sample; training keeps F = target - near instead, with_far_target) a third term measures the error against the
    far field alone, target - near, the learned part's own target (denominator its norm plus eps
    times the whole field's): without it the learned part's share of Hz, a few per cent of the
    local -Mz, weighs almost nothing, and a member trained at cubic cells left it out (the
    uniform out-of-plane state of a 512^2 square: H_z exactly the near field's, 1.3 % off at
    dz/dx 1 and 5.3 % at 4, where tall cells and layers scale the far field up).
    with_rel: also the relative L2 error of the whole field per sample (rel_err's number,
    from the same sums)."""
    d2, t2 = component_sums(pred, target, mask)
    far2 = None
    if near is not None:
        far2 = _square_sums(target - near, mask_weight(mask, pred))
    return loss_from_sums(d2, t2, far2, eps, with_rel)


def loss_from_sums(d2, t2, far2=None, eps=0.01, with_rel=False):
    """split_loss from its (B, 3) sums per vector component over the magnet's cells: d2 of the
    error, t2 of the target field, far2 (or None) of the target's far field (target - near).
    Only these sums meet the target, so training can keep them per sample instead of the field
    and its near field (with_far_target)."""
    tot = t2.sum(1).clamp_min(1e-30)
    whole = d2.sum(1) / tot
    loss = whole + d2[:, :2].sum(1) / (t2[:, :2].sum(1) + eps * tot)
    if far2 is not None:
        loss = loss + d2.sum(1) / (far2.sum(1) + eps * tot)
    return (loss, whole.detach().sqrt()) if with_rel else loss


def git_commit(cwd=None) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=cwd or Path(__file__).resolve().parents[2], timeout=10).stdout.strip()
    except Exception:
        return "unknown"


# ------------------------------------------------------------------ data handling
class Batches:
    """Same-shape mini-batches over {shape: (M, H, mask) or (M, F, mask, sums)} arrays (torch). With batch_cells > 0
    a batch holds about that many cells (so large grids come in small batches)."""

    def __init__(self, sets, batch, rng, batch_cells=0):
        self.sets = {k: tuple(torch.as_tensor(a) for a in v) for k, v in sets.items()}
        self.batch, self.rng = batch, rng
        self.sizes = {k: (max(1, round(batch_cells / (k[0] * k[1]))) if batch_cells else batch) for k in self.sets}

    def __len__(self):
        return sum(math.ceil(len(v[0]) / self.sizes[k]) for k, v in self.sets.items())

    def epoch(self):
        order = []
        for k, arrays in self.sets.items():
            idx = self.rng.permutation(len(arrays[0]))
            b = self.sizes[k]
            order += [(k, idx[i:i + b]) for i in range(0, len(idx), b)]
        self.rng.shuffle(order)
        for k, idx in order:
            idx = torch.as_tensor(idx)
            yield k, tuple(a[idx] for a in self.sets[k])   # M, H, mask (and the near field, if kept)


def split(sets, val_fraction, seed):
    train, val = {}, {}
    rng = np.random.default_rng(seed)
    for k, (M, H, mk) in sets.items():
        n = len(M)
        nv = int(round(n * val_fraction))
        idx = rng.permutation(n)
        vi, ti = np.sort(idx[:nv]), np.sort(idx[nv:])
        train[k] = (M[ti], H[ti], mk[ti])
        if nv:
            val[k] = (M[vi], H[vi], mk[vi])
    return train, val


def set_aspect(key, default: float) -> float:
    """The cell dz/dx of a set: keys are (ny, nx) for the main data set's cell, (ny, nx, dz/dx)
    for sets at another cell (--also-data)."""
    return float(key[2]) if len(key) > 2 else float(default)


def served_copies(net, keys) -> dict:
    """{dz/dx: a copy of the network served there} for every other cell aspect among the set
    keys (that cell's exact near kernel and far scale; the copy's learned weights are those of
    the moment, for the near field or a validation pass)."""
    import copy
    a0 = float(net.config.get("aspect", 1.0))
    out = {}
    for k in keys:
        a = set_aspect(k, a0)
        if a != a0 and a not in out:
            out[a] = copy.deepcopy(net).serve(a)
    return out


@torch.no_grad()
def with_far_target(net, sets, chunk=8):
    """Each set's (M, H, mask) as (M, F, mask, sums) for the lean network. F = H - near is the
    learned part's own target: the field's error, near + learned - H, is learned - F. sums
    (n, 2, 3) holds the squares of H and of F per vector component over the magnet's cells,
    all that the loss needs of them (loss_from_sums). So a sample keeps one field-sized array
    beside M, not H and its near field (memory: the three- and four-layer members train side
    by side on 24 GiB). The near field is exact, not learned, and commutes with the square's
    symmetries and the z mirror (the Newell kernel of a square cell and its radial window do),
    so a step turns F with M instead of recomputing the near field (an FFT at full resolution,
    about a quarter of a step with a 40-cell exact part); the sums do not change under those
    turns, and in-plane-only samples (nz = 1) zero their z entries. The near field is that of
    the set's own cell (set_aspect)."""
    out, served = {}, served_copies(net, sets)
    for key, (M, H, mk) in sets.items():
        Mt, Ht = torch.as_tensor(M), torch.as_tensor(H)
        n = served.get(set_aspect(key, net.config.get("aspect", 1.0)), net)
        F = torch.empty_like(Ht)
        sums = torch.empty((len(Mt), 2, 3), dtype=torch.float64)
        for i in range(0, len(Mt), chunk):
            h = Ht[i:i + chunk]
            f = F[i:i + chunk]
            torch.sub(h, n.near(Mt[i:i + chunk]).to(Ht.dtype), out=f)
            hd = h.double()
            w = mask_weight(mk[i:i + chunk], hd)
            sums[i:i + chunk, 0] = _square_sums(hd, w)
            sums[i:i + chunk, 1] = _square_sums(f.double(), w)
        out[key] = (M, F, mk, sums)
    return out


@torch.no_grad()
def evaluate(net, sets, batch=16):
    """{shape name: median rel L2} and all errors concatenated; sets at another cell are
    evaluated with the network served there and named "NYxNX@dz/dx"."""
    net.eval()
    out, allv = {}, []
    served = served_copies(net, sets)
    for key, (M, H, mk) in sets.items():
        n = served.get(set_aspect(key, net.config.get("aspect", 1.0)), net)
        errs = []
        for i in range(0, len(M), batch):
            Mb, Hb, mb = (torch.as_tensor(a[i:i + batch]) for a in (M, H, mk))
            errs.append(rel_err(n(Mb), Hb, mb))
        e = torch.cat(errs).numpy()
        out[f"{key[0]}x{key[1]}" + (f"@{key[2]:g}" if len(key) > 2 else "")] = float(np.median(e))
        allv.append(e)
    net.train()
    return out, (np.concatenate(allv) if allv else np.zeros(0))


def plot_curve(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4), dpi=100)
    ep = [h["epoch"] for h in history]
    ax.semilogy(ep, [h["train_rel_l2"] for h in history], "k.-", lw=1, label="train (mean rel L2)")
    keys = {k for h in history for k in h.get("val_median", {})}
    # one colour per grid (by cell count), solid at the data set's own cell, dashed at the
    # cell aspects of --also-data ("NYxNX@a"): with ten colours cycled, 14 curves shared colours
    shapes = sorted({k.split("@")[0] for k in keys}, key=lambda g: int(g.split("x")[0]) * int(g.split("x")[1]))
    colour = dict(zip(shapes, plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, len(shapes))))))
    for k in sorted(keys, key=lambda k: (shapes.index(k.split("@")[0]), k)):
        ax.semilogy(ep, [h["val_median"].get(k, np.nan) for h in history], "--" if "@" in k else "-",
                    marker=".", ms=3, lw=1, color=colour[k.split("@")[0]], label=f"val {k}")
    ax.axhline(0.02, color="gray", lw=0.8, ls=":", label="2 % target")
    ax.set_xlabel("epoch")
    ax.set_ylabel("relative L2 error of H_d (val: median)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_model(net, path, meta):
    """Weights without pickle (engine.neural.weights)."""
    save_weights(net, path, meta)


# ------------------------------------------------------------------ main
def build_parser():
    ap = argparse.ArgumentParser(prog="nmag train", description="train the neural demag network (lean multi-level, "
                                 "or the first U-Net with --arch unet)")
    ap.add_argument("--data", required=True, help="HDF5 data set from engine.neural.data")
    ap.add_argument("--also-data", action="append", default=[], metavar="FILE",
                    help="lean: another data set of the same nz at another cell dz/dx, trained with the member "
                         "served at that cell (repeatable)")
    ap.add_argument("--val-data", default=None, help="optional separate HDF5 validation set")
    ap.add_argument("--out", required=True, help="output folder (checkpoints, curve, model.pt)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", nargs="?", const="auto", default=None,
                    help="resume from a checkpoint (default: OUT/checkpoint.pt)")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--arch", choices=("lean", "unet"), default="lean")
    ap.add_argument("--channels", default=None, help="lean: width (default 8); unet: widths per level (12,16,24,32)")
    ap.add_argument("--local-radius", type=int, default=None,
                    help="exact near field out to this many cells (default 2; with --init: the init's)")
    ap.add_argument("--stem", type=int, choices=(2, 4), default=None,
                    help="lean: pooling before the first learned level (default 2; with --init: the init's)")
    ap.add_argument("--u0-kernel", type=int, choices=(1, 3), default=None,
                    help="lean: size of the last (prolongation) convolution (default 3; with --init: the init's)")
    ap.add_argument("--near-full", type=float, default=None,
                    help="lean: radius in cells of the unwindowed near kernel (default 1; with --init: the init's)")
    ap.add_argument("--batch-cells", type=int, default=0,
                    help="cells per batch (batch size per grid shape); 0: --batch samples")
    ap.add_argument("--warmup", type=int, default=100, help="steps of linear learning-rate warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--inplane-fraction", type=float, default=0.3,
                    help="fraction of batches made in-plane only (Mz = Hz = 0, exact for one layer; "
                         "not used for nz > 1, whose data sets hold in-plane samples with their own labels)")
    ap.add_argument("--far-loss", action="store_true",
                    help="lean: add the error against the far field alone (H minus the exact near field) to the "
                         "loss, so the learned part is fitted in its own terms (tall cells and layered films scale it up)")
    ap.add_argument("--init", default=None, help="start from the weights of a model.pt (fine-tuning stage)")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop after this wall time (0: no limit)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def _shape_options(a) -> dict:
    """The lean network's --stem, --u0-kernel and --near-full, where given."""
    pairs = (("stem", a.stem), ("u0_kernel", a.u0_kernel), ("near_full", a.near_full))
    return {k: v for k, v in pairs if v is not None}


def training_data_problem(path) -> str:
    """Why `path` is not a training data set (engine.neural.data: groups sNYxNX holding M, H
    and mask), or "" when it is one; checked before any work or folder is made."""
    import re
    import h5py
    p = Path(path)
    if not p.is_file():
        return "no such file (make one with python -m engine.neural.data --out FILE)"
    if not h5py.is_hdf5(p):
        return "not an HDF5 file (a training data set from python -m engine.neural.data)"
    try:
        with h5py.File(p, "r") as f:
            groups = [n for n in f if re.fullmatch(r"s\d+x\d+", n)]
            if not groups:
                return "not a training data set: it has no sample groups sNYxNX (is it a results file?)"
            for n in groups:
                if not all(k in f[n] for k in ("M", "H", "mask")):
                    return f"not a training data set: group {n} lacks M, H or mask"
    except OSError as e:
        return f"unreadable ({e})"
    return ""


def main_train(argv=None) -> dict:
    a = build_parser().parse_args(argv)
    init_net = None
    if a.init:   # first, before any work: a weights file that is not plain tensors is refused
        from .weights import WeightsError
        try:
            init_net, init_meta = load_weights(a.init)
        except WeightsError as e:
            raise SystemExit(f"nmag train: --init {e}") from None
    for key, path in (("--data", a.data), ("--val-data", a.val_data), *(("--also-data", f) for f in a.also_data)):
        if path is not None:
            problem = training_data_problem(path)
            if problem:
                raise SystemExit(f"nmag train: {key} {path}: {problem}")
    if not 1 <= a.threads <= 256:
        raise SystemExit(f"nmag train: --threads {a.threads}: expected an integer in [1, 256]")
    from tqdm import tqdm
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    import h5py
    with h5py.File(a.data, "r") as f:
        aspect = float(f.attrs.get("aspect_dz_dx", 1.0))
        nz = int(f.attrs.get("nz", 1))
        data_attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    # split makes the copies training keeps: the loaded set is not held beside them (a
    # four-layer set twice over ran a 24 GiB machine out of memory)
    train, val = split(load_h5(a.data), a.val_fraction, a.seed)
    if a.also_data and a.arch != "lean":
        raise SystemExit("nmag train: --also-data trains the lean network only (--arch lean)")
    if a.far_loss and a.arch != "lean":
        raise SystemExit("nmag train: --far-loss needs the lean network's exact near field (--arch lean)")
    for path in a.also_data:
        with h5py.File(path, "r") as f:
            other, other_nz = float(f.attrs.get("aspect_dz_dx", 1.0)), int(f.attrs.get("nz", 1))
        if other_nz != nz:
            raise SystemExit(f"nmag train: --also-data {path} is for films of nz = {other_nz} layers, "
                             f"--data {a.data} for nz = {nz}: one network serves one nz")
        t, v = split(load_h5(path), a.val_fraction, a.seed)
        for into, part in ((train, t), (val, v)):
            for k, arrays in part.items():
                k = k if other == aspect else (*k, other)
                into[k] = arrays if k not in into else tuple(np.concatenate([x, y]) for x, y in zip(into[k], arrays))
    if a.val_data:
        for k, v in load_h5(a.val_data).items():
            val[k] = v
    if a.arch == "lean":
        net = build_net(dict(arch="lean", nz=nz, aspect=aspect, channels=int(a.channels or 8),
                             near_radius=a.local_radius or 2, **_shape_options(a)))
    else:
        if nz != 1:
            raise SystemExit(f"nmag train: --arch unet serves one-layer films only, the data set has nz = {nz}")
        channels = tuple(int(c) for c in (a.channels or "12,16,24,32").split(","))
        net = build_net(dict(arch="unet", channels=channels, local_radius=a.local_radius or 2, aspect=aspect))
    stages = []
    if a.init:
        net0, prev = init_net, init_meta   # read safely above: tensors and JSON only
        if net0.config.get("arch") != "lean" and int(net0.config.get("nz", 1)) != nz:
            raise SystemExit(f"nmag train: --init {a.init} is for films of nz = {net0.config.get('nz', 1)} layers, "
                             f"the data set has nz = {nz}: train from scratch")
        # the same learned weights; the exact near field follows this data set's cell (and
        # --local-radius when given: the learned far field then adapts to the wider exact part).
        # From a lean network of another nz, the weights of the levels below the first carry over
        # (they act on c features whatever the layer count); E_1 and U_0 start afresh, except
        # from a one-layer member (see below)
        config = dict(net0.config, aspect=aspect, nz=nz)
        if a.local_radius is not None and config.get("arch") == "lean":
            config["near_radius"] = a.local_radius
        if config.get("arch") == "lean":
            config.update(_shape_options(a))
        net = build_net(config)
        # the learned weights that fit: another --stem, --u0-kernel or nz changes U_0's shape
        # (stem^2 x 3 nz outputs, its kernel size) and another nz E_1's (3 nz inputs), so those
        # start afresh, small, as in a new network
        own, given = net.state_dict(), net0.state_dict()
        if config.get("arch") == "lean" and int(net0.config.get("nz", 1)) == 1 and nz > 1:
            # a one-layer member starts a layered one as its far field to leading order
            # (layered_from_one_layer): measured far better than E_1 and U_0 afresh
            from .lean import layered_from_one_layer
            given = layered_from_one_layer(given, nz)
            print(f"--init: the one-layer member's far field laid out for {nz} layers")
        fits = {k: v for k, v in given.items() if k in own and own[k].shape == v.shape}
        net.load_state_dict(fits, strict=False)
        if len(fits) < len(own):
            print(f"--init: started afresh: {', '.join(sorted(set(own) - set(fits)))}")
        a0 = float(net0.config.get("aspect", aspect))
        if a0 != aspect and hasattr(net, "U0"):
            # another cell aspect: the far field of a column grows with its height, so the
            # learned part starts scaled by dz/dx over the init's (as LeanFilmNet.serve does)
            with torch.no_grad():
                net.U0.weight.mul_(aspect / a0)
        stages = prev.get("stages", []) + [{k: prev.get(k) for k in ("data", "epochs_done", "lr", "train_time_s",
                                                                      "n_train", "git_commit")}]
        print(f"starting from {a.init}")
    if hasattr(net, "combine"):
        t_near = time.time()
        train = with_far_target(net, train)
        print(f"far-field targets kept for {sum(len(v[0]) for v in train.values())} training samples "
              f"({time.time() - t_near:.0f} s)")
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    rng = np.random.default_rng(a.seed)
    batches = Batches(train, a.batch, rng, a.batch_cells)
    total_steps = a.epochs * len(batches)
    warm = max(1, a.warmup)
    clock = {"t0": time.time(), "elapsed0": 0.0}

    def lr_factor(s):
        """Warm-up, then a cosine to 3 % over the epochs, or over --max-minutes when that ends
        first (a shared machine's speed varies; the schedule still ends annealed)."""
        frac = min(s, total_steps) / total_steps
        if a.max_minutes:
            frac = max(frac, (clock["elapsed0"] + time.time() - clock["t0"]) / (a.max_minutes * 60))
        return min(1.0, (s + 1) / warm) * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    history, start_epoch, best, elapsed0 = [], 0, float("inf"), 0.0
    ck_path = out / "checkpoint.pt"
    if a.resume:
        rp = ck_path if a.resume == "auto" else Path(a.resume)
        ck = safe_load(rp, "checkpoint")
        net.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start_epoch, best = ck["history"], ck["epoch"], ck["best"]
        elapsed0 = ck.get("elapsed_s", 0.0)
        clock["elapsed0"] = elapsed0
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {rp} at epoch {start_epoch}")
    meta_base = dict(data=str(a.data), data_attrs=data_attrs, n_train=sum(len(v[0]) for v in train.values()),
                     n_val=sum(len(v[0]) for v in val.values()), seed=a.seed, lr=a.lr, batch=a.batch,
                     epochs=a.epochs, ms_ref=MS_REF, batch_cells=a.batch_cells, arch=a.arch, aspect_dz_dx=aspect, git_commit=git_commit(),
                     n_params=net.n_params(), threads=a.threads, inplane_fraction=a.inplane_fraction,
                     stages=stages, init=a.init, nz=nz, also_data=[str(f) for f in a.also_data],
                     far_loss=bool(a.far_loss))
    t0 = clock["t0"] = time.time()
    for epoch in range(start_epoch, a.epochs):
        losses, errs = [], []
        bar = tqdm(batches.epoch(), total=len(batches), desc=f"epoch {epoch + 1}/{a.epochs}",
                   disable=a.no_progress, leave=False)
        for key, batch in bar:
            # the vector fields of the batch: M and H, or M and the far target F (with_far_target)
            fields, mk, sums = [batch[0], batch[1]], batch[2], (batch[3] if len(batch) > 3 else None)
            k, mir = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
            fields, mk = [transform(f, k, mir) for f in fields], transform_mask(mk, k, mir)
            if nz > 1 and rng.random() < 0.5:   # z -> -z: layers reversed, z components negated
                fields, mk = [flip_layers(f) for f in fields], torch.flip(mk, dims=(1,))
            if nz == 1 and rng.random() < a.inplane_fraction:
                # in-plane only: for one layer Hz depends on Mz alone and Hxy on Mxy alone, so
                # zeroing Mz and Hz gives an exact sample (in-plane states: small, long-range fields);
                # the same holds for the near field's part of H
                fields = [f.clone() for f in fields]
                for f in fields:
                    f[:, 2] = 0
                if sums is not None:
                    sums = sums.clone()
                    sums[..., 2] = 0
            M = fields[0]
            if sums is None:
                loss, e = split_loss(net(M), fields[1], mk, with_rel=True)
            else:   # the error is the learned part, scaled as served at the set's cell, minus F
                err = net.combine(-fields[1], net.far(M), set_aspect(key, aspect) / aspect)
                d2 = _square_sums(err, mask_weight(mk, err))
                loss, e = loss_from_sums(d2, sums[:, 0].to(d2.dtype), sums[:, 1].to(d2.dtype)
                                         if a.far_loss else None, with_rel=True)
            loss = loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            errs.append(float(e.mean()))
            bar.set_postfix(rel=f"{np.mean(errs[-20:]):.4f}", lr=f"{sched.get_last_lr()[0]:.1e}")
        val_med, val_all = evaluate(net, val) if val else ({}, np.zeros(0))
        elapsed = elapsed0 + time.time() - t0
        h = dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), train_rel_l2=float(np.mean(errs)),
                 val_median=val_med, val_median_all=float(np.median(val_all)) if len(val_all) else None,
                 elapsed_s=elapsed, lr=sched.get_last_lr()[0])
        history.append(h)
        score = h["val_median_all"] if h["val_median_all"] is not None else h["train_rel_l2"]
        meta = dict(meta_base, epochs_done=epoch + 1, history=history, train_time_s=elapsed)
        if score < best:
            best = score
            save_model(net, out / "best.pt", meta)
        torch.save(dict(state_dict=net.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                        history=history, epoch=epoch + 1, best=best, elapsed_s=elapsed, rng=rng.bit_generator.state,
                        torch_rng=torch.get_rng_state(), config=net.config), ck_path)
        save_model(net, out / "model.pt", meta)
        (out / "learning_curve.json").write_text(json.dumps(history, indent=1))
        plot_curve(history, out / "learning_curve.png")
        print(f"epoch {epoch + 1}: train rel L2 {h['train_rel_l2']:.4f}  val median {val_med}  "
              f"({elapsed / 60:.1f} min)", flush=True)
        if a.max_minutes and elapsed > a.max_minutes * 60:
            print("time limit reached")
            break
    return dict(history=history, out=str(out), best=best)


if __name__ == "__main__":
    main_train()
