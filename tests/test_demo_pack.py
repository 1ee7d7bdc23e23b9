"""The demo pack's refusal lesson: teacher-quality refusals of four kinds that the `facts` judge counts as
declining, held-out refusal probes of the same kinds, and curation keeping every refusal (none repeats a probe)."""

from __future__ import annotations

import json
import re
import runpy
from collections import Counter
from pathlib import Path

from underdog import data
from underdog.evaluate.evalset import import_evalset
from underdog.evaluate.judges.facts import is_refusal, stated
from underdog.pipeline import pack_path
from underdog.project import Project

KINDS = {"not_covered", "personal_data", "harmful", "off_domain"}
OFFICE = re.compile(r"County Clerk's office|County Recorder|Board of Equalization|Millbrook Annex|Larkspur Hall")


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in pack_path(name).read_text().splitlines()]


def answer(row: dict) -> str:
    return row["messages"][-1]["content"]


def test_every_taught_refusal_is_a_refusal_to_the_facts_judge_and_no_fact_answer_is():
    refusals, facts = rows("refusals.jsonl"), rows("qa.jsonl")
    assert [answer(r) for r in refusals if not is_refusal(answer(r))] == []
    assert [answer(r) for r in facts if is_refusal(answer(r))] == []
    probes = [r for r in rows("eval.jsonl") if r.get("expect") == "refusal"]
    assert [r["reference"] for r in probes if not is_refusal(r["reference"])] == []
    assert not any(is_refusal(r["reference"]) for r in rows("eval.jsonl") if r.get("facts"))


def test_refusals_and_probes_cover_four_kinds_and_name_only_the_handbooks_offices():
    taught = Counter(r["meta"]["refusal_kind"] for r in rows("refusals.jsonl"))
    probed = Counter(r["topic"] for r in rows("eval.jsonl") if r.get("expect") == "refusal")
    assert set(taught) == set(probed) == KINDS
    assert min(taught.values()) >= 8 and min(probed.values()) >= 3 and sum(probed.values()) >= 8
    handbook = pack_path("handbook", "handbook.md").read_text()
    named = {office for r in rows("refusals.jsonl") for office in OFFICE.findall(answer(r))}
    assert named and all(office in handbook for office in named), named


def test_curation_keeps_every_refusal_but_drops_a_copied_probe(project_dir: Path, tmp_path: Path):
    project = Project(project_dir, overrides=["data.curate.rate=false"])
    import_evalset(project, pack_path("eval.jsonl"), "harrowgate")
    data.import_dataset(project, pack_path("refusals.jsonl"), "refusals")
    manifest, report = data.curate(project, "refusals")
    assert report["removed"] == {} and manifest.count == len(rows("refusals.jsonl"))
    probe = next(r for r in rows("eval.jsonl") if r.get("expect") == "refusal")  # the control: a probe copied in
    copied = {"messages": [{"role": "user", "content": probe["question"]},
                           {"role": "assistant", "content": probe["reference"]}]}
    (tmp_path / "copied.jsonl").write_text(pack_path("refusals.jsonl").read_text() + json.dumps(copied) + "\n")
    data.import_dataset(project, tmp_path / "copied.jsonl", "copied")
    assert data.curate(project, "copied")[1]["removed"] == {"eval_contamination": 1}


def test_the_pack_files_are_what_its_script_writes():
    make = runpy.run_path(str(Path(__file__).resolve().parent.parent / "scripts" / "make_demo_pack.py"),
                          run_name="make_demo_pack")  # its main() writes only when run as a script
    for name, written in (("qa.jsonl", make["teacher_set"]()), ("refusals.jsonl", make["refusal_set"]()),
                          ("eval.jsonl", make["eval_set"]())):
        assert pack_path(name).read_text() == make["jsonl"](written), name
    assert pack_path("handbook", "handbook.md").read_text() == make["markdown"]()


# a situation in a resident's words, then the ask
RESIDENT = re.compile(r"\b(I|I'm|my|we|we're|our)\b.*[.!] .*\?$", re.IGNORECASE)


def test_every_fact_is_also_taught_in_a_residents_words_none_an_eval_question():
    """Most eval questions and refusals are a resident's words ("My dog is neutered. What will ..."): a fact taught
    only in the handbook's terms left "a resident's question" to the refusals, and the refusals run declined facts."""
    asked = {r["question"] for r in rows("eval.jsonl")}
    for fact in (r for r in rows("eval.jsonl") if r.get("facts")):
        taught = [q["messages"][0]["content"] for q in rows("qa.jsonl") if stated(answer(q), fact["facts"])]
        assert any(RESIDENT.search(q) for q in taught), fact["id"]
        assert not asked & set(taught), fact["id"]
