"""`python -m neurona.pipeline` (and `neurona pipeline`): the pipeline's command line.

    run PIPELINE.yaml [--watch DIR | --every 1d] [--max-runs N]   exit 0 blessed, 1 failed,
        [--ray [--address HOST:PORT]]                             2 blocked, 3 not blessed
    lineage ROOT/metadata.sqlite MODEL --at TIME [--label stable] which data and code made the
                                                                  model serving at TIME
    promote BASE MODEL [--db DB] [--version V]                    move `stable` (after the canary)
    monitor LOG --model-dir DIR [--prometheus FILE] [--slice-by COL] [--labels FILE]
                                                                  skew/drift of served traffic
May import: argparse, json, sys, neurona.pipeline.runner, neurona.pipeline.components,
neurona.pipeline.metadata, neurona.pipeline.serving_io, neurona.pipeline.monitor.
"""
from __future__ import annotations

import argparse
import json
import sys


def build_parser():
    p = argparse.ArgumentParser(prog="neurona pipeline", description="continuous training pipeline")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a pipeline.yaml")
    r.add_argument("config")
    r.add_argument("--watch", metavar="DIR", help="run again whenever the files in DIR change (new spans)")
    r.add_argument("--every", metavar="PERIOD", help="run on a period: 30s, 5m, 2h, 1d")
    r.add_argument("--max-runs", type=int, default=None, help="stop after this many runs (with --watch/--every)")
    r.add_argument("--poll", type=float, default=2.0, help="seconds between checks of --watch DIR")
    r.add_argument("--ray", action="store_true", help="run the components as Ray tasks (a local Ray unless --address)")
    r.add_argument("--address", help="the Ray cluster to connect to (implies --ray)")
    lin = sub.add_parser("lineage", help="which data and code made the model serving at a time")
    lin.add_argument("db")
    lin.add_argument("model")
    lin.add_argument("--at", required=True, help="ISO time (UTC when naive) or POSIX seconds")
    lin.add_argument("--label", default="stable")
    pr = sub.add_parser("promote", help="move the stable label to the canary version (or --version)")
    pr.add_argument("base")
    pr.add_argument("model")
    pr.add_argument("--db", help="the pipeline's metadata.sqlite, to record the move")
    pr.add_argument("--version", type=int)
    m = sub.add_parser("monitor", help="skew and drift of served traffic against the training statistics")
    m.add_argument("log", nargs="+", help="the server's JSON-lines request log(s)")
    m.add_argument("--model-dir", required=True, help="the served model folder (with transform.json)")
    m.add_argument("--statistics", help="training statistics.json (default: from the model's transform.json schema "
                                        "bins, computed on --training-data)")
    m.add_argument("--training-data", help="the training examples (.npz) the model was trained on")
    m.add_argument("--slice-by", action="append", default=[], help="a logged feature to slice by (repeatable)")
    m.add_argument("--labels", help="JSON lines {request_id, label} arriving later: live quality per slice")
    m.add_argument("--prometheus", help="write the gauges in Prometheus' text format to this file")
    m.add_argument("--json", dest="json_out", help="write the full result as JSON")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from .components import ConfigError
        from .runner import EXIT, load_config, parse_duration, run_pipeline, watch

        try:
            config = load_config(args.config)
        except (ConfigError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT["failed"]
        if args.ray or args.address:
            config.runner = {**(config.runner or {}), "backend": "ray",
                             **({"address": args.address} if args.address else {})}
        if args.watch or args.every:
            try:
                every = parse_duration(args.every) if args.every else None
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return EXIT["failed"]
            results = watch(config, folder=args.watch, every=every, max_runs=args.max_runs, poll=args.poll)
            return results[-1].exit_code if results else 0
        result = run_pipeline(config)
        print(f"run {result.run_id}: {result.status}" + (f" ({'; '.join(result.reasons[:3])})" if result.reasons else ""))
        return result.exit_code
    if args.command == "lineage":
        from .metadata import MetadataStore

        store = MetadataStore(args.db)
        prov = store.provenance_at(args.model, args.at, args.label)
        if prov is None:
            print(f"no version of {args.model} was labelled {args.label} at {args.at}", file=sys.stderr)
            return 1
        print(json.dumps({"version": prov["version"], "time": prov.get("time"), "run": prov["run"],
                          "model": {k: prov["model"][k] for k in ("id", "uri", "sha256")} if prov["model"] else None,
                          "data": [{"uri": a["uri"], "sha256": a["sha256"], "sources": a["properties"].get("sources")}
                                   for a in prov["data"]],
                          "code": [{"sha256": a["sha256"], **a["properties"]} for a in prov["code"]]}, indent=1))
        return 0
    if args.command == "promote":
        from .metadata import MetadataStore
        from .serving_io import promote

        store = MetadataStore(args.db) if args.db else None
        labels = promote(args.base, args.model, store, version=args.version,
                         reason="rollback" if args.version else "canary passed")
        print(json.dumps(labels))
        return 0
    if args.command == "monitor":
        from .monitor import main_monitor

        return main_monitor(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
