"""One redaction of credentials for everything this package shows or writes: logs, stdout/stderr, reports, rows.

A judge URL with ``user:password@``, a ``+trainer.wandb_api_key=...`` override, an ``Authorization`` header echoed in
a server's error body, or the value of ``$HF_TOKEN`` must never reach a terminal, a log or a report file:

* :func:`redact_url` masks a URL's user info and key-like query values (a URL shown in a message);
* :func:`redact` masks every credential in free text (URLs, ``Bearer``/``Basic`` tokens, ``Authorization``
  headers, values of names like ``*key*``/``*token*``/``*password*`` (:func:`is_secret_name`), and the values of the
  environment's credential variables wherever they appear);
* :func:`redact_value` does the same over a JSON-like value (a report, an override list, a row);
* :func:`install_stream_redaction` and :func:`install_log_redaction` put :func:`redact` in front of stdout/stderr
  and of every log record of the process (the CLI installs both at start).

Writing files safely (checked paths, atomic replacement, lone surrogates) is :mod:`qwenlong_verl.outputs`'s job.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from qwenlong_verl.outputs import scrub_text


def redact_url(url: Any) -> Any:
    """``url`` without user name and password (``http://user:pw@host/v1`` -> ``http://***@host/v1``), and
    without the values of query parameters that look like keys; anything that is not a URL string is returned
    unchanged."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = re.sub(r"(?i)((?:api[_-]?key|key|token|secret|password|auth)=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]+@")
_URL_USERINFO_PASSWORD = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s'\":]*:([^/@\s'\"]+)@")
_URL_SECRET_QUERY = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|secret|password|auth)=)[^&\s'\"]*")


MASK = "***"
# a name is a credential's when one of its parts (split at _ . - or camelCase) is one of these, or it ends in one
# ("apikey", "hf_token", "WANDB_API_KEY", "db-password"); "max_tokens", "tokenizer", "sort_keys" are not
_SECRET_PARTS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "pwd", "auth", "authorization",
                           "credential", "credentials", "cookie", "sessionid"})
_DATA_KEY_QUALIFIERS = frozenset({"reward", "sort", "cache", "metric", "metrics", "primary", "foreign", "dict",
                                  "group", "partition", "config", "lookup", "index", "hash", "map", "sample", "data",
                                  "row", "column", "sweep", "job", "task", "score", "sort_by", "join", "unique"})
_NAME_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_NOT_A_VALUE = re.compile(r"(?i)^(|\*+|none|null|true|false|\?\?\?|-?[0-9][0-9_.,eE+-]*|\$\{.*\})$")
_AUTH_SCHEME = re.compile(r"\b((?i:bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}|(Basic)(\s+)[A-Za-z0-9+/]{8,}={0,2})")
_AUTH_HEADER = re.compile(r"(?i)((?:proxy-)?authorization\b['\"]?\s*[:=]\s*['\"]?)([^'\"\r\n,}]+)")
# name=value (Hydra overrides, env lines, query strings), name: value (YAML, headers), "name": "value" (JSON, reprs)
_NAMED = re.compile(r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>['"]?\s*[:=]\s*)"""
                    r"""(?:(?P<q>['"])(?P<qvalue>[^'"\r\n]*)|(?P<value>[^\s'",;}&)\]]+))""")


def is_secret_name(name: str) -> bool:
    """Whether a key, option or variable of this name holds a credential (``api_key``, ``hf_token``,
    ``WANDB_API_KEY``, ``password``...). A name ending in ``_env`` holds the *name* of a variable, not a secret."""
    last = name.rsplit(".", 1)[-1]
    if last.lower().endswith("_env") or last.lower().endswith("_file") or last.lower().endswith("_path"):
        return False
    parts = [part.lower() for part in _NAME_SPLIT.split(last) if part]
    for i, part in enumerate(parts):
        if part == "key":
            # a bare "key" names a config or dict key (preflight's findings); "reward_key", "sort_key" name data
            if i > 0 and parts[i - 1] not in _DATA_KEY_QUALIFIERS:
                return True
        elif part in _SECRET_PARTS or part.endswith(("apikey", "password", "secret")):
            return True
    return False


def _env_secrets() -> list[str]:
    """The values of this process's credential variables (long enough not to match ordinary words): a server that
    echoes a request header, or a library that prints its config, still shows only ***."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6 and not _NOT_A_VALUE.match(v)}
    return sorted(values, key=len, reverse=True)


def _mask_named(match: re.Match[str]) -> str:
    name, quote = match.group("name"), match.group("q") or ""
    value = match.group("qvalue") if quote else match.group("value")
    if not is_secret_name(name) or _NOT_A_VALUE.match(value):
        return match.group(0)
    return f"{name}{match.group('sep')}{quote}{MASK}"


def redact(text: str, also: Iterable[str] = ()) -> str:
    """``text`` with every credential masked: URL user info and key-like query values, ``Bearer``/``Basic``
    tokens and ``Authorization`` headers, values of names like ``*key*``/``*token*``/``*secret*``/``*password*``
    (``+trainer.wandb_api_key=...``, ``"api_key": "..."``) and the values of the environment's credential variables
    wherever they appear. The one redaction of the package: logs, stdout/stderr, reports and rows go through it."""
    if not isinstance(text, str) or not text:
        return text
    if "://" in text:
        text = _URL_SECRET_QUERY.sub(r"\1***", _URL_USERINFO.sub(r"\g<scheme>***@", text))
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
    text = _AUTH_SCHEME.sub(lambda m: m.group(1).split(None, 1)[0] + " " + MASK, text)
    if any(c in text for c in "=:"):
        text = _NAMED.sub(_mask_named, text)
    for secret in sorted({*_env_secrets(), *(a for a in also if len(a) >= 4)}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _collect_secrets(value: Any, found: set[str]) -> None:
    """The credentials a JSON-like value names itself (``name=value`` strings, values of credential keys), so the
    same text is masked wherever else it appears in that value (an error that quotes the key it failed with)."""
    if isinstance(value, str):
        for match in _NAMED.finditer(value):
            secret = match.group("qvalue") if match.group("q") else match.group("value")
            if is_secret_name(match.group("name")) and secret and not _NOT_A_VALUE.match(secret):
                found.add(secret)
        for match in _URL_USERINFO_PASSWORD.finditer(value):
            found.add(match.group(1))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and not _NOT_A_VALUE.match(v):
                found.add(v)
            _collect_secrets(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect_secrets(v, found)


def redact_value(value: Any, also: Iterable[str] | None = None) -> Any:
    """:func:`redact` over a JSON-like value: strings are redacted, and the value of a key with a credential's name
    (:func:`is_secret_name`) is masked whole unless it is a number, a bool or empty. A credential the value names
    anywhere (``+trainer.wandb_api_key=X`` in an override list) is also masked where it appears in prose elsewhere
    in it ("login failed for key X"). Returns a new value."""
    if also is None:
        found: set[str] = set()
        _collect_secrets(value, found)
        also = found
    if isinstance(value, str):
        return redact(value, also)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and not _NOT_A_VALUE.match(v):
                out[k] = MASK
            else:
                out[k] = redact_value(v, also)
        return out
    if isinstance(value, list | tuple):
        return [redact_value(v, also) for v in value]
    return value


class RedactingStream:
    """A text stream that masks credentials (:func:`redact`) in everything written through it: the CLI wraps
    stdout and stderr with it, so no print, progress bar or library message shows a secret."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text) if isinstance(text, str) else text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_stream_redaction() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` in :class:`RedactingStream` (idempotent)."""
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))


def _clean_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed log call: leave it to logging's own error report
        return
    clean = scrub_text(redact(message))[0]
    if clean != message:
        record.msg, record.args = clean, None


_installed = False


def install_log_redaction() -> None:
    """Mask credentials in URLs and replace lone surrogates in every log record of this process (any logger, any
    handler, including the ones tqdm swaps in while a progress bar runs), so a log never holds a password and never
    fails to encode. Idempotent."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _clean_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
