"""Differentiating through a training step: the pure updates of neurona.optim.functional (the
in-place optimisers' numbers; gradients through one unrolled step against finite differences)
and Layer.stateless_call (Dense, Sequential, functional model; MAML's second-order gradient
through two inner steps against finite differences)."""
import numpy as np
import pytest

import neurona as nr
from neurona.layers import BatchNormalization, Dense
from neurona.models import Input, Model, Sequential
from neurona.optim import SGD, Adam, RMSprop
from neurona.optim import functional as fo


def _problem(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in ((5, 4), (4,), (8, 5), (8, 4))]


def _loss(w, b, x, y):
    out = nr.tanh(x @ w + b) - y
    return (out * out).sum() + (w ** 4).sum() * 0.1


PAIRS = {  # in-place optimiser, the functional update with the same hyperparameters
    "sgd": (lambda p: SGD(p, learning_rate=0.05), lambda p, g, s: fo.sgd(p, g, 0.05, state=s)),
    "momentum": (lambda p: SGD(p, learning_rate=0.05, momentum=0.9),
                 lambda p, g, s: fo.sgd(p, g, 0.05, momentum=0.9, state=s)),
    "nesterov": (lambda p: SGD(p, learning_rate=0.05, momentum=0.9, nesterov=True),
                 lambda p, g, s: fo.sgd(p, g, 0.05, momentum=0.9, nesterov=True, state=s)),
    "rmsprop": (lambda p: RMSprop(p, learning_rate=0.01, rho=0.8), lambda p, g, s: fo.rmsprop(p, g, 0.01, 0.8, state=s)),
    "adam": (lambda p: Adam(p, learning_rate=0.02, beta_1=0.8, beta_2=0.99),
             lambda p, g, s: fo.adam(p, g, 0.02, 0.8, 0.99, state=s)),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_functional_updates_match_the_in_place_optimisers(name):
    make_opt, update = PAIRS[name]
    w0, b0, x, y = _problem()
    x, y = nr.tensor(x), nr.tensor(y)
    ours = [nr.tensor(w0.copy(), requires_grad=True), nr.tensor(b0.copy(), requires_grad=True)]
    opt = make_opt(ours)
    params, state = [nr.tensor(w0.copy(), requires_grad=True), nr.tensor(b0.copy(), requires_grad=True)], None
    for _ in range(5):
        opt.zero_grad()
        _loss(*ours, x, y).backward()
        opt.step()
        grads = nr.grad(_loss(*params, x, y), params)
        params, state = update(params, grads, state)
        params = [p.detach().requires_grad_() for p in params]
    for a, b in zip(ours, params):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(params[0].numpy(), w0)


@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_gradient_through_one_unrolled_step_matches_finite_differences(name):
    """d/dθ0 of L_val(θ1), θ1 = update(θ0, ∇L_train(θ0)): the update's graph carries second
    derivatives of L_train (create_graph=True)."""
    update = PAIRS[name][1]
    w0, b0, x, y = _problem(np.float64)
    xv, yv = _problem(np.float64, seed=1)[2:]
    x, y, xv, yv = (nr.tensor(a) for a in (x, y, xv, yv))
    state = None
    if name == "adam":  # a state after a first step, so that the moments are part of the graph too
        _, state = fo.adam([nr.tensor(w0), nr.tensor(b0)], [nr.tensor(w0 * 0.1), nr.tensor(b0 * 0.1)])

    def after_one_step(w, b):
        with nr.enable_grad():  # gradcheck runs its finite differences under no_grad
            grads = nr.grad(_loss(w, b, x, y), [w, b], create_graph=True)
            (w1, b1), _ = update([w, b], grads, state)
            return _loss(w1, b1, xv, yv)

    w, b = nr.tensor(w0 * 0.5, requires_grad=True), nr.tensor(b0, requires_grad=True)
    assert nr.gradcheck(after_one_step, [w, b])


def test_learned_learning_rate_and_dict_params():
    w0, b0, x, y = _problem(np.float64)
    x, y = nr.tensor(x), nr.tensor(y)

    def after_step(lr):
        with nr.enable_grad():
            params = {"w": nr.tensor(w0, requires_grad=True), "b": nr.tensor(b0, requires_grad=True)}
            grads = dict(zip(params, nr.grad(_loss(params["w"], params["b"], x, y), list(params.values()),
                                              create_graph=True)))
            new, state = fo.sgd(params, grads, lr, momentum=0.5)
            assert set(new) == set(state["velocity"]) == {"w", "b"}
            return _loss(new["w"], new["b"], x, y)

    assert nr.gradcheck(after_step, [nr.tensor(0.01, dtype="float64", requires_grad=True)])
    with pytest.raises(ValueError, match="sgd: params is a dict, so grads must be a dict"):
        fo.sgd({"w": nr.ones(2)}, [nr.ones(2)], 0.1)
    with pytest.raises(ValueError, match="adam: gradient 0 has shape \\(3,\\), parameter 0 has shape \\(2,\\)"):
        fo.adam([nr.ones(2)], [nr.ones(3)])
    with pytest.raises(ValueError, match="rmsprop: 1 parameters but 2 gradients"):
        fo.rmsprop([nr.ones(2)], [nr.ones(2), nr.ones(2)])


def _dense():
    layer = Dense(3, activation="tanh")
    layer(nr.ones((1, 5)))
    return layer


def _sequential():
    return Sequential([Dense(6, activation="tanh", input_shape=(5,)), BatchNormalization(), Dense(3)])


def _functional():
    inp = Input(shape=(5,))
    h = Dense(6, activation="tanh")(inp)
    out = Dense(3)(Dense(4, activation="tanh")(h))
    return Model(inp, out)


@pytest.mark.parametrize("make", [_dense, _sequential, _functional], ids=["dense", "sequential", "functional"])
def test_stateless_call_uses_the_substitutes_and_leaves_the_layer_alone(make):
    nr.manual_seed(0)
    model = make()
    x = nr.tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
    before = model.get_weights()
    expected_own = model(x, training=False).numpy()
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in model.weights]  # > 0: BN variances
    subs = [nr.tensor(a, requires_grad=w.requires_grad) for a, w in zip(arrays, model.weights)]
    out = model.stateless_call(subs, x)
    assert np.isfinite(out.numpy()).all()
    for t, a in zip(model.weights, before):  # the layer's own weights: untouched, and back in place
        np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal(model(x, training=False).numpy(), expected_own)
    # the same outputs and gradients as the model with those weights set
    model.set_weights(arrays)
    reference = model(x, training=False)
    np.testing.assert_allclose(out.numpy(), reference.numpy(), rtol=1e-6)
    trainable = [s for s in subs if s.requires_grad]
    got = nr.grad((out * out).sum(), trainable)
    want = nr.grad((reference * reference).sum(), model.trainable_weights)
    for g, h in zip(got, want):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-5, atol=1e-6)
    model.set_weights(before)
    # trainable weights only (by length), and a dict by name holding a subset
    out_t = model.stateless_call([subs[i] for i, w in enumerate(model.weights) if w.requires_grad], x)
    first = model.weights[0]
    out_d = model.stateless_call({first.name: subs[0]}, x)
    model.set_weights([arrays[0]] + before[1:])
    np.testing.assert_allclose(out_d.numpy(), model(x, training=False).numpy(), rtol=1e-6)
    model.set_weights([a if w.requires_grad else b for a, b, w in zip(arrays, before, model.weights)])
    np.testing.assert_allclose(out_t.numpy(), model(x, training=False).numpy(), rtol=1e-6)


def test_stateless_call_errors():
    layer = Dense(2)
    with pytest.raises(RuntimeError, match="not built"):
        layer.stateless_call([], nr.ones((1, 3)))
    layer(nr.ones((1, 3)))
    with pytest.raises(ValueError, match="got 1 weights; expected 2 \\(self.weights\\) or 2"):
        layer.stateless_call([nr.ones((3, 2))], nr.ones((1, 3)))
    with pytest.raises(ValueError, match="kernel has shape \\(3, 2\\), its substitute has shape \\(2, 3\\)"):
        layer.stateless_call([nr.ones((2, 3)), nr.ones(2)], nr.ones((1, 3)))
    with pytest.raises(KeyError, match="no weight named \\['nope'\\]"):
        layer.stateless_call({"nope": nr.ones(2)}, nr.ones((1, 3)))
    kernel = layer.kernel
    with pytest.raises(ValueError):
        layer.stateless_call([nr.ones((3, 2)), nr.ones(2)], nr.ones((1, 4)))  # the call itself fails...
    assert layer.kernel is kernel and layer.weights[0] is kernel  # ...and the swap is undone


def test_maml_second_order_gradient_through_two_inner_steps():
    """MAML: adapt the weights with two SGD steps on a support set (stateless_call + functional
    sgd, create_graph=True), then the query loss's gradient with respect to the initial weights
    goes back through both inner steps (second derivatives); checked against finite differences."""
    nr.manual_seed(0)
    model = Sequential([Dense(4, activation="tanh", input_shape=(2,), dtype="float64"),
                        Dense(1, dtype="float64")])
    model(nr.zeros((1, 2), dtype="float64"))
    rng = np.random.default_rng(0)
    xs, xq = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    ys, yq = np.sin(xs.sum(1, keepdims=True)), np.sin(xq.sum(1, keepdims=True))
    xs, ys, xq, yq = (nr.tensor(a) for a in (xs, ys, xq, yq))

    def query_loss(*theta):
        with nr.enable_grad():  # gradcheck runs its finite differences under no_grad
            fast = list(theta)
            for _ in range(2):
                support = ((model.stateless_call(fast, xs) - ys) ** 2).mean()
                grads = nr.grad(support, fast, create_graph=True)
                fast, _ = fo.sgd(fast, grads, lr=0.3)
            return ((model.stateless_call(fast, xq) - yq) ** 2).mean()

    theta = [nr.tensor(w.numpy(), requires_grad=True) for w in model.trainable_weights]
    assert nr.gradcheck(query_loss, theta)
    # the outer gradient differs from the first-order (FOMAML) one: second derivatives matter
    full = nr.grad(query_loss(*theta), theta)
    fast = list(theta)
    for _ in range(2):
        grads = nr.grad(((model.stateless_call(fast, xs) - ys) ** 2).mean(), fast)
        fast = [p.detach().requires_grad_() for p in fo.sgd(fast, grads, lr=0.3)[0]]
    first_order = nr.grad(((model.stateless_call(fast, xq) - yq) ** 2).mean(), fast)
    assert not np.allclose(full[0].numpy(), first_order[0].numpy(), rtol=1e-3)
