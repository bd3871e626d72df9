"""A sequence-to-sequence encoder–decoder on digit strings (course topic 7).

The encoder (Embedding + LSTM) reads the source string and hands its final states (h, c) to the
decoder (Embedding + LSTM started from those states + Dense over the vocabulary). Training uses
teacher forcing: the decoder reads the target shifted right by one (`^` first) and predicts the
next character. At test time the decoder runs greedily, one character at a time, feeding back its
own previous output. Accuracy is exact-match of the whole answer on held-out strings.

Tasks: `reverse` ("40712" -> "21704") and `add` ("071+485" -> "0556": fixed-width, zero-padded
operands and sum).

    python examples/seq2seq_digits.py reverse --digits 5 --steps 600
    python examples/seq2seq_digits.py add --digits 3 --steps 3000 --hidden 128
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona.layers import LSTM, Dense, Embedding
from neurona.optimizers import Adam

CHARS = "^$+0123456789"  # id 0 is '^' (start of the decoder's input); '$' ends every target
START, END = 0, 1
ID = {c: i for i, c in enumerate(CHARS)}


def make_pairs(task, n, digits, rng):
    """`n` (source, target) string pairs; targets end with '$'."""
    a = rng.integers(0, 10 ** digits, size=n)
    if task == "reverse":
        src = [f"{v:0{digits}d}" for v in a]
        return src, [s[::-1] + "$" for s in src]
    if task == "add":
        b = rng.integers(0, 10 ** digits, size=n)
        return ([f"{x:0{digits}d}+{y:0{digits}d}" for x, y in zip(a, b)],
                [f"{x + y:0{digits + 1}d}$" for x, y in zip(a, b)])
    raise ValueError(f"seq2seq_digits: unknown task {task!r} (reverse or add)")


def encode(strings):
    return np.array([[ID[c] for c in s] for s in strings], dtype=np.int64)


class Seq2Seq:
    """Encoder LSTM -> (h, c) -> decoder LSTM -> Dense. Not a Model subclass: the two halves are
    called separately when decoding, so the example keeps them as plain layers."""

    def __init__(self, hidden=64, embed=16):
        v = len(CHARS)
        self.enc_embed, self.dec_embed = Embedding(v, embed), Embedding(v, embed)
        self.encoder = LSTM(hidden, return_state=True)
        self.decoder = LSTM(hidden, return_sequences=True, return_state=True)
        self.head = Dense(v)

    def encode(self, src):
        _, h, c = self.encoder(self.enc_embed(src))
        return [h, c]

    def decode(self, dec_in, states):
        y, h, c = self.decoder(self.dec_embed(dec_in), initial_state=states)
        return self.head(y), [h, c]

    def __call__(self, src, dec_in):
        return self.decode(dec_in, self.encode(src))[0]

    @property
    def trainable_weights(self):
        layers = [self.enc_embed, self.dec_embed, self.encoder, self.decoder, self.head]
        return [w for layer in layers for w in layer.trainable_weights]

    def greedy(self, src, length):
        """Decode `length` characters greedily from the encoder's states."""
        with nr.no_grad():
            states = self.encode(src)
            tok = np.full((len(src), 1), START, dtype=np.int64)
            out = []
            for _ in range(length):
                logits, states = self.decode(tok, states)
                tok = logits.numpy()[:, -1].argmax(-1)[:, None]
                out.append(tok[:, 0])
        return np.stack(out, axis=1)


def accuracy(model, src_strings, tgt_strings):
    """Exact-match accuracy of the greedy answers (and per-character accuracy)."""
    tgt = encode(tgt_strings)
    pred = model.greedy(encode(src_strings), tgt.shape[1])
    return float((pred == tgt).all(axis=1).mean()), float((pred == tgt).mean())


def train(task="reverse", digits=5, steps=600, batch=64, hidden=64, embed=16, lr=1e-2, seed=0,
          n_test=1000, log_every=100, clip=5.0):
    nr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    test_src, test_tgt = make_pairs(task, n_test, digits, np.random.default_rng(seed + 10_000))
    held_out = set(test_src)
    model = Seq2Seq(hidden, embed)
    model(encode(test_src[:2]), encode(["^" + t[:-1] for t in test_tgt[:2]]))  # build the layers
    opt = Adam(model.trainable_weights, learning_rate=lr, global_clipnorm=clip)
    t0, curve = time.perf_counter(), []
    for step in range(1, steps + 1):
        src, tgt = make_pairs(task, batch, digits, rng)
        keep = [i for i, s in enumerate(src) if s not in held_out]  # never train on a test string
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
        y = encode(tgt)
        dec_in = np.concatenate([np.full((len(y), 1), START), y[:, :-1]], axis=1)
        opt.zero_grad()
        logits = model(encode(src), dec_in)
        loss = nr.cross_entropy(logits.reshape(-1, len(CHARS)), y.reshape(-1))
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            exact, per_char = accuracy(model, test_src[:200], test_tgt[:200])
            curve.append({"step": step, "loss": loss.item(), "exact_200": exact, "seconds": time.perf_counter() - t0})
            print(f"step {step:5d}  loss {loss.item():.4f}  held-out exact {exact:.3f} (chars {per_char:.3f})")
    seconds = time.perf_counter() - t0
    exact, per_char = accuracy(model, test_src, test_tgt)
    src, tgt = test_src[:5], test_tgt[:5]
    pred = model.greedy(encode(src), len(tgt[0]))
    examples = [f"{s} -> {''.join(CHARS[i] for i in p)} (want {t})" for s, t, p in zip(src, tgt, pred)]
    return {"task": task, "digits": digits, "steps": steps, "batch": batch, "hidden": hidden, "lr": lr,
            "seed": seed, "train_seconds": seconds, "test_exact": exact, "test_char": per_char,
            "n_test": n_test, "examples": examples, "curve": curve, "loadavg": os.getloadavg()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["reverse", "add"])
    p.add_argument("--digits", type=int, default=5)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embed", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/seq2seq")
    args = p.parse_args(argv)
    res = train(args.task, args.digits, args.steps, args.batch, args.hidden, args.embed, args.lr, args.seed)
    print("\n".join(res["examples"]))
    print(f"{args.task}, {args.digits} digits: held-out exact-match {res['test_exact']:.3f} "
          f"(per char {res['test_char']:.3f}) on {res['n_test']} strings after {args.steps} steps, "
          f"{res['train_seconds']:.1f}s; load {os.getloadavg()}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.task}.json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
