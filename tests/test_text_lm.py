"""Language models: the n-gram count model, the token-by-token sampler (equal to the full forward
pass), and the char_rnn example (the course's "hello"; a tiny Shakespeare run is slow-marked)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurona as nr
from neurona.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
from neurona.models import Sequential
from neurona.text import NGramLM
from neurona.text.generate import Sampler

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_ngram_counts_smoothing_and_cross_entropy():
    ids = np.array([0, 1, 0, 1, 0, 2])
    lm = NGramLM(order=2, vocab_size=3, k=1.0).fit(ids)
    assert lm.prob([0], 1) == pytest.approx(3 / 6)  # (count(0,1)=2 + 1) / (count(0)=3 + 3)
    assert lm.prob([2], 0) == pytest.approx(1 / 3)  # unseen context: uniform
    uni = NGramLM(order=1, vocab_size=3, k=1.0).fit(ids)
    assert uni.prob([], 0) == pytest.approx(4 / 9)
    lp = lm.log_probs(ids)
    assert lm.cross_entropy(ids) == pytest.approx(-lp.mean())
    with pytest.raises(ValueError, match="k must be > 0"):
        NGramLM(2, 3, k=0)
    with pytest.raises(ValueError, match="int64"):
        NGramLM(6, 100000).fit(np.arange(10))


@pytest.mark.parametrize("rnn", [LSTM, GRU, SimpleRNN])
def test_sampler_steps_equal_the_full_forward_pass(rnn):
    nr.manual_seed(0)
    model = Sequential([Embedding(7, 5), rnn(6, return_sequences=True), rnn(4, return_sequences=True), Dense(7)])
    seq = np.array([[1, 4, 2, 6, 0, 3]])
    full = model(seq).numpy()[0]
    s = Sampler(model)
    s.reset(1)
    steps = np.stack([s.step([t])[0] for t in seq[0]])
    np.testing.assert_allclose(steps, full, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        s.generate([1], 3, temperature=0)


def test_char_rnn_hello_learns_the_course_example(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "char_rnn.py"), "hello", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'hell' -> 'ello'" in out.stdout
    assert "sample from 'h': 'hello'" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("windows", ["streams", "random"])
def test_char_rnn_shakespeare_tiny_run(tmp_path, windows):
    out = subprocess.run([sys.executable, str(EXAMPLES / "char_rnn.py"), "shakespeare", "--minutes", "0.3",
                          "--hidden", "32", "--layers", "1", "--eval-every", "20", "--val-chars", "5000",
                          "--windows", windows, "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["final_val_nats_per_char"] < np.log(res["vocab"])  # better than uniform
    assert (tmp_path / "curves.png").exists() and (tmp_path / "samples.txt").exists()


def test_generate_draws_what_rng_choice_draws():
    """generate() samples with an inverse-CDF draw equal to rng.choice(p=...): same seed, same text."""
    model = Sequential([Embedding(7, 5), LSTM(6, return_sequences=True), Dense(7)])
    _ = model(np.zeros((1, 2)))
    s = Sampler(model)
    got = s.generate([1, 2], 40, temperature=0.7, seed=4)
    s.reset(1)
    s.step([1])
    rng, tok, want = np.random.default_rng(4), 2, []
    for _ in range(40):
        logits = s.step([tok])[0].astype(np.float64) / 0.7
        p = np.exp(logits - logits.max())
        tok = int(rng.choice(7, p=p / p.sum()))
        want.append(tok)
    assert got == want


@pytest.mark.parametrize("rnn", [LSTM, GRU, SimpleRNN])
def test_generate_reads_the_first_layers_inputs_from_the_folded_table(rnn, monkeypatch):
    """Within generate() the first recurrent layer's input x·K + b is a row of E·K + b, built
    once; the logits and the drawn tokens are those of the unfolded steps."""
    nr.manual_seed(1)
    model = Sequential([Embedding(9, 5), rnn(6, return_sequences=True), Dense(9)])
    _ = model(np.zeros((1, 2)))
    s = Sampler(model)
    s.reset(1)
    tables = s._fold_tables()
    assert set(tables) == {1}
    cell = model.layers[1].cell
    b = cell.input_bias()
    want = model.layers[0].embeddings.numpy() @ cell.kernel.numpy() + (0 if b is None else b.numpy())
    np.testing.assert_allclose(tables[1], want, rtol=1e-6, atol=1e-6)
    folded = s.generate([3, 1], 60, temperature=0.9, seed=2)
    assert s._tables is None  # only while generate runs
    monkeypatch.setattr(Sampler, "MAX_FOLDED_BYTES", 0)  # no table: every step projects its row
    s2 = Sampler(model)
    s2.reset(1)
    assert s2._fold_tables() == {}
    assert s2.generate([3, 1], 60, temperature=0.9, seed=2) == folded


def test_compiled_draw_equals_the_numpy_inverse_cdf_and_refuses_nan_logits():
    draw = pytest.importorskip("neurona.text._sample_kernels").draw
    rng = np.random.default_rng(7)
    work = np.empty(65, np.float64)
    for k in range(3000):
        logits = (rng.standard_normal(65) * rng.uniform(0.1, 8)).astype(np.float32 if k % 2 else np.float64)
        t, u = float(rng.uniform(0.3, 1.5)), float(rng.random())
        p = np.exp(logits.astype(np.float64) / t - (logits.astype(np.float64) / t).max())
        cdf = (p / p.sum()).cumsum()
        assert draw(logits, t, u, work) == int((cdf / cdf[-1]).searchsorted(u, side="right"))
    bad = np.zeros(65, np.float32)
    bad[3] = np.nan
    assert draw(bad, 1.0, 0.5, work) == -1
    bad[3] = np.inf
    assert draw(bad, 1.0, 0.5, work) == -1
    nr.manual_seed(0)
    model = Sequential([Embedding(7, 5), LSTM(6, return_sequences=True), Dense(7)])
    _ = model(np.zeros((1, 2)))
    model.layers[2].bias.data[2] = np.nan
    with pytest.raises(FloatingPointError, match="logits are not finite"):
        Sampler(model).generate([1], 5)
