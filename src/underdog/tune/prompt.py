"""The final round's knobs: system prompt x temperature x top_p for a fixed model, each cell judged against the
reference on the eval set; optionally best-of-n (n samples per question, the jury keeps the best).

    underdog tune-prompt my-run --prompts prompts.yaml --best-of 3

    result = tune_prompt(project, "my-run", load_prompts(Path("prompts.yaml")), [0.3, 0.7], [0.9, 1.0])
    paths = write_report(result, project.reports_dir / "tune" / "my-run")

Answers go through `evaluate.answer` (stored, cached), verdicts through the evaluation jury and its cache, so
re-running a grid with one more prompt only pays for the new cells.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from underdog.errors import ConfigError, UnderdogError
from underdog.evaluate import stats
from underdog.evaluate.answer import Answer, Candidate, answer, resolve_candidate
from underdog.evaluate.evalset import resolve_evalset
from underdog.evaluate.judge import JudgeResult, judge, judge_pairs
from underdog.project import Project
from underdog.textfile import read_user_text

STAMP = "%Y%m%d-%H%M%S"  # a report folder's time stamp


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str  # "" means no system prompt


@dataclass
class Cell:
    """One grid cell: a prompt and sampling params, and how its answers fared against the reference."""

    prompt: Prompt
    temperature: float
    top_p: float
    outcomes: list[str] = field(default_factory=list)  # per question: first (ours) / second / tie / error / abstain
    mean_chars: float = 0.0

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)

    @property
    def n(self) -> int:
        return len(self.outcomes) - self.count("error") - self.count("abstain")  # abstain: no grounded truth

    @property
    def win_rate(self) -> float:
        return stats.win_rate(self.count("first"), self.count("tie"), self.n)

    @property
    def ci(self) -> tuple[float, float]:
        return stats.wilson_interval(self.count("first") + self.count("tie") / 2, self.n)


@dataclass
class TuneResult:
    model: str
    evalset: str
    reference: str
    best_of: int
    cells: list[Cell]

    def ranked(self) -> list[Cell]:
        return sorted(self.cells, key=lambda c: (-c.win_rate, -c.ci[0], c.mean_chars))


# -- prompts ----------------------------------------------------------------------------------------------
def load_prompts(path: Path) -> list[Prompt]:
    """System prompts from YAML (a list of strings, a list of {name, prompt}, or a name -> prompt mapping) or
    from plain text with prompts separated by lines of `---`."""
    if not path.exists():
        raise ConfigError(f"{path}: prompts file not found (one system prompt per entry; see docs/arena.md)")
    text = read_user_text(path, error=ConfigError, option=None)
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        prompts = _from_yaml(data, path)
    else:
        blocks = [b.strip() for b in re.split(r"^---\s*$", text, flags=re.M)]
        prompts = [Prompt(f"p{i}", b) for i, b in enumerate((b for b in blocks if b), 1)]
    if not prompts:
        raise ConfigError(f"{path}: no prompts found")
    names = [p.name for p in prompts]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: duplicate prompt names")
    return prompts


def _from_yaml(data: object, path: Path) -> list[Prompt]:
    if isinstance(data, dict):
        return [Prompt(str(k), "" if v is None else str(v).strip()) for k, v in data.items()]
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of prompts or a mapping name: prompt")
    out = []
    for i, item in enumerate(data, 1):
        if isinstance(item, str):
            out.append(Prompt(f"p{i}", item.strip()))
        elif isinstance(item, dict) and isinstance(item.get("prompt", ""), str) and set(item) <= {"name", "prompt"}:
            out.append(Prompt(str(item.get("name", f"p{i}")), (item.get("prompt") or "").strip()))
        else:
            raise ConfigError(f"{path}: entry {i}: expected a string or {{name, prompt}}")
    return out


# -- the grid ---------------------------------------------------------------------------------------------
def tune_prompt(project: Project, model: str, prompts: Sequence[Prompt], temperatures: Sequence[float],
                top_ps: Sequence[float], *, best_of: int = 1, evalset: str | None = None,
                reference: str | None = None, progress: bool = True,
                on_cell: Callable[[Cell], None] | None = None, judges: Sequence[str] | None = None) -> TuneResult:
    """Judge every (prompt, temperature, top_p) cell of `model` against the reference on the eval set, by
    `judges` (default: evaluate.judges)."""
    name = resolve_evalset(project, evalset or project.config.tune.evalset or project.config.evaluate.evalset)
    ref_name = reference or project.config.evaluate.reference
    theirs = {a.question_id: a for a in answer(project, ref_name, name, progress=progress)}
    cells = []
    for prompt in prompts:
        for temperature in temperatures:
            for top_p in top_ps:
                cand = resolve_candidate(project, model, system_prompt=prompt.text, temperature=temperature,
                                         top_p=top_p)
                cand = Candidate(f"{model} [{prompt.name} t={temperature:g} p={top_p:g}]", cand.spec)
                ours = best_of_n(project, cand, name, best_of, progress, judges) if best_of > 1 else answer(
                    project, cand, name, progress=progress)
                cells.append(_judge_cell(project, Cell(prompt, temperature, top_p), ours, theirs, progress, judges))
                if on_cell:
                    on_cell(cells[-1])
    return TuneResult(model, name, ref_name, best_of, cells)


def _judge_cell(project: Project, cell: Cell, ours: list[Answer], theirs: dict[str, Answer],
                progress: bool, judges: Sequence[str] | None = None) -> Cell:
    ok = [a for a in ours if not a.error and a.question_id in theirs and not theirs[a.question_id].error]
    outcomes = judge_pairs(project, [(a.question, a.answer, theirs[a.question_id].answer) for a in ok],
                           judges=judges, progress=f"judging {cell.prompt.name} t={cell.temperature:g} p={cell.top_p:g}"
                           if progress else None)
    cell.outcomes = outcomes + ["error"] * (len(ours) - len(ok))
    cell.mean_chars = sum(len(a.answer) for a in ok) / len(ok) if ok else 0.0
    return cell


def best_of_n(project: Project, cand: Candidate, evalset: str, n: int, progress: bool = True,
              judges: Sequence[str] | None = None) -> list[Answer]:
    """n samples per question (distinct seeds), then a knockout: the jury compares the current best with each
    next sample and keeps the winner (a tie keeps the current best)."""
    first = answer(project, cand, evalset, progress=progress)  # sample 0, stored like any answer
    llm = project.model(cand.spec, role=cand.name, stage="tune")
    base_seed = cand.spec.params.seed or 0
    best = list(first)
    for k in range(1, n):
        replies = llm.batch([a.question for a in first], errors="return", samples=[k] * len(first),
                            seed=base_seed + k, progress=f"sample {k + 1}/{n}" if progress else None)
        contest = []
        for i, reply in enumerate(replies):
            if reply.error or reply.text == best[i].answer:
                continue
            if best[i].error:
                best[i] = Answer(first[i].question_id, first[i].question, reply.text, reply.output_tokens)
            else:
                contest.append(i)
        outcomes = judge_pairs(project, [(best[i].question, best[i].answer, replies[i].text) for i in contest],
                               judges=judges)
        for i, outcome in zip(contest, outcomes, strict=True):
            if outcome == "second":
                best[i] = Answer(first[i].question_id, first[i].question, replies[i].text, replies[i].output_tokens)
    return best


def record_best(project: Project, result: TuneResult) -> JudgeResult | None:
    """Record the best cell through `evaluate.judge`, so it appears on the leaderboard as a baseline (and, for a
    run with experiment trackers, as `tune/...` there). Its answers and verdicts are already cached: no model is
    called. Best-of-n answers are not what `judge` would answer
    with, so those results are not recorded (None)."""
    if result.best_of > 1 or not result.cells:
        return None
    best = result.ranked()[0]
    spec = resolve_candidate(project, result.model, system_prompt=best.prompt.text, temperature=best.temperature,
                             top_p=best.top_p).spec
    name = f"{result.model} tuned [{best.prompt.name} t={best.temperature:g} p={best.top_p:g}]"
    return judge(project, Candidate(name, spec), result.reference, result.evalset, progress=False, track_as="tune")


def report_dir(project: Project, model: str) -> Path:
    """Where `tune-prompt MODEL` run now writes its report: reports/tune/<%Y%m%d-%H%M%S>-<slug>."""
    return project.report_dir("tune", f"{time.strftime(STAMP)}-{_slug(model)}")


def latest_best(project: Project, model: str) -> Path | None:
    """The newest `best.yaml` that `tune-prompt MODEL` wrote, if any."""
    stamp = len(time.strftime(STAMP))
    found = [p for p in project.report_dir("tune").glob("*/best.yaml") if p.parent.name[stamp + 1:] == _slug(model)]
    return max(found, key=lambda p: p.parent.name, default=None)


def _slug(model: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in model)[-40:]


# -- report -----------------------------------------------------------------------------------------------
def write_report(result: TuneResult, out_dir: Path) -> dict[str, Path]:
    """results.csv (ranked), heatmap.png (win rate per prompt x params), summary.md, best.yaml (paste into
    the model's spec)."""
    if not result.cells:
        raise UnderdogError("no cells to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "results.csv", "heatmap": out_dir / "heatmap.png", "summary": out_dir / "summary.md",
             "best": out_dir / "best.yaml"}
    ranked = result.ranked()
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["rank", "prompt", "temperature", "top_p", "win_rate", "ci_low", "ci_high", "wins", "ties",
                         "losses", "errors", "n", "mean_chars", "system_prompt"])
        for i, c in enumerate(ranked, 1):
            writer.writerow([i, c.prompt.name, c.temperature, c.top_p, round(c.win_rate, 4), round(c.ci[0], 4),
                             round(c.ci[1], 4), c.count("first"), c.count("tie"), c.count("second"),
                             c.count("error"), c.n, round(c.mean_chars, 1), c.prompt.text])
    plot_heatmap(result, paths["heatmap"])
    best = ranked[0]
    paths["best"].write_text(yaml.safe_dump({"system_prompt": best.prompt.text or None, "params": {
        "temperature": best.temperature, "top_p": best.top_p}}, sort_keys=False, allow_unicode=True))
    paths["summary"].write_text(summary_markdown(result))
    return paths


def summary_markdown(result: TuneResult) -> str:
    lines = [f"# Prompt tuning: {result.model}", "",
             f"Eval set `{result.evalset}`, judged against `{result.reference}`"
             + (f", best of {result.best_of} samples per question" if result.best_of > 1 else "") + ".", "",
             "| # | prompt | temperature | top_p | win rate | 95% CI | W/T/L | mean chars |",
             "|---|---|---|---|---|---|---|---|"]
    for i, c in enumerate(result.ranked(), 1):
        lines.append(f"| {i} | {c.prompt.name} | {c.temperature:g} | {c.top_p:g} | {c.win_rate:.1%} | "
                     f"{c.ci[0]:.1%}-{c.ci[1]:.1%} | {c.count('first')}/{c.count('tie')}/{c.count('second')} | "
                     f"{c.mean_chars:.0f} |")
    lines += ["", "Cells whose intervals overlap are not told apart by this many questions.", "", "## Prompts", ""]
    lines += [f"- **{p.name}**: {p.text or '(no system prompt)'}" for p in _prompts(result)]
    return "\n".join(lines) + "\n"


def _prompts(result: TuneResult) -> list[Prompt]:
    return list(dict.fromkeys(c.prompt for c in result.cells))


def plot_heatmap(result: TuneResult, path: Path) -> None:
    """Win rate per prompt (rows) and temperature / top_p (columns), annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    prompts = _prompts(result)
    params = list(dict.fromkeys((c.temperature, c.top_p) for c in result.cells))
    grid = np.full((len(prompts), len(params)), np.nan)
    for c in result.cells:
        grid[prompts.index(c.prompt), params.index((c.temperature, c.top_p))] = c.win_rate
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(params), 1.2 + 0.55 * len(prompts)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(params)), [f"T={t:g}\ntop_p={p:g}" for t, p in params])
    ax.set_yticks(range(len(prompts)), [p.name for p in prompts])
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=9)
    ax.set_title(f"{result.model}: win rate vs {result.reference}", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
