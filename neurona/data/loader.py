"""`DataLoader`: batches, shuffling and a background-thread prefetch buffer.

Batches are prepared by worker threads (NumPy releases the GIL in its copies and most
transforms) while the training step runs, so the compute does not wait for data (course topic 9).
Every batch's randomness comes from its own generator, seeded from (seed, epoch, batch index), so
the batches are the same whatever the number of workers.
May import: numpy, neurona.backend (the generator seeded by `nr.manual_seed`), neurona.data.
"""
from __future__ import annotations

import collections
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import backend as B
from .dataset import ArrayDataset, Dataset


class DataLoader:
    """Iterate over a dataset in batches (tuples of NumPy arrays).

    dataset: a `Dataset`, or a tuple of aligned arrays. shuffle: a new order each epoch, drawn
    from `seed` (or, when None, from the generator seeded by `nr.manual_seed`). transform:
    `transform(batch, rng) -> batch` applied to each batch tuple, with `rng` a
    `numpy.random.Generator` private to that batch (augmentation stays reproducible).
    num_workers: threads preparing batches (0 = one background thread when prefetch > 0, or
    none at all). prefetch: batches prepared ahead of the consumer (0 = load on demand).

    >>> import numpy as np
    >>> loader = DataLoader((np.arange(10), np.arange(10) * 2), batch_size=4)
    >>> [xb.tolist() for xb, yb in loader]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> len(DataLoader((np.arange(10),), batch_size=4, drop_last=True))
    2
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, drop_last=False, seed=None,
                 transform=None, num_workers=0, prefetch=2):
        if isinstance(dataset, (tuple, list)):
            dataset = ArrayDataset(*dataset)
        if not isinstance(dataset, Dataset):
            raise TypeError(f"DataLoader: dataset must be a Dataset or a tuple of arrays, got {type(dataset).__name__}")
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if num_workers < 0 or prefetch < 0:
            raise ValueError(f"DataLoader: num_workers ({num_workers}) and prefetch ({prefetch}) must be >= 0")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last, self.transform = shuffle, drop_last, transform
        self.num_workers, self.prefetch = int(num_workers), int(prefetch)
        # Without an explicit seed, draw one from the framework generator once, so nr.manual_seed
        # makes the whole sequence of epochs reproducible.
        self.seed = int(B.generator(np).integers(2**63)) if seed is None else int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self, epoch):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def _load(self, epoch, index, indices):
        batch = self.dataset.get_batch(indices)
        if self.transform is not None:
            batch = self.transform(batch, np.random.default_rng([self.seed, epoch, index, 1]))
        return batch

    def _load_in_worker(self, *job):
        # k workers beside the training thread: each worker's kernels run on one thread, so they
        # add k threads, not k × cores (the BLAS limit is process-wide and stays the user's)
        with B.thread_limit(1):
            return self._load(*job)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        order = self._order(epoch)
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        jobs = ((epoch, i, order[s:s + self.batch_size]) for i, s in enumerate(starts))
        if self.num_workers == 0 and self.prefetch == 0:
            for job in jobs:
                yield self._load(*job)
            return
        yield from self._threaded(jobs)

    def _threaded(self, jobs):
        # Futures are consumed in submission order, so workers change the speed, not the batches.
        window = self.prefetch + self.num_workers
        pending = collections.deque()
        pool = ThreadPoolExecutor(max(1, self.num_workers), thread_name_prefix="neurona-data")
        try:
            for job in jobs:
                pending.append(pool.submit(self._load_in_worker, *job))
                if len(pending) > window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True)
