"""A Ray Serve deployment of a saved neurona model, for a cluster: the same serving pieces as
`neurona serve` (`LoadedVersion`: signature checks and `predict_step`; TF Serving's JSON body and
answer), with Ray Serve doing the replication, routing and dynamic batching (`@serve.batch`).

    import ray
    from ray import serve
    from neurona.serving.ray_serve import neurona_deployment
    ray.init()
    serve.run(neurona_deployment("models/fashion/2", num_replicas=2), route_prefix="/fashion")
    # curl -d '{"instances": [...]}' http://127.0.0.1:8000/fashion   ->  {"predictions": [...]}

Needs `ray[serve]` (not part of the `serving` extra: Ray is large).
May import: ray (lazily), starlette, numpy, neurona.models, neurona.serving.repository,
neurona.serving.rest, neurona.serving.protocol.
"""
from __future__ import annotations

import numpy as np


def neurona_deployment(model_path, name="neurona", num_replicas=1, max_batch_size=32, batch_wait_timeout_s=0.002):
    """A Ray Serve application (a bound deployment) serving the model folder `model_path` (TF Serving row or
    columnar JSON in, `predictions`/`outputs` out; 4xx `{"error"}` on bad input). Requests are
    batched across callers by `@serve.batch`, up to `max_batch_size` requests per prediction."""
    from ray import serve
    from starlette.responses import Response

    from . import protocol as P
    from .rest import tf_inputs, tf_response

    @serve.deployment(name=name, num_replicas=num_replicas)
    class NeuronaModel:
        def __init__(self, path):
            from ..models import load_model
            from .repository import LoadedVersion

            # batching=None: one direct prediction per Ray batch; Ray Serve queues the requests
            self.version = LoadedVersion(name, 1, path, load_model(path, compile=False), None, max_rows=1024)
            self.version.warm_up()

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s)
        async def _predict(self, requests):
            """One prediction for a list of requests (each a list of arrays in signature order)."""
            sizes = [r[0].shape[0] for r in requests]
            outs = self.version.predict([np.concatenate(parts) for parts in zip(*requests)])
            bounds = np.cumsum([0, *sizes])
            return [[o[a:b] for o in outs] for a, b in zip(bounds[:-1], bounds[1:])]

        async def __call__(self, request):
            try:
                body = P.parse_json(await request.body())
                arrays, rows = tf_inputs(body, self.version.signature)
                xs = self.version.signature.check(arrays, self.version.max_rows, strict_dtype=False)
            except P.ServingError as e:
                return Response(P.dump_json({"error": str(e)}), status_code=e.http_status,
                                media_type="application/json")
            outs = await self._predict(xs)
            answer = tf_response(dict(zip(self.version.signature.output_names, outs)), rows)
            return Response(P.dump_json(answer), media_type="application/json")

    return NeuronaModel.bind(str(model_path))
