"""The IDX format of (Fashion-)MNIST: magic `0 0 <type> <ndim>`, `ndim` big-endian uint32 sizes,
then the values in row-major order, big-endian. Files may be gzipped.
May import: numpy, the standard library.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, source="<bytes>") -> np.ndarray:
    """Decode the bytes of one (uncompressed) IDX file.

    >>> import numpy as np
    >>> parse_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ValueError(f"{source}: not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{source}: IDX header truncated ({len(raw)} bytes, {ndim} dimensions)")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{source}: IDX size mismatch: header says shape {shape} "
                         f"({expected} bytes), file has {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped when its name ends with .gz) into a NumPy array."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read IDX file ({e})") from e
    return parse_idx(raw, source=path)
