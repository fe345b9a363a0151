"""The apps are layers that only point down, and the engine is plain Python: every import statement in the
source (module-level or inside a function, relative ones resolved) is checked, each app's tests (<app>/tests)
included: they import only their own layer and the ones below it, and worker/tests no web stack."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Lowest first: a package may import itself and the ones before it, never one after it.
LAYERS = ["worker", "accounts", "sharing", "runs", "skills", "experiments"]
WEB_PACKAGES = {"django", "rest_framework", "drf_spectacular", "channels", "celery", "aspire_web"}


def imports(path: Path, root: Path = ROOT):
    """(line, absolute module name) of every import statement in the file ``path`` under ``root``."""
    package = list(path.relative_to(root).parts[:-1])  # the package a relative import starts from
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            yield node.lineno, ".".join(base + ([node.module] if node.module else []))


def offending_imports():
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            for line, module in imports(path):
                top = module.split(".")[0]
                where = f"{path.relative_to(ROOT)}:{line} imports {module}"
                if top in LAYERS and LAYERS.index(top) > LAYERS.index(layer):
                    yield f"{where} (a higher layer)"
                if layer == "worker" and top in WEB_PACKAGES:
                    yield f"{where} (the engine stays free of the web stack)"


def test_layers_only_point_down_and_the_engine_imports_no_web_stack():
    assert list(offending_imports()) == []


def test_the_check_sees_relative_and_function_level_imports(tmp_path):
    module = tmp_path / "runs" / "api" / "views.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from . import filters\n\n\ndef f():\n    from ..presenters import run_context\n"
        "    import experiments.coordinator\n"
    )
    assert [name for _, name in imports(module, tmp_path)] == ["runs.api", "runs.presenters", "experiments.coordinator"]
