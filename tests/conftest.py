"""Shared test setup: every test starts from the same seeds, hypothesis runs a small, fixed
number of examples without deadlines (the 2-core CI machine is slow and shared), and
`tests/oracle.py` (the torch-vs-neurona comparison helper) is importable as `oracle`. Torch,
the reference, runs on one thread: `make test` already runs two pytest workers on two cores.
"""
import numpy as np
import pytest
import torch
from hypothesis import settings

import neurona as nr

settings.register_profile("neurona", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("neurona")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    nr.manual_seed(0)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
