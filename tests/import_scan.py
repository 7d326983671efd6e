"""One AST reader of a module's imports, for the layering tests (``test_import_boundary.py``: the verl wing and the
folder graph; ``test_layering.py``: nothing below the command line imports it).

Every form counts: ``import a.b``, ``from a import b`` (both ``a`` and ``a.b``: ``b`` may be a submodule), relative
imports resolved against the module's package, ``importlib.import_module("a.b")`` / ``__import__("a.b")`` of a
literal, at module level or inside a function (``lazy``)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One import statement (or call) of ``path``: the dotted modules it names, where, and whether it runs only when a
    function runs."""

    names: tuple[str, ...]
    line: int
    lazy: bool


def module_name(path: Path, root: Path) -> str:
    """``qwenlong_verl.x.y`` for ``<root>/x/y.py`` (``root`` is the package folder); ``__init__`` dropped."""
    return ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")


def _package(path: Path, root: Path) -> str:
    module = module_name(path, root)
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _names(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            anchor = ".".join(parts[:len(parts) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        return [base, *(f"{base}.{a.name}" for a in node.names)]
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                 or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
        return [node.args[0].value]
    return []


def imports(path: Path, root: Path) -> list[Import]:
    """Every import of ``path`` (a module of the package at ``root``), in source order."""
    package = _package(path, root)
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        names = _names(node, package)
        if names:
            found.append(Import(tuple(names), node.lineno, lazy))
        inside = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return sorted(found, key=lambda i: i.line)
