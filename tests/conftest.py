"""Shared fixtures."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Physics tests use tiny grids: extra intra-op threads only add overhead, and on a busy
    2-core machine OpenMP's spin-waiting made them 10-40x slower. Restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
