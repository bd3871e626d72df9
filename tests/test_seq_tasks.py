"""Sequence tasks of examples/: the seq2seq encoder–decoder learns to reverse digit strings; the
which-play classifier's data split and word2vec-initialised Embedding (frozen or fine-tuned);
tiny end-to-end runs of text_classifier.py and word_lm.py (slow)."""
import importlib.util
import pathlib

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="unknown task"):
        s2s.make_pairs("sort", 1, 3, np.random.default_rng(0))


def test_text_classifier_speeches_and_split():
    tc = _load("text_classifier")
    train, test, others = tc.load_split(max_len=40)
    assert len(train) > 2000 and len(test) > 500
    assert {y for _, y in test} == set(range(len(tc.PLAYS)))
    # speaker names are dropped: no sample starts with the abbreviation line, e.g. "ham"
    first = [s[0] for s, _ in train if s]
    assert first.count("ham") < 5
    # word2vec's corpus holds none of the five plays
    assert len(others) == 37 and not any(p + "_gut.txt" in o for p in tc.PLAYS for o in others)


def test_text_classifier_pretrained_embedding_frozen_or_not():
    import neurona as nr
    from neurona.text import KeyedVectors, Vocabulary
    tc = _load("text_classifier")
    vocab = Vocabulary(["king", "queen", "zzz"])
    wv = KeyedVectors(4)
    wv.add_vectors(["king", "queen"], np.arange(8, dtype=np.float32).reshape(2, 4))
    m, cov = tc.pretrained_matrix(vocab, wv, 4)
    assert cov == 2 / 3 and np.array_equal(m[vocab["queen"]], [4, 5, 6, 7]) and not m[vocab["zzz"]].any()
    for trainable in (False, True):
        model = tc.lstm_classifier(len(vocab), 4, 3, 2, m, trainable)
        emb = model.layers[0]
        assert np.array_equal(emb.get_weights()[0], m)
        assert any(w is emb.weights[0] for w in model.trainable_weights) is trainable
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(np.array([[2, 3, 0], [4, 0, 0]]), np.array([0, 1]), epochs=1, verbose=0)
        assert np.array_equal(emb.get_weights()[0], m) is not trainable
    del nr


def _run_example(name, args, tmp_path):
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *args, "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


@pytest.mark.slow
def test_text_classifier_tiny_run(tmp_path):
    res = _run_example("text_classifier", ["--epochs", "1", "--w2v-epochs", "1", "--dim", "16", "--hidden", "16"],
                       tmp_path)
    assert set(res["runs"]) == {"bag-of-words logistic regression", "random", "word2vec frozen",
                                "word2vec fine-tuned"}
    assert res["runs"]["bag-of-words logistic regression"]["test_accuracy"] > res["majority"] + 0.05
    assert (tmp_path / "accuracy.png").exists()


@pytest.mark.slow
def test_word_lm_tiny_run(tmp_path):
    res = _run_example("word_lm", ["--minutes", "0.2", "--vocab", "500", "--hidden", "32", "--embed", "16",
                                   "--val-words", "2000", "--eval-every", "100000"], tmp_path)
    assert res["final_val_perplexity"] < res["vocab"]  # better than uniform over the vocabulary
    assert res["ngram_best"]["val_perplexity"] < res["vocab"]
