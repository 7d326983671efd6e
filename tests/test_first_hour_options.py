"""Issue 24, options: `score` sends no API key unless asked (as `eval`), and every numeric option of every command
has an upper bound (a typo is refused by argparse with exit 2 naming the option, before any work)."""

from __future__ import annotations

import argparse
import json

import pytest
from test_first_hour_eval import ScriptedServer, chat_reply, models_reply

from qwenlong_verl.cli import build_parser, main

ROWS = [{"data_source": "hotpotqa", "question": "Capital of France?", "response": "It is Lyon.",
         "ground_truth": "Paris"}]


def _judge(path: str, body: dict, headers: dict):
    if path.rstrip("/").endswith("/models"):
        return 200, {}, models_reply("judge")
    return 200, {}, chat_reply("They differ.\nVERDICT: NO")


def _score(tmp_path, *extra: str) -> list[dict]:
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    with ScriptedServer(_judge) as judge:
        rc = main(["score", str(src), "--no-progress", "--judge-retries", "0", "--judge-url",
                   f"http://127.0.0.1:{judge.port}/v1", *extra])
        posts = [h for m, _, _, h in judge.requests if m == "POST"]
    assert rc == 0 and posts, "the judge was asked nothing"
    return posts


def test_score_sends_no_key_unless_asked(tmp_path, monkeypatch):
    """A key exported for one server (QWENLONG_JUDGE_API_KEY) went to any --judge-url `score` was given; `eval` sends
    none unless --judge-api-key-env names the variable. Now both behave the same."""
    monkeypatch.setenv("QWENLONG_JUDGE_API_KEY", "sk-live-not-for-this-server")
    posts = _score(tmp_path)
    assert all("Authorization" not in h and "authorization" not in h for h in posts), posts
    posts = _score(tmp_path, "--judge-api-key-env", "QWENLONG_JUDGE_API_KEY")  # the explicit opt-in
    assert all(h.get("Authorization") == "Bearer sk-live-not-for-this-server" for h in posts)


@pytest.mark.parametrize("option, value", [("--judge-concurrency", "100000"), ("--judge-concurrency", "0"),
                                           ("--judge-retries", "21"), ("--judge-retries", "-1"),
                                           ("--judge-timeout", "1e9")])
def test_score_bounds_its_judge_numbers(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        main(["score", str(tmp_path / "rows.jsonl"), option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "from" in err and "Traceback" not in err


def _numeric_actions() -> list[tuple[str, str, argparse.Action]]:
    """(command, option, action) of every option of every command that takes one value (not a choice or a flag)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for command, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.nargs is None and action.type is not None and not action.choices:
                out.append((command, action.option_strings[-1], action))
    return out


# options whose value is text (a URL, a JSON object, a list of names), not a number
TEXT_TYPES = {"http_url", "json_object", "_family", "_kinds", "_lengths"}


def test_every_numeric_option_of_every_command_has_an_upper_bound():
    """The principle, checked over the whole CLI: each option that parses a number refuses an absurdly large one.
    (A new option with type=int would fail here.)"""
    unbounded = []
    checked = 0
    for command, option, action in _numeric_actions():
        if getattr(action.type, "__name__", "") in TEXT_TYPES:
            continue
        checked += 1
        try:
            action.type("1" + "0" * 30)
        except argparse.ArgumentTypeError:
            continue
        unbounded.append(f"{command} {option}")
    assert checked >= 30, checked  # the walk really saw the numeric options
    assert unbounded == []


def test_bounded_options_still_take_their_defaults():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, option, action in _numeric_actions():
        if action.default is None or getattr(action.type, "__name__", "") in TEXT_TYPES:
            continue
        assert action.type(str(action.default)) == action.default, (command, option)
    assert sub.choices["pipeline"].parse_args(["--demo-pretrain-steps", "0"]).demo_pretrain_steps == 0
