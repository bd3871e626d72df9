"""The docs stand alone: every relative link, every cited file and every command's script in
README.md and docs/*.md exists in the repository, no doc (nor any message of the package) sends
the reader to files outside it, and install hints are ones that work from a checkout.

A path is "cited" when it is written in backticks and looks like a file of the repository
(`examples/emoji_cnn.py`, `neurona/ops/conv.py`, `ops/conv.py`, `winograd.py`), or when a command
runs it (`python examples/x.py`, `python -m benchmarks.run`). Paths under out/, runs/, tb/ or ~ are
what the examples write, not what the repository holds.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGE_FILES = sorted(p for p in (ROOT / "neurona").rglob("*.py"))
EXAMPLE_FILES = sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))

# Files that exist only on the machine the project was developed on (the design notes, the data
# notes, the benchmark list, the style guide): a reader of the repository does not have them.
OUTSIDE = re.compile(r"\.\./shared|/work/|\bWORKLOADS\.md|\bDATA\.md|\bSTYLE\.md|\bARCHITECTURE\.md")
# neurona is not on a package index: `pip install neurona[tb]` cannot work, `pip install -e ".[tb]"`
# from a checkout does.
INDEX_INSTALL = re.compile(r"pip install\s+['\"]?neurona\b")

LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
RUN_SCRIPT = re.compile(r"python3?\s+((?:examples|benchmarks|tests)/[\w./-]+\.py)")
RUN_MODULE = re.compile(r"python3?\s+-m\s+((?:neurona|benchmarks|examples)(?:\.\w+)*)")
FILE_EXT = r"(?:py|md|svg|png|gif|txt|toml|sh|json|ipynb)"
PATHLIKE = re.compile(rf"^[\w.-]+(?:/[\w.-]+)*(?:/|\.{FILE_EXT})$")
GENERATED = ("out/", "runs/", "tb/", "~", "/", "./out", "checkpoints/")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", md.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def _resolve(doc: Path, cited: str) -> Path | None:
    """Where a cited path lives: next to the doc, at the root, inside the package, or (a bare
    file name like `winograd.py`) anywhere in the package, examples or benchmarks."""
    cited = cited.rstrip("/")
    for base in (doc.parent, ROOT, ROOT / "neurona"):
        if (base / cited).exists():
            return base / cited
    if "/" not in cited:
        for top in ("neurona", "examples", "benchmarks", "tests", "docs"):
            hits = list((ROOT / top).rglob(cited))
            if hits:
                return hits[0]
    return None


def _cited_paths(text: str) -> list[str]:
    paths = []
    for span in CODE_SPAN.findall(text):
        span = span.strip()
        if span.startswith(GENERATED) or "<" in span or not PATHLIKE.match(span):
            continue
        if re.match(r"^[A-Z][A-Z_]*/", span):  # a placeholder folder: BASE/models.json, DIR/x
            continue
        # A bare file name is a source file (`winograd.py`); bare `config.json` or `epoch_001.png`
        # name what a run writes.
        if "/" not in span and not re.search(r"\.(py|md)$", span):
            continue
        if span.startswith(".") and "/" not in span:          # a bare extension like `.png`
            continue
        paths.append(span)
    return paths


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_exist(doc):
    missing = []
    for m in LINK.finditer(doc.read_text()):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):          # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = doc if not path else (doc.parent / path)
        if not file.exists():
            missing.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            missing.append(f"{target} (no such heading)")
    assert not missing, f"{doc.relative_to(ROOT)} links to what is not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_files_exist(doc):
    text = doc.read_text()
    missing = [p for p in _cited_paths(text) if _resolve(doc, p) is None]
    missing += [s for s in RUN_SCRIPT.findall(text) if not (ROOT / s).exists()]
    for module in RUN_MODULE.findall(text):
        as_path = ROOT / Path(*module.split("."))
        if not (as_path.with_suffix(".py").exists() or (as_path / "__main__.py").exists()):
            missing.append(f"python -m {module}")
    assert not missing, f"{doc.relative_to(ROOT)} cites files that are not in the repository: {missing}"


@pytest.mark.parametrize("path", DOCS + PACKAGE_FILES + EXAMPLE_FILES,
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(path):
    text = path.read_text()
    outside = sorted({m.group(0) for m in OUTSIDE.finditer(text)})
    assert not outside, f"{path.relative_to(ROOT)} cites files outside the repository: {outside}"
    index = [text[max(0, m.start() - 5):m.end() + 8] for m in INDEX_INSTALL.finditer(text)]
    assert not index, (f"{path.relative_to(ROOT)}: neurona is not on a package index; "
                       f"write pip install -e \".[extra]\" from a checkout: {index}")


def test_the_checker_catches_what_it_should():
    """The rules above, run on a made-up doc: a test that cannot fail proves nothing."""
    doc = ROOT / "docs" / "performance.md"
    assert _resolve(doc, "examples/no_such_example.py") is None
    assert _resolve(doc, "ops/conv.py") is not None and _resolve(doc, "winograd.py") is not None
    assert _cited_paths("see `examples/a.py`, `out/b.png`, `x/<n>.png`, `.png`, `config.json`, `BASE/m.json` "
                        "and `pool.py`") == ["examples/a.py", "pool.py"]
    assert OUTSIDE.search("see ../shared/DATA.md") and not OUTSIDE.search("docs/architecture.md")
    assert INDEX_INSTALL.search("pip install 'neurona[tb]'")
    assert not INDEX_INSTALL.search('pip install -e ".[tb]"')
    assert "resnet" in _anchors(ROOT / "docs" / "cnn.md")


def test_course_map_table_matches_its_sections():
    """curso.md's summary table and each topic's "Estado" line say the same thing."""
    text = (ROOT / "docs" / "curso.md").read_text()
    table = {int(n): state.strip() for n, state in
             re.findall(r"^\| (\d+) \| [^|]+ \| ([^|]+) \|$", text, flags=re.M)}
    sections = {}
    for m in re.finditer(r"^## Tema (\d+)\b(.*?)(?=^## |\Z)", text, flags=re.M | re.S):
        state = re.search(r"\*\*Estado:\*\* (.+?)\.?$", m.group(2), flags=re.M)
        sections[int(m.group(1))] = state.group(1).strip() if state else None
    assert table and table.keys() == sections.keys(), (sorted(table), sorted(sections))
    differ = {n: (table[n], sections[n]) for n in table if table[n] != sections[n]}
    assert not differ, f"curso.md: table vs section state (topic: (table, section)): {differ}"


def test_examples_never_write_into_docs_by_default():
    """Examples write to out/ by default; committed pictures are made with an explicit --out."""
    offenders = [p.name for p in (ROOT / "examples").glob("*.py")
                 if re.search(r"^.*default\s*=.*\bdocs\b", p.read_text(), flags=re.M)]
    assert not offenders, f"examples writing into docs/ by default: {offenders}"


def test_license_matches_pyproject():
    license_text = (ROOT / "LICENSE").read_text()
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert license_text.startswith("MIT License") and "the neurona authors" in license_text
