"""Turning dataset examples into training rows: the student's chat template, assistant-only labels, batching.

Each example is rendered with the tokenizer's own chat template. Labels are -100 everywhere except on the tokens
the assistant wrote (its content and its end-of-turn token), so the loss never rewards predicting the system
prompt, the question or the template's markup.

Batches waste no compute on padding, in one of two ways (`packing`):
- `flatten`: `DataCollatorWithFlattening` puts a batch's examples one after another in a single row with
  `position_ids` restarting at 0 for each; transformers turns those into a block-diagonal attention mask (or
  flash-attn's varlen kernels), so no example sees another and there is no padding at all. Best with flash-attn:
  with sdpa the masked attention over the whole flattened row costs what the padding saved.
- `group`: the Trainer's length-grouped sampler makes batches of similar lengths, padded to their longest; the
  padding left is small and each example's attention costs only its own length.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from underdog.data.dataset import Example

IGNORE = -100


@dataclass
class Row:
    input_ids: list[int]
    labels: list[int]

    def to_dict(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "labels": self.labels}


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt,
                                        return_dict=True)
    return list(out["input_ids"])


def tokenize_example(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> Row:
    """Token ids of the whole conversation and labels that keep only the assistant's tokens.

    An assistant turn spans from the end of the prompt that precedes it (the conversation so far plus the
    template's generation prompt) to its end-of-turn token, included; the template's text after it (a newline)
    stays masked. Rows longer than `max_length` are truncated.
    """
    ids = _template_ids(tokenizer, messages, generation_prompt=False)
    labels = [IGNORE] * len(ids)
    eot = tokenizer.eos_token_id
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_template_ids(tokenizer, messages[:i], generation_prompt=True))
        end = len(_template_ids(tokenizer, messages[: i + 1], generation_prompt=False))
        span = ids[start:end]
        if eot in span:
            end = start + span.index(eot) + 1
        labels[start:end] = ids[start:end]
    return Row(ids[:max_length], labels[:max_length])


@dataclass
class Splits:
    train: list[Row]
    eval: list[Row]
    dropped: int  # examples with no assistant token left after truncation


def build_splits(tokenizer: Any, examples: list[Example], *, max_length: int, validation_split_ratio: float,
                 seed: int, max_train_samples: int = -1, max_val_samples: int = -1) -> Splits:
    """Shuffle with `seed`, hold out `validation_split_ratio` for eval (at least one example when > 0), tokenize."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(order) * validation_split_ratio)) if validation_split_ratio > 0 else 0
    n_eval = min(n_eval, len(order) - 1)
    eval_examples, train_examples = order[:n_eval], order[n_eval:]
    if max_train_samples > 0:
        train_examples = train_examples[:max_train_samples]
    if max_val_samples > 0:
        eval_examples = eval_examples[:max_val_samples]
    rows = [[tokenize_example(tokenizer, e.messages, max_length) for e in part]
            for part in (train_examples, eval_examples)]
    kept = [[r for r in part if any(label != IGNORE for label in r.labels)] for part in rows]
    dropped = sum(len(a) - len(b) for a, b in zip(rows, kept, strict=True))
    return Splits(train=kept[0], eval=kept[1], dropped=dropped)


def make_collator(tokenizer: Any, mode: str, flash: bool = False) -> Any:
    """`flatten`: padding-free rows (+ the sequence boundaries flash-attn's varlen kernels read);
    `group` / `off`: pad each batch to its longest row, labels padded with -100."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if mode == "flatten":
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE,
                                          return_flash_attn_kwargs=flash)
    return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE, return_tensors="pt")


class CountingCollator:
    """Wraps a collator and counts the real and the computed (padded) token positions of the batches it makes
    while `active()` (e.g. while the model is in training mode, to leave evaluation batches out)."""

    def __init__(self, collator: Any, active: Callable[[], bool] = lambda: True):
        self.collator, self.active, self.real, self.computed = collator, active, 0, 0

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collator(features)
        if self.active():
            self.real += sum(len(f["input_ids"]) for f in features)
            self.computed += batch["input_ids"].numel()
        return batch

    @property
    def padding_share(self) -> float:
        return 1 - self.real / self.computed if self.computed else 0.0
