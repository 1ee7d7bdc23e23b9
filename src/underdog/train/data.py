"""Dataset examples as the rows TRL's trainers read, the held-out split, and the padding a run computes.

Supervised rows are TRL's *conversational prompt-completion* format: one row per assistant turn, the conversation
before it as `prompt` and the turn as `completion`:

    {"prompt": [{"role": "system", ...}, {"role": "user", ...}], "completion": [{"role": "assistant", ...}]}

`SFTTrainer` renders both with the student's own chat template and, with `completion_only_loss`, trains only on
the completion's tokens: the assistant's reply, the end-of-turn token that closes it (so the model learns to stop)
and whatever the template writes after it (a newline for ChatML). The system prompt, the question and the
template's markup are never trained on. This works with any chat template; TRL's `assistant_only_loss` needs
`{% generation %}` markers, which SmolLM2's template (and many students') lacks (docs/training.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from underdog.data.dataset import Example
from underdog.data.formats import prompt_completion_rows as completion_rows

T = TypeVar("T")


def held_out(items: Sequence[T], ratio: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, eval): shuffled with `seed`, `ratio` of them held out (at least one when > 0, never all)."""
    order = list(items)
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(order) * ratio)) if ratio > 0 else 0
    n_eval = min(n_eval, len(order) - 1)
    return order[n_eval:], order[:n_eval]


def capped(items: list[T], cap: int) -> list[T]:
    """The first `cap` items (all when `cap` <= 0)."""
    return items[:cap] if cap > 0 else items


@dataclass
class Splits:
    """Training and evaluation rows (TRL's format) and the examples with nothing to train on."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    dropped: int  # examples without an assistant turn that follows a prompt


def build_splits(examples: list[Example], *, validation_split_ratio: float, seed: int, max_train_samples: int = -1,
                 max_val_samples: int = -1) -> Splits:
    """Hold out `validation_split_ratio` of the examples (shuffled with `seed`), then make their rows."""
    train, evals = held_out(examples, validation_split_ratio, seed)
    parts = [capped(train, max_train_samples), capped(evals, max_val_samples)]
    rows = [[row for e in part for row in completion_rows(e.messages)] for part in parts]
    dropped = sum(1 for part in parts for e in part if not completion_rows(e.messages))
    return Splits(train=rows[0], eval=rows[1], dropped=dropped)


@contextmanager
def quiet_preparation() -> Iterator[None]:
    """No `datasets` progress bars while a trainer tokenizes its rows: the library reports through a Reporter."""
    from datasets.utils import logging

    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            logging.enable_progress_bar()


def row_tokens(feature: dict[str, Any]) -> int:
    """The real tokens of one tokenized row."""
    return len(feature["input_ids"])


class CountingCollator:
    """Wraps a collator and counts the real (`length` of each row) and the computed (padded) token positions of
    the batches it makes while `active()` (e.g. while the model is in training mode, to leave evaluation out)."""

    def __init__(self, collator: Any, active: Callable[[], bool] = lambda: True,
                 length: Callable[[dict[str, Any]], int] = row_tokens):
        self.collator, self.active, self.length, self.real, self.computed = collator, active, length, 0, 0

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collator(features)
        if self.active():
            self.real += sum(self.length(f) for f in features)
            self.computed += batch["input_ids"].numel()
        return batch

    @property
    def padding_share(self) -> float:
        return 1 - self.real / self.computed if self.computed else 0.0
