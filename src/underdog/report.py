"""The leaderboard as Markdown, CSV and a self-contained HTML report with charts (no CDN, images inlined).

    paths = write_report(project)   # reports/leaderboard.md, leaderboard.csv, leaderboard.html, *.png

Charts (matplotlib, Agg backend): win rate with its 95% interval per candidate, train/eval loss curves per run,
and win rate against lora_r, epoch and dataset version. The report names the judge configuration it ranks,
gives fact recall / refusal accuracy where the eval set has ground truth, and how the LLM judges agreed with the
grounded ones (warning about a judge that follows answer length).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from underdog.arena.standings import report_sections
from underdog.evaluate.judges.facts import Recall
from underdog.evaluate.jury_status import report_section as jury_section
from underdog.evaluate.leaderboard import BoardConfig, Entry, board_config, leaderboard, recommend
from underdog.project import Project

COLUMNS = ("rank", "candidate", "kind", "status", "dataset", "epoch", "learning_rate", "lora_r", "lora_alpha",
           "modules", "train_loss", "eval_loss", "overfit", "win_rate", "ci_low", "ci_high", "n", "ties", "errors",
           "lc_win_rate", "consistency", "fact_recall", "fact_recall_low", "fact_recall_high", "refusal_accuracy",
           "config_id")
PERCENT = ("win_rate", "ci_low", "ci_high", "lc_win_rate", "consistency", "fact_recall", "fact_recall_low",
           "fact_recall_high", "refusal_accuracy")
HIDDEN = ("ci_low", "ci_high", "fact_recall_low", "fact_recall_high")  # shown inside the cell they bound


def rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """One flat row per entry, in COLUMNS order (None where unknown)."""
    out = []
    for rank, e in enumerate(entries, 1):
        r = e.result or {}
        hp, m = e.hyperparameters, e.metrics
        out.append({
            "rank": rank, "candidate": e.name, "kind": e.kind, "status": e.status, "dataset": e.dataset,
            "epoch": hp.get("epoch"), "learning_rate": hp.get("learning_rate"), "lora_r": hp.get("lora_r"),
            "lora_alpha": hp.get("lora_alpha"), "modules": _modules(hp.get("target_modules")),
            "train_loss": m.get("train_loss"), "eval_loss": m.get("eval_loss"),
            "overfit": (e.overfit_reason or "yes") if e.overfit else ("no" if e.kind == "run" else None),
            "win_rate": r.get("win_rate"), "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "n": r.get("n"),
            "ties": r.get("ties"), "errors": r.get("errors"), "lc_win_rate": r.get("lc_win_rate"),
            "consistency": r.get("consistency"), "fact_recall": r.get("fact_recall"),
            "fact_recall_low": r.get("fact_recall_low"), "fact_recall_high": r.get("fact_recall_high"),
            "refusal_accuracy": r.get("refusal_accuracy"), "config_id": r.get("config_id"),
        })
    return out


def _modules(names: Any) -> str | None:
    """LoRA target modules, short: q,k,v,o,gate,up,down."""
    if isinstance(names, list):
        return ",".join(str(n).removesuffix("_proj") for n in names)
    return str(names) if names else None


def fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if column in PERCENT:
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def display(row: dict[str, Any], column: str) -> str:
    """A table cell: intervals inside the cell they bound, "not identifiable" for a missing lc rate."""
    if column == "lc_win_rate" and row[column] is None and row["win_rate"] is not None:
        return "not identifiable"
    cell = fmt(row[column], column)
    bounds = {"win_rate": ("ci_low", "ci_high"), "fact_recall": ("fact_recall_low", "fact_recall_high")}
    if column in bounds and row[column] is not None:
        low, high = bounds[column]
        cell += f" [{fmt(row[low], column)}, {fmt(row[high], column)}]"
    return cell


RECOMMENDATION = "best judged quality among finished runs: fact recall where the eval set has facts, then win rate"


OVERFIT_BUT_BEST = "; flagged as overfit, but no other run is judged as good"


def describe_config(board: BoardConfig) -> str:
    """One line: the judge configuration ranked, and how to pick another."""
    if board.config_id is None:
        return "judge configuration: none yet"
    config = board.config or {}
    judges = ", ".join(_judge_name(j) for j in config.get("judges", [])) or "?"
    which = ("the jury asked for" if board.picked else "the configured jury" if board.configured
             else "not the configured jury, which has no results yet")
    line = (f"judge configuration {board.config_id} ({which}): judges {judges}"
            + (f"; rubric {', '.join(config['rubric'])}" if config.get("rubric") else "")
            + (f"; eval set {config['evalset']}" if config.get("evalset") else ""))
    if board.others:
        others = ", ".join(f"{cid} ({n} result{'s' * (n > 1)})" for cid, n in board.others.items())
        line += f". Other configurations, ranked apart: {others}; pick one with --config ID or -j JUDGE"
    return line


def _judge_name(identity: str) -> str:
    try:
        spec = json.loads(identity)
    except json.JSONDecodeError:
        return identity.split(":")[0]  # a grounded judge: "facts-v1", "similarity-v1:..."
    return f"{spec.get('provider')}:{spec.get('model')}" if isinstance(spec, dict) else identity


def grounded_notes(entries: list[Entry]) -> list[str]:
    """Per judged candidate: how each LLM judge agreed with the grounded judges, and a warning when it follows
    answer length more than they do."""
    notes = []
    for e in entries:
        grounded = json.loads(e.result["grounded"]) if e.result and e.result.get("grounded") else {}
        for a in grounded.get("agreement") or []:
            share = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
            length = ("it gave no decisive verdict on answers of different lengths" if a["longer_share"] is None
                      else f"it picked the longer answer in {share(a['longer_share'])} of its decisive verdicts "
                           f"(grounded judges: {share(a['grounded_longer_share'])})")
            note = (f"{e.name}: {a['judge']} agreed with the grounded judges on {share(a['agreement'])} of "
                    f"{a['compared']} questions; {length}")
            notes.append(note + (". Warning: it follows answer length more than the ground truth does."
                                 if a["follows_length"] else ""))
    return notes


def markdown(entries: list[Entry], board: BoardConfig | None = None) -> str:
    table = rows(entries)
    shown = [c for c in COLUMNS if c not in HIDDEN]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in table:
        lines.append("| " + " | ".join(display(row, c).replace("|", "\\|") for c in shown) + " |")
    best = recommend(entries)
    lines += ["", f"Recommended: **{best.name}** ({RECOMMENDATION}{OVERFIT_BUT_BEST if best.overfit else ''})"
              if best else "Recommended: none yet (no finished, judged run)"]
    if board is not None:
        lines += ["", describe_config(board)]
    lines += [f"- {note}" for note in grounded_notes(entries)]
    return "\n".join(lines) + "\n"


def write_csv(entries: list[Entry], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(entries))


# -- charts -----------------------------------------------------------------------------------------------
def _figure(width: float = 7, height: float = 3.5, ncols: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), squeeze=False)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_win_rates(entries: list[Entry], path: Path) -> Path | None:
    """Bars of the judged candidates' win rates; none for a single candidate (the table gives its number)."""
    judged = [e for e in entries if e.result]
    if len(judged) < 2:
        return None
    fig, axes = _figure(width=max(5, 1 + 0.9 * len(judged)))
    ax = axes[0][0]
    rates = [100 * e.win_rate for e in judged]
    errors = [[r - 100 * e.ci[0] for r, e in zip(rates, judged, strict=True)],
              [100 * e.ci[1] - r for r, e in zip(rates, judged, strict=True)]]
    colours = ["tab:red" if e.overfit else "tab:blue" if e.kind == "run" else "tab:gray" for e in judged]
    ax.bar(range(len(judged)), rates, yerr=errors, capsize=4, color=colours)
    ax.axhline(50, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(judged)), [_short(e.name) for e in judged], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("win rate vs reference (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Win rate with 95% Wilson interval (red: overfit, gray: baseline)", fontsize=9)
    return _save(fig, path)


def plot_losses(entries: list[Entry], path: Path) -> Path | None:
    runs = [e for e in entries if e.history]
    if not runs:
        return None
    fig, axes = _figure()
    ax = axes[0][0]
    for i, e in enumerate(runs):
        colour = f"C{i % 10}"
        for key, style in (("loss", "-"), ("eval_loss", "--")):
            points = [(h["step"], h[key]) for h in e.history if key in h and "step" in h]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, style, color=colour, marker="." if key == "eval_loss" else None,
                        label=f"{e.name} {'eval' if key == 'eval_loss' else 'train'}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title("Train (solid) and eval (dashed) loss per run", fontsize=9)
    return _save(fig, path)


def plot_win_rate_against(entries: list[Entry], path: Path) -> Path | None:
    """Win rate against each of lora_r, epoch and dataset that differs between the judged runs; no chart when
    fewer than two runs were judged (a chart of one point says nothing the table does not)."""
    runs = [e for e in entries if e.kind == "run" and e.result]
    keys = [k for k in ("lora_r", "epoch", "dataset") if len({_setting(e, k) for e in runs}) > 1]
    if len(runs) < 2 or not keys:
        return None
    fig, axes = _figure(width=max(4.0, 3.4 * len(keys)), height=3.2, ncols=len(keys))
    for ax, key in zip(axes[0], keys, strict=True):
        labels = [_setting(e, key) for e in runs]
        ticks = sorted(set(labels), key=_numeric_first)
        xs = _spread([ticks.index(label) for label in labels])
        ys = [100 * e.win_rate for e in runs]
        yerr = [[y - 100 * e.ci[0] for y, e in zip(ys, runs, strict=True)],
                [100 * e.ci[1] - y for y, e in zip(ys, runs, strict=True)]]
        ax.errorbar(xs, ys, yerr=yerr, fmt="o", capsize=3)
        ax.set_xticks(range(len(ticks)), ticks, rotation=20, fontsize=8)
        ax.set_xlabel(key)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("win rate (%)")
    return _save(fig, path)


def _short(name: str, width: int = 28) -> str:
    """A tick label that leaves the chart its room: long run ids end in '…' (the table has them whole)."""
    return name if len(name) <= width else name[:width - 1] + "…"


def _setting(e: Entry, key: str) -> str:
    return str(e.dataset if key == "dataset" else e.hyperparameters.get(key, "?"))


def _spread(xs: list[int], width: float = 0.25) -> list[float]:
    """Shift points that share an x position side by side so their error bars do not hide each other."""
    out = []
    for i, x in enumerate(xs):
        same, k = xs.count(x), xs[:i].count(x)
        out.append(x + (k - (same - 1) / 2) * width / max(same - 1, 1))
    return out


def _numeric_first(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


# -- HTML -------------------------------------------------------------------------------------------------
def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _cell(row: dict[str, Any], column: str) -> str:
    """A cell of the HTML table: an interval on a second, smaller line under the number it bounds."""
    if column == "overfit" and row[column] not in (None, "no"):
        return "yes*"
    if column == "candidate":
        shown = {"run": {"done": "", "judged": ""}}.get(row["kind"], {}).get(row["status"], row["kind"]
                                                                                if row["kind"] != "run" else
                                                                                row["status"])
        return _breakable(row["candidate"]) + (f"<br><small>{html.escape(shown)}</small>" if shown else "")
    if column in ("dataset", "modules") and row[column]:
        return _breakable(row[column])
    bounds = {"win_rate": ("ci_low", "ci_high"), "fact_recall": ("fact_recall_low", "fact_recall_high")}
    if column in bounds and row[column] is not None:
        low, high = bounds[column]
        return (f"{html.escape(fmt(row[column], column))}<br><small>{html.escape(fmt(row[low], column))}–"
                f"{html.escape(fmt(row[high], column))}</small>")
    return html.escape(display(row, column))


def _breakable(name: str) -> str:
    """A long name, escaped, that may break after its '-', '+', '_', ',' or '/' (not inside a word)."""
    return re.sub(r"([-+_,/])", r"\1<wbr>", html.escape(name))


HTML_HEADERS = {"learning_rate": "lr", "lora_r": "r", "lora_alpha": "alpha", "train_loss": "train loss",
                "eval_loss": "eval loss", "win_rate": "win rate (95% CI)", "lc_win_rate": "lc win rate",
                "fact_recall": "fact recall (95% CI)", "refusal_accuracy": "refusals declined"}
WRAPPED = ("candidate", "dataset", "modules")  # text cells that may break across lines


def html_columns(table: list[dict[str, Any]]) -> list[str]:
    """The HTML table's columns: not the interval bounds (shown in their number's cell), the judge
    configuration (named under the table), kind and status (under the candidate's name, when not a finished
    run), nor a column empty in every row: so it fits 1280 px."""
    return [c for c in COLUMNS if c not in (*HIDDEN, "config_id", "kind", "status")
            and any(r[c] is not None for r in table)]


def html_report(project: Project, entries: list[Entry], charts: dict[str, Path | None], extra: str = "",
                board: BoardConfig | None = None) -> str:
    table = rows(entries)
    shown = html_columns(table)
    head = "".join(f'<th{" class=t" if c in WRAPPED else ""}>{HTML_HEADERS.get(c, c.replace("_", " "))}</th>'
                   for c in shown)
    flagged = [(r["candidate"], r["overfit"]) for r in table if r["overfit"] not in (None, "no")]
    body = "".join(
        "<tr" + (' class="overfit"' if r["overfit"] not in (None, "no") else "") + ">"
        + "".join(f'<td{" class=t" if c in WRAPPED else ""}>{_cell(r, c)}</td>' for c in shown) + "</tr>"
        for r in table)
    notes = "".join(f"<li>* <b>{html.escape(name)}</b> is flagged as overfit: {html.escape(reason)}</li>"
                    for name, reason in flagged)
    notes += "".join(f"<li>{html.escape(note)}</li>" for note in grounded_notes(entries))
    best = recommend(entries)
    verdict = (f"Recommended run: <b>{html.escape(best.name)}</b> ({html.escape(RECOMMENDATION)}"
               + (OVERFIT_BUT_BEST if best.overfit else "") + ")"
               if best else "No finished, judged run yet.")
    verdict += f"<br>{html.escape(describe_config(board))}" if board is not None else ""
    figures = "".join(_img(p, name) for name, p in charts.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>underdog leaderboard: {html.escape(project.config.domain)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1500px}}table{{border-collapse:collapse;
font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 5px;text-align:right;white-space:nowrap}}
th{{white-space:normal;vertical-align:bottom}}td.t,th.t{{text-align:left;white-space:normal}}
td small{{color:#555}}
table.answers td{{text-align:left;white-space:normal;vertical-align:top}}th{{background:#eee}}
tr.overfit{{background:#fde8e8}}figure{{margin:1em 0}}img{{max-width:100%}}</style></head><body>
<h1>Leaderboard</h1><p>Domain: {html.escape(project.config.domain)}<br>Reference:
{html.escape(project.config.evaluate.reference)} · generated {time.strftime('%Y-%m-%d %H:%M')}</p>
<p>{verdict}</p><p>Win rate = (wins + ties/2) / n, each question judged in both orders (a flip is a tie), with a
95% Wilson interval; lc = length-controlled win rate ("not identifiable" when answer length alone separates
wins from losses); fact recall = facts stated / facts asked over the eval set's questions with facts. Only results
of one judge configuration are ranked together. Overlapping intervals mean the eval set cannot tell the runs
apart.</p>
<div style="overflow-x:auto"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>
<ul>{notes}</ul>
{figures}{extra}</body></html>
"""


def side_by_side(rows: Sequence[Sequence[str]], *labels: str, title: str = "Answers side by side") -> tuple[str, str]:
    """(Markdown, HTML) of a table of (question, answer per label...), e.g. base vs tuned answers."""
    return text_table(title, ["question", *labels], rows, css="answers")


def ground_truth(recalls: Sequence[tuple[str, Recall | None]]) -> tuple[str, str]:
    """(Markdown, HTML) of each model's fact recall and refusal accuracy with their 95% intervals, and the fact
    questions it declined (over-refusals)."""
    def share(hits: int, total: int, ci: tuple[float, float] | None) -> str:
        return f"{hits}/{total} ({100 * ci[0]:.0f}-{100 * ci[1]:.0f}%)" if ci else "-"

    rows = [(name, share(r.stated, r.facts, r.ci), share(r.refused, r.probes, r.refusal_ci), str(r.over_refused))
            for name, r in recalls if r]
    return text_table("Ground truth: facts stated and refusal probes declined (95% intervals)",
                 ["model", "facts stated", "refusal probes declined", "fact questions declined"], rows)


def text_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> tuple[str, str]:
    """(Markdown, HTML) of a titled table of text cells, for report sections."""
    def md_cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    md = [f"## {title}\n", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    md += ["| " + " | ".join(md_cell(t) for t in row) + " |" for row in rows]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(t)}</td>" for t in row) + "</tr>" for row in rows)
    html_ = (f'<h2>{html.escape(title)}</h2><table class="{css}"><thead><tr>{head}</tr></thead>'
             f"<tbody>{cells}</tbody></table>")
    return "\n".join(md) + "\n", html_


def write_report(project: Project, entries: list[Entry] | None = None, board: BoardConfig | None = None,
                 sections: Sequence[tuple[str, str]] = (), judges: Sequence[str] | None = None) -> dict[str, Path]:
    """Write reports/leaderboard.{md,csv,html} and the chart PNGs; return their paths. Without `entries`, the
    leaderboard of the default judge configuration. `sections` are extra (Markdown, HTML) parts appended to the
    report, e.g. `side_by_side(...)`. `judges`: the jury the board ranks, when not the configured one (for
    whether it was calibrated against the arena's votes)."""
    if entries is None:
        entries, board = leaderboard(project), board or board_config(project)
    out = project.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    charts = {"win rate per candidate": plot_win_rates(entries, out / "win_rates.png"),
              "loss curves": plot_losses(entries, out / "loss_curves.png"),
              "win rate against lora_r, epoch and dataset": plot_win_rate_against(entries, out / "win_rate_vs.png")}
    paths = {"markdown": out / "leaderboard.md", "csv": out / "leaderboard.csv", "html": out / "leaderboard.html"}
    # + the arena's final score and whether the jury was calibrated against the votes, once voted
    parts = [p for p in [*sections, report_sections(project), jury_section(project, judges)] if p]
    paths["markdown"].write_text("\n".join([markdown(entries, board), *(md for md, _ in parts)]))
    write_csv(entries, paths["csv"])
    paths["html"].write_text(html_report(project, entries, charts, extra="".join(h for _, h in parts), board=board))
    return paths | {name: p for name, p in charts.items() if p}
