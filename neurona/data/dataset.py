"""`Dataset`: anything with a length that gives samples by index; `ArrayDataset` holds aligned
arrays and gives whole batches with one fancy-indexing call per array.
May import: numpy, neurona.tensor.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class Dataset:
    """Base class: `__len__` and `__getitem__(i)` returning one sample (a tuple of arrays).

    `get_batch(indices)` stacks samples; subclasses that can index many samples at once override
    it, because a Python loop per sample is what makes data loading the bottleneck.
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__}.__len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}.__getitem__")

    def get_batch(self, indices):
        """The samples at `indices`, stacked field by field into a tuple of arrays."""
        samples = [self[int(i)] for i in indices]
        if not isinstance(samples[0], tuple):
            return (np.stack(samples),)
        return tuple(np.stack(field) for field in zip(*samples))


class ArrayDataset(Dataset):
    """Aligned arrays (e.g. inputs and labels) indexed together along their first axis.

    >>> import numpy as np
    >>> ds = ArrayDataset(np.arange(10).reshape(5, 2), np.arange(5))
    >>> x1, y1 = ds[1]
    >>> len(ds), x1.tolist(), int(y1)
    (5, [2, 3], 1)
    >>> [a.shape for a in ds.get_batch([0, 4])]
    [(2, 2), (2,)]
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset: give at least one array")
        self.arrays = tuple(np.asarray(a.numpy() if isinstance(a, Tensor) else a) for a in arrays)
        n = len(self.arrays[0])
        lengths = [len(a) for a in self.arrays]
        if any(m != n for m in lengths):
            raise ValueError(f"ArrayDataset: arrays must have the same first dimension; got lengths {lengths}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices):
        return tuple(a[indices] for a in self.arrays)


TensorDataset = ArrayDataset  # PyTorch's name: it accepts Tensors and keeps their arrays
