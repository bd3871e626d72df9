"""The runner: reads `pipeline.yaml`, runs its components in order, skips a component whose
cache key (component, config, the hashes of its input artifacts, what else decides its output,
and the pipeline code's own hash) matches a complete earlier execution, records everything in
the metadata store, writes the run's HTML report, and answers an exit code:

    0 blessed (and pushed when a Pusher is configured), 1 failed (an error),
    2 blocked by the data gate (ExampleValidator), 3 not blessed (Evaluator / InfraValidator).

pipeline.yaml:

    pipeline: weather            # the name runs, blessings and schemas are kept under
    root: out/pipeline_weather   # metadata.sqlite, artifacts/, runs/<id>/report.html
    components:                  # in any order; they run in the pipeline's order
      ExampleGen: {input: data/weather, pattern: "span-*.csv", window: 2}
      ...
    runner: {backend: ray}       # optional: components as Ray tasks (neurona.pipeline.ray_backend);
                                 # also address, num_cpus, object_store_mb. Default: local

Paths are relative to `base_dir` (default: the current directory). An unknown component or
field is refused, naming it and its line in the file.
May import: hashlib, json, time, yaml, neurona.pipeline.metadata, neurona.pipeline.components,
neurona.pipeline.sources, neurona.pipeline.report, neurona.pipeline.ray_backend.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .components import COMPONENTS, ORDER, ConfigError, Output
from .metadata import MetadataStore
from .ray_backend import RUNNER_FIELDS, backend_from
from .sources import file_sha256, tree_sha256

EXIT = {"blessed": 0, "failed": 1, "blocked": 2, "refused": 3}
TOP_FIELDS = {"pipeline", "root", "components", "base_dir", "description", "runner"}
NEEDS = {"StatisticsGen": ["ExampleGen"], "SchemaGen": ["StatisticsGen"], "ExampleValidator": ["SchemaGen"],
         "Transform": ["SchemaGen"], "Tuner": ["Transform"], "Trainer": ["Transform"], "Evaluator": ["Trainer"],
         "InfraValidator": ["Trainer"], "Pusher": ["Evaluator"]}


def _code_hash() -> str:
    """The pipeline package's own source: a change to a component reruns it."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _yaml_lines(text):
    """{key path tuple: line number (1-based)} for every mapping key of a YAML document."""
    import yaml

    lines = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (k.value,)
                lines[key] = k.start_mark.line + 1
                walk(v, key)

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


@dataclass
class PipelineConfig:
    name: str
    root: Path
    base_dir: Path
    components: dict  # name -> Component, in the pipeline's order
    source: str | None
    lines: dict
    runner: dict = None  # {backend: local | ray, address, num_cpus, object_store_mb}

    def line(self, *path):
        return self.lines.get(tuple(path))


def _where(source, lines, path):
    line = lines.get(tuple(path))
    return f"{source or 'config'}{f':{line}' if line else ''}"


def load_config(path_or_dict, base_dir=None) -> PipelineConfig:
    """Parse and check a pipeline config (a YAML file or a dict)."""
    import yaml

    if isinstance(path_or_dict, dict):
        raw, source, lines = path_or_dict, None, {}
    else:
        source = str(path_or_dict)
        text = Path(path_or_dict).read_text(encoding="utf-8")
        try:
            raw = yaml.safe_load(text)
            lines = _yaml_lines(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source or 'config'}: expected a mapping with 'pipeline' and 'components'")
    for key in raw:
        if key not in TOP_FIELDS:
            raise ConfigError(f"{_where(source, lines, (key,))}: unknown field {key!r}; known: {sorted(TOP_FIELDS)}")
    for key in ("pipeline", "components"):
        if key not in raw:
            raise ConfigError(f"{source or 'config'}: missing field {key!r}")
    comps = raw["components"] or {}
    if not isinstance(comps, dict):
        raise ConfigError(f"{_where(source, lines, ('components',))}: 'components' must map component names to "
                          f"their settings")
    built = {}
    for name, cfg in comps.items():
        if name not in COMPONENTS:
            raise ConfigError(f"{_where(source, lines, ('components', name))}: unknown component {name!r}; "
                              f"known: {', '.join(ORDER)}")
        cfg = cfg or {}
        if not isinstance(cfg, dict):
            raise ConfigError(f"{_where(source, lines, ('components', name))}: {name} takes a mapping of fields")
        try:
            built[name] = COMPONENTS[name](**cfg)
        except ConfigError as e:
            path = ("components", name) + _field_path(str(e), cfg)
            raise ConfigError(f"{_where(source, lines, path)}: {e}") from None
    for name in built:
        for need in NEEDS.get(name, []):
            if need not in built:
                raise ConfigError(f"{_where(source, lines, ('components', name))}: {name} needs {need} in the "
                                  f"pipeline")
    ordered = {n: built[n] for n in ORDER if n in built}
    if "InfraValidator" in ordered:  # serve the candidate with the serve-time check the Pusher will push
        infra, pusher = ordered["InfraValidator"].config, ordered.get("Pusher")
        for key, off in (("schema_check", "off"), ("range_slack", 0.0)):
            if infra.get(key) is None:
                infra[key] = pusher.config[key] if pusher is not None else off
    runner = raw.get("runner") or {}
    if not isinstance(runner, dict):
        raise ConfigError(f"{_where(source, lines, ('runner',))}: 'runner' must be a mapping like {{backend: ray}}")
    for key in runner:
        if key not in RUNNER_FIELDS:
            raise ConfigError(f"{_where(source, lines, ('runner', key))}: runner: unknown field {key!r}; "
                              f"known: {sorted(RUNNER_FIELDS)}")
    if runner.get("backend", "local") not in ("local", "ray"):
        raise ConfigError(f"{_where(source, lines, ('runner', 'backend'))}: runner.backend: 'local' or 'ray', "
                          f"got {runner['backend']!r}")
    base = Path(base_dir if base_dir is not None else raw.get("base_dir", "."))
    root = base / raw.get("root", f"out/pipeline_{raw['pipeline']}")
    return PipelineConfig(str(raw["pipeline"]), root, base, ordered, source, lines, runner)


def _field_path(message, cfg) -> tuple:
    """The configured field an error message is about, as a key path (('thresholds', 'f1')),
    from the names the message quotes or prefixes; () when none matches."""
    names = re.findall(r"'([A-Za-z_][\w]*)'", message) + re.findall(r"([A-Za-z_]\w*)[.:]", message)
    for field in names:
        if field in cfg:
            inner = cfg[field]
            if isinstance(inner, dict):
                for sub in names:
                    if sub in inner:
                        return (field, sub)
            return (field,)
    return ()


@dataclass
class Artifact:
    id: int
    type: str
    path: Path
    properties: dict
    sha256: str


def _artifact(row) -> Artifact:
    return Artifact(row["id"], row["type"], Path(row["uri"]), row["properties"], row["sha256"])


class Context:
    """What a component may use of the run: paths, the store, the run id, the clock."""

    def __init__(self, config: PipelineConfig, store: MetadataStore, run_id: int, now=None):
        self.config, self.store, self.run_id = config, store, run_id
        self.pipeline = config.name
        self._now = now

    def resolve(self, p) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.config.base_dir / p

    def now(self):
        return time.time() if self._now is None else self._now

    def schema_version(self, content: str) -> int:
        """The version number of this schema content in this pipeline (new content: next number)."""
        h = hashlib.sha256(content.encode()).hexdigest()
        rows = self.store.db.execute(
            "SELECT a.properties FROM artifacts a JOIN events v ON v.artifact_id = a.id AND v.kind = 'output' "
            "JOIN executions e ON e.id = v.execution_id JOIN runs r ON r.id = e.run_id "
            "WHERE a.type = 'Schema' AND r.pipeline = ? ORDER BY a.id", (self.pipeline,)).fetchall()
        seen = {}
        for r in rows:
            p = json.loads(r["properties"])
            seen.setdefault(p.get("content_sha256"), p.get("version"))
        self._schema_sha = h
        return seen.get(h) or (max([v for v in seen.values() if v] or [0]) + 1)


@dataclass
class RunResult:
    run_id: int
    status: str
    exit_code: int
    reasons: list
    report: Path | None
    executions: list


def _git_commit(where: Path):
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _code_artifact(config: PipelineConfig, store, now):
    """The code that makes the model: the config file, the model function's module, the
    pipeline package, and the git commit of the checkout."""
    files = {}
    if config.source:
        files["config"] = config.source
    trainer = config.components.get("Trainer")
    fn = (trainer.model or {}).get("fn") if trainer else None
    if fn:
        import importlib.util

        spec = importlib.util.find_spec(fn.split(":")[0])
        if spec and spec.origin:
            files["model_fn"] = spec.origin
    props = {"files": {k: {"path": v, "sha256": file_sha256(v)} for k, v in files.items()},
             "pipeline_code": _code_hash(), "git_commit": _git_commit(Path.cwd())}
    h = hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()
    uri = config.source or str(Path(__file__).parent)
    return Artifact(store.add_artifact("Code", uri, h, props, now=now), "Code", Path(uri), props, h)


def _cache_key(name, comp, inputs, extra):
    payload = {"component": name, "config": comp.config, "inputs": {k: (a.sha256 if a else None)
                                                                     for k, a in sorted(inputs.items())},
               "extra": extra, "code": _code_hash()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _inputs_for(comp, produced: dict, store, pipeline):
    inputs = {}
    for key, _type in comp.INPUTS.items():
        name = key.rstrip("?")
        if not comp.uses_input(name):
            continue
        if name == "baseline":
            cand = produced.get("model")
            row = store.last_blessed_model(pipeline, exclude_sha=cand.sha256 if cand else None)
            inputs[name] = None if row is None else _artifact(row)
        elif name in produced:
            inputs[name] = produced[name]
        elif key.endswith("?"):
            inputs[name] = None
        else:
            raise ConfigError(f"{type(comp).__name__}: needs an input {name!r} that no earlier component made")
    return inputs


def run_pipeline(config, now=None, log=print, report=True, backend=None) -> RunResult:
    """Run the pipeline once; returns a RunResult (status, exit code, reasons, report path).
    `backend`: an entered RayBackend (components as Ray tasks); None: what the config's `runner`
    says (local by default; `runner: {backend: ray}` starts Ray for this run and stops it)."""
    if not isinstance(config, PipelineConfig):
        config = load_config(config)
    if backend is None:
        backend = backend_from(config.runner)
        if backend is not None:
            with backend:
                return run_pipeline(config, now, log, report, backend)
    config.root.mkdir(parents=True, exist_ok=True)
    store = MetadataStore(config.root / "metadata.sqlite")
    try:
        return _run(config, store, now, log, report, backend)
    finally:
        store.close()


def _run(config, store, now, log, report, backend=None):
    config_hash = (file_sha256(config.source) if config.source else
                   hashlib.sha256(json.dumps({n: c.config for n, c in config.components.items()}, sort_keys=True,
                                             default=str).encode()).hexdigest())
    run_id = store.start_run(config.name, config_hash, _code_hash(), now=now)
    ctx = Context(config, store, run_id, now)
    produced = {"code": _code_artifact(config, store, now)}
    status, reasons, records = "blessed", [], []
    try:
        for name, comp in config.components.items():
            inputs = _inputs_for(comp, produced, store, config.name)
            extra = comp.cache_extra(ctx, inputs)
            key = _cache_key(name, comp, inputs, extra)
            ex = store.start_execution(run_id, name, comp.config, key if comp.cacheable else None, now=now)
            for k, a in inputs.items():
                if a is not None:
                    store.link(ex, a.id, "input", k)
            hit = store.cached_execution(key) if comp.cacheable else None
            if hit is not None:
                prev, outs = hit
                outputs = {}
                for k, row in outs.items():
                    store.link(ex, row["id"], "output", k)
                    outputs[k] = _artifact(row)
                store.finish_execution(ex, "complete", cached_from=prev["id"], now=now)
                log(f"[{name}] unchanged inputs and config: reusing execution {prev['id']} (cached)")
            else:
                t0 = time.perf_counter()
                out = config.root / "artifacts" / name / str(ex)
                out.mkdir(parents=True, exist_ok=True)
                remote = backend is not None and backend.runs_remotely(comp)
                try:
                    results = backend.run(comp, ctx, inputs, out) if remote else comp.run(ctx, inputs, out)
                except Exception as e:
                    store.finish_execution(ex, "failed", message=f"{type(e).__name__}: {e}", now=now)
                    raise
                outputs = {}
                for k, o in results.items():
                    props = dict(o.properties)
                    if o.type == "Schema":
                        props["content_sha256"] = ctx._schema_sha
                    sha = tree_sha256(o.path)
                    aid = store.add_artifact(o.type, o.path, sha, props, now=now)
                    store.link(ex, aid, "output", k)
                    outputs[k] = Artifact(aid, o.type, Path(o.path), props, sha)
                store.finish_execution(ex, "complete", now=now)
                log(f"[{name}] done in {time.perf_counter() - t0:.1f} s" + (" (a Ray task)" if remote else ""))
            records.append({"component": name, "execution": ex, "cached": hit is not None,
                            "backend": "cache" if hit is not None else ("ray" if remote else "local"),
                            "outputs": {k: a.id for k, a in outputs.items()}})
            produced.update(outputs)
            if name == "Evaluator":
                e = outputs["evaluation"]
                store.add_blessing(produced["model"].id, config.name, e.properties["blessed"],
                                   e.properties["reasons"], run_id=run_id, now=now)
            decision = comp.gate({k: Output(a.type, a.path, a.properties) for k, a in outputs.items()})
            if decision is not None:
                status, reasons = decision
                log(f"[{name}] {status}: " + "; ".join(reasons[:5]))
                break
    except Exception as e:  # recorded, reported, and answered with exit code 1
        status, reasons = "failed", [f"{type(e).__name__}: {e}"]
        log(f"failed: {reasons[0]}")
    store.finish_run(run_id, status, "; ".join(reasons)[:4000] or None, now=now)
    report_path = None
    if report:
        from .report import write_report

        try:
            report_path = write_report(store, config, run_id, produced, status, reasons, records)
            log(f"report: {report_path}")
        except Exception as e:  # a broken report must not hide the run's outcome
            log(f"report failed: {type(e).__name__}: {e}")
    return RunResult(run_id, status, EXIT[status], reasons, report_path, records)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_duration(text) -> float:
    """Seconds in '30s', '5m', '2h', '1d'.

    >>> parse_duration("1d"), parse_duration("90s")
    (86400.0, 90.0)
    """
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"--every: {text!r} is not a duration like 30s, 5m, 2h or 1d")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _snapshot(folder: Path):
    return {(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir() if p.is_file()}


def watch(config, folder=None, every=None, max_runs=None, poll=2.0, log=print, sleep=time.sleep,
          clock=time.monotonic, backend=None):
    """Continuous training: with `folder`, run when its files change (a new span arrives; no
    change, no run); with `every` (seconds), run on that period (a run with no new data reuses
    every step from the cache and pushes nothing). Stops after `max_runs` runs (None: forever).
    `sleep` and `clock` are injectable (tests); `backend` as in `run_pipeline`, started once for
    all the runs. Returns the list of RunResults."""
    if folder is None and every is None:
        raise ValueError("watch: give a folder to watch, a period (every), or both")
    if not isinstance(config, PipelineConfig):
        config = load_config(config)
    if backend is None:
        backend = backend_from(config.runner)
        if backend is not None:
            with backend:
                return watch(config, folder, every, max_runs, poll, log, sleep, clock, backend)
    results, seen = [], None
    last = None
    while max_runs is None or len(results) < max_runs:
        due = False
        if folder is not None:
            snap = _snapshot(Path(folder))
            due = snap != seen
            seen = snap
        if every is not None and (last is None or clock() - last >= every):
            due = True
        if due:
            last = clock()
            results.append(run_pipeline(config, log=log, backend=backend))
            log(f"run {results[-1].run_id}: {results[-1].status}")
            continue
        wait = poll if every is None else max(0.0, every - (clock() - last))
        sleep(min(wait, poll) if folder is not None else wait)
    return results
