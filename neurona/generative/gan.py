"""`GAN`: a generator and a discriminator (two ordinary neurona models) trained by Algorithm 1 of
Goodfellow et al. (2014): k discriminator steps, each on a minibatch of data and a minibatch of
noise, then one generator step on a fresh minibatch of noise.

`GAN` is a `neurona.models.Model` that overrides `train_step(data)`: one step of the algorithm on
one batch of real samples; `fit` is the Keras loop of neurona.models around it (epochs, shuffling,
the progress bar, History, any callback such as `TensorBoard` or `SampleGrid`). Calling the GAN
on noise runs the generator.
May import: numpy, neurona, neurona.nn, neurona.optim, neurona.models.
"""
from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import no_grad
from ..models import Model
from ..nn.metrics import Mean
from ..ops import ShapeError
from ..tensor import Tensor
from .losses import GENERATOR_LOSSES, discriminator_loss, generator_loss


def _shape_of(model):
    """The input shape (batch axis dropped) a model was built or declared for, or None."""
    shape = getattr(model, "_build_shape", None) or getattr(model, "batch_input_shape", None)
    if shape is None and getattr(model, "_graph", False):
        shape = model.inputs[0].shape
    if shape is None and getattr(model, "layers", None):
        shape = getattr(model.layers[0], "batch_input_shape", None)
    return None if shape is None else tuple(shape)[1:]


class GAN(Model):
    """Generator G (noise of `latent_dim` → samples) against discriminator D (samples → one logit).

    k: discriminator steps per generator step (Algorithm 1's k; the paper used k = 1).
    generator_loss: 'non_saturating' (maximise log D(G(z)), the paper's practical choice) or
    'minimax' (minimise log(1 − D(G(z))), Algorithm 1 as written). label_smoothing: one-sided,
    the real target becomes 1 − label_smoothing. noise: 'normal' or 'uniform' (in [−1, 1]).

    >>> import numpy as np
    >>> from neurona.models import Sequential
    >>> from neurona.layers import Dense
    >>> gan = GAN(Sequential([Dense(2, input_dim=3)]), Sequential([Dense(1, input_dim=2)]), latent_dim=3, seed=0)
    >>> gan.compile(d_optimizer="sgd", g_optimizer="sgd")
    >>> sorted(gan.train_step((np.ones((8, 2), dtype="float32"),)))
    ['d_fake', 'd_loss', 'd_real', 'g_loss']
    """

    def __init__(self, generator, discriminator, latent_dim, k=1, generator_loss="non_saturating",
                 label_smoothing=0.0, noise="normal", seed=None, name=None):
        super().__init__(name=name)
        if int(k) < 1:
            raise ValueError(f"{self.name}: k (discriminator steps per generator step) must be >= 1, got {k}")
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(f"{self.name}: generator_loss must be one of {GENERATOR_LOSSES}, got {generator_loss!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"{self.name}: label_smoothing must lie in [0, 1), got {label_smoothing}")
        if noise not in ("normal", "uniform"):
            raise ValueError(f"{self.name}: noise must be 'normal' or 'uniform', got {noise!r}")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.k = int(latent_dim), int(k)
        self.generator_loss, self.label_smoothing, self.noise = generator_loss, float(label_smoothing), noise
        self.rng = np.random.default_rng(seed)
        self.d_optimizer = self.g_optimizer = None
        self._d_steps = 0
        self._sample_shape = None
        self._trackers = {k: Mean(name=k) for k in ("d_loss", "g_loss", "d_real", "d_fake")}

    def call(self, z, training=None):
        return self.generator(z, training=training)

    # -- compile ---------------------------------------------------------------------------------
    def compile(self, d_optimizer="adam", g_optimizer="adam"):
        """One optimiser per network (names or objects; DCGAN's choice is Adam(2e-4, beta_1=0.5))."""
        from .. import optim

        self.d_optimizer, self.g_optimizer = optim.get(d_optimizer), optim.get(g_optimizer)
        if self.d_optimizer is self.g_optimizer:
            raise ValueError(f"{self.name}.compile: give two optimiser objects, one per network")
        # the generator's optimiser is the model's `optimizer` (what TensorBoard reads the rate of);
        # no compiled loss: train_step computes the GAN's own
        super().compile(optimizer=self.g_optimizer, loss=None)
        if self.built:
            self._bind()

    def _bind(self):
        for opt, net in ((self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)):
            params = net.trainable_weights
            if [id(p) for p in opt.params] != [id(p) for p in params]:
                opt.bind(params)

    # -- shapes ---------------------------------------------------------------------------------
    def build_for(self, sample_shape):
        """Build both networks for samples of `sample_shape` (batch axis excluded) and check that
        the generator makes exactly such samples and the discriminator takes them."""
        sample_shape = tuple(int(s) for s in sample_shape)
        with no_grad():
            fake = self.generator(self.noise_batch(2), training=False)
        if tuple(fake.shape[1:]) != sample_shape:
            raise ShapeError(f"{self.name}: the generator {self.generator.name} makes samples of shape "
                             f"{tuple(fake.shape[1:])} from noise of size {self.latent_dim}, but the data "
                             f"samples have shape {sample_shape}")
        declared = _shape_of(self.discriminator)
        if declared is not None and any(a is not None and a != b for a, b in zip(declared, sample_shape)) \
                or declared is not None and len(declared) != len(sample_shape):
            raise ShapeError(f"{self.name}: the generator {self.generator.name} makes samples of shape "
                             f"{sample_shape} but the discriminator {self.discriminator.name} takes inputs "
                             f"of shape {declared}")
        try:
            with no_grad():
                logits = self.discriminator(fake, training=False)
        except (ShapeError, ValueError) as e:
            raise ShapeError(f"{self.name}: the discriminator {self.discriminator.name} cannot take the "
                             f"generator's samples of shape {sample_shape}: {e}") from e
        if not (logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1)):
            raise ShapeError(f"{self.name}: the discriminator {self.discriminator.name} must give one logit per "
                             f"sample, shape (N, 1) or (N,); it gives {tuple(logits.shape)}")
        self._sample_shape = sample_shape
        self.built = True
        if self.d_optimizer is not None:
            self._bind()

    # -- Algorithm 1 -------------------------------------------------------------------------------
    def noise_batch(self, n):
        """A minibatch of n noise vectors z ~ p_g(z) as a Tensor on the model's device."""
        if self.noise == "normal":
            z = self.rng.standard_normal((n, self.latent_dim))
        else:
            z = self.rng.uniform(-1.0, 1.0, (n, self.latent_dim))
        return self._tensor(z.astype(np.float32))

    def discriminator_step(self, real):
        """Ascend V(D, G) by one step of D's optimiser on real samples and as many fakes."""
        n = real.shape[0]
        with no_grad():  # the fakes are data for this step: no gradient into G
            fake = self.generator(self.noise_batch(n), training=True)
        real_logits = self.discriminator(real, training=True)
        fake_logits = self.discriminator(fake, training=True)
        loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
        for penalty in self.discriminator.losses:
            loss = loss + penalty
        self.d_optimizer.zero_grad()
        loss.backward()
        self.d_optimizer.step()
        self.discriminator.apply_constraints()
        with no_grad():
            d_real = float(real_logits.sigmoid().mean().item())
            d_fake = float(fake_logits.sigmoid().mean().item())
        return {"d_loss": float(loss.item()), "d_real": d_real, "d_fake": d_fake}

    def generator_step(self, n):
        """Descend the generator loss by one step of G's optimiser on a fresh minibatch of noise
        (D's weights get gradients too, and its optimiser clears them before its next step)."""
        logits = self.discriminator(self.generator(self.noise_batch(n), training=True), training=True)
        loss = generator_loss(logits, self.generator_loss)
        for penalty in self.generator.losses:
            loss = loss + penalty
        self.g_optimizer.zero_grad()
        loss.backward()
        self.g_optimizer.step()
        self.generator.apply_constraints()
        return {"g_loss": float(loss.item())}

    def train_step(self, data):
        """One step of Algorithm 1 on one batch `data` = (real,) or (real, labels ignored): a
        discriminator step, and after every k-th one a generator step. Returns the logs."""
        if self.d_optimizer is None:
            raise RuntimeError(f"{self.name}: call compile(d_optimizer, g_optimizer) first")
        real = data[0] if isinstance(data, (tuple, list)) else data
        real = real if isinstance(real, Tensor) else self._tensor(np.asarray(real, dtype=np.float32))
        if not self.built or self._sample_shape != tuple(real.shape[1:]):
            self.build_for(real.shape[1:])
        logs = self.discriminator_step(real)
        self._d_steps += 1
        if self._d_steps % self.k == 0:
            logs.update(self.generator_step(real.shape[0]))
        for key, value in logs.items():
            self._trackers[key].update_state(value)
        return self.metric_results()

    # -- the epoch averages that `fit` reports ------------------------------------------------------
    def reset_metrics(self):
        super().reset_metrics()
        for m in self._trackers.values():
            m.reset_state()

    def metric_results(self):
        return {k: m.result() for k, m in self._trackers.items() if m.count}

    def fit(self, x=None, y=None, batch_size=64, epochs=1, **kwargs):
        """`Model.fit` over the real samples `x` (labels `y`, if given, are ignored; a DataLoader
        or Dataset of batches works too): one `train_step` per batch; the progress bar, History
        and callbacks get the epoch's running means of d_loss, g_loss, d_real = mean D(x) and
        d_fake = mean D(G(z))."""
        if self.d_optimizer is None:
            raise RuntimeError(f"{self.name}.fit: call compile(d_optimizer, g_optimizer) first")
        if hasattr(x, "shape") and (not self.built or self._sample_shape != tuple(x.shape[1:])):
            self.build_for(x.shape[1:])
        return super().fit(x, None, batch_size=batch_size, epochs=epochs, **kwargs)

    def generate(self, n=None, z=None, batch_size=256):
        """Samples of the generator in inference mode as a NumPy array: from `n` fresh noise
        vectors, or from the given noise `z` (n, latent_dim)."""
        if z is None:
            z = np.concatenate([self.noise_batch(min(batch_size, n - i)).numpy() for i in range(0, n, batch_size)])
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ShapeError(f"{self.name}.generate: noise must have shape (n, {self.latent_dim}), got {z.shape}")
        out = []
        with no_grad():
            for i in range(0, len(z), batch_size):
                out.append(self.generator(self._tensor(z[i:i + batch_size]), training=False).numpy())
        return np.concatenate(out)
