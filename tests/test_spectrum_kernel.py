"""The exact demag's compiled spectrum multiply (engine.spectrum_kernel): the same field as torch's
passes, to rounding, for every backend and layout a film or a layered grid can take; batches of
films keep the torch passes."""
import pytest
import torch

from engine import spectrum_kernel
from engine.demag import FFTDemag
from engine.fft_backends import available_backends

BACKENDS = [b for b in ("torch", "torch@xy", "scipy", "scipy@yx", "fftw") if b.split("@")[0] in available_backends()]
needs_library = pytest.mark.skipif(spectrum_kernel.library() is None,
                                   reason=f"no compiled multiply here: {spectrum_kernel.why_not()}")


def _fields(n, d, dtype, fft, M, monkeypatch):
    """H of M with the compiled pass and with torch's passes (NMAG_SPECTRUM_KERNEL=0)."""
    with_c = FFTDemag(n, d, dtype, fft=fft).h_from_M(M)
    monkeypatch.setenv(spectrum_kernel.ENV, "0")
    without = FFTDemag(n, d, dtype, fft=fft).h_from_M(M)
    monkeypatch.delenv(spectrum_kernel.ENV)
    return with_c, without


@needs_library
# the transposed layout (@xy) serves films of one layer only
@pytest.mark.parametrize("fft,nz", [(b, 1) for b in BACKENDS] + [(b, 3) for b in BACKENDS if not b.endswith("@xy")])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 2e-6)])
def test_compiled_multiply_gives_the_torch_passes_field(fft, nz, dtype, tol, monkeypatch, one_torch_thread):
    n, d = (37, 20, nz), (3e-9, 4e-9, 2e-9)
    M = torch.randn(3, nz, 20, 37, dtype=dtype, generator=torch.Generator().manual_seed(4)) * 8e5
    with_c, without = _fields(n, d, dtype, fft, M, monkeypatch)
    assert float((with_c - without).abs().max() / without.abs().max()) < tol
    assert not torch.equal(with_c, torch.zeros_like(with_c))


@needs_library
def test_the_compiled_pass_runs_on_films_and_layers_and_not_on_batches(monkeypatch, one_torch_thread):
    calls = []
    real = spectrum_kernel.SpectrumMultiply.__call__
    monkeypatch.setattr(spectrum_kernel.SpectrumMultiply, "__call__", lambda self, X: calls.append(real(self, X)) or calls[-1])
    fd = FFTDemag((16, 12, 1), (1e-9,) * 3, torch.float64, fft="scipy")
    fd.h_from_M(torch.randn(3, 1, 12, 16, dtype=torch.float64))
    kernels = {c: torch.zeros(5, dtype=torch.float64) for c in ("xx", "xy", "yy", "zz")}
    assert calls == [True] and spectrum_kernel.spectrum_multiplier(kernels)(torch.zeros(3, 5, dtype=torch.complex128))
    # a batch of films along the third-last axis: the kernels' planes do not match, torch's passes
    batch = torch.randn(3, 4, 12, 16, dtype=torch.float64)
    got = fd.h_from_M(batch)
    ref = torch.stack([fd.h_from_M(batch[:, i:i + 1])[:, 0] for i in range(4)], dim=1)
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-9 * float(ref.abs().max()))
    assert not spectrum_kernel.spectrum_multiplier(kernels)(torch.zeros(3, 2, 5, dtype=torch.complex128))
    assert not spectrum_kernel.spectrum_multiplier(kernels)(torch.zeros(3, 5, dtype=torch.complex64))   # another dtype
    assert spectrum_kernel.spectrum_multiplier({**kernels, "xy": torch.zeros(4, dtype=torch.float64)}) is None
    layered = FFTDemag((8, 8, 2), (1e-9,) * 3, torch.float64, fft="scipy")
    calls.clear()
    assert isinstance(layered._mul, spectrum_kernel.SpectrumMultiply)
    layered.h_from_M(torch.randn(3, 2, 8, 8, dtype=torch.float64))
    assert calls == [True]                                                  # layered: the compiled pass
    six = {**kernels, "xz": torch.zeros(5, dtype=torch.float64), "yz": torch.zeros(5, dtype=torch.float64)}
    assert spectrum_kernel.spectrum_multiplier(six)(torch.zeros(3, 5, dtype=torch.complex128))
    assert spectrum_kernel.spectrum_multiplier({**six, "yz": torch.zeros(5, dtype=torch.float32)}) is None
