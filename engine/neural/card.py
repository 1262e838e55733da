"""Ship a trained model: copy its weights to resources/neural/unet_film.pt and write the model
card (JSON + Markdown) with errors measured on held-out data.

    python -m engine.neural.card --model runs/unet/best.pt [--val data/neural/val.h5] [--n256 8]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..resources import resource_path
from .data import MS_REF, make_samples
from .train import evaluate, rel_err, save_model
from .unet import load_model


def held_out(net, shape, count, seed):
    M, H, mk, kinds = make_samples(seed, shape[0], shape[1], count, llg_fraction=0.0)
    with torch.no_grad():
        e = torch.cat([rel_err(net(torch.tensor(M[i:i + 4])), torch.tensor(H[i:i + 4]), torch.tensor(mk[i:i + 4]).bool())
                       for i in range(0, count, 4)]).numpy()
    return e, kinds


def canonical_errors(weights=None, sizes=(32, 64, 128)):
    """Relative L2 error (%) of a few named states on square films and disks of 3 nm cubic
    cells: in-plane uniform and vortex states have small fields and are the hard cases."""
    from ..initial_states import initial_m
    from ..problem import Mesh
    from .probe import probe
    out = {}
    for n in sizes:
        mesh = Mesh((n, n, 1), (3.0, 3.0, 3.0))
        sq = np.ones((1, n, n), bool)
        yy, xx = np.mgrid[:n, :n]
        disk = (((yy - n / 2 + .5) ** 2 + (xx - n / 2 + .5) ** 2) < (n / 2) ** 2)[None]
        cases = [("vortex/square", "vortex", {"core_nm": 8.0}, sq), ("vortex/disk", "vortex", {"core_nm": 8.0}, disk),
                 ("uniform-x/square", "uniform", {"direction": [1, 0.1, 0]}, sq),
                 ("uniform-x/disk", "uniform", {"direction": [1, 0, 0]}, disk),
                 ("uniform-z/square", "uniform", {"direction": [0, 0, 1]}, sq),
                 ("skyrmion/square", "skyrmion", {"radius_nm": n * 0.5}, sq)]
        for name, kind, p, mk in cases:
            m = initial_m(kind, p, mesh, mk)
            out[f"{name} {n}x{n}"] = round(100 * probe(m, 8e5, (n, n, 1), (3e-9,) * 3, weights).rel_l2, 3)
    return out


def stats(e):
    return dict(median=float(np.median(e)), mean=float(np.mean(e)), p90=float(np.percentile(e, 90)),
                max=float(np.max(e)), count=int(len(e)))


def main_card(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--val", default="data/neural/val.h5")
    ap.add_argument("--n256", type=int, default=8)
    ap.add_argument("--code-note", default=None, help="where the training code is committed")
    ap.add_argument("--extra", default=None, help="JSON file of extra measured numbers to include (SP4, speed)")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    net, meta = load_model(a.model)
    from .data import load_h5
    val = load_h5(a.val) if Path(a.val).exists() else {}
    val_med, _ = evaluate(net, val)
    per_shape = {}
    with torch.no_grad():
        for (ny, nx), (M, H, mk) in val.items():
            e = torch.cat([rel_err(net(torch.tensor(M[i:i + 8])), torch.tensor(H[i:i + 8]), torch.tensor(mk[i:i + 8]))
                           for i in range(0, len(M), 8)]).numpy()
            per_shape[f"{ny}x{nx}"] = stats(e)
    e256, _ = held_out(net, (256, 256), a.n256, seed=777)
    per_shape["256x256 (textures, no LLG)"] = stats(e256)
    canonical = canonical_errors(net)
    hist = meta.get("history", [])
    out_pt = resource_path("neural/unet_film.pt")
    out_pt.parent.mkdir(parents=True, exist_ok=True)
    meta_ship = {k: v for k, v in meta.items() if k != "history"}
    save_model(net, out_pt, meta_ship)
    C = net.config["channels"]
    card = {
        "name": "unet_film",
        "method": "NeuralMAG-style U-Net surrogate of the demag field of a one-cell-thick film",
        "architecture": {
            "type": "linear multiscale U-Net (no biases, no activations, no normalisation)",
            "channels_per_level": C,
            "shared_levels": f"levels >= {len(C)} share the last encoder/decoder weights",
            "levels": "grid padded by a 4-cell vacuum margin, then to a multiple of 2^L; L >= 3 chosen so that "
                      "the coarsest grid has <= 6 cells (least padding); 3 more 3x3 convs there (reach: whole film)",
            "pooling": "2x2 average", "upsampling": "nearest x2 (times 1/2) + 3x3 conv on [skip, up]",
            "kernels": "3x3, tied for exact 180-degree rotation equivariance",
            "local_term": f"exact Newell kernel of the {2 * net.local_radius + 1}x{2 * net.local_radius + 1} nearest cells, "
                          "windowed (1 to r = 1, cos^2 taper to r = 2.5), fixed; the network learns the rest",
            "input": "M / Ms_ref (3, ny, nx), zero outside the magnet",
            "output": "H_d / Ms_ref (3, ny, nx)", "ms_ref_A_per_m": MS_REF,
            "macs_per_cell": net.macs_per_cell(),
        },
        "n_params": net.n_params(),
        "file_bytes": out_pt.stat().st_size,
        "training": {
            "data": meta.get("data"), "data_attrs": meta.get("data_attrs"),
            "n_train": meta.get("n_train"), "n_val": meta.get("n_val"),
            "epochs": meta.get("epochs_done"), "batch": meta.get("batch"), "lr": meta.get("lr"),
            "optimizer": "Adam, cosine schedule to 3 % of lr, grad-norm clip 1",
            "loss": "squared relative L2 error over the magnet's cells + that of the in-plane components",
            "augmentation": "random 90-degree rotations and mirrors with the vector components",
            "train_time_s": meta.get("train_time_s"), "threads": meta.get("threads"),
            "earlier_stages": meta.get("stages", []),
            "total_train_time_s": (meta.get("train_time_s") or 0) + sum((st.get("train_time_s") or 0)
                                                                        for st in meta.get("stages", [])),
            "inplane_fraction": meta.get("inplane_fraction"),
            "hardware": "2-core CPU (shared)", "seed": meta.get("seed"),
        },
        "validation": {"median_rel_l2": {k: v["median"] for k, v in per_shape.items()}, "detail": per_shape,
                       "note": "held-out seeds never used in training; 64x64 and 128x128 include LLG snapshots",
                       "named_states_rel_l2_percent": canonical},
        "valid": {
            "cells": "dx = dy, dz/dx = 1 (cubic cells, e.g. 3 nm): trained",
            "dz_dx_trained": float(net.config.get("aspect", 1.0)),
            "dz_dx_validated": [0.6, 1.0],
            "nz": 1,
            "grid": "any nx, ny (fully convolutional; trained on 32..128, validated to 256)",
            "materials": "any Ms (linear in M); several regions through the Ms-weighted input",
            "outside": "other dz/dx: the network's field scaled by s = dz/dx plus the exact kernel difference "
                       "K_a - s K_1 over the nearest 17x17 cells (warns; validated at dz/dx = 0.6 on SP4). "
                       "dx != dy: warns, rough. nz > 1: falls back to the exact FFT with a warning",
        },
        "git_commit": meta.get("git_commit"),
        "training_code": a.code_note,
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "learning_curve": hist,
    }
    if a.extra and Path(a.extra).exists():
        card["measured"] = json.loads(Path(a.extra).read_text())
    resource_path("neural/model_card.json").write_text(json.dumps(card, indent=1))
    md = [f"# Model card: {card['name']}", "", card["method"] + ".", "",
          "## Architecture", *[f"- {k}: {v}" for k, v in card["architecture"].items()],
          f"- parameters: {card['n_params']} ({card['file_bytes'] / 1e3:.0f} kB file)", "",
          "## Training", *[f"- {k}: {v}" for k, v in card["training"].items() if k != "data_attrs"], "",
          "## Validation (relative L2 error of H_d over the magnet's cells, against the exact FFT)",
          "| grid | median | mean | p90 | max | samples |", "|---|---|---|---|---|---|",
          *[f"| {k} | {v['median']:.2%} | {v['mean']:.2%} | {v['p90']:.2%} | {v['max']:.2%} | {v['count']} |"
            for k, v in per_shape.items()], "",
          "## Named states (relative L2, %)", *[f"- {k}: {v}" for k, v in canonical.items()], "",
          "## Valid for", *[f"- {k}: {v}" for k, v in card["valid"].items()], "",
          f"Training code: {card['training_code']}", "",
          f"Trained at commit {card['git_commit']} (repository HEAD when the last stage started)."]
    if "measured" in card:
        md += ["", "## Other measurements", "```", json.dumps(card["measured"], indent=1), "```"]
    resource_path("neural/model_card.md").write_text("\n".join(md) + "\n")
    print(json.dumps(card["validation"]["median_rel_l2"], indent=1))
    return card


if __name__ == "__main__":
    main_card()
