"""Time integrators for dm/dt = f(t, m) and the energy minimiser.

They know nothing about field terms: they get the right-hand side as a function and the mask,
and they keep m normalised after each step. Times in s.

- Heun (2nd order) and RK4 (4th order) with a fixed step.
- RK45: Dormand-Prince 5(4) with first-same-as-last and step-size control on the maximum over
  cells of the error of m (the peers' default; mumax3 calls the tolerance MaxErr).
- relax(): steepest descent on the sphere with Barzilai-Borwein step lengths (alternating the
  two BB formulas), stopping when max |m x H| / Ms falls below the tolerance.
"""
from __future__ import annotations

import math

import torch

from .state import normalize, vector_length


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
        k2 = f(t + dt, normalize(m + dt * k1, mask))
        self.last_dt = dt
        return t + dt, normalize(m + 0.5 * dt * (k1 + k2), mask)


class RK4(FixedStep):
    order = 4

    def step(self, f, t, m, mask):
        dt = self.dt
        k1 = f(t, m)
        k2 = f(t + dt / 2, m + dt / 2 * k1)
        k3 = f(t + dt / 2, m + dt / 2 * k2)
        k4 = f(t + dt, m + dt * k3)
        self.last_dt = dt
        return t + dt, normalize(m + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), mask)


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
    """Adaptive Dormand-Prince; `tolerance` bounds the per-step error of m (max over cells)."""
    order = 5
    adaptive = True

    def __init__(self, tolerance: float = 1e-5, dt: float = 1e-13, max_dt: float = 1e-11, min_dt: float = 1e-18):
        self.tol = tolerance
        self.dt = dt
        self.max_dt = max_dt
        self.min_dt = min_dt
        self.last_dt = 0.0
        self.rejected = 0
        self._k1 = None   # FSAL: derivative at the end of the last accepted step

    def reset(self):
        """Forget the stored derivative (call when m, t or the field terms change outside)."""
        self._k1 = None

    def step(self, f, t, m, mask):
        k1 = self._k1 if self._k1 is not None else f(t, m)
        while True:
            dt = self.dt
            ks = [k1]
            for i in range(1, 7):
                mi = m
                for a, k in zip(_A[i], ks):
                    if a != 0.0:
                        mi = mi + (dt * a) * k
                ks.append(f(t + _C[i] * dt, mi))
            m5 = m
            for b, k in zip(_B5, ks):
                if b != 0.0:
                    m5 = m5 + (dt * b) * k
            err_vec = sum((dt * e) * k for e, k in zip(_E, ks) if e != 0.0)
            err = float(vector_length(err_vec).max())
            if not math.isfinite(err):
                err = float("inf")
            factor = 0.9 * (self.tol / err) ** 0.2 if err > 0 else 5.0
            if err <= self.tol or dt <= self.min_dt:
                self.last_dt = dt
                self.dt = min(max(dt * min(factor, 5.0), self.min_dt), self.max_dt)
                self._k1 = ks[6]  # f at (t + dt, m5): first same as last
                m_new = normalize(m5, mask)
                return t + dt, m_new
            self.rejected += 1
            self.dt = max(dt * max(factor, 0.1), self.min_dt)


def relax(field_fn, m: torch.Tensor, mask: torch.Tensor, Ms: torch.Tensor, torque_tol: float = 1e-4,
          max_steps: int = 100000, callback=None):
    """Minimise the energy from m. field_fn(m) -> H_eff (A/m). Returns (m, steps, max_torque).

    The descent direction is the projected reduced field g = -m x (m x h), h = H/Ms; each step
    is m <- normalise(m + tau g) with Barzilai-Borwein tau. `callback(m, step, torque)` may
    return True to stop early (used by the GUI's stop button).
    """
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
    while torque > torque_tol and step < max_steps:
        m_new = normalize(m + tau * g, mask)
        g_new = descent(m_new)
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
        torque = float(vector_length(g).max())
        if torque < best * 0.999:
            best, stall = torque, 0
        else:
            stall += 1
            if stall > 2000:  # float noise floor reached: the torque no longer falls
                break
        if callback is not None and callback(m, step, torque):
            break
    return m, step, torque
