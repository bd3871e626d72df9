"""Feeding data to training: `Dataset`s of arrays and the `DataLoader` that batches, shuffles and
prefetches them on background threads (course topic 9: never let the compute wait for data).
Real datasets live in `neurona.datasets`.
May import: numpy (data are host arrays), neurona.backend (the seeded generator), neurona.tensor.
"""
from .dataset import ArrayDataset, Dataset, TensorDataset
from .loader import DataLoader

__all__ = ["ArrayDataset", "DataLoader", "Dataset", "TensorDataset"]
