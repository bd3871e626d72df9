"""Meta-learning, "learning to learn" (course topic 11): few-shot episodes over disjoint class
splits, MAML (second-order or first-order) and Prototypical Networks, Omniglot-like glyphs
rendered from the Noto fonts, MAML's sinusoid regression.

May import: numpy, neurona, neurona.nn, neurona.optim, neurona.models, neurona.datasets,
Pillow and fontTools (glyphs, lazily), matplotlib (pictures, lazily).
"""
from .episodes import Episode, EpisodeSampler, split_classes
from .maml import MAML, cross_entropy_loss, mse
from .baseline import FineTuneBaseline, fit_linear_head
from .nets import FunctionalConvNet, FunctionalMLP
from .protonet import ProtoNet, mean_ci95, prototypes, prototypical_loss, squared_distances
from .sinusoid import SinusoidTasks, plot_sinusoid_fit

__all__ = ["Episode", "EpisodeSampler", "FineTuneBaseline", "FunctionalConvNet", "FunctionalMLP", "MAML", "ProtoNet",
           "SinusoidTasks", "cross_entropy_loss", "fit_linear_head", "mean_ci95", "mse", "plot_sinusoid_fit",
           "prototypes", "prototypical_loss", "split_classes", "squared_distances"]
