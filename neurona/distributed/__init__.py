"""Distributed training on Ray (course topic 9): data parallelism with a parameter server
(`ParameterAveraging`, `AsyncSGD`, `Downpour`) or without one (`AllReduce`), model parallelism
with pipelined micro-batches (`ModelParallel`), and faults survived on the way (killed workers and
parameter-server shards are restarted by Ray; a worker gone for good leaves the others to go on).

    strategy = nd.Downpour(workers=4, shards=2, n_fetch=5, n_push=5, staleness="scale")
    history = nd.fit(model, x, y, strategy=strategy, epochs=3, batch_size=64)

Ray is imported only when a run starts (`pip install -e ".[distributed]"` in a neurona checkout); `import neurona`
never loads this package.
May import: neurona.distributed (its modules), neurona, neurona.nn, neurona.optim, neurona.data,
neurona.callbacks, neurona.models, neurona.datasets, neurona.saving, numpy, safetensors,
tensorboardX (lazily), ray (lazily).
"""
from .cluster import DistributedError, init, shutdown
from .driver import fit
from .pipeline import ModelParallel, Stage
from .server import ParameterServer
from .sharding import balance
from .strategies import AllReduce, AsyncSGD, Downpour, ParameterAveraging, Strategy
from .worker import Worker

__all__ = ["AllReduce", "AsyncSGD", "DistributedError", "Downpour", "ModelParallel", "ParameterAveraging",
           "ParameterServer", "Stage", "Strategy", "Worker", "balance", "fit", "init", "shutdown"]
