"""The workloads of docs/performance.md (W0-W3, W7), each as a pair of step functions (neurona, peer).

neurona's side is written with the raw core (tensors, `F` ops) and the library's optimisers
(`neurona.optim.SGD`/`Adam`); PyTorch's side is ordinary eager code (`torch.nn` modules and
`torch.optim`). Both start from the same initial weights, copied from the torch modules.
"""
from __future__ import annotations

import numpy as np
import torch

import neurona as nr
from neurona import functional as F
from neurona.optim import SGD
from neurona.optim import Adam as _Adam

from .harness import compare, report

TORCH = f"torch {torch.__version__.split('+')[0]} eager"


def _nr(t: torch.Tensor, transpose=False, device="cpu") -> nr.Tensor:
    """A neurona leaf holding a copy of torch tensor `t` (transposed for Linear weights): a copy,
    so that the two sides never update the same memory."""
    a = t.detach().cpu().numpy()
    return nr.tensor(np.array(a.T if transpose else a, order="C"), requires_grad=True, device=device)


def _data(x: torch.Tensor, y: torch.Tensor, device="cpu"):
    return nr.tensor(x.numpy(), device=device), nr.tensor(y.numpy(), device=device)


def _torch_step(model, opt, x, y):
    """PyTorch's training step: zero the gradients, cross-entropy, backward, update."""
    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


# -- optimisers: the library's, as a user calls them ------------------------------------------------
# neurona.optim.SGD's momentum form (v = μ·v − lr·g; p += v) is PyTorch's (buffer = −v/lr) with a
# constant learning rate; its eager update is one fused pass (backend/kernels/fused_update.py).
class SGDMomentum:
    """neurona.optim.SGD with momentum: step(), then zero_grad()."""

    def __init__(self, params, lr=0.01, momentum=0.9):
        self.opt = SGD(params, learning_rate=lr, momentum=momentum)

    def step(self):
        self.opt.step()
        self.opt.zero_grad()


class Adam:
    """neurona.optim.Adam (bias correction, no weight decay, as torch.optim.Adam): step(), then zero_grad()."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.opt = _Adam(params, learning_rate=lr, beta_1=betas[0], beta_2=betas[1], epsilon=eps)

    def step(self):
        self.opt.step()
        self.opt.zero_grad()


# -- W0: GEMM -----------------------------------------------------------------------------------
def w0(threads, reps):
    n = 1024
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = nr.tensor(a), nr.tensor(b)
    times = compare(lambda: ta @ tb, lambda: a @ b, reps=reps * 4)
    gflop = 2 * n**3 / 1e9
    return report("W0", times, "s/GEMM", f"numpy {np.__version__}", threads,
                  neurona_gflops=round(gflop / times["neurona_s"], 1), peer_gflops=round(gflop / times["peer_s"], 1))


# -- W1-W3: builders of (ours, peer) on a device ------------------------------------------------
# Each builds PyTorch's modules (seeded, always in the same order, so the same initial weights),
# copies their weights into neurona tensors on `device`, then moves the torch model there. The
# CPU benchmarks call them with "cpu", benchmarks/gpu.py with "cuda".
def torch_w1(device="cpu"):
    """W1's PyTorch side: (linear layers, inputs, labels, one training step). Also used by W8."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(784, 512), torch.nn.Linear(512, 512), torch.nn.Linear(512, 10)]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2]).to(device)
    x = torch.randn(128, 784)
    y = torch.randint(0, 10, (128,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return layers, x, y, _torch_step(model, opt, x.to(device), y.to(device))


def build_w1(device="cpu"):
    """W1: MLP 784-512-512-10, ReLU, softmax cross-entropy, SGD momentum, batch 128."""
    layers, x, y, peer = torch_w1(device)
    params = []
    for lin in layers:
        params += [_nr(lin.weight, transpose=True, device=device), _nr(lin.bias, device=device)]
    W1, b1, W2, b2, W3, b3 = params
    sgd = SGDMomentum(params, lr=0.01, momentum=0.9)
    nx, ny = _data(x, y, device)

    def ours():
        h = F.relu(nx @ W1 + b1)
        h = F.relu(h @ W2 + b2)
        F.cross_entropy(h @ W3 + b3, ny).backward()
        sgd.step()

    return ours, peer


def build_w2(device="cpu"):
    """W2: LeNet-5-like CNN on 1×28×28, batch 128, Adam."""
    torch.manual_seed(0)
    c1, c2 = torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.Conv2d(6, 16, 5)
    f1, f2, f3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)
    relu, pool = torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    model = torch.nn.Sequential(c1, relu, pool, c2, relu, pool, torch.nn.Flatten(), f1, relu, f2, relu, f3)
    x = torch.randn(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))

    cw1, cb1, cw2, cb2 = (_nr(t, device=device) for t in (c1.weight, c1.bias, c2.weight, c2.bias))
    fc = [(_nr(f.weight, transpose=True, device=device), _nr(f.bias, device=device)) for f in (f1, f2, f3)]
    adam = Adam([cw1, cb1, cw2, cb2] + [p for pair in fc for p in pair], lr=1e-3)
    nx, ny = _data(x, y, device)

    def ours():
        h = F.max_pool2d(F.relu(F.conv2d(nx, cw1, cb1, padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, cw2, cb2)), 2)
        h = h.reshape(h.shape[0], -1)
        h = F.relu(h @ fc[0][0] + fc[0][1])
        h = F.relu(h @ fc[1][0] + fc[1][1])
        F.cross_entropy(h @ fc[2][0] + fc[2][1], ny).backward()
        adam.step()

    model.to(device)
    return ours, _torch_step(model, torch.optim.Adam(model.parameters(), lr=1e-3), x.to(device), y.to(device))


# neurona's batch norm is the fused F.batch_norm (γ, β, and running statistics that it updates as
# BatchNorm2d does: momentum 0.1, unbiased variance); PyTorch's is BatchNorm2d.
def build_w3(device="cpu"):
    """W3: small VGG with BatchNorm on 3×32×32, batch 64, SGD momentum."""
    torch.manual_seed(0)
    chans = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    mods, convs = [], []
    for i, (ci, co) in enumerate(chans):
        conv = torch.nn.Conv2d(ci, co, 3, padding=1, bias=False)
        convs.append(conv)
        mods += [conv, torch.nn.BatchNorm2d(co), torch.nn.ReLU()]
        if i % 2:
            mods.append(torch.nn.MaxPool2d(2))
    fa, fb = torch.nn.Linear(256 * 4 * 4, 256), torch.nn.Linear(256, 10)
    model = torch.nn.Sequential(*mods, torch.nn.Flatten(), fa, torch.nn.ReLU(), fb)
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))

    ws = [_nr(c.weight, device=device) for c in convs]
    # (γ, β, running mean, running variance) of each layer, BatchNorm2d's initial values
    bns = [(nr.ones(co, requires_grad=True, device=device), nr.zeros(co, requires_grad=True, device=device),
            nr.zeros(co, device=device), nr.ones(co, device=device)) for _, co in chans]
    (wa, ba), (wb, bb) = [(_nr(f.weight, transpose=True, device=device), _nr(f.bias, device=device))
                          for f in (fa, fb)]
    sgd = SGDMomentum(ws + [p for bn in bns for p in bn[:2]] + [wa, ba, wb, bb], lr=0.01, momentum=0.9)
    nx, ny = _data(x, y, device)

    def ours():
        h = nx
        for i, (w, bn) in enumerate(zip(ws, bns)):
            h = F.relu(F.batch_norm(F.conv2d(h, w, padding=1), *bn))
            if i % 2:
                h = F.max_pool2d(h, 2)
        h = F.relu(h.reshape(h.shape[0], -1) @ wa + ba)
        F.cross_entropy(h @ wb + bb, ny).backward()
        sgd.step()

    model.to(device)
    return ours, _torch_step(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                             x.to(device), y.to(device))


def w1(threads, reps):
    return report("W1", compare(*build_w1(), reps=reps * 4), "s/step", TORCH, threads)


def w2(threads, reps):
    return report("W2", compare(*build_w2(), reps=reps * 2), "s/step", TORCH, threads)


def w3(threads, reps):
    return report("W3", compare(*build_w3(), reps=reps, warmup=1), "s/step", TORCH, threads)


# -- W7: per-op overhead -------------------------------------------------------------------------
def w7(threads, reps):
    ta = torch.randn(10, requires_grad=True)
    tb = torch.randn(10, requires_grad=True)
    na, nb = _nr(ta), _nr(tb)

    def peer():
        (ta * tb).sum().backward()
        ta.grad = tb.grad = None

    def ours():
        (na * nb).sum().backward()
        na.grad = nb.grad = None

    times = compare(ours, peer, reps=reps * 4, warmup=200, inner=500, scale=1e6)
    return report("W7", times, "us/iter", TORCH, threads)


WORKLOADS = {"W0": w0, "W1": w1, "W2": w2, "W3": w3, "W7": w7}
