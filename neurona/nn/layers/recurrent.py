"""Recurrent layers with Keras' names and weight layout: `SimpleRNN`, `LSTM`, `GRU`, their cells
(`SimpleRNNCell`, `LSTMCell`, `GRUCell`), the generic `RNN(cell)`, `Bidirectional`,
`TimeDistributed` and `Masking`.

Weights (as Keras): `kernel` (input_dim, G·units), `recurrent_kernel` (units, G·units), `bias`
(G·units), with the gates side by side — LSTM i, f, c, o (G = 4); GRU z, r, h (G = 3; with
`reset_after=True`, the default, the bias is (2, 3·units): input bias and recurrent bias).
PyTorch keeps the transposes, LSTM gates in the same order (i, f, g, o) and GRU's as (r, z, n):
`kernel = weight_ih.T` with GRU's first two blocks swapped, and `b_ih + b_hh` is Keras' LSTM bias.

How a whole sequence runs (`RNN.call`): one GEMM projects the inputs of all time steps at once
(x·kernel + bias, shape (N, T, G·units); when x is an embedding's lookup, the table is projected
instead and the op reads its rows by id, `_input_projection`); then `RecurrentSequence`, one
Function, runs the recurrence h_t = f(z_t + h_{t−1}·recurrent_kernel) over t in a loop on raw
arrays and, in backward, backpropagation through time (BPTT) in one reverse loop, with the
recurrent-kernel gradient as one GEMM at the end. Its backward has a second path for
higher-order gradients: under `create_graph` it recomputes the sequence step by step with differentiable ops (the cells'
own formulas) and differentiates that, so gradients of gradients are exact. The per-step cells
remain for teaching, graph pictures and custom activations.

Masking: a step whose mask is 0 leaves the state unchanged (and, with `zero_output_for_mask`,
outputs zeros). The mask comes from `Embedding(mask_zero=True)` or `Masking` through
`get_mask(tensor)`, or is passed as `layer(x, mask=...)`.
ONNX export (`_onnx`, used by `neurona.saving.onnx_export`): SimpleRNN, LSTM and GRU become ONNX's
RNN, LSTM and GRU operators.
May import: neurona (Tensor, ops, autograd), neurona.nn (Layer, initializers, regularizers,
constraints, activations), neurona.backend.kernels.rnn (the fused LSTM step), numpy (the fused
path's buffers and GEMMs; it only runs on NumPy arrays).
"""
from __future__ import annotations

import weakref

import numpy as np

from ... import backend as B, ops
from ...backend import kernels
from ...backend.kernels import cblas as _cblas
from ...backend.kernels.rnn import rnn_kernels, rnn_sequences, over_rows
from ...autograd import grad as _grad
from ...autograd.function import Function
from ...autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ...autograd.tracing import current as current_recorder
from ...ops import ShapeError
from ...ops._base import const
from ...ops.movement import Index as _Index
from ...tensor import Tensor
from .. import activations, constraints, initializers, regularizers
from ..layer import Layer, get_registered, register

# -- masks travel beside tensors ----------------------------------------------------------------
# Tensor has __slots__ (no `_keras_mask` attribute), so a side table maps a tensor to its mask;
# entries disappear with the tensor.
_MASKS: dict[int, tuple] = {}


def set_mask(tensor: Tensor, mask) -> Tensor:
    """Attach a boolean mask (N, T) to `tensor` (what `Embedding(mask_zero=True)` does)."""
    key = id(tensor)
    _MASKS[key] = (weakref.ref(tensor, lambda _r, k=key: _MASKS.pop(k, None)), mask)
    return tensor


def get_mask(tensor):
    """The mask attached to `tensor` by `set_mask`, or None."""
    entry = _MASKS.get(id(tensor))
    if entry is None or entry[0]() is not tensor:
        return None
    return entry[1]


# -- the per-step formulas, on Tensors (differentiable; the cells and the composite path) -------
def _sigmoid(x, xp):
    return 0.5 * (1.0 + xp.tanh(0.5 * x))  # overflow-free logistic, one transcendental


def simple_step(z, states, R, rb, rmask, act, rec_act):
    """SimpleRNN: h_t = act(z_t + h_{t−1}·R), z_t = x_t·W + b (the course's tanh RNN)."""
    h = states[0]
    hr = h * rmask if rmask is not None else h
    return [act(z + hr @ R)]


def lstm_step(z, states, R, rb, rmask, act, rec_act):
    """LSTM: [i f c̃ o] = [σ σ tanh σ](z_t + h_{t−1}·R); c_t = f·c_{t−1} + i·c̃; h_t = o·tanh(c_t)."""
    h, c = states
    hr = h * rmask if rmask is not None else h
    a = z + hr @ R
    n = h.shape[-1]
    i, f = rec_act(a[:, :n]), rec_act(a[:, n:2 * n])
    g, o = act(a[:, 2 * n:3 * n]), rec_act(a[:, 3 * n:])
    c2 = f * c + i * g
    return [o * act(c2), c2]


def gru_step(z, states, R, rb, rmask, act, rec_act):
    """GRU, reset_after=True (Keras' default, CuDNN/PyTorch's formula): u = h_{t−1}·R + b_r;
    z = σ(x_z + u_z), r = σ(x_r + u_r), h̃ = tanh(x_h + r·u_h), h_t = z·h_{t−1} + (1 − z)·h̃."""
    h = states[0]
    hr = h * rmask if rmask is not None else h
    n = h.shape[-1]
    u = hr @ R + rb
    zr = rec_act(z[:, :2 * n] + u[:, :2 * n])
    zg, r = zr[:, :n], zr[:, n:]
    hh = act(z[:, 2 * n:] + r * u[:, 2 * n:])
    return [zg * h + (1 - zg) * hh]


def gru_step_reset_before(z, states, R, rb, rmask, act, rec_act):
    """GRU, reset_after=False (the original formula): h̃ = tanh(x_h + (r·h_{t−1})·R_h)."""
    h = states[0]
    hr = h * rmask if rmask is not None else h
    n = h.shape[-1]
    u = hr @ R[:, :2 * n]
    zg, r = rec_act(z[:, :n] + u[:, :n]), rec_act(z[:, n:2 * n] + u[:, n:])
    hh = act(z[:, 2 * n:] + (r * hr) @ R[:, 2 * n:])
    return [zg * h + (1 - zg) * hh]


_STEPS = {"simple": simple_step, "lstm": lstm_step, "gru": gru_step}


def composite_sequence(kind, Z, R, rb, states, mask=None, rmask=None, act=ops.tanh, rec_act=ops.sigmoid):
    """The recurrence over all steps with one differentiable op per formula term: the reference
    for the fused op, and its higher-order path. Z (N, T, G·H) holds the projected inputs;
    returns (N, T, S·H): every step's states side by side (h, or h and c)."""
    step = _STEPS[kind] if isinstance(kind, str) else kind
    m = None if mask is None else const(mask[..., None].astype(Z.dtype))
    rm = None if rmask is None else const(rmask)
    outs = []
    for t in range(Z.shape[1]):
        new = step(Z[:, t], states, R, rb, rm, act, rec_act)
        if m is not None:
            mt = m[:, t]
            new = [s + mt * (n - s) for n, s in zip(new, states)]
        states = new
        outs.append(ops.concatenate(states, axis=-1) if len(states) > 1 else states[0])
    return ops.stack(outs, axis=1)


def _rebind(grads, leaves, originals, stop):
    """Point the graph of `grads` (built on stand-in `leaves`) at the `originals` instead, so the
    gradients become functions of the real inputs. Values are equal (the leaves share the
    originals' arrays); only the edges move. The walk stops at `stop` tensors (the incoming
    gradient, whose own graph is not ours to touch)."""
    swap = {id(leaf): orig for leaf, orig in zip(leaves, originals)}
    stop_ids = set(map(id, stop)) | set(swap)
    seen = set()
    stack = [g._ctx for g in grads if g is not None and g._ctx is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        if any(id(t) in swap for t in fn.inputs):
            fn.inputs = tuple(swap.get(id(t), t) for t in fn.inputs)
        for t in fn.inputs:
            if t._ctx is not None and id(t) not in stop_ids and not any(t is o for o in originals):
                stack.append(t._ctx)


def _row_mask(mask, dtype):
    """The mask as an (N, T) array of `dtype` for the fused kernels and whether there is one
    (without one, a (1, 1) stand-in of the same type, which the kernels never read)."""
    if mask is None:
        return np.zeros((1, 1), dtype=dtype), False
    return np.ascontiguousarray(mask, dtype=dtype), True


def _input_projection(x, kernel):
    """All steps' input projections x·W (N, T, G·H), one GEMM, and None. When x is rows picked
    from a table by integer ids (an `Embedding`'s lookup, recorded in the graph) and the table has
    fewer rows than x, (table·W, ids) instead: step t of sequence n projects to row ids[n, t] of
    table·W — the same products with V·D·G·H multiply-adds instead of N·T·D·G·H, and the
    gradient reaches the table through that small product (dZ's rows summed per id first)
    rather than through x (W4: 65 rows against 2,048). The sequence op reads the rows by id, so
    the (N, T, G·H) projections are never gathered. Not while a graph is being traced (its
    replay reads the ids live through the lookup)."""
    n, t, d = x.shape
    fn = x._ctx
    if type(fn) is _Index and current_recorder() is None:
        key, table = fn.key, fn.inputs[0]
        key = key[0] if type(key) is tuple and len(key) == 1 else key
        if (type(key) is np.ndarray and key.dtype.kind in "iu" and key.shape == (n, t) and table.ndim == 2
                and table.shape[0] < n * t):
            return table @ kernel, key
    return (x.reshape(n * t, d) @ kernel).reshape(n, t, -1), None


class RecurrentSequence(Function):
    """The fused recurrence: inputs (Z, R, h0[, c0 for 'lstm'][, rb for 'gru'][, b]); Z (N, T, G·H)
    are the projected inputs, R the recurrent kernel, b (G·H) an input bias added to every step
    of Z (LSTM only: the fused kernel adds it and sums its gradient as it goes, which saves a
    pass over Z both ways; without it Z already holds the bias). Output (N, T, S·H): the states of every
    step (LSTM: h then c). `mask` (N, T) bool and `rmask` (N, H) (recurrent dropout) are
    constants. Forward and BPTT are loops over t on raw arrays; each step is one GEMM plus
    elementwise work. With `ids` (N, T) integers, Z is a table (V, G·H) and step t of sequence n
    reads its row ids[n, t] (an embedding's rows projected once, `_input_projection`); Z's
    gradient is then dZ's rows summed per id. `h_only` (LSTM): the output is h alone, (N, T, H),
    for a layer that returns no cell state — no slice of the output and no zero gradient for
    the cells to pass back."""

    def forward(self, Z, R, *rest, kind, mask=None, rmask=None, ids=None, h_only=False):
        self.kind, self.mask, self.rmask, self.ids = kind, mask, rmask, ids
        self.h_only = h_only = h_only and kind == "lstm"
        Y = self._forward(Z, R, *rest)
        return Y[:, :, :Y.shape[2] // 2] if h_only else Y

    def _forward(self, Z, R, *rest):
        kind, mask, rmask, ids = self.kind, self.mask, self.rmask, self.ids
        self.has_bias = kind == "lstm" and len(rest) == 3
        self.fused = rnn_kernels(Z) is not None and R.dtype == Z.dtype and all(r.dtype == Z.dtype for r in rest)
        if self.fused:
            return self._fused_forward(Z, R, *rest)
        if ids is not None:
            Z = Z[ids]
        if self.has_bias:
            Z, rest = Z + rest[2], rest[:2]
        xp = B.array_module(Z)
        N, T, _ = Z.shape
        H = R.shape[0]
        m = None if mask is None else mask.astype(Z.dtype)[:, :, None]
        h = rest[0]
        hrs = xp.empty((N, T, H), dtype=Z.dtype)  # h_{t−1} as the recurrence saw it (for dR)
        if kind == "lstm":
            c = rest[1]
            Y = xp.empty((N, T, 2 * H), dtype=Z.dtype)
            self.gates = gates = xp.empty((N, T, 4 * H), dtype=Z.dtype)
            self.tc = tc = xp.empty((N, T, H), dtype=Z.dtype)
        elif kind == "gru":
            rb = rest[1]
            Y = xp.empty((N, T, H), dtype=Z.dtype)
            self.zrs = zrs = xp.empty((N, T, 2 * H), dtype=Z.dtype)
            self.ns = ns = xp.empty((N, T, H), dtype=Z.dtype)
            self.uhs = uhs = xp.empty((N, T, H), dtype=Z.dtype)
        else:
            Y = xp.empty((N, T, H), dtype=Z.dtype)
            self.acts = acts = xp.empty((N, T, H), dtype=Z.dtype)
        for t in range(T):
            hr = h * rmask if rmask is not None else h
            hrs[:, t] = hr
            if kind == "lstm":
                a = Z[:, t] + hr @ R
                a[:, :2 * H] = _sigmoid(a[:, :2 * H], xp)
                a[:, 2 * H:3 * H] = xp.tanh(a[:, 2 * H:3 * H])
                a[:, 3 * H:] = _sigmoid(a[:, 3 * H:], xp)
                gates[:, t] = a
                c_new = a[:, H:2 * H] * c + a[:, :H] * a[:, 2 * H:3 * H]
                tcn = xp.tanh(c_new)
                tc[:, t] = tcn
                h_new = a[:, 3 * H:] * tcn
                if m is not None:
                    c_new = c + m[:, t] * (c_new - c)
                Y[:, t, H:] = c_new
                c = c_new
            elif kind == "gru":
                u = hr @ R + rb
                zr = _sigmoid(Z[:, t, :2 * H] + u[:, :2 * H], xp)
                zrs[:, t] = zr
                uhs[:, t] = u[:, 2 * H:]
                n = xp.tanh(Z[:, t, 2 * H:] + zr[:, H:] * u[:, 2 * H:])
                ns[:, t] = n
                h_new = n + zr[:, :H] * (h - n)
            else:
                h_new = xp.tanh(Z[:, t] + hr @ R)
                acts[:, t] = h_new
            if m is not None:
                h_new = h + m[:, t] * (h_new - h)
            Y[:, t, :H] = h_new
            h = h_new
        self.hrs, self.Y = hrs, Y
        return Y

    def _fused_forward(self, Z, R, h0, *rest):
        """The recurrence with one compiled kernel a step after the step's GEMM (float32 NumPy).
        The batch rows are independent through the sequence, so with several kernel threads each
        takes a block of rows for all T steps (`over_rows`)."""
        k, kind, ids = rnn_kernels(Z), self.kind, self.ids
        GH, H = Z.shape[-1], R.shape[0]
        if ids is None:  # row n·T + t of Z (N·T, G·H) is step t of sequence n
            N, T = Z.shape[:2]
            Z, zi = np.ascontiguousarray(Z).reshape(N * T, GH), np.arange(N * T).reshape(N, T)
        else:
            (N, T), Z, zi = ids.shape, np.ascontiguousarray(Z), np.ascontiguousarray(ids, dtype=np.int64)
        rmask, dt = self.rmask, Z.dtype
        m, use_mask = _row_mask(self.mask, dt)
        self.hrs = hrs = np.empty((N, T, H), dtype=dt)
        self.Y = Y = np.empty((N, T, 2 * H if kind == "lstm" else H), dtype=dt)
        h0 = np.ascontiguousarray(h0, dtype=dt)
        self.seq = seq = rnn_sequences(Z) if T else None
        if seq is not None:
            return self._compiled_forward(seq, Z, zi, np.ascontiguousarray(R), h0, rest, m, use_mask)
        # R column-major: the BLAS takes h·R 6% faster so (N=32, H=256), and its transpose is the
        # C-ordered Rᵀ that BPTT's dh·Rᵀ wants (13% faster than the transposed view): one copy, by
        # tiles (`transpose_into`, faster than `np.asfortranarray`: `python -m benchmarks.rnn_kernels`)
        Rt = np.empty(R.shape[::-1], dtype=R.dtype)
        k.transpose_into(np.ascontiguousarray(R), Rt)
        self.RF = RF = Rt.T
        if kind == "lstm":
            c0 = np.ascontiguousarray(rest[0], dtype=dt)
            b = np.ascontiguousarray(rest[1]) if len(rest) > 1 else np.zeros(GH, dtype=dt)
            self.gates = gates = np.empty((T, N, GH), dtype=dt)
            self.tc = tc = np.empty((T, N, H), dtype=dt)

            def step(a, t, n0):
                k.lstm_forward(Z, zi, b, a, t, h0, c0, m, use_mask, gates, tc, Y, n0)
        elif kind == "gru":
            rb = np.ascontiguousarray(rest[0])
            self.zrs = zrs = np.empty((N, T, 2 * H), dtype=dt)
            self.ns = ns = np.empty((N, T, H), dtype=dt)
            self.uhs = uhs = np.empty((N, T, H), dtype=dt)

            def step(a, t, n0):
                k.gru_forward(Z, zi, a, rb, t, h0, m, use_mask, zrs, ns, uhs, Y, n0)
        else:
            self.acts = acts = np.empty((N, T, H), dtype=dt)

            def step(a, t, n0):
                k.simple_forward(Z, zi, a, t, h0, m, use_mask, acts, Y, n0)

        def rows(n0, n1):
            a = np.empty((n1 - n0, GH), dtype=dt)
            h = h0[n0:n1]
            gemm = kernels.gemm_for(hrs[n0:n1, 0], RF, a) if T else None  # every step's operands look alike
            for t in range(T):
                hr = hrs[n0:n1, t]
                if rmask is not None:
                    np.multiply(h, rmask[n0:n1], out=hr)
                else:
                    hr[...] = h
                gemm(hr, RF, a)
                step(a, t, n0)
                h = Y[n0:n1, t, :H]

        over_rows(rows, N)
        return Y

    def _compiled_forward(self, seq, Z, zi, R, h0, rest, m, use_mask):
        """`_fused_forward` through `_rnn_seq.py`: each row block runs all T steps in one compiled
        call, the GIL released, its products MKL's on R packed once for the block."""
        kind, hrs, Y, rmask = self.kind, self.hrs, self.Y, self.rmask
        N, T, H = hrs.shape
        GH, dt, lib = Z.shape[-1], Z.dtype, _cblas.chosen()
        self.R = R
        rm, use_rm = (np.ascontiguousarray(rmask, dtype=dt), True) if rmask is not None else (np.ones((1, 1), dt), False)
        if kind == "lstm":
            c0 = np.ascontiguousarray(rest[0], dtype=dt)
            b = np.ascontiguousarray(rest[1]) if len(rest) > 1 else np.zeros(GH, dtype=dt)
            self.gates = gates = np.empty((T, N, GH), dtype=dt)
            self.tc = tc = np.empty((T, N, H), dtype=dt)
        elif kind == "gru":
            rb = np.ascontiguousarray(rest[0])
            self.zrs = zrs = np.empty((N, T, 2 * H), dtype=dt)
            self.ns = ns = np.empty((N, T, H), dtype=dt)
            self.uhs = uhs = np.empty((N, T, H), dtype=dt)
        else:
            self.acts = acts = np.empty((N, T, H), dtype=dt)

        def rows(n0, n1):
            packed, a = lib.pack_b(R, n1 - n0), np.empty((n1 - n0, GH), dtype=dt)
            if kind == "lstm":
                seq.lstm_sequence(Z, zi, b, packed, h0, c0, m, use_mask, rm, use_rm, gates, tc, Y, hrs, a, n0, n1)
            elif kind == "gru":
                seq.gru_sequence(Z, zi, rb, packed, h0, m, use_mask, rm, use_rm, zrs, ns, uhs, Y, hrs, a, n0, n1)
            else:
                seq.simple_sequence(Z, zi, packed, h0, m, use_mask, rm, use_rm, acts, Y, hrs, a, n0, n1)

        over_rows(rows, N, compiled=True)
        return Y

    def _compiled_backward(self, seq, gy):
        """`_fused_backward` through `_rnn_seq.py` (row blocks as in `_compiled_forward`)."""
        kind, Y, rmask = self.kind, self.Y, self.rmask
        (N, T), GH, H, dt = Y.shape[:2], self.inputs[0].shape[-1], self.R.shape[0], Y.dtype
        m, use_mask = _row_mask(self.mask, dt)
        rm, use_rm = (np.ascontiguousarray(rmask, dtype=dt), True) if rmask is not None else (np.ones((1, 1), dt), False)
        dZ = np.empty((N, T, GH), dtype=dt)
        dU = np.empty((N, T, GH), dtype=dt) if kind == "gru" else dZ
        dh = np.zeros((N, H), dtype=dt)
        dc = np.zeros((N, H), dtype=dt) if kind == "lstm" else None
        h0 = np.ascontiguousarray(self.inputs[2].data, dtype=dt)
        c0 = np.ascontiguousarray(self.inputs[3].data, dtype=dt) if kind == "lstm" else None
        lib, Rt = _cblas.chosen(), self.R.T

        def rows(n0, n1):
            packed, dhr = lib.pack_b(Rt, n1 - n0), dh[n0:n1]
            carry = np.zeros((n1 - n0, H), dtype=dt)
            db = np.zeros(GH, dtype=np.float64)
            if kind == "lstm":
                seq.lstm_sequence_backward(gy, dhr, dc[n0:n1], self.gates, self.tc, Y, c0, m, use_mask, rm, use_rm, dZ,
                                           carry, db, packed, n0)
            elif kind == "gru":
                seq.gru_sequence_backward(gy, dhr, carry, self.zrs, self.ns, self.uhs, Y, h0, m, use_mask, rm, use_rm,
                                          dZ, dU, packed, n0)
            else:
                seq.simple_sequence_backward(gy, dhr, self.acts, m, use_mask, rm, use_rm, dZ, carry, packed, n0)
            return db

        db = sum(over_rows(rows, N, compiled=True))
        return self._gradients(dZ, dU, dh, dc, lambda: db.astype(dt))

    def _fused_backward(self, gy):
        if self.seq is not None:
            return self._compiled_backward(self.seq, gy)
        k, kind = rnn_kernels(gy), self.kind
        Y = self.Y
        (N, T), GH = Y.shape[:2], self.inputs[0].shape[-1]
        H, dt, rmask = self.RF.shape[0], Y.dtype, self.rmask
        m, use_mask = _row_mask(self.mask, dt)
        Rt = self.RF.T
        dZ = np.empty((N, T, GH), dtype=dt)
        dU = np.empty((N, T, GH), dtype=dt) if kind == "gru" else dZ  # grads of hr·R (+ rb)
        dh = np.zeros((N, H), dtype=dt)
        dc = np.zeros((N, H), dtype=dt) if kind == "lstm" else None
        h0 = np.ascontiguousarray(self.inputs[2].data, dtype=dt)
        c0 = np.ascontiguousarray(self.inputs[3].data, dtype=dt) if kind == "lstm" else None

        def rows(n0, n1):
            dhr = dh[n0:n1]
            carry = np.empty((n1 - n0, H), dtype=dt)  # what reaches h_{t−1} besides dU·Rᵀ
            db = np.zeros(GH, dtype=np.float64)  # LSTM: the input bias gradient, summed as BPTT goes
            gemm = kernels.gemm_for(dU[n0:n1, 0], Rt, dhr) if T else None
            for t in range(T - 1, -1, -1):
                if kind == "lstm":
                    k.lstm_backward(gy, t, dhr, dc[n0:n1], self.gates, self.tc, Y, c0, m, use_mask, dZ, carry,
                                    db, n0)
                elif kind == "gru":
                    k.gru_backward(gy, t, dhr, carry, self.zrs, self.ns, self.uhs, Y, h0, m, use_mask, dZ, dU, n0)
                else:
                    k.simple_backward(gy, t, dhr, self.acts, m, use_mask, dZ, carry, n0)
                gemm(dU[n0:n1, t], Rt, dhr)
                if rmask is not None:
                    dhr *= rmask[n0:n1]
                if use_mask or kind == "gru":
                    dhr += carry
            return db

        db = sum(over_rows(rows, N))
        return self._gradients(dZ, dU, dh, dc, lambda: db.astype(dt))

    def backward(self, g):
        if is_grad_enabled():  # create_graph=True: differentiate the step-by-step recomputation
            return self._differentiable_backward(g)
        if self.fused:
            return self._fused_backward(np.ascontiguousarray(g.data, dtype=self.Y.dtype))
        kind, rmask = self.kind, self.rmask
        gy = g.data
        R, Y = self.inputs[1].data, self.Y
        xp = B.array_module(gy)
        (N, T), GH, H, dt = Y.shape[:2], self.inputs[0].shape[-1], R.shape[0], Y.dtype
        m = None if self.mask is None else self.mask.astype(dt)[:, :, None]
        Rt = R.T
        dZ = xp.empty((N, T, GH), dtype=dt)
        dU = xp.empty((N, T, 3 * H), dtype=dt) if kind == "gru" else dZ  # grads of hr·R (+ rb)
        dh = xp.zeros((N, H), dtype=dt)
        dc = xp.zeros((N, H), dtype=dt) if kind == "lstm" else None
        h0 = self.inputs[2].data
        for t in range(T - 1, -1, -1):
            dh = dh + gy[:, t, :H]
            if kind == "lstm" and not self.h_only:
                dc = dc + gy[:, t, H:]
            if m is not None:
                keep_h, dh = dh * (1 - m[:, t]), dh * m[:, t]
                if kind == "lstm":
                    keep_c, dc = dc * (1 - m[:, t]), dc * m[:, t]
            h_prev = h0 if t == 0 else Y[:, t - 1, :H]
            if kind == "lstm":
                a = self.gates[:, t]
                i, f, gg, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
                tcn = self.tc[:, t]
                c_prev = self.inputs[3].data if t == 0 else Y[:, t - 1, H:]
                dc = dc + dh * o * (1 - tcn * tcn)
                dz = dZ[:, t]
                dz[:, :H] = dc * gg * i * (1 - i)
                dz[:, H:2 * H] = dc * c_prev * f * (1 - f)
                dz[:, 2 * H:3 * H] = dc * i * (1 - gg * gg)
                dz[:, 3 * H:] = dh * tcn * o * (1 - o)
                dc = dc * f
                dh_prev = dz @ Rt
            elif kind == "gru":
                zr, n, uh = self.zrs[:, t], self.ns[:, t], self.uhs[:, t]
                zg, r = zr[:, :H], zr[:, H:]
                dan = dh * (1 - zg) * (1 - n * n)
                dz, du = dZ[:, t], dU[:, t]
                dz[:, :H] = du[:, :H] = dh * (h_prev - n) * zg * (1 - zg)
                dz[:, H:2 * H] = du[:, H:2 * H] = dan * uh * r * (1 - r)
                dz[:, 2 * H:] = dan
                du[:, 2 * H:] = dan * r
                dh_prev = du @ Rt
            else:
                act = self.acts[:, t]
                dz = dZ[:, t]
                dz[...] = dh * (1 - act * act)
                dh_prev = dz @ Rt
            if rmask is not None:
                dh_prev = dh_prev * rmask
            if kind == "gru":
                dh_prev = dh_prev + dh * zg
            if m is not None:
                dh_prev = dh_prev + keep_h
                if kind == "lstm":
                    dc = dc + keep_c
            dh = dh_prev
        return self._gradients(dZ, dU, dh, dc, lambda: dZ.sum(axis=(0, 1)))

    def _gradients(self, dZ, dU, dh, dc, bias_grad):
        """The inputs' gradients from BPTT's: dZ, dU (the recurrent product's, = dZ but for the
        GRU), dh and dc (LSTM) for the initial states; bias_grad() the LSTM input bias's."""
        N, T, H = self.hrs.shape
        dR = kernels.gemm(self.hrs.reshape(N * T, H).T, dU.reshape(N * T, -1)) if self.needs_grad(1) else None
        out = [const(self._rows_summed(dZ)) if self.needs_grad(0) else None, None if dR is None else const(dR),
               const(dh) if self.needs_grad(2) else None]
        if self.kind == "lstm":
            out.append(const(dc) if self.needs_grad(3) else None)
            if self.has_bias:
                out.append(const(bias_grad()) if self.needs_grad(4) else None)
        elif self.kind == "gru":
            out.append(const(dU.sum(axis=(0, 1))) if self.needs_grad(3) else None)
        return tuple(out)

    def _rows_summed(self, dZ):
        """Z's gradient: dZ itself, or with `ids` its rows added up per table row (as `Index`'s
        backward does)."""
        if self.ids is None:
            return dZ
        out = B.array_module(dZ).zeros(self.inputs[0].shape, dtype=dZ.dtype)
        if not kernels.index_add_rows(out, self.ids, dZ):
            B.array_module(dZ).add.at(out, self.ids, dZ)
        return out

    def _differentiable_backward(self, g):
        leaves = [Tensor._make(t.data, t.requires_grad, None) for t in self.inputs]
        Z, R, h0 = leaves[:3]
        with enable_grad():
            if self.ids is not None:
                Z = ops.index(Z, self.ids)
            if self.kind == "lstm":
                Zb = Z + leaves[4] if self.has_bias else Z
                Y = composite_sequence("lstm", Zb, R, None, [h0, leaves[3]], self.mask, self.rmask)
            elif self.kind == "gru":
                Y = composite_sequence("gru", Z, R, leaves[3], [h0], self.mask, self.rmask)
            else:
                Y = composite_sequence("simple", Z, R, None, [h0], self.mask, self.rmask)
            if self.h_only:
                Y = Y[:, :, :h0.shape[-1]]
            wanted = [i for i, leaf in enumerate(leaves) if leaf.requires_grad]
            grads = _grad([Y], [leaves[i] for i in wanted], [g], create_graph=True, allow_unused=True)
        _rebind(grads, leaves, self.inputs, [g])
        out = [None] * len(leaves)
        for i, gr in zip(wanted, grads):
            out[i] = gr
        return tuple(out)


class RecurrentStep:
    """One step of a fusable cell on raw arrays, for inference (sampling, stepping a stateful
    model): the state and gate buffers are allocated once, every operation writes in place, and no
    Tensor or autograd record is made. `step(z)` takes the projected input z = x·kernel + bias
    (n, G·units) and returns h (n, units), a view of the carried state (copy it to keep it). The
    formulas and their float rounding are `RecurrentSequence.forward`'s, so a step here equals one
    step of the sequence op bit for bit. The cell's weights are read at every step (never cached),
    so training between steps is seen."""

    def __init__(self, cell, n=1):
        if not (hasattr(cell, "kind") and cell.fusable()):
            raise ValueError(f"RecurrentStep: {type(cell).__name__} with custom activations or formula is not "
                             "fusable; step it with cell(x, states) instead")
        self.cell, self.kind, self.n = cell, cell.kind, n
        xp = B.array_module(cell.recurrent_kernel.data)
        dt, H = cell.recurrent_kernel.dtype, cell.units
        self.states = [xp.zeros((n, s), dtype=dt) for s in cell.state_size]
        G = {"lstm": 4, "gru": 3, "simple": 1}[self.kind]
        self._a = a = xp.empty((n, G * H), dtype=dt)
        self._t1 = xp.empty((n, H), dtype=dt)
        self._t2 = xp.empty((n, H), dtype=dt)
        self._xp = xp
        # the gate blocks as views of the buffer, sliced once (LSTM: i, f, c̃, o; GRU: z, r, h)
        self._blocks = [a[:, k * H:(k + 1) * H] for k in range(G)]
        self._first2 = a[:, :2 * H]
        # float32: the sequence op's compiled kernels, on one-step buffers (n, 1, ·)
        self._k = rnn_kernels(cell.recurrent_kernel.data)
        if self._k is not None:
            S = len(cell.state_size)
            self._z1, self._g1 = xp.empty((n, G * H), dtype=dt), xp.empty((n, 1, G * H), dtype=dt)
            self._zi = np.arange(n).reshape(n, 1)  # row n of z is the step of sequence n
            self._tc1, self._u1 = xp.empty((n, 1, H), dtype=dt), xp.empty((n, 1, H), dtype=dt)
            self._y1, self._m1 = xp.empty((n, 1, S * H), dtype=dt), xp.zeros((n, 1), dtype=dt)
            self._b0 = xp.zeros(G * H, dtype=dt)
            # the LSTM kernel keeps its gates and tanh(c) time-major (T, N, ·): here (1, n, ·) views
            self._g1t, self._tc1t = self._g1.reshape(1, n, -1), self._tc1.reshape(1, n, -1)

    def reset(self, states=None):
        """Zero the state, or copy `states` (a list of (n, s) arrays) into it."""
        for k, s in enumerate(self.states):
            if states is None:
                s.fill(0)
            else:
                s[...] = states[k]

    def _sigmoid_(self, v):  # in place: 0.5 · (1 + tanh(0.5 · v)), the sequence op's _sigmoid
        xp = self._xp
        xp.multiply(v, 0.5, out=v)
        xp.tanh(v, out=v)
        xp.add(v, 1.0, out=v)
        xp.multiply(v, 0.5, out=v)

    def step(self, z, bias=None):
        """One step from the projected input z (n, G·units), plus `bias` (G·units) when given (the
        LSTM kernel adds it as it reads z, as the sequence op adds its input bias)."""
        xp, H, a, t1, t2 = self._xp, self.cell.units, self._a, self._t1, self._t2
        R = self.cell.recurrent_kernel.data
        h = self.states[0]
        if bias is not None and not (self._k is not None and self.kind == "lstm" and z.dtype == a.dtype == bias.dtype):
            z, bias = z + bias, None
        if self._k is not None and z.dtype == a.dtype:
            k, y1, m1 = self._k, self._y1, self._m1
            xp.matmul(h, R, out=a)
            if z.flags.c_contiguous:  # the kernels read z's rows in place, no copy
                z1 = z
            else:
                z1 = self._z1
                z1[...] = z
            if self.kind == "lstm":
                c = self.states[1]
                b0 = self._b0 if bias is None else xp.ascontiguousarray(bias)
                k.lstm_forward(z1, self._zi, b0, a, 0, h, c, m1, False, self._g1t, self._tc1t, y1, 0)
                c[...] = y1[:, 0, H:]
            elif self.kind == "gru":
                k.gru_forward(z1, self._zi, a, self.cell.recurrent_bias().data, 0, h, m1, False, self._g1, self._tc1,
                              self._u1, y1, 0)
            else:
                k.simple_forward(z1, self._zi, a, 0, h, m1, False, self._tc1, y1, 0)
            h[...] = y1[:, 0, :H]
        elif self.kind == "lstm":
            c = self.states[1]
            i, f, g, o = self._blocks
            xp.matmul(h, R, out=a)
            xp.add(z, a, out=a)
            self._sigmoid_(self._first2)
            xp.tanh(g, out=g)
            self._sigmoid_(o)
            xp.multiply(f, c, out=t1)
            xp.multiply(i, g, out=t2)
            xp.add(t1, t2, out=c)
            xp.tanh(c, out=t1)
            xp.multiply(o, t1, out=h)
        elif self.kind == "gru":
            xp.matmul(h, R, out=a)
            xp.add(a, self.cell.recurrent_bias().data, out=a)
            zr = a[:, :2 * H]
            xp.add(z[:, :2 * H], zr, out=zr)
            self._sigmoid_(zr)
            xp.multiply(a[:, H:2 * H], a[:, 2 * H:], out=t1)
            xp.add(z[:, 2 * H:], t1, out=t1)
            xp.tanh(t1, out=t1)  # n
            xp.subtract(h, t1, out=t2)
            xp.multiply(a[:, :H], t2, out=t2)
            xp.add(t1, t2, out=h)
        else:
            xp.matmul(h, R, out=a)
            xp.add(z, a, out=a)
            xp.tanh(a, out=h)
        return h


# -- cells ---------------------------------------------------------------------------------------
class _Cell(Layer):
    """What the three cells share: the weights, dropout masks, the per-step `call`."""

    gates = 1
    kind = "simple"
    _defaults = {"activation": "tanh", "recurrent_activation": "sigmoid"}

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive integer, got {units}")
        for what, p in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= p < 1:
                raise ValueError(f"{type(self).__name__}: {what} must be in [0, 1), got {p}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)

    @property
    def state_size(self):
        return [self.units]

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ShapeError(f"{self.name}: the last axis of the input must be known, got shape {input_shape}")
        gu = self.gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], gu), self.kernel_initializer,
                                      self.kernel_regularizer, self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, gu), self.recurrent_initializer,
                                                self.recurrent_regularizer, self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self._bias_init(), self.bias_regularizer,
                                        self.bias_constraint)

    # the pieces RNN.call assembles
    def input_bias(self):
        return self.bias

    def recurrent_bias(self):
        return None

    def step_fn(self):
        return _STEPS[self.kind]

    def fusable(self):
        """Whether the fused op computes this cell: default activations only."""
        return (self.activation is activations.tanh and self.recurrent_activation is activations.sigmoid
                and self.step_fn() is _STEPS[self.kind])

    def dropout_masks(self, n, dim, training, like):
        xp = B.array_module(like.data)
        gen = B.generator(xp)
        dmask = rmask = None
        if training and self.dropout > 0:
            dmask = ((gen.random((n, dim), dtype=B.float32) >= self.dropout).astype(like.dtype)
                     / like.dtype.type(1 - self.dropout))
        if training and self.recurrent_dropout > 0:
            rmask = ((gen.random((n, self.units), dtype=B.float32) >= self.recurrent_dropout).astype(like.dtype)
                     / like.dtype.type(1 - self.recurrent_dropout))
        return dmask, rmask

    def call(self, x, states=None, training=None):
        """One step: x (N, D), states (a list) → (output h, new states). Dropout masks are drawn
        per call here; `RNN` draws them once per sequence, as Keras does."""
        if states is None:
            states = [const(B.array_module(x.data).zeros((x.shape[0], s), dtype=x.dtype)) for s in self.state_size]
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        dmask, rmask = self.dropout_masks(x.shape[0], x.shape[-1], training, x)
        if dmask is not None:
            x = x * const(dmask)
        z = x @ self.kernel
        if self.input_bias() is not None:
            z = z + self.input_bias()
        new = self.step_fn()(z, states, self.recurrent_kernel, self.recurrent_bias(),
                             None if rmask is None else const(rmask), self.activation, self.recurrent_activation)
        return new[0], new

    def get_config(self):
        cfg = {**super().get_config(), "units": self.units,
               "activation": activations.serialize(self.activation),
               "recurrent_activation": activations.serialize(self.recurrent_activation),
               "use_bias": self.use_bias, "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}
        for k in ("kernel", "recurrent", "bias"):
            cfg[f"{k}_initializer"] = initializers.serialize(getattr(self, f"{k}_initializer"))
            cfg[f"{k}_regularizer"] = regularizers.serialize(getattr(self, f"{k}_regularizer"))
            cfg[f"{k}_constraint"] = constraints.serialize(getattr(self, f"{k}_constraint"))
        return cfg


@register
class SimpleRNNCell(_Cell):
    """One step of the course's RNN: h_t = tanh(x_t·kernel + h_{t−1}·recurrent_kernel + bias).

    >>> import neurona as nr
    >>> cell = SimpleRNNCell(3)
    >>> h, states = cell(nr.ones((2, 4)), [nr.zeros((2, 3))])
    >>> h.shape, [w.shape for w in cell.weights]
    ((2, 3), [(4, 3), (3, 3), (3,)])
    """

    gates, kind = 1, "simple"

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def fusable(self):
        return self.activation is activations.tanh

    def get_config(self):
        cfg = super().get_config()
        del cfg["recurrent_activation"]
        return cfg


@register
class LSTMCell(_Cell):
    """One LSTM step; gates i, f, c, o side by side in the weights (Keras layout). The forget
    gate's bias starts at 1 (`unit_forget_bias`, Jozefowicz et al. 2015), so the cell remembers
    by default at the start of training.

    >>> import neurona as nr
    >>> cell = LSTMCell(3)
    >>> h, (h2, c) = cell(nr.ones((2, 4)), [nr.zeros((2, 3)), nr.zeros((2, 3))])
    >>> h.shape, c.shape, cell.bias.tolist()[3:6]
    ((2, 3), (2, 3), [1.0, 1.0, 1.0])
    """

    gates, kind = 4, "lstm"

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, u = self.bias_initializer, self.units

        def init(shape, dtype="float32"):
            b = base(shape, dtype)
            b[u:2 * u] = 1
            return b

        return init

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@register
class GRUCell(_Cell):
    """One GRU step, gates z, r, h (Keras layout). `reset_after=True` (default; Keras ≥ 2.3,
    CuDNN and PyTorch) applies the reset gate after the recurrent product and keeps two biases,
    bias (2, 3·units); `reset_after=False` is the original formula with one bias.

    >>> import neurona as nr
    >>> cell = GRUCell(3)
    >>> h, _ = cell(nr.ones((2, 4)), [nr.zeros((2, 3))])
    >>> h.shape, cell.bias.shape
    ((2, 3), (2, 9))
    """

    gates, kind = 3, "gru"

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        return None if self.bias is None else (self.bias[0] if self.reset_after else self.bias)

    def recurrent_bias(self):
        if not self.reset_after:
            return None
        if self.bias is None:  # the recurrence always adds b_r: zeros when there is no bias
            return const(B.array_module(self.recurrent_kernel.data).zeros(3 * self.units, dtype=self.recurrent_kernel.dtype))
        return self.bias[1]

    def step_fn(self):
        return gru_step if self.reset_after else gru_step_reset_before

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


# -- sequence layers -----------------------------------------------------------------------------
def _as_mask(mask, n, t, op):
    if mask is None:
        return None
    arr = mask.data if isinstance(mask, Tensor) else mask
    arr = B.numpy.asarray(arr) if not B.is_array(arr) else arr
    if tuple(arr.shape) != (n, t):
        raise ShapeError(f"{op}: mask shape {tuple(arr.shape)} must be (batch, timesteps) = {(n, t)}")
    return arr.astype(bool)


def _sequence_input(x, op):
    if isinstance(x, (list, tuple)) and not isinstance(x, Tensor):
        lengths = {len(s) for s in x}
        if len(lengths) > 1:
            raise ShapeError(f"{op}: got ragged sequences of lengths {sorted(lengths)[:5]}...; pad them to one length "
                             "(Vocabulary.pad) and mask the padding (Embedding(mask_zero=True) or mask=)")
        x = Tensor(B.numpy.asarray(x, dtype=B.float32))
    if B.is_array(x):
        x = Tensor(x)
    if x.ndim != 3:
        raise ShapeError(f"{op}: expects input (batch, timesteps, features), got shape {x.shape}")
    return x


@register
class RNN(Layer):
    """Run a cell over the time axis: input (N, T, D) → (N, units), or (N, T, units) with
    `return_sequences`; `return_state` also returns the final states. `go_backwards` reads the
    sequence from the end (and returns the outputs in that reversed order, as Keras).
    `stateful=True` starts each batch from the previous batch's final states (one sample per
    row, same batch size every time): truncated BPTT, the gradient stops at the batch boundary.
    `initial_state=[...]` and `mask=` may be passed when calling.

    >>> import neurona as nr
    >>> RNN(LSTMCell(5), return_sequences=True)(nr.ones((2, 7, 3))).shape
    (2, 7, 5)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, dict):
            cell = get_registered(cell["class_name"]).from_config(dict(cell["config"]))
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise TypeError(f"{type(self).__name__}: cell must be a cell layer with state_size, got {cell!r}")
        self.cell = cell
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), bool(stateful)
        self.unroll = bool(unroll)  # accepted for Keras compatibility; the loop is always a loop
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states = None

    def __call__(self, x, *args, **kwargs):
        if isinstance(x, (list, tuple)) and x and not isinstance(x[0], Tensor) and not hasattr(x[0], "_record_call"):
            x = _sequence_input(x, self.name)  # nested lists: one batch of sequences (ragged is an error)
        return super().__call__(x, *args, **kwargs)

    @property
    def units(self):
        return self.cell.units

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input (batch, timesteps, features), got shape {tuple(input_shape)}")
        if not self.cell.built:
            if self.cell._device != self._device:
                self.cell.to(self._device)
            self.cell.build((input_shape[0], input_shape[2]))
            self.cell.built = True

    def reset_states(self, states=None):
        """Forget the carried state of a stateful layer (or set it to `states`)."""
        self.states = None if states is None else [s.data if isinstance(s, Tensor) else s for s in states]

    def _initial_states(self, x, initial_state):
        n = x.shape[0]
        xp = B.array_module(x.data)
        sizes = self.cell.state_size
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(sizes):
                raise ValueError(f"{self.name}: initial_state needs {len(sizes)} tensors, got {len(states)}")
            out = []
            for s, size in zip(states, sizes):
                s = s if isinstance(s, Tensor) else Tensor(s)
                if s.shape != (n, size):
                    raise ShapeError(f"{self.name}: initial state shape {s.shape} must be {(n, size)}")
                out.append(s)
            return out
        if self.stateful and self.states is not None:
            if self.states[0].shape[0] != n:
                raise ValueError(f"{self.name} is stateful with batch size {self.states[0].shape[0]}, got a batch of "
                                 f"{n}; keep the batch size fixed (drop the last partial batch) or call reset_states()")
            return [const(s) for s in self.states]
        return [const(xp.zeros((n, s), dtype=x.dtype)) for s in sizes]

    def call(self, x, training=None, mask=None, initial_state=None):
        x = _sequence_input(x, self.name)
        if mask is None:
            mask = get_mask(x)
        n, t, d = x.shape
        mask = _as_mask(mask, n, t, self.name)
        cell = self.cell
        states = self._initial_states(x, initial_state)
        dmask, rmask = cell.dropout_masks(n, d, training, x) if hasattr(cell, "dropout_masks") else (None, None)
        if hasattr(cell, "step_fn"):
            if dmask is not None:
                x = x * const(dmask[:, None, :])
            z, ids = _input_projection(x, cell.kernel)  # with ids, step t of row n is z[ids[n, t]]
            if ids is not None and not cell.fusable():
                z, ids = ops.index(z, ids), None
            # a fused LSTM adds its input bias inside the sequence op
            fold = cell.fusable() and cell.kind == "lstm" and cell.input_bias() is not None
            if cell.input_bias() is not None and not fold:
                z = z + cell.input_bias()
            if self.go_backwards:
                if ids is None:
                    z = z[:, ::-1]
                else:
                    ids = np.ascontiguousarray(ids[:, ::-1])
                mask = None if mask is None else mask[:, ::-1]
            R, rb = cell.recurrent_kernel, cell.recurrent_bias()
            if cell.fusable():
                extra = [rb] if cell.kind == "gru" else [cell.input_bias()] if fold else []
                # the cells' sequence only when the final cell state is wanted
                h_only = not (self.return_state or self.stateful)
                Y = RecurrentSequence.apply(z, R, *states, *extra, kind=cell.kind, mask=mask, rmask=rmask, ids=ids,
                                            h_only=h_only)
            else:
                Y = composite_sequence(cell.step_fn(), z, R, rb, states, mask, rmask, cell.activation,
                                       cell.recurrent_activation)
        else:  # a user's cell: call it step by step
            xs = x[:, ::-1] if self.go_backwards else x
            if mask is not None and self.go_backwards:
                mask = mask[:, ::-1]
            outs, cur = [], states
            for k in range(t):
                _, new = cell(xs[:, k], cur, training=training)
                if mask is not None:
                    mk = const(mask[:, k, None].astype(x.dtype))
                    new = [s + mk * (nw - s) for nw, s in zip(new, cur)]
                cur = list(new)
                outs.append(ops.concatenate(cur, axis=-1) if len(cur) > 1 else cur[0])
            Y = ops.stack(outs, axis=1)
        sizes = cell.state_size
        if Y.shape[-1] < sum(sizes):  # h alone (RecurrentSequence's h_only)
            sizes = sizes[:1]
        offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        last = [Y[:, -1, offsets[i]:offsets[i + 1]] for i in range(len(sizes))]
        if self.stateful:
            self.states = [s.data.copy() for s in last]
        if self.return_sequences:
            out = Y[:, :, :sizes[0]] if len(sizes) > 1 else Y
            if mask is not None and self.zero_output_for_mask:
                out = out * const(mask[:, :, None].astype(out.dtype))
            if mask is not None:
                set_mask(out, mask[:, ::-1] if self.go_backwards else mask)
        else:
            out = last[0]
        return [out, *last] if self.return_state else out

    def compute_output_shape(self, input_shape):
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.cell.units) if self.return_sequences else (n, self.cell.units)
        if self.return_state:
            return [out, *[(n, s) for s in self.cell.state_size]]
        return out

    def get_config(self):
        return {**super().get_config(), "cell": {"class_name": type(self.cell).__name__, "config": self.cell.get_config()},
                **self._rnn_config()}

    def _rnn_config(self):
        return {"return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask}


class _RNNLayer(RNN):
    """SimpleRNN/LSTM/GRU: an RNN that builds its own cell from the layer's arguments (Keras'
    signature) and exposes the cell's weights as its own attributes."""

    cell_class = None
    _rnn_keys = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")

    def __init__(self, units, **kwargs):
        rnn_args = {k: kwargs.pop(k) for k in self._rnn_keys if k in kwargs}
        base = {k: kwargs.pop(k) for k in ("name", "trainable", "dtype", "input_shape", "input_dim",
                                           "batch_input_shape") if k in kwargs}
        cell = self.cell_class(units, name="cell", dtype=base.get("dtype", "float32"), **kwargs)
        super().__init__(cell, **rnn_args, **base)
        self.cell.name = f"{self.name}/cell"  # its weights: '<layer>/cell/kernel', stable across save/load

    kernel = property(lambda self: self.cell.kernel)
    recurrent_kernel = property(lambda self: self.cell.recurrent_kernel)
    bias = property(lambda self: self.cell.bias)

    # ONNX gate order per kind, as indices of Keras' blocks: LSTM i,f,c,o -> ONNX i,o,f,c; GRU z,r,h is ONNX's
    _ONNX = {"simple": ("RNN", (0,)), "lstm": ("LSTM", (0, 3, 1, 2)), "gru": ("GRU", (0, 1, 2))}

    def _onnx(self, ctx, x):  # see neurona.saving.onnx_export; ONNX's recurrent ops are time-major
        cell = self.cell
        why = ("stateful" if self.stateful else "go_backwards" if self.go_backwards else
               "return_state" if self.return_state else None)
        if activations.serialize(cell.activation) != "tanh" or (
                cell.kind != "simple" and activations.serialize(cell.recurrent_activation) != "sigmoid"):
            why = "activations other than tanh (and sigmoid for the gates)"
        if why:
            raise ValueError(f"export_onnx: {self.name} ({type(self).__name__}) with {why} has no ONNX export")
        import numpy as np  # noqa: PLC0415 - only the exporter needs host arrays here

        op_type, order = self._ONNX[cell.kind]
        h = cell.units

        def gates(w):  # Keras (in, G·h) -> ONNX (1, G·h, in) in ONNX's gate order
            return np.concatenate([w[:, g * h:(g + 1) * h] for g in order], axis=1).T[None]

        W, R = gates(cell.kernel.numpy()), gates(cell.recurrent_kernel.numpy())
        if cell.bias is None:
            b_in, b_rec = np.zeros(W.shape[1], W.dtype), np.zeros(W.shape[1], W.dtype)
        elif cell.kind == "gru" and cell.reset_after:  # (2, 3h): input bias, recurrent bias
            b_in, b_rec = (gates(b[None])[0, :, 0] for b in cell.bias.numpy())
        else:  # one bias, added with the input projection
            b_in, b_rec = gates(cell.bias.numpy()[None])[0, :, 0], np.zeros(W.shape[1], W.dtype)
        attrs = {"hidden_size": h}
        if cell.kind == "gru":
            attrs["linear_before_reset"] = int(cell.reset_after)
        xt = ctx.op("Transpose", [x], perm=[1, 0, 2])  # (N, T, D) -> (T, N, D)
        y = ctx.op(op_type, [xt, ctx.const("W", W), ctx.const("R", R),
                             ctx.const("B", np.concatenate([b_in, b_rec])[None])], **attrs)
        y = ctx.op("Squeeze", [y, ctx.const("direction_axis", np.array([1], np.int64))])  # (T, N, h)
        if self.return_sequences:
            return ctx.op("Transpose", [y], perm=[1, 0, 2])
        return ctx.op("Gather", [y, ctx.const("last_step", np.array(-1, np.int64))], axis=0)  # (N, h)

    def get_config(self):
        cell_cfg = self.cell.get_config()
        for k in ("name", "trainable", "dtype"):
            cell_cfg.pop(k, None)
        return {**Layer.get_config(self), **cell_cfg, **self._rnn_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@register
class SimpleRNN(_RNNLayer):
    """The course's fully recurrent layer, h_t = tanh(W_hh·h_{t−1} + W_xh·x_t + b) (Keras'
    SimpleRNN: kernel = W_xhᵀ, recurrent_kernel = W_hhᵀ).

    >>> import neurona as nr
    >>> SimpleRNN(4, return_sequences=True)(nr.ones((2, 5, 3))).shape
    (2, 5, 4)
    """

    cell_class = SimpleRNNCell


@register
class LSTM(_RNNLayer):
    """Long short-term memory layer (Keras' LSTM; fused sequence op for tanh/sigmoid).

    >>> import neurona as nr
    >>> out, h, c = LSTM(4, return_state=True)(nr.ones((2, 5, 3)))
    >>> out.shape, h.shape, c.shape
    ((2, 4), (2, 4), (2, 4))
    """

    cell_class = LSTMCell


@register
class GRU(_RNNLayer):
    """Gated recurrent unit layer (Keras' GRU, `reset_after=True` by default).

    >>> import neurona as nr
    >>> GRU(4)(nr.ones((2, 5, 3))).shape
    (2, 4)
    """

    cell_class = GRUCell


@register
class Bidirectional(Layer):
    """Run `layer` forwards and a copy of it backwards over the sequence and merge the two
    (`merge_mode`: 'concat', 'sum', 'mul', 'ave' or None for a list). With return_sequences the
    backward outputs are put back in forward time order; masked steps output zeros.

    >>> import neurona as nr
    >>> Bidirectional(LSTM(4, return_sequences=True))(nr.ones((2, 5, 3))).shape
    (2, 5, 8)
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer = get_registered(layer["class_name"]).from_config(dict(layer["config"]))
        if isinstance(backward_layer, dict):
            backward_layer = get_registered(backward_layer["class_name"]).from_config(dict(backward_layer["config"]))
        if not isinstance(layer, RNN):
            raise TypeError(f"Bidirectional: layer must be a recurrent layer, got {type(layer).__name__}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"Bidirectional: merge_mode must be concat, sum, mul, ave or None, not {merge_mode!r}")
        self.merge_mode = merge_mode
        cfg = layer.get_config()
        if not cfg["name"].startswith("forward_"):
            cfg["name"] = f"forward_{cfg['name']}"
        self.forward_layer = type(layer).from_config({**cfg, "zero_output_for_mask": layer.return_sequences})
        if backward_layer is None:
            bcfg = {**cfg, "name": "backward_" + cfg["name"][len("forward_"):], "go_backwards": not layer.go_backwards,
                    "zero_output_for_mask": layer.return_sequences}
            backward_layer = type(layer).from_config(bcfg)
        self.backward_layer = backward_layer
        self.return_sequences, self.return_state = layer.return_sequences, layer.return_state

    def build(self, input_shape):
        for la in self._sublayers():
            if la._device != self._device:
                la.to(self._device)
            la.build(input_shape)
            la.built = True

    def call(self, x, training=None, mask=None, initial_state=None):
        x = _sequence_input(x, self.name)
        if mask is None:
            mask = get_mask(x)
        fw_init = bw_init = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_init, bw_init = initial_state[:half], initial_state[half:]
        fw = self.forward_layer(x, training=training, mask=mask, initial_state=fw_init)
        bw = self.backward_layer(x, training=training, mask=mask, initial_state=bw_init)
        fw_states = bw_states = []
        if self.return_state:
            fw, *fw_states = fw
            bw, *bw_states = bw
        if self.return_sequences:
            bw = bw[:, ::-1]
        if self.merge_mode == "concat":
            out = ops.concatenate([fw, bw], axis=-1)
        elif self.merge_mode == "sum":
            out = fw + bw
        elif self.merge_mode == "mul":
            out = fw * bw
        elif self.merge_mode == "ave":
            out = (fw + bw) * 0.5
        else:
            out = [fw, bw]
        if self.return_sequences and mask is not None and self.merge_mode is not None:
            set_mask(out, _as_mask(mask, x.shape[0], x.shape[1], self.name))
        if self.return_state:
            return [*(out if isinstance(out, list) else [out]), *fw_states, *bw_states]
        return out

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        main = shape[0] if self.return_state else shape
        if self.merge_mode == "concat":
            main = (*main[:-1], 2 * main[-1])
        outs = [main, main] if self.merge_mode is None else [main]
        if self.return_state:
            return [*outs, *shape[1:], *shape[1:]]
        return outs if self.merge_mode is None else main

    def get_config(self):
        def spec(la):
            return {"class_name": type(la).__name__, "config": la.get_config()}

        return {**super().get_config(), "layer": spec(self.forward_layer), "merge_mode": self.merge_mode,
                "backward_layer": spec(self.backward_layer)}


@register
class TimeDistributed(Layer):
    """Apply `layer` to every time step: (N, T, ...) → (N, T, ...'), by folding time into the
    batch (one call, not T calls).

    >>> import neurona as nr
    >>> from neurona.layers import Dense
    >>> TimeDistributed(Dense(2))(nr.ones((3, 4, 5))).shape
    (3, 4, 2)
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer = get_registered(layer["class_name"]).from_config(dict(layer["config"]))
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: expected a Layer, got {type(layer).__name__}")
        self.layer = layer

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ShapeError(f"{self.name}: expects input (batch, timesteps, ...), got shape {tuple(input_shape)}")
        if not self.layer.built:
            if self.layer._device != self._device:
                self.layer.to(self._device)
            self.layer.build((None, *tuple(input_shape)[2:]))
            self.layer.built = True

    def call(self, x, training=None, mask=None):
        n, t = x.shape[:2]
        y = self.layer(x.reshape(n * t, *x.shape[2:]), training=training)
        out = y.reshape(n, t, *y.shape[1:])
        m = mask if mask is not None else get_mask(x)
        if m is not None:
            set_mask(out, m)
        return out

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None, *tuple(input_shape)[2:]))
        return (input_shape[0], input_shape[1], *inner[1:])

    def get_config(self):
        return {**super().get_config(), "layer": {"class_name": type(self.layer).__name__,
                                                  "config": self.layer.get_config()}}


@register
class Masking(Layer):
    """Mark the time steps whose features all equal `mask_value` as padding for the recurrent
    layers that follow (Keras' Masking); the values themselves pass through unchanged.

    >>> import neurona as nr
    >>> x = nr.tensor([[[1.0], [0.0]]])
    >>> get_mask(Masking()(x)).tolist()
    [[True, False]]
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, x, training=None):
        xp = B.array_module(x.data)
        out = x * 1.0  # a new tensor to carry the mask
        return set_mask(out, xp.any(x.data != self.mask_value, axis=-1))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
