"""numba kernels for one recurrent step's elementwise work (contract in `rnn.py`): for the LSTM
the four gate activations, the cell update and h = o·tanh(c) in one pass over memory (forward),
and the gate gradients with the cell-state gradient carried (backward); the same for the GRU
(reset_after) and the SimpleRNN. The GEMMs stay in the BLAS.

Why a kernel: the step's arithmetic as NumPy calls is ~20 passes over (N, 4H) arrays and five
transcendental ufuncs; numba's scalar tanh (libm's) is not vectorised and loses to NumPy's SIMD
tanh, so the kernel evaluates tanh with a rational approximation the compiler vectorises
(Eigen's float32 `ptanh`: a degree 13/6 rational function on [−7.905, 7.905]); per element it
beats NumPy's tanh several times over (`python -m benchmarks.rnn_kernels`). Max abs error 3.4e-7
against float64 tanh over [−12, 12] (about 6 units in the last place near ±1;
tests/test_rnn_kernels.py bounds it at 4e-7).
|x| ≥ 9.1, where float32 tanh is exactly ±1, gives exactly ±1, and NaN stays NaN: the fastmath
flags are `contract` and `arcp` only (with numba's `fastmath=True`, `nnan` let a NaN input come
out as a number). `error_model="numpy"` drops numba's division-by-zero check, which blocked
vectorisation. float32 only (`rnn.py` sends nothing else here).
May import: numpy, numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_FM = {"contract", "arcp"}
_A1, _A3, _A5 = np.float32(4.89352455891786e-03), np.float32(6.37261928875436e-04), np.float32(1.48572235717979e-05)
_A7, _A9 = np.float32(5.12229709037114e-08), np.float32(-8.60467152213735e-11)
_A11, _A13 = np.float32(2.00018790482477e-13), np.float32(-2.76076847742355e-16)
_B0, _B2 = np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03)
_B4, _B6 = np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06)
_CLAMP, _ONE_AT = np.float32(7.90531110763549805), np.float32(9.1)
_HALF, _ONE = np.float32(0.5), np.float32(1.0)


@njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def tanh(x):
    v = _CLAMP if x > _CLAMP else x
    v = -_CLAMP if v < -_CLAMP else v
    v2 = v * v
    p = ((((((_A13 * v2 + _A11) * v2 + _A9) * v2 + _A7) * v2 + _A5) * v2 + _A3) * v2 + _A1) * v
    q = ((_B6 * v2 + _B4) * v2 + _B2) * v2 + _B0
    r = p / q
    r = _ONE if x >= _ONE_AT else r
    return -_ONE if x <= -_ONE_AT else r


@njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def sigmoid(x):
    return _HALF * (_ONE + tanh(_HALF * x))  # the NumPy path's overflow-free formula


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def lstm_forward(Z, zi, b, A, t, h0, c0, m, use_mask, gates, tc, Y, n0):
    """Step t: A (N, 4H) = h_{t−1}·R from the GEMM, Z (V, 4H) the projected inputs, row
    zi[n, t] (N, T) being step t of sequence n (see `rnn.py`), and b (4H) their bias
    (pre-activation (z + b) + a), h0 and c0
    (N, H) the states before step 0. Writes the activated gates [i f c̃ o] to gates[t]
    (T, N, 4H), tanh(c_t) to tc[t] (T, N, H) — time-major, so that BPTT reads each step's rows
    from one contiguous block — and Y[:, t] = [h_t c_t] (N, T, 2H); with the
    mask m (N, T), a masked row keeps its state. All arrays C-contiguous: the loops run over
    row views whose unit stride the compiler knows (views of views are 'A' layout, which LLVM
    does not vectorise), one loop per gate block (one loop over all four gates was not
    vectorised either: too many arrays for its runtime alias checks). A holds rows n0 … n0 +
    len(A) − 1 of the batch, the rows this call does (threads take disjoint row blocks)."""
    n_rows, four_h = A.shape
    H = four_h // 4
    for r in range(n_rows):
        n = n0 + r
        z, a, g, tr, y = Z[zi[n, t]], A[r], gates[t, n], tc[t, n], Y[n, t]
        for j in range(2 * H):
            g[j] = sigmoid((z[j] + b[j]) + a[j])
        for j in range(2 * H, 3 * H):
            g[j] = tanh((z[j] + b[j]) + a[j])
        for j in range(3 * H, 4 * H):
            g[j] = sigmoid((z[j] + b[j]) + a[j])
        cp = c0[n] if t == 0 else Y[n, t - 1, H:]
        hp = h0[n] if t == 0 else Y[n, t - 1, :H]
        ig, fg, gg, og = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
        hy, cy = y[:H], y[H:]
        for j in range(H):
            cy[j] = fg[j] * cp[j] + ig[j] * gg[j]
        for j in range(H):
            tr[j] = tanh(cy[j])
            hy[j] = og[j] * tr[j]
        if use_mask:
            mm = m[n, t]
            for j in range(H):
                cy[j] = cp[j] + mm * (cy[j] - cp[j])
                hy[j] = hp[j] + mm * (hy[j] - hp[j])


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def lstm_backward(gy, t, dh, dc, gates, tc, Y, c0, m, use_mask, dZ, keep_h, db, n0):
    """BPTT step t: dh, dc (N, H) hold the gradients flowing into h_t and c_t from step t+1; gy
    (N, T, 2H) those from the outputs [h c], or (N, T, H) those from h alone (the op's output
    without the cells). Writes dZ[:, t] (N, T, 4H), the gradient of the
    gates' pre-activations, and leaves in dc the gradient for c_{t−1} and in dh the part of h_t's
    gradient that goes through the gates; with the mask m (N, T), the part that skips the step
    goes to keep_h (the caller adds it after dh_{t−1} = dZ[:, t]·Rᵀ). dZ[:, t] is added into db
    (4H, float64): the bias gradient, summed as BPTT goes. dh, dc and keep_h hold rows n0 … n0 +
    len(dh) − 1 of the batch."""
    n_rows, H = dh.shape
    for r in range(n_rows):
        n = n0 + r
        g, tr, dz, dhr, dcr, gyr = gates[t, n], tc[t, n], dZ[n, t], dh[r], dc[r], gy[n, t]
        cp = c0[n] if t == 0 else Y[n, t - 1, H:]
        mm = m[n, t] if use_mask else _ONE
        for j in range(H):
            dhr[j] += gyr[j]
        if gyr.shape[0] > H:
            for j in range(H):
                dcr[j] += gyr[H + j]
        if use_mask:  # the part of the gradient that skips a masked step
            kh = keep_h[r]
            for j in range(H):
                kh[j] = dhr[j] * (_ONE - mm)
                dhr[j] = dhr[j] * mm
        ig, fg, gg, og = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
        di, df, dg, do = dz[:H], dz[H:2 * H], dz[2 * H:3 * H], dz[3 * H:]
        for j in range(H):
            dcv = dcr[j]
            keep = dcv * (_ONE - mm) if use_mask else np.float32(0.0)
            dcv = dcv * mm if use_mask else dcv
            dcv = dcv + dhr[j] * og[j] * (_ONE - tr[j] * tr[j])
            dcr[j] = dcv * fg[j] + keep
            di[j] = dcv * gg[j] * ig[j] * (_ONE - ig[j])
            df[j] = dcv * cp[j] * fg[j] * (_ONE - fg[j])
            dg[j] = dcv * ig[j] * (_ONE - gg[j] * gg[j])
        for j in range(H):
            do[j] = dhr[j] * tr[j] * og[j] * (_ONE - og[j])
        for j in range(4 * H):
            db[j] += dz[j]


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def gru_forward(Z, zi, U, rb, t, h0, m, use_mask, zrs, ns, uhs, Y, n0):
    """GRU step t (reset_after, Keras' default): U (rows, 3H) = h_{t−1}·R from the GEMM, rb (3H)
    the recurrent bias, Z (V, 3H) the projected inputs with their bias (row zi[n, t] for step
    t of sequence n). Writes [z r] to zrs (N, T, 2H), ñ to ns (N, T, H), u_h = (h·R + b_r)_h
    to uhs (N, T, H) and h_t to Y (N, T, H); a masked row keeps its state. U holds rows n0 … n0 + len(U) − 1."""
    n_rows, three_h = U.shape
    H = three_h // 3
    for r in range(n_rows):
        n = n0 + r
        z, u, zr, nv, uh, y = Z[zi[n, t]], U[r], zrs[n, t], ns[n, t], uhs[n, t], Y[n, t]
        hp = h0[n] if t == 0 else Y[n, t - 1]
        for j in range(2 * H):
            zr[j] = sigmoid(z[j] + (u[j] + rb[j]))
        for j in range(H):
            uh[j] = u[2 * H + j] + rb[2 * H + j]
        rg = zr[H:]
        for j in range(H):
            nv[j] = tanh(z[2 * H + j] + rg[j] * uh[j])
        for j in range(H):
            y[j] = nv[j] + zr[j] * (hp[j] - nv[j])
        if use_mask:
            mm = m[n, t]
            for j in range(H):
                y[j] = hp[j] + mm * (y[j] - hp[j])


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def gru_backward(gy, t, dh, carry, zrs, ns, uhs, Y, h0, m, use_mask, dZ, dU, n0):
    """GRU BPTT step t: dh (rows, H) holds the gradient flowing into h_t from step t+1; gy
    (N, T, H) the outputs'. Writes dZ[:, t] (the input pre-activations' gradient) and dU[:, t]
    (that of h_{t−1}·R + b_r), and in carry the part of h_{t−1}'s gradient that does not go
    through R (z·∂h, plus a masked step's skip); the caller adds it to dU[:, t]·Rᵀ."""
    n_rows, H = dh.shape
    for r in range(n_rows):
        n = n0 + r
        zr, nv, uh, dz, du, dhr, cr, gyr = zrs[n, t], ns[n, t], uhs[n, t], dZ[n, t], dU[n, t], dh[r], carry[r], gy[n, t]
        hp = h0[n] if t == 0 else Y[n, t - 1]
        mm = m[n, t] if use_mask else _ONE
        for j in range(H):
            dhr[j] += gyr[j]
        zg, rg = zr[:H], zr[H:]
        for j in range(H):
            d = dhr[j]
            keep = d * (_ONE - mm) if use_mask else np.float32(0.0)
            d = d * mm if use_mask else d
            dan = d * (_ONE - zg[j]) * (_ONE - nv[j] * nv[j])
            dzz = d * (hp[j] - nv[j]) * zg[j] * (_ONE - zg[j])
            dz[j] = dzz
            du[j] = dzz
            dzr = dan * uh[j] * rg[j] * (_ONE - rg[j])
            dz[H + j] = dzr
            du[H + j] = dzr
            dz[2 * H + j] = dan
            du[2 * H + j] = dan * rg[j]
            cr[j] = d * zg[j] + keep


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def simple_forward(Z, zi, A, t, h0, m, use_mask, acts, Y, n0):
    """SimpleRNN step t: h_t = tanh(z_t + h_{t−1}·R) with A (rows, H) the GEMM's result and z_t
    row zi[n, t] of Z (V, H); writes the activation to acts (N, T, H) and the (masked) state to
    Y (N, T, H)."""
    n_rows, H = A.shape
    for r in range(n_rows):
        n = n0 + r
        z, a, ac, y = Z[zi[n, t]], A[r], acts[n, t], Y[n, t]
        for j in range(H):
            ac[j] = tanh(z[j] + a[j])
            y[j] = ac[j]
        if use_mask:
            hp = h0[n] if t == 0 else Y[n, t - 1]
            mm = m[n, t]
            for j in range(H):
                y[j] = hp[j] + mm * (ac[j] - hp[j])


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def simple_backward(gy, t, dh, acts, m, use_mask, dZ, carry, n0):
    """SimpleRNN BPTT step t: dh (rows, H) in, dZ[:, t] = ∂h·(1 − h²) out; a masked step's
    skip to carry (the caller adds it to dZ[:, t]·Rᵀ)."""
    n_rows, H = dh.shape
    for r in range(n_rows):
        n = n0 + r
        ac, dz, dhr, cr, gyr = acts[n, t], dZ[n, t], dh[r], carry[r], gy[n, t]
        mm = m[n, t] if use_mask else _ONE
        for j in range(H):
            d = dhr[j] + gyr[j]
            cr[j] = d * (_ONE - mm) if use_mask else np.float32(0.0)
            d = d * mm if use_mask else d
            dz[j] = d * (_ONE - ac[j] * ac[j])


@njit(cache=True, nogil=True)
def transpose_into(a, out):
    """out (m, n) = aᵀ for a (n, m), in 16×16 tiles: the recurrent kernel's column-major copy
    for each sequence. `np.asfortranarray` walks a's columns, a new page per element, and takes
    several times as long (`python -m benchmarks.rnn_kernels` prints both)."""
    n, m = a.shape
    for i0 in range(0, n, 16):
        for j0 in range(0, m, 16):
            for i in range(i0, min(i0 + 16, n)):
                for j in range(j0, min(j0 + 16, m)):
                    out[j, i] = a[i, j]
