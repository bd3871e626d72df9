"""`DataAdapter`: the one way `fit`, `evaluate` and `predict` walk their data, whatever it is —
arrays (batched and shuffled here), a `neurona.data.Dataset` (wrapped in a DataLoader), a
`DataLoader` or any other iterable of batches (iterated afresh each pass), or a generator or
other iterator (consumed as it goes, so it needs a step count). Each batch comes out as a tuple
of host arrays: `(x, y)` for the default steps (each side an array or a list of arrays), or the
loader's own tuple, untouched, for a model whose `train_step` is its own.

`unpack_x_y_sample_weight(data)` is Keras' helper for the step side.
May import: numpy, neurona (Tensor), neurona.data.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..data import DataLoader, Dataset
from ..tensor import Tensor


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def host(a):
    """A NumPy array; float64 data becomes float32, the layers' dtype."""
    a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
    return a.astype(np.float32) if a.dtype == np.float64 else a


def is_scalar_tree(obj):
    """A Python number, or a (nested) list/tuple holding only numbers: data written as Python
    lists, `[[0.1, 0.2], [0.3, 0.4]]`, which is one array (Keras' lists of scalars), not a list
    of several inputs."""
    if isinstance(obj, (bool, int, float, np.number)):
        return True
    return isinstance(obj, (list, tuple)) and len(obj) > 0 and all(is_scalar_tree(o) for o in obj)


def array_list(model_name, what, name, value, count=None):
    """The arrays of `value` (x or y of the array API) as a list of host arrays: one array, a
    list/tuple of arrays (several inputs or outputs), or Python lists of numbers, converted as
    Keras does. `count`: how many arrays the model takes, when known (a list of `count` nested
    lists is then `count` arrays)."""
    if value is None:
        return []
    if is_scalar_tree(value) and not (count and count > 1 and len(value) == count):
        parts = [value]
    else:
        parts = as_list(value)
    out = []
    for i, part in enumerate(parts):
        try:
            arr = host(part)
        except ValueError as e:  # ragged nested lists
            where = name if len(parts) == 1 else f"{name}[{i}]"
            raise ValueError(f"{model_name}.{what}: {where} is a nested list whose rows have different lengths; "
                             f"give an array of one shape (np.asarray could not make one: {e})") from None
        if arr.ndim == 0:
            where = name if len(parts) == 1 else f"{name}[{i}]"
            raise ValueError(f"{model_name}.{what}: {where} is a single {type(part).__name__} ({part!r}); it must "
                             f"have a batch axis (one entry per sample)")
        if arr.dtype == object:
            where = name if len(parts) == 1 else f"{name}[{i}]"
            raise ValueError(f"{model_name}.{what}: {where} could not become a numeric array (got dtype object "
                             f"from {type(part).__name__}); give arrays or lists of numbers")
        out.append(arr)
    return out


def is_array(a):
    """An array or Tensor with a batch axis (what a loader's batch fields must be)."""
    return isinstance(a, Tensor) or (hasattr(a, "shape") and hasattr(a, "__len__") and len(a.shape) >= 1)


def is_batch_source(x):
    """Data given batch by batch: a DataLoader, a Dataset, or any other iterable that is not an
    array, a Tensor, or a list/tuple of them (those are the array API)."""
    if isinstance(x, (DataLoader, Dataset)):
        return True
    if x is None or isinstance(x, (Tensor, list, tuple, dict, str, bytes)) or hasattr(x, "shape"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def is_iterator(x):
    """A generator or other iterator: iterating it again continues it instead of starting over."""
    return hasattr(x, "__next__")


def describe(batch):
    """A batch's structure for error messages, e.g. `tuple of 3 (ndarray (16, 4), ndarray (16,), int)`."""
    if isinstance(batch, (tuple, list)):
        return f"{type(batch).__name__} of {len(batch)} ({', '.join(describe(b) for b in batch)})"
    shape = getattr(batch, "shape", None)
    return f"{type(batch).__name__} {tuple(shape)}" if shape is not None else type(batch).__name__


def close(iterator):
    stop = getattr(iterator, "close", None)
    if stop is not None:
        stop()


def _closing(batches, iterator):
    """`batches`, closing `iterator` when done or closed early (a DataLoader pass stops its threads)."""
    try:
        yield from batches
    finally:
        close(iterator)


def unpack_x_y_sample_weight(data):
    """Split one batch as a step receives it: `(x,)`, `(x, y)` or `(x, y, sample_weight)` (or a
    bare x) into the three, None where absent — Keras' `unpack_x_y_sample_weight`.

    >>> unpack_x_y_sample_weight(("x", "y"))
    ('x', 'y', None)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"a step's data must be (x,), (x, y) or (x, y, sample_weight); got a tuple of {len(data)}")


def map_structure(fn, obj):
    """`fn` applied to every array leaf of nested tuples/lists (None and scalars pass through)."""
    if isinstance(obj, (tuple, list)):
        return type(obj)(map_structure(fn, o) for o in obj)
    if obj is None or isinstance(obj, (int, float, str)):
        return obj
    return fn(obj)


class DataAdapter:
    """The data of one `fit`, `evaluate` or `predict` call (see the module docstring).

    what: 'fit', 'evaluate' or 'predict' (error messages and defaults); n_io: (inputs, outputs)
    the batches must carry, None where unchecked; raw: hand batches over untouched (a custom
    `train_step` reads them itself). Array data: `xs` and `ys` lists of arrays (ys empty for
    predict or for a custom step trained on x alone)."""

    def __init__(self, model_name, what, x, y=None, *, batch_size=None, shuffle=None, seed=None,
                 transform=None, num_workers=0, steps=None, n_io=(None, 1), raw=False, sample_weight=None):
        self.model_name, self.what, self.n_io, self.raw = model_name, what, n_io, raw
        self.steps = None if steps is None else int(steps)
        self.from_arrays = not is_batch_source(x)
        training = what == "fit"
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size < 1):
            raise ValueError(f"{model_name}.{what}: batch_size must be a positive integer (samples per batch), "
                             f"got {batch_size!r}")
        if self.from_arrays:
            self.xs = array_list(model_name, what, "x", x, n_io[0])
            self.ys = array_list(model_name, what, "y", y, n_io[1])
            n = len(self.xs[0]) if self.xs else 0
            if any(len(a) != n for a in self.xs + self.ys):
                raise ValueError(f"{model_name}.{what}: x and y must have the same number of samples; got "
                                 f"{[len(a) for a in self.xs]} and {[len(a) for a in self.ys]}")
            if n == 0:
                raise ValueError(f"{model_name}.{what}: x has no samples")
            self.weighted = sample_weight is not None
            if self.weighted:
                sw = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
                if len(sw) != n:
                    raise ValueError(f"{model_name}.{what}: sample_weight has {len(sw)} values for {n} samples")
                if not np.isfinite(sw).all() or (sw < 0).any():
                    raise ValueError(f"{model_name}.{what}: sample weights must be finite and non-negative")
                self.ys = self.ys + [sw]
            options = dict(batch_size=32 if batch_size is None else batch_size)
            if training:
                options.update(shuffle=True if shuffle is None else shuffle, seed=seed, transform=transform,
                               num_workers=num_workers)
            else:
                options.update(prefetch=0, seed=0)
            self.source = DataLoader(tuple(self.xs + self.ys), **options)
            self.samples = n
        else:
            given = dict(batch_size=batch_size)
            defaults = dict(batch_size=32, prefetch=0, seed=0)
            if training:
                given.update(shuffle=shuffle, seed=seed, transform=transform, num_workers=num_workers or None)
                defaults = dict(batch_size=32, shuffle=True)
            if y is not None:
                raise ValueError(f"{model_name}.{what}: y must be None when x is a {type(x).__name__}: "
                                 f"its batches carry the targets, as (x, y)")
            if isinstance(x, Dataset):
                self.source = DataLoader(x, **{**defaults, **{k: v for k, v in given.items() if v is not None}})
            else:
                for name, value in given.items():
                    if value is not None:
                        raise ValueError(f"{model_name}.{what}: {name}={value!r} cannot apply when x is a "
                                         f"{type(x).__name__}, which makes its own batches (give {name} to "
                                         f"the DataLoader)")
                self.source = x
            self.samples = len(self.source.dataset) if isinstance(self.source, DataLoader) else None
            self.weighted = False
            if sample_weight is not None:
                raise ValueError(f"{model_name}.{what}: sample_weight and class_weight need array data; a "
                                 f"{type(x).__name__} can carry the weights in its batches, as (x, y, weights)")
        self.one_shot = is_iterator(self.source)
        self.made_loader = self.source is not x

    # -- batches -----------------------------------------------------------------------------------
    def require_steps(self, what, steps_name):
        if self.steps is None and self.one_shot:
            raise ValueError(f"{self.model_name}.fit: {what} is a {type(self.source).__name__}, an iterator "
                             f"consumed as it goes: give {steps_name} so that fit knows where an epoch ends "
                             f"(an infinite generator never ends by itself)")

    def known_steps(self):
        known = [s for s in (self.steps, len(self.source) if hasattr(self.source, "__len__") else None)
                 if s is not None]
        return min(known) if known else None

    def batches(self, first=(), iterator=None):
        """At most `steps` batches (all when None), after `first`: a fresh pass of a DataLoader or
        other iterable (closing the result closes the pass, so a DataLoader's threads stop), or the
        continuation of an iterator such as a generator, consumed as it goes."""
        if self.one_shot:
            return itertools.islice(itertools.chain(first, self.source), self.steps)
        iterator = iter(self.source) if iterator is None else iterator
        return _closing(itertools.islice(itertools.chain(first, iterator), self.steps), iterator)

    def peek(self):
        """The first batch and a pass that still yields it (to build a model before training)."""
        it = self.source if self.one_shot else iter(self.source)
        first = next(it, None)
        if first is None:
            close(it)
            raise ValueError(f"{self.model_name}.{self.what}: x gave no batches")
        return first, self.batches(first=[first], iterator=it)

    # -- one batch ---------------------------------------------------------------------------------
    def split(self, batch, index):
        """One batch as the step's data: `(xs, ys)` lists of host arrays for the default steps,
        the inputs alone for predict, or the batch itself (host arrays) when `raw`."""
        if self.raw:
            return map_structure(host, tuple(batch) if isinstance(batch, (tuple, list)) else (batch,))
        if self.from_arrays:
            n_in = len(self.xs)
            if self.what == "predict":
                return [host(a) for a in batch[:n_in]], []
            return [host(a) for a in batch[:n_in]], [host(a) for a in batch[n_in:len(batch) - self.weighted]]
        if self.what == "predict":
            return [host(a) for a in self._inputs_of(batch, index)], []
        xs, ys = self._targets_of(batch, index)
        return [host(a) for a in xs], [host(a) for a in ys]

    def weights_of(self, batch):
        """The batch's sample weights (array data given sample_weight/class_weight), else None."""
        return host(batch[-1]) if self.from_arrays and self.weighted else None

    def _targets_of(self, batch, index):
        """(inputs, targets) of one batch of a loader: `(x, y)` with x and y each an array (or
        Tensor) or a list/tuple of them, or the flat `(*inputs, *targets)` that a DataLoader over
        aligned arrays gives."""
        n_in, n_out = self.n_io
        xs = ys = None
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            xs, ys = as_list(batch[0]), as_list(batch[1])
        elif n_in is not None and isinstance(batch, (tuple, list)) and len(batch) == n_in + n_out:
            xs, ys = list(batch[:n_in]), list(batch[n_in:])
        if (xs is None or (n_in is not None and len(xs) != n_in) or len(ys) != n_out
                or not all(is_array(a) for a in xs + ys)):
            if n_in is None:
                expected = "(x, y) with y an array and x an array (or a tuple of arrays for several inputs)"
            elif n_in == 1 and n_out == 1:
                expected = "(x, y) with x and y arrays"
            else:
                expected = (f"(inputs, targets) with {n_in} input and {n_out} target arrays, each side an "
                            f"array or a tuple of arrays, or the flat tuple of {n_in + n_out} arrays")
            raise ValueError(f"{self.model_name}.{self.what}: batch {index} of x is {describe(batch)}; "
                             f"expected {expected}")
        lengths = [len(a) for a in xs + ys]
        if any(m != lengths[0] for m in lengths):
            raise ValueError(f"{self.model_name}.{self.what}: batch {index} of x has inputs and targets of "
                             f"{lengths} samples; they must agree")
        return xs, ys

    def _inputs_of(self, batch, index):
        """The inputs of one batch for `predict`: x, (x,), (x, y) or ((x1, x2), y), flat tuples
        (x1, x2, ...) for a functional model with several inputs; targets are ignored, as in Keras."""
        n_in, _ = self.n_io
        xs = None
        if is_array(batch):
            xs = [batch]
        elif isinstance(batch, (tuple, list)) and batch:
            xs = list(batch[0]) if isinstance(batch[0], (tuple, list)) else list(batch[:n_in or 1])
        if xs is None or (n_in is not None and len(xs) != n_in) or not all(is_array(a) for a in xs):
            raise ValueError(f"{self.model_name}.{self.what}: batch {index} of x is {describe(batch)}; expected "
                             f"{n_in or 'one or more'} input array(s): x, (x,), (x, y) or ((x1, x2), y)")
        return xs
