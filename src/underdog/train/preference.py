"""Preference training on TRL's `DPOTrainer`, on top of a supervised run.

    underdog train --method dpo -d prefs --from <sft-run-id> [beta=0.1 dpo_loss='[sigmoid, sft]']

The run loads the parent run's LoRA adapter twice on the student: once as the adapter it trains (`default`) and
once as a frozen copy (`ref`, which TRL's DPOTrainer adds itself when given a PEFT model that already holds an
adapter and no reference model) whose log-probabilities are the reference policy's. So the reference is the
parent run, not the bare base model, and the result is again one LoRA adapter on the student, the shape of every
run: it answers, merges and serves like one. The loss is TRL's (`dpo_loss`, default `[sigmoid, sft]`: DPO plus
the negative log-likelihood of the chosen answers, without which DPO reached a reward accuracy of 1.0 yet left
greedy answers unchanged, docs/training.md); underdog writes none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from underdog.config import TrainConfig
from underdog.data.preferences import PreferencePair, to_trl
from underdog.errors import ConfigError, UnderdogError
from underdog.train.arguments import schedule, trainer_arguments
from underdog.train.data import CountingCollator, capped, held_out, quiet_preparation
from underdog.train.devices import pin_one_device
from underdog.train.runs import RunManifest, load_run
from underdog.train.sft import load_student

REFERENCE = "ref"  # the adapter name TRL gives the frozen copy it scores the reference policy with
LORA_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")  # the parent adapter's shape, kept


def parent_run(root: Path, cfg: TrainConfig, student: str) -> RunManifest:
    """The finished run a preference run starts from, on the same base model (one line when it cannot)."""
    if not cfg.from_run:
        raise ConfigError(f"train --method {cfg.method} needs --from RUN: the supervised run whose adapter it trains "
                          "and keeps as the reference policy")
    parent = load_run(root, cfg.from_run)  # an unknown run is one line naming the latest ones
    if parent.status != "done" or not (root / parent.adapter_dir).is_dir():
        raise UnderdogError(f"run {parent.id} is {parent.status}, with no adapter to start from: "
                            f"--from needs a finished run")
    if parent.base_model != student:
        raise UnderdogError(f"run {parent.id} was trained on {parent.base_model}, not on the student {student}: "
                            "its adapter does not fit this base model")
    return parent


def with_parent_lora(hyperparameters: dict[str, Any], parent: RunManifest) -> dict[str, Any]:
    """The run's hyperparameters with the parent adapter's LoRA shape (the adapter trained is the parent's)."""
    return {**hyperparameters, **{k: parent.hyperparameters[k] for k in LORA_KEYS if k in parent.hyperparameters}}


def preference_rows(pairs: list[PreferencePair], cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train, eval) rows in TRL's conversational preference format, held out as a supervised run holds out."""
    train, evals = held_out(pairs, cfg.validation_split_ratio, cfg.train_data_split_seed)
    return ([to_trl(p) for p in capped(train, cfg.max_train_samples)],
            [to_trl(p) for p in capped(evals, cfg.max_val_samples)])


def dpo_arguments(cfg: TrainConfig, device: str, output_dir: Path, has_eval: bool, max_length: int) -> Any:
    """DPOConfig: the shared settings plus beta, the loss terms and truncation."""
    from trl import DPOConfig

    # random batches: TRL's preference rows (prompt, chosen and rejected ids) have no single length to group by
    return trainer_arguments(DPOConfig, cfg, device, output_dir, has_eval=has_eval, max_length=max_length,
                             beta=cfg.beta, loss_type=list(cfg.dpo_loss), loss_weights=cfg.dpo_loss_weights,
                             train_sampling_strategy="random")


def dpo_trainer(model_path: str, adapter: Path, rows: tuple[list[dict], list[dict]], cfg: TrainConfig, device: str,
                output_dir: Path, callbacks: list[Any], max_length: int) -> tuple[Any, dict[str, int]]:
    """A DPOTrainer training `adapter` (a copy of it frozen as the reference), and the pairs it trains on."""
    from datasets import Dataset
    from peft import PeftModel
    from transformers import PrinterCallback
    from trl import DPOTrainer

    train, evals = rows
    base, tokenizer = load_student(model_path, cfg, device)
    model = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
    args = dpo_arguments(cfg, device, output_dir, bool(evals), max_length)
    pin_one_device(args, device)
    with quiet_preparation():
        trainer = DPOTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(train),
                             eval_dataset=Dataset.from_list(evals) if evals else None, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)
    if REFERENCE not in model.peft_config:
        raise UnderdogError("this TRL version did not keep a frozen copy of the adapter as the reference policy")
    if not len(trainer.train_dataset):
        raise UnderdogError(f"no preference pair left to train on (every prompt fills max_input_length={max_length})")
    schedule(trainer.args, cfg, len(trainer.train_dataset), has_eval=bool(evals))
    trainer.data_collator = CountingCollator(trainer.data_collator, active=lambda: trainer.model.training,
                                             length=pair_tokens)
    evaluated = len(trainer.eval_dataset) if evals else 0
    return trainer, {"train_examples": len(trainer.train_dataset), "eval_examples": evaluated,
                     "dropped_examples": len(train) + len(evals) - len(trainer.train_dataset) - evaluated}


def pair_tokens(feature: dict[str, Any]) -> int:
    """The real tokens of one tokenized pair: the prompt with the chosen answer and with the rejected one."""
    return 2 * len(feature["prompt_ids"]) + len(feature["chosen_ids"]) + len(feature["rejected_ids"])


def drop_reference(trainer: Any) -> None:
    """Remove the frozen reference copy, so that the run's adapter folder holds the trained adapter alone."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if REFERENCE in getattr(model, "peft_config", {}):
        model.delete_adapter(REFERENCE)

