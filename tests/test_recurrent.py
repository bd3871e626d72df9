"""Recurrent layers vs PyTorch (nn.RNN/LSTM/GRU): outputs, final states and gradients, for
return_sequences/state, go_backwards, bidirectional, stacked and masked; gradcheck of the fused
sequence op (first and second order); cells; TBPTT; save/load; errors.

Weight mapping (documented in recurrent.py): kernel = weight_ih.T, recurrent_kernel = weight_hh.T;
LSTM gates i, f, g, o in both (bias = b_ih + b_hh); GRU torch (r, z, n) = Keras (z, r, h) with the
first two blocks swapped, bias = [b_ih; b_hh] (reset_after=True).
"""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona.layers import (GRU, LSTM, RNN, Bidirectional, Dense, Embedding, GRUCell, LSTMCell, Masking,
                            SimpleRNN, SimpleRNNCell, TimeDistributed)
from neurona.models import Sequential, load_model
from neurona.nn.layers.recurrent import RecurrentSequence, composite_sequence, get_mask

TOL = dict(rtol=1e-9, atol=1e-10)


def _perm(kind, h):
    if kind == "gru":  # torch (r, z, n) → Keras (z, r, h)
        return np.r_[h:2 * h, 0:h, 2 * h:3 * h]
    return np.arange({"lstm": 4, "rnn": 1}[kind] * h)


def _copy_weights(layer, tmod, kind, suffix="_l0"):
    """Copy torch's weights of one direction/layer into a neurona recurrent layer."""
    h = tmod.hidden_size
    p = _perm(kind, h)
    wih = getattr(tmod, "weight_ih" + suffix).detach().numpy()[p]
    whh = getattr(tmod, "weight_hh" + suffix).detach().numpy()[p]
    bih = getattr(tmod, "bias_ih" + suffix).detach().numpy()[p]
    bhh = getattr(tmod, "bias_hh" + suffix).detach().numpy()[p]
    bias = np.stack([bih, bhh]) if kind == "gru" else bih + bhh
    layer.set_weights([wih.T.copy(), whh.T.copy(), bias])


def _grad_back(layer_grads, kind, h):
    """neurona's (kernel, recurrent_kernel) gradients in torch's layout."""
    inv = np.argsort(_perm(kind, h))
    return [g.T[inv] for g in layer_grads]


TORCH = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
NEURONA = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_layer_matches_torch_outputs_states_and_gradients(kind, go_backwards):
    torch.manual_seed(0)
    n, t, d, h = 3, 6, 4, 5
    tm = TORCH[kind](d, h, batch_first=True).double()
    layer = NEURONA[kind](h, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype="float64")
    x_np = np.random.default_rng(1).standard_normal((n, t, d))
    x = nr.tensor(x_np, requires_grad=True)
    layer.build((n, t, d))
    _copy_weights(layer, tm, kind)
    out, *states = layer(x)

    xt = torch.tensor(x_np[:, ::-1].copy() if go_backwards else x_np, requires_grad=True)
    ref, ref_state = tm(xt)
    ref_states = [s[0] for s in ref_state] if kind == "lstm" else [ref_state[0]]
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
    for s, r in zip(states, ref_states):
        np.testing.assert_allclose(s.numpy(), r.detach().numpy(), **TOL)

    rng = np.random.default_rng(2)
    vs = [rng.standard_normal(o.shape) for o in [out, *states]]
    total = sum(((o * nr.tensor(v)).sum() for o, v in zip([out, *states], vs)), nr.tensor(0.0, dtype="float64"))
    total.backward()
    ref_total = sum((r * torch.tensor(v)).sum() for r, v in zip([ref, *ref_states], vs))
    ref_total.backward()
    gx = xt.grad.numpy()[:, ::-1] if go_backwards else xt.grad.numpy()
    np.testing.assert_allclose(x.grad.numpy(), gx, **TOL)
    gk, grk = _grad_back([layer.kernel.grad.numpy(), layer.recurrent_kernel.grad.numpy()], kind, h)
    np.testing.assert_allclose(gk, tm.weight_ih_l0.grad.numpy(), **TOL)
    np.testing.assert_allclose(grk, tm.weight_hh_l0.grad.numpy(), **TOL)
    p = _perm(kind, h)
    gb = layer.bias.grad.numpy()
    if kind == "gru":
        np.testing.assert_allclose(gb[0], tm.bias_ih_l0.grad.numpy()[p], **TOL)
        np.testing.assert_allclose(gb[1], tm.bias_hh_l0.grad.numpy()[p], **TOL)
    else:
        np.testing.assert_allclose(gb, tm.bias_ih_l0.grad.numpy()[p], **TOL)


def _matmul_inputs(y):
    """The first operands of every matmul in the graph that produced y."""
    seen, stack, found = set(), [y._ctx], []
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if type(fn).__name__ == "MatMul":
            found.append(fn.inputs[0])
        stack.extend(t._ctx for t in fn.inputs)
    return found


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_embedding_folded_into_the_input_projection_matches_torch(kind, go_backwards):
    """Embedding → recurrent layer: the layer projects the embedding table (V rows) instead of the
    looked-up rows (N·T); outputs and every gradient, the table's included, equal torch's."""
    torch.manual_seed(7)
    v, n, t, d, h = 5, 3, 6, 4, 5
    emb, tm = torch.nn.Embedding(v, d).double(), TORCH[kind](d, h, batch_first=True).double()
    table = nr.tensor(emb.weight.detach().numpy().copy(), requires_grad=True)
    layer = NEURONA[kind](h, return_sequences=True, go_backwards=go_backwards, dtype="float64")
    layer.build((n, t, d))
    _copy_weights(layer, tm, kind)
    ids = np.random.default_rng(3).integers(0, v, (n, t))
    out = layer(nr.embedding(ids, table))
    assert any(a is table for a in _matmul_inputs(out))  # the fold was taken: table·kernel
    ref, _ = tm(emb(torch.tensor(ids[:, ::-1].copy() if go_backwards else ids)))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
    vs = np.random.default_rng(4).standard_normal(out.shape)
    (out * nr.tensor(vs)).sum().backward()
    (ref * torch.tensor(vs)).sum().backward()
    np.testing.assert_allclose(table.grad.numpy(), emb.weight.grad.numpy(), **TOL)
    gk, grk = _grad_back([layer.kernel.grad.numpy(), layer.recurrent_kernel.grad.numpy()], kind, h)
    np.testing.assert_allclose(gk, tm.weight_ih_l0.grad.numpy(), **TOL)
    np.testing.assert_allclose(grk, tm.weight_hh_l0.grad.numpy(), **TOL)
    gb = layer.bias.grad.numpy()
    np.testing.assert_allclose(gb[0] if kind == "gru" else gb, tm.bias_ih_l0.grad.numpy()[_perm(kind, h)], **TOL)
    # a table with more rows than the lookup has is not projected whole
    big = nr.tensor(np.random.default_rng(5).standard_normal((n * t + 1, d)), requires_grad=True)
    assert not any(a is big for a in _matmul_inputs(layer(nr.embedding(ids, big))))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_stacked_and_masked_match_torch(kind):
    torch.manual_seed(3)
    n, t, d, h = 4, 7, 3, 4
    lengths = [7, 5, 2, 6]
    tm = TORCH[kind](d, h, num_layers=2, bidirectional=True, batch_first=True).double()
    x_np = np.random.default_rng(4).standard_normal((n, t, d))
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]
    x_np[~mask] = 0.0
    layers = [Bidirectional(NEURONA[kind](h, return_sequences=True, dtype="float64"), dtype="float64")
              for _ in range(2)]
    x = nr.tensor(x_np, requires_grad=True)
    layers[0].build((n, t, d))
    layers[1].build((n, t, 2 * h))
    for li, bi in enumerate(layers):
        _copy_weights(bi.forward_layer, tm, kind, f"_l{li}")
        _copy_weights(bi.backward_layer, tm, kind, f"_l{li}_reverse")
    y = layers[1](layers[0](x, mask=mask))  # the mask travels from the first layer to the second
    xt = torch.tensor(x_np, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, lengths, batch_first=True, enforce_sorted=False)
    ref_packed, _ = tm(packed)
    ref, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_packed, batch_first=True, total_length=t)
    np.testing.assert_allclose(y.numpy(), ref.detach().numpy(), **TOL)
    v = np.random.default_rng(5).standard_normal(y.shape) * mask[..., None]
    (y * nr.tensor(v)).sum().backward()
    (ref * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **TOL)
    gk = _grad_back([layers[1].backward_layer.kernel.grad.numpy()], kind, h)[0]
    np.testing.assert_allclose(gk, tm.weight_ih_l1_reverse.grad.numpy(), **TOL)


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_sequence_op_gradcheck_first_and_second_order(kind, masked):
    rng = np.random.default_rng(0)
    n, t, h = 2, 4, 2
    g = {"simple": 1, "lstm": 4, "gru": 3}[kind]
    Z = nr.tensor(rng.standard_normal((n, t, g * h)), requires_grad=True)
    R = nr.tensor(rng.standard_normal((h, g * h)) * 0.5, requires_grad=True)
    h0 = nr.tensor(rng.standard_normal((n, h)), requires_grad=True)
    extra = [nr.tensor(rng.standard_normal((n, h)), requires_grad=True)] if kind == "lstm" else []
    if kind == "gru":
        extra = [nr.tensor(rng.standard_normal(3 * h), requires_grad=True)]
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], dtype=bool) if masked else None
    rmask = rng.choice([0.0, 2.0], (n, h)) if masked else None

    def fused(*ins):
        return RecurrentSequence.apply(*ins, kind=kind, mask=mask, rmask=rmask)

    ins = [Z, R, h0, *extra]
    assert nr.gradcheck(fused, ins)
    if masked:  # second order (the create_graph path) once per cell, on the harder masked case
        assert nr.gradgradcheck(fused, ins)
    states = [h0, extra[0]] if kind == "lstm" else [h0]
    rb = extra[0] if kind == "gru" else None
    ref = composite_sequence(kind, Z, R, rb, states, mask, rmask)
    np.testing.assert_allclose(fused(*ins).numpy(), ref.numpy(), **TOL)
    if kind == "lstm":  # the h-only output (a layer without return_state), first and second order

        def h_only(*ins):
            return RecurrentSequence.apply(*ins, kind=kind, mask=mask, rmask=rmask, h_only=True)

        np.testing.assert_allclose(h_only(*ins).numpy(), ref.numpy()[:, :, :h], **TOL)
        assert nr.gradcheck(h_only, ins)
        if masked:
            assert nr.gradgradcheck(h_only, ins)


@pytest.mark.parametrize("cell_cls,layer_cls", [(SimpleRNNCell, SimpleRNN), (LSTMCell, LSTM), (GRUCell, GRU)])
def test_cells_step_by_step_equal_the_fused_layer(cell_cls, layer_cls):
    nr.manual_seed(0)
    layer = layer_cls(4, return_sequences=True)
    x = nr.randn(2, 5, 3)
    y = layer(x).numpy()
    cell = cell_cls(4)
    cell.build((None, 3))
    cell.built = True
    cell.set_weights(layer.get_weights())
    states = [nr.zeros((2, 4)) for _ in cell.state_size]
    for k in range(5):
        out, states = cell(x[:, k], states)
        np.testing.assert_allclose(out.numpy(), y[:, k], rtol=1e-5, atol=1e-6)
    # the generic RNN around the cell runs the same (composite) computation
    generic = RNN(cell, return_sequences=True)
    np.testing.assert_allclose(generic(x).numpy(), y, rtol=1e-5, atol=1e-6)


def test_custom_activation_takes_the_composite_path_and_gru_reset_before():
    nr.manual_seed(1)
    x = nr.randn(2, 4, 3)
    relu_rnn = SimpleRNN(3, activation="relu")
    out = relu_rnn(x)
    k, r, b = (w.numpy() for w in relu_rnn.weights)
    h = np.zeros((2, 3), np.float32)
    for t in range(4):
        h = np.maximum(x.numpy()[:, t] @ k + h @ r + b, 0)
    np.testing.assert_allclose(out.numpy(), h, rtol=1e-5, atol=1e-6)
    gru = GRU(3, reset_after=False)
    assert gru(x).shape == (2, 3) and gru.bias.shape == (9,)


def test_stateful_tbptt_carries_state_and_cuts_gradient():
    nr.manual_seed(2)
    full = LSTM(4, return_sequences=True)
    x = nr.randn(2, 8, 3)
    y_full = full(x).numpy()
    st = LSTM(4, return_sequences=True, stateful=True)
    st.build((2, 8, 3))
    st.set_weights(full.get_weights())
    first = nr.tensor(x.numpy()[:, :4], requires_grad=True)
    st(first)
    y2 = st(nr.tensor(x.numpy()[:, 4:]))
    np.testing.assert_allclose(y2.numpy(), y_full[:, 4:], rtol=1e-5, atol=1e-6)
    y2.sum().backward()
    assert first.grad is None  # truncated BPTT: nothing flows back into the previous batch
    with pytest.raises(ValueError, match="stateful with batch size 2, got a batch of 3"):
        st(nr.randn(3, 4, 3))
    st.reset_states()
    np.testing.assert_allclose(st(x).numpy(), y_full, rtol=1e-5, atol=1e-6)


def test_embedding_mask_zero_in_sequential_ignores_padding():
    nr.manual_seed(3)
    model = Sequential([Embedding(10, 4, mask_zero=True), LSTM(5, return_sequences=True), LSTM(3)])
    padded = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    short = np.array([[3, 4, 5]])
    np.testing.assert_allclose(model(padded).numpy()[0], model(short).numpy()[0], rtol=1e-5, atol=1e-6)
    assert get_mask(Masking()(nr.zeros((1, 2, 3)))).tolist() == [[False, False]]


def test_dropout_masks_are_per_sequence_and_off_at_inference():
    nr.manual_seed(4)
    layer = LSTM(4, dropout=0.5, recurrent_dropout=0.5)
    x = nr.randn(3, 5, 2)
    a, b = layer(x, training=False).numpy(), layer(x).numpy()
    np.testing.assert_array_equal(a, b)
    c = layer(x, training=True).numpy()
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(4, dropout=1.5)


def test_initial_state_time_distributed_and_errors():
    nr.manual_seed(5)
    x = nr.randn(2, 3, 4)
    h0, c0 = nr.randn(2, 6), nr.randn(2, 6)
    layer = LSTM(6, return_state=True)
    _, h, c = layer(x, initial_state=[h0, c0])
    _, h_zero, _ = layer(x)
    assert not np.allclose(h.numpy(), h_zero.numpy())
    assert TimeDistributed(Dense(2))(x).shape == (2, 3, 2)
    with pytest.raises(nr.ShapeError, match="ragged sequences"):
        LSTM(2)([[[1.0]], [[1.0], [2.0]]])
    with pytest.raises(nr.ShapeError, match=r"\(batch, timesteps, features\)"):
        LSTM(2)(nr.zeros((2, 3)))
    with pytest.raises(ValueError, match="initial_state needs 2"):
        layer(x, initial_state=[h0])


def test_save_load_round_trip_and_training(tmp_path):
    nr.manual_seed(6)
    model = Sequential([Embedding(12, 8, mask_zero=True, input_shape=(6,)),
                        Bidirectional(GRU(8, return_sequences=True)), LSTM(8), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(1, 12, (16, 6))
    x[:4, 4:] = 0
    y = x[:, 0] % 3
    hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    names = [t.name for t in model.weights]
    assert "lstm_cell" not in " ".join(names) and any(n.endswith("/cell/recurrent_kernel") for n in names)


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_recurrent_step_equals_the_sequence_op_bit_for_bit(kind):
    from neurona.layers import GRUCell, LSTMCell, SimpleRNNCell
    from neurona.nn.layers.recurrent import RecurrentStep

    cell = {"simple": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind](6)
    rng = np.random.default_rng(3)
    cell(nr.Tensor(rng.standard_normal((2, 5), dtype=np.float32)))  # builds the weights
    Z = rng.standard_normal((2, 7, cell.kernel.shape[1]), dtype=np.float32)
    states = [np.zeros((2, s), dtype=np.float32) for s in cell.state_size]
    extra = [cell.recurrent_bias().data] if kind == "gru" else []
    Y = RecurrentSequence().forward(Z, cell.recurrent_kernel.data, *states, *extra, kind=kind)
    step = RecurrentStep(cell, 2)
    for t in range(7):
        h = step.step(Z[:, t].copy())
        np.testing.assert_array_equal(h, Y[:, t, :6])
        np.testing.assert_array_equal(np.concatenate(step.states, axis=1), Y[:, t])
    step.reset()
    assert not any(s.any() for s in step.states)
    with pytest.raises(ValueError, match="not fusable"):
        RecurrentStep(LSTMCell(3, activation="relu"))
