"""Bad input from a careless user: one clear line naming the file, line or argument, no traceback, nothing made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from underdog.config import load_config
from underdog.errors import ConfigError

LATIN1_JSONL = ('{"question": "Where do I renew a license?", "answer": "At the DMV."}\n'
                '{"question": "Caf\u00e9 permit?", "answer": "Apply to the city."}\n').encode("latin-1")


def one_error_line(result, exit_code: int = 1) -> str:  # type: ignore[no-untyped-def]
    """The single `error: ...` line of a failed command (and no traceback)."""
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# -- item 3: text files that are not UTF-8 ---------------------------------------------------------------------
def test_import_of_latin1_names_file_and_line_and_stores_nothing(project_dir: Path, cli) -> None:
    path = project_dir / "old.jsonl"
    path.write_bytes(LATIN1_JSONL)
    line = one_error_line(cli("import", path), exit_code=2)
    assert f"{path}:2: not UTF-8 text" in line and "--encoding" in line
    assert not (project_dir / "datasets" / "old").exists()


def test_import_with_explicit_encoding_keeps_the_text(project_dir: Path, cli) -> None:
    path = project_dir / "old.jsonl"
    path.write_bytes(LATIN1_JSONL)
    result = cli("import", path, "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    data = (project_dir / "datasets" / "old" / "data.jsonl").read_text()
    assert "Caf\u00e9 permit?" in data and "\ufffd" not in data


def test_utf16_with_its_encoding_is_read(project_dir: Path, cli) -> None:
    (project_dir / "qs.txt").write_bytes("Caf\u00e9 permit?\n".encode("utf-16"))
    result = cli("evalset", "import", project_dir / "qs.txt", "--encoding", "utf-16")
    assert result.exit_code == 0, result.output
    assert "Caf\u00e9 permit?" in (project_dir / "evalsets" / "qs" / "questions.jsonl").read_text()


def test_unknown_encoding_is_one_line(project_dir: Path, cli) -> None:
    path = project_dir / "old.jsonl"
    path.write_bytes(LATIN1_JSONL)
    assert "unknown encoding 'klingon'" in one_error_line(cli("import", path, "--encoding", "klingon"), exit_code=2)


@pytest.mark.parametrize("name,body,expected", [
    ("qs.txt", "Caf\u00e9 permit?\n".encode("latin-1"), "qs.txt:1: not UTF-8 text"),
    ("qs.jsonl", LATIN1_JSONL, "qs.jsonl:2: not UTF-8 text"),
    ("qs.csv", b"question\nok?\n\x00\x01\x02\xff\xfe binary", "qs.csv: a binary file, not text"),
    ("qs.txt", "Caf\u00e9 permit?\n".encode("utf-16"), "qs.txt: UTF-16 text (name it with --encoding utf-16), not"),
    ("qs.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n", "qs.pdf: a PDF"),
])
def test_evalset_import_of_non_text_is_one_line(project_dir: Path, cli, name: str, body: bytes,
                                                expected: str) -> None:
    (project_dir / name).write_bytes(body)
    assert expected in one_error_line(cli("evalset", "import", project_dir / name), exit_code=2)
    assert not (project_dir / "evalsets").exists()


def test_ingest_skips_a_latin1_page_naming_its_line(project_dir: Path) -> None:
    from underdog.data.ingestion import read_chunks

    good, bad = project_dir / "good.md", project_dir / "bad.md"
    good.write_text("# Permits\n\nFood trucks need a permit.\n")
    bad.write_bytes("# Caf\u00e9s\n\nOutdoor seating needs a permit.\n".encode("latin-1"))
    chunks, skipped = read_chunks([good, bad], 2000, 200)
    assert [c[0] for c in chunks] == [str(good)]
    assert [s["file"] for s in skipped] == [str(bad)]
    assert skipped[0]["reason"].startswith("line 1: not UTF-8 text (byte 0xe9 at column 6); save it as UTF-8")
    chunks, skipped = read_chunks([bad], 2000, 200, encoding="latin-1")  # what `ingest --encoding latin-1` passes
    assert skipped == [] and chunks[0][1].startswith("# Caf\u00e9s")


def test_topics_yaml_not_utf8_is_one_line(project_dir: Path) -> None:
    from underdog.data.topics import load_topics
    from underdog.errors import UnderdogError
    from underdog.project import Project

    (project_dir / "topics.yaml").write_bytes("categories:\n  Caf\u00e9s: [permits]\n".encode("latin-1"))
    with pytest.raises(UnderdogError, match=r"topics.yaml:2: not UTF-8 text"):
        load_topics(Project(project_dir))


# -- item 5: configuration mistakes are one line, exit 2 ---------------------------------------------------------
def test_non_utf8_config_is_one_line_exit_2(project_dir: Path, cli) -> None:
    path = project_dir / "underdog.yaml"
    text = path.read_text()
    number = text[:text.index("US state")].count("\n") + 1
    path.write_bytes(text.replace("US state", "Caf\u00e9 state").encode("latin-1"))
    line = one_error_line(cli("models", "--no-check"), exit_code=2)
    assert f"underdog.yaml:{number}: not UTF-8 text (byte 0xe9 at column" in line
    assert line.endswith("; save it as UTF-8")


@pytest.mark.parametrize("override,expected", [
    ("train.epoch=[", "--set 'train.epoch=[': the value is not valid YAML"),
    ("x.y.z=1", "--set 'x.y.z=1': x: unknown key"),
    ("=3", "--set '=3': the key is empty"),
    ("train..epoch=3", "--set 'train..epoch=3': the key 'train..epoch' has an empty part"),
    ("train", "--set 'train': not of the form key=value"),
    ("models.judge.model.x=1", "--set 'models.judge.model.x=1': 'model' is not a section"),
])
def test_bad_override_is_blamed_on_the_set_argument(project_dir: Path, cli, override: str, expected: str) -> None:
    line = one_error_line(cli("--set", override, "models", "--no-check"), exit_code=2)
    assert line == f"error: {expected}" or line.startswith(f"error: {expected} ("), line
    assert "underdog.yaml" not in line


def test_file_error_is_not_blamed_on_an_unrelated_override(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    config = yaml.safe_load(path.read_text())
    del config["models"]["reference"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"underdog.yaml:\d+: models: missing role\(s\): reference"):
        load_config(path, ["models.judge.params.temperature=0.1"])


def test_duplicate_yaml_keys_are_rejected_naming_both_lines(project_dir: Path) -> None:
    path = project_dir / "underdog.yaml"
    text = path.read_text()
    path.write_text(text + "train:\n  epoch: 2\n  epoch: 3\n")
    first = text.count("\n") + 1
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}:{first + 2}: duplicate key 'epoch' (also on line {first + 1})")


def test_duplicate_top_level_section_is_rejected(project_dir: Path, cli) -> None:
    path = project_dir / "underdog.yaml"
    text = path.read_text()
    domain_line = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("domain:"))) + 1
    path.write_text(text + "domain: second\n")
    line = one_error_line(cli("models", "--no-check"), exit_code=2)
    assert line.endswith(f"duplicate key 'domain' (also on line {domain_line})")


# -- item 9: outside a project --------------------------------------------------------------------------------
NOT_A_PROJECT = "not an underdog project (no underdog.yaml here or above): run `underdog init`"


@pytest.mark.parametrize("args", [["usage"], ["runs"], ["arena", "export"], ["generate"], ["datasets"],
                                  ["import", "x.jsonl"], ["evalset", "list"], ["judge", "student"]])
def test_commands_outside_a_project_say_so_and_create_nothing(tmp_path: Path, monkeypatch, cli,
                                                               args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNDERDOG_PROJECT", raising=False)
    assert one_error_line(cli(*args), exit_code=2) == f"error: {NOT_A_PROJECT}"
    assert list(tmp_path.iterdir()) == []


def test_a_subfolder_of_a_project_uses_the_project(project_dir: Path, monkeypatch, cli) -> None:
    sub = project_dir / "notes" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = cli("usage")
    assert result.exit_code == 0, result.output
    assert (project_dir / "underdog.db").exists() and not (sub / "underdog.db").exists()


def test_evalset_import_reports_file_line_for_bad_json(project_dir: Path, cli) -> None:
    (project_dir / "qs.jsonl").write_text(json.dumps({"question": "ok?"}) + "\n{oops\n")
    assert "qs.jsonl:2: not valid JSON" in one_error_line(cli("evalset", "import", project_dir / "qs.jsonl"),
                                                          exit_code=2)


def test_short_organiser_token_is_one_line_exit_2(project_dir: Path, cli) -> None:
    line = one_error_line(cli("arena", "serve", env={"UNDERDOG_ARENA_TOKEN": "short"}), exit_code=2)
    assert line.startswith("error: the organiser token ($UNDERDOG_ARENA_TOKEN) must have at least 8 characters")
    assert "short" not in line.removeprefix("error: ").replace("shorter", "")


@pytest.mark.parametrize("reader,name", [("underdog.tune.prompt:load_prompts", "prompts.yaml"),
                                         ("underdog.train.sweep:load_sweep", "sweep.yaml"),
                                         ("underdog.arena.prepare:load_settings", "best.yaml")])
def test_other_yaml_inputs_not_utf8_are_one_line(tmp_path: Path, reader: str, name: str) -> None:
    import importlib

    module, function = reader.split(":")
    path = tmp_path / name
    path.write_bytes("# settings\nsystem_prompt: Caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{name}:2: not UTF-8 text \(byte 0xe9 at column 19\); save it as UTF-8$"):
        getattr(importlib.import_module(module), function)(path)


# -- issue 22, items 5 and 9: every input path parses records in one place ------------------------------------
NESTED = "[" * 100_000 + "]" * 100_000
BIG = "x" * 200_000  # over the csv module's default field limit (128 KiB)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["evalset", "import"], ["import"]])
def test_a_csv_field_over_128_kib_is_read_whole(project_dir: Path, cli, command: list[str]) -> None:
    path = _write(project_dir / "big.csv", f'question,answer\n"Why?","{BIG}"\n')
    result = cli(*command, path)
    assert result.exit_code == 0, result.output
    written = (project_dir / ("evalsets" if command[0] == "evalset" else "datasets") / "big").rglob("*.jsonl")
    assert BIG in "".join(p.read_text() for p in written)


@pytest.mark.parametrize("command", [["evalset", "import"], ["import"]])
def test_a_csv_quote_never_closed_is_one_line_naming_where_it_opens(project_dir: Path, cli,
                                                                    command: list[str]) -> None:
    path = _write(project_dir / "qs.csv", 'question,answer\nWhen?,Soon\n"Where?,Here\nWho?,Me\nWhat?,That\n')
    line = one_error_line(cli(*command, path), exit_code=2)
    assert line == f"error: {path}:3: not valid CSV: a quote opened in this record is never closed"
    assert not (project_dir / "evalsets").exists() and not (project_dir / "datasets" / "qs").exists()


def test_text_after_a_closing_quote_is_one_line(project_dir: Path, cli) -> None:
    path = _write(project_dir / "qs.csv", 'question,answer\n"Where?"x,Here\n')
    assert f"{path}:2: not valid CSV: text after a closing quote" in one_error_line(
        cli("evalset", "import", path), exit_code=2)


@pytest.mark.parametrize("name,body,where", [
    ("qs.jsonl", '{"question": "Ok?"}\n{"question": "Deep?", "reference": ' + NESTED + "}\n", "qs.jsonl:2"),
    ("qs.json", '[{"question": "Deep?", "facts": ' + NESTED + "}]", "qs.json"),
])
def test_deeply_nested_json_is_one_line(project_dir: Path, cli, name: str, body: str, where: str) -> None:
    line = one_error_line(cli("evalset", "import", _write(project_dir / name, body)), exit_code=2)
    assert line.endswith(f"{where}: JSON nested too deeply to read"), line
    assert not (project_dir / "evalsets").exists()


def test_import_skips_a_deeply_nested_line_like_any_malformed_one(project_dir: Path, cli) -> None:
    good = json.dumps({"question": "Where do I renew?", "answer": "At the DMV."})
    path = _write(project_dir / "old.jsonl", f"{good}\n{NESTED}\n")
    result = cli("import", path)
    assert result.exit_code == 0 and "old.jsonl:2: JSON nested too deeply to read" in result.output, result.output


@pytest.mark.parametrize("record,expected", [
    ({"question": "Fee?", "reference": 42}, "qs.jsonl:2: 'reference' must be a string (got a number)"),
    ({"question": "Fee?", "topic": ["fees"]}, "qs.jsonl:2: 'topic' must be a string (got a list)"),
    ({"question": "Fee?", "id": {"a": 1}}, "qs.jsonl:2: 'id' must be a string or a whole number (got an object)"),
    ({"question": "Fee?", "facts": ["$45", "$"]}, "qs.jsonl:2: fact '$' has no letter or digit, so no answer"),
    ({"question": "Fee?", "facts": "..."}, "qs.jsonl:2: fact '...' has no letter or digit"),
    ({"question": "Fee?", "facts": ["//"]}, "qs.jsonl:2: fact '//' has no letter or digit"),
    ({"question": "Fee?", "id": "q1"}, "qs.jsonl:2: question id 'q1' is also at "),
])
def test_a_question_that_cannot_be_judged_is_one_line(project_dir: Path, cli, record: dict, expected: str) -> None:
    first = json.dumps({"question": "First?", "id": "q1"})
    path = _write(project_dir / "qs.jsonl", f"{first}\n{json.dumps(record)}\n")
    line = one_error_line(cli("evalset", "import", path), exit_code=2)
    assert f"{path.parent}/{expected}" in line, line
    assert not (project_dir / "evalsets").exists()


def test_a_repeated_question_without_ids_names_both_lines(project_dir: Path, cli) -> None:
    path = _write(project_dir / "qs.txt", "Where?\nWhen?\nWhere?\n")
    assert one_error_line(cli("evalset", "import", path), exit_code=2) == \
        f"error: {path}:3: the same question is also at {path}:1"


def test_a_saved_eval_set_with_a_number_as_reference_is_one_line_before_anything_runs(project_dir: Path,
                                                                                       cli) -> None:
    folder = project_dir / "evalsets" / "old"
    folder.mkdir(parents=True)
    (folder / "questions.jsonl").write_text(json.dumps({"id": "q1", "question": "Fee?", "reference": 42}) + "\n")
    (folder / "manifest.json").write_text(json.dumps({"name": "old", "count": 1}))
    line = one_error_line(cli("evalset", "show", "old"), exit_code=2)
    assert line == f"error: {folder / 'questions.jsonl'}:1: 'reference' must be a string (got a number)"


def test_import_says_how_much_whitespace_it_trimmed(project_dir: Path, cli) -> None:
    records = [{"instruction": "Where?", "input": "  the DMV ", "output": "There. "},
               {"instruction": "When?", "input": "", "output": "\nNow"},
               {"messages": [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "hello"}]}]
    path = _write(project_dir / "old.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    result = cli("import", path)
    assert result.exit_code == 0, result.output
    assert "whitespace trimmed at the ends of 'input' of 1 record, 'output' of 2 records" in result.output
    manifest = json.loads((project_dir / "datasets" / "old" / "manifest.json").read_text())
    assert manifest["counts"]["trimmed"] == {"input": 1, "output": 2}
