"""The GAN losses of Goodfellow et al. (2014), written on the discriminator's logits l (D = σ(l)).

The minimax game is min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))].
With log σ(l) = −softplus(−l) and log(1 − σ(l)) = −softplus(l):
- the discriminator ascends V, i.e. minimises the binary cross-entropy with targets 1 (real)
  and 0 (fake); one-sided label smoothing (Salimans et al. 2016) makes the real target 1 − ε;
- the generator descends V (the 'minimax' loss E log(1 − D(G(z))) = −E softplus(l)), which
  saturates early in training when D rejects fakes confidently, so Goodfellow et al. recommend
  maximising log D(G(z)) instead (the 'non_saturating' loss E softplus(−l)).
May import: neurona.
"""
from __future__ import annotations

from .. import ops
from ..creation import full_like
from ..ops import ShapeError

GENERATOR_LOSSES = ("non_saturating", "minimax")


def _logits(name, t):
    if t.ndim == 2 and t.shape[1] == 1:
        return t.reshape(-1)
    if t.ndim != 1:
        raise ShapeError(f"{name}: the discriminator must give one logit per sample, shape (N,) or (N, 1); "
                         f"got {t.shape}")
    return t


def value_function(real_logits, fake_logits):
    """V(D, G) = mean log D(x) + mean log(1 − D(G(z))) (the minimax game's value; ≤ 0, and
    −log 4 ≈ −1.386 at the equilibrium D = 1/2).

    >>> import neurona as nr
    >>> round(value_function(nr.zeros(4), nr.zeros(4)).item(), 4)
    -1.3863
    """
    real, fake = _logits("value_function", real_logits), _logits("value_function", fake_logits)
    return -ops.mean(ops.softplus(-real)) - ops.mean(ops.softplus(fake))


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """−V(D, G) as the discriminator minimises it: BCE(real, 1 − label_smoothing) + BCE(fake, 0).

    >>> import neurona as nr
    >>> round(discriminator_loss(nr.zeros(4), nr.zeros(4)).item(), 4)   # log 4
    1.3863
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"discriminator_loss: label_smoothing must lie in [0, 1), got {label_smoothing}")
    real, fake = _logits("discriminator_loss", real_logits), _logits("discriminator_loss", fake_logits)
    target = full_like(real, 1.0 - label_smoothing)
    return (ops.binary_cross_entropy_with_logits(real, target)
            + ops.mean(ops.softplus(fake)))


def generator_loss(fake_logits, kind="non_saturating"):
    """The generator's loss on D's logits for its samples: 'non_saturating' −mean log D(G(z)),
    or 'minimax' mean log(1 − D(G(z))) (Algorithm 1 as written).

    >>> import neurona as nr
    >>> round(generator_loss(nr.zeros(2)).item(), 4), round(generator_loss(nr.zeros(2), "minimax").item(), 4)
    (0.6931, -0.6931)
    """
    fake = _logits("generator_loss", fake_logits)
    if kind == "non_saturating":
        return ops.mean(ops.softplus(-fake))
    if kind == "minimax":
        return -ops.mean(ops.softplus(fake))
    raise ValueError(f"generator_loss: kind must be one of {GENERATOR_LOSSES}, got {kind!r}")
