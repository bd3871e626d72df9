"""Sequence tasks of examples/: the seq2seq encoder–decoder learns to reverse digit strings."""
import importlib.util
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_seq2seq_learns_to_reverse_digits():
    s2s = _load("seq2seq_digits")
    res = s2s.train("reverse", digits=3, steps=150, batch=64, hidden=32, lr=1e-2, n_test=300, log_every=1000)
    # chance is 1/1000 for a whole 3-digit answer; held-out strings never appear in training
    assert res["test_exact"] >= 0.95, res


def test_seq2seq_pairs_and_bad_task():
    s2s = _load("seq2seq_digits")
    src, tgt = s2s.make_pairs("add", 3, 3, np.random.default_rng(0))
    for s, t in zip(src, tgt):
        a, b = s.split("+")
        assert int(a) + int(b) == int(t[:-1]) and len(t) == 5
    import pytest
    with pytest.raises(ValueError, match="unknown task"):
        s2s.make_pairs("sort", 1, 3, np.random.default_rng(0))
