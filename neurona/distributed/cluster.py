"""Starting, reaching and stopping Ray, and calling actors without ever hanging.

`init()` starts a small local Ray (a few CPUs, a 200 MB object store, no dashboard, worker logs
kept off the console) or joins a cluster by `address=` / `RAY_ADDRESS`, after checking within a
few seconds that the address answers. `call(ref, timeout, what)` is `ray.get` with a deadline and
an error that names the call; `wait_alive(actor, ...)` waits for Ray to restart a killed actor.
May import: ray (lazily, inside functions), the standard library.
"""
from __future__ import annotations

import os
import socket
import time

DEFAULT_OBJECT_STORE = 200 * 2**20
DEFAULT_PORT = 6379  # `ray start --head` listens here unless given --port


class DistributedError(RuntimeError):
    """A distributed job cannot go on: a remote call timed out, an actor is gone for good, the
    cluster cannot be reached."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError("neurona.distributed needs Ray: pip install 'ray>=2.60,<2.61' (or, in a neurona checkout, "
                          "pip install -e '.[distributed]')") from None
    return ray


def check_reachable(address: str, timeout: float = 5.0):
    """Raise ConnectionError naming `address` ('host:port' or 'ray://host:port') when nothing
    accepts a TCP connection there within `timeout` seconds.

    >>> check_reachable("127.0.0.1:1", timeout=1)
    Traceback (most recent call last):
    ...
    ConnectionError: neurona.distributed: cannot reach the Ray cluster at 127.0.0.1:1 ...
    """
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host:
        host, port = target, str(DEFAULT_PORT)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as e:
        raise ConnectionError(f"neurona.distributed: cannot reach the Ray cluster at {address} within "
                              f"{timeout:g} s ({e}); start one with `ray start --head --port={port or DEFAULT_PORT}` "
                              f"on that machine, or leave address unset for a local Ray") from None


def init(address=None, num_cpus=None, object_store_memory=DEFAULT_OBJECT_STORE, log_to_driver=False,
         connect_timeout=5.0, **ray_kwargs) -> bool:
    """Start (or join) Ray unless it is already running; returns True when this call started it
    (the caller then owns it and calls `shutdown()`).

    address: None for a local Ray on this machine (or the cluster in `RAY_ADDRESS`), or a running
    cluster's 'host:port' (`ray start --head` prints it). num_cpus: CPUs a local Ray may schedule
    (default: all of this machine's). The rest goes to `ray.init`.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "auto":
        check_reachable(address, connect_timeout)
    if address:
        ray.init(address=address, log_to_driver=log_to_driver, **ray_kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), object_store_memory=object_store_memory,
                 include_dashboard=False, log_to_driver=log_to_driver, **ray_kwargs)
    return True


def shutdown():
    """Stop this process's connection to Ray (and a local Ray that `init` started)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


def call(ref, timeout: float, what: str):
    """`ray.get(ref)` that gives up after `timeout` seconds with a DistributedError naming `what`
    (errors raised by the remote code come through as they are)."""
    ray = _ray()
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise DistributedError(f"{what}: no answer within {timeout:g} s (raise call_timeout= if the "
                               f"work is that slow, or check the cluster)") from None


def actor_failed(error) -> bool:
    """Whether `error` means the actor process died (so Ray may be restarting it)."""
    ray = _ray()
    return isinstance(error, (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError))


def wait_alive(actor, timeout: float, what: str):
    """After an actor died: wait until Ray has restarted it and it answers `ping()`; returns its
    ping, or raises DistributedError when it is gone for good (restarts exhausted) or still down
    after `timeout` seconds."""
    ray = _ray()
    deadline = time.monotonic() + timeout
    last, died = None, 0
    while time.monotonic() < deadline:
        try:
            return ray.get(actor.ping.remote(), timeout=max(0.1, deadline - time.monotonic()))
        except ray.exceptions.ActorDiedError as e:
            # Ray's word for "dead for good" (a restarting actor answers ActorUnavailableError or
            # queues the call); asked a few times in case the news of a restart is still on its way.
            last, died = e, died + 1
            if died >= 3:
                break
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
            last = e
        time.sleep(0.3)
    first_line = str(last).splitlines()[0] if last else ""
    raise DistributedError(f"{what} is gone (its restarts are used up, or it did not come back within "
                           f"{timeout:g} s): {type(last).__name__}: {first_line}")
