"""Issue 22, item 2: one ``/models`` probe, one HTTP client, one proxy policy.

The launch guard, ``preflight``'s judge check, ``judge-check``'s probe and the judge client itself must take the
same route to the judge: with every proxy variable pointing at a dead port, all of them still reach a judge on
127.0.0.1 (a probe that honoured a proxy would fail here, and a probe that passed through a different route than
training would prove nothing about training). And only one function of the package builds a ``/models`` URL.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import re
from pathlib import Path

import httpx
import pytest
from fake_openai_server import FakeOpenAIServer
from omegaconf import OmegaConf
from reliability_utils import closed_port
from test_first_hour_eval import ScriptedServer, chat_reply, models_reply

from qwenlong_verl.config_checks import probe_judge as guard_probe
from qwenlong_verl.config_checks import probe_server
from qwenlong_verl.openai_client import list_models, models_url
from qwenlong_verl.preflight import checks as preflight_checks
from qwenlong_verl.reward import judge_check
from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions

PACKAGE = Path(__file__).resolve().parents[1] / "qwenlong_verl"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
KEY_ENV = "QWENLONG_JUDGE_API_KEY"


@pytest.fixture
def dead_proxy(monkeypatch) -> str:
    """Every proxy variable points at a port nothing listens on, and nothing is exempt from the proxy."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in PROXY_VARS:
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    return proxy


def _judge(base_url: str, question: str = "Q?", answer: str = "A", gold: str = "A") -> object:
    """One real judge call through the reward's client (no cache, no retry: one HTTP request)."""
    options = JudgeOptions(base_url=base_url, model="fake-judge", max_retries=0, cache_size=0, timeout_s=10)

    async def go():
        async with JudgeClient(options) as client:
            return await client.judge(question, answer, gold)

    return asyncio.run(go())


def _cfg(base_url: str, model: str = "fake-judge") -> dict:
    return {"qwenlong": {"judge": {"base_url": base_url, "model": model}}}


def test_a_proxy_in_the_environment_would_break_a_default_client(dead_proxy):
    """The setting has teeth: httpx's defaults (trust_env=True, no transport) send a 127.0.0.1 request to the dead
    proxy, which refuses it; a probe that went that way would fail the tests below."""
    with FakeOpenAIServer() as server, pytest.raises(httpx.ConnectError):
        httpx.get(models_url(server.base_url), timeout=5)


def test_guard_preflight_judge_check_and_the_judge_take_the_same_route(dead_proxy):
    with FakeOpenAIServer(responder=lambda msgs: "Same thing.\nVERDICT: YES") as server:
        assert guard_probe(OmegaConf.create(_cfg(server.base_url)), timeout_s=5) == ["fake-judge"]
        assert probe_server(server.base_url, timeout_s=5) is None
        found = preflight_checks.probe_judge(_cfg(server.base_url), timeout_s=5)
        assert [(f.level, f.message) for f in found] == [
            ("info", f"{server.base_url} answers, serving ['fake-judge']")]
        assert judge_check.probe(server.base_url, 5) == ["fake-judge"]
        verdict = _judge(server.base_url)
        assert verdict.ok and verdict.equivalent, verdict.error
        assert server.count == 1  # the judge's one POST arrived; the probes did no model work


def test_preflight_names_a_model_the_judge_does_not_serve_from_the_probe_s_list(dead_proxy):
    with FakeOpenAIServer(model="other-model") as server:
        found = preflight_checks.probe_judge(_cfg(server.base_url, model="fake-judge"), timeout_s=5)
    assert [(f.level, f.key, f.fix) for f in found] == [
        ("error", "qwenlong.judge.model", "qwenlong.judge.model=other-model")]
    assert "'fake-judge' is not served" in found[0].message


def test_every_probe_fails_the_same_way_when_nothing_listens(dead_proxy):
    down = f"http://user:s3cret-pw@127.0.0.1:{closed_port()}/v1"
    reason, ids = list_models(down, timeout_s=2)
    assert reason and ids == [] and "s3cret-pw" not in reason
    found = preflight_checks.probe_judge(_cfg(down), timeout_s=2)
    assert found[0].level == "error" and "the judge is unreachable" in found[0].message
    assert "s3cret-pw" not in found[0].message
    with pytest.raises(judge_check.EndpointUnreachable) as err:
        judge_check.probe(down, 2)
    assert "s3cret-pw" not in str(err.value) and str(err.value).startswith("http://***@127.0.0.1:")
    verdict = _judge(down)
    assert not verdict.ok and "connection" in (verdict.error or "")


def test_probes_send_what_the_judge_sends(dead_proxy, monkeypatch):
    """Same auth: URL user info as basic auth (which then wins over the bearer key), the bearer key alone
    otherwise; the guard and preflight send the judge's own key variable."""
    monkeypatch.setenv(KEY_ENV, "sk-test-0123456789")

    def reply(path: str, body: dict, headers: dict):
        if path.rstrip("/").endswith("/models"):
            return 200, {}, models_reply("fake-judge")
        return 200, {}, chat_reply("VERDICT: YES")

    with ScriptedServer(reply) as server:
        for base in (f"http://127.0.0.1:{server.port}/v1", f"http://alice:pw-1@127.0.0.1:{server.port}/v1"):
            server.requests.clear()
            assert guard_probe(OmegaConf.create(_cfg(base)), timeout_s=5) == ["fake-judge"]
            preflight_checks.probe_judge(_cfg(base), timeout_s=5)
            judge_check.probe(base, 5, KEY_ENV)
            assert _judge(base).ok
            sent = [(method, path, headers.get("Authorization")) for method, path, _, headers in server.requests]
            auth = ("Basic " + base64.b64encode(b"alice:pw-1").decode() if "alice" in base
                    else "Bearer sk-test-0123456789")
            assert sent == [("GET", "/v1/models", auth)] * 3 + [("POST", "/v1/chat/completions", auth)]


# -- one /models URL in the package -----------------------------------------------------------------------------------
MODELS_PATH = re.compile(r"/models(?![\w/-])")  # ".../models" as a request target, not "/models/R1-..." paths
EXEMPT = {"pipeline/standin_judge.py"}  # the stand-in judge serves the route: it matches paths, it requests none


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _models_strings() -> list[tuple[str, str]]:
    """(file, enclosing function) of every string constant in the package naming a ``/models`` target."""
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in EXEMPT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstring_ids(tree)
        parents: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and MODELS_PATH.search(node.value)):
                owner: ast.AST | None = node
                while owner is not None and not isinstance(owner, ast.FunctionDef | ast.AsyncFunctionDef):
                    owner = parents.get(id(owner))
                hits.append((rel, owner.name if owner is not None else "<module>"))
    return hits


def test_only_one_function_builds_a_models_url():
    assert _models_strings() == [("openai_client.py", "models_url")]


def test_the_models_url_rule():
    assert models_url("http://h:8000/v1") == "http://h:8000/v1/models"
    assert models_url("http://h:8000/v1/") == "http://h:8000/v1/models"
    assert models_url("http://h:8000/v1/chat/completions") == "http://h:8000/v1/models"
    assert models_url("http://h:8000") == "http://h:8000/v1/models"


# (what the user wrote, the base every request and probe uses)
URL_CASES = [
    ("http://h:8000", "http://h:8000/v1"),
    ("http://h:8000/", "http://h:8000/v1"),
    ("http://h:8000/v1", "http://h:8000/v1"),
    ("http://h:8000/v1/", "http://h:8000/v1"),
    ("http://h:8000/v1/chat/completions", "http://h:8000/v1"),
    ("https://gw.example/v1beta/openai", "https://gw.example/v1beta/openai"),  # a gateway's path is kept
    ("https://gw.example/judge/v1", "https://gw.example/judge/v1"),
    ("http://h:8000/api", "http://h:8000/api"),  # eval added /v1 here, score kept it: one rule now
]


@pytest.mark.parametrize(("given", "base"), URL_CASES)
def test_training_score_pipeline_and_eval_send_a_url_to_the_same_place(given, base):
    """One URL rule (openai_client.openai_base_url) for the trainer's judge, score and the pipeline's judge, eval's
    judge and eval's model: the same text reaches the same server everywhere."""
    from qwenlong_verl.evaluation.api import EndpointEvalOptions
    from qwenlong_verl.evaluation.client import ChatOptions
    from qwenlong_verl.openai_client import openai_base_url

    assert openai_base_url(given) == base
    chat = base + "/chat/completions"
    assert JudgeOptions(base_url=given).url == chat  # qwenlong.judge.base_url in training (and the pipeline's)
    assert JudgeOptions(base_url=openai_base_url(given)).url == chat  # score, eval's judge
    assert ChatOptions(endpoint=given, model="m").url == chat  # eval's model server
    assert models_url(given) == base + "/models"  # every probe
    assert EndpointEvalOptions(endpoint=given, model="m", data=["x.jsonl"], out_dir="o").chat_options().url == chat


def test_no_http_library_but_httpx_in_the_package():
    """urllib.request (and with it a second proxy policy) is gone from the package's own requests."""
    users = [p.relative_to(PACKAGE).as_posix() for p in sorted(PACKAGE.rglob("*.py"))
             if re.search(r"^\s*(import|from)\s+(urllib\.request|urllib3|requests|aiohttp)\b",
                          p.read_text(encoding="utf-8"), re.M)]
    assert users == []
