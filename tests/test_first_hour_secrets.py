"""Issue 24, nothing leaked: a credential (URL user info, an API key, the value of any key named like *key*,
*token*, *secret*, *password*) is masked wherever a person or a file can see it, text echoed by servers included,
and the up-front server probe never goes through a proxy. Local HTTP servers on 127.0.0.1 stand in for the judge,
the model and a proxy."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from test_first_hour_eval import ScriptedServer, chat_reply, models_reply, run_eval, write_rows

from qwenlong_verl.cli import main

USER, PASSWORD = "alice", "s3cretpw-9f2"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _leaks(*texts: str) -> list[str]:
    return [t for t in texts if PASSWORD in t or f"{USER}:" in t or "sk-live" in t or "wk-s3cret" in t]


def _auth_only(reply):
    """A server that answers only requests carrying alice's basic auth (401 otherwise), like a judge behind auth."""

    def handle(path: str, body: dict, headers: dict):
        if headers.get("Authorization") != BASIC:
            return 401, {}, b'{"error": "unauthorized"}'
        return reply(path, body, headers)

    return handle


def _yes_judge(path: str, body: dict, headers: dict):
    if path.rstrip("/").endswith("/models"):
        return 200, {}, models_reply("judge")
    return 200, {}, chat_reply("They match.\nVERDICT: YES")


def test_judge_check_takes_a_credentialed_url_and_never_shows_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("QWENLONG_JUDGE_API_KEY", raising=False)
    out = tmp_path / "judge_check.json"
    with ScriptedServer(_auth_only(_yes_judge)) as judge:
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{judge.port}/v1"
        rc = main(["judge-check", "--url", url, "--mode", "generate", "--json", str(out), "--show-wrong"])
        posts = [h for m, _, _, h in judge.requests if m == "POST"]
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert posts and all(h.get("Authorization") == BASIC for h in posts)  # the judge got every call, with auth
    assert "accuracy" in captured.out and "***@127.0.0.1" in captured.out
    assert not _leaks(captured.out, captured.err, out.read_text())
    assert json.loads(out.read_text())["url"] == f"http://***@127.0.0.1:{judge.port}/v1"


def test_judge_check_bounds_its_numbers(capsys):
    for option, value in (("--concurrency", "100000"), ("--timeout", "0"), ("--min-accuracy", "2")):
        with pytest.raises(SystemExit) as exc:
            main(["judge-check", option, value])
        assert exc.value.code == 2
        assert option in capsys.readouterr().err


def test_the_server_probe_never_goes_through_a_proxy(monkeypatch):
    """urllib takes http_proxy from the environment: the probe sent user:password to the proxy. It must take the
    judge client's route (no proxy), and still send the URL's user info to the server itself."""
    from qwenlong_verl.config_checks import probe_server

    with ScriptedServer(lambda p, b, h: (200, {}, models_reply())) as proxy, \
            ScriptedServer(_auth_only(lambda p, b, h: (200, {}, models_reply()))) as target:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        assert probe_server(f"http://{USER}:{PASSWORD}@127.0.0.1:{target.port}/v1") is None
        assert proxy.requests == []
        assert [h.get("Authorization") for _, _, _, h in target.requests] == [BASIC]


def test_url_syntax_errors_do_not_echo_the_password(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--endpoint", "http://127.0.0.1:1", "--model", "m", "--out", "x", "--data", "d.jsonl",
              "--judge-endpoint", f"http://{USER}:{PASSWORD}@judge:notaport/v1", "--judge-model", "j"])
    err = capsys.readouterr().err
    assert "--judge-endpoint" in err and "not a valid URL" in err
    assert not _leaks(err)


def test_server_error_bodies_echoing_the_key_are_masked(tmp_path, tiny_model_dir, monkeypatch, capsys, caplog):
    """A server that echoes the request (Authorization header included) in its error body: the body reaches
    stderr, the failed rows of the report and the log, always masked."""
    monkeypatch.setenv("MY_MODEL_API_KEY", "sk-live-0123456789abcdef")

    def echo(path: str, body: dict, headers: dict):
        if path.rstrip("/").endswith("/models"):
            return 200, {}, models_reply()
        return 400, {}, json.dumps({"error": "bad request", "request_headers": headers}).encode()

    data = write_rows(tmp_path / "rows.jsonl", [("a", "Q?", "A")])
    out = tmp_path / "out"
    with ScriptedServer(echo) as model:
        assert run_eval(model, data, out, tiny_model_dir, "--api-key-env", "MY_MODEL_API_KEY") == 1
        sent = [h.get("Authorization") for m, _, _, h in model.requests if m == "POST"]
    assert sent == ["Bearer sk-live-0123456789abcdef"]  # the key was really sent (and echoed back)
    assert "1 generation request(s) failed (a#0" in caplog.text  # the handled failure, not a crash
    captured = capsys.readouterr()
    report = (out / "report.json").read_text()
    assert "bad request" in report and "Authorization" in report  # the server's words are kept...
    assert not _leaks(captured.out, captured.err, caplog.text, report, (out / "report.md").read_text())  # ...masked


def test_sweep_report_masks_swept_credentials(tmp_path, capsys):
    from qwenlong_verl.hydra.sweep import STATUS_FILE

    sweep = tmp_path / "sweep"
    for num, (key, url) in enumerate((("wk-s3cret-aaaa", "http://h/v1"),
                                      ("wk-s3cret-bbbb", f"http://{USER}:{PASSWORD}@h/v1"))):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        overrides = ["+recipe=qwenlong_phase1", f"+trainer.wandb_api_key={key}", f"qwenlong.judge.base_url={url}"]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (job / STATUS_FILE).write_text(json.dumps({"job_num": num, "status": "failed", "overrides": overrides,
                                                   "error": f"RuntimeError: wandb login failed for key {key}"}))
    assert main(["sweep-report", str(sweep), "--no-plot"]) == 0
    assert main(["sweep-report", str(sweep), "--no-plot", "--json"]) == 0
    captured = capsys.readouterr()
    files = [p.read_text() for p in sweep.glob("sweep_report.*")]
    assert files and "+trainer.wandb_api_key" in captured.out
    assert not _leaks(captured.out, captured.err, *files)


@pytest.mark.parametrize("text, secret", [
    ("python -m verl.trainer.main_ppo +trainer.wandb_api_key=wk-s3cret-1 lr=2e-6", "wk-s3cret-1"),
    ('{"headers": {"Authorization": "Bearer sk-live-abcdef"}}', "sk-live-abcdef"),
    ("{'authorization': 'Basic YWxpY2U6czNjcmV0cHc='}", "YWxpY2U6czNjcmV0cHc="),
    ("HF_TOKEN=hf_abcdef123 and password: 'pa ss'", "hf_abcdef123"),
    ("see http://alice:pw@host:8000/v1?api_key=k3y", "pw@"),
])
def test_one_redaction_masks_every_kind_of_credential(text, secret):
    from qwenlong_verl.redaction import redact

    assert secret not in redact(text) and "***" in redact(text)


def test_redaction_leaves_ordinary_numbers_and_names_alone():
    from qwenlong_verl.redaction import redact, redact_value

    text = ("actor_rollout_ref.actor.ppo_max_token_len_per_gpu=10000; max_tokens: 256; "
            "qwenlong.judge.api_key_env=QWENLONG_JUDGE_API_KEY; key: actor_rollout_ref.model.path")
    assert redact(text) == text
    finding = {"key": "actor_rollout_ref.model.path", "max_tokens": 5, "api_key": "sk-1"}
    assert redact_value(finding) == {"key": "actor_rollout_ref.model.path", "max_tokens": 5, "api_key": "***"}


def test_env_credentials_are_masked_wherever_they_appear(monkeypatch):
    from qwenlong_verl.redaction import redact

    monkeypatch.setenv("QWENLONG_JUDGE_API_KEY", "plainvalue-778899")
    assert redact("the server said: plainvalue-778899 is not valid") == "the server said: *** is not valid"
