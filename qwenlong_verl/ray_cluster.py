"""Joining an existing Ray cluster (``ray start`` on the nodes, SLURM) versus starting one's own.

``ray.init(num_cpus=..., num_gpus=...)`` refuses to connect to a running cluster ("When connecting to an existing
cluster, num_cpus and num_gpus must not be provided"), yet the CPU overlay must declare them when the run starts its
own Ray (fake GPU bundles, more CPU slots than cores). ``${qwenlong.own_ray:VALUE}`` is VALUE when this run starts its
own Ray and null when it joins a cluster: ``ray_kwargs.ray_init.address`` set (not ``local``), or ``RAY_ADDRESS`` in
the environment (the SLURM set-up exports it), so one overlay serves both.

Also: a ``ray_current_cluster`` file left by a ``ray start`` whose cluster is gone makes every later plain
``ray.init()`` on the machine try to join that dead cluster; :func:`stale_bootstrap_file` finds it.

Importing this module is cheap (no Ray, no verl).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

logger = logging.getLogger(__name__)

OWN_RAY_RESOLVER = "qwenlong.own_ray"
ADDRESS_KEY = "ray_kwargs.ray_init.address"


def joins_cluster(address: Any) -> bool:
    """True when ``ray.init(address=address)`` connects to a running cluster rather than starting a new one."""
    text = "" if address is None else str(address).strip()
    if text:
        return text != "local"
    env = os.environ.get("RAY_ADDRESS", "").strip()
    return bool(env) and env != "local"


def own_ray(value: Any, *, _root_: Any = None) -> Any:
    """``${qwenlong.own_ray:VALUE}``: VALUE for a run that starts its own Ray, None for one that joins a cluster."""
    address = None
    if _root_ is not None:
        from omegaconf import OmegaConf

        address = OmegaConf.select(_root_, ADDRESS_KEY, default=None)
    if joins_cluster(address):
        return None
    return value


def register_own_ray_resolver() -> None:
    """Register ``${qwenlong.own_ray:...}`` with OmegaConf (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(OWN_RAY_RESOLVER):
        OmegaConf.register_new_resolver(OWN_RAY_RESOLVER, own_ray)


def _address_file(temp_dir: str | None = None) -> str:
    base = temp_dir or os.environ.get("RAY_TMPDIR") or "/tmp/ray"
    return os.path.join(base, "ray_current_cluster")


def _answers(address: str, timeout_s: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def stale_bootstrap_file(temp_dir: str | None = None) -> tuple[str, str] | None:
    """(file, address) when Ray's ``ray_current_cluster`` names a cluster nobody answers at; None otherwise.

    A plain ``ray.init()`` reads that file (written by the last ``ray start`` on this machine) and tries to join the
    cluster it names, so after a cluster was killed without ``ray stop`` every new single-node run fails to start.
    """
    path = _address_file(temp_dir)
    try:
        with open(path, encoding="utf-8") as fh:
            address = fh.read().strip()
    except OSError:
        return None
    if not address or _answers(address):
        return None
    return path, address


def avoid_stale_cluster(address: Any) -> str | None:
    """In the driver, before ``ray.init``: a run that starts its own Ray must not try to join a dead cluster named by
    a stale ``ray_current_cluster``. Sets ``RAY_ADDRESS=local`` (start a new local Ray, the file is left alone: it
    may be another user's) and returns the warning; None when nothing was stale or the run joins a cluster."""
    if joins_cluster(address) or os.environ.get("RAY_ADDRESS", "").strip() == "local":
        return None
    stale = stale_bootstrap_file()
    if stale is None:
        return None
    os.environ["RAY_ADDRESS"] = "local"
    message = (f"qwenlong-verl: {stale[0]} names the Ray cluster {stale[1]}, which does not answer (killed without "
               "`ray stop`?); a plain ray.init() would try to join it and fail. This run starts its own Ray "
               "(RAY_ADDRESS=local). To join a cluster instead, set ray_kwargs.ray_init.address=HEAD:PORT; to "
               f"silence this, remove {stale[0]} once no `ray start` of yours runs on this machine.")
    logger.warning(message)
    return message


def wait_for_nodes(address: str, nodes: int, timeout_s: float) -> int:
    """Block until the Ray cluster at ``address`` has ``nodes`` live nodes; returns how many it has (fewer on
    timeout). The SLURM set-up waits on this instead of sleeping blindly: a node whose ``ray start`` failed stops
    the job with a message, instead of a driver waiting for resources until the job's time limit."""
    import time

    import ray

    deadline = time.monotonic() + timeout_s
    alive = 0
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        while True:
            alive = sum(1 for n in ray.nodes() if n.get("Alive"))
            if alive >= nodes or time.monotonic() >= deadline:
                return alive
            time.sleep(1.0)
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m qwenlong_verl.ray_cluster --address HOST:PORT --nodes N [--timeout S]``: exit 0 once the cluster
    has N live nodes, 1 (with what to check) if it does not within S seconds or cannot be reached."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m qwenlong_verl.ray_cluster", description=main.__doc__)
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="HEAD:PORT (default: $RAY_ADDRESS)")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.address:
        logger.error("qwenlong-verl: --address (or RAY_ADDRESS) is needed: the head's HOST:PORT")
        return 1
    try:
        alive = wait_for_nodes(args.address, args.nodes, args.timeout)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
        logger.error("qwenlong-verl: cannot reach the Ray head at %s (%s: %s): did `ray start --head` start there? "
                     "(its log: the job's output; is `ray` on PATH on that node?)", args.address,
                     type(exc).__name__, exc)
        return 1
    if alive < args.nodes:
        logger.error("qwenlong-verl: the Ray cluster at %s has %d of %d nodes after %.0f s: a `ray start --address` "
                     "failed or cannot reach the head (firewall? the same Ray version and venv on every node?)",
                     args.address, alive, args.nodes, args.timeout)
        return 1
    logger.info("qwenlong-verl: Ray cluster at %s: %d nodes", args.address, alive)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
