"""Dependency direction: `pretrain` may import `data_prep`, `data_prep` never imports `pretrain`."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pretrain_imports(path: Path, root: Path = REPO) -> list[str]:
    """'file:line module' for every import of `pretrain` (or a submodule) anywhere in the file,
    function-local imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [f"{path.relative_to(root)}:{node.lineno} {m}" for m in modules if m.split(".")[0] == "pretrain"]
    return found


def test_data_prep_never_imports_pretrain():
    files = sorted((REPO / "data_prep").rglob("*.py"))
    assert len(files) > 10  # the package itself, not an empty glob
    assert [hit for path in files for hit in pretrain_imports(path)] == []


@pytest.mark.parametrize(("source", "hit"), [
    ("import pretrain.data\n", "probe.py:1 pretrain.data"),
    ("import os, pretrain\n", "probe.py:1 pretrain"),
    ("from pretrain import byte_vocab\n", "probe.py:1 pretrain"),
    ("def f():\n    from pretrain.config import ConfigError\n", "probe.py:2 pretrain.config"),
])
def test_the_check_sees_every_import_form(tmp_path, source, hit):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert pretrain_imports(path, tmp_path) == [hit]
    path.write_text("import pretrainer\nfrom data_prep import atomic\nfrom . import pretrain\n")
    assert pretrain_imports(path, tmp_path) == []
