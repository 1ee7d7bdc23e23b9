"""The contract between the autopilot and its stages: the `Stage` protocol, the `Context` every stage sees, and
the `Budget` a stage spends from.

A stage is one entry of the table in `stages.py`: a stable `key`, the `artifact` it produces, `estimate(ctx,
sizes)` (priced rows for the plan), `done(ctx)` (nothing left to do: skipped) and `run(ctx, budget)`. What one
stage hands to the next is an artifact (a dataset, an eval set, a run) or a journal event (`jury`, `pick`,
`tune`, `test`), read back through the Context, so a stage killed half-way is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from underdog.autopilot.base import Budgets, Estimate, Options, Outcome, Plan, RungResult, Settings, Sizes
from underdog.autopilot.journal import Journal
from underdog.config import AutopilotConfig
from underdog.errors import UnderdogError
from underdog.progress import Reporter
from underdog.project import Project, SpendLimit

# journal events that carry one stage's result to the next
FINISHED, JURY, PICK, TUNED, TESTED = "finished", "jury", "pick", "tune", "test"


@dataclass
class Context:
    """One autopilot as its stages see it: the project, the settings it runs with (shrunk to fit), its journal,
    and while running, the fixed plan, this command's budgets and options."""

    project: Project
    settings: Settings
    journal: Journal
    plan: Plan | None = None  # None while the plan is being made
    budgets: Budgets = field(default_factory=Budgets)
    options: Options = field(default_factory=Options)

    @property
    def cfg(self) -> AutopilotConfig:
        return self.project.config.autopilot

    @property
    def say(self) -> Reporter:
        return self.project.reporter

    def finished(self, key: str) -> bool:
        """Whether the stage `key` ran to its end (the runner records it)."""
        return bool(self.journal.events(step=FINISHED, stage=key))

    def latest(self, step: str) -> dict[str, Any] | None:
        """The newest journal event of `step` (a later stage may supersede an earlier one's, e.g. the pick)."""
        found = self.journal.events(step=step)
        return found[-1] if found else None

    def jury(self) -> list[str]:
        """The judges of every autopilot judgment (decided by the eval set stage)."""
        return list(self._required(JURY, "the jury")["jury"])

    def pick(self) -> RungResult:
        """The run to submit (chosen by the search; a later stage may replace it)."""
        return RungResult(**self._required(PICK, "the pick")["result"])

    def generation(self) -> dict[str, Any]:
        """The pick's system prompt, temperature and top_p (chosen by tuning)."""
        return dict(self._required(TUNED, "the tuned settings")["generation"])

    def outcome(self) -> Outcome:
        """What the stages found, read back from the journal."""
        assert self.plan is not None
        pick, tune, test = self.latest(PICK), self.latest(TUNED), self.latest(TESTED)
        compared = (pick or {}).get("compared", 0) + (tune or {}).get("cells", 0)
        return Outcome(self.plan, self.pick() if pick else None, (tune or {}).get("generation", {}),
                       (test or {}).get("numbers", {}), compared, self.jury() if self.latest(JURY) else [])

    def _required(self, step: str, what: str) -> dict[str, Any]:
        if (event := self.latest(step)) is None:
            raise UnderdogError(f"the autopilot has no {what} yet; see `underdog autopilot --log`")
        return event


class Budget:
    """The money the stages spend from: the fixed plan's rows, each reserved just before the work it prices,
    against `limit` (what the project's total spend may reach; None: no limit). `take` gives the project to do
    that work with, its models' calls capped at the reservation (the call path refuses any call past it)."""

    def __init__(self, ctx: Context, rows: list[Estimate], limit: float | None):
        self.ctx, self.rows, self.limit = ctx, {row.key: row for row in rows}, limit

    def take(self, *keys: str, essential: bool = False) -> Project | None:
        """The project to run the rows `keys` with; None (logged) when what is left cannot cover them, or
        UnderdogError when the stage is essential."""
        rows = [self.rows[key] for key in keys]
        usd, project = sum(r.usd for r in rows), self.ctx.project
        if self.limit is None or not usd:
            return project
        left = self.limit - project.store.spent_usd()
        title = " and ".join(r.title for r in rows)
        if usd > left + 1e-9:
            why = f"estimated ${usd:.2f} > ${max(left, 0):.2f} left of the budget"
            if essential:
                raise UnderdogError(f"budget: {title}: {why}; raise --budget-usd and run the same command "
                                    "again (finished work is kept)")
            self.ctx.journal.decide(rows[0].stage, f"skipped {title}", why=why)
            return None
        caps: dict[str, float] = {}
        for row in rows:
            caps[row.stage] = caps.get(row.stage, project.store.spent_usd(row.stage)) + row.usd
            self.ctx.journal.event(step="reserve", stage=row.stage, title=row.title, usd=row.usd)
        return project.with_budget(SpendLimit(total_usd=self.limit, stage_usd=caps))


class Stage(Protocol):
    """One step of the autopilot (see the module docstring and docs/design.md for how to add one)."""

    key: str  # stable: the journal, the plan's rows and `finished` name it by this
    title: str  # the progress line while it runs
    artifact: str  # what it produces, in words

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        """Its priced rows at `ctx.settings` (a row whose work is done or not configured is marked done)."""
        ...

    def done(self, ctx: Context) -> bool:
        """Nothing left to do: the runner skips it."""
        ...

    def run(self, ctx: Context, budget: Budget) -> None:
        """Do it (resumable: a killed run does it again, paying for nothing twice)."""
        ...
