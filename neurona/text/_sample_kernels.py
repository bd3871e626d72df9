"""numba kernel of `Sampler.generate`'s token draw: softmax(logits / temperature) and the
inverse-CDF draw that `rng.choice(len(p), p=p)` makes from one uniform number — the NumPy
formulas of `generate` (float64: exp(l − max l), normalised, cumulated, the cumulated sum divided
by its last element, then the first index whose value exceeds u), in one call instead of about ten
NumPy calls (~6 µs a character: 4 % of W4's sampling time on the Intel machine of
docs/performance.md). exp is libm's rather than NumPy's SIMD one and the sum is added in order
rather than pairwise, which can differ in the last bit; a token could differ only for a u within
~1e-16 of a boundary of the cumulated sum. Logits that are not finite give −1 (the caller raises).
May import: numpy, numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def draw(logits, temperature, u, work):
    """The token drawn from softmax(logits / temperature) (logits (V,), any float type) with the
    uniform number u in [0, 1); work is a float64 buffer of V elements. −1 when the logits are
    not all finite."""
    V = logits.shape[0]
    top = -np.inf
    for j in range(V):
        v = np.float64(logits[j]) / temperature
        work[j] = v
        top = max(top, v)
    total = 0.0
    for j in range(V):
        e = np.exp(work[j] - top)
        work[j] = e
        total += e
    acc = 0.0
    for j in range(V):  # the cumulated sum of p = e / total, as NumPy's cumsum adds it
        acc += work[j] / total
        work[j] = acc
    last = work[V - 1]
    if not (last > 0.0 and last < np.inf):  # NaN or ±inf among the logits
        return -1
    for j in range(V):  # searchsorted(cdf / cdf[-1], u, side="right")
        if work[j] / last > u:
            return j
    return V
