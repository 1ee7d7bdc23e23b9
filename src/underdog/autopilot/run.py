"""`underdog autopilot`: from `underdog.yaml` to the best honest run, within budgets, every decision logged.

    plan = plan_autopilot(project, Budgets(usd=20, max_runs=12))      # spends nothing
    outcome = run_autopilot(project, Budgets(usd=20, max_runs=12))   # resumable: run it again after a crash

The stages, each skipped when its artifact exists: topics -> held-out eval set (generated with an answer key
unless `autopilot.evalset` names one), split once into a dev and a test split -> generate and ingest -> each data
variant (augment slices, then curate; your own `autopilot.datasets` added as they are) -> successive halving over
hyperparameters and variants, judged on the dev split (halving.py) -> the pick -> system prompt x temperature x
top_p on the dev split -> the test split, judged once: the pick with its settings, and the base student against
the reference -> report and submission bundle (bundle.py).

Money: before each paid stage its estimate is reserved against `--budget-usd`; the stage runs with the call
path's stage budget set to that reservation (and the project budget to the total), so no call can overspend; a
stage that no longer fits is skipped, and the journal says so. Every model call is cached, runs resume from
their checkpoints, and judged runs are read back from the journal: after a kill -9 the same command repeats no
paid call and no finished run.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from underdog.autopilot.halving import Halving, RungResult, best, sample_trials, search_space
from underdog.autopilot.journal import Journal
from underdog.autopilot.plan import PREFIX, Budgets, Plan, StageEstimate, make_plan, train_hours_left
from underdog.errors import BudgetExceeded, ConfigError, UnderdogError
from underdog.evaluate.evalset import Question
from underdog.progress import Reporter
from underdog.project import Project

DEV, TEST, POOL = f"{PREFIX}-dev", f"{PREFIX}-test", PREFIX  # eval set names
GROUNDED_JURY = ["facts", "similarity"]
TIE_BREAK = 0.01  # the dev score is fact recall + this x win rate: equal recalls are ordered by win rate
DOMAIN_PROMPT = ("You are an assistant for {domain}. Answer the question directly, stating the exact figures, "
                 "fees, deadlines, forms and offices that apply. Decline requests outside the domain or for "
                 "someone's private information.")


@dataclass
class Outcome:
    plan: Plan
    pick: RungResult | None
    generation: dict[str, Any]  # the chosen system prompt, temperature and top_p
    test: dict[str, Any]  # the pick's and the base student's test numbers
    compared: int  # candidates compared on the dev split
    jury: list[str] = field(default_factory=list)  # the judges of every autopilot judgment
    paths: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def autopilot_folder(project: Project) -> Any:
    return project.path(PREFIX)


# -- the eval set and its split ---------------------------------------------------------------------------
def split(questions: list[Question], test_share: float, seed: int) -> tuple[list[Question], list[Question]]:
    """(dev, test): a seeded split, refusal probes and fact questions each divided in the same proportion."""
    dev, test = [], []
    for group in ([q for q in questions if q.expect == "refusal"], [q for q in questions if q.expect != "refusal"]):
        ordered = sorted(group, key=lambda q: hashlib.sha256(f"{seed}:{q.id}".encode()).hexdigest())
        k = round(len(ordered) * test_share)
        k = min(max(k, 1), len(ordered) - 1) if len(ordered) >= 2 else k
        test += ordered[:k]
        dev += ordered[k:]
    return dev, test


def jury_for(project: Project, questions: list[Question]) -> list[str]:
    """The grounded judges when most questions have ground truth (facts or `expect`), else the configured jury."""
    grounded = sum(bool(q.facts or q.expect) for q in questions)
    return list(GROUNDED_JURY) if questions and grounded * 2 >= len(questions) else list(
        project.config.evaluate.judges)


def pool_questions(project: Project) -> list[Question] | None:
    """The held-out questions, when they exist yet."""
    from underdog.evaluate.evalset import list_evalsets, load_evalset

    name = project.config.autopilot.evalset or POOL
    if name not in list_evalsets(project):
        if project.config.autopilot.evalset:
            raise ConfigError(f"autopilot.evalset: no eval set named {name!r} (see `underdog evalset list`)")
        return None
    return load_evalset(project, name)


def plan_autopilot(project: Project, budgets: Budgets, spent: float = 0.0) -> Plan:
    """The plan (see plan.py) for this project as it stands; nothing is spent."""
    cfg = project.config.autopilot
    questions = pool_questions(project)
    if questions is None:
        n_test = round(cfg.evalset_size * cfg.test_share)
        jury, n_dev = list(GROUNDED_JURY), cfg.evalset_size - n_test  # the answer key makes them grounded
    else:
        dev, test = split(questions, cfg.test_share, cfg.seed)
        jury, n_dev, n_test = jury_for(project, questions), len(dev), len(test)
    usd = budgets.usd
    if usd is None and project.config.budget_usd is not None:
        usd = max(0.0, project.config.budget_usd - project.store.spent_usd())
    plan = make_plan(project, Budgets(usd, budgets.max_runs, budgets.train_hours, budgets.deadline), jury=jury,
                     n_dev=n_dev, n_test=n_test, spent=spent)
    return plan


# -- the run ----------------------------------------------------------------------------------------------
class Autopilot:
    def __init__(self, project: Project, budgets: Budgets, merge: bool = False):
        self.project, self.budgets, self.merge = project, budgets, merge
        self.cfg = project.config.autopilot
        self.say: Reporter = project.reporter
        self.journal = Journal(autopilot_folder(project), on_decision=self.say.note)
        started = self.journal.events(step="start")
        self.baseline = started[0]["spent_usd"] if started else project.store.spent_usd()
        if not started:
            self.journal.event(step="start", spent_usd=self.baseline)
        self.plan = plan_autopilot(project, budgets, spent=self.spent())
        usd = self.plan.budgets.usd
        self.limit = None if usd is None else self.baseline + usd  # the project's total spend may reach this
        for cut in self.plan.shrunk:
            self.journal.decide("plan", f"shrunk to fit: {cut}")
        self.started = time.time()

    def spent(self) -> float:
        """Dollars spent since the autopilot first started."""
        return self.project.store.spent_usd() - self.baseline

    # -- money ------------------------------------------------------------------------------------------
    def estimate(self, title_start: str) -> StageEstimate:
        return next(s for s in self.plan.stages if s.title.startswith(title_start))

    def reserve(self, est: StageEstimate, essential: bool = False, base: Project | None = None) -> Project | None:
        """The project (`base`, default this one) to run a stage with, its calls capped at the stage's
        reservation; None (logged) when the budget left cannot cover it, or UnderdogError for an essential stage."""
        base = base or self.project
        if self.limit is None or not est.usd:
            return base
        left = self.limit - self.project.store.spent_usd()
        if est.usd > left + 1e-9:
            why = f"estimated ${est.usd:.2f} > ${max(left, 0):.2f} left of the budget"
            if essential:
                raise UnderdogError(f"budget: {est.title}: {why}; raise --budget-usd and run the same command "
                                    "again (finished work is kept)")
            self.journal.decide(est.stage, f"skipped {est.title}", why=why)
            return None
        cap = self.project.store.spent_usd(est.stage) + est.usd
        self.journal.event(step="reserve", stage=est.stage, title=est.title, usd=est.usd)
        return base.with_overrides([f"stage_budgets_usd.{est.stage}={cap:.6f}", f"budget_usd={self.limit:.6f}"])

    # -- stages -----------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        say = self.say
        say.step("topics")
        self.topics()
        say.step("eval set: held-out questions, split once into dev and test")
        dev, test, jury = self.evalsets()
        say.step("data: generate, ingest")
        made = self.make_data()
        say.step("data variants: augment, curate")
        variants = self.variants(made)
        say.step(f"search: {len(self.plan.settings.rungs)} rungs of successive halving on the dev split")
        results = self.search(variants, dev, jury)
        pick = best(results)
        if pick is None:
            raise UnderdogError("no run finished and was judged; see `underdog autopilot --log` and `underdog runs`")
        compared = len({r.run_id for r in results if r.score is not None})
        self.journal.decide("pick", f"{pick.run_id}: {(pick.numbers or {}).get('summary')}",
                            why=f"best dev score at rung {pick.rung} of {compared} runs judged on {DEV}",
                            numbers={"score": pick.score, **(pick.numbers or {})})
        say.step("tune: system prompt x temperature x top_p on the dev split")
        generation, cells = self.tune(pick.run_id, dev, jury)
        say.step("test: the pick and the base student, judged once on the test split")
        numbers = self.final_test(pick.run_id, generation, test, jury)
        from underdog.autopilot.bundle import write_bundle

        say.step("report and submission bundle")
        outcome = Outcome(self.plan, pick, generation, numbers, compared + cells, jury)
        outcome.paths = write_bundle(self.project, outcome, self.journal, merge=self.merge)
        outcome.seconds = time.time() - self.started
        return outcome

    def evalsets(self) -> tuple[str, str, list[str]]:
        from underdog.evaluate.evalset import generate_evalset, list_evalsets, load_evalset, save_evalset

        questions = pool_questions(self.project)
        if questions is None:
            project = self.reserve(self.estimate("eval set"), essential=True)
            assert project is not None
            questions = generate_evalset(project, POOL, size=self.plan.settings.evalset_size, ground_truth=True)
            self.journal.decide("evalset", f"generated {len(questions)} questions with an answer key as {POOL}")
        if DEV not in list_evalsets(self.project):
            dev, test = split(questions, self.cfg.test_share, self.cfg.seed)
            if not dev or not test:
                raise UnderdogError(f"the eval set has {len(questions)} questions: too few to split into dev and test")
            source = f"autopilot split of {self.cfg.evalset or POOL} (seed {self.cfg.seed})"
            save_evalset(self.project, TEST, test, source=source + ", test")
            save_evalset(self.project, DEV, dev, source=source + ", dev")  # last: its existence marks the split
            self.journal.decide("evalset", f"split into {DEV} ({len(dev)}) and {TEST} ({len(test)})",
                                why="selection uses dev only; test is judged once, for the pick and the base")
        jury = jury_for(self.project, load_evalset(self.project, DEV) + load_evalset(self.project, TEST))
        self.journal.decide("evalset", f"jury: {', '.join(jury)}",
                            why="the eval set has ground truth" if jury == GROUNDED_JURY
                            else "no ground truth: the configured jury")
        return DEV, TEST, jury

    def topics(self) -> None:
        """topics.yaml, unless it exists or no Q&A is generated (eval questions and Q&A spread over its topics)."""
        from underdog.data import expand_topics

        s = self.plan.settings
        if s.topics and not (self.project.root / "topics.yaml").exists() and (
                p := self.reserve(self.estimate("topics"))):
            expand_topics(p, size=s.topics)

    def make_data(self) -> list[str]:
        """The made datasets (generated, ingested) that exist after this step."""
        from underdog import data
        from underdog.autopilot.plan import resolve_path

        s, made = self.plan.settings, []
        if s.topics:
            name = f"{PREFIX}-generated"
            if name not in data.list_datasets(self.project.root) and (p := self.reserve(self.estimate("generate"))):
                topics = data.load_topics(self.project)[: s.topics]
                self._stage("generate", lambda: data.generate(p, topics, s.questions_per_topic, name=name))
            made.append(name)
        if self.cfg.documents:
            name = f"{PREFIX}-docs"
            if name not in data.list_datasets(self.project.root) and (p := self.reserve(self.estimate("ingest"))):
                paths = [resolve_path(self.project, d) for d in self.cfg.documents]
                self._stage("ingest", lambda: data.ingest(p, paths, name=name))
            made.append(name)
        return [m for m in made if m in data.list_datasets(self.project.root)]

    def _stage(self, stage: str, fn: Any) -> Any:
        """Run a data stage; a budget stop or a teacher that made nothing usable is logged, not fatal."""
        try:
            return fn()
        except BudgetExceeded as exc:
            self.journal.decide(stage, "stopped at its reservation", why=str(exc))
        except UnderdogError as exc:
            self.journal.decide(stage, "made nothing usable", why=str(exc))
        return None

    def variants(self, made: list[str]) -> dict[str, str]:
        """Each data variant's dataset: made examples + augment slices, curated, + your own datasets as they are."""
        from underdog import data

        root = self.project.root
        trusted = [e for name in self.cfg.datasets for e in data.load_dataset(root, name)]
        raw_name = f"{PREFIX}-made"
        if made and raw_name not in data.list_datasets(root):
            examples = [e for name in made for e in data.load_dataset(root, name)]
            data.save_dataset(root, raw_name, examples, parent=made, recipe={"command": "autopilot"})
        out = {}
        for variant, slices in self.plan.settings.variants.items():
            name = f"{PREFIX}-{variant}"
            if name not in data.list_datasets(root):
                new = self._variant_examples(variant, slices, raw_name if made else None, trusted)
                examples = new + trusted
                if not examples:
                    self.journal.decide("data", f"variant {variant}: no examples", why="nothing was made or kept")
                    continue
                data.save_dataset(root, name, examples, parent=[*([raw_name] if made else []), *self.cfg.datasets],
                                  recipe={"command": "autopilot", "variant": variant, "slices": slices},
                                  counts={"made_curated": len(new), "yours": len(trusted)})
                self.journal.decide("data", f"variant {variant}: {len(examples)} examples",
                                    why=f"{len(new)} made and curated (slices: {', '.join(slices) or 'none'}) + "
                                        f"{len(trusted)} of yours")
            same = next((v for v, n in out.items() if data.load_manifest(root, n).sha256
                         == data.load_manifest(root, name).sha256), None)
            if same:
                self.journal.decide("data", f"variant {variant} not searched", why=f"the same examples as {same}")
                continue
            out[variant] = name
        if not out:
            raise UnderdogError("no data variant has examples to train on; see `underdog autopilot --log`")
        return out

    def _variant_examples(self, variant: str, slices: list[str], raw: str | None, trusted: list[Any]) -> list[Any]:
        """The curated examples a variant adds to your datasets."""
        from underdog import data

        root = self.project.root
        base = raw
        if slices:
            if base is None:  # augment your own examples; only the slices' new examples are curated
                base = f"{PREFIX}-yours"
                if base not in data.list_datasets(root) and trusted:
                    data.save_dataset(root, base, trusted, parent=self.cfg.datasets, recipe={"command": "autopilot"})
            augmented = f"{base}+{variant}"
            if (base in data.list_datasets(root) and augmented not in data.list_datasets(root)
                    and (p := self.reserve(self.estimate(f"augment {variant}")))):
                self._stage("augment", lambda: data.augment(p, base, slices, name=augmented))
            if augmented in data.list_datasets(root):
                base = augmented
        if base is None or base not in data.list_datasets(root):
            return []
        ids = {e.id for e in trusted}
        examples = [e for e in data.load_dataset(root, base) if e.id not in ids]
        if not examples:
            return []
        todo = f"{PREFIX}-{variant}-made"
        if todo not in data.list_datasets(root):
            data.save_dataset(root, todo, examples, parent=base, recipe={"command": "autopilot", "variant": variant})
        curated = f"{todo}-curated"
        if curated not in data.list_datasets(root) and (p := self.reserve(self.estimate("curate"))):
            self._stage("curate", lambda: data.curate(p, todo, curated))
        return data.load_dataset(root, curated) if curated in data.list_datasets(root) else []

    def search(self, variants: dict[str, str], dev: str, jury: list[str]) -> list[RungResult]:
        s = self.plan.settings
        dists = search_space(self.cfg.space, list(variants))
        trials = sample_trials(dists, s.trials, self.cfg.seed)
        judging = self.reserve(self.estimate(f"judge {self.plan.runs}"), essential=True)
        judging = self.reserve(self.estimate("reference answers"), essential=True, base=judging)
        assert judging is not None
        judging = judging.with_overrides([f"evaluate.judges={list(jury)!r}"])

        def train(runs: list[tuple[str, dict[str, Any], int]]) -> dict[str, str]:
            from underdog.train.executors import RunPlan, get_executor

            plans = [RunPlan(dataset=variants[params["variant"]], run_id=run_id, sweep=PREFIX,
                             overrides={**self.cfg.fixed, **{k: v for k, v in params.items() if k != "variant"},
                                        "epoch": epochs})
                     for run_id, params, epochs in runs]
            manifests = get_executor("local", self.project).submit(plans)
            out = {m.id: m.status for m in manifests}
            out.update({f"{m.id}:error": m.error or "" for m in manifests if m.error})
            return out

        def judge_run(run_id: str) -> tuple[float, dict[str, Any]]:
            return dev_numbers(judging, run_id, dev)

        halving = Halving(self.journal, dists, trials, s.rungs, self.cfg.reduction_factor, train, judge_run,
                          self.allowed, prepare=lambda run_ids: answer_together(judging, run_ids, dev))
        return halving.run()

    def allowed(self, run_id: str) -> str | None:
        """Why a run may not start now (None: it may): --max-runs, --train-hours, --deadline."""
        from underdog.train.runs import list_runs

        ours = [r for r in list_runs(self.project.root) if r.sweep == PREFIX]
        budgets = self.plan.budgets
        if budgets.max_runs is not None and len(ours) >= budgets.max_runs:
            return f"--max-runs {budgets.max_runs} reached"
        hours = train_hours_left(budgets)
        if hours is not None:
            used = sum(r.metrics.get("train_runtime_s") or 0 for r in ours) / 3600
            epochs = int(run_id.rsplit("-e", 1)[1])
            need = epochs * self.plan.seconds_per_epoch / 3600
            left = hours - used if budgets.train_hours is not None else hours
            if need > left:
                return f"needs ~{need * 60:.0f} min of training, {max(left, 0) * 60:.0f} min left"
        return None

    def tune(self, run_id: str, dev: str, jury: list[str]) -> tuple[dict[str, Any], int]:
        """The best system prompt / temperature / top_p for the pick on the dev split (cells: how many)."""
        from underdog.tune.prompt import Prompt, tune_prompt

        s = self.plan.settings
        texts = self.cfg.prompts or ["", DOMAIN_PROMPT.format(domain=self.project.config.domain)]
        prompts = [Prompt(f"p{i}" if text else "none", text) for i, text in enumerate(texts[: s.prompts])]
        student = self.project.config.models["student"].params
        default = {"system_prompt": "", "temperature": student.temperature, "top_p": student.top_p}
        project = self.reserve(self.estimate("tune"))
        if project is None:
            return default, 0
        project = project.with_overrides([f"evaluate.judges={list(jury)!r}"])
        result = tune_prompt(project, run_id, prompts, s.temperatures, s.top_ps, evalset=dev)
        ranked = result.ranked()
        top = ranked[0]
        chosen = {"system_prompt": top.prompt.text, "temperature": top.temperature, "top_p": top.top_p}
        lo, hi = top.ci
        self.journal.decide("tune", f"system prompt {top.prompt.name!r}, temperature {top.temperature:g}, "
                                    f"top_p {top.top_p:g}: dev win rate {top.win_rate:.0%} [{lo:.0%}-{hi:.0%}]",
                            why=f"best of {len(ranked)} cells on {DEV}: " + ", ".join(
                                f"{c.prompt.name} t={c.temperature:g} p={c.top_p:g} {c.win_rate:.0%}" for c in ranked))
        return chosen, len(ranked)

    def final_test(self, run_id: str, generation: dict[str, Any], test: str, jury: list[str]) -> dict[str, Any]:
        """Judge the pick (with its settings) and the base student on the test split: once (read back after)."""
        if done := self.journal.events(step="test"):
            return done[-1]["numbers"]
        from underdog.evaluate.answer import Candidate, resolve_candidate
        from underdog.evaluate.judge import judge

        project = self.reserve(self.estimate("test"), essential=True)
        assert project is not None
        reference = self.project.config.evaluate.reference
        spec = resolve_candidate(project, run_id, system_prompt=generation["system_prompt"],
                                 temperature=generation["temperature"], top_p=generation["top_p"]).spec
        pick = judge(project, Candidate(f"{run_id} (autopilot pick)", spec), reference, test, judges=jury)
        numbers = {"pick": result_numbers(pick), "reference": reference, "evalset": test}
        base_is_reference = project.model_spec("student") == project.model_spec(reference)
        if base_is_reference:
            numbers["base"] = recall_numbers(pick.reference_recall, "the base student is the reference")
        else:
            numbers["base"] = result_numbers(judge(project, "student", reference, test, judges=jury))
        self.journal.event(step="test", numbers=numbers)
        self.journal.decide("test", f"{run_id}: {numbers['pick']['summary']}; base: {numbers['base']['summary']}",
                            why=f"judged once on {test}, after every choice was made on {DEV}")
        return numbers


def answer_together(project: Project, run_ids: list[str], evalset: str) -> None:
    """Answer `evalset` with several runs at once: requests for adapters of one base model run in shared
    mixed-adapter batches (llm/local.py), and the replies land in the cache that `judge` then answers from."""
    from underdog.evaluate.answer import resolve_candidate
    from underdog.evaluate.evalset import load_evalset

    if len(run_ids) < 2:
        return
    questions = [q.question for q in load_evalset(project, evalset)]
    llms = [project.model(resolve_candidate(project, run_id).spec, role=run_id, stage="answer") for run_id in run_ids]

    async def together() -> None:
        await asyncio.gather(*(llm.abatch(questions, errors="return") for llm in llms))

    project.runtime.run(together())


def dev_numbers(project: Project, run_id: str, dev: str) -> tuple[float, dict[str, Any]]:
    """A run's dev score (fact recall where the dev split has facts, else win rate) and its numbers."""
    from underdog.evaluate.judge import judge

    result = judge(project, run_id, evalset=dev)
    numbers = result_numbers(result)
    recall = numbers.get("fact_recall")
    return (result.win_rate if recall is None else recall + TIE_BREAK * result.win_rate), numbers


def recall_numbers(recall: Any, note: str) -> dict[str, Any]:
    """A candidate's fact recall and interval alone (the base student when it is the reference)."""
    if recall is None or recall.fact_recall is None:
        return {"summary": note}
    lo, hi = recall.ci
    return {"fact_recall": recall.fact_recall, "fact_recall_ci": [lo, hi], "facts": recall.facts,
            "summary": f"fact recall {recall.fact_recall:.0%} [{lo:.0%}-{hi:.0%}] ({note})"}


def result_numbers(result: Any) -> dict[str, Any]:
    lo, hi = result.ci
    numbers: dict[str, Any] = {"win_rate": result.win_rate, "win_rate_ci": [lo, hi], "n": result.n,
                               "wins": result.wins, "ties": result.ties, "losses": result.losses}
    summary = f"win rate {result.win_rate:.0%} [{lo:.0%}-{hi:.0%}]"
    if result.recall and result.recall.fact_recall is not None:
        r_lo, r_hi = result.recall.ci
        numbers |= {"fact_recall": result.recall.fact_recall, "fact_recall_ci": [r_lo, r_hi],
                    "facts": result.recall.facts}
        summary = f"fact recall {result.recall.fact_recall:.0%} [{r_lo:.0%}-{r_hi:.0%}], " + summary
    numbers["summary"] = summary
    return numbers


def run_autopilot(project: Project, budgets: Budgets, merge: bool = False) -> Outcome:
    """Run (or resume) the autopilot in `project` within `budgets` (`merge`: merged weights in the bundle too)."""
    return Autopilot(project, budgets, merge).run()
