"""neurona.datasets.emoji9 on a tiny fake copy of the npm package (no network): labels from
emoji.json, alpha composited on white, NCHW float32, a fixed stratified split, the left-out
"Component" category and skin variations, the npz cache, and the `get emoji9` command's errors."""
import json

import numpy as np
import pytest

from neurona import datasets
from neurona.datasets import __main__ as cli
from neurona.datasets.emoji9 import emoji9, stratified_split

Image = pytest.importorskip("PIL.Image")

# (image, category, RGBA fill)
_FIXTURE = [("1f600.png", "Smileys & Emotion", (255, 0, 0, 255)),      # opaque red
            ("1f601.png", "Smileys & Emotion", (0, 0, 255, 0)),        # fully transparent: white
            ("1f436.png", "Animals & Nature", (0, 0, 0, 128)),         # half-transparent black: grey
            ("1f431.png", "Animals & Nature", (0, 255, 0, 255)),
            ("1f3fb.png", "Component", (10, 10, 10, 255))]             # left out


def _fake_package(root, entries=_FIXTURE, node_modules=True):
    pkg = root / "node_modules" / "emoji-datasource-google" if node_modules else root
    (pkg / "img" / "google" / "64").mkdir(parents=True)
    listing = []
    for order, (image, category, rgba) in enumerate(entries):
        pixels = np.zeros((64, 64, 4), np.uint8)
        pixels[...] = rgba
        pixels[0, 0] = (0, 0, 0, 255)  # one opaque black pixel marks the top-left corner
        Image.fromarray(pixels, "RGBA").save(pkg / "img" / "google" / "64" / image)
        listing.append({"image": image, "category": category, "short_name": image[:-4], "sort_order": order,
                        "has_img_google": True,
                        "skin_variations": {"1F3FB": {"image": image[:-4] + "-1f3fb.png"}}})
    (pkg / "emoji.json").write_text(json.dumps(listing))
    return pkg


def test_labels_compositing_layout_and_split(tmp_path):
    _fake_package(tmp_path)
    (x, y, names), (xt, yt, names_t), classes = emoji9(tmp_path, return_names=True)
    assert classes == ["Animals & Nature", "Smileys & Emotion"]  # 'Component' is left out
    assert x.shape[1:] == (3, 64, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(x) + len(xt) == 4 and sorted(np.concatenate([y, yt]).tolist()) == [0, 0, 1, 1]
    assert sorted(y.tolist()) == [0, 1] and sorted(yt.tolist()) == [0, 1]  # stratified: one of each per side
    by_name = {str(n): img for n, img in zip(np.concatenate([names, names_t]), np.concatenate([x, xt]))}
    np.testing.assert_allclose(by_name["1f600"][:, 5, 5], [1, 0, 0])            # opaque red
    np.testing.assert_allclose(by_name["1f601"][:, 5, 5], [1, 1, 1])            # transparent -> white
    np.testing.assert_allclose(by_name["1f436"][:, 5, 5], [127 / 255] * 3)      # 50% black on white
    np.testing.assert_allclose(by_name["1f600"][:, 0, 0], [0, 0, 0])            # (row 0, col 0): NCHW
    labels = {str(n): classes[i] for n, i in zip(np.concatenate([names, names_t]), np.concatenate([y, yt]))}
    assert labels == {"1f600": "Smileys & Emotion", "1f601": "Smileys & Emotion",
                      "1f436": "Animals & Nature", "1f431": "Animals & Nature"}
    # the same split every time; another seed may differ; the package folder itself works as path
    again = emoji9(tmp_path / "node_modules" / "emoji-datasource-google", return_names=True)
    assert again[1][2].tolist() == names_t.tolist()
    (x16, _), _, _ = emoji9(tmp_path, size=16)
    assert x16.shape[1:] == (3, 16, 16)
    np.testing.assert_allclose(x16.reshape(len(x16), 3, -1).mean(-1), x.reshape(len(x), 3, -1).mean(-1), atol=1e-5)


def test_stratified_split_proportions():
    labels = np.repeat(np.arange(3), [10, 20, 50])
    test = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[test]).tolist() == [2, 4, 10]
    assert test.tolist() == stratified_split(labels, 0.2, seed=0).tolist()
    assert test.tolist() != stratified_split(labels, 0.2, seed=1).tolist()


def test_default_location_is_the_cache_and_decoded_images_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONA_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m neurona.datasets get emoji9"):
        datasets.emoji9()
    pkg = _fake_package(tmp_path / "emoji9")
    first = emoji9()
    assert (pkg / "emoji9.npz").is_file()
    (pkg / "img" / "google" / "64" / "1f600.png").unlink()  # now only the cache can answer
    second = emoji9()
    for a, b in zip(first[:2], second[:2]):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    assert first[2] == second[2]


def test_missing_png_and_bad_size_are_clear_errors(tmp_path):
    pkg = _fake_package(tmp_path, node_modules=False)
    (pkg / "img" / "google" / "64" / "1f431.png").unlink()
    with pytest.raises(FileNotFoundError, match="1f431.png is listed in emoji.json but missing"):
        emoji9(tmp_path)
    with pytest.raises(ValueError, match="size must be 64, 32 or 16"):
        emoji9(tmp_path, size=20)


def test_get_emoji9_needs_npm(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    assert cli.main(["get", "emoji9", "--dest", str(tmp_path)]) == 1
    assert "npm is not installed" in capsys.readouterr().err


def test_get_emoji9_runs_npm_install_with_the_pinned_package(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(cmd, **kwargs):  # what npm would do: unpack the package under node_modules
        calls.append(cmd)
        _fake_package(tmp_path)
        return cli.subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(cli.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    assert cli.main(["get", "emoji9", "--dest", str(tmp_path)]) == 0
    assert calls == [["/usr/bin/npm", "install", "--prefix", str(tmp_path), "--no-audit", "--no-fund",
                      "emoji-datasource-google@16.0.0"]]
    assert "emoji-datasource-google" in capsys.readouterr().out
