"""Saving models: a folder with `config.json` (architecture and compile settings, rebuilt through
the layer registry of `neurona.nn.layer`), `model.safetensors` (the weights) and, once the model
has trained, `optimizer.safetensors` (the optimiser's state, to resume training). No pickle
anywhere, so loading a file never runs code; every write goes to a temporary file renamed into
place. `export_onnx` writes an ONNX graph for Dense/activation/dropout/batch-norm models.
May import: numpy, json, safetensors (a dependency), neurona.nn, neurona.optim, onnx (lazily).
"""
from .format import load_model, load_weights, save_model, save_weights
from .onnx_export import export_onnx

__all__ = ["export_onnx", "load_model", "load_weights", "save_model", "save_weights"]
