"""Window kernels written with array-module operations only (NumPy or CuPy): strided window
views, a copy into the im2col layout, and kh·kw shifted slice-adds for the adjoints.
May import: neurona.backend.
"""
from __future__ import annotations

from .. import array_module


def _padded_size(h, w, geo):
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    # ceil mode may read past the right/bottom padding
    hp = max(h + 2 * ph, (oh - 1) * sh + dh * (kh - 1) + 1)
    wp = max(w + 2 * pw, (ow - 1) * sw + dw * (kw - 1) + 1)
    return hp, wp


def _pad(x, geo, value):
    h, w = x.shape[-2:]
    hp, wp = _padded_size(h, w, geo)
    if (hp, wp) == (h, w):
        return x
    ph, pw = geo[4], geo[5]
    out = array_module(x).full(x.shape[:2] + (hp, wp), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _windows(xpad, geo):
    """A read-only strided view (N, C, OH, OW, kh, kw) of every window of the padded input."""
    kh, kw, sh, sw, _, _, dh, dw, oh, ow = geo
    sn, sc, sy, sx = xpad.strides
    shape = xpad.shape[:2] + (oh, ow, kh, kw)
    strides = (sn, sc, sy * sh, sx * sw, sy * dh, sx * dw)
    xp = array_module(xpad)
    if xp.__name__ == "numpy":
        return xp.lib.stride_tricks.as_strided(xpad, shape, strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(xpad, shape, strides)  # CuPy's has no `writeable`


def _add_windows(cols, x_shape, geo):
    """Sum cols (N, C, OH, OW, kh, kw) back into an input-shaped array (the adjoint of _windows)."""
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = geo
    n, c, h, w = x_shape
    hp, wp = _padded_size(h, w, geo)
    dxpad = array_module(cols).zeros((n, c, hp, wp), dtype=cols.dtype)
    ys, xs = sh * (oh - 1) + 1, sw * (ow - 1) + 1
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            dxpad[:, :, y0:y0 + ys:sh, x0:x0 + xs:sw] += cols[:, :, :, :, i, j]
    return dxpad[:, :, ph:ph + h, pw:pw + w]


def im2col(x, geo):
    """cols (C·kh·kw, N·OH·OW) of input x (N, C, H, W); padding reads as 0."""
    n, c = x.shape[:2]
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    win = _windows(_pad(x, geo, 0), geo)  # (N, C, OH, OW, kh, kw)
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)


def col2im(cols, x_shape, geo):
    n, c = x_shape[:2]
    kh, kw, oh, ow = geo[0], geo[1], geo[8], geo[9]
    cols6 = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    return _add_windows(cols6, x_shape, geo)


def _flat(x, geo, fill):
    n, c = x.shape[:2]
    return _windows(_pad(x, geo, fill), geo).reshape(n, c, geo[8], geo[9], geo[0] * geo[1])


def max_pool(x, geo):
    flat = _flat(x, geo, float("-inf"))
    arg = flat.argmax(axis=-1)
    out = array_module(x).take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return out, arg


def max_pool_scatter(g, arg, x_shape, geo):
    kh, kw = geo[0], geo[1]
    onehot = arg[..., None] == array_module(g).arange(kh * kw)
    cols = (g[..., None] * onehot).reshape(g.shape + (kh, kw))
    return _add_windows(cols, x_shape, geo)


def max_pool_select(x, arg, geo):
    return array_module(x).take_along_axis(_flat(x, geo, 0), arg[..., None], axis=-1)[..., 0]


def avg_pool(x, geo):
    """Mean over each window; padding counts as zeros in the mean (count_include_pad)."""
    return _windows(_pad(x, geo, 0), geo).mean(axis=(-2, -1))


def avg_pool_scatter(g, x_shape, geo):
    """Adjoint of avg_pool: each g spread evenly over its window."""
    kh, kw = geo[0], geo[1]
    cols = array_module(g).broadcast_to((g / (kh * kw))[..., None, None], g.shape + (kh, kw))
    return _add_windows(cols, x_shape, geo)
