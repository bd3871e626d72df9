"""The pipeline's components: small classes with declared configuration fields, typed input and
output artifacts, and a `run(ctx, inputs, out)` that writes its outputs into the folder `out`.

ExampleGen → StatisticsGen → SchemaGen → ExampleValidator (data gate) → Transform → [Tuner] →
Trainer → Evaluator (blessing) → [InfraValidator] → [Pusher].

A component's outputs are {name: Output(type, path, properties)}; the runner records them as
artifacts with a SHA-256 of their content, and the edges input → execution → output. A
component whose `gate(outputs)` answers a decision stops the run: 'blocked' (the data gate) or
'refused' (no blessing, or the model cannot be served).
May import: numpy, json, neurona.pipeline.sources, neurona.pipeline.stats, neurona.pipeline.schema,
neurona.pipeline.training, neurona.pipeline.evaluation, neurona.pipeline.serving_io,
neurona.pipeline.monitor, neurona.pipeline.ray_backend, optuna and ray (lazily).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import evaluation as ev
from . import schema as sc
from . import sources as src
from .stats import compute_statistics
from . import training as tr


class ConfigError(ValueError):
    """A configuration problem, naming the component and field (and the YAML line when known)."""


@dataclass
class Output:
    type: str
    path: Path
    properties: dict = field(default_factory=dict)


REQUIRED = object()


def write_json(path: Path, obj) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default), encoding="utf-8")
    tmp.replace(path)
    return path


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Component:
    """Base class: FIELDS maps each configuration field to its default (REQUIRED: no default)."""

    FIELDS: dict = {}
    INPUTS: dict = {}       # name -> artifact type (optional inputs end with '?')
    OUTPUTS: dict = {}
    cacheable = True

    def __init__(self, **config):
        name = type(self).__name__
        unknown = sorted(set(config) - set(self.FIELDS))
        if unknown:
            raise ConfigError(f"{name}: unknown field(s) {unknown}; known: {sorted(self.FIELDS)}")
        missing = [k for k, v in self.FIELDS.items() if v is REQUIRED and k not in config]
        if missing:
            raise ConfigError(f"{name}: missing required field(s) {missing}")
        self.config = {k: config.get(k, v) for k, v in self.FIELDS.items() if not (v is REQUIRED and k not in config)}

    def __getattr__(self, item):
        config = self.__dict__.get("config", {})
        if item in config:
            return config[item]
        raise AttributeError(item)

    def uses_input(self, name) -> bool:
        """Whether this configuration reads the optional input `name` (an unread input must not
        change the cache key)."""
        return True

    def cache_extra(self, ctx, inputs) -> str:
        """What besides the config and the input artifacts' hashes decides the outputs."""
        return ""

    def gate(self, outputs):
        """None to go on, or (decision, [reasons]) to stop the run."""
        return None

    def run(self, ctx, inputs: dict, out: Path) -> dict:
        raise NotImplementedError


class ExampleGen(Component):
    """Read the spans of a source, keep the last `window` of them, split train/eval. Outputs
    train.npz, eval.npz, current.npz (the newest span) and previous.npz (the span before it)."""

    FIELDS = {"input": REQUIRED, "pattern": "span-*.csv", "format": "auto", "span_column": None,
              "window": None, "eval_fraction": 0.2, "eval_input": None, "seed": 0}
    OUTPUTS = {"examples": "Examples"}

    def _spans(self, ctx):
        path = ctx.resolve(self.input)
        if path.is_file():
            if not self.span_column:
                return [("all", path)], path
            return None, path
        return src.find_spans(path, self.pattern), path

    def cache_extra(self, ctx, inputs):
        spans, path = self._spans(ctx)
        files = [p for _, p in spans] if spans else [path]
        if self.eval_input:
            files.append(ctx.resolve(self.eval_input))
        return json.dumps([(str(p), src.file_sha256(p)) for p in files])

    def run(self, ctx, inputs, out):
        spans, path = self._spans(ctx)
        sources = []
        if spans is None:  # one file, spans in a column
            whole = src.read_frame(path, self.format)
            if self.span_column not in whole:
                raise ConfigError(f"ExampleGen.span_column: {self.span_column!r} is not a column of {path} "
                                  f"(columns: {sorted(whole)})")
            ids = src._span_order(sorted(set(whole[self.span_column].astype(str).tolist())))
            frames = [(sid, src.take(whole, whole[self.span_column].astype(str) == sid)) for sid in ids]
            sha = src.file_sha256(path)
            sources = [{"span": sid, "path": str(path), "sha256": sha, "rows": len(f[self.span_column])}
                       for sid, f in frames]
        else:
            frames = []
            for sid, p in spans:
                f = src.read_frame(p, self.format)
                frames.append((sid, f))
                sources.append({"span": sid, "path": str(p), "sha256": src.file_sha256(p),
                                "rows": next(iter(f.values())).shape[0] if f else 0})
        window = frames if not self.window else frames[-int(self.window):]
        data = src.concat([f for _, f in window])
        n = next(iter(data.values())).shape[0]
        rng = np.random.default_rng(int(self.seed))
        if self.eval_input:
            eval_frame, train_frame = src.read_frame(ctx.resolve(self.eval_input), self.format), data
        else:
            perm = rng.permutation(n)
            n_eval = int(round(float(self.eval_fraction) * n))
            eval_frame, train_frame = src.take(data, np.sort(perm[:n_eval])), src.take(data, np.sort(perm[n_eval:]))
        src.save_frame(train_frame, out / "train.npz")
        src.save_frame(eval_frame, out / "eval.npz")
        src.save_frame(frames[-1][1], out / "current.npz")
        props = {"spans": [s for s, _ in window], "current_span": frames[-1][0], "sources": sources,
                 "rows": {"train": len(next(iter(train_frame.values()))), "eval": len(next(iter(eval_frame.values())))},
                 "columns": sorted(data)}
        if len(frames) > 1:
            src.save_frame(frames[-2][1], out / "previous.npz")
            props["previous_span"] = frames[-2][0]
        return {"examples": Output("Examples", out, props)}


def load_splits(examples_path) -> dict:
    p = Path(examples_path)
    return {name: src.load_frame(p / f"{name}.npz") for name in ("train", "eval", "current", "previous")
            if (p / f"{name}.npz").exists()}


class StatisticsGen(Component):
    """Feature statistics of every split (and per slice of the training split)."""

    FIELDS = {"slice_by": []}
    INPUTS = {"examples": "Examples"}
    OUTPUTS = {"statistics": "ExampleStatistics"}

    def run(self, ctx, inputs, out):
        splits = load_splits(inputs["examples"].path)
        stats = {name: compute_statistics(frame, slice_by=self.slice_by if name == "train" else ())
                 for name, frame in splits.items()}
        write_json(out / "statistics.json", stats)
        return {"statistics": Output("ExampleStatistics", out, {"splits": sorted(stats)})}


class SchemaGen(Component):
    """The schema: the reviewed file at `path` when it exists, else inferred from the training
    statistics and written there for review. Each distinct content gets the next version."""

    FIELDS = {"path": "schema.yaml", "label": None, "drift": {}, "skew": {}, "max_domain": 50}
    INPUTS = {"statistics": "ExampleStatistics"}
    OUTPUTS = {"schema": "Schema"}
    driver_only = True  # numbers schema versions from the metadata store: never a Ray task

    def cache_extra(self, ctx, inputs):
        p = ctx.resolve(self.path)
        return src.file_sha256(p) if p.exists() else "inferred"

    def run(self, ctx, inputs, out):
        p = ctx.resolve(self.path)
        if p.exists():
            schema, origin = sc.load_schema(p), "file"
        else:
            stats = read_json(Path(inputs["statistics"].path) / "statistics.json")
            schema = sc.infer_schema(stats["train"], label=self.label, drift=self.drift, skew=self.skew,
                                     max_domain=self.max_domain)
            sc.check_schema(schema, "SchemaGen (inferred)")
            sc.save_schema(schema, p)
            origin = "inferred"
        content = json.dumps(sc.schema_content(schema), sort_keys=True)
        version = ctx.schema_version(content)
        schema["version"] = version
        sc.save_schema(schema, out / "schema.yaml")
        return {"schema": Output("Schema", out, {"version": version, "origin": origin, "file": str(p)})}


class ExampleValidator(Component):
    """Anomalies of the newest span and of the training split against the schema, and drift of
    the newest span against the previous one; any anomaly of severity 'error' blocks the run."""

    FIELDS = {"severities": {}}
    INPUTS = {"examples": "Examples", "schema": "Schema"}
    OUTPUTS = {"anomalies": "ExampleAnomalies"}

    def run(self, ctx, inputs, out):
        schema = sc.load_schema(Path(inputs["schema"].path) / "schema.yaml")
        splits = load_splits(inputs["examples"].path)
        stats = {name: compute_statistics(frame, schema) for name, frame in splits.items()}
        anomalies = []
        for name in ("current", "train"):
            for a in sc.validate_frame(splits[name], stats[name], schema, self.severities):
                anomalies.append({**a, "split": name})
        drift = []
        if "previous" in stats:
            drift = sc.compare_statistics(stats["current"], stats["previous"], schema, "drift",
                                          where=" (newest span vs the one before)")
        errors = [a for a in anomalies if a["severity"] == "error"] + \
                 [d for d in drift if d["anomaly"] and d["severity"] == "error"]
        result = {"anomalies": anomalies, "drift": drift, "blocking": bool(errors),
                  "reasons": [e["message"] for e in errors], "statistics": stats}
        write_json(out / "anomalies.json", result)
        return {"anomalies": Output("ExampleAnomalies", out, {"blocking": bool(errors),
                                                             "errors": len(errors), "anomalies": len(anomalies)})}

    def gate(self, outputs):
        a = outputs["anomalies"]
        if a.properties.get("blocking"):
            return "blocked", read_json(Path(a.path) / "anomalies.json")["reasons"]
        return None


class Transform(Component):
    """The preprocessing fitted on the training split (mean/std per feature or per channel, the
    label's classes); the Trainer puts it into the model as fixed layers."""

    FIELDS = {"features": REQUIRED, "label": REQUIRED}
    INPUTS = {"examples": "Examples", "schema": "Schema"}
    OUTPUTS = {"transform": "TransformGraph"}

    def run(self, ctx, inputs, out):
        schema = sc.load_schema(Path(inputs["schema"].path) / "schema.yaml")
        train = src.load_frame(Path(inputs["examples"].path) / "train.npz")
        info = tr.fit_transform(train, list(self.features), self.label, schema)
        write_json(out / tr.TRANSFORM_FILE, info)
        return {"transform": Output("TransformGraph", out, {"features": info["input_features"],
                                                            "classes": info["classes"], "kind": info["kind"]})}


def _training_arrays(inputs):
    info = read_json(Path(inputs["transform"].path) / tr.TRANSFORM_FILE)
    train = src.load_frame(Path(inputs["examples"].path) / "train.npz")
    return info, tr.encode_inputs(train, info), tr.encode_labels(train, info)


class Tuner(Component):
    """Optuna search over `search_space` ({name: [choices]} or {name: {low, high, log}}),
    scored by the validation accuracy on the last `validation_fraction` of the training split.
    With `ray: true` each trial runs as a Ray task."""

    FIELDS = {"trials": 8, "search_space": REQUIRED, "model": {"type": "mlp"}, "fixed": {},
              "validation_fraction": 0.2, "seed": 0, "ray": False}
    INPUTS = {"examples": "Examples", "transform": "TransformGraph", "code": "Code"}
    OUTPUTS = {"hyperparameters": "HyperParameters"}

    def __init__(self, **config):
        super().__init__(**config)
        for name, spec in self.search_space.items():
            if not isinstance(spec, list) and not (isinstance(spec, dict) and {"low", "high"} <= set(spec)):
                raise ConfigError(f"Tuner.search_space.{name}: give a list of choices or {{low, high, log}}")

    def _suggest(self, trial):
        hp = dict(self.fixed)
        for name, spec in self.search_space.items():
            if isinstance(spec, list):
                # Optuna stores choices as plain values; a list choice ([32, 16]) travels as JSON
                choice = trial.suggest_categorical(name, [json.dumps(c) for c in spec])
                hp[name] = json.loads(choice)
            elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log"):
                hp[name] = trial.suggest_int(name, spec["low"], spec["high"])
            else:
                hp[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               log=bool(spec.get("log", False)))
        return hp

    def run(self, ctx, inputs, out):
        import optuna

        info, x, y = _training_arrays(inputs)
        n_val = max(1, int(len(y) * float(self.validation_fraction)))
        xt, yt, xv, yv = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(self.seed)))
        trials = []
        model_cfg = dict(self.model)
        if self.ray:
            import ray

            from .ray_backend import ensure_ray

            started = ensure_ray()  # a local Ray with a small object store unless one is running
            try:
                remote = ray.remote(_trial_score)
                for _ in range(int(self.trials)):
                    t = study.ask()
                    hp = self._suggest(t)
                    score = ray.get(remote.remote(info, model_cfg, hp, xt, yt, xv, yv, int(self.seed)))
                    study.tell(t, score)
                    trials.append({"params": hp, "value": score})
            finally:
                if started:
                    ray.shutdown()
        else:
            def objective(t):
                hp = self._suggest(t)
                score = _trial_score(info, model_cfg, hp, xt, yt, xv, yv, int(self.seed))
                trials.append({"params": hp, "value": score})
                return score

            study.optimize(objective, n_trials=int(self.trials))
        best = {**self.fixed, **{k: json.loads(v) if isinstance(self.search_space[k], list) else v
                                 for k, v in study.best_params.items()}}
        write_json(out / "hyperparameters.json", {"best": best, "best_value": study.best_value, "trials": trials})
        return {"hyperparameters": Output("HyperParameters", out, {"best": best, "best_value": study.best_value})}


def _trial_score(info, model_cfg, hp, xt, yt, xv, yv, seed):
    model, _ = tr.train_model(info, model_cfg, hp, xt, yt, seed=seed)
    return float((model.predict(xv, batch_size=256).argmax(axis=1) == yv).mean())


class Trainer(Component):
    """neurona `fit` of the Transform's layer + the model's layers; saves the model folder (with
    transform.json and the training statistics inside). `warm_start: true` starts from the last
    blessed model's weights (fine-tuning on the new window)."""

    FIELDS = {"model": {"type": "mlp"}, "hyperparameters": {}, "seed": 0, "warm_start": False}
    INPUTS = {"examples": "Examples", "transform": "TransformGraph", "code": "Code",
              "hyperparameters?": "HyperParameters", "baseline?": "Model"}
    OUTPUTS = {"model": "Model"}

    def uses_input(self, name):
        # warm starting reads the last blessed model, so each newly blessed model reruns the Trainer
        return name != "baseline" or bool(self.warm_start)

    def run(self, ctx, inputs, out):
        info, x, y = _training_arrays(inputs)
        hp = dict(self.hyperparameters)
        if inputs.get("hyperparameters") is not None:
            hp.update(read_json(Path(inputs["hyperparameters"].path) / "hyperparameters.json")["best"])
        init = inputs["baseline"].path if self.warm_start and inputs.get("baseline") is not None else None
        model, history = tr.train_model(info, dict(self.model), hp, x, y, seed=int(self.seed), init_from=init)
        tr.save_with_transform(model, info, out / "model")
        from .monitor import TRAINING_STATS_FILE, training_statistics

        train = src.load_frame(Path(inputs["examples"].path) / "train.npz")
        write_json(out / "model" / TRAINING_STATS_FILE, training_statistics(train, info))
        write_json(out / "history.json", {"hyperparameters": hp, "history": history})
        return {"model": Output("Model", out / "model", {"hyperparameters": hp,
                                                         "final_loss": history["loss"][-1],
                                                         "params": model.count_params()})}


class Evaluator(Component):
    """Metrics overall, per slice and cross-slice, with bootstrap intervals, against value bounds
    and against the last blessed model; the blessing decision with its reasons."""

    FIELDS = {"metrics": ["accuracy", "log_loss"], "slices": [], "expected_slices": {}, "thresholds": {},
              "min_slice_size": 30, "bootstrap": 300, "confidence": 0.95, "seed": 0,
              "on_missing_slice": "refuse"}
    INPUTS = {"model": "Model", "examples": "Examples", "baseline?": "Model"}
    OUTPUTS = {"evaluation": "ModelEvaluation"}

    def __init__(self, **config):
        super().__init__(**config)
        for m in self.metrics:
            if m not in ev.METRICS:
                raise ConfigError(f"Evaluator.metrics: {m!r} does not exist; known: {', '.join(ev.METRICS)}")
        try:
            ev.check_thresholds(self.thresholds)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        missing = [m for m in self.thresholds if m not in self.metrics]
        if missing:
            raise ConfigError(f"Evaluator.thresholds: {missing} not among Evaluator.metrics {self.metrics}")
        if self.on_missing_slice not in ("refuse", "warn"):
            raise ConfigError("Evaluator.on_missing_slice: 'refuse' or 'warn'")

    def run(self, ctx, inputs, out):
        frame = src.load_frame(Path(inputs["examples"].path) / "eval.npz")
        proba, info = tr.predict_proba(inputs["model"].path, frame)
        y = tr.encode_labels(frame, info)
        values = {m: ev.per_example(m, proba, y) for m in self.metrics}
        base = None
        if inputs.get("baseline") is not None:
            bproba, binfo = tr.predict_proba(inputs["baseline"].path, frame)
            if binfo["classes"] != info["classes"]:
                raise ValueError(f"Evaluator: the baseline model's classes {binfo['classes']} differ from the "
                                 f"candidate's {info['classes']}")
            base = {m: ev.per_example(m, bproba, y) for m in self.metrics}
        result = ev.evaluate(values, base, frame, self.slices, self.expected_slices, self.thresholds,
                             int(self.min_slice_size), int(self.bootstrap), float(self.confidence), int(self.seed),
                             self.on_missing_slice)
        result["baseline_uri"] = None if inputs.get("baseline") is None else str(inputs["baseline"].path)
        write_json(out / "evaluation.json", result)
        return {"evaluation": Output("ModelEvaluation", out, {"blessed": result["blessed"],
                                                              "reasons": result["reasons"]})}

    def gate(self, outputs):
        e = outputs["evaluation"]
        return None if e.properties["blessed"] else ("refused", e.properties["reasons"])


class InfraValidator(Component):
    """Serve the candidate with the real `neurona serve` on a loopback port, send canary
    requests (TF Serving REST), check the golden set's predictions against `predict`, and check
    that a malformed request gets a 4xx while the server stays up. The candidate is served as it
    will be pushed: with the serve-time `schema.json` of `schema_check`/`range_slack` (None: the
    Pusher's settings; `off` without a Pusher), so a golden set that a `reject` check would refuse
    fails here, before anything is pushed."""

    FIELDS = {"model_name": "model", "golden_size": 16, "timeout": 90, "atol": 1e-4,
              "command": ["{python}", "-m", "neurona.serving"], "schema_check": None, "range_slack": None}

    def __init__(self, **config):
        super().__init__(**config)
        if self.schema_check not in (None, "flag", "reject", "off"):
            raise ConfigError(f"InfraValidator.schema_check: 'flag', 'reject' or 'off', got {self.schema_check!r}")
    INPUTS = {"model": "Model", "examples": "Examples"}
    OUTPUTS = {"infra": "InfraBlessing"}

    def run(self, ctx, inputs, out):
        from .serving_io import infra_validate

        frame = src.load_frame(Path(inputs["examples"].path) / "eval.npz")
        result = infra_validate(Path(inputs["model"].path), frame, self.model_name, int(self.golden_size),
                                float(self.timeout), float(self.atol), list(self.command), out,
                                schema_check=self.schema_check or "off", range_slack=float(self.range_slack or 0.0))
        write_json(out / "infra.json", result)
        return {"infra": Output("InfraBlessing", out, {"passed": result["passed"], "reasons": result["reasons"]})}

    def gate(self, outputs):
        i = outputs["infra"]
        return None if i.properties["passed"] else ("refused", i.properties["reasons"])


class Pusher(Component):
    """Write the blessed model as the next integer version under `base_path/model_name/`
    (atomically: copied to a hidden folder, then renamed) and point the `canary` label at it;
    `stable` moves only after the canary passes (`promote`), except for the very first version.
    With `schema_check: flag` (the default) or `reject`, the pushed version folder holds a
    `schema.json` (the training schema of the model's inputs) that `neurona serve` checks each
    request against (neurona/serving/schema_check.py); `off` pushes none."""

    FIELDS = {"base_path": REQUIRED, "model_name": REQUIRED, "schema_check": "flag", "range_slack": 0.0}

    def __init__(self, **config):
        super().__init__(**config)
        if self.schema_check not in ("flag", "reject", "off"):
            raise ConfigError(f"Pusher.schema_check: 'flag', 'reject' or 'off', got {self.schema_check!r}")
    INPUTS = {"model": "Model", "evaluation": "ModelEvaluation", "infra?": "InfraBlessing"}
    OUTPUTS = {"pushed": "PushedModel"}
    cacheable = False
    driver_only = True  # writes the metadata store and the server's folder: never a Ray task

    def run(self, ctx, inputs, out):
        from .serving_io import push_model

        if not inputs["evaluation"].properties.get("blessed"):
            raise RuntimeError("Pusher: the model is not blessed; nothing is pushed")
        if inputs.get("infra") is not None and not inputs["infra"].properties.get("passed"):
            raise RuntimeError("Pusher: the model failed infra validation; nothing is pushed")
        model_dir = Path(inputs["model"].path)
        if self.schema_check != "off":  # the pushed folder: the model and its serve-time schema
            from .serving_io import stage_for_serving

            model_dir = stage_for_serving(model_dir, out / "model", self.schema_check, float(self.range_slack))
        result = push_model(model_dir, ctx.resolve(self.base_path), self.model_name,
                            ctx.store, model_artifact_id=inputs["model"].id, run_id=ctx.run_id)
        write_json(out / "push.json", result)
        return {"pushed": Output("PushedModel", Path(result["path"]), result)}


COMPONENTS = {c.__name__: c for c in (ExampleGen, StatisticsGen, SchemaGen, ExampleValidator, Transform, Tuner,
                                      Trainer, Evaluator, InfraValidator, Pusher)}
ORDER = list(COMPONENTS)
