"""The offline proof of issue 18, small: a supervised run on a real tiny Llama, the SIMULATED voter panel's votes
on its answers to training questions (with and without a system prompt asking to acknowledge first), calibrate,
the `people` judge, preferences, real DPO from the run, and the panel's verdict on held-out questions the run
never trained on, both runs answering without a system prompt (`people_loop.run_people_loop`, the chain
`underdog demo --people` runs on the 135M model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train import use_student
from underdog.arena.simulated_panel import appeal
from underdog.data.dataset import Example, save_dataset
from underdog.people_loop import SIMULATED, PeopleLoop, run_people_loop, summary_lines, write_people_report

WARM = "Acknowledge the situation first."
ACK = "That can be stressful."
TRAIN = range(1, 17)  # "What is i plus i?": training questions
HELD_OUT = range(40, 50)  # eval questions, never trained on


def plain(i: int) -> str:
    return f"The answer is {2 * i}."


def sft_examples() -> list[Example]:
    """Each training question answered plainly, and with an acknowledgement when the system prompt asks for it:
    the run follows the prompt, so the two candidates differ in the panel's taste."""
    out = []
    for i in TRAIN:
        user = {"role": "user", "content": f"What is {i} plus {i}?"}
        out += [Example([user, {"role": "assistant", "content": plain(i)}]),
                Example([{"role": "system", "content": WARM}, user,
                         {"role": "assistant", "content": f"{ACK} {plain(i)}"}])]
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_the_simulated_panel_prefers_the_dpo_run_on_held_out_questions(project_dir: Path,
                                                                      learnable_llama_dir: Path) -> None:
    from underdog.evaluate.evalset import import_evalset
    from underdog.train import train

    project = use_student(project_dir, learnable_llama_dir)
    eval_file = project_dir / "held-out.jsonl"
    eval_file.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?",
                                             "reference": plain(i), "facts": [str(2 * i)]}) + "\n"
                                 for i in HELD_OUT))
    import_evalset(project, eval_file, "held-out")
    save_dataset(project_dir, "sft-data", sft_examples())
    sft = train(project, "sft-data", {"epoch": 12, "learning_rate": 5e-3, "per_device_train_batch_size": 8,
                                      "validation_split_ratio": 0.0, "lora_r": 8}, run_id="sft")
    assert sft.status == "done"
    project = type(project)(project_dir, overrides=["evaluate.answer_max_tokens=12",
                                                    "models.student.params.temperature=0"])
    loop = PeopleLoop(sft_run="sft", questions="dataset:sft-data", evalset="held-out", warm_prompt=WARM,
                      dpo={"epoch": 4, "learning_rate": 5e-3, "per_device_train_batch_size": 4,
                           "validation_split_ratio": 0.0})
    outcome = run_people_loop(project, loop)
    print(json.dumps({"pairs": outcome.pairs, "panel": [outcome.panel.wins, outcome.panel.ties,
                                                        outcome.panel.losses],
                      "ci": outcome.panel.ci, "people": [outcome.people.agreed, outcome.people.n],
                      "recall": [outcome.sft_recall.stated if outcome.sft_recall else None,
                                 outcome.dpo_recall.stated if outcome.dpo_recall else None],
                      "seconds": outcome.seconds}))  # shown with -s
    assert outcome.training_votes == 5 * len(TRAIN) and outcome.pairs >= len(TRAIN) // 2
    assert outcome.dpo.method == "dpo" and outcome.dpo.hyperparameters["from_run"] == "sft"
    # the panel's verdict on questions no step trained on, both runs answering without a system prompt
    assert outcome.panel.n == len(HELD_OUT)
    assert outcome.panel.win_rate >= 0.7 and outcome.panel.ci[0] > 0.5, outcome.panel
    assert outcome.people.rate is not None and outcome.people.rate >= 0.8, outcome.people
    assert all(met for _, met in outcome.checks), outcome.checks
    # the panel is named as a simulation wherever its votes are reported
    lines = summary_lines(outcome)
    assert all(SIMULATED in line for line in lines if "panel" in line.lower()) and SIMULATED in lines[1]
    paths = write_people_report(project, loop, outcome)
    assert SIMULATED in paths["md"].read_text() and "a simulation, not people" in paths["html"].read_text()
    # nothing on the eval questions became training data
    prefs = [json.loads(line) for line in (project_dir / "datasets" / loop.preference_name / "data.jsonl").open()]
    assert prefs and all(int(p["prompt"][-1]["content"].split()[2]) in TRAIN for p in prefs)
    assert all(p["meta"]["simulated"] for p in prefs)
    assert sum(appeal(p["chosen"]) > appeal(p["rejected"]) for p in prefs) > len(prefs) / 2
