"""Every data command end to end through the `openai` backend against a loopback teacher that counts requests,
and resume after a kill mid-generation: no lost work, no repeated call (counted on the server side)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from conftest import invoke_cli
from underdog.data.dataset import load_dataset, load_manifest
from underdog.data.generation import generate
from underdog.data.prompts import PROMPT_VERSION
from underdog.project import Project

SHAPES = ["How do I apply for {t}?", "What documents do I need for {t}?", "How long does {t} usually take?",
          "Who do I contact about problems with {t}?", "How much does {t} cost in fees?",
          "Can I appeal a decision about {t}?"]


def fake_reply(messages: list[dict]) -> str:
    """A deterministic, well-behaved teacher: the right shape of reply for each data prompt."""
    user = messages[-1]["content"]
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    if "already covered" in user:
        return "1. Health\n- restaurant inspections\n- vaccination records\n2. Business\n- business licensing"
    if "Categorize them" in user:
        return ("1. Business\n- business licensing\n- food truck permits\n- Business Licensing\n"
                "2. Property\n- property tax appeals\n- fallen tree disputes\n3. Transport\n- DMV renewals")
    if "TERSE" in user and "realistic questions" in user:
        return "Questions are hard to write."  # no usable question: single calls fill the shortfall
    if m := re.search(r"You are (.*?) and you feel (\w+)\. You need help with: (.*?) \(", user):
        return f"I am {m.group(1)}, a bit {m.group(2)}: what do I do first about {m.group(3)}?"
    if m := re.search(r"Write (\d+) realistic questions", user):
        topic = re.search(r"Topic: (.*)", user).group(1)
        return json.dumps([s.format(t=topic) for s in SHAPES[: int(m.group(1))]] + [42])  # one malformed item
    if "must decline" in user:
        n = int(re.search(r"Write (\d+) questions", user).group(1))
        return json.dumps([f"Can you tell me {w} number {i}?" for i in range(n) for w in ["my neighbour's"]])
    if "Decline politely" in system:
        return "I'm sorry, I can't help with that. I can help with permits, licenses and other local services."
    if "Answer the user's question" in system:
        return f"Start at your county office. Bring ID and the form for: {user} Then pay the fee online."
    if "Write one question that a person could ask" in user:
        return "How often must a street vendor renew?"
    if user.startswith("Answer the question using only this passage"):
        return "Every two years, according to the notice."
    if "question-answer pairs" in user and "MESSY" in user:
        return "Sure, this passage is about vendors and renewals."  # no pairs in it
    if "question-answer pairs" in user:
        passage = re.search(r"<passage>\n(.*?)\n</passage>", user, re.S).group(1)
        first = passage.split(".")[0].strip()
        return json.dumps([{"question": f"What does the guide say about {first[:40]}?", "answer": first + "."}])
    if m := re.match(r"Translate the following text into (\w+)", user):
        return f"[{m.group(1)}] " + user.split("\n\n", 1)[1]
    if m := re.match(r"Rewrite this question so that it is asked by someone in (.*?), ", user):
        return f"I live in {m.group(1)}. " + user.split("\n\n", 1)[1]
    if "Summarize the following answer" in user:
        return "Go to the county office with ID and pay the fee."
    if "Rate this question-answer pair" in user:
        if "What documents" in user:
            return "Looks fine to me."  # unparseable, every time
        score = 2 if "take?" in user else 9
        return json.dumps({"accuracy": 3, "relevance": 2, "clarity": 2, "usefulness": 3, "total": score}) \
            if score == 9 else '{"total": 4}'
    return "I do not know."


class FakeTeacher:
    """An OpenAI-compatible server; counts answered requests by body; can hold requests after a limit."""

    def __init__(self) -> None:
        self.answered: Counter[str] = Counter()
        self.hold_after: int | None = None
        self.release = False
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)

    @property
    def total(self) -> int:
        return sum(self.answered.values())

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        if "FORBIDDEN" in body["messages"][-1]["content"]:
            return JSONResponse({"error": {"message": "content policy"}}, status_code=400)
        if self.hold_after is not None and self.total >= self.hold_after:
            while not self.release:
                await asyncio.sleep(0.05)
            return JSONResponse({"error": {"message": "held"}}, status_code=503)
        self.answered[json.dumps(body, sort_keys=True)] += 1
        text = fake_reply(body["messages"])
        return JSONResponse({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}})


def use_teacher(root: Path, url: str, concurrency: int = 4) -> None:
    path = root / "underdog.yaml"
    config = yaml.safe_load(path.read_text())
    config["models"]["teacher"] = {"provider": "openai", "model": "fake-teacher", "base_url": url + "/v1",
                                   "concurrency": concurrency, "params": {"max_tokens": 64}}
    config["data"] = {"augment": {"refusals": 3, "translation_share": 0.2, "locality_share": 0.1,
                                  "summary_share": 0.1}}
    path.write_text(yaml.safe_dump(config))


def run(*args: str) -> str:
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture
def teacher(serve_app):
    fake = FakeTeacher()
    with serve_app(fake.app) as server:
        fake.url = server.url
        yield fake
        fake.release = True


def count_rows(root: Path, table: str) -> int:
    db = sqlite3.connect(root / "underdog.db", timeout=30)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        db.close()


def write_documents(folder: Path) -> None:
    import docx
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir()
    (folder / "guide.md").write_text("# Food trucks\n\nA mobile food permit costs $150. Renew it every year.\n")
    (folder / "page.html").write_text("<html><body><p>Tree disputes go to the city arborist first.</p></body>")
    (folder / "fees.csv").write_text("service,fee\nBuilding permit,$300\n")
    document = docx.Document()
    document.add_paragraph("Voter registration closes thirty days before an election.")
    document.save(folder / "voting.docx")
    plt.rcParams["pdf.fonttype"] = 42
    fig = plt.figure()
    fig.text(0.1, 0.5, "Dog licenses are issued by the county clerk.")
    fig.savefig(folder / "dogs.pdf")
    plt.close(fig)
    (folder / "notice.txt").write_text("MESSY notice: street vendors renew their license every two years.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj garbage without xref")
    (folder / "slides.pptx").write_bytes(b"not supported")


def test_every_command_end_to_end_through_openai_backend(project_dir: Path, teacher: FakeTeacher):
    use_teacher(project_dir, teacher.url)
    # topics: user topic kept, teacher categories merged round-robin, the duplicate "Business Licensing" dropped
    assert "5 topics" in run("topics", "-n", "5", "--topic", "Food truck permits")
    topics = yaml.safe_load((project_dir / "topics.yaml").read_text())["categories"]
    assert topics == {"Your topics": ["Food truck permits"], "Business": ["business licensing"],
                      "Property": ["property tax appeals", "fallen tree disputes"], "Transport": ["DMV renewals"]}

    # generate: 5 topics x 3 questions, one malformed item per list reply, provenance on every example
    output = run("generate", "-q", "3")
    assert "wrote dataset base: 15 examples" in output
    base = load_dataset(project_dir, "base")
    manifest = load_manifest(project_dir, "base")
    assert manifest.counts["malformed_questions"] == 5 and manifest.counts["question_calls"] == 5
    assert {e.meta["topic"] for e in base} == {t for ts in topics.values() for t in ts}
    meta = base[0].meta
    assert meta["teacher"] == "openai:fake-teacher" and meta["prompt_version"] == PROMPT_VERSION
    assert meta["source"] == "generate" and meta["created"] > 0 and "asker" not in meta  # listed: asker unknown
    assert teacher.total == 1 + 5 + 15 and max(teacher.answered.values()) == 1  # topics, lists, answers

    # augment: refusals + spanish -> base+refusals+spanish (3 refusals, 20% of 15 = 3 translations)
    assert "base+refusals+spanish: 21 examples" in run("augment", "refusals", "spanish")
    slices = Counter(e.meta.get("slice") for e in load_dataset(project_dir, "base+refusals+spanish"))
    assert slices == {None: 15, "refusals": 3, "spanish": 3}
    assert "base+locality+summary" in run("augment", "locality", "summary")
    calls_before = teacher.total
    run("augment", "refusals", "--name", "base+refusals")  # the refusal slice again: all from the cache
    assert teacher.total == calls_before

    # curate: a planted paraphrase of an eval question is removed; ratings low / unparseable are dropped
    evalset = project_dir / "evalsets" / "heldout"
    evalset.mkdir(parents=True)
    (evalset / "questions.jsonl").write_text(json.dumps(
        {"id": "e1", "question": "Which documents are needed for DMV renewals today?"}) + "\n")  # Jaccard 0.75
    # with the planted "What documents do I need for DMV renewals?"; 0.4 with "How do I apply for DMV renewals?"
    output = run("curate", "base")
    report = json.loads((project_dir / "datasets" / "base-curated" / "curation.json").read_text())
    assert report["removed"] == {"eval_contamination": 1, "low_rating": 5, "rating_unparseable": 4}
    assert report["kept"] == 5 and "eval_contamination" in output
    assert all(e.meta["rating"] == 10.0 for e in load_dataset(project_dir, "base-curated"))
    rating_calls = [k for k in teacher.answered if "Rate this question" in k]
    assert len(rating_calls) == 14 + 2 * 4  # every unparseable rating retried twice, with a fresh seed

    # ingest: five readable formats, a corrupt PDF and an unsupported file reported by name and skipped
    write_documents(project_dir / "docs")
    output = run("ingest", "docs", "--name", "docs", "--chunk-size", "400")
    assert "broken.pdf" in output and "slides.pptx" in output
    docs = load_dataset(project_dir, "docs")
    assert {Path(e.meta["file"]).name for e in docs} == {"guide.md", "page.html", "fees.csv", "voting.docx",
                                                         "dogs.pdf", "notice.txt"}
    assert load_manifest(project_dir, "docs").counts["single_pair_fallbacks"] == 1
    assert "base+docs: " in run("augment", "docs")  # another version mixed in as a slice
    mixed = load_manifest(project_dir, "base+docs")
    assert mixed.parent == ["base", "docs"] and mixed.count == 15 + len(docs) and mixed.counts["docs"] == len(docs)
    assert any("Dog licenses" in e.meta["context"] for e in docs)

    # import: a malformed line is reported with its line number
    (project_dir / "old.jsonl").write_text('{"prompt": "Where do I vote?", "completion": "At school."}\n{oops\n')
    assert "old.jsonl:2: not valid JSON" in run("import", "old.jsonl")

    # topics again, bigger: the existing file is kept, a second round asks for uncovered aspects
    assert "7 topics" in run("topics", "-n", "7")
    topics_after = yaml.safe_load((project_dir / "topics.yaml").read_text())["categories"]
    assert topics_after == {**topics, "Health": ["restaurant inspections", "vaccination records"]}

    # export + datasets
    run("export", "base-curated", "--format", "jumpstart")
    assert (project_dir / "exports" / "base-curated-jumpstart" / "template.json").exists()
    listing = run("datasets")
    for name in ("base", "base+refusals+spanish", "base-curated", "docs", "old"):
        assert name in listing
    output = run("datasets", "show", "base")
    assert "DMV renewals" in output and (project_dir / "reports" / "datasets" / "base-lengths.png").stat().st_size


def test_resume_after_kill_loses_nothing_and_repeats_no_call(project_dir: Path, teacher: FakeTeacher):
    use_teacher(project_dir, teacher.url, concurrency=2)
    (project_dir / "topics.yaml").write_text(yaml.safe_dump(
        {"categories": {"Services": [f"service number {i}" for i in range(6)]}}))
    command = [str(Path(sys.executable).parent / "underdog"), "generate", "-q", "4"]
    teacher.hold_after = 13  # 6 question lists + 7 answers, then every request hangs
    first = subprocess.Popen(command, cwd=project_dir, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while teacher.total < 13 and time.time() < deadline and first.poll() is None:
        time.sleep(0.1)
    while count_rows(project_dir, "data_checkpoints") < 13 and time.time() < deadline:  # saved per reply
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert teacher.total == 13 and not (project_dir / "datasets" / "base" / "manifest.json").exists()
    assert count_rows(project_dir, "llm_cache") == 13 and count_rows(project_dir, "data_checkpoints") == 13

    teacher.hold_after = None
    second = subprocess.run(command, cwd=project_dir, env=os.environ.copy(), capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr
    examples = load_dataset(project_dir, "base")
    assert len(examples) == 6 * 4  # nothing lost
    assert teacher.total == 6 + 24 and max(teacher.answered.values()) == 1  # no request answered twice
    assert count_rows(project_dir, "data_checkpoints") == 0  # cleared once the version is written


def test_failed_calls_stop_before_writing_then_retry_or_skip(project_dir: Path, teacher: FakeTeacher):
    use_teacher(project_dir, teacher.url)
    (project_dir / "topics.yaml").write_text(yaml.safe_dump(
        {"categories": {"Services": ["parking permits", "FORBIDDEN things"]}}))
    result = invoke_cli("generate", "-q", "2")
    assert result.exit_code == 1 and "3 teacher call(s) failed (first: " in result.output
    assert not (project_dir / "datasets" / "base" / "manifest.json").exists()
    answered = teacher.total  # parking permits: 1 list + 2 answers
    assert answered == 3

    manifest = load_manifest(project_dir, "base") if "wrote dataset base: 2 examples" in run(
        "generate", "-q", "2", "--skip-failed") else None
    assert manifest.counts["failed_question_calls"] == 3 and teacher.total == answered  # nothing paid twice


def test_single_question_fallback_records_the_asker(project_dir: Path, teacher: FakeTeacher):
    use_teacher(project_dir, teacher.url)
    manifest = generate(Project(project_dir), topics=["TERSE permits"], questions_per_topic=2, name="terse")
    assert manifest.counts["question_calls"] == 3 and manifest.counts["malformed_questions"] == 1
    examples = load_dataset(project_dir, "terse")
    assert len(examples) == 2 and len({e.meta["asker"] for e in examples}) == 2
    assert all(e.meta["asker"].split(" (")[0] in e.question for e in examples)
