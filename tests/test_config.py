"""Config loading: defaults, one-line errors naming file, line and key, overrides, CLI exit code 2."""

from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.config import EMBEDDED_MODEL, ROLES, apply_overrides, load_config
from underdog.errors import ConfigError


def test_default_config_uses_embedded_model_for_every_role(project_dir: Path) -> None:
    config = load_config(project_dir / "underdog.yaml")
    assert set(ROLES) <= set(config.models)
    assert {spec.model for spec in config.models.values()} == {EMBEDDED_MODEL}
    assert {spec.provider for spec in config.models.values()} == {"local"}
    assert config.domain.startswith("US state")


def _break(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unknown_key_names_key_file_and_line(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    _break(path, "params: {temperature: 0.7, top_p: 0.95, max_tokens: 256}\n  judge",
           "params: {temprature: 0.7, top_p: 0.95, max_tokens: 256}\n  judge")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "temprature" in text)
    assert message == f"{path}:{line}: models.teacher.params.temprature: unknown key"


def test_wrong_type_names_key_and_value(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    _break(path, "max_tokens: 16}", "max_tokens: lots}")
    with pytest.raises(ConfigError, match=r"models\.judge\.params\.max_tokens: .*integer.*'lots'"):
        load_config(path)


def test_missing_role_and_unknown_provider(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    text = path.read_text()
    path.write_text(text.replace("  reference:", "  referee:"))
    with pytest.raises(ConfigError, match="models: missing role.*reference"):
        load_config(path)
    path.write_text(text.replace("    provider: local\n", "    provider: locall\n", 1))
    with pytest.raises(ConfigError, match="unknown provider 'locall'"):
        load_config(path)


def test_yaml_syntax_error_names_line(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    path.write_text("domain: x\nmodels: [unclosed\n")
    with pytest.raises(ConfigError, match=r"underdog\.yaml:\d+: not valid YAML"):
        load_config(path)


def test_overrides_apply_dotted_keys_with_yaml_values(project_dir: Path) -> None:
    config = load_config(project_dir / "underdog.yaml", ["models.student.params.temperature=0.2", "train.epoch=4"])
    assert config.models["student"].params.temperature == 0.2
    assert config.train.epoch == 4
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.epoch"])


@pytest.mark.parametrize("old,new,expected", [
    ("max_tokens: 16}", "max_tokenz: 16}", "models.judge.params.max_tokenz: unknown key"),
    ("temperature: 0.0,", "temperature: hot,", "models.judge.params.temperature"),
])
def test_cli_config_error_is_one_line_exit_2(project_dir: Path, old: str, new: str, expected: str) -> None:
    _break(project_dir / "underdog.yaml", old, new)
    result = invoke_cli("models", "--no-check")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in result.output


def test_missing_config_is_a_clean_error(tmp_path: Path) -> None:
    result = invoke_cli("-C", str(tmp_path), "models")
    assert result.exit_code == 2
    assert "not an underdog project (no underdog.yaml here or above): run `underdog init`" in result.output


def test_init_refuses_to_overwrite(project_dir: Path) -> None:
    result = invoke_cli("init", "anything", str(project_dir))
    assert result.exit_code == 2 and "already exists" in result.output


def test_wrong_override_key_is_named_as_an_override(project_dir: Path) -> None:
    result = invoke_cli("--set", "train.epochs=3", "models", "--no-check")
    assert result.exit_code == 2
    assert result.output.strip() == "error: --set 'train.epochs=3': train.epochs: unknown key"


def test_unquoted_azure_api_version_stays_text(project_dir: Path) -> None:
    overrides = ["models.judge.provider=azure", "models.judge.base_url=https://x.example",
                 "models.judge.api_version=2024-10-21"]
    config = load_config(project_dir / "underdog.yaml", overrides)
    assert config.models["judge"].api_version == "2024-10-21"
