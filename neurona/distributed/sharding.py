"""Splitting the parameters among parameter-server shards so that no shard is a hot spot.

Downpour keeps one slice of the model on each shard; every push and fetch touches every shard,
so the slowest (largest) shard sets the pace. `balance` gives each tensor to the shard with the
least load so far, largest first (the LPT rule: within 4/3 of the best possible split). The cost
of a tensor is its size by default; give `costs` (e.g. size × update frequency, for an embedding
whose frequent rows are pushed more often) to balance traffic instead of bytes.
May import: the standard library.
"""
from __future__ import annotations


def balance(costs: dict, shards: int) -> list[list[str]]:
    """Names of `costs` grouped into `shards` lists of nearly equal total cost.

    >>> balance({"dense/kernel": 401408, "dense/bias": 512, "dense_1/kernel": 262144,
    ...          "dense_1/bias": 512, "dense_2/kernel": 5120, "dense_2/bias": 10}, 2)
    [['dense/kernel'], ['dense_1/kernel', 'dense_2/kernel', 'dense/bias', 'dense_1/bias', 'dense_2/bias']]
    """
    if int(shards) < 1:
        raise ValueError(f"balance: shards must be >= 1, got {shards}")
    if shards > len(costs):
        raise ValueError(f"balance: {shards} shards for {len(costs)} parameter tensors; a shard holds whole "
                         f"tensors, so use at most {len(costs)} shards")
    groups, loads = [[] for _ in range(shards)], [0] * shards
    for name in sorted(costs, key=lambda n: (-costs[n], n)):
        i = loads.index(min(loads))
        groups[i].append(name)
        loads[i] += costs[name]
    return groups
