"""neurona.data: batching, shuffling, prefetch threads and determinism; utils.to_categorical."""
import threading
import time

import numpy as np
import pytest
import torch

import neurona as nr
from neurona.data import ArrayDataset, DataLoader, Dataset, TensorDataset
from neurona.utils import to_categorical


def _collect(loader):
    return [tuple(a.copy() for a in batch) for batch in loader]


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (9, 3, False), (5, 8, False), (5, 8, True)])
def test_batches_cover_dataset_in_order(n, bs, drop):
    x, y = np.arange(n * 2).reshape(n, 2), np.arange(n)
    batches = _collect(DataLoader((x, y), batch_size=bs, drop_last=drop))
    assert len(batches) == len(DataLoader((x, y), batch_size=bs, drop_last=drop))
    sizes = [len(b[1]) for b in batches]
    expected = [bs] * (n // bs) + ([] if drop or n % bs == 0 else [n % bs])
    assert sizes == expected
    ys = np.concatenate([b[1] for b in batches]) if batches else np.array([])
    np.testing.assert_array_equal(ys, np.arange(sum(expected)))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, x[yb])


def test_shuffle_is_a_permutation_new_each_epoch_and_seeded():
    x = np.arange(100)
    loader = DataLoader((x,), batch_size=16, shuffle=True, seed=3)
    e1 = np.concatenate([b[0] for b in loader])
    e2 = np.concatenate([b[0] for b in loader])
    assert sorted(e1.tolist()) == list(range(100)) and sorted(e2.tolist()) == list(range(100))
    assert not np.array_equal(e1, np.arange(100)) and not np.array_equal(e1, e2)
    again = DataLoader((x,), batch_size=16, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in again]), e1)


def test_manual_seed_makes_unseeded_shuffles_reproducible():
    x = np.arange(50)
    nr.manual_seed(7)
    a = np.concatenate([b[0] for b in DataLoader((x,), batch_size=10, shuffle=True)])
    nr.manual_seed(7)
    b = np.concatenate([b[0] for b in DataLoader((x,), batch_size=10, shuffle=True)])
    np.testing.assert_array_equal(a, b)


def _noise(batch, rng):
    x, y = batch
    time.sleep(rng.uniform(0, 0.003))  # random delays shuffle the finishing order of workers
    return x + rng.normal(size=x.shape), y


@pytest.mark.parametrize("workers,prefetch", [(1, 0), (3, 2), (4, 0), (0, 4)])
def test_workers_give_the_same_batches_as_the_synchronous_path(workers, prefetch):
    x, y = np.random.rand(200, 5), np.arange(200)
    kw = dict(batch_size=7, shuffle=True, seed=11, transform=_noise)
    ref = DataLoader((x, y), num_workers=0, prefetch=0, **kw)
    par = DataLoader((x, y), num_workers=workers, prefetch=prefetch, **kw)
    for _ in range(2):  # two epochs: the epoch counter advances the same way
        for (a, ay), (b, by) in zip(_collect(ref), _collect(par), strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ay, by)


def test_prefetch_prepares_batches_while_the_consumer_works():
    loaded = []

    class Slow(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            time.sleep(0.02)
            loaded.append(i)
            return np.float32(i), np.int64(i)

    loader = DataLoader(Slow(), batch_size=1, prefetch=3)
    it = iter(loader)
    next(it)
    time.sleep(0.2)  # the "training step": the background thread keeps loading meanwhile
    assert len(loaded) >= 4
    assert [int(b[1][0]) for b in it] == [1, 2, 3, 4, 5]


def test_overlap_hides_loading_time():
    class Slow(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            time.sleep(0.02)
            return (np.float32(i),)

    def run(prefetch):
        t = time.perf_counter()
        for _ in DataLoader(Slow(), batch_size=1, prefetch=prefetch):
            time.sleep(0.02)  # compute
        return time.perf_counter() - t

    serial, overlapped = run(0), run(2)
    assert overlapped < 0.8 * serial, (serial, overlapped)


def test_errors_in_workers_reach_the_consumer_and_threads_stop():
    def boom(batch, rng):
        raise RuntimeError("bad sample")

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="bad sample"):
        list(DataLoader((np.arange(10),), batch_size=2, transform=boom, num_workers=2))
    it = iter(DataLoader((np.arange(100),), batch_size=2, num_workers=2))
    next(it)
    it.close()  # an abandoned epoch shuts its pool down
    time.sleep(0.05)
    assert threading.active_count() <= before


def test_dataset_validation_and_tensor_inputs():
    with pytest.raises(ValueError, match="same first dimension"):
        ArrayDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader((np.zeros(3),), batch_size=0)
    with pytest.raises(TypeError, match="Dataset"):
        DataLoader(np.zeros(3))
    ds = TensorDataset(nr.arange(6), nr.zeros(6))
    assert [b[0].tolist() for b in DataLoader(ds, batch_size=4)] == [[0, 1, 2, 3], [4, 5]]


def test_generic_dataset_batches_stack_samples():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i])

    (b,) = next(iter(DataLoader(Squares(), batch_size=5)))
    assert b.tolist() == [[0, 0], [1, 1], [2, 4], [3, 9], [4, 16]]


def test_to_categorical_matches_torch_one_hot():
    y = np.array([3, 0, 2, 2, 1])
    ref = torch.nn.functional.one_hot(torch.tensor(y), 5).numpy()
    out = to_categorical(y, 5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(to_categorical(y[:, None]), ref[:, :4])
    assert to_categorical(np.array([[1, 0], [0, 1]])).shape == (2, 2, 2)
    with pytest.raises(ValueError, match="must lie in"):
        to_categorical([0, 5], num_classes=3)
