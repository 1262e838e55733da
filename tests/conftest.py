"""Shared fixtures."""
import os

import pytest
import torch

# Compiled kernels (engine.fused) are off for the suite: a background compile takes seconds of
# CPU on a 2-core machine and would make timings of unrelated tests vary. tests/test_fused.py
# turns them on and checks them against the eager code.
os.environ.setdefault("NMAG_COMPILE", "0")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Physics tests use tiny grids: extra intra-op threads only add overhead, and on a busy
    2-core machine OpenMP's spin-waiting made them 10-40x slower. Restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def two_threads():
    """Tests of the network's ways to use two threads (engine.neural.overlap, two_parts): torch
    at two threads whatever the machine, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
