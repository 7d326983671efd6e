"""One verl-facing wing: only ``qwenlong_verl/integration/`` imports verl or TransferQueue or names their private
members; every other module is importable and usable without verl."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from import_scan import imports, module_name

PACKAGE = Path(__file__).resolve().parent.parent / "qwenlong_verl"
WING = PACKAGE / "integration"
FOREIGN = ("verl", "transfer_queue")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if WING not in p.parents and "hydra_configs" not in p.parts)


def _foreign_imports(path: Path) -> list[str]:
    """Every import (module level or inside a function) of verl/TransferQueue in ``path``."""
    found = []
    for imp in imports(path, PACKAGE):
        hits = [n for n in imp.names if n.split(".")[0] in FOREIGN]
        if hits:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{imp.line} imports {hits[0]}")
    return found


def test_only_the_wing_imports_verl():
    offenders = [hit for path in _modules() for hit in _foreign_imports(path)]
    assert offenders == [], "move these into qwenlong_verl/integration/:\n" + "\n".join(offenders)
    assert any(_foreign_imports(p) for p in WING.glob("*.py")), "the wing should be where verl is imported"


def test_the_checker_catches_a_lazy_import(tmp_path):
    sample = tmp_path / "qwenlong_verl" / "x.py"
    sample.parent.mkdir()
    sample.write_text("def f():\n    from verl.utils import config\n    import transfer_queue as tq\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "qwenlong_verl"
    try:
        assert len(_foreign_imports(sample)) == 2
    finally:
        PACKAGE = saved


CORE = sorted({".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
               for p in _modules()})


@pytest.mark.parametrize("chunk", [CORE[i::2] for i in range(2)], ids=["core-a", "core-b"])
def test_core_modules_import_with_verl_blocked(chunk):
    """Each core module imports in a Python where ``import verl`` / ``import transfer_queue`` fail."""
    code = ("import sys\nsys.modules['verl'] = None\nsys.modules['transfer_queue'] = None\nimport importlib\n"
            f"for name in {chunk!r}:\n    importlib.import_module(name)\n"
            "assert not any(m == 'verl' or m.startswith('verl.') for m in sys.modules if sys.modules[m] is not None)\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


# ------------------------------------------------------------------------------- the folder-level import graph
# Nodes are the first name under qwenlong_verl/: a subpackage (``preflight``, ``integration``, ``commands``) or a
# top-level module (``config``, ``cli``, ``findings``); the package's own ``__init__`` is ``qwenlong_verl``. An arrow
# a -> b is any import of b in a's files, at module level or inside a function (a lazy import still makes a depend
# on b), relative imports resolved. tests/test_layering.py checks the command line per module; this file checks
# folders: no loop, and nothing below the command line pointing up at it.
COMMAND_LINE = ("cli", "commands")
ROOT = "qwenlong_verl"


@dataclass(frozen=True)
class Arrow:
    """One import of folder ``dst`` in a file of folder ``src``: where it is, and whether it runs at import time."""

    src: str
    dst: str
    where: str  # path:line
    lazy: bool  # inside a function


def _node(module: str, package: Path) -> str | None:
    """The folder-level node of a dotted module name under ``qwenlong_verl`` (None for other packages)."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    if len(parts) == 1:
        return ROOT
    name = parts[1]
    if (package / name).is_dir() or (package / f"{name}.py").is_file():
        return name
    return ROOT  # `from qwenlong_verl import __version__`: a name of the package's __init__


def _arrows(path: Path, package: Path) -> list[Arrow]:
    rel = path.relative_to(package.parent)
    src = _node(module_name(path, package), package)
    arrows: list[Arrow] = []
    for imp in imports(path, package):
        dsts = {d for name in imp.names if (d := _node(name, package)) not in (None, src)}
        # `from qwenlong_verl import cli` names both qwenlong_verl and qwenlong_verl.cli: the arrow is to cli
        if len(dsts) > 1:
            dsts.discard(ROOT)
        arrows.extend(Arrow(src, d, f"{rel}:{imp.line}", imp.lazy) for d in sorted(dsts))
    return arrows


def folder_graph(package: Path) -> list[Arrow]:
    """Every arrow between the folders of ``package`` (the recipes' YAML package holds no code and is left out)."""
    return [a for p in sorted(package.rglob("*.py")) if "hydra_configs" not in p.relative_to(package).parts
            for a in _arrows(p, package)]


def folder_loops(arrows: list[Arrow]) -> list[list[str]]:
    """The strongly connected sets of two or more folders (Tarjan): each is a loop of imports."""
    succ: dict[str, set[str]] = {}
    for a in arrows:
        succ.setdefault(a.src, set()).add(a.dst)
        succ.setdefault(a.dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(succ[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for v in sorted(succ):
        if v not in index:
            connect(v)
    return loops


def _describe(arrows: list[Arrow]) -> str:
    return "\n".join(f"  {a.src} -> {a.dst}  ({a.where}{', lazy' if a.lazy else ''})" for a in arrows)


def test_no_loop_between_folders():
    arrows = folder_graph(PACKAGE)
    loops = folder_loops(arrows)
    inside = [a for a in arrows if any(a.src in group and a.dst in group for group in loops)]
    assert loops == [], (f"folders import each other: {loops}; move the shared code down into the core (as "
                         f"qwenlong_verl/findings.py was) or make one side stop importing the other:\n"
                         + _describe(inside))
    wing_to_preflight = [a for a in arrows if a.src == "integration" and a.dst == "preflight"]
    assert wing_to_preflight == [], "the wing must not import preflight (preflight calls the wing):\n" + _describe(
        wing_to_preflight)
    # the scan sees lazy imports: preflight reaches verl's own validation in the wing inside run_preflight
    assert [a.where for a in arrows if (a.src, a.dst) == ("preflight", "integration")] and all(
        a.lazy for a in arrows if (a.src, a.dst) == ("preflight", "integration"))


def test_no_core_folder_points_up_at_the_command_line():
    up = [a for a in folder_graph(PACKAGE) if a.dst in COMMAND_LINE and a.src not in COMMAND_LINE]
    assert up == [], "only cli.py and commands/ may import the command line:\n" + _describe(up)


def test_core_reaches_the_wing_only_lazily():
    """A core module that imports the wing at module level would import verl with it; each lazy import of the wing
    from the core is listed, with its reason, in docs/architecture.md."""
    into_wing = [a for a in folder_graph(PACKAGE) if a.dst == "integration"]
    eager = [a for a in into_wing if not a.lazy]
    assert eager == [], "import the wing inside the function that needs verl:\n" + _describe(eager)
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    heading = "## Where the core calls the wing lazily, and why"
    assert heading in doc, f"docs/architecture.md lost its section {heading!r}"
    section = doc.split(heading, 1)[1].split("\n## ", 1)[0]
    files = sorted({a.where.split(":")[0].removeprefix("qwenlong_verl/") for a in into_wing})
    assert files and [f for f in files if f"`{f}`" not in section] == [], (
        f"docs/architecture.md, section 'Where the core calls the wing lazily, and why', must name each of {files}")


def test_the_graph_checker_catches_a_loop_and_an_arrow_up(tmp_path):
    root = tmp_path / "qwenlong_verl"
    for folder in ("preflight", "integration", "commands"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("__version__ = '0'\n")
    (root / "cli.py").write_text("from qwenlong_verl import __version__\n")
    (root / "preflight" / "a.py").write_text("def f():\n    from qwenlong_verl.integration import b\n")
    (root / "integration" / "b.py").write_text("from ..preflight.a import f\n")  # relative, back into preflight
    (root / "integration" / "c.py").write_text("import importlib\nimportlib.import_module('qwenlong_verl.cli')\n"
                                               "from qwenlong_verl import commands\n")
    arrows = folder_graph(root)
    assert folder_loops(arrows) == [["integration", "preflight"]]
    pairs = {(a.src, a.dst, a.lazy) for a in arrows}
    assert ("preflight", "integration", True) in pairs and ("integration", "preflight", False) in pairs
    assert {("integration", "cli", False), ("integration", "commands", False), ("cli", ROOT, False)} <= pairs
    assert not any(a.dst == ROOT and a.src == "integration" for a in arrows)  # `from qwenlong_verl import commands`


def test_the_hydra_glue_imports_the_real_hydra():
    """``qwenlong_verl/hydra/`` shares its name with Hydra; its absolute ``import hydra`` must still be hydra-core."""
    import importlib.util

    from qwenlong_verl.hydra import compose

    assert Path(compose.hydra.__file__).resolve().parent != PACKAGE / "hydra"
    assert PACKAGE not in Path(compose.hydra.__file__).resolve().parents
    assert compose.hydra.compose.__module__ == "hydra.compose"
    assert compose.GlobalHydra.__module__ == "hydra.core.global_hydra"
    assert importlib.util.find_spec("qwenlong_verl.preflight.findings") is None  # moved, no shim
