"""Import and export keep the data: export(import(file)) == file and import(export(dataset)) == dataset for every
format, as properties over generated records (unicode, newlines, quotes, line separators, empty context)."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from underdog.data.dataset import load_dataset
from underdog.data.formats import FORMATS, export_dataset, import_dataset
from underdog.project import Project, init_project

# Any character but NUL (a CSV cannot hold it) and surrogates (not encodable), no outer whitespace, as import
# strips it. Line and paragraph separators (U+2028, U+0085) and quotes are in on purpose.
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
SPECIAL = st.sampled_from(["\n", "\r\n", '"', "'", ",", "\u2028", "\x85", "\\", "\t", "é", "中", "🙂"])
TEXT = st.lists(st.one_of(CHARS, SPECIAL), min_size=1, max_size=30).map("".join).map(str.strip).filter(bool)
CONTEXT = st.one_of(st.just(""), TEXT)
PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
counter = itertools.count()


def record(fmt: str, question: str, context: str, answer: str, topic: str) -> dict:
    """One record in the shape `fmt` exports."""
    if fmt == "messages":
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
    if fmt == "sharegpt":
        return {"conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if fmt == "alpaca":
        return {"instruction": question, "input": context, "output": answer}
    if fmt == "jumpstart":
        return {"instruction": question, "context": context, "response": answer}
    if fmt == "trl":
        return {"prompt": [{"role": "user", "content": question}], "completion": [{"role": "assistant",
                                                                                   "content": answer}]}
    return {"question": question, "answer": answer, "context": context, "topic": topic}


def write(path: Path, fmt: str, records: list[dict]) -> Path:
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["question", "answer", "context", "topic"])
            writer.writeheader()
            writer.writerows(records)
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read(path: Path, fmt: str) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:  # keep "\r\n" inside a CSV field as written
        text = f.read()
    if fmt == "csv":
        return [{k: v for k, v in row.items() if k != "id"} for row in csv.DictReader(io.StringIO(text))]
    return [json.loads(line) for line in text.split("\n") if line]


def key(item: dict) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One project for every generated case (config read once); each case writes its own dataset names."""
    root = tmp_path_factory.mktemp("roundtrip")
    init_project("round trips", root)
    return Project(root)


def suffix(fmt: str) -> str:
    return "csv" if fmt == "csv" else "jsonl"


ROWS = st.lists(st.tuples(TEXT, CONTEXT, TEXT, st.one_of(st.just(""), TEXT)), min_size=1, max_size=4)


@PROPERTY
@given(fmt=st.sampled_from(FORMATS), rows=ROWS)
def test_export_of_an_import_gives_the_file_back(project: Project, fmt: str,
                                                 rows: list[tuple[str, str, str, str]]) -> None:
    records = [record(fmt, *row) for row in rows]
    name = f"in{next(counter)}"
    import_dataset(project, write(project.root / f"{name}.{suffix(fmt)}", fmt, records), name)
    out = export_dataset(project, name, fmt, validation_split=0)[0]
    assert sorted(map(key, read(out, fmt))) == sorted(map(key, records))


@PROPERTY
@given(source=st.sampled_from(["alpaca", "jumpstart", "csv"]), fmt=st.sampled_from(FORMATS), rows=ROWS)
def test_import_of_an_export_gives_the_dataset_back(project: Project, source: str, fmt: str,
                                                    rows: list[tuple[str, str, str, str]]) -> None:
    records = [record(source, *row) for row in rows]
    name = f"x{next(counter)}"
    import_dataset(project, write(project.root / f"{name}.{suffix(source)}", source, records), name)
    out = export_dataset(project, name, fmt, validation_split=0)[0]
    import_dataset(project, out, f"{name}-back")
    before, after = load_dataset(project.root, name), load_dataset(project.root, f"{name}-back")
    assert sorted(key(e.messages) for e in after) == sorted(key(e.messages) for e in before)


def test_instruction_context_is_written_once(project_dir: Path) -> None:
    item = {"instruction": "Summarize the rule.", "context": "Food trucks must park 50 ft from restaurants.",
            "response": "Park at least 50 feet away."}
    path = project_dir / "rule.jsonl"
    path.write_text(json.dumps(item) + "\n")
    import_dataset(Project(project_dir), path, "rule")
    [example] = load_dataset(project_dir, "rule")
    assert example.question == "Summarize the rule.\n\nFood trucks must park 50 ft from restaurants."
    jumpstart = export_dataset(Project(project_dir), "rule", "jumpstart", validation_split=0)[0]
    assert json.loads(jumpstart.read_text()) == item
    alpaca = export_dataset(Project(project_dir), "rule", "alpaca", validation_split=0)[0]
    assert json.loads(alpaca.read_text()) == {"instruction": item["instruction"], "input": item["context"],
                                              "output": item["response"]}
    import_dataset(Project(project_dir), jumpstart, "again")
    assert load_dataset(project_dir, "again")[0].messages == example.messages
