"""The 12-minute char-LSTM protocol of docs/results.md (`examples/char_rnn.py shakespeare`) with
PyTorch eager instead of neurona: the same text, split, vocabulary, model (embedding 64, 2×LSTM
256, Dense), 32 stateful streams of 64-character windows (truncated BPTT), Adam 2e-3, global
clip-norm 5, validation in zero-state 64-character windows on the last 10%, the same time budget
(evaluations not counted). Prints the validation curve and the final figure as JSON lines, so
the target "what PyTorch eager reaches here" is a measurement of this machine, not a quote.

    python -m benchmarks.char_lstm_peer [--minutes 12] [--threads 0] [--eval-every 500]
        [--lr-schedule constant|cosine] [--windows streams|random] [--max-steps N]

`--windows random` draws the 32 windows of each batch at random offsets, each from the zero state
(as validation reads the text), as `examples/char_rnn.py --windows random` does.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch


class _LM(torch.nn.Module):
    def __init__(self, vocab, embed=64, hidden=256, layers=2):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.out = torch.nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        y, state = self.lstm(self.embed(x), state)
        return self.out(y), state


def _evaluate(model, ids, seq, batch=256):
    n = (len(ids) - 1) // seq
    x = torch.from_numpy(ids[:n * seq].reshape(n, seq))
    y = torch.from_numpy(ids[1:n * seq + 1].reshape(n, seq))
    total = 0.0
    with torch.no_grad():
        for s in range(0, n, batch):
            logits, _ = model(x[s:s + batch])
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[s:s + batch].reshape(-1),
                                                       reduction="sum").item()
    return total / (n * seq)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=12.0)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="cosine: the rate falls from 2e-3 to 1e-4 over the budget, as examples/char_rnn.py's default")
    p.add_argument("--windows", choices=["streams", "random"], default="streams",
                   help="streams: truncated BPTT over 32 streams; random: zero-state windows at random offsets")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps too (0: time only)")
    args = p.parse_args(argv)
    from neurona.text import Vocabulary
    from neurona.text.corpora import shakespeare_text

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    text = shakespeare_text()
    vocab = Vocabulary(sorted(set(text)), specials=())
    ids = np.array(vocab.encode(text), dtype=np.int64)
    cut = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:cut], ids[cut:]
    B, T = 32, 64
    model = _LM(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    L = len(train_ids) // B
    streams = torch.from_numpy(train_ids[:B * L].reshape(B, L))
    windows = (L - 1) // T
    window_rng = np.random.default_rng(args.seed)
    offsets = np.arange(T + 1)
    steps, chars, budget, next_eval, done = 0, 0, args.minutes * 60, args.eval_every, False
    print(json.dumps({"peer": f"torch {torch.__version__} eager", "threads": torch.get_num_threads(),
                      "train_chars": len(train_ids), "val_chars": len(val_ids), "vocab": len(vocab)}), flush=True)
    start = time.perf_counter()
    while not done:
        state = None
        for w in range(windows):
            if args.windows == "streams":
                x = streams[:, w * T:(w + 1) * T]
                y = streams[:, w * T + 1:(w + 1) * T + 1]
            else:
                rows = torch.from_numpy(train_ids[window_rng.integers(0, len(train_ids) - T - 1, size=B)[:, None]
                                                  + offsets])
                x, y, state = rows[:, :T], rows[:, 1:], None
            if args.lr_schedule == "cosine":  # as examples/char_rnn.py: 2e-3 → 1e-4 over the time budget
                frac = min(1.0, max((time.perf_counter() - start) / budget,
                                    steps / args.max_steps if args.max_steps else 0.0))
                for group in opt.param_groups:
                    group["lr"] = 2e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
            opt.zero_grad()
            logits, state = model(x, state)
            state = tuple(s.detach() for s in state)  # truncated BPTT: carry the state, cut the gradient
            loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            steps += 1
            chars += B * T
            elapsed = time.perf_counter() - start
            if args.max_steps and steps >= args.max_steps:
                budget = elapsed  # stop here: the evaluation below is the last
            if elapsed >= budget or steps >= next_eval:
                next_eval += args.eval_every
                val = _evaluate(model, val_ids, T)
                print(json.dumps({"step": steps, "minutes": round(elapsed / 60, 2), "train": round(loss.item(), 4),
                                  "val": round(val, 4), "chars_per_second": round(chars / elapsed)}), flush=True)
                start += time.perf_counter() - start - elapsed  # evaluation time does not count
                if elapsed >= budget:
                    done = True
                    break
    print(json.dumps({"final_val_nats_per_char": round(val, 4), "steps": steps, "chars_per_second": round(chars / elapsed),
                      "loadavg": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
