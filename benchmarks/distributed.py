"""W10: the W1 MLP (784-512-512-10, ReLU, softmax cross-entropy, SGD momentum 0.9) on
Fashion-MNIST, trained on Ray by each strategy with 1, 2 and 4 workers, against single-process
neurona on the same samples.

Every run sees the same fixed number of training samples (`--samples`, one epoch) with a global
batch of 128 (each worker's batch is 128 / workers), then the test accuracy on the 10,000 test
images is measured. Printed per run, one JSON line: samples/s (wall clock of `fit`'s epoch, actor
start-up excluded), the overhead against single-process neurona (its samples/s divided by the
run's), test accuracy, the staleness histogram (async strategies) and the machine's load.

    PYTHONPATH=. python -m benchmarks.distributed --samples 12800 --workers 1 2 4

Ray actors run with num_cpus=0, and Ray then gives each worker process one BLAS thread
(OMP_NUM_THREADS=1); the single-process baseline is measured both at one BLAS thread (the fair
comparison with one worker: "overhead_vs_single" uses it) and at all cores, before and after the
distributed runs (the machine's load drifts). On a 2-core machine four workers and a parameter
server share two cores, so the table shows overhead, not speed-up.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def w1_model(seed=0):
    import neurona as nr
    from neurona.layers import Dense
    from neurona.models import Sequential
    from neurona.optim import SGD

    nr.manual_seed(seed)
    model = Sequential([Dense(512, input_dim=784, activation="relu"), Dense(512, activation="relu"),
                        Dense(10, activation="softmax")])
    model.compile(SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def strategies(workers):
    import neurona.distributed as nd

    return {"averaging(period=1)": lambda: nd.ParameterAveraging(workers, period=1),
            "allreduce": lambda: nd.AllReduce(workers),
            "async": lambda: nd.AsyncSGD(workers),
            "downpour(shards=2,n_fetch=n_push=4)": lambda: nd.Downpour(workers, shards=2, n_fetch=4, n_push=4),
            "downpour(shards=2,n_fetch=n_push=4,staleness=scale)": lambda: nd.Downpour(
                workers, shards=2, n_fetch=4, n_push=4, staleness="scale")}


class _Clock:
    """Times the epoch only (from the first batch's start to the epoch's end)."""

    def __init__(self):
        from neurona.callbacks import Callback

        clock = self

        class Hook(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                clock.seconds = time.perf_counter() - clock.start
        self.callback = Hook()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--only", nargs="*", default=None, help="strategies to run (their full names)")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process baselines")
    args = parser.parse_args(argv)

    import neurona.distributed as nd
    from neurona.datasets import fashion_mnist

    (x, y), (xt, yt) = fashion_mnist()
    x = x[:args.samples].reshape(-1, 784).astype(np.float32) / 255
    y = y[:args.samples].astype(np.int64)
    xt = xt.reshape(-1, 784).astype(np.float32) / 255
    yt = yt.astype(np.int64)

    def single(threads, when):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads, user_api="blas"):
            model, clock = w1_model(), _Clock()
            model.fit(x, y, epochs=1, batch_size=128, shuffle=True, seed=0, verbose=0, callbacks=[clock.callback])
        rate = args.samples / clock.seconds
        print(json.dumps({"workload": "W10", "strategy": f"single-process ({when})", "workers": 1,
                          "blas_threads": threads, "samples_per_s": round(rate),
                          "test_accuracy": round(model.evaluate(xt, yt, return_dict=True)["accuracy"], 4),
                          "load": [round(v, 2) for v in os.getloadavg()]}), flush=True)
        return rate

    base = None
    if not args.no_single:
        single(os.cpu_count(), "before")
        base = single(1, "before")
    nd.init(num_cpus=os.cpu_count())
    try:
        for workers in args.workers:
            for name, make in strategies(workers).items():
                if args.only and name not in args.only:
                    continue
                model, strategy, clock = w1_model(), make(), _Clock()
                nd.fit(model, x, y, strategy=strategy, epochs=1, batch_size=128 // workers, verbose=0,
                       callbacks=[clock.callback])
                rate = len(y) // workers * workers / clock.seconds
                acc = model.evaluate(xt, yt, return_dict=True)["accuracy"]
                print(json.dumps({"workload": "W10", "strategy": name, "workers": workers,
                                  "samples_per_s": round(rate), "overhead_vs_single": base and round(base / rate, 2),
                                  "test_accuracy": round(acc, 4),
                                  "staleness_histogram": dict(sorted(strategy.metrics.histogram.items())),
                                  "events": strategy.metrics.events,
                                  "load": [round(v, 2) for v in os.getloadavg()]}), flush=True)
    finally:
        nd.shutdown()
    if not args.no_single:
        single(1, "after")
        single(os.cpu_count(), "after")


if __name__ == "__main__":
    main()
