"""Shared test setup: every test starts from the same seeds, hypothesis runs a small, fixed
number of examples without deadlines (the 2-core CI machine is slow and shared), and
`tests/oracle.py` (the torch-vs-neurona comparison helper) is importable as `oracle`. Torch,
the reference, runs on one thread: `make test` already runs two pytest workers on two cores.
The convolution algorithm rule uses its built-in constants (NEURONA_CONV_CALIBRATION=0), so
which layers go through Winograd (float32 results ~1e-5 from im2col's) does not depend on the
machine's calibration, and tests write nothing under ~/.cache; test_conv_winograd5.py turns the
calibration back on in a temporary cache directory.
"""
import os

os.environ.setdefault("NEURONA_CONV_CALIBRATION", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

import neurona as nr  # noqa: E402

settings.register_profile("neurona", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("neurona")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    nr.manual_seed(0)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
