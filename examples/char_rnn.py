"""Character-level language models (course topic 7).

1. `hello`: the course's toy — vocabulary h, e, l, o; a SimpleRNN reads "hell" and learns to
   predict "ello", then writes from "h".
2. `shakespeare`: a char-LSTM on Shakespeare's works (the `shakespeare` package's data) trained
   on 64-char windows with backpropagation through time cut at the window (by default 32 windows
   at random offsets per batch, each from the zero state, as validation reads the text;
   `--windows streams`: truncated BPTT over 32 contiguous streams with stateful layers, the state
   carried from one window to the next and the gradient cut between them), Adam, a cosine-decayed
   learning rate and gradient clipping; validation loss in nats/char on the last 10% of the text
   in zero-state 64-char windows; samples at several temperatures; and the n-gram count model on
   the same split as the baseline. Curves, samples and the numbers go to out/char_rnn/.

    python examples/char_rnn.py hello
    python examples/char_rnn.py shakespeare --minutes 12          # the protocol of docs/results.md
    python examples/char_rnn.py shakespeare --minutes 1 --hidden 64 --val-chars 20000   # a quick look
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona.initializers import RandomNormal, RandomUniform
from neurona.layers import LSTM, Dense, Embedding, SimpleRNN
from neurona.models import Sequential
from neurona.optimizers import Adam
from neurona.text import NGramLM, Vocabulary
from neurona.text.corpora import shakespeare_text
from neurona.text.generate import Sampler


def hello(out: Path, steps=300, seed=0):
    """The course's example: one-hot h, e, l, o into a 3-unit RNN, softmax over 4 characters."""
    nr.manual_seed(seed)
    vocab = Vocabulary(list("helo"), specials=())
    x = np.array([vocab.encode("hell")])
    y = np.array(vocab.encode("ello"))
    model = Sequential([Embedding(4, 4, embeddings_initializer="random_normal"), SimpleRNN(3, return_sequences=True),
                        Dense(4)])
    model(x)
    opt = Adam(model.trainable_weights, learning_rate=0.05)
    for step in range(steps):
        opt.zero_grad()
        loss = nr.cross_entropy(model(x).reshape(4, 4), y)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            pred = model(x).numpy()[0].argmax(-1)
            print(f"step {step:3d}  loss {loss.item():.4f}  'hell' -> {''.join(vocab.decode(pred))!r}")
    text = "h" + "".join(vocab.decode(Sampler(model).generate(vocab.encode("h"), 4, temperature=0.1, seed=seed)))
    print(f"greedy-ish sample from 'h': {text!r}")
    return loss.item(), text


def lstm_lm(vocab_size, hidden, layers, embed, batch=None, stateful=False, embed_init="uniform", torch_init=False):
    shape = dict(batch_input_shape=(batch, None)) if batch else {}
    if embed_init.startswith("normal:"):  # N(0, s²): PyTorch's nn.Embedding starts from N(0, 1)
        embed_init = RandomNormal(stddev=float(embed_init.split(":", 1)[1]))
    stack = [Embedding(vocab_size, embed, embeddings_initializer=embed_init, **shape)]
    # torch_init: PyTorch's nn.LSTM/nn.Linear start, every weight and bias U(±1/√hidden); else Keras'
    lstm_init, dense_init = {}, {}
    if torch_init:
        u = RandomUniform(-hidden ** -0.5, hidden ** -0.5)
        dense_init = dict(kernel_initializer=u, bias_initializer=u)
        lstm_init = dict(dense_init, recurrent_initializer=u, unit_forget_bias=False)
    stack += [LSTM(hidden, return_sequences=True, stateful=stateful, **lstm_init) for _ in range(layers)]
    return Sequential([*stack, Dense(vocab_size, **dense_init)])


def evaluate(model, ids, seq, batch=256):
    """Mean cross-entropy (nats/char) over non-overlapping zero-state windows of `seq` chars."""
    n = (len(ids) - 1) // seq
    x = ids[:n * seq].reshape(n, seq)
    y = ids[1:n * seq + 1].reshape(n, seq)
    total = 0.0
    with nr.no_grad():
        for s in range(0, n, batch):
            logits = model(x[s:s + batch])
            total += nr.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[s:s + batch].reshape(-1),
                                      reduction="sum").item()
    return total / (n * seq)


def ngram_baseline(train_ids, val_ids, vocab_size):
    rows = []
    for order in range(1, 8):
        lm = NGramLM(order, vocab_size).fit(train_ids)
        for k in (1.0, 0.1, 0.01):
            lm.k = k  # the counts do not depend on k
            rows.append({"order": order, "k": k, "val_nats_per_char": lm.cross_entropy(val_ids)})
    return rows


def shakespeare(args, out: Path):
    nr.manual_seed(args.seed)
    t_load = time.perf_counter()
    text = shakespeare_text()
    vocab = Vocabulary(sorted(set(text)), specials=())
    ids = np.array(vocab.encode(text), dtype=np.int64)
    cut = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:cut], ids[cut:]
    val_eval = val_ids[:args.val_chars + 1] if args.val_chars else val_ids
    print(f"{len(text):,} chars, vocabulary {len(vocab)}, train {len(train_ids):,}, validation {len(val_ids):,} "
          f"(evaluated on {len(val_eval) - 1:,}); loaded in {time.perf_counter() - t_load:.1f}s")

    t0 = time.perf_counter()
    grams = ngram_baseline(train_ids, val_ids, len(vocab))
    best = min(grams, key=lambda r: r["val_nats_per_char"])
    print(f"n-gram baseline (add-k, full validation split): best order {best['order']}, k={best['k']}: "
          f"{best['val_nats_per_char']:.3f} nats/char ({time.perf_counter() - t0:.1f}s)")

    B, T = args.batch, args.seq
    stateful = args.windows == "streams"
    model = lstm_lm(len(vocab), args.hidden, args.layers, args.embed, batch=B, stateful=stateful,
                    embed_init=args.embed_init, torch_init=args.torch_init)
    model.build((B, T))
    eval_model = lstm_lm(len(vocab), args.hidden, args.layers, args.embed)
    eval_model.build((None, T))
    opt = Adam(model.trainable_weights, learning_rate=args.lr, global_clipnorm=args.clip)
    L = len(train_ids) // B
    streams = train_ids[:B * L].reshape(B, L)  # 32 parallel streams of contiguous text
    windows = (L - 1) // T
    # --windows random: each batch is B windows at random offsets, every one from the zero state
    # (as validation reads the text); an "epoch" is as many characters as the streams hold
    window_rng = np.random.default_rng(args.seed)
    offsets = np.arange(T + 1)
    curve, samples, steps, chars = [], [], 0, 0
    start = time.perf_counter()
    budget = args.minutes * 60
    next_eval = args.eval_every
    epoch, done = 0, False
    while not done:
        for layer in model.layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()
        for w in range(windows):
            if stateful:
                x = streams[:, w * T:(w + 1) * T]
                y = streams[:, w * T + 1:(w + 1) * T + 1]
            else:
                rows = train_ids[window_rng.integers(0, len(train_ids) - T - 1, size=B)[:, None] + offsets]
                x, y = rows[:, :T], rows[:, 1:]
            if args.lr_schedule == "cosine":  # over the time budget (or --max-steps), down to lr·min_lr_frac
                done_frac = min(1.0, max((time.perf_counter() - start) / budget,
                                         steps / args.max_steps if args.max_steps else 0.0))
                m = args.min_lr_frac
                opt.learning_rate = args.lr * (m + (1 - m) * 0.5 * (1 + math.cos(math.pi * done_frac)))
            opt.zero_grad()
            logits = model(x, training=True)
            loss = nr.cross_entropy(logits.reshape(B * T, -1), y.reshape(-1))
            loss.backward()
            opt.step()
            steps += 1
            chars += B * T
            elapsed = time.perf_counter() - start
            if steps == 1 or steps % 50 == 0:
                print(f"epoch {epoch} step {steps} train {loss.item():.3f} nats/char  {chars / elapsed:,.0f} chars/s")
            if args.max_steps and steps >= args.max_steps:
                budget = elapsed  # stop here: the evaluation below is the last
            if elapsed >= budget or steps >= next_eval:
                next_eval += args.eval_every
                eval_model.set_weights(model.get_weights())
                val = evaluate(eval_model, val_eval, T)
                curve.append({"step": steps, "minutes": elapsed / 60, "train": loss.item(), "val": val,
                              "lr": opt.learning_rate})
                sample = "".join(vocab.decode(Sampler(eval_model).generate(vocab.encode("ROMEO:\n"), 300,
                                                                           temperature=0.8, seed=steps)))
                samples.append({"step": steps, "temperature": 0.8, "text": sample})
                print(f"--- step {steps}, {elapsed / 60:.1f} min: validation {val:.3f} nats/char\n{sample}\n---")
                start += time.perf_counter() - start - elapsed  # evaluation time does not count as training
                if elapsed >= budget:
                    done = True
                    break
        epoch += 1
    train_seconds = time.perf_counter() - start
    sampler = Sampler(eval_model)
    for temp in (0.5, 1.0):
        samples.append({"step": steps, "temperature": temp,
                        "text": "".join(vocab.decode(sampler.generate(vocab.encode("KING"), 300, temp, seed=1)))})
    results = {"chars_per_second": chars / train_seconds, "steps": steps, "train_minutes": train_seconds / 60,
               "final_val_nats_per_char": curve[-1]["val"], "ngram_best": best, "ngram": grams, "curve": curve,
               "config": vars(args), "loadavg": os.getloadavg(), "vocab": len(vocab),
               "threads": nr.get_num_threads()}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "samples.txt").write_text("\n\n".join(f"[step {s['step']}, T={s['temperature']}]\n{s['text']}"
                                                 for s in samples), encoding="utf-8")
    plot_curves(curve, best, out / "curves.png")
    print(f"final validation {curve[-1]['val']:.3f} nats/char after {train_seconds / 60:.1f} min ({steps} steps); "
          f"n-gram best {best['val_nats_per_char']:.3f}; load {os.getloadavg()}")
    print(f"saved {out / 'curves.png'}, {out / 'samples.txt'}, {out / 'results.json'}")
    return results


def plot_curves(curve, best, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    mins = [c["minutes"] for c in curve]
    ax.plot(mins, [c["train"] for c in curve], "o-", label="train (last batch)")
    ax.plot(mins, [c["val"] for c in curve], "o-", label="validation")
    ax.axhline(best["val_nats_per_char"], color="gray", ls="--",
               label=f"{best['order']}-gram, add-{best['k']} (validation)")
    ax.set_xlabel("training minutes")
    ax.set_ylabel("nats / char")
    ax.set_title("char-LSTM on Shakespeare")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["hello", "shakespeare"])
    p.add_argument("--minutes", type=float, default=12.0)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="cosine",
                   help="cosine: the learning rate falls from --lr to --lr × --min-lr-frac over the time budget")
    p.add_argument("--min-lr-frac", type=float, default=0.05)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--val-chars", type=int, default=0, help="evaluate on the first N validation chars (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps too (0: time only)")
    p.add_argument("--embed-init", default="normal:1",
                   help="the Embedding's initializer: a Keras name ('uniform', Keras' default, is U(-0.05, 0.05)) or "
                        "'normal:S' for N(0, S²) (PyTorch's nn.Embedding: normal:1); docs/results.md has the effect")
    p.add_argument("--torch-init", action="store_true",
                   help="start the LSTM and Dense weights as PyTorch does (U(±1/√hidden), no forget-gate bias of 1)")
    p.add_argument("--windows", choices=["streams", "random"], default="random",
                   help="streams: truncated BPTT over B contiguous streams, the state carried from window to window; "
                        "random: B windows at random offsets per batch, each from the zero state (as validation)")
    p.add_argument("--out", default="out/char_rnn")
    p.add_argument("--threads", type=int, default=0,
                   help="nr.set_num_threads(N): BLAS and kernel threads (0: leave the defaults); with N > 1 and "
                        "OPENBLAS_THREAD_TIMEOUT set, each LSTM runs its batch rows in N blocks side by side")
    args = p.parse_args(argv)
    if args.threads:
        nr.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.task == "hello":
        return hello(out)
    return shakespeare(args, out)


if __name__ == "__main__":
    main()
