"""Training data for the film networks: varied textures on varied geometries, labelled with the
exact FFT demag field (engine.demag.FFTDemag, float64). Deterministic by seed.

A sample is (M, H, mask): M = Ms m / Ms_ref (3, ny, nx), zero outside the magnet; H = H_d /
Ms_ref; mask bool (ny, nx). Films of nz > 1 layers (--nz): M, H (3 nz, ny, nx) layer-major
(channel 3 l + i is component i of layer l, as the network takes them), mask (nz, ny, nx);
textures vary through the thickness (make_layered_samples). The cell is (1, 1, aspect) in units of dx (the demag tensor depends
only on the aspect ratios); the default aspect 1 is the cubic cell.

Textures: smooth random fields at several correlation lengths (mostly in-plane or fully 3D),
Voronoi domains with smoothed walls, domain walls, vortices/antivortices, skyrmions, uniform
states, and LLG snapshots of random states relaxing under engine.Simulation. Geometries: full
film, ellipses/disks, rectangles, random polygons, with or without holes; a fraction of samples
has two regions of different Ms (the input is Ms-weighted).

HDF5 layout: one group per grid shape "s{ny}x{nx}" with datasets M, H (float32, (S, 3, ny, nx))
and mask (uint8, (S, ny, nx)), and `kind` (S,) texture names; file attributes record every
generation parameter.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

MS_REF = 8.0e5          # A/m: the unit of M and H in the network
CELL_NM = 3.0           # nominal cell size for the LLG snapshots (permalloy, 3 nm cubic cells)

TEXTURES = ("smooth", "smooth3d", "domains", "wall", "vortex", "skyrmion", "uniform", "llg")
TEXTURE_WEIGHTS = (0.22, 0.10, 0.14, 0.10, 0.14, 0.10, 0.06, 0.14)
GEOMETRIES = ("full", "ellipse", "rectangle", "polygon")
GEOMETRY_WEIGHTS = (0.25, 0.25, 0.2, 0.3)


# ------------------------------------------------------------------ geometry
def _grid(ny, nx):
    y = np.arange(ny) + 0.5 - ny / 2
    x = np.arange(nx) + 0.5 - nx / 2
    return np.meshgrid(y, x, indexing="ij")


def random_mask(rng, ny, nx, kind=None):
    """(mask bool (ny, nx), geometry name)."""
    Y, X = _grid(ny, nx)
    kind = kind or rng.choice(GEOMETRIES, p=GEOMETRY_WEIGHTS)
    if kind == "full":
        mask = np.ones((ny, nx), bool)
    elif kind == "ellipse":
        ry, rx = rng.uniform(0.25, 0.5) * ny, rng.uniform(0.25, 0.5) * nx
        if rng.random() < 0.5:
            rx = ry = min(rx, ry)
        cy, cx = rng.uniform(-0.5, 0.5) * (ny / 2 - ry), rng.uniform(-0.5, 0.5) * (nx / 2 - rx)
        mask = ((Y - cy) / ry) ** 2 + ((X - cx) / rx) ** 2 <= 1
    elif kind == "rectangle":
        hy, hx = rng.uniform(0.2, 0.5) * ny, rng.uniform(0.2, 0.5) * nx
        cy, cx = rng.uniform(-1, 1) * (ny / 2 - hy), rng.uniform(-1, 1) * (nx / 2 - hx)
        mask = (np.abs(Y - cy) <= hy) & (np.abs(X - cx) <= hx)
    else:  # random star-shaped polygon
        from matplotlib.path import Path
        k = rng.integers(3, 10)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.3, 0.5, k)
        pts = np.stack([np.cos(ang) * rad * nx, np.sin(ang) * rad * ny], 1)
        path = Path(pts)
        mask = path.contains_points(np.stack([X.ravel(), Y.ravel()], 1)).reshape(ny, nx)
    if kind != "full" or rng.random() < 0.3:
        if rng.random() < 0.3:  # holes
            for _ in range(rng.integers(1, 4)):
                r = rng.uniform(0.05, 0.15) * min(nx, ny)
                cy, cx = rng.uniform(-0.35, 0.35) * ny, rng.uniform(-0.35, 0.35) * nx
                mask &= (Y - cy) ** 2 + (X - cx) ** 2 > r * r
            kind = kind + "+holes"
    if mask.sum() < 4:
        mask = np.ones((ny, nx), bool)
        kind = "full"
    return mask, kind


# ------------------------------------------------------------------ textures
def _unit(m):
    n = np.linalg.norm(m, axis=0)
    n[n == 0] = 1
    return m / n


def _smooth_noise(rng, ny, nx, corr, ch=3):
    """Gaussian random field with correlation length `corr` cells (periodic FFT filter on a
    padded grid, so no wrap-around correlations)."""
    Py, Px = ny + int(3 * corr) + 1, nx + int(3 * corr) + 1
    w = rng.normal(size=(ch, Py, Px))
    ky = np.fft.fftfreq(Py)[:, None]
    kx = np.fft.fftfreq(Px)[None, :]
    filt = np.exp(-2 * (np.pi * corr) ** 2 * (kx ** 2 + ky ** 2))
    f = np.fft.ifft2(np.fft.fft2(w) * filt).real[:, :ny, :nx]
    return f / (f.std() + 1e-12)


def texture(rng, ny, nx, kind, mask=None):
    """Unit vectors (3, ny, nx) of the named texture kind."""
    Y, X = _grid(ny, nx)
    n = min(nx, ny)
    if kind in ("smooth", "smooth3d"):
        corr = float(rng.choice([1.5, 3, 6, 12, 24])) * rng.uniform(0.8, 1.25)
        m = _smooth_noise(rng, ny, nx, corr)
        if kind == "smooth":
            m[2] *= rng.uniform(0.0, 0.4)
        m[:2] += rng.normal(size=(2, 1, 1)) * rng.uniform(0, 1.5)
        return _unit(m)
    if kind == "domains":
        k = rng.integers(2, 9)
        cy, cx = rng.uniform(-0.5, 0.5, k) * ny, rng.uniform(-0.5, 0.5, k) * nx
        dirs = _unit(rng.normal(size=(3, k)))
        if rng.random() < 0.6:
            dirs[2] *= 0.2
        lab = np.argmin((Y[None] - cy[:, None, None]) ** 2 + (X[None] - cx[:, None, None]) ** 2, axis=0)
        m = dirs[:, lab]
        w = rng.uniform(0.5, 4)
        if w > 0.8:
            from scipy.ndimage import gaussian_filter
            m = np.stack([gaussian_filter(c, w) for c in m])
        return _unit(m + 1e-3 * rng.normal(size=m.shape))
    if kind == "wall":
        ang = rng.uniform(0, 2 * np.pi)
        u = X * np.cos(ang) + Y * np.sin(ang) - rng.uniform(-0.3, 0.3) * n
        w = rng.uniform(1, 8)
        th = 2 * np.arctan(np.exp(u / w))
        e_u = np.array([np.cos(ang), np.sin(ang), 0.0])
        e_v = np.array([-np.sin(ang), np.sin(ang) * 0 + np.cos(ang), 0.0])
        e_z = np.array([0.0, 0.0, 1.0])
        style = rng.integers(0, 4)
        a, b = [(e_u, e_v), (e_v, e_u), (e_z, e_v), (e_z, e_u)][style]
        m = a[:, None, None] * np.cos(th) + b[:, None, None] * np.sin(th)
        return _unit(m)
    if kind == "vortex":
        m = np.zeros((3, ny, nx))
        for _ in range(rng.integers(1, 3)):
            cy, cx = rng.uniform(-0.3, 0.3) * ny, rng.uniform(-0.3, 0.3) * nx
            yr, xr = Y - cy, X - cx
            r = np.hypot(xr, yr)
            rc = rng.uniform(1, 6)
            mz = rng.choice([-1, 1]) * np.exp(-(r / rc) ** 2)
            ip = np.sqrt(np.clip(1 - mz ** 2, 0, 1))
            phi = np.arctan2(yr, xr) * rng.choice([1, -1])  # vortex or antivortex
            phi = phi + rng.uniform(0, 2 * np.pi)
            w = np.exp(-r / (0.5 * n))
            m += np.stack([np.cos(phi) * ip, np.sin(phi) * ip, mz]) * w
        return _unit(m)
    if kind == "skyrmion":
        pol = rng.choice([-1, 1])
        bg = np.zeros((ny, nx))
        theta = np.zeros((ny, nx))
        phi = np.zeros((ny, nx))
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.uniform(-0.35, 0.35) * ny, rng.uniform(-0.35, 0.35) * nx
            yr, xr = Y - cy, X - cx
            r = np.hypot(xr, yr)
            R, w = rng.uniform(2, 0.25 * n), rng.uniform(0.7, 4)
            th = 2 * np.arctan(np.exp(-(r - R) / w))
            sel = th > theta
            theta = np.where(sel, th, theta)
            phi = np.where(sel, np.arctan2(yr, xr) + rng.choice([0, np.pi / 2, np.pi]), phi)
        m = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), -pol * np.cos(theta)])
        del bg
        return _unit(m)
    if kind == "uniform":
        d = _unit(rng.normal(size=(3, 1, 1)))
        if rng.random() < 0.6:
            d[2] *= 0.1
        return _unit(np.broadcast_to(d, (3, ny, nx)).copy())
    raise ValueError(kind)


def llg_snapshots(rng, ny, nx, mask, count, duration_ps=None):
    """`count` snapshots (3, ny, nx) of a random state relaxing by LLG (engine.Simulation with
    FFT demag, permalloy, 3 nm cubic cells, alpha 0.5) under a random in-plane field."""
    from engine import Problem, Simulation
    from engine.problem import Mesh, SolverSpec, InitialState, FieldSpec
    pb = Problem(mesh=Mesh(n=(nx, ny, 1), cell_nm=(CELL_NM,) * 3),
                 region_map=np.where(mask, 0, -1).astype(np.int16)[None],
                 initial=InitialState("random", {"seed": int(rng.integers(0, 2 ** 31))}),
                 field=FieldSpec(B_mT=tuple(float(v) for v in list(rng.normal(size=2) * 20) + [0.0])),
                 solver=SolverSpec(method="rk45", precision="float32", tolerance=1e-3))
    pb.materials[0].alpha = 0.5
    if rng.random() < 0.7:   # mostly in-plane starts (films), else fully random
        m0 = _smooth_noise(rng, ny, nx, rng.uniform(0.5, 3))
        m0[2] *= 0.2
        m0 = _unit(m0)[:, None] * mask[None, None]
    else:
        m0 = None
    sim = Simulation(pb, m0=m0)
    out = []
    total = duration_ps if duration_ps is not None else rng.uniform(10, 120)
    times = np.sort(rng.uniform(0, 1, count)) ** 2 * total * 1e-12
    for tt in times:
        if tt > sim.t:
            sim.run(tt - sim.t)
        out.append(sim.m.detach().cpu().numpy()[:, 0].astype(np.float64))
    return out


# ------------------------------------------------------------------ labelling
class Labeller:
    """Exact FFT demag (float64) of M on a film of (ny, nx) cells of (1, 1, aspect)."""

    def __init__(self, aspect=1.0):
        self.aspect = aspect
        self.cache = {}

    def __call__(self, M):
        from engine.demag import FFTDemag
        ny, nx = M.shape[-2:]
        if (ny, nx) not in self.cache:
            self.cache[(ny, nx)] = FFTDemag((nx, ny, 1), (1e-9, 1e-9, self.aspect * 1e-9), torch.float64)
        # (B, 3, ny, nx) -> (3, B, ny, nx): with nz = 1 the FFT solver never transforms the
        # third-last axis, so a batch rides along it exactly
        Mt = torch.as_tensor(np.ascontiguousarray(np.moveaxis(M, 0, 1)), dtype=torch.float64)
        H = self.cache[(ny, nx)].h_from_M(Mt)
        return np.moveaxis(H.numpy(), 1, 0)

    def layers(self, M, nz):
        """Exact field of films of nz layers: M (B, 3 nz, ny, nx), layer-major -> H the same.
        The real (nx, ny, nz) grid, one sample at a time (the third-last axis is the layers')."""
        from engine.demag import FFTDemag
        B, _, ny, nx = M.shape
        key = (ny, nx, nz)
        if key not in self.cache:
            self.cache[key] = FFTDemag((nx, ny, nz), (1e-9, 1e-9, self.aspect * 1e-9), torch.float64)
        out = np.empty(M.shape, np.float64)
        for b in range(B):
            # (3 nz, ny, nx) layer-major -> (3, nz, ny, nx) and back
            Mt = torch.as_tensor(np.ascontiguousarray(M[b].reshape(nz, 3, ny, nx).transpose(1, 0, 2, 3)),
                                 dtype=torch.float64)
            H = self.cache[key].h_from_M(Mt).numpy()
            out[b] = H.transpose(1, 0, 2, 3).reshape(3 * nz, ny, nx)
        return out


def make_samples(seed, ny, nx, count, aspect=1.0, llg_fraction=None, two_region_fraction=0.1, nz=1):
    """count samples (M, H, mask, kind) on a (ny, nx) grid, deterministic by seed. nz > 1:
    films of nz layers (make_layered_samples); nz = 1 is exactly the one-layer generator."""
    if int(nz) > 1:
        return make_layered_samples(seed, ny, nx, count, int(nz), aspect, two_region_fraction)
    rng = np.random.default_rng([seed, ny, nx])
    lab = Labeller(aspect)
    Ms, Hs, masks, kinds = [], [], [], []
    pending_llg = []
    tw = np.array(TEXTURE_WEIGHTS if llg_fraction is None else
                  [w * (1 - llg_fraction) / (1 - TEXTURE_WEIGHTS[-1]) for w in TEXTURE_WEIGHTS[:-1]] + [llg_fraction])
    tw = tw / tw.sum()
    while len(Ms) < count:
        tex = rng.choice(TEXTURES, p=tw)
        mask, geo = random_mask(rng, ny, nx)
        if tex == "llg":
            k = int(min(8, count - len(Ms)))
            ms = llg_snapshots(rng, ny, nx, mask, k)
        else:
            ms = [texture(rng, ny, nx, tex, mask)]
        for m in ms:
            w = mask.astype(float)
            if rng.random() < two_region_fraction:   # a second region with another Ms
                Yg, Xg = _grid(ny, nx)
                a = rng.uniform(0, np.pi)
                w = w * np.where(Xg * np.cos(a) + Yg * np.sin(a) > rng.uniform(-0.2, 0.2) * nx,
                                 rng.uniform(0.3, 1.5), 1.0)
            M = m * w[None]
            Ms.append(M)
            masks.append(mask)
            kinds.append(f"{tex}/{geo}")
    Ms = np.stack(Ms)
    Hs = lab(Ms)
    return Ms.astype(np.float32), Hs.astype(np.float32), np.stack(masks).astype(np.uint8), kinds


# ------------------------------------------------------------------ films of several layers
LAYER_MODES = ("same", "twist", "tilt", "shift", "saf", "independent")
LAYER_MODE_WEIGHTS = (0.5, 0.1, 0.08, 0.12, 0.1, 0.1)
LAYER_TEXTURES = TEXTURES[:-1]            # no LLG snapshots for nz > 1 (the one-layer Simulation)
LAYER_TEXTURE_WEIGHTS = tuple(w / sum(TEXTURE_WEIGHTS[:-1]) for w in TEXTURE_WEIGHTS[:-1])


def _rotate(m, axis, angle):
    """Rotate unit vectors (3, ...) about the unit `axis` by `angle` (Rodrigues)."""
    k = np.asarray(axis, float).reshape(3, *([1] * (m.ndim - 1)))
    c, s = np.cos(angle), np.sin(angle)
    return m * c + np.cross(k, m, axis=0) * s + k * (k * m).sum(0, keepdims=True) * (1 - c)


def layered_texture(rng, ny, nx, nz, kind):
    """Unit vectors (nz, 3, ny, nx) of a film of nz layers and its variation through the
    thickness: "same" (one texture in every layer), "twist" (in-plane rotation growing layer by
    layer), "tilt" (rotation about an in-plane axis), "shift" (the pattern, e.g. a vortex core,
    moves from layer to layer), "saf" (every other layer reversed, as in a synthetic
    antiferromagnet; in-plane part only or the whole vector), "independent" (another texture
    in each layer). Returns (m, mode)."""
    mode = rng.choice(LAYER_MODES, p=LAYER_MODE_WEIGHTS)
    if mode == "shift":
        s = int(max(2, round(min(ny, nx) * rng.uniform(0.03, 0.12))))
        big = texture(rng, ny + 2 * s, nx + 2 * s, kind)
        walk = np.cumsum(rng.integers(-s, s + 1, size=(nz, 2)) // max(1, nz - 1), axis=0)
        walk = np.clip(walk - walk[nz // 2], -s, s) + s
        return np.stack([big[:, oy:oy + ny, ox:ox + nx] for oy, ox in walk]), mode
    if mode == "independent":
        kinds = [kind] + list(rng.choice(LAYER_TEXTURES, size=nz - 1, p=LAYER_TEXTURE_WEIGHTS))
        return np.stack([texture(rng, ny, nx, k) for k in kinds]), mode
    m = texture(rng, ny, nx, kind)
    if mode == "twist":
        step = rng.uniform(-np.pi / 2, np.pi / 2)
        return np.stack([_rotate(m, (0, 0, 1), step * l) for l in range(nz)]), mode
    if mode == "tilt":
        a, step = rng.uniform(0, 2 * np.pi), rng.uniform(-np.pi / 3, np.pi / 3)
        return np.stack([_rotate(m, (np.cos(a), np.sin(a), 0), step * l) for l in range(nz)]), mode
    if mode == "saf":
        whole = rng.random() < 0.5
        flip = np.array([-1.0, -1.0, -1.0 if whole else 1.0])[:, None, None]
        return np.stack([m * flip if l % 2 else m for l in range(nz)]), mode
    return np.stack([m] * nz), mode


def make_layered_samples(seed, ny, nx, count, nz, aspect=1.0, two_region_fraction=0.1,
                         other_ms_fraction=0.1, empty_layer_fraction=0.07, inplane_fraction=0.2):
    """count samples of films of nz layers: M and H (count, 3 nz, ny, nx), layer-major like the
    network (channel 3 l + i is component i of layer l), mask (count, nz, ny, nx), kinds.
    The same mask in every layer, except `empty_layer_fraction` of the samples where one layer
    is missing (mask and M zero there; H is the stray field of the others); one layer of another
    Ms in `other_ms_fraction`; Mz removed in `inplane_fraction` (with several layers the label
    must be recomputed, so the trainer's one-layer trick of zeroing Mz and Hz cannot be used). Labels: FFTDemag of the real (nx, ny, nz) grid of (1, 1, aspect)
    cells, float64, one sample at a time."""
    rng = np.random.default_rng([seed, ny, nx, nz])
    lab = Labeller(aspect)
    Ms, masks, kinds = [], [], []
    for _ in range(count):
        tex = rng.choice(LAYER_TEXTURES, p=LAYER_TEXTURE_WEIGHTS)
        mask, geo = random_mask(rng, ny, nx)
        m, mode = layered_texture(rng, ny, nx, nz, tex)
        if rng.random() < inplane_fraction:   # in-plane states: small, long-range fields (the hard cases)
            m = m.copy()
            m[:, 2] = 0
            m = _unit(m.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
            mode = f"{mode}+inplane"
        w = np.broadcast_to(mask.astype(float), (nz, ny, nx)).copy()
        if rng.random() < two_region_fraction:   # a second region with another Ms (every layer)
            Yg, Xg = _grid(ny, nx)
            a = rng.uniform(0, np.pi)
            w = w * np.where(Xg * np.cos(a) + Yg * np.sin(a) > rng.uniform(-0.2, 0.2) * nx,
                             rng.uniform(0.3, 1.5), 1.0)[None]
        lmask = np.broadcast_to(mask, (nz, ny, nx)).copy()
        u = rng.random()
        if u < empty_layer_fraction:
            l = rng.integers(0, nz)
            w[l] = 0
            lmask[l] = False
            mode = f"{mode}+empty{l}"
        elif u < empty_layer_fraction + other_ms_fraction:
            l = rng.integers(0, nz)
            w[l] *= rng.uniform(0.3, 1.6)
            mode = f"{mode}+ms{l}"
        Ms.append((m * w[:, None]).reshape(3 * nz, ny, nx))
        masks.append(lmask)
        kinds.append(f"{tex}/{geo}/{mode}")
    Ms = np.stack(Ms)
    Hs = lab.layers(Ms, nz)
    return Ms.astype(np.float32), Hs.astype(np.float32), np.stack(masks).astype(np.uint8), kinds


def _chunk(args):
    """One chunk of samples (for the process pool: module level, picklable arguments)."""
    seed, ny, nx, count, aspect, llg_fraction = args[:6]
    nz = args[6] if len(args) > 6 else 1
    torch.set_num_threads(1)
    return make_samples(seed, ny, nx, count, aspect, llg_fraction=llg_fraction, nz=nz)


def write_h5(path, shapes, counts, seed, aspect=1.0, progress=True, llg_fraction=None, workers=1,
             dask=False, scheduler=None, nz=1):
    """Generate and write a data set; shapes [(ny, nx)], counts per shape. With workers > 1
    the chunks (64 samples each, seeded by chunk, so the result does not depend on `workers`)
    are generated and labelled in that many processes. dask=True: the chunks are Dask tasks
    (engine.sweep.cluster) on a loopback local cluster of `workers` processes, or on the
    running `scheduler` (another machine only with TLS): the same chunks, the same data."""
    import h5py
    from tqdm import tqdm
    t0 = time.time()
    jobs = []
    for (ny, nx), c in zip(shapes, counts):
        chunk = 64
        extra = (int(nz),) if int(nz) > 1 else ()
        jobs += [((ny, nx), (seed * 1000 + i // chunk, ny, nx, min(chunk, c - i), aspect, llg_fraction) + extra)
                 for i in range(0, c, chunk)]
    if dask or scheduler:
        from engine.sweep.cluster import map_as_completed, open_client
        done = [None] * len(jobs)
        with open_client(scheduler=scheduler, workers=workers if workers > 1 else None) as client:
            for i, r in tqdm(map_as_completed(client, _chunk, [j[1] for j in jobs]), total=len(jobs),
                             disable=not progress, desc="chunks (dask)"):
                done[i] = r
        ex, results = None, done
    elif workers > 1:
        import concurrent.futures as cf
        import multiprocessing as mp
        ex = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        results = ex.map(_chunk, [j[1] for j in jobs])
    else:
        ex, results = None, map(_chunk, [j[1] for j in jobs])
    parts = {}
    for (shape, _), r in tqdm(zip(jobs, results), total=len(jobs), disable=not progress, desc="chunks"):
        parts.setdefault(shape, []).append(r)
    if ex is not None:
        ex.shutdown()
    with h5py.File(path, "w") as f:
        f.attrs["seed"] = seed
        f.attrs["aspect_dz_dx"] = aspect
        f.attrs["ms_ref"] = MS_REF
        f.attrs["shapes"] = json.dumps([list(s) for s in shapes])
        f.attrs["counts"] = json.dumps(list(counts))
        f.attrs["nz"] = int(nz)
        if int(nz) > 1:
            f.attrs["llg_fraction"] = 0.0
            f.attrs["textures"] = json.dumps(dict(zip(LAYER_TEXTURES, LAYER_TEXTURE_WEIGHTS)))
            f.attrs["layer_modes"] = json.dumps(dict(zip(LAYER_MODES, LAYER_MODE_WEIGHTS)))
        else:
            f.attrs["llg_fraction"] = TEXTURE_WEIGHTS[-1] if llg_fraction is None else llg_fraction
            f.attrs["textures"] = json.dumps(dict(zip(TEXTURES, TEXTURE_WEIGHTS)))
        f.attrs["geometries"] = json.dumps(dict(zip(GEOMETRIES, GEOMETRY_WEIGHTS)))
        f.attrs["label"] = ("engine.demag.FFTDemag float64, cell (1, 1, aspect), H/Ms_ref" if int(nz) == 1 else
                            f"engine.demag.FFTDemag float64 of the ({int(nz)}-layer) grid, cell (1, 1, aspect), "
                            "H/Ms_ref; M, H (S, 3 nz, ny, nx) layer-major, mask (S, nz, ny, nx)")
        for (ny, nx), rs in parts.items():
            g = f.create_group(f"s{ny}x{nx}")
            g.create_dataset("M", data=np.concatenate([r[0] for r in rs]), compression="lzf")
            g.create_dataset("H", data=np.concatenate([r[1] for r in rs]), compression="lzf")
            g.create_dataset("mask", data=np.concatenate([r[2] for r in rs]), compression="lzf")
            g.create_dataset("kind", data=np.array(sum((list(r[3]) for r in rs), []), dtype="S32"))
        f.attrs["generation_s"] = time.time() - t0
    return path


def load_h5(path):
    """{(ny, nx): (M, H, mask)} as numpy arrays."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        for name, g in f.items():
            ny, nx = (int(v) for v in name[1:].split("x"))
            out[(ny, nx)] = (g["M"][...], g["H"][...], g["mask"][...].astype(bool))
    return out


def main_data(argv=None):
    ap = argparse.ArgumentParser(prog="nmag neural-data", description="generate training data for the neural demag networks")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shapes", default="32x32,64x64,96x96,32x128",
                    help="comma-separated NYxNX grid shapes")
    ap.add_argument("--counts", default="600,600,300,200", help="samples per shape")
    ap.add_argument("--aspect", type=float, default=1.0, help="cell dz/dx (dx = dy)")
    ap.add_argument("--nz", type=int, default=1, help="layers of the film (nz > 1: layered textures, no LLG)")
    ap.add_argument("--llg-fraction", type=float, default=None, help="share of LLG snapshots")
    ap.add_argument("--workers", type=int, default=2, help="processes for generation and labelling")
    ap.add_argument("--dask", action="store_true", help="label as Dask tasks on a local cluster (127.0.0.1)")
    ap.add_argument("--scheduler", help="label as Dask tasks on this running scheduler (see README, Security)")
    a = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    counts = [int(c) for c in a.counts.split(",")]
    write_h5(a.out, shapes, counts, a.seed, a.aspect, llg_fraction=a.llg_fraction, workers=a.workers,
             dask=a.dask, scheduler=a.scheduler, nz=a.nz)
    print("wrote", a.out)


if __name__ == "__main__":
    main_data()
