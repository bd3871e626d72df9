"""Kernels NumPy does badly: for convolution and pooling, im2col/col2im (and their per-image
variant for stride-1 layers with few input rows), a direct convolution for very few channels, Winograd F(4×4, 3×3), F(2×2, 5×5) and F(4×4, 5×5) (`winograd.py`) for 3×3 and 5×5 layers
with many channels, its break-evens measured once per machine (`calibrate.py`), and
max-pool with argmax routing; the batch split of whole convolutions at several threads
(`conv_by_batch`); small GEMMs on one BLAS thread at several threads (`matmul`, for MatMul); and
the fused batch-norm passes (`_bn.py`, at the end of this file).

Each kernel (the direct convolution and Winograd aside: their callers fall back to im2col) has two
implementations with the same contract: a numba one (`_numba.py`, compiled
on first use and cached on disk, so a second run does not pay for compilation) for NumPy arrays,
and a plain array-module one (`_xp.py`) used for other backends (CuPy), when numba is missing,
or when the environment sets NEURONA_NO_NUMBA=1. numba is imported lazily, on the first call,
so `import neurona` stays light. `malloc.tune_malloc()` (glibc keeps freed memory for reuse)
is applied by the first backward pass, not here (NEURONA_MALLOC_TUNING=0 opts out).

A window layout is the tuple `geo = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)`: kernel, stride,
padding, dilation and output size. cols, the im2col matrix, is (C·kh·kw, N·OH·OW): one row per
filter tap, so that conv2d is one GEMM `W (K, C·kh·kw) @ cols` and groups are row blocks.
May import: numpy, numba (lazily), neurona.backend.
"""
from __future__ import annotations

import importlib
import os

import numpy

from .. import blas_threads, kernel_threads, thread_limit
from . import _xp
from . import cblas as _cblas
from . import winograd as _winograd
from .winograd import _split

# A thread pays for its start-up and for sharing the memory bus only with enough work: below this
# many output elements per thread, col2im and pooling stay on one thread (on a loaded 2-core
# machine, 2 threads were slower up to 1 M elements and 0.9× at 1.6 M: docs/performance.md).
_MIN_ELEMENTS_PER_THREAD = 1 << 19
# 2×2 max pooling and its scatter split from half that: in W2's step at 2 threads (pooling 128 × 6
# planes of 28×28, 602 K elements) the split saved 0.3-0.8 ms a step in three paired runs on a
# quiet machine (docs/performance.md, issue 11). Timed alone, one call after another, the split
# forward had looked slower: each call then also paid for waking the idle second CPU.
_MIN_POOL_ELEMENTS_PER_THREAD = 1 << 18


def _split_planes(kernel, shape, *args, per_thread=None):
    """kernel(*args, p0, p1) over the N·C planes of an (N, C, H, W) result, on kernel_threads()
    threads when there is work enough (planes are disjoint: the same bits as one thread)."""
    size = shape[0] * shape[1] * shape[2] * shape[3]
    per_thread = per_thread or _MIN_ELEMENTS_PER_THREAD
    _split(kernel, shape[0] * shape[1], *args, max_threads=max(1, size // per_thread))
from .malloc import tune_malloc  # noqa: F401 - applied by the autograd engine (see malloc.py)

# numba compiles these loops for the two float types (float16 arithmetic it does not support)
_COMPILED_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))

# the compiled modules once loaded, by submodule name (None: its import failed); not attributes
# named like the submodules, which would shadow them in `from . import _numba`
_loaded: dict = {}


def _compiled_module(a, name):
    """Compiled submodule `name` (`_numba`, `_bn`) if it should handle array `a`, else None:
    float32/float64 NumPy arrays, numba importable, NEURONA_NO_NUMBA unset. Imported on first use
    (numba is heavy to import)."""
    if (type(a) is not numpy.ndarray or a.dtype not in _COMPILED_DTYPES
            or os.environ.get("NEURONA_NO_NUMBA") == "1"):
        return None
    if name not in _loaded:
        try:
            _loaded[name] = importlib.import_module(f"{__name__}.{name}")
        except ImportError:
            _loaded[name] = None
    return _loaded[name]


def _fast(a):
    """The numba module of window kernels if it should handle array `a`, else None."""
    return _compiled_module(a, "_numba")


def index_add_rows(out, key, g) -> bool:
    """out[key] += g in place for one integer-array key on axis 0 (an embedding's backward),
    repeated rows adding up in order: the bits of `np.add.at(out, key, g)`, whose element-wise
    loop is ~10× slower. False, nothing done, when the numba kernel does not take these arrays."""
    k = _fast(out)
    idx = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if (k is None or type(g) is not numpy.ndarray or g.dtype != out.dtype or type(idx) is not numpy.ndarray
            or idx.dtype.kind not in "iu" or g.shape != idx.shape + out.shape[1:] or not out.flags.c_contiguous):
        return False
    rows = out.shape[0]
    flat = idx.reshape(-1).astype(numpy.int64, copy=False)
    if flat.size and (flat.min() < -rows or flat.max() >= rows):
        raise IndexError(f"index_add: an index is out of range for {rows} rows")
    k.add_rows(out.reshape(rows, -1), flat, numpy.ascontiguousarray(g).reshape(flat.size, -1))
    return True


def numba_active() -> bool:
    """Whether NumPy arrays go through the numba kernels in this process."""
    return _fast(numpy.empty(0)) is not None


def col2im(cols, x_shape, geo):
    """The adjoint of im2col: add every entry of cols back where it was read from."""
    k = _fast(cols)
    if k is None:
        return _xp.col2im(cols, x_shape, geo)
    dx = numpy.zeros(x_shape, dtype=cols.dtype)
    _split_planes(k.col2im, x_shape, numpy.ascontiguousarray(cols), dx, *geo)
    return dx


# Direct convolution wins only when channels are few (LeNet's 1→6 layer: no im2col matrix); with
# more channels im2col + GEMM wins. The measurements are in docs/performance.md ("where the time goes").
_DIRECT_MAX_CHANNEL_PAIRS = 8


def direct_conv_suits(x, k, geo, groups):
    """Whether conv_direct / conv_weight_direct should replace im2col + GEMM for this layer:
    stride 1, no dilation, one group, C·K ≤ 8, a float32/float64 NumPy input."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    return (groups == 1 and sh == sw == dh == dw == 1 and x.shape[1] * k <= _DIRECT_MAX_CHANNEL_PAIRS
            and _fast(x) is not None)


def conv_direct(x, w, geo):
    """conv2d(x, w) for a layer where direct_conv_suits: (N, K, OH, OW), contiguous."""
    xpad = _xp._pad(numpy.ascontiguousarray(x), geo, 0)
    return _fast(x).conv_direct(numpy.ascontiguousarray(xpad), numpy.ascontiguousarray(w), geo[8], geo[9])


def conv_weight_direct(x, gy, geo):
    """The filter gradient (K, C, kh, kw) of conv_direct for output gradient gy."""
    xpad = _xp._pad(numpy.ascontiguousarray(x), geo, 0)
    return _fast(x).conv_weight_direct(numpy.ascontiguousarray(xpad), numpy.ascontiguousarray(gy), geo[0], geo[1])


# im2col per image for stride-1 layers with few input rows (3→16 on 28×28, 5×5): cols (N, C·kh·kw,
# OH·OW), so the forward pass is a GEMM per image whose result is already NCHW, the filter
# gradient sums N products of the NCHW output gradient with the image's columns, and the input
# gradient's GEMM reads it as it lies: the transposing copies of the (C·kh·kw, N·OH·OW) layout
# go, and a numba kernel builds the columns. With more rows (16→32 3×3: 144, LeNet's 6→16 5×5:
# 150) the N filter-gradient GEMMs and their sum cost more than the copies saved, with strides
# the per-image GEMMs are short (both measured in docs/performance.md): the shared matrix stays.
MAX_IMAGE_COLS_ROWS = 80
MIN_IMAGE_COLS_PIXELS = 49


class ImageCols(numpy.ndarray):
    """The per-image columns a forward pass keeps for its filter gradient: a marked view of the
    (N, C·kh·kw, OH·OW) array (still an ndarray, so graph tracing keeps it as the op's saved
    output and a replay hands the new run's columns on; a plain object would be a stale constant)."""


def image_cols_suits(a, c, k, geo, groups):
    """Whether the per-image im2col computes a conv2d with c input channels and k filters on
    arrays like `a`: one group, stride 1, C·kh·kw ≤ MAX_IMAGE_COLS_ROWS, OH·OW ≥
    MIN_IMAGE_COLS_PIXELS, numba, NEURONA_CONV_ALGO auto (=im2col forces the shared matrix), and
    none of the 1×1, direct and Winograd paths takes it."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    if not (groups == 1 and sh == sw == 1 and c * kh * kw <= MAX_IMAGE_COLS_ROWS
            and oh * ow >= MIN_IMAGE_COLS_PIXELS and _fast(a) is not None and conv_algo_setting() == "auto"):
        return False
    if kh == kw == 1 and ph == pw == 0:
        return False
    if sh == sw == dh == dw == 1 and c * k <= _DIRECT_MAX_CHANNEL_PAIRS:
        return False
    return not winograd_suits(a, c, k, geo, groups)


def _image_cols(x, geo):
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    n, c = x.shape[:2]
    xpad = numpy.ascontiguousarray(_xp._pad(numpy.ascontiguousarray(x), geo, 0))
    cols = numpy.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    _fast(x).im2col_images(xpad, kh, kw, sh, sw, dh, dw, oh, ow, cols)
    return cols


def conv_image_cols(x, w, geo):
    """(y, ImageCols): conv2d(x, w) through the per-image im2col."""
    cols = _image_cols(x, geo)
    y = w.reshape(w.shape[0], -1) @ cols
    return y.reshape(x.shape[0], w.shape[0], geo[8], geo[9]), cols.view(ImageCols)


def conv_input_grad_image_cols(gy, w, geo, x_shape):
    """conv2d's input gradient through the per-image columns: W (K, C·kh·kw)ᵀ @ gy[n], then col2im."""
    k = w.shape[0]
    gy = numpy.ascontiguousarray(gy)
    dcols = w.reshape(k, -1).T @ gy.reshape(gy.shape[0], k, -1)
    dx = numpy.zeros(x_shape, dtype=dcols.dtype)
    _split_planes(_fast(gy).col2im_images, x_shape, dcols, dx, *geo)
    return dx


def conv_weight_grad_image_cols(x, gy, geo, saved=None):
    """conv2d's filter gradient Σ_n gy[n] (K, OH·OW) @ cols[n]ᵀ; saved is the forward's ImageCols."""
    cols = numpy.asarray(saved) if isinstance(saved, ImageCols) else _image_cols(x, geo)
    n, k = gy.shape[:2]
    dw = (numpy.ascontiguousarray(gy).reshape(n, k, -1) @ cols.transpose(0, 2, 1)).sum(axis=0)
    return dw.reshape(k, x.shape[1], geo[0], geo[1])


# Winograd F(4×4, 3×3) for 3×3 stride-1 layers with many channels (see winograd.py); the
# transformed input V (36, C, th·tw·N) stands in for im2col's matrix between forward and the
# filter gradient.
def winograd_suits(a, c, k, geo, groups):
    """Whether a conv2d with c input channels and k filters on arrays like `a` (its input or
    output gradient) goes through Winograd rather than im2col + GEMM."""
    return _winograd.suits(a.shape[0], c, k, geo, groups, _fast(a) is not None)


def winograd_conv(x, w, geo):
    """(y, V): conv2d(x, w) for a layer where winograd_suits, and its transformed input."""
    return _winograd.forward(_fast(x), x, numpy.ascontiguousarray(w), geo)


def winograd_input_grad(gy, w, geo, x_shape):
    """conv2d's input gradient (x_shape) for output gradient gy, through Winograd."""
    return _winograd.input_grad(_fast(gy), gy, numpy.ascontiguousarray(w), geo, x_shape)


winograd_sharing = _winograd.sharing_output_adjoint

# NEURONA_CONV_ALGO (auto | im2col | winograd | 1x1), checked: a bad value is refused with a message
conv_algo_setting = _winograd._algo_setting


def winograd_weight_grad(x, gy, geo, v=None):
    """conv2d's filter gradient through Winograd; v is winograd_conv's V when it was kept."""
    return _winograd.weight_grad(_fast(gy), x, gy, geo, v)


def max_pool(x, geo):
    """(out, arg): each window's maximum and its position i·kw + j in the window (first on ties,
    NaN wins); padding reads as −∞."""
    k = _fast(x)
    if k is None:
        return _xp.max_pool(x, geo)
    x = numpy.ascontiguousarray(x)
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    inside = ph == pw == 0 and (oh - 1) * sh + (kh - 1) * dh < x.shape[2] and (ow - 1) * sw + (kw - 1) * dw < x.shape[3]
    # x.max() is NaN when any element is (and 2× cheaper than isnan(x).any(): no bool temporary)
    if inside and x.size and not numpy.isnan(x.max()):
        if kh == kw == 2 and dh == dw == 1:
            n, c = x.shape[0], x.shape[1]
            out = numpy.empty((n, c, oh, ow), dtype=x.dtype)
            arg = numpy.empty((n, c, oh, ow), dtype=numpy.int32)
            _split_planes(k.max_pool_2x2, x.shape, x, sh, sw, out, arg, per_thread=_MIN_POOL_ELEMENTS_PER_THREAD)
            return out, arg
        return k.max_pool_dense(x, kh, kw, sh, sw, dh, dw, oh, ow)
    return k.max_pool(x, *geo)


def max_pool_scatter(g, arg, x_shape, geo):
    """Adjoint of picking the elements at `arg`: add each g into its window's recorded position."""
    k = _fast(g)
    if k is None:
        return _xp.max_pool_scatter(g, arg, x_shape, geo)
    dx = numpy.zeros(x_shape, dtype=g.dtype)
    _split_planes(k.max_pool_scatter, x_shape, numpy.ascontiguousarray(g), arg, dx, *geo,
                  per_thread=_MIN_POOL_ELEMENTS_PER_THREAD)
    return dx


def max_pool_select(x, arg, geo):
    """The element of x (N, C, H, W) at each window's recorded position (0 in the padding)."""
    k = _fast(x)
    if k is None:
        return _xp.max_pool_select(x, arg, geo)
    return k.max_pool_select(numpy.ascontiguousarray(x), arg, *geo)


# == whole convolutions split over the batch (ops/conv.py) =======================================
# With several kernel threads, a convolution on few channels is many short steps (a GEMM, then
# each transform, each split over the threads): every step waits for the slowest thread, and a
# BLAS thread handed a small GEMM costs more than it saves (a 16×27 @ 27×6272 GEMM took 0.11 ms
# on one thread and 24 ms, a scheduler time slice, on two beside another busy process;
# docs/performance.md). Splitting the batch instead runs the whole op once per thread, side by
# side, each with one kernel thread and one BLAS thread: one wait per op.
MIN_IMAGES_PER_THREAD = 4
# Below this many multiply-adds (N·OH·OW·K·C/G·kh·kw, the direct convolution's) an op runs
# whole on one thread even when more are set: handing out the ranges costs about 0.1 ms, more
# than a second thread saves on such layers (3→16 on 14×14, 3×3, batch 32: 2.7 M; measured in
# docs/performance.md).
MIN_SPLIT_WORK = 1 << 23


def batch_ranges(a, n, work=None):
    """The batch ranges [(b0, b1), ...] over which a conv2d op on array `a` (batch n, `work`
    multiply-adds) runs side by side, one per kernel thread with ≥ MIN_IMAGES_PER_THREAD images
    each; [(0, n)] when it should run whole on one thread (less work than MIN_SPLIT_WORK); None
    when the caller's threads apply (one kernel thread, a small batch, not a NumPy array)."""
    if kernel_threads() <= 1 or type(a) is not numpy.ndarray or _fast(a) is None:
        return None
    if work is not None and work < MIN_SPLIT_WORK:
        return [(0, n)]
    threads = min(kernel_threads(), n // MIN_IMAGES_PER_THREAD)
    if threads <= 1:
        return None
    return [(n * i // threads, n * (i + 1) // threads) for i in range(threads)]


def over_batch(ranges, task):
    """[task(i, b0, b1) for each range i], side by side, each with one kernel and one BLAS thread
    (and the caller's store of shared Winograd transforms, if it has one open)."""
    store = _winograd.sharing_store()

    def one(i, b0, b1):
        with thread_limit(1), _winograd.using_store(store):
            return task(i, b0, b1)

    with blas_threads(1):
        if len(ranges) == 1:
            return [one(0, *ranges[0])]
        return _winograd.run_side_by_side([lambda i=i, r=r: one(i, *r) for i, r in enumerate(ranges)])


def _work(n, c, k, geo):
    """Multiply-adds of a conv2d with batch n, c input channels and k filters on layout `geo`
    (ops/conv.py's Geometry)."""
    return n * geo.oh * geo.ow * k * (c // geo.groups) * geo.kh * geo.kw


# The three conv2d ops (ops/conv.py passes its functions in: this package cannot import ops/).
# The forward pass keeps each range's saved matrix (im2col's, Winograd's V, ...) with the ranges,
# as (ranges, [saved, ...]); the filter gradient uses them when its ranges are the same, and sums
# the ranges' parts in order. An op run whole on one thread keeps its matrix as it is. (Graph
# mode records only arrays as an op's saved outputs: ops/conv.py drops the (ranges, [...]) form
# while tracing, so a replay's filter gradient recomputes them instead of reading the traced run's.)

# Each range copies its result into its rows of the whole output, inside its own thread: a
# concatenation after the ranges would be one serial pass over the output (LeNet's first layer:
# 2.4 MB, about a fifth of the split op's time on two threads).

def conv_by_batch(forward, x, w, geo):
    """forward(x, w, geo) → (y, saved), per batch range when batch_ranges says so."""
    ranges = batch_ranges(x, x.shape[0], _work(x.shape[0], x.shape[1], w.shape[0], geo))
    if ranges is None:
        return forward(x, w, geo)
    if len(ranges) == 1:  # the whole op, its saved matrix as without the split (graph mode keeps it)
        return over_batch(ranges, lambda i, b0, b1: forward(x, w, geo))[0]
    y = numpy.empty((x.shape[0], w.shape[0], geo.oh, geo.ow), dtype=numpy.result_type(x, w))

    def one(i, b0, b1):
        part, saved = forward(x[b0:b1], w, geo)
        y[b0:b1] = part
        return saved

    return y, (ranges, over_batch(ranges, one))


def conv_input_grad_by_batch(input_grad, gy, w, geo, n):
    """input_grad(gy, w, geo, n), per batch range when batch_ranges says so."""
    ranges = batch_ranges(gy, n, _work(n, w.shape[1] * geo.groups, w.shape[0], geo))
    if ranges is None:
        return input_grad(gy, w, geo, n)
    if len(ranges) == 1:
        return over_batch(ranges, lambda i, b0, b1: input_grad(gy, w, geo, n))[0]
    dx = numpy.empty((n, w.shape[1] * geo.groups, geo.H, geo.W), dtype=numpy.result_type(gy, w))

    def one(i, b0, b1):
        dx[b0:b1] = input_grad(gy[b0:b1], w, geo, b1 - b0)

    over_batch(ranges, one)
    return dx


def conv_weight_grad_by_batch(weight_grad, x, gy, geo, saved):
    """weight_grad(x, gy, geo, saved), per batch range when batch_ranges says so; `saved` is what
    the forward pass kept (conv_by_batch's (ranges, list) or the whole op's matrix, or None)."""
    ranges = batch_ranges(x, x.shape[0], _work(x.shape[0], x.shape[1], gy.shape[1], geo))
    per_range = saved if isinstance(saved, tuple) else (None, None)
    if ranges is None:
        return weight_grad(x, gy, geo, None if isinstance(saved, tuple) else saved)
    if per_range[0] == ranges:
        kept = per_range[1]
    elif len(ranges) == 1 and not isinstance(saved, tuple):  # conv_by_batch's whole op kept its matrix
        kept = [saved]
    else:  # the threads changed since the forward pass
        kept = [None] * len(ranges)
    whole = len(ranges) == 1  # then gy itself: Winograd's input gradient kept its transform
    parts = over_batch(ranges, lambda i, b0, b1: weight_grad(x if whole else x[b0:b1], gy if whole else gy[b0:b1],
                                                             geo, kept[i]))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


# == GEMMs at several kernel threads (ops/linalg.py's MatMul) =====================================
# OpenBLAS's threads spin (a busy loop, no yield: measured as user CPU time) for about 0.1 s after
# each multi-threaded GEMM, and `blas_threads(1)` does not stop them. In a training step that
# mixes dense layers with neurona's split kernels (LeNet, W2), a spinning thread takes one of the
# cores the kernel pool's threads need. So with several kernel threads a GEMM of fewer than
# MIN_GEMM_THREADS_WORK multiply-adds runs on one BLAS thread (it gains little from two).
# A large one keeps the BLAS's own threads by default: their spinning makes them start each GEMM
# at once, where neurona's pool must wake a thread per hand-out. Measured on the 2-core machine
# (docs/performance.md, "One thread setting"): splitting large GEMMs over the kernel pool
# (SPLIT_LARGE_GEMMS = True: by rows of the result, or columns when they are more, each range on
# one BLAS thread writing its block in place; OpenBLAS's threads never wake) makes W3 (VGG, big
# classifier GEMMs followed by split convolutions) 0.83 → 0.64 of PyTorch's time but W1 (an MLP)
# 1.06 → 1.16–1.24 and W4's char-LSTM step 20 % slower. GEMMs from two Python threads do run side
# by side in this OpenBLAS (0.3.31, pthreads build).
MIN_GEMM_THREADS_WORK = 1 << 23  # multiply-adds; below, one BLAS thread on the calling thread
MIN_GEMM_ROWS_PER_THREAD = 16  # rows (or columns) of the result per range, at least
# A call into the second BLAS (cblas.py, through ctypes) costs ~6 µs more than NumPy's `a @ b`, so
# products under this many multiply-adds stay on NumPy's BLAS: on the Intel machine where MKL was
# measured, 32×128×128 took 10 µs with NumPy and 15 with MKL, 32×256×256 42 and 32, 16×256×1024
# 108 and 65 (one thread; docs/performance.md, "A second BLAS").
MIN_SECOND_BLAS_WORK = 1 << 21
# With MKL as the second BLAS, at several kernel threads NumPy's BLAS is held at one thread
# (cblas.chosen: its idle threads would spin and take the cores neurona's pool needs) and neurona
# runs every product of at least MIN_SECOND_BLAS_WORK multiply-adds in MKL: on the calling thread
# under MIN_GEMM_THREADS_WORK; from there split in blocks over numba's parallel runtime
# (`_gemm_par.py`: OpenMP threads start at once and spin only briefly), and from
# MIN_MKL_SPLIT_WORK over neurona's kernel pool (`_gemm_split`, an MKL call per block). On the
# 2-core Intel VM of docs/performance.md a pool thread takes 55–200 µs to wake: the pool split
# paid for W4's 2048 × 256 × 1024 products (537 M) and W3's convolutions but not for W1's 33–51
# M products (its step 4.2 ms split against 3.4 unsplit), which numba's threads take in 0.28 ms
# against 0.59 on one thread; for W4's large ones numba's threads were slower than the pool
# (W4 1.17 against 1.08 of PyTorch): "Whole sequences compiled" there.
MIN_MKL_SPLIT_WORK = 1 << 27
SPLIT_LARGE_GEMMS = False  # True: large GEMMs split over the kernel pool instead of the BLAS's threads


def _numpy_gemm(a, b, out=None):
    return a @ b if out is None else numpy.matmul(a, b, out=out)


def _gemm_one_blas_thread(a, b, out=None):
    with blas_threads(1):
        return _numpy_gemm(a, b, out)


_parallel_state: dict = {}  # pid → whether numba's parallel runtime may be used, decided on first use
_gemm_par_state: dict = {}  # pid → the _gemm_par module or None


def numba_parallel_ok() -> bool:
    """Whether neurona's kernels may enter numba's parallel runtime (`prange`) in this process:
    numba loads, NEURONA_NO_NUMBA is unset, and its threading layer is one that several Python
    threads may enter at once (OpenMP or TBB; not workqueue, which aborts on concurrent use).
    Only in the process that decided it: GNU OpenMP is not fork-safe (numba stops a forked child
    that enters it), so a child forked after a split keeps its work on one thread."""
    pid = os.getpid()
    if pid not in _parallel_state:
        ok = False
        if not _parallel_state and os.environ.get("NEURONA_NO_NUMBA") != "1":
            try:
                import numba  # noqa: PLC0415 - heavy, imported on first use

                if str(numba.config.THREADING_LAYER).lower() != "workqueue":
                    for module in ("numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool"):
                        try:
                            importlib.import_module(module)
                            ok = True
                            break
                        except ImportError:
                            continue
            except ImportError:
                pass
        _parallel_state[pid] = ok
    return _parallel_state[pid]


def numba_threads(n: int) -> int:
    """Set numba's thread count for the calling thread's next parallel call to at most n; the count."""
    import numba  # noqa: PLC0415 - loaded already when numba_parallel_ok() is True

    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def _parallel_gemm_module():
    """`_gemm_par` (a GEMM split inside numba's parallel runtime) when it loads and
    `numba_parallel_ok()`; else None."""
    pid = os.getpid()
    if pid not in _gemm_par_state:
        ok = numba_parallel_ok()
        _gemm_par_state[pid] = _compiled_module(numpy.empty(0, numpy.float32), "_gemm_par") if ok else None
    return _gemm_par_state[pid]


def _gemm_numba_threads(a, b, out=None):
    """a @ b in MKL, split by rows (or columns, when more) of the result over numba's threads."""
    m, n = a.shape[0], b.shape[1]
    if out is None:
        out = numpy.empty((m, n), dtype=a.dtype)
    parts = min(kernel_threads(), max(m, n) // MIN_GEMM_ROWS_PER_THREAD)
    if parts <= 1:
        return _cblas.chosen().gemm(a, b, out)
    return _parallel_gemm_module().gemm(a, b, out, parts)


def _gemm_split(a, b, out=None):
    """a @ b split by rows of the result (or columns, when they are more) over the kernel threads,
    each block a GEMM on one BLAS thread written in place."""
    m, n = a.shape[0], b.shape[1]
    threads = min(kernel_threads(), max(m, n) // MIN_GEMM_ROWS_PER_THREAD)
    if threads <= 1:
        return _gemm_one_blas_thread(a, b, out)
    if out is None:
        out = numpy.empty((m, n), dtype=numpy.result_type(a, b))
    by_rows = m >= n
    bounds = [(m if by_rows else n) * i // threads for i in range(threads + 1)]
    lib = _cblas.chosen()
    product = lib.gemm if lib is not None and lib.takes(a, b, out) else numpy.matmul

    def block(i0, i1):
        if by_rows:
            product(a[i0:i1], b, out=out[i0:i1])
        else:
            product(a, b[:, i0:i1], out=out[:, i0:i1])

    with blas_threads(1):
        _winograd.run_side_by_side([lambda i0=bounds[i], i1=bounds[i + 1]: block(i0, i1) for i in range(threads)])
    return out


def gemm_for(a, b, out=None):
    """The function f(a, b, out=None) that `gemm` uses for operands like these (shapes, dtypes,
    layouts) at the calling thread's kernel threads: for loops that multiply such operands many
    times, decided once instead of per call.

    A 2-D float32/float64 NumPy product of at least MIN_SECOND_BLAS_WORK multiply-adds goes
    through MKL when `cblas.chosen()` picked it (`NEURONA_BLAS`; cblas.py): on the calling thread,
    or with several kernel threads and at least MIN_MKL_SPLIT_WORK multiply-adds split over the
    kernel pool (`_gemm_split`, an MKL call per block). Every other product goes through NumPy's
    BLAS, where with several kernel threads a small 2-D one runs on one BLAS thread (OpenBLAS's
    threads do not wake and spin) and a large one on the BLAS's threads, or split by rows or
    columns of the result over the kernel threads with SPLIT_LARGE_GEMMS."""
    if type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        return _numpy_gemm
    work = a.shape[0] * a.shape[1] * b.shape[1]
    several = kernel_threads() > 1
    if work >= MIN_SECOND_BLAS_WORK:
        lib = _cblas.chosen()
        if lib is not None and lib.takes(a, b, out):
            if not several or work < MIN_GEMM_THREADS_WORK:
                return lib.gemm
            if work >= MIN_MKL_SPLIT_WORK:
                return _gemm_split
            return _gemm_numba_threads if _parallel_gemm_module() is not None else lib.gemm
    if not several:
        return _numpy_gemm
    if work < MIN_GEMM_THREADS_WORK:
        return _gemm_one_blas_thread
    return _gemm_split if SPLIT_LARGE_GEMMS else _numpy_gemm


def gemm(a, b, out=None):
    """a @ b (into `out` when given) through the BLAS and threads `gemm_for` chooses."""
    return gemm_for(a, b, out)(a, b, out)


def matmul(a, b):
    """a @ b for MatMul: `gemm` without an output buffer. A stack of matrices times one matrix,
    a (..., m, k) C-contiguous NumPy array by a 2-D b (a Dense layer on a sequence), is one 2-D
    GEMM on a's rows: the BLAS and thread rules of `gemm_for` apply to it, not NumPy's batched
    matmul (which gave W4's (32, 64, 256)·(256, 65) to OpenBLAS's spinning threads)."""
    if (type(a) is numpy.ndarray and type(b) is numpy.ndarray and a.ndim > 2 and b.ndim == 2
            and a.flags.c_contiguous and a.shape[-1] == b.shape[0]):
        return gemm(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))
    return gemm(a, b)


# NumPy's strided copy is near a plain copy (measured: 1.3× memcpy on VGG-sized inputs), so im2col
# has no compiled version; nor has average pooling, which is a mean over a strided view.
im2col = _xp.im2col
avg_pool = _xp.avg_pool
avg_pool_scatter = _xp.avg_pool_scatter


# == batch norm (ops/normalization.py) ============================================================
# x comes as a contiguous (A, C, L) view: C channels, A the axes before them, L the axes after.
# numba (`_bn.py`, imported on first use) for float32/float64 NumPy arrays; array-module code
# otherwise (CuPy, NEURONA_NO_NUMBA=1, no numba), float16 summed in float32. Per-channel arrays
# passed in have x's dtype.
from .. import array_module  # noqa: E402 - kept with the section that uses it

def _fast_bn(a):
    """The numba module of the batch-norm kernels if it should handle array `a`, else None."""
    return _compiled_module(a, "_bn")


def _bn_split(kernel, x, *args):
    """kernel(*args, c0, c1) over channel ranges of x (A, C, L), on kernel_threads() threads when
    there is work enough (the same rule as col2im and pooling); one range on one thread."""
    _split(kernel, x.shape[1], *args, max_threads=max(1, x.size // _MIN_ELEMENTS_PER_THREAD))


def _wide(x):
    """x in a dtype fit to sum in: float16 goes to float32."""
    return x.astype("float32") if x.dtype.itemsize < 4 else x


def bn_stats(x):
    """(2, C): each channel's mean and biased variance, in x's dtype. The sums are taken in
    float64 after subtracting the channel's first element, so a mean far from 0 (1e3 with
    standard deviation 1) does not cancel the variance."""
    xp = array_module(x)
    k = _fast_bn(x)
    if k is not None and x.shape[2] > 1:
        sums = xp.zeros((2, x.shape[1]))
        _bn_split(k.stats_planes, x, x, sums)
    elif k is not None:
        sums = k.stats(x)
    else:
        d = _wide(x) - _wide(x[:1, :, :1])
        sums = xp.stack([d.sum(axis=(0, 2), dtype=xp.float64), (d * d).sum(axis=(0, 2), dtype=xp.float64)])
    m = x.shape[0] * x.shape[2]
    shifted_mean = sums[0] / m
    var = xp.maximum(sums[1] / m - shifted_mean * shifted_mean, 0.0)
    return xp.stack([x[0, :, 0].astype(xp.float64) + shifted_mean, var]).astype(x.dtype)


def bn_normalize(x, mean, scale, shift):
    """(x − mean[c])·scale[c] + shift[c] for x (A, C, L)."""
    k = _fast_bn(x)
    if k is not None and x.shape[2] > 1:
        y = numpy.empty_like(x)
        _bn_split(k.normalize_planes, x, x, mean, scale, shift, y)
        return y
    if k is not None:
        return k.normalize(x, mean, scale, shift)
    return ((x - mean[:, None]) * scale[:, None] + shift[:, None]).astype(x.dtype, copy=False)


def bn_grad_sums(g, x, mean):
    """(2, C) float64: Σ g and Σ g·(x − mean[c]) per channel, for g and x (A, C, L)."""
    xp = array_module(x)
    k = _fast_bn(x)
    if k is not None and x.shape[2] > 1:
        sums = xp.zeros((2, x.shape[1]))
        _bn_split(k.grad_sums_planes, x, g, x, mean, sums)
        return sums
    if k is not None:
        return k.grad_sums(g, x, mean)
    g = _wide(g)
    return xp.stack([g.sum(axis=(0, 2), dtype=xp.float64),
                     (g * (_wide(x) - _wide(mean)[:, None])).sum(axis=(0, 2), dtype=xp.float64)])


def bn_grad_input(g, x, mean, k1, k2, k3):
    """k1[c]·g + k2[c]·(x − mean[c]) + k3[c] for g and x (A, C, L): batch norm's input gradient."""
    k = _fast_bn(x)
    if k is not None and x.shape[2] > 1:
        dx = numpy.empty_like(x)
        _bn_split(k.grad_input_planes, x, g, x, mean, k1, k2, k3, dx)
        return dx
    if k is not None:
        return k.grad_input(g, x, mean, k1, k2, k3)
    return (k1[:, None] * g + k2[:, None] * (x - mean[:, None]) + k3[:, None]).astype(x.dtype, copy=False)
