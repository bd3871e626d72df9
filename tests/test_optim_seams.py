"""The optimiser seams: apply_gradients (gradients from anywhere, late binding, unknown weights),
the gradient-transform chain (clipping as its built-in links, user transforms before them, an
all-reduce-shaped transform, inside an nr.jit-traced fit)."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona.optim import SGD, Adam, RMSprop
from neurona.optim.clip import ClipByGlobalNorm, ClipByNorm, ClipByValue


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32), \
        rng.standard_normal((8, 5)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float32)


def _loss(w, b, x, y):
    out = nr.tanh(x @ w + b) - y
    return (out * out).sum() + (w ** 4).sum() * 0.1


def _train(make_opt, via, steps=5):
    """Train the small problem with `via` = 'step' (backward + step), 'tensor' / 'numpy'
    (nr.grad + apply_gradients with Tensors / NumPy arrays)."""
    w0, b0, x, y = _problem()
    w, b = nr.tensor(w0, requires_grad=True), nr.tensor(b0, requires_grad=True)
    opt = make_opt([w, b]) if via == "step" else make_opt(None)
    for _ in range(steps):
        if via == "step":
            opt.zero_grad()
            _loss(w, b, nr.tensor(x), nr.tensor(y)).backward()
            opt.step()
        else:
            gw, gb = nr.grad(_loss(w, b, nr.tensor(x), nr.tensor(y)), [w, b])
            if via == "numpy":
                gw, gb = gw.numpy(), gb.numpy()
            opt.apply_gradients([(gb, b), (gw, w)])  # any order
    return w.numpy(), b.numpy(), opt


MAKERS = {
    "sgd-momentum": lambda p: SGD(p, learning_rate=0.05, momentum=0.9),
    "adam-clipnorm": lambda p: Adam(p, learning_rate=0.01, clipnorm=0.5),
    "rmsprop-global": lambda p: RMSprop(p, learning_rate=0.01, global_clipnorm=1.0, clipvalue=0.3),
}


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("via", ["tensor", "numpy"])
def test_apply_gradients_equals_step(name, via):
    w, b, _ = _train(MAKERS[name], "step")
    w2, b2, opt = _train(MAKERS[name], via)
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(b, b2)
    assert opt.iterations == 5 and len(opt.params) == 2  # bound on the first call


def test_apply_gradients_subset_unknown_and_bad_input():
    w, v = nr.ones(3, requires_grad=True), nr.ones(2, requires_grad=True)
    opt = Adam([w, v], learning_rate=0.1)
    opt.apply_gradients([(nr.ones(2), v), (None, w)])  # w has no gradient: untouched, slots untouched
    assert w.tolist() == [1.0, 1.0, 1.0] and v.numpy() == pytest.approx([0.9, 0.9])
    assert not opt.state[0]["m"].numpy().any() and opt.state[1]["m"].numpy().any()
    stranger = nr.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="not one of the 2 this optimiser is bound to.*bind"):
        opt.apply_gradients([(nr.ones(3), stranger)])
    with pytest.raises(ValueError, match="gradient 0 has shape \\(2,\\), its weight .* has shape \\(3,\\)"):
        opt.apply_gradients([(nr.ones(2), w)])
    with pytest.raises(TypeError, match="gradient 0 is a list"):
        opt.apply_gradients([([1.0, 1.0, 1.0], w)])
    with pytest.raises(TypeError, match="item 0 must be a \\(gradient, weight\\) pair"):
        opt.apply_gradients([w])
    with pytest.raises(RuntimeError, match="no parameters"):
        SGD(0.1).step()


def test_clipping_options_are_links_of_the_chain():
    opt = SGD(0.1, clipvalue=0.5, clipnorm=2.0, global_clipnorm=1.0)
    assert [type(t) for t in opt.gradient_transforms] == [ClipByGlobalNorm, ClipByNorm, ClipByValue]
    assert (opt.global_clipnorm, opt.clipnorm, opt.clipvalue) == (1.0, 2.0, 0.5)
    opt.clipnorm = None
    assert [type(t) for t in opt.gradient_transforms] == [ClipByGlobalNorm, ClipByValue]
    opt.clipnorm = 3.0  # back between the two, in the built-in order
    assert [type(t) for t in opt.gradient_transforms] == [ClipByGlobalNorm, ClipByNorm, ClipByValue]
    assert opt.get_config()["clipnorm"] == 3.0
    mine = opt.add_gradient_transform(lambda grads, params: grads)
    assert opt.gradient_transforms[0] is mine  # user transforms run before the clipping
    last = opt.add_gradient_transform(lambda grads, params: grads, index=len(opt.gradient_transforms))
    assert opt.gradient_transforms[-1] is last
    hand_made = ClipByValue(9.0)  # the same class added by hand is not the clipvalue option
    opt.add_gradient_transform(hand_made)
    opt.clipvalue = None
    assert hand_made in opt.gradient_transforms and opt.clipvalue is None
    with pytest.raises(ValueError, match="clipnorm must be > 0"):
        SGD(0.1, clipnorm=0.0)
    with pytest.raises(TypeError, match="not callable"):
        opt.add_gradient_transform(3)


def test_clip_transforms_match_torch():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((4, 3)).astype(np.float32) * 3, rng.standard_normal(5).astype(np.float32)]
    grads = [nr.tensor(a) for a in arrays]
    tgrads = [torch.tensor(a) for a in arrays]
    params = [torch.zeros(a.shape, requires_grad=True) for a in arrays]
    for p, g in zip(params, tgrads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, 1.5)
    for ours, theirs in zip(ClipByGlobalNorm(1.5)(grads, None), params):
        np.testing.assert_allclose(ours.numpy(), theirs.grad.numpy(), rtol=1e-5)
    for ours, a in zip(ClipByNorm(1.5)(grads, None), tgrads):
        p = torch.zeros(a.shape, requires_grad=True)
        p.grad = a.clone()
        torch.nn.utils.clip_grad_norm_([p], 1.5)
        np.testing.assert_allclose(ours.numpy(), p.grad.numpy(), rtol=1e-5)
    for ours, a in zip(ClipByValue(0.7)(grads, None), tgrads):
        np.testing.assert_array_equal(ours.numpy(), a.clamp(-0.7, 0.7).numpy())


def test_a_transform_that_returns_the_wrong_number_of_gradients_is_named():
    w = nr.ones(2, requires_grad=True)
    opt = SGD([w], 0.1)

    def drop_all(grads, params):
        return []

    opt.add_gradient_transform(drop_all)
    with pytest.raises(ValueError, match="transform <function .*drop_all.* returned 0 gradients for 1 weights"):
        opt.apply_gradients([(nr.ones(2), w)])


def test_all_reduce_shaped_transform_averages_workers_before_clipping():
    """Two 'workers' hold a replica each; a transform returns the mean of both workers'
    gradients (what an all-reduce returns to every worker), and the global clipping runs on that
    mean: both replicas stay equal to one model trained on the mean gradient, clipped."""
    w0, b0, x, y = _problem()
    halves = [(x[:4], y[:4]), (x[4:], y[4:])]
    replicas = [[nr.tensor(w0.copy(), requires_grad=True), nr.tensor(b0.copy(), requires_grad=True)] for _ in halves]
    network = []  # each worker's gradients of this step, as a collective would gather them

    def all_reduce(grads, params):
        return [sum(gs[i] for gs in network) / len(network) for i in range(len(grads))]

    opts = [SGD(r, learning_rate=0.1, global_clipnorm=0.5) for r in replicas]
    for opt in opts:
        opt.add_gradient_transform(all_reduce)
    assert opts[0].gradient_transforms[0] is all_reduce
    single = [nr.tensor(w0.copy(), requires_grad=True), nr.tensor(b0.copy(), requires_grad=True)]
    ref = SGD(single, learning_rate=0.1, global_clipnorm=0.5)
    for _ in range(3):
        network[:] = [nr.grad(_loss(*r, nr.tensor(xs), nr.tensor(ys)), r) for r, (xs, ys) in zip(replicas, halves)]
        for opt, r, grads in zip(opts, replicas, network):
            opt.apply_gradients(zip(grads, r))
        ref.apply_gradients(zip([(a + b) / 2 for a, b in zip(*network)], single))
    for r in replicas:
        for p, q in zip(r, single):
            np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(single[0].numpy(), w0)


def test_transform_runs_inside_a_traced_fit():
    """A transform in the chain of a model's optimiser is part of the traced step: fit(jit=True)
    gives eager fit's weights, and the transform saw every step."""
    from neurona.layers import Dense
    from neurona.models import Sequential

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    results, calls = [], []
    for jit in (False, True):
        nr.manual_seed(0)
        model = Sequential([Dense(8, activation="relu", input_shape=(6,)), Dense(2)])
        opt = Adam(learning_rate=0.01, clipnorm=1.0)
        count = [0]

        def scale(grads, params, count=count):
            count[0] += 1
            return [g * 0.5 for g in grads]

        opt.add_gradient_transform(scale)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", jit=jit)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        results.append([w.numpy() for w in model.weights])
        calls.append((count[0], opt.iterations))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert calls[0] == (8, 8)
    assert calls[1][1] == 8 and calls[1][0] >= 1  # traced: called while tracing, replayed after
