"""numba versions of the window kernels where NumPy does badly (contract in `__init__.py`):
col2im's overlapping adds, max-pooling's argmax routing, and a direct (im2col-free) stride-1
convolution for layers with very few channels. im2col itself stays in NumPy, whose
strided copy measured 3.5-5× faster than a numba loop here. Compiled per dtype on first use and
cached on disk (`cache=True`). Loops are serial; col2im, max_pool_2x2 and max_pool_scatter take
a range of (n, c) planes, so `kernels/__init__.py` can split them over threads (winograd.py's
pool) and each thread writes its own planes. Every kernel releases the GIL (`nogil=True`): conv2d's
batch ranges run the direct convolution and im2col per range side by side, and a kernel that held
the GIL would run them one after the other (tests/test_threads.py checks them all).
Padding is never materialised: out-of-range reads are the pad value, out-of-range writes are
skipped.
May import: numpy, numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _valid(o_count, start, stride, size):
    """The range [lo, hi) of outputs o with 0 <= o·stride + start < size."""
    lo = 0
    if start < 0:
        lo = (-start + stride - 1) // stride
    hi = o_count
    last = size - 1 - start  # o·stride <= last
    if last < 0:
        hi = 0
    elif last // stride + 1 < hi:
        hi = last // stride + 1
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True, nogil=True)
def col2im(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, p0, p1):
    """Add cols into the zeroed dx (N, C, H, W), planes p = n·C + c in [p0, p1) only (threads
    take disjoint plane ranges, so every sum keeps its order)."""
    n = dx.shape[0]
    _col2im(cols, n * oh * ow, oh * ow, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, p0, p1)


@njit(cache=True, nogil=True)
def col2im_images(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, p0, p1):
    """col2im for the per-image layout (N, C·kh·kw, OH·OW) of im2col_images."""
    c = dx.shape[1]
    _col2im(cols, oh * ow, c * kh * kw * oh * ow, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, p0, p1)


@njit(cache=True, nogil=True, inline="always")
def _col2im(cols, m, istride, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, p0, p1):
    """col2im's loops: row r of image ni's columns starts at r·m + ni·istride in cols' memory."""
    n, c, h, w = dx.shape
    cf = cols.ravel()
    df = dx.ravel()
    for p in range(p0, p1):
        ni, ci = p // c, p % c
        plane = (ni * c + ci) * h
        for i in range(kh):
            ylo, yhi = _valid(oh, i * dh - ph, sh, h)
            for j in range(kw):
                r = (ci * kh + i) * kw + j
                xlo, xhi = _valid(ow, j * dw - pw, sw, w)
                cnt = xhi - xlo
                for oy in range(ylo, yhi):
                    dst = (plane + oy * sh + i * dh - ph) * w + j * dw - pw + xlo * sw
                    src = r * m + ni * istride + oy * ow + xlo
                    if sw == 1:
                        # a zero-based loop over two row views is what LLVM vectorises
                        # (measured 2.7× faster on LeNet's second layer than 4-D indexing)
                        d = df[dst:dst + cnt]
                        s = cf[src:src + cnt]
                        for q in range(cnt):
                            d[q] += s[q]
                    else:
                        for q in range(cnt):
                            df[dst + q * sw] += cf[src + q]


@njit(cache=True, nogil=True)
def im2col_images(xpad, kh, kw, sh, sw, dh, dw, oh, ow, out):
    """out (N, C·kh·kw, OH·OW): each image's windows of the padded input, one row per (channel,
    tap), so a GEMM per image gives its output planes already NCHW (and the filter gradient needs
    no transposed copy of the output gradient). A stride-1 row is one contiguous copy."""
    n, c = xpad.shape[0], xpad.shape[1]
    for ni in range(n):
        for ci in range(c):
            for i in range(kh):
                for j in range(kw):
                    dst = out[ni, (ci * kh + i) * kw + j]
                    for oy in range(oh):
                        src = xpad[ni, ci, oy * sh + i * dh]
                        d = dst[oy * ow:(oy + 1) * ow]
                        if sw == 1:
                            s = src[j * dw:j * dw + ow]
                            for q in range(ow):
                                d[q] = s[q]
                        else:
                            for q in range(ow):
                                d[q] = src[q * sw + j * dw]


@njit(cache=True, nogil=True)
def conv_direct(xpad, w, oh, ow):
    """Stride-1 convolution of a padded input without im2col, for few channels (LeNet's 1→6).

    Each output plane is computed on a "wide" grid as long as the padded rows: output (y, x)
    sits at y·Wp + x, so every filter tap is one long axpy over contiguous memory, which LLVM
    vectorises; the wp − ow extra columns are dropped at the end.
    """
    n, c, hp, wp = xpad.shape
    k, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    span = (oh - 1) * wp + ow
    out = np.empty((n, k, oh, ow), dtype=xpad.dtype)
    wide = np.empty(span, dtype=xpad.dtype)
    xf = xpad.ravel()
    for ni in range(n):
        for ki in range(k):
            for q in range(span):
                wide[q] = 0
            for ci in range(c):
                base = (ni * c + ci) * hp * wp
                for i in range(kh):
                    for j in range(kw):
                        wv = w[ki, ci, i, j]
                        s = xf[base + i * wp + j:base + i * wp + j + span]
                        for q in range(span):
                            wide[q] += wv * s[q]
            for y in range(oh):
                for x in range(ow):
                    out[ni, ki, y, x] = wide[y * wp + x]
    return out


@njit(cache=True, nogil=True, fastmath=True)
def conv_weight_direct(xpad, gy, kh, kw):
    """The filter gradient of conv_direct: per tap, one long dot product of the output gradient
    (spread on the wide grid, zeros in the extra columns) with the shifted padded input.
    fastmath lets LLVM reorder the sum to vectorise it."""
    n, c, hp, wp = xpad.shape
    k, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    span = (oh - 1) * wp + ow
    dw = np.zeros((k, c, kh, kw), dtype=xpad.dtype)
    wide = np.zeros(span, dtype=xpad.dtype)
    xf = xpad.ravel()
    for ni in range(n):
        for ki in range(k):
            for y in range(oh):
                for x in range(ow):
                    wide[y * wp + x] = gy[ni, ki, y, x]
            for ci in range(c):
                base = (ni * c + ci) * hp * wp
                for i in range(kh):
                    for j in range(kw):
                        s = xf[base + i * wp + j:base + i * wp + j + span]
                        acc = 0.0
                        for q in range(span):
                            acc += wide[q] * s[q]
                        dw[ki, ci, i, j] += acc
    return dw


@njit(cache=True, nogil=True)
def max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    neg_inf = -np.inf
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    best = neg_inf
                    at = 0
                    done = False
                    for i in range(kh):
                        y = oy * sh + i * dh - ph
                        for j in range(kw):
                            xx = ox * sw + j * dw - pw
                            if 0 <= y < h and 0 <= xx < w:
                                v = x[ni, ci, y, xx]
                            else:
                                v = neg_inf
                            if v > best or v != v:
                                best = v
                                at = i * kw + j
                                if v != v:  # NaN propagates, as in NumPy's argmax
                                    done = True
                                    break
                        if done:
                            break
                    out[ni, ci, oy, ox] = best
                    arg[ni, ci, oy, ox] = at
    return out, arg


@njit(cache=True, nogil=True)
def max_pool_dense(x, kh, kw, sh, sw, dh, dw, oh, ow):
    """max_pool for windows that lie inside x and data without NaN: no bounds or NaN tests in
    the inner loop, which measured 3× faster than `max_pool` on LeNet's first pooling."""
    n, c = x.shape[0], x.shape[1]
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    y0, x0 = oy * sh, ox * sw
                    best = x[ni, ci, y0, x0]
                    at = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = x[ni, ci, y0 + i * dh, x0 + j * dw]
                            if v > best:
                                best = v
                                at = i * kw + j
                    out[ni, ci, oy, ox] = best
                    arg[ni, ci, oy, ox] = at
    return out, arg


@njit(cache=True, nogil=True)
def max_pool_2x2(x, sh, sw, out, arg, p0, p1):
    """max_pool_dense unrolled for 2×2 windows (LeNet's and VGG's pooling): 4-8× faster than
    the loop over window positions, measured on those networks' shapes. Fills out and arg
    (N, C, OH, OW), planes [p0, p1) only."""
    c, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    for p in range(p0, p1):
        ni, ci = p // c, p % c
        for oy in range(oh):
            y = oy * sh
            for ox in range(ow):
                x0 = ox * sw
                best = x[ni, ci, y, x0]
                at = 0
                v = x[ni, ci, y, x0 + 1]
                if v > best:
                    best = v
                    at = 1
                v = x[ni, ci, y + 1, x0]
                if v > best:
                    best = v
                    at = 2
                v = x[ni, ci, y + 1, x0 + 1]
                if v > best:
                    best = v
                    at = 3
                out[ni, ci, oy, ox] = best
                arg[ni, ci, oy, ox] = at
    return out, arg


@njit(cache=True, inline="always")
def _tap_offsets(kh, kw, dh, dw):
    """Row and column offset of each window position a = i·kw + j: a table lookup in the hot
    loops instead of two integer divisions by kw per element."""
    ty = np.empty(kh * kw, dtype=np.int64)
    tx = np.empty(kh * kw, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            ty[i * kw + j] = i * dh
            tx[i * kw + j] = j * dw
    return ty, tx


@njit(cache=True, nogil=True)
def max_pool_scatter(g, arg, dx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, p0, p1):
    """Add g into the zeroed dx at the recorded positions, planes [p0, p1) only."""
    c, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    ty, tx = _tap_offsets(kh, kw, dh, dw)
    for p in range(p0, p1):
        ni, ci = p // c, p % c
        for oy in range(oh):
            for ox in range(ow):
                a = arg[ni, ci, oy, ox]
                y = oy * sh + ty[a] - ph
                xx = ox * sw + tx[a] - pw
                if 0 <= y < h and 0 <= xx < w:
                    dx[ni, ci, y, xx] += g[ni, ci, oy, ox]


@njit(cache=True, nogil=True)
def max_pool_select(x, arg, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    ty, tx = _tap_offsets(kh, kw, dh, dw)
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    a = arg[ni, ci, oy, ox]
                    y = oy * sh + ty[a] - ph
                    xx = ox * sw + tx[a] - pw
                    if 0 <= y < h and 0 <= xx < w:
                        out[ni, ci, oy, ox] = x[ni, ci, y, xx]
    return out



# -- Winograd transforms (orchestrated by winograd.py) -----------------------------------------------
# F(m×m, 3×3) with α = m + 2: tile (i, j) covers padded input rows m·i .. m·i + α − 1 and columns
# m·j .. m·j + α − 1 and gives outputs m·i .. m·i + m − 1. Every array here keeps the batch
# innermost — (C, H, W, N) — so that each step is a short sum of length-N vectors, which LLVM
# vectorises; the transformed arrays are α² planes (C, P) with tile p = (i·tw + j)·N + n, s
# elements apart in one flat buffer. `bt` is Bᵀ (α × α), `at` Aᵀ (m × α).

@njit(cache=True, inline="always", fastmath=True)
def _axpy_into(dst, coef, src, first):
    n = dst.shape[0]
    if first:
        for q in range(n):
            dst[q] = coef * src[q]
    else:
        for q in range(n):
            dst[q] += coef * src[q]


# Each kernel below fills its preallocated output for channels [c0, c1) only and releases the
# GIL, so winograd.py can hand channel ranges to several threads.

@njit(cache=True, nogil=True)
def to_batch_last(x, ph, pw, out, c0, c1):
    """out[c] (hp, wp, N) = plane c of x (N, C, H, W) placed at (ph, pw), for c in [c0, c1);
    out comes zeroed."""
    n, c, h, w = x.shape
    hh = min(h, out.shape[1] - ph)
    ww = min(w, out.shape[2] - pw)
    # channel by channel, then image by image: one channel's output block (hp·wp·N) stays in
    # cache while each image's plane is read in order (images outermost cycled the whole output
    # through the cache N times: 2-3× slower, 17.6 against 5.7 ms for 64 × 64 × 32×32; reading
    # 64 images' rows side by side, 256 KB apart, was 4× slower still; docs/performance.md)
    for ci in range(c0, c1):
        for ni in range(n):
            for y in range(hh):
                dst = out[ci, y + ph]
                src = x[ni, ci, y]
                for q in range(ww):
                    dst[q + pw, ni] = src[q]


@njit(cache=True, nogil=True)
def from_batch_last(xt, r0, q0, out, c0, c1):
    """out[:, c] (N, h, w) = xt[c, r0:r0 + h, q0:q0 + w, :] transposed, for c in [c0, c1)."""
    n, _, h, w = out.shape
    for ci in range(c0, c1):
        for y in range(h):
            src = xt[ci, y + r0]
            for ni in range(n):
                dst = out[ni, ci, y]
                for q in range(w):
                    dst[q] = src[q + q0, ni]


@njit(cache=True, nogil=True, fastmath=True)
def winograd_input(xt, bt, m, th, tw, v, s, c0, c1):
    """V = Bᵀ·d·B of every α×α tile d of xt (C, Hp, Wp, N), written into flat `v`."""
    n = xt.shape[3]
    al = bt.shape[0]
    p_all = th * tw * n
    t = np.empty((al, al, n), dtype=xt.dtype)
    for ci in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                for a in range(al):            # rows: t[a, sc] = Σ_r Bᵀ[a, r]·d[r, sc]
                    for sc in range(al):
                        first = True
                        for r in range(al):
                            if bt[a, r] != 0:
                                _axpy_into(t[a, sc], bt[a, r], xt[ci, m * i + r, m * j + sc], first)
                                first = False
                base = ci * p_all + (i * tw + j) * n
                for a in range(al):            # columns: V[a, b] = Σ_sc t[a, sc]·Bᵀ[b, sc]
                    for b in range(al):
                        o = (a * al + b) * s + base
                        first = True
                        for sc in range(al):
                            if bt[b, sc] != 0:
                                _axpy_into(v[o:o + n], bt[b, sc], t[a, sc], first)
                                first = False


@njit(cache=True, nogil=True, fastmath=True)
def winograd_output(mf, s, at, th, tw, yt, c0, c1):
    """yt[k] (m·th, m·tw, N) = Aᵀ·M·A of every tile of M (α², K, P) in flat `mf`, k in [c0, c1)."""
    mm, al = at.shape
    n = yt.shape[3]
    p_all = th * tw * n
    u = np.empty((al, mm, n), dtype=mf.dtype)
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ki * p_all + (i * tw + j) * n
                for a in range(al):            # u[a, dj] = Σ_b M[a, b]·A[b, dj]
                    for dj in range(mm):
                        first = True
                        for b in range(al):
                            if at[dj, b] != 0:
                                o = (a * al + b) * s + base
                                _axpy_into(u[a, dj], at[dj, b], mf[o:o + n], first)
                                first = False
                for di in range(mm):           # Y[di, dj] = Σ_a Aᵀ[di, a]·u[a, dj]
                    for dj in range(mm):
                        first = True
                        for a in range(al):
                            if at[di, a] != 0:
                                _axpy_into(yt[ki, mm * i + di, mm * j + dj], at[di, a], u[a, dj], first)
                                first = False


@njit(cache=True, nogil=True, fastmath=True)
def winograd_output_adjoint(gt, at, th, tw, dm, s, c0, c1):
    """dM = A·g·Aᵀ of every m×m tile g of gt (K, m·th, m·tw, N), written into flat `dm`: the
    adjoint of winograd_output."""
    n = gt.shape[3]
    mm, al = at.shape
    p_all = th * tw * n
    r = np.empty((al, mm, n), dtype=gt.dtype)
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                for a in range(al):            # r[a, dj] = Σ_di A[a, di]·g[di, dj]
                    for dj in range(mm):
                        first = True
                        for di in range(mm):
                            if at[di, a] != 0:
                                _axpy_into(r[a, dj], at[di, a], gt[ki, mm * i + di, mm * j + dj], first)
                                first = False
                base = ki * p_all + (i * tw + j) * n
                for a in range(al):            # dM[a, b] = Σ_dj r[a, dj]·Aᵀ[dj, b]
                    for b in range(al):
                        o = (a * al + b) * s + base
                        first = True
                        for dj in range(mm):
                            if at[dj, b] != 0:
                                _axpy_into(dm[o:o + n], at[dj, b], r[a, dj], first)
                                first = False
                        if first:
                            for q in range(n):
                                dm[o + q] = 0


@njit(cache=True, nogil=True, fastmath=True)
def winograd_input_adjoint(dvf, s, bt, m, th, tw, dxt, c0, c1):
    """dxt[c] (hp, wp, N) += B·dV·Bᵀ of every tile of dV (α², C, P) in flat `dvf`, added back where
    winograd_input read it (neighbouring tiles overlap by two rows and columns); dxt comes zeroed."""
    al = bt.shape[0]
    n = dxt.shape[3]
    p_all = th * tw * n
    e = np.empty((al, al, n), dtype=dvf.dtype)
    for ci in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ci * p_all + (i * tw + j) * n
                for a in range(al):            # e[a, sc] = Σ_b dV[a, b]·Bᵀ[b, sc]
                    for sc in range(al):
                        first = True
                        for b in range(al):
                            if bt[b, sc] != 0:
                                o = (a * al + b) * s + base
                                _axpy_into(e[a, sc], bt[b, sc], dvf[o:o + n], first)
                                first = False
                        if first:
                            e[a, sc, :] = 0
                for r in range(al):            # d[r, sc] += Σ_a Bᵀ[a, r]·e[a, sc]
                    for sc in range(al):
                        acc = dxt[ci, m * i + r, m * j + sc]
                        for a in range(al):
                            if bt[a, r] != 0:
                                _axpy_into(acc, bt[a, r], e[a, sc], False)


# -- F(4×4, 3×3) with the transform matrices written out ------------------------------------------
# The same contracts as the generic kernels above for m = 4, but every 1-D transform is one loop
# over the batch with its six (or four) inputs and outputs named: measured 3.5× faster than the
# generic coefficient loops on VGG's 64×32×32 layer (LLVM vectorises a loop with six load and six
# store streams; the generic version pays for a loop per coefficient).

@njit(cache=True, inline="always", fastmath=True)
def _bt6(o0, o1, o2, o3, o4, o5, d0, d1, d2, d3, d4, d5):
    """o = Bᵀ·d for F(4×4, 3×3), lane by lane."""
    for q in range(o0.shape[0]):
        a0 = d0[q]
        a1 = d1[q]
        a2 = d2[q]
        a3 = d3[q]
        a4 = d4[q]
        o0[q] = 4 * a0 - 5 * a2 + a4
        o1[q] = -4 * a1 - 4 * a2 + a3 + a4
        o2[q] = 4 * a1 - 4 * a2 - a3 + a4
        o3[q] = -2 * a1 - a2 + 2 * a3 + a4
        o4[q] = 2 * a1 - a2 - 2 * a3 + a4
        o5[q] = 4 * a1 - 5 * a3 + d5[q]


@njit(cache=True, inline="always", fastmath=True)
def _b6(o0, o1, o2, o3, o4, o5, e0, e1, e2, e3, e4, e5, add):
    """o = B·e (the adjoint of _bt6), or o += B·e when `add`, lane by lane."""
    for q in range(o0.shape[0]):
        a0 = e0[q]
        a1 = e1[q]
        a2 = e2[q]
        a3 = e3[q]
        a4 = e4[q]
        a5 = e5[q]
        r0 = 4 * a0
        r1 = -4 * a1 + 4 * a2 - 2 * a3 + 2 * a4 + 4 * a5
        r2 = -5 * a0 - 4 * a1 - 4 * a2 - a3 - a4
        r3 = a1 - a2 + 2 * a3 - 2 * a4 - 5 * a5
        r4 = a0 + a1 + a2 + a3 + a4
        if add:
            o0[q] += r0
            o1[q] += r1
            o2[q] += r2
            o3[q] += r3
            o4[q] += r4
            o5[q] += a5
        else:
            o0[q] = r0
            o1[q] = r1
            o2[q] = r2
            o3[q] = r3
            o4[q] = r4
            o5[q] = a5


@njit(cache=True, inline="always", fastmath=True)
def _at4(o0, o1, o2, o3, m0, m1, m2, m3, m4, m5):
    """o = Aᵀ·m for F(4×4, 3×3) (six values to four), lane by lane."""
    for q in range(o0.shape[0]):
        a1 = m1[q]
        a2 = m2[q]
        a3 = m3[q]
        a4 = m4[q]
        s12 = a1 + a2
        d12 = a1 - a2
        s34 = a3 + a4
        d34 = a3 - a4
        o0[q] = m0[q] + s12 + s34
        o1[q] = d12 + 2 * d34
        o2[q] = s12 + 4 * s34
        o3[q] = d12 + 8 * d34 + m5[q]


@njit(cache=True, inline="always", fastmath=True)
def _a6(o0, o1, o2, o3, o4, o5, g0, g1, g2, g3):
    """o = A·g (four values to six, the adjoint of _at4), lane by lane."""
    for q in range(o0.shape[0]):
        a0 = g0[q]
        a1 = g1[q]
        a2 = g2[q]
        a3 = g3[q]
        s02 = a0 + a2
        s13 = a1 + a3
        o0[q] = a0
        o1[q] = s02 + s13
        o2[q] = s02 - s13
        o3[q] = a0 + 2 * a1 + 4 * a2 + 8 * a3
        o4[q] = a0 - 2 * a1 + 4 * a2 - 8 * a3
        o5[q] = a3


@njit(cache=True, nogil=True, fastmath=True)
def winograd43_input(xt, th, tw, v, s, c0, c1):
    """winograd_input for m = 4."""
    winograd6_input(xt, 4, th, tw, v, s, c0, c1)


@njit(cache=True, nogil=True, fastmath=True)
def winograd6_input(xt, step, th, tw, v, s, c0, c1):
    """winograd_input for the 6×6 tiles of points 0, ±1, ±2, ∞ (Bᵀ is the same for F(4×4, 3×3)
    and F(2×2, 5×5)), tiles `step` (= m) apart."""
    n = xt.shape[3]
    p_all = th * tw * n
    t = np.empty((6, 6, n), dtype=xt.dtype)   # t[a, sc]
    for ci in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                y0 = step * i
                x0 = step * j
                for sc in range(6):
                    _bt6(t[0, sc], t[1, sc], t[2, sc], t[3, sc], t[4, sc], t[5, sc],
                         xt[ci, y0, x0 + sc], xt[ci, y0 + 1, x0 + sc], xt[ci, y0 + 2, x0 + sc],
                         xt[ci, y0 + 3, x0 + sc], xt[ci, y0 + 4, x0 + sc], xt[ci, y0 + 5, x0 + sc])
                base = ci * p_all + (i * tw + j) * n
                for a in range(6):
                    o = 6 * a * s + base
                    _bt6(v[o:o + n], v[o + s:o + s + n], v[o + 2 * s:o + 2 * s + n],
                         v[o + 3 * s:o + 3 * s + n], v[o + 4 * s:o + 4 * s + n], v[o + 5 * s:o + 5 * s + n],
                         t[a, 0], t[a, 1], t[a, 2], t[a, 3], t[a, 4], t[a, 5])


@njit(cache=True, nogil=True, fastmath=True)
def winograd43_output(mf, s, th, tw, yt, c0, c1):
    """winograd_output for m = 4."""
    n = yt.shape[3]
    p_all = th * tw * n
    u = np.empty((6, 4, n), dtype=mf.dtype)   # u[a, dj]
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ki * p_all + (i * tw + j) * n
                for a in range(6):
                    o = 6 * a * s + base
                    _at4(u[a, 0], u[a, 1], u[a, 2], u[a, 3],
                         mf[o:o + n], mf[o + s:o + s + n], mf[o + 2 * s:o + 2 * s + n],
                         mf[o + 3 * s:o + 3 * s + n], mf[o + 4 * s:o + 4 * s + n], mf[o + 5 * s:o + 5 * s + n])
                y0 = 4 * i
                x0 = 4 * j
                for dj in range(4):
                    _at4(yt[ki, y0, x0 + dj], yt[ki, y0 + 1, x0 + dj], yt[ki, y0 + 2, x0 + dj],
                         yt[ki, y0 + 3, x0 + dj],
                         u[0, dj], u[1, dj], u[2, dj], u[3, dj], u[4, dj], u[5, dj])


@njit(cache=True, nogil=True, fastmath=True)
def winograd43_output_adjoint(gt, th, tw, dm, s, c0, c1):
    """winograd_output_adjoint for m = 4."""
    n = gt.shape[3]
    p_all = th * tw * n
    r = np.empty((6, 4, n), dtype=gt.dtype)   # r[a, dj]
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                y0 = 4 * i
                x0 = 4 * j
                for dj in range(4):
                    _a6(r[0, dj], r[1, dj], r[2, dj], r[3, dj], r[4, dj], r[5, dj],
                        gt[ki, y0, x0 + dj], gt[ki, y0 + 1, x0 + dj], gt[ki, y0 + 2, x0 + dj],
                        gt[ki, y0 + 3, x0 + dj])
                base = ki * p_all + (i * tw + j) * n
                for a in range(6):
                    o = 6 * a * s + base
                    _a6(dm[o:o + n], dm[o + s:o + s + n], dm[o + 2 * s:o + 2 * s + n],
                        dm[o + 3 * s:o + 3 * s + n], dm[o + 4 * s:o + 4 * s + n], dm[o + 5 * s:o + 5 * s + n],
                        r[a, 0], r[a, 1], r[a, 2], r[a, 3])


@njit(cache=True, nogil=True, fastmath=True)
def winograd43_input_adjoint(dvf, s, th, tw, dxt, c0, c1):
    """winograd_input_adjoint for m = 4 (dxt comes zeroed)."""
    winograd6_input_adjoint(dvf, s, 4, th, tw, dxt, c0, c1)


@njit(cache=True, nogil=True, fastmath=True)
def winograd6_input_adjoint(dvf, s, step, th, tw, dxt, c0, c1):
    """The adjoint of winograd6_input (dxt comes zeroed; overlapping tiles add)."""
    n = dxt.shape[3]
    p_all = th * tw * n
    e = np.empty((6, 6, n), dtype=dvf.dtype)   # e[a, sc]
    for ci in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ci * p_all + (i * tw + j) * n
                for a in range(6):
                    o = 6 * a * s + base
                    _b6(e[a, 0], e[a, 1], e[a, 2], e[a, 3], e[a, 4], e[a, 5],
                        dvf[o:o + n], dvf[o + s:o + s + n], dvf[o + 2 * s:o + 2 * s + n],
                        dvf[o + 3 * s:o + 3 * s + n], dvf[o + 4 * s:o + 4 * s + n], dvf[o + 5 * s:o + 5 * s + n],
                        False)
                y0 = step * i
                x0 = step * j
                for sc in range(6):
                    _b6(dxt[ci, y0, x0 + sc], dxt[ci, y0 + 1, x0 + sc], dxt[ci, y0 + 2, x0 + sc],
                        dxt[ci, y0 + 3, x0 + sc], dxt[ci, y0 + 4, x0 + sc], dxt[ci, y0 + 5, x0 + sc],
                        e[0, sc], e[1, sc], e[2, sc], e[3, sc], e[4, sc], e[5, sc], True)


# -- F(2×2, 5×5): the output transforms written out (Aᵀ is 2×6); the input side is winograd6_* ----

@njit(cache=True, inline="always", fastmath=True)
def _at2(o0, o1, m0, m1, m2, m3, m4, m5):
    """o = Aᵀ·m for F(2×2, 5×5) (six values to two), lane by lane."""
    for q in range(o0.shape[0]):
        a1 = m1[q]
        a2 = m2[q]
        a3 = m3[q]
        a4 = m4[q]
        o0[q] = m0[q] + a1 + a2 + a3 + a4
        o1[q] = a1 - a2 + 2 * (a3 - a4) + m5[q]


@njit(cache=True, inline="always", fastmath=True)
def _a2(o0, o1, o2, o3, o4, o5, g0, g1):
    """o = A·g (two values to six, the adjoint of _at2), lane by lane."""
    for q in range(o0.shape[0]):
        a0 = g0[q]
        a1 = g1[q]
        o0[q] = a0
        o1[q] = a0 + a1
        o2[q] = a0 - a1
        o3[q] = a0 + 2 * a1
        o4[q] = a0 - 2 * a1
        o5[q] = a1


@njit(cache=True, nogil=True, fastmath=True)
def winograd25_output(mf, s, th, tw, yt, c0, c1):
    """winograd_output for F(2×2, 5×5)."""
    n = yt.shape[3]
    p_all = th * tw * n
    u = np.empty((6, 2, n), dtype=mf.dtype)   # u[a, dj]
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ki * p_all + (i * tw + j) * n
                for a in range(6):
                    o = 6 * a * s + base
                    _at2(u[a, 0], u[a, 1],
                         mf[o:o + n], mf[o + s:o + s + n], mf[o + 2 * s:o + 2 * s + n],
                         mf[o + 3 * s:o + 3 * s + n], mf[o + 4 * s:o + 4 * s + n], mf[o + 5 * s:o + 5 * s + n])
                y0 = 2 * i
                x0 = 2 * j
                for dj in range(2):
                    _at2(yt[ki, y0, x0 + dj], yt[ki, y0 + 1, x0 + dj],
                         u[0, dj], u[1, dj], u[2, dj], u[3, dj], u[4, dj], u[5, dj])


@njit(cache=True, nogil=True, fastmath=True)
def winograd25_output_adjoint(gt, th, tw, dm, s, c0, c1):
    """winograd_output_adjoint for F(2×2, 5×5)."""
    n = gt.shape[3]
    p_all = th * tw * n
    r = np.empty((6, 2, n), dtype=gt.dtype)   # r[a, dj]
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                y0 = 2 * i
                x0 = 2 * j
                for dj in range(2):
                    _a2(r[0, dj], r[1, dj], r[2, dj], r[3, dj], r[4, dj], r[5, dj],
                        gt[ki, y0, x0 + dj], gt[ki, y0 + 1, x0 + dj])
                base = ki * p_all + (i * tw + j) * n
                for a in range(6):
                    o = 6 * a * s + base
                    _a2(dm[o:o + n], dm[o + s:o + s + n], dm[o + 2 * s:o + 2 * s + n],
                        dm[o + 3 * s:o + 3 * s + n], dm[o + 4 * s:o + 4 * s + n], dm[o + 5 * s:o + 5 * s + n],
                        r[a, 0], r[a, 1])


@njit(cache=True, nogil=True)
def add_rows(out, idx, g):
    """out[idx[k]] += g[k] for k in order (np.add.at's order and bits); negative ids count from
    the end (checked in range by the caller)."""
    rows, width = out.shape
    for k in range(idx.shape[0]):
        r = idx[k]
        if r < 0:
            r += rows
        for j in range(width):
            out[r, j] += g[k, j]


# -- F(4×4, 5×5): 8×8 tiles (points 0, ±1, ±2, ±½, ∞), every transform written out -------------
# The generic coefficient loops took two thirds of a 16→32 layer's time on 28×28 maps
# (docs/performance.md, "The convolution sweep"); pairing the rows that differ in the sign of
# the odd powers (points ±p) halves the multiplications, as in _at4.

@njit(cache=True, inline="always", fastmath=True)
def _bt8(o0, o1, o2, o3, o4, o5, o6, o7, d0, d1, d2, d3, d4, d5, d6, d7):
    """o = Bᵀ·d for F(4×4, 5×5), lane by lane."""
    for q in range(o0.shape[0]):
        a1 = d1[q]
        a2 = d2[q]
        a3 = d3[q]
        a4 = d4[q]
        a5 = d5[q]
        a6 = d6[q]
        o0[q] = 5.25 * (a2 - a4) + a6 - d0[q]
        e = a2 - 4.25 * a4 + a6
        f = a1 - 4.25 * a3 + a5
        o1[q] = e + f
        o2[q] = e - f
        e = 0.25 * a2 - 1.25 * a4 + a6
        f = 0.5 * a1 - 2.5 * a3 + 2 * a5
        o3[q] = e + f
        o4[q] = e - f
        e = 4 * a2 - 5 * a4 + a6
        f = 2 * a1 - 2.5 * a3 + 0.5 * a5
        o5[q] = e + f
        o6[q] = e - f
        o7[q] = 5.25 * (a3 - a5) + d7[q] - a1


@njit(cache=True, inline="always", fastmath=True)
def _b8(o0, o1, o2, o3, o4, o5, o6, o7, e0, e1, e2, e3, e4, e5, e6, e7, add):
    """o = B·e (the adjoint of _bt8), or o += B·e when `add`, lane by lane."""
    for q in range(o0.shape[0]):
        a0 = e0[q]
        a7 = e7[q]
        s12 = e1[q] + e2[q]
        d12 = e1[q] - e2[q]
        s34 = e3[q] + e4[q]
        d34 = e3[q] - e4[q]
        s56 = e5[q] + e6[q]
        d56 = e5[q] - e6[q]
        r0 = -a0
        r1 = d12 + 0.5 * d34 + 2 * d56 - a7
        r2 = 5.25 * a0 + s12 + 0.25 * s34 + 4 * s56
        r3 = -4.25 * d12 - 2.5 * (d34 + d56) + 5.25 * a7
        r4 = -5.25 * a0 - 4.25 * s12 - 1.25 * s34 - 5 * s56
        r5 = d12 + 2 * d34 + 0.5 * d56 - 5.25 * a7
        r6 = a0 + s12 + s34 + s56
        if add:
            o0[q] += r0
            o1[q] += r1
            o2[q] += r2
            o3[q] += r3
            o4[q] += r4
            o5[q] += r5
            o6[q] += r6
            o7[q] += a7
        else:
            o0[q] = r0
            o1[q] = r1
            o2[q] = r2
            o3[q] = r3
            o4[q] = r4
            o5[q] = r5
            o6[q] = r6
            o7[q] = a7


@njit(cache=True, inline="always", fastmath=True)
def _at8(o0, o1, o2, o3, m0, m1, m2, m3, m4, m5, m6, m7):
    """o = Aᵀ·m for F(4×4, 5×5) (eight values to four), lane by lane."""
    for q in range(o0.shape[0]):
        s12 = m1[q] + m2[q]
        d12 = m1[q] - m2[q]
        s34 = m3[q] + m4[q]
        d34 = m3[q] - m4[q]
        s56 = m5[q] + m6[q]
        d56 = m5[q] - m6[q]
        o0[q] = m0[q] + s12 + s34 + s56
        o1[q] = d12 + 2 * d34 + 0.5 * d56
        o2[q] = s12 + 4 * s34 + 0.25 * s56
        o3[q] = d12 + 8 * d34 + 0.125 * d56 + m7[q]


@njit(cache=True, inline="always", fastmath=True)
def _a8(o0, o1, o2, o3, o4, o5, o6, o7, g0, g1, g2, g3):
    """o = A·g (four values to eight, the adjoint of _at8), lane by lane."""
    for q in range(o0.shape[0]):
        a0 = g0[q]
        a1 = g1[q]
        a2 = g2[q]
        a3 = g3[q]
        e = a0 + a2
        f = a1 + a3
        o0[q] = a0
        o1[q] = e + f
        o2[q] = e - f
        e = a0 + 4 * a2
        f = 2 * a1 + 8 * a3
        o3[q] = e + f
        o4[q] = e - f
        e = a0 + 0.25 * a2
        f = 0.5 * a1 + 0.125 * a3
        o5[q] = e + f
        o6[q] = e - f
        o7[q] = a3


@njit(cache=True, nogil=True, fastmath=True)
def winograd8_input(xt, th, tw, v, s, c0, c1):
    """winograd_input for F(4×4, 5×5) (8×8 tiles 4 apart)."""
    n = xt.shape[3]
    p_all = th * tw * n
    t = np.empty((8, 8, n), dtype=xt.dtype)   # t[a, sc]
    for ci in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                y0 = 4 * i
                x0 = 4 * j
                for sc in range(8):
                    _bt8(t[0, sc], t[1, sc], t[2, sc], t[3, sc], t[4, sc], t[5, sc], t[6, sc], t[7, sc],
                         xt[ci, y0, x0 + sc], xt[ci, y0 + 1, x0 + sc], xt[ci, y0 + 2, x0 + sc],
                         xt[ci, y0 + 3, x0 + sc], xt[ci, y0 + 4, x0 + sc], xt[ci, y0 + 5, x0 + sc],
                         xt[ci, y0 + 6, x0 + sc], xt[ci, y0 + 7, x0 + sc])
                base = ci * p_all + (i * tw + j) * n
                for a in range(8):
                    o = 8 * a * s + base
                    _bt8(v[o:o + n], v[o + s:o + s + n], v[o + 2 * s:o + 2 * s + n], v[o + 3 * s:o + 3 * s + n],
                         v[o + 4 * s:o + 4 * s + n], v[o + 5 * s:o + 5 * s + n], v[o + 6 * s:o + 6 * s + n],
                         v[o + 7 * s:o + 7 * s + n],
                         t[a, 0], t[a, 1], t[a, 2], t[a, 3], t[a, 4], t[a, 5], t[a, 6], t[a, 7])


@njit(cache=True, nogil=True, fastmath=True)
def winograd8_input_adjoint(dvf, s, th, tw, dxt, c0, c1):
    """The adjoint of winograd8_input (dxt comes zeroed; overlapping tiles add)."""
    n = dxt.shape[3]
    p_all = th * tw * n
    e = np.empty((8, 8, n), dtype=dvf.dtype)   # e[a, sc]
    for ci in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ci * p_all + (i * tw + j) * n
                for a in range(8):
                    o = 8 * a * s + base
                    _b8(e[a, 0], e[a, 1], e[a, 2], e[a, 3], e[a, 4], e[a, 5], e[a, 6], e[a, 7],
                        dvf[o:o + n], dvf[o + s:o + s + n], dvf[o + 2 * s:o + 2 * s + n],
                        dvf[o + 3 * s:o + 3 * s + n], dvf[o + 4 * s:o + 4 * s + n], dvf[o + 5 * s:o + 5 * s + n],
                        dvf[o + 6 * s:o + 6 * s + n], dvf[o + 7 * s:o + 7 * s + n], False)
                y0 = 4 * i
                x0 = 4 * j
                for sc in range(8):
                    _b8(dxt[ci, y0, x0 + sc], dxt[ci, y0 + 1, x0 + sc], dxt[ci, y0 + 2, x0 + sc],
                        dxt[ci, y0 + 3, x0 + sc], dxt[ci, y0 + 4, x0 + sc], dxt[ci, y0 + 5, x0 + sc],
                        dxt[ci, y0 + 6, x0 + sc], dxt[ci, y0 + 7, x0 + sc],
                        e[0, sc], e[1, sc], e[2, sc], e[3, sc], e[4, sc], e[5, sc], e[6, sc], e[7, sc], True)


@njit(cache=True, nogil=True, fastmath=True)
def winograd45_output(mf, s, th, tw, yt, c0, c1):
    """winograd_output for F(4×4, 5×5)."""
    n = yt.shape[3]
    p_all = th * tw * n
    u = np.empty((8, 4, n), dtype=mf.dtype)   # u[a, dj]
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                base = ki * p_all + (i * tw + j) * n
                for a in range(8):
                    o = 8 * a * s + base
                    _at8(u[a, 0], u[a, 1], u[a, 2], u[a, 3],
                         mf[o:o + n], mf[o + s:o + s + n], mf[o + 2 * s:o + 2 * s + n], mf[o + 3 * s:o + 3 * s + n],
                         mf[o + 4 * s:o + 4 * s + n], mf[o + 5 * s:o + 5 * s + n], mf[o + 6 * s:o + 6 * s + n],
                         mf[o + 7 * s:o + 7 * s + n])
                y0 = 4 * i
                x0 = 4 * j
                for dj in range(4):
                    _at8(yt[ki, y0, x0 + dj], yt[ki, y0 + 1, x0 + dj], yt[ki, y0 + 2, x0 + dj],
                         yt[ki, y0 + 3, x0 + dj],
                         u[0, dj], u[1, dj], u[2, dj], u[3, dj], u[4, dj], u[5, dj], u[6, dj], u[7, dj])


@njit(cache=True, nogil=True, fastmath=True)
def winograd45_output_adjoint(gt, th, tw, dm, s, c0, c1):
    """winograd_output_adjoint for F(4×4, 5×5)."""
    n = gt.shape[3]
    p_all = th * tw * n
    r = np.empty((8, 4, n), dtype=gt.dtype)   # r[a, dj]
    for ki in range(c0, c1):
        for i in range(th):
            for j in range(tw):
                y0 = 4 * i
                x0 = 4 * j
                for dj in range(4):
                    _a8(r[0, dj], r[1, dj], r[2, dj], r[3, dj], r[4, dj], r[5, dj], r[6, dj], r[7, dj],
                        gt[ki, y0, x0 + dj], gt[ki, y0 + 1, x0 + dj], gt[ki, y0 + 2, x0 + dj],
                        gt[ki, y0 + 3, x0 + dj])
                base = ki * p_all + (i * tw + j) * n
                for a in range(8):
                    o = 8 * a * s + base
                    _a8(dm[o:o + n], dm[o + s:o + s + n], dm[o + 2 * s:o + 2 * s + n], dm[o + 3 * s:o + 3 * s + n],
                        dm[o + 4 * s:o + 4 * s + n], dm[o + 5 * s:o + 5 * s + n], dm[o + 6 * s:o + 6 * s + n],
                        dm[o + 7 * s:o + 7 * s + n], r[a, 0], r[a, 1], r[a, 2], r[a, 3])
