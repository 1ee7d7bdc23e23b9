"""The autopilot's tuning: system prompt x temperature x top_p for the pick, judged on the dev split
(`tune_prompt`). Optional: when the budget left cannot cover it, the pick keeps the student's settings."""

from __future__ import annotations

from underdog.autopilot.base import Estimate, Pricer, Sizes
from underdog.autopilot.context import TUNED, Budget, Context
from underdog.autopilot.names import DEV
from underdog.tune.prompt import Prompt, tune_prompt

DOMAIN_PROMPT = ("You are an assistant for {domain}. Answer the question directly, stating the exact figures, "
                 "fees, deadlines, forms and offices that apply. Decline requests outside the domain or for "
                 "someone's private information.")


class Tune:
    key, title = "tune", "tune: system prompt x temperature x top_p on the dev split"
    artifact = "the pick's system prompt, temperature and top_p (journal)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        cells = ctx.settings.cells
        return [Pricer(ctx.project).judging("tune", f"tune: {cells} prompt/temperature/top_p cells on the dev split",
                                            sizes.jury, cells, sizes.n_dev)]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        s, run_id = ctx.settings, ctx.pick().run_id
        texts = ctx.cfg.prompts or ["", DOMAIN_PROMPT.format(domain=ctx.project.config.domain)]
        prompts = [Prompt(f"p{i}" if text else "none", text) for i, text in enumerate(texts[: s.prompts])]
        student = ctx.project.config.models["student"].params
        if (project := budget.take("tune")) is None:
            default = {"system_prompt": "", "temperature": student.temperature, "top_p": student.top_p}
            ctx.journal.event(step=TUNED, generation=default, cells=0)
            return
        result = tune_prompt(project, run_id, prompts, s.temperatures, s.top_ps, evalset=DEV, judges=ctx.jury())
        ranked = result.ranked()
        top = ranked[0]
        lo, hi = top.ci
        ctx.journal.decide("tune", f"system prompt {top.prompt.name!r}, temperature {top.temperature:g}, "
                                   f"top_p {top.top_p:g}: dev win rate {top.win_rate:.0%} [{lo:.0%}-{hi:.0%}]",
                           why=f"best of {len(ranked)} cells on {DEV}: " + ", ".join(
                               f"{c.prompt.name} t={c.temperature:g} p={c.top_p:g} {c.win_rate:.0%}" for c in ranked))
        chosen = {"system_prompt": top.prompt.text, "temperature": top.temperature, "top_p": top.top_p}
        ctx.journal.event(step=TUNED, generation=chosen, cells=len(ranked))
