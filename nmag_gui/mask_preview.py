"""A small 3D picture of a region map, drawn in numpy (no OpenGL context per editor).

The geometry editor's top view shows one layer; this shows the whole sample as seen from the
front-right and above (an orthographic view), so that a z range, a sphere or an imported mesh
can be checked at a glance. Only the faces of cells that border vacuum are drawn, each a flat
parallelogram in the region's colour, shaded by its direction (top brightest), painted far to
near. A 64 x 64 x 32 map draws in some tens of milliseconds.

Example::

    rgba = mask_preview(regions, cell_nm=(3, 3, 3), size=(240, 180), colors=palette)
"""
from __future__ import annotations

import numpy as np

# the view: x to the right and down, y to the right and up, z up (an isometric-like projection)
_AZ = np.radians(-35.0)       # rotation about z
_EL = np.radians(30.0)        # elevation of the eye
_SHADE = {"top": 1.0, "front": 0.72, "side": 0.55}


def _project(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u right, v up, depth towards the eye) of points p (..., 3)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    xr = x * np.cos(_AZ) - y * np.sin(_AZ)
    yr = x * np.sin(_AZ) + y * np.cos(_AZ)
    u = xr
    v = z * np.cos(_EL) + yr * np.sin(_EL)
    depth = -yr * np.cos(_EL) + z * np.sin(_EL)
    return u, v, depth


def mask_preview(regions: np.ndarray, cell_nm=(1.0, 1.0, 1.0), size=(240, 180),
                 colors=None, background=(29, 31, 34)) -> np.ndarray:
    """RGBA uint8 (h, w, 4) picture of a region map (nz, ny, nx; -1 vacuum). colors: a list
    of (r, g, b) per region index (cycled); default a grey."""
    w, h = int(size[0]), int(size[1])
    img = np.zeros((h, w, 4), np.uint8)
    img[..., :3] = background
    img[..., 3] = 255
    reg = np.asarray(regions)
    mask = reg >= 0
    if not mask.any():
        return img
    colors = np.asarray(colors if colors is not None else [(170, 170, 170)], float)
    nz, ny, nx = mask.shape
    d = np.asarray(cell_nm, float)
    pad = np.pad(mask, 1, constant_values=False)
    # visible faces from this eye: +z (top), -y (front), +x (right side)
    faces = []
    for name, axis, step in (("top", 0, 1), ("front", 1, -1), ("side", 2, 1)):
        nb = np.roll(pad, -step, axis=axis)[1:-1, 1:-1, 1:-1]
        k, j, i = np.nonzero(mask & ~nb)
        faces.append((name, axis, step, k, j, i))
    # the sample's extent on screen sets the scale
    corners = np.array([[a, b, c] for a in (0, nx * d[0]) for b in (0, ny * d[1]) for c in (0, nz * d[2])])
    cu, cv, _ = _project(corners)
    scale = 0.9 * min(w / max(np.ptp(cu), 1e-12), h / max(np.ptp(cv), 1e-12))
    u0, v0 = cu.min(), cv.min()
    off_u = (w - scale * np.ptp(cu)) / 2
    off_v = (h - scale * np.ptp(cv)) / 2
    zbuf = np.full((h, w), -np.inf)
    for name, axis, step, k, j, i in faces:
        if k.size == 0:
            continue
        lo = np.stack([i * d[0], j * d[1], k * d[2]], axis=1)
        ax = 2 - axis
        base = lo.copy()
        if step == 1:
            base[:, ax] += d[ax]
        a, b = [q for q in range(3) if q != ax]
        # sample each face on a small lattice of points: enough to fill its pixels
        e_a = np.zeros(3)
        e_b = np.zeros(3)
        e_a[a], e_b[b] = d[a], d[b]
        n_s = max(2, int(np.ceil(scale * max(d) * 1.5)))
        s = (np.arange(n_s) + 0.5) / n_s
        sa, sb = np.meshgrid(s, s, indexing="ij")
        pts = base[:, None, :] + sa.ravel()[None, :, None] * e_a + sb.ravel()[None, :, None] * e_b
        u, v, depth = _project(pts)
        px = ((u - u0) * scale + off_u).astype(np.int64).ravel()
        py = (h - 1 - ((v - v0) * scale + off_v)).astype(np.int64).ravel()
        depth = depth.ravel()
        ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        px, py, depth = px[ok], py[ok], depth[ok]
        col = colors[reg[k, j, i] % len(colors)] * _SHADE[name]
        col = np.repeat(col, n_s * n_s, axis=0)[ok]
        # keep the nearest sample per pixel: sort by depth, the last write wins
        order = np.argsort(depth, kind="stable")
        px, py, depth, col = px[order], py[order], depth[order], col[order]
        flat = py * w + px
        nearer = depth > zbuf.ravel()[flat]
        flat, depth, col = flat[nearer], depth[nearer], col[nearer]
        zb = zbuf.ravel()
        zb[flat] = depth
        zbuf = zb.reshape(h, w)
        rgb = img[..., :3].reshape(-1, 3)
        rgb[flat] = np.clip(col, 0, 255).astype(np.uint8)
    return img
