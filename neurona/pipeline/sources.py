"""Reading example sources (CSV, Parquet, NumPy .npz) into frames, finding time spans, and
storing frames as .npz files (loaded with `allow_pickle=False`: never code, only arrays).

A frame is a dict {column: NumPy array}. CSV and Parquet go through pandas (Parquet through
pyarrow); numeric columns become float64 (a missing value is NaN), text columns become unicode
arrays (a missing value is ""). An .npz source holds one array per column, e.g. `image`
(N, 28, 28) and `label` (N,).

Spans: a folder of files matching a pattern with one `*` (e.g. `span-*.csv`, `day-*.npz`), the
`*` part being the span id (sorted numerically when every id is a number); or one file with a
`span_column` whose distinct values are the spans.
May import: numpy, hashlib, pandas and pyarrow (lazily, for CSV and Parquet).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

FORMATS = ("csv", "parquet", "npz")


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_sha256(path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, in sorted order)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode() + b"\0")
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def format_of(path, fmt="auto") -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise ValueError(f"ExampleGen: format {fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in ("csv", "parquet", "npz"):
        return suffix
    if suffix == "pq":
        return "parquet"
    raise ValueError(f"ExampleGen: cannot tell the format of {path} from its suffix; give format: csv|parquet|npz")


def _from_pandas(df) -> dict:
    frame = {}
    for name in df.columns:
        col = df[name]
        if col.dtype.kind in "iufb":
            frame[str(name)] = col.to_numpy(dtype=np.float64) if col.dtype.kind != "b" else col.to_numpy()
        else:
            frame[str(name)] = np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                                         for v in col.tolist()])
    return frame


def read_frame(path, fmt="auto") -> dict:
    """Read one source file into a frame."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ExampleGen: no file {path}")
    fmt = format_of(path, fmt)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    import pandas as pd

    df = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    return _from_pandas(df)


def save_frame(frame: dict, path) -> Path:
    """Write a frame to an .npz file atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, col in frame.items():
        if col.dtype.kind == "O":
            raise TypeError(f"save_frame: column {name!r} holds Python objects; use numbers or strings")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **frame)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_frame(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def span_id(name: str, pattern: str):
    """The part of `name` that the single `*` of `pattern` matched, or None.

    >>> span_id("span-2014.csv", "span-*.csv"), span_id("other.csv", "span-*.csv")
    ('2014', None)
    """
    if pattern.count("*") != 1:
        raise ValueError(f"ExampleGen: pattern {pattern!r} must hold exactly one '*' (the span id)")
    if not fnmatch.fnmatchcase(name, pattern):
        return None
    head, tail = pattern.split("*")
    return name[len(head):len(name) - len(tail) if tail else None]


def _span_order(ids):
    try:
        return sorted(ids, key=float)
    except ValueError:
        return sorted(ids)


def find_spans(folder, pattern) -> list[tuple[str, Path]]:
    """[(span id, file)] in span order for the files of `folder` matching `pattern`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"ExampleGen: input folder {folder} does not exist")
    found = {}
    for p in folder.iterdir():
        sid = span_id(p.name, pattern) if p.is_file() else None
        if sid is not None:
            found[sid] = p
    if not found:
        raise FileNotFoundError(f"ExampleGen: no file in {folder} matches {pattern!r}")
    return [(sid, found[sid]) for sid in _span_order(found)]


def concat(frames: list[dict]) -> dict:
    """Rows of several frames, keeping the columns all of them have (a span that lacks or adds
    a column is reported by the ExampleValidator, which checks each new span on its own)."""
    if not frames:
        return {}
    cols = [c for c in frames[0] if all(c in f for f in frames[1:])]
    return {c: np.concatenate([f[c] for f in frames]) for c in cols}


def take(frame: dict, index) -> dict:
    return {c: v[index] for c, v in frame.items()}
