"""neurona.pipeline: distances against hand computations, schema validation, the metadata store's
lineage query, whole pipeline runs on small synthetic spans (blessed, cached, blocked by the data
gate, refused for a slice regression), config errors naming field and line, continuous runs."""
import csv
import json
import math

import numpy as np
import pytest

pytest.importorskip("optuna")  # the pipeline extra; installed by `make test`

from neurona.pipeline import stats as st  # noqa: E402
from neurona.pipeline.components import ConfigError  # noqa: E402
from neurona.pipeline.metadata import MetadataStore  # noqa: E402
from neurona.pipeline.runner import load_config, parse_duration, run_pipeline, watch  # noqa: E402
from neurona.pipeline.schema import ServeTimeCheck, compare_statistics, infer_schema, validate_frame  # noqa: E402
from neurona.pipeline.serving_io import promote, read_labels  # noqa: E402
from neurona.pipeline.sources import tree_sha256  # noqa: E402


# -- distances by hand ---------------------------------------------------------------------------------
def test_linf_by_hand():
    # p = (a: 3/4, b: 1/4), q = (a: 1/4, b: 1/4, c: 2/4): |3/4 - 1/4| = 0.5, |0 - 2/4| = 0.5
    assert st.linf_distance({"a": 3, "b": 1}, {"a": 1, "b": 1, "c": 2}) == pytest.approx(0.5)
    assert st.linf_distance({"a": 5}, {"a": 2}) == 0.0


def test_js_divergence_by_hand():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    m = (p + q) / 2  # (0.25, 0.5, 0.25)
    kl_pm = 0.5 * math.log2(0.5 / 0.25) + 0.5 * math.log2(0.5 / 0.5)  # = 0.5
    kl_qm = 0.5 * math.log2(0.5 / 0.5) + 0.5 * math.log2(0.5 / 0.25)  # = 0.5
    assert st.js_divergence([2, 2, 0], [0, 3, 3]) == pytest.approx(0.5 * kl_pm + 0.5 * kl_qm) == pytest.approx(0.5)
    assert 0.0 <= st.js_divergence([1, 2, 3], [3, 2, 1]) <= 1.0
    with pytest.raises(ValueError, match="same schema bin edges"):
        st.js_divergence([1, 2], [1, 2, 3])


def test_wasserstein_exact_for_equal_samples_and_against_scipy():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 50), rng.normal(0.7, 2, 50)  # 50 divides the 100 quantile points
    by_hand = np.mean(np.abs(np.sort(a) - np.sort(b)))  # W1 of two equal-size samples
    got = st.wasserstein_from_quantiles(st.quantile_grid(a), st.quantile_grid(b))
    assert got == pytest.approx(by_hand, rel=1e-12)
    assert got == pytest.approx(wasserstein_distance(a, b), rel=1e-12)


def test_histogram_bins_and_statistics():
    s = st.numeric_statistics(np.array([0.0, 1.0, 2.0, np.nan, 5.0]), edges=[0.0, 1.0, 2.0])
    # [<0], [0,1), [1,2], [>2]: 0 | 0.0 | 1.0, 2.0 | 5.0
    assert s["histogram"]["counts"] == [0, 1, 2, 1] and s["missing"] == 1
    assert s["mean"] == pytest.approx(2.0)


# -- schema ----------------------------------------------------------------------------------------------
def _frame(n=400, seed=0, shift=0.0, flip_group=None):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)
    group = np.where(rng.random(n) < 0.5, "a", "b")
    y = np.where(x1 + x2 > 0, "pos", "neg")
    if flip_group is not None:
        y = np.where(group == flip_group, np.where(y == "pos", "neg", "pos"), y)
    return {"x1": x1, "x2": x2, "group": group, "y": y}


def test_schema_validation_finds_each_anomaly():
    train = _frame()
    schema = infer_schema(st.compute_statistics(train), label="y",
                          drift={"numeric": {"metric": "js", "threshold": 0.1, "severity": "error"}})
    assert schema["features"]["group"]["domain"] == ["a", "b"] and "drift" in schema["features"]["x1"]
    bad = dict(train)
    del bad["x2"]
    bad["extra"] = np.zeros(len(train["x1"]))
    bad["x1"] = train["x1"].copy()
    bad["x1"][:40] = np.nan
    bad["group"] = np.where(np.arange(len(train["x1"])) < 100, "c", train["group"])
    kinds = {(a["feature"], a["kind"], a["severity"]) for a in
             validate_frame(bad, st.compute_statistics(bad, schema), schema)}
    assert ("x2", "missing_feature", "error") in kinds and ("extra", "new_feature", "warning") in kinds
    assert ("x1", "missing_values", "error") in kinds and ("group", "out_of_domain", "warning") in kinds
    typed = dict(train, x1=train["x1"].astype(str))
    assert ("x1", "type", "error") in {(a["feature"], a["kind"], a["severity"]) for a in
                                       validate_frame(typed, st.compute_statistics(typed, schema), schema)}
    assert validate_frame(train, st.compute_statistics(train, schema), schema) == []
    drift = compare_statistics(st.compute_statistics(_frame(seed=1, shift=1.5), schema),
                               st.compute_statistics(train, schema), schema, "drift")
    assert [d["feature"] for d in drift if d["anomaly"]] == ["x1"]


def test_serve_time_check_flags_and_rejects():
    schema = infer_schema(st.compute_statistics(_frame()), label="y")
    check = ServeTimeCheck(schema, ["x1", "x2"])
    assert check([[0.1, 0.2]]) == []
    problems = check([[0.1, 0.2], [50.0, 0.0], [float("nan"), 0.0]])
    assert [(p["feature"], p["kind"], p["instances"]) for p in problems] == [("x1", "nan", [2]),
                                                                             ("x1", "out_of_range", [1])]
    assert "x1' = 50.0 (instance 1) is outside the training range" in problems[1]["message"]
    with pytest.raises(ValueError, match="violates the training schema.*'x1'"):
        ServeTimeCheck(schema, ["x1", "x2"], mode="reject")([[50.0, 0.0]])
    assert "expected 2 columns" in check([[1.0, 2.0, 3.0]])[0]["message"]


def test_cross_slice_metrics_by_hand_and_a_cross_slice_refuses():
    from neurona.pipeline import evaluation as ev

    n = 400
    group = np.array(["a", "b"] * (n // 2))
    site = np.repeat(np.array(["x", "y"]), n // 2)
    correct = np.where((group == "b") & (site == "y"), 0.0, 1.0)  # wrong only on b at site y
    res = ev.evaluate({"accuracy": correct}, None, {"group": group, "site": site}, ["group", ["group", "site"]],
                      thresholds={"accuracy": {"lower_bound": 0.4, "slices": True}}, min_slice_size=30,
                      bootstrap=200)
    assert res["overall"]["metrics"]["accuracy"]["value"] == 0.75
    assert res["slices"]["group=b"]["metrics"]["accuracy"]["value"] == 0.5
    assert res["slices"]["group=b,site=y"]["size"] == 100
    assert res["slices"]["group=b,site=y"]["metrics"]["accuracy"]["value"] == 0.0
    assert res["slices"]["group=a,site=y"]["metrics"]["accuracy"]["ci"] == (1.0, 1.0)
    # the slice b alone passes (interval around 0.5), its cross slice with site y does not
    assert [r.split(":")[0] for r in res["reasons"]] == ["group=b,site=y"] and not res["blessed"]


# -- metadata --------------------------------------------------------------------------------------------
def test_lineage_and_served_at_by_hand(tmp_path):
    s = MetadataStore(tmp_path / "m.sqlite")
    run = s.start_run("p", now=0)
    data = s.add_artifact("Examples", tmp_path, "d" * 64, {"spans": ["1"]}, now=1)
    code = s.add_artifact("Code", tmp_path, "c" * 64, {"git_commit": "abc"}, now=1)
    ex = s.start_execution(run, "Trainer", now=2)
    s.link(ex, data, "input", "examples")
    s.link(ex, code, "input", "code")
    model = s.add_artifact("Model", tmp_path, "m" * 64, now=3)
    s.link(ex, model, "output", "model")
    s.add_push("p", 1, model, tmp_path, run_id=run, now=10)
    s.move_label("p", "stable", 1, now=10)
    s.move_label("p", "stable", 7, now=20)  # version 7 came from nowhere we know
    assert s.served_at("p", 5) is None and s.served_at("p", 15) == 1 and s.served_at("p", 25) == 7
    prov = s.provenance_at("p", 15)
    assert prov["model"]["id"] == model and [a["id"] for a in prov["data"]] == [data]
    assert prov["code"][0]["properties"]["git_commit"] == "abc" and prov["run"]["id"] == run
    assert s.label_history("p", "stable")[0]["ended"] == 20


# -- whole pipeline runs -----------------------------------------------------------------------------------
def _write_span(folder, name, frame):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as f:
        w = csv.writer(f)
        cols = list(frame)
        w.writerow(cols)
        for row in zip(*(frame[c] for c in cols)):
            w.writerow(row)


def _config(tmp_path, **over):
    comps = {
        "ExampleGen": {"input": "data", "pattern": "span-*.csv", "window": 2, "eval_fraction": 0.3},
        "StatisticsGen": {"slice_by": ["group"]},
        "SchemaGen": {"path": "schema.yaml", "label": "y",
                      "drift": {"numeric": {"metric": "js", "threshold": 0.2, "severity": "error"}},
                      "skew": {"numeric": {"metric": "js", "threshold": 0.2, "severity": "warning"}}},
        "ExampleValidator": {},
        "Transform": {"features": ["x1", "x2"], "label": "y"},
        "Trainer": {"model": {"type": "mlp"}, "hyperparameters": {"epochs": 8, "hidden": [16],
                                                                 "learning_rate": 0.02}},
        "Evaluator": {"slices": ["group"], "expected_slices": {"group": ["a", "b"]}, "min_slice_size": 30,
                      "bootstrap": 200,
                      "thresholds": {"accuracy": {"lower_bound": 0.7, "max_decrease": 0.05, "slices": True}}},
        "Pusher": {"base_path": "serving", "model_name": "toy"},
    }
    for k, v in over.items():
        if v is None:
            comps.pop(k)
        else:
            comps[k] = {**comps.get(k, {}), **v}
    return load_config({"pipeline": "toy", "root": "root", "components": comps}, base_dir=tmp_path)


def test_blessed_run_pushes_then_rerun_is_cached_and_changes_rerun(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    _write_span(tmp_path / "data", "span-2.csv", _frame(seed=2))
    r1 = run_pipeline(_config(tmp_path), log=lambda *_: None)
    assert (r1.status, r1.exit_code) == ("blessed", 0), r1.reasons
    assert (tmp_path / "serving" / "toy" / "1" / "config.json").is_file()
    assert read_labels(tmp_path / "serving", "toy") == {"canary": 1, "stable": 1}
    served_schema = json.loads((tmp_path / "serving" / "toy" / "1" / "schema.json").read_text())
    assert served_schema["mode"] == "flag" and [f["name"] for f in served_schema["features"]] == ["x1", "x2"]
    assert json.loads((tmp_path / "serving" / "models.json").read_text())["model_config_list"][0]["name"] == "toy"
    html = r1.report.read_text()
    assert "Decision: blessed" in html and "data:image/png;base64," in html

    r2 = run_pipeline(_config(tmp_path), log=lambda *_: None)
    cached = {e["component"] for e in r2.executions if e["cached"]}
    assert cached >= {"ExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer", "Evaluator"}
    assert not (tmp_path / "serving" / "toy" / "2").exists()  # the same model is not pushed twice

    r3 = run_pipeline(_config(tmp_path, Trainer={"hyperparameters": {"epochs": 9, "hidden": [16],
                                                                      "learning_rate": 0.02}}),
                      log=lambda *_: None)
    ran = {e["component"] for e in r3.executions if not e["cached"]}
    assert {"Trainer", "Evaluator"} <= ran and "ExampleGen" not in ran and "Transform" not in ran

    store = MetadataStore(tmp_path / "root" / "metadata.sqlite")
    prov = store.provenance_at("toy", store.label_history("toy", "stable")[0]["started"] + 1e-3)
    assert prov["version"] == 1
    assert {s["span"] for s in prov["data"][0]["properties"]["sources"]} == {"1", "2"}
    assert prov["code"] and prov["code"][0]["properties"]["pipeline_code"]


def test_data_gate_blocks_and_serving_untouched(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    _write_span(tmp_path / "data", "span-2.csv", _frame(seed=2))
    assert run_pipeline(_config(tmp_path), log=lambda *_: None).exit_code == 0
    before = tree_sha256(tmp_path / "serving")
    missing = _frame(seed=3)
    del missing["x2"]  # a span whose columns do not match the schema
    _write_span(tmp_path / "data", "span-3.csv", missing)
    r = run_pipeline(_config(tmp_path), log=lambda *_: None)
    assert (r.status, r.exit_code) == ("blocked", 2)
    assert any("'x2' is in the schema but not in the data" in m for m in r.reasons)
    assert "Trainer" not in {e["component"] for e in r.executions}
    assert tree_sha256(tmp_path / "serving") == before
    _write_span(tmp_path / "data", "span-3.csv", _frame(seed=3, shift=2.0))  # drifted x1
    r = run_pipeline(_config(tmp_path), log=lambda *_: None)
    assert r.exit_code == 2 and any("x1" in m and "drift js" in m for m in r.reasons)
    assert tree_sha256(tmp_path / "serving") == before
    assert "BLOCKED" in r.report.read_text()


def test_slice_regression_refuses_blessing_and_serving_untouched(tmp_path):
    _write_span(tmp_path, "golden.csv", _frame(n=600, seed=9))  # a fixed, trusted eval set
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    _write_span(tmp_path / "data", "span-2.csv", _frame(seed=2))
    over = {"ExampleGen": {"eval_input": "golden.csv"}}
    assert run_pipeline(_config(tmp_path, **over), log=lambda *_: None).exit_code == 0
    before = tree_sha256(tmp_path / "serving")
    # a new labelling vendor flips the labels of group b: the features, hence the data gate, look fine
    _write_span(tmp_path / "data", "span-3.csv", _frame(seed=3, flip_group="b"))
    _write_span(tmp_path / "data", "span-4.csv", _frame(seed=4, flip_group="b"))
    r = run_pipeline(_config(tmp_path, **over), log=lambda *_: None)
    assert (r.status, r.exit_code) == ("refused", 3), r.reasons
    assert any(m.startswith("group=b: accuracy drops by at most 0.05") for m in r.reasons)
    assert tree_sha256(tmp_path / "serving") == before
    ev = json.loads(next((tmp_path / "root" / "artifacts" / "Evaluator").glob("*/evaluation.json")).read_text())
    assert ev["has_baseline"] is False  # the first run had no baseline
    store = MetadataStore(tmp_path / "root" / "metadata.sqlite")
    assert [b["blessed"] for b in store.blessings("toy")] == [1, 0]


def test_a_model_the_server_cannot_serve_is_refused_and_serving_untouched(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    _write_span(tmp_path / "data", "span-2.csv", _frame(seed=2))
    assert run_pipeline(_config(tmp_path), log=lambda *_: None).exit_code == 0
    before = tree_sha256(tmp_path / "serving")
    # a server that dies on start-up (as one that cannot load the model does)
    dying = ["{python}", "-c", "import sys; print('cannot load the model'); sys.exit(3)"]
    r = run_pipeline(_config(tmp_path, Trainer={"seed": 1}, InfraValidator={"command": dying, "timeout": 30}),
                     log=lambda *_: None)
    assert (r.status, r.exit_code) == ("refused", 3)
    assert "did not report model AVAILABLE" in r.reasons[0] and "exit code 3" in r.reasons[0]
    assert "cannot load the model" in r.reasons[0] and "Pusher" not in {e["component"] for e in r.executions}
    assert tree_sha256(tmp_path / "serving") == before


def test_infra_validator_serves_the_candidate_with_the_pushed_schema_check(tmp_path):
    from neurona.pipeline.serving_io import serving_available

    if not serving_available():
        pytest.skip("neurona.serving is not in this checkout")
    golden = _frame(n=600, seed=9)
    golden["x1"][0] = 1000.0  # one golden instance far outside the training range
    _write_span(tmp_path, "golden.csv", golden)
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    over = {"ExampleGen": {"eval_input": "golden.csv"}, "InfraValidator": {"model_name": "toy"},
            "Pusher": {"schema_check": "reject"}}
    cfg = _config(tmp_path, **over)
    assert cfg.components["InfraValidator"].config["schema_check"] == "reject"  # taken from the Pusher
    r = run_pipeline(cfg, log=lambda *_: None)
    assert (r.status, r.exit_code) == ("refused", 3)
    assert "HTTP 400" in r.reasons[0] and "feature 'x1' = 1000.0 (instance 0)" in r.reasons[0]
    assert not (tmp_path / "serving").exists()  # nothing pushed
    r = run_pipeline(_config(tmp_path, **{**over, "Pusher": {"schema_check": "flag"}}), log=lambda *_: None)
    assert r.status == "blessed", r.reasons
    assert json.loads((tmp_path / "serving" / "toy" / "1" / "schema.json").read_text())["mode"] == "flag"


def test_missing_slice_and_small_slices_are_reported(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    r = run_pipeline(_config(tmp_path, ExampleValidator=None, Pusher=None,
                             Evaluator={"expected_slices": {"group": ["a", "b", "z"]}, "min_slice_size": 10_000}),
                     log=lambda *_: None)
    assert r.exit_code == 3 and r.reasons == ["slices missing from the evaluation data: group=z"]


def test_tuner_feeds_the_trainer(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    r = run_pipeline(_config(tmp_path, Pusher=None,
                             Tuner={"trials": 2, "search_space": {"learning_rate": {"low": 0.005, "high": 0.05,
                                                                                    "log": True},
                                                                  "hidden": [[8], [16]]},
                                    "fixed": {"epochs": 3}}), log=lambda *_: None)
    assert r.exit_code == 0, r.reasons
    hp = json.loads(next((tmp_path / "root" / "artifacts" / "Trainer").glob("*/history.json")).read_text())
    assert hp["hyperparameters"]["hidden"] in ([8], [16]) and 0.005 <= hp["hyperparameters"]["learning_rate"] <= 0.05


def test_config_errors_name_the_field_and_line(tmp_path):
    def err(text):
        p = tmp_path / "p.yaml"
        p.write_text(text)
        with pytest.raises(ConfigError) as e:
            load_config(p)
        return str(e.value)

    base = "pipeline: x\ncomponents:\n  ExampleGen:\n    input: data\n"
    msg = err(base + "  Trainr:\n    model: {type: mlp}\n")
    assert "p.yaml:5" in msg and "unknown component 'Trainr'" in msg
    msg = err(base + "    windw: 2\n")
    assert "p.yaml:5" in msg and "windw" in msg
    msg = err(base + "  StatisticsGen: {}\n  SchemaGen: {}\n  Transform: {features: [a], label: y}\n"
                     "  Trainer: {}\n  Evaluator:\n    thresholds:\n      accuracy: {lower_bound: 0.5}\n"
                     "      f1: {lower_bound: 0.5}\n")
    assert "p.yaml:12" in msg and "'f1', which does not exist" in msg
    assert "p.yaml:3" in err("pipeline: x\ncomponents: {}\nroot2: y\n")


def test_watch_runs_when_a_span_arrives_and_promote_moves_stable(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    config = _config(tmp_path)
    sleeps = []

    def sleep(_):
        sleeps.append(_)
        if len(sleeps) == 3:  # two polls find nothing new: no run; then span 2 arrives
            _write_span(tmp_path / "data", "span-2.csv", _frame(seed=2))

    results = watch(config, folder=tmp_path / "data", max_runs=2, poll=5, log=lambda *_: None, sleep=sleep)
    assert [r.status for r in results] == ["blessed", "blessed"] and sleeps == [5, 5, 5]
    assert not any(e["cached"] for e in results[1].executions if e["component"] == "ExampleGen")
    assert read_labels(tmp_path / "serving", "toy") == {"canary": 2, "stable": 1}  # stable waits for the canary
    store = MetadataStore(tmp_path / "root" / "metadata.sqlite")
    assert promote(tmp_path / "serving", "toy", store) == {"canary": 2, "stable": 2}
    assert [h["version"] for h in store.label_history("toy", "stable")] == [1, 2]


def test_every_period_reuses_the_cache_without_new_data_and_trains_on_a_new_span(tmp_path):
    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    _write_span(tmp_path / "data", "span-2.csv", _frame(seed=2))
    now, sleeps = [0.0], []

    def sleep(seconds):  # a fake day passes; before the third run a new span arrives
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 2:
            _write_span(tmp_path / "data", "span-3.csv", _frame(seed=3))

    results = watch(_config(tmp_path), every=parse_duration("1d"), max_runs=3, log=lambda *_: None, sleep=sleep,
                    clock=lambda: now[0])
    assert sleeps == [86400.0, 86400.0]
    assert [r.status for r in results] == ["blessed", "blessed", "blessed"], [r.reasons for r in results]
    cached = [{e["component"] for e in r.executions if e["cached"]} for r in results]
    assert cached[0] == set()
    # nothing new: all cached, but the Pusher (never cached; it pushes nothing) and SchemaGen, which
    # inferred the schema on run 1 and now reads the file it wrote for review (same content, same version)
    assert cached[1] == {e["component"] for e in results[1].executions} - {"Pusher", "SchemaGen"}
    assert "ExampleGen" not in cached[2] and "Trainer" not in cached[2]  # the new span: retrained
    assert sorted(p.name for p in (tmp_path / "serving" / "toy").iterdir() if p.name.isdigit()) == ["1", "2"]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1 day")


def test_cli_every_with_max_runs(tmp_path, capsys):
    from neurona.pipeline.__main__ import main

    _write_span(tmp_path / "data", "span-1.csv", _frame(seed=1))
    cfg = _config(tmp_path, Pusher=None)
    comps = {n: c.config for n, c in cfg.components.items()}
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps({"pipeline": "toy", "root": "root", "base_dir": str(tmp_path), "components": comps}))
    assert main(["run", str(path), "--every", "1s", "--max-runs", "2", "--poll", "0.1"]) == 0
    store = MetadataStore(tmp_path / "root" / "metadata.sqlite")
    runs = store.db.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
    assert [r["status"] for r in runs] == ["blessed", "blessed"]
    ran = store.db.execute("SELECT component FROM executions WHERE run_id = ? AND cached_from IS NULL",
                           (runs[1]["id"],)).fetchall()
    assert [r["component"] for r in ran] == ["SchemaGen"]  # the rest reused (SchemaGen: see the test above)
    assert main(["run", str(path), "--every", "1x"]) == 1 and "not a duration" in capsys.readouterr().err


def test_warm_start_copies_all_but_the_preprocessing(tmp_path):
    from neurona.pipeline import training as tr

    train = _frame()
    schema = infer_schema(st.compute_statistics(train), label="y")
    info = tr.fit_transform(train, ["x1", "x2"], "y", schema)
    x, y = tr.encode_inputs(train, info), tr.encode_labels(train, info)
    base, _ = tr.train_model(info, {"type": "mlp"}, {"epochs": 2, "hidden": [8]}, x, y)
    tr.save_with_transform(base, info, tmp_path / "base")
    shifted = dict(info, mean=[5.0, 5.0])
    fresh = tr.build_model(shifted, {"type": "mlp"}, {"hidden": [8]})
    assert tr.warm_start(fresh, tmp_path / "base")
    for a, b in zip(fresh.layers[1:], base.layers[1:]):
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    np.testing.assert_allclose(fresh.layers[0].bias.numpy(), -5.0 / np.asarray(info["std"]), rtol=1e-6)
    assert not tr.warm_start(tr.build_model(info, {"type": "mlp"}, {"hidden": [4]}), tmp_path / "base")
