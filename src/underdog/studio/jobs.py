"""Actions started from the studio: `underdog ...` commands run in subprocesses, as a user would run them.

    actions = Actions(project)
    action = actions.start(["train", "-d", "base", "epoch=1"], run_id="studio-20261201-101500-ab12")
    actions.log(action.id)          # what the command printed so far
    actions.cancel(action.id)       # Ctrl-C to its process group (then SIGTERM after a grace period)

Each command takes the project's lock itself, exactly as in a terminal (a second writer is refused, naming the
first). Its process group is its own, so cancelling stops it and whatever it started (a sweep's runs). What each
action was and printed is kept under `studio/actions/` in the project (`<id>.json`, `<id>.log`), so the list
survives a restart of the studio.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

from underdog.locking import HELD_ENV, pid_alive
from underdog.project import Project

ACTIONS_DIR = ("studio", "actions")
CANCEL_GRACE_S = 15.0  # after Ctrl-C, how long a command may take to save its work before SIGTERM
LOG_TAIL = 20_000  # characters of a command's output shown


@dataclass
class Action:
    id: str
    argv: list[str]  # the arguments of `underdog`
    pid: int
    started: float
    run_id: str | None = None  # the training run it makes, when it makes one
    ended: float | None = None
    returncode: int | None = None
    cancelled: bool = False

    @property
    def command(self) -> str:
        return " ".join(["underdog", *self.argv])

    @property
    def status(self) -> str:
        if self.ended is None:
            return "running"
        if self.cancelled:
            return "cancelled"
        return "done" if self.returncode == 0 else f"failed (exit {self.returncode})"


class Actions:
    """The actions of one project: started here, listed from their records, cancelled by process group."""

    def __init__(self, project: Project):
        self.root = project.root
        self.folder = project.path(*ACTIONS_DIR)
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, argv: list[str], run_id: str | None = None) -> Action:
        """Run `underdog -C <project> ARGV...` in its own process group; its output goes to the action's log."""
        self.folder.mkdir(parents=True, exist_ok=True)
        action_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        env = {k: v for k, v in os.environ.items() if k != HELD_ENV} | {"PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
        with (self.folder / f"{action_id}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "underdog", "-C", str(self.root), *argv],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.root, env=env, start_new_session=True)
        action = Action(action_id, argv, process.pid, time.time(), run_id)
        with self._lock:
            self._processes[action_id] = process
        self._save(action)
        return action

    def list(self) -> list[Action]:
        """Every action, newest first, with the status of those still running brought up to date."""
        if not self.folder.exists():
            return []
        found = [self.get(p.stem) for p in self.folder.glob("*.json")]
        return sorted((a for a in found if a), key=lambda a: a.started, reverse=True)

    def get(self, action_id: str) -> Action | None:
        path = self.folder / f"{action_id}.json"
        if not action_id.replace("-", "").isalnum() or not path.exists():
            return None
        try:
            action = Action(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError):
            return None
        return self._refresh(action)

    def making(self, run_id: str) -> bool:
        """Whether an action started here makes (or made) training run `run_id`."""
        return any(a.run_id == run_id for a in self.list())

    def running(self) -> list[Action]:
        return [a for a in self.list() if a.ended is None]

    def log(self, action_id: str, tail: int = LOG_TAIL) -> str:
        """The last `tail` characters the action printed."""
        path = self.folder / f"{action_id}.log"
        if self.get(action_id) is None or not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - tail))
            return f.read().decode("utf-8", errors="replace")

    def log_size(self, action_id: str) -> int:
        path = self.folder / f"{action_id}.log"
        return path.stat().st_size if path.exists() else 0

    def cancel(self, action_id: str) -> Action | None:
        """Ctrl-C to the action's process group, as in its terminal (finished work is saved, a run records where
        to resume); SIGTERM after CANCEL_GRACE_S if it is still running."""
        action = self.get(action_id)
        if action is None or action.ended is not None:
            return action
        action.cancelled = True
        self._save(action)
        _signal_group(action.pid, signal.SIGINT)
        timer = threading.Timer(CANCEL_GRACE_S, self._terminate, (action.id,))
        timer.daemon = True
        timer.start()
        return action

    def _terminate(self, action_id: str) -> None:
        action = self.get(action_id)
        if action is not None and action.ended is None:
            _signal_group(action.pid, signal.SIGTERM)

    def _refresh(self, action: Action) -> Action:
        if action.ended is not None:
            return action
        with self._lock:
            process = self._processes.get(action.id)
        code = process.poll() if process else (None if pid_alive(action.pid) else -1)
        if code is not None:
            action.ended, action.returncode = time.time(), code
            self._save(action)
        return action

    def _save(self, action: Action) -> None:
        path = self.folder / f"{action.id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(action)))
        tmp.replace(path)

    def close(self) -> None:
        """Stop waiting for the actions started here (they go on running; the next studio lists them)."""
        with self._lock:
            self._processes.clear()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the action's process group: its id is the action's pid (start_new_session)


def new_run_id(dataset: str) -> str:
    """The id of a training run started from the studio (`studio-` + time + dataset + random)."""
    return f"studio-{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{secrets.token_hex(2)}"
