"""Measuring and shipping the model card's members: held-out errors of fresh FFT-labelled
textures, named states through the error probe, and the card JSON and Markdown.

    python -m engine.neural.card_measure --model runs/a1/best.pt --model runs/a06/best.pt [--extra bench.json]
    python -m engine.neural.card_measure --keep --model runs/nz2/best.pt   # add or replace one member
    python -m engine.neural.card_measure --keep --extra benchmarks/results/card_measured.json
        # no --model: the members as they are, only the measured block (speed, SP4) refreshed
    python -m engine.neural.card_measure --remeasure [--range lean_nz3_dzdx1_R40.pt@0.25:1.6 ...]
        # every shipped member measured again (and given a new dz/dx range), weights untouched

Every member is measured on fresh textures of its own kind of film (its nz and dz/dx).
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..resources import resource_path
from .card import (DEFAULT_CARD, LARGE_CELLS, TARGET_MEDIAN, TARGET_P90, TARGETS, ModelCard, member_key, member_label,
                   trained_text,
                   span_text, target_ratio)
from .data import make_samples


def rel_err(pred, target, mask):
    """Per-sample relative L2 error over mask cells: (B,); mask (B, ny, nx) or, for films of
    nz layers, (B, nz, ny, nx) (each layer's cells; an empty layer does not count)."""
    if mask.dim() == 3:
        m = mask[:, None].to(pred.dtype)
    else:
        m = mask.to(pred.dtype).repeat_interleave(pred.shape[1] // mask.shape[1], dim=1)
    num = (((pred - target) ** 2) * m).sum(dim=(1, 2, 3))
    den = ((target ** 2) * m).sum(dim=(1, 2, 3)).clamp_min(1e-30)
    return torch.sqrt(num / den)


HELD_OUT = ((64, 64, 24), (128, 128, 16), (256, 256, 8), (512, 512, 4), (1024, 1024, 2))
# large grids (card.LARGE_CELLS) apart: there the far field (the learned part, and for a member
# served away from its trained dz/dx the part no training can fix, engine.neural.serving_floor)
# weighs most; pooled with the small grids they were hidden by the 40 of 54 samples at 64^2 and 128^2


def held_out(net, shape, count, seed, aspect=1.0, nz=1):
    """Relative L2 errors (fractions) and texture kinds of `count` fresh samples (seeds never
    used in training: training uses seeds 101, 202 and 303 and below 1000 x 1000) on films of
    nz layers (the textures of engine.neural.data.make_layered_samples for nz > 1)."""
    M, H, mk, kinds = make_samples(seed, shape[0], shape[1], count, aspect=aspect, llg_fraction=0.0, nz=nz)
    with torch.no_grad():
        e = torch.cat([rel_err(net(torch.tensor(M[i:i + 2])), torch.tensor(H[i:i + 2]), torch.tensor(mk[i:i + 2]).bool())
                       for i in range(0, count, 2)]).numpy()
    return e, kinds


def canonical_errors(weights=None, sizes=(32, 64, 128), aspect=1.0, nz=1):
    """Relative L2 error (%) of a few named states on square films and disks of 3 nm square
    cells (dz = aspect x 3 nm), nz layers (the same state in each): in-plane uniform and vortex
    states have small fields and are the hard cases."""
    from ..initial_states import initial_m
    from ..problem import Mesh
    from .demag import NeuralDemag
    from .probe import probe
    out = {}
    for n in sizes:
        mesh = Mesh((n, n, nz), (3.0, 3.0, 3.0 * aspect))
        sq = np.ones((nz, n, n), bool)
        yy, xx = np.mgrid[:n, :n]
        disk = np.broadcast_to((((yy - n / 2 + .5) ** 2 + (xx - n / 2 + .5) ** 2) < (n / 2) ** 2)[None], (nz, n, n))
        cases = [("vortex/square", "vortex", {"core_nm": 8.0}, sq), ("vortex/disk", "vortex", {"core_nm": 8.0}, disk),
                 ("uniform-x/square", "uniform", {"direction": [1, 0.1, 0]}, sq),
                 ("uniform-x/disk", "uniform", {"direction": [1, 0, 0]}, disk),
                 ("uniform-z/square", "uniform", {"direction": [0, 0, 1]}, sq),
                 ("skyrmion/square", "skyrmion", {"radius_nm": n * 0.5}, sq)]
        for name, kind, p, mk in cases:
            m = initial_m(kind, p, mesh, mk)
            grid, d = (n, n, nz), (3e-9, 3e-9, 3e-9 * aspect)
            net = NeuralDemag(grid, d, torch.float32, "cpu", weights=weights)
            out[f"{name} {n}x{n}"] = round(100 * probe(m, 8e5, grid, d, net).rel_l2, 3)
    return out


def stats(e):
    return dict(median=float(np.median(e)), mean=float(np.mean(e)), p90=float(np.percentile(e, 90)),
                max=float(np.max(e)), count=int(len(e)))


def range_aspects(lo: float, hi: float, trained: float, points: int = 4) -> list[float]:
    """Where a member's dz/dx range is measured: both ends, the trained aspect where the range
    holds it, and geometric steps between (rounded to 3 digits)."""
    if hi <= lo:
        return [float(trained)]
    steps = np.geomspace(lo, hi, points)
    return sorted({round(float(v), 3) for v in [*steps, trained] if lo <= v <= hi})


def served_at(net, aspect: float):
    """The member as it serves cells of dz/dx `aspect`: itself at its trained dz/dx, else a copy
    served there (LeanFilmNet.serve: exact near kernel of the cell, learned part scaled)."""
    trained = float(net.config.get("aspect", 1.0))
    return net if aspect == trained else copy.deepcopy(net).serve(aspect)


def measure_member(net, seed=777, aspects=None):
    """Held-out errors per grid for one network (dict of stats) on films of its own nz, at its
    trained dz/dx or at each of `aspects` (served through LeanFilmNet.serve: exact near kernel
    of each cell); per grid and "all" pool every aspect, "by_dz_dx" keeps them apart; "large"
    and "by_dz_dx_large" the same over the grids of LARGE_CELLS cells and more only."""
    trained = float(net.config.get("aspect", 1.0))
    nz = int(net.config.get("nz", 1))
    aspects = [trained] if not aspects else list(aspects)
    per, allv, by, large, by_large = {}, [], {}, [], {}
    for a in aspects:
        served = served_at(net, a)
        mine, mine_large = [], []
        for ny, nx, count in HELD_OUT:
            e, _ = held_out(served, (ny, nx), count, seed, a, nz)
            per.setdefault(f"{ny}x{nx}", []).append(e)
            mine.append(e)
            if ny * nx >= LARGE_CELLS:
                mine_large.append(e)
        by[f"{a:g}"] = stats(np.concatenate(mine))
        allv += mine
        if mine_large:
            by_large[f"{a:g}"] = stats(np.concatenate(mine_large))
            large += mine_large
    per = {k: stats(np.concatenate(v)) for k, v in per.items()}
    per["all"] = stats(np.concatenate(allv))
    if large:
        per["large"] = stats(np.concatenate(large))
    if len(aspects) > 1:
        per["by_dz_dx"] = by
        if by_large:
            per["by_dz_dx_large"] = by_large
    return per


def main_card(argv=None):
    from .weights import load_weights, save_weights
    ap = argparse.ArgumentParser(prog="python -m engine.neural.card_measure")
    ap.add_argument("--model", action="append", default=[],
                    help="weights of one member (repeat), optionally PATH@LO:HI: the dz/dx range it serves; "
                         "without any, --keep --extra PATH refreshes only the card's measured block")
    ap.add_argument("--default-aspect", type=float, default=1.0)
    ap.add_argument("--extra", default=None, help="JSON file of measured numbers to include (speed, SP4, frontier)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true",
                    help="keep the shipped card's other members (and its measured numbers) as they are; "
                         "a --model replaces the member of its own nz, dz/dx and near radius")
    ap.add_argument("--remeasure", action="store_true",
                    help="measure every shipped member again (the held-out set as it is now), keeping its weights "
                         "and training record; --range FILE@LO:HI gives a member a new dz/dx range")
    ap.add_argument("--range", action="append", default=[], help="with --remeasure: FILE@LO:HI (repeat)")
    ap.add_argument("--cache-dir", default=".card_measure", help="with --remeasure: where each member's numbers "
                    "wait until the card is written (a re-run reuses them while the weights are unchanged)")
    a = ap.parse_args(argv)
    if not a.model and not a.remeasure:
        if not (a.keep and a.extra):
            ap.error("--model is required (without one, --keep --extra PATH refreshes only the measured block)")
        return refresh_measured(resource_path(DEFAULT_CARD), resource_path("neural/model_card.md"), a.extra)
    torch.set_num_threads(a.threads)
    members, arch = [], None
    old = json.loads(resource_path(DEFAULT_CARD).read_text()) if (a.keep or a.remeasure) else {}
    # each --model read once: (path, "LO:HI" or "", network, its training record)
    models = [(path, span, *load_weights(path)) for path, _, span in (spec.partition("@") for spec in a.model)]
    if a.remeasure:
        Path(a.cache_dir).mkdir(parents=True, exist_ok=True)
        ranges = {f: tuple(float(v) for v in span.split(":")) for f, _, span in (r.partition("@") for r in a.range)}
        unknown = set(ranges) - {m["file"] for m in old.get("members", [])}
        if unknown:
            raise SystemExit(f"card_measure: --range: no shipped member {', '.join(sorted(unknown))}")
        # a --model replaces the shipped member of its own nz, dz/dx and R: that one is not measured
        replaced = {config_key(net.config) for _, _, net, _ in models}
        for m in old.get("members", []):
            if member_key(m) in replaced:
                continue
            net, _ = load_weights(resource_path("neural/" + m["file"]))
            lo, hi = ranges.get(m["file"], ModelCard.aspect_range(m))
            t0 = time.time()
            # each member's numbers kept (outside resources/) until the card is written
            val, named = measure_range(net, lo, hi, cache=Path(a.cache_dir) / f"{m['file']}.{lo:g}-{hi:g}.card.json",
                                       source=resource_path("neural/" + m["file"]))
            members.append(dict(m, dz_dx_range=[lo, hi], held_out=val, named_states_rel_l2_percent=named,
                                measure_s=round(time.time() - t0, 1)))
            print(f"{m['file']} over {lo:g}-{hi:g}: {_met(members[-1])}; large grids: {_met(members[-1], True)}",
                  flush=True)
            arch = net
    for path, span, net, meta in models:
        spec = f"{path}@{span}" if span else path
        cfg = net.config
        aspect = float(cfg["aspect"])
        lo, hi = (float(v) for v in span.split(":")) if span else (aspect, aspect)
        if not lo <= aspect <= hi and not meta.get("also_data"):
            # a member trained at one cell serves around it; one trained at several (nmag train
            # --also-data) may serve a range away from its reference dz/dx
            raise SystemExit(f"card_measure: --model {spec}: the range {lo:g}:{hi:g} must hold the trained "
                             f"dz/dx {aspect:g} (or the member be trained at several, --also-data)")
        fname = member_file(cfg)
        out_pt = resource_path("neural/" + fname)
        save_weights(net, out_pt, {k: v for k, v in meta.items() if k != "history"})
        t0 = time.time()
        val, named = measure_range(net, lo, hi, cache=Path(str(path) + (f".{lo:g}-{hi:g}" if span else "") + ".card.json"),
                                   source=Path(path))
        hist = meta.get("history", [])
        members.append({
            "file": fname, "nz": int(cfg["nz"]), "dz_dx": aspect, "dz_dx_range": [lo, hi], "square_cells": True,
            "trained_dz_dx": trained_aspects(aspect, hist),
            "default": int(cfg["nz"]) == 1 and lo <= a.default_aspect <= hi and
            not any(m.get("default") for m in members), "channels": cfg["channels"],
            "near_radius": int(cfg.get("near_radius", 2)), "near_full": net.near_full, "stem": net.stem,
            "u0_kernel": net.u0_kernel, "n_params": net.n_params(), "macs_per_column": net.macs_per_cell(),
            "far_macs_per_column": net.far_macs_per_cell(), "file_bytes": out_pt.stat().st_size,
            "held_out": val, "named_states_rel_l2_percent": named,
            "training": {"data": meta.get("data"), "n_train": meta.get("n_train"), "n_val": meta.get("n_val"),
                         "epochs": meta.get("epochs_done"), "batch_cells": meta.get("batch_cells"),
                         "lr": meta.get("lr"), "seed": meta.get("seed"), "threads": meta.get("threads"),
                         "init": meta.get("init"), "train_time_s": meta.get("train_time_s"),
                         "stages": meta.get("stages", []), "git_commit": meta.get("git_commit"),
                         "val_median_by_epoch": [h.get("val_median_all") for h in hist]},
            "measure_s": round(time.time() - t0, 1),
        })
        arch = net
    card = build_card(members, arch, old, a.extra)
    write_card(card, resource_path(DEFAULT_CARD), resource_path("neural/model_card.md"))
    print(json.dumps(card["validation"], indent=1))
    return card


def trained_aspects(aspect: float, history: list) -> list[float]:
    """The cell aspects a member was trained on: its own and those of its --also-data sets,
    which its validation names "NYxNX@dz/dx"."""
    last = (history[-1].get("val_median") or {}) if history else {}
    return sorted({float(aspect)} | {float(k.rpartition("@")[2]) for k in last if "@" in k})


def config_key(cfg) -> tuple:
    """member_key of the member a network's config would make."""
    return member_key({"nz": cfg["nz"], "dz_dx": cfg["aspect"], "near_radius": cfg.get("near_radius", 2)})


def member_file(cfg) -> str:
    """The shipped file of a member: lean_nz2_dzdx1_R40.pt (nz, trained dz/dx, near radius)."""
    return f"lean_nz{cfg['nz']}_dzdx{float(cfg['aspect']):g}_R{int(cfg.get('near_radius', 2))}.pt"


def measure_range(net, lo: float, hi: float, cache: Path | None = None, source: Path | None = None):
    """(held-out errors over the dz/dx range lo..hi, named-state errors) of one member; with
    `cache`, read from there when written after `source` by the same held-out set, else
    measured and written there."""
    if cache is not None and cache.exists() and cache.stat().st_mtime > source.stat().st_mtime:
        got = json.loads(cache.read_text())
        if got.get("held_out_grids") == [list(g) for g in HELD_OUT]:
            return got["held_out"], got["named"]
    aspect = float(net.config["aspect"])
    val = measure_member(net, aspects=range_aspects(lo, hi, aspect) if hi > lo else None)
    named = canonical_errors(net, aspect=aspect, nz=int(net.config["nz"]))
    if cache is not None:
        cache.write_text(json.dumps({"held_out": val, "named": named, "held_out_grids": HELD_OUT}))
    return val, named


def build_card(members: list, arch, old: dict, extra=None) -> dict:
    """The card (JSON) from its measured members: `old` members of another (nz, dz/dx) are
    kept, and old's measured block where `extra` gives none."""
    new = {member_key(m) for m in members}
    members = [m for m in old.get("members", []) if member_key(m) not in new] + members
    members.sort(key=lambda m: (int(m.get("nz", 1)), -ModelCard.aspect_range(m)[1], -float(m["dz_dx"])))
    if not any(m.get("default") for m in members):
        members[0]["default"] = True
    for m in members:   # members kept from a card written before this key: same architecture, nz = 1
        m.setdefault("macs_per_column", old.get("architecture", {}).get("macs_per_cell"))
    default = next(m for m in members if m.get("default"))
    allm = [m["held_out"]["all"] for m in members]
    grid_keys = {f"{ny}x{nx}" for ny, nx, _ in HELD_OUT}
    card = {
        "name": "lean_film",
        "method": "NeuralMAG-style multi-level linear network for the demag field of films (generation 2; members with a 'stem' of 4, the near field by FFT: generation 2b)",
        "members": members,
        "architecture": {
            "type": "linear multi-level network (no biases, no activations, no normalisation)",
            "near_field": "exact Newell kernel of the actual cell for the (2R + 1) x (2R + 1) nearest columns "
                          "(R: near_radius_by_member) and every pair of layers, windowed (1 to r = near_full, cos^2 "
                          "taper to r = R + 0.5), at full resolution, not learned; computed by FFT over the grid "
                          "padded by R (exact; engine.neural.near_fft), by direct convolution in training",
            "near_radius_by_member": {member_label(m): m.get("near_radius", 2) for m in members},
            "stem_by_member": {member_label(m): m.get("stem", 2) for m in members},
            "learned": "convolutions on the grid average-pooled by the member's stem (2 or 4) and coarser only: E1 "
                       "(3x3, 3 nz -> c), E (3x3, c -> c, shared by every deeper level), 2 convs on the coarsest "
                       "(<= 6 cells) grid, U (3x3, c -> 4c, pixel shuffle, shared from level 2, x 1/2 per level), U0 "
                       "(u0_kernel, c -> stem^2 x 3 nz, pixel shuffle to full resolution); skips added; one coarse "
                       "vacuum cell of halo per level",
            "layers": "nz layers as 3 nz channels (layer-major)",
            "channels": arch.c, "macs_per_cell": default["macs_per_column"] / int(default.get("nz", 1)),
            "far_macs_per_cell": (default.get("far_macs_per_column") or 0) / int(default.get("nz", 1)),
            "macs_per_cell_note": "multiply-adds per cell of the default member; per column of nz cells for each "
                                  "member: " + ", ".join(f"{member_label(m)}: {m['macs_per_column']:g}" for m in members),
            "input": "M in A/m (3 nz, ny, nx), zero outside the magnet", "output": "H_d in A/m (linear: no Ms scaling)",
        },
        "valid": {
            "nz": sorted({m["nz"] for m in members})[0] if len({m["nz"] for m in members}) == 1 else
            sorted({m["nz"] for m in members}),
            "dz_dx_members": sorted(m["dz_dx"] for m in members),
            "members_nz_dz_dx": [[m["nz"], m["dz_dx"]] for m in members],
            "dz_dx_ranges": {member_label(m): list(ModelCard.aspect_range(m)) for m in members},
            "dz_dx_validated": [min(ModelCard.aspect_range(m)[0] for m in members if m["nz"] == 1),
                                max(ModelCard.aspect_range(m)[1] for m in members if m["nz"] == 1)],
            "dz_dx_note": "a member serves its dz/dx range with the exact near kernel of the actual cell and its "
                          "learned part scaled by dz/dx over the trained dz/dx (engine.neural.lean.LeanFilmNet.serve); "
                          "held-out errors are measured at both ends of each range and between",
            "square_cells": True,
            "grid_note": "any nx, ny (fully convolutional, depth grows with the grid; a grid under 48 cells along its "
                         "longer side runs padded with vacuum to 48, the depth of every training grid: "
                         "engine.neural.lean.LeanFilmNet._deep_enough); trained on 40 to 1024 cells a side, held-out "
                         "errors measured from 64 x 64 to 1024 x 1024, named states from 32 x 32",
            "materials": "any Ms (linear in M); several regions through the Ms-weighted input",
            "outside": "any nz without a member, a dz/dx outside its members' ranges, or dx != dy: a warning and the "
                       "exact FFT field "
                       "(never an approximation)",
        },
        "validation": {"median_rel_l2": {f"{member_label(m)} {k}": v["median"] for m in members
                                         for k, v in m["held_out"].items() if k in grid_keys},
                       "all_median": [s["median"] for s in allm], "all_p90": [s["p90"] for s in allm],
                       "targets": {"median": TARGET_MEDIAN, "p90": TARGET_P90},
                       "targets_met": {member_label(m): _met(m) for m in members},
                       "targets_met_large_grids": {member_label(m): _met(m, True) for m in members},
                       **served_validation(members),
                       "note": "fresh textures (seed 777, never used in training) of each member's own nz and of "
                               "dz/dx across its range: "
                               "smooth random, 3D random, domains, walls, vortices, skyrmions, uniform; full films, "
                               "disks/ellipses, rectangles, polygons, with holes (rings) in 30 %; for nz > 1 also "
                               "varying through the thickness (twist, tilt, shifted cores, SAF, independent layers, "
                               "a layer of another Ms or empty); labels from engine.demag.FFTDemag of the real "
                               "nz-layer grid in float64"},
        "training": {"hardware": "2-core CPU shared with other jobs (1 torch thread)",
                     "command": "see docs/neural.md (nmag train ...)"},
        "created": time.strftime("%Y-%m-%d %H:%M"),
    }
    if extra and Path(extra).exists():
        card["measured"] = json.loads(Path(extra).read_text())
    elif "measured" in old:
        card["measured"] = old["measured"]
    return card


def refresh_measured(card_json: Path, card_md: Path, extra) -> dict:
    """The card with its "measured" block (benchmarks: speed, SP4, frontier) replaced by the JSON
    in `extra`, members and their held-out errors untouched: re-running a benchmark must not
    mean re-measuring every member's error."""
    extra = Path(extra)
    if not extra.exists():
        raise SystemExit(f"card_measure: --extra {extra}: no such file")
    card = json.loads(Path(card_json).read_text())
    card["measured"] = json.loads(extra.read_text())
    card.setdefault("validation", {}).update(served_validation(card.get("members", [])))   # derived: kept current
    write_card(card, card_json, card_md)
    return card


def write_card(card: dict, card_json: Path, card_md: Path) -> None:
    """The card as JSON (what NeuralDemag reads) and as Markdown (what a person reads)."""
    Path(card_json).write_text(json.dumps(card, indent=1))
    Path(card_md).write_text(card_markdown(card))


def _met(m, large: bool = False) -> str:
    """'met' or which error target the member misses, by how much: over all its samples and,
    for a member serving a dz/dx range, at every measured dz/dx on its own; `large`: the same
    over its large grids only ("large", "by_dz_dx_large"; '' when not measured)."""
    def misses(s, where=""):
        return [f"{k}{where} {s[k]:.2%} > {t:.0%} ({s[k] / t:.2f}x)"
                for k, t in TARGETS if s[k] > t]
    ho = m["held_out"]
    if large and "large" not in ho:
        return ""
    miss = misses(ho["large" if large else "all"])
    by = ho.get("by_dz_dx_large" if large else "by_dz_dx", {})
    bad = [a for a, s in by.items() if misses(s)]
    if bad:   # the worst measured dz/dx says how far from the targets the range goes
        worst = max(bad, key=lambda a: target_ratio(by[a]))
        miss += [f"at {len(bad)} of {len(by)} measured dz/dx, worst " + ", ".join(misses(by[worst], f" at {worst}"))]
    return "met" if not miss else "missed: " + ", ".join(miss)


def served_validation(members: list) -> dict:
    """The card's as-served block: at every dz/dx where a member was measured, the member
    NeuralDemag picks there (ModelCard.as_served) and its large-grid numbers, and per nz the
    verdict over those: what a user of that film gets, where the per-member verdicts also count
    a member at a shared bound that the other member serves."""
    served = ModelCard({"members": members}).as_served()
    table = {f"nz={nz}": {f"{a:g}": {"member": m["file"], "median": s["median"], "p90": s["p90"], "count": s["count"]}
                          for a, m, s in rows} for nz, rows in served.items()}
    return {"as_served_large_grids": table,
            "targets_met_as_served_large_grids": {nz: _served_met(rows) for nz, rows in table.items()}} if table else {}


def _served_met(rows: dict) -> str:
    """'met' or where, among the measured dz/dx of one nz as served, the targets are missed."""
    bad = {a: [f"{k} {s[k]:.2%}" for k, t in TARGETS if s[k] > t] for a, s in rows.items()}
    bad = {a: v for a, v in bad.items() if v}
    if not bad:
        return f"met at all {len(rows)} measured dz/dx"
    return (f"missed at {len(bad)} of {len(rows)} measured dz/dx: "
            + "; ".join(f"{a}: {', '.join(v)}" for a, v in bad.items()))


def frontier_markdown(measured: dict) -> list:
    """The error-against-time frontier (bench_neural.py --frontier) as a table: each trained
    network's time against the FFT and its held-out error, the plot's numbers."""
    rows = measured.get("frontier") or []
    if not rows:
        return []
    sizes = sorted({n for r in rows for n in r["ratio"]}, key=int)
    md = ["", f"## Frontier: error against time ({measured.get('frontier_date', '')}; plot "
              "benchmarks/results/neural_frontier.png)",
          "| network | near R | learned multiply-adds per cell | " + " | ".join(f"neural / FFT {n}²" for n in sizes)
          + " | held out at dz/dx | median / p90, all grids | the same, 256² and up | worst dz/dx, 256² and up |",
          "|---|---|---|" + "---|" * len(sizes) + "---|---|---|---|"]
    for r in rows:
        ho, large = r["held_out"], r.get("held_out_large")
        by = r.get("by_dz_dx_large") or {}
        worst = max(by.items(), key=lambda t: t[1]["p90"]) if by else None
        md.append(f"| {r['name']} | {r['config'].get('near_radius', '')} | {r.get('far_macs_per_cell', 0):.0f} | "
                  + " | ".join(f"{r['ratio'][n]:.2f}" if n in r["ratio"] else "" for n in sizes) + " | "
                  + ", ".join(f"{v:g}" for v in r.get("held_out_dz_dx", [])) + " | "
                  f"{ho['median']:.2%} / {ho['p90']:.2%} | "
                  + (f"{large['median']:.2%} / {large['p90']:.2%}" if large else "") + " | "
                  + (f"{worst[0]}: {worst[1]['median']:.2%} / {worst[1]['p90']:.2%}" if worst else "") + " |")
    return md


def card_markdown(card) -> str:
    md = [f"# Model card: {card['name']}", "", card["method"] + ".", "", "## Architecture",
          *[f"- {k}: {v}" for k, v in card["architecture"].items()], "",
          "## Members (one network per kind of film; each serves a range of dz/dx, measured across it)",
          "| file | nz | trained dz/dx | serves dz/dx | stem | near R | channels | weights | held-out median | p90 | max "
          "| samples | targets (median 1 %, p90 2 %) | the same on large grids (256² and up) |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in card["members"]:
        s = m["held_out"]["all"]
        md.append(f"| {m['file']} | {m['nz']} | {trained_text(m)} | {span_text(*ModelCard.aspect_range(m))} | "
                  f"{m.get('stem', 2)} | {m.get('near_radius', 2)} | {m['channels']} | {m['n_params']} | "
                  f"{s['median']:.2%} | {s['p90']:.2%} | {s['max']:.2%} | {s['count']} | {_met(m)} | "
                  f"{_met(m, True) or 'not measured'} |")
    md += ["", "## Held-out error by grid (relative L2 of H_d over the magnet's cells, against the exact FFT; "
           "a member serving a dz/dx range: every measured dz/dx pooled)",
           "| member | grid | median | p90 | max | samples |", "|---|---|---|---|---|---|"]
    for m in card["members"]:
        for k, v in m["held_out"].items():
            if k not in ("by_dz_dx", "by_dz_dx_large"):
                md.append(f"| {member_label(m)} | {k} | {v['median']:.2%} | {v['p90']:.2%} | {v['max']:.2%} | {v['count']} |")
    md += ["", "## Held-out error by served dz/dx (all grids)",
           "| member | dz/dx | median | p90 | max | samples |", "|---|---|---|---|---|---|"]
    for m in card["members"]:
        for a, v in m["held_out"].get("by_dz_dx", {f"{m['dz_dx']:g}": m["held_out"]["all"]}).items():
            md.append(f"| {member_label(m)} | {a} | {v['median']:.2%} | {v['p90']:.2%} | {v['max']:.2%} | {v['count']} |")
    md += ["", "## Held-out error by served dz/dx, large grids only (256² and up: 14 samples per dz/dx)",
           "| member | dz/dx | median | p90 | max | samples |", "|---|---|---|---|---|---|"]
    for m in card["members"]:
        ho = m["held_out"]
        for a, v in ho.get("by_dz_dx_large", {f"{m['dz_dx']:g}": ho["large"]} if "large" in ho else {}).items():
            md.append(f"| {member_label(m)} | {a} | {v['median']:.2%} | {v['p90']:.2%} | {v['max']:.2%} | {v['count']} |")
    served = card.get("validation", {}).get("as_served_large_grids", {})
    if served:
        verdicts = card["validation"].get("targets_met_as_served_large_grids", {})
        md += ["", "## As served, large grids (what a film of nz layers gets at each measured dz/dx: the member "
               "NeuralDemag picks there)", "| nz | dz/dx | member | median | p90 | samples |", "|---|---|---|---|---|---|"]
        for nz, rows in served.items():
            md += [f"| {nz.split('=')[1]} | {a} | {r['member']} | {r['median']:.2%} | {r['p90']:.2%} | {r['count']} |"
                   for a, r in rows.items()]
        md += [""] + [f"- {nz}: {v}" for nz, v in verdicts.items()]
    md += ["", "## Named states (relative L2, %)"]
    for m in card["members"]:
        md += [f"- {member_label(m)}: " + ", ".join(f"{k} {v}" for k, v in m["named_states_rel_l2_percent"].items())]
    md += ["", "## Valid for", *[f"- {k}: {v}" for k, v in card["valid"].items()], "",
           "## Training", *[f"- {m['file']}: {json.dumps({k: v for k, v in m['training'].items() if k != 'val_median_by_epoch'})}"
                            for m in card["members"]]]
    md += frontier_markdown(card.get("measured", {}))
    if "measured" in card:
        md += ["", "## Measured (benchmarks/bench_neural.py, bench_neural_sp4.py)", "```",
               json.dumps(card["measured"], indent=1), "```"]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main_card()
