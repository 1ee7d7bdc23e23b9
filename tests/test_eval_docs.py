"""Eval sets built from documents: `underdog evalset from-docs`, against a scripted teacher on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.evaluate.docs_evalset import evalset_from_documents, spread
from underdog.evaluate.evalset import load_evalset
from underdog.project import Project
from underdog.testing import ScriptedOpenAI, ServerThread

FEES = [("dog licence", 12, "D-1"), ("food truck", 45, "F-7"), ("boat mooring", 80, "B-3"),
        ("street party", 25, "S-2"), ("tree removal", 60, "T-9")]
BROKEN = "boat mooring"  # its answer key comes back as prose: that chunk's question is dropped
NO_QUESTION = "street party"  # the question reply is no question: dropped before its answer key is asked
# blocks of 99 characters: with data.chunk_size 100 each chunk is one paragraph (the chunker cuts at whitespace)
MARKDOWN = "\n\n".join(f"- The {thing} fee is ${fee}, paid with Form {form} in Room 4.".ljust(97)
                       for thing, fee, form in FEES[:4])
HTML = ("<html><head><style>p {color: red}</style></head><body><nav>Home | Contact</nav>"
        f"<p>The {FEES[4][0]} fee is ${FEES[4][1]}, paid with Form {FEES[4][2]} at the Parks Office.</p></body></html>")
HOLDER = """
import sys, time
from underdog.project import Project
with Project(sys.argv[1]).lock("underdog ingest"):
    print("locked", flush=True)
    time.sleep(60)
"""
FEE = re.compile(r"The ([^$]+?) fee is \$(\d+), paid with Form ([A-Z]-\d)")


def _teacher(messages: list[dict]) -> str:
    """A question about the first fee in the passage; its answer key as JSON (prose for the BROKEN fee)."""
    prompt = messages[-1]["content"]
    passage = prompt.split("<passage>")[1].split("</passage>")[0]
    thing, fee, form = FEE.search(passage).groups()
    if "answer key" not in prompt:
        return "Sure, here you go." if thing == NO_QUESTION else f"How much is the {thing} fee?"
    if thing == BROKEN:
        return "The fee is probably about $20."
    return json.dumps({"reference": f"The {thing} fee is ${fee}, paid with Form {form}.",
                       "facts": [f"${fee}", f"Form {form}", "within 30 days"]})  # the last is not stated: dropped


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def teacher(project_dir: Path) -> Iterator[tuple[Project, ScriptedOpenAI, Run]]:
    """The scripted teacher on loopback, set up with `--set` as on a user's command line (one chunk per fee), the
    two documents in the project folder, and `run("from-docs", ...)`: `underdog --set ... evalset ...` in-process
    (the real project lookup and writer lock), returning the exit code and the output on one line."""
    fake = ScriptedOpenAI(_teacher, model="teacher")
    with ServerThread(fake.app) as server:
        spec = {"provider": "openai", "base_url": f"{server.url}/v1", "model": "teacher", "max_retries": 0}
        settings = [f"models.teacher={json.dumps(spec)}", "data.chunk_size=100", "data.chunk_overlap=0"]
        (project_dir / "fees.md").write_text(MARKDOWN)
        (project_dir / "parks.html").write_text(HTML)

        def run(*args: str) -> tuple[int, str]:
            result = invoke_cli(*(f"--set={s}" for s in settings), "evalset", *args)
            return result.exit_code, " ".join(result.output.split())

        yield Project(project_dir, overrides=settings), fake, run


def test_questions_from_documents_keep_reference_facts_and_source_and_a_rerun_calls_no_model(teacher):
    project, fake, run = teacher
    code, out = run("from-docs", "fees.md", "parks.html", "--name", "docs")
    assert code == 0, out
    assert "wrote 3 questions with a reference answer and facts to evalsets/docs/questions.jsonl from 5 chunks" in out
    assert "dropped 2 (the teacher's question or answer key did not parse" in out
    by_text = {q.question: q for q in load_evalset(project, "docs")}
    assert set(by_text) == {f"How much is the {thing} fee?" for thing, _, _ in FEES
                           if thing not in (BROKEN, NO_QUESTION)}
    truck = by_text["How much is the food truck fee?"]
    assert truck.reference == "The food truck fee is $45, paid with Form F-7." and truck.facts == ["$45", "Form F-7"]
    assert truck.topic == "fees.md" and by_text["How much is the tree removal fee?"].topic == "parks.html"
    keys = [b for b in fake.bodies if "answer key" in b["messages"][-1]["content"]]
    assert len(keys) == 4 and all(b["response_format"] == {"type": "json_object"} for b in keys)
    prompts = [b["messages"][-1]["content"] for b in keys]  # the passage is shown with its question
    assert any("Parks Office" in p and "How much is the tree removal fee?" in p for p in prompts)
    assert fake.requests == 9  # 5 questions, 4 answer keys
    code, out = run("from-docs", "fees.md", "parks.html", "--name", "again")
    assert code == 0 and fake.requests == 9, out  # every reply came from the cache
    assert load_evalset(project, "again") == load_evalset(project, "docs")
    code, out = run("show", "docs")
    assert code == 0 and "facts: $45 | Form F-7" in out
    assert "3 questions: 3 with a reference answer, 3 with facts" in out


def test_size_spreads_the_questions_over_the_chunks(teacher):
    project, fake, run = teacher
    built = evalset_from_documents(project, ["fees.md", "parks.html"], "two", size=2)
    assert (built.chunks, built.dropped, fake.requests) == (2, 1, 4)  # chunks 0 and 2 of 5; the second is BROKEN
    assert [q.question for q in built.questions] == ["How much is the dog licence fee?"]
    assert spread(list(range(5)), 2) == [0, 2] and spread(list(range(3)), 5) == [0, 1, 2]


def test_a_latin1_document_without_encoding_is_one_line_and_writes_nothing(teacher):
    project, fake, run = teacher
    Path("old.md").write_bytes("# Caf\u00e9s\n\nThe caf\u00e9 seating fee is $30, paid with Form C-4.\n"
                               .encode("latin-1"))
    code, out = run("from-docs", "old.md", "--name", "old")
    assert code == 1 and "Traceback" not in out and fake.requests == 0, out
    assert out.startswith("error: ") and "old.md: line 1: not UTF-8 text (byte 0xe9" in out and "--encoding" in out
    assert not (project.evalsets_dir / "old").exists()
    code, out = run("from-docs", "old.md", "--name", "old", "--encoding", "latin-1")
    assert code == 0, out
    assert load_evalset(project, "old")[0].question == "How much is the caf\u00e9 seating fee?"


def test_a_teacher_failing_on_every_chunk_is_one_line_and_the_rerun_retries(teacher):
    project, fake, run = teacher
    fake.faults = ["500"]  # the only chunk's question call fails (no retries configured)
    code, out = run("from-docs", "parks.html", "--name", "parks")
    assert code != 0 and "Traceback" not in out, out
    assert out.startswith("error: the teacher (openai:teacher) failed on every chunk, e.g.: ")
    assert not (project.evalsets_dir / "parks").exists()
    code, out = run("from-docs", "parks.html", "--name", "parks")
    assert code == 0 and "wrote 1 questions" in out and fake.requests == 3, out  # the failure was not cached
    assert load_evalset(project, "parks")[0].facts == ["$60", "Form T-9"]


def test_from_docs_is_a_writer_refused_while_another_holds_the_project(teacher, project_dir: Path):
    project, fake, run = teacher
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(project_dir)], stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, out = run("from-docs", "fees.md", "--name", "docs")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and "`underdog ingest` (pid" in out and "is writing to this project" in out, out
    assert fake.requests == 0 and not (project.evalsets_dir / "docs").exists()
