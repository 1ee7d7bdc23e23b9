"""API keys never reach the user's screen, the database or any file, even when a provider's error echoes them.

Every command that calls a model is driven through the CLI against a loopback OpenAI-compatible server whose
errors repeat the key it was sent (as OpenAI's "Incorrect API key provided: sk-..." does).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.project import init_project
from underdog.testing import ScriptedOpenAI, ServerThread

SECRET = "sk-test-PLANTED-93b1c7e2d4a6"
ROLES = ("teacher", "judge", "student", "reference")


def _api_project(root: Path, url: str, answers_url: str | None = None) -> Path:
    """A project whose roles are scripted servers keyed by $UNDERDOG_SECRET_KEY: teacher and judge at `url`,
    student and reference at `answers_url` (default: `url` too)."""
    init_project("test", root)
    urls = {"teacher": url, "judge": url, "student": answers_url or url, "reference": answers_url or url}
    models = "".join(f"  {role}:\n    provider: openai\n    model: {role}\n    base_url: {urls[role]}/v1\n"
                     f"    api_key_env: UNDERDOG_SECRET_KEY\n    max_retries: 1\n" for role in ROLES)
    text = (root / "underdog.yaml").read_text()
    start, end = text.index("models:\n"), text.index("\n\n", text.index("models:\n"))
    (root / "underdog.yaml").write_text(text[:start] + "models:\n" + models + text[end:])
    (root / "q.jsonl").write_text(json.dumps({"question": "How do I renew a permit?", "reference": "Online."}) + "\n")
    (root / "topics.yaml").write_text("categories:\n  Permits: [food truck permits, building permits]\n")
    return root


def _assert_nowhere(root: Path, outputs: list[str]) -> None:
    for text in outputs:
        assert SECRET not in text
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_key_echoed_by_an_error_is_never_shown_or_stored(status: int, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNDERDOG_SECRET_KEY", SECRET)
    failing = ScriptedOpenAI(faults=[f"echo:{status}"] * 500, model_faults=[f"echo:{status}"] * 10)
    replies = iter(range(1000))
    answering = ScriptedOpenAI(reply=lambda messages: f"answer {next(replies)}")  # two different answers to judge
    with ServerThread(failing.app) as bad, ServerThread(answering.app) as good:
        root = _api_project(tmp_path / "p", bad.url, good.url)
        assert invoke_cli("-C", root, "evalset", "import", root / "q.jsonl", "--name", "e").exit_code == 0
        commands = [["models"], ["chat", "teacher", "hello"], ["topics", "-n", "3"],
                    ["evalset", "generate", "--name", "g", "--size", "2"], ["generate", "-q", "1"],
                    ["judge", "student", "--against", "reference"]]
        results = {" ".join(c): invoke_cli("-C", root, *c) for c in commands}
    assert failing.requests > 0 and answering.requests >= 1  # the judge was reached after good answers
    for command, result in results.items():
        assert result.exit_code != 0, f"{command} should fail: {result.output}"
        assert "Traceback" not in result.output, command
        assert f"HTTP {status}" in result.output, f"{command} should name the error: {result.output}"
    if status in (400, 403):  # shown with the key hidden (401, 404 and 500 have messages of our own)
        assert "Incorrect API key provided: ***" in results["models"].output
    _assert_nowhere(root, [r.output for r in results.values()])


def test_models_exits_non_zero_when_a_role_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNDERDOG_SECRET_KEY", SECRET)
    fake = ScriptedOpenAI(model_faults=["echo:403"])
    with ServerThread(fake.app) as server:
        root = _api_project(tmp_path / "p", server.url)
        result = invoke_cli("-C", root, "models")
    assert result.exit_code == 1, result.output
    assert "HTTP 403" in result.output and SECRET not in result.output
    assert result.output.count(" ok ") == 3


def test_redact_hides_key_shaped_strings_it_was_not_told_about() -> None:
    from underdog.errors import redact

    assert redact("Incorrect API key provided: sk-proj-AbC123xyz987_qq. See docs") == \
        "Incorrect API key provided: sk-***. See docs"
    assert redact("nothing secret here: sk-1") == "nothing secret here: sk-1"
