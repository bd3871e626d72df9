"""Array backends: the only place that imports NumPy/CuPy for the core.

Ops never import an array library; they ask for the module of the arrays they hold
(`array_module(a)`), so the same op code runs on NumPy (CPU) and CuPy (GPU). Random numbers
come from one seeded generator per backend (`manual_seed`).
May import: numpy, neurona.backend.threads, cupy (lazily). Nothing else in neurona.
"""
from __future__ import annotations

import numpy

_cupy = None


def _load_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy  # noqa: PLC0415 - optional, heavy
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise RuntimeError("device 'cuda' needs CuPy: pip install cupy-cuda12x "
                               "(or, in a neurona checkout, pip install -e '.[gpu]')") from e
        _cupy = cupy
    return _cupy


def _is_cupy_type(a) -> bool:
    return type(a).__module__.startswith("cupy")


def array_module(a):
    """The array module (numpy or cupy) that owns array `a` (numpy for lists and numbers)."""
    if type(a) is numpy.ndarray:
        return numpy
    if _cupy is None:  # a CuPy array made by the caller's own `import cupy` loads it here
        return _load_cupy() if _is_cupy_type(a) else numpy
    return _cupy.get_array_module(a)


def is_array(a) -> bool:
    """Whether `a` is a NumPy or CuPy array or scalar (not a list, a number or a Tensor)."""
    return hasattr(a, "__array_namespace__") or _is_cupy_type(a)


def _check_device(device):
    """'cpu' or 'cuda' for a device name; 'cuda:0' is 'cuda'. neurona drives one GPU (CuPy's
    current device), so another index is refused rather than silently ignored."""
    if device == "cpu" or device == "cuda":
        return device
    if isinstance(device, str) and device.startswith("cuda:"):
        index = device[5:]
        if not index.isdigit():
            raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:<index>'")
        if int(index) != 0:
            raise ValueError(f"device {device!r}: neurona uses one GPU, CuPy's current device ('cuda' or "
                             f"'cuda:0'); to run on GPU {index}, select it before starting "
                             f"(CUDA_VISIBLE_DEVICES={index}) or with cupy.cuda.Device({index}).use()")
        return "cuda"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def module_for(device: str):
    """The array module for a device name: 'cpu' or 'cuda' (also 'cuda:0')."""
    return numpy if _check_device(device) == "cpu" else _load_cupy()


def device_name(device: str) -> str:
    """'cpu' or 'cuda' for a device name ('cuda:0' too; another index is refused: one GPU);
    loads CuPy for 'cuda'."""
    module_for(device)
    return _check_device(device)


def device_of(a) -> str:
    return "cpu" if array_module(a) is numpy else "cuda"


def to_device(a, device: str):
    """Copy array `a` to `device`; no copy when it is already there."""
    if device_of(a) == ("cpu" if device == "cpu" else "cuda"):
        return a
    if device == "cpu":
        return a.get()
    return module_for(device).asarray(a)


# -- dtypes -------------------------------------------------------------------------------
float16, float32, float64 = numpy.float16, numpy.float32, numpy.float64
int8, int16, int32, int64 = numpy.int8, numpy.int16, numpy.int32, numpy.int64
uint8, bool_ = numpy.uint8, numpy.bool_
default_float = numpy.dtype(numpy.float32)


def as_dtype(dtype):
    return None if dtype is None else numpy.dtype(dtype)


def is_floating(dtype) -> bool:
    return numpy.dtype(dtype).kind == "f"


# -- random numbers -------------------------------------------------------------------------
_generators: dict = {}
_seed = None


# -- threads (threads.py): one setting for neurona's kernels and NumPy's BLAS ---------------------
from .threads import available_cpus, blas_threads, get_num_threads, kernel_threads, set_num_threads, thread_limit  # noqa: E402,F401
from .threads import apply_environment as _apply_environment  # noqa: E402

_apply_environment()


def manual_seed(seed: int) -> None:
    """Seed every backend's generator so that runs are reproducible."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(xp=numpy):
    """The seeded random generator of array module `xp`."""
    g = _generators.get(xp.__name__)
    if g is None:
        g = xp.random.default_rng(_seed)
        _generators[xp.__name__] = g
    return g
