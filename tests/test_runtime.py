"""The runtime a project owns: its own loop thread and backends, stopped on close or when it is dropped."""

from __future__ import annotations

import gc
import threading
import time

from underdog.config import ModelSpec
from underdog.llm.runtime import Runtime


def _loop_threads() -> int:
    return sum(t.name == "underdog-llm-loop" for t in threading.enumerate())


async def _answer() -> int:
    return 42


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return condition()


def test_each_runtime_runs_its_own_loop_and_stops_it(project_dir) -> None:
    from underdog.project import Project

    before = _loop_threads()
    first, second = Project(project_dir).runtime, Project(project_dir).runtime
    assert first.run(_answer()) == second.run(_answer()) == 42
    assert first.loop is not second.loop and _loop_threads() == before + 2
    spec = ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:9/v1")
    assert first.backend(spec) is first.backend(spec) and first.backend(spec) is not second.backend(spec)
    first.close()
    assert _wait_for(lambda: _loop_threads() == before + 1)
    del second
    gc.collect()
    assert _wait_for(lambda: _loop_threads() == before)  # a dropped runtime does not leave its thread behind


def test_a_closed_runtime_starts_again_when_used() -> None:
    runtime = Runtime()
    assert runtime.run(_answer()) == 42
    runtime.close()
    assert runtime.run(_answer()) == 42
    runtime.close()
