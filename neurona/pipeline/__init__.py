"""neurona.pipeline: a continuous training pipeline (course topic 10, the production part).

Components with typed artifacts (ExampleGen, StatisticsGen, SchemaGen, ExampleValidator,
Transform, Tuner, Trainer, Evaluator, InfraValidator, Pusher) run by `run_pipeline` from a
pipeline.yaml, recorded in a SQLite metadata store (`MetadataStore`: runs, artifacts with hashes,
lineage, blessings, pushes and which version served when), with a data gate, sliced evaluation
with bootstrap intervals, pushes into `neurona serve`'s model base path, and a skew/drift monitor
over the server's request log. Command line: `python -m neurona.pipeline run pipeline.yaml`.
Heavy dependencies (optuna, pandas, prometheus-client, jinja2, matplotlib) load inside the
functions that use them: `import neurona.pipeline` stays light.
May import: neurona.pipeline.metadata, neurona.pipeline.schema, neurona.pipeline.stats,
neurona.pipeline.components, neurona.pipeline.runner, neurona.pipeline.serving_io,
neurona.pipeline.monitor.
"""
from .components import (COMPONENTS, ConfigError, Evaluator, ExampleGen, ExampleValidator, InfraValidator, Pusher,
                         SchemaGen, StatisticsGen, Trainer, Transform, Tuner)
from .metadata import MetadataStore
from .monitor import run_monitor
from .runner import EXIT, load_config, run_pipeline, watch
from .schema import ServeTimeCheck, infer_schema, load_schema, save_schema, validate_frame
from .serving_io import promote, push_model

__all__ = ["COMPONENTS", "EXIT", "ConfigError", "Evaluator", "ExampleGen", "ExampleValidator", "InfraValidator",
           "MetadataStore", "Pusher", "SchemaGen", "ServeTimeCheck", "StatisticsGen", "Trainer", "Transform", "Tuner",
           "infer_schema", "load_config", "load_schema", "promote", "push_model", "run_monitor", "run_pipeline",
           "save_schema", "validate_frame", "watch"]
