"""The commands behind published numbers run: the example's --verify-saved checks (reload and
ONNX agreement) and the graph-mode variants benchmark, both on tiny settings."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import neurona as nr
from neurona.layers import Dense, Flatten
from neurona.models import Sequential

ROOT = Path(__file__).resolve().parents[1]


def _example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verify_saved_reports_reload_and_onnx_agreement(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    verify_saved = _example("fashion_mnist_mlp").verify_saved
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28), dtype=np.float32), rng.integers(0, 10, 64)
    model = Sequential([Flatten(input_shape=(28, 28)), Dense(16, activation="relu"), Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    _, acc = model.evaluate(x, y)
    verify_saved(model, tmp_path / "m", x, y)
    out = capsys.readouterr().out
    reloaded = float(re.search(r"reloaded .* test accuracy ([0-9.]+)", out).group(1))
    diff, onnx_acc = re.search(r"largest difference from predict ([0-9.e+-]+), test accuracy ([0-9.]+)", out).groups()
    assert reloaded == pytest.approx(acc, abs=1e-4) and float(onnx_acc) == pytest.approx(acc, abs=1e-4)
    assert float(diff) < 1e-5
    assert (tmp_path / "m.onnx").is_file()


def test_jit_variants_benchmark_runs(capsys):
    from benchmarks import jit_variants

    jit_variants.main(["--steps", "1", "--rounds", "1", "--batch-size", "8"])
    lines = capsys.readouterr().out.splitlines()
    names = [re.search(r'"variant": "([^"]+)"', line).group(1) for line in lines[1:]]
    assert names == ["eager", "jit", "jit(fuse=False)", "jit(plan_memory=False)"]
