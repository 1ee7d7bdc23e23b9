"""The shared call path against a real OpenAI SDK talking to a scripted server on loopback.

Retries (429 + Retry-After, 500, timeouts, malformed JSON), fatal errors, the reply cache, rate limits,
budgets, and API keys never leaking into outputs, files or the database.
"""

import time
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.config import ModelSpec
from underdog.errors import BudgetExceeded, ModelError
from underdog.llm import LLM
from underdog.store import Store
from underdog.testing import ScriptedOpenAI, ServerThread


def _spec(server: ServerThread, **changes) -> ModelSpec:
    fields = {"provider": "openai", "model": "scripted", "base_url": server.url + "/v1", "max_retries": 3,
              "timeout_s": 5.0}
    return ModelSpec(**(fields | changes))


@pytest.fixture
def scripted():
    fake = ScriptedOpenAI()
    with ServerThread(fake.app) as server:
        yield fake, server


def test_reply_and_token_counts_over_real_http(scripted) -> None:
    fake, server = scripted
    reply = LLM(_spec(server)).chat("hello", temperature=0.1, top_p=0.5, max_tokens=7, seed=3)
    assert reply.text == "echo: hello" and reply.output_tokens > 0 and reply.finish_reason == "stop"
    body = fake.bodies[0]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.1, 0.5, 7, 3)


def test_retries_429_with_retry_after_then_500_then_malformed(scripted) -> None:
    fake, server = scripted
    fake.faults = ["429:0.3", "500", "malformed"]
    started = time.perf_counter()
    reply = LLM(_spec(server)).chat("hi")
    assert reply.text == "echo: hi"
    assert fake.requests == 4
    assert time.perf_counter() - started >= 0.3  # waited as long as Retry-After asked


def test_slow_reply_times_out_and_is_retried(scripted) -> None:
    fake, server = scripted
    fake.faults = ["slow:2"]
    reply = LLM(_spec(server, timeout_s=0.5)).chat("hi")
    assert reply.text == "echo: hi" and fake.requests == 2


def test_gives_up_with_one_line_after_max_retries(scripted) -> None:
    fake, server = scripted
    fake.faults = ["500"] * 10
    with pytest.raises(ModelError) as info:
        LLM(_spec(server, max_retries=2), role="teacher").chat("hi")
    assert fake.requests == 3
    assert str(info.value) == "teacher (openai:scripted): HTTP 500 server error (gave up after 3 attempts)"


def test_fatal_errors_are_not_retried(scripted) -> None:
    fake, server = scripted
    fake.faults = ["401"]
    with pytest.raises(ModelError, match="HTTP 401 unauthorized at http://127.0.0.1:.*: set api_key_env"):
        LLM(_spec(server)).chat("hi")
    assert fake.requests == 1


def test_unreachable_server_is_one_clear_line() -> None:
    spec = ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(ModelError, match=r"cannot reach http://127\.0\.0\.1:9/v1 .*gave up after 2 attempts"):
        LLM(spec).chat("hi")


def test_second_identical_batch_makes_zero_http_requests(scripted, tmp_path: Path) -> None:
    fake, server = scripted
    store = Store(tmp_path / "underdog.db")
    prompts = [f"question {i}" for i in range(12)]
    first = LLM(_spec(server), store, stage="generate").batch(prompts)
    assert fake.requests == 12
    llm = LLM(_spec(server), store, stage="generate")
    second = llm.batch(prompts)
    assert fake.requests == 12 and llm.http_calls == 0
    assert [r.text for r in second] == [r.text for r in first] and all(r.cached for r in second)
    # a different sample index or param is a different request
    LLM(_spec(server), store).batch(prompts[:1], samples=[1])
    assert fake.requests == 13


def test_identical_requests_in_flight_make_one_http_call(tmp_path: Path) -> None:
    fake = ScriptedOpenAI(delay_s=0.3)
    with ServerThread(fake.app) as server:
        store = Store(tmp_path / "underdog.db")
        llm = LLM(_spec(server, concurrency=8), store, stage="judge")
        replies = llm.batch(["same question"] * 10 + ["other question"])
        assert fake.requests == 2 and llm.http_calls == 2
        assert [r.text for r in replies] == ["echo: same question"] * 10 + ["echo: other question"]
        assert sum(not r.cached for r in replies) == 2  # the followers count as cache hits
        rows = store.query("SELECT cached, COUNT(*) AS n FROM llm_calls GROUP BY cached ORDER BY cached")
        assert [(r["cached"], r["n"]) for r in rows] == [(0, 2), (1, 9)]


def test_followers_of_a_failed_request_fail_with_it(scripted) -> None:
    fake, server = scripted
    fake.faults = ["401"]
    replies = LLM(_spec(server)).batch(["same"] * 4, errors="return")
    assert fake.requests == 1 and all("401" in r.error for r in replies)


def test_partial_failure_keeps_finished_replies(scripted, tmp_path: Path) -> None:
    fake, server = scripted
    store = Store(tmp_path / "underdog.db")
    spec = _spec(server, max_retries=0, concurrency=1)
    fake.faults = [None, "500", None]
    replies = LLM(spec, store).batch(["a", "b", "c"], errors="return")
    assert [bool(r.error) for r in replies] == [False, True, False]
    assert "HTTP 500" in replies[1].error
    again = LLM(spec, store).batch(["a", "b", "c"])  # resumes: only the failed one is asked again
    assert fake.requests == 4 and [r.cached for r in again] == [True, False, True]


def test_concurrency_and_rate_limit(tmp_path: Path) -> None:
    fake = ScriptedOpenAI(delay_s=0.2)
    with ServerThread(fake.app) as server:
        started = time.perf_counter()
        LLM(_spec(server, concurrency=8)).batch([str(i) for i in range(16)])
        concurrent = time.perf_counter() - started
        started = time.perf_counter()
        LLM(_spec(server, requests_per_minute=600)).batch([f"r{i}" for i in range(4)])
        limited = time.perf_counter() - started
    assert concurrent < 16 * 0.2 / 2  # far below the sequential 3.2 s
    assert limited >= 0.3  # 4 starts spaced 0.1 s apart


def test_budget_stops_before_overspending(scripted, tmp_path: Path) -> None:
    fake, server = scripted
    store = Store(tmp_path / "underdog.db")
    spec = _spec(server, price_per_1m_input=1_000_000.0, price_per_1m_output=0.0, concurrency=1)
    llm = LLM(spec, store, stage="generate", stage_budget_usd=40.0)
    llm.chat("x")  # ~ a dozen input tokens -> ~$12
    with pytest.raises(BudgetExceeded, match="stage 'generate' would exceed its budget of \\$40.00"):
        llm.batch([f"question number {i}" for i in range(10)])
    assert store.spent_usd("generate") <= 40.0
    assert fake.requests < 11


def test_api_key_never_leaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-PLANTED-7f3a9c1e5b"
    monkeypatch.setenv("UNDERDOG_TEST_KEY", secret)
    fake = ScriptedOpenAI(faults=["429", "401"])
    with ServerThread(fake.app) as server:
        from underdog.project import init_project

        root = tmp_path / "p"
        init_project("test", root)
        config = (root / "underdog.yaml").read_text().replace(
            "  teacher:            # writes the training data\n    provider: local\n    model: smollm2-135m",
            f"  teacher:\n    provider: openai\n    model: scripted\n    base_url: {server.url}/v1\n"
            "    api_key_env: UNDERDOG_TEST_KEY\n    max_retries: 3")
        (root / "underdog.yaml").write_text(config)
        result = invoke_cli("-C", str(root), "chat", "teacher", "hello")
        models = invoke_cli("-C", str(root), "models")
    assert fake.requests == 2  # the 429 was retried, the 401 was not
    assert result.exit_code == 1 and "HTTP 401 unauthorized" in result.output
    assert "UNDERDOG_TEST_KEY" in result.output  # names the variable, not the value
    for text in (result.output, models.output):
        assert secret not in text
    for path in root.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_azure_backend_uses_deployment_path_and_api_version(scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, server = scripted
    monkeypatch.setenv("AZURE_TEST_KEY", "azure-secret-value")
    spec = ModelSpec(provider="azure", model="my-gpt4o", base_url=server.url, api_version="2024-10-21",
                     api_key_env="AZURE_TEST_KEY")
    assert LLM(spec).chat("hello").text == "echo: hello"
    assert fake.bodies[0]["_path"] == "/openai/deployments/my-gpt4o/chat/completions"
    assert "api-version=2024-10-21" in fake.bodies[0]["_query"]


def test_litellm_backend_over_loopback(scripted) -> None:
    pytest.importorskip("litellm")
    fake, server = scripted
    spec = ModelSpec(provider="litellm", model="openai/scripted", base_url=server.url + "/v1", max_retries=2)
    fake.faults = ["429"]
    assert LLM(spec).chat("hello", seed=7, stop=["###"]).text == "echo: hello"
    assert fake.requests == 2
    assert fake.bodies[-1]["seed"] == 7 and fake.bodies[-1]["stop"] == ["###"]  # not silently dropped


def test_json_mode_is_requested(scripted) -> None:
    fake, server = scripted
    LLM(_spec(server)).batch(["give JSON"], json_mode=True)
    assert fake.bodies[0]["response_format"] == {"type": "json_object"}


CHILD = """
import sys
from underdog.config import ModelSpec
from underdog.llm import LLM
from underdog.store import Store

spec = ModelSpec(provider="openai", model="scripted", base_url=sys.argv[2] + "/v1", concurrency=6, max_retries=0,
                 timeout_s=120, price_per_1m_input=1000.0, price_per_1m_output=1000.0)
LLM(spec, Store(sys.argv[1]), stage="generate", role="teacher").batch([f"question {i}" for i in range(10)])
"""


def test_calls_in_flight_at_a_kill_count_as_possibly_paid_in_usage_and_budgets(project_dir: Path, cli) -> None:
    import signal
    import subprocess
    import sys

    fake = ScriptedOpenAI(delay_s=5.0)  # the server holds each request: six are in flight at the kill
    with ServerThread(fake.app) as server:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(project_dir / "underdog.db"), server.url])
        deadline = time.time() + 60
        while fake.requests < 6 and child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert fake.requests == 6
    store = Store(project_dir / "underdog.db")
    paid, possibly = store.spending("generate")
    pending = store.pending_calls()
    assert paid == 0 and store.usage() == []  # no reply was recorded
    assert [(p["pid"], p["alive"], p["calls"], p["stage"]) for p in pending] == [(child.pid, False, 6, "generate")]
    assert possibly == pytest.approx(pending[0]["estimate_usd"]) and possibly > 6 * 512 * 1000 / 1e6
    output = cli("usage").output
    assert f"possibly paid: 6 call(s) to openai:scripted (stage generate) sent by process {child.pid}, gone" in output
    assert f"+ up to ${possibly:.4f} possibly paid" in output
    spec = ModelSpec(provider="openai", model="scripted", base_url="http://127.0.0.1:9/v1", max_retries=0,
                     price_per_1m_input=1000.0, price_per_1m_output=1000.0)
    with pytest.raises(BudgetExceeded, match=r"possibly paid by calls a stopped process sent and never recorded"):
        LLM(spec, store, stage="generate", budget_usd=possibly + 0.1).chat("one more")


def test_a_recorded_or_failed_call_leaves_no_pending_row(scripted, tmp_path: Path) -> None:
    fake, server = scripted
    store = Store(tmp_path / "underdog.db")
    fake.faults = [None, "500", None]
    replies = LLM(_spec(server, max_retries=0, concurrency=1), store, stage="s").batch(["a", "b", "c"],
                                                                                       errors="return")
    assert [bool(r.error) for r in replies] == [False, True, False]
    assert store.query("SELECT COUNT(*) FROM llm_pending")[0][0] == 0 and store.spending("s") == (0.0, 0.0)
    assert len(store.query("SELECT * FROM llm_calls")) == 3
