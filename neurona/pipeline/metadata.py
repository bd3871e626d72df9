"""The pipeline's metadata store: one SQLite file (the standard library's `sqlite3`, no server).

Tables (ML Metadata's ideas, in plain SQL so any SQLite client can read them):

- `runs`: one row per pipeline run (pipeline name, config hash, code version, status, times).
- `executions`: one row per component execution in a run (its config, cache key, status,
  whether it was skipped because an identical execution's outputs were reused).
- `artifacts`: typed outputs (Examples, Statistics, Schema, Anomalies, Transform, Model,
  ModelEvaluation, InfraBlessing, PushedModel, Code, ...) with their folder, SHA-256 of their
  content and a JSON of properties.
- `events`: the lineage edges, (execution, artifact, 'input' | 'output').
- `blessings`: the Evaluator's decision per model artifact, with its reasons.
- `pushes`: each version written into a server's model base path.
- `label_history`: which version a label (`stable`, `canary`) pointed at, from when to when:
  the answer to "which model served production at time t".

`provenance_at(model_name, t)` joins them: the version serving under a label at t, the model
artifact it was pushed from, and, walking the lineage edges back, the data (with hashes) and
the code that made it.
May import: sqlite3, json, time (standard library only).
"""
from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, pipeline TEXT NOT NULL, config_hash TEXT, code_version TEXT,
    status TEXT NOT NULL, message TEXT, started REAL NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id), component TEXT NOT NULL,
    config TEXT, cache_key TEXT, status TEXT NOT NULL, cached_from INTEGER, message TEXT,
    started REAL NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY, type TEXT NOT NULL, uri TEXT NOT NULL, sha256 TEXT,
    properties TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    kind TEXT NOT NULL CHECK (kind IN ('input', 'output')), name TEXT,
    PRIMARY KEY (execution_id, artifact_id, kind, name));
CREATE TABLE IF NOT EXISTS blessings (
    id INTEGER PRIMARY KEY, model_artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    run_id INTEGER REFERENCES runs(id), pipeline TEXT NOT NULL, blessed INTEGER NOT NULL,
    reasons TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pushes (
    id INTEGER PRIMARY KEY, model_name TEXT NOT NULL, version INTEGER NOT NULL,
    model_artifact_id INTEGER REFERENCES artifacts(id), run_id INTEGER REFERENCES runs(id),
    base_path TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS label_history (
    id INTEGER PRIMARY KEY, model_name TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL,
    started REAL NOT NULL, ended REAL, reason TEXT);
CREATE INDEX IF NOT EXISTS events_artifact ON events(artifact_id);
CREATE INDEX IF NOT EXISTS executions_key ON executions(cache_key, status);
"""


def iso(t: float | None) -> str | None:
    """A POSIX time as an ISO-8601 UTC string (None stays None).

    >>> iso(0.0)
    '1970-01-01T00:00:00+00:00'
    """
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="seconds")


def parse_time(t) -> float:
    """Accept a POSIX time or an ISO-8601 string (naive strings are UTC).

    >>> parse_time("1970-01-02T00:00:00")
    86400.0
    """
    if isinstance(t, (int, float)):
        return float(t)
    d = datetime.fromisoformat(str(t))
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


class MetadataStore:
    """Runs, artifacts, lineage, blessings, pushes and serving intervals in one SQLite file.

    >>> store = MetadataStore(":memory:")
    >>> run = store.start_run("demo", now=100.0)
    >>> ex = store.start_execution(run, "ExampleGen", {"input": "data"}, now=100.0)
    >>> data = store.add_artifact("Examples", "/tmp/examples", "ab" * 32, {"spans": [1]}, now=101.0)
    >>> store.link(ex, data, "output", "examples")
    >>> store.finish_execution(ex, "complete", now=102.0); store.finish_run(run, "blessed", now=103.0)
    >>> store.artifact(data)["properties"]
    {'spans': [1]}
    """

    def __init__(self, path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # one connection per store; the runner is single-threaded and autocommit keeps every
        # recorded fact on disk at once (a crashed run still shows how far it went)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(_SCHEMA)

    def close(self):
        self.db.close()

    @contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @staticmethod
    def _now(now):
        return time.time() if now is None else float(now)

    # -- runs and executions -------------------------------------------------------------------
    def start_run(self, pipeline, config_hash=None, code_version=None, now=None) -> int:
        cur = self.db.execute("INSERT INTO runs (pipeline, config_hash, code_version, status, started) "
                              "VALUES (?, ?, ?, 'running', ?)", (pipeline, config_hash, code_version, self._now(now)))
        return cur.lastrowid

    def finish_run(self, run_id, status, message=None, now=None):
        self.db.execute("UPDATE runs SET status = ?, message = ?, finished = ? WHERE id = ?",
                        (status, message, self._now(now), run_id))

    def run(self, run_id) -> dict:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"metadata: no run {run_id}")
        return dict(row)

    def runs(self, pipeline=None) -> list[dict]:
        q, args = "SELECT * FROM runs", ()
        if pipeline is not None:
            q, args = q + " WHERE pipeline = ?", (pipeline,)
        return [dict(r) for r in self.db.execute(q + " ORDER BY id", args)]

    def start_execution(self, run_id, component, config=None, cache_key=None, now=None) -> int:
        cur = self.db.execute("INSERT INTO executions (run_id, component, config, cache_key, status, started) "
                              "VALUES (?, ?, ?, ?, 'running', ?)",
                              (run_id, component, json.dumps(config, sort_keys=True, default=str), cache_key,
                               self._now(now)))
        return cur.lastrowid

    def finish_execution(self, execution_id, status, message=None, cached_from=None, now=None):
        self.db.execute("UPDATE executions SET status = ?, message = ?, cached_from = ?, finished = ? WHERE id = ?",
                        (status, message, cached_from, self._now(now), execution_id))

    def executions(self, run_id) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM executions WHERE run_id = ? ORDER BY id", (run_id,))]

    def cached_execution(self, cache_key):
        """The latest complete execution with this cache key whose outputs still exist, or None."""
        rows = self.db.execute("SELECT * FROM executions WHERE cache_key = ? AND status = 'complete' "
                               "ORDER BY id DESC", (cache_key,)).fetchall()
        for row in rows:
            outputs = self.outputs(row["id"])
            if outputs and all(Path(a["uri"]).exists() for a in outputs.values()):
                return dict(row), outputs
        return None

    # -- artifacts and lineage -----------------------------------------------------------------
    def add_artifact(self, type_, uri, sha256=None, properties=None, now=None) -> int:
        cur = self.db.execute("INSERT INTO artifacts (type, uri, sha256, properties, created) VALUES (?, ?, ?, ?, ?)",
                              (type_, str(uri), sha256, json.dumps(properties or {}, sort_keys=True, default=str),
                               self._now(now)))
        return cur.lastrowid

    def artifact(self, artifact_id) -> dict:
        row = self.db.execute("SELECT * FROM artifacts WHERE id = ?", (artifact_id,)).fetchone()
        if row is None:
            raise KeyError(f"metadata: no artifact {artifact_id}")
        out = dict(row)
        out["properties"] = json.loads(out["properties"] or "{}")
        return out

    def link(self, execution_id, artifact_id, kind, name=None):
        self.db.execute("INSERT OR IGNORE INTO events (execution_id, artifact_id, kind, name) VALUES (?, ?, ?, ?)",
                        (execution_id, artifact_id, kind, name))

    def _events(self, execution_id, kind) -> dict:
        rows = self.db.execute("SELECT artifact_id, name FROM events WHERE execution_id = ? AND kind = ? "
                               "ORDER BY artifact_id", (execution_id, kind))
        return {r["name"]: self.artifact(r["artifact_id"]) for r in rows}

    def outputs(self, execution_id) -> dict:
        return self._events(execution_id, "output")

    def inputs(self, execution_id) -> dict:
        return self._events(execution_id, "input")

    def producer(self, artifact_id):
        """The execution that output this artifact (the first one; a cache hit links the same
        artifact as an output of the skipping execution too)."""
        row = self.db.execute("SELECT e.* FROM events v JOIN executions e ON e.id = v.execution_id "
                              "WHERE v.artifact_id = ? AND v.kind = 'output' ORDER BY e.id LIMIT 1",
                              (artifact_id,)).fetchone()
        return None if row is None else dict(row)

    def lineage(self, artifact_id) -> list[dict]:
        """Every artifact upstream of `artifact_id` (itself first), each with the component that
        made it: a breadth-first walk of the lineage edges backwards."""
        seen, order, frontier = set(), [], [artifact_id]
        while frontier:
            nxt = []
            for aid in frontier:
                if aid in seen:
                    continue
                seen.add(aid)
                art = self.artifact(aid)
                prod = self.producer(aid)
                art["component"] = None if prod is None else prod["component"]
                art["run_id"] = None if prod is None else prod["run_id"]
                order.append(art)
                if prod is not None:
                    nxt.extend(a["id"] for a in self.inputs(prod["id"]).values())
            frontier = nxt
        return order

    # -- blessings, pushes, labels -------------------------------------------------------------
    def add_blessing(self, model_artifact_id, pipeline, blessed, reasons, run_id=None, now=None) -> int:
        cur = self.db.execute("INSERT INTO blessings (model_artifact_id, run_id, pipeline, blessed, reasons, created) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (model_artifact_id, run_id, pipeline, int(bool(blessed)),
                                                            json.dumps(reasons), self._now(now)))
        return cur.lastrowid

    def last_blessed_model(self, pipeline, exclude_sha=None):
        """The newest blessed model artifact of this pipeline whose folder still exists (and whose
        content hash is not `exclude_sha`: a candidate is not its own baseline), or None."""
        rows = self.db.execute("SELECT model_artifact_id FROM blessings WHERE pipeline = ? AND blessed = 1 "
                               "ORDER BY id DESC", (pipeline,))
        for row in rows:
            art = self.artifact(row["model_artifact_id"])
            if Path(art["uri"]).exists() and (exclude_sha is None or art["sha256"] != exclude_sha):
                return art
        return None

    def blessings(self, pipeline=None) -> list[dict]:
        q, args = "SELECT * FROM blessings", ()
        if pipeline is not None:
            q, args = q + " WHERE pipeline = ?", (pipeline,)
        out = []
        for r in self.db.execute(q + " ORDER BY id", args):
            d = dict(r)
            d["reasons"] = json.loads(d["reasons"] or "[]")
            out.append(d)
        return out

    def add_push(self, model_name, version, model_artifact_id, base_path, run_id=None, now=None) -> int:
        cur = self.db.execute("INSERT INTO pushes (model_name, version, model_artifact_id, run_id, base_path, created) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (model_name, int(version), model_artifact_id, run_id,
                                                            str(base_path), self._now(now)))
        return cur.lastrowid

    def pushes(self, model_name=None) -> list[dict]:
        q, args = "SELECT * FROM pushes", ()
        if model_name is not None:
            q, args = q + " WHERE model_name = ?", (model_name,)
        return [dict(r) for r in self.db.execute(q + " ORDER BY id", args)]

    def move_label(self, model_name, label, version, reason=None, now=None):
        """Record that `label` points at `version` from now on (closing the previous interval)."""
        t = self._now(now)
        with self.transaction():
            self.db.execute("UPDATE label_history SET ended = ? WHERE model_name = ? AND label = ? AND ended IS NULL",
                            (t, model_name, label))
            self.db.execute("INSERT INTO label_history (model_name, label, version, started, reason) "
                            "VALUES (?, ?, ?, ?, ?)", (model_name, label, int(version), t, reason))

    def label_history(self, model_name, label=None) -> list[dict]:
        q, args = "SELECT * FROM label_history WHERE model_name = ?", (model_name,)
        if label is not None:
            q, args = q + " AND label = ?", (model_name, label)
        return [dict(r) for r in self.db.execute(q + " ORDER BY started, id", args)]

    def served_at(self, model_name, t, label="stable"):
        """The version `label` pointed at, at time `t` (POSIX or ISO string), or None."""
        t = parse_time(t)
        row = self.db.execute("SELECT version FROM label_history WHERE model_name = ? AND label = ? AND started <= ? "
                              "AND (ended IS NULL OR ended > ?) ORDER BY started DESC, id DESC LIMIT 1",
                              (model_name, label, t, t)).fetchone()
        return None if row is None else row["version"]

    def provenance_at(self, model_name, t, label="stable") -> dict | None:
        """Which data and code made the model that served under `label` at time `t`:
        {"version", "push", "model", "run", "data": [Examples artifacts], "code": [Code
        artifacts], "lineage": [every upstream artifact]} or None when nothing served then."""
        version = self.served_at(model_name, t, label)
        if version is None:
            return None
        push = self.db.execute("SELECT * FROM pushes WHERE model_name = ? AND version = ? ORDER BY id DESC LIMIT 1",
                               (model_name, version)).fetchone()
        if push is None:
            return {"version": version, "push": None, "model": None, "run": None, "data": [], "code": [],
                    "lineage": []}
        push = dict(push)
        lineage = self.lineage(push["model_artifact_id"])
        return {"version": version, "time": iso(parse_time(t)), "push": push, "model": lineage[0],
                "run": None if push["run_id"] is None else self.run(push["run_id"]),
                "data": [a for a in lineage if a["type"] == "Examples"],
                "code": [a for a in lineage if a["type"] == "Code"], "lineage": lineage}
