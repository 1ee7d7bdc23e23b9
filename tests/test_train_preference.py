"""Preference training (DPO on TRL's DPOTrainer) on top of a supervised run, on a real tiny Llama: the run trains
the parent's adapter against a frozen copy of it, records reward curves like losses, and learns the direction the
pairs point to (swapping chosen and rejected reverses it); bad input is one line and writes nothing; a DPO run
resumes, sweeps, merges and answers like any run; preference datasets export in TRL's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from test_train import arithmetic, use_student
from underdog.data.dataset import save_dataset, write_version
from underdog.data.preferences import PreferencePair, save_preferences
from underdog.project import Project

PREFERRED, OTHER = "The answer is {}.", "Maybe ask the county office."


def pairs(n: int, swap: bool = False) -> list[PreferencePair]:
    """Arithmetic questions: the right answer preferred over a deflection (or the reverse with `swap`)."""
    out = []
    for i in range(n):
        good, bad = PREFERRED.format(2 * i), OTHER
        out.append(PreferencePair([{"role": "user", "content": f"What is {i} plus {i}?"}],
                                  *((bad, good) if swap else (good, bad)), meta={"source": "test"}))
    return out


def supervised_parent(project: Project, root: Path) -> None:
    """The SFT run `sft` every preference run here starts from."""
    from underdog.train import train

    save_dataset(root, "arith", arithmetic(24))
    run = train(project, "arith", {"epoch": 2, "learning_rate": 5e-3, "per_device_train_batch_size": 8,
                                   "validation_split_ratio": 0.0, "lora_r": 8}, run_id="sft")
    assert run.status == "done"


DPO = {"method": "dpo", "from_run": "sft", "epoch": 3, "per_device_train_batch_size": 4, "logging_steps": 1,
       "validation_split_ratio": 0.25, "learning_rate": 5e-3}


def adapter_weights(root: Path, run_id: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(root / "runs" / run_id / "adapter" / "adapter_model.safetensors")


def preference_margin(root: Path, base: Path, run_id: str, held: list[PreferencePair]) -> float:
    """Mean over the pairs of log p(chosen) - log p(rejected) under the run's adapter (the pairs' own orientation),
    scored here with plain transformers + PEFT, not TRL."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base),
                                      str(root / "runs" / run_id / "adapter")).eval()

    def logp(prompt: list[dict[str, str]], answer: str) -> float:
        start = len(tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"])
        ids = tok.apply_chat_template([*prompt, {"role": "assistant", "content": answer}],
                                      return_dict=True)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
        return sum(logits[i - 1, ids[i]].item() for i in range(start, len(ids)))

    return sum(logp(p.prompt, p.chosen) - logp(p.prompt, p.rejected) for p in held) / len(held)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_dpo_trains_the_parent_adapter_and_records_reward_curves(project_dir: Path, learnable_llama_dir: Path,
                                                                 cli) -> None:
    from underdog.train import load_run, merge_run, train

    project = use_student(project_dir, learnable_llama_dir)
    supervised_parent(project, project_dir)
    save_preferences(project_dir, "prefs", pairs(16), recipe={"command": "test"})
    run = train(project, "prefs", {k: v for k, v in DPO.items() if k != "learning_rate"}, run_id="dpo")
    assert run.status == "done" and run.dataset == "prefs" and run.method == "dpo"
    hp, parent = run.hyperparameters, load_run(project, "sft").hyperparameters
    assert hp["from_run"] == "sft" and hp["learning_rate"] == 1e-3  # the preference default when not set
    assert (hp["lora_r"], hp["target_modules"]) == (parent["lora_r"], parent["target_modules"])  # its adapter
    assert hp["dpo_loss"] == ["sigmoid", "sft"] and hp["beta"] == 0.1
    # reward curves, stored like losses: in the history, the store and the manifest's metrics
    train_logs = [h for h in run.history if "loss" in h]
    eval_logs = [h for h in run.history if "eval_loss" in h]
    assert train_logs and all("reward_margin" in h and "reward_accuracy" in h for h in train_logs)
    assert eval_logs and all("reward_accuracy" in h for h in eval_logs)
    rows = project.store.query("SELECT split, reward_margin, reward_accuracy FROM train_metrics WHERE run_id = 'dpo'")
    assert {r["split"] for r in rows} == {"train", "eval"} and all(r["reward_accuracy"] is not None for r in rows)
    stored = project.store.query("SELECT method, parent_run, dataset FROM train_runs WHERE id = 'dpo'")[0]
    assert tuple(stored) == ("dpo", "sft", "prefs")
    assert run.metrics["train_reward_accuracy"] is not None and run.metrics["eval_reward_margin"] is not None
    assert (run.metrics["train_examples"], run.metrics["eval_examples"]) == (12, 4)
    # one adapter, the parent's shape, changed by training; the frozen reference copy is not saved with it
    before, after = adapter_weights(project_dir, "sft"), adapter_weights(project_dir, "dpo")
    assert before.keys() == after.keys()
    assert max((after[k] - before[k]).abs().max().item() for k in before) > 1e-4
    assert not (project_dir / "runs" / "dpo" / "adapter" / "ref").exists()
    assert json.loads((project_dir / "runs" / "dpo" / "adapter" / "adapter_config.json").read_text())["r"] == 8
    # it is a run like any: it answers, merges, and `underdog runs` shows its method, parent and rewards
    assert project.llm("dpo").chat("What is 3 plus 3?", temperature=0.0, max_tokens=8).text
    assert (merge_run(project, "dpo") / "config.json").exists()
    listed = cli("runs")
    assert listed.exit_code == 0 and "dpo from sft beta=0.1" in listed.output and "reward accuracy" in listed.output


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_swapping_chosen_and_rejected_reverses_the_learned_preference(project_dir: Path,
                                                                      learnable_llama_dir: Path) -> None:
    from underdog.train import train

    project = use_student(project_dir, learnable_llama_dir)
    supervised_parent(project, project_dir)
    save_preferences(project_dir, "prefs", pairs(16))
    save_preferences(project_dir, "swapped", pairs(16, swap=True))
    for name in ("prefs", "swapped"):
        assert train(project, name, DPO, run_id=f"dpo-{name}").status == "done"
    held = pairs(16)  # scored in the original orientation: the right answer over the deflection
    margins = {run: preference_margin(project_dir, learnable_llama_dir, run, held)
               for run in ("sft", "dpo-prefs", "dpo-swapped")}
    print(json.dumps(margins))  # shown with -s
    assert margins["dpo-prefs"] > margins["sft"] + 1.0, margins
    assert margins["dpo-swapped"] < margins["sft"] - 1.0, margins


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_a_dpo_run_resumes_and_sweeps_over_beta(project_dir: Path, learnable_llama_dir: Path) -> None:
    from transformers import TrainerCallback

    from underdog.train import load_run, run_sweep, train

    class CrashAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

    project = use_student(project_dir, learnable_llama_dir)
    supervised_parent(project, project_dir)
    save_preferences(project_dir, "prefs", pairs(16))
    with pytest.raises(KeyboardInterrupt):
        train(project, "prefs", {**DPO, "save_steps": 2}, run_id="d1", callbacks=[CrashAfterFirstSave()])
    assert load_run(project, "d1").status == "failed"
    done = train(project, "prefs", run_id="d1")  # the run's own hyperparameters, from its checkpoint
    assert done.status == "done" and done.metrics["steps"] == 9
    assert [h["step"] for h in done.history if "loss" in h] == list(range(1, 10))
    sweep = project_dir / "beta.yaml"
    sweep.write_text("name: beta\ndatasets: [prefs]\nmethod: list\nruns: [{beta: 0.1}, {beta: 0.5}]\n"
                     "fixed: {method: dpo, from_run: sft, epoch: 1, validation_split_ratio: 0}\n")
    runs = run_sweep(project, sweep)
    assert [(r.status, r.method, r.hyperparameters["beta"]) for r in runs] == [("done", "dpo", 0.1),
                                                                               ("done", "dpo", 0.5)]


@pytest.mark.slow
def test_bad_preference_input_is_one_line_and_writes_nothing(project_dir: Path, tiny_llama_dir: Path, cli) -> None:
    from underdog.train.runs import RunManifest, save_manifest

    use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(4))
    save_preferences(project_dir, "prefs", pairs(4))
    write_version(project_dir, "empty", [], kind="preference")  # made by hand: the builders refuse to
    for run_id, base in (("sft", str(tiny_llama_dir)), ("other-base", "smollm2-135m")):
        (project_dir / "runs" / run_id / "adapter").mkdir(parents=True)
        save_manifest(project_dir, RunManifest(id=run_id, status="done", dataset="arith", base_model=base,
                                               hyperparameters={"lora_r": 8}))
    cases = [
        (["-d", "empty", "--method", "dpo", "--from", "sft"], 1, "preference dataset 'empty' has no pair"),
        (["-d", "arith", "--method", "dpo", "--from", "sft"], 1, "'arith' holds sft data, not preference data"),
        (["-d", "prefs"], 1, "'prefs' holds preference data, not sft data: it is for `underdog train --method dpo`"),
        (["-d", "prefs", "--method", "dpo"], 2, "needs --from RUN"),
        (["-d", "prefs", "--method", "dpo", "--from", "nope"], 1, "no run named 'nope'"),
        (["-d", "prefs", "--method", "dpo", "--from", "other-base"], 1, "trained on smollm2-135m, not on the student"),
        (["-d", "arith", "--from", "sft"], 2, "from_run is for preference runs"),
        (["-d", "prefs", "--method", "ppo", "--from", "sft"], 2, "method"),
    ]
    for args, code, message in cases:
        result = cli("train", *args)
        assert result.exit_code == code and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output, result.output
    assert sorted(p.name for p in (project_dir / "runs").iterdir()) == ["other-base", "sft"]  # nothing written


def test_preference_datasets_export_in_trl_format(project_dir: Path, cli) -> None:
    save_preferences(project_dir, "prefs", pairs(3))
    save_dataset(project_dir, "arith", arithmetic(3))
    result = cli("export", "prefs", "-f", "trl", "--validation", "0")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (project_dir / "exports" / "prefs-trl" / "train.jsonl").open()]
    assert len(rows) == 3 and set(rows[0]) == {"prompt", "chosen", "rejected"}
    assert rows[0]["prompt"][-1]["role"] == "user" and rows[0]["rejected"] == [{"role": "assistant", "content": OTHER}]
    refused = cli("export", "prefs")
    assert refused.exit_code == 1 and "export it with --format trl" in refused.output
    assert cli("export", "arith", "-f", "trl", "--validation", "0").exit_code == 0
    sft_rows = [json.loads(line) for line in (project_dir / "exports" / "arith-trl" / "train.jsonl").open()]
    assert set(sft_rows[0]) == {"prompt", "completion"} and sft_rows[0]["completion"][0]["role"] == "assistant"
