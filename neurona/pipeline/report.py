"""The HTML report of one pipeline run: the decision and why, the steps (run or cached), the
data (spans, anomalies, drift, distributions of the newest span against the previous one), the
slice metrics with their confidence intervals against the baseline, and the push. One file,
pictures embedded as base64 PNGs (matplotlib, Agg backend), viewable offline.
May import: base64, io, json, jinja2, matplotlib (Agg), numpy, neurona.pipeline.components,
neurona.pipeline.metadata.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from .components import read_json

_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ name }} run {{ run_id }}: {{ status }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4} .bad{color:#b00020;font-weight:600} .ok{color:#0a7a2f;font-weight:600} .warn{color:#a66b00}
.decision{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:15px}
.blessed{background:#e6f4ea} .blocked,.refused,.failed{background:#fdecea}
img{max-width:100%;border:1px solid #eee} code{background:#f4f4f4;padding:1px 4px}
</style></head><body>
<h1>Pipeline <code>{{ name }}</code> — run {{ run_id }}</h1>
<div class="decision {{ status }}"><b>Decision: {{ status_text }}</b>
{% if reasons %}<ul>{% for r in reasons %}<li>{{ r }}</li>{% endfor %}</ul>{% endif %}</div>
<p>Started {{ started }} · code {{ code }} · metadata <code>{{ db }}</code></p>
<h2>Steps</h2>
<table><tr><th>component</th><th>execution</th><th>ran</th><th>outputs</th></tr>
{% for r in records %}<tr><td>{{ r.component }}</td><td>{{ r.execution }}</td>
<td>{% if r.cached %}skipped (cached){% else %}ran{% endif %}</td><td>{{ r.outputs }}</td></tr>{% endfor %}
</table>
{% if data %}<h2>Data</h2>
<p>Spans in the training window: {{ data.spans }}; newest span <b>{{ data.current_span }}</b>
{% if data.previous_span %}(compared with span {{ data.previous_span }}){% endif %};
rows: train {{ data.rows.train }}, eval {{ data.rows.eval }}.</p>
<table><tr><th>span</th><th>file</th><th>rows</th><th>sha256</th></tr>
{% for s in data.sources %}<tr><td>{{ s.span }}</td><td>{{ s.path }}</td><td>{{ s.rows }}</td><td><code>{{ s.sha256[:16] }}</code></td></tr>{% endfor %}
</table>{% endif %}
{% if anomalies is not none %}<h2>Anomalies (schema version {{ schema_version }})</h2>
{% if anomalies %}<table><tr><th>split</th><th>feature</th><th>kind</th><th>severity</th><th>message</th></tr>
{% for a in anomalies %}<tr><td>{{ a.split }}</td><td>{{ a.feature }}</td><td>{{ a.kind }}</td>
<td class="{{ 'bad' if a.severity == 'error' else 'warn' }}">{{ a.severity }}</td><td>{{ a.message }}</td></tr>{% endfor %}
</table>{% else %}<p class="ok">No anomalies.</p>{% endif %}
<h2>Drift: newest span against the previous one</h2>
{% if drift %}<table><tr><th>feature</th><th>metric</th><th>value</th><th>threshold</th><th>result</th></tr>
{% for d in drift %}<tr><td>{{ d.feature }}</td><td>{{ d.metric }}</td><td>{{ '%.4f' % d.value }}</td><td>{{ d.threshold }}</td>
<td class="{{ ('bad' if d.severity == 'error' else 'warn') if d.anomaly else 'ok' }}">{{ (d.severity or '') + ' drift' if d.anomaly else 'within threshold' }}</td></tr>{% endfor %}
</table>{% else %}<p>No drift checks (one span only, or none configured in the schema).</p>{% endif %}
{% if dist_png %}<p>Distributions (schema bins; bars: previous span, line: newest span):</p><img src="data:image/png;base64,{{ dist_png }}">{% endif %}
{% endif %}
{% if evaluation %}<h2>Model evaluation</h2>
<p>Bootstrap: {{ evaluation.bootstrap }} resamples, {{ (evaluation.confidence * 100)|round(0)|int }}% intervals;
slices under {{ evaluation.min_slice_size }} examples are reported but not judged.
Baseline: {{ evaluation.baseline_uri or 'none (no earlier blessed model)' }}.</p>
{% if slice_png %}<img src="data:image/png;base64,{{ slice_png }}">{% endif %}
<table><tr><th>slice</th><th>n</th>{% for m in metrics %}<th>{{ m }} [interval]</th><th>change vs baseline [interval]</th>{% endfor %}</tr>
{% for key, e in slices %}<tr><td>{{ key }}{% if not e.judged %} <span class="warn">(too small)</span>{% endif %}</td><td>{{ e.size }}</td>
{% for m in metrics %}{% set v = e.metrics[m] %}<td>{% if v.value is not none %}{{ '%.3f' % v.value }} [{{ '%.3f' % v.ci[0] }}, {{ '%.3f' % v.ci[1] }}]{% endif %}</td>
<td>{% if v.change is defined %}{{ '%+.3f' % v.change }} [{{ '%+.3f' % v.change_ci[0] }}, {{ '%+.3f' % v.change_ci[1] }}]{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if evaluation.missing_slices %}<p class="bad">Missing slices: {{ evaluation.missing_slices|join(', ') }}</p>{% endif %}
<h3>Checks</h3><table><tr><th>result</th><th>check</th></tr>
{% for c in evaluation.checks %}<tr><td class="{{ 'warn' if not c.judged else ('bad' if c.failed else 'ok') }}">{{ 'not judged' if not c.judged else ('FAIL' if c.failed else 'pass') }}</td><td>{{ c.message }}</td></tr>{% endfor %}
</table>{% endif %}
{% if infra %}<h2>Infra validation</h2><table>{% for c in infra.checks %}<tr><td class="{{ 'ok' if c.passed else 'bad' }}">{{ 'pass' if c.passed else 'FAIL' }}</td><td>{{ c.check }}</td></tr>{% endfor %}</table>{% endif %}
{% if push %}<h2>Push</h2><p>{% if push.pushed %}Version <b>{{ push.version }}</b> written to <code>{{ push.path }}</code>; labels now {{ push.labels }}.{% else %}{{ push.message }}{% endif %}</p>{% endif %}
</body></html>
"""

_STATUS = {"blessed": "blessed", "blocked": "BLOCKED by the data gate: nothing trained or pushed",
           "refused": "NOT blessed: the model is not pushed", "failed": "FAILED"}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def distributions_png(stats_current, stats_previous, max_features=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats = [n for n, f in stats_current["features"].items()
             if f.get("type") not in (None, "invalid") and n in stats_previous["features"]
             and stats_previous["features"][n].get("type") == f.get("type")][:max_features]
    if not feats:
        return None
    cols = min(4, len(feats))
    rows = (len(feats) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), feats):
        cur, prev = stats_current["features"][name], stats_previous["features"][name]
        if cur["type"] == "categorical":
            values = sorted(set(cur["counts"]) | set(prev["counts"]))[:20]
            pc = np.array([prev["counts"].get(v, 0) for v in values], float)
            cc = np.array([cur["counts"].get(v, 0) for v in values], float)
            x = np.arange(len(values))
            ax.bar(x, pc / max(pc.sum(), 1), color="#9bb7d4", label="previous")
            ax.plot(x, cc / max(cc.sum(), 1), "o-", color="#c0392b", label="newest")
            ax.set_xticks(x, values, rotation=45, fontsize=7)
        else:
            pc = np.array(prev["histogram"]["counts"], float)
            cc = np.array(cur["histogram"]["counts"], float)
            x = np.arange(len(pc))
            ax.bar(x, pc / max(pc.sum(), 1), color="#9bb7d4", label="previous")
            ax.plot(x, cc / max(cc.sum(), 1), "-", color="#c0392b", label="newest")
            e = prev["histogram"]["edges"]
            ax.set_xticks([1, len(pc) - 2], [f"{e[0]:.3g}", f"{e[-1]:.3g}"], fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(feats):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def slices_png(evaluation, metric="accuracy", max_slices=30):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [("overall", evaluation["overall"])] + list(evaluation["slices"].items())[:max_slices]
    items = [(k, e) for k, e in items if metric in e["metrics"] and e["metrics"][metric]["value"] is not None]
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(items)), 3.4))
    x = np.arange(len(items))
    vals = np.array([e["metrics"][metric]["value"] for _, e in items])
    lo = np.array([e["metrics"][metric]["ci"][0] for _, e in items])
    hi = np.array([e["metrics"][metric]["ci"][1] for _, e in items])
    colors = ["#2c7fb8" if e["judged"] else "#bbbbbb" for _, e in items]
    ax.bar(x, vals, color=colors, alpha=0.8, label="candidate")
    ax.errorbar(x, vals, yerr=[vals - lo, hi - vals], fmt="none", ecolor="k", capsize=3)
    base = [e["metrics"][metric].get("baseline") for _, e in items]
    if any(b is not None for b in base):
        ax.plot(x, [np.nan if b is None else b for b in base], "D", color="#e67e22", label="baseline")
    ax.set_xticks(x, [k for k, _ in items], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} per slice with intervals (grey: too small to judge)", fontsize=9)
    return _png(fig)


def write_report(store, config, run_id, produced, status, reasons, records) -> Path:
    from jinja2 import Environment, select_autoescape

    run = store.run(run_id)
    ctx = {"name": config.name, "run_id": run_id, "status": status, "status_text": _STATUS[status],
           "reasons": reasons, "records": records, "db": str(config.root / "metadata.sqlite"),
           "started": run["started"], "code": run["code_version"], "data": None, "anomalies": None,
           "drift": None, "dist_png": None, "evaluation": None, "slice_png": None, "infra": None, "push": None,
           "schema_version": None, "metrics": [], "slices": []}
    from .metadata import iso

    ctx["started"] = iso(run["started"])
    if "examples" in produced:
        ctx["data"] = produced["examples"].properties
    if "schema" in produced:
        ctx["schema_version"] = produced["schema"].properties.get("version")
    if "anomalies" in produced:
        a = read_json(Path(produced["anomalies"].path) / "anomalies.json")
        ctx["anomalies"], ctx["drift"] = a["anomalies"], a["drift"]
        st = a["statistics"]
        if "previous" in st:
            ctx["dist_png"] = distributions_png(st["current"], st["previous"])
    if "evaluation" in produced:
        e = read_json(Path(produced["evaluation"].path) / "evaluation.json")
        ctx["evaluation"] = e
        ctx["metrics"] = list(e["overall"]["metrics"])
        ctx["slices"] = [("overall", e["overall"])] + list(e["slices"].items())
        ctx["slice_png"] = slices_png(e, "accuracy" if "accuracy" in ctx["metrics"] else ctx["metrics"][0])
    if "infra" in produced:
        ctx["infra"] = read_json(Path(produced["infra"].path) / "infra.json")
    if "pushed" in produced:
        ctx["push"] = produced["pushed"].properties
    html = Environment(autoescape=select_autoescape(default=True)).from_string(_TEMPLATE).render(**ctx)
    out = config.root / "runs" / str(run_id) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    (out.parent / "summary.json").write_text(json.dumps({"run_id": run_id, "status": status, "reasons": reasons,
                                                         "records": records}, indent=1), encoding="utf-8")
    return out
