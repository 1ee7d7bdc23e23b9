"""Overfitting diagnosis from a run's loss history.

A run is flagged when either
- eval loss rose for `patience` evaluations in a row after its minimum while train loss kept falling
  (the model is memorising its training set), or
- eval loss exceeds train loss by more than `gap` (nats per token) at some evaluation.
The flag records the epoch where it started: the eval minimum for a rise, the first evaluation over the gap
(the earlier of the two when both happen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Overfit:
    flag: bool = False
    reason: str | None = None
    epoch: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _train_loss_near(history: list[dict[str, Any]], step: int, window: int = 3) -> float | None:
    """Mean of the last `window` train losses logged at or before `step` (smooths per-batch noise)."""
    losses = [h["loss"] for h in history if "loss" in h and h["step"] <= step][-window:]
    return sum(losses) / len(losses) if losses else None


def diagnose(history: list[dict[str, Any]], *, gap: float = 0.5, patience: int = 2) -> Overfit:
    """Check a history of `{"step", "epoch", "loss"}` and `{"step", "epoch", "eval_loss"}` entries; when both
    signs are present, the flag carries both reasons and the earlier epoch."""
    evals = [h for h in history if "eval_loss" in h]
    found = [f for f in (_rising(history, evals, patience), _gap(history, evals, gap)) if f is not None]
    if not found:
        return Overfit()
    first = min(found, key=lambda f: f.epoch or 0.0)
    return Overfit(True, "; ".join(f.reason or "" for f in found), first.epoch)


def _gap(history: list[dict[str, Any]], evals: list[dict[str, Any]], gap: float) -> Overfit | None:
    for h in evals:
        train = _train_loss_near(history, h["step"])
        if train is not None and h["eval_loss"] - train > gap:
            reason = f"eval loss {h['eval_loss']:.3f} exceeds train loss {train:.3f} by more than {gap}"
            return Overfit(True, reason, round(h["epoch"], 2))
    return None


def _rising(history: list[dict[str, Any]], evals: list[dict[str, Any]], patience: int) -> Overfit | None:
    best = 0
    for i in range(1, len(evals)):
        if evals[i]["eval_loss"] < evals[best]["eval_loss"]:
            best = i
            continue
        run = evals[best: i + 1]
        increasing = all(b["eval_loss"] > a["eval_loss"] for a, b in zip(run, run[1:], strict=False))
        if len(run) - 1 >= patience and increasing:
            train_then = _train_loss_near(history, evals[best]["step"])
            train_now = _train_loss_near(history, evals[i]["step"])
            if train_then is not None and train_now is not None and train_now < train_then:
                low = evals[best]
                reason = (f"eval loss rose {patience}+ evaluations in a row after its minimum {low['eval_loss']:.3f}"
                          f" while train loss fell ({train_then:.3f} -> {train_now:.3f})")
                return Overfit(True, reason, round(low["epoch"], 2))
    return None
