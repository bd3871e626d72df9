"""Optimisers against torch.optim (same updates to 1e-5), Keras' decay and the schedules against
their formulas, clipping against torch.nn.utils, checkpoints and late binding."""
import math

import numpy as np
import pytest
import torch

import neurona as nr
from neurona import optim
from neurona.optim import (SGD, Adagrad, Adam, ExponentialDecay, InverseTimeDecay, ReduceLROnPlateau, RMSprop,
                           StepDecay, clip_grad_norm, clip_grad_value)

STEPS = 6


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32),
            rng.standard_normal((8, 5)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float32))


def _loss(w, b, x, y, lib):
    # A non-quadratic loss so that gradients change with the parameters from step to step.
    out = (lib.tanh(x @ w + b) - y)
    return (out * out).sum() + (w ** 4).sum() * 0.1


def _run_neurona(make_opt, steps=STEPS):
    w0, b0, x, y = _problem()
    w, b = nr.tensor(w0, requires_grad=True), nr.tensor(b0, requires_grad=True)
    opt = make_opt([w, b])
    for _ in range(steps):
        opt.zero_grad()
        _loss(w, b, nr.tensor(x), nr.tensor(y), nr).backward()
        opt.step()
    return w.numpy(), b.numpy()


def _run_torch(make_opt, steps=STEPS):
    w0, b0, x, y = _problem()
    w, b = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    opt = make_opt([w, b])
    for _ in range(steps):
        opt.zero_grad()
        _loss(w, b, torch.tensor(x), torch.tensor(y), torch).backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy()


CASES = [
    ("sgd", lambda p: SGD(p, learning_rate=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    ("sgd-momentum", lambda p: SGD(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("sgd-nesterov", lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    ("adagrad", lambda p: Adagrad(p, learning_rate=0.1, epsilon=1e-10),
     lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10)),
    ("adagrad-init", lambda p: Adagrad(p, learning_rate=0.1, initial_accumulator_value=0.1, epsilon=1e-7),
     lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-7)),
    ("rmsprop", lambda p: RMSprop(p, learning_rate=0.01, rho=0.9, epsilon=1e-7),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7)),
    ("rmsprop-momentum", lambda p: RMSprop(p, learning_rate=0.01, rho=0.99, momentum=0.5, epsilon=1e-8),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5)),
    ("adam", lambda p: Adam(p, learning_rate=0.01), lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-8)),
    ("adam-betas", lambda p: Adam(p, learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-7),
     lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-7)),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_optim(name, ours, theirs):
    w, b = _run_neurona(ours)
    tw, tb = _run_torch(theirs)
    w0, _, _, _ = _problem()
    assert not np.allclose(w, w0, atol=1e-3), "the parameters must have moved"
    np.testing.assert_allclose(w, tw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b, tb, rtol=1e-5, atol=1e-5)


def test_sgd_decay_matches_keras_formula():
    lr, decay, mu = 0.1, 0.05, 0.9
    w, b = _run_neurona(lambda p: SGD(p, lr=lr, decay=decay, momentum=mu, nesterov=True))
    # The Keras formula written out in float64 NumPy with autograd from torch for the gradients.
    w0, b0, x, y = _problem()
    tw, tb = torch.tensor(w0, dtype=torch.float64, requires_grad=True), torch.tensor(b0, dtype=torch.float64,
                                                                                      requires_grad=True)
    vel = [np.zeros_like(w0, dtype=np.float64), np.zeros_like(b0, dtype=np.float64)]
    for t in range(STEPS):
        lr_t = lr / (1 + decay * t)
        for p in (tw, tb):
            p.grad = None
        _loss(tw, tb, torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), torch).backward()
        with torch.no_grad():
            for i, p in enumerate((tw, tb)):
                g = p.grad.numpy()
                vel[i] = mu * vel[i] - lr_t * g
                p += torch.tensor(mu * vel[i] - lr_t * g)
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b, tb.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_learning_rate_reports_decay_and_is_settable():
    opt = SGD(lr=0.1, decay=0.5)
    w = nr.tensor([1.0], requires_grad=True)
    opt.bind([w])
    for _ in range(3):
        w.grad = nr.tensor([1.0])
        opt.step()
    assert opt.iterations == 3
    assert opt.learning_rate == pytest.approx(0.1 / (1 + 0.5 * 3))
    assert opt.base_learning_rate == pytest.approx(0.1)
    opt.learning_rate = 0.2
    assert opt.lr == pytest.approx(0.2 / 2.5)


def test_course_keras_spellings():
    opt = SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)
    assert not opt.bound and opt.learning_rate == pytest.approx(0.01)
    assert SGD(0.03).learning_rate == pytest.approx(0.03)
    assert isinstance(optim.get("adam"), Adam) and isinstance(optim.get("SGD"), SGD)
    assert isinstance(optim.get("rmsprop"), RMSprop) and isinstance(optim.get("adagrad"), Adagrad)
    import neurona.optimizers as keras_style

    assert keras_style.SGD is SGD
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.get("lbfgs")
    with pytest.raises(RuntimeError, match="bind"):
        SGD(lr=0.1).step()
    with pytest.raises(ValueError, match="does not require grad"):
        SGD([nr.zeros(2)])
    with pytest.raises(TypeError, match="list of parameters"):
        SGD(nr.zeros(2, requires_grad=True))


def test_config_round_trip():
    for opt in (SGD(lr=0.05, momentum=0.9, nesterov=True, decay=1e-4, clipnorm=1.0), Adagrad(learning_rate=0.2),
                RMSprop(rho=0.8, momentum=0.1), Adam(learning_rate=StepDecay(0.1, 0.5, 3), beta_1=0.85)):
        again = optim.get(optim.serialize(opt))
        assert type(again) is type(opt) and again.get_config() == opt.get_config()


def test_late_binding_equals_early_binding():
    early = _run_neurona(lambda p: Adam(p, learning_rate=0.01))
    late = _run_neurona(lambda p: Adam(learning_rate=0.01).bind(p))
    np.testing.assert_array_equal(early[0], late[0])


def test_state_dict_resumes_exactly():
    straight = _run_neurona(lambda p: Adam(p, learning_rate=0.01), steps=5)
    w0, b0, x, y = _problem()
    w, b = nr.tensor(w0, requires_grad=True), nr.tensor(b0, requires_grad=True)

    def steps(opt, n):
        for _ in range(n):
            opt.zero_grad()
            _loss(w, b, nr.tensor(x), nr.tensor(y), nr).backward()
            opt.step()

    first = Adam([w, b], learning_rate=0.01)
    steps(first, 3)
    state = first.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert set(state) == {"iterations", "learning_rate", "0.m", "0.v", "1.m", "1.v"}
    resumed = Adam([w, b], learning_rate=0.5)
    resumed.load_state_dict(state)
    assert resumed.iterations == 3 and resumed.learning_rate == pytest.approx(0.01)
    steps(resumed, 2)
    np.testing.assert_allclose(w.numpy(), straight[0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="shape"):
        Adam([nr.zeros(3, requires_grad=True), b]).load_state_dict(state)


def test_parameters_without_gradient_are_skipped():
    a, b = nr.tensor([1.0], requires_grad=True), nr.tensor([1.0], requires_grad=True)
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    (a * 2).sum().backward()
    opt.step()
    assert b.item() == 1.0 and a.item() == pytest.approx(0.8)


# -- schedules --------------------------------------------------------------------------------
def test_step_decay_formula():
    s = StepDecay(0.1, drop=0.1, step_size=30)
    for step in (0, 29, 30, 59, 60, 95):
        assert s(step) == pytest.approx(0.1 * 0.1 ** math.floor(step / 30))


def test_exponential_decay_formula():
    s, stair = ExponentialDecay(0.1, 100, 0.96), ExponentialDecay(0.1, 100, 0.96, staircase=True)
    for step in (0, 50, 100, 250):
        assert s(step) == pytest.approx(0.1 * 0.96 ** (step / 100))
        assert stair(step) == pytest.approx(0.1 * 0.96 ** (step // 100))


def test_inverse_time_decay_is_keras_decay():
    s = InverseTimeDecay(0.01, 1, 1e-3)
    for step in (0, 10, 1000):
        assert s(step) == pytest.approx(0.01 / (1 + 1e-3 * step))


def test_schedule_drives_optimizer_by_iteration():
    w = nr.tensor([0.0], requires_grad=True)
    opt = SGD([w], learning_rate=StepDecay(1.0, drop=0.5, step_size=1))
    for _ in range(3):
        w.grad = nr.tensor([1.0])
        opt.step()
    assert w.item() == pytest.approx(-(1.0 + 0.5 + 0.25))
    assert opt.learning_rate == pytest.approx(0.125)


def test_reduce_lr_on_plateau_matches_torch():
    # Keras counts `patience` bad epochs before reducing, PyTorch waits for more than `patience`.
    values = [1.0, 0.9, 0.9, 0.95, 0.9, 0.85, 0.86, 0.87, 0.9, 0.84, 0.9, 0.9, 0.9, 0.9]
    opt = SGD([nr.zeros(1, requires_grad=True)], lr=1.0)
    ours = ReduceLROnPlateau(opt, factor=0.1, patience=2, min_delta=0.01, min_lr=1e-3)
    t_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, factor=0.1, patience=1, threshold=0.01,
                                                        threshold_mode="abs", min_lr=1e-3)
    got, want = [], []
    for v in values:
        got.append(ours.step(v))
        theirs.step(v)
        want.append(t_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert min(got) == pytest.approx(1e-3)


def test_reduce_lr_on_plateau_cooldown_and_max_mode():
    opt = SGD([nr.zeros(1, requires_grad=True)], lr=1.0)
    plateau = ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1, cooldown=2)
    # Keras' order: a check in cooldown first counts the cooldown down, and the check that brings
    # it to 0 may already count as a bad epoch; so with patience 1 a stall reduces every 2 checks.
    got = [plateau.step(v) for v in (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6)]
    assert got == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]


# -- clipping ---------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (100.0, 2.0), (0.3, 1.0), (0.2, math.inf)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (4,))]
    ps = [nr.zeros(g.shape, requires_grad=True) for g in grads]
    tps = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, tp, g in zip(ps, tps, grads):
        p.grad, tp.grad = nr.tensor(g.copy()), torch.tensor(g.copy())
    total = clip_grad_norm(ps, max_norm, norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert total == pytest.approx(float(t_total), rel=1e-5)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_value_matches_torch():
    g = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    p, tp = nr.zeros((3, 4), requires_grad=True), torch.zeros((3, 4), requires_grad=True)
    p.grad, tp.grad = nr.tensor(g.copy()), torch.tensor(g.copy())
    clip_grad_value([p], 1.5)
    torch.nn.utils.clip_grad_value_([tp], 1.5)
    np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())


def test_optimizer_clip_options():
    def one_step(**kw):
        w = nr.zeros(2, requires_grad=True)
        w.grad = nr.tensor([3.0, 4.0])
        SGD([w], lr=1.0, **kw).step()
        return w.numpy()

    np.testing.assert_allclose(one_step(clipnorm=1.0), [-0.6, -0.8], rtol=1e-5)
    np.testing.assert_allclose(one_step(global_clipnorm=10.0), [-3.0, -4.0], rtol=1e-6)
    np.testing.assert_allclose(one_step(clipvalue=3.5), [-3.0, -3.5], rtol=1e-6)


def _run_neurona_jit(make_opt, steps=STEPS, new_lr=None):
    """`_run_neurona` with the whole step (zero_grad, forward, backward, update) traced by nr.jit;
    `new_lr` is set through `opt.learning_rate` halfway, between replays."""
    w0, b0, x, y = _problem()
    w, b = nr.tensor(w0, requires_grad=True), nr.tensor(b0, requires_grad=True)
    opt = make_opt([w, b])

    @nr.jit
    def step(x, y):
        opt.zero_grad()
        loss = _loss(w, b, x, y, nr)
        loss.backward()
        opt.step()
        return loss

    for i in range(steps):
        if new_lr is not None and i == steps // 2:
            opt.learning_rate = new_lr
        opt.sync_learning_rate()  # what fit(jit=True) does before each step, for schedules
        step(nr.tensor(x), nr.tensor(y))
    return w.numpy(), b.numpy(), step.trace_count, opt


JIT_CASES = [(name, ours) for name, ours, _ in CASES] + [
    ("sgd-decay-clipnorm", lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, decay=0.1, clipnorm=0.5)),
    ("adam-global-clipnorm", lambda p: Adam(p, learning_rate=0.01, global_clipnorm=1.0)),
    ("rmsprop-clipvalue", lambda p: RMSprop(p, learning_rate=0.01, clipvalue=0.05)),
    ("adam-schedule", lambda p: Adam(p, learning_rate=ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5))),
    ("sgd-step-decay", lambda p: SGD(p, learning_rate=StepDecay(0.1, drop=0.5, step_size=2), momentum=0.5)),
]


@pytest.mark.parametrize("name,ours", JIT_CASES, ids=[c[0] for c in JIT_CASES])
def test_traced_step_matches_eager(name, ours):
    # Every optimiser updates Tensor state with tensor ops, so nr.jit traces the step once and
    # its replays (fused kernels, the step count and learning rate read live) match eager mode.
    w, b = _run_neurona(ours)
    jw, jb, traces, opt = _run_neurona_jit(ours)
    assert traces == 1 and opt.iterations == STEPS
    np.testing.assert_allclose(jw, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jb, b, rtol=1e-5, atol=1e-6)


def test_traced_step_reads_a_new_learning_rate_without_retracing():
    def eager_with_switch(make):
        w0, b0, x, y = _problem()
        w, b = nr.tensor(w0, requires_grad=True), nr.tensor(b0, requires_grad=True)
        opt = make([w, b])
        for i in range(STEPS):
            if i == STEPS // 2:
                opt.learning_rate = 0.2
            opt.zero_grad()
            _loss(w, b, nr.tensor(x), nr.tensor(y), nr).backward()
            opt.step()
        return w.numpy()

    def make(p):
        return SGD(p, lr=0.01, momentum=0.9)

    jw, _, traces, _ = _run_neurona_jit(make, new_lr=0.2)
    unchanged, _, _, _ = _run_neurona_jit(make)
    assert traces == 1
    np.testing.assert_allclose(jw, eager_with_switch(make), rtol=1e-5, atol=1e-6)
    assert not np.allclose(jw, unchanged, atol=1e-3), "the new rate must reach the replays"


def test_optimizer_state_is_tensors_and_checkpoints_into_them():
    w = nr.tensor([1.0, 2.0], requires_grad=True)
    opt = Adam([w], learning_rate=0.1)
    m = opt.state[0]["m"]
    assert isinstance(m, nr.Tensor) and isinstance(opt._iterations, nr.Tensor)
    w.grad = nr.tensor([1.0, -1.0])
    opt.step()
    state = opt.state_dict()
    opt.load_state_dict({**state, "0.m": np.array([5.0, 6.0], dtype=np.float32), "iterations": np.array(7)})
    assert opt.state[0]["m"] is m and m.tolist() == [5.0, 6.0] and opt.iterations == 7
