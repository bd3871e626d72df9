"""Row-sparse embedding gradients: what the lookup delivers (and where it falls back to dense),
the optimisers that consume them against dense updates (SGD and Adagrad exactly), against
torch.optim.SparseAdam / Adagrad, lazy momentum against its formula, clipping, clear refusals,
and fit (eager and nr.jit)."""
import numpy as np
import pytest
import torch

import neurona as nr
from neurona.layers import Dense, Embedding, Flatten
from neurona.models import Sequential
from neurona.ops.sparse import RowSparse
from neurona.optim import SGD, Adagrad, Adam, RMSprop

V, D = 40, 3
IDS = [np.array([[1, 5, 5], [7, 1, 30]]), np.array([[2, 5, 9], [9, 9, 1]]), np.array([[30, 31, 32], [1, 2, 3]])]


def _table(seed=0):
    return np.random.default_rng(seed).standard_normal((V, D)).astype(np.float32)


def _target(ids):
    return nr.tensor(np.cos(np.arange(ids.size * D, dtype=np.float32)).reshape(*ids.shape, D))


def _loss(out, ids):
    return ((nr.tanh(out) - _target(ids)) ** 2).sum()


def test_sparse_gradient_is_the_dense_one_in_rows():
    table = _table()
    ids = IDS[0]
    dense_w, sparse_w = nr.tensor(table.copy(), requires_grad=True), nr.tensor(table.copy(), requires_grad=True)
    _loss(nr.embedding(ids, dense_w), ids).backward()
    _loss(nr.embedding(ids, sparse_w, sparse=True), ids).backward()
    g = sparse_w.grad
    assert isinstance(g, RowSparse) and g.shape == (V, D) and g.indices.tolist() == ids.ravel().tolist()
    np.testing.assert_array_equal(g.numpy(), dense_w.grad.numpy())  # summed in the same order: bitwise
    c = g.coalesce()
    assert c.indices.tolist() == [1, 5, 7, 30] and c.values.shape == (4, D)
    np.testing.assert_array_equal(c.values.numpy(), dense_w.grad.numpy()[[1, 5, 7, 30]])
    # a second backward adds rows; a dense use of the same table makes the sum dense
    _loss(nr.embedding(ids, sparse_w, sparse=True), ids).backward()
    assert isinstance(sparse_w.grad, RowSparse) and sparse_w.grad.indices.size == 2 * ids.size
    np.testing.assert_allclose(sparse_w.grad.numpy(), 2 * dense_w.grad.numpy(), rtol=1e-6)
    (sparse_w * 1.0).sum().backward()
    assert type(sparse_w.grad) is nr.Tensor
    np.testing.assert_allclose(sparse_w.grad.numpy(), 2 * dense_w.grad.numpy() + 1, rtol=1e-6)
    # dense + sparse in the other order (the table used densely first, in one graph)
    w = nr.tensor(table.copy(), requires_grad=True)
    (w.sum() + _loss(nr.embedding(ids, w, sparse=True), ids)).backward()
    np.testing.assert_allclose(w.grad.numpy(), dense_w.grad.numpy() + 1, rtol=1e-6)


def test_dense_fallbacks_where_a_sparse_gradient_cannot_be_used():
    table, ids = _table(), IDS[0]
    w = nr.tensor(table, requires_grad=True)
    (gw,) = nr.grad(_loss(nr.embedding(ids, w, sparse=True), ids), [w])
    assert isinstance(gw, RowSparse)  # nr.grad returns it too
    (gw2,) = nr.grad(_loss(nr.embedding(ids, w, sparse=True), ids), [w], create_graph=True)
    assert type(gw2) is nr.Tensor and gw2.requires_grad  # differentiable: dense
    np.testing.assert_allclose(gw2.numpy(), gw.numpy(), rtol=1e-6)
    scaled = w * 2.0  # not a leaf: its gradient flows on through the multiplication
    (gs,) = nr.grad(_loss(nr.embedding(ids, scaled, sparse=True), ids), [w])
    assert type(gs) is nr.Tensor
    x = nr.tensor(table.astype(np.float64), requires_grad=True)  # second order through the op
    assert nr.gradgradcheck(lambda t: nr.tanh(nr.embedding(ids, t * 1.0, sparse=True)), [x])


def _train(sparse, make_opt, steps=3, ids_list=IDS):
    emb = Embedding(V, D, sparse=sparse, embeddings_initializer="uniform")
    emb(nr.tensor(IDS[0]))  # builds it
    emb.set_weights([_table()])
    opt = make_opt(emb.trainable_weights)
    for ids in ids_list[:steps]:
        opt.zero_grad()
        _loss(emb(nr.tensor(ids)), ids).backward()
        assert isinstance(emb.embeddings.grad, RowSparse) == sparse
        opt.step()
    return emb.embeddings.numpy()


@pytest.mark.parametrize("make", [lambda p: SGD(p, learning_rate=0.1), lambda p: Adagrad(p, learning_rate=0.1)],
                         ids=["sgd", "adagrad"])
def test_sgd_and_adagrad_sparse_equal_dense_exactly(make):
    sparse, dense = _train(True, make), _train(False, make)
    np.testing.assert_array_equal(sparse, dense)
    assert not np.allclose(sparse, _table())


def test_sparse_momentum_is_lazy():
    """Rows touched at every step: the dense update exactly. Otherwise a row's velocity decays
    only when the row is touched (TF/Keras' sparse momentum), checked against that formula."""
    every = [np.array([[0, 1, 2]])] * 3
    make = lambda p: SGD(p, learning_rate=0.1, momentum=0.9)  # noqa: E731
    emb = Embedding(3, D, sparse=True)
    emb(nr.tensor(every[0]))  # builds it
    table = _table()[:3]
    for sparse in (True, False):
        emb.sparse = sparse
        emb.set_weights([table.copy()])
        opt = make(emb.trainable_weights)
        for ids in every:
            opt.zero_grad()
            _loss(emb(nr.tensor(ids)), ids).backward()
            opt.step()
        if sparse:
            lazy_all = emb.embeddings.numpy()
    np.testing.assert_array_equal(lazy_all, emb.embeddings.numpy())
    for nesterov in (False, True):
        got = _train(True, lambda p: SGD(p, learning_rate=0.1, momentum=0.9, nesterov=nesterov))
        x, v = _table().astype(np.float64), np.zeros((V, D))
        for ids in IDS:
            w = nr.tensor(x.astype(np.float32), requires_grad=True)
            g = nr.grad(_loss(nr.embedding(ids, w), ids), [w])[0].numpy().astype(np.float64)
            rows = np.unique(ids)
            v[rows] = 0.9 * v[rows] - 0.1 * g[rows]
            x[rows] += 0.9 * v[rows] - 0.1 * g[rows] if nesterov else v[rows]
        np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-6)
        dense = _train(False, lambda p: SGD(p, learning_rate=0.1, momentum=0.9, nesterov=nesterov))
        assert not np.allclose(got, dense, atol=1e-4)  # row 7 was not touched at step 2: it differs


def _torch_train(make_opt, steps=3):
    emb = torch.nn.Embedding(V, D, sparse=True)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(_table()))
    opt = make_opt(emb.parameters())
    for ids in IDS[:steps]:
        opt.zero_grad()
        out = emb(torch.tensor(ids))
        target = torch.tensor(np.cos(np.arange(ids.size * D, dtype=np.float32)).reshape(*ids.shape, D))
        ((torch.tanh(out) - target) ** 2).sum().backward()
        assert emb.weight.grad.is_sparse
        opt.step()
    return emb.weight.detach().numpy()


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
@pytest.mark.parametrize("ours,theirs,lazy", [
    (lambda p: Adam(p, learning_rate=0.05, beta_1=0.8, beta_2=0.95), lambda p: torch.optim.SparseAdam(
        p, lr=0.05, betas=(0.8, 0.95), eps=1e-8), True),
    (lambda p: Adagrad(p, learning_rate=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10), False),
], ids=["adam-vs-SparseAdam", "adagrad"])
def test_lazy_updates_match_torch(ours, theirs, lazy):
    got, want = _train(True, ours), _torch_train(theirs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, _table())
    if lazy:  # dense Adam moves rows untouched at a step with their old moments: lazy Adam does not
        assert not np.allclose(got, _train(False, ours), atol=1e-4)


def test_refusals_and_clipping():
    emb = Embedding(V, D, sparse=True)
    emb(nr.tensor(IDS[0]))  # builds it
    opt = RMSprop(emb.trainable_weights)
    _loss(emb(nr.tensor(IDS[0])), IDS[0]).backward()
    with pytest.raises(TypeError, match="RMSprop cannot use the row-sparse gradient of embedding.*/embeddings "
                                        "\\(40, 3\\).*use SGD, Adagrad or Adam"):
        opt.step()
    for clip in ({"global_clipnorm": 0.5}, {"clipnorm": 0.5}, {"clipvalue": 0.05}):
        sparse = _train(True, lambda p: SGD(p, learning_rate=0.1, **clip))
        dense = _train(False, lambda p: SGD(p, learning_rate=0.1, **clip))
        np.testing.assert_allclose(sparse, dense, rtol=1e-6, atol=1e-7)
        assert not np.allclose(sparse, _train(True, lambda p: SGD(p, learning_rate=0.1)), atol=1e-4)
    w = nr.tensor(_table(), requires_grad=True)
    w.grad = RowSparse([3, 3], nr.tensor([[3.0, 0, 0], [0, 4.0, 0]]), (V, D))
    assert nr.optim.clip_grad_norm([w], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(w.grad.numpy()[3], [0.6, 0.8, 0.0], rtol=1e-5)
    with pytest.raises(ValueError, match="values shape \\(1, 2\\) must be"):
        RowSparse([1, 2], nr.ones((1, 2)), (V, 2))


def test_fit_with_a_sparse_embedding_eager_and_traced():
    """A model with Embedding(sparse=True) trains with fit; eager fit gets row-sparse gradients
    (SGD: the dense model's numbers exactly), a traced fit (jit=True) falls back to dense ones."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, size=(64, 3)).astype(np.float32)
    y = (x.sum(1) % 2).astype(np.int64)
    weights = {}
    for sparse, jit in ((False, False), (True, False), (False, True), (True, True)):
        nr.manual_seed(0)
        model = Sequential([Embedding(V, D, sparse=sparse, input_shape=(3,)), Flatten(), Dense(2)])
        model.compile(optimizer=SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy", jit=jit)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        weights[sparse, jit] = [w.numpy() for w in model.weights]
    for a, b in zip(weights[False, False], weights[True, False]):
        np.testing.assert_array_equal(a, b)
    for traced in (weights[False, True], weights[True, True]):  # each batch's ids are read live
        for a, b in zip(weights[False, False], traced):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    config = Embedding(V, D, sparse=True).get_config()
    assert config["sparse"] is True and Embedding.from_config(config).sparse
