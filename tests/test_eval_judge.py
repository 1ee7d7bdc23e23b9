"""Answering and pairwise judging against real OpenAI-compatible servers on loopback (the real openai SDK),
and against the real local judge."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from underdog.config import ModelSpec
from underdog.errors import ModelError, UnderdogError
from underdog.evaluate import judge as judge_mod
from underdog.evaluate.answer import answer, load_answers, resolve_candidate
from underdog.evaluate.evalset import Question, save_evalset
from underdog.evaluate.judge import combine_orders, judge, majority, parse_verdict
from underdog.project import Project
from underdog.testing import ScriptedOpenAI, ServerThread

QUESTIONS = [f"How do I renew permit number {i}?" for i in range(6)]
JUDGES = ("always_a", "longer", "garbage")


def _answer_a_then_b(messages: list[dict]) -> tuple[str, str]:
    text = messages[-1]["content"]
    first = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", text, re.S).group(1)
    second = re.search(r"\[Answer B\]\n(.*?)\n\n", text, re.S).group(1)
    return first, second


def prefers_longer(messages: list[dict]) -> str:
    first, second = _answer_a_then_b(messages)
    return json.dumps({"reason": "longer", "verdict": "A" if len(first) > len(second) else "B"})


@pytest.fixture
def servers() -> Iterator[dict[str, tuple[ScriptedOpenAI, str]]]:
    """Scripted models: a long-answering candidate, a short-answering reference, and four judges."""
    fakes = {
        "candidate": ScriptedOpenAI(lambda m: f"Thorough answer to: {m[-1]['content']} Go to the office.",
                                    model="candidate"),
        "reference": ScriptedOpenAI(lambda m: "Ask the office.", model="reference"),
        "always_a": ScriptedOpenAI(lambda m: '{"reason": "first", "verdict": "A"}', model="always_a"),
        "longer": ScriptedOpenAI(prefers_longer, model="longer"),
        "garbage": ScriptedOpenAI(lambda m: "I think A is better", model="garbage"),
        "flaky": ScriptedOpenAI(lambda m: f"A long and careful answer: {m[-1]['content']}", model="flaky",
                                faults=["401"] * 3),  # the first three calls fail for good
        "dead": ScriptedOpenAI(model="dead", faults=["401"] * 100),
        # two "runs": run-a always answers at length, run-b only on even-numbered questions
        "run-a": ScriptedOpenAI(lambda m: f"Detailed steps for: {m[-1]['content']}", model="run-a"),
        "run-b": ScriptedOpenAI(lambda m: "Ask the office!" if int(m[-1]["content"][-2]) % 2 else
                                f"Detailed steps for: {m[-1]['content']}", model="run-b"),
    }
    root = FastAPI()
    for name, fake in fakes.items():
        root.mount(f"/{name}", fake.app)  # one loopback server, one OpenAI-compatible endpoint per model
    with ServerThread(root) as server:
        yield {name: (fake, f"{server.url}/{name}/v1") for name, fake in fakes.items()}


@pytest.fixture
def project(project_dir: Path, servers: dict) -> Project:
    proj = Project(project_dir)
    judge_params = {"temperature": 0.0, "max_tokens": 16}  # as the default config's judge role
    models = {name: ModelSpec(provider="openai", base_url=url, model=name, max_retries=0,
                              params=judge_params if name in JUDGES else {})
              for name, (_, url) in servers.items()}
    proj.config.models.update(models)
    save_evalset(proj, "ev", [Question(f"q{i}", q) for i, q in enumerate(QUESTIONS)], source="test")
    return proj


def test_answers_are_stored_under_the_candidate_identity(project: Project, servers: dict):
    answers = answer(project, "candidate", "ev", progress=False)
    assert [a.question for a in answers] == QUESTIONS and all(a.answer.startswith("Thorough") for a in answers)
    cand = resolve_candidate(project, "candidate")
    assert {q: a.answer for q, a in load_answers(project, cand.id, "ev").items()} == {
        a.question_id: a.answer for a in answers}
    warm = resolve_candidate(project, "candidate", system_prompt="Be warm.", temperature=0.2)
    assert warm.id != cand.id and warm.spec.system_prompt == "Be warm." and warm.spec.params.temperature == 0.2
    answer(project, warm, "ev", progress=False)
    fake = servers["candidate"][0]
    assert fake.bodies[-1]["messages"][0] == {"role": "system", "content": "Be warm."}
    assert fake.bodies[-1]["temperature"] == 0.2
    calls = fake.requests
    answer(project, "candidate", "ev", progress=False)
    assert fake.requests == calls  # cached


def test_position_swap_turns_a_position_biased_judge_into_ties(project: Project):
    result = judge(project, "candidate", "reference", "ev", judges=["always_a"], progress=False)
    assert (result.wins, result.ties, result.losses, result.errors) == (0, 6, 0, 0)
    assert result.win_rate == 0.5 and result.tie_share == 1.0 and result.consistency == 0.0
    assert result.first_position_share == 1.0
    row = result.rows[0]
    assert row.votes == {"always_a (openai:always_a)": ("A", "A")} and row.outcome == "tie"


def test_consistent_judge_and_statistics(project: Project):
    result = judge(project, "candidate", "reference", "ev", judges=["longer"], progress=False)
    assert (result.wins, result.n, result.win_rate, result.consistency) == (6, 6, 1.0, 1.0)
    assert result.first_position_share == 0.5  # "A" when the candidate came first, "B" after the swap
    low, high = result.ci
    assert high == pytest.approx(1.0) and low == pytest.approx(6 / (6 + 1.959964**2), abs=1e-3)
    assert result.mean_len_candidate > result.mean_len_reference == len("Ask the office.")
    # every win came with a longer answer: the length-controlled rate still stays well above one half
    assert 0.5 < result.lc_win_rate <= 1.0
    stored = project.store.query("SELECT * FROM judge_results WHERE id = ?", (result.result_id,))[0]
    assert (stored["wins"], stored["n"], stored["win_rate"], stored["candidate"]) == (6, 6, 1.0, "candidate")
    rows = project.store.query("SELECT * FROM judgments WHERE result_id = ?", (result.result_id,))
    assert len(rows) == 12 and {r["winner"] for r in rows} == {"candidate"}


def test_judge_cache_makes_a_rerun_free(project: Project, servers: dict):
    first = judge(project, "candidate", "reference", "ev", judges=["longer"], progress=False)
    fakes = {name: servers[name][0] for name in ("candidate", "reference", "longer")}
    before = {name: fake.requests for name, fake in fakes.items()}
    project.store.execute("DELETE FROM llm_cache")  # even without the reply cache: the verdict cache answers
    again = judge(project, "candidate", "reference", "ev", judges=["longer"], progress=False)
    assert again.calls == 0 and first.calls == 12
    assert fakes["longer"].requests == before["longer"]
    assert again.win_rate == first.win_rate and again.result_id != first.result_id


def test_unparseable_verdicts_are_retried_then_no_valid_verdict_is_an_error(project: Project, servers: dict):
    with pytest.raises(UnderdogError, match=r"no valid verdict for candidate vs reference on ev \(6 of 6 questions "
                                            r"ended in errors\); nothing recorded"):
        judge(project, "candidate", "reference", "ev", judges=["garbage"], progress=False)
    assert project.store.query("SELECT COUNT(*) FROM judge_results")[0][0] == 0  # not a 0% on the leaderboard
    assert servers["garbage"][0].requests == 12 * 3  # first try + judge_retries (2)
    bodies = servers["garbage"][0].bodies
    assert {b["max_tokens"] for b in bodies} == {256}  # room for the JSON even with a judge role's small limit
    assert [b["temperature"] for b in bodies[::12]] == [0.0, 0.7, 0.7]  # re-asks can change the reply
    # issue 13 item 12: each re-ask is a new sample, not a byte-identical body (same seed) sent again
    assert [b["seed"] for b in bodies[::12]] == [0, 1, 2]
    asked = bodies[0]["messages"]
    same_pair = [json.dumps({k: v for k, v in b.items() if not k.startswith("_")}, sort_keys=True)
                 for b in bodies if b["messages"] == asked]
    assert len(same_pair) == 3 and len(set(same_pair)) == 3


def test_jury_majority_vote(project: Project):
    result = judge(project, "candidate", "reference", "ev", judges=["longer", "always_a", "garbage"],
                   progress=False)
    # per question: longer -> candidate, always_a -> tie, garbage -> error: no strict majority -> tie
    assert (result.wins, result.ties) == (0, 6)
    errors = project.store.query("SELECT error FROM judgments WHERE result_id = ? AND verdict = 'error'",
                                 (result.result_id,))
    assert len(errors) == 12 and all("unparseable verdict after 3 tries" in r["error"] for r in errors)
    assert majority(["candidate", "candidate", "tie"]) == "candidate"
    assert majority(["candidate", "reference"]) == "tie"
    assert majority(["error", "reference"]) == "reference"
    assert majority(["error"]) == "error"


def test_a_weighted_jury(project: Project):
    plain = judge(project, "candidate", "reference", "ev", judges=["longer", "always_a"], progress=False)
    assert (plain.wins, plain.ties) == (0, 6)  # longer -> candidate, always_a -> tie (A in both orders): no majority
    project.config.evaluate.judge_weights = {"longer": 2.0, "always_a": 1.0}
    weighted = judge(project, "candidate", "reference", "ev", judges=["longer", "always_a"], progress=False)
    assert (weighted.wins, weighted.ties) == (6, 0) and weighted.config_id != plain.config_id
    assert weighted.judge_config["weights"] and "weights" not in plain.judge_config
    assert majority(["candidate", "tie", "tie"], [2.0, 1.0, 1.0]) == "tie"  # 2 of 4 is not a strict majority
    assert majority(["candidate", "tie", "error"], [2.0, 1.0, 5.0]) == "candidate"  # an error has no weight


def test_verdict_parsing_and_combination():
    assert parse_verdict('{"verdict": "A"}') == "A"
    assert parse_verdict('```json\n{"reason": "x", "verdict": "Tie"}\n```') == "tie"
    for bad in ("A", '{"verdict": "C"}', '["A"]', '{"winner": "A"}', ""):
        assert parse_verdict(bad) is None
    assert combine_orders("candidate", "candidate") == "candidate"
    assert combine_orders("candidate", "reference") == "tie"
    assert combine_orders("candidate", "error") == "error"


@pytest.mark.slow
def test_real_local_judge_reads_log_probabilities(project: Project, tiny_llama_dir: Path, monkeypatch):
    project.config.models["local_judge"] = ModelSpec(provider="local", model=str(tiny_llama_dir), device="cpu")
    calls = []
    real = judge_mod._ask_local
    monkeypatch.setattr(judge_mod, "_ask_local", lambda llm, rubric, pairs, *a: calls.append(len(pairs)) or real(
        llm, rubric, pairs, *a))
    first = judge(project, "candidate", "reference", "ev", judges=["local_judge"], progress=False)
    assert calls == [12] and first.n == 6 and first.calls == 12
    cached = project.store.query("SELECT verdict, raw FROM judge_cache")
    assert {r["verdict"] for r in cached} <= {"A", "B", "tie"}
    for r in cached:
        raw = json.loads(r["raw"])
        lift = {k: raw["logprobs"][k] - raw["content_free"][k] for k in ("A", "B", "tie")}
        assert r["verdict"] == max(lift, key=lift.get)  # the calibrated choice
    again = judge(project, "candidate", "reference", "ev", judges=["local_judge"], progress=False)
    assert calls == [12] and again.calls == 0  # no model call at all on the re-run
    assert [r.outcome for r in again.rows] == [r.outcome for r in first.rows]


def test_failed_answers_are_errors_then_retried(project: Project, servers: dict):
    first = judge(project, "flaky", "reference", "ev", judges=["longer"], progress=False)
    assert (first.errors, first.n, first.wins, first.losses) == (3, 3, 3, 0)  # an error is never a win
    assert servers["longer"][0].requests == 6  # only the answered questions were judged, in both orders
    again = judge(project, "flaky", "reference", "ev", judges=["longer"], progress=False)
    assert (again.errors, again.wins) == (0, 6)  # the failed calls were not cached: the re-run answered them
    with pytest.raises(ModelError, match="every answer of dead failed, e.g.: .*HTTP 401"):
        judge(project, "dead", "reference", "ev", judges=["longer"], progress=False)
    with pytest.raises(ModelError, match="judge dead .* failed on every question, e.g.: .*HTTP 401"):
        judge(project, "candidate", "reference", "ev", judges=["dead"], progress=False)


def test_rubric_reaches_the_judge(project: Project, servers: dict):
    judge(project, "candidate", "reference", "ev", judges=["longer"], rubric=["empathy", "be brief"],
          progress=False)
    prompt = servers["longer"][0].bodies[-1]["messages"][-1]["content"]
    assert "- empathy: acknowledges" in prompt and "- be brief: be brief" in prompt
    assert "correctness" not in prompt
    assert servers["longer"][0].bodies[-1]["response_format"] == {"type": "json_object"}


def test_reference_answers_of_the_evalset_are_shown_to_the_judge(project: Project, servers: dict):
    save_evalset(project, "refd", [Question("r0", QUESTIONS[0], reference="Fill in form P-7 at city hall.")],
                 source="test")
    result = judge(project, "candidate", "reference", "refd", judges=["longer"], progress=False)
    prompts = [b["messages"][-1]["content"] for b in servers["longer"][0].bodies[-2:]]
    assert all("[Reference answer, known to be correct" in p and "Fill in form P-7" in p for p in prompts)
    assert result.wins == 1
    plain = judge(project, "candidate", "reference", "ev", judges=["longer"], progress=False)
    assert "[Reference answer" not in servers["longer"][0].bodies[-1]["messages"][-1]["content"]
    assert plain.calls == 12
