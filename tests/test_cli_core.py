"""The core commands as a user runs them: init, models, chat, usage, and `underdog serve` as a real process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import invoke_cli
from underdog.testing import free_port


def test_init_models_chat_usage(project_dir: Path, tiny_llama_dir: Path) -> None:
    result = invoke_cli("models")
    assert result.exit_code == 0, result.output
    assert result.output.count("smollm2-135m") == 4 and result.output.count(" ok ") == 4

    first = invoke_cli("chat", str(tiny_llama_dir), "What is a permit?", "--max-tokens", "5", "-t", "0")
    second = invoke_cli("chat", str(tiny_llama_dir), "What is a permit?", "--max-tokens", "5", "-t", "0")
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert first.output.splitlines()[0] == second.output.splitlines()[0]
    assert "cached" in second.output and "cached" not in first.output

    usage = invoke_cli("usage")
    assert usage.exit_code == 0
    assert "chat" in usage.output and "total cost: $0.0000" in usage.output


def test_models_reports_unreachable_server(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    path.write_text(path.read_text().replace(
        "  reference:          # the big model to beat\n    provider: local\n    model: smollm2-135m",
        "  reference:\n    provider: openai\n    model: big\n    base_url: http://127.0.0.1:9/v1"))
    result = invoke_cli("models")
    assert result.exit_code == 1  # a role that does not answer fails the check
    assert "cannot reach http://127.0.0.1:9/v1" in result.output


def test_serve_command_runs_an_openai_compatible_server(tiny_llama_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "underdog", "serve", str(tiny_llama_dir), "--name", "tiny", "--port", str(port)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 60
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.time() < deadline, process.stdout.read().decode()
                time.sleep(0.3)
        assert models["data"][0]["id"] == "tiny"
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30, json={
            "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).json()
        assert reply["object"] == "chat.completion" and reply["usage"]["completion_tokens"] <= 4
    finally:
        process.terminate()
        process.wait(timeout=10)
