"""The cause of a failed sweep job, in one line: for the launcher's per-job line and ``sweep-report``'s table.

A job's error text is long and its interesting line is rarely the last: submitit wraps it ("Job (task=0) failed
during processing with trace: ... You can check full logs ... at paths: - <file>"), so the per-job line used to show
a log path; a Ray error ends in the remote traceback's exception line after pages of frames; the recipe's guard
lists its findings under a heading. :func:`cause_line` finds the line that names what went wrong, masked with
:func:`qwenlong_verl.redaction.redact` (an override such as ``+trainer.wandb_api_key=...`` can appear in it).

:func:`slurm_end` reads what SLURM itself wrote into a job's log when it ended the job (time limit, ``scancel``,
preemption, the OOM killer): the job's process then dies without a word of its own, so its status file still says
"running" and only SLURM's line says why.

No verl, Hydra or submitit import: plain text in, one line out.
"""

from __future__ import annotations

import re

MAX_CHARS = 300
_SUBMITIT_RULE = "----------------------"
# "ValueError: ...", "ray.exceptions.RayTaskError(AssertionError): ...", "AssertionError", "KeyboardInterrupt"
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure|Warning)"
                        r"(?:\([\w.]+\))?(?::\s*(?P<message>.*))?$")
_WRAPPERS = ("FailedJobError", "UncompletedJobError")  # submitit's own, around the job's error
_GUARD_ITEM = re.compile(r"^\s*-\s+(?P<item>\S.*)$")
# slurmstepd: "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-12-04T06:30:00 DUE TO TIME LIMIT ***"
_SLURM_END = re.compile(r"\*\*\* (?:JOB|STEP) (?P<job>[\w.]+) ON (?P<node>\S+) CANCELLED AT (?P<at>\S+)"
                        r"(?: DUE TO (?P<why>[A-Z ]+?))?(?: \*\*\*|$)")
_OOM = re.compile(r"Detected \d+ oom[_-]kill event", re.IGNORECASE)


def _inner(text: str) -> str:
    """The job's own error inside submitit's ``FailedJobError`` wrapper (the text between its two rules)."""
    parts = text.split(_SUBMITIT_RULE)
    return parts[1] if len(parts) >= 3 else text


def _short(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 3] + "..."


def cause_line(text: str | None) -> str | None:
    """The line of ``text`` (an exception message, a traceback, a job's log) naming why the job failed, redacted;
    None for empty text.

    In order: the last Python exception line (a bare ``AssertionError`` takes the source line above it, which holds
    the failed assert); else the first finding of the guard's list (``+N more`` when it has several); else the
    first line that is not submitit's boilerplate."""
    from qwenlong_verl.redaction import redact

    if not text or not str(text).strip():
        return None
    lines = [ln.rstrip() for ln in _inner(str(text)).splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].strip()
        match = _EXCEPTION.match(stripped)
        if not match or stripped.split(":", 1)[0].rsplit(".", 1)[-1].startswith(_WRAPPERS):
            continue
        if not match.group("message") and i > 0 and not _EXCEPTION.match(lines[i - 1].strip()):
            stripped = f"{stripped} at `{lines[i - 1].strip()}`"  # `assert n_heads % sp == 0` says which check
        return redact(_short(stripped))
    items = [m.group("item") for m in map(_GUARD_ITEM.match, lines) if m]
    if items:
        more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
        return redact(_short(items[0] + more))
    useful = [ln for ln in lines if not ln.strip().startswith(("You can check full logs", "- /", "Traceback"))]
    return redact(_short(useful[0])) if useful else None


def slurm_end(text: str | None) -> str | None:
    """Why SLURM ended a job, from the lines ``slurmstepd`` writes into the job's log, or None when it wrote none.

    ``*** JOB 12 ON n1 CANCELLED AT <time> DUE TO TIME LIMIT ***`` gives "killed by SLURM at its time limit"
    (``hydra.launcher.timeout_min``); without ``DUE TO`` it was cancelled (``scancel``); ``oom_kill`` events give
    "killed by the out-of-memory killer". The fix is named in each."""
    if not text:
        return None
    for line in str(text).splitlines():
        match = _SLURM_END.search(line)
        if not match:
            continue
        where = f"job {match.group('job')} on {match.group('node')} at {match.group('at')}"
        why = (match.group("why") or "").strip()
        if why == "TIME LIMIT":
            return (f"killed by SLURM at its time limit ({where}): raise hydra.launcher.timeout_min or shorten the "
                    "run (trainer.total_training_steps)")
        if why:
            return f"cancelled by SLURM due to {why.lower()} ({where})"
        return f"cancelled ({where}): scancel or an administrator ended it"
    if _OOM.search(str(text)):
        return ("killed by the out-of-memory killer (SLURM counted an oom_kill event): raise hydra.launcher.mem_gb or "
                "lower the batch / micro-batch sizes")
    return None
