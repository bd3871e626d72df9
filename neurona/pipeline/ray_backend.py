"""Components as Ray tasks: the runner's opt-in backend (`runner: {backend: ray}` in
pipeline.yaml, or `neurona pipeline run --ray [--address HOST:PORT]`).

The driver keeps everything stateful: it computes cache keys, writes the SQLite metadata store
(the only writer, so no locking is needed), and runs the components that read or write the store
or the server's folder (SchemaGen, which numbers schema versions from the store, and Pusher).
Every other component's `run(ctx, inputs, out)` runs as one Ray task that receives the component,
a store-free context (absolute paths, run id, clock), its input artifacts and its output folder,
and returns its outputs; the driver then hashes and records them exactly as a local run does.
The artifacts live on a file system the driver and the workers share (one machine, or a shared
mount on a cluster).

Without an address, a local Ray is started with a small object store and no dashboard, and
stopped at the end; with an address (or when Ray is already initialised) the driver connects to
that cluster and leaves it running.
May import: pathlib, neurona.distributed (init, lazily), ray (lazily).
"""
from __future__ import annotations

import time
from pathlib import Path

DEFAULT_OBJECT_STORE_MB = 100
RUNNER_FIELDS = {"backend", "address", "num_cpus", "object_store_mb"}


class TaskContext:
    """What a component sees inside a Ray task: `resolve`, `now`, `run_id`, `pipeline`; no store."""

    store = None

    def __init__(self, base_dir, run_id, pipeline, now=None):
        self.base_dir, self.run_id, self.pipeline, self._now = Path(base_dir), run_id, pipeline, now

    def resolve(self, p) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.base_dir / p

    def now(self):
        return time.time() if self._now is None else self._now


def _run_component(comp, ctx, inputs, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return comp.run(ctx, inputs, out)


def ensure_ray(address=None, num_cpus=None, object_store_mb=DEFAULT_OBJECT_STORE_MB) -> bool:
    """Initialise Ray unless it is already: a local one (small object store, no dashboard) or a
    connection to `address` (or RAY_ADDRESS; an address that does not answer is refused within
    seconds, naming it). True when this call initialised it (the caller shuts it down). The
    project's one way of starting Ray: `neurona.distributed.init`."""
    from ..distributed import init

    return init(address=address, num_cpus=num_cpus, object_store_memory=int(object_store_mb) * 2**20,
                configure_logging=False)


class RayBackend:
    """Run components as Ray tasks; a context manager that starts (and then stops) Ray when needed."""

    name = "ray"

    def __init__(self, address=None, num_cpus=None, object_store_mb=DEFAULT_OBJECT_STORE_MB):
        self.address, self.num_cpus, self.object_store_mb = address, num_cpus, object_store_mb
        self._started = False
        self._remote = None

    def __enter__(self):
        import ray

        self._started = ensure_ray(self.address, self.num_cpus, self.object_store_mb)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_run_component)
        return self

    def __exit__(self, *exc):
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def runs_remotely(self, comp) -> bool:
        return not getattr(comp, "driver_only", False)

    def run(self, comp, ctx, inputs, out):
        """comp.run(ctx, inputs, out) as a Ray task; a task's exception is raised as itself."""
        import ray

        task_ctx = TaskContext(Path(ctx.config.base_dir).resolve(), ctx.run_id, ctx.pipeline, ctx._now)
        try:
            return ray.get(self._remote.remote(comp, task_ctx, inputs, str(Path(out).resolve())))
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise


def backend_from(runner: dict | None, ray=False, address=None):
    """The backend a run uses: `--ray`/`--address` win over pipeline.yaml's `runner`; None: local."""
    runner = dict(runner or {})
    if ray or address:
        runner["backend"] = "ray"
    if address:
        runner["address"] = address
    if runner.get("backend", "local") == "local":
        return None
    return RayBackend(runner.get("address"), runner.get("num_cpus"),
                      runner.get("object_store_mb", DEFAULT_OBJECT_STORE_MB))
