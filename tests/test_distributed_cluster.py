"""neurona.distributed on a multi-node Ray cluster (`ray.cluster_utils.Cluster`: a head and two
worker nodes, each a separate raylet on this machine). Slow: three raylets on a 2-core machine.
"""
import numpy as np
import pytest

ray = pytest.importorskip("ray")

import neurona.distributed as nd  # noqa: E402
from neurona.callbacks import Callback  # noqa: E402
from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.optim import SGD  # noqa: E402

MB = 2**20


class _RemoveNode(Callback):
    def __init__(self, cluster, node, at):
        super().__init__()
        self.cluster, self.node, self.at, self.done = cluster, node, at, False

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.at and not self.done:
            self.done = True
            self.cluster.remove_node(self.node)


@pytest.mark.slow
def test_multi_node_training_survives_removing_the_slow_node():
    from ray.cluster_utils import Cluster

    nd.shutdown()  # the Cluster brings its own Ray
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 80 * MB})
    try:
        cluster.add_node(num_cpus=1, resources={"fast": 2}, object_store_memory=80 * MB)
        slow = cluster.add_node(num_cpus=1, resources={"slow": 1}, object_store_memory=80 * MB)
        cluster.wait_for_nodes()
        assert nd.init(address=cluster.address)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(384, 8)).astype(np.float32)
        y = (x @ rng.normal(size=(8, 3))).argmax(1)
        model = Sequential([Dense(16, input_dim=8, activation="relu"), Dense(3, activation="softmax")])
        model.compile(SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        strategy = nd.AsyncSGD(3, restart_timeout=10, max_restarts=1, worker_options=lambda i: {
            "resources": {"slow": 1} if i == 2 else {"fast": 1}})

        class Slow(Callback):  # the node marked slow also runs slowly: its worker sleeps each step
            def on_train_begin(self, logs=None):
                nodes = {i: ray.get(a.ping.remote())["node"] for i, a in enumerate(strategy.actors)}
                assert nodes[0] == nodes[1] != nodes[2]  # placed by resources on two nodes
                strategy.actors[2].simulate_delay.remote(0.05)

        with pytest.warns(UserWarning, match="worker 2 is gone for good"):
            history = nd.fit(model, x, y, strategy=strategy, epochs=3, batch_size=16, verbose=0,
                             callbacks=[Slow(), _RemoveNode(cluster, slow, 6)])
        loss = history.history["loss"]
        assert len(loss) == 3 and loss[-1] < 0.6 * loss[0], loss
        assert strategy.metrics.events
    finally:
        nd.shutdown()
        cluster.shutdown()
