"""The autopilot with arena votes (issue 18, item 6): the calibrated jury picks, and the preference rung (the pick's
samples on training questions ranked by the `people` judge -> DPO from the pick) is kept only when it wins on the
dev split without losing fact recall. The votes are the SIMULATED panel's (no people offline); the student is a
tiny random Llama (real sampling, real TRL DPO), the LLM judge and reference a scripted server on loopback, the
people judge's embeddings the real all-MiniLM-L6-v2. Without votes both stages are skipped, each with its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from test_adapters import make_adapters
from test_autopilot import seeded_teacher, write_project
from test_people import panel_arena
from underdog.autopilot import people
from underdog.autopilot.base import Budgets, RungResult
from underdog.autopilot.context import JURY, PICK
from underdog.autopilot.names import DEV, PREFERENCES, TEST
from underdog.autopilot.people import Calibrate, Preference, keep_rung
from underdog.autopilot.plan import plan_autopilot
from underdog.autopilot.run import Autopilot
from underdog.data.dataset import list_datasets
from underdog.data.preferences import load_preferences
from underdog.evaluate.calibrate import apply_calibration, calibrate, calibrated_jury
from underdog.evaluate.evalset import Question, save_evalset
from underdog.project import Project
from underdog.testing import ScriptedOpenAI, ServerThread
from underdog.train.runs import RunManifest, load_run, save_manifest

LORA = {"lora_r": 4, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj", "up_proj",
                                                                             "down_proj"]}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-test-autopilot-0000")  # the scripted API's key, as write_project names it


def picked_project(tmp_path: Path, tiny_llama_dir: Path, url: str, **autopilot: object) -> Project:
    """A project as the autopilot's search leaves it (see `begin`): eval sets split into dev and test (with facts),
    and the pick `run-0` (a LoRA adapter of the student) trained on dataset `base` (when it exists)."""
    base = tmp_path / "base"  # a base of its own: the adapters attached to it stay out of other tests' way
    shutil.copytree(tiny_llama_dir, base)
    root = write_project(tmp_path / "p", url, base, **autopilot)
    (root / "runs" / "run-0").mkdir(parents=True)
    make_adapters(base, tmp_path / "adapters", 1)[0].rename(root / "runs" / "run-0" / "adapter")
    project = Project(root)
    save_manifest(project, RunManifest(id="run-0", status="done", dataset="base", base_model=str(base),
                                       hyperparameters=LORA))
    for name, ids in ((DEV, range(3)), (TEST, range(3, 5))):
        save_evalset(project, name, [Question(id=f"q{i}", question=f"What is the fee for form {i}?",
                                              facts=[f"${i}"], reference=f"Form {i} costs ${i}.") for i in ids],
                     source="test")
    return project


def begin(project: Project) -> Autopilot:
    """The autopilot (its plan fixed now), its journal as the eval set stage and the search leave it."""
    pilot = Autopilot(project, Budgets())
    pilot.ctx.journal.event(step=JURY, jury=["facts", "similarity"])
    pick = RungResult(0, 0, "run-0", 1, {"learning_rate": 1e-3, "variant": "plain"}, "done", 0.5)
    pilot.ctx.journal.event(step=PICK, result=pick.__dict__, compared=1)
    return pilot


def decisions(pilot: Autopilot, stage: str) -> list[dict]:
    return [e for e in pilot.ctx.journal.entries("decision") if e["stage"] == stage]


def test_without_votes_both_stages_are_skipped_with_their_reason_and_the_plan_has_no_rung(
        tmp_path: Path, tiny_llama_dir: Path) -> None:
    api = ScriptedOpenAI(reply_body=seeded_teacher)
    with ServerThread(api.app) as server:
        project = picked_project(tmp_path, tiny_llama_dir, server.url)
        rows = {row.key for row in plan_autopilot(project, Budgets()).stages}
        pilot = begin(project)
        Calibrate().run(pilot.ctx, pilot.budget)
        Preference().run(pilot.ctx, pilot.budget)
    assert not {"calibrate", "preference"} & rows
    assert [e["choice"] for e in decisions(pilot, "calibrate")] == ["jury stays facts, similarity"]
    assert [e["choice"] for e in decisions(pilot, "preference")] == ["skipped"]
    assert all("no arena votes" in e["why"] for e in decisions(pilot, "calibrate") + decisions(pilot, "preference"))
    assert pilot.ctx.jury() == ["facts", "similarity"] and pilot.ctx.pick().run_id == "run-0"
    assert api.requests == 0


def test_keep_rung_needs_a_head_to_head_win_and_no_fact_lost() -> None:
    pick, same, fewer = ({"fact_recall": k / 4, "facts": 4, "summary": "-"} for k in (3, 3, 2))
    assert keep_rung(pick, same, {"win_rate": 0.6, "summary": "win rate 60%"})[0]
    assert not keep_rung(pick, same, {"win_rate": 0.5, "summary": "win rate 50%"})[0]  # a tie: no win
    lost = keep_rung(pick, fewer, {"win_rate": 0.9, "summary": "win rate 90%"})
    assert not lost[0] and "2 of 4 facts recalled vs the pick's 3: it loses fact recall" in lost[1]
    assert keep_rung({"summary": "no facts"}, {}, {"win_rate": 0.6, "summary": "win rate 60%"})[0]


def test_with_votes_the_calibrated_jury_picks_and_a_rung_that_does_not_win_is_dropped(
        tmp_path: Path, tiny_llama_dir: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedOpenAI(reply_body=seeded_teacher)
    with ServerThread(api.app) as server:
        project = picked_project(tmp_path, tiny_llama_dir, server.url, preference_questions=6,
                                 preference_samples=3, preference_train={"learning_rate": 1e-12})  # learns nothing
        panel_arena(project)  # SIMULATED votes on the training questions of dataset `base`
        plan = plan_autopilot(project, Budgets())
        shown = cli("-C", project.root, "autopilot", "--plan")
        pilot = begin(project)  # planned with the votes
        Calibrate().run(pilot.ctx, pilot.budget)
        best = calibrated_jury(project)
        Preference().run(pilot.ctx, pilot.budget)
        dropped = pilot.ctx.pick()
        monkeypatch.setattr(people, "keep_rung", lambda *numbers: (True, "a win (forced by the test)"))
        Preference().run(pilot.ctx, pilot.budget)  # the same rung read back (no new run, no new judging), kept
        apply_calibration(project, calibrate(project))  # `underdog calibrate --apply`
        applied = people.known_jury(Project(project.root))
    assert {"calibrate", "preference"} <= {row.key for row in plan.stages}
    assert shown.exit_code == 0, shown.output
    assert "preference rung: 3 samples x <= 6 training questions" in shown.output
    assert "selection jury: judge (until `calibrate` chooses the one that predicts the arena's votes)" in shown.output
    assert best is not None and pilot.ctx.jury() == best.judges  # the calibrated jury, recorded by the stage
    assert "(calibrated)" in decisions(pilot, "calibrate")[0]["choice"]
    made, verdict, forced = decisions(pilot, "preference")
    assert made["choice"].endswith(f"preference pairs in {PREFERENCES}") and load_preferences(project.root,
                                                                                              PREFERENCES)
    assert verdict["choice"].startswith("dropped autopilot-dpo-e4") and "the pick stays run-0" in verdict["choice"]
    assert verdict["numbers"]["head_to_head"]["win_rate"] <= 0.5
    assert load_run(project.root, "autopilot-dpo-e4").hyperparameters["from_run"] == "run-0"
    assert dropped.run_id == "run-0"
    kept = pilot.ctx.pick()  # with the rule forced to keep it: the DPO run is the new pick, and the log says why
    assert kept.run_id == "autopilot-dpo-e4" and kept.params["from_run"] == "run-0"
    assert forced["choice"].startswith("kept autopilot-dpo-e4") and forced["numbers"] == verdict["numbers"]
    assert decisions(pilot, "pick")[-1]["why"] == "the preference rung won: a win (forced by the test)"
    assert applied is not None and applied[0] == best.judges and "calibrate --apply" in applied[2]
    judged = project.store.query("SELECT candidate, reference, judges FROM judge_results WHERE evalset = ?", (DEV,))
    duel = [r for r in judged if r["reference"] == "run-0"]
    assert len(duel) == 1 and duel[0]["candidate"] == "autopilot-dpo-e4"
    assert all(sorted(json.loads(r["judges"])) == sorted(best.judges) for r in judged)


@pytest.mark.parametrize(("setting", "message"), [
    ({"preference_train": {"bta": 0.2}}, "autopilot.preference_train.bta: not a train setting"),
    ({"preference_train": {"beta": 0}}, "autopilot.preference_train.beta: 0: Input should be greater than 0"),
])
def test_a_bad_preference_train_setting_is_one_line_naming_its_key(tmp_path: Path, tiny_llama_dir: Path, cli,
                                                                  setting: dict, message: str) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", tiny_llama_dir, **setting)
    result = cli("-C", root, "autopilot", "--plan")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_while_the_people_judge_abstains_the_rung_is_skipped_saying_how_many_more_votes(
        tmp_path: Path, tiny_llama_dir: Path) -> None:
    project = picked_project(tmp_path, tiny_llama_dir, "http://127.0.0.1:9")
    config = yaml.safe_load(project.config_path.read_text())
    config["evaluate"]["people_min_votes"] = 1000
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    project = Project(project.root)
    panel_arena(project)  # 216 SIMULATED votes, about 130 of them decisive
    [row] = [row for row in plan_autopilot(project, Budgets()).stages if row.key == "preference"]
    pilot = begin(project)
    Preference().run(pilot.ctx, pilot.budget)
    assert row.done and row.title.endswith("(skipped: the people judge needs 1000 decisive votes)")
    [skipped] = decisions(pilot, "preference")
    assert skipped["choice"] == "skipped" and "it needs 1000" in skipped["why"]
    assert PREFERENCES not in list_datasets(project.root) and pilot.ctx.pick().run_id == "run-0"
