"""The meta-learning examples' own code: the sinusoid script end to end (tiny), and the learned
optimiser's figure (a diverging baseline is labelled and leaves the top of its panel)."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_maml_sinusoid_example_writes_its_picture_and_held_out_errors(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "maml_sinusoid.py"), "--meta-steps", "3",
                          "--meta-batch", "2", "--test-tasks", "4", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "maml_sinusoid"
    assert (folder / "sinusoid.png").stat().st_size > 1000
    record = json.loads((folder / "results.json").read_text())
    assert set(record["results"]) == {"MAML", "pretrained"}
    for rows in record["results"].values():
        assert set(rows) == {"0 steps", "1 steps", "10 steps"}
        assert all(math.isfinite(r["mse"]) and r["mse"] >= 0 for r in rows.values())
    assert len(record["curves"]["MAML"]) == 3 and record["test_tasks"] == 4
    assert record["fine_tune_rate"] in (0.01, 0.003, 0.001)


def test_learned_optimizer_plot_caps_the_axis_and_names_a_diverging_baseline(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    mod = _load("learned_optimizer")
    saved = []
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, path, **kw: saved.append(fig))
    curves = {"LSTM (learned)": [4.0, 2.0, 1.0], "SGD (lr=1)": [4.0, 1e3, 1e30], "Adam (lr=0.1)": [4.0, 3.0, 0.5]}
    mod.plot({"quadratic": curves}, tmp_path / "c.png")
    ax = saved[0].axes[0]
    assert ax.get_ylim()[1] == 40.0  # 10x the starting loss, not 1e30
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["LSTM (learned)", "SGD (lr=1) - diverges (off the top)", "Adam (lr=0.1)"]
