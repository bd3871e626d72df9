"""Computer vision (course topic 5): `neurona.vision.models`, the model zoo of LeNet-5, AlexNet,
VGG16/19 and a small VGG. Augmentation lives in `neurona.data.transforms`.
May import: neurona.nn, neurona.models.
"""
from . import models
from .models import alexnet, layer_plan, lenet5, plan_summary, small_vgg, vgg16, vgg19

__all__ = ["alexnet", "layer_plan", "lenet5", "models", "plan_summary", "small_vgg", "vgg16", "vgg19"]
