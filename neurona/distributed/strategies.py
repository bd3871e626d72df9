"""The ways of training on many workers (course topic 9), each a small class:

- `ParameterAveraging(workers, period=k)`: every worker starts from the parameter server's
  weights, takes k steps on its own data, and the server averages the workers' weights. k = 1 is
  synchronous data-parallel SGD. A straggler is waited for at most `straggler_timeout` seconds,
  then skipped for that round (`on_straggler="skip"`), dropped for good ("drop") or fatal ("error").
- `AsyncSGD(workers)`: every worker fetches the weights, computes a gradient and pushes it, on
  its own clock; the server applies each push when it arrives, so gradients can be stale.
- `Downpour(workers, shards, n_fetch, n_push)`: async SGD against a sharded parameter server
  (balanced by `sharding.balance`), fetching every n_fetch steps and pushing the gradients summed
  over n_push steps; staleness bounded by dropping or scaling old pushes.
- `AllReduce(workers)`: synchronous, no parameter server: every worker computes its gradient and
  a ring all-reduce (reduce-scatter then all-gather, through Ray object references) gives each
  the mean, which each applies with its own optimiser.

`ModelParallel(stages)` lives in `pipeline.py`. All of them are run by `driver.fit`.
May import: warnings, neurona.distributed (cluster, replica, server, worker,
metrics), ray (lazily).
"""
from __future__ import annotations

import warnings

from .cluster import DistributedError, actor_failed, call, wait_alive


def _ray():
    import ray

    return ray


class Strategy:
    """What every strategy shares: the workers (Ray actors restarted up to `max_restarts` times),
    timeouts, and the bookkeeping of faults. `worker_options`: extra Ray actor options, a dict or a
    function `i -> dict` (e.g. `resources=` to place worker i on a given node).
    `threads_per_worker`: threads for each worker's kernels and BLAS (`nr.set_num_threads` inside
    the worker). By default each worker takes its share of its machine, the CPUs that process may
    use divided by the number of workers (at least 1), so `workers` replicas on one machine do not
    start `workers` × cores threads; on a cluster with one worker per machine, pass the machine's
    core count."""

    uses_server = True  # a parameter server holds the weights
    shards_data = True  # each worker gets its own slice of the data
    n_shards = 1

    def __init__(self, workers, call_timeout=60.0, max_restarts=3, restart_timeout=60.0, worker_options=None,
                 checkpoint_every=50, checkpoint_dir=None, threads_per_worker=None):
        if int(workers) < 1:
            raise ValueError(f"{type(self).__name__}: workers must be >= 1, got {workers}")
        if threads_per_worker is not None and (isinstance(threads_per_worker, bool)
                                               or not isinstance(threads_per_worker, int) or threads_per_worker < 1):
            raise ValueError(f"{type(self).__name__}: threads_per_worker must be a whole number >= 1 or None, "
                             f"got {threads_per_worker!r}")
        self.threads_per_worker = threads_per_worker
        self.workers = int(workers)
        self.call_timeout, self.restart_timeout = float(call_timeout), float(restart_timeout)
        self.max_restarts, self.worker_options = int(max_restarts), worker_options
        self.checkpoint_every, self.checkpoint_dir = int(checkpoint_every), checkpoint_dir
        self.actors, self.shards, self.alive, self.layout = [], [], [], []
        self.pids: dict[int, int] = {}
        self.metrics = None

    def __repr__(self):
        return f"{type(self).__name__}(workers={self.workers})"

    def fit(self, model, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_data=None, shuffle=None, initial_epoch=0, seed=None, **kwargs):
        """`neurona.distributed.fit(model, x, y, strategy=self, ...)` with `Model.fit`'s defaults
        (batch_size 32, shuffled, seed 0): what `model.fit(..., distribute=self)` calls. Other
        `fit` arguments (log_dir, address) pass through."""
        from .driver import fit

        return fit(model, x, y, strategy=self, epochs=epochs, batch_size=32 if batch_size is None else batch_size,
                   verbose=verbose, callbacks=callbacks, validation_data=validation_data,
                   shuffle=True if shuffle is None else shuffle, seed=0 if seed is None else seed,
                   initial_epoch=initial_epoch, **kwargs)

    # -- actors ----------------------------------------------------------------------------------
    def _options(self, i):
        extra = self.worker_options(i) if callable(self.worker_options) else dict(self.worker_options or {})
        return {"num_cpus": 0, "max_restarts": self.max_restarts, "max_task_retries": 0, **extra}

    def _start_servers(self, job, optimizer, staleness=None, max_staleness=None):
        from .server import ParameterServer

        ray = _ray()
        self.layout = job.layout
        remote = ray.remote(ParameterServer)
        self.shards = [remote.options(num_cpus=0, max_restarts=self.max_restarts, max_task_retries=0,
                                      name=None).remote(i, {k: job.weights[k] for k in names}, optimizer,
                                                        job.checkpoint_dir, self.checkpoint_every, staleness,
                                                        max_staleness)
                       for i, names in enumerate(self.layout)]
        self.server_versions = [0] * len(self.shards)
        self.server_incarnations = [None] * len(self.shards)
        for i, shard in enumerate(self.shards):
            self._note_server(i, call(shard.ping.remote(), self.call_timeout, f"starting parameter-server shard {i}"))

    def _note_server(self, i, answer):
        """Follow shard i's version; a new incarnation means Ray restarted it from its checkpoint."""
        if self.server_incarnations[i] not in (None, answer["incarnation"]):
            restored = answer["restored_from"] or 0
            lost = max(0, self.server_versions[i] - restored)
            self._event(f"parameter-server shard {i} restarted from its checkpoint at version {restored}; "
                        f"{lost} updates lost")
            self.server_versions[i] = restored
        self.server_incarnations[i] = answer["incarnation"]
        self.server_versions[i] = max(self.server_versions[i], answer["version"])

    def _start_workers(self, job):
        from .worker import Worker

        ray = _ray()
        remote = ray.remote(Worker)
        self.actors = []
        for i in range(self.workers):
            self.actors.append(remote.options(**self._options(i)).remote(
                i, job.spec, job.weights, job.frozen, job.data_refs[i], job.n_inputs, job.batch_size, job.seed,
                self.shards, self.layout, self.call_timeout, self.restart_timeout,
                threads=self.threads_per_worker, n_workers=self.workers))
        self.alive = list(range(self.workers))
        for i, actor in enumerate(self.actors):
            try:
                self.pids[i] = call(actor.ping.remote(), self.call_timeout, f"starting worker {i}")["pid"]
            except Exception as e:
                cause = getattr(e, "cause", None) or e
                raise DistributedError(f"{type(self).__name__}: worker {i} could not start: {cause}") from None

    def start(self, job):
        """Create the actors for a run (`job` is the driver's description of it)."""
        raise NotImplementedError

    def stop(self):
        """Kill this run's actors."""
        ray = _ray()
        for actor in self.actors + self.shards:
            ray.kill(actor, no_restart=True)
        self.actors, self.shards, self.alive = [], [], []

    # -- faults ------------------------------------------------------------------------------------
    def _event(self, text):
        self.metrics.events.append(text)
        warnings.warn(f"{type(self).__name__}: {text}", stacklevel=4)

    def _recover_worker(self, i, error):
        """After worker i failed with `error`: True when Ray restarted it, False when it is gone (it
        leaves `alive`; training goes on with the others)."""
        if not actor_failed(error):
            raise error
        try:
            pid = wait_alive(self.actors[i], self.restart_timeout, f"worker {i}")["pid"]
        except DistributedError:
            self.alive.remove(i)
            if not self.alive:
                raise DistributedError(f"{type(self).__name__}: every worker is gone (restarts exhausted)") from None
            self._event(f"worker {i} is gone for good (restarts exhausted); continuing with "
                        f"{len(self.alive)} workers")
            return False
        self._event(f"worker {i} died and was restarted by Ray (pid {self.pids.get(i)} -> {pid})")
        self.pids[i] = pid
        return True

    def _call_server(self, i, method, *args):
        """A call on shard i that waits for a restart (from its checkpoint) and retries once."""
        shard = self.shards[i]
        try:
            answer = call(getattr(shard, method).remote(*args), self.call_timeout, f"{method} on shard {i}")
        except Exception as e:  # noqa: BLE001
            if not actor_failed(e):
                raise
            self._note_server(i, wait_alive(shard, self.restart_timeout, f"parameter-server shard {i}"))
            answer = call(getattr(shard, method).remote(*args), self.call_timeout, f"{method} on shard {i}")
        self._note_server(i, answer)
        return answer

    # -- results -----------------------------------------------------------------------------------
    def steps_per_epoch(self, job):
        """Batches each worker takes per epoch."""
        return -(-job.shard_size // job.batch_size)

    def progress_steps(self, job):
        """Steps of the progress bar per epoch: rounds of all workers (synchronous strategies)."""
        return self.steps_per_epoch(job)

    def weights(self):
        """The trained weights {name: array} (from the parameter server)."""
        arrays = {}
        for i in range(len(self.shards)):
            arrays.update(call(self.shards[i].pull.remote(), self.call_timeout, f"pull from shard {i}")[1])
        return arrays

    def frozen_weights(self):
        """Non-trainable weights (batch-norm statistics) of the first live worker."""
        return call(self.actors[self.alive[0]].get_weights.remote(False), self.call_timeout, "worker weights")

    def server_stats(self):
        return [call(s.stats.remote(), self.call_timeout, f"stats of shard {i}") for i, s in enumerate(self.shards)]


class ParameterAveraging(Strategy):
    """Synchronous parameter averaging through a parameter server; `period` local steps between
    averagings (1: synchronous data-parallel SGD, equal to one process taking the global batch).
    A round waits at most `straggler_timeout` seconds for a worker, then applies `on_straggler`;
    the first round of a run, which also pays the workers' start-up (imports, kernels compiled on
    first use), waits up to `call_timeout`."""

    def __init__(self, workers, period=1, straggler_timeout=30.0, on_straggler="skip", **kwargs):
        super().__init__(workers, **kwargs)
        if int(period) < 1:
            raise ValueError(f"ParameterAveraging: period must be >= 1, got {period}")
        if on_straggler not in ("skip", "drop", "error"):
            raise ValueError(f"ParameterAveraging: on_straggler must be 'skip', 'drop' or 'error', "
                             f"got {on_straggler!r}")
        self.period, self.straggler_timeout, self.on_straggler = int(period), float(straggler_timeout), on_straggler

    def __repr__(self):
        return f"ParameterAveraging(workers={self.workers}, period={self.period})"

    def start(self, job):
        self._start_servers(job, optimizer=None)
        self._start_workers(job)
        self.round = 0

    def run_epoch(self, job, epoch, on_batch):
        ray = _ray()
        steps = self.steps_per_epoch(job)
        for first in range(0, steps, self.period):
            k = min(self.period, steps - first)
            pulls = [s.pull.remote() for s in self.shards]
            outs = {i: self.actors[i].local_steps.options(num_returns=len(self.shards) + 1).remote(
                epoch, first, k, *pulls) for i in self.alive}
            stats_refs = {outs[i][-1]: i for i in outs}
            # the first round of a run also pays each worker's one-time start-up (imports, compiling
            # its kernels on first use): it is held to call_timeout, the straggler rule starts after it
            timeout = self.call_timeout if self.round == 0 else self.straggler_timeout
            ready, late = ray.wait(list(stats_refs), num_returns=len(stats_refs), timeout=timeout)
            done, stats = [], []
            for ref in ready:
                i = stats_refs[ref]
                try:
                    stats.append(ray.get(ref))
                    done.append(i)
                except Exception as e:  # noqa: BLE001 - a dead worker misses this round
                    self._recover_worker(i, e)
            for ref in late:
                self._straggler(stats_refs[ref])
            if not done:
                raise DistributedError(f"ParameterAveraging: no worker finished round {self.round} within "
                                       f"{timeout:g} s")
            for j in range(len(self.shards)):
                self._call_server(j, "average", self.round, *[outs[i][j] for i in done])
            self.round += 1
            on_batch(first + k - 1, stats)
            if job.model.stop_training:
                return

    def _straggler(self, i):
        if self.on_straggler == "error":
            raise DistributedError(f"ParameterAveraging: worker {i} did not finish within straggler_timeout="
                                   f"{self.straggler_timeout:g} s (on_straggler='error')")
        if self.on_straggler == "drop":
            _ray().kill(self.actors[i], no_restart=True)
            self.alive.remove(i)
            self._event(f"worker {i} was slower than straggler_timeout={self.straggler_timeout:g} s and is "
                        f"dropped; continuing with {len(self.alive)} workers")
        else:
            self.metrics.events.append(f"round {self.round}: worker {i} skipped (straggler)")


class AsyncSGD(Strategy):
    """Asynchronous SGD: workers fetch, compute and push on their own; the parameter server applies
    each gradient as it comes. staleness: None (apply all), "drop" (ignore pushes more than
    `max_staleness` updates old) or "scale" (multiply each by 1/(1 + staleness))."""

    n_fetch = n_push = 1
    n_shards = 1

    def __init__(self, workers, staleness=None, max_staleness=None, **kwargs):
        super().__init__(workers, **kwargs)
        if staleness not in (None, "drop", "scale"):
            raise ValueError(f"{type(self).__name__}: staleness must be None, 'drop' or 'scale', got {staleness!r}")
        if staleness == "drop" and max_staleness is None:
            raise ValueError(f"{type(self).__name__}: staleness='drop' needs max_staleness=")
        self.staleness, self.max_staleness = staleness, max_staleness

    def __repr__(self):
        return f"AsyncSGD(workers={self.workers}, staleness={self.staleness!r})"

    def start(self, job):
        self._start_servers(job, job.optimizer, self.staleness, self.max_staleness)
        self._start_workers(job)

    def run_epoch(self, job, epoch, on_batch):
        ray = _ray()
        steps = self.steps_per_epoch(job)
        chunks = -(-steps // self.n_push)
        next_chunk, pending, done = {i: 0 for i in self.alive}, {}, 0

        def submit(i):
            c = next_chunk[i]
            if c < chunks:
                first = c * self.n_push
                ref = self.actors[i].async_steps.remote(epoch, first, min(self.n_push, steps - first),
                                                        epoch * chunks + c, self.n_fetch)
                pending[ref] = i

        for i in self.alive:
            submit(i)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.call_timeout)
            if not ready:
                raise DistributedError(f"{type(self).__name__}: no worker finished a step within call_timeout="
                                       f"{self.call_timeout:g} s (workers {sorted(pending.values())} busy)")
            i = pending.pop(ready[0])
            try:
                stats = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001
                if self._recover_worker(i, e):
                    submit(i)  # the same chunk again, under the same push id
                continue
            for reply in stats["replies"]:
                self._note_server(reply["shard"], reply)
            next_chunk[i] += 1
            done += 1
            on_batch(done - 1, [stats])
            if job.model.stop_training:
                ray.wait(list(pending), num_returns=len(pending), timeout=self.call_timeout)
                return
            submit(i)

    def progress_steps(self, job):
        """One step of the progress bar per call of a worker (n_push of its batches)."""
        return len(self.alive or range(self.workers)) * -(-self.steps_per_epoch(job) // self.n_push)


class Downpour(AsyncSGD):
    """Downpour SGD (Dean et al., 2012): async SGD against `shards` parameter-server shards holding
    balanced slices of the model; each worker fetches every `n_fetch` of its steps and pushes the
    gradients summed over `n_push` steps."""

    def __init__(self, workers, shards=2, n_fetch=1, n_push=1, **kwargs):
        super().__init__(workers, **kwargs)
        for name, v in (("shards", shards), ("n_fetch", n_fetch), ("n_push", n_push)):
            if int(v) < 1:
                raise ValueError(f"Downpour: {name} must be >= 1, got {v}")
        self.n_shards, self.n_fetch, self.n_push = int(shards), int(n_fetch), int(n_push)

    def __repr__(self):
        return (f"Downpour(workers={self.workers}, shards={self.n_shards}, n_fetch={self.n_fetch}, "
                f"n_push={self.n_push}, staleness={self.staleness!r})")


class AllReduce(Strategy):
    """Synchronous data parallelism without a parameter server: a ring all-reduce of the gradients
    among the workers (each sends 2(W-1)/W of the gradient, whatever W), then every worker applies
    the mean gradient with its own copy of the optimiser."""

    uses_server = False

    def __repr__(self):
        return f"AllReduce(workers={self.workers})"

    def start(self, job):
        self._start_workers(job)

    def run_epoch(self, job, epoch, on_batch):
        for step in range(self.steps_per_epoch(job)):
            for _attempt in range(self.max_restarts + 1):
                try:
                    stats = self._step(epoch, step)
                    break
                except Exception as e:  # noqa: BLE001 - a worker died inside the ring: redo the step
                    self._recover_ring(e)
            else:
                raise DistributedError(f"AllReduce: step {step} failed {self.max_restarts + 1} times")
            on_batch(step, stats)
            if job.model.stop_training:
                return

    def _step(self, epoch, step):
        workers = [self.actors[i] for i in self.alive]
        n = len(workers)
        stats = call([w.gradients.remote(epoch, step, n) for w in workers], self.call_timeout, "AllReduce: gradients")
        received = []
        for reduce in (True, False):  # reduce-scatter, then all-gather
            for s in range(n - 1):
                for i, w in enumerate(workers):
                    chunk = (i - s) % n if reduce else (i + 1 - s) % n
                    received.append(workers[(i + 1) % n].ring_receive.remote(chunk, w.ring_send.remote(chunk), reduce))
        call(received, self.call_timeout, "AllReduce: the ring")  # every chunk arrived before anyone steps
        call([w.apply_ring.remote(n) for w in workers], self.call_timeout, "AllReduce: applying the mean gradient")
        return stats

    def _recover_ring(self, error):
        """Wait for every failed worker; give the restarted ones the weights of one that lived on."""
        before = dict(self.pids)
        for i in list(self.alive):
            try:
                call(self.actors[i].ping.remote(), self.call_timeout, f"worker {i}")
            except Exception as e:  # noqa: BLE001
                self._recover_worker(i, e)
        survivors = [i for i in self.alive if self.pids[i] == before[i]]
        if not survivors:
            raise DistributedError(f"AllReduce: every worker died in one step ({error})") from None
        source = self.actors[survivors[0]]
        for i in self.alive:
            if self.pids[i] != before[i]:
                call(self.actors[i].set_weights.remote(source.get_weights.remote()), self.call_timeout,
                     f"AllReduce: resync worker {i}")

    def weights(self):
        return call(self.actors[self.alive[0]].get_weights.remote(), self.call_timeout, "AllReduce: weights")
