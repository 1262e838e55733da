"""The problem description: everything a simulation needs, in the user's units.

One description serves the TOML problem file, the GUI and the HDF5 project. Lengths are in nm,
fields in mT (mu0*H), times in ns (durations) or ps (sampling), material constants in SI
(Ms in A/m, A in J/m, Ku and Kc1 in J/m^3, D in J/m^2). The engine converts to SI when it
builds a state. Every value is checked here, and a bad one raises `ProblemError` naming the
key, the value and what is allowed.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, asdict, field as _f
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ProblemError

FORMAT_NAME = "nmag-problem"
FORMAT_VERSION = 1

SHAPES = ("rectangle", "ellipse", "polygon", "ring", "image", "cuboid", "cylinder", "sphere", "ellipsoid", "mesh")
SHAPE_OPS = ("add", "subtract", "intersect")
INITIAL_KINDS = ("uniform", "random", "vortex", "s_state", "skyrmion", "domain_wall", "file")
SOLVERS = ("rk45", "rk4", "heun")
DEMAG_METHODS = ("fft", "neural", "neural+probe", "none")
PRECISIONS = ("float32", "float64")
FFT_BACKENDS = ("auto", "torch", "scipy", "fftw")   # engine.fft_backends.CHOICES
AC_KINDS = ("none", "sine", "pulse", "ramp")
STAGE_KINDS = ("relax", "run", "sweep")
# ranges shared by the problem's keys and the Simulation's setters (engine.simulation)
ALPHA_RANGE = (0.0, 10.0)          # Gilbert damping
TORQUE_RANGE = (1e-10, 1.0)        # relax's max |m x h| (h = H/Ms)
MAX_STEPS_RANGE = (1, 1e9)         # relax iterations


# --------------------------------------------------------------------------- checks
# (in engine.validation; imported here so `from engine.problem import check_number` keeps working)
from .validation import check_choice, check_keys, check_number, check_vector  # noqa: E402,F401
from .toml_file import MAX_TOML_BYTES, read_toml  # noqa: E402,F401  (one TOML reader, re-exported)

# known keys of the tables whose keys depend on a kind
AC_KEYS = {"none": set(), "sine": {"amplitude_mT", "frequency_GHz", "phase_deg"},
           "pulse": {"amplitude_mT", "start_ns", "width_ns"}, "ramp": {"to_mT", "duration_ns"}}
STAGE_KEYS = {"relax": {"torque", "max_steps", "B_mT", "alpha"},
              "run": {"duration_ns", "B_mT", "alpha"},
              "sweep": {"from_mT", "to_mT", "steps", "torque", "max_steps", "alpha"}}


# --------------------------------------------------------------------------- parts
@dataclass
class Mesh:
    """A regular grid: n = (nx, ny, nz) cells of size cell_nm = (dx, dy, dz) in nm."""
    n: tuple = (64, 64, 1)
    cell_nm: tuple = (3.0, 3.0, 3.0)

    def validate(self, key="mesh"):
        self.n = tuple(check_number(f"{key}.n[{i}]", v, 1, 4096, integer=True)
                       for i, v in enumerate(_seq(f"{key}.n", self.n, 3)))
        self.cell_nm = check_vector(f"{key}.cell_nm", self.cell_nm, 3, 0.01, 1000.0)
        if self.n[0] * self.n[1] * self.n[2] > 2 ** 24:
            raise ProblemError(f"{key}.n", list(self.n), "at most 16,777,216 cells in all")

    @property
    def cell_m(self) -> tuple:
        return tuple(c * 1e-9 for c in self.cell_nm)

    @property
    def shape_zyx(self) -> tuple:
        """Array shape (nz, ny, nx) used by every cell array in the engine."""
        return (self.n[2], self.n[1], self.n[0])


@dataclass
class Material:
    """Material constants in SI units. D is interfacial DMI (J/m^2); axes need not be unit length."""
    name: str = "permalloy"
    Ms: float = 8.0e5          # A/m
    A: float = 1.3e-11         # J/m
    alpha: float = 0.02
    Ku: float = 0.0            # J/m^3, uniaxial
    Ku_axis: tuple = (0.0, 0.0, 1.0)
    Kc1: float = 0.0           # J/m^3, cubic
    Kc_axis1: tuple = (1.0, 0.0, 0.0)
    Kc_axis2: tuple = (0.0, 1.0, 0.0)
    D: float = 0.0             # J/m^2, interfacial DMI

    def validate(self, key="material"):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ProblemError(f"{key}.name", self.name, "a non-empty name")
        self.Ms = check_number(f"{key}.Ms", self.Ms, 0.0, 1e7)
        self.A = check_number(f"{key}.A", self.A, 0.0, 1e-9)
        self.alpha = check_number(f"{key}.alpha", self.alpha, *ALPHA_RANGE)
        self.Ku = check_number(f"{key}.Ku", self.Ku, -1e8, 1e8)
        self.Ku_axis = check_vector(f"{key}.Ku_axis", self.Ku_axis, nonzero=True)
        self.Kc1 = check_number(f"{key}.Kc1", self.Kc1, -1e8, 1e8)
        self.Kc_axis1 = check_vector(f"{key}.Kc_axis1", self.Kc_axis1, nonzero=True)
        self.Kc_axis2 = check_vector(f"{key}.Kc_axis2", self.Kc_axis2, nonzero=True)
        a1, a2 = np.asarray(self.Kc_axis1), np.asarray(self.Kc_axis2)
        if abs(a1 @ a2) > 1e-6 * np.linalg.norm(a1) * np.linalg.norm(a2):
            raise ProblemError(f"{key}.Kc_axis2", list(self.Kc_axis2), "an axis perpendicular to Kc_axis1")
        self.D = check_number(f"{key}.D", self.D, -1e-1, 1e-1)


@dataclass
class ShapeOp:
    """One step of the geometry: a shape (in nm, origin at the grid centre) added to, cut from
    or intersected with the sample. `material` names the region's material for "add".

    params by shape: rectangle {center_nm, size_nm}; ellipse {center_nm, radii_nm};
    polygon {points_nm}; ring {center_nm, outer_nm, inner_nm}; image {path, threshold}.
    Optional `layers = [k0, k1]` limits it to layers k0 <= k < k1.
    """
    shape: str = "rectangle"
    op: str = "add"
    material: str = ""
    params: dict = _f(default_factory=dict)

    def validate(self, key="geometry", material_names=(), base_dir="."):
        check_choice(f"{key}.shape", self.shape, SHAPES)
        check_choice(f"{key}.op", self.op, SHAPE_OPS)
        if self.op == "add" and material_names and self.material not in material_names:
            if self.material == "" and len(material_names) >= 1:
                self.material = material_names[0]
            else:
                raise ProblemError(f"{key}.material", self.material,
                                   "one of the materials: " + ", ".join(material_names))
        from .geometry import shape_from_op  # validates the params
        self.params["_base_dir"] = str(base_dir)
        try:
            shape_from_op(self, key)
        finally:
            self.params.pop("_base_dir", None)


@dataclass
class InitialState:
    """The starting magnetization. kind and its params (see engine.initial_states)."""
    kind: str = "uniform"
    params: dict = _f(default_factory=lambda: {"direction": [1.0, 0.0, 0.0]})

    def validate(self, key="initial"):
        check_choice(f"{key}.kind", self.kind, INITIAL_KINDS)
        from .initial_states import validate_initial  # params checked where they are used
        validate_initial(self.kind, self.params, key)


@dataclass
class FieldSpec:
    """Applied field: a static B_mT (mu0*H, mT) plus an optional time-dependent part `ac`:
    {kind: sine, amplitude_mT: [3], frequency_GHz, phase_deg}, {kind: pulse, amplitude_mT: [3],
    start_ns, width_ns}, or {kind: ramp, to_mT: [3], duration_ns} (linear from B_mT)."""
    B_mT: tuple = (0.0, 0.0, 0.0)
    ac: dict = _f(default_factory=lambda: {"kind": "none"})

    def validate(self, key="field"):
        self.B_mT = check_vector(f"{key}.B_mT", self.B_mT, 3, -1e5, 1e5)
        if not isinstance(self.ac, dict):
            raise ProblemError(f"{key}.ac", self.ac, "a table with a kind (none, sine, pulse, ramp)")
        kind = check_choice(f"{key}.ac.kind", self.ac.get("kind", "none"), AC_KINDS)
        a = self.ac
        check_keys(a, f"{key}.ac", AC_KEYS[kind] | {"kind"})
        if kind == "sine":
            a["amplitude_mT"] = list(check_vector(f"{key}.ac.amplitude_mT", a.get("amplitude_mT"), 3, -1e5, 1e5))
            a["frequency_GHz"] = check_number(f"{key}.ac.frequency_GHz", a.get("frequency_GHz"), 0.0, 1e4)
            a["phase_deg"] = check_number(f"{key}.ac.phase_deg", a.get("phase_deg", 0.0), -360, 360)
        elif kind == "pulse":
            a["amplitude_mT"] = list(check_vector(f"{key}.ac.amplitude_mT", a.get("amplitude_mT"), 3, -1e5, 1e5))
            a["start_ns"] = check_number(f"{key}.ac.start_ns", a.get("start_ns", 0.0), 0.0, 1e6)
            a["width_ns"] = check_number(f"{key}.ac.width_ns", a.get("width_ns"), 0.0, 1e6, lo_open=True)
        elif kind == "ramp":
            a["to_mT"] = list(check_vector(f"{key}.ac.to_mT", a.get("to_mT"), 3, -1e5, 1e5))
            a["duration_ns"] = check_number(f"{key}.ac.duration_ns", a.get("duration_ns"), 0.0, 1e6, lo_open=True)


@dataclass
class SolverSpec:
    """Time integrator, its tolerance or fixed step, precision, device and demag method."""
    method: str = "rk45"
    tolerance: float = 1e-5      # RK45 error tolerance on m per step
    dt_ps: float = 0.1           # fixed step for rk4/heun, first try for rk45
    max_dt_ps: float = 10.0
    precision: str = "float32"
    device: str = "cpu"
    demag: str = "fft"
    probe_every: int = 10        # steps between error probes for "neural+probe"
    relax_torque: float = 1e-4   # relax stops when max |m x h| (h = H/Ms) falls below this
    fft: str = "auto"            # FFT backend of the exact demag (engine.fft_backends)

    def validate(self, key="solver"):
        check_choice(f"{key}.method", self.method, SOLVERS)
        self.tolerance = check_number(f"{key}.tolerance", self.tolerance, 1e-12, 1e-1, lo_open=False)
        self.dt_ps = check_number(f"{key}.dt_ps", self.dt_ps, 1e-6, 1e3)
        self.max_dt_ps = check_number(f"{key}.max_dt_ps", self.max_dt_ps, 1e-6, 1e4)
        check_choice(f"{key}.precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ProblemError(f"{key}.device", self.device, "'cpu' or 'cuda' (or 'cuda:N')")
        check_choice(f"{key}.demag", self.demag, DEMAG_METHODS)
        self.probe_every = check_number(f"{key}.probe_every", self.probe_every, 1, 1e6, integer=True)
        self.relax_torque = check_number(f"{key}.relax_torque", self.relax_torque, *TORQUE_RANGE)
        from .fft_backends import available_backends, is_choice, split_name
        if not is_choice(self.fft):
            raise ProblemError(f"{key}.fft", self.fft, "one of " + ", ".join(repr(c) for c in FFT_BACKENDS)
                               + ", or a forward+inverse pair such as 'fftw+torch'; torch and scipy may "
                               "name their spectrum layout, as in 'torch@xy'")
        if self.fft != "auto":
            here = available_backends(self.device)
            if any(split_name(b)[0] not in here for b in self.fft.split("+")):
                raise ProblemError(f"{key}.fft", self.fft, "a backend available here: auto, " + ", ".join(here)
                                   + (" (pyFFTW is an optional extra: pip install pyfftw)" if "fftw" in self.fft else ""))


@dataclass
class Stage:
    """One stage of a problem file, run in order:
    relax {torque?, max_steps?}; run {duration_ns, B_mT?, alpha?}; sweep {from_mT, to_mT, steps}
    (relaxes at each field of a straight line from from_mT to to_mT and records the table)."""
    kind: str = "run"
    params: dict = _f(default_factory=dict)

    def validate(self, key="stages"):
        check_choice(f"{key}.kind", self.kind, STAGE_KINDS)
        p = self.params
        check_keys(p, key, STAGE_KEYS[self.kind] | {"kind"})
        if self.kind == "run":
            p["duration_ns"] = check_number(f"{key}.duration_ns", p.get("duration_ns"), 0.0, 1e6, lo_open=True)
        if "B_mT" in p:
            p["B_mT"] = list(check_vector(f"{key}.B_mT", p["B_mT"], 3, -1e5, 1e5))
        if "alpha" in p:
            p["alpha"] = check_number(f"{key}.alpha", p["alpha"], *ALPHA_RANGE)
        if self.kind == "sweep":
            p["from_mT"] = list(check_vector(f"{key}.from_mT", p.get("from_mT"), 3, -1e5, 1e5))
            p["to_mT"] = list(check_vector(f"{key}.to_mT", p.get("to_mT"), 3, -1e5, 1e5))
            p["steps"] = check_number(f"{key}.steps", p.get("steps"), 2, 100000, integer=True)
        if "max_steps" in p:
            p["max_steps"] = check_number(f"{key}.max_steps", p["max_steps"], *MAX_STEPS_RANGE, integer=True)
        if "torque" in p:
            p["torque"] = check_number(f"{key}.torque", p["torque"], *TORQUE_RANGE)


@dataclass
class Output:
    """How often the table row and the snapshot of m are recorded (ps of simulated time)."""
    table_every_ps: float = 10.0
    snapshot_every_ps: float = 100.0

    def validate(self, key="output"):
        self.table_every_ps = check_number(f"{key}.table_every_ps", self.table_every_ps, 1e-6, 1e9, lo_open=True)
        self.snapshot_every_ps = check_number(f"{key}.snapshot_every_ps", self.snapshot_every_ps, 1e-6, 1e12, lo_open=True)


@dataclass
class Problem:
    """A whole micromagnetic problem. `region_map` (int array (nz, ny, nx), -1 = vacuum, k =
    materials[k]) overrides `geometry` when set: it is what the GUI paints."""
    title: str = "untitled"
    mesh: Mesh = _f(default_factory=Mesh)
    materials: list = _f(default_factory=lambda: [Material()])
    geometry: list = _f(default_factory=lambda: [ShapeOp("rectangle", "add", "permalloy",
                                                             {"center_nm": [0, 0], "size_nm": [1e9, 1e9]})])
    initial: InitialState = _f(default_factory=InitialState)
    field: FieldSpec = _f(default_factory=FieldSpec)
    solver: SolverSpec = _f(default_factory=SolverSpec)
    stages: list = _f(default_factory=list)
    output: Output = _f(default_factory=Output)
    region_map: Any = None
    base_dir: str = "."   # where relative paths (image masks, initial-state files) are resolved

    # ---------------------------------------------------------------- validation
    def validate(self) -> "Problem":
        """Check every value; raise ProblemError on the first bad one. Returns self."""
        if not isinstance(self.title, str) or len(self.title) > 1000:
            raise ProblemError("title", self.title, "a string of at most 1000 characters")
        self.mesh.validate()
        if not self.materials:
            raise ProblemError("materials", [], "at least one material")
        names = []
        for i, m in enumerate(self.materials):
            m.validate(f"materials[{i}]")
            if m.name in names:
                raise ProblemError(f"materials[{i}].name", m.name, "a name not used by another material")
            names.append(m.name)
        if self.region_map is None:
            if not self.geometry:
                raise ProblemError("geometry", [], "at least one shape (or a painted region map)")
            for i, g in enumerate(self.geometry):
                if not isinstance(g, ShapeOp):
                    raise ProblemError(f"geometry[{i}]", g, "a shape table")
                g.validate(f"geometry[{i}]", names, self.base_dir)
                if "layers" in g.params:
                    g.params["layers"] = _check_layers(f"geometry[{i}].layers", g.params["layers"], self.mesh.n[2])
        else:
            rm = np.asarray(self.region_map)
            if rm.shape != self.mesh.shape_zyx:
                raise ProblemError("region_map", f"shape {rm.shape}", f"shape (nz, ny, nx) = {self.mesh.shape_zyx}")
            if rm.min() < -1 or rm.max() >= len(self.materials):
                raise ProblemError("region_map", f"values {rm.min()}..{rm.max()}",
                                   f"-1 (vacuum) or 0..{len(self.materials) - 1}")
        self.initial.validate()
        self.field.validate()
        self.solver.validate()
        if "@xy" in self.solver.fft:
            from .fft_backends import padded_shape, transposable
            if not transposable(padded_shape(self.mesh.n)):
                raise ProblemError("solver.fft", self.solver.fft, "a layout @xy only for films of one layer "
                                   f"(nz = 1, nx and ny > 1; the mesh is {tuple(self.mesh.n)}): drop the @xy")
        for i, s in enumerate(self.stages):
            s.validate(f"stages[{i}]")
        self.output.validate()
        return self

    # ---------------------------------------------------------------- derived
    def regions(self) -> np.ndarray:
        """Region index per cell, int16 (nz, ny, nx); -1 is vacuum."""
        if self.region_map is not None:
            return np.asarray(self.region_map, dtype=np.int16)
        from .geometry import rasterize
        return rasterize(self)

    def material_index(self, name: str) -> int:
        for i, m in enumerate(self.materials):
            if m.name == name:
                return i
        raise ProblemError("material", name, "one of " + ", ".join(m.name for m in self.materials))

    def copy(self) -> "Problem":
        return copy.deepcopy(self)

    # ---------------------------------------------------------------- dict / TOML
    def to_dict(self) -> dict:
        """A plain dict (TOML/JSON-ready; the region map is left out: it is stored as an array)."""
        d = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "title": self.title,
             "mesh": {"n": list(self.mesh.n), "cell_nm": list(self.mesh.cell_nm)},
             "materials": [_plain(asdict(m)) for m in self.materials],
             "geometry": [dict(shape=g.shape, op=g.op, material=g.material, **_plain(g.params))
                          for g in self.geometry],
             "initial": dict(kind=self.initial.kind, **_plain(self.initial.params)),
             "field": {"B_mT": list(self.field.B_mT), "ac": _plain(self.field.ac)},
             "solver": _plain(asdict(self.solver)),
             "stages": [dict(kind=s.kind, **_plain(s.params)) for s in self.stages],
             "output": _plain(asdict(self.output))}
        return d

    @classmethod
    def from_dict(cls, d: dict, base_dir: str | Path = ".", region_map=None) -> "Problem":
        """Build and validate a Problem from a dict as read from TOML; unknown keys are errors."""
        if not isinstance(d, dict):
            raise ProblemError("problem", type(d).__name__, "a table of keys")
        known = {"format", "version", "title", "mesh", "materials", "geometry", "initial",
                 "field", "solver", "stages", "output"}
        for k in d:
            if k not in known:
                from .validation import _did_you_mean
                raise ProblemError(k, d[k], "a known top-level key: " + ", ".join(sorted(known))
                                   + _did_you_mean(k, sorted(known)))
        if d.get("format", FORMAT_NAME) != FORMAT_NAME:
            raise ProblemError("format", d.get("format"), repr(FORMAT_NAME))
        version = d.get("version", FORMAT_VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise ProblemError("version", version, f"1..{FORMAT_VERSION} (this nmag reads up to {FORMAT_VERSION})")
        p = cls()
        p.base_dir = str(base_dir)
        p.title = d.get("title", "untitled")
        m = _table(d, "mesh")
        check_keys(m, "mesh", {"n", "cell_nm"})
        p.mesh = Mesh(**m)
        mats = d.get("materials", [{}])
        if not isinstance(mats, list):
            raise ProblemError("materials", mats, "an array of tables ([[materials]])")
        if not mats:
            raise ProblemError("materials", mats, "at least one material ([[materials]])")
        p.materials = [_material_from(mm, f"materials[{i}]") for i, mm in enumerate(mats)]
        geo = d.get("geometry")
        if geo is None:
            geo = [{"shape": "rectangle", "size_nm": [1e9, 1e9], "center_nm": [0, 0]}]
        if not isinstance(geo, list):
            raise ProblemError("geometry", geo, "an array of tables ([[geometry]])")
        p.geometry = []
        for i, g in enumerate(geo):
            g = dict(_table({"g": g}, "g", f"geometry[{i}]"))
            p.geometry.append(ShapeOp(g.pop("shape", "rectangle"), g.pop("op", "add"),
                                      g.pop("material", p.materials[0].name), g))
        ini = dict(_table(d, "initial", default={"kind": "uniform", "direction": [1, 0, 0]}))
        p.initial = InitialState(ini.pop("kind", "uniform"), ini)
        f = dict(_table(d, "field", default={}))
        check_keys(f, "field", {"B_mT", "ac"})
        B = f.get("B_mT", (0.0, 0.0, 0.0))
        ac = f.get("ac", {"kind": "none"})
        p.field = FieldSpec(tuple(B) if isinstance(B, (list, tuple)) else B, dict(ac) if isinstance(ac, dict) else ac)
        s = dict(_table(d, "solver", default={}))
        check_keys(s, "solver", set(SolverSpec.__dataclass_fields__))
        p.solver = SolverSpec(**s)
        st = d.get("stages", [])
        if not isinstance(st, list):
            raise ProblemError("stages", st, "an array of tables ([[stages]])")
        p.stages = []
        for i, sd in enumerate(st):
            sd = dict(_table({"s": sd}, "s", f"stages[{i}]"))
            p.stages.append(Stage(sd.pop("kind", "run"), sd))
        o = dict(_table(d, "output", default={}))
        check_keys(o, "output", set(Output.__dataclass_fields__))
        p.output = Output(**o)
        p.region_map = region_map
        return p.validate()

    def to_toml(self) -> str:
        import tomli_w
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, path: str | Path) -> "Problem":
        """Read a TOML problem file. Syntax errors also come out as ProblemError."""
        path = Path(path)
        d = read_toml(path, "problem file")
        return cls.from_dict(d, base_dir=path.parent)


def _material_from(mm, key) -> Material:
    if not isinstance(mm, dict):
        raise ProblemError(key, mm, "a table of material constants")
    mm = dict(mm)
    base = Material()
    if "preset" in mm:
        base = preset(mm.pop("preset"), key=f"{key}.preset")
    check_keys(mm, key, set(Material.__dataclass_fields__))
    for k, v in mm.items():
        setattr(base, k, tuple(v) if isinstance(v, list) else v)
    return base


def _table(d, name, key=None, default=None):
    v = d.get(name, default)
    if v is None:
        raise ProblemError(key or name, "missing", f"a [{key or name}] table (the file has none)")
    if not isinstance(v, dict):
        raise ProblemError(key or name, v, "a table of keys")
    return v


def _only(d, key, allowed):
    check_keys(d, key, allowed)


def _check_layers(key, v, nz):
    """`layers = [k0, k1]`: the layers k0 <= k < k1 of the nz layers."""
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ProblemError(key, v, f"a list [k0, k1] of layer indices with 0 <= k0 < k1 <= {nz}")
    k0 = check_number(f"{key}[0]", v[0], 0, nz - 1, integer=True)
    k1 = check_number(f"{key}[1]", v[1], k0 + 1, nz, integer=True)
    return [k0, k1]


def _seq(key, v, n):
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise ProblemError(key, v, f"a list of {n} integers")
    return v


def _plain(x):
    """Tuples to lists and numpy scalars to Python numbers, so TOML and JSON accept it."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def preset(name: str, key: str = "preset") -> Material:
    """A fresh Material with a preset's values (engine.materials; unknown names raise ProblemError)."""
    from .materials import preset_values
    return Material(name=name, **preset_values(name, set(Material.__dataclass_fields__), key))
