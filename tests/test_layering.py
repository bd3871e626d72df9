"""The package's layering, enforced: imports point down the ranks of docs/architecture.md, each
module's docstring says what it may import ("May import: ..."), heavy optional dependencies are
never loaded by the core, and the public API of `neurona` changes only on purpose (a snapshot).

To accept a deliberate change of the public API: NEURONA_UPDATE_SNAPSHOT=1 pytest tests/test_layering.py
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "neurona"
SNAPSHOT = Path(__file__).with_name("api_snapshot.txt")

# The ranks of docs/architecture.md ("Layers of the package"), lowest first. A module may import
# its own component and components of a lower rank. Fractions order the components that share an
# integer rank where one builds on the other (saving < callbacks < models); components of rank 6
# (the applications) are siblings and never import each other.
RANKS = {
    "backend": 1,
    "tensor": 2, "autograd": 2, "creation": 2.1,
    "ops": 3, "functional": 3.1, "viz": 3.1, "__init__": 3.2,
    "nn": 4, "data": 4,
    "initializers": 4.1, "regularizers": 4.1, "constraints": 4.1, "activations": 4.1, "losses": 4.1,
    "metrics": 4.1, "layers": 4.1,
    "optim": 4.2, "optimizers": 4.3, "graph": 4.4,
    "saving": 5, "callbacks": 5.1, "models": 5.2, "datasets": 5.3, "plots": 5.3, "utils": 5.3, "compat": 5.3,
    "vision": 6, "text": 6, "rl": 6, "generative": 6, "meta": 6,
    "distributed": 7,
    "serving": 8, "pipeline": 8.1,
    "cli": 9, "__main__": 9,
}
SIBLINGS = {"vision", "text", "rl", "generative", "meta"}
# the one deliberate exception, with its reason
UPWARD = {("tensor", "ops"): "Tensor's operator sugar (x + y, x @ w, x.sum()) calls the ops, imported lazily"}
# neurona's "core" in May-import lines: a bare `neurona` stands for these
CORE = {"backend", "tensor", "autograd", "creation", "ops", "functional", "__init__"}
# optional, heavy: never imported at module level below the rank that exists to use them
HEAVY = {"ray": 7, "fastapi": 8, "uvicorn": 8, "starlette": 8, "grpc": 8, "gymnasium": 6, "ale_py": 6,
         "optuna": 8, "cupy": 99, "gensim": 6, "torch": 99, "tritonclient": 99, "prometheus_client": 8}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _component(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _imports(module: str, path: Path):
    """(imported module, line, at module level) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    top_level = {id(n) for n in tree.body}
    for stmt in tree.body:  # statements inside a module-level `if`/`try` count as module level
        if isinstance(stmt, (ast.If, ast.Try)):
            top_level.update(id(n) for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("neurona") and not node.module and node.level:
                for alias in node.names:  # `from .. import optim`: the names may be modules
                    yield f"{target}.{alias.name}", node.lineno, id(node) in top_level
            else:
                yield target, node.lineno, id(node) in top_level


def _may_import(path: Path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    match = re.search(r"May import:(.*?)(?:\n\s*\n|$)", doc, re.S)
    return None if match is None else match.group(1)


def test_every_module_says_what_it_may_import():
    missing = [str(path.relative_to(ROOT)) for _, path in _modules() if _may_import(path) is None]
    assert not missing, "modules whose docstring has no 'May import:' line:\n" + "\n".join(missing)


def test_every_component_has_a_rank():
    unknown = sorted({_component(m) for m, _ in _modules()} - set(RANKS))
    assert not unknown, (f"components without a rank: {unknown}; place them in RANKS here and in "
                         f"docs/architecture.md's ranks")


def _allowed(src: str, dst: str) -> bool:
    if src == dst or (src, dst) in UPWARD:
        return True
    if src in SIBLINGS and dst in SIBLINGS:
        return False
    return RANKS[dst] <= RANKS[src]


def test_imports_point_down():
    bad = []
    for module, path in _modules():
        src = _component(module)
        for target, line, _ in _imports(module, path):
            if not target.startswith("neurona"):
                continue
            dst = _component(target)
            if dst in RANKS and src in RANKS and not _allowed(src, dst):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {src} (rank {RANKS[src]}) imports {target} "
                           f"({dst}, rank {RANKS[dst]})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def _covered(target: str, tokens: list[str]) -> bool:
    dst = _component(target)
    for token in tokens:
        if token == "neurona" and dst in CORE:
            return True
        if token != "neurona" and (target == token or target.startswith(token + ".")
                                   or token.startswith(target + ".")):
            return True
    return False


def test_imports_are_declared_in_may_import_lines():
    bad = []
    for module, path in _modules():
        text = _may_import(path)
        if text is None:
            continue
        tokens = re.findall(r"neurona(?:\.[A-Za-z_][A-Za-z0-9_]*)*", text)
        if re.search(r"\bnothing from neurona\b|\bNothing else in neurona\b", text):
            tokens = tokens or []
        src = _component(module)
        for target, line, _ in _imports(module, path):
            if not target.startswith("neurona") or _component(target) == src:
                continue
            if not _covered(target, tokens):
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {target}, not in its 'May import:' "
                           f"line ({' '.join(text.split())})")
    assert not bad, "imports missing from 'May import:' lines:\n" + "\n".join(bad)


def test_heavy_dependencies_stay_out_of_the_lower_ranks():
    bad = []
    for module, path in _modules():
        src = _component(module)
        for target, line, top in _imports(module, path):
            root = target.split(".")[0]
            if root in HEAVY and top and RANKS.get(src, 0) < HEAVY[root]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {src} imports {root} at module level")
    assert not bad, "heavy optional dependencies imported at module level:\n" + "\n".join(bad)


def test_importing_the_core_loads_no_heavy_dependency():
    code = ("import sys, neurona, neurona.layers, neurona.models, neurona.optim, neurona.data, neurona.callbacks, "
            "neurona.saving, neurona.graph\n"
            f"print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def _public_api() -> str:
    """`dir(neurona)` in a fresh process: its functions and classes, and the modules it offers."""
    code = ("import types, neurona as nr\n"
            "names = [n for n in dir(nr) if not n.startswith('_') and not isinstance(getattr(nr, n), types.ModuleType)]\n"
            "names += [m + ' (module)' for m in nr._LAZY_MODULES + ('graph', 'functional', 'backend', 'F')]\n"
            "print('\\n'.join(sorted(set(names))))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip()


def test_public_api_snapshot():
    """A change here is a change for every user: it is made on purpose, with the snapshot."""
    current = _public_api()
    if os.environ.get("NEURONA_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(current + "\n")
    expected = SNAPSHOT.read_text().strip()
    added = sorted(set(current.split("\n")) - set(expected.split("\n")))
    removed = sorted(set(expected.split("\n")) - set(current.split("\n")))
    assert not added and not removed, (f"the public API of neurona changed: added {added}, removed {removed}; if "
                                       f"on purpose, run NEURONA_UPDATE_SNAPSHOT=1 pytest tests/{Path(__file__).name}")


def test_ops_do_not_export_their_submodules():
    import neurona as nr
    import neurona.ops

    assert nr.nn.__name__ == "neurona.nn"
    for name in ("activation", "reduce", "elementwise", "movement"):
        assert name not in neurona.ops.__all__
    with pytest.raises(AttributeError):
        nr.activation  # noqa: B018 - the attribute access is the test
