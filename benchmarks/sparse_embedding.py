"""One training step of a large embedding table, dense gradient vs row-sparse gradient
(`Embedding(sparse=True)`), for SGD and Adam, with PyTorch's `nn.Embedding(sparse=...)` (SGD,
Adam / SparseAdam) timed in the same run as the peer.

The step: look up a batch of ids, a squared loss on the looked-up vectors, backward, optimiser
step. The table is V × D float32 (default 50,000 × 100, a word2vec-sized vocabulary).

    python -m benchmarks.sparse_embedding [--vocab 50000 --dim 100 --batch 1024 --reps 15 --threads 1]

Prints one JSON line per case: neurona's and PyTorch's median seconds per step, dense and
sparse, and the dense/sparse speed-up of each.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np


def _neurona_step(vocab, dim, ids, sparse, opt_name):
    import neurona as nr
    from neurona.layers import Embedding
    from neurona.optim import SGD, Adam

    emb = Embedding(vocab, dim, sparse=sparse)
    emb(nr.tensor(ids[:1]))
    emb.set_weights([np.random.default_rng(0).standard_normal((vocab, dim)).astype(np.float32) * 0.1])
    opt = SGD(emb.trainable_weights, learning_rate=0.1) if opt_name == "sgd" else Adam(
        emb.trainable_weights, learning_rate=0.001)
    x = nr.tensor(ids)

    def step():
        opt.zero_grad()
        out = emb(x)
        (out * out).sum().backward()
        opt.step()

    return step


def _torch_step(vocab, dim, ids, sparse, opt_name):
    import torch

    emb = torch.nn.Embedding(vocab, dim, sparse=sparse)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(np.random.default_rng(0).standard_normal((vocab, dim)).astype(np.float32) * 0.1))
    if opt_name == "sgd":
        opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    else:
        opt = (torch.optim.SparseAdam if sparse else torch.optim.Adam)(emb.parameters(), lr=0.001)
    x = torch.tensor(ids)

    def step():
        opt.zero_grad()
        out = emb(x)
        (out * out).sum().backward()
        opt.step()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from .harness import compare, set_threads

    set_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    ids = np.random.default_rng(1).integers(0, args.vocab, size=args.batch)
    for opt_name in ("sgd", "adam"):
        row = {"case": f"embedding {args.vocab}x{args.dim}, {args.batch} ids, {opt_name}", "threads": args.threads}
        for sparse in (False, True):
            kind = "sparse" if sparse else "dense"
            times = compare(_neurona_step(args.vocab, args.dim, ids, sparse, opt_name),
                            _torch_step(args.vocab, args.dim, ids, sparse, opt_name), reps=args.reps)
            row[f"neurona_{kind}_ms"] = round(times["neurona_s"] * 1e3, 3)
            row[f"torch_{kind}_ms"] = round(times["peer_s"] * 1e3, 3)
        row["neurona_dense_over_sparse"] = round(row["neurona_dense_ms"] / row["neurona_sparse_ms"], 1)
        row["torch_dense_over_sparse"] = round(row["torch_dense_ms"] / row["torch_sparse_ms"], 1)
        row["neurona_sparse_over_torch_sparse"] = round(row["neurona_sparse_ms"] / row["torch_sparse_ms"], 2)
        row["loadavg"] = [round(v, 2) for v in os.getloadavg()]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
