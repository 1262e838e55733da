"""The simulation thread: one `SimulationWorker` owns the engine's `Simulation` on its own QThread.

Data flows one way. The GUI sends commands (run, pause, step, reset, relax, a new Problem) as
queued signals; the worker steps the engine in small batches (about 30 ms of wall time), makes a
`Frame` after each batch, and returns to its event loop so the next command gets through.
Errors inside the thread are caught, reported by `error` and stop the run; the GUI keeps its
drawing and settings.

Frames stay cheap:
- the views declare what they draw (`set_frame_needs`, a set of FRAME_FIELDS); the worker copies
  m (float32, always: view, hover, saving) and only the optional fields asked for, as float32.
  The probe's arrays (error map; H_net and H_fft when asked) are copied once per probe and
  shared by the frames until the next probe, not copied per frame;
- frames go through a one-frame `FrameMailbox`, latest wins: a frame the GUI has not taken yet
  is replaced by the next one (its table rows and snapshots ride on with it, nothing recorded is
  lost), and the GUI is told by `frameWaiting` only when the mailbox was empty. When the GUI is
  busy (a long render) the worker never piles frames up in the event queue.

Stopping is cooperative: `SimulationThread.stop()` sets a flag that the batch loop and the relax
callback read, then `quit()` and `wait()`. The thread is never terminated.

Example::

    thread = SimulationThread()
    thread.worker.frameWaiting.connect(window.on_frame_waiting)   # a bound slot of a GUI-thread
    thread.reset(problem)                                         # QObject: frame = thread.take_frame()
    thread.run()
    ...
    thread.stop()
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback

import numpy as np
import torch
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from engine import Simulation
from engine.frame import Frame, ProbeFields

try:       # the engine's typed divergence (engine.errors, issue 9); older engines lack it
    from engine.errors import SimulationDiverged
except ImportError:  # pragma: no cover - only with an engine from before divergence checks
    class SimulationDiverged(RuntimeError):
        """Placeholder: never raised by an engine without divergence checks."""

BATCH_SECONDS = 0.030      # wall time of one batch of steps before a frame is emitted
ENERGY_SECONDS = 0.2       # frames carry energies (two more field evaluations) at most this often
RATE_WINDOW_SECONDS = 1.0  # steps per second are averaged over about this long

IDLE, RUNNING, RELAXING, STAGES = "idle", "running", "relaxing", "stages"

# optional arrays a frame carries when a view asks for them (m is always there, float32)
FRAME_FIELDS = ("error_map", "probe_fields", "energy_density")
DEFAULT_FRAME_NEEDS = frozenset({"error_map"})   # the surrogate dock's histogram, per probe


def frame_needs(fields) -> frozenset:
    """A checked set of optional frame fields (see FRAME_FIELDS)."""
    out = frozenset(fields)
    unknown = out - set(FRAME_FIELDS)
    if unknown:
        raise ValueError(f"frame fields {sorted(unknown)}: expected some of {', '.join(FRAME_FIELDS)}")
    return out


def float32_copy(a) -> np.ndarray:
    """A private float32 numpy copy of a tensor or array, made in one pass (a tensor already in
    float32 on the CPU is copied once, never twice)."""
    if hasattr(a, "detach"):
        t = a.detach()
        if t.dtype == torch.float32 and t.device.type == "cpu":
            return t.numpy().copy()
        return t.to("cpu", torch.float32).numpy()    # .to made a new tensor: ours
    return np.array(a, dtype=np.float32, copy=True)


def frame_nbytes(frame, previous=None) -> int:
    """Bytes of the arrays a frame brings that the previous frame did not share (m, the probe's
    arrays when new, energy densities, snapshots): what crossing the thread cost in copies."""
    seen = set()
    if previous is not None:
        seen = {id(a) for a in _frame_arrays(previous)}
    return int(sum(a.nbytes for a in _frame_arrays(frame) if id(a) not in seen))


def _frame_arrays(frame):
    out = [frame.m]
    if frame.error_map is not None:
        out.append(frame.error_map)
    if frame.probe is not None:
        out += [frame.probe.H_net, frame.probe.H_fft]
    if frame.energy_density:
        out += list(frame.energy_density.values())
    out += [m for _t, m in frame.snapshots]
    return [a for a in out if isinstance(a, np.ndarray)]


class FrameMailbox:
    """One frame between the worker thread and the GUI, latest wins.

    `put` (worker) stores a frame; a frame still there (the GUI has not taken it) is replaced and
    counted in `dropped`, its rows and snapshots carried on in the new one when both belong to
    the same run (generation). `put` returns True when the mailbox was empty: only then does the
    GUI need telling. `take` (GUI) empties it. Thread-safe (one lock, held for a few µs)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._frame = None
        self.put_count = 0
        self.dropped = 0
        self.dropped_energies = False   # the last put replaced a frame that carried energies
    def put(self, frame) -> bool:
        with self._lock:
            old = self._frame
            self.dropped_energies = old is not None and bool(old.energies) and not frame.energies
            if old is not None:
                self.dropped += 1
                if old.generation == frame.generation and (old.rows or old.snapshots):
                    frame = dataclasses.replace(frame, rows=old.rows + frame.rows,
                                                snapshots=old.snapshots + frame.snapshots)
            self._frame = frame
            self.put_count += 1
            return old is None

    def take(self):
        """The newest frame, or None when there is none waiting."""
        with self._lock:
            frame, self._frame = self._frame, None
            return frame


def default_torch_threads() -> int:
    """One core fewer than the machine has (at least one): the GUI thread needs a core to draw.
    On 2 cores, torch with 2 threads beside a rendering GUI ran 8 times slower than with 1
    (its workers spin while waiting for the busy core). With the engine's thread policy
    (engine.threads, cores actually free to the process) the same rule applies to those."""
    try:
        from engine.threads import choose_threads
        free = choose_threads()
    except Exception:  # noqa: BLE001 - an engine without a thread policy
        free = os.cpu_count() or 2
    return max(1, free - 1)


def geometry_changed(old, new) -> bool:
    """True when `new` needs a new Simulation: another grid, cell size or region map."""
    if tuple(old.mesh.n) != tuple(new.mesh.n) or tuple(old.mesh.cell_nm) != tuple(new.mesh.cell_nm):
        return True
    return not np.array_equal(old.regions(), new.regions())


class SimulationWorker(QObject):
    """Owns a `Simulation` and steps it on the thread it was moved to.

    Signals (connect them to bound slots of GUI-thread objects, so they run there):
      frameWaiting()       a frame is in `mailbox` (emitted when it was empty): take it with
                           mailbox.take(); typed fields: rows, snapshots, generation,
                           steps_per_s, probe, energy_density (see engine.frame)
      stateChanged(str)    "idle", "running", "relaxing" or "stages" (run_stages)
      error(str)           an exception inside the thread; the run has stopped
      message(str)         information for the user (relax finished, simulation rebuilt)
      applied(object, bool) the engine took a Problem (True: a new Simulation was built)
      applyFailed(str, int) a reset, load or edit was refused; the old Simulation is kept
                           (and the generation its frames carry)
      diverged(str)        the engine stopped a diverging run; the last good state was sent
    """

    frameWaiting = Signal()
    stateChanged = Signal(str)
    error = Signal(str)
    message = Signal(str)
    applied = Signal(object, bool)
    applyFailed = Signal(str, int)
    diverged = Signal(str)

    def __init__(self):
        super().__init__()
        self.sim: Simulation | None = None
        self.state = IDLE
        self._stop = threading.Event()     # set from any thread: stop the current run or relax
        self._rate_steps = 0
        self._rate_t0 = time.perf_counter()
        self.steps_per_s = 0.0
        self._timer: QTimer | None = None  # created in the worker thread (see _ensure_timer)
        self._energies_at = 0.0
        self.generation = 0                # which reset/load the current Simulation came from
        self._rows: list[dict] = []        # table rows since the last frame
        self._snaps: list[tuple] = []      # (t, m) snapshots since the last frame
        self._next_row_t = 0.0
        self._next_snap_t = 0.0
        self._probe_ref = None             # the engine's last probe, and our copy of its fields
        self._probe_fields: ProbeFields | None = None
        self.needs = DEFAULT_FRAME_NEEDS   # set from the GUI thread (one assignment: atomic)
        self.max_threads = torch.get_num_threads()   # set by SimulationThread before its thread starts
        self.threads = self.max_threads    # what the current grid runs on (_simulation)
        self._reported_demag = None        # the demag whose warnings the Messages tab has (_report_demag)
        self.mailbox = FrameMailbox()
        self._error_ref = None             # the probe whose error map we copied, and the copy
        self._error_copy = None
        self.last_copy_ms = 0.0            # wall time of the last frame's making (copies included)
        self.last_frame_bytes = 0          # bytes of arrays the last frame copied (frame_nbytes)
        self._last_frame = None
        self._energy_retry_due = False     # the next energies are a second try (see _emit_frame)
        self._prev_energy_retry = False

    # ------------------------------------------------------------------ thread-safe requests
    def request_stop(self) -> None:
        """Ask the running batch or relax to stop as soon as the current step is done.
        Safe to call from any thread (a flag, not a queued call)."""
        self._stop.set()

    def arm(self) -> None:
        """Clear the stop flag for the next run, relax or stages command. Called by the sender
        when it queues the command (not by the slot when it starts): a pause requested between
        the two is then kept, instead of being wiped when the command begins."""
        self._stop.clear()

    # ------------------------------------------------------------------ commands (slots)
    @Slot(object, int)
    def reset(self, problem, generation: int = 0) -> None:
        """Build a new Simulation from `problem` (its initial state, t = 0). Frames from then on
        carry extra["generation"] = generation, so the GUI can drop frames of an older run
        that were still queued."""
        self._change(generation, self._reset, problem)

    @Slot(object, object, float, int, int)
    def load(self, problem, m, t, steps, generation: int = 0) -> None:
        """Build a Simulation from `problem` and put it in state m at time t (an opened project)."""
        self._change(generation, self._load, problem, m, t, steps)

    @Slot(object, int)
    def apply_problem(self, problem, generation: int = -1) -> None:
        """Apply an edited Problem between steps: parameters in place (m and t kept); a new grid
        or region map rebuilds the Simulation, keeping m where the magnet stays."""
        self._change(self.generation if generation < 0 else generation, self._apply_problem, problem)

    def _change(self, generation: int, fn, *args) -> None:
        """Build or change the Simulation; on failure keep the old one untouched (and its
        generation) and say so: the window then goes back to what the engine runs."""
        old_generation = self.generation
        try:
            self.generation = generation
            fn(*args)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.generation = old_generation
            self.applyFailed.emit(f"{type(exc).__name__}: {exc}" if not str(exc).startswith(
                type(exc).__name__) else str(exc), old_generation)
            if self.sim is not None:
                self._emit_frame()

    @Slot()
    def start(self) -> None:
        """Run until paused."""
        if self.sim is None or self.state != IDLE:
            return
        self._set_state(RUNNING)
        self._ensure_timer().start()

    @Slot()
    def pause(self) -> None:
        """Stop the run timer. The stop flag is set by the sender (request_stop), not here: a
        pause queued before a Run (an example loading, then Run) must not cancel that Run."""
        if self._timer is not None:
            self._timer.stop()
        if self.state == RUNNING:
            self._set_state(IDLE)

    @Slot()
    def step_once(self) -> None:
        """Exactly one integrator step, then a frame (only while idle)."""
        if self.sim is None or self.state != IDLE:
            return
        self._guard(self._step_once)

    @Slot()
    def relax(self) -> None:
        """Minimise the energy (sim.relax) with live frames; request_stop() ends it early."""
        self._run_blocking(RELAXING, self._relax)

    @Slot()
    def run_stages(self) -> None:
        """Work through the problem's stages (relax, run, sweep) with engine.stages.run_stages,
        from the current state: rows and snapshots go out with live frames (at most one per
        BATCH_SECONDS, and one per sweep point), request_stop() ends it after the current
        step or relax. Commands queued meanwhile run when it is done."""
        self._run_blocking(STAGES, self._run_stages)

    def _run_blocking(self, state: str, work) -> None:
        """Run a long command (relax, stages) on this thread in `state`, back to IDLE after;
        only when idle with a simulation. Every engine error is reported, none kill the thread."""
        if self.sim is None or self.state != IDLE:
            return
        self._set_state(state)
        try:
            work()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            if self.state == state:
                self._set_state(IDLE)

    @Slot()
    def emit_frame(self) -> None:
        if self.sim is not None:
            self._guard(self._emit_frame)

    @Slot()
    def shutdown(self) -> None:
        """Stop and delete the timer here, on the worker thread, before the thread quits (a Qt
        timer must be stopped by the thread that owns it)."""
        self._stop.set()
        if self._timer is not None:
            self._timer.stop()
            self._timer.setParent(None)
            self._timer = None        # the last reference: deleted now, on this thread
        self.state = IDLE

    # ------------------------------------------------------------------ work
    def _ensure_timer(self) -> QTimer:
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setInterval(0)
            self._timer.timeout.connect(self._batch)
        return self._timer

    @Slot()
    def _batch(self) -> None:
        """Step until BATCH_SECONDS of wall time passed (at least one step), then emit a frame.
        Between batches the event loop runs, so queued commands arrive between steps."""
        if self.state != RUNNING or self.sim is None or self._stop.is_set():
            self.pause()
            return
        try:
            t0 = time.perf_counter()
            n = 0
            while True:
                self.sim.step()
                self._record()
                n += 1
                if self._stop.is_set() or time.perf_counter() - t0 >= BATCH_SECONDS:
                    break
            self._count_steps(n)
            self._emit_frame(with_energies=time.perf_counter() - self._energies_at >= ENERGY_SECONDS)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _step_once(self) -> None:
        self.sim.step()
        self._record()
        self._count_steps(1)
        self._emit_frame()

    def _relax(self) -> None:
        sim = self.sim
        last = [time.perf_counter()]
        steps = [0]

        def callback(m, step, torque):
            steps[0] += 1
            now = time.perf_counter()
            if now - last[0] >= BATCH_SECONDS:
                sim.state.m = m  # relax() keeps its own m; show it (it sets state.m at the end)
                self._count_steps(steps[0])
                steps[0] = 0
                self._emit_frame(with_energies=False)
                last[0] = time.perf_counter()
            return self._stop.is_set()

        result = sim.relax(callback=callback)
        self._count_steps(steps[0])
        self._emit_frame()
        if self._stop.is_set():
            self.message.emit(f"Relax stopped after {result['steps']} steps "
                              f"(max torque {result['max_torque']:.3g}).")
        else:
            word = "converged" if result["converged"] else "stopped without converging"
            self.message.emit(f"Relax {word} after {result['steps']} steps "
                              f"(max torque {result['max_torque']:.3g}).")

    def _run_stages(self) -> None:
        from engine.stages import run_stages
        sim = self.sim
        worker = self
        last = [0.0]

        class LiveRecorder:
            """engine.stages recorder: rows and snapshots ride on the next frame. The first row
            and snapshot (the state before the first stage) are already in the GUI's table."""
            rows = snaps = 0

            def add_row(self, row):
                self.rows += 1
                if self.rows == 1:
                    return
                worker._rows.append(dict(row))
                now = time.perf_counter()
                if now - last[0] >= BATCH_SECONDS:
                    worker._count_steps(0)
                    worker._emit_frame(with_energies=now - worker._energies_at >= ENERGY_SECONDS)
                    last[0] = time.perf_counter()

            def add_snapshot(self, t, m):
                self.snaps += 1
                if self.snaps == 1:
                    return
                m = m.detach().to(torch.float32).cpu().numpy() if hasattr(m, "detach") else np.asarray(m)
                worker._snaps.append((float(t), np.array(m, dtype=np.float32, copy=True)))

        steps0 = sim.steps

        def should_stop() -> bool:
            self._count_steps(sim.steps - steps0 - self._stage_steps_counted)
            self._stage_steps_counted = sim.steps - steps0
            return self._stop.is_set()

        def relax_callback(m, k, torque):
            self._count_steps(1)     # relax iterations count as steps (the rate during a sweep)
            now = time.perf_counter()
            if now - last[0] >= BATCH_SECONDS:
                sim.state.m = m      # relax keeps its own m (and sets state.m at its end): show it
                self._emit_frame(with_energies=False)
                last[0] = time.perf_counter()
            return False

        def step_callback(_sim):
            now = time.perf_counter()
            if now - last[0] >= BATCH_SECONDS:
                should_stop()              # counts the steps
                self._emit_frame(with_energies=now - self._energies_at >= ENERGY_SECONDS)
                last[0] = time.perf_counter()

        self._stage_steps_counted = 0
        summary = run_stages(sim, sim.problem, LiveRecorder(), should_stop=should_stop,
                             relax_callback=relax_callback, step_callback=step_callback)
        self._emit_frame()
        stopped = " (stopped)" if self._stop.is_set() else ""
        self.message.emit(f"Stages done{stopped}: {len(summary['stages'])} stage(s), <m> = "
                          f"({', '.join(f'{v:.3f}' for v in summary['mean_m'])}).")
        for text in summary.get("warnings", []):    # e.g. a relax stopped at its step limit
            self.message.emit("Warning: " + text)

    def _halt(self) -> None:
        """Stop the run timer without setting the stop flag: a Run queued right after a
        reset or load (Run pressed as an example loads) must still start."""
        if self._timer is not None:
            self._timer.stop()
        self._set_state(IDLE)

    def _simulation(self, problem, m0=None) -> Simulation:
        """A Simulation of `problem`, with this (the engine) thread's torch threads set for its
        grid first (engine.threads.threads_for_grid: one under 256^2 cells, where more cost
        more than they give, else max_threads); torch's count is per thread, so this is the
        count the steps run with."""
        from engine.threads import threads_for_grid
        nx, ny, nz = problem.mesh.n
        from engine.notes import as_sentence, notes_to
        self.threads = threads_for_grid(int(nx) * int(ny) * int(nz), self.max_threads)
        torch.set_num_threads(self.threads)
        with notes_to(lambda text: self.message.emit(as_sentence(text))):
            return Simulation(problem, m0=m0)   # a first build of the compiled network says so

    def _report_demag(self, sim) -> None:
        """Say in the Messages tab what the demag's constructor warned (the neural demag outside
        its model card runs the exact FFT instead), once per demag object."""
        if self._reported_demag is sim.demag:
            return
        self._reported_demag = sim.demag
        from engine.notes import as_sentence
        for text in getattr(sim.demag, "warnings", []):
            self.message.emit(as_sentence(text))

    def _reset(self, problem) -> None:
        self._halt()
        sim = self._simulation(problem)    # raises before anything is replaced
        self.sim = sim
        self._start_recording(first_row_now=True)
        self.applied.emit(sim.problem, True)
        self._report_demag(sim)
        self._emit_frame()

    def _load(self, problem, m, t, steps) -> None:
        self._halt()
        sim = self._simulation(problem, m0=None if m is None else np.asarray(m))
        sim.state.t = float(t)
        sim.steps = int(steps)
        self.sim = sim
        self._start_recording(first_row_now=False)   # the opened table already ends at t
        self.applied.emit(sim.problem, True)
        self._report_demag(sim)
        self._emit_frame()

    def _apply_problem(self, problem) -> None:
        sim = self.sim
        if sim is None:
            self._reset(problem)
            return
        if not geometry_changed(sim.problem, problem):
            old = sim.problem
            try:
                sim.update_problem(problem)
            except Exception:
                self._restore(sim, old)
                raise
            self.applied.emit(sim.problem, False)
            self._report_demag(sim)
            self._emit_frame()
            return
        old_m = sim.m.detach().cpu().numpy()
        old_mask = sim.mask
        t, steps = sim.t, sim.steps
        new = self._simulation(problem)
        if old_m.shape == tuple(new.m.shape):
            keep = old_mask & new.mask
            m = new.m.detach().cpu().numpy().copy()
            m[:, keep] = old_m[:, keep]
            new.set_m(m)
            new.state.t, new.steps = t, steps
        self.sim = new
        self._start_recording(first_row_now=True)    # the table starts again on the new grid
        self.applied.emit(new.problem, True)
        self.message.emit("Geometry or grid changed: the simulation was rebuilt.")
        self._report_demag(new)
        self._emit_frame()

    def _restore(self, sim, old_problem) -> None:
        """A failed update_problem may have changed part of `sim`: put the old problem back
        (m and t kept) or, if even that fails, rebuild it from the old problem with its m."""
        try:
            sim.update_problem(old_problem)
            return
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        m, t, steps = sim.m.detach().cpu().numpy(), sim.t, sim.steps
        new = self._simulation(old_problem, m0=m)
        new.state.t, new.steps = t, steps
        self.sim = new

    def _start_recording(self, first_row_now: bool) -> None:
        out = self.sim.problem.output
        self._rows, self._snaps = [], []
        self._next_row_t = self.sim.t if first_row_now else self.sim.t + out.table_every_ps * 1e-12
        self._next_snap_t = self.sim.t if first_row_now else self.sim.t + out.snapshot_every_ps * 1e-12
        if first_row_now:
            self._record()

    def _record(self) -> None:
        """The table row and the snapshot of m, at the problem's sampling in simulated time
        (output.table_every_ps, snapshot_every_ps), whatever the frame rate."""
        sim, out = self.sim, self.sim.problem.output
        eps = 1e-9 * out.table_every_ps * 1e-12
        if sim.t >= self._next_row_t - eps:
            self._rows.append(sim.table_row())
            every = out.table_every_ps * 1e-12
            self._next_row_t = max(self._next_row_t + every, sim.t + every * 1e-6)
        if sim.t >= self._next_snap_t - eps:
            self._snaps.append((sim.t, float32_copy(sim.m)))
            every = out.snapshot_every_ps * 1e-12
            self._next_snap_t = max(self._next_snap_t + every, sim.t + every * 1e-6)

    @property
    def want_energy_density(self) -> bool:
        return "energy_density" in self.needs

    def _emit_frame(self, with_energies: bool = True) -> None:
        """Make a Frame (make_frame) and post it to the mailbox; tell the GUI when it was empty."""
        t0 = time.perf_counter()
        frame = self.make_frame(with_energies)
        self.last_copy_ms = 1e3 * (time.perf_counter() - t0)
        self.last_frame_bytes = frame_nbytes(frame, self._last_frame)
        self._last_frame = frame
        retry = with_energies and self._energy_retry_due     # these energies are a second try
        if with_energies:
            self._energy_retry_due = False
        if self.mailbox.put(frame):
            self.frameWaiting.emit()
        elif self.mailbox.dropped_energies and not self._prev_energy_retry:
            # the energies (the live energy plot's points) went with a dropped frame: measure
            # once more soon (after a quarter of the usual interval); a second try that is
            # dropped too waits the usual interval, so a blocked GUI costs at most twice the
            # measurements, never one per frame
            self._energies_at = time.perf_counter() - 0.75 * ENERGY_SECONDS
            self._energy_retry_due = True
        self._prev_energy_retry = retry

    def make_frame(self, with_energies: bool = True) -> Frame:
        """A Frame of the simulation now with what the views need (self.needs): m as a private
        float32 copy; the probe's error map (copied once per probe, shared until the next) and
        its H_net/H_fft only when asked; energy densities (float32) only when asked; the table
        rows and snapshots recorded since the last frame, the measured rate and the generation.
        Built here rather than by Simulation.frame(), which copies every probe array per frame."""
        sim, needs = self.sim, self.needs
        st = sim.state
        energies, torque = sim.measure() if with_energies else ({}, float("nan"))
        if with_energies:
            self._energies_at = time.perf_counter()
        probe = getattr(sim.demag, "last_probe", None)
        density = None
        if "energy_density" in needs:
            density = {k: float32_copy(v) for k, v in sim.energy_density().items()}
        rows, self._rows = tuple(self._rows), []
        snaps, self._snaps = tuple(self._snaps), []
        return Frame(t=st.t, steps=sim.steps, dt=sim.integrator.last_dt, m=float32_copy(st.m),
                     mean_m=sim.mean_m(), energies=energies, max_torque=torque,
                     demag_method=sim.demag_in_use,
                     error_map=self._error_map_copy(probe) if "error_map" in needs else None,
                     error_rel_l2=None if probe is None else probe.rel_l2,
                     probe=self._probe_copy() if "probe_fields" in needs else None,
                     rows=rows, snapshots=snaps, generation=self.generation,
                     steps_per_s=self.steps_per_s, energy_density=density)

    def _error_map_copy(self, probe) -> np.ndarray | None:
        """The probe's error map (nz, ny, nx) as float32, copied once per probe."""
        if probe is None:
            self._error_ref, self._error_copy = None, None
        elif probe is not self._error_ref:
            self._error_ref = probe
            self._error_copy = float32_copy(probe.error_map)
        return self._error_copy

    def _probe_copy(self) -> ProbeFields | None:
        """Both demag fields of the engine's last probe (A/m), copied once per probe; frames
        share the read-only copy, the engine never sees it again."""
        probe = getattr(self.sim.demag, "last_probe", None)
        if probe is None:
            self._probe_ref, self._probe_fields = None, None
        elif probe is not self._probe_ref:
            self._probe_ref = probe
            self._probe_fields = ProbeFields(H_net=np.array(probe.H_net, dtype=np.float32, copy=True),
                                             H_fft=np.array(probe.H_fft, dtype=np.float32, copy=True),
                                             t=float(getattr(probe, "t", self.sim.t)))
        return self._probe_fields

    def _count_steps(self, n: int) -> None:
        self._rate_steps += n
        now = time.perf_counter()
        dt = now - self._rate_t0
        if dt >= RATE_WINDOW_SECONDS or (self.steps_per_s == 0.0 and dt > 0.2):
            self.steps_per_s = self._rate_steps / dt
            self._rate_steps = 0
            self._rate_t0 = now

    # ------------------------------------------------------------------ errors
    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.stop()
        self._set_state(IDLE)
        if isinstance(exc, SimulationDiverged):
            # the engine kept its last good state: send it (with the rows recorded up to it)
            try:
                self._emit_frame()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            self.diverged.emit(str(exc))
            return
        traceback.print_exc()
        self.error.emit(f"{type(exc).__name__}: {exc}")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)


class SimulationThread(QObject):
    """The GUI-side handle of the simulation thread: starts it, sends commands as queued
    signals and stops it cooperatively. Lives in the GUI thread."""

    _reset = Signal(object, int)
    _load = Signal(object, object, float, int, int)
    _apply = Signal(object, int)
    _start = Signal()
    _pause = Signal()
    _step = Signal()
    _relax = Signal()
    _stages = Signal()
    _shutdown = Signal()
    _emit = Signal()

    def __init__(self, parent=None, torch_threads: int | None = None):
        super().__init__(parent)
        self._torch_threads_before = torch.get_num_threads()   # restored by stop()
        torch.set_num_threads(torch_threads or default_torch_threads())   # the most the engine uses
        self.generation = 0     # counts reset() and load(): frames of older runs are stale
        self.thread = QThread()
        self.thread.setObjectName("simulation")
        self.worker = SimulationWorker()
        self.worker.moveToThread(self.thread)
        w = self.worker
        self._reset.connect(w.reset)
        self._load.connect(w.load)
        self._apply.connect(w.apply_problem)
        self._start.connect(w.start)
        self._pause.connect(w.pause)
        self._step.connect(w.step_once)
        self._relax.connect(w.relax)
        self._stages.connect(w.run_stages)
        self._emit.connect(w.emit_frame)
        # blocking: stop() returns only after the worker has stopped and deleted its timer
        self._shutdown.connect(w.shutdown, Qt.BlockingQueuedConnection)
        self.thread.start()

    # commands: each one is queued to the worker and runs there between steps
    def reset(self, problem) -> None:
        self.generation += 1
        self.worker.request_stop()
        self._reset.emit(problem.copy(), self.generation)

    def load(self, problem, m, t: float, steps: int = 0) -> None:
        self.generation += 1
        self.worker.request_stop()
        self._load.emit(problem.copy(), None if m is None else np.array(m, copy=True), float(t),
                        int(steps), self.generation)

    def apply_problem(self, problem, new_generation: bool = False) -> None:
        """Apply an edit between steps. new_generation: frames of the run so far are stale
        (a new grid): they are dropped when they arrive."""
        if new_generation:
            self.generation += 1
        self._apply.emit(problem.copy(), self.generation)

    def run(self) -> None:
        self.worker.arm()
        self._start.emit()

    def pause(self) -> None:
        self.worker.request_stop()
        self._pause.emit()

    def step(self) -> None:
        self._step.emit()

    def relax(self) -> None:
        self.worker.arm()
        self._relax.emit()

    def run_stages(self) -> None:
        self.worker.arm()
        self._stages.emit()

    def set_frame_needs(self, fields) -> None:
        """The optional arrays frames carry from now on (a set of FRAME_FIELDS; m always).
        energy_density costs one more field evaluation per frame. A frame with a newly asked
        field follows at once."""
        needs = frame_needs(fields)
        new = needs - self.worker.needs
        self.worker.needs = needs
        if new:
            self._emit.emit()

    def set_energy_density(self, on: bool) -> None:
        """Frames carry the engine's energy densities while `on` (see set_frame_needs)."""
        needs = set(self.worker.needs) - {"energy_density"}
        self.set_frame_needs(needs | ({"energy_density"} if on else set()))

    @property
    def frame_needs(self) -> frozenset:
        return self.worker.needs

    def take_frame(self):
        """The newest frame the worker made (GUI thread), or None; older untaken ones were
        dropped, their rows and snapshots carried on in this one."""
        return self.worker.mailbox.take()

    @property
    def state(self) -> str:
        return self.worker.state

    def stop(self, timeout_ms: int = 30000) -> bool:
        """Stop cooperatively: flag, shutdown slot, quit(), wait(). Never terminates the thread.
        Returns True when the thread has finished."""
        if not self.thread.isRunning():
            return True
        self.worker.request_stop()
        self._shutdown.emit()
        self.thread.quit()
        finished = self.thread.wait(timeout_ms)
        if finished:
            torch.set_num_threads(self._torch_threads_before)
        return finished
