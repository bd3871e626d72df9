"""The pipeline's side of the model server: pushing versions into a TF Serving model base path,
moving the `canary` and `stable` labels, and infra-validating a candidate against the real
server over TF Serving's REST API on a loopback port.

Layout (TF Serving's): `BASE/<model>/<version>/` holds a saved neurona model folder. The labels
live in `BASE/<model>/labels.json` ({"stable": 3, "canary": 4}) and, for the server, in
`BASE/models.json`, the `--model-config` file of `neurona serve` (its JSON form of TF Serving's
model_config_list: per model its `base_path`, `model_version_policy: {specific: {versions}}`
naming the labelled versions, and `version_labels`); the server re-reads it and moves labels. Both are written atomically (a temporary file renamed
into place); a version folder is copied under a hidden name and renamed into place, so the
server's poller never sees half a model.
May import: json, os, shutil, signal, socket, subprocess, sys, time, numpy, requests,
neurona.pipeline.sources, neurona.pipeline.training, neurona.pipeline.schema.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .sources import tree_sha256
from . import training as tr

LABELS_FILE = "labels.json"
MODELS_CONFIG = "models.json"


def _atomic_text(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def versions(base, model_name) -> list[int]:
    """The integer version folders under BASE/<model>, sorted."""
    d = Path(base) / model_name
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit())


def read_labels(base, model_name) -> dict:
    p = Path(base) / model_name / LABELS_FILE
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def models_config(base) -> dict:
    """The server's `--model-config` (neurona serve's JSON/YAML mirror of TF Serving's
    model_config_list) for every model folder under `base`: each model serves the versions its
    labels point at, with those labels.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "m" / "1").mkdir(parents=True)
    >>> _ = (d / "m" / "labels.json").write_text('{"stable": 1, "canary": 1}')
    >>> cfg = models_config(d)["model_config_list"][0]
    >>> cfg["name"], cfg["model_version_policy"], cfg["version_labels"]
    ('m', {'specific': {'versions': [1]}}, {'canary': 1, 'stable': 1})
    """
    base = Path(base)
    out = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        labels = read_labels(base, d.name)
        served = sorted(set(labels.values())) or versions(base, d.name)[-1:]
        if not served:
            continue
        out.append({"name": d.name, "base_path": str(d.resolve()),
                    "model_version_policy": {"specific": {"versions": served}},
                    "version_labels": dict(sorted(labels.items()))})
    return {"model_config_list": out}


def write_labels(base, model_name, labels: dict):
    base = Path(base)
    _atomic_text(base / model_name / LABELS_FILE, json.dumps(labels, indent=1, sort_keys=True))
    _atomic_text(base / MODELS_CONFIG, json.dumps(models_config(base), indent=1))


def push_model(model_dir, base, model_name, store=None, model_artifact_id=None, run_id=None, now=None) -> dict:
    """Copy `model_dir` to BASE/<model>/<next version>/ atomically and point `canary` at it
    (`stable` too when there is no stable version yet). A model whose content equals the newest
    version's is not pushed again."""
    base, model_dir = Path(base), Path(model_dir)
    target_dir = base / model_name
    target_dir.mkdir(parents=True, exist_ok=True)
    existing = versions(base, model_name)
    sha = tree_sha256(model_dir)
    if existing and tree_sha256(target_dir / str(existing[-1])) == sha:
        return {"pushed": False, "version": existing[-1], "path": str(target_dir / str(existing[-1])),
                "sha256": sha, "labels": read_labels(base, model_name),
                "message": f"version {existing[-1]} already holds this model; nothing pushed"}
    version = (existing[-1] if existing else 0) + 1
    tmp = Path(tempfile.mkdtemp(prefix=f".push-{version}-", dir=target_dir))
    try:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        os.rename(tmp, target_dir / str(version))  # atomic: the server sees all of it or nothing
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    labels = read_labels(base, model_name)
    moved = {"canary": version}
    if "stable" not in labels:
        moved["stable"] = version  # a first version has nothing to be compared against
    labels.update(moved)
    write_labels(base, model_name, labels)
    if store is not None:
        store.add_push(model_name, version, model_artifact_id, base, run_id=run_id, now=now)
        for label, v in moved.items():
            store.move_label(model_name, label, v, reason="push", now=now)
    return {"pushed": True, "version": version, "path": str(target_dir / str(version)), "sha256": sha,
            "labels": labels, "moved": moved}


def promote(base, model_name, store=None, version=None, reason="canary passed", now=None) -> dict:
    """Move `stable` to the canary's version (or to `version`: a rollback)."""
    labels = read_labels(base, model_name)
    target = int(version if version is not None else labels.get("canary", 0))
    if target not in versions(base, model_name):
        raise ValueError(f"promote: {model_name} has no version {target} under {base} "
                         f"(versions: {versions(base, model_name)})")
    labels["stable"] = target
    write_labels(base, model_name, labels)
    if store is not None:
        store.move_label(model_name, "stable", target, reason=reason, now=now)
    return labels


# -- infra validation --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("neurona.serving") is not None


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: the server drains and exits
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stage_for_serving(model_dir, dest, schema_check, range_slack=0.0) -> Path:
    """A copy of the model folder at `dest` as it is served: with the serve-time `schema.json`
    (the training schema of its input columns; format in neurona/serving/schema_check.py)
    unless `schema_check` is 'off'."""
    from .schema import serving_schema

    dest = Path(dest)
    shutil.copytree(model_dir, dest, dirs_exist_ok=True)
    if schema_check != "off":
        info = tr.load_transform(model_dir)
        spec = serving_schema(info["schema"], info["input_features"], schema_check, range_slack)
        _atomic_text(dest / "schema.json", json.dumps(spec, indent=1))
    return dest


def infra_validate(model_dir: Path, frame: dict, model_name: str, golden_size: int, timeout: float, atol: float,
                   command: list, out: Path, schema_check="off", range_slack=0.0) -> dict:
    """Start the server on a copy of the candidate, wait until the model is AVAILABLE, send the
    golden set and compare with `predict`, send a malformed request (expect a 4xx naming the
    problem), check the server still answers. Returns {"passed", "reasons", "checks"}."""
    import requests

    if command[:3] == ["{python}", "-m", "neurona.serving"] and not serving_available():
        return {"passed": False, "checks": [], "reasons": ["InfraValidator: neurona.serving is not installed "
                                                           "(the model server of issue 16); cannot serve the model"]}
    base = out / "serve_base"
    stage_for_serving(model_dir, base / model_name / "1", schema_check, range_slack)
    port = free_port()
    argv = [a.replace("{python}", sys.executable) for a in command] + [
        "--model-base-path", str(base), "--rest-port", str(port), "--grpc-port", "-1", "--host", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}/v1/models/{model_name}"
    http = requests.Session()
    http.trust_env = False  # loopback only: never through a proxy
    checks, reasons = [], []
    log = open(out / "server.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline, ready = time.monotonic() + timeout, False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = http.get(url, timeout=2)
                states = [v.get("state") for v in r.json().get("model_version_status", [])] if r.ok else []
                if "AVAILABLE" in states:
                    ready = True
                    break
            except (requests.ConnectionError, requests.Timeout, ValueError):
                pass
            time.sleep(0.3)
        checks.append({"check": "model AVAILABLE", "passed": ready})
        if not ready:
            tail = (out / "server.log").read_bytes()[-2000:].decode(errors="replace")
            reasons.append(f"InfraValidator: the server did not report {model_name} AVAILABLE within {timeout:.0f} s "
                           f"(exit code {proc.poll()}); server log tail: {tail}")
            return {"passed": False, "checks": checks, "reasons": reasons}
        info = tr.load_transform(model_dir)
        x = tr.encode_inputs({k: v[:golden_size] for k, v in frame.items()}, info)
        want, _ = tr.predict_proba(model_dir, {k: v[:golden_size] for k, v in frame.items()})
        r = http.post(f"{url}:predict", json={"instances": x.tolist()}, timeout=30)
        got = np.asarray(r.json().get("predictions", []), dtype=np.float64) if r.ok else None
        ok = got is not None and got.shape == want.shape and np.allclose(got, want, atol=atol)
        err = float(np.abs(got - want).max()) if ok or (got is not None and got.shape == want.shape) else None
        checks.append({"check": f"golden set of {len(x)} predictions equal predict (atol {atol})", "passed": ok,
                       "max_abs_error": err, "status": r.status_code})
        if not ok:
            reasons.append(f"InfraValidator: golden-set predictions differ from predict (HTTP {r.status_code}, "
                           f"max |error| {err}): {r.text[:300]}")
        r = http.post(f"{url}/versions/1:predict", json={"instances": x[:1].tolist()}, timeout=30)
        checks.append({"check": "canary request to version 1", "passed": r.ok, "status": r.status_code})
        if not r.ok:
            reasons.append(f"InfraValidator: a canary request to version 1 failed: HTTP {r.status_code} {r.text[:300]}")
        bad = http.post(f"{url}:predict", json={"instances": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]}, timeout=30)
        named = 400 <= bad.status_code < 500 and "error" in bad.text
        checks.append({"check": "malformed request answered 4xx with an error", "passed": named,
                       "status": bad.status_code})
        if not named:
            reasons.append(f"InfraValidator: a malformed request got HTTP {bad.status_code}, expected a 4xx "
                           f"with an error: {bad.text[:300]}")
        alive = http.get(url, timeout=5).ok
        checks.append({"check": "server still answers", "passed": alive})
        if not alive:
            reasons.append("InfraValidator: the server stopped answering after the canary requests")
        return {"passed": not reasons, "checks": checks, "reasons": reasons, "port": port}
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
