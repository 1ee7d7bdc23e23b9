"""The command line's output when it is not a terminal (a pipe, a file, CI): long lines are never wrapped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).parents[1] / "src")


def test_piped_output_keeps_long_lines_whole(tmp_path: Path) -> None:
    folder = tmp_path / ("a-rather-long-folder-name-" * 4) / "project"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run([sys.executable, "-m", "underdog", "init", "permits", str(folder)], capture_output=True,
                            text=True, timeout=120, env=env | {"PYTHONPATH": SRC})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote {folder / 'underdog.yaml'} — edit the models: section to use your "
                                          "teacher, judge and reference models"]


def test_piped_error_keeps_long_lines_whole(tmp_path: Path) -> None:
    missing = tmp_path / ("a-rather-long-file-name-" * 5 + ".jsonl")
    (tmp_path / "underdog.yaml").write_text('domain: "x"\nmodels: {}\n')
    result = subprocess.run([sys.executable, "-m", "underdog", "evalset", "import", str(missing)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=os.environ | {"PYTHONPATH": SRC})
    assert result.stderr.splitlines() == [f"error: {missing}: not found"]


def test_the_library_prints_nothing_and_the_cli_shows_progress(project_dir, tiny_llama_dir, capfd, cli) -> None:
    """Stages report to the project's reporter: silent by default, rich bars in the CLI."""
    from underdog.evaluate.answer import answer
    from underdog.evaluate.evalset import import_evalset
    from underdog.project import Project

    (project_dir / "q.txt").write_text("What is a permit?\nWhere is the office?\nWho pays the fee?\n")
    project = Project(project_dir, overrides=["evaluate.answer_max_tokens=4"])
    import_evalset(project, project_dir / "q.txt", "e")
    answer(project, str(tiny_llama_dir), "e")
    out, err = capfd.readouterr()
    assert out == "" and "answers" not in err
    shown = cli("--set", "evaluate.answer_max_tokens=5", "answer", str(tiny_llama_dir), "-e", "e")
    assert shown.exit_code == 0, shown.output
    assert "answers of" in shown.output  # the bar's label, drawn by the CLI's reporter
