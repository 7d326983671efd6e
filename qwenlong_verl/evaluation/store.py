"""The output directory of an evaluation run: append-only generations, the run manifest, resume.

``generations.jsonl`` gets one line per finished (row id, sample index), written and flushed as soon as the sample
is generated and scored. A run that is killed loses at most the samples in flight: on resume the file is read back,
a torn last line (the process died mid-write) is cut off, and only the missing pairs are requested again.
``run.json`` records the settings that change what the model is asked; resuming with different ones is refused
(a mixed file would average two different experiments).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from qwenlong_verl.outputs import atomic_write, has_surrogate, scrub, write_text

logger = logging.getLogger(__name__)

GENERATIONS = "generations.jsonl"
MANIFEST = "run.json"

Key = tuple[str, int]


class EvalStoreError(RuntimeError):
    """The output directory cannot be resumed as is; the message says which file/line/setting and why."""


class GenerationStore:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / GENERATIONS
        self.manifest_path = self.dir / MANIFEST
        self._fh: Any = None
        self.replaced_chars = 0  # lone surrogates (half an emoji in a model reply) replaced by U+FFFD on append

    # -- manifest ------------------------------------------------------------------------------------------------
    def check_manifest(self, settings: Mapping[str, Any], force: bool = False, ignore: Iterable[str] = ()) -> None:
        """Write ``settings`` as run.json, or compare them (all but ``ignore``) with the stored ones when resuming."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise EvalStoreError(f"{self.manifest_path}: unreadable ({exc})") from exc
            skip = set(ignore)
            diff = {k: (old.get(k), v) for k, v in settings.items() if k not in skip and old.get(k) != v}
            if diff and not force:
                lines = "; ".join(f"{k}: stored {a!r}, now {b!r}" for k, (a, b) in sorted(diff.items()))
                raise EvalStoreError(
                    f"{self.dir} holds a run with other settings ({lines}). Use another --out, or --force-resume "
                    "to mix them anyway."
                )
            if diff:
                logger.warning("resuming %s with changed settings: %s", self.dir, sorted(diff))
        write_text(self.manifest_path, json.dumps(dict(settings), indent=2, sort_keys=True))

    # -- generations ---------------------------------------------------------------------------------------------
    def load(self, drop: Iterable[str] = (),
             keep_all_if: Callable[[Mapping[str, Any]], bool] | None = None) -> dict[Key, dict[str, Any]]:
        """Read every finished sample, without the fields in ``drop`` (e.g. the long ``response`` texts when only
        keys and scores are needed) unless ``keep_all_if(record)`` (e.g. a sample whose judge call failed, to be
        judged again). Streams the file; repairs a torn last line, refuses a corrupt line elsewhere. A later line
        for the same (id, sample) replaces an earlier one."""
        if not self.path.exists():
            return {}
        drop = tuple(drop)
        records: dict[Key, dict[str, Any]] = {}
        good_bytes = 0
        torn: bytes | None = None
        with self.path.open("rb") as fh:
            for i, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    torn = raw  # only the last line can lack its newline: a write cut short by a kill
                    break
                good_bytes += len(raw)
                if not raw.strip():
                    continue
                rec = self._parse(raw)
                if rec is None:
                    raise EvalStoreError(f"{self.path}:{i}: corrupt line (not a generation record); fix or delete it")
                self._keep(records, rec, drop, i, keep_all_if)
        if torn is not None and torn.strip():
            rec = self._parse(torn)
            if rec is None:
                logger.warning("%s: dropping a torn last line (%d bytes) from an interrupted run; that sample will "
                               "be asked again", self.path, len(torn))
                with self.path.open("r+b") as fh:
                    fh.truncate(good_bytes)
            else:
                self._keep(records, rec, drop, -1, keep_all_if)
                with self.path.open("ab") as fh:
                    fh.write(b"\n")
        return records

    def _keep(self, records: dict[Key, dict[str, Any]], rec: dict[str, Any], drop: tuple[str, ...], line: int,
              keep_all_if: Callable[[Mapping[str, Any]], bool] | None = None) -> None:
        key = (rec["id"], rec["sample"])
        if key in records:
            # a sample whose judge call failed is judged again on the next run and appended anew: expected
            log = logger.debug if records[key].get("judge_failed") else logger.warning
            log("%s:%d: second record for id=%r sample=%d; keeping the later one", self.path, line, *key)
        if keep_all_if is None or not keep_all_if(rec):
            for name in drop:
                rec.pop(name, None)
        records[key] = rec

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any] | None:
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or not isinstance(rec.get("sample"), int):
            return None
        return rec

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def append(self, record: Mapping[str, Any]) -> None:
        # One write call per line, flushed at once: a kill can tear only the line being written. Text that cannot
        # be encoded (a lone surrogate in a model reply) is replaced, never fatal.
        self._fh.write(self._line(record))
        self._fh.flush()

    def _line(self, record: Mapping[str, Any]) -> str:
        """``record`` as one JSON line; lone surrogates replaced (and counted) when the dump holds any."""
        line = json.dumps(record, ensure_ascii=False)
        if has_surrogate(line):  # rare: walk the record only then (the walk costs ~10x the dump)
            record, bad = scrub(record)
            self.replaced_chars += bad
            line = json.dumps(record, ensure_ascii=False)
        return line + "\n"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def rewrite(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Replace the whole file atomically (after re-scoring)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path) as fh:
            for rec in records:
                fh.write(self._line(rec))
