"""The data commands on real models: the embedded SmolLM2 as teacher (tiny sizes), and a real local model served
by `underdog.serve.create_app` reached through the `openai` backend on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import invoke_cli
from underdog.config import ModelSpec
from underdog.data.dataset import load_dataset, load_manifest
from underdog.data.generation import generate
from underdog.project import Project

pytestmark = pytest.mark.slow
TINY = ["models.teacher.params.max_tokens=16", "data.topic_rounds=1", "data.augment.refusals=1",
        "data.curate.rating_retries=0", "data.curate.min_answer_chars=1"]


def run(*args: str) -> str:
    overrides = [x for item in TINY for x in ("--set", item)]
    result = invoke_cli(*overrides, *args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_every_command_on_the_embedded_teacher(project_dir: Path, embedded_model_dir: Path):
    run("topics", "-n", "2", "--topic", "food truck permits")
    topics = yaml.safe_load((project_dir / "topics.yaml").read_text())["categories"]
    assert topics["Your topics"] == ["food truck permits"]  # 135M rarely writes parseable categories

    run("generate", "-q", "1")
    base = load_manifest(project_dir, "base")
    counts = base.counts
    # whatever the small model wrote, every question is accounted for and every call was made once
    assert counts["questions"] + counts["malformed_questions"] >= 1
    assert base.count == counts["questions"] - counts["empty_answers"] - counts["failed_answer_calls"]
    assert base.count >= 1, counts  # the single-question fallback gets usable questions out of 135M
    assert all(e.meta["teacher"] == "local:smollm2-135m" for e in load_dataset(project_dir, "base"))

    run("augment", "refusals")
    assert load_manifest(project_dir, "base+refusals").counts["base"] == base.count

    (project_dir / "notes.md").write_text("A mobile food permit costs $150 and must be renewed every year.\n")
    run("ingest", "notes.md", "--name", "docs")
    docs = load_manifest(project_dir, "docs")
    assert docs.counts["chunks"] == 1 and docs.count >= 1  # grounded pairs even from 135M (via the fallback)

    run("curate", "base", "--threshold", "0")
    report = json.loads((project_dir / "datasets" / "base-curated" / "curation.json").read_text())
    assert report["kept"] + sum(report["removed"].values()) == base.count  # each example kept or a reason
    assert "rating_unparseable" not in report["removed"]  # a local rater falls back to log-probabilities
    assert "low_rating" not in report["removed"]  # --threshold 0 keeps every rated example
    assert all(1 <= e.meta["rating"] <= 10 for e in load_dataset(project_dir, "base-curated"))

    (project_dir / "old.jsonl").write_text('{"prompt": "Where do I vote?", "completion": "At school."}\n')
    run("import", "old.jsonl")
    run("export", "base", "--format", "jumpstart", "--validation", "0")
    assert "base-curated" in run("datasets")
    assert "food truck permits" in run("datasets", "show", "base")


def test_generate_through_openai_backend_against_served_model(project_dir: Path, embedded_model_dir: Path,
                                                              serve_app):
    from underdog.serve import create_app

    spec = ModelSpec(provider="local", model="smollm2-135m", device="cpu")
    with serve_app(create_app(spec, served_name="served-smollm")) as server:
        project = Project(project_dir, overrides=[
            "models.teacher.provider=openai", "models.teacher.model=served-smollm",
            f"models.teacher.base_url={server.url}/v1", "models.teacher.params.max_tokens=16"])
        manifest = generate(project, topics=["food truck permits"], questions_per_topic=1, name="served")
    counts = manifest.counts
    assert counts["failed_question_calls"] == 0 and counts["failed_answer_calls"] == 0
    assert counts["question_calls"] >= 1 and manifest.count == counts["questions"] - counts["empty_answers"]
    assert manifest.count >= 1 and load_dataset(project_dir, "served")[0].meta["teacher"] == "openai:served-smollm"
    calls = project.store.query("SELECT COUNT(*) AS n FROM llm_calls WHERE stage = 'generate' AND cached = 0")
    assert calls[0]["n"] == counts["question_calls"] + counts["questions"]
