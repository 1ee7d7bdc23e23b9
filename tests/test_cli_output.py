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
