"""numba kernels of the fast word2vec trainer (the algorithm of Mikolov's word2vec.c and gensim's
word2vec_inner.pyx, in numba instead of Cython).

`train_job` trains on one job (a few thousand words of sentences) with plain SGD, updating the
shared weight matrices in place without locks ("Hogwild!", as word2vec.c and gensim do: the
updates are sparse, so threads rarely touch the same rows). It is compiled with `nogil=True`, so
`Word2Vec(workers=N)` runs N Python threads that each call it at full speed.

The output layer is one of three, as in the course:
- full softmax, P(o|c) = exp(u_o·v_c) / Σ_w exp(u_w·v_c): O(V) per pair, for small vocabularies;
- negative sampling: log σ(u_o·v_c) + Σ_k log σ(−u_k·v_c), k drawn from unigram^0.75;
- hierarchical softmax: a product of σ(±u_n·v_c) along the word's Huffman path.
Each `*_update` adds −α·∂loss/∂u to the output vectors and accumulates −α·∂loss/∂v_c into
`neu1e`; they are tested one by one against autograd on the teaching models. The random
numbers come from word2vec.c's 48-bit linear congruential generator, one stream per job.
May import: numpy, numba.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_LCG_MUL = 25214903917
_LCG_ADD = 11
_LCG_MASK = 281474976710655  # 2**48 − 1


@njit(cache=True, inline="always")
def _next(state):
    return (state * _LCG_MUL + _LCG_ADD) & _LCG_MASK


@njit(cache=True, fastmath=True, inline="always")
def _sig_and_nll(f, label, want_loss):
    """σ(f) and, if asked, −log σ(f) (label 1) or −log σ(−f) (label 0), from one exp(−|f|)."""
    e = math.exp(-abs(f))
    s = 1.0 / (1.0 + e) if f >= 0 else e / (1.0 + e)
    loss = 0.0
    if want_loss:
        z = f if label > 0 else -f  # −log σ(z) = log(1 + e^−|z|) + max(−z, 0)
        loss = math.log1p(e) + (-z if z < 0 else 0.0)
    return s, loss


@njit(cache=True, fastmath=True)
def targets_update(l1, targets, labels, neu1e, syn1neg, alpha, want_loss=True):
    """Negative-sampling step for input vector `l1`: for each (target, label) pair, g = (label −
    σ(u·l1))·α; neu1e += g·u; u += g·l1. Returns the loss Σ −log σ(±u·l1)."""
    loss = 0.0
    d = l1.shape[0]
    zero = l1.dtype.type(0)
    for k in range(targets.shape[0]):
        t = targets[k]
        u = syn1neg[t]
        f = zero  # the dot product and the updates in the vectors' dtype (float32: SIMD, as BLAS sdot)
        for j in range(d):
            f += l1[j] * u[j]
        sig, nll = _sig_and_nll(f, labels[k], want_loss)
        loss += nll
        g = l1.dtype.type((labels[k] - sig) * alpha)
        for j in range(d):
            neu1e[j] += g * u[j]
            u[j] += g * l1[j]
    return loss


@njit(cache=True, fastmath=True)
def hs_update(l1, points, codes, n, neu1e, syn1, alpha, want_loss=True):
    """Hierarchical-softmax step along a Huffman path of `n` inner nodes: the probability of going
    left at node p is σ(u_p·l1); code 0 means left (word2vec.c's convention, g = (1 − code − f)·α)."""
    loss = 0.0
    d = l1.shape[0]
    zero = l1.dtype.type(0)
    for k in range(n):
        u = syn1[points[k]]
        f = zero
        for j in range(d):
            f += l1[j] * u[j]
        sig, nll = _sig_and_nll(f, 1.0 - codes[k], want_loss)  # code 0: label 1
        loss += nll
        g = l1.dtype.type((1.0 - codes[k] - sig) * alpha)
        for j in range(d):
            neu1e[j] += g * u[j]
            u[j] += g * l1[j]
    return loss


@njit(cache=True, fastmath=True)
def softmax_update(l1, target, neu1e, syn1sm, alpha, logits):
    """Full-softmax step: p = softmax(U·l1); g_w = (1[w = target] − p_w)·α for every word w."""
    v, d = syn1sm.shape
    top = -1e30
    for w in range(v):
        f = 0.0
        for j in range(d):
            f += l1[j] * syn1sm[w, j]
        logits[w] = f
        if f > top:
            top = f
    total = 0.0
    for w in range(v):
        logits[w] = math.exp(logits[w] - top)
        total += logits[w]
    loss = -math.log(logits[target] / total)
    for w in range(v):
        g = ((1.0 if w == target else 0.0) - logits[w] / total) * alpha
        for j in range(d):
            neu1e[j] += g * syn1sm[w, j]
            syn1sm[w, j] += g * l1[j]
    return loss


@njit(cache=True, fastmath=True, nogil=True)
def train_job(words, starts, syn0, syn1neg, syn1, syn1sm, sg, hs, negative, use_softmax, window, shrink,
              cbow_mean, sample_int, cum_table, points, codes, codelens, alpha, seed, want_loss):
    """Train on the sentences words[starts[i]:starts[i+1]]; returns (words trained on after
    subsampling, summed loss (0 unless `want_loss`), number of predictions)."""
    d = syn0.shape[1]
    state = seed & _LCG_MASK
    neu1 = np.zeros(d, dtype=syn0.dtype)
    neu1e = np.zeros(d, dtype=syn0.dtype)
    logits = np.zeros(syn1sm.shape[0], dtype=np.float64)
    targets = np.zeros(negative + 1, dtype=np.int64)
    labels = np.zeros(negative + 1, dtype=np.float64)
    idx = np.empty(words.shape[0], dtype=np.int64)
    n_cum = cum_table.shape[0]
    effective = 0
    loss = 0.0
    preds = 0
    for s in range(starts.shape[0] - 1):
        m = 0
        for p in range(starts[s], starts[s + 1]):  # frequent-word subsampling
            w = words[p]
            rnd = state >> 16
            state = _next(state)
            if sample_int[w] < (rnd & 0xFFFFFFFF):
                continue
            idx[m] = w
            m += 1
        effective += m
        for i in range(m):
            b = 0
            if shrink:
                b = (state >> 16) % window
                state = _next(state)
            lo = max(0, i - window + b)
            hi = min(m, i + window + 1 - b)
            center = idx[i]
            if sg:
                for c in range(lo, hi):
                    if c == i:
                        continue
                    l1 = syn0[idx[c]]
                    neu1e[:] = 0.0
                    if hs:
                        loss += hs_update(l1, points[center], codes[center], codelens[center], neu1e, syn1, alpha, want_loss)
                    if negative > 0:
                        n_t = 1
                        targets[0] = center
                        labels[0] = 1.0
                        for _ in range(negative):
                            r = (state >> 16) % cum_table[n_cum - 1]
                            state = _next(state)
                            t = np.searchsorted(cum_table, r, side="left")
                            if t == center:
                                continue
                            targets[n_t] = t
                            labels[n_t] = 0.0
                            n_t += 1
                        loss += targets_update(l1, targets[:n_t], labels[:n_t], neu1e, syn1neg, alpha, want_loss)
                    if use_softmax:
                        loss += softmax_update(l1, center, neu1e, syn1sm, alpha, logits)
                    for j in range(d):
                        l1[j] += neu1e[j]
                    preds += 1
            else:
                count = hi - lo - 1
                if count == 0:
                    continue
                neu1[:] = 0.0
                for c in range(lo, hi):
                    if c != i:
                        for j in range(d):
                            neu1[j] += syn0[idx[c], j]
                scale = 1.0 / count if cbow_mean else 1.0
                for j in range(d):
                    neu1[j] *= scale
                neu1e[:] = 0.0
                if hs:
                    loss += hs_update(neu1, points[center], codes[center], codelens[center], neu1e, syn1, alpha, want_loss)
                if negative > 0:
                    n_t = 1
                    targets[0] = center
                    labels[0] = 1.0
                    for _ in range(negative):
                        r = (state >> 16) % cum_table[n_cum - 1]
                        state = _next(state)
                        t = np.searchsorted(cum_table, r, side="left")
                        if t == center:
                            continue
                        targets[n_t] = t
                        labels[n_t] = 0.0
                        n_t += 1
                    loss += targets_update(neu1, targets[:n_t], labels[:n_t], neu1e, syn1neg, alpha, want_loss)
                if use_softmax:
                    loss += softmax_update(neu1, center, neu1e, syn1sm, alpha, logits)
                for j in range(d):  # ∂(mean)/∂v = 1/count: the gradient, scaled like the forward
                    neu1e[j] *= scale
                for c in range(lo, hi):
                    if c != i:
                        for j in range(d):
                            syn0[idx[c], j] += neu1e[j]
                preds += 1
    return effective, loss, preds
