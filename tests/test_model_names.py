"""Naming a model: roles, run ids, provider:model, local paths and Hugging Face ids resolve in Project.model_spec;
anything else is one line at once, listing the close names, never a round of hub retries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from underdog.config import EMBEDDED_MODEL
from underdog.errors import UnderdogError
from underdog.project import Project

RUN = "20260101-1200-lora"


@pytest.fixture
def with_run(project_dir: Path) -> Path:
    adapter = project_dir / "runs" / RUN / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": EMBEDDED_MODEL}))
    return project_dir


def test_known_names_resolve(with_run: Path, tmp_path: Path) -> None:
    local_model = tmp_path / "my-model"
    local_model.mkdir()
    project = Project(with_run)
    assert project.model_spec("judge").model == EMBEDDED_MODEL
    assert project.model_spec(RUN).adapter == str(with_run / "runs" / RUN / "adapter")
    assert project.model_spec("openai:gpt-4o-mini").provider == "openai"
    assert project.model_spec(EMBEDDED_MODEL).model == EMBEDDED_MODEL
    assert project.model_spec(str(local_model)).model == str(local_model)


def test_unknown_name_lists_close_names(with_run: Path) -> None:
    with pytest.raises(UnderdogError) as err:
        Project(with_run).model_spec("20260101-1200-lorb")
    message = str(err.value)
    assert message.startswith("no run, role or model named '20260101-1200-lorb'")
    assert f"close: {RUN}" in message


def test_misspelt_role_suggests_the_role(project_dir: Path) -> None:
    with pytest.raises(UnderdogError, match=r"no run, role or model named 'studnet' \(close: student"):
        Project(project_dir).model_spec("studnet")


def test_hub_id_not_cached_fails_in_one_line_offline(project_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnderdogError, match=r"'nobody-here/no-such-model' is not in the local Hugging Face cache "
                                            r"and HF_HUB_OFFLINE=1"):
        Project(project_dir).model_spec("nobody-here/no-such-model")


@pytest.mark.parametrize("args", [["judge", "20990101-0000-nope"], ["answer", "20990101-0000-nope"],
                                  ["chat", "20990101-0000-nope", "hi"], ["serve", "20990101-0000-nope"]])
def test_unknown_run_is_one_line_at_once(with_run: Path, cli, args: list[str]) -> None:
    start = time.monotonic()
    result = cli(*args)
    assert time.monotonic() - start < 10
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith("error: no run, role or model named '20990101-0000-nope'")


def test_serve_outside_a_project_checks_the_name(tmp_path: Path, monkeypatch, cli) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("serve", "not-a-model")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: no run, role or model named 'not-a-model'")
    assert list(tmp_path.iterdir()) == []


def test_hub_id_not_cached_fails_in_one_line_without_network(project_dir: Path, monkeypatch, cli) -> None:
    from huggingface_hub import constants

    from underdog.testing import free_port

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    start = time.monotonic()
    result = cli("chat", "nobody-here/no-such-model", "hi")
    assert time.monotonic() - start < 10
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == ("error: 'nobody-here/no-such-model' is not in the local Hugging Face cache and "
                                     "the hub cannot be reached (check the network, or name a local folder)")


def test_provider_model_accepts_any_registered_provider(project_dir, monkeypatch) -> None:
    """`provider:model` is checked against the provider registry (entry points), not a list in the core."""
    from underdog import providers
    from underdog.project import Project

    known = dict(providers._providers())
    monkeypatch.setattr(providers, "_providers", lambda: known | {"myplugin": object()})
    assert Project(project_dir).model_spec("myplugin:big-model").provider == "myplugin"
