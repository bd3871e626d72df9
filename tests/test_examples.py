"""The examples run as a user runs them: `make demo` is examples/digits_mlp.py."""
import html
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args):
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def saved_files(stdout):
    return [Path(p) for p in re.findall(r"^saved (.+)$", stdout, re.MULTILINE)]


def test_demo_trains_digits_to_95_percent_and_saves_its_pictures(tmp_path):
    stdout = run("digits_mlp.py", "--out", str(tmp_path))
    acc = float(re.search(r"^test accuracy: ([0-9.]+)", stdout, re.MULTILINE).group(1))
    assert acc >= 0.95, stdout
    assert len(re.findall(r"^epoch ", stdout, re.MULTILINE)) == 20  # progress, once per epoch
    files = saved_files(stdout)
    assert sorted(p.name for p in files) == ["circuit_course_example.png", "circuit_sigmoid_neuron.png",
                                             "digits_training.png"]
    for p in files:
        assert p.parent == tmp_path and p.stat().st_size > 1000
        assert p.read_bytes()[:4] == b"\x89PNG"


def test_course_circuits_svg(tmp_path):
    files = saved_files(run("course_circuits.py", "--out", str(tmp_path), "--format", "svg"))
    assert len(files) == 2
    course = html.unescape(files[0].read_text())
    # f = -12 and the gradients -4, -4, 3 are printed in the picture
    for text in (">-12<", ">-4<", ">3<"):
        assert text in course
