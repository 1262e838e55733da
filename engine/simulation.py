"""Simulation: a Problem turned into a state, a list of field terms and an integrator.

The effective field is the sum of the terms' h(state); the integrator sees only the LLG
right-hand side. Parameter edits arrive as a new Problem (`update_problem`) and are applied
between steps, keeping m and t.

Health: a step, run or relax that goes non-finite (or, for the fixed-step integrators in a
damped run with static fields, raises the energy beyond ENERGY_RISE_TOL) raises
`SimulationDiverged`, and the Simulation keeps its last good state (m, t, steps).
"""
from __future__ import annotations

import numpy as np
import torch

from .anisotropy import CubicAnisotropy, UniaxialAnisotropy
from .cell_kernel import CellKernel
from .constants import PS
from .demag import FFTDemag, NoDemag
from .errors import ProblemError, SimulationDiverged
from .dmi import InterfacialDMI
from .exchange import Exchange
from .frame import Frame
from .initial_states import initial_m
from .llg import llg_rhs, max_torque
from .problem import ALPHA_RANGE, MAX_STEPS_RANGE, TORQUE_RANGE
from .solvers import RK4, RK45, Heun, relax
from .state import State, normalize
from .validation import check_device, check_finite_array, check_number, check_simulation_memory
from .zeeman import AppliedField, Zeeman

ENERGY_CHECK_EVERY = 10     # fixed-step runs: steps between two energy checks
ENERGY_RISE_TOL = 1e-3      # allowed rise, relative to |E| (plus 1e-6 of the demag energy scale)


def make_demag(method: str, state: State, problem=None):
    """A Demag implementation by name: "fft", "neural", "neural+probe" or "none"."""
    if method == "fft":
        return FFTDemag(state.n, state.d, state.dtype, state.device,
                        fft=problem.solver.fft if problem is not None else "auto")
    if method == "none":
        return NoDemag()
    if method in ("neural", "neural+probe"):
        from .neural.demag import NeuralDemag
        return NeuralDemag(state.n, state.d, state.dtype, state.device,
                           probe_every=problem.solver.probe_every if (problem and method == "neural+probe") else 0,
                           fft=problem.solver.fft if problem is not None else "auto")
    raise ValueError(f"unknown demag method {method!r}")


def make_integrator(solver_spec):
    if solver_spec.method == "rk45":
        return RK45(solver_spec.tolerance, dt=solver_spec.dt_ps * PS, max_dt=solver_spec.max_dt_ps * PS)
    if solver_spec.method == "rk4":
        return RK4(solver_spec.dt_ps * PS)
    return Heun(solver_spec.dt_ps * PS)


class Simulation:
    """Evolve m(r, t) of a Problem by the LLG equation. See docs/ARCHITECTURE.md for the API."""

    def __init__(self, problem, m0=None):
        self.problem = problem.copy().validate()
        check_device("solver.device", self.problem.solver.device)
        check_simulation_memory(self.problem)
        self.regions = self.problem.regions()
        self.mask = self.regions >= 0
        key = "initial state"
        if m0 is None:
            ini, key = self.problem.initial, "initial"
            m0 = initial_m(ini.kind, ini.params, self.problem.mesh, self.mask, self.problem.base_dir)
        m0 = _checked_m(m0, self.problem.mesh.shape_zyx, self.mask, key)
        self.state = State.from_problem(self.problem, self.regions, m0)
        self.steps = 0
        self._watch = self._watchable = None   # energy watch of damped fixed-step runs (see _watch_energy)
        self.demag = make_demag(self.problem.solver.demag, self.state, self.problem)
        self._build_terms()
        self.integrator = make_integrator(self.problem.solver)

    # ------------------------------------------------------------------ set-up
    def _build_terms(self):
        st, mats = self.state, self.problem.materials
        self.zeeman = Zeeman(st, AppliedField(self.problem.field.B_mT, self.problem.field.ac))
        terms = [Exchange(st), self.demag, self.zeeman]
        if any(mm.Ku != 0 for mm in mats):
            terms.append(UniaxialAnisotropy(st))
        if any(mm.Kc1 != 0 for mm in mats):
            terms.append(CubicAnisotropy(st))
        if any(mm.D != 0 for mm in mats):
            terms.append(InterfacialDMI(st))
        self.terms = terms
        # the exchange, applied field, anisotropy and torque in one compiled pass on small grids
        self.cells, self.cells_why = CellKernel.for_terms(st, terms)   # cells_why: why None (torch runs them)

    def update_problem(self, problem):
        """Apply edited materials, field and solver settings between steps; keep m and t.
        A changed grid or geometry needs a new Simulation."""
        problem = problem.copy().validate()
        check_device("solver.device", problem.solver.device)
        if tuple(problem.mesh.n) != tuple(self.problem.mesh.n) or \
                tuple(problem.mesh.cell_nm) != tuple(self.problem.mesh.cell_nm) or \
                not np.array_equal(problem.regions(), self.regions):
            raise ProblemError("mesh", "a changed grid or geometry",
                               "the grid and geometry of this Simulation (build a new Simulation for another)")
        m, t = self.state.m, self.state.t
        old_demag = self.problem.solver.demag
        # build everything first and swap it in at the end: a failure leaves the simulation as it was
        state = State.from_problem(problem, self.regions, m.cpu().numpy())
        state.t = t
        demag = self.demag
        if problem.solver.demag != old_demag or state.dtype != self.demag_dtype() or \
                str(state.device) != str(self.state.device):
            demag = make_demag(problem.solver.demag, state, problem)
        integrator = make_integrator(problem.solver)
        saved = (self.problem, self.state, self.demag, self.terms, self.zeeman, self.cells, self.cells_why,
                 self.integrator)
        try:
            self.problem, self.state, self.demag, self.integrator = problem, state, demag, integrator
            self._build_terms()
        except BaseException:
            (self.problem, self.state, self.demag, self.terms, self.zeeman, self.cells, self.cells_why,
             self.integrator) = saved
            raise
        self._watch = self._watchable = None

    def demag_dtype(self):
        return getattr(self.demag, "dtype", self.state.dtype)

    @property
    def demag_in_use(self) -> str:
        """The demag method computing the field now: the problem's solver.demag, or "fft" where
        the neural demag is outside its model card and runs the exact FFT instead."""
        return "fft" if getattr(self.demag, "fallback", None) is not None else self.problem.solver.demag

    def set_applied_field(self, B_mT, ac=None):
        """Set the applied field mu0*H: B_mT a static (Bx, By, Bz) in mT, `ac` an optional
        time-dependent part as in the problem's [field.ac] table (None keeps the present one).
        Checked as a problem file's [field] is: bad values raise ProblemError naming the key."""
        from .problem import FieldSpec
        ac = self.problem.field.ac if ac is None else ac
        spec = FieldSpec(B_mT=B_mT, ac=dict(ac) if isinstance(ac, dict) else ac)   # validate fills in ac
        spec.validate()
        self.zeeman.applied = AppliedField(spec.B_mT, spec.ac)
        self.problem.field.B_mT, self.problem.field.ac = tuple(spec.B_mT), dict(spec.ac)
        self.integrator.reset()
        self._watch = self._watchable = None

    def set_alpha(self, alpha: float):
        """Set the Gilbert damping (dimensionless, 0 to 10) in every cell."""
        alpha = check_number("alpha", alpha, *ALPHA_RANGE)
        self.state.alpha = torch.full_like(self.state.alpha, alpha)
        self.integrator.reset()
        self._watch = self._watchable = None

    def set_m(self, m):
        """Replace m (3, nz, ny, nx, any length: normalised here); refused (ProblemError) when it
        has the wrong shape, holds NaN/inf, or is zero in a magnet cell."""
        m = _checked_m(m, self.state.shape, self.mask)
        m = torch.as_tensor(m, dtype=self.state.dtype, device=self.state.device)
        self.state.m = normalize(m, self.state.mask)
        self.integrator.reset()
        self._watch = self._watchable = None

    # ------------------------------------------------------------------ physics
    @property
    def m(self) -> torch.Tensor:
        """The reduced magnetisation (3, nz, ny, nx): unit vectors in the magnet, 0 in vacuum."""
        return self.state.m

    @property
    def t(self) -> float:
        """Simulated time in s."""
        return self.state.t

    def effective_field(self, m=None, t=None) -> torch.Tensor:
        """H_eff in A/m for m (default: the current m) at time t."""
        st = self.state
        saved = (st.m, st.t)
        if m is not None:
            st.m = m
        if t is not None:
            st.t = t
        try:
            if self.cells is not None:
                return self.cells.field(st)
            H = self.terms[0].h(st)   # the exchange field: a new tensor, so the others add in place
            for term in self.terms[1:]:
                H.add_(term.h(st))
        finally:
            st.m, st.t = saved
        return H

    def _rhs(self, t, m):
        if self.cells is None:
            return llg_rhs(m, self.effective_field(m, t), self.state.alpha)
        st = self.state
        saved = (st.m, st.t)
        st.m, st.t = m, t
        try:
            return self.cells.rhs(st)
        finally:
            st.m, st.t = saved

    def step(self) -> float:
        """One integrator step; returns its length dt in s. Raises SimulationDiverged (keeping
        the last good state) when the step goes non-finite or a damped run gains energy."""
        st = self.state
        if self._watchable is None:
            self._watchable = self._energy_watchable()
        watching = self._watchable
        if watching and self._watch is None:
            self._watch_energy(start=True)
        try:
            t, m = self.integrator.step(self._rhs, st.t, st.m, st.mask)
        except SimulationDiverged as e:
            e.t, e.step = st.t, self.steps
            self.integrator.reset()
            raise
        st.t, st.m = t, m
        self.steps += 1
        on_step = getattr(self.demag, "after_step", None)
        if on_step is not None:
            on_step(st)
        if watching and self.steps % ENERGY_CHECK_EVERY == 0:
            self._watch_energy()
        return self.integrator.last_dt

    # ------------------------------------------------------------------ health
    def _energy_watchable(self) -> bool:
        """The energy must fall: a fixed-step run, damped everywhere, static field, exact demag
        (the network's field is not the gradient of its energy, so it may rise a little)."""
        if self.integrator.adaptive or self.problem.solver.demag not in ("fft", "none"):
            return False
        if (self.zeeman.applied.ac or {}).get("kind", "none") != "none":
            return False
        st = self.state
        return bool((st.alpha[st.mask] > 0).all()) if bool(st.mask.any()) else False

    def _watch_energy(self, start: bool = False) -> None:
        """Record the energy; raise when it rose beyond ENERGY_RISE_TOL since its lowest value,
        going back to the state of the last check that passed."""
        st = self.state
        E = float(self.energies()["total"])
        w = self._watch
        if start or w is None:
            Ms = float(st.Ms.max())
            scale = 0.5 * 4e-7 * np.pi * Ms * Ms * st.cell_volume * float(st.mask.sum())
            self._watch = {"E_min": E, "floor": 1e-6 * scale, "m": st.m.clone(), "t": st.t, "steps": self.steps}
            return
        allowed = ENERGY_RISE_TOL * max(abs(w["E_min"]), abs(E)) + w["floor"]
        if not np.isfinite(E) or E > w["E_min"] + allowed:
            st.m, st.t, self.steps = w["m"], w["t"], w["steps"]
            self.integrator.reset()
            self._watch = self._watchable = None
            rise = E - w["E_min"]
            raise SimulationDiverged(
                f"the total energy rose by {rise:.3g} J ({rise / max(abs(w['E_min']), 1e-300):.3g} of "
                f"|E|) in a damped run with a static field", st.t, self.steps,
                "a smaller solver.dt_ps or the adaptive solver.method = \"rk45\"")
        w["E_min"] = min(w["E_min"], E)
        w["m"], w["t"], w["steps"] = st.m.clone(), st.t, self.steps

    def run(self, duration: float, callback=None) -> None:
        """Advance by `duration` seconds (>= 0), landing exactly on the end time.
        callback(sim) after every step; returning True stops early."""
        duration = check_number("duration (s)", duration, None, 1.0)
        if duration < -(1e-9 * abs(self.state.t) + 1e-21):
            raise ProblemError("duration (s)", duration, "a number in [0, 1]")
        # callers compute durations as target - t: a rounding-sized negative one is "none left",
        # and the loop below takes no step for it
        end = self.state.t + duration
        while self.state.t < end * (1 - 1e-12) - 1e-21:
            remaining = end - self.state.t
            if self.integrator.adaptive:
                self.integrator.dt = min(self.integrator.dt, remaining)
                self.step()
            else:
                keep = self.integrator.dt
                self.integrator.dt = min(keep, remaining)
                self.step()
                self.integrator.dt = keep
            if callback is not None and callback(self):
                break

    def relax(self, torque=None, max_steps=100000, callback=None) -> dict:
        """Minimise the energy (no precession, no time) until max |m x H|/Ms < torque (default:
        the problem's solver.relax_torque), or for at most max_steps steps (default 100000).
        Returns {"steps", "max_torque", "converged"}."""
        tol = torque if torque is not None else self.problem.solver.relax_torque
        tol = check_number("torque", tol, *TORQUE_RANGE)
        max_steps = check_number("max_steps", 100000 if max_steps is None else max_steps, *MAX_STEPS_RANGE,
                                 integer=True)
        st = self.state
        self._watch = self._watchable = None
        try:
            m, steps, final = relax(lambda mm: self.effective_field(mm), st.m, st.mask, st.Ms, tol, max_steps,
                                    callback)
        except SimulationDiverged as e:
            if getattr(e, "last_m", None) is not None:
                st.m = e.last_m
            e.t, e.step = st.t, self.steps
            self.integrator.reset()
            raise
        st.m = m
        self.integrator.reset()
        return {"steps": steps, "max_torque": final, "converged": final <= tol}

    # ------------------------------------------------------------------ measurements
    def mean_m(self) -> np.ndarray:
        """<m> over the magnet, weighted by Ms (the magnetization average mumax3 reports)."""
        st = self.state
        w = st.Ms
        tot = float(w.sum())
        if tot == 0:
            return np.zeros(3)
        return (st.m * w).sum(dim=(1, 2, 3)).cpu().numpy().astype(float) / tot

    def fields(self) -> dict:
        """H of each term in A/m, by term name."""
        return {term.name: term.h(self.state) for term in self.terms}

    def measure(self) -> tuple:
        """(energies dict in J with "total", max torque) from one evaluation of every term."""
        energies, H_eff = {}, None
        for name, H in self.fields().items():
            term = next(t for t in self.terms if t.name == name)
            energies[name] = term.energy(self.state, H)
            H_eff = H if H_eff is None else H_eff + H
        energies["total"] = sum(energies.values())
        return energies, max_torque(self.state.m, H_eff, self.state.Ms)

    def energies(self) -> dict:
        """Energy of each term in J, and the total."""
        return self.measure()[0]

    def energy_density(self) -> dict:
        """Energy density of each term and "total", numpy float64 (nz, ny, nx) in J/m^3 (0 in
        vacuum); each sums, times the cell volume, to the term's energy."""
        out, total = {}, None
        for term in self.terms:
            e = term.energy_density(self.state).detach().to(torch.float64).cpu().numpy()
            out[term.name] = e
            total = e.copy() if total is None else total + e
        out["total"] = total if total is not None else np.zeros(self.mask.shape)
        return out

    def max_torque(self) -> float:
        """max over the magnet of |m x H_eff| / Ms (dimensionless): what relax drives down."""
        return max_torque(self.state.m, self.effective_field(), self.state.Ms)

    def table_row(self) -> dict:
        """One row of the results table: t (s), <m> (mx, my, mz), the energies E_<term> and
        E_total (J), the applied field Bx_mT, By_mT, Bz_mT (mT)."""
        mx, my, mz = self.mean_m()
        row = {"t": self.state.t, "mx": mx, "my": my, "mz": mz}
        for k, v in self.energies().items():
            row[f"E_{k}"] = v
        B = self.zeeman.applied.B_mT(self.state.t)
        row.update({"Bx_mT": B[0], "By_mT": B[1], "Bz_mT": B[2]})
        return row

    def frame(self, with_energies: bool = True) -> Frame:
        """A private copy of what the view shows."""
        st = self.state
        probe = getattr(self.demag, "last_probe", None)
        energies, torque = self.measure() if with_energies else ({}, float("nan"))
        return Frame(t=st.t, steps=self.steps, dt=self.integrator.last_dt,
                     m=st.m.detach().to(torch.float32).cpu().numpy().copy(),
                     mean_m=self.mean_m(), energies=energies, max_torque=torque,
                     demag_method=self.demag_in_use,
                     error_map=None if probe is None else probe.error_map.copy(),
                     error_rel_l2=None if probe is None else probe.rel_l2)


def _checked_m(m0, shape_zyx, mask=None, key: str = "initial state") -> np.ndarray:
    """m as a numpy array (3, nz, ny, nx): refused when the shape is wrong, a value is NaN/inf,
    or (given the magnet's mask) a magnet cell holds the zero vector, which has no direction."""
    if hasattr(m0, "detach"):
        m0 = m0.detach().cpu().numpy()
    a = np.asarray(m0)
    if a.shape != (3,) + tuple(shape_zyx):
        raise ProblemError(key, f"shape {a.shape}", f"shape (3, nz, ny, nx) = {(3,) + tuple(shape_zyx)}")
    check_finite_array(key, f"an array of shape {a.shape}", a)
    if mask is not None:
        mask = np.asarray(mask.cpu() if hasattr(mask, "cpu") else mask, dtype=bool).reshape(shape_zyx)
        zero = mask & ~np.any(a != 0, axis=0)
        if zero.any():
            z, y, x = (int(v[0]) for v in np.nonzero(zero))
            raise ProblemError(key, f"m = (0, 0, 0) in {int(zero.sum())} magnet cell(s), "
                               f"the first at (x, y, z) = ({x}, {y}, {z})",
                               "a nonzero vector in every magnet cell")
    return a
