"""Neural architecture search with reinforcement learning (Zoph and Le 2017), small: an RNN
controller emits a CNN layer by layer — for each layer its number of filters, kernel size and
whether a 2×2 max-pooling follows — and is trained with REINFORCE, the reward being the child
network's validation accuracy after a short training, minus a moving-average baseline:
∇J ≈ (R − b) ∇ Σ_t log π(a_t | a_<t), b ← β·b + (1 − β)·R.

The controller only emits valid architectures: at each decision the choices that would not fit
the feature map left (a 'valid' kernel larger than the map, pooling a map smaller than 2) are
masked out, and a search space with no valid architecture at all for the input size is refused
when it is made.
May import: numpy, neurona, neurona.nn, neurona.optim, neurona.models.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..tensor import Tensor
from .lstm import LSTMCell


class SearchSpace:
    """CNNs of `n_layers` blocks [Conv2D(filters, kernel, 'valid', ReLU), optional MaxPooling2D(2)]
    then Dense(num_classes), for square inputs of `input_size` with `channels` channels.

    >>> space = SearchSpace(input_size=8, n_layers=2)
    >>> space.names
    ['filters_1', 'kernel_1', 'pool_1', 'filters_2', 'kernel_2', 'pool_2']
    >>> SearchSpace(input_size=2, n_layers=2, kernels=(3, 5))
    Traceback (most recent call last):
    ...
    ValueError: SearchSpace: no valid architecture for inputs of 2×2: 2 layers of kernels (3, 5) ('valid' padding) need inputs of at least 5×5
    """

    def __init__(self, input_size=8, channels=1, n_layers=2, filters=(8, 16, 32), kernels=(1, 3, 5), pools=(0, 1),
                 num_classes=10):
        self.input_size, self.channels, self.n_layers = int(input_size), int(channels), int(n_layers)
        self.filters, self.kernels, self.pools = tuple(filters), tuple(kernels), tuple(pools)
        self.num_classes = int(num_classes)
        self.choices, self.names = [], []
        for i in range(1, self.n_layers + 1):
            self.choices += [self.filters, self.kernels, self.pools]
            self.names += [f"filters_{i}", f"kernel_{i}", f"pool_{i}"]
        smallest = self.n_layers * (min(self.kernels) - 1) + 1
        if not self._reachable(self.input_size, 0):
            raise ValueError(f"SearchSpace: no valid architecture for inputs of {self.input_size}×{self.input_size}: "
                             f"{self.n_layers} layers of kernels {self.kernels} ('valid' padding) need inputs of "
                             f"at least {smallest}×{smallest}")

    def _reachable(self, size, layer):
        """Whether some choice of the remaining layers fits a map of `size`."""
        if layer == self.n_layers:
            return size >= 1
        return any(self._reachable(after, layer + 1) for k in self.kernels if k <= size
                   for after in self._pool_sizes(size - k + 1))

    def _pool_sizes(self, size):
        return [size // 2 if p else size for p in self.pools if not p or size >= 2]

    def mask(self, step, size):
        """Boolean mask over decision `step`'s choices that keep a valid completion, for a map
        of `size` before this layer's decision."""
        layer, kind = divmod(step, 3)
        if kind == 0:
            return np.ones(len(self.filters), bool)
        if kind == 1:
            return np.array([k <= size and any(self._reachable(s, layer + 1) for s in self._pool_sizes(size - k + 1))
                             for k in self.kernels])
        return np.array([(not p or size >= 2) and self._reachable(size // 2 if p else size, layer + 1)
                         for p in self.pools])

    def describe(self, arch):
        return " → ".join(f"conv{arch[3 * i]}@{arch[3 * i + 1]}×{arch[3 * i + 1]}" + (" → pool" if arch[3 * i + 2] else "")
                          for i in range(self.n_layers)) + f" → dense{self.num_classes}"

    def is_valid(self, arch):
        size = self.input_size
        for i in range(self.n_layers):
            k, p = arch[3 * i + 1], arch[3 * i + 2]
            if k > size:
                return False
            size = size - k + 1
            if p:
                if size < 2:
                    return False
                size //= 2
        return size >= 1

    def build(self, arch):
        """The child network of `arch` (a list of chosen values) as a compiled-ready Sequential."""
        from ..models import Sequential
        from ..nn.layers import Conv2D, Dense, Flatten, MaxPooling2D

        if not self.is_valid(arch):
            raise ValueError(f"SearchSpace.build: {self.describe(arch)} does not fit {self.input_size}×{self.input_size} inputs")
        layers = []
        for i in range(self.n_layers):
            f, k, p = arch[3 * i:3 * i + 3]
            kw = {"input_shape": (self.channels, self.input_size, self.input_size)} if i == 0 else {}
            layers.append(Conv2D(f, k, activation="relu", kernel_initializer="he_normal", **kw))
            if p:
                layers.append(MaxPooling2D(2, rounding="floor"))
        return Sequential(layers + [Flatten(), Dense(self.num_classes, activation="softmax")])


class Controller:
    """An LSTM that emits one decision per step; its input at each step is an embedding of the
    previous choice. `sample(rng)` returns (architecture, Σ log π, per-step choice indices)."""

    def __init__(self, space, hidden=32, seed=0):
        rng = np.random.default_rng(seed)
        self.space, self.hidden = space, hidden
        self.cell = LSTMCell(hidden, hidden, seed=seed)
        n_in = 1 + sum(len(c) for c in space.choices)  # a start token + every choice of every step
        self.embed = Tensor((rng.standard_normal((n_in, hidden)) * 0.1).astype(np.float32), requires_grad=True)
        self.heads = [Tensor((rng.standard_normal((hidden, len(c))) * 0.1).astype(np.float32), requires_grad=True)
                      for c in space.choices]
        self.weights = self.cell.weights + [self.embed] + self.heads
        self._offsets = np.cumsum([1] + [len(c) for c in space.choices])

    def sample(self, rng, greedy=False):
        state = self.cell.zero_state(1)
        token, size = 0, self.space.input_size
        arch, picks, log_prob = [], [], None
        for step, choices in enumerate(self.space.choices):
            h, c = self.cell(self.embed[token:token + 1], state)
            state = (h, c)
            mask = self.space.mask(step, size)
            logits = ops.matmul(h, self.heads[step]) + Tensor(np.where(mask, 0.0, -1e9).astype(np.float32))
            logp = ops.log_softmax(logits, axis=1)
            probs = np.exp(logp.numpy()[0])
            i = int(probs.argmax()) if greedy else int(rng.choice(len(choices), p=probs / probs.sum()))
            log_prob = logp[0, i] if log_prob is None else log_prob + logp[0, i]
            arch.append(choices[i])
            picks.append(i)
            token = int(self._offsets[step]) + i
            if step % 3 == 1:
                size = size - choices[i] + 1
            elif step % 3 == 2 and choices[i]:
                size //= 2
        return arch, log_prob, picks


def reinforce_loss(log_prob, reward, baseline):
    """−(R − b)·log π(a): its gradient step raises the probability of architectures that beat
    the baseline and lowers that of the others."""
    return -(reward - baseline) * log_prob


def random_architecture(space, rng):
    """A uniformly drawn choice at each step among the valid ones (random search's sampler)."""
    arch, size = [], space.input_size
    for step, choices in enumerate(space.choices):
        allowed = np.flatnonzero(space.mask(step, size))
        v = choices[int(rng.choice(allowed))]
        arch.append(v)
        if step % 3 == 1:
            size = size - v + 1
        elif step % 3 == 2 and v:
            size //= 2
    return arch


def train_child(space, arch, data, epochs=3, batch_size=64, learning_rate=1e-2, seed=0):
    """Validation accuracy of `arch` after `epochs` of Adam on data = ((x, y), (x_val, y_val))."""
    import neurona as nr
    from ..optim import Adam

    (x, y), (xv, yv) = data
    nr.manual_seed(seed)
    model = space.build(arch)
    model.compile(optimizer=Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=seed)
    return float((model.predict(xv).argmax(1) == yv).mean())


def search(space, data, budget=20, child_epochs=3, controller_lr=0.05, baseline_decay=0.8, seed=0, log=None,
           random=False):
    """REINFORCE (or, with `random=True`, random search) over `budget` child networks; returns
    the list of (architecture, reward) in order. Each architecture is trained once (cached)."""
    from ..optim import Adam

    rng = np.random.default_rng(seed)
    controller = Controller(space, seed=seed)
    opt = Adam(controller.weights, learning_rate=controller_lr)
    baseline, history, cache = None, [], {}
    for i in range(budget):
        if random:
            arch, log_prob = random_architecture(space, rng), None
        else:
            arch, log_prob, _ = controller.sample(rng)
        key = tuple(arch)
        if key not in cache:
            cache[key] = train_child(space, arch, data, child_epochs, seed=seed)
        reward = cache[key]
        baseline = reward if baseline is None else baseline_decay * baseline + (1 - baseline_decay) * reward
        if log_prob is not None:
            loss = reinforce_loss(log_prob, reward, baseline)
            opt.zero_grad()
            loss.backward()
            opt.step()
        history.append((arch, reward))
        if log:
            log(f"{'random' if random else 'controller'} {i + 1}/{budget}: {space.describe(arch)}  val acc {reward:.3f}")
    return history
