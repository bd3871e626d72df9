"""Serve two versions of a Fashion-MNIST classifier, split traffic with a canary, promote it, roll
back, and query both protocols (TF Serving REST and KServe V2 gRPC) -- course topic 10.

    python examples/serve_fashion.py                 # trains two small MLPs (~1 min), serves them
    python examples/serve_fashion.py --keep-serving  # then keeps serving until Ctrl-C
                                                     # (try: curl localhost:8501/v1/models/fashion)

Version 1 trains on 6,000 images for 1 epoch, version 2 on 30,000 for 2 epochs: the canary should
be the better model. Writes the model repository under --out (default out/serving/) in TF
Serving's layout (fashion/1/, fashion/2/) with a models.yaml, plus the sampled request log, and
prints where.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import neurona as nr
from neurona import datasets
from neurona.layers import Dense, Flatten
from neurona.models import Sequential
from neurona.serving import Client, ModelServer


def train(x, y, n, epochs, seed):
    nr.manual_seed(seed)
    model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:n], y[:n], epochs=epochs, batch_size=128, verbose=0)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/serving")
    parser.add_argument("--rest-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--keep-serving", action="store_true")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist()
    x_train, x_test = x_train.astype(np.float32) / 255.0, x_test.astype(np.float32) / 255.0
    y_train = y_train.astype(np.int64)
    out = Path(args.out)
    for version, (n, epochs) in {1: (6000, 1), 2: (30000, 2)}.items():
        path = out / "fashion" / str(version)
        if not (path / "config.json").exists():
            t0 = time.perf_counter()
            train(x_train, y_train, n, epochs, seed=version).save(path)
            print(f"trained version {version} on {n} images x {epochs} epoch(s) in {time.perf_counter() - t0:.0f} s "
                  f"-> {path}")
    config = out / "models.yaml"
    config.write_text("model_config_list:\n"
                      "  - name: fashion\n    base_path: fashion\n"
                      "    model_version_policy: {all: {}}\n"
                      "    version_labels: {stable: 1, canary: 2}\n"
                      "    canary_weight: 0.2\n"
                      "    batching: {max_batch_size: 64, batch_timeout_micros: 2000}\n")
    log = out / "requests.jsonl"
    server = ModelServer(model_config_file=config, rest_port=args.rest_port, grpc_port=args.grpc_port,
                         request_log=str(log), log_sample_rate=0.1)
    with server, Client(server.url, grpc_address=f"127.0.0.1:{server.grpc_port}") as client:
        print(f"serving at {server.url} (REST) and 127.0.0.1:{server.grpc_port} (gRPC)")
        print("versions:", [(s["version"], s["state"]) for s in client.status("fashion")])
        xs, ys = x_test[:1000], y_test[:1000]

        def accuracy(**route):
            preds = np.concatenate([client.predict("fashion", xs[i:i + 50], **route) for i in range(0, 1000, 50)])
            return float((preds.argmax(1) == ys).mean())
        print(f"accuracy on 1,000 test images: stable (v1) {accuracy(label='stable'):.3f}, "
              f"canary (v2) {accuracy(label='canary'):.3f}")
        answered = [client.infer("fashion", {"input": xs[i:i + 1]}, protocol="grpc")[1] for i in range(200)]
        print(f"200 gRPC requests naming no version: {answered.count(2)} went to the canary (weight 0.2)")
        client.set_label("fashion", "stable", 2)
        client.set_canary_weight("fashion", 0.0)
        print("promoted: stable ->", client.models()[0]["labels"]["stable"],
              "| answered by version", client.infer("fashion", {"input": xs[:1]})[1])
        client.set_label("fashion", "stable", 1)
        print("rolled back: stable ->", client.models()[0]["labels"]["stable"],
              "| answered by version", client.infer("fashion", {"input": xs[:1]})[1])
        print(f"request log (10 % sample): {log}")
        if args.keep_serving:
            print("serving until Ctrl-C")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
