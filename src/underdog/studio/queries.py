"""Every read the studio's pages make, in one place: through the stages' own functions, tables and files.

    states = stage_states(project)            # the overview's one line per stage
    page = examples(project, "base", q="fee", page=2)
    rows = run_rows(project, sort="win_rate", descending=True, q="", status="done")
    detail = judging(project, result_id, only="disagree")

Nothing here writes. Dataset versions and eval sets are immutable, so what is read from their files is kept
(`Cache`, keyed by the version's content hash); everything else is read on each request, so a page always shows
the store as it is.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from underdog.arena import store as arena_tables
from underdog.arena.standings import Standings, reward_text, standings
from underdog.autopilot.journal import Journal
from underdog.autopilot.names import PREFIX as AUTOPILOT
from underdog.data.curation import DECISIONS_FILE, REPORT_FILE
from underdog.data.dataset import list_datasets, load_manifest, read_version
from underdog.data.preferences import KIND as PREFERENCE
from underdog.data.preferences import PreferencePair, load_preferences
from underdog.data.stats import recipe_summary
from underdog.data.topics import load_topics, topics_path
from underdog.evaluate import store as eval_tables
from underdog.evaluate.evalset import Question, list_evalsets, load_evalset
from underdog.evaluate.judge import combine_orders, majority, winner
from underdog.evaluate.judges.facts import is_refusal, states
from underdog.evaluate.jury_status import JudgeRow, JuryStatus, calibrations_of, disagreement_text, jury_status
from underdog.evaluate.jury_status import votes_version as calibration_votes_version
from underdog.evaluate.leaderboard import UNKNOWN_CONFIG, Entry, board_config, leaderboard, recommend
from underdog.layout import MANIFEST_FILE
from underdog.locking import current_holder, describe
from underdog.project import Project
from underdog.train import store as train_tables
from underdog.train.runs import RunManifest, has_run, load_run, run_summaries

PER_PAGE = 50


class Cache(OrderedDict):
    """A few parsed immutable versions, least recently used dropped first."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key: Any, make: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        self[key] = value = make()
        while len(self) > self.size:
            self.popitem(last=False)
        return value


_versions = Cache(4)  # dataset name + hash -> [Row]
_decisions = Cache(2)
_standings: dict[str, Any] = {}
_jury_check: dict[str, Any] = {}


@dataclass
class Paged:
    items: list[Any]
    total: int  # items matching, over all pages
    page: int
    pages: int


def paged(items: list[Any], page: int, per_page: int = PER_PAGE) -> Paged:
    pages = max(1, -(-len(items) // per_page))
    page = min(max(page, 1), pages)
    return Paged(items[(page - 1) * per_page: page * per_page], len(items), page, pages)


# -- overview ---------------------------------------------------------------------------------------------------
@dataclass
class StageState:
    stage: str
    summary: str
    href: str
    done: bool


def stage_states(project: Project) -> list[StageState]:
    """One line per stage: what it has made so far."""
    topics = _topic_count(project)
    datasets = [load_manifest(project.root, n) for n in list_datasets(project.root)]
    evalsets = list_evalsets(project)
    runs = run_summaries(project, project.store)
    judgings, judgments = eval_tables.counts(project.store)
    grids = tune_grids(project)
    votes, _ = arena_tables.votes_version(project.store)
    candidates = arena_tables.item_candidates(project.store)
    decisions = Journal(project.path(AUTOPILOT)).entries("decision")
    by_status = Counter(m["status"] for m in runs)
    pairs = sum(m.kind == PREFERENCE for m in datasets)
    preference_runs = sum(m["hyperparameters"].get("method", "sft") != "sft" for m in runs)
    simulated = simulated_votes(project)
    return [
        StageState("topics", f"{topics} topics" if topics else "none yet", "/data", bool(topics)),
        StageState("datasets", f"{len(datasets)} versions, {sum(m.count for m in datasets):,} examples"
                   + (f" ({_count(pairs, 'preference version')})" if pairs else ""), "/data", bool(datasets)),
        StageState("eval sets", _count(len(evalsets), "set") + (f" ({', '.join(evalsets[-3:])})" if evalsets else ""),
                   "/evalsets", bool(evalsets)),
        StageState("runs", (", ".join(f"{n} {s}" for s, n in by_status.most_common()) or "none yet")
                   + (f" ({preference_runs} preference-trained)" if preference_runs else ""), "/runs", bool(runs)),
        StageState("judgments", f"{_count(judgings, 'judging')}, {_count(judgments, 'verdict')}", "/judges",
                   bool(judgings)),
        StageState("tuning", _count(len(grids), "prompt grid") if grids else "none yet", "/final", bool(grids)),
        StageState("arena", f"{len(candidates)} candidates, {votes:,} votes"
                   + (f" ({simulated:,} SIMULATED)" if simulated else ""), "/final", bool(votes)),
        StageState("autopilot", _count(len(decisions), "decision") if decisions else "not run", "/autopilot",
                   bool(decisions)),
    ]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _topic_count(project: Project) -> int:
    return len(load_topics(project)) if topics_path(project).exists() else 0


@dataclass
class Spend:
    rows: list[dict[str, Any]]  # stage, role, calls, paid, cost_usd, budget_usd
    total_usd: float
    budget_usd: float | None
    possibly_usd: float = 0.0  # estimates of calls sent and never recorded (counted in budgets: Store.spending)
    pending: list[dict[str, Any]] | None = None  # Store.pending_calls: pid, alive, stage, model, calls, estimate_usd


def spend(project: Project) -> Spend:
    """Calls and dollars per stage and role, against the project's and each stage's budget, and the calls a
    process sent and never recorded (in flight, or possibly paid when the process is gone), as `underdog usage`
    and the budgets count them."""
    budgets = project.config.stage_budgets_usd
    rows = [dict(r) | {"budget_usd": budgets.get(r["stage"])} for r in project.store.spend()]
    _, possibly = project.store.spending()
    return Spend(rows, sum(r["cost_usd"] for r in rows), project.config.budget_usd, possibly,
                 project.store.pending_calls())


def next_step(project: Project, states: list[StageState], entries: list[Entry]) -> tuple[str, str]:
    """(command, why): the next command that makes sense for the project as it stands."""
    done = {s.stage: s.done for s in states}
    best = recommend(entries)
    datasets = list_datasets(project.root)
    if not done["topics"] and not datasets:
        return "underdog topics --size 40", "no topics yet: the generator needs them"
    if not done["eval sets"]:
        return "underdog evalset generate", "no held-out questions to judge runs on"
    if not datasets:
        return "underdog generate -q 6", "no training data yet"
    if not done["runs"]:
        return f"underdog train -d {datasets[-1]}", "no training run yet"
    unjudged = [e.name for e in entries if e.kind == "run" and e.status == "done" and e.result is None]
    if unjudged:
        return f"underdog judge {unjudged[-1]}", "a finished run has not been judged"
    if best is not None and not done["tuning"]:
        return f"underdog tune-prompt {best.name} -t 0.3 -t 0.7", "tune the recommended run's prompt and sampling"
    if best is not None and not done["arena"]:
        return f"underdog arena add {best.name} --name mine", "let people vote between the best run and the reference"
    if done["arena"] and (hint := after_votes(project, datasets, best)) is not None:
        return hint
    return "underdog leaderboard", "write the report"


def after_votes(project: Project, datasets: list[str], best: Entry | None) -> tuple[str, str] | None:
    """What the arena's votes call for next: more votes, a calibration of the judges against them, preference
    pairs from them, a preference run on the pairs; None when all was done."""
    from underdog.evaluate.calibrate import MIN_VOTES  # lazy: it imports scikit-learn

    check = jury_check(project)
    if check is None:
        return None
    decisive = check.people.decisive
    if decisive < MIN_VOTES:
        return ("underdog arena serve", f"{decisive} decisive votes: calibrating the judges against the people "
                f"needs {MIN_VOTES}")
    if check.calibration is None or not check.calibration.current:
        return "underdog calibrate", f"{decisive} decisive votes not yet used to check the judges against the people"
    preferences = [n for n in datasets if load_manifest(project.root, n).kind == PREFERENCE]
    if not preferences:
        return ("underdog preferences --votes --name prefs",
                "turn the votes (or the jury's verdicts) into preference pairs")
    runs = run_summaries(project, project.store)
    if best is not None and not any(r["hyperparameters"].get("method", "sft") != "sft" for r in runs):
        return (f"underdog train --method dpo -d {preferences[-1]} --from {best.name}",
                "preference-train the recommended run on the pairs")
    return None


def simulated_votes(project: Project) -> int:
    """Votes cast by the simulated voter panel (arena/simulated_panel.py), not by people."""
    return int(project.store.query("SELECT COUNT(*) FROM arena_votes WHERE simulated = 1")[0][0])


def finished_runs(project: Project) -> list[str]:
    """The ids of the runs that finished, newest first."""
    return [r["id"] for r in run_summaries(project, project.store) if r["status"] == "done"][::-1]


def lock_holder(project: Project) -> str | None:
    """Who is writing to the project now (`underdog train ... (pid 4242, since 07:31:02)`), or None."""
    holder = current_holder(project.root)
    return describe(holder) if holder else None


# -- data ---------------------------------------------------------------------------------------------------------
@dataclass
class DatasetNode:
    name: str
    kind: str
    count: int
    parents: list[str]
    recipe: str
    counts: dict[str, Any]
    created: float
    curated: bool  # has per-example curation decisions


def lineage(project: Project) -> list[DatasetNode]:
    """Every dataset version with its parents, counts and recipe, oldest first."""
    nodes = []
    for name in list_datasets(project.root):
        m = load_manifest(project.root, name)
        parents = m.parent if isinstance(m.parent, list) else [m.parent] if m.parent else []
        nodes.append(DatasetNode(name, m.kind, m.count, parents, recipe_summary(m.recipe), m.counts, m.created,
                                 (project.dataset_dir(name) / DECISIONS_FILE).exists()))
    return nodes


@dataclass(frozen=True)
class Row:
    """One example as shown: a supervised example, or a preference pair (`rejected` set)."""

    id: str
    question: str
    answer: str
    rejected: str | None
    tags: str  # topic / slice / source
    haystack: str  # lower-cased text searched


def version_rows(project: Project, name: str) -> list[Row]:
    """The examples of dataset version `name`, parsed once per version (versions never change)."""
    manifest = load_manifest(project.root, name)
    if manifest.kind == PREFERENCE:
        return _versions.get_or((str(project.root), name, manifest.sha256),
                                lambda: [_pair_row(p) for p in load_preferences(project.root, name)])
    return _versions.get_or((str(project.root), name, manifest.sha256),
                            lambda: [_row(record) for _, record in read_version(project.root, name, manifest.kind)])


def _pair_row(pair: PreferencePair) -> Row:
    """A preference pair as shown: its prompt's last question, chosen and rejected, where it came from."""
    meta = pair.meta
    tags = " · ".join([*(str(meta[k]) for k in ("source", "topic") if meta.get(k)),
                       *([f"weight {pair.weight:g}"] if "weight" in meta else [])])
    text = " ".join([pair.question, pair.chosen, pair.rejected, tags]).lower()
    return Row(pair.id, pair.question, pair.chosen, pair.rejected, tags, text)


def _row(record: dict[str, Any]) -> Row:
    meta = record.get("meta") or {}
    tags = " · ".join(str(meta[k]) for k in ("topic", "slice", "source") if meta.get(k))
    if "messages" in record:
        messages = record["messages"]
        question = next((m["content"] for m in messages if m.get("role") == "user"), "")
        answer = next((m["content"] for m in reversed(messages) if m.get("role") == "assistant"), "")
        rejected = None
    else:  # a preference pair
        question = next((m["content"] for m in reversed(record.get("prompt") or []) if m.get("role") == "user"), "")
        answer, rejected = str(record.get("chosen", "")), str(record.get("rejected", ""))
    text = " ".join([question, answer, rejected or "", tags]).lower()
    return Row(str(record.get("id", "")), question, answer, rejected, tags, text)


def examples(project: Project, name: str, q: str = "", page: int = 1) -> Paged:
    """A page of dataset version `name`'s examples whose text contains every word of `q` (any case)."""
    rows = version_rows(project, name)
    words = q.lower().split()
    if words:
        rows = [r for r in rows if all(w in r.haystack for w in words)]
    return paged(rows, page)


@dataclass
class Curation:
    report: dict[str, Any]  # curation.json: input, kept, removed, fixed
    counts: list[tuple[str, int]]  # decision -> examples, most first
    page: Paged  # of decision dicts: id, question, decision, detail, matched

    @property
    def measures(self) -> list[tuple[str, int]]:
        """The drops that repeat an example or eval question (curation.json's "matches") per similarity measure:
        jaccard (the MinHash passes), cosine (the semantic pass)."""
        return Counter(m.get("measure", "?") for m in self.report.get("matches", [])).most_common()


def curation(project: Project, name: str, decision: str = "", q: str = "", page: int = 1) -> Curation | None:
    """Curation's decisions per example of curated version `name` (None when it was not curated)."""
    folder = project.dataset_dir(name)
    report_path, path = folder / REPORT_FILE, folder / DECISIONS_FILE
    if not report_path.exists():
        return None
    report = json.loads(report_path.read_text(encoding="utf-8"))
    rows = _decisions.get_or((str(folder), path.exists() and path.stat().st_mtime_ns), lambda: _read_jsonl(path))
    counts = Counter(r["decision"] for r in rows).most_common()
    words = q.lower().split()
    chosen = [r for r in rows if (not decision or r["decision"] == decision)
              and all(w in r["question"].lower() for w in words)]
    return Curation(report, counts, paged(chosen, page))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class EvalSetInfo:
    name: str
    count: int
    with_facts: int
    probes: int
    with_reference: int
    source: str
    questions: list[Question]


def evalsets(project: Project) -> list[EvalSetInfo]:
    return [evalset(project, name) for name in list_evalsets(project)]


def evalset(project: Project, name: str) -> EvalSetInfo:
    questions = load_evalset(project, name)
    manifest = json.loads((project.evalset_dir(name) / MANIFEST_FILE).read_text())
    return EvalSetInfo(name, len(questions), sum(bool(q.facts) for q in questions),
                       sum(q.expect == "refusal" for q in questions), sum(bool(q.reference) for q in questions),
                       str(manifest.get("source", "")), questions)


# -- runs ---------------------------------------------------------------------------------------------------------
RUN_COLUMNS = {"run": "run", "status": "status", "dataset": "dataset", "epoch": "epochs", "learning_rate": "lr",
               "lora_r": "r", "lora_alpha": "alpha", "train_loss": "train loss", "eval_loss": "eval loss",
               "overfit": "overfit", "fact_recall": "fact recall", "win_rate": "win rate [95% CI]",
               "created": "started"}  # sort key -> header


def run_rows(project: Project, board: JudgeBoard, sort: str = "created", descending: bool = True, q: str = "",
             status: str = "") -> list[dict[str, Any]]:
    """The runs table: each run's hyperparameters, losses, overfit flag and judged numbers (under
    `judge_board`'s configuration), filtered by `q` (in its id or dataset) and `status`, sorted by `sort`."""
    rows = []
    created = {r["id"]: r["created"] for r in run_summaries(project, project.store)}
    for e in board.entries:
        if e.kind != "run" or (status and e.status != status) or (q and q.lower() not in
                                                                   f"{e.name} {e.dataset}".lower()):
            continue
        hp, result = e.hyperparameters, e.result or {}
        rows.append({"run": e.name, "status": e.status, "dataset": e.dataset, "epoch": hp.get("epoch"),
                     "learning_rate": hp.get("learning_rate"), "lora_r": hp.get("lora_r"),
                     "method": hp.get("method", "sft"), "parent": hp.get("from_run"),
                     "lora_alpha": hp.get("lora_alpha"), "train_loss": e.metrics.get("train_loss"),
                     "eval_loss": e.metrics.get("eval_loss"), "overfit": e.overfit,
                     "overfit_reason": e.overfit_reason, "fact_recall": e.fact_recall, "win_rate": e.win_rate,
                     "ci": e.ci, "result_id": result.get("id"), "created": created.get(e.name)})
    key = sort if sort in RUN_COLUMNS else "created"
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]
    return sorted(present, key=lambda r: _sortable(r[key]), reverse=descending) + missing


def _sortable(value: Any) -> Any:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def run(project: Project, run_id: str) -> RunManifest | None:
    """Run `run_id`'s manifest; None for no such run (or a name that is not a run's folder name)."""
    if not run_id or run_id.startswith(".") or "/" in run_id or "\\" in run_id:
        return None
    return load_run(project, run_id) if has_run(project, run_id) else None


Curve = dict[str, list[tuple[float, float]]]  # split ("train" / "eval") -> (step, loss) points


def curve(project: Project, run_id: str) -> Curve:
    """A run's logged losses as stored so far (live while it trains), else its manifest's history."""
    points: Curve = {"train": [], "eval": []}
    for r in train_tables.metrics_of(project.store, run_id):
        if r["loss"] is not None:
            points.setdefault(r["split"], []).append((r["step"], r["loss"]))
    if not any(points.values()) and (m := run(project, run_id)):
        for h in m.history:
            split, key = ("eval", "eval_loss") if "eval_loss" in h else ("train", "loss")
            if h.get(key) is not None:
                points[split].append((h["step"], h[key]))
    return points


def rewards(project: Project, run_id: str) -> dict[str, Curve]:
    """A preference run's logged reward margin and accuracy ("margin" / "accuracy" -> split -> points), as
    stored so far, else from its manifest's history; empty curves for a supervised run."""
    out: dict[str, Curve] = {"margin": {"train": [], "eval": []}, "accuracy": {"train": [], "eval": []}}
    for r in train_tables.metrics_of(project.store, run_id):
        for name in out:
            if r[f"reward_{name}"] is not None:
                out[name].setdefault(r["split"], []).append((r["step"], r[f"reward_{name}"]))
    if not any(p for c in out.values() for p in c.values()) and (m := run(project, run_id)):
        for h in m.history:
            split = "eval" if "eval_loss" in h else "train"
            for name in out:
                if h.get(f"reward_{name}") is not None:
                    out[name][split].append((h["step"], h[f"reward_{name}"]))
    return out


def curve_version(project: Project, run_id: str) -> tuple[Any, ...]:
    """Changes whenever the run logs a loss or its manifest (status, metrics) is rewritten."""
    manifest = project.run_dir(run_id) / MANIFEST_FILE
    return train_tables.metrics_version(project.store, run_id), manifest.exists() and manifest.stat().st_mtime_ns


def run_judgings(project: Project, run_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in eval_tables.judgings_of_candidate(project.store, run_id)]


# -- answers and judges -----------------------------------------------------------------------------------------
@dataclass
class JudgeBoard:
    configs: list[dict[str, Any]]  # every configuration: config, reference, evalset, count, judges
    chosen: dict[str, Any] | None  # the one ranked
    entries: list[Entry]  # every run (judged under it or not) and the baselines judged under it, best first


def judge_board(project: Project, config: str = "", reference: str = "") -> JudgeBoard:
    """The leaderboard under one judge configuration against one reference: the one asked for, else the
    leaderboard's default (the configured jury against `evaluate.reference`), else the newest one recorded (a
    project judged with other settings, such as the demo's, still shows its numbers). Runs are read from the
    store's mirror of their manifests."""
    configs = [dict(r) | {"judges": _judges_of(r["judge_config"])}
               for r in eval_tables.all_judge_configs(project.store, UNKNOWN_CONFIG)]
    runs = run_summaries(project, project.store)
    if not configs:
        return JudgeBoard([], None, leaderboard(project, runs=runs))
    wanted = (config, reference) if config else (board_config(project).config_id,
                                                 project.config.evaluate.reference)
    chosen = next((c for c in configs if (c["config"], c["reference"]) == wanted
                   or (not wanted[1] and c["config"] == wanted[0])), configs[-1])
    entries = leaderboard(project, chosen["reference"], chosen["evalset"], config_id=chosen["config"], runs=runs)
    return JudgeBoard(configs, chosen, entries)


def _judges_of(judge_config: str | None) -> str:
    if not judge_config:
        return "?"
    names = []
    for member in json.loads(judge_config).get("judges", []):
        try:
            spec = json.loads(member)
            names.append(f"{spec.get('provider')}:{spec.get('model')}" if isinstance(spec, dict) else str(member))
        except json.JSONDecodeError:
            names.append(member.split(":")[0])
    return ", ".join(names)


@dataclass
class Vote:
    judge: str
    ab: str  # verdict with the candidate's answer first ("A": the candidate)
    ba: str  # ... second ("A": the reference)
    outcome: str  # candidate / reference / tie / error (both orders combined)

    @property
    def favours(self) -> tuple[str, str]:
        """Whom each order's verdict favours: candidate / reference / tie / error."""
        return winner("ab", self.ab), winner("ba", self.ba)


@dataclass
class FactCheck:
    fact: str
    candidate: bool
    reference: bool


@dataclass
class QuestionView:
    id: str
    question: str
    candidate: str
    reference: str
    outcome: str  # the jury's: candidate / reference / tie / error / abstain
    votes: list[Vote]
    facts: list[FactCheck]
    probe: bool  # a refusal probe
    refused: tuple[bool, bool]  # (candidate, reference) declined
    disagree: bool  # the judges' outcomes differ

    @property
    def marks(self) -> list[str]:
        """The facts to highlight in the answers."""
        return [f.fact for f in self.facts]


FILTERS = {"": "all questions", "disagree": "judges disagree", "lost": "lost to the reference",
           "refusal": "refusal probes"}


@dataclass
class Judging:
    result: dict[str, Any]
    judges: list[str]
    questions: Paged  # of QuestionView
    counts: dict[str, int]  # filter -> questions


def judging(project: Project, result_id: int, only: str = "", page: int = 1) -> Judging | None:
    """One judging, question by question: both answers, every judge's verdict in both orders, facts checked."""
    row = eval_tables.judging(project.store, result_id)
    if row is None:
        return None
    result = dict(row)
    evalset = result["evalset"]
    ours = {a["question_id"]: a for a in eval_tables.answers_of(project.store, result["candidate_id"], evalset)}
    theirs = {a["question_id"]: a for a in eval_tables.answers_of(project.store, result["reference_id"], evalset)}
    truth = {q.id: q for q in load_evalset(project, evalset)} if evalset in list_evalsets(project) else {}
    verdicts: dict[str, dict[str, dict[str, str]]] = {}
    for j in eval_tables.judgments_of(project.store, result_id):
        verdicts.setdefault(j["question_id"], {}).setdefault(j["judge"], {})[j["judge_order"]] = j["verdict"]
    views = [_question_view(qid, ours.get(qid), theirs.get(qid), truth.get(qid), votes)
             for qid, votes in verdicts.items()]
    tests = {"": lambda v: True, "disagree": lambda v: v.disagree, "lost": lambda v: v.outcome == "reference",
             "refusal": lambda v: v.probe}
    counts = {name: sum(map(test, views)) for name, test in tests.items()}
    chosen = [v for v in views if tests.get(only, tests[""])(v)]
    return Judging(result, json.loads(result["judges"]), paged(chosen, page, 20), counts)


def _question_view(qid: str, ours: Any, theirs: Any, truth: Question | None,
                   votes: dict[str, dict[str, str]]) -> QuestionView:
    mine, other = (ours["answer"] if ours else ""), (theirs["answer"] if theirs else "")
    shown = [Vote(judge, v.get("ab", "-"), v.get("ba", "-"),
                  combine_orders(winner("ab", v.get("ab", "error")), winner("ba", v.get("ba", "error"))))
             for judge, v in votes.items()]
    decided = {v.outcome for v in shown if v.outcome not in ("error", "abstain")}
    facts = [FactCheck(f, states(mine, f), states(other, f)) for f in (truth.facts or [])] if truth else []
    return QuestionView(qid, (ours or theirs or {"question": truth.question if truth else qid})["question"], mine,
                        other, majority([v.outcome for v in shown]), shown, facts,
                        bool(truth and truth.expect == "refusal"), (is_refusal(mine), is_refusal(other)),
                        len(decided) > 1)


# -- final round and autopilot ------------------------------------------------------------------------------------
@dataclass
class TuneGrid:
    model: str
    prompts: list[str]
    params: list[tuple[str, str]]  # (temperature, top_p) columns
    cells: dict[tuple[str, tuple[str, str]], dict[str, str]]  # (prompt, params) -> the CSV row
    best: dict[str, str]

    def win_rates(self) -> list[list[float | None]]:
        """Win rate per prompt (rows) and (temperature, top_p) (columns); None for a cell not run."""
        return [[float(self.cells[(p, c)]["win_rate"]) if (p, c) in self.cells else None for c in self.params]
                for p in self.prompts]


def tune_grids(project: Project) -> list[TuneGrid]:
    """Every `tune-prompt` grid written under reports/tune/ (results.csv, ranked)."""
    grids = []
    for path in sorted(project.report_dir("tune").glob("*/results.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            continue
        prompts = list(dict.fromkeys(r["prompt"] for r in rows))
        params = sorted(dict.fromkeys((r["temperature"], r["top_p"]) for r in rows), key=lambda p: tuple(
            map(float, p)))
        grids.append(TuneGrid(path.parent.name, prompts, params,
                              {(r["prompt"], (r["temperature"], r["top_p"])): r for r in rows}, rows[0]))
    return grids


def arena_standings(project: Project) -> Standings | None:
    """The arena's standings, computed again only when votes or answers on show changed (the bootstrap is the
    slow part); None before the first vote."""
    version = (str(project.root), arena_tables.votes_version(project.store), arena_tables.items_version(
        project.store))
    if _standings.get("version") != version:
        cfg = project.config.arena
        table = standings(project.store, cfg.weights, cfg.bootstrap_rounds) if version[1][0] else None
        _standings.update(version=version, table=table)
    return _standings["table"]


@dataclass
class VoteSource:
    source: str  # arena | import:FILE | simulated:PANEL ...
    simulated: bool
    votes: int


def vote_sources(project: Project) -> list[VoteSource]:
    """The arena's votes per source (voting page, imported file, simulated panel), most first."""
    rows = project.store.query("SELECT COALESCE(source, 'arena') AS source, simulated, COUNT(*) AS votes "
                               "FROM arena_votes GROUP BY 1, 2 ORDER BY 3 DESC, 1")
    return [VoteSource(r["source"], bool(r["simulated"]), int(r["votes"])) for r in rows]


def rewards_text(table: Standings) -> list[str]:
    """What the voters reward (style control), one line per style feature, as the report words it."""
    return [reward_text(name, e) for name, e in table.rewards.items()]


@dataclass
class CalibrationView:
    """The newest `underdog calibrate` (evaluate/calibrate.py), as recorded in `calibrations`."""

    id: int
    created: float
    votes: int  # votes it was computed on
    rows: list[JudgeRow]  # each judge alone, `people` (held out), the configured jury
    jury: dict[str, Any] | None  # the jury it chose: judges, weights, held_out, low, high, votes
    applied: bool  # written to underdog.yaml with --apply
    current: bool  # the votes are the ones it was computed on

    @property
    def warnings(self) -> list[str]:
        """`underdog calibrate`'s warning for each judge that disagrees with the people beyond chance."""
        return [disagreement_text(r) for r in self.rows if r.disagrees]


@dataclass
class PeopleView:
    """The `people` judge on the current votes: its stored fit, or how many decisive votes it still needs."""

    decisive: int
    needed: int  # evaluate.people_min_votes
    model: dict[str, Any] | None  # people_models row fitted on the current votes: votes, decisive, accuracy...


@dataclass
class JuryCheck:
    calibration: CalibrationView | None
    status: JuryStatus  # the configured jury: calibrated or not, warnings
    people: PeopleView
    simulated: int  # votes of the simulated panel among the current votes


def jury_check(project: Project) -> JuryCheck | None:
    """The judges checked against the people: the newest calibration, whether the configured jury is a calibrated
    one, and the `people` judge's held-out accuracy (read from the stored fit; nothing is fitted here). None
    before the first vote. Read again only when the votes, calibrations, fits or underdog.yaml changed."""
    if not arena_tables.any_vote(project.store):
        return None
    version = (str(project.root), arena_tables.votes_version(project.store),
               [tuple(r) for r in project.store.query("SELECT id, applied FROM calibrations")],
               tuple(project.store.query("SELECT COUNT(*), MAX(created) FROM people_models")[0]),
               project.config_path.exists() and project.config_path.stat().st_mtime_ns)
    if _jury_check.get("version") != version:  # hashing every vote's texts is the slow part: once per change
        _jury_check.update(version=version, check=_read_jury_check(project))
    return _jury_check["check"]


def _read_jury_check(project: Project) -> JuryCheck:
    from underdog.evaluate.judges.people import people_version  # lazy: it imports scikit-learn

    votes = arena_tables.load_votes(project.store)
    found = calibrations_of(project)
    view = None
    if found:
        c = found[0]
        judges = [JudgeRow.from_json(r) for r in c["judges"]]
        view = CalibrationView(c["id"], c["created"], c["votes"], judges, c["jury"], bool(c["applied"]),
                               c["votes_version"] == calibration_votes_version(votes))
    row = eval_tables.people_model(project.store, people_version(project, votes))
    fitted = PeopleView(sum(v.outcome != "tie" for v in votes), project.config.evaluate.people_min_votes,
                        dict(row) if row else None)
    return JuryCheck(view, jury_status(project), fitted, sum(v.simulated for v in votes))


@dataclass
class Autopilot:
    started: float | None
    planned: list[dict[str, Any]]  # stage, title, usd reserved, spent since the start
    rungs: list[dict[str, Any]]  # trial, rung, run_id, status, score, note
    decisions: list[dict[str, Any]]


def autopilot(project: Project) -> Autopilot:
    """The autopilot's journal: each stage's reservation against what it spent, its rungs, its decisions."""
    journal = Journal(project.path(AUTOPILOT))
    events = journal.entries("event")
    start = next((e["time"] for e in events if e.get("step") == "start"), None)
    spent = Counter()
    for r in project.store.spend(since=start or 0.0):
        spent[r["stage"]] += r["cost_usd"]
    planned = [{"stage": e["stage"], "title": e["title"], "usd": e["usd"], "spent": spent.get(e["stage"], 0.0)}
               for e in events if e.get("step") == "reserve"]
    rungs = [e for e in events if e.get("step") == "rung"]
    return Autopilot(start, planned, rungs, journal.entries("decision"))


def autopilot_version(project: Project) -> tuple[Any, ...]:
    path = Journal(project.path(AUTOPILOT)).path
    return (path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else (0, 0)

