"""``qwenlong-verl doctor``: is this Python ready to run the QwenLong recipes with verl?

Checks, in order: versions and device; that ``import verl`` loaded our ``verl.plugins`` entry point; every verl
contact point the package relies on (:mod:`qwenlong_verl.integration.contacts`); each plugin's module and its entry in
verl's registry; that Hydra discovers the search-path plugin and every recipe composes on
top of ``main_ppo``'s config. Exit code 0 when all pass, 1 otherwise, with the reason on each failing line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from importlib import metadata, resources

ENTRY_POINT_GROUP = "verl.plugins"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def recipe_names(group: str = "recipe") -> list[str]:
    root = resources.files("qwenlong_verl.hydra_configs").joinpath(group)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def run_checks() -> list[Check]:
    import torch

    checks: list[Check] = []
    from qwenlong_verl.integration.contacts import import_verl

    try:
        verl_version = import_verl()  # loads our entry point, as every verl process does
    except Exception as exc:  # noqa: BLE001
        return [Check("verl", False, f"`import verl` failed: {exc!r}")]
    from qwenlong_verl import __version__

    checks.append(Check("versions", True, f"qwenlong-verl {__version__}, verl {verl_version}, "
                                           f"torch {torch.__version__}, python {sys.version.split()[0]}"))
    if torch.cuda.is_available():
        device = f"cuda x{torch.cuda.device_count()} ({torch.cuda.get_device_name(0)})"
    else:
        device = "cpu only: use the +qwenlong_env=cpu overlay (VERL_PLATFORM=cpu)"
    checks.append(Check("device", True, device))

    eps = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.value.startswith("qwenlong_verl")]
    loaded_by_verl = "qwenlong_verl.integration.plugins" in sys.modules
    if not eps:
        checks.append(Check("entry point", False, f"no '{ENTRY_POINT_GROUP}' entry point of qwenlong-verl is "
                                                  "installed: reinstall the package (`pip install .`)"))
    elif not loaded_by_verl:
        policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto")
        checks.append(Check("entry point", False, f"`import verl` did not load {eps[0].value} "
                                                  f"(VERL_USE_EXTERNAL_PLUGINS={policy!r}; it must be 'auto' or "
                                                  f"include '{eps[0].name}')"))
    else:
        checks.append(Check("entry point", True, f"{eps[0].name} = {eps[0].value}, loaded by `import verl`"))

    from qwenlong_verl.integration import plugins  # a no-op when verl loaded it already
    from qwenlong_verl.integration.contacts import check_all, registry_has

    for contact, problem in check_all():
        detail = f"{contact.user}: {contact.why}" + (" (private)" if contact.private else "")
        checks.append(Check(f"verl contact {contact.target}", problem is None, problem or detail))

    for spec in plugins.PLUGINS:
        status = plugins.STATUS.get((spec.kind, spec.name))
        label = f"{spec.kind} {spec.name}"
        if status is None or not status.loaded:
            reason = status.error if status else "not attempted"
            checks.append(Check(label, False, f"{spec.module} failed to load: {reason}"))
        elif not registry_has(spec.kind, spec.name):
            checks.append(Check(label, False, f"{spec.module} loaded but '{spec.name}' is not in verl's registry"))
        else:
            checks.append(Check(label, True, f"{spec.config_key}={spec.name}"))

    from qwenlong_verl.hydra.compose import compose_main_ppo
    from qwenlong_verl.hydra.searchpath import ensure_searchpath_plugin

    how = ensure_searchpath_plugin()
    discovered = how is not None
    checks.append(Check("hydra search path", discovered,
                        f"pkg://qwenlong_verl.hydra_configs ({'found by Hydra' if how == 'scanned' else 'registered: editable install'})"
                        if discovered else
                        f"Hydra does not discover {plugins.SEARCHPATH_MODULE}; `+recipe=...` would be ignored"))
    if discovered:
        for name in recipe_names():
            try:
                cfg = compose_main_ppo([f"+recipe={name}"])
                ok = bool(cfg.get("qwenlong", {}).get("recipe_loaded"))
                detail = (f"+recipe={name}: max_prompt_length={cfg.data.max_prompt_length}, "
                          f"adv_estimator={cfg.algorithm.adv_estimator}" if ok else "composed without the sentinel")
            except Exception as exc:  # noqa: BLE001
                ok, detail = False, f"+recipe={name} does not compose: {exc}"
            checks.append(Check(f"recipe {name}", ok, detail))
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    package_logger = logging.getLogger("qwenlong_verl")
    level = package_logger.level
    package_logger.setLevel(logging.CRITICAL)  # failures are reported below, once
    try:
        checks = run_checks()
    finally:  # an in-process caller (a test, a notebook) keeps its own logging
        package_logger.setLevel(level)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=1))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"[{'ok' if c.ok else 'FAIL':>4}] {c.name:<{width}}  {c.detail}")
        bad = [c for c in checks if not c.ok]
        print(f"\n{len(checks) - len(bad)} ok, {len(bad)} failed" + (": see FAIL lines above" if bad else ""))
    return 0 if all(c.ok for c in checks) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check verl, the device, plugin registration and recipe discovery")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_doctor)
