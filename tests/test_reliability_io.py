"""The output discipline (``outputs``): paths checked before the work, atomic replacement, text that always encodes;
credentials masked (``redaction``); and the CLI's top-level handler (one line, exit codes, Ctrl-C)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from reliability_utils import PKG_ROOT, UNEXPECTED
from strategies import any_text

from qwenlong_verl.config import QwenLongConfigError
from qwenlong_verl.outputs import (
    OutputPathError,
    atomic_path,
    atomic_write,
    check_distinct,
    check_output,
    scrub,
    scrub_text,
    write_json,
    write_jsonl,
)
from qwenlong_verl.redaction import install_log_redaction, redact, redact_url


# -- check_output: refused before any work, with a message naming the option, the path and the fix ------------------
@pytest.mark.parametrize("case, expect", [
    ("folder", "is a folder"),
    ("input", "is also an input"),
    ("input_via_symlink", "is also an input"),
    ("input_via_hardlink", "is also an input"),
    ("parent_is_file", "is a file, not a folder"),
    ("suffix", "writes .parquet files"),
    ("empty", "not a file name"),
])
def test_check_output_refuses(tmp_path, case, expect):
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    target = {
        "folder": tmp_path,
        "input": src,
        "input_via_symlink": tmp_path / "link.jsonl",
        "input_via_hardlink": tmp_path / "hard.jsonl",
        "parent_is_file": src / "out.parquet",
        "suffix": tmp_path / "out.csv",
        "empty": "",
    }[case]
    if case == "input_via_symlink":
        os.symlink(src, target)
    if case == "input_via_hardlink":
        os.link(src, target)
    with pytest.raises(OutputPathError, match=expect) as err:
        check_output(target, option="--out", inputs=[src], suffixes=(".parquet",) if case == "suffix" else None)
    assert "--out" in str(err.value)
    assert src.read_text() == "{}\n"


def test_check_output_makes_missing_folders_or_refuses(tmp_path):
    deep = tmp_path / "a" / "b" / "out.json"
    assert check_output(deep) == deep and deep.parent.is_dir() and not deep.exists()
    with pytest.raises(OutputPathError, match="does not exist; create it first"):
        check_output(tmp_path / "x" / "out.json", make_parents=False)


def test_check_output_unwritable_folder(tmp_path, monkeypatch):
    # root ignores permission bits, so the check is driven through os.access, as the real check does
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(OutputPathError, match="is not writable"):
        check_output(tmp_path / "out.json")


def test_check_distinct(tmp_path):
    check_distinct(**{"--output": tmp_path / "a", "--json": "-"})
    with pytest.raises(OutputPathError, match="--json and --output both write|--output and --json"):
        check_distinct(**{"--output": tmp_path / "a", "--json": tmp_path / "a"})


# -- atomic replacement --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, failure):
    target = tmp_path / "out.jsonl"
    target.write_text("old complete content\n")
    with pytest.raises(type(failure)):
        with atomic_write(target) as fh:
            fh.write("half of the new")
            raise failure
    assert target.read_text() == "old complete content\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_atomic_path_keeps_the_extension_and_mode(tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # not replaced before the block ends
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640


def test_jsonl_with_lone_surrogates_is_written_whole(tmp_path):
    target = tmp_path / "rows.jsonl"
    target.write_text("previous\n")
    rows = [{"response": "half an emoji \ud83d"}, {"ok": "😀", "k\udc80": ["\udfff"]}]
    n, replaced = write_jsonl(target, rows)
    assert (n, replaced) == (2, 3)
    back = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert back[0]["response"] == "half an emoji \ufffd" and back[1]["ok"] == "😀"
    assert write_json(tmp_path / "x.json", {"a": "\ud800"}) == 1


@settings(max_examples=200, deadline=None)
@given(any_text(40))
def test_scrub_text_always_encodes(text):
    fixed, n = scrub_text(text)
    fixed.encode("utf-8")  # never raises
    surrogates = sum("\ud800" <= ch <= "\udfff" for ch in text)
    assert 0 <= n <= surrogates
    if not surrogates:
        assert (fixed, n) == (text, 0)


def test_scrub_joins_pairs_and_counts_only_replacements():
    assert scrub_text("\ud83d\ude00") == ("😀", 0)
    assert scrub_text("a\ud83db") == ("a\ufffdb", 1)
    value = {"x": ("\udc80", 1)}
    assert scrub(value) == ({"x": ("\ufffd", 1)}, 1)
    same = {"x": [1, "ok"]}
    assert scrub(same)[0] is same


# -- credentials ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, want", [
    ("http://user:pw@host:8000/v1", "http://***@host:8000/v1"),
    ("https://tok@[::1]/v1", "https://***@[::1]/v1"),
    ("http://host/v1?api_key=abc&x=1", "http://host/v1?api_key=***&x=1"),
    ("http://host:8000/v1", "http://host:8000/v1"),
    (None, None),
])
def test_redact_url(url, want):
    assert redact_url(url) == want


def test_redact_text_and_log_records(caplog):
    text = "POST http://alice:s3cret@judge:8000/v1/chat/completions failed; see https://k@x.org/?token=t0k"
    clean = redact(text)
    assert "s3cret" not in clean and "t0k" not in clean and "alice" not in clean and "judge:8000" in clean
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("qwenlong_verl.test").info("endpoint %s reply %s", "http://u:pw@h/v1", "\ud83d")
    assert "pw@" not in caplog.text and "***@h/v1" in caplog.text and "\ufffd" in caplog.text


# -- the top-level handler -----------------------------------------------------------------------------------------
def _args(func, **extra) -> argparse.Namespace:
    return argparse.Namespace(func=func, command="demo", verbose=False, **extra)


def _raise(exc: BaseException):
    def func(_args):
        raise exc
    return func


@pytest.mark.parametrize("exc, code, expect", [
    # a bug: its own exit code, so a test or script expecting a handled error's 1 cannot pass on it
    (RuntimeError("disk on fire"), 70,
     "internal error in qwenlong-verl demo: RuntimeError: disk on fire (rerun with -v for the traceback)"),
    (TypeError("f() takes 1 argument"), 70, "internal error in qwenlong-verl demo: TypeError: f() takes 1 argument"),
    # handled: the message is the whole story (no "-v" hint), exit 1 or the error's own code
    (QwenLongConfigError("qwenlong.judge.timeout_s must be > 0; set it in the qwenlong: block"), 1,
     "qwenlong-verl demo: qwenlong.judge.timeout_s must be > 0; set it in the qwenlong: block"),
    (FileNotFoundError(2, "No such file or directory", "rows.jsonl"), 1,
     "qwenlong-verl demo: [Errno 2] No such file or directory: 'rows.jsonl'"),
    (OutputPathError("--out 'x' is a folder"), 2, "--out 'x' is a folder"),
])
def test_errors_become_one_line(caplog, exc, code, expect):
    from qwenlong_verl.cli import run_command

    with caplog.at_level(logging.ERROR):
        assert run_command(_args(_raise(exc))) == code
    [line] = caplog.text.strip().splitlines()
    assert expect in line
    assert (UNEXPECTED in line) == (code == 70)


def test_verbose_adds_the_traceback(caplog):
    from qwenlong_verl.cli import run_command

    args = _args(_raise(RuntimeError("boom")))
    args.verbose = True
    with caplog.at_level(logging.ERROR):
        assert run_command(args) == 70
    assert "Traceback" in caplog.text and "RuntimeError: boom" in caplog.text


# `qwenlong-verl synth` as the console script runs it, with a bug injected where it writes its rows
BROKEN_SYNTH = r"""
import sys
import qwenlong_verl.data.synth as synth
def broken(*args, **kwargs):
    raise TypeError("write_rows() got an unexpected keyword argument 'seed'")
synth.write_rows = broken
from qwenlong_verl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_unexpected_exception_in_a_real_command_exits_70_with_one_line(tmp_path):
    """The whole CLI in its own process: a TypeError inside `synth` is exit 70 and one stderr line naming it, no
    traceback; with -v the traceback follows."""
    argv = ["synth", "--out", str(tmp_path / "s.parquet"), "-n", "2", "--min-tokens", "50", "--max-tokens", "60"]
    env = {**os.environ, "PYTHONPATH": PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", BROKEN_SYNTH, *argv], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 70, proc.stderr[-2000:]
    # beside the progress bar and INFO lines of the work done before the bug: one line
    lines = [x for x in proc.stderr.splitlines() if x.strip() and "%|" not in x and not x.startswith("INFO ")]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert "internal error in qwenlong-verl synth: TypeError: write_rows() got an unexpected keyword" in lines[0]
    assert lines[0].endswith("(rerun with -v for the traceback)") and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.parquet").exists()
    verbose = subprocess.run([sys.executable, "-c", BROKEN_SYNTH, *argv, "-v"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert verbose.returncode == 70 and "Traceback (most recent call last)" in verbose.stderr


def test_ctrl_c_exits_130_with_the_resume_hint(capsys):
    from qwenlong_verl.cli import run_command

    args = _args(_raise(KeyboardInterrupt()), interrupt_hint=lambda a: "saved X; rerun to resume")
    assert run_command(args) == 130
    assert "interrupted: saved X; rerun to resume" in capsys.readouterr().err
    assert run_command(_args(_raise(KeyboardInterrupt()))) == 130


@pytest.mark.parametrize("argv", [["-v", "score", "x.jsonl"], ["score", "x.jsonl", "-v"]])
def test_verbose_flag_before_or_after_the_command(argv):
    from qwenlong_verl.cli import build_parser

    assert build_parser().parse_args(argv).verbose is True
    assert build_parser().parse_args(["score", "x.jsonl"]).verbose is False
