"""What a distributed run measures: samples per second (overall and per worker), the staleness
histogram of the pushes, and the latency of fetches and pushes; turned into the numbers of the
progress line (`samples_per_s`, `staleness`, `fetch_ms`, `push_ms`) and written to TensorBoard.
May import: numpy, time, tensorboardX (lazily).
"""
from __future__ import annotations

import time

import numpy as np


class RunMetrics:
    """Accumulates the workers' stats within an epoch and over the run."""

    def __init__(self, log_dir=None):
        self.histogram: dict[int, int] = {}  # staleness -> pushes, over the whole run
        self.events: list[str] = []  # faults seen and survived, in order
        self.log_dir, self._writer = log_dir, None
        self.start_epoch()

    def start_epoch(self):
        self.t0 = time.perf_counter()
        self.samples, self.loss_sum, self.logs_sum = 0, 0.0, {}
        self.per_worker: dict[int, int] = {}
        self.compute: dict[int, float] = {}
        self.fetch, self.push, self.epoch_staleness = [], [], []

    def add(self, stats):
        """One worker call's stats (see `Worker`)."""
        n, w = stats["samples"], stats["worker"]
        self.samples += n
        self.loss_sum += stats["loss_sum"]
        for k, v in stats["logs_sum"].items():
            self.logs_sum[k] = self.logs_sum.get(k, 0.0) + v
        self.per_worker[w] = self.per_worker.get(w, 0) + n
        self.compute[w] = self.compute.get(w, 0.0) + stats["compute_s"]
        self.fetch += stats.get("fetch_s", [])
        self.push += stats.get("push_s", [])
        for reply in stats.get("replies", []):
            if not reply["duplicate"]:
                s = reply["staleness"]
                self.histogram[s] = self.histogram.get(s, 0) + 1
                self.epoch_staleness.append(s)

    def logs(self):
        """The progress line's numbers so far in this epoch."""
        seen = max(self.samples, 1)
        out = {"loss": self.loss_sum / seen, **{k: v / seen for k, v in self.logs_sum.items()}}
        out["samples_per_s"] = self.samples / max(time.perf_counter() - self.t0, 1e-9)
        if self.epoch_staleness:
            out["staleness"] = float(np.mean(self.epoch_staleness))
        if self.fetch:
            out["fetch_ms"] = 1000 * float(np.mean(self.fetch))
        if self.push:
            out["push_ms"] = 1000 * float(np.mean(self.push))
        return out

    def worker_rates(self):
        """{worker: samples/s} over this epoch's wall time."""
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        return {w: n / elapsed for w, n in sorted(self.per_worker.items())}

    def write(self, epoch, logs):
        """TensorBoard: each of `logs` as `epoch_<name>` and the epoch's staleness histogram, under
        `log_dir` (when given)."""
        if self.log_dir is None:
            return
        if self._writer is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise ImportError("log_dir= needs tensorboardX: pip install tensorboardX (or, in a neurona checkout, "
                                  "pip install -e '.[tb]')") from None
            self._writer = SummaryWriter(self.log_dir)
        for k, v in logs.items():
            self._writer.add_scalar(f"epoch_{k}", v, epoch)
        if self.epoch_staleness:
            self._writer.add_histogram("staleness", np.asarray(self.epoch_staleness), epoch)
        self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
