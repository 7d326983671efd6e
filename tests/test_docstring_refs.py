"""Docstrings name modules that exist. A module that moves or goes (``reward.manager`` went to the wing) leaves
``:mod:`` references behind that no test imports; this reads every ``:mod:`` reference of the package (absolute, or
relative to the module's package) and fails on one that names no module, so the prose keeps up with the tree."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwenlong_verl"
MOD_REF = re.compile(r":mod:`~?(?P<name>[.\w]+)`")


def _exists(dotted: str, root: Path) -> bool:
    path = root.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or (
        path.is_dir() and any(path.glob("*.py")))  # a namespace package (integration/)


def _resolve(name: str, module: str, is_package: bool) -> str | None:
    if not name.startswith("."):
        return name if name.split(".")[0] == "qwenlong_verl" else None  # other libraries: not ours to check
    parts = module.split(".") if is_package else module.split(".")[:-1]
    level = len(name) - len(name.lstrip("."))
    base = parts[:len(parts) - level + 1]
    return ".".join([*base, name.lstrip(".")]) if name.lstrip(".") else ".".join(base)


def stale_refs(root: Path) -> tuple[list[str], int]:
    """(the references that name no module, how many references were read)."""
    found, seen = [], 0
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        is_package = path.name == "__init__.py"
        module = module.removesuffix(".__init__")
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in MOD_REF.finditer(line):
                target = _resolve(match.group("name"), module, is_package)
                seen += target is not None
                if target is not None and not _exists(target, root):
                    found.append(f"{path.relative_to(root.parent)}:{line_no} names {match.group('name')} "
                                 f"({target}), which does not exist")
    return found, seen


def test_every_mod_reference_names_an_existing_module():
    stale, seen = stale_refs(PACKAGE)
    assert seen > 20  # the scan reads the package's references
    assert stale == [], "fix the docstring (the module moved or went):\n" + "\n".join(stale)


def test_the_check_sees_a_stale_reference(tmp_path):
    root = tmp_path / "qwenlong_verl"
    (root / "reward").mkdir(parents=True)
    (root / "reward" / "__init__.py").write_text('"""* :mod:`.rule` - scores; :mod:`.manager` - gone."""\n')
    (root / "reward" / "rule.py").write_text('"""See :mod:`qwenlong_verl.reward` and :mod:`qwenlong_verl.gone`."""\n')
    stale, seen = stale_refs(root)
    assert seen == 4 and [hit.split(" names ")[1].split(" ")[0] for hit in stale] == [".manager", "qwenlong_verl.gone"]
