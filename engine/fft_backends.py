"""FFT backends for the exact demag, chosen by measurement per grid shape (like FFTW's planner).

Why: on a CPU the library that does the transforms decides the demag's speed, and the fastest one
depends on the processor and the shape. Measured here (AMD EPYC, one thread, 1024 x 1024 film,
float32, forward + pruned inverse of 3 components on the 2048 x 2048 padded grid): torch.fft
(MKL) 400 ms, scipy.fft (pocketfft) 150-190 ms, FFTW through pyFFTW 160 ms; on an Intel CPU MKL
may win. So `FFTDemag` asks `choose_backend` which one to use: on the first use of a shape it
times every available backend on that shape and keeps the fastest, caching the choice on disk
(`fft_backends.json` in the cache folder, see `cache_dir`). `[solver] fft` forces one.

Every backend computes the same thing, the spectrum of M zero-padded to `padded` and the inverse
cropped to the grid, pruned in both directions:
- forward: a real FFT along x over the unpadded rows only, then complex FFTs along y and z with
  zero padding (the zero rows are never transformed along x);
- inverse: the inverse along z, then y, keeping only the rows that survive the crop, so the last
  (real) inverse along x runs on the unpadded rows only.
Spectra are complex tensors of shape (..., Pz|1, Py|1, Px // 2 + 1) (layout "yx"); on the CPU the
numpy-based backends share memory with torch (torch.from_numpy, no copies). A film may instead
keep its spectrum transposed, (..., 1, Px // 2 + 1, Py) (layout "xy"): the x pass's result is
copied transposed once, so the y pass runs along contiguous rows, and the inverse the same way
back. scipy does so by default on films (its strided-axis FFT was slower than that copy:
1024^2 float32 inverse 116-129 -> 75-82 ms, measured), torch can (`torch@xy`), FFTW cannot. The
multiply does not care which layout, as long as the kernel spectrum has it too (FFTDemag keeps
one per layout), so a forward and an inverse pair only within one layout; a pair's name says
which ("torch@xy+scipy", "fftw+scipy@yx"), and auto measures every backend in every layout it
can keep and keeps the fastest forward + inverse of one layout. Normalisation: torch and scipy
normalise the inverse; FFTW does not, and says so through `scale` (1 / (Pz Py Px)), which the
caller folds into its kernel so that no extra pass is needed.

Backends: "torch" (always; CUDA tensors always use it: cuFFT), "scipy" (scipy.fft with
`workers`), "fftw" (pyFFTW, planned on preallocated aligned buffers; an optional extra: FFTW and
pyFFTW are GPL, so they are never required). Threads follow torch.get_num_threads() at
construction, i.e. the process's thread policy. The environment variable NMAG_FFT=<backend>
forces one backend wherever "auto" was asked (the test suite runs the physics with each).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .atomic import JsonObjectFile, write_atomic
from .timing import best_in_turns, clock_for

BACKENDS = ("torch", "scipy", "fftw")
LAYOUTS = ("yx", "xy")   # the spectrum's last axis: kx (as rfftn gives it) or ky (films, transposed)
# FFTW's planner and its wisdom are global state that only one thread may touch at a time
# (executing a plan is thread-safe): the app builds solvers in its engine thread and, for the
# probe or a twin run, in others
_FFTW_PLANNER = threading.RLock()
CHOICES = ("auto",) + BACKENDS


def split_name(part) -> tuple:
    """"scipy@xy" -> ("scipy", "xy"); "torch" -> ("torch", None): the backend's default layout."""
    backend, at, layout = str(part).partition("@")
    return backend, (layout if at else None)


def is_choice(name) -> bool:
    """"auto", a backend, or "forward+inverse" with two backends (what auto may pick and a
    sweep pins so that every worker computes the same numbers); each backend may name its
    spectrum layout ("torch@xy"; see the module docstring)."""
    if name in CHOICES:
        return True
    parts = str(name).split("+")
    if len(parts) > 2:
        return False
    for part in parts:
        backend, layout = split_name(part)
        if backend not in BACKENDS or layout not in (None,) + LAYOUTS or (backend, layout) == ("fftw", "xy"):
            return False
    return True


def default_layout(backend, padded) -> str:
    """scipy keeps a film's spectrum transposed (faster there, see ScipyPipeline); the others yx."""
    return "xy" if backend == "scipy" and transposable(padded) else "yx"


def describe(pipe) -> str:
    """The name that rebuilds this pipeline: "scipy", "torch@xy+scipy", "fftw+scipy@yx", ..."""
    if isinstance(pipe, MixedPipeline):
        return pipe.name
    return label(pipe)


def label(pipe) -> str:
    return full_name(pipe.name, pipe.layout, pipe.padded)


def full_name(backend, layout, padded) -> str:
    """backend, with "@layout" when the layout is not the backend's default for this grid."""
    return backend if layout == default_layout(backend, padded) else f"{backend}@{layout}"


def padded_shape(n) -> tuple:
    """(Pz, Py, Px) of FFTDemag's zero padding for a grid n = (nx, ny, nz): 2n along each axis
    longer than one cell (open boundaries), 1 otherwise."""
    nx, ny, nz = n
    return (2 * nz if nz > 1 else 1, 2 * ny if ny > 1 else 1, 2 * nx if nx > 1 else 1)


def resolved_backend(n, dtype, device="cpu", force="auto", threads=1) -> str:
    """The name auto (or the forced choice) comes to for this grid: e.g. "scipy" or
    "torch+scipy". Measures and caches when the shape is new."""
    return describe(choose_backend(n, padded_shape(n), dtype, device, force, threads)[0])


def available_backends(device="cpu") -> tuple:
    """The backends that can run here: torch always; scipy and pyFFTW where installed (CPU only).
    scipy.fft is found, not imported (0.3-0.5 s; imported where chosen: a scipy that is found but
    does not import is skipped by choose_backend like any backend that fails to build)."""
    if not str(device).startswith("cpu"):
        return ("torch",)
    out = ["torch"]
    if _scipy_fft_installed():
        out.append("scipy")
    try:
        pyfftw_module()
        out.append("fftw")
    except ImportError:
        pass
    return tuple(out)


def _scipy_fft_installed() -> bool:
    """Whether scipy.fft is there, without importing scipy (find_spec of a submodule imports its
    package: 80 ms of every start here, most of it scipy's test utilities)."""
    try:
        spec = importlib.util.find_spec("scipy")
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if "scipy" in sys.modules or not spec.submodule_search_locations:
        try:
            return importlib.util.find_spec("scipy.fft") is not None
        except (ImportError, ValueError):
            return False
    return any((Path(p) / "fft" / "__init__.py").is_file() for p in spec.submodule_search_locations)


# what pyFFTW's package imports beside FFTW itself, where installed: its interfaces to scipy's and
# dask's FFTs, which the engine never uses (with both installed they took 0.4 s of every start;
# dask is blocked whole, as importing dask.array.fft imports dask.array first)
_PYFFTW_EXTRAS = ("scipy.fftpack", "scipy.fft", "dask")
_PYFFTW_MISSING = None   # why pyfftw could not be imported, once tried: never tried again


def pyfftw_module():
    """pyfftw, imported without its scipy and dask interfaces: each of those imports is made to
    fail (a None in sys.modules, Python's way of blocking one) while pyfftw loads, as pyfftw
    itself skips them where the library is not installed (so pyfftw.interfaces.scipy_fft is then
    an attribute only after its own `import pyfftw.interfaces.scipy_fft`). A thread that imported
    scipy.fft or dask for the first time in those few milliseconds would get an ImportError: so
    the import is tried once, when this module is imported (below), before the engine starts
    threads of its own; a failure is remembered. ImportError where pyFFTW is not installed or
    does not load."""
    global _PYFFTW_MISSING
    loaded = sys.modules.get("pyfftw", False)
    if loaded is None:   # blocked the same way (tests that play a machine without pyFFTW)
        raise ImportError("import of pyfftw halted; None in sys.modules")
    if loaded is not False:
        return loaded
    if _PYFFTW_MISSING is not None:
        raise ImportError(_PYFFTW_MISSING)
    with _FFTW_PLANNER:
        blocked = []
        try:
            for name in _PYFFTW_EXTRAS:
                if name not in sys.modules:
                    blocked.append(name)
                    sys.modules[name] = None
            import pyfftw
        except Exception as e:   # noqa: BLE001 - not installed, or installed and broken (numpy ABI)
            _PYFFTW_MISSING = f"pyfftw does not import: {type(e).__name__}: {e}"
            raise ImportError(_PYFFTW_MISSING) from e
        finally:
            for name in blocked:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
    return pyfftw


try:
    pyfftw_module()
except ImportError:
    pass


class BackendUnavailable(RuntimeError):
    """A forced backend that cannot run here (its library is missing, or the tensor is on a GPU)."""


# ------------------------------------------------------------------------------------ pipelines
class _AnyShape:
    """What a pipeline that takes any leading shape and allocates its results says of itself."""
    reuses_output = False   # inverse() returns a fresh tensor

    def accepts(self, M) -> bool:
        return True

    def input_view(self):
        return None   # no input buffer of its own: forward() takes M


def transposable(padded) -> bool:
    """A film (no z padding) padded along both x and y: its spectrum may be kept transposed."""
    Pz, Py, Px = padded
    return Pz == 1 and Py > 1 and Px > 1


def check_layout(name, layout, padded) -> str:
    """The layout asked for, checked: "yx" (the spectrum's last axis is kx, as rfftn gives it)
    or "xy" (films only: kx first, ky last; see the module docstring)."""
    if layout not in LAYOUTS:
        raise BackendUnavailable(f"unknown spectrum layout {layout!r} for FFT backend {name!r}; one of {', '.join(LAYOUTS)}")
    if layout == "xy" and not transposable(padded):
        raise BackendUnavailable(f"FFT backend {name}@xy serves films of one layer only")
    return layout


class TorchPipeline(_AnyShape):
    """torch.fft, on any device.

    Layout "yx": the forward is one multi-dimensional rfftn of a zero-padded buffer kept across
    calls (MKL runs a 2D/3D transform faster than torch's chain of 1D calls along strided axes;
    the kept buffer saves the padded copy that rfftn(s=...) makes each call: 1024^2 float32
    150 -> 101 ms here, measured), and the caller may write M straight into it (input_view).
    Layout "xy" (films): a real FFT along x, a transposing copy, a complex FFT along the then
    contiguous y; the inverse the same way back. On the CPU the forward keeps two zero-padded
    buffers, real (ny, Px) and transposed complex (Px // 2 + 1, Py), so the padding of each pass
    is never allocated and filled again and the transposing copy writes straight into the second
    pass's input (256^2 float32 forward 1.07 -> 0.81 ms, 1024^2 47 -> 35 ms here, measured)."""
    name = "torch"

    def __init__(self, n, padded, dtype, threads=None, layout="yx", device="cpu"):
        self.n, self.padded = tuple(n), tuple(padded)
        self.layout = check_layout(self.name, layout, self.padded)
        Pz, Py, Px = self.padded
        nx, ny, nz = self.n
        self._fdims = tuple(d for d, P in ((-3, Pz), (-2, Py)) if P > 1) + (-1,)
        self._fsize = tuple(P for P in (Pz, Py) if P > 1) + (Px,)
        self.scale = 1.0
        self._buf = self._in = self._cbuf = None
        if self.layout == "yx" and str(device).startswith("cpu"):
            self._buf = torch.zeros((3, Pz, Py, Px), dtype=dtype)   # padding stays zero
            self._in = self._buf[:, :nz, :ny, :nx]
        elif str(device).startswith("cpu"):
            self._buf = torch.zeros((3, 1, ny, Px), dtype=dtype)    # x padded; padding stays zero
            self._in = self._buf[..., :nx]
            cplx = torch.complex64 if dtype == torch.float32 else torch.complex128
            self._cbuf = torch.zeros((3, 1, Px // 2 + 1, Py), dtype=cplx)   # (kx, y), y padded

    def input_view(self):
        """The (3, nz, ny, nx) corner of the padded input buffer (CPU): write M here and call
        forward(None)."""
        return self._in

    def _fits_buffer(self, M) -> bool:
        """M (None: already written through input_view) can go through the kept buffer."""
        return self._in is not None and (M is None or (M.shape == self._in.shape and M.device == self._in.device))

    def forward(self, M) -> torch.Tensor:
        Py, Px = self.padded[1:]
        if not self._fits_buffer(M):   # batches, GPU tensors
            if self.layout == "xy":
                X = torch.fft.rfft(M, n=Px, dim=-1).transpose(-1, -2).contiguous()
                return torch.fft.fft(X, n=Py, dim=-1)
            return torch.fft.rfftn(M, s=self._fsize, dim=self._fdims)
        if M is not None:
            self._in.copy_(M)
        if self.layout == "xy":
            self._cbuf[..., :self.n[1]].copy_(torch.fft.rfft(self._buf, dim=-1).transpose(-1, -2))
            return torch.fft.fft(self._cbuf, dim=-1)
        return torch.fft.rfftn(self._buf, dim=self._fdims)

    def inverse(self, X: torch.Tensor) -> torch.Tensor:
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        if self.layout == "xy":
            X = torch.fft.ifft(X, dim=-1)[..., :ny].transpose(-1, -2).contiguous()
            return torch.fft.irfft(X, n=Px, dim=-1)[..., :nx]
        if Pz > 1:
            X = torch.fft.ifft(X, dim=-3)[..., :nz, :, :]
        if Py > 1:
            X = torch.fft.ifft(X, dim=-2)[..., :ny, :]
        return torch.fft.irfft(X, n=Px, dim=-1)[..., :nx]


class ScipyPipeline(_AnyShape):
    """scipy.fft (pocketfft, BSD) with `workers` threads; any leading shape (batches ride along).
    Layout "xy" (films; its default there) transposes between the x and y passes so that both
    run along contiguous rows: pocketfft along a strided axis was slower than the copy, measured
    here at 1024^2 float32 inverse 116-129 -> 75-82 ms, and 21 -> 14 ms at 512^2."""
    name = "scipy"

    def __init__(self, n, padded, dtype, threads=1, layout="yx", device="cpu"):
        import scipy.fft as sfft
        self._sfft = sfft
        self.n, self.padded = tuple(n), tuple(padded)
        self.layout = check_layout(self.name, layout, self.padded)
        self.workers = max(1, int(threads or 1))
        self.scale = 1.0

    def forward(self, M: torch.Tensor) -> torch.Tensor:
        f, w = self._sfft, self.workers
        Pz, Py, Px = self.padded
        X = f.rfft(M.numpy(), n=Px, axis=-1, workers=w)
        if self.layout == "xy":
            return torch.from_numpy(f.fft(np.ascontiguousarray(X.swapaxes(-1, -2)), n=Py, axis=-1,
                                          workers=w, overwrite_x=True))
        if Py > 1:
            X = f.fft(X, n=Py, axis=-2, workers=w, overwrite_x=True)
        if Pz > 1:
            X = f.fft(X, n=Pz, axis=-3, workers=w, overwrite_x=True)
        return torch.from_numpy(X)

    def inverse(self, X: torch.Tensor) -> torch.Tensor:
        f, w = self._sfft, self.workers
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        X = X.numpy()
        if self.layout == "xy":
            X = np.ascontiguousarray(f.ifft(X, axis=-1, workers=w, overwrite_x=True)[..., :ny].swapaxes(-1, -2))
            return torch.from_numpy(f.irfft(X, n=Px, axis=-1, workers=w)[..., :nx])
        if Pz > 1:
            X = f.ifft(X, axis=-3, workers=w, overwrite_x=True)[..., :nz, :, :]
        if Py > 1:
            X = f.ifft(X, axis=-2, workers=w, overwrite_x=True)[..., :ny, :]
        return torch.from_numpy(f.irfft(X, n=Px, axis=-1, workers=w)[..., :nx])


class FFTWPipeline:
    """FFTW through pyFFTW, planned once (FFTW_MEASURE, bounded planning time) on preallocated
    aligned buffers for the leading shape (3,); other leading shapes (batches) go to scipy/torch.

    Buffers: `real_in` (3, nz, ny, Px) whose padding columns stay zero; the x transform writes
    into the first ny rows of `ypad` (3, nz, Py, Kx) whose other rows stay zero; y (and z) run
    out of place into `spec`, the spectrum handed to the caller (multiplied in place there); the
    inverse runs z in place on `spec`, y from its first nz planes into `yinv`, and x from the
    first ny rows of `yinv` into `real_out` (3, nz, ny, Px), cropped to nx on return.
    """
    name = "fftw"
    reuses_output = True   # inverse() returns a view of real_out, overwritten by the next call
    PLAN_SECONDS = 0.5   # FFTW's own bound on the measuring time of one plan (6 plans per shape; wisdom is cached)

    layout = "yx"

    def __init__(self, n, padded, dtype, threads=1, layout="yx", device="cpu"):
        pyfftw = pyfftw_module()
        self.n, self.padded = tuple(n), tuple(padded)
        check_layout(self.name, layout, self.padded)
        if layout != "yx":
            raise BackendUnavailable("FFT backend fftw keeps the spectrum in layout yx only")
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        real = np.float32 if dtype == torch.float32 else np.float64
        cplx = np.complex64 if dtype == torch.float32 else np.complex128
        kw = dict(flags=("FFTW_MEASURE",), threads=max(1, int(threads or 1)),
                  planning_timelimit=self.PLAN_SECONDS)
        with _FFTW_PLANNER:
            self._plan(pyfftw, real, cplx, kw)
        self.scale = 1.0 / (Pz * Py * Px)
        self._spec_t = torch.from_numpy(self.spec)
        self._out_t = torch.from_numpy(self.real_out)[..., :nx]
        self._in_t = torch.from_numpy(self.real_in)[..., :nx]

    def _plan(self, pyfftw, real, cplx, kw) -> None:
        """Buffers and the six plans (under the planner lock)."""
        nx, ny, nz = self.n
        Pz, Py, Px = self.padded
        Kx = Px // 2 + 1
        load_wisdom()
        self.real_in = pyfftw.zeros_aligned((3, nz, ny, Px), dtype=real)
        self.ypad = pyfftw.zeros_aligned((3, nz, Py, Kx), dtype=cplx)
        self.spec = pyfftw.zeros_aligned((3, Pz, Py, Kx), dtype=cplx)
        self.yinv = pyfftw.zeros_aligned((3, nz, Py, Kx), dtype=cplx)
        self.real_out = pyfftw.zeros_aligned((3, nz, ny, Px), dtype=real)
        FFTW = pyfftw.FFTW
        # x writes into the first ny rows of ypad, or straight into the spectrum for one row
        x_out = self.ypad[:, :, :ny, :] if Py > 1 else self.spec[:, :nz]
        self._fx = FFTW(self.real_in, x_out, axes=(-1,), **kw)
        self._fy = FFTW(self.ypad, self.spec[:, :nz], axes=(-2,), **kw) if Py > 1 else None
        self._fz = FFTW(self.spec, self.spec, axes=(-3,), **kw) if Pz > 1 else None
        back = dict(kw, direction="FFTW_BACKWARD")
        self._iz = FFTW(self.spec, self.spec, axes=(-3,), **back) if Pz > 1 else None
        self._iy = FFTW(self.spec[:, :nz], self.yinv, axes=(-2,), **back) if Py > 1 else None
        src = self.yinv[:, :, :ny, :] if Py > 1 else self.spec[:, :nz]
        self._ix = FFTW(src, self.real_out, axes=(-1,), **back)
        save_wisdom()

    def input_view(self) -> torch.Tensor:
        """The (3, nz, ny, nx) input buffer as a tensor: write M here and call forward(None)."""
        return self._in_t

    def forward(self, M) -> torch.Tensor:
        nx, ny, nz = self.n
        if M is not None:
            np.copyto(self.real_in[..., :nx], M.numpy())
        self._fx()
        if self._fy is not None:
            self._fy()
        if self._fz is not None:
            self.spec[:, nz:] = 0
            self._fz()
        return self._spec_t

    def inverse(self, X: torch.Tensor) -> torch.Tensor:
        if X.data_ptr() != self._spec_t.data_ptr():
            np.copyto(self.spec, X.numpy())
        if self._iz is not None:
            self._iz(normalise_idft=False)
        if self._iy is not None:
            self._iy(normalise_idft=False)
        self._ix(normalise_idft=False)
        return self._out_t

    def accepts(self, M: torch.Tensor) -> bool:
        return tuple(M.shape) == self.real_in.shape[:-1] + (self.n[0],)


class MixedPipeline:
    """The forward of one backend and the inverse of another: the spectra have one layout and
    forward transforms are unnormalised in all three, so any pair composes; the pair's `scale` is
    its inverse's. Measured here at 256^2 float32: torch's 2D rfftn is the fastest forward and
    FFTW the fastest inverse, so neither single backend is the best pair."""

    def __init__(self, fwd, inv):
        if fwd.layout != inv.layout:
            raise BackendUnavailable(f"FFT backends {fwd.name} and {inv.name} keep the spectrum in other "
                                     f"layouts ({fwd.layout}, {inv.layout}): they do not pair")
        self.fwd, self.inv, self.layout = fwd, inv, fwd.layout
        self.name = f"{label(fwd)}+{label(inv)}"
        self.scale = inv.scale
        self.reuses_output = inv.reuses_output

    def forward(self, M):
        return self.fwd.forward(M)

    def inverse(self, X):
        return self.inv.inverse(X)

    def accepts(self, M) -> bool:
        return self.fwd.accepts(M) and self.inv.accepts(M)

    def input_view(self):
        return self.fwd.input_view()


PIPELINES = {"torch": TorchPipeline, "scipy": ScipyPipeline, "fftw": FFTWPipeline}


def make_pipeline(name, n, padded, dtype, device="cpu", threads=None, layout=None):
    """A pipeline by backend name ("scipy", or "scipy@yx" with its layout; `layout` overrides);
    BackendUnavailable with the reason if it cannot run here."""
    name, named_layout = split_name(name)
    if name not in PIPELINES:
        raise BackendUnavailable(f"unknown FFT backend {name!r}; choose one of {', '.join(CHOICES)}")
    if name != "torch" and name not in available_backends(device):
        why = "GPU tensors use torch (cuFFT)" if not str(device).startswith("cpu") else \
            ("pip install scipy" if name == "scipy" else "pip install pyfftw (GPL)")
        raise BackendUnavailable(f"FFT backend {name!r} is not available here ({why})")
    threads = torch.get_num_threads() if threads is None else threads
    layout = layout or named_layout or default_layout(name, padded)
    return PIPELINES[name](n, padded, dtype, threads, layout=layout, device=device)


def candidates(names, padded, device="cpu") -> tuple:
    """Every (backend, layout) that can run this grid, as names make_pipeline takes."""
    out = []
    for name in names:
        for layout in LAYOUTS:
            if layout == "xy" and (name == "fftw" or not transposable(padded) or not str(device).startswith("cpu")):
                continue
            out.append(full_name(name, layout, padded))
    return tuple(out)


# ------------------------------------------------------------------------------ choice and cache
def cache_dir() -> Path:
    """Where measured choices and FFTW wisdom are kept: $NMAG_CACHE_DIR, else
    $XDG_CACHE_HOME/neuralmag-studio, else ~/.cache/neuralmag-studio."""
    env = os.environ.get("NMAG_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neuralmag-studio"


def _choice_file() -> Path:
    return cache_dir() / "fft_backends.json"


# the measured choices, {shape key: record}, parsed again only when the file's bytes change (a
# neural demag's build asked for them about five times)
_CHOICES = JsonObjectFile(_choice_file)


def shape_key(n, dtype, threads, padded=None) -> str:
    """The cache key of a choice: grid, precision and thread count (each changes the winner),
    and the padding where it is not FFTDemag's (the neural near field pads by a few cells)."""
    nx, ny, nz = n
    pad = "" if padded is None or tuple(padded) == padded_shape(n) else ":pad=" + "x".join(map(str, padded[::-1]))
    return f"{nx}x{ny}x{nz}{pad}:{str(dtype).replace('torch.', '')}:threads={threads}:layouts"


_WISDOM_LOADED = False


def load_wisdom() -> None:
    """Load FFTW's saved plans (wisdom) once per process, so a known shape plans instantly."""
    global _WISDOM_LOADED
    with _FFTW_PLANNER:
        if _WISDOM_LOADED:
            return
        _WISDOM_LOADED = True
        _import_wisdom()


_WISDOM_ON_DISK = None   # the wisdom as last read from or written to the cache file


def _import_wisdom() -> None:
    global _WISDOM_ON_DISK
    try:
        pyfftw = pyfftw_module()
        raw = json.loads((cache_dir() / "fftw_wisdom.json").read_text())
        pyfftw.import_wisdom(tuple(bytes.fromhex(w) for w in raw))
        _WISDOM_ON_DISK = pyfftw.export_wisdom()
    except (OSError, ValueError, TypeError, ImportError):
        pass


def save_wisdom() -> None:
    """Write FFTW's wisdom to the cache file where planning added to it (every plan of a known
    shape comes from the file: rewriting it unchanged cost 30 ms a plan, three plans for a
    network's near field)."""
    global _WISDOM_ON_DISK
    try:
        pyfftw = pyfftw_module()
        with _FFTW_PLANNER:
            wisdom = pyfftw.export_wisdom()
            if wisdom == _WISDOM_ON_DISK:
                return
            cache_dir().mkdir(parents=True, exist_ok=True)
            write_atomic(cache_dir() / "fftw_wisdom.json", json.dumps([w.hex() for w in wisdom]))
            _WISDOM_ON_DISK = wisdom
    except (OSError, ImportError):
        pass


def time_pipelines(pipes: dict, n, dtype, rounds=3, budget_s=0.5, threads=1) -> dict:
    """{name: (best forward s, best inverse s)} of a random (3, nz, ny, nx) field, each pipeline
    warmed up once (one that fails its warm-up is left out), then timed in turns
    (engine.timing.best_in_turns)."""
    clock = clock_for(threads)
    nx, ny, nz = n
    M = torch.rand((3, nz, ny, nx), dtype=dtype)
    rounds_of = {}
    for name, pipe in pipes.items():
        try:
            pipe.inverse(pipe.forward(M))
        except (RuntimeError, ValueError, MemoryError):
            continue

        def one_round(pipe=pipe):
            t0 = clock()
            X = pipe.forward(M)
            t1 = clock()
            pipe.inverse(X)
            return t1 - t0, clock() - t1
        rounds_of[name] = one_round
    return best_in_turns(rounds_of, rounds, budget_s)


_WARNED = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        from .errors import warn_at_caller
        warn_at_caller(message)


def _usable(record: dict, names) -> bool:
    """Whether a cached choice names a forward and an inverse of backends available here."""
    return all(split_name(record.get(d))[0] in names for d in ("forward", "inverse"))


def choose_backend(n, padded, dtype, device="cpu", force="auto", threads=None):
    """The pipeline to use for this grid: the forced backend, or the fastest available forward
    and the fastest inverse as measured on this shape (cached on disk; they may come from two
    backends). Returns (pipeline, how) where how is "forced", "only", "cached" or "measured"."""
    threads = torch.get_num_threads() if threads is None else threads
    env = os.environ.get("NMAG_FFT", "auto").strip() or "auto"
    if force == "auto" and env != "auto":
        if is_choice(env):
            force = env   # one backend (or pair) for a whole run (tests run physics with each)
        else:
            _warn_once(f"NMAG_FFT={env!r} is not an FFT backend (expected one of {', '.join(CHOICES)}, "
                       "or 'forward+inverse' such as 'fftw+torch'): ignored, the fastest is measured")
    if not is_choice(force):
        raise BackendUnavailable(f"unknown FFT backend {force!r}; choose one of {', '.join(CHOICES)} "
                                 "(or 'forward+inverse', e.g. 'torch+scipy')")
    if force != "auto":
        fwd, _, inv = force.partition("+")
        return _pair(fwd, inv or fwd, {}, n, padded, dtype, device, threads), "forced"
    names = available_backends(device)
    if names == ("torch",):
        return make_pipeline("torch", n, padded, dtype, device, threads), "only"
    key = shape_key(n, dtype, threads, padded)
    choices = _CHOICES.read()
    known = choices.get(key, {})
    if _usable(known, names):
        try:
            return _pair(known["forward"], known["inverse"], {}, n, padded, dtype, device, threads), "cached"
        except ImportError:   # found but broken since it was measured (a scipy built for another numpy)
            pass
    pipes = {}
    for name in candidates(names, padded, device):
        try:
            pipes[name] = make_pipeline(name, n, padded, dtype, device, threads)
        except (BackendUnavailable, ImportError, RuntimeError, ValueError, MemoryError):
            continue
    timings = time_pipelines(pipes, n, dtype, threads=threads)
    # the fastest forward + inverse of one spectrum layout
    fwd, inv = min(((f, i) for f in timings for i in timings if pipes[f].layout == pipes[i].layout),
                   key=lambda p: timings[p[0]][0] + timings[p[1]][1])
    choices[key] = {"forward": fwd, "inverse": inv, "layout": pipes[fwd].layout,
                    "forward_ms": {k: round(v[0] * 1e3, 3) for k, v in timings.items()},
                    "inverse_ms": {k: round(v[1] * 1e3, 3) for k, v in timings.items()},
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    _CHOICES.write(choices)
    return _pair(fwd, inv, pipes, n, padded, dtype, device, threads), "measured"


def measured_ms(n, padded, dtype, device="cpu", threads=None):
    """The chosen forward + inverse of this grid on this padding, in ms, as measured and cached by
    choose_backend (measuring it once if it was not); None where nothing is measured (torch
    alone). What fastest_padding compares."""
    threads = torch.get_num_threads() if threads is None else threads
    names = available_backends(device)
    key = shape_key(n, dtype, threads, padded)
    rec = _CHOICES.read().get(key, {})
    if not _usable(rec, names):
        choose_backend(n, padded, dtype, device, "auto", threads)   # measures and caches once per padding
        rec = _CHOICES.read().get(key, {})
    try:
        return rec["forward_ms"][rec["forward"]] + rec["inverse_ms"][rec["inverse"]]
    except (KeyError, TypeError):
        return None


def measuring(force="auto", device="cpu") -> bool:
    """Whether choices are made by measurement here: not with a forced backend (an argument or
    NMAG_FFT) or where torch is the only one."""
    return force == "auto" and os.environ.get("NMAG_FFT", "auto") not in BACKENDS and \
        available_backends(device) != ("torch",)


def fastest_padding(n, paddings, dtype, device="cpu", force="auto", threads=None) -> tuple:
    """Of several zero paddings that give the same (short-range) convolution, the one whose
    chosen forward + inverse measured fastest (each padding measured and cached as
    choose_backend does). The first padding where nothing is measured: a forced backend, torch
    alone, or one padding only. Why: the smallest fast length is not the fastest one; for the
    neural near field at 256^2, 288 (2^5 3^2) took 20 % less than 270 (2 3^3 5) here."""
    paddings = [tuple(p) for p in dict.fromkeys(tuple(p) for p in paddings)]
    if len(paddings) == 1 or not measuring(force, device):
        return paddings[0]
    best, best_ms = paddings[0], float("inf")
    for p in paddings:
        ms = measured_ms(n, p, dtype, device, threads)
        if ms is None:
            return paddings[0]   # nothing measured (torch alone): no grounds to choose
        if ms < best_ms:
            best, best_ms = p, ms
    return best


def _pair(fwd, inv, built, n, padded, dtype, device, threads):
    """One pipeline, or a MixedPipeline when forward and inverse come from different backends.
    Both keep one spectrum layout: the one a name gives ("torch@xy"); else the inverse's default
    where the forward can keep it (FFTW cannot keep xy), else the forward's."""
    (fb_, fl), (ib, il) = split_name(fwd), split_name(inv)
    if fl and il and fl != il:
        raise BackendUnavailable(f"FFT backends {fwd} and {inv} keep the spectrum in other layouts: they do not pair")
    layout = fl or il
    if layout is None:
        layout = default_layout(ib, padded)
        if layout == "xy" and fb_ == "fftw":
            layout = default_layout(fb_, padded)

    def get(backend):
        return built.get(full_name(backend, layout, padded)) or make_pipeline(backend, n, padded, dtype, device, threads, layout=layout)
    f = get(fb_)
    return f if (fb_, fl or layout) == (ib, il or layout) else MixedPipeline(f, get(ib))
