"""LoRA training on real tiny models: assistant-only labels, padding-free batches, the recipe end to end,
overfitting diagnosis, resume, merge, and the adapters in `underdog serve` and the local backend."""

from __future__ import annotations

import json
import random
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from underdog.data.dataset import Example, save_dataset
from underdog.errors import UnderdogError
from underdog.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
IGNORE = -100  # the label of a token the loss leaves out



WORDS = ["apple", "river", "stone", "cloud", "permit", "license", "office", "county", "tax", "form", "vote",
         "school", "road", "water", "fire"]


def use_student(root: Path, model: Path | str) -> Project:
    """Point the project's student at `model`."""
    config = yaml.safe_load((root / "underdog.yaml").read_text())
    config["models"]["student"]["model"] = str(model)
    (root / "underdog.yaml").write_text(yaml.safe_dump(config))
    return Project(root)


def arithmetic(n: int) -> list[Example]:
    return [Example([{"role": "user", "content": f"What is {i} plus {i}?"},
                     {"role": "assistant", "content": f"The answer is {2 * i}."}]) for i in range(n)]


def gibberish(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    return [Example([{"role": "user", "content": words(5)}, {"role": "assistant", "content": words(20)}])
            for _ in range(n)]


# -- data: labels and batches (TRL's SFTTrainer prepares them) ------------------------------------------------
def sft_rows(model_dir: Path, examples: list[Example], max_length: int = 512, **hp: object) -> object:
    """An SFTTrainer built as a run builds it (load_student, build_splits, sft_trainer), for its prepared rows."""
    from underdog.config import TrainConfig
    from underdog.train.data import build_splits
    from underdog.train.sft import load_student, sft_trainer

    cfg = TrainConfig(lora_dropout=0.0, validation_split_ratio=0.0, **hp)
    model, tok = load_student(str(model_dir), cfg, "cpu")
    splits = build_splits(examples, validation_split_ratio=cfg.validation_split_ratio, seed=0)
    trainer, _ = sft_trainer(model, tok, splits, cfg, "cpu", Path(tempfile.mkdtemp()), [], max_length)
    return trainer


def test_only_assistant_tokens_are_trained_token_by_token(tiny_llama_dir: Path) -> None:
    """Each assistant turn is one prompt-completion row; TRL trains its reply, the <|im_end|> that closes it and
    the template's newline after it, nothing else (checked against character offsets of the rendering)."""
    messages = [{"role": "system", "content": "You answer about permits."},
                {"role": "user", "content": "Do I need a permit for a fence?"},
                {"role": "assistant", "content": "Usually yes, above 6 feet."},
                {"role": "user", "content": "And for a shed?"},
                {"role": "assistant", "content": "Sheds over 120 sq ft need one."}]
    trainer = sft_rows(tiny_llama_dir, [Example(messages)])
    tok = trainer.processing_class
    rows = sorted(trainer.train_dataset, key=lambda r: len(r["input_ids"]))
    assert len(rows) == 2  # one row per assistant turn, the conversation before it as the prompt
    for row, last in zip(rows, (2, 4), strict=True):
        text = tok.apply_chat_template(messages[: last + 1], tokenize=False)
        start = text.rindex("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        assert enc["input_ids"] == row["input_ids"]
        expected = [tid if a >= start else IGNORE
                    for tid, (a, _) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)]
        assert row["labels"] == expected
        trained = tok.decode([t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE])
        assert trained == messages[last]["content"] + "<|im_end|>\n"
        # the system prompt, the questions, an earlier answer and the markup are never trained on
        assert "permit" not in trained and "<|im_start|>" not in trained
    assert "Usually" not in tok.decode([t for t, label in zip(rows[1]["input_ids"], rows[1]["labels"], strict=True)
                                        if label != IGNORE])


def test_truncation_and_split(tiny_llama_dir: Path) -> None:
    from underdog.train.data import build_splits

    splits = build_splits(arithmetic(10), validation_split_ratio=0.2, seed=0)
    assert (len(splits.train), len(splits.eval), splits.dropped) == (8, 2, 0)
    assert all(r["prompt"][-1]["role"] == "user" and r["completion"][0]["role"] == "assistant" for r in splits.train)
    no_reply = build_splits([Example([{"role": "user", "content": "Hi?"}])] + arithmetic(2),
                            validation_split_ratio=0.0, seed=0)
    assert (len(no_reply.train), no_reply.dropped) == (2, 1)
    trainer = sft_rows(tiny_llama_dir, arithmetic(4), max_length=40)
    assert all(len(r["input_ids"]) <= 40 for r in trainer.train_dataset)
    # rows cut before the assistant speaks have nothing to learn: a run of only those is refused
    with pytest.raises(UnderdogError, match="no example with an assistant reply left to train on"):
        sft_rows(tiny_llama_dir, arithmetic(4), max_length=20)


def test_padding_free_batches_keep_examples_apart(tiny_llama_dir: Path) -> None:
    """`packing: flatten` is TRL's padding-free packing: each example gets exactly the logits it gets alone, no
    cross-attention, no padding. (This fails with the model's default `use_cache=True`, which disables
    transformers' packed-sequence mask.)"""
    trainer = sft_rows(tiny_llama_dir, arithmetic(3)[1:] + gibberish(1), packing="flatten")
    model = trainer.model
    model.train()  # as in training: the forward call the Trainer makes
    [packed_row] = list(trainer.train_dataset)  # 3 short examples fit one bin of 512 tokens
    batch = trainer.data_collator([packed_row])
    lengths = packed_row["seq_lengths"]
    assert len(lengths) == 3 and batch["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        start = 0
        for n in lengths:
            alone = model(input_ids=batch["input_ids"][:, start:start + n]).logits[0]
            assert torch.allclose(packed[start:start + n], alone, atol=1e-4)
            start += n
    # labels of the packed row: -100 at every example's first token
    firsts = [sum(lengths[:i]) for i in range(len(lengths))]
    assert all(batch["labels"][0, f].item() == IGNORE for f in firsts)
    assert trainer.data_collator.padding_share == 0.0
    padded = sft_rows(tiny_llama_dir, arithmetic(3)[1:] + gibberish(1), packing="off")
    rows = list(padded.train_dataset)
    assert padded.data_collator(rows)["input_ids"].numel() > sum(len(r["input_ids"]) for r in rows)


# -- the recipe ----------------------------------------------------------------------------------------------
def test_lora_run_lowers_loss_and_its_adapter_serves(project_dir: Path, learnable_llama_dir: Path,
                                                     serve_app) -> None:
    import openai

    from underdog.serve import create_app
    from underdog.train import list_runs, load_run, train

    project = use_student(project_dir, learnable_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(40))
    m = train(project, "arith", ["epoch=2", "learning_rate=5e-3", "per_device_train_batch_size=8",
                                 "validation_split_ratio=0.2", "lora_r=8"])
    assert m.status == "done" and m.error is None
    assert m.metrics["train_loss"] < m.metrics["first_train_loss"] - 1.0
    assert m.metrics["eval_loss"] < 10.5
    assert m.metrics["batching"] == "group" and m.metrics["padding_share"] < 0.05  # similar lengths: little padding
    assert (m.metrics["train_examples"], m.metrics["eval_examples"], m.metrics["steps"]) == (32, 8, 8)
    assert not m.overfit["flag"]
    folder = project_dir / "runs" / m.id
    assert (folder / "loss.png").read_bytes()[:4] == b"\x89PNG" and not (folder / "checkpoints").exists()
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert {"id", "status", "dataset", "base_model", "hyperparameters", "metrics", "overfit", "error",
            "created"} <= set(on_disk)
    assert on_disk["hyperparameters"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                           "up_proj", "down_proj"]
    assert on_disk["versions"]["peft"] and on_disk["dataset_sha256"]
    assert json.loads((folder / "adapter" / "underdog_run.json").read_text())["overfit"] == on_disk["overfit"]
    rows = project.store.query("SELECT split, COUNT(*) AS n FROM train_metrics WHERE run_id = ? GROUP BY split",
                               (m.id,))
    assert {r["split"]: r["n"] for r in rows} == {"train": 8, "eval": 4}
    assert project.store.query("SELECT status FROM train_runs WHERE id = ?", (m.id,))[0]["status"] == "done"
    assert [r.id for r in list_runs(project)] == [m.id] and load_run(project, m.id).metrics == m.metrics

    # the run id is a model everywhere: the local backend loads the adapter ...
    reply = project.llm(m.id).chat("What is 3 plus 3?", temperature=0.0, max_tokens=8)
    assert reply.text and reply.output_tokens <= 8
    spec = project.model_spec(m.id)
    assert spec.adapter == str((folder / "adapter").resolve())
    # ... and `underdog serve` serves it to the real openai SDK
    with serve_app(create_app(spec, served_name=m.id)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
        out = client.chat.completions.create(model=m.id, temperature=0, max_tokens=8,
                                             messages=[{"role": "user", "content": "What is 3 plus 3?"}])
    assert out.choices[0].message.content == reply.text


def test_planted_overfitting_is_flagged_and_a_healthy_run_is_not(project_dir: Path,
                                                                  learnable_llama_dir: Path) -> None:
    from underdog.train import train

    project = use_student(project_dir, learnable_llama_dir)
    save_dataset(project_dir, "tiny", gibberish(8))
    over = train(project, "tiny", {"epoch": 8, "learning_rate": 1e-2, "lora_r": 16, "per_device_train_batch_size": 1,
                                   "validation_split_ratio": 0.5, "evals_per_epoch": 1, "keep_best": True})
    assert over.overfit["flag"], over.history
    assert over.overfit["reason"] and 0 < over.overfit["epoch"] < 8
    assert over.metrics["last_eval_loss"] - over.metrics["train_loss"] > 2
    # with keep_best the run keeps its best-eval-loss adapter, not the last one
    evals = [h for h in over.history if "eval_loss" in h]
    best = min(evals, key=lambda h: h["eval_loss"])
    assert over.metrics["kept"] == {"step": best["step"], "epoch": best["epoch"], "eval_loss": best["eval_loss"]}
    assert over.metrics["eval_loss"] == best["eval_loss"] < over.metrics["last_eval_loss"]
    assert best["step"] < over.metrics["steps"]
    saved = adapter_eval_loss(project, over.id, learnable_llama_dir)
    assert saved == pytest.approx(best["eval_loss"], rel=1e-3)
    row = project.store.query("SELECT overfit_flag, overfit_epoch FROM train_runs WHERE id = ?", (over.id,))[0]
    assert (row["overfit_flag"], row["overfit_epoch"]) == (1, over.overfit["epoch"])

    # the same planted run with early stopping ends when the flag is raised
    stopped = train(project, "tiny", {"epoch": 8, "learning_rate": 1e-2, "lora_r": 16, "early_stopping": True,
                                      "per_device_train_batch_size": 1, "validation_split_ratio": 0.5,
                                      "evals_per_epoch": 1})
    assert stopped.overfit["flag"] and stopped.metrics["stopped_early_at_epoch"] < 8
    assert stopped.metrics["steps"] < over.metrics["steps"]
    assert stopped.metrics["kept"]["step"] < stopped.metrics["steps"]  # early stopping restored the best
    assert adapter_eval_loss(project, stopped.id, learnable_llama_dir) == pytest.approx(
        stopped.metrics["kept"]["eval_loss"], rel=1e-3)

    save_dataset(project_dir, "arith", arithmetic(40))
    healthy = train(project, "arith", {"epoch": 2, "learning_rate": 3e-3, "per_device_train_batch_size": 8})
    assert not healthy.overfit["flag"] and healthy.metrics["train_loss"] < healthy.metrics["first_train_loss"]


def adapter_eval_loss(project: Project, run_id: str, base: Path) -> float:
    """The eval loss of a run's saved adapter, recomputed from disk on the run's own eval split."""
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from underdog.data.dataset import load_dataset
    from underdog.train import load_run
    from underdog.train.data import build_splits

    m = load_run(project, run_id)
    hp = m.hyperparameters
    splits = build_splits(load_dataset(project.root, m.dataset), validation_split_ratio=hp["validation_split_ratio"],
                          seed=hp["train_data_split_seed"])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base),
                                      str(project.root / "runs" / run_id / "adapter"))
    args = SFTConfig(output_dir=str(project.root / "unused"), use_cpu=True, bf16=False, report_to=[],
                     per_device_eval_batch_size=len(splits.eval), max_length=512, completion_only_loss=True)
    evaluator = SFTTrainer(model=model, args=args, processing_class=AutoTokenizer.from_pretrained(base),
                           train_dataset=Dataset.from_list(splits.train), eval_dataset=Dataset.from_list(splits.eval))
    return evaluator.evaluate()["eval_loss"]


def test_interrupted_run_resumes_from_its_checkpoint(project_dir: Path, tiny_llama_dir: Path) -> None:
    from transformers import TrainerCallback

    from underdog.train import load_run, train

    class CrashAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(20))
    hp = {"epoch": 2, "per_device_train_batch_size": 4, "save_steps": 3, "validation_split_ratio": 0.2,
          "packing": "flatten", "max_input_length": 64}  # bins of 64 tokens: one example each
    with pytest.raises(KeyboardInterrupt):
        train(project, "arith", hp, run_id="r1", callbacks=[CrashAfterFirstSave()])
    crashed = load_run(project, "r1")
    assert crashed.status == "failed" and "resume" in crashed.error
    assert (project_dir / "runs" / "r1" / "checkpoints" / "checkpoint-3").is_dir()  # saved every save_steps

    done = train(project, "arith", run_id="r1")  # same hyperparameters, read back from the manifest
    assert done.status == "done" and done.metrics["steps"] == 8
    steps = [h["step"] for h in done.history if "loss" in h]
    assert steps == list(range(1, 9))  # steps 1-3 come from the checkpoint's log, 4-8 from the resumed run
    assert done.hyperparameters == crashed.hyperparameters
    assert done.metrics["batching"] == "flatten" and done.metrics["padding_share"] == 0.0


def test_bad_hyperparameters_and_unfit_runs_fail_clearly(project_dir: Path, tiny_llama_dir: Path) -> None:
    from underdog.errors import ConfigError
    from underdog.train import load_run, train

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(8))
    with pytest.raises(ConfigError, match="lora_rr"):
        train(project, "arith", ["lora_rr=8"])
    with pytest.raises(UnderdogError, match="no dataset named 'nope'"):
        train(project, "nope")
    with pytest.raises(UnderdogError, match=r"needs ~\d+\.\d GiB .* but the device has 0\.0 GiB free"):
        train(project, "arith", {"device_memory_gb": 0.01}, run_id="too-big")
    refused = load_run(project, "too-big")
    assert refused.status == "failed" and "GiB" in refused.error and refused.memory_estimate_gb > 0.01
    api = Project(project_dir, overrides=["models.student.provider=openai", "models.student.model=gpt-4o-mini"])
    with pytest.raises(ConfigError, match="training needs a local one"):
        train(api, "arith")


def test_merge_and_cli(project_dir: Path, tiny_llama_dir: Path) -> None:
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from underdog.cli import app
    from underdog.llm.local import load_model

    use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(12))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--dataset", "arith", "--run-id", "cli-run", "epoch=1",
                                 "learning_rate=1e-2", "per_device_train_batch_size=4"])
    assert result.exit_code == 0, result.output
    assert "run cli-run done" in result.output
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0 and "cli-run" in result.output and "done" in result.output
    result = runner.invoke(app, ["train", "lora_r=zero"])
    assert result.exit_code == 2 and "lora_r" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "--resume", "nope"])
    assert result.exit_code == 1 and "no run named 'nope'" in result.output

    with warnings.catch_warnings(record=True) as caught:  # the library prints nothing: no notice from peft either
        warnings.simplefilter("always")
        result = runner.invoke(app, ["merge", "cli-run"])
    assert result.exit_code == 0, result.output
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    merged = AutoModelForCausalLM.from_pretrained(project_dir / "runs" / "cli-run" / "merged")
    with_adapter = load_model(str(tiny_llama_dir), str(project_dir / "runs" / "cli-run" / "adapter"), "cpu")
    ids = torch.tensor([[1, 4093, 198, 26843, 665, 2]])
    with torch.no_grad():
        tuned = with_adapter.model(input_ids=ids, **with_adapter.adapter_args(1)).logits  # this run's adapter
        assert torch.allclose(merged(input_ids=ids).logits, tuned, atol=1e-4)

    # a bf16 base: the default merge rounds the LoRA delta into bf16 weights, --dtype float32 does not
    from peft import PeftModel

    from underdog.train.runs import load_run, save_manifest

    bf16_base = project_dir / "bf16-base"
    AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16).save_pretrained(bf16_base)
    run = load_run(project_dir, "cli-run")
    run.base_model = str(bf16_base)
    save_manifest(project_dir, run)
    adapter = project_dir / "runs" / "cli-run" / "adapter"
    exact = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(bf16_base, dtype=torch.float32),
                                      str(adapter))
    errors = {}
    for dtype in ("auto", "float32"):
        result = runner.invoke(app, ["merge", "cli-run", "--dtype", dtype, "--out", str(project_dir / dtype)])
        assert result.exit_code == 0, result.output
        model = AutoModelForCausalLM.from_pretrained(project_dir / dtype, dtype="auto")
        assert model.dtype == (torch.bfloat16 if dtype == "auto" else torch.float32)
        with torch.no_grad():
            errors[dtype] = (model(input_ids=ids).logits.float() - exact(input_ids=ids).logits).abs().max().item()
    assert errors["float32"] < 1e-4 < errors["auto"]
    assert runner.invoke(app, ["merge", "cli-run", "--dtype", "int4"]).exit_code == 1

    # --out: an earlier merge is replaced; a folder of other files (or a file) is refused and left as it was
    result = runner.invoke(app, ["merge", "cli-run", "--out", str(project_dir / "float32")])
    assert result.exit_code == 0, result.output
    notes = project_dir / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("mine")
    for taken in (notes, notes / "thesis.txt"):
        result = runner.invoke(app, ["merge", "cli-run", "--out", str(taken)])
        assert result.exit_code == 2 and str(taken) in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in notes.iterdir()) == ["thesis.txt"] and (notes / "thesis.txt").read_text() == "mine"


def test_embedded_smollm2_few_steps(project_dir: Path, embedded_model_dir: Path) -> None:
    """The real student (SmolLM2-135M-Instruct, the default config's): a few steps lower its loss and the
    adapter answers through the local backend."""
    from underdog.train import train

    project = Project(project_dir)
    save_dataset(project_dir, "arith", arithmetic(8))
    m = train(project, "arith", {"max_steps": 4, "per_device_train_batch_size": 3, "learning_rate": 2e-3,
                                 "validation_split_ratio": 0.25, "evals_per_epoch": 1, "logging_steps": 1})
    assert m.status == "done" and m.base_model == "smollm2-135m" and m.metrics["steps"] == 4
    losses = [h["loss"] for h in m.history if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0]
    reply = project.llm(m.id).chat("What is 21 plus 21?", temperature=0.0, max_tokens=12)
    assert reply.text and not reply.cached
