"""Writes the bad-input corpus of tests/test_bad_inputs.py (issue 9): problem files and OVF
files, each wrong in one way, and expect.toml (file -> a text the refusal must contain: the key
or the file). Hand-made from a small valid problem; rerun to regenerate:

    python tests/data/bad/make_corpus.py

The HDF5 cases are built by the test itself (binary files are generated, not committed).
"""
import struct
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

BASE = """title = "bad input"
[mesh]
n = [8, 8, 1]
cell_nm = [5.0, 5.0, 3.0]

[[materials]]
name = "py"
Ms = 8.0e5
A = 1.3e-11
alpha = 0.5

[[geometry]]
shape = "rectangle"
center_nm = [0.0, 0.0]
size_nm = [40.0, 40.0]

[initial]
kind = "uniform"
direction = [1.0, 0.2, 0.0]

[field]
B_mT = [0.0, 0.0, 0.0]

[solver]
method = "rk45"
demag = "none"

[[stages]]
kind = "run"
duration_ns = 0.001

[output]
table_every_ps = 1.0
snapshot_every_ps = 1.0
"""


MAT = '[[materials]]\nname = "py"\nMs = 8.0e5\nA = 1.3e-11\nalpha = 0.5\n'


def sub(old, new, base=BASE):
    assert old in base, old
    return base.replace(old, new, 1)


TOML = {
    # materials
    "ms_negative": (sub("Ms = 8.0e5", "Ms = -5.0"), "materials[0].Ms"),
    "ms_nan": (sub("Ms = 8.0e5", "Ms = nan"), "materials[0].Ms"),
    "ms_inf": (sub("Ms = 8.0e5", "Ms = inf"), "materials[0].Ms"),
    "a_is_text": (sub("A = 1.3e-11", 'A = "big"'), "materials[0].A"),
    "alpha_too_big": (sub("alpha = 0.5", "alpha = 100.0"), "materials[0].alpha"),
    "material_key_typo": (sub("Ms = 8.0e5", "Mss = 8.0e5"), "did you mean 'Ms'"),
    "materials_empty": ("materials = []\n" + sub(MAT, ""), "materials = []"),
    "materials_not_tables": ("materials = 5\n" + sub(MAT, ""), "materials = 5"),
    "materials_same_name": (sub("[[geometry]]", '[[materials]]\nname = "py"\n\n[[geometry]]'), "materials[1].name"),
    "preset_unknown": (sub('name = "py"', 'name = "py"\npreset = "unobtainium"'), "materials[0].preset"),
    "cubic_axes_not_perpendicular": (sub("alpha = 0.5", "alpha = 0.5\nKc1 = 1e4\nKc_axis1 = [1, 0, 0]\nKc_axis2 = [1, 1, 0]"),
                                     "materials[0].Kc_axis2"),
    "ms_zero_not_magnetic": (sub("Ms = 8.0e5", "Ms = 0.0"), "magnetic cell"),
    # mesh
    "mesh_zero_cells": (sub("n = [8, 8, 1]", "n = [0, 8, 1]"), "mesh.n[0]"),
    "mesh_fractional": (sub("n = [8, 8, 1]", "n = [8.5, 8, 1]"), "mesh.n[0]"),
    "mesh_too_many_cells": (sub("n = [8, 8, 1]", "n = [4096, 4096, 4096]"), "mesh.n"),
    "mesh_million_square": (sub("n = [8, 8, 1]", "n = [1000000, 1000000, 1]"), "mesh.n[0]"),
    "mesh_negative_cell": (sub("cell_nm = [5.0, 5.0, 3.0]", "cell_nm = [-5.0, 5.0, 3.0]"), "mesh.cell_nm[0]"),
    "mesh_key_typo": (sub("cell_nm = [5.0, 5.0, 3.0]", "cels_nm = [5.0, 5.0, 3.0]"), "did you mean 'cell_nm'"),
    "mesh_missing": (sub("[mesh]\nn = [8, 8, 1]\ncell_nm = [5.0, 5.0, 3.0]\n", ""), "mesh"),
    "empty_file": ("", "mesh"),
    # geometry
    "geometry_outside_grid": (sub("center_nm = [0.0, 0.0]", "center_nm = [5000.0, 0.0]"), "magnetic cell"),
    "geometry_subtracted_away": (sub("[initial]", '[[geometry]]\nshape = "rectangle"\nop = "subtract"\n'
                                      'size_nm = [100.0, 100.0]\n\n[initial]'), "magnetic cell"),
    "layers_all": (sub("size_nm = [40.0, 40.0]", 'size_nm = [40.0, 40.0]\nlayers = "all"'), "geometry[0].layers"),
    "layers_out_of_range": (sub("size_nm = [40.0, 40.0]", "size_nm = [40.0, 40.0]\nlayers = [0, 5]"), "geometry[0].layers"),
    "shape_unknown": (sub('shape = "rectangle"', 'shape = "hexagon"'), "geometry[0].shape"),
    "shape_key_typo": (sub("center_nm = [0.0, 0.0]", "centre_nm = [0.0, 0.0]"), "geometry[0].centre_nm"),
    "image_missing": (sub('shape = "rectangle"\ncenter_nm = [0.0, 0.0]\nsize_nm = [40.0, 40.0]',
                          'shape = "image"\npath = "no_such_mask.png"'), "geometry[0].path"),
    "image_bomb": (sub('shape = "rectangle"\ncenter_nm = [0.0, 0.0]\nsize_nm = [40.0, 40.0]',
                       'shape = "image"\npath = "bomb.png"'), "geometry[0].path"),
    "geometry_material_unknown": (sub('shape = "rectangle"', 'shape = "rectangle"\nmaterial = "iron"'), "geometry[0].material"),
    "polygon_two_points": (sub('shape = "rectangle"\ncenter_nm = [0.0, 0.0]\nsize_nm = [40.0, 40.0]',
                               'shape = "polygon"\npoints_nm = [[0.0, 0.0], [10.0, 0.0]]'), "geometry[0].points_nm"),
    "ring_inner_bigger": (sub('shape = "rectangle"\ncenter_nm = [0.0, 0.0]\nsize_nm = [40.0, 40.0]',
                              'shape = "ring"\nouter_nm = 10.0\ninner_nm = 20.0'), "geometry[0].inner_nm"),
    # initial state
    "initial_key_typo": (sub("direction = [1.0, 0.2, 0.0]", "directon = [1.0, 0.2, 0.0]"), "did you mean 'direction'"),
    "initial_kind_typo": (sub('kind = "uniform"', 'kind = "vortx"'), "did you mean 'vortex'"),
    "initial_direction_zero": (sub("direction = [1.0, 0.2, 0.0]", "direction = [0.0, 0.0, 0.0]"), "initial.direction"),
    "initial_chirality_two": (sub('kind = "uniform"\ndirection = [1.0, 0.2, 0.0]', 'kind = "vortex"\nchirality = 2'),
                              "initial.chirality"),
    "initial_file_missing": (sub('kind = "uniform"\ndirection = [1.0, 0.2, 0.0]', 'kind = "file"\npath = "no_such.ovf"'),
                             "initial.path"),
    # field
    "field_nan": (sub("B_mT = [0.0, 0.0, 0.0]", "B_mT = [nan, 0.0, 0.0]"), "field.B_mT[0]"),
    "field_two_components": (sub("B_mT = [0.0, 0.0, 0.0]", "B_mT = [1.0, 0.0]"), "field.B_mT"),
    "ac_key_typo": (sub("B_mT = [0.0, 0.0, 0.0]", 'B_mT = [0.0, 0.0, 0.0]\nac = { kind = "pulse", amplitude_mT = [0.0, 0.0, 5.0], strat_ns = 0.1, width_ns = 0.1 }'),
                    "did you mean 'start_ns'"),
    "ac_kind_unknown": (sub("B_mT = [0.0, 0.0, 0.0]", 'B_mT = [0.0, 0.0, 0.0]\nac = { kind = "square" }'), "field.ac.kind"),
    "ac_width_zero": (sub("B_mT = [0.0, 0.0, 0.0]", 'B_mT = [0.0, 0.0, 0.0]\nac = { kind = "pulse", amplitude_mT = [0.0, 0.0, 5.0], width_ns = 0.0 }'),
                      "field.ac.width_ns"),
    "ac_sine_no_frequency": (sub("B_mT = [0.0, 0.0, 0.0]", 'B_mT = [0.0, 0.0, 0.0]\nac = { kind = "sine", amplitude_mT = [0.0, 0.0, 5.0] }'),
                             "field.ac.frequency_GHz"),
    "field_key_typo": (sub("B_mT = [0.0, 0.0, 0.0]", "B_mt = [0.0, 0.0, 0.0]"), "did you mean 'B_mT'"),
    # solver
    "solver_key_typo": (sub('method = "rk45"', 'methd = "rk45"'), "did you mean 'method'"),
    "solver_method_unknown": (sub('method = "rk45"', 'method = "euler"'), "solver.method"),
    "solver_device_tpu": (sub('demag = "none"', 'demag = "none"\ndevice = "tpu"'), "solver.device"),
    "solver_device_cuda99": (sub('demag = "none"', 'demag = "none"\ndevice = "cuda:99"'), "solver.device"),
    "solver_tolerance_zero": (sub('method = "rk45"', 'method = "rk45"\ntolerance = 0.0'), "solver.tolerance"),
    "solver_precision_half": (sub('method = "rk45"', 'method = "rk45"\nprecision = "float16"'), "solver.precision"),
    "solver_dt_negative": (sub('method = "rk45"', 'method = "rk4"\ndt_ps = -1.0'), "solver.dt_ps"),
    "solver_demag_typo": (sub('demag = "none"', 'demag = "neral"'), "did you mean 'neural'"),
    # stages
    "stage_key_typo": (sub("duration_ns = 0.001", "duration_ns = 0.001\n\n[[stages]]\nkind = \"relax\"\ntorqe = 1e-3"),
                       "did you mean 'torque'"),
    "stage_run_no_duration": (sub("duration_ns = 0.001", ""), "stages[0].duration_ns"),
    "stage_kind_unknown": (sub('kind = "run"', 'kind = "anneal"'), "stages[0].kind"),
    "stage_sweep_one_step": (sub('kind = "run"\nduration_ns = 0.001', 'kind = "sweep"\nfrom_mT = [0, 0, 0]\nto_mT = [10, 0, 0]\nsteps = 1'),
                             "stages[0].steps"),
    "stages_not_tables": (sub('[[stages]]\nkind = "run"\nduration_ns = 0.001\n', "").replace("[output]", 'stages = "relax"\n\n[output]', 1)
                          .replace('stages = "relax"\n\n[output]', "[output]").replace('title = "bad input"', 'title = "bad input"\nstages = "relax"'),
                          "stages"),
    # output and top level
    "output_zero_interval": (sub("table_every_ps = 1.0", "table_every_ps = 0.0"), "output.table_every_ps"),
    "top_level_typo": (sub("[solver]", "[solvr]"), "did you mean 'solver'"),
    "format_foreign": ('format = "mumax"\n' + BASE, "format"),
    "version_future": ("version = 99\n" + BASE, "version"),
    "title_not_text": (sub('title = "bad input"', "title = 5"), "title"),
    "toml_syntax_error": (sub("[mesh]", "[mesh"), "valid TOML"),
    "initial_ovf_nan": (sub('kind = "uniform"\ndirection = [1.0, 0.2, 0.0]', 'kind = "file"\npath = "nan_value.ovf"'), "initial.path"),
}

BINARY_TOML = {
    "binary_garbage": (bytes(range(256)) * 4, "UTF-8"),
    "latin1_text": (BASE.replace('title = "bad input"', 'title = "d\xe9faut"').encode("latin-1"), "UTF-8"),
    "nul_bytes": (BASE.encode() + b"\x00\x00\x00", "NUL"),
}


def ovf(nodes=(8, 8, 1), step=("5e-09", "5e-09", "3e-09"), fmt="Binary 4", data=None, first="# OOMMF OVF 2.0",
        valuedim="3", extra=b"", check=1234567.0, end=True):
    nx, ny, nz = nodes
    head = [first, "# Segment count: 1", "# Begin: Segment", "# Begin: Header", "# Title: m",
            "# meshtype: rectangular", "# meshunit: m", "# xmin: 0", "# ymin: 0", "# zmin: 0",
            f"# valuedim: {valuedim}", f"# xnodes: {nx}", f"# ynodes: {ny}", f"# znodes: {nz}",
            f"# xstepsize: {step[0]}", f"# ystepsize: {step[1]}", f"# zstepsize: {step[2]}",
            "# End: Header", f"# Begin: Data {fmt}", ""]
    out = "\n".join(head).encode()
    if data is None:
        data = np.zeros((min(nz, 8), min(ny, 8), min(nx, 8), 3), np.float32)
        data[..., 0] = 1.0
    if fmt == "Binary 4":
        out += np.float32(check).astype("<f4").tobytes() + np.asarray(data, "<f4").tobytes()
    elif fmt == "Text":
        out += "\n".join(" ".join(f"{v:.7g}" for v in row) for row in np.asarray(data).reshape(-1, 3)).encode()
    out += extra
    if end:
        out += f"\n# End: Data {fmt}\n# End: Segment\n".encode()
    return out


def _m(nan=False, inf=False):
    d = np.zeros((1, 8, 8, 3), np.float32)
    d[..., 0] = 1.0
    if nan:
        d[0, 3, 3, 1] = np.nan
    if inf:
        d[0, 2, 5, 0] = np.inf
    return d


OVF = {
    "nan_value.ovf": (ovf(data=_m(nan=True)), "NaN"),
    "inf_value.ovf": (ovf(data=_m(inf=True)), "NaN or infinite"),
    "nan_text.ovf": (ovf(fmt="Text", data=_m(nan=True)), "NaN"),
    "zero_stepsize.ovf": (ovf(step=("0", "5e-09", "3e-09")), "step sizes"),
    "negative_stepsize.ovf": (ovf(step=("-5e-09", "5e-09", "3e-09")), "step sizes"),
    "nan_stepsize.ovf": (ovf(step=("nan", "5e-09", "3e-09")), "step sizes"),
    "truncated.ovf": (ovf(data=_m()[:, :4], end=False), "truncated"),
    "too_many_text_values.ovf": (ovf(fmt="Text", data=np.concatenate([_m(), _m()], axis=0)), "node counts declare"),
    "extra_binary_data.ovf": (ovf(data=np.concatenate([_m(), _m()], axis=0)), "do not end"),
    "wrong_check_value.ovf": (ovf(check=7654321.0), "check value"),
    "not_ovf.ovf": (b"hello, I am a text file\n" * 20, "first line"),
    "no_data_line.ovf": (b"# OOMMF OVF 2.0\n# Begin: Segment\n# Begin: Header\n# xnodes: 8\n", "incomplete"),
    "million_squared.ovf": (ovf(nodes=(1000000, 1000000, 1)), "1000000 x 1000000"),
    "wrong_grid.ovf": (ovf(nodes=(4, 4, 1), data=_m()[:, :4, :4]), "8 x 8 x 1"),
    "unknown_data_format.ovf": (ovf(fmt="Binary 2"), "unknown data format"),
    "irregular.ovf": (ovf(first="# OOMMF: irregular mesh v1.0"), "irregular"),
    "valuedim_zero.ovf": (ovf(valuedim="0"), "valuedim"),
    "nodes_text.ovf": (ovf().replace(b"# xnodes: 8", b"# xnodes: eight"), "not a number"),
}


def bomb_png(w=100000, h=100000) -> bytes:
    """A 5 kB PNG whose header declares 10^10 pixels (a decompression bomb)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    comp = zlib.compressobj(9)
    data = comp.compress(b"\x00" * (w + 1) * 50) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def main():
    expect = {}
    for name, (text, exp) in TOML.items():
        (HERE / f"{name}.toml").write_text(text)
        expect[f"{name}.toml"] = exp
    for name, (raw, exp) in BINARY_TOML.items():
        (HERE / f"{name}.toml").write_bytes(raw)
        expect[f"{name}.toml"] = exp
    for name, (raw, exp) in OVF.items():
        (HERE / name).write_bytes(raw)
        expect[name] = exp
    (HERE / "bomb.png").write_bytes(bomb_png())
    lines = ["# file = text the one-line refusal must contain (written by make_corpus.py)"]
    lines += [f'"{k}" = {v!r}'.replace("'", '"') if "'" not in v else f"\"{k}\" = \"{v}\"" for k, v in sorted(expect.items())]
    (HERE / "expect.toml").write_text("\n".join(lines) + "\n")
    print(f"{len(expect)} cases")


if __name__ == "__main__":
    main()
