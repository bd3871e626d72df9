"""The Ray Serve deployment of a neurona model (slow: starts a local Ray cluster)."""
import socket

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_ray_serve_deployment_predicts_like_the_model(tmp_path):
    pytest.importorskip("ray.serve")
    import httpx
    import ray
    from ray import serve

    from neurona.layers import Dense
    from neurona.models import Sequential
    from neurona.serving.ray_serve import neurona_deployment

    model = Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    model.save(tmp_path / "m" / "1")
    x = np.random.default_rng(0).random((5, 3), dtype=np.float32)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(neurona_deployment(tmp_path / "m" / "1", max_batch_size=8), route_prefix="/m")
        url = f"http://127.0.0.1:{port}/m"
        r = httpx.post(url, json={"instances": x.tolist()}, timeout=60)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], model.predict(x), rtol=1e-5, atol=1e-6)
        bad = httpx.post(url, json={"instances": [[1.0, 2.0]]}, timeout=60)
        assert bad.status_code == 400 and "shape [1, 2]" in bad.json()["error"]
    finally:
        serve.shutdown()
        ray.shutdown()
