"""Layers: the command line (``qwenlong_verl/cli.py`` and ``qwenlong_verl/commands/``) sits on top of the library and
nothing below it imports it. A library module that parsed a command's argv to reach its code (the pipeline's eval
stage did) takes on every subcommand's parser and its exit codes; it calls the library entry instead."""

from __future__ import annotations

from pathlib import Path

from import_scan import imports

PACKAGE = Path(__file__).resolve().parent.parent / "qwenlong_verl"
TOP = ("qwenlong_verl.cli", "qwenlong_verl.commands")


def _is_top(name: str) -> bool:
    return any(name == t or name.startswith(t + ".") for t in TOP)


def _top_imports(path: Path, root: Path) -> list[str]:
    """Every import of the command-line layer in ``path`` (any form, :mod:`import_scan`)."""
    found = []
    for imp in imports(path, root):
        hits = sorted({n for n in imp.names if _is_top(n)})
        if hits:
            found.append(f"{path.relative_to(root.parent)}:{imp.line} imports {hits[0]}")
    return found


def _below_the_command_line(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py")
                  if p != root / "cli.py" and root / "commands" not in p.parents and "hydra_configs" not in p.parts)


def test_no_library_module_imports_the_command_line():
    modules = _below_the_command_line(PACKAGE)
    assert len(modules) > 50 and PACKAGE / "pipeline" / "stages.py" in modules
    offenders = [hit for path in modules for hit in _top_imports(path, PACKAGE)]
    assert offenders == [], ("call the library entry instead (e.g. qwenlong_verl.evaluation.evaluate_endpoint), "
                             "or move the shared code below the command line:\n" + "\n".join(offenders))


def test_the_command_line_itself_is_seen():
    """The scan reads the layer it guards: cli.py imports the commands package."""
    assert _top_imports(PACKAGE / "cli.py", PACKAGE)


def test_the_checker_catches_every_form(tmp_path):
    root = tmp_path / "qwenlong_verl"
    (root / "pipeline").mkdir(parents=True)
    (root / "commands").mkdir()
    sample = root / "pipeline" / "x.py"
    sample.write_text(
        "import json\n"
        "from qwenlong_verl.cli_tools import http_url\n"  # a sibling module with a similar name: allowed
        "def f():\n"
        "    from qwenlong_verl.cli import build_parser\n"  # lazy, inside a function
        "    import qwenlong_verl.commands.eval\n"
        "    from qwenlong_verl import commands\n"
        "    from .. import cli\n"
        "    from ..commands.eval import run\n"
        "    import importlib\n"
        "    importlib.import_module('qwenlong_verl.commands.score')\n"
        "    __import__('qwenlong_verl.cli')\n"
    )
    (root / "commands" / "eval.py").write_text("from qwenlong_verl.cli import main\n")
    hits = _top_imports(sample, root)
    assert [h.split(":")[1].split()[0] for h in hits] == ["4", "5", "6", "7", "8", "10", "11"], hits
    assert _below_the_command_line(root) == [sample]
