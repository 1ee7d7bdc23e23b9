"""`generate` is pipelined: a topic's questions are answered while other topics' question lists are still being
written, through one concurrency limit (issue 11), against a real loopback server through the openai SDK."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import yaml
from fastapi import FastAPI, Request

from underdog.data.dataset import load_dataset
from underdog.data.generation import generate
from underdog.project import Project
from underdog.testing import plausible_reply

SLOW_S = 1.5


def slow_list_server(arrivals: list[tuple[float, str]]) -> FastAPI:
    """Replies at once, except to the question list of topic "slow", after SLOW_S seconds."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        kind = ("slow list" if "Topic: slow" in prompt else "list") if "realistic questions" in prompt else "answer"
        arrivals.append((time.monotonic(), kind))
        await asyncio.sleep(SLOW_S if kind == "slow list" else 0.02)
        return {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": plausible_reply(body["messages"])}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}}

    return app


def test_answers_start_before_the_slowest_question_list_returns(project_dir: Path, serve_app) -> None:
    arrivals: list[tuple[float, str]] = []
    with serve_app(slow_list_server(arrivals)) as server:
        config = yaml.safe_load((project_dir / "underdog.yaml").read_text())
        config["models"]["teacher"] = {"provider": "openai", "model": "t", "base_url": server.url + "/v1",
                                       "concurrency": 4}
        (project_dir / "underdog.yaml").write_text(yaml.safe_dump(config))
        topics = ["slow"] + [f"topic {i}" for i in range(5)]
        manifest = generate(Project(project_dir), topics=topics, questions_per_topic=3, name="piped")
    slow_at = next(t for t, kind in arrivals if kind == "slow list")
    meanwhile = [kind for t, kind in arrivals if slow_at < t < slow_at + SLOW_S - 0.2]
    assert meanwhile.count("answer") >= 10  # two-phase generation sends no answer before every list returned
    assert manifest.counts["questions"] == 18 and len(load_dataset(project_dir, "piped")) == 18
    assert len(arrivals) == 6 + 18
