"""Data workbench units: parsing, dedup/decontamination, hygiene, readers, import/export formats (no model)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from underdog.data import dedup, parse
from underdog.data.curation import Report, decontaminate, deduplicate, hygiene, read_eval_questions
from underdog.data.dataset import Example, load_dataset, save_dataset
from underdog.data.formats import JUMPSTART_TEMPLATE, export_dataset, import_dataset, split, to_messages
from underdog.data.ingestion import chunk_text, read_document
from underdog.errors import UnderdogError
from underdog.project import Project

FACTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "practitioner-facts.md"
# Copied verbatim from ../shared/reference/practitioner-facts.md (the JumpStart instruction-tuning template).
FACTS_TEMPLATE_LINE = (
    '{"prompt": "Below is an instruction that describes a task, paired with an input that provides further '
    'context. Write a response that appropriately completes the request.\\n\\n### Instruction:\\n{instruction}'
    '\\n\\n### Input:\\n{context}\\n\\n", "completion": " {response}"}'
)


def ex(question: str, answer: str = "A complete and helpful answer that is long enough.", **meta) -> Example:
    return Example([{"role": "user", "content": question}, {"role": "assistant", "content": answer}], meta)


# -- parsing ------------------------------------------------------------------------------------------------
def test_parse_questions_json_fenced_and_lines():
    assert parse.parse_questions('["How do I renew my license?", 42, "Where is the DMV office?"]') == (
        ["How do I renew my license?", "Where is the DMV office?"], 1)
    fenced = 'Sure!\n```json\n{"questions": ["What permits do I need?", "x"]}\n```'
    assert parse.parse_questions(fenced) == (["What permits do I need?"], 1)
    lines = "Here are some:\n1. How do I get a food permit?\n2) Who inspects food trucks here?\n- ok"
    assert parse.parse_questions(lines) == (["How do I get a food permit?", "Who inspects food trucks here?"], 1)


def test_parse_salvages_arrays_cut_off_and_python_quoting():
    cut = '["How do I renew my license?", "Where is the \\"main\\" DMV office?", "What is'
    assert parse.parse_questions(cut) == (["How do I renew my license?", 'Where is the "main" DMV office?'], 1)
    assert parse.parse_questions("['How do I renew my license?', 'Where do I vote?',]") == (
        ["How do I renew my license?", "Where do I vote?"], 0)
    pairs = '[{"question": "Where do I pay?", "answer": "At the clerk."}, {"question": "When do'
    assert parse.parse_qa_pairs(pairs) == ([("Where do I pay?", "At the clerk.")], 1)


def test_parse_salvage_keeps_raw_control_characters_and_skips_bad_escapes():
    """A small teacher's cut-off array with a raw newline or tab inside a string, or a bad escape, is salvaged
    (found by the demo's embedded teacher on the Harrowgate handbook), never a crash."""
    assert parse.parse_questions('["Where do I\npay the fee?", "Who inspects\tfood trucks?", "When is') == (
        ["Where do I\npay the fee?", "Who inspects\tfood trucks?"], 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert parse.parse_questions('["Is \\q an escape?", "Where is the clerk?", "When') == (
            ["Where is the clerk?"], 2)
    assert not caught  # the teacher's bad escape is no warning on the user's terminal


def test_parse_qa_pairs_and_categories_and_rating():
    pairs, bad = parse.parse_qa_pairs('[{"question": "Q one here?", "answer": "A."}, {"q": "x"}]')
    assert pairs == [("Q one here?", "A.")] and bad == 1
    assert parse.parse_qa_pairs("Q: Where do I pay?\nA: At the clerk.\nQ: When?\nA: Monday.")[0] == [
        ("Where do I pay?", "At the clerk."), ("When?", "Monday.")]
    cats = parse.parse_categories("1. Business\n- licensing\n- permits\n2. **Property:**\n- tax appeals")
    assert cats == {"Business": ["licensing", "permits"], "Property": ["tax appeals"]}
    assert parse.parse_rating('{"accuracy": 3, "relevance": 2, "clarity": 1, "usefulness": 2}') == 8.0
    assert parse.parse_rating("Overall rating: 6/10") == 6.0
    assert parse.parse_rating('{"total": 7}') == 7.0
    assert parse.parse_rating("This looks fine to me.") is None


# -- dedup and decontamination ------------------------------------------------------------------------------
def test_near_duplicates_and_naive_baseline_agree():
    texts = ["How do I renew my driver's license in Texas?", "How can I renew my driver license in Texas?",
             "How do I appeal my property tax assessment?", "How do I renew my driver's license in Ohio?"]
    assert dedup.near_duplicates(texts, 0.8) == [None, 0, None, None]
    assert dedup.naive_near_duplicates(texts, 0.8) == [None, 0, None, None]


def test_decontamination_removes_planted_paraphrase_keeps_unrelated(tmp_path: Path):
    evalset = tmp_path / "evalsets" / "heldout"
    evalset.mkdir(parents=True)
    (evalset / "questions.jsonl").write_text(
        json.dumps({"id": "q7", "question": "What permits do I need to open a food truck in Austin?"}) + "\n"
        + json.dumps({"id": "q8", "question": "How do I renew my driver's license online?"}) + "\n")
    questions = read_eval_questions(tmp_path / "evalsets")
    train = [ex("Which licenses and permits does a food truck in Austin need before opening?"),  # paraphrase
             ex("Can I renew my driver license on the internet?"),  # paraphrase
             ex("How do I renew a food truck license in Austin?"),   # same area, different question
             ex("How do I get a replacement driver's license?"),
             ex("Can my landlord keep my security deposit?"), ex("Where do I vote in the primary election?")]
    report = Report(len(train))
    kept = decontaminate(train, questions, report, threshold=0.5)
    assert [e.question for e in kept] == [e.question for e in train[2:]]
    assert report.removed == {"eval_contamination": 2} and "heldout/q7" in report.samples["eval_contamination"][0]


def test_dedup_exact_and_near_within_slice():
    items = [ex("How do I renew my driver's license in Texas?"), ex("How do I renew my driver's license in Texas?"),
             ex("How can I renew my driver license in Texas?", "Different answer, also long enough here."),
             ex("How can I renew my driver license in Texas?", "Una respuesta", slice="spanish")]
    report = Report(len(items))
    kept = deduplicate(items, report, 0.8)
    assert len(kept) == 2 and report.removed == {"exact_duplicate": 1, "near_duplicate": 1}


def test_hygiene_fixes_headers_and_drops_bad_answers():
    items = [ex("q1 about permits?", "### ANSWER\nYou need a health permit and a business license."),
             ex("q2 about permits?", "As an AI language model, I cannot know your city's rules exactly."),
             ex("q3 about permits?", "   "), ex("q4 about permits?", "Short."),
             ex("q5 about permits?", "You need to visit the office and bring your", finish_reason="stop"),
             ex("q6 about permits?", "A fine answer that was cut off by the limit", finish_reason="length"),
             ex("q7 about permits?", "### RESPONSE: Bring two forms of ID to the county clerk's office.")]
    report = Report(len(items))
    kept = hygiene(items, report, min_chars=20, max_chars=1000)
    assert [e.answer for e in kept] == ["You need a health permit and a business license.",
                                        "Bring two forms of ID to the county clerk's office."]
    assert report.fixed == {"leading_header": 2}
    assert report.removed == {"ai_disclaimer": 1, "empty": 1, "too_short": 1, "truncated": 2}


# -- readers ------------------------------------------------------------------------------------------------
def test_readers_and_chunking(tmp_path: Path):
    (tmp_path / "a.html").write_text("<html><script>x=1</script><body><h1>Permits</h1><p>Apply online.</p></body>")
    assert read_document(tmp_path / "a.html") == "Permits\nApply online."
    (tmp_path / "b.csv").write_text("service,fee\nfood permit,$100\n")
    assert read_document(tmp_path / "b.csv") == "service: food permit; fee: $100"
    (tmp_path / "c.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(Exception):  # noqa: B017 - pypdf's own error type
        read_document(tmp_path / "c.pdf")
    with pytest.raises(ValueError, match="unsupported"):
        read_document(tmp_path / "d.xyz")
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_text(text, size=300, overlap=50)
    assert all(len(c) <= 300 for c in chunks) and chunks[0].split()[0] == "word0"
    assert chunks[-1].split()[-1] == "word399" and chunks[1].split()[0] in chunks[0]  # overlapping


# -- import / export ----------------------------------------------------------------------------------------
def test_to_messages_shapes():
    shapes = [
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "messages"),
        ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, "sharegpt"),
        ({"instruction": "q", "input": "ctx", "output": "a"}, "alpaca"),
        ({"instruction": "q", "context": "", "response": "a"}, "instruction/context/response"),
        ({"prompt": "q", "completion": "a"}, "prompt/completion"),
    ]
    for record, shape in shapes:
        got_shape, messages, _ = to_messages(record)
        assert got_shape == shape and messages[-1] == {"role": "assistant", "content": "a"}
    assert to_messages(shapes[2][0])[1][0]["content"] == "q\n\nctx"
    with pytest.raises(ValueError, match="unknown shape"):
        to_messages({"foo": 1})


def test_import_reports_malformed_line_numbers(project_dir: Path):
    path = project_dir / "old.jsonl"
    path.write_text("\n".join([
        json.dumps({"prompt": "How do I get a permit?", "completion": "Apply at city hall."}),
        '{"prompt": "broken", ',
        json.dumps({"instruction": "Where do I vote?", "context": "", "response": "At your polling place."}),
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
    ]) + "\n")
    manifest = import_dataset(Project(project_dir), path, name="old")
    assert manifest.count == 2 and manifest.counts["malformed"] == 2
    assert manifest.counts["problems"][0].startswith("old.jsonl:2: not valid JSON")
    assert manifest.counts["problems"][1].startswith("old.jsonl:4: needs a user and an assistant")
    assert load_dataset(project_dir, "old")[1].meta["line"] == 3
    with pytest.raises(UnderdogError, match="already exists"):
        import_dataset(Project(project_dir), path, name="old")


def test_jumpstart_export_is_byte_compatible(project_dir: Path):
    if FACTS.exists():  # the template line as the facts file writes it
        line = next(x for x in FACTS.read_text().splitlines() if x.strip().startswith('{"prompt"'))
        assert line.strip() == FACTS_TEMPLATE_LINE
    items = [ex(f"Question number {i} about permits?", f"Answer {i}.", context="ctx" if i == 0 else None)
             for i in range(10)]
    save_dataset(project_dir, "base", items)
    paths = export_dataset(Project(project_dir), "base", "jumpstart", validation_split=0.2, seed=1)
    out = project_dir / "exports" / "base-jumpstart"
    assert paths == [out / "train.jsonl", out / "template.json", out / "validation" / "validation.jsonl",
                     out / "validation" / "template.json"]
    assert (out / "template.json").read_text() == FACTS_TEMPLATE_LINE
    assert json.loads(FACTS_TEMPLATE_LINE) == JUMPSTART_TEMPLATE
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (out / "validation" / "validation.jsonl").read_text().splitlines()]
    assert len(train) == 8 and len(val) == 2 and set(train[0]) == {"instruction", "context", "response"}
    rendered = JUMPSTART_TEMPLATE["prompt"].format(**train[0])
    assert rendered.startswith("Below is an instruction") and train[0]["instruction"] in rendered
    # the split is seeded: same seed, same split; another seed, another split
    assert split(items, 0.2, 1) == split(items, 0.2, 1) != split(items, 0.2, 2)


@pytest.mark.parametrize("fmt", ["messages", "alpaca", "sharegpt", "csv"])
def test_other_exports_roundtrip_through_import(project_dir: Path, fmt: str):
    items = [ex(f"Question number {i} about permits?", f"Answer {i} is here.") for i in range(5)]
    save_dataset(project_dir, "base", items)
    paths = export_dataset(Project(project_dir), "base", fmt, validation_split=0.2)
    assert [p.name for p in paths] == [f"train.{'csv' if fmt == 'csv' else 'jsonl'}",
                                       f"validation.{'csv' if fmt == 'csv' else 'jsonl'}"]
    if fmt != "csv":
        manifest = import_dataset(Project(project_dir), paths[0], name=f"back-{fmt}")
        assert manifest.count == 4 and manifest.counts["malformed"] == 0
        back = {e.question: e.answer for e in load_dataset(project_dir, f"back-{fmt}")}
        assert all(back[e.question] == e.answer for e in items if e.question in back)


def test_checkpoint_table_and_roundtrip():
    from underdog.data.jobs import Checkpoint, check_new_name
    from underdog.store import Store

    store = Store(":memory:")
    assert store.columns("data_checkpoints") == ["job", "key", "value", "created"]
    first, other = Checkpoint(store, "generate:base:1"), Checkpoint(store, "generate:base:2")
    first.put_many({"q:a": {"questions": ["x?"]}, "a:1": {"answer": "y"}})
    assert first.done() == {"q:a": {"questions": ["x?"]}, "a:1": {"answer": "y"}} and other.done() == {}
    first.clear()
    assert first.done() == {}
    with pytest.raises(UnderdogError, match="use letters"):
        check_new_name(Path("."), "../escape")
