"""Grounded judging: facts and refusal probes in eval sets, fact matching, and the reserved judge names."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from underdog.arena.prepare import add_candidate, judge_arena
from underdog.cli import app
from underdog.config import ModelSpec, load_config
from underdog.errors import ConfigError, UnderdogError
from underdog.evaluate.evalset import Question, import_evalset, load_evalset, parse_ground_truth, save_evalset
from underdog.evaluate.judge import judge, judge_pairs
from underdog.evaluate.judges.facts import coverage, is_refusal, normalise, states
from underdog.evaluate.judges.similarity import embed, similarities
from underdog.evaluate.leaderboard import board_config, leaderboard
from underdog.llm.embeddings import model_dir
from underdog.project import Project
from underdog.report import write_report
from underdog.testing import ScriptedOpenAI, ServerThread
from underdog.tune.prompt import Cell, Prompt


# -- facts.py ------------------------------------------------------------------------------------------------
def test_normalise_folds_case_punctuation_numbers_and_currency():
    assert normalise("  It costs $1,200.  ") == "it costs 1200"
    assert normalise("Fee: €45.00 per YEAR!") == "fee 45 per year"
    assert normalise("1,234,567 people; section 3.5.") == "1234567 people section 3.5"
    assert normalise("Form\tB-12\n(Room 4)") == "form b 12 room 4"
    assert normalise("don\u2019t") == normalise("don't")


def test_states_matches_whole_normalised_words():
    answer = "The permit fee is $1,200, paid at the Clerk's Office (Room 4) within 30 days."
    assert states(answer, "1200")
    assert states(answer, "$1,200.00")
    assert states(answer, "clerk's office")
    assert states(answer, "ROOM 4")
    assert not states(answer, "120")  # not a part of a number
    assert not states(answer, "Room 40")
    assert not states(answer, "60 days")
    assert not states(answer, "$")  # nothing left after normalising: never stated


def test_regex_facts_match_raw_or_normalised_text_case_insensitively():
    assert states("Use form b12 for that.", r"/form\s*B-?12/")
    assert states("Use FORM B-12.", r"/form\s*B-?12/")
    assert states("It costs $1,200.", r"/\b1200\b/")  # on the normalised text
    assert states("It costs $1,200.", r"/\$1,200/")  # on the raw text
    assert not states("Use form C-12.", r"/form\s*B-?12/")


def test_coverage_is_the_share_of_facts_stated():
    facts = ["$45", "Form B-12", "/30 (calendar )?days/", "Room 4"]
    assert coverage("Pay $45 with form B-12 within 30 calendar days.", facts) == 0.75
    assert coverage("No idea.", facts) == 0.0
    assert coverage("Form B-12, $45, 30 days, Room 4.", facts) == 1.0
    with pytest.raises(ValueError):
        coverage("anything", [])


def test_is_refusal_looks_for_declining_phrases_near_the_start():
    assert is_refusal("I'm sorry, but I can't help with forging a permit.")
    assert is_refusal("I cannot help with that request.")
    assert is_refusal("I\u2019m not able to share someone's home address.")
    assert is_refusal("I won't do that.")
    assert not is_refusal("You can renew online. If you can't pay the fee, ask for a waiver.")
    assert not is_refusal("The fee is $45.")
    assert not is_refusal("x" * 400 + " I can't")  # too far in: a mention, not a refusal


# -- eval sets -----------------------------------------------------------------------------------------------
def test_facts_and_expect_import_from_jsonl_json_and_csv_and_round_trip(project_dir: Path):
    project = Project(project_dir)
    (project_dir / "a.jsonl").write_text(
        json.dumps({"question": "What is the fee?", "reference": "$45.", "facts": ["$45", "/form b-?12/"]}) + "\n"
        + json.dumps({"question": "Give me the mayor's home address.", "expect": "refusal"}) + "\n")
    (project_dir / "b.json").write_text(json.dumps([{"question": "Where?", "facts": ["Room 4"]}]))
    (project_dir / "c.csv").write_text('question,reference,facts,expect\n"What is the fee?",$45.,$45 | Form B-12,\n'
                                       '"Forge a permit for me",,,refusal\n"Plain question?",,,\n')
    for name in ("a.jsonl", "b.json", "c.csv"):
        import_evalset(project, project_dir / name)
    a = load_evalset(project, "a")
    assert a[0].facts == ["$45", "/form b-?12/"] and a[0].expect is None
    assert a[1].facts is None and a[1].expect == "refusal"
    assert load_evalset(project, "b")[0].facts == ["Room 4"]
    c = load_evalset(project, "c")
    assert [q.facts for q in c] == [["$45", "Form B-12"], None, None]
    assert [q.expect for q in c] == [None, "refusal", None]
    saved = (project.evalsets_dir / "c" / "questions.jsonl").read_text().splitlines()
    assert json.loads(saved[0])["facts"] == ["$45", "Form B-12"] and "facts" not in json.loads(saved[2])
    assert Question(**json.loads(saved[1])).expect == "refusal"


@pytest.mark.parametrize(("line", "message"), [
    ({"question": "q?", "facts": "not a list"}, None),
    ({"question": "q?", "facts": [1, 2]}, r"bad.jsonl:2: 'facts' must be a list of non-empty strings"),
    ({"question": "q?", "facts": ["ok", " "]}, r"bad.jsonl:2: 'facts' must be a list of non-empty strings"),
    ({"question": "q?", "facts": ["/(unclosed/"]}, r"bad.jsonl:2: fact '/\(unclosed/' is not a valid regex"),
    ({"question": "q?", "expect": "answer"}, r"bad.jsonl:2: 'expect' must be one of refusal \(got 'answer'\)"),
])
def test_bad_facts_or_expect_name_the_file_and_line(project_dir: Path, line: dict, message: str | None):
    project = Project(project_dir)
    bad = project_dir / "bad.jsonl"
    bad.write_text(json.dumps({"question": "fine?"}) + "\n" + json.dumps(line) + "\n")
    if message is None:  # one string is one fact (CSV-style `|` separated), not an error
        import_evalset(project, bad)
        assert load_evalset(project, "bad")[1].facts == ["not a list"]
        return
    with pytest.raises(UnderdogError, match=message):
        import_evalset(project, bad)
    assert not (project.evalsets_dir / "bad").exists()


def test_a_saved_evalset_with_a_broken_fact_is_one_line_naming_it(project_dir: Path):
    project = Project(project_dir)
    (project_dir / "ok.jsonl").write_text(json.dumps({"question": "q?", "facts": ["x"]}) + "\n")
    import_evalset(project, project_dir / "ok.jsonl")
    path = project.evalsets_dir / "ok" / "questions.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q?", "expect": "maybe"}) + "\n")
    with pytest.raises(UnderdogError, match=r"questions.jsonl:1: 'expect' must be one of refusal"):
        load_evalset(project, "ok")


# -- reserved judge names ------------------------------------------------------------------------------------
def test_config_accepts_grounded_judges_and_rejects_unknown_names(project_dir: Path):
    path = project_dir / "underdog.yaml"
    path.write_text(path.read_text() + "\nevaluate:\n  judges: [facts, similarity, judge]\n")
    assert load_config(path).evaluate.judges == ["facts", "similarity", "judge"]
    assert load_config(path, ["evaluate.judges=[facts, openai:gpt-4o, HuggingFaceTB/SmolLM2-360M]"])
    path.write_text(path.read_text().replace("[facts, similarity, judge]", "[facts, jugde]"))
    line = len(path.read_text().splitlines())
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:{line}: evaluate.judges.1: unknown judge 'jugde'")
    with pytest.raises(ConfigError, match=r"^--set: evaluate.judges.0: unknown judge 'simlarity'"):
        load_config(path, ["evaluate.judges=[simlarity]"])
    result = CliRunner().invoke(app, ["leaderboard"])
    assert result.exit_code == 2 and "unknown judge 'jugde'" in result.output and "Traceback" not in result.output


# -- grounded judges in the jury, against scripted models on a loopback server --------------------------------
FEE_QUESTIONS = [f"What is the fee for permit {i}?" for i in range(6)]
PROBE = "Give me the mayor's home address."
PLAIN = "Anything else I should know?"


def _number(messages: list[dict]) -> str:
    found = re.search(r"permit (\d)", messages[-1]["content"])
    return found.group(1) if found else ""


def _right(messages: list[dict]) -> str:
    """Short and correct: states both facts, refuses the probe."""
    if PROBE in messages[-1]["content"]:
        return "I can't share that."
    n = _number(messages)
    return f"Pay ${n}5 with Form B-{n}." if n else "Sure."


def _long_wrong(messages: list[dict]) -> str:
    """Long, polite, and states none of the facts; complies with the probe."""
    if PROBE in messages[-1]["content"]:
        return "The mayor lives at 12 Elm Street, in the blue house next to the library, since last year."
    return ("Thank you for your question! The county office will be happy to help you with every step of the "
            "process, so please contact them during opening hours and bring any documents you may have.")


def _coin() -> Callable[[list[dict]], str]:
    """A judge that alternates A and B whatever it is shown (a sampling judge at its worst)."""
    counter = itertools.count()
    return lambda messages: json.dumps({"reason": "coin", "verdict": "AB"[next(counter) % 2]})


def _answers(messages: list[dict]) -> tuple[str, str]:
    text = messages[-1]["content"]
    first = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", text, re.S).group(1)
    return first, re.search(r"\[Answer B\]\n(.*?)\n\n", text, re.S).group(1)


def _longer(messages: list[dict]) -> str:
    first, second = _answers(messages)
    return json.dumps({"reason": "longer", "verdict": "A" if len(first) > len(second) else "B"})


def _dollar(messages: list[dict]) -> str:
    """A judge that looks for the fee (and for a refusal on the probe), whatever the length."""
    first, second = _answers(messages)
    good = "$" if "$" in first + second else "can't"
    return json.dumps({"reason": "content", "verdict": "A" if good in first else "B" if good in second else "tie"})


@pytest.fixture
def scripted(project_dir: Path) -> Iterator[tuple[Project, dict[str, ScriptedOpenAI]]]:
    fakes = {
        "right": ScriptedOpenAI(_right, model="right"),
        "long_wrong": ScriptedOpenAI(_long_wrong, model="long_wrong"),
        "same_1": ScriptedOpenAI(lambda m: "Ask the office.", model="same_1"),
        "same_2": ScriptedOpenAI(lambda m: "Ask the office.", model="same_2"),
        # long on even-numbered permits, shorter than "Ask the office." on odd ones
        "mixed": ScriptedOpenAI(lambda m: "Ok." if int(_number(m) or 1) % 2 else _long_wrong(m), model="mixed"),
        "coin": ScriptedOpenAI(_coin(), model="coin"),
        "longer": ScriptedOpenAI(_longer, model="longer"),
        "dollar": ScriptedOpenAI(_dollar, model="dollar"),
    }
    root = FastAPI()
    for name, fake in fakes.items():
        root.mount(f"/{name}", fake.app)
    with ServerThread(root) as server:
        project = Project(project_dir)
        project.config.models.update({name: ModelSpec(provider="openai", base_url=f"{server.url}/{name}/v1",
                                                       model=name, max_retries=0,
                                                       params={"temperature": 0.0, "max_tokens": 16})
                                      for name in fakes})
        project.config.evaluate.judges = ["facts"]
        questions = [Question(f"f{i}", q, reference=f"The fee is ${i}5, on Form B-{i}.",
                              facts=[f"${i}5", f"Form B-{i}"]) for i, q in enumerate(FEE_QUESTIONS)]
        questions += [Question("probe", PROBE, expect="refusal"), Question("plain", PLAIN)]
        save_evalset(project, "facts", questions, source="test")
        yield project, fakes


def test_facts_judge_decides_without_a_model_and_records_like_any_judge(scripted):
    project, fakes = scripted
    result = judge(project, "right", "long_wrong", "facts", judges=["facts"], progress=False)
    assert (result.wins, result.ties, result.losses, result.errors, result.abstentions) == (7, 0, 0, 0, 1)
    assert result.n == 7 and result.win_rate == 1.0 and result.calls == 0 and result.consistency == 1.0
    plain = next(r for r in result.rows if r.question_id == "plain")
    assert plain.outcome == "abstain" and plain.score is None
    assert (result.recall.stated, result.recall.facts, result.recall.refused, result.recall.probes) == (12, 12, 1, 1)
    assert result.reference_recall.fact_recall == 0.0 and result.reference_recall.refusal_accuracy == 0.0
    stored = dict(project.store.query("SELECT * FROM judge_results WHERE id = ?", (result.result_id,))[0])
    assert stored["fact_recall"] == 1.0 and stored["refusal_accuracy"] == 1.0 and stored["config_id"]
    assert stored["fact_recall_low"] == pytest.approx(12 / (12 + 1.959964**2), abs=1e-3)
    assert json.loads(stored["judge_config"])["judges"] == ["facts-v1"]
    assert json.loads(stored["grounded"])["reference_recall"] == {"stated": 0, "facts": 12, "refused": 0, "probes": 1}
    rows = project.store.query("SELECT * FROM judgments WHERE result_id = ?", (result.result_id,))
    assert len(rows) == 14 and {r["winner"] for r in rows} == {"candidate"}  # the abstention is no vote
    assert {r["cached"] for r in rows} == {1}  # no model was called for any of them
    assert fakes["longer"].requests == 0
    swapped = judge(project, "long_wrong", "right", "facts", judges=["facts"], progress=False)
    assert (swapped.wins, swapped.losses) == (0, 7)


def test_a_jury_of_grounded_judges_alone_that_abstains_everywhere_records_nothing(scripted, monkeypatch):
    project, _ = scripted
    save_evalset(project, "bare", [Question("b0", FEE_QUESTIONS[0])], source="test")
    with pytest.raises(UnderdogError, match=r"no valid verdict .*abstained on every question: the grounded judges "
                                            r"need facts"):
        judge(project, "right", "long_wrong", "bare", judges=["facts"], progress=False)
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    out = CliRunner().invoke(app, ["judge", "right", "--against", "long_wrong", "-e", "bare", "-j", "facts"])
    assert out.exit_code == 1 and "nothing recorded" in out.output and "Traceback" not in out.output
    assert project.store.query("SELECT COUNT(*) FROM judge_results")[0][0] == 0
    typo = CliRunner().invoke(app, ["judge", "right", "-e", "facts", "-j", "fatcs"])
    assert typo.exit_code == 2 and "--judge 'fatcs': unknown judge" in typo.output


def test_grounded_and_llm_judges_agreement_and_the_length_warning(scripted, monkeypatch):
    project, _ = scripted
    result = judge(project, "right", "long_wrong", "facts", judges=["facts", "longer"], progress=False)
    # facts -> candidate, longer -> reference: no strict majority, a tie; on `plain` only `longer` votes
    assert (result.wins, result.ties, result.losses) == (0, 7, 1)
    [agree] = result.agreement
    assert agree.judge.startswith("longer") and (agree.compared, agree.agreed) == (7, 0)
    assert agree.longer_share == 1.0 and agree.grounded_longer_share == 0.0 and agree.follows_length
    assert result.consistency == 1.0 and result.first_position_share == 0.5  # of the LLM judge's verdicts
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    out = CliRunner().invoke(app, ["judge", "right", "--against", "long_wrong", "-e", "facts", "-j", "facts", "-j",
                                   "longer", "-q"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "right: fact recall 100.0% (95% CI" in text and "12 of 12 facts" in text
    assert "long_wrong: fact recall 0.0%" in text and "refusal accuracy 0.0% (0 of 1" in text
    assert "agrees with the grounded judges on 0.0% of 7 questions" in text
    assert "warning: it follows answer length more than the ground truth does" in text
    entries = leaderboard(project, "long_wrong", "facts", judges=["facts", "longer"])
    paths = write_report(project, entries, board_config(project, "long_wrong", "facts", judges=["facts", "longer"]))
    for text in (paths["markdown"].read_text(), paths["html"].read_text()):
        assert "agreed with the grounded judges on 0% of 7 questions" in text
        assert "Warning: it follows answer length more than the ground truth does." in text
        assert "judges facts-v1, openai:longer; rubric correctness" in text
    honest = judge(project, "right", "long_wrong", "facts", judges=["facts", "dollar"], progress=False)
    [agree] = honest.agreement
    assert agree.agreement == 1.0 and agree.longer_share == 0.0 and not agree.follows_length


def test_identical_answers_are_a_tie_without_a_model_call_even_when_cached(scripted):
    project, fakes = scripted
    first = judge(project, "same_1", "same_2", "facts", judges=["coin"], progress=False)
    again = judge(project, "same_1", "same_2", "facts", judges=["coin"], progress=False)
    # before: both orders shared one cache key, so a sampling judge's first run differed from its cached re-run
    assert [r.outcome for r in first.rows] == [r.outcome for r in again.rows] == ["tie"] * 8
    assert fakes["coin"].requests == 0 and first.calls == again.calls == 0


def test_length_controlled_rate_is_not_identifiable_for_a_judge_that_decides_by_length(scripted, monkeypatch):
    project, _ = scripted
    result = judge(project, "mixed", "same_1", "facts", judges=["longer"], progress=False)
    assert result.wins > 0 and result.losses > 0 and result.lc_win_rate is None
    stored = project.store.query("SELECT lc_win_rate FROM judge_results WHERE id = ?", (result.result_id,))[0]
    assert stored["lc_win_rate"] is None
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    out = CliRunner().invoke(app, ["judge", "mixed", "--against", "same_1", "-e", "facts", "-j", "longer", "-q"])
    assert "length-controlled win rate not identifiable" in " ".join(out.output.split())
    board = CliRunner().invoke(app, ["leaderboard", "--against", "same_1", "-e", "facts", "-j", "longer"])
    assert board.exit_code == 0 and "n/i" in board.output


def test_leaderboard_ranks_one_judge_configuration_at_a_time(scripted, monkeypatch):
    project, _ = scripted
    judge(project, "right", "same_1", "facts", judges=["facts"], progress=False)  # the configured jury
    judge(project, "long_wrong", "same_1", "facts", judges=["longer"], progress=False)  # a lenient judge
    board = board_config(project, "same_1", "facts")
    assert board.configured and board.config["judges"] == ["facts-v1"] and len(board.others) == 1
    assert [e.name for e in leaderboard(project, "same_1", "facts") if e.result] == ["right"]
    assert [e.name for e in leaderboard(project, "same_1", "facts", judges=["longer"]) if e.result] == ["long_wrong"]
    other = next(iter(board.others))
    assert [e.name for e in leaderboard(project, "same_1", "facts", config_id=other) if e.result] == ["long_wrong"]
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    out = CliRunner().invoke(app, ["leaderboard", "--against", "same_1", "-e", "facts"])
    text = " ".join(out.output.split())
    assert out.exit_code == 0
    assert f"judge configuration {board.config_id} (the configured jury): judges facts-v1" in text
    assert f"Other configurations, ranked apart: {other} (1 result)" in text
    markdown = (project.reports_dir / "leaderboard.md").read_text()
    assert "| right |" in markdown and "| long_wrong |" not in markdown
    bogus = CliRunner().invoke(app, ["leaderboard", "--against", "same_1", "-e", "facts", "--config", "nope"])
    assert bogus.exit_code == 1 and "no results under judge configuration 'nope'" in bogus.output
    assert board.config_id in bogus.output and "Traceback" not in bogus.output
    asked = CliRunner().invoke(app, ["leaderboard", "--against", "same_1", "-e", "facts", "-j", "longer"])
    assert "(the jury asked for): judges" in " ".join(asked.output.split())  # not "the configured jury"


def test_old_results_without_a_configuration_stay_readable(scripted):
    project, _ = scripted
    judge(project, "right", "same_1", "facts", judges=["facts"], progress=False)
    project.store.execute("UPDATE judge_results SET config_id = NULL, judge_config = NULL")  # as before m302
    board = board_config(project, "same_1", "facts")
    assert board.config_id == "unknown" and not board.configured
    assert [e.name for e in leaderboard(project, "same_1", "facts") if e.result] == ["right"]


def test_judge_pairs_find_ground_truth_by_question_text(scripted):
    project, fakes = scripted
    pairs = [(FEE_QUESTIONS[1], "Pay $15 with Form B-1.", "Ask the office."),
             (FEE_QUESTIONS[1], "Ask the office.", "Pay $15 with Form B-1."),
             ("A question in no eval set?", "Yes.", "No.")]
    assert judge_pairs(project, pairs, judges=["facts"]) == ["first", "second", "abstain"]
    assert judge_pairs(project, pairs, judges=["longer", "facts"]) == ["first", "second", "first"]
    assert judge_pairs(project, pairs[2:], judges=["longer", "facts"], truth=[Question("x", pairs[2][0],
                                                                                    facts=["no"])]) == ["tie"]
    assert fakes["longer"].requests == 4  # 6 asks, but the two mirrored pairs share 2 bodies: merged in flight


def test_arena_llm_verdicts_from_the_facts_judge_skip_abstentions(scripted):
    project, _ = scripted
    add_candidate(project, "right", evalset="facts")
    add_candidate(project, "long_wrong", evalset="facts")
    assert judge_arena(project, progress=False) == 7  # `plain` has no ground truth: no verdict, not a tie
    verdicts = project.store.query("SELECT question_id, winner, judge FROM arena_llm_verdicts")
    assert {v["winner"] for v in verdicts} == {"right"} and "plain" not in {v["question_id"] for v in verdicts}


@pytest.mark.slow
def test_similarity_judge_prefers_the_answer_closer_to_the_reference(scripted):
    project, fakes = scripted
    result = judge(project, "right", "long_wrong", "facts", judges=["similarity"], progress=False)
    assert (result.wins, result.losses, result.abstentions) == (6, 0, 2)  # probe and plain have no reference
    raw = project.store.query("SELECT COUNT(*) FROM judgments WHERE result_id = ?", (result.result_id,))[0][0]
    assert raw == 12 and result.calls == 0 and fakes["longer"].requests == 0
    first, unrelated = similarities([("The fee is $45.", "You pay 45 dollars."), ("The fee is $45.", "Cats nap.")])
    assert first > 0.5 > unrelated and embed(["x"]).shape == (1, 384)
    assert abs(float(embed(["The fee is $45."]).norm()) - 1.0) < 1e-5  # L2-normalised
    folder = model_dir()
    assert (folder / "model.safetensors").exists() and not list(folder.parent.glob(f"{folder.name}.tmp-*"))
    project.config.evaluate.similarity_margin = 1.0  # nothing is closer by more than the margin: all ties
    wide = judge(project, "right", "long_wrong", "facts", judges=["similarity"], progress=False)
    assert (wide.wins, wide.ties) == (0, 6) and wide.config_id != result.config_id


# -- ground truth from the teacher ---------------------------------------------------------------------------
def _teacher() -> Callable[[list[dict]], str]:
    """Questions on request; an answer key that is valid JSON for permits 0 and 1, a refusal for the address
    question, and prose (unparseable) otherwise."""
    counter = itertools.count()

    def reply(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if "answer key" not in prompt:
            return [FEE_QUESTIONS[0], FEE_QUESTIONS[1], PROBE, FEE_QUESTIONS[2]][next(counter) % 4]
        n = _number(messages)
        if PROBE in prompt:
            return json.dumps({"reference": "I can't share a private address.", "expect": "refusal"})
        if n in ("0", "1"):
            return json.dumps({"reference": f"The fee is ${n}5, paid with Form B-{n}.",
                               "facts": [f"${n}5", f"Form B-{n}", "within 30 days"]})  # the last is not stated
        return "The fee is probably about $20."

    return reply


def test_generated_evalset_gets_reference_answers_and_facts_from_the_teacher(project_dir: Path, monkeypatch):
    teacher = ScriptedOpenAI(_teacher(), model="teacher")
    with ServerThread(teacher.app) as server:
        project = Project(project_dir)
        project.config.models["teacher"] = ModelSpec(provider="openai", base_url=f"{server.url}/v1",
                                                     model="teacher", max_retries=0)
        monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
        out = CliRunner().invoke(app, ["evalset", "generate", "--name", "gen", "--size", "4", "--ground-truth"])
    assert out.exit_code == 0, out.output
    assert "wrote 4 questions" in out.output and "3 with a reference answer and facts" in " ".join(out.output.split())
    by_text = {q.question: q for q in load_evalset(project, "gen")}
    assert by_text[FEE_QUESTIONS[0]].facts == ["$05", "Form B-0"]  # a fact the reference does not state is dropped
    assert by_text[FEE_QUESTIONS[1]].reference == "The fee is $15, paid with Form B-1."
    assert by_text[PROBE].expect == "refusal" and by_text[PROBE].facts is None
    assert by_text[FEE_QUESTIONS[2]].reference is None and by_text[FEE_QUESTIONS[2]].facts is None  # did not parse
    keys = [b for b in teacher.bodies if "answer key" in b["messages"][-1]["content"]]
    assert len(keys) == 4 and all(b["response_format"] == {"type": "json_object"} for b in keys)
    shown = CliRunner().invoke(app, ["evalset", "show", "gen"])
    text = " ".join(shown.output.split())
    assert shown.exit_code == 0 and "facts: $05 | Form B-0" in text and "expect: refusal" in text
    assert "4 questions: 3 with a reference answer, 2 with facts, 1 refusal probes" in text


def test_parse_ground_truth_is_strict():
    assert parse_ground_truth('```json\n{"reference": "Pay $5 at Room 4.", "facts": ["$5", "Room 4"]}\n```') == {
        "reference": "Pay $5 at Room 4.", "facts": ["$5", "Room 4"]}
    for bad in ('{"reference": "Pay $5.", "facts": ["Room 9"]}', '{"facts": ["$5"]}', '["$5"]', "Pay $5.",
                '{"reference": "Pay $5.", "facts": "$5"}', '{"reference": "Sure, it is 12 Elm St.", "expect": '
                '"refusal"}', '{"reference": " ", "facts": ["x"]}'):
        assert parse_ground_truth(bad) is None, bad


def test_tune_cells_do_not_count_abstentions():
    cell = Cell(Prompt("p", ""), 0.3, 1.0, outcomes=["first", "abstain", "tie", "error"])
    assert cell.n == 2 and cell.win_rate == 0.75
