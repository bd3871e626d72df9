"""Computer vision (course topic 5): `neurona.vision.models`, the model zoo of LeNet-5, AlexNet,
VGG16/19, a small VGG and the ResNets (18, 34 and the CIFAR ones); `neurona.vision.visualize`,
pictures of a CNN's filters and activation maps. Augmentation lives in
`neurona.data.transforms`.
May import: neurona.nn, neurona.models.
"""
from . import models, visualize
from .models import (alexnet, basic_block, layer_plan, lenet5, plan_summary, resnet18, resnet34, resnet_cifar,
                     small_vgg, vgg16, vgg19)

__all__ = ["alexnet", "basic_block", "layer_plan", "lenet5", "models", "plan_summary", "resnet18", "resnet34",
           "resnet_cifar", "small_vgg", "vgg16", "vgg19", "visualize"]
