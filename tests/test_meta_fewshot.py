"""neurona.meta few-shot learning: the episode sampler (disjoint splits, N×K support, query
sizes, seeding, the error naming a class with too few samples), MAML's second-order
meta-gradient against central finite differences and against PyTorch (torch.autograd.grad with
create_graph=True) on a tiny model, first-order MAML against PyTorch, the prototypical loss
against a hand computation, and short sinusoid/glyph runs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import neurona as nr
from neurona.meta import (MAML, EpisodeSampler, FunctionalConvNet, FunctionalMLP, ProtoNet, SinusoidTasks,
                          mean_ci95, mse, prototypical_loss, split_classes)


def test_split_classes_are_disjoint_and_seeded():
    y = np.repeat(np.arange(30), 5)
    tr, va, te = split_classes(y, 20, 5, seed=3)
    assert (len(tr), len(va), len(te)) == (20, 5, 5)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert [a.tolist() for a in split_classes(y, 20, 5, seed=3)] == [tr.tolist(), va.tolist(), te.tolist()]
    assert split_classes(y, 20, 5, seed=4)[0].tolist() != tr.tolist()
    with pytest.raises(ValueError, match="30 classes"):
        split_classes(y, 20, 8, 5)


def test_episode_sampler_shapes_labels_and_seed():
    x = np.arange(200)[:, None]
    y = np.repeat(np.arange(10), 20)
    classes = np.array([1, 3, 5, 7, 9, 2])
    s = EpisodeSampler(x, y, classes=classes, n_way=5, k_shot=3, n_query=4, seed=7)
    ep = s.sample()
    assert ep.support_x.shape == (15, 1) and ep.query_x.shape == (20, 1)
    assert ep.support_y.tolist() == np.repeat(np.arange(5), 3).tolist()
    assert ep.query_y.tolist() == np.repeat(np.arange(5), 4).tolist()
    assert set(ep.classes.tolist()) <= set(classes.tolist()) and len(set(ep.classes.tolist())) == 5
    # labels follow the drawn classes; support and query do not overlap
    for label, c in enumerate(ep.classes):
        assert set(y[ep.support_x[ep.support_y == label, 0]]) == {c}
        assert set(y[ep.query_x[ep.query_y == label, 0]]) == {c}
    assert not set(ep.support_x[:, 0]) & set(ep.query_x[:, 0])
    again = EpisodeSampler(x, y, classes=classes, n_way=5, k_shot=3, n_query=4, seed=7).sample()
    assert np.array_equal(again.support_x, ep.support_x) and np.array_equal(again.query_x, ep.query_x)


def test_episode_sampler_errors_name_the_class():
    y = np.array([0] * 10 + [1] * 10 + [2] * 3)
    with pytest.raises(ValueError, match=r"class 2 has 3 samples.*1 \+ 5 = 6"):
        EpisodeSampler(np.zeros((23, 1)), y, n_way=2, k_shot=1, n_query=5)
    with pytest.raises(ValueError, match="5-way episodes need 5 classes"):
        EpisodeSampler(np.zeros((23, 1)), y, n_way=5, k_shot=1, n_query=1)


# -- MAML's meta-gradient -----------------------------------------------------------------------

def _tiny_tasks(rng, dtype):
    def task():
        return ((rng.standard_normal((6, 3)).astype(dtype), rng.integers(0, 2, 6)),
                (rng.standard_normal((5, 3)).astype(dtype), rng.integers(0, 2, 5)))
    return [task(), task()]


def _torch_meta_grad(weights, tasks, lr, steps, first_order):
    tw = [torch.tensor(w.numpy(), requires_grad=True) for w in weights]

    def net(ws, x):
        return torch.relu(x @ ws[0] + ws[1]) @ ws[2] + ws[3]

    total = 0
    for (sx, sy), (qx, qy) in tasks:
        fast = tw
        for _ in range(steps):
            loss = TF.cross_entropy(net(fast, torch.tensor(sx)), torch.tensor(sy))
            grads = torch.autograd.grad(loss, fast, create_graph=not first_order)
            fast = [w - lr * g for w, g in zip(fast, grads)]
        total = total + TF.cross_entropy(net(fast, torch.tensor(qx)), torch.tensor(qy))
    return [g.numpy() for g in torch.autograd.grad(total / len(tasks), tw)]


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_meta_gradient_matches_pytorch(first_order):
    rng = np.random.default_rng(0)
    maml = MAML(FunctionalMLP((3, 5, 2), dtype="float64"), inner_lr=0.5, inner_steps=2, first_order=first_order)
    tasks = _tiny_tasks(rng, "float64")
    ours = [g.numpy() for g in maml.meta_gradient(tasks)]
    theirs = _torch_meta_grad(maml.weights, tasks, 0.5, 2, first_order)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    if not first_order:  # the Hessian terms matter: first-order MAML gives another gradient
        fo = _torch_meta_grad(maml.weights, tasks, 0.5, 2, True)
        assert max(np.abs(a - b).max() for a, b in zip(ours, fo)) > 1e-3


def test_second_order_maml_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    maml = MAML(FunctionalMLP((3, 4, 2), dtype="float64"), inner_lr=0.5, inner_steps=2, seed=1)
    tasks = _tiny_tasks(rng, "float64")
    analytic = [g.numpy() for g in maml.meta_gradient(tasks)]
    eps = 1e-6
    for w, g in zip(maml.weights, analytic):
        flat = w.data.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = maml.meta_loss(tasks).item()
            flat[i] = old - eps
            down = maml.meta_loss(tasks).item()
            flat[i] = old
            assert (up - down) / (2 * eps) == pytest.approx(g.reshape(-1)[i], rel=1e-5, abs=1e-8)


def test_maml_conv_net_second_order_runs_and_meta_step_lowers_loss():
    rng = np.random.default_rng(2)
    net = FunctionalConvNet(1, (4, 4), 3, image_size=8)
    maml = MAML(net, inner_lr=0.1, inner_steps=1, meta_optimizer=nr.optim.Adam(learning_rate=0.01))
    sx, sy = rng.standard_normal((6, 1, 8, 8)).astype("float32"), np.repeat(np.arange(3), 2)
    tasks = [((sx, sy), (sx, sy))]
    losses = [maml.meta_step(tasks) for _ in range(5)]
    assert losses[-1] < losses[0]


def test_maml_sinusoid_short_run_beats_the_untrained_initialisation():
    tasks = SinusoidTasks(seed=0)
    maml = MAML(FunctionalMLP((1, 40, 40, 1)), loss=mse, inner_lr=0.01, inner_steps=1,
                meta_optimizer=nr.optim.Adam(learning_rate=1e-3), seed=0)
    test = SinusoidTasks(seed=99).batch(20, k=10)

    def post_update_mse():
        return np.mean([np.mean((maml.predict(s, q[0], steps=1) - q[1]) ** 2) for s, q in test])

    before = post_update_mse()
    for _ in range(60):
        maml.meta_step(tasks.batch(4, k=10))
    assert post_update_mse() < before


# -- Prototypical Networks -------------------------------------------------------------------------

def test_prototypical_loss_matches_hand_computation():
    rng = np.random.default_rng(3)
    s = rng.standard_normal((6, 4))
    sy = np.array([0, 0, 1, 1, 2, 2])
    q = rng.standard_normal((5, 4))
    qy = np.array([0, 1, 2, 2, 1])
    protos = np.stack([s[sy == k].mean(0) for k in range(3)])
    d = ((q[:, None, :] - protos[None]) ** 2).sum(-1)
    logp = -d - np.log(np.exp(-d).sum(1, keepdims=True))
    expected = -logp[np.arange(5), qy].mean()
    st, qt = nr.tensor(s, requires_grad=True), nr.tensor(q, requires_grad=True)
    loss, acc = prototypical_loss(st, sy, qt, qy, 3)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert acc == pytest.approx(((-d).argmax(1) == qy).mean())
    # and its gradient against torch
    ts, tq = torch.tensor(s, requires_grad=True), torch.tensor(q, requires_grad=True)
    tp = torch.stack([ts[torch.tensor(sy == k)].mean(0) for k in range(3)])
    TF.cross_entropy(-torch.cdist(tq, tp) ** 2, torch.tensor(qy)).backward()
    loss.backward()
    np.testing.assert_allclose(st.grad.numpy(), ts.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(qt.grad.numpy(), tq.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_protonet_learns_separable_classes_and_ci():
    from neurona.layers import Dense
    from neurona.models import Sequential

    rng = np.random.default_rng(4)
    centers = rng.standard_normal((12, 8)) * 3
    y = np.repeat(np.arange(12), 20)
    x = (centers[y] + rng.standard_normal((240, 8))).astype("float32")
    net = ProtoNet(Sequential([Dense(16, input_dim=8, activation="relu"), Dense(8)]),
                   nr.optim.Adam(learning_rate=1e-2))
    train = EpisodeSampler(x, y, classes=np.arange(8), n_way=3, k_shot=1, n_query=5, seed=0)
    test = EpisodeSampler(x, y, classes=np.arange(8, 12), n_way=3, k_shot=1, n_query=5, seed=1)
    for ep in train.episodes(30):
        net.train_step(ep)
    mean, ci = mean_ci95(net.evaluate(test.episodes(50)))
    assert mean > 0.6 and 0 < ci < 0.2
