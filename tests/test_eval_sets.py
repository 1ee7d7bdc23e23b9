"""Eval sets: import from every supported format, clear errors, generation by the real embedded teacher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.errors import UnderdogError
from underdog.evaluate.evalset import (
    clean_question,
    generate_evalset,
    import_evalset,
    list_evalsets,
    load_evalset,
    resolve_evalset,
)
from underdog.project import Project


def test_import_formats(project_dir: Path):
    project = Project(project_dir)
    (project_dir / "a.jsonl").write_text('{"question": "How do I get a permit?", "topic": "permits"}\n\n'
                                         '{"id": "x2", "question": "Where is the DMV?", "reference": "Downtown."}\n')
    (project_dir / "b.json").write_text(json.dumps(["What is a lien?", {"prompt": "How do I vote?"}]))
    (project_dir / "c.csv").write_text('question,topic\n"Is a fence permit needed?",building\n')
    (project_dir / "d.txt").write_text("How do I renew a license?\n\nWhat does a deed show?\n")
    for name in ("a.jsonl", "b.json", "c.csv", "d.txt"):
        import_evalset(project, project_dir / name)
    assert list_evalsets(project) == ["a", "b", "c", "d"]
    a = load_evalset(project, "a")
    assert [q.question for q in a] == ["How do I get a permit?", "Where is the DMV?"]
    assert a[0].topic == "permits" and a[1].id == "x2" and a[1].reference == "Downtown."
    assert [q.question for q in load_evalset(project, "b")] == ["What is a lien?", "How do I vote?"]
    assert load_evalset(project, "c")[0].topic == "building"
    assert len(load_evalset(project, "d")) == 2
    assert resolve_evalset(project) == "d"  # the newest by default
    manifest = json.loads((project.evalsets_dir / "a" / "manifest.json").read_text())
    assert manifest["count"] == 2 and len(manifest["sha256"]) == 64


def test_import_errors_name_the_file_and_line(project_dir: Path):
    project = Project(project_dir)
    bad = project_dir / "bad.jsonl"
    bad.write_text('{"question": "ok?"}\n{"question": oops}\n')
    with pytest.raises(UnderdogError, match=r"bad.jsonl:2: not valid JSON"):
        import_evalset(project, bad)
    bad.write_text('{"question": "ok?"}\n{"answer": "no question"}\n')
    with pytest.raises(UnderdogError, match=r"bad.jsonl:2: missing 'question'"):
        import_evalset(project, bad)
    assert list_evalsets(project) == []  # nothing half-written
    good = project_dir / "good.txt"
    good.write_text("A question?\n")
    import_evalset(project, good)
    with pytest.raises(UnderdogError, match="already exists"):
        import_evalset(project, good)
    with pytest.raises(UnderdogError, match="no eval set named 'nope'"):
        load_evalset(project, "nope")


def test_no_evalset_yet_is_one_clear_line(project_dir: Path):
    result = invoke_cli("judge", "student")
    assert result.exit_code == 1
    assert "no eval set yet: run `underdog evalset generate`" in result.output


def test_clean_question():
    assert clean_question('Sure! Here is one:\n"How do I appeal a parking ticket?"') == \
        "How do I appeal a parking ticket?"
    assert clean_question("Question 1: Where do I register my car\n") == "Where do I register my car"
    assert clean_question("ok") == ""
    assert clean_question('A member of the public might ask: "How do I renew my license? I am not sure') == \
        "How do I renew my license?"
    assert clean_question("Here is a question: how do I pay my property tax? It is due soon.") == \
        "how do I pay my property tax?"


@pytest.mark.slow
def test_generate_with_the_embedded_teacher_and_cli(project_dir: Path):
    (project_dir / "topics.yaml").write_text("categories:\n  DMV: [vehicle registration]\n  Build: [building permits]")
    args = ["--set", "models.teacher.params.max_tokens=16", "evalset", "generate", "--size", "2", "--name", "gen"]
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output
    questions = load_evalset(Project(project_dir), "gen")
    assert 1 <= len(questions) <= 2 and len({q.question for q in questions}) == len(questions)
    assert {q.topic for q in questions} <= {"vehicle registration", "building permits"}
    assert all(len(q.question) >= 10 for q in questions)
    listing = invoke_cli("evalset", "list")
    assert listing.output.split() == ["gen", str(len(questions)), "questions"]
    again = generate_evalset(Project(project_dir, ["models.teacher.params.max_tokens=16"]), "gen2", size=2)
    assert [q.question for q in again] == [q.question for q in questions]  # every teacher call was cached
