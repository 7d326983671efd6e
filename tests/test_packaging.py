"""Packaging: every package ships, the wheel carries the Hydra configs and the search-path plugin, and the
entry points are declared — the things a plain (non-editable) `pip install` needs to make `+recipe=` work."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_every_source_package_is_listed_in_setup_cfg():
    listed = set(_setup_cfg()["options"]["packages"].split())
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "qwenlong_verl").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    on_disk |= {"qwenlong_verl.hydra_configs", "hydra_plugins.qwenlong_verl_searchpath"}
    assert on_disk - listed == set(), f"add these to [options] packages in setup.cfg: {sorted(on_disk - listed)}"


def test_entry_points_declared():
    eps = _setup_cfg()["options.entry_points"]
    assert "qwenlong = qwenlong_verl.integration.plugins" in eps["verl.plugins"]
    assert "qwenlong-verl = qwenlong_verl.cli:main" in eps["console_scripts"]


def test_wheel_carries_configs_and_searchpath_plugin(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = tmp_path.glob("qwenlong_verl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    yaml_on_disk = {str(p.relative_to(ROOT / "hydra_configs")) for p in (ROOT / "hydra_configs").rglob("*.yaml")}
    assert yaml_on_disk, "no recipes found"
    for rel in yaml_on_disk:
        assert f"qwenlong_verl/hydra_configs/{rel}" in names, f"{rel} missing from the wheel"
    assert "hydra_plugins/qwenlong_verl_searchpath/qwenlong_verl_searchpath.py" in names
    # hydra_plugins is a namespace package: an __init__.py there would hide every other Hydra plugin
    assert "hydra_plugins/__init__.py" not in names
    assert not any(n.startswith("hydra_configs/") for n in names), "configs must not install as a top-level package"
