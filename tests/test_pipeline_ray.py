"""The pipeline's Ray backend: the same small pipeline run locally and with its components as Ray
tasks makes the same artifacts (content hashes), the same decision and the same pushed model; the
driver alone writes the metadata store; a local Ray started for the run is stopped after it."""
import json

import pytest

pytest.importorskip("optuna")
ray = pytest.importorskip("ray")

from neurona.pipeline.components import ConfigError  # noqa: E402
from neurona.pipeline.metadata import MetadataStore  # noqa: E402
from neurona.pipeline.runner import load_config, run_pipeline  # noqa: E402

from test_pipeline import _frame, _write_span  # noqa: E402


def _config(base, runner=None):
    comps = {
        "ExampleGen": {"input": "data", "pattern": "span-*.csv", "window": 2, "eval_fraction": 0.3},
        "StatisticsGen": {"slice_by": ["group"]},
        "SchemaGen": {"path": "schema.yaml", "label": "y",
                      "drift": {"numeric": {"metric": "js", "threshold": 0.2, "severity": "error"}}},
        "ExampleValidator": {},
        "Transform": {"features": ["x1", "x2"], "label": "y"},
        "Trainer": {"hyperparameters": {"epochs": 4, "hidden": [8], "learning_rate": 0.02}},
        "Evaluator": {"slices": ["group"], "bootstrap": 100,
                      "thresholds": {"accuracy": {"lower_bound": 0.7, "slices": True}}},
        "Pusher": {"base_path": "serving", "model_name": "toy"},
    }
    raw = {"pipeline": "toy", "root": "root", "components": comps}
    if runner:
        raw["runner"] = runner
    return load_config(raw, base_dir=base)


def _hashes(base, result):
    store = MetadataStore(base / "root" / "metadata.sqlite")
    try:
        out = {}
        for rec in result.executions:
            for name, aid in rec["outputs"].items():
                out[(rec["component"], name)] = store.artifact(aid)["sha256"]
        return out
    finally:
        store.close()


def _model_content(folder):
    """A pushed model folder's content, up to the safetensors header's byte order and the layer
    names (a process that built models before numbers its layers on: dense_7 for dense): the
    other files, the weights in order and the predictions on a fixed batch."""
    import numpy as np
    from neurona.models import load_model

    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in ("model.safetensors", "config.json")}
    model = load_model(folder)
    weights = [w.numpy().tobytes() for w in model.weights]
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    return files, weights, model.predict(x).tobytes()


def test_ray_backend_makes_the_same_artifacts_and_decision(tmp_path):
    for where in ("local", "ray"):
        _write_span(tmp_path / where / "data", "span-1.csv", _frame(seed=1))
        _write_span(tmp_path / where / "data", "span-2.csv", _frame(seed=2))
    assert not ray.is_initialized()
    local = run_pipeline(_config(tmp_path / "local"), log=lambda *_: None)
    remote = run_pipeline(_config(tmp_path / "ray", {"backend": "ray", "num_cpus": 2, "object_store_mb": 80}),
                          log=lambda *_: None)
    assert not ray.is_initialized()  # the run started a local Ray, and stopped it
    assert (local.status, local.reasons) == (remote.status, remote.reasons) == ("blessed", [])
    assert [r["backend"] for r in local.executions] == ["local"] * 8
    where = {r["component"]: r["backend"] for r in remote.executions}
    assert where.pop("SchemaGen") == where.pop("Pusher") == "local"  # they use the store: on the driver
    assert set(where.values()) == {"ray"}
    # every artifact is byte-identical but the model files: safetensors writes its metadata map in
    # a per-process hash order, and layer names count the layers the process built before (and
    # config.json holds those names and the weights file's hash); weights and predictions are identical
    h_local, h_ray = _hashes(tmp_path / "local", local), _hashes(tmp_path / "ray", remote)
    for key in (("Trainer", "model"), ("Pusher", "pushed")):
        h_local.pop(key), h_ray.pop(key)
    assert h_local == h_ray and len(h_local) == 6
    assert _model_content(tmp_path / "local" / "serving" / "toy" / "1") == \
        _model_content(tmp_path / "ray" / "serving" / "toy" / "1")
    # a rerun on Ray reuses the cache like a local one
    again = run_pipeline(_config(tmp_path / "ray", {"backend": "ray", "num_cpus": 2, "object_store_mb": 80}),
                         log=lambda *_: None)
    assert {r["component"] for r in again.executions if r["backend"] == "ray"} == set()


def test_runner_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="runner: unknown field 'adress'"):
        _config(tmp_path, {"backend": "ray", "adress": "x:1"})
    with pytest.raises(ConfigError, match="runner.backend: 'local' or 'ray', got 'dask'"):
        _config(tmp_path, {"backend": "dask"})


def test_cli_ray_flags_select_the_ray_backend(tmp_path, monkeypatch):
    from neurona.pipeline import runner
    from neurona.pipeline.__main__ import main
    from neurona.pipeline.ray_backend import RayBackend, backend_from

    assert backend_from(None) is None and backend_from({"backend": "local"}) is None
    b = backend_from({"num_cpus": 3}, address="10.0.0.1:6379")
    assert isinstance(b, RayBackend) and (b.address, b.num_cpus, b.object_store_mb) == ("10.0.0.1:6379", 3, 100)
    seen = []
    monkeypatch.setattr(runner, "run_pipeline", lambda config: seen.append(config.runner) or
                        runner.RunResult(1, "blessed", 0, [], None, []))
    path = tmp_path / "p.yaml"
    path.write_text("pipeline: toy\ncomponents:\n  ExampleGen: {input: data}\n")
    assert main(["run", str(path)]) == 0
    assert main(["run", str(path), "--ray"]) == 0
    assert main(["run", str(path), "--address", "127.0.0.1:6379"]) == 0
    assert seen == [{}, {"backend": "ray"}, {"backend": "ray", "address": "127.0.0.1:6379"}]
