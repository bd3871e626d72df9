"""Smoke tests of the CNN examples with tiny settings: they finish and write their files
(fashion_mnist_cnn.py with augmentation through fit(transform=...), image_retrieval.py,
visualize_cnn.py, and emoji_cnn.py on a fake emoji package)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def run(script, *args):
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def saved(stdout):
    return [Path(p) for p in re.findall(r"^saved (.+)$", stdout, re.MULTILINE)]


def _check_files(stdout, names, where):
    files = saved(stdout)
    assert sorted(p.name for p in files) == sorted(names)
    for p in files:
        assert p.parent == where and p.exists()
        if p.suffix == ".png":
            assert p.read_bytes()[:4] == b"\x89PNG"
        else:
            assert (p / "config.json").is_file() and (p / "model.safetensors").is_file()


@pytest.mark.skipif(not FASHION.is_dir(), reason="needs the Debian package dataset-fashion-mnist")
def test_fashion_mnist_cnn_with_augmentation_runs(tmp_path):
    stdout = run("fashion_mnist_cnn.py", "--epochs", "1", "--limit", "240", "--test-limit", "200",
                 "--augment", "--out", str(tmp_path))
    acc = float(re.search(r"^test accuracy: ([0-9.]+)", stdout, re.MULTILINE).group(1))
    assert 0.0 <= acc <= 1.0 and "train − test gap" in stdout
    _check_files(stdout, ["fashion_mnist_cnn_augmented", "fashion_mnist_cnn_augmented_curves.png"], tmp_path)


@pytest.mark.skipif(not FASHION.is_dir(), reason="needs the Debian package dataset-fashion-mnist")
def test_image_retrieval_runs(tmp_path):
    stdout = run("image_retrieval.py", "--limit", "300", "--gallery", "300", "--queries", "3",
                 "--out", str(tmp_path))
    p5 = [float(v) for v in re.findall(r"^precision@5, .*:\s+([0-9.]+)$", stdout, re.MULTILINE)]
    assert len(p5) == 2 and all(0.0 <= v <= 1.0 for v in p5)
    _check_files(stdout, ["image_retrieval.png"], tmp_path)


@pytest.mark.skipif(not FASHION.is_dir(), reason="needs the Debian package dataset-fashion-mnist")
def test_visualize_cnn_trains_when_no_model_is_saved(tmp_path):
    stdout = run("visualize_cnn.py", "--epochs", "1", "--limit", "240", "--label", "Shirt", "--max-maps", "4",
                 "--out", str(tmp_path))
    assert f"no saved model at {tmp_path / 'fashion_mnist_cnn'}" in stdout
    assert "trained build_cnn() for 1 epoch(s) on 240 Fashion-MNIST images" in stdout
    assert re.search(r"^test image \d+: Shirt, predicted ", stdout, re.MULTILINE)
    _check_files(stdout, ["cnn_filters.png", "cnn_feature_maps.png"], tmp_path)


def _fake_emoji_package(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pkg = tmp_path / "pkg"
    (pkg / "img" / "google" / "64").mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(27):  # 3 images for each of 9 categories
        name = f"e{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA").save(pkg / "img/google/64" / name)
        entries.append({"image": name, "category": f"cat{i % 9}", "short_name": name[:-4], "sort_order": i})
    (pkg / "emoji.json").write_text(json.dumps(entries))
    return pkg


def test_emoji_cnn_runs_on_a_fake_package(tmp_path):
    pkg = _fake_emoji_package(tmp_path)
    out = tmp_path / "out"
    stdout = run("emoji_cnn.py", "--path", str(pkg), "--size", "16", "--epochs", "1", "--width", "4",
                 "--out", str(out))
    assert "emoji-9: 18 training and 9 test images" in stdout
    _check_files(stdout, ["emoji9_cnn", "emoji9_cnn_curves.png", "emoji9_cnn_samples.png"], out)


def test_emoji_cnn_resnet_runs_on_a_fake_package(tmp_path):
    pkg = _fake_emoji_package(tmp_path)
    out = tmp_path / "out"
    stdout = run("emoji_cnn.py", "--path", str(pkg), "--model", "resnet", "--depth", "8", "--size", "16",
                 "--epochs", "1", "--out", str(out))
    assert "emoji-9: 18 training and 9 test images" in stdout
    assert re.search(r"^test accuracy: ", stdout, re.MULTILINE)
