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
    on_disk |= {"hydra_plugins.qwenlong_verl_searchpath"}
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
    yaml_on_disk = {str(p.relative_to(ROOT / "qwenlong_verl" / "hydra_configs")) for p in (ROOT / "qwenlong_verl" / "hydra_configs").rglob("*.yaml")}
    assert yaml_on_disk, "no recipes found"
    for rel in yaml_on_disk:
        assert f"qwenlong_verl/hydra_configs/{rel}" in names, f"{rel} missing from the wheel"
    assert "hydra_plugins/qwenlong_verl_searchpath/qwenlong_verl_searchpath.py" in names
    # hydra_plugins is a namespace package: an __init__.py there would hide every other Hydra plugin
    assert "hydra_plugins/__init__.py" not in names
    assert not any(n.startswith("hydra_configs/") for n in names), "configs must not install as a top-level package"


EDITABLE_CHECK = """
import sys, pathlib
from hydra import compose, initialize_config_dir
from qwenlong_verl.hydra.searchpath import ensure_searchpath_plugin, searchpath_plugin_discovered
import qwenlong_verl
assert pathlib.Path(qwenlong_verl.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[2])), qwenlong_verl.__file__
primary = pathlib.Path(sys.argv[1])
def recipe():
    # without the search path Hydra takes +recipe=... for a plain string key and no qwenlong block appears
    with initialize_config_dir(config_dir=str(primary), version_base=None):
        return (compose(config_name="main", overrides=["+recipe=qwenlong_phase1"]).get("qwenlong") or {}).get("recipe")
print("scan", searchpath_plugin_discovered())
print("before", recipe())
print("how", ensure_searchpath_plugin())
print("after", recipe())
"""


def test_editable_install_finds_the_recipes(tmp_path):
    """`pip install -e .` (how contributors install): setuptools' editable finder hides the search-path plugin from
    Hydra's scan of the hydra_plugins namespace; ensure_searchpath_plugin registers it, so `+recipe=` composes."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path / "deps"  # only what Hydra and setuptools need, never the installed qwenlong_verl
    deps.mkdir()
    for pattern in ("hydra", "omegaconf", "antlr4", "yaml", "_yaml", "packaging", "setuptools", "_distutils_hack",
                    "pkg_resources", "setuptools-*.dist-info", "hydra_core-*.dist-info", "omegaconf-*.dist-info"):
        for src in site.glob(pattern):
            (deps / src.name).symlink_to(src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv_site,) = venv.glob("lib/python*/site-packages")
    (venv_site / "deps.pth").write_text(str(deps) + "\n")
    python = venv / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                           "--no-build-isolation", "-e", str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    primary = tmp_path / "app"
    primary.mkdir()
    (primary / "main.yaml").write_text("x: 1\n")
    run = subprocess.run([str(python), "-c", EDITABLE_CHECK, str(primary), str(ROOT)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "scan False" in run.stdout and "before None" in run.stdout  # what broke `+recipe=` for editable installs
    assert "how registered" in run.stdout and "after qwenlong_phase1" in run.stdout, run.stdout
