"""Safetensors files with the same bytes for the same content, whatever the process.

The safetensors library writes the `__metadata__` map of a file's JSON header in its hash
map's order, which changes from one process to the next: the same model saved twice gave files
with different SHA-256s, and anything that compares saved files by hash (the integrity check of
a model folder, the pipeline's "this model is already pushed") saw two models. `save_bytes`
rewrites the header with the metadata keys sorted — the same length, the same tensors, the same
data offsets — and `save_file` writes that.
May import: json, numpy, safetensors.
"""
from __future__ import annotations

import json


def save_bytes(arrays: dict, metadata: dict | None = None) -> bytes:
    """The safetensors bytes of `arrays` (name → NumPy array) and `metadata` (str → str), with
    the metadata keys in sorted order.

    >>> import numpy as np
    >>> a = save_bytes({"w": np.ones(2, np.float32)}, {"b": "2", "a": "1"})
    >>> a[8:60]
    b'{"__metadata__":{"a":"1","b":"2"},"w":{"dtype":"F32"'
    """
    from safetensors.numpy import save

    raw = save(arrays, metadata=metadata)
    if not metadata or len(metadata) < 2:
        return raw
    n = int.from_bytes(raw[:8], "little")
    text = raw[8:8 + n].decode("utf-8")
    header = json.loads(text)  # keeps the tensors in the order they were written
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    canon = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    body = text.rstrip(" ").encode("utf-8")
    if len(canon) != len(body):  # an escaping difference: keep the library's bytes
        return raw
    return raw[:8] + canon + raw[8 + len(canon):]


def save_file(arrays: dict, path, metadata: dict | None = None):
    """Write `save_bytes(arrays, metadata)` to `path`."""
    data = save_bytes(arrays, metadata)
    with open(path, "wb") as f:
        f.write(data)
