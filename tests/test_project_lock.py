"""One writer at a time per project, tested with real processes: the second writer is told who holds the lock,
readers go on, and a lock left by a killed process is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from underdog.locking import LOCK_NAME

SRC = str(Path(__file__).parents[1] / "src")  # these sources in the child processes

HOLDER = """
import sys, time
from underdog.project import Project
with Project(sys.argv[1]).lock("underdog generate --name base"):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(project_dir: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the project's writer lock, as `underdog generate` does while it runs."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(project_dir)], stdout=subprocess.PIPE, text=True,
                               env=os.environ | {"PYTHONPATH": SRC})
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()


def underdog(project_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command line in its own process."""
    return subprocess.run([sys.executable, "-m", "underdog", *args], cwd=project_dir, capture_output=True,
                          text=True, timeout=120, env=os.environ | {"PYTHONPATH": SRC})


def write_examples(project_dir: Path) -> Path:
    path = project_dir / "old.jsonl"
    path.write_text(json.dumps({"question": "Where do I vote?", "answer": "At your polling place."}) + "\n")
    return path


def test_second_writer_names_the_holder_and_exits_non_zero(project_dir: Path, holder: subprocess.Popen) -> None:
    result = underdog(project_dir, "import", str(write_examples(project_dir)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"`underdog generate --name base` (pid {holder.pid}, since " in result.stderr
    assert "is writing to this project" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (project_dir / "datasets" / "old").exists()


def test_readers_are_not_blocked(project_dir: Path, holder: subprocess.Popen, cli) -> None:
    assert cli("usage").exit_code == 0
    assert cli("datasets").exit_code == 0


def test_lock_of_a_killed_writer_is_taken_over(project_dir: Path, holder: subprocess.Popen) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((project_dir / LOCK_NAME).read_text())["pid"] == holder.pid  # the stale description is left
    result = underdog(project_dir, "import", str(write_examples(project_dir)))
    assert result.returncode == 0, result.stderr
    assert (project_dir / "datasets" / "old" / "manifest.json").exists()
    assert (project_dir / LOCK_NAME).read_text() == ""  # released at the end


def test_lock_is_released_after_a_failed_command(project_dir: Path, cli) -> None:
    assert cli("import", "missing.jsonl").exit_code == 1
    result = cli("import", write_examples(project_dir))
    assert result.exit_code == 0, result.output


def test_processes_started_by_the_holder_work_under_its_lock(project_dir: Path) -> None:
    """A sweep holds the lock and starts `underdog train` processes in the same project: they must not wait."""
    from underdog.project import Project

    with Project(project_dir).lock("underdog sweep"):
        result = underdog(project_dir, "import", str(write_examples(project_dir)))
    assert result.returncode == 0, result.stderr
    assert "UNDERDOG_LOCK_HELD" not in os.environ
