"""Time integrators for dm/dt = f(t, m) and the energy minimiser.

They know nothing about field terms: they get the right-hand side as a function and the mask,
and they keep m normalised after each step. Times in s.

- Heun (2nd order) and RK4 (4th order) with a fixed step.
- RK45: Dormand-Prince 5(4) with first-same-as-last and step-size control on the maximum over
  cells of the error of m (the peers' default; mumax3 calls the tolerance MaxErr).
- relax(): steepest descent on the sphere with Barzilai-Borwein step lengths (alternating the
  two BB formulas), stopping when max |m x H| / Ms falls below the tolerance.

Health checks: every integrator stops at the first non-finite m or field, RK45 also at a
non-finite error estimate that no smaller step cures and at a step size stuck at its floor,
and relax at a non-finite torque. They raise `SimulationDiverged` and leave the state they were
given untouched (the caller keeps the last good m). The energy check of damped fixed-step runs
needs the field terms, so it lives in `Simulation`.
"""
from __future__ import annotations

import math

import torch

from .cell_kernel import max_norm_of_sum, normalized, stage_sum
from .errors import SimulationDiverged
from .fused import fused
from .state import normalize, vector_length

FIXED_STEP_HINT = "a smaller solver.dt_ps, solver.precision = \"float64\", or larger cells"
ADAPTIVE_HINT = "a looser solver.tolerance, solver.precision = \"float64\", or larger cells"
BAD_STATE_HINT = "another initial state: the state given already holds NaN or infinity"


def all_finite(x: torch.Tensor) -> bool:
    """True when no value of x is NaN or infinite. A finite sum proves it in one pass (a NaN or an
    infinity makes the sum NaN or infinite); only a sum that is not finite, which finite values
    can also give by overflowing, is checked value by value (SP4's 100 x 25: 26 -> 8 us a call)."""
    if x.is_complex() or x.requires_grad:
        return bool(torch.isfinite(x).all())
    return math.isfinite(float(x.sum())) or bool(torch.isfinite(x).all())


def _check_step(m_new, m, t, hint):
    """Raise when the new m is not finite, saying whether the old one already was not."""
    if not all_finite(m_new):
        if not all_finite(m):
            raise SimulationDiverged("non-finite m at the start of the step", t, 0, BAD_STATE_HINT)
        raise SimulationDiverged("non-finite m or field after the step (a value overflowed)", t, 0, hint)


def combine(m, dt: float, coefficients, ks) -> torch.Tensor:
    """m + dt sum_i c_i k_i (m None: without it), as one new tensor written in place: one pass
    over the arrays per nonzero term instead of a product and a sum (two temporaries) each.
    The stages of Dormand-Prince have up to six terms: measured here at 512^2 float32 the
    stage arithmetic of an RK45 step fell from about 60 passes over the arrays to 26.
    Where the compiled form is ready (engine.fused), all terms in one pass."""
    terms = [(c, k) for c, k in zip(coefficients, ks) if c != 0.0]
    out = stage_sum(m, [dt * c for c, _ in terms], [k for _, k in terms])   # small grids: one C pass
    if out is not None:
        return out
    if m is not None:
        if _stage.wanted(m.numel() // 3):
            h = torch.tensor([dt * c for c, _ in terms], dtype=m.dtype, device=m.device)
            run = _stage.compiled_for((m, h) + tuple(k for _, k in terms))
            if run is not None:
                return run(m, h, *(k for _, k in terms))
        out = m.clone()
    else:
        (c0, k0), terms = terms[0], terms[1:]
        out = torch.mul(k0, dt * c0)
    for c, k in terms:
        out.add_(k, alpha=dt * c)
    return out


@fused()
def _stage(m, h, *ks):
    """m + sum_j h_j k_j in one fused loop (h: dt times the tableau's row, as a tensor so that a
    new dt is not a new compile)."""
    out = m
    for j, k in enumerate(ks):
        out = out + h[j] * k
    return out


def error_norm(dt: float, coefficients, ks) -> float:
    """max over cells of |dt sum_i c_i k_i| (the RK45 error estimate). Not compiled: inductor's
    fused sum-and-max measured 2x slower here than these passes (2048^2 float32: 114-132 ms
    against 54-62 ms). Small grids: one C pass (engine.cell_kernel)."""
    terms = [(c, k) for c, k in zip(coefficients, ks) if c != 0.0]
    err = max_norm_of_sum([dt * c for c, _ in terms], [k for _, k in terms])
    if err is not None:
        return err
    return float(vector_length(combine(None, dt, coefficients, ks)).max())


def unit(m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """engine.state.normalize, as one C pass on small grids (engine.cell_kernel)."""
    out = normalized(m, mask)
    return normalize(m, mask) if out is None else out


class FixedStep:
    """Base of the fixed-step integrators."""
    order = 1
    adaptive = False

    def __init__(self, dt: float):
        self.dt = dt
        self.last_dt = dt

    def reset(self):
        pass


class Heun(FixedStep):
    order = 2

    def step(self, f, t, m, mask):
        dt = self.dt
        k1 = f(t, m)
        k2 = f(t + dt, unit(m + dt * k1, mask))
        m_new = unit(m + 0.5 * dt * (k1 + k2), mask)
        _check_step(m_new, m, t, FIXED_STEP_HINT)
        self.last_dt = dt
        return t + dt, m_new


class RK4(FixedStep):
    order = 4

    def step(self, f, t, m, mask):
        dt = self.dt
        k1 = f(t, m)
        k2 = f(t + dt / 2, torch.add(m, k1, alpha=dt / 2))
        k3 = f(t + dt / 2, torch.add(m, k2, alpha=dt / 2))
        k4 = f(t + dt, torch.add(m, k3, alpha=dt))
        m_new = unit(combine(m, dt, (1 / 6, 1 / 3, 1 / 3, 1 / 6), (k1, k2, k3, k4)), mask)
        _check_step(m_new, m, t, FIXED_STEP_HINT)
        self.last_dt = dt
        return t + dt, m_new


# Dormand-Prince 5(4) tableau
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
      (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4))


class RK45:
    """Adaptive Dormand-Prince; `tolerance` bounds the per-step error of m (max over cells).

    Stuck: a step that fails the tolerance at min_dt, or STUCK_STEPS accepted steps in a row no
    longer than STUCK_DT (1 fs: the time would not reach 1 ns in a million steps; float32 noise
    with a tolerance below its resolution does this) raise SimulationDiverged."""
    order = 5
    adaptive = True
    STUCK_DT = 1e-15
    STUCK_STEPS = 1000

    def __init__(self, tolerance: float = 1e-5, dt: float = 1e-13, max_dt: float = 1e-11, min_dt: float = 1e-18):
        self.tol = tolerance
        self.dt = dt
        self.max_dt = max_dt
        self.min_dt = min_dt
        self.last_dt = 0.0
        self.rejected = 0
        self._k1 = None   # FSAL: derivative at the end of the last accepted step
        self._tiny = 0    # accepted steps in a row no longer than STUCK_DT

    def reset(self):
        """Forget the stored derivative (call when m, t or the field terms change outside)."""
        self._k1 = None
        self._tiny = 0

    def step(self, f, t, m, mask):
        k1 = self._k1
        if k1 is None:
            k1 = f(t, m)
            if not all_finite(k1):
                if not all_finite(m):
                    raise SimulationDiverged("non-finite m", t, 0, BAD_STATE_HINT)
                raise SimulationDiverged("non-finite effective field", t, 0, ADAPTIVE_HINT)
        while True:
            dt = self.dt
            ks = [k1]
            for i in range(1, 7):
                mi = combine(m, dt, _A[i], ks)
                ks.append(f(t + _C[i] * dt, mi))
            # the last stage was evaluated at m + dt sum A[6] k = the 5th-order solution
            # (Dormand-Prince's A[6] is B5: first same as last), so m5 is not formed again
            m5 = mi
            err = error_norm(dt, _E, ks)
            if not math.isfinite(err):
                # an overflow in a too long trial step is cured by a shorter one; at the floor it is not
                if not all_finite(m):
                    self._k1 = None
                    raise SimulationDiverged("non-finite m", t, 0, BAD_STATE_HINT)
                if dt <= self.min_dt:
                    self._k1 = None
                    raise SimulationDiverged(f"non-finite error estimate even at the smallest step "
                                             f"({self.min_dt:g} s)", t, 0, ADAPTIVE_HINT)
                self.rejected += 1
                self.dt = max(dt * 0.1, self.min_dt)
                continue
            if err <= self.tol:
                m_new = unit(m5, mask)
                if not all_finite(m_new):
                    self._k1 = None
                    raise SimulationDiverged("non-finite m after the step", t, 0, ADAPTIVE_HINT)
                self._tiny = self._tiny + 1 if dt <= self.STUCK_DT else 0
                if self._tiny >= self.STUCK_STEPS:
                    self._tiny = 0
                    self._k1 = None
                    raise SimulationDiverged(f"step size stuck at its floor: {self.STUCK_STEPS} steps in a "
                                             f"row of at most {self.STUCK_DT:g} s (error {err:.3g}, tolerance "
                                             f"{self.tol:g})", t, 0, ADAPTIVE_HINT)
                factor = 0.9 * (self.tol / err) ** 0.2 if err > 0 else 5.0
                self.last_dt = dt
                self.dt = min(max(dt * min(factor, 5.0), self.min_dt), self.max_dt)
                self._k1 = ks[6]  # f at (t + dt, m5): first same as last
                return t + dt, m_new
            if dt <= self.min_dt:
                self._k1 = None
                raise SimulationDiverged(f"step size stuck at its floor ({self.min_dt:g} s) with an error "
                                         f"of {err:.3g} > tolerance {self.tol:g}", t, 0, ADAPTIVE_HINT)
            self.rejected += 1
            factor = 0.9 * (self.tol / err) ** 0.2
            self.dt = max(dt * max(factor, 0.1), self.min_dt)


def relax(field_fn, m: torch.Tensor, mask: torch.Tensor, Ms: torch.Tensor, torque_tol: float = 1e-4,
          max_steps: int = 100000, callback=None):
    """Minimise the energy from m. field_fn(m) -> H_eff (A/m). Returns (m, steps, max_torque).

    The descent direction is the projected reduced field g = -m x (m x h), h = H/Ms; each step
    is m <- normalise(m + tau g) with Barzilai-Borwein tau. `callback(m, step, torque)` may
    return True to stop early (used by the GUI's stop button).

    A non-finite torque raises SimulationDiverged (t = 0, step = the iteration) with the last
    finite m in its `last_m` attribute (None when the starting m already fails).
    """
    hint = "float64, larger cells, or check the material constants and the initial state"
    safe = torch.where(Ms > 0, Ms, torch.ones_like(Ms))
    inv_Ms = (Ms > 0) / safe

    def descent(mm):
        h = field_fn(mm) * inv_Ms
        mh = (mm * h).sum(0)
        return h - mh * mm  # = -m x (m x h) for |m| = 1

    g = descent(m)
    tau = 1e-2
    best = float("inf")
    stall = 0
    step = 0
    torque = float(vector_length(g).max())
    if not math.isfinite(torque):
        e = SimulationDiverged("non-finite " + ("m" if not all_finite(m) else "effective field")
                               + " at the start of relax", 0.0, 0, hint)
        e.last_m = None
        raise e
    while torque > torque_tol and step < max_steps:
        m_new = unit(m + tau * g, mask)
        g_new = descent(m_new)
        torque_new = float(vector_length(g_new).max())
        if not math.isfinite(torque_new):
            e = SimulationDiverged(f"non-finite torque in relax iteration {step + 1}", 0.0, step, hint)
            e.last_m = m
            raise e
        s = m_new - m
        y = g - g_new  # difference of the gradients (gradient = -g)
        sy = float((s * y).sum())
        if sy > 0:
            tau = float((s * s).sum()) / sy if step % 2 == 0 else sy / float((y * y).sum())
            tau = min(max(tau, 1e-6), 1e3)
        else:
            tau = 1e-2
        m, g = m_new, g_new
        step += 1
        torque = torque_new
        if torque < best * 0.999:
            best, stall = torque, 0
        else:
            stall += 1
            if stall > 2000:  # float noise floor reached: the torque no longer falls
                break
        if callback is not None and callback(m, step, torque):
            break
    return m, step, torque
