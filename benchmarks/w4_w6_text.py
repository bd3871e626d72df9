"""W4 (char-level LSTM language model) and W6 (word2vec) of docs/performance.md's workloads.

W4: vocabulary 65, embedding 64, 2-layer LSTM 256, sequence 64, batch 32, Adam, global clip-norm
5: one training step (tokens/s = 2048 / s) against PyTorch eager `nn.LSTM` with the same
weights; and sampling 1,000 characters one at a time (neurona's `Sampler` against a torch loop
that steps `nn.LSTM` with its (h, c) state under no_grad).
W6: skip-gram, negative 5, window 5, dimension 100, sample 1e-3, min_count 5 on Shakespeare
(one sentence per line), the same settings and worker count for neurona's `Word2Vec` and
gensim's; words/s of `train` (vocabulary built beforehand, not timed), plus the analogy accuracy
of each on questions-words.txt restricted to the vocabulary.

    python -m benchmarks.run --only W4,W6 [--threads 1,all] [--reps 5]
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import neurona as nr

from .harness import compare, report

TORCH = f"torch {torch.__version__} eager"
V, E, H, T, N = 65, 64, 256, 64, 32


class _TorchLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, num_layers=2, batch_first=True)
        self.out = torch.nn.Linear(H, V)

    def forward(self, x, state=None):
        y, state = self.lstm(self.embed(x), state)
        return self.out(y), state


def build_w4():
    """The two models with the same weights (torch's copied into Keras' layout)."""
    from neurona.layers import LSTM, Dense, Embedding
    from neurona.models import Sequential
    from neurona.optimizers import Adam

    torch.manual_seed(0)
    tm = _TorchLM()
    model = Sequential([Embedding(V, E), LSTM(H, return_sequences=True), LSTM(H, return_sequences=True), Dense(V)])
    model.build((None, T))
    weights = [tm.embed.weight.detach().numpy()]
    for k in range(2):
        weights += [getattr(tm.lstm, f"weight_ih_l{k}").detach().numpy().T,
                    getattr(tm.lstm, f"weight_hh_l{k}").detach().numpy().T,
                    (getattr(tm.lstm, f"bias_ih_l{k}") + getattr(tm.lstm, f"bias_hh_l{k}")).detach().numpy()]
    weights += [tm.out.weight.detach().numpy().T, tm.out.bias.detach().numpy()]
    model.set_weights([np.ascontiguousarray(w, dtype=np.float32) for w in weights])
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (N, T))
    y = rng.integers(0, V, (N, T))
    opt = Adam(model.trainable_weights, learning_rate=2e-3, global_clipnorm=5.0)
    topt = torch.optim.Adam(tm.parameters(), lr=2e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def ours():
        opt.zero_grad()
        logits = model(x, training=True)
        nr.cross_entropy(logits.reshape(N * T, V), y.reshape(-1)).backward()
        opt.step()

    def peer():
        topt.zero_grad()
        logits, _ = tm(xt)
        torch.nn.functional.cross_entropy(logits.reshape(N * T, V), yt.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 5.0)
        topt.step()

    return model, tm, ours, peer


def _sample_torch(tm, n, seed):
    g = torch.Generator().manual_seed(seed)
    tok, state, out = torch.tensor([[1]]), None, []
    with torch.no_grad():
        for _ in range(n):
            logits, state = tm(tok, state)
            p = torch.softmax(logits[0, -1] / 0.8, dim=-1)
            tok = torch.multinomial(p, 1, generator=g).view(1, 1)
            out.append(int(tok))
    return out


def w4(threads, reps):
    from neurona.text.generate import Sampler

    model, tm, ours, peer = build_w4()
    train = report("W4", compare(ours, peer, reps=reps, warmup=1), "s/step", TORCH, threads,
                   metric="training", tokens_per_step=N * T)
    sampler = Sampler(model)
    times = compare(lambda: sampler.generate([1], 1000, temperature=0.8, seed=0), lambda: _sample_torch(tm, 1000, 0),
                    reps=max(2, reps // 2), warmup=1)
    sample = report("W4", times, "s/1000 chars", TORCH, threads, metric="sampling 1000 chars one at a time")
    return train, sample


def w6(threads, reps, epochs=1):
    from gensim.models import Word2Vec as GensimWord2Vec
    from gensim.test.utils import datapath

    from neurona.text import Word2Vec, tokenize
    from neurona.text.corpora import shakespeare_text

    sents = [t for t in (tokenize(line) for line in shakespeare_text().splitlines()) if t]
    words = sum(map(len, sents)) * epochs
    kw = dict(vector_size=100, window=5, min_count=5, sg=1, hs=0, negative=5, sample=1e-3, workers=threads, seed=1)
    ours = Word2Vec(**kw)
    ours.build_vocab(sents)
    peer = GensimWord2Vec(**kw)
    peer.build_vocab(sents)
    a, b = [], []
    for r in range(max(1, reps // 2)):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            if side == 0:
                ours.train(sents, total_examples=len(sents), epochs=epochs)
                a.append(time.perf_counter() - t0)
            else:
                peer.train(sents, total_examples=len(sents), epochs=epochs)
                b.append(time.perf_counter() - t0)
    qw = datapath("questions-words.txt")
    times = {"neurona_s": statistics.median(a), "peer_s": statistics.median(b), "neurona_min_s": min(a),
             "peer_min_s": min(b)}
    return report("W6", times, f"s/epoch ({words:,} words)", f"gensim (workers={threads})", threads,
                  neurona_words_per_s=round(words / times["neurona_s"]), peer_words_per_s=round(words / times["peer_s"]),
                  neurona_analogy=round(ours.wv.evaluate_word_analogies(qw)[0], 4),
                  peer_analogy=round(peer.wv.evaluate_word_analogies(qw)[0], 4),
                  note=f"both trained {len(a)} × {epochs} epoch(s) with linear decay per train call")
