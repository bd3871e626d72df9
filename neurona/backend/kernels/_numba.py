"""numba versions of the window kernels where NumPy does badly (contract in `__init__.py`):
col2im's overlapping adds, max-pooling's argmax routing, and a direct (im2col-free) stride-1
convolution for layers with very few channels. im2col itself stays in NumPy, whose
strided copy measured 3.5-5× faster than a numba loop here. Compiled per dtype on first use and
cached on disk (`cache=True`). Loops are serial: the GEMM that follows im2col is
where threads pay, and serial kernels stay safe to call from several Python threads at once.
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


@njit(cache=True)
def col2im(cols, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    dx = np.zeros((n, c, h, w), dtype=cols.dtype)
    m = n * oh * ow
    cf = cols.ravel()
    df = dx.ravel()
    for ni in range(n):
        for ci in range(c):
            plane = (ni * c + ci) * h
            for i in range(kh):
                ylo, yhi = _valid(oh, i * dh - ph, sh, h)
                for j in range(kw):
                    r = (ci * kh + i) * kw + j
                    xlo, xhi = _valid(ow, j * dw - pw, sw, w)
                    cnt = xhi - xlo
                    for oy in range(ylo, yhi):
                        dst = (plane + oy * sh + i * dh - ph) * w + j * dw - pw + xlo * sw
                        src = r * m + (ni * oh + oy) * ow + xlo
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
    return dx


@njit(cache=True)
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


@njit(cache=True, fastmath=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def max_pool_2x2(x, sh, sw, oh, ow):
    """max_pool_dense unrolled for 2×2 windows (LeNet's and VGG's pooling): 4-8× faster than
    the loop over window positions, measured on those networks' shapes."""
    n, c = x.shape[0], x.shape[1]
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    for ni in range(n):
        for ci in range(c):
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


@njit(cache=True)
def max_pool_scatter(g, arg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    n, c = g.shape[0], g.shape[1]
    dx = np.zeros((n, c, h, w), dtype=g.dtype)
    ty, tx = _tap_offsets(kh, kw, dh, dw)
    for ni in range(n):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    a = arg[ni, ci, oy, ox]
                    y = oy * sh + ty[a] - ph
                    xx = ox * sw + tx[a] - pw
                    if 0 <= y < h and 0 <= xx < w:
                        dx[ni, ci, y, xx] += g[ni, ci, oy, ox]
    return dx


@njit(cache=True)
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


# -- Winograd F(2×2, 3×3) transforms (orchestrated by winograd.py) ---------------------------------
# The transformed arrays are 16 planes (one per position of a 4×4 tile) of (C, N·th·tw) values,
# stored s elements apart in one flat buffer so that the planes do not map to the same cache sets;
# tile p = (n·th + i)·tw + j covers padded input rows 2i..2i+3 and columns 2j..2j+3.

@njit(cache=True)
def winograd_input(x, ph, pw, th, tw, v, s):
    """V = Bᵀ·d·B of every 4×4 tile d (stride 2) of x padded by (ph, pw), written into flat `v`."""
    n, c, h, w = x.shape
    hp, wp = 2 * th + 2, 2 * tw + 2
    p_all = n * th * tw
    buf = np.zeros(hp * wp, dtype=x.dtype)
    t = np.empty(4 * wp, dtype=x.dtype)
    hh = min(h, hp - ph)
    ww = min(w, wp - pw)
    xf = x.ravel()
    for ni in range(n):
        for ci in range(c):
            xo = (ni * c + ci) * h * w
            for y in range(hh):
                for q in range(ww):
                    buf[(y + ph) * wp + q + pw] = xf[xo + y * w + q]
            for i in range(th):
                r = 2 * i * wp
                for q in range(wp):
                    d0 = buf[r + q]
                    d1 = buf[r + wp + q]
                    d2 = buf[r + 2 * wp + q]
                    d3 = buf[r + 3 * wp + q]
                    t[q] = d0 - d2
                    t[wp + q] = d1 + d2
                    t[2 * wp + q] = d2 - d1
                    t[3 * wp + q] = d1 - d3
                base = ci * p_all + (ni * th + i) * tw
                for a in range(4):
                    ta = a * wp
                    o = 4 * a * s + base
                    for j in range(tw):
                        d0 = t[ta + 2 * j]
                        d1 = t[ta + 2 * j + 1]
                        d2 = t[ta + 2 * j + 2]
                        d3 = t[ta + 2 * j + 3]
                        v[o + j] = d0 - d2
                        v[o + s + j] = d1 + d2
                        v[o + 2 * s + j] = d2 - d1
                        v[o + 3 * s + j] = d1 - d3


@njit(cache=True)
def winograd_output(m, s, k, n, th, tw, oh, ow):
    """y (N, K, oh, ow) = Aᵀ·M·A of every tile of M (16, K, N·th·tw), planes s apart in `m`."""
    y = np.empty((n, k, oh, ow), dtype=m.dtype)
    tt = th * tw
    p_all = n * tt
    u = np.empty((8, tt), dtype=m.dtype)  # u[2b + di]: column b of the tiles' row combination di
    full = ow // 2
    for ni in range(n):
        for ki in range(k):
            base = ki * p_all + ni * tt
            for b in range(4):
                o = b * s + base
                m0 = m[o:o + tt]
                m1 = m[o + 4 * s:o + 4 * s + tt]
                m2 = m[o + 8 * s:o + 8 * s + tt]
                m3 = m[o + 12 * s:o + 12 * s + tt]
                u0 = u[2 * b]
                u1 = u[2 * b + 1]
                for q in range(tt):
                    u0[q] = m0[q] + m1[q] + m2[q]
                for q in range(tt):
                    u1[q] = m1[q] - m2[q] - m3[q]
            plane = y[ni, ki]
            for i in range(th):
                for di in range(2):
                    yy = 2 * i + di
                    if yy >= oh:
                        break
                    row = plane[yy]
                    a0 = u[di, i * tw:(i + 1) * tw]
                    a1 = u[2 + di, i * tw:(i + 1) * tw]
                    a2 = u[4 + di, i * tw:(i + 1) * tw]
                    a3 = u[6 + di, i * tw:(i + 1) * tw]
                    for j in range(full):
                        row[2 * j] = a0[j] + a1[j] + a2[j]
                        row[2 * j + 1] = a1[j] - a2[j] - a3[j]
                    if full < tw:
                        row[2 * full] = a0[full] + a1[full] + a2[full]
    return y


@njit(cache=True)
def winograd_output_adjoint(gy, th, tw, dm, s):
    """dM = A·g·Aᵀ of every 2×2 tile g of gy (zero past its edge), written into flat `dm`: the
    adjoint of winograd_output."""
    n, k, oh, ow = gy.shape
    p_all = n * th * tw
    tt = th * tw
    gf = gy.ravel()
    r = np.zeros(4 * 2 * tw, dtype=gy.dtype)
    w2 = 2 * tw
    for ni in range(n):
        for ki in range(k):
            go = (ni * k + ki) * oh * ow
            base = ki * p_all + ni * tt
            for i in range(th):
                g1ok = 2 * i + 1 < oh
                for q in range(ow):
                    g0 = gf[go + 2 * i * ow + q]
                    g1 = gf[go + (2 * i + 1) * ow + q] if g1ok else 0.0
                    r[q] = g0
                    r[w2 + q] = g0 + g1
                    r[2 * w2 + q] = g0 - g1
                    r[3 * w2 + q] = -g1
                o0 = base + i * tw
                for a in range(4):
                    ra = a * w2
                    o = 4 * a * s + o0
                    for j in range(tw):
                        e0 = r[ra + 2 * j]
                        e1 = r[ra + 2 * j + 1]
                        dm[o + j] = e0
                        dm[o + s + j] = e0 + e1
                        dm[o + 2 * s + j] = e0 - e1
                        dm[o + 3 * s + j] = -e1


@njit(cache=True)
def winograd_input_adjoint(dv, s, c, n, h, w, ph, pw, th, tw):
    """dx (N, C, h, w) = B·dV·Bᵀ of every tile of dV added back where winograd_input read it
    (neighbouring tiles overlap by two rows and columns); the padding is dropped."""
    hp, wp = 2 * th + 2, 2 * tw + 2
    p_all = n * th * tw
    tt = th * tw
    dx = np.empty((n, c, h, w), dtype=dv.dtype)
    dxf = dx.ravel()
    e = np.empty(4 * wp, dtype=dv.dtype)
    buf = np.empty(hp * wp, dtype=dv.dtype)
    for ni in range(n):
        for ci in range(c):
            base = ci * p_all + ni * tt
            for q in range(2 * wp):
                buf[q] = 0
            for i in range(th):
                for a in range(4):
                    ea = a * wp
                    o = 4 * a * s + base + i * tw
                    v0 = dv[o]
                    v1 = dv[o + s]
                    v2 = dv[o + 2 * s]
                    v3 = dv[o + 3 * s]
                    e[ea] = v0
                    e[ea + 1] = v1 - v2 + v3
                    for j in range(1, tw):
                        p0 = v0
                        p1 = v1
                        p2 = v2
                        p3 = v3
                        v0 = dv[o + j]
                        v1 = dv[o + s + j]
                        v2 = dv[o + 2 * s + j]
                        v3 = dv[o + 3 * s + j]
                        e[ea + 2 * j] = v0 + p1 + p2 - p0
                        e[ea + 2 * j + 1] = v1 - v2 + v3 - p3
                    e[ea + 2 * tw] = v1 + v2 - v0
                    e[ea + 2 * tw + 1] = -v3
                # rows 2i, 2i+1 were started by tile row i − 1 (zero for i = 0); 2i+2, 2i+3 start here
                r = 2 * i * wp
                for q in range(wp):
                    e0 = e[q]
                    e1 = e[wp + q]
                    e2 = e[2 * wp + q]
                    e3 = e[3 * wp + q]
                    buf[r + q] += e0
                    buf[r + wp + q] += e1 - e2 + e3
                    buf[r + 2 * wp + q] = e1 + e2 - e0
                    buf[r + 3 * wp + q] = -e3
            xo = (ni * c + ci) * h * w
            for y in range(h):
                yp = y + ph
                for q in range(w):
                    qp = q + pw
                    dxf[xo + y * w + q] = buf[yp * wp + qp] if (yp < hp and qp < wp) else 0.0
    return dx
