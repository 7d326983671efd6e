"""One verl-facing wing: only ``qwenlong_verl/integration/`` imports verl or TransferQueue or names their private
members; every other module is importable and usable without verl."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qwenlong_verl"
WING = PACKAGE / "integration"
FOREIGN = ("verl", "transfer_queue")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if WING not in p.parents and "hydra_configs" not in p.parts)


def _foreign_imports(path: Path) -> list[str]:
    """Every import statement (module level or inside a function) of verl/TransferQueue in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {n}" for n in names
                  if n.split(".")[0] in FOREIGN]
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
