"""Writing keys into underdog.yaml (`calibrate --apply`): comments and layout kept, the config's validation first."""

from __future__ import annotations

from pathlib import Path

import pytest

from underdog.config import load_config
from underdog.config_edit import set_keys
from underdog.errors import ConfigError

JURY = ("evaluate", "judges")
WEIGHTS = ("evaluate", "judge_weights")


def test_a_new_section_is_appended_and_everything_else_kept(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    before = path.read_text()
    set_keys(path, {JURY: ["judge", "people"], WEIGHTS: {"judge": 0.5, "people": 1.0}})
    after = path.read_text()
    assert after.startswith(before.rstrip("\n"))
    assert after.endswith("\nevaluate:\n  judges: [judge, people]\n  judge_weights: {judge: 0.5, people: 1.0}\n")
    config = load_config(path)
    assert config.evaluate.judges == ["judge", "people"] and config.evaluate.judge_weights == {"judge": 0.5,
                                                                                              "people": 1.0}


def test_existing_keys_are_replaced_in_place_with_their_comments(tmp_path: Path, project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    path.write_text(path.read_text() + "\nevaluate:   # the jury\n  judges:        # majority vote\n    - judge\n"
                    "    - facts\n  rubric: [correctness]   # what counts\n# a comment after the section\n"
                    "arena:\n  port: 9000\n")
    set_keys(path, {JURY: ["people"], WEIGHTS: {}})
    text = path.read_text()
    assert "evaluate:   # the jury\n  judges: [people]\n  rubric: [correctness]   # what counts\n" in text
    assert "# a comment after the section\narena:\n  port: 9000\n" in text and "judge_weights" not in text
    set_keys(path, {WEIGHTS: {"people": 1.0}})
    assert "  rubric: [correctness]   # what counts\n  judge_weights: {people: 1.0}\n# a comment" in path.read_text()


def test_a_change_the_config_refuses_is_not_written(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    before = path.read_text()
    with pytest.raises(ConfigError, match=r"underdog.yaml.*judge_weights: nobody not in evaluate.judges .*not written"):
        set_keys(path, {JURY: ["judge"], WEIGHTS: {"nobody": 1.0}})
    with pytest.raises(ConfigError, match="unknown judge 'nobdy'"):
        set_keys(path, {JURY: ["nobdy"]})
    assert path.read_text() == before and not list(project_dir.glob(".underdog.yaml.*"))
