"""Winograd convolution F(m×m, 3×3) (neurona/backend/kernels/winograd.py), for both tile sizes
(m = 4, the default, and m = 2): forward, input gradient and filter gradient match PyTorch and
im2col for every padding and odd/even size, higher-order gradients work, the size rule picks it
only where it pays, and graph mode replays it."""
import contextlib

import numpy as np
import pytest
import torch

import neurona as nr
from neurona.backend import kernels
from neurona.backend.kernels import winograd

pytest.importorskip("neurona.backend.kernels._numba")


@pytest.fixture(params=[4, 2], ids=["F4x4", "F2x2"])
def force(request, monkeypatch):
    monkeypatch.setattr(winograd, "TILE", request.param)

    def set_algo(algo):
        monkeypatch.setenv("NEURONA_CONV_ALGO", algo)
    set_algo("winograd")
    return set_algo


# (N, C, H, W), K, padding: even and odd outputs, no/one/two/asymmetric padding, a 1×1 output
CASES = [
    ((2, 3, 8, 8), 4, 1),
    ((2, 3, 7, 9), 4, 1),
    ((1, 5, 6, 7), 3, 0),
    ((3, 2, 5, 6), 4, 2),
    ((2, 4, 6, 7), 5, (1, 2)),
    ((1, 3, 3, 3), 2, 0),
    ((2, 3, 4, 5), 3, (2, 0)),
]


def _conv_pair(xs, k, padding, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal((k, xs[1], 3, 3)).astype(dtype)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=padding)
    gy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    nx, nw = nr.tensor(x, requires_grad=True), nr.tensor(w, requires_grad=True)
    ny = nr.F.conv2d(nx, nw, padding=padding)
    ny.backward(nr.tensor(gy))
    return (ny.numpy(), nx.grad.numpy(), nw.grad.numpy()), (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())


@pytest.mark.parametrize("xs,k,padding", CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-11), (np.float32, 1e-4)])
def test_matches_torch(force, xs, k, padding, dtype, tol):
    ours, theirs = _conv_pair(xs, k, padding, dtype)
    for name, a, b in zip(("output", "input grad", "filter grad"), ours, theirs):
        assert a.dtype == dtype, name
        # float32: the transforms' rounding is ~1e-5 of the result's scale (module docstring)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=name)


def test_winograd_path_is_taken(force, monkeypatch):
    calls = []
    for name in ("winograd_conv", "winograd_input_grad", "winograd_weight_grad"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    _conv_pair((2, 3, 8, 8), 4, 1, np.float64)
    assert calls == ["winograd_conv", "winograd_input_grad", "winograd_weight_grad"]


def test_same_numbers_as_im2col(force):
    """The two algorithms agree on a W3-sized layer (float32, 64 → 64 channels)."""
    ours = _conv_pair((4, 64, 16, 16), 64, 1, np.float32)[0]
    force("im2col")
    ref = _conv_pair((4, 64, 16, 16), 64, 1, np.float32)[0]
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())


def test_gradcheck_and_gradgradcheck(force):
    rng = np.random.default_rng(3)
    x = nr.tensor(rng.standard_normal((2, 3, 5, 6)), requires_grad=True)
    w = nr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    fn = lambda a, b: nr.F.conv2d(a, b, padding=1)  # noqa: E731
    assert nr.gradcheck(fn, (x, w))
    assert nr.gradgradcheck(fn, (x, w))


def _count_output_adjoint_kernel(monkeypatch):
    """A list that grows by one at each call of the output-gradient transform kernel."""
    monkeypatch.setattr(nr.backend.threads, "_num_threads", 1)  # one kernel call per transform
    mod = kernels._fast(np.zeros(1))
    name = "winograd43_output_adjoint" if winograd.TILE == 4 else "winograd_output_adjoint"
    real_kernel = getattr(mod, name)
    done = []
    monkeypatch.setattr(mod, name, lambda *a: done.append(1) or real_kernel(*a))
    return done


def test_shared_output_transform_runs_once_and_changes_nothing(force, monkeypatch):
    """conv2d's backward transforms gy once for both gradients; without the sharing block the
    two gradient ops transform it each, and the gradients are the same."""
    done = _count_output_adjoint_kernel(monkeypatch)
    shared = _conv_pair((2, 3, 7, 9), 4, 1, np.float64)[0]
    assert len(done) == 1
    monkeypatch.setattr(kernels, "winograd_sharing", contextlib.nullcontext)
    separate = _conv_pair((2, 3, 7, 9), 4, 1, np.float64)[0]
    assert len(done) == 3
    np.testing.assert_array_equal(shared[1], separate[1])
    np.testing.assert_array_equal(shared[2], separate[2])


def test_batch_split_shares_each_ranges_transform(force, monkeypatch):
    """With the batch split (2 kernel threads) each range's input and filter gradients share the
    range's transform of gy, in whichever thread the range runs: one transform per range, not two;
    the gradients are those of one thread."""
    one = _conv_pair((8, 3, 7, 9), 4, 1, np.float64)[0]
    monkeypatch.setattr(nr.backend.threads, "_num_threads", 2)
    monkeypatch.setattr(kernels, "MIN_SPLIT_WORK", 0)
    assert kernels.batch_ranges(np.zeros((8, 3, 7, 9)), 8, 1) == [(0, 4), (4, 8)]
    mod = kernels._fast(np.zeros(1))
    name = "winograd43_output_adjoint" if winograd.TILE == 4 else "winograd_output_adjoint"
    real_kernel = getattr(mod, name)
    done = []
    monkeypatch.setattr(mod, name, lambda *a: done.append(1) or real_kernel(*a))
    split = _conv_pair((8, 3, 7, 9), 4, 1, np.float64)[0]
    assert len(done) == 2
    monkeypatch.setattr(kernels, "winograd_sharing", contextlib.nullcontext)
    separate = _conv_pair((8, 3, 7, 9), 4, 1, np.float64)[0]
    assert len(done) == 6
    for a, b, c in zip(one, split, separate):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(b, c)
    assert winograd.sharing_store() is None  # nothing left open in this thread


def test_size_rule(monkeypatch):
    """The constants (NEURONA_CONV_CALIBRATION=0); the calibrated rule is in test_conv_paths.py."""
    monkeypatch.delenv("NEURONA_CONV_ALGO", raising=False)
    monkeypatch.setenv("NEURONA_CONV_CALIBRATION", "0")
    big = nr.ops.conv.make_geometry("t", (1, 64, 32, 32), 3, 1, 1, 1, "exact").ints
    small = nr.ops.conv.make_geometry("t", (1, 16, 14, 14), 3, 1, 1, 1, "exact").ints
    assert winograd.suits(64, 64, 64, big, 1, True)
    assert winograd.suits(16, 8, 8, big, 1, True)            # 16·32·32·8 ≥ 100,000
    assert not winograd.suits(64, 3, 64, big, 1, True)       # VGG's first layer stays on im2col
    assert not winograd.suits(2, 64, 64, big, 1, True)       # vectors of length 2
    assert not winograd.suits(16, 16, 16, small, 1, True)    # 16·14·14·16 < 100,000: measured slower
    assert winograd.suits(128, 16, 32, small, 1, True)       # 4×4 tiles cover 16×16 for 14×14: 31 % waste, allowed
    thirteen = nr.ops.conv.make_geometry("t", (1, 16, 13, 13), 3, 1, 1, 1, "exact").ints
    assert not winograd.suits(128, 16, 32, thirteen, 1, True)  # 16×16 for 13×13: 51 % waste
    bigger = nr.ops.conv.make_geometry("t", (1, 16, 28, 28), 3, 1, 1, 1, "exact").ints
    assert winograd.suits(128, 16, 32, bigger, 1, True)
    assert not winograd.suits(16, 64, 64, big, 1, False)     # no numba (CuPy, NEURONA_NO_NUMBA=1)
    assert not winograd.suits(16, 64, 64, big, 2, True)      # groups
    strided = nr.ops.conv.make_geometry("t", (1, 64, 8, 8), 3, 2, 1, 1, "floor").ints
    assert not winograd.suits(16, 64, 64, strided, 1, True)
    five = nr.ops.conv.make_geometry("t", (1, 64, 8, 8), 5, 1, 2, 1, "exact").ints
    assert winograd.suits(16, 64, 64, five, 1, True)          # F(2×2, 5×5): 16·8·8·64 ≥ 50,000
    assert not winograd.suits(4, 64, 64, five, 1, True)       # 4·8·8·64 < 50,000
    seven = nr.ops.conv.make_geometry("t", (1, 64, 8, 8), 7, 1, 3, 1, "exact").ints
    assert not winograd.suits(16, 64, 64, seven, 1, True)     # no 7×7 Winograd
    monkeypatch.setenv("NEURONA_CONV_ALGO", "im2col")
    assert not winograd.suits(16, 64, 64, big, 1, True)
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    assert winograd.suits(1, 3, 2, small, 1, True)


def test_no_numba_falls_back(force, monkeypatch):
    monkeypatch.setenv("NEURONA_NO_NUMBA", "1")
    ours, theirs = _conv_pair((2, 3, 7, 9), 4, 1, np.float64)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_graph_mode_replays_winograd(force):
    rng = np.random.default_rng(5)
    w = nr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    x1, x2 = (nr.tensor(rng.standard_normal((2, 3, 7, 9))) for _ in range(2))

    def loss(x):
        return (nr.F.conv2d(x, w, padding=1) ** 2).sum()

    def step(x):
        w.grad = None
        out = loss(x)
        out.backward()
        return out

    eager = []
    for x in (x1, x2):
        out = step(x)
        eager.append((out.item(), w.grad.numpy().copy()))
    compiled = nr.jit(step)
    for x, (v, g) in zip((x1, x2, x1), eager + eager[:1]):
        out = compiled(x)
        assert out.item() == pytest.approx(v, rel=1e-12)
        np.testing.assert_allclose(w.grad.numpy(), g, rtol=1e-12)


def test_filter_gradient_reuses_the_forward_tile_size(monkeypatch):
    """V kept by a forward pass at one tile size gives the right filter gradient even if the
    setting changed before backward."""
    monkeypatch.setenv("NEURONA_CONV_ALGO", "winograd")
    rng = np.random.default_rng(7)
    x = nr.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = nr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    monkeypatch.setattr(winograd, "TILE", 2)
    y = nr.F.conv2d(x, w, padding=1)
    monkeypatch.setattr(winograd, "TILE", 4)
    y.sum().backward()
    tw = torch.tensor(w.numpy(), requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x.numpy()), tw, padding=1).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_numbers(force, monkeypatch, threads):
    """The kernels split channels over threads; each channel is computed as with one thread."""
    monkeypatch.setattr(nr.backend.threads, "_num_threads", 1)
    one = _conv_pair((3, 5, 9, 7), 4, 1, np.float32, seed=11)[0]
    monkeypatch.setattr(nr.backend.threads, "_num_threads", threads)
    many = _conv_pair((3, 5, 9, 7), 4, 1, np.float32, seed=11)[0]
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


def test_set_num_threads(monkeypatch):
    monkeypatch.setattr(nr.backend.threads, "_num_threads", None)
    monkeypatch.delenv("NEURONA_NUM_THREADS", raising=False)
    assert nr.backend.kernel_threads() == nr.backend.available_cpus()  # the default
    monkeypatch.setenv("NEURONA_NUM_THREADS", "3")
    assert nr.backend.kernel_threads() == 3 and nr.get_num_threads() == 3
    monkeypatch.setattr(nr.backend.threads, "_num_threads", 1)  # what set_num_threads(1) records
    assert nr.backend.kernel_threads() == 1
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive integer"):
        nr.set_num_threads(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_written_out_f4_kernels_equal_the_generic_ones(dtype):
    """The m = 4 kernels with the matrices written out compute what the coefficient loops do."""
    mod = kernels._fast(np.zeros(1))
    rng = np.random.default_rng(9)
    n, c, th, tw, m = 5, 3, 2, 3, 4
    bt, _, at = winograd._mats(m, dtype)
    xt = rng.standard_normal((c, m * th + 2, m * tw + 2, n)).astype(dtype)
    p = th * tw * n
    (f1, v1, s), (f2, v2, _) = winograd._planes(36, c, p, dtype), winograd._planes(36, c, p, dtype)
    mod.winograd_input(xt, bt, m, th, tw, f1, s, 0, c)
    mod.winograd43_input(xt, th, tw, f2, s, 0, c)
    def close(got, ref):  # float32: the written-out sums round in another order
        eps = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, ref, rtol=eps, atol=eps * np.abs(ref).max())

    close(v2, v1)
    y1, y2 = (np.empty((c, m * th, m * tw, n), dtype) for _ in range(2))
    mod.winograd_output(f1, s, at, th, tw, y1, 0, c)
    mod.winograd43_output(f1, s, th, tw, y2, 0, c)
    close(y2, y1)
    g = rng.standard_normal((c, m * th, m * tw, n)).astype(dtype)
    (d1, dv1, _), (d2, dv2, _) = winograd._planes(36, c, p, dtype), winograd._planes(36, c, p, dtype)
    mod.winograd_output_adjoint(g, at, th, tw, d1, s, 0, c)
    mod.winograd43_output_adjoint(g, th, tw, d2, s, 0, c)
    close(dv2, dv1)
    x1, x2 = (np.zeros((c, m * th + 2, m * tw + 2, n), dtype) for _ in range(2))
    mod.winograd_input_adjoint(f1, s, bt, m, th, tw, x1, 0, c)
    mod.winograd43_input_adjoint(f1, s, th, tw, x2, 0, c)
    close(x2, x1)


def test_training_follows_the_same_path_with_either_algorithm(monkeypatch):
    """Ten SGD steps of a small CNN (3×3 convolutions with batch norm) give the same losses and
    weights through Winograd as through im2col, to float32 rounding."""
    from neurona.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
    from neurona.models import Sequential

    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 16)

    def train(algo):
        monkeypatch.setenv("NEURONA_CONV_ALGO", algo)
        nr.manual_seed(0)
        model = Sequential([Conv2D(16, 3, padding="same", input_shape=(3, 8, 8)), BatchNormalization(),
                            nr.layers.Activation("relu"), Conv2D(16, 3, padding="same"),
                            nr.layers.Activation("relu"), MaxPooling2D(2), Flatten(), Dense(4)])
        model.compile(optimizer=nr.optimizers.SGD(0.05, momentum=0.9),
                      loss=nr.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses = [model.train_on_batch(x, y) for _ in range(10)]
        return np.array(losses, dtype=np.float64), model.get_weights()

    calls = []
    real = kernels.winograd_conv
    monkeypatch.setattr(kernels, "winograd_conv", lambda *a: calls.append(1) or real(*a))
    wino_losses, wino_weights = train("winograd")
    assert calls, "the Winograd path was not taken"
    ref_losses, ref_weights = train("im2col")
    assert wino_losses[-1] < wino_losses[0]
    np.testing.assert_allclose(wino_losses, ref_losses, rtol=1e-4)
    for a, b in zip(wino_weights, ref_weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(b).max())))
