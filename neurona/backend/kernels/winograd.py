"""Winograd convolution F(m×m, 3×3) for 3×3 and F(2×2, 5×5) for 5×5, stride-1 layers with many channels.

Each m×m block of outputs of a 3×3 convolution is computed from the α×α input tile under it
(α = m + r − 1 for an r×r kernel) as
    Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A
(Lavin & Gray 2015). Summed over input channels, the α² elementwise products become α² GEMMs
    M[ξ] = U[ξ] (K, C) @ V[ξ] (C, P),   U = G·g·Gᵀ (filters), V = Bᵀ·d·B (input tiles),
with P = th·tw·N tiles: for m = 4 the BLAS does 36 multiplications per 16 outputs instead of
im2col's 144 (4× fewer), for m = 2 16 per 4 (2.25× fewer); for 5×5 kernels F(2×2, 5×5) does 36
per 4 outputs instead of im2col's 100 (2.8× fewer), on the same 6×6 tiles (points 0, ±1, ±2, ∞)
as F(4×4, 3×3), so its input transform is the same written-out kernel with tiles 2 apart.
The map is linear in the filters and in the input, so its adjoints are exact:
    input gradient:  dM = A·dY·Aᵀ, dV[ξ] = U[ξ]ᵀ @ dM[ξ], dx = Σ_tiles B·dV·Bᵀ
    filter gradient: dU[ξ] = dM[ξ] @ V[ξ]ᵀ, dg = Gᵀ·dU·G
and they are the gradients of the same function im2col computes.
Rounding: the transforms' coefficients (up to 8 for m = 4) make float32 results differ from a
direct convolution by about 1e-5 of the output's scale (about 20× more than im2col's rounding;
float64 agrees to 1e-14); this is the trade cuDNN and oneDNN make for the same speed.
The tile transforms are numba kernels (`_numba.py`; for m = 4 with the matrices written out, for
m = 2 generic loops over the coefficients) working on batch-innermost copies (C, H, W, N) of the
activations, so every step is a sum of length-N vectors; the filter
transforms are one small GEMM with the matrix G⊗G. NumPy arrays only (float32/float64); other
arrays use im2col.
May import: numpy, neurona.backend.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy
from numpy.lib.stride_tricks import as_strided

from .. import kernel_threads

# (Bᵀ, G, Aᵀ) per output tile size m, in float64 (Lavin & Gray's points 0, ±1, ±2 for m = 4)
_MATRICES = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}
# F(2×2, 5×5) on the points of F(4×4, 3×3): the same Bᵀ; G's rows are p^k/Π_{l≠j}(p_j − p_l)
# (the Toom-Cook construction; tests/test_conv_paths.py checks the 1-D identity)
_MATRICES5 = {
    2: (_MATRICES[4][0],
        [[1 / 4, 0, 0, 0, 0], [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3], [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3], [0, 0, 0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1]]),
    # F(4×4, 5×5): 8×8 tiles on the points 0, ±1, ±2, ±1/2, ∞ (transforms written out in _numba.py)
    4: ([[-1, 0, 21 / 4, 0, -21 / 4, 0, 1, 0], [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
         [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0], [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
         [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0], [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
         [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0], [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]],
        [[-1, 0, 0, 0, 0], [-2 / 9, -2 / 9, -2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9, 2 / 9, -2 / 9],
         [1 / 90, 1 / 45, 2 / 45, 4 / 45, 8 / 45], [1 / 90, -1 / 45, 2 / 45, -4 / 45, 8 / 45],
         [32 / 45, 16 / 45, 8 / 45, 4 / 45, 2 / 45], [32 / 45, -16 / 45, 8 / 45, -4 / 45, 2 / 45], [0, 0, 0, 0, 1]],
        [[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0], [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
         [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 1]]),
}
_cache: dict = {}

# the output tile size used for new 3×3 convolutions (tests switch it to check both); 5×5 layers
# use TILE5, or when it is None the tile size with less transformed data, th·tw·α² per channel
# and image: F(4×4, 5×5) on every map of 7 or more (with its transforms written out it beat
# F(2×2, 5×5) on 7×7, 14×14 and 28×28, 31 % waste on the first two included: 16→32 on 14×14,
# batch 32, 9.2 → 7.3 ms; docs/performance.md), F(2×2, 5×5) on the smallest; float32 errors
# 6e-6 of the output's scale against 3e-6
TILE = 4
TILE5 = None


def _mats(m, dtype, r=3):
    """(Bᵀ, G⊗G, Aᵀ) for tile size m and an r×r kernel as contiguous arrays of `dtype`."""
    key = (m, r, numpy.dtype(dtype))
    if key not in _cache:
        bt, g, at = (numpy.array(a, dtype=numpy.float64) for a in (_MATRICES if r == 3 else _MATRICES5)[m])
        _cache[key] = tuple(numpy.ascontiguousarray(a.astype(dtype)) for a in (bt, numpy.kron(g, g), at))
    return _cache[key]


# The constants below are the defaults when NEURONA_CONV_CALIBRATION=0; otherwise calibrate.py
# measures MIN_WORK and MAX_TILE_WASTE (per kernel size) on this machine once and caches them.
# When Winograd pays (the measured break-evens, per layer and batch, are in docs/performance.md
# with the command, `python -m benchmarks.conv_algos --batch N --layers CxKxSIZE`): the transforms
# are vectors over the batch and their cost grows with the channels while the GEMMs' grows with
# their product, so the rule asks for a batch of 4, 8 channels each side,
# N·OH·OW·min(C, K) ≥ 100,000, and output tiles that waste at most 35 % of their area past the
# map's edge: 4×4 tiles covering 16×16 for a 14×14 map or 8×8 for 7×7 (31 %). The
# Fashion-MNIST CNN's 14×14 layer was slower through Winograd before the transforms were written
# out; since, 16→32, 32→64 and
# 32→32 on 14×14 and 64→64 on 7×7 run at 0.45-0.7× im2col's time (docs/performance.md), as the
# calibration's 14×14 probe finds (it allowed 1.35 on the 2-core EPYC).
MIN_CHANNELS = 8
MIN_BATCH = 4
MIN_WORK = 100_000
MAX_TILE_WASTE = 1.35


# 5×5 through F(2×2, 5×5): measured against im2col with `python -m benchmarks.conv_algos --kernel 5`
# (docs/performance.md, "The convolution sweep")
MIN_CHANNELS5 = 8
MIN_WORK5 = 50_000
MAX_TILE_WASTE5 = 1.35  # F(4×4, 5×5) on 14×14 and 7×7 maps (31 % waste) beat im2col and F(2×2)

CONV_ALGOS = ("auto", "im2col", "winograd", "1x1")


def _algo_setting():
    algo = os.environ.get("NEURONA_CONV_ALGO", "auto").strip().lower() or "auto"
    if algo not in CONV_ALGOS:
        raise ValueError(f"NEURONA_CONV_ALGO must be one of {', '.join(CONV_ALGOS)}, got "
                         f"{os.environ['NEURONA_CONV_ALGO']!r}")
    return algo


def tile_for(r, geo):
    """The output tile size m used for an r×r kernel on window layout geo."""
    if r == 3:
        return TILE
    if TILE5 is not None:
        return TILE5
    (th4, tw4), (th2, tw2) = _tiles(geo, 4), _tiles(geo, 2)
    return 4 if th4 * tw4 * 64 <= th2 * tw2 * 36 else 2


def suits(n, c, k, geo, groups, fast) -> bool:
    """Whether conv2d with batch n, c input channels, k filters and window layout geo should use
    Winograd: 3×3 or 5×5, stride 1, no dilation, one group, float32/float64 NumPy arrays with
    numba (`fast`), and enough batch, channels and work (the rule above, and for 5×5 RULE5;
    NEURONA_CONV_ALGO=winograd|im2col|1x1 overrides it)."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    if not (kh == kw and kh in (3, 5) and sh == sw == dh == dw == 1 and groups == 1 and fast):
        return False
    algo = _algo_setting()
    if algo in ("im2col", "1x1"):
        return False
    if algo == "winograd":
        return True
    m = tile_for(kh, geo)
    th, tw = _tiles(geo, m)
    min_work, max_waste = (MIN_WORK5, MAX_TILE_WASTE5) if kh == 5 else (MIN_WORK, MAX_TILE_WASTE)
    from . import calibrate  # noqa: PLC0415 - imports this module

    cal = calibrate.rules()  # this machine's break-evens (None: NEURONA_CONV_CALIBRATION=0)
    if cal is not None:
        min_work, max_waste = cal["min_work"][str(kh)], cal["max_waste"][str(kh)]
        if min_work is None:  # Winograd never won here
            return False
    if th * tw * m * m > max_waste * oh * ow:
        return False
    min_channels = MIN_CHANNELS5 if kh == 5 else MIN_CHANNELS
    return n >= MIN_BATCH and min(c, k) >= min_channels and n * oh * ow * min(c, k) >= min_work


def _tiles(geo, m):
    oh, ow = geo[8], geo[9]
    return -(-oh // m), -(-ow // m)


def _planes(a2, c, p, dtype):
    """A flat buffer holding a2 planes (c, p), an (a2, c, p) view of it, and the plane stride.

    The planes are 64 bytes more than c·p apart: with c·p a power of two they would otherwise
    share cache sets, and the GEMMs' outputs are read plane after plane."""
    item = numpy.dtype(dtype).itemsize
    s = c * p + 64 // item
    flat = numpy.empty(a2 * s, dtype=dtype)
    return flat, as_strided(flat, (a2, c, p), (s * item, p * item, item)), s


def filter_transform(w, m):
    """U (α², K, C) = G·g·Gᵀ of every r×r filter g of w (K, C, r, r)."""
    k, c, r = w.shape[:3]
    gg = _mats(m, w.dtype, r)[1]
    return (gg @ w.reshape(k * c, r * r).T).reshape(gg.shape[0], k, c)


def filter_adjoint(du, m, r=3):
    """dg (K, C, r, r) = Gᵀ·dU·G for dU (α², K, C): the adjoint of filter_transform."""
    a2, k, c = du.shape
    gg = _mats(m, du.dtype, r)[1]
    return numpy.ascontiguousarray((gg.T @ du.reshape(a2, k * c)).T).reshape(k, c, r, r)


_pool = None
_pool_size = 0
_pool_lock = threading.Lock()


def _split(kernel, total, *args, max_threads=None):
    """kernel(*args, c0, c1) over channel ranges covering [0, total), on kernel_threads()
    threads (the kernels release the GIL), at most max_threads; this thread takes the first range."""
    threads = min(kernel_threads(), total, max_threads or total)
    if threads <= 1:
        kernel(*args, 0, total)
        return
    bounds = [total * i // threads for i in range(threads + 1)]
    run_side_by_side([lambda a=bounds[i], b=bounds[i + 1]: kernel(*args, a, b) for i in range(threads)])


def run_side_by_side(tasks):
    """[task() for task in tasks], the first in this thread and the others in the kernel pool at
    once (they release the GIL); the results in order. Raises the first task's error."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < len(tasks) - 1:
            _pool = ThreadPoolExecutor(max_workers=len(tasks) - 1, thread_name_prefix="neurona-kernels")
            _pool_size = len(tasks) - 1
        pool = _pool
    futures = [pool.submit(task) for task in tasks[1:]]
    first = tasks[0]()
    return [first] + [f.result() for f in futures]


def _to_batch_last(mod, x, ph, pw, hp, wp):
    x = numpy.ascontiguousarray(x)
    n, c = x.shape[:2]
    out = numpy.zeros((c, hp, wp, n), dtype=x.dtype)
    _split(mod.to_batch_last, c, x, ph, pw, out)
    return out


def _from_batch_last(mod, xt, r0, q0, h, w):
    c, n = xt.shape[0], xt.shape[3]
    out = numpy.empty((n, c, h, w), dtype=xt.dtype)
    _split(mod.from_batch_last, c, xt, r0, q0, out)
    return out


def input_transform(mod, x, geo, m):
    """V (α², C, P) of input x: a strided view over a padded flat buffer."""
    th, tw = _tiles(geo, m)
    n, c = x.shape[:2]
    r = geo[0]
    bt = _mats(m, x.dtype, r)[0]
    xt = _to_batch_last(mod, x, geo[4], geo[5], m * th + r - 1, m * tw + r - 1)
    flat, v, s = _planes(bt.shape[0] ** 2, c, th * tw * n, x.dtype)
    if bt.shape[0] == 6:  # F(4×4, 3×3) and F(2×2, 5×5)
        _split(mod.winograd6_input, c, xt, m, th, tw, flat, s)
    elif bt.shape[0] == 8 and m == 4:  # F(4×4, 5×5)
        _split(mod.winograd8_input, c, xt, th, tw, flat, s)
    else:
        _split(mod.winograd_input, c, xt, bt, m, th, tw, flat, s)
    return v


def forward(mod, x, w, geo):
    """(y, V): conv2d(x, w) (N, K, OH, OW) and the transformed input, kept for the filter gradient."""
    r = geo[0]
    m = tile_for(r, geo)
    n, k = x.shape[0], w.shape[0]
    th, tw = _tiles(geo, m)
    v = input_transform(mod, x, geo, m)
    mflat, mv, s = _planes(v.shape[0], k, th * tw * n, x.dtype)
    numpy.matmul(filter_transform(w, m), v, out=mv)
    yt = numpy.empty((k, m * th, m * tw, n), dtype=x.dtype)
    if m == 4 and r == 3:
        _split(mod.winograd43_output, k, mflat, s, th, tw, yt)
    elif m == 2 and r == 5:
        _split(mod.winograd25_output, k, mflat, s, th, tw, yt)
    elif m == 4 and r == 5:
        _split(mod.winograd45_output, k, mflat, s, th, tw, yt)
    else:
        _split(mod.winograd_output, k, mflat, s, _mats(m, x.dtype, r)[2], th, tw, yt)
    return _from_batch_last(mod, yt, 0, 0, geo[8], geo[9]), v


_shared = threading.local()


@contextmanager
def using_store(store):
    """Within this block the calling thread shares transforms through `store` (a dict; None: no
    sharing); kernels.over_batch runs each batch range in a pool thread with its caller's store."""
    old = getattr(_shared, "store", None)
    _shared.store = store
    try:
        yield
    finally:
        _shared.store = old


def sharing_output_adjoint():
    """Within this block, the input and filter gradients of one convolution transform their
    common output gradient once (the second call reuses the first's dM). conv2d's backward opens
    it around its two gradient ops; graph-mode replays run without it and transform twice. With
    the batch split (kernels.over_batch) each range's gradients share their range's transform: the
    ranges run in the kernel pool's threads, which take the caller's store (`sharing_store`,
    `using_store`)."""
    return using_store({})


def sharing_store():
    """The calling thread's store of shared transforms (None outside sharing_output_adjoint)."""
    return getattr(_shared, "store", None)


def _output_adjoint(mod, gy, geo, m):
    # keyed by where gy's elements lie (a batch range's slice of gy is a new array object each
    # time it is taken, at the same address); gy lives through the block, so no other array can
    # take its address meanwhile. The second use takes the entry out: the store holds each
    # transform only until its other gradient has read it.
    store = getattr(_shared, "store", None)
    key = None
    if store is not None:
        key = (gy.__array_interface__["data"][0], gy.shape, gy.strides, gy.dtype.str, geo, m)
        dm = store.pop(key, None)
        if dm is not None:
            return dm
    th, tw = _tiles(geo, m)
    n, k = gy.shape[:2]
    at = _mats(m, gy.dtype, geo[0])[2]
    gt = _to_batch_last(mod, gy, 0, 0, m * th, m * tw)
    flat, dm, s = _planes(at.shape[1] ** 2, k, th * tw * n, gy.dtype)
    if m == 4 and geo[0] == 3:
        _split(mod.winograd43_output_adjoint, k, gt, th, tw, flat, s)
    elif m == 2 and geo[0] == 5:
        _split(mod.winograd25_output_adjoint, k, gt, th, tw, flat, s)
    elif m == 4 and geo[0] == 5:
        _split(mod.winograd45_output_adjoint, k, gt, th, tw, flat, s)
    else:
        _split(mod.winograd_output_adjoint, k, gt, at, th, tw, flat, s)
    if store is not None:
        store[key] = dm
    return dm


def input_grad(mod, gy, w, geo, x_shape):
    """dx (N, C, H, W): the gradient of forward() with respect to x for output gradient gy."""
    r = geo[0]
    m = tile_for(r, geo)
    th, tw = _tiles(geo, m)
    n, c, h, wd = x_shape
    dm = _output_adjoint(mod, gy, geo, m)
    vflat, dv, s = _planes(dm.shape[0], c, th * tw * n, gy.dtype)
    numpy.matmul(filter_transform(w, m).transpose(0, 2, 1), dm, out=dv)
    bt = _mats(m, gy.dtype, r)[0]
    dxt = numpy.zeros((c, m * th + r - 1, m * tw + r - 1, n), dtype=gy.dtype)
    if bt.shape[0] == 6:
        _split(mod.winograd6_input_adjoint, c, vflat, s, m, th, tw, dxt)
    elif bt.shape[0] == 8 and m == 4:
        _split(mod.winograd8_input_adjoint, c, vflat, s, th, tw, dxt)
    else:
        _split(mod.winograd_input_adjoint, c, vflat, s, bt, m, th, tw, dxt)
    return _from_batch_last(mod, dxt, geo[4], geo[5], h, wd)


def weight_grad(mod, x, gy, geo, v=None):
    """dw (K, C, r, r): the gradient of forward() with respect to w; v is forward's V if kept."""
    r = geo[0]
    m = tile_for(r, geo) if v is None else int(round(v.shape[0] ** 0.5)) - (r - 1)
    if v is None:
        v = input_transform(mod, x, geo, m)
    dm = _output_adjoint(mod, gy, geo, m)
    return filter_adjoint(dm @ v.transpose(0, 2, 1), m, r)
