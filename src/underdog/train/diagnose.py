"""Overfitting diagnosis from a run's loss history.

A run is flagged when either
- eval loss rose for `patience` evaluations in a row after its minimum, by a material amount (more than both
  `min_rise` nats and `min_rise_ratio` of the minimum), while train loss kept falling (the model is memorising
  its training set), or
- eval loss exceeded train loss by more than `gap` (nats per token) at `patience` evaluations in a row.
Both rules ignore noise: at near-zero loss an eval loss going 0.040 -> 0.046 is not a rise, and one evaluation
over the gap is not a trend. The flag records the epoch where it started: the eval minimum for a rise, the first
evaluation of the run over the gap (the earlier of the two when both happen). It is a warning shown beside the
run's quality, not a verdict (with early stopping, the run keeps its best-eval-loss adapter: `keep_best`).
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


def diagnose(history: list[dict[str, Any]], *, gap: float = 0.5, patience: int = 2, min_rise: float = 0.05,
             min_rise_ratio: float = 0.05) -> Overfit:
    """Check a history of `{"step", "epoch", "loss"}` and `{"step", "epoch", "eval_loss"}` entries; when both
    signs are present, the flag carries both reasons and the earlier epoch."""
    evals = [h for h in history if "eval_loss" in h]
    found = [f for f in (_rising(history, evals, patience, min_rise, min_rise_ratio),
                         _gap(history, evals, gap, patience)) if f is not None]
    if not found:
        return Overfit()
    first = min(found, key=lambda f: f.epoch or 0.0)
    return Overfit(True, "; ".join(f.reason or "" for f in found), first.epoch)


def _gap(history: list[dict[str, Any]], evals: list[dict[str, Any]], gap: float, patience: int) -> Overfit | None:
    streak: list[tuple[dict[str, Any], float]] = []
    for h in evals:
        train = _train_loss_near(history, h["step"])
        streak = [*streak, (h, train)] if train is not None and h["eval_loss"] - train > gap else []
        if len(streak) >= patience:
            start, train_then = streak[0]
            reason = (f"eval loss exceeded train loss by more than {gap} at {len(streak)} evaluations in a row "
                      f"(from {start['eval_loss']:.3f} vs {train_then:.3f})")
            return Overfit(True, reason, round(start["epoch"], 2))
    return None


def material_rise(low: float, high: float, min_rise: float, min_rise_ratio: float) -> bool:
    """True when `high` is above `low` by more than `min_rise` nats and by more than `min_rise_ratio` of `low`."""
    return high - low > max(min_rise, min_rise_ratio * abs(low))


def _rising(history: list[dict[str, Any]], evals: list[dict[str, Any]], patience: int, min_rise: float,
            min_rise_ratio: float) -> Overfit | None:
    best = 0
    for i in range(1, len(evals)):
        if evals[i]["eval_loss"] < evals[best]["eval_loss"]:
            best = i
            continue
        run = evals[best: i + 1]
        increasing = all(b["eval_loss"] > a["eval_loss"] for a, b in zip(run, run[1:], strict=False))
        low, now = evals[best]["eval_loss"], evals[i]["eval_loss"]
        if len(run) - 1 >= patience and increasing and material_rise(low, now, min_rise, min_rise_ratio):
            train_then = _train_loss_near(history, evals[best]["step"])
            train_now = _train_loss_near(history, evals[i]["step"])
            if train_then is not None and train_now is not None and train_now < train_then:
                reason = (f"eval loss rose {len(run) - 1} evaluations in a row from its minimum {low:.3f} to "
                          f"{now:.3f} while train loss fell ({train_then:.3f} -> {train_now:.3f})")
                return Overfit(True, reason, round(evals[best]["epoch"], 2))
    return None
