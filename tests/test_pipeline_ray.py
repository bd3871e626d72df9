"""The pipeline's runner options: components as Ray tasks (`runner: {backend: ray}` / `--ray`)
give the run that local execution gives, with SchemaGen and Pusher kept in the driver; and
`--every` runs on its period (the second run, with no new data, is fully cached and pushes
nothing)."""
import json

import pytest

from neurona.pipeline import load_config, run_pipeline
from neurona.pipeline.__main__ import main as pipeline_main
from neurona.pipeline.components import ConfigError
from neurona.pipeline.serving_io import read_labels

from test_pipeline import _config, _frame, _write_span  # the toy pipeline of test_pipeline.py

# the same xdist worker as the distributed tests: one Ray per process
pytestmark = pytest.mark.xdist_group("ray")


def _spans(folder):
    _write_span(folder / "data", "span-1.csv", _frame(seed=1))
    _write_span(folder / "data", "span-2.csv", _frame(seed=2))


def test_components_as_ray_tasks_give_the_local_run(tmp_path):
    pytest.importorskip("ray")
    results, logs = {}, {}
    for backend in ("local", "ray"):
        folder = tmp_path / backend
        _spans(folder)
        config = _config(folder)
        config.runner["backend"] = backend
        lines = []
        results[backend] = run_pipeline(config, log=lines.append)
        logs[backend] = lines
        assert results[backend].status == "blessed", results[backend].reasons
    remote = {line.split("]")[0][1:] for line in logs["ray"] if line.endswith("as a Ray task")}
    assert remote == {"ExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer", "Evaluator"}
    assert not any("as a Ray task" in line for line in logs["local"])
    evaluations = []
    for backend in ("local", "ray"):
        path = next((tmp_path / backend / "root" / "artifacts" / "Evaluator").glob("*/evaluation.json"))
        evaluations.append(json.loads(path.read_text()))
    # same data, same seeds: the same overall accuracy to float tolerance (BLAS threads may differ)
    a, b = (e["overall"]["metrics"]["accuracy"]["value"] for e in evaluations)
    assert a == pytest.approx(b, abs=1e-6)
    for backend in ("local", "ray"):
        assert read_labels(tmp_path / backend / "serving", "toy") == {"canary": 1, "stable": 1}


def test_runner_settings_are_checked(tmp_path):
    base = {"pipeline": "toy", "components": {"ExampleGen": {"input": "data"}}}
    with pytest.raises(ConfigError, match="unknown runner field 'backnd'"):
        load_config({**base, "runner": {"backnd": "ray"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="runner backend must be 'local' or 'ray'"):
        load_config({**base, "runner": {"backend": "dask"}}, base_dir=tmp_path)


def test_every_runs_on_its_period_and_the_rerun_is_cached(tmp_path, capsys):
    _spans(tmp_path)
    import yaml

    cfg = {"pipeline": "toy", "root": "root", "base_dir": str(tmp_path),
           "components": {name: comp.config for name, comp in _config(tmp_path).components.items()}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert pipeline_main(["run", str(path), "--every", "1s", "--max-runs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(": blessed") == 2
    second = out[out.index("run 1: blessed"):]
    for name in ("ExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator"):
        assert f"[{name}] unchanged inputs and config: reusing execution" in second
    assert sorted(p.name for p in (tmp_path / "serving" / "toy").iterdir() if p.name.isdigit()) == ["1"]
