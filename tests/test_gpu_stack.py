"""Our GPU stack is verl 0.9.1's own: the ``gpu`` extra reuses verl's ``vllm``/``fsdp`` extras, and the versions the
README and preflight name are the ones verl's installed metadata pins."""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from qwenlong_verl.preflight.gpu_stack import CUDA, TESTED_STACK, VERL_GPU_EXTRAS

ROOT = Path(__file__).resolve().parent.parent


def _verl_extra_pins() -> dict[str, str]:
    """package -> pinned version across verl's GPU extras (following verl's self-references such as
    ``verl[flash-attn-cu130torch211]``)."""
    reqs = [Requirement(r) for r in metadata.distribution("verl").requires or []]
    pins: dict[str, str] = {}
    wanted, seen = list(VERL_GPU_EXTRAS), set()
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for r in reqs:
            if r.marker is None or not r.marker.evaluate({"extra": extra}):
                continue
            if r.name == "verl":
                wanted.extend(r.extras)
            elif str(r.specifier).startswith("=="):
                pins[r.name] = str(r.specifier)[2:]
    return pins


def test_tested_stack_equals_verls_pins():
    pins = _verl_extra_pins()
    for package, version in TESTED_STACK.items():
        assert pins.get(package) == version, f"{package}: we say {version}, verl 0.9.1 pins {pins.get(package)}"
    assert any(f"cu{CUDA.replace('.', '')}" in e for e in metadata.distribution("verl").metadata.get_all(
        "Provides-Extra")), "verl's flash-attn build extra names another CUDA"


def test_gpu_extra_is_verls_extras_and_our_ranges_admit_its_pins():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    gpu = [Requirement(line.split("#", 1)[0]) for line in cfg["options.extras_require"]["gpu"].split("\n")
           if line.split("#", 1)[0].strip()]
    assert [(r.name, set(r.extras), str(r.specifier)) for r in gpu] == [
        ("verl", set(VERL_GPU_EXTRAS), f"=={metadata.version('verl')}")]
    lines = [line.split("#", 1)[0].strip() for line in cfg["options"]["install_requires"].split("\n")]
    ours = {Requirement(line).name: Requirement(line) for line in lines if line}
    for package, version in TESTED_STACK.items():
        if package in ours:  # install_requires must not exclude verl's GPU pins (pip would fail to resolve)
            assert ours[package].specifier.contains(Version(version)), (package, str(ours[package].specifier))


def test_readme_names_the_tested_stack():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Install on a GPU cluster"):]
    for package, version in TESTED_STACK.items():
        assert re.search(rf"{re.escape(package)}[ =]+{re.escape(version)}", section), (package, version)
