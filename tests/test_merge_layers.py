"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate): forward and
backward against PyTorch and gradcheck in float64, shape errors that name the layer and every
shape, config round trips, and the functional model around them: summary, save/load with
identical predictions, ONNX export checked in onnxruntime, fit(jit=True) against eager, and models
recorded under `defer_build`."""
import json

import numpy as np
import pytest
import torch
from oracle import check_op

import neurona as nr
from neurona.layers import (Activation, Add, Average, BatchNormalization, Concatenate, Conv2D, Dense, Flatten,
                            GlobalAveragePooling2D, Maximum, Minimum, Multiply, Subtract)
from neurona.models import Input, Model, load_model
from neurona.models.functional import defer_build
from neurona.nn.layer import get_registered


def _offset(k):
    """Inputs spaced ≥ 0.1 apart within a tensor and shifted by 0.013·k between tensors: no ties
    for Maximum/Minimum, so the gradient has one owner and central differences hold."""
    def gen(rng, shape):
        n = int(np.prod(shape))
        return rng.permutation(np.linspace(-2.0, 2.0, n)).reshape(shape) + 0.013 * k
    return gen


def _stack(xs):
    return torch.stack(list(xs))


ELEMENTWISE = [
    (Add, lambda *xs: sum(xs[1:], xs[0])),
    (Subtract, lambda a, b: a - b),
    (Multiply, lambda *xs: torch.prod(_stack(xs), 0)),
    (Average, lambda *xs: _stack(xs).mean(0)),
    (Maximum, lambda *xs: _stack(xs).amax(0)),
    (Minimum, lambda *xs: _stack(xs).amin(0)),
]


CASES = [(cls, ref, shape, count) for cls, ref in ELEMENTWISE
         for shape, count in [((4, 5), 2), ((2, 3, 4, 4), 2), ((3, 6), 3)]
         if not (cls is Subtract and count != 2)]  # Subtract takes exactly two inputs


@pytest.mark.parametrize("cls,ref,shape,count", CASES, ids=[f"{c.__name__}-{s}x{n}" for c, _, s, n in CASES])
def test_elementwise_merges_match_torch(cls, ref, shape, count):
    layer = cls()
    check_op([shape] * count, lambda *xs: layer(list(xs)), ref,
             gen=[_offset(k) for k in range(count)], gc_shapes=[(2, 3)] * count)


@pytest.mark.parametrize("axis,shapes", [(1, [(2, 3, 4, 4), (2, 5, 4, 4)]), (-1, [(3, 2), (3, 4), (3, 1)]),
                                         (2, [(2, 3, 2, 5), (2, 3, 4, 5)]), (-3, [(2, 1, 3, 3), (2, 2, 3, 3)])])
def test_concatenate_matches_torch(axis, shapes):
    layer = Concatenate(axis=axis)
    check_op(shapes, lambda *xs: layer(list(xs)), lambda *xs: torch.cat(xs, dim=axis))
    want = list(shapes[0])
    want[axis] = sum(s[axis] for s in shapes)
    assert layer.compute_output_shape([(None, *s[1:]) for s in shapes]) == (None, *want[1:])


def test_tied_maximum_shares_the_gradient():
    a = nr.tensor([[1.0, 2.0]], requires_grad=True)
    b = nr.tensor([[1.0, 0.0]], requires_grad=True)
    Maximum()([a, b]).sum().backward()
    assert a.grad.tolist() == [[0.5, 1.0]] and b.grad.tolist() == [[0.5, 0.0]]


def test_shape_errors_name_the_layer_and_every_shape():
    a, b = Input(shape=(3, 4, 4)), Input(shape=(2, 4, 4))
    with pytest.raises(nr.ops.ShapeError, match=r"Add res_add: .*same shape.*axis 1 differs, "
                                                r"shapes \(None, 3, 4, 4\), \(None, 2, 4, 4\)"):
        Add(name="res_add")([a, b])
    with pytest.raises(nr.ops.ShapeError, match=r"Multiply .*same number of axes.*\(2, 3\), \(2, 3, 1\)"):
        Multiply()([nr.ones((2, 3)), nr.ones((2, 3, 1))])
    with pytest.raises(nr.ops.ShapeError, match=r"axis 0 differs, shapes \(2, 3\), \(4, 3\)"):
        Average()([nr.ones((2, 3)), nr.ones((4, 3))])  # eager: the batch axis is checked too
    with pytest.raises(ValueError, match=r"Add .*call it on a list of tensors, as in Add\(\)\(\[a, b\]\); "
                                         r"got a single input of shape \(None, 3, 4, 4\)"):
        Add()(a)
    with pytest.raises(ValueError, match="call it on a list"):
        Maximum()(nr.ones((2, 3)))
    with pytest.raises(ValueError, match=r"at least 2 inputs, got 1"):
        Add()([a])
    with pytest.raises(ValueError, match=r"Subtract .*exactly 2 inputs, got 3"):
        Subtract()([a, a, a])
    with pytest.raises(nr.ops.ShapeError, match=r"Concatenate cat: axis 1: inputs must agree on every other "
                                                r"axis; axis 2 differs, shapes \(None, 3, 4, 4\), \(None, 3, 5, 4\)"):
        Concatenate(name="cat")([a, Input(shape=(3, 5, 4))])
    with pytest.raises(nr.ops.ShapeError, match="axis 0 is the batch axis"):
        Concatenate(axis=0)([a, a])
    with pytest.raises(nr.ops.ShapeError, match="axis -5 is out of range for inputs with 4 axes"):
        Concatenate(axis=-5)([a, a])
    with pytest.raises(ValueError, match="axis must be an int"):
        Concatenate(axis="channels")


@pytest.mark.parametrize("layer", [Add(name="a1"), Subtract(), Multiply(), Average(), Maximum(), Minimum(),
                                   Concatenate(axis=-2, name="c1")], ids=lambda la: type(la).__name__)
def test_config_round_trip_and_no_weights(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = get_registered(type(layer).__name__).from_config(config)
    assert clone.get_config() == layer.get_config()
    xs = [nr.randn(2, 3, 4), nr.randn(2, 3, 4)]
    np.testing.assert_array_equal(clone(xs).numpy(), layer(xs).numpy())
    assert layer.weights == [] and layer.count_params() == 0


def _residual_model(seed=0):
    """A small residual CNN with every merge layer, two inputs and two outputs."""
    nr.manual_seed(seed)
    img, aux = Input(shape=(3, 8, 8), name="img"), Input(shape=(4,), name="aux")
    x = Conv2D(4, 3, padding=1, use_bias=False, name="c0")(img)
    x = Activation("relu", name="r0")(BatchNormalization(name="bn0")(x))
    y = BatchNormalization(name="bn1")(Conv2D(4, 3, padding=1, use_bias=False, name="c1")(x))
    x = Activation("relu", name="r1")(Add(name="res")([x, y]))                 # a residual block
    x = Concatenate(name="cat")([x, Conv2D(2, 1, name="c2")(img)])               # 4 + 2 channels
    g = GlobalAveragePooling2D(name="gap")(x)
    h = Dense(4, activation="tanh", name="d0")(g)
    h = Average(name="avg")([Multiply(name="mul")([h, Dense(4, name="d1")(aux)]), Subtract(name="sub")([h, aux]),
                             Maximum(name="max")([h, aux]), Minimum(name="min")([h, aux])])
    out_a = Dense(3, activation="softmax", name="cls")(Concatenate(axis=-1, name="cat2")([h, g]))
    out_b = Dense(1, name="reg")(h)
    return Model([img, aux], [out_a, out_b], name="merges")


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n, 3, 8, 8)).astype(np.float32), rng.standard_normal((n, 4)).astype(np.float32)]
    ys = [rng.integers(0, 3, n), rng.standard_normal((n, 1)).astype(np.float32)]
    return xs, ys


def _compile(model, jit=False):
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                  jit=jit)
    return model


def test_functional_model_with_merges_summary_save_and_load(tmp_path):
    model = _compile(_residual_model())
    xs, ys = _data()
    model.fit(xs, ys, epochs=2, batch_size=8, verbose=0, seed=0)
    text = model.summary(print_fn=None)
    assert "res (Add)" in text and "(None, 6, 8, 8)" in text and "cat2 (Concatenate)" in text
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for got, want in zip(loaded.predict(xs), model.predict(xs), strict=True):
        np.testing.assert_array_equal(got, want)
    assert [type(la).__name__ for la in loaded.layers] == [type(la).__name__ for la in model.layers]
    assert loaded.get_layer("cat2").axis == -1
    loaded.fit(xs, ys, epochs=1, batch_size=8, verbose=0)  # compiled again: it trains


def test_onnx_export_of_merges_matches_predict(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _compile(_residual_model(seed=1))
    xs, ys = _data(seed=1)
    model.fit(xs, ys, epochs=1, batch_size=8, verbose=0, seed=0)  # BN statistics away from their start
    path = model.export_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    assert {"Add", "Sub", "Mul", "Mean", "Max", "Min", "Concat"} <= {n.op_type for n in proto.graph.node}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = session.run(None, {"input_0": xs[0], "input_1": xs[1]})
    for got, want in zip(outs, model.predict(xs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    three = [Input(shape=(2,)) for _ in range(3)]
    chain = Model(three, Add()([Multiply()(three), *three[1:]]))  # binary ONNX ops chained over 3 inputs
    path = chain.export_onnx(tmp_path / "chain.onnx")
    vals = [np.random.default_rng(i).standard_normal((4, 2)).astype(np.float32) for i in range(3)]
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {f"input_{i}": v for i, v in enumerate(vals)})
    np.testing.assert_allclose(got, chain.predict(vals), rtol=1e-6)


def test_fit_jit_with_merges_gives_eager_weights():
    xs, ys = _data(n=20)
    weights, losses = [], []
    for jit in (False, True):
        model = _compile(_residual_model(seed=2), jit=jit)
        losses.append(model.fit(xs, ys, epochs=2, batch_size=8, verbose=0, seed=0).history["loss"])
        weights.append(model.get_weights())
    assert model._jit_steps["train"].trace_count == 2  # batches of 8 and the last 4
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


def test_defer_build_records_without_weights_then_builds():
    with defer_build():
        x = Input(shape=(2, 6, 6))
        y = Conv2D(3, 3, padding=1, name="conv")(x)
        out = Dense(2, name="fc")(Flatten()(Add()([y, Conv2D(3, 1, name="proj")(x)])))
        model = Model(x, out)
    assert not model.built and model.weights == [] and model.output_shape == (None, 2)
    assert not model.get_layer("conv").built
    with pytest.raises(ValueError, match="not built"):
        model.summary(print_fn=None)
    with pytest.raises(ValueError, match=r"made for inputs of shape \(None, 2, 6, 6\), got \(None, 3, 6, 6\)"):
        model.build((None, 3, 6, 6))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2, 6, 6), np.float32), np.zeros((4, 2), np.float32), verbose=0)  # builds on first use
    assert model.built and model.count_params() == (3 * 2 * 9 + 3) + (3 * 2 + 3) + (108 * 2 + 2)
    # outside the block, layers build as they are called again
    z = Input(shape=(3,))
    assert Dense(2)(z).node.layer.built
