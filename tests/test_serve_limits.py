"""`underdog serve` cannot be stalled by one request: context-capped max_tokens, generation stopped when the
client goes away, a bounded queue, prompt exit on SIGTERM, a failed stream that ends. Driven over loopback
with httpx / the openai SDK against a tiny random Llama whose context is long enough to generate for minutes
(it almost never samples its end token)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from underdog.config import ModelSpec
from underdog.serve import create_app
from underdog.testing import ServerThread, free_port

LONG = 30_000  # tokens: minutes of generation for the tiny model on 2 cores, unless it is stopped


@pytest.fixture(scope="module")
def long_llama(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """The tiny Llama with a 32k context: a request for LONG tokens is legal and slow."""
    import json
    import shutil

    out = tmp_path_factory.mktemp("long-llama")
    shutil.copytree(tiny_llama_dir, out, dirs_exist_ok=True)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 32_768}))
    return out


def _chat(url: str, max_tokens: int, timeout: float, **extra) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=timeout, json={
        "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens,
        "temperature": 0, **extra})


def _gone_after(url: str, seconds: float, stream: bool = False) -> None:
    """A client that asks for LONG tokens and hangs up: after `seconds` without a reply, or (streamed) after
    the first pieces."""
    if not stream:
        with pytest.raises(httpx.ReadTimeout):
            _chat(url, LONG, seconds)
        return
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": LONG, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=seconds) as response:
        lines = response.iter_lines()
        assert [next(lines) for _ in range(6)]


def test_too_many_tokens_and_huge_seed_are_400(tiny_llama_dir: Path) -> None:
    with ServerThread(create_app(ModelSpec(model=str(tiny_llama_dir)), "tiny")) as server:
        too_long = _chat(server.url, 1_000_000, 30)
        huge_seed = _chat(server.url, 4, 30, seed=2**70)
        ok = _chat(server.url, 4, 30, seed=2**63 + 5)
    assert too_long.status_code == 400 and "context" in too_long.json()["error"]["message"]
    assert huge_seed.status_code == 400 and "seed" in huge_seed.json()["error"]["message"]
    assert ok.status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_stops_its_generation(long_llama: Path, stream: bool) -> None:
    with ServerThread(create_app(ModelSpec(model=str(long_llama)), "tiny")) as server:
        _gone_after(server.url, 1.0, stream=stream)
        # without the stop, the next request waits behind minutes of generation
        after = _chat(server.url, 4, 60)
    assert after.status_code == 200 and after.json()["usage"]["completion_tokens"] == 4


def test_a_full_queue_answers_503(long_llama: Path) -> None:
    with ServerThread(create_app(ModelSpec(model=str(long_llama)), "tiny", max_queue=1)) as server:
        hung = threading.Thread(target=_gone_after, args=(server.url, 3.0))
        hung.start()
        time.sleep(1.0)
        busy = _chat(server.url, 4, 30)
        hung.join()
        time.sleep(0.5)
        later = _chat(server.url, 4, 60)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert later.status_code == 200


def _serve_process(args: list, cwd: Path) -> tuple[subprocess.Popen, str]:
    """`underdog serve ARGS --name tiny` in a child process, once it answers; and its URL."""
    port = free_port()
    command = [sys.executable, "-m", "underdog", "serve", *map(str, args), "--name", "tiny", "--port", str(port)]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=os.environ | {"PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            httpx.get(f"{url}/v1/models", timeout=2)
            return process, url
        except httpx.HTTPError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                raise AssertionError(process.stdout.read().decode()) from None
            time.sleep(0.3)


def test_sigterm_stops_a_long_generation_at_once(long_llama: Path, tmp_path: Path) -> None:
    process, url = _serve_process([long_llama], tmp_path)
    try:
        client = threading.Thread(target=lambda: httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
            "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": LONG}), daemon=True)
        client.start()
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)  # without the stop: minutes of generation first
    finally:
        process.kill()
        process.wait()


def test_serve_with_an_adapter_prints_only_its_own_lines(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """No library notice (peft's deprecated-property FutureWarning) and no "Loading weights" bar."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), lora).save_pretrained(tmp_path / "adapter")
    process, url = _serve_process([tiny_llama_dir, "--adapter", tmp_path / "adapter"], tmp_path)
    try:
        assert _chat(url, 4, 60).status_code == 200
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    finally:
        process.kill()
        process.wait()
    lines = [line for line in output.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == ["loading", "serving"], output


def test_a_failed_stream_ends_with_an_error(tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(ModelSpec(model=str(tiny_llama_dir)), "tiny")
    model = app.state.backend.loaded.model

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with ServerThread(app) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=30)
        monkeypatch.setattr(model, "generate", out_of_memory)
        with pytest.raises(openai.APIError, match="out of memory"):
            list(client.chat.completions.create(model="tiny", stream=True, max_tokens=8,
                                                messages=[{"role": "user", "content": "hi"}]))
        monkeypatch.undo()
        done = list(client.chat.completions.create(model="tiny", stream=True, max_tokens=5, temperature=0,
                                                   messages=[{"role": "user", "content": "hi"}]))
    assert done[-1].choices[0].finish_reason == "length"


def test_stream_honours_stop(tiny_llama_dir: Path) -> None:
    with ServerThread(create_app(ModelSpec(model=str(tiny_llama_dir)), "tiny")) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=30)
        ask = {"model": "tiny", "max_tokens": 12, "temperature": 1, "seed": 3,
               "messages": [{"role": "user", "content": "hi"}]}
        full = client.chat.completions.create(**ask).choices[0].message.content
        stop = full.split()[2] if len(full.split()) > 2 else full[4:8]
        chunks = list(client.chat.completions.create(**ask, stream=True, stop=[stop]))
        plain = client.chat.completions.create(**ask, stop=[stop]).choices[0]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert stop in full and stop not in streamed and full.startswith(streamed.strip())
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert plain.finish_reason == "stop" and plain.message.content == streamed.strip()


def test_stop_strings_are_bounded_and_an_ordinary_request_right_after_is_answered(tiny_llama_dir: Path) -> None:
    app = create_app(ModelSpec(model=str(tiny_llama_dir)), "tiny")
    calls = []
    complete = app.state.backend.complete

    async def counted(request):  # type: ignore[no-untyped-def]
        calls.append(request)
        return await complete(request)

    app.state.backend.complete = counted
    with ServerThread(app) as server:
        many = _chat(server.url, 4, 30, stop=[f"stop{i}" for i in range(300)])
        long = _chat(server.url, 4, 30, stop=["x" * 10_000, "y" * 10_000])
        empty = _chat(server.url, 4, 30, stop="")
        refused = len(calls)
        ordinary = _chat(server.url, 4, 30, stop=["\n\n", "###"])
    assert many.status_code == 400 and many.json()["error"]["message"] == "stop: at most 4 stop strings (got 300)"
    assert long.status_code == 400 and long.json()["error"]["message"] == \
        "stop: each stop string must have 1 to 64 characters (got 10000)"
    assert empty.status_code == 400 and "(got 0)" in empty.json()["error"]["message"]
    assert refused == 0  # refused before any generation
    assert ordinary.status_code == 200 and ordinary.json()["usage"]["completion_tokens"] >= 1


def test_a_prompt_that_fills_the_context_without_max_tokens_says_so(tiny_llama_dir: Path) -> None:
    with ServerThread(create_app(ModelSpec(model=str(tiny_llama_dir)), "tiny")) as server:
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=30, json={
            "model": "tiny", "messages": [{"role": "user", "content": "hello " * 600}]})
    message = response.json()["error"]["message"]
    assert response.status_code == 400 and "None" not in message, message
    assert message.startswith("messages: the prompt leaves no room for a reply in the model's context")
