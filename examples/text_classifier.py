"""Which play is this speech from? A many-to-one LSTM classifier on Shakespeare (course topic 7),
with the Embedding started three ways — random, word2vec frozen, word2vec fine-tuned — beside a
bag-of-words logistic regression.

Data: five plays of the `shakespeare` package (Hamlet, Macbeth, A Midsummer Night's Dream, The
Merchant of Venice, Julius Caesar). A sample is one speech (the lines under a speaker's name, the
name itself dropped), lower-cased words, at most `--max-len` of them. The split is by position:
in every play the first 80% of its speeches train and the last 20% test, so test speeches come
from scenes the model never saw. The word2vec vectors are trained (neurona's `Word2Vec`,
skip-gram) on the *other* 37 works only, so no test text leaks through them either.

Model: Embedding(V, d, mask_zero=True) -> LSTM(h) -> Dense(5, softmax), Adam, fit().

    python examples/text_classifier.py                      # the run of docs/results.md
    python examples/text_classifier.py --epochs 2 --w2v-epochs 1   # a quick look
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona.layers import LSTM, Dense, Embedding
from neurona.models import Sequential
from neurona.optimizers import Adam
from neurona.text import Vocabulary, Word2Vec, bag_of_words, tokenize
from neurona.text.corpora import shakespeare_files

PLAYS = ["hamlet", "macbeth", "midsummer_nights_dream", "merchant_of_venice", "julius_caesar"]
# a speaker's name line: "Ham.", "First Witch.", "LADY MACBETH." — short, capitalised, ends with '.'
SPEAKER = re.compile(r"^[A-Z][A-Za-z' ]{0,24}\.$")


def speeches(path):
    """The speeches of a play: blank-line separated blocks that start with a speaker's name line
    (the name is dropped); stage directions and the front matter have no name line and are skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        blocks = f.read().replace("\r\n", "\n").split("\n\n")
    out = []
    for block in blocks:
        lines = [ln.strip() for ln in block.strip().split("\n") if ln.strip()]
        if len(lines) >= 2 and SPEAKER.match(lines[0]):
            toks = tokenize(" ".join(lines[1:]))
            if len(toks) >= 3:
                out.append(toks)
    return out


def load_split(max_len, test_frac=0.2):
    files = {os.path.basename(f)[:-len("_gut.txt")]: f for f in shakespeare_files()}
    train, test = [], []
    for label, play in enumerate(PLAYS):
        sp = speeches(files[play])
        cut = int(len(sp) * (1 - test_frac))
        train += [(s[:max_len], label) for s in sp[:cut]]
        test += [(s[:max_len], label) for s in sp[cut:]]
    others = [f for name, f in files.items() if name not in PLAYS]
    return train, test, others


def pretrained_matrix(vocab, wv, dim):
    """The word2vec vector of each vocabulary word, zeros for the words it lacks and for <pad> (as
    Keras' guide to pretrained embeddings does); returns (matrix, coverage)."""
    m = np.zeros((len(vocab), dim), dtype=np.float32)
    hit = 0
    for i, tok in enumerate(vocab.tokens):
        if tok in wv and tok not in vocab.specials:
            m[i] = wv[tok]
            hit += 1
    return m, hit / (len(vocab) - len(vocab.specials))


def lstm_classifier(vocab_size, dim, hidden, n_classes, weights=None, trainable=True):
    emb = Embedding(vocab_size, dim, mask_zero=True, trainable=trainable)
    model = Sequential([emb, LSTM(hidden), Dense(n_classes, activation="softmax")])
    model.build((None, None))
    if weights is not None:
        emb.set_weights([weights])
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--max-len", type=int, default=40)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--w2v-epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/text_classifier")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test, others = load_split(args.max_len)
    vocab = Vocabulary.build([s for s, _ in train], min_count=args.min_count)
    x_train = np.array(vocab.pad([vocab.encode(s) for s, _ in train], length=args.max_len), dtype=np.int64)
    x_test = np.array(vocab.pad([vocab.encode(s) for s, _ in test], length=args.max_len), dtype=np.int64)
    y_train = np.array([y for _, y in train])
    y_test = np.array([y for _, y in test])
    counts = np.bincount(y_test, minlength=len(PLAYS))
    print(f"{len(train)} training and {len(test)} test speeches, vocabulary {len(vocab)}; "
          f"majority-class test accuracy {counts.max() / len(y_test):.3f}")
    results = {"config": vars(args), "n_train": len(train), "n_test": len(test), "vocab": len(vocab),
               "majority": counts.max() / len(y_test), "loadavg_before": os.getloadavg(), "runs": {}}

    # bag-of-words logistic regression: the discrete baseline
    nr.manual_seed(args.seed)
    bow_tr = bag_of_words([" ".join(s) for s, _ in train], vocab)
    bow_te = bag_of_words([" ".join(s) for s, _ in test], vocab)
    logreg = Sequential([Dense(len(PLAYS), activation="softmax")])
    logreg.compile(optimizer=Adam(learning_rate=1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    logreg.fit(bow_tr, y_train, epochs=args.epochs, batch_size=64, verbose=0, seed=args.seed)
    acc = float((logreg.predict(bow_te).argmax(-1) == y_test).mean())
    results["runs"]["bag-of-words logistic regression"] = {"test_accuracy": acc, "seconds": time.perf_counter() - t0}
    print(f"bag-of-words logistic regression: test accuracy {acc:.3f}")

    t0 = time.perf_counter()
    sents = []
    for f in others:
        with open(f, encoding="utf-8", errors="replace") as fh:
            sents += [t for t in (tokenize(line) for line in fh.read().splitlines()) if t]
    w2v = Word2Vec(sents, vector_size=args.dim, window=5, min_count=3, sg=1, negative=5, epochs=args.w2v_epochs,
                   workers=os.cpu_count(), seed=args.seed + 1)
    matrix, coverage = pretrained_matrix(vocab, w2v.wv, args.dim)
    results["word2vec"] = {"sentences": len(sents), "words": sum(map(len, sents)), "vocab": len(w2v.wv),
                           "coverage": coverage, "seconds": time.perf_counter() - t0}
    print(f"word2vec on the other {len(others)} works: {results['word2vec']['words']:,} words, "
          f"{len(w2v.wv)} vectors, covers {coverage:.1%} of the classifier's vocabulary "
          f"({results['word2vec']['seconds']:.0f}s)")

    starts = {"random": (None, True), "word2vec frozen": (matrix, False), "word2vec fine-tuned": (matrix, True)}
    for name, (weights, trainable) in starts.items():
        nr.manual_seed(args.seed)
        model = lstm_classifier(len(vocab), args.dim, args.hidden, len(PLAYS), weights, trainable)
        model.compile(optimizer=Adam(learning_rate=args.lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        t0 = time.perf_counter()
        curve = []
        for epoch in range(args.epochs):
            hist = model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0, seed=args.seed + epoch)
            test_acc = float((model.predict(x_test, batch_size=256).argmax(-1) == y_test).mean())
            curve.append({"epoch": epoch + 1, "train_accuracy": float(hist.history["accuracy"][-1]),
                          "test_accuracy": test_acc})
            print(f"{name:20s} epoch {epoch + 1}: train {curve[-1]['train_accuracy']:.3f}  test {test_acc:.3f}")
        results["runs"][name] = {"test_accuracy": curve[-1]["test_accuracy"], "best_test": max(
            c["test_accuracy"] for c in curve), "curve": curve, "seconds": time.perf_counter() - t0}
    results["loadavg_after"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "accuracy.png")
    for name, r in results["runs"].items():
        print(f"{name:36s} test accuracy {r['test_accuracy']:.3f}  ({r['seconds']:.0f}s)")
    print(f"saved {out / 'results.json'}, {out / 'accuracy.png'}; load {os.getloadavg()}")
    return results


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, r in results["runs"].items():
        if "curve" in r:
            ax.plot([c["epoch"] for c in r["curve"]], [c["test_accuracy"] for c in r["curve"]], "o-", label=name)
        else:
            ax.axhline(r["test_accuracy"], color="gray", ls="--", label=name)
    ax.axhline(results["majority"], color="lightgray", ls=":", label="majority class")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (last 20% of each play)")
    ax.set_title("Which play? LSTM with three Embedding starts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
