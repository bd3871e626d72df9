"""neurona.pipeline: a continuous training pipeline (course topic 10, the production part).
May import: neurona.pipeline.metadata, neurona.pipeline.stats, neurona.pipeline.schema.
"""
