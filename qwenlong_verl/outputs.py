"""One output discipline for every file this package writes, and text that always encodes.

* :func:`check_output` validates an output path *before* the work: its folder exists (or can be made) and is
  writable, the path is not a folder, not one of the inputs (compared after resolving links), and has an extension
  the writer understands. The message names the option, the path and the fix.
* :func:`atomic_write` / :func:`atomic_path` write to a temporary file in the same folder and ``os.replace`` it
  over the target: an existing file is never truncated, and is replaced only by a complete new one. A failure (or
  Ctrl-C) leaves the old file as it was and removes the temporary one.
* :func:`scrub` replaces lone surrogates (half an emoji: real model output, and what ``json.loads`` makes of
  ``"\\ud83d"``) by U+FFFD, so a record always encodes as UTF-8; callers count and report the replacements.

Masking credentials in what is written or logged is :mod:`qwenlong_verl.redaction`'s job.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)


class OutputPathError(ValueError):
    """An output path cannot be written as asked; the message names the option, the path and the fix."""


PathLike = str | os.PathLike


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def is_stream(path: PathLike) -> bool:
    """Whether ``path`` exists and is a character/block device or a FIFO (``/dev/null``, ``/dev/stdout``, a named
    pipe). Such a target is written in place: replacing it by a regular file (as :func:`atomic_path` does with
    files) would destroy the device node (as root) and report a success nobody received."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)


def _inside(child: Path, folder: Path) -> bool:
    try:
        return Path(os.path.realpath(child)).is_relative_to(os.path.realpath(folder))
    except (OSError, ValueError):
        return False


def check_output(path: PathLike, *, option: str = "output", inputs: Iterable[PathLike | None] = (),
                 suffixes: Sequence[str] | None = None, make_parents: bool = True) -> Path:
    """Validate ``path`` as the target of ``option`` before any work; return it as a :class:`Path`.

    ``inputs`` are the files (or folders) the command reads: writing over one of them is refused. ``suffixes``
    (lower case, with the dot) are the extensions the writer produces. With ``make_parents`` a missing folder is
    created (its nearest existing ancestor must be writable); otherwise it is an error.
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise OutputPathError(f"{option} {str(path)!r}: not a file name")
    if p.is_dir():
        raise OutputPathError(f"{option} {str(p)!r} is a folder; give a file path inside it")
    for inp in inputs:
        if inp is None or str(inp) in ("", "-"):
            continue
        inp_path = Path(inp)
        if _same_file(p, inp_path) or (p.exists() and inp_path.is_dir() and _inside(p, inp_path)):
            raise OutputPathError(f"{option} {str(p)!r} is also an input ({str(inp)!r}); writing it would destroy "
                                  "the input: choose another output path")
    if is_stream(p):  # a device or FIFO: written in place, so only the path itself must be writable
        if not os.access(p, os.W_OK):
            raise OutputPathError(f"{option} {str(p)!r} is a device or FIFO this user cannot write; choose a file")
        return p
    if p.exists() and not p.is_file():
        raise OutputPathError(f"{option} {str(p)!r} exists and is not a regular file (a socket?); choose a file")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        want = " or ".join(suffixes)
        raise OutputPathError(f"{option} {str(p)!r}: this command writes {want} files; name the output "
                              f"{p.with_suffix(suffixes[0]).name!r} (or another name ending in {want})")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        ancestor = parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not make_parents:
            raise OutputPathError(f"{option} {str(p)!r}: folder {str(parent)!r} does not exist; create it first")
        if not ancestor.is_dir():
            raise OutputPathError(f"{option} {str(p)!r}: {str(ancestor)!r} is a file, not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputPathError(f"{option} {str(p)!r}: cannot create folder {str(parent)!r} "
                                  f"({str(ancestor)!r} is not writable)")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"{option} {str(p)!r}: cannot create folder {str(parent)!r}: {exc}") from exc
    elif not parent.is_dir():
        raise OutputPathError(f"{option} {str(p)!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {str(p)!r}: folder {str(parent)!r} is not writable; choose another path "
                              "or fix its permissions")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{option} {str(p)!r} exists and is read-only; remove it or choose another path")
    return p


def check_distinct(**paths: PathLike | None) -> None:
    """Refuse two options that name the same output file (``-o x --json x``)."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if path is None or str(path) == "-":
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise OutputPathError(f"{option} and {seen[key]} both write {str(path)!r}; give them different paths")
        seen[key] = option


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy_to_stream(src: Path, target: Path) -> None:
    """Write ``src``'s bytes into the device or FIFO ``target`` in place. A FIFO nobody reads is refused at once
    (opening it would block forever); a write error (``/dev/full``) is an :class:`OutputPathError`, never a success."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        why = "no process reads this FIFO" if exc.errno == errno.ENXIO else (exc.strerror or str(exc))
        raise OutputPathError(f"cannot write {str(target)!r}: {why}; nothing was written") from exc
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb", closefd=True) as out, open(src, "rb") as fh:
            fd = -1
            shutil.copyfileobj(fh, out)
            out.flush()
    except OSError as exc:
        raise OutputPathError(f"writing {str(target)!r} failed: {exc.strerror or exc}; the output is incomplete "
                              "or lost: choose a regular file") from exc
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension, so writers that pick the format by name work) and
    move it over ``path`` when the block ends without an exception; otherwise delete it and leave ``path`` alone.

    Only regular files are replaced: a symlink's target file is replaced (the link stays), and a device or FIFO
    (``/dev/null``, ``/dev/stdout``) receives the finished bytes in place (:func:`_copy_to_stream`)."""
    if is_stream(path):
        fd, tmp_name = tempfile.mkstemp(prefix=".qwenlong.", suffix=f".tmp{Path(path).suffix}")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            _copy_to_stream(tmp, Path(path))
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=str(target.parent))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        mode = (target.stat().st_mode & 0o777) if target.exists() else (0o666 & ~_umask())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """``open(path, mode)`` that lands all at once: see :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: PathLike, text: str) -> int:
    """Write ``text`` atomically; lone surrogates are replaced. Returns how many were replaced."""
    text, bad = scrub_text(text)
    with atomic_write(path) as fh:
        fh.write(text)
    return bad


def write_json(path: PathLike, obj: Any, **dump_kwargs: Any) -> int:
    """``json.dump`` atomically (lone surrogates replaced); returns the number of replacements."""
    obj, bad = scrub(obj)
    with atomic_write(path) as fh:
        json.dump(obj, fh, **dump_kwargs)
        fh.write("\n")
    return bad


def write_jsonl(path: PathLike, records: Iterable[Any], **dump_kwargs: Any) -> tuple[int, int]:
    """One JSON object per line, atomically; returns (lines written, strings with lone surrogates replaced)."""
    n = bad = 0
    with atomic_write(path) as fh:
        for rec in records:
            rec, b = scrub(rec)
            bad += b
            fh.write(json.dumps(rec, **{"ensure_ascii": False, **dump_kwargs}) + "\n")
            n += 1
    return n, bad


# ---------------------------------------------------------------------------------------------------------------
# Text that always encodes
# ---------------------------------------------------------------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (it would not encode to UTF-8). ``json.dumps(..., ensure_ascii=False)``
    keeps them as they are, so one search over a dumped line tells whether the record needs :func:`scrub`."""
    return _SURROGATE.search(text) is not None


def scrub_text(text: str) -> tuple[str, int]:
    """(``text`` with lone surrogates replaced by U+FFFD, how many were replaced). Surrogate *pairs* written as
    two code points are joined into the character they encode."""
    if not has_surrogate(text):
        return text, 0
    fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return fixed, fixed.count(REPLACEMENT) - text.count(REPLACEMENT)


def scrub(value: Any) -> tuple[Any, int]:
    """:func:`scrub_text` over every string (keys too) of a JSON-like value; (new value, replacements). The value is
    returned as is (not copied) when nothing needed replacing."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        total = 0
        for k, v in value.items():
            k2, a = scrub(k) if isinstance(k, str) else (k, 0)
            v2, b = scrub(v)
            out[k2] = v2
            total += a + b
        return (out if total else value), total
    if isinstance(value, list | tuple):
        items = [scrub(v) for v in value]
        total = sum(b for _, b in items)
        if not total:
            return value, 0
        return (type(value)(v for v, _ in items) if isinstance(value, tuple) else [v for v, _ in items]), total
    return value, 0
