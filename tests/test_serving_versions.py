"""Version management: a new version loads (warmed up) before the old one unloads, a broken version
is reported while the old keeps serving, labels only point at loaded versions, rollback by moving
a label (admin endpoint and config file), and the weighted canary split."""
import json
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

import neurona as nr  # noqa: E402
from neurona.layers import Dense  # noqa: E402
from neurona.models import Sequential  # noqa: E402
from neurona.serving import Client, ModelConfig, ModelServer  # noqa: E402
from neurona.serving.repository import Repository  # noqa: E402


def _save(path, seed):
    nr.manual_seed(seed)
    m = Sequential([Dense(3, input_dim=4)])
    m.save(path)
    return m


X = np.arange(8, dtype=np.float32).reshape(2, 4) / 8


def _states(client, model):
    return {s["version"]: (s["state"], s["status"]["error_message"]) for s in client.status(model)}


def test_new_version_replaces_old_and_broken_version_keeps_old_serving(tmp_path):
    m1 = _save(tmp_path / "m" / "1", 1)
    with ModelServer(model_base_path=tmp_path, rest_port=0, grpc_port=None, poll_seconds=0) as srv, \
            Client(srv.url) as c:
        np.testing.assert_allclose(c.predict("m", X), m1.predict(X), rtol=1e-6)
        m2 = _save(tmp_path / "m" / "2", 2)
        c.reload()  # what the poller does every poll_seconds
        assert _states(c, "m") == {"2": ("AVAILABLE", ""), "1": ("END", "")}
        np.testing.assert_allclose(c.predict("m", X), m2.predict(X), rtol=1e-6)
        # a broken version 3: reported, and version 2 keeps answering
        (tmp_path / "m" / "3").mkdir()
        (tmp_path / "m" / "3" / "config.json").write_text("{ broken")
        c.reload()
        states = _states(c, "m")
        assert states["3"][0] == "END" and "not valid JSON" in states["3"][1]
        assert states["2"] == ("AVAILABLE", "")
        np.testing.assert_allclose(c.predict("m", X), m2.predict(X), rtol=1e-6)
        assert 'neurona_serving_load_failures_total{model="m",version="3"} 1.0' in c.metrics()
        # repaired in place: loaded on the next poll, and 2 is unloaded after it
        m3 = _save(tmp_path / "m" / "3", 3)
        c.reload()
        assert _states(c, "m")["3"] == ("AVAILABLE", "") and _states(c, "m")["2"][0] == "END"
        np.testing.assert_allclose(c.predict("m", X), m3.predict(X), rtol=1e-6)


def test_version_policies(tmp_path):
    for v in (1, 2, 3):
        _save(tmp_path / "m" / str(v), v)
    for policy, loaded in [(("latest", 2), [2, 3]), (("specific", [1, 3]), [1, 3]), (("all", None), [1, 2, 3])]:
        repo = Repository([ModelConfig("m", str(tmp_path / "m"), version_policy=policy)], poll_seconds=0)
        repo.start()
        try:
            assert sorted(repo.get("m").versions) == loaded
        finally:
            repo.close()


def test_labels_rollback_and_canary_split(tmp_path):
    m1, m2 = _save(tmp_path / "m" / "1", 1), _save(tmp_path / "m" / "2", 2)
    cfg = ModelConfig("m", str(tmp_path / "m"), version_policy=("all", None), version_labels={"stable": 1, "canary": 2})
    with ModelServer([cfg], rest_port=0, grpc_port=None, poll_seconds=0) as srv, Client(srv.url) as c:
        p1, p2 = m1.predict(X), m2.predict(X)
        np.testing.assert_allclose(c.predict("m", X), p1, rtol=1e-6)  # no version named: stable
        np.testing.assert_allclose(c.predict("m", X, label="canary"), p2, rtol=1e-6)
        # all traffic to the canary, then a 30 % split (counted on the routing itself: 2000 draws)
        c.set_canary_weight("m", 1.0)
        np.testing.assert_allclose(c.predict("m", X), p2, rtol=1e-6)
        c.set_canary_weight("m", 0.3)
        served = srv.repository.get("m")
        served._rng.seed(0)
        share = np.mean([served.resolve().version == 2 for _ in range(2000)])
        assert 0.26 < share < 0.34
        # promote, then roll back by moving `stable`
        c.set_canary_weight("m", 0.0)
        c.set_label("m", "stable", 2)
        np.testing.assert_allclose(c.predict("m", X), p2, rtol=1e-6)
        state = c.set_label("m", "stable", 1)
        assert state["labels"] == {"stable": 1, "canary": 2}
        np.testing.assert_allclose(c.predict("m", X), p1, rtol=1e-6)
        r = httpx.put(f"{srv.url}/v1/admin/models/m/labels/stable", json={"version": 5})
        assert r.status_code == 400 and "5 is not loaded" in r.json()["error"]
        assert httpx.delete(f"{srv.url}/v1/admin/models/m/labels/canary").json()["labels"] == {"stable": 1}


def test_rollback_through_the_config_file(tmp_path):
    m1, m2 = _save(tmp_path / "m" / "1", 1), _save(tmp_path / "m" / "2", 2)
    path = tmp_path / "models.yaml"

    def write(stable, canary_weight=0.0):
        path.write_text(f"model_config_list:\n  - name: m\n    base_path: m\n"
                        f"    model_version_policy: {{all: {{}}}}\n"
                        f"    version_labels: {{stable: {stable}, canary: 2}}\n    canary_weight: {canary_weight}\n")
    write(2)
    with ModelServer(model_config_file=path, rest_port=0, grpc_port=None, poll_seconds=0.1) as srv, \
            Client(srv.url) as c:
        np.testing.assert_allclose(c.predict("m", X), m2.predict(X), rtol=1e-6)
        time.sleep(0.05)
        write(1)  # the rollback: the poller sees the changed file and moves the label
        deadline = time.monotonic() + 20
        while c.models()[0]["labels"].get("stable") != 1:
            assert time.monotonic() < deadline, c.models()
            time.sleep(0.1)
        np.testing.assert_allclose(c.predict("m", X), m1.predict(X), rtol=1e-6)
        write(7)  # a label naming a version that is not loaded is reported, and not moved
        deadline = time.monotonic() + 20
        while "stable" not in c.models()[0]["label_errors"]:
            assert time.monotonic() < deadline, c.models()
            time.sleep(0.1)
        state = c.models()[0]
        assert state["labels"]["stable"] == 1 and "version 7 is not loaded" in state["label_errors"]["stable"]


def test_model_config_json_and_errors(tmp_path):
    from neurona.serving import load_model_config

    p = tmp_path / "c.json"
    p.write_text(json.dumps({"model_config_list": [{"name": "a", "base_path": "a", "batching": {"max_batch_size": 4},
                                                    "model_version_policy": {"specific": {"versions": [2]}}}]}))
    (cfg,) = load_model_config(p)
    assert cfg.base_path == str(tmp_path / "a") and cfg.batching.max_batch_size == 4
    assert cfg.version_policy == ("specific", [2]) and cfg.wanted_versions([1, 2, 3]) == [2]
    p.write_text(json.dumps({"model_config_list": [{"name": "a", "base_path": "a", "batching": {"max_batch_size": 0}}]}))
    with pytest.raises(ValueError, match="max_batch_size must be an integer >= 1"):
        load_model_config(p)
    p.write_text(json.dumps({"model_config_list": [{"name": "a", "base_path": "a", "colour": 1}]}))
    with pytest.raises(ValueError, match="unknown settings"):
        load_model_config(p)
