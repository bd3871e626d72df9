"""A word-level LSTM language model on Shakespeare, with perplexity, against the n-gram count model
(course topic 7).

Same split as examples/char_rnn.py: the first 90% of the characters of the works train, the last
10% validate. Words are lower-cased, each punctuation mark is a token of its own; the vocabulary is
the `--vocab` most frequent training words plus `<unk>` (rarer words, in both splits, become
`<unk>` and are predicted like any other token, as in the usual PTB protocol). Training is the
char model's truncated BPTT: 32 parallel streams, `--seq` words per window, stateful LSTM, Adam
and global gradient clipping, for `--minutes` of training. Validation perplexity = exp(mean
nats/word) over zero-state windows of `--seq` words. The baseline is `NGramLM` (add-k) fitted on
the same training ids.

    python examples/word_lm.py --minutes 5                  # the run of docs/results.md
    python examples/word_lm.py --minutes 0.5 --val-words 20000   # a quick look
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
from neurona.models import Sequential
from neurona.optimizers import Adam
from neurona.text import NGramLM, Vocabulary, tokenize
from neurona.text.corpora import shakespeare_text
from neurona.text.generate import Sampler


def load(vocab_size):
    text = shakespeare_text()
    cut = int(len(text) * 0.9)  # the char model's split, in characters
    train_toks = tokenize(text[:cut], punctuation="keep")
    val_toks = tokenize(text[cut:], punctuation="keep")
    vocab = Vocabulary.build([train_toks], max_size=vocab_size, specials=("<unk>",), pad_token=None)
    return vocab, np.array(vocab.encode(train_toks), np.int64), np.array(vocab.encode(val_toks), np.int64)


def lstm_lm(vocab_size, hidden, layers, embed, batch=None, stateful=False):
    shape = dict(batch_input_shape=(batch, None)) if batch else {}
    stack = [Embedding(vocab_size, embed, **shape)]
    stack += [LSTM(hidden, return_sequences=True, stateful=stateful) for _ in range(layers)]
    return Sequential([*stack, Dense(vocab_size)])


def evaluate(model, ids, seq, batch=64):
    """Mean cross-entropy (nats/word) over non-overlapping zero-state windows of `seq` words."""
    n = (len(ids) - 1) // seq
    x, y = ids[:n * seq].reshape(n, seq), ids[1:n * seq + 1].reshape(n, seq)
    total = 0.0
    with nr.no_grad():
        for s in range(0, n, batch):
            logits = model(x[s:s + batch])
            total += nr.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[s:s + batch].reshape(-1),
                                      reduction="sum").item()
    return total / (n * seq)


def ngram_baseline(train_ids, val_ids, vocab_size):
    rows = []
    for order in (1, 2, 3):  # order 4 keys would overflow int64 only past V = 55k; 3 already overfits
        lm = NGramLM(order, vocab_size).fit(train_ids)
        for k in (1.0, 0.1, 0.01, 0.001):
            lm.k = k
            nats = lm.cross_entropy(val_ids)
            rows.append({"order": order, "k": k, "val_nats_per_word": nats, "val_perplexity": float(np.exp(nats))})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--vocab", type=int, default=5000)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--seq", type=int, default=35)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--val-words", type=int, default=0, help="evaluate the LSTM on the first N validation words (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/word_lm")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    nr.manual_seed(args.seed)
    vocab, train_ids, val_ids = load(args.vocab)
    unk = vocab.index["<unk>"]
    print(f"vocabulary {len(vocab)}, train {len(train_ids):,} words, validation {len(val_ids):,} "
          f"({(val_ids == unk).mean():.1%} <unk>)")
    t0 = time.perf_counter()
    grams = ngram_baseline(train_ids, val_ids, len(vocab))
    best = min(grams, key=lambda r: r["val_nats_per_word"])
    print(f"n-gram baseline (full validation split): best order {best['order']}, k={best['k']}: perplexity "
          f"{best['val_perplexity']:.1f} ({time.perf_counter() - t0:.1f}s)")
    val_eval = val_ids[:args.val_words + 1] if args.val_words else val_ids
    best_same = min(ngram_baseline(train_ids, val_eval, len(vocab)), key=lambda r: r["val_nats_per_word"])
    if args.val_words:
        print(f"n-gram on the LSTM's {len(val_eval) - 1:,} validation words: order {best_same['order']}, "
              f"k={best_same['k']}: perplexity {best_same['val_perplexity']:.1f}")

    B, T = args.batch, args.seq
    model = lstm_lm(len(vocab), args.hidden, args.layers, args.embed, batch=B, stateful=True)
    model.build((B, T))
    eval_model = lstm_lm(len(vocab), args.hidden, args.layers, args.embed)
    eval_model.build((None, T))
    opt = Adam(model.trainable_weights, learning_rate=args.lr, global_clipnorm=args.clip)
    L = len(train_ids) // B
    streams = train_ids[:B * L].reshape(B, L)
    windows = (L - 1) // T
    curve, steps, words, epoch, done = [], 0, 0, 0, False
    start, budget, next_eval = time.perf_counter(), args.minutes * 60, args.eval_every
    while not done:
        for layer in model.layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()
        for w in range(windows):
            x, y = streams[:, w * T:(w + 1) * T], streams[:, w * T + 1:(w + 1) * T + 1]
            opt.zero_grad()
            logits = model(x, training=True)
            loss = nr.cross_entropy(logits.reshape(B * T, -1), y.reshape(-1))
            loss.backward()
            opt.step()
            steps += 1
            words += B * T
            elapsed = time.perf_counter() - start
            if steps == 1 or steps % 50 == 0:
                print(f"epoch {epoch} step {steps} train perplexity {np.exp(loss.item()):.1f}  "
                      f"{words / elapsed:,.0f} words/s")
            if elapsed >= budget or steps >= next_eval:
                next_eval += args.eval_every
                eval_model.set_weights(model.get_weights())
                val = evaluate(eval_model, val_eval, T)
                curve.append({"step": steps, "minutes": elapsed / 60, "train_nats": loss.item(), "val_nats": val,
                              "val_perplexity": float(np.exp(val))})
                print(f"--- step {steps}, {elapsed / 60:.1f} min: validation perplexity {np.exp(val):.1f}")
                start += time.perf_counter() - start - elapsed  # evaluation time does not count as training
                if elapsed >= budget:
                    done = True
                    break
        epoch += 1
    train_seconds = time.perf_counter() - start
    sample_ids = Sampler(eval_model).generate(vocab.encode(["romeo", "."]), 60, temperature=0.8, seed=1)
    sample = " ".join(vocab.decode(sample_ids))
    print(f"sample (T=0.8) after 'romeo .': {sample}")
    results = {"final_val_perplexity": curve[-1]["val_perplexity"], "steps": steps,
               "train_minutes": train_seconds / 60, "words_per_second": words / train_seconds,
               "val_words_evaluated": len(val_eval) - 1, "ngram_best": best, "ngram_best_same_words": best_same, "ngram": grams, "curve": curve,
               "sample": sample, "config": vars(args), "loadavg": os.getloadavg(), "vocab": len(vocab)}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"final validation perplexity {curve[-1]['val_perplexity']:.1f} after {train_seconds / 60:.1f} min "
          f"({steps} steps); n-gram best on the same words {best_same['val_perplexity']:.1f}; load {os.getloadavg()}; saved {out}")
    return results


if __name__ == "__main__":
    main()
