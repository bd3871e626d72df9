"""The CuPy (GPU) path: every op family forward and backward, a higher-order gradient, device
round trips, Keras-style training with `model.to("cuda")`, saving a GPU-trained model, and
graph mode's refusal of GPU arrays. The reference is the same computation on the CPU (float32,
rtol 1e-4) and, for convolution, pooling, batch norm and cross-entropy, PyTorch (on CUDA when it can).

Skipped where CuPy or a CUDA device is missing. On a GPU machine `.gpu/check.sh` runs it as
`python3 -m pytest -q tests/test_cuda.py --noconftest`: the file is self-contained (its own
seeding; no hypothesis, which that machine lacks) and takes well under a minute there.
"""
import numpy as np
import pytest

cupy = pytest.importorskip("cupy")
try:
    _GPUS = cupy.cuda.runtime.getDeviceCount()
except Exception:  # noqa: BLE001 - no driver or no device: CuPy raises its CUDA runtime errors
    _GPUS = 0
if not _GPUS:
    pytest.skip("no CUDA device", allow_module_level=True)

import torch  # noqa: E402

import neurona as nr  # noqa: E402
from neurona import functional as F  # noqa: E402
from neurona.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.ops.conv import ConvTranspose2d, make_geometry  # noqa: E402
from neurona.optimizers import SGD, Adam, RMSprop  # noqa: E402
from neurona.saving import load_model, load_weights  # noqa: E402

TORCH_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions would differ by ~1e-3
torch.backends.cuda.matmul.allow_tf32 = False


@pytest.fixture(autouse=True)
def _seeded():
    nr.manual_seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def assert_close(got, ref, rtol=1e-4, what=""):
    """float32 on two devices: relative 1e-4, and an absolute floor scaled by the values' size
    (sums of many terms are rounded in another order on the GPU)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, reference {ref.shape}"
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=2e-5 * scale, err_msg=what)


# -- input generators (float64 data, cast to float32; integer data stays integer) ---------------
def uniform(lo=-2.0, hi=2.0):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def away_from_zero(rng, shape):
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(rng, shape):
    """Values at least ~0.01 apart: max, min and max-pooling have no ties to split."""
    n = int(np.prod(shape))
    return rng.permutation(np.linspace(-2.0, 2.0, max(n, 2))[:n]).reshape(shape)


def labels(n_classes):
    return lambda rng, shape: rng.integers(0, n_classes, shape)


def _arrays(shapes, gens, seed=0):
    rng = np.random.default_rng(seed)
    gens = gens if isinstance(gens, (list, tuple)) else [gens] * len(shapes)
    out = []
    for g, s in zip(gens, shapes):
        a = np.asarray(g(rng, s))
        out.append(a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64))
    return out


def run_on(device, fn, arrays):
    """fn on tensors of `arrays` on `device`: (outputs, input gradients of Σ out·v) as NumPy, v a
    fixed random projection; checks that outputs and gradients stay on `device`."""
    xs = [nr.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    outs = fn(*xs)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    for k, o in enumerate(outs):
        assert o.device == device, f"output {k} is on {o.device}, expected {device}"
    rng = np.random.default_rng(1)
    diff = [o for o in outs if o.requires_grad]
    grads = []
    if diff:
        total = sum((o * nr.tensor(rng.standard_normal(o.shape).astype(o.dtype), device=device)).sum() for o in diff)
        total.backward()
        for i, x in enumerate(xs):
            if x.requires_grad:
                assert x.grad is not None, f"input {i} got no gradient"
                assert x.grad.device == device, f"the gradient of input {i} is on {x.grad.device}"
                grads.append(x.grad.numpy())
    return [o.numpy() for o in outs], grads


def check_gpu_matches_cpu(fn, shapes, gens=uniform(), rtol=1e-4):
    arrays = _arrays(shapes, gens)
    cpu_outs, cpu_grads = run_on("cpu", fn, arrays)
    gpu_outs, gpu_grads = run_on("cuda", fn, arrays)
    for k, (g, c) in enumerate(zip(gpu_outs, cpu_outs)):
        assert g.dtype == c.dtype, f"output {k}: dtype {g.dtype} on the GPU, {c.dtype} on the CPU"
        assert_close(g, c, rtol, f"forward, output {k}")
    assert len(gpu_grads) == len(cpu_grads)
    for i, (g, c) in enumerate(zip(gpu_grads, cpu_grads)):
        assert_close(g, c, rtol, f"gradient {i}")


def conv_transpose2d(gy, w, x_hw, stride=1, padding=0):
    """conv2d's input gradient as an op (∂T/∂x of ops/conv.py): (N, K, OH, OW) → (N, C, H, W)."""
    geo = make_geometry("conv_transpose2d", (gy.shape[0], w.shape[1], *x_hw), w.shape[2:], stride, padding, 1,
                        "exact")
    return ConvTranspose2d.apply(gy, w, geo=geo, n=gy.shape[0])


def batch_norm_all(x, gamma, beta):
    """Training-mode output, running statistics updated in place, then inference with them."""
    c = x.shape[1]
    running_mean, running_var = nr.zeros(c, device=x.device), nr.ones(c, device=x.device)
    y = F.batch_norm(x, gamma, beta, running_mean, running_var, momentum=0.1)
    y_eval = F.batch_norm(x, gamma, beta, running_mean, running_var, training=False)
    return [y, y_eval, running_mean, running_var]


POS = uniform(0.5, 2.0)
OPS = {
    # elementwise
    "add_broadcast": (lambda a, b: a + b, [(3, 4), (4,)], uniform()),
    "sub_mul_scalars": (lambda a, b: (2.0 * a - b) * 0.5 - 1, [(3, 4), (3, 1)], uniform()),
    "div": (lambda a, b: a / b, [(3, 4), (3, 4)], [uniform(), away_from_zero]),
    "rdiv": (lambda b: 1.0 / b, [(5,)], away_from_zero),
    "pow_scalar": (lambda a: a ** 3 + a ** 0.5, [(3, 4)], POS),
    "pow_tensor": (lambda a, b: a ** b, [(3, 4), (3, 4)], [POS, uniform(-1, 1)]),
    "exp_log_log1p_sqrt": (lambda a: a.exp() + a.log() + F.log1p(a) + a.sqrt(), [(3, 4)], POS),
    "neg_abs": (lambda a: -abs(a), [(3, 4)], away_from_zero),
    "maximum_minimum": (lambda a, b: F.maximum(a, b) + F.minimum(a, 0.3), [(3, 4), (4,)], distinct),
    "clip": (lambda a: a.clip(-0.5, 0.7), [(4, 5)], distinct),
    "where": (lambda a, b: F.where(a > 0, a, b), [(3, 4), (3, 4)], uniform()),
    "cast": (lambda a: a.astype(nr.float64) * 2, [(3, 4)], uniform()),
    "compare": (lambda a, b: [a < b, a == a, a >= 0.5], [(3, 4), (3, 4)], uniform()),
    # activations
    "sigmoid_tanh_relu": (lambda a: a.sigmoid() + a.tanh() + a.relu(), [(4, 6)], away_from_zero),
    "leaky_elu_softplus": (lambda a: F.leaky_relu(a, 0.1) + F.elu(a) + F.softplus(a), [(4, 6)], away_from_zero),
    "softmax_log_softmax": (lambda a: [a.softmax(axis=1), a.log_softmax(axis=0)], [(4, 6)], uniform()),
    "prelu": (lambda a, alpha: F.prelu(a, alpha), [(4, 3), (3,)], [away_from_zero, uniform(0, 0.5)]),
    "maxout": (lambda a: F.maxout(a, 2), [(3, 8)], distinct),
    # reductions
    "sum_mean_var": (lambda a: [a.sum(axis=1), a.mean(axis=(0, 2), keepdims=True), a.var(axis=0)], [(3, 4, 5)],
                     uniform()),
    "max_min": (lambda a: [a.max(axis=1), a.min()], [(4, 5)], distinct),
    "logsumexp": (lambda a: a.logsumexp(axis=-1), [(4, 5)], uniform(-5, 5)),
    "argmax_argmin": (lambda a: [a.argmax(axis=1), a.argmin(axis=0, keepdims=True)], [(4, 5)], distinct),
    # movement
    "reshape_transpose": (lambda a: a.reshape(6, 4).T.swapaxes(0, 1).flatten(), [(2, 3, 4)], uniform()),
    "broadcast_squeeze": (lambda a: a.broadcast_to((3, 4, 5)).expand_dims(0).squeeze(0), [(4, 1)], uniform()),
    "concat_stack_split": (lambda a, b: [F.concatenate([a, b], axis=1), F.stack([a, b]), *F.split(b, 2, axis=1)],
                           [(3, 4), (3, 4)], uniform()),
    "pad": (lambda a: F.pad(a, ((1, 0), (2, 1)), 0.5), [(3, 4)], uniform()),
    "index_basic": (lambda a: a[1:, ::2, None, 0], [(4, 5, 3)], uniform()),
    "index_repeated_list": (lambda a: a[[0, 2, 2, 1]], [(3, 4)], uniform()),
    "index_mask": (lambda a: a[a > 0], [(4, 5)], uniform()),
    "gather": (lambda a, idx: F.gather(a, idx, axis=1), [(4, 5), (4, 3)], [uniform(), labels(5)]),
    # matmul
    "matmul_2d": (lambda a, b: a @ b, [(8, 16), (16, 5)], uniform()),
    "matmul_batched": (lambda a, b: a @ b, [(2, 3, 4), (4, 5)], uniform()),
    "matmul_vector_dot": (lambda a, b, v: [a @ v, F.dot(v, v), v @ b], [(3, 4), (4, 2), (4,)], uniform()),
    # convolution and pooling
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 3, 8, 8), (4, 3, 3, 3), (4,)], uniform()),
    "conv2d_stride_pad": (lambda x, w: F.conv2d(x, w, stride=2, padding=1), [(2, 4, 9, 9), (6, 4, 3, 3)],
                          uniform()),
    "conv2d_groups_dilation": (lambda x, w: F.conv2d(x, w, groups=2, dilation=2), [(2, 4, 9, 9), (6, 2, 3, 3)],
                               uniform()),
    "conv2d_one_channel": (lambda x, w: F.conv2d(x, w, padding=2), [(2, 1, 12, 12), (3, 1, 5, 5)], uniform()),
    "conv_transpose2d": (lambda g, w: conv_transpose2d(g, w, (9, 9), stride=2, padding=1),
                         [(2, 6, 5, 5), (6, 4, 3, 3)], uniform()),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(2, 3, 8, 8)], distinct),
    "max_pool2d_stride_pad": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(2, 3, 9, 9)], distinct),
    "avg_pool2d": (lambda x: [F.avg_pool2d(x, 2), F.avg_pool2d(x, 3, stride=1, padding=1)], [(2, 3, 8, 8)],
                   uniform()),
    # normalisation
    "batch_norm_nchw": (batch_norm_all, [(4, 3, 5, 5), (3,), (3,)], [uniform(-1, 3), uniform(0.5, 2), uniform()]),
    "batch_norm_nc": (batch_norm_all, [(16, 6), (6,), (6,)], [uniform(-1, 3), uniform(0.5, 2), uniform()]),
    # losses, embedding
    "mse_huber_quadratic": (lambda p, t: [F.mse_loss(p, t), F.huber_loss(p, t, delta=0.5), F.quadratic_cost(p, t)],
                            [(6, 3), (6, 3)], uniform()),
    "binary_cross_entropy": (lambda p, t: F.binary_cross_entropy(p, t), [(6, 3), (6, 3)],
                             [uniform(0.05, 0.95), uniform(0, 1)]),
    "bce_with_logits": (lambda z, t: F.binary_cross_entropy_with_logits(z, t, pos_weight=2.0), [(6, 3), (6, 3)],
                        [uniform(), uniform(0, 1)]),
    "cross_entropy_labels": (lambda z, y: F.cross_entropy(z, y), [(8, 5), (8,)], [uniform(), labels(5)]),
    "cross_entropy_smoothing_spatial": (lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1),
                                        [(2, 5, 3, 3), (2, 3, 3)], [uniform(), labels(5)]),
    "cross_entropy_probabilities": (lambda z, p: F.cross_entropy(z, p.softmax(axis=1), reduction="sum"),
                                    [(4, 5), (4, 5)], uniform()),
    "nll_loss": (lambda z, y: F.nll_loss(z.log_softmax(axis=1), y, reduction="none"), [(8, 5), (8,)],
                 [uniform(), labels(5)]),
    "embedding_repeated": (lambda w, idx: F.embedding(idx, w), [(10, 4), (5, 3)], [uniform(), labels(10)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_forward_and_backward_match_cpu(name):
    fn, shapes, gens = OPS[name]
    check_gpu_matches_cpu(fn, shapes, gens)


# -- against PyTorch (on CUDA when torch sees the GPU) -------------------------------------------
def _torch(a, grad=True):
    return torch.tensor(a, device=TORCH_DEVICE, requires_grad=grad and a.dtype.kind == "f")


TORCH_OPS = {
    "conv2d_stride_pad_groups": (lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2),
                                 lambda x, w: torch.nn.functional.conv2d(x, w, stride=2, padding=1, groups=2),
                                 [(2, 4, 9, 9), (6, 2, 3, 3)], uniform()),
    "conv_transpose2d": (lambda g, w: conv_transpose2d(g, w, (9, 9), stride=2, padding=1),
                         lambda g, w: torch.nn.functional.conv_transpose2d(g, w, stride=2, padding=1),
                         [(2, 6, 5, 5), (6, 4, 3, 3)], uniform()),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
                   lambda x: torch.nn.functional.max_pool2d(x, 3, stride=2, padding=1), [(2, 3, 9, 9)], distinct),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), lambda x: torch.nn.functional.avg_pool2d(x, 2), [(2, 3, 8, 8)],
                   uniform()),
    "batch_norm": (lambda x, g, b: F.batch_norm(x, g, b),
                   lambda x, g, b: torch.nn.functional.batch_norm(x, None, None, g, b, training=True),
                   [(4, 3, 5, 5), (3,), (3,)], [uniform(-1, 3), uniform(0.5, 2), uniform()]),
    "cross_entropy": (lambda z, y: F.cross_entropy(z, y), lambda z, y: torch.nn.functional.cross_entropy(z, y),
                      [(8, 5), (8,)], [uniform(), labels(5)]),
}


@pytest.mark.parametrize("name", sorted(TORCH_OPS))
def test_op_matches_torch(name):
    nr_fn, torch_fn, shapes, gens = TORCH_OPS[name]
    arrays = _arrays(shapes, gens)
    outs, grads = run_on("cuda", nr_fn, arrays)
    ts = [_torch(a) for a in arrays]
    ref = torch_fn(*ts)
    assert_close(outs[0], ref.detach().cpu().numpy(), what=f"{name} forward vs torch {TORCH_DEVICE}")
    v = torch.tensor(np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32), device=TORCH_DEVICE)
    ref_grads = torch.autograd.grad((ref * v).sum(), [t for t in ts if t.requires_grad])
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert_close(g, r.cpu().numpy(), what=f"{name} gradient {i} vs torch {TORCH_DEVICE}")


# -- dropout, higher order, devices ------------------------------------------------------------------
def test_dropout_on_gpu_keeps_shape_scale_and_routes_the_gradient():
    x = nr.ones((400, 250), device="cuda", requires_grad=True)
    y = F.dropout(x, p=0.3)
    assert y.device == "cuda" and y.shape == x.shape
    values = y.numpy()
    assert set(np.unique(values).tolist()) <= {0.0, np.float32(1 / 0.7)}
    assert abs((values == 0).mean() - 0.3) < 0.01
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # the gradient is the mask, scaled
    assert F.dropout(x, p=0.3, training=False) is x
    nr.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    nr.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)  # nr.manual_seed seeds CuPy's generator


@pytest.mark.parametrize("op", ["tanh", "conv2d"])
def test_second_order_gradient_matches_cpu(op):
    def second(device):
        if op == "tanh":
            x = nr.tensor(_arrays([(3, 4)], uniform())[0], device=device, requires_grad=True)
            (g,) = nr.grad((x.tanh() ** 2).sum(), [x], create_graph=True)
            (gg,) = nr.grad((g * g).sum(), [x])
            return [gg.numpy()]
        x, w = (nr.tensor(a, device=device, requires_grad=True) for a in _arrays([(2, 3, 6, 6), (4, 3, 3, 3)], uniform()))
        (gx,) = nr.grad((F.conv2d(x, w, padding=1).tanh()).sum(), [x], create_graph=True)
        penalty = (gx * gx).sum()  # a gradient penalty: its gradient goes through conv2d's backward
        gw, gx2 = nr.grad(penalty, [w, x])
        assert gw.device == device
        return [gw.numpy(), gx2.numpy()]

    for k, (g, c) in enumerate(zip(second("cuda"), second("cpu"))):
        assert_close(g, c, what=f"{op} second-order gradient {k}")


def test_tensors_on_the_gpu_behave_like_cpu_tensors():
    t = nr.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda")
    assert t.device == "cuda" and t.dtype == np.float32 and isinstance(t.data, cupy.ndarray)
    assert isinstance(t.numpy(), np.ndarray) and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t.sum().item() == 10.0 and float(t.max()) == 4.0 and int(t[1, 1]) == 4 and bool(t[0, 0] > 0)
    assert len(t) == 2 and "tensor(" in repr(t)
    assert nr.tensor([1, 2], device="cuda").dtype == np.int64
    for made in (nr.zeros(2, 3, device="cuda"), nr.ones((2,), device="cuda"), nr.randn(4, device="cuda"),
                 nr.rand(4, device="cuda"), nr.full((2,), 7.0, device="cuda"), nr.arange(3, device="cuda"),
                 nr.eye(2, device="cuda"), nr.randint(0, 5, (3,), device="cuda"), nr.zeros_like(t)):
        assert made.device == "cuda", made
    wrapped = nr.tensor(cupy.arange(3, dtype=cupy.float32))  # a CuPy array stays where it is
    assert wrapped.device == "cuda" and (wrapped * 2).tolist() == [0.0, 2.0, 4.0]
    p = nr.tensor([1.0, 2.0, 3.0], device="cuda", requires_grad=True)
    (p * p).sum().backward()
    with nr.no_grad():  # in-place updates and item assignment from host values
        p -= 0.5 * p.grad
        p[[0, 2]] = np.array([9.0, 8.0], dtype=np.float32)
        p[1] = 0.25
    assert p.tolist() == [9.0, 0.25, 8.0] and p.device == "cuda"
    y = nr.tensor([1.0, 2.0], device="cuda", requires_grad=True) * 3
    y.backward(np.array([1.0, 1.0], dtype=np.float32))  # a host gradient for a GPU output


def test_to_moves_data_and_gradients_flow_back_across_devices():
    host = nr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    on_gpu = host.to("cuda")
    assert on_gpu.device == "cuda" and not on_gpu.is_leaf
    back = (on_gpu * on_gpu).to("cpu")
    assert back.device == "cpu" and isinstance(back.data, np.ndarray)
    back.sum().backward()
    assert host.grad.device == "cpu" and host.grad.tolist() == [2.0, -4.0, 6.0]

    leaf = nr.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    (leaf.cpu() * 3).sum().backward()
    assert leaf.grad.device == "cuda" and leaf.grad.tolist() == [3.0, 3.0]
    assert leaf.cuda() is leaf and leaf.to("cuda:0").device == "cuda"
    assert leaf.to(dtype=nr.float64).device == "cuda"


def test_mixing_devices_is_an_error():
    with pytest.raises((TypeError, ValueError)):
        nr.ones(3) + nr.ones(3, device="cuda")
    with pytest.raises(ValueError, match="cross_entropy: target is on 'cpu' but the input is on 'cuda'"):
        F.cross_entropy(nr.zeros((2, 3), device="cuda"), nr.tensor([0, 1]))


# -- models: Sequential MLP and CNN with compile/fit ------------------------------------------------
def _data(kind, n=64):
    rng = np.random.default_rng(0)
    if kind == "mlp":
        x = rng.standard_normal((n, 8)).astype(np.float32)
        y = ((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0))
    else:
        x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
        y = ((x[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64) + (x[:, 0, 4:].mean(axis=(1, 2)) > 0))
    return x, y


def _mlp():
    return Sequential([Dense(16, activation="relu", input_dim=8), Dense(3, activation="softmax")])


def _cnn():
    return Sequential([Conv2D(4, 3, padding="same", activation="relu", input_shape=(1, 8, 8)),
                       BatchNormalization(), MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])


def _train(build, kind, device, order):
    """Build (seeded: the same initial weights on both devices), place and compile in `order`,
    then fit 3 epochs; SGD with momentum keeps rounding differences from being amplified."""
    nr.manual_seed(0)
    model = build()
    compile_args = dict(optimizer=SGD(learning_rate=0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                        metrics=["accuracy"])
    if order == "to_then_compile":
        model.to(device).compile(**compile_args)
    else:
        model.compile(**compile_args)
        model.to(device)
    x, y = _data(kind)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=0, validation_split=0.25)
    return model, history.history, x, y


@pytest.mark.parametrize("build,kind,order", [(_mlp, "mlp", "to_then_compile"), (_cnn, "cnn", "compile_then_to")])
def test_fit_on_gpu_matches_cpu(build, kind, order):
    gpu, h_gpu, x, y = _train(build, kind, "cuda", order)
    cpu, h_cpu, _, _ = _train(build, kind, "cpu", order)
    assert all(w.device == "cuda" for w in gpu.weights)
    assert all(s.device == "cuda" for state in gpu.optimizer.state for s in state.values())
    assert gpu.optimizer.iterations == cpu.optimizer.iterations == 9
    for key in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(h_gpu[key], h_cpu[key], rtol=1e-3, atol=1e-5, err_msg=key)
    for a, b in zip(gpu.get_weights(), cpu.get_weights()):
        assert_close(a, b, rtol=1e-3, what="trained weights")
    pred = gpu.predict(x, batch_size=32)
    assert isinstance(pred, np.ndarray)
    assert_close(pred, cpu.predict(x, batch_size=32), rtol=1e-3, what="predict")
    loss_gpu, acc_gpu = gpu.evaluate(x, y, batch_size=32)
    loss_cpu, acc_cpu = cpu.evaluate(x, y, batch_size=32)
    assert abs(loss_gpu - loss_cpu) < 1e-4 * max(1.0, abs(loss_cpu)) and acc_gpu == acc_cpu


def test_unbuilt_model_moved_to_gpu_builds_its_weights_there():
    model = Sequential([Dense(8, activation="relu"), Dense(2)]).to("cuda")
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    model.fit(x, np.zeros((10, 2), np.float32), epochs=1, verbose=0)
    assert [w.device for w in model.weights] == ["cuda"] * 4
    layer = Dense(3)  # a bare layer called on GPU data builds on the GPU
    assert layer(nr.ones((2, 4), device="cuda")).device == "cuda" and layer.kernel.device == "cuda"


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, learning_rate=0.1, momentum=0.9), lambda ps: Adam(ps, 0.01),
                                  lambda ps: RMSprop(ps, learning_rate=0.01, momentum=0.5)])
def test_optimizer_steps_on_gpu_match_cpu(make):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((5, 4)).astype(np.float32)
    grads = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3)]
    result = {}
    for device in ("cpu", "cuda"):
        # a copy: nr.tensor wraps a NumPy array without copying, and the CPU run updates it in place
        w = nr.tensor(w0.copy(), device=device, requires_grad=True)
        opt = make([w])
        for g in grads:
            w.grad = nr.tensor(g, device=device)
            opt.step()
        assert w.device == device
        result[device] = (w.numpy(), opt.state_dict())
    assert_close(result["cuda"][0], result["cpu"][0], what="weights after 3 steps")
    for key, value in result["cpu"][1].items():
        assert isinstance(result["cuda"][1][key], np.ndarray)
        assert_close(result["cuda"][1][key], value, what=f"optimizer state {key}")


def test_model_trained_on_gpu_saves_and_loads(tmp_path):
    model, _, x, _ = _train(_cnn, "cnn", "cuda", "to_then_compile")
    model.save(tmp_path / "cnn")
    expected = model.predict(x)
    on_cpu = load_model(tmp_path / "cnn")
    assert all(w.device == "cpu" for w in on_cpu.weights)
    assert_close(on_cpu.predict(x), expected, what="reloaded on the CPU")
    back_on_gpu = load_model(tmp_path / "cnn").to("cuda")
    assert_close(back_on_gpu.predict(x), expected, what="reloaded and moved to the GPU")
    back_on_gpu.fit(x, np.zeros(len(x), np.int64), epochs=1, verbose=0)  # the loaded optimiser follows
    fresh = load_model(tmp_path / "cnn", compile=False).to("cuda")
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])  # host arrays into GPU weights
    assert not np.allclose(fresh.predict(x), expected)
    load_weights(fresh, tmp_path / "cnn")
    assert all(w.device == "cuda" for w in fresh.weights)
    assert_close(fresh.predict(x), expected, what="load_weights into a GPU model")


# -- graph mode ----------------------------------------------------------------------------------------
def test_graph_mode_refuses_gpu_tensors_clearly():
    x = nr.ones((3,), device="cuda", requires_grad=True)

    @nr.jit
    def f(t):
        return (t * 2).sum()

    with pytest.raises(NotImplementedError, match="graph mode .* NumPy \\(CPU\\) arrays only"):
        f(x)
    w = nr.ones((3,), device="cuda")

    @nr.jit
    def g(t):
        return (t * w).sum()  # a GPU tensor from outside the trace: refused when first read

    with pytest.raises(NotImplementedError, match="graph mode"):
        g(nr.ones(3))
    assert (x * 2).sum().item() == 6.0  # no trace is left active: eager mode still works
    assert f(nr.ones(3)).item() == 6.0  # and graph mode on the CPU

    model, _, x_np, y_np = _train(_mlp, "mlp", "cuda", "to_then_compile")
    with pytest.raises(NotImplementedError, match="graph mode"):
        model.fit(x_np, y_np, epochs=1, verbose=0, jit=True)


def test_resnet_with_merge_layers_trains_on_gpu_like_on_cpu():
    """A residual network (functional Model, Add layers, projection shortcuts, batch norm) gives
    the same loss and gradients on the GPU as on the CPU (where its larger convolutions may run
    through Winograd: their float32 rounding differs by ~1e-5 of the scale)."""
    from neurona.vision import resnet_cifar

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    results = {}
    for device in ("cpu", "cuda"):
        nr.manual_seed(0)
        model = resnet_cifar(depth=8, num_classes=10, input_shape=(3, 16, 16), classifier_activation=None)
        if device == "cuda":
            model.to("cuda")
        loss = F.cross_entropy(model(nr.tensor(x, device=device), training=True), nr.tensor(y, device=device))
        loss.backward()
        results[device] = (loss.item(), [w.grad.numpy() for w in model.trainable_weights])
    assert abs(results["cuda"][0] - results["cpu"][0]) < 1e-4 * max(1.0, abs(results["cpu"][0]))
    for g_gpu, g_cpu in zip(results["cuda"][1], results["cpu"][1]):
        assert_close(g_gpu, g_cpu, rtol=1e-3, what="ResNet gradient")
